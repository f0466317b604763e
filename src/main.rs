use stratus::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_checked();
    match cli.command {
        Command::Crds => {
            print!("{}", stratus::providers::crds_yaml());
            Ok(())
        }
        Command::Run(args) => stratus::operator::run(args).await,
        Command::Tree(args) => stratus::tree::run(args).await,
        Command::Logs(args) => stratus::providers::cloudapi::logs::run(args).await,
        Command::Import(args) => stratus::import::run(args).await,
        Command::Sim(args) => {
            stratus::telemetry::init(stratus::cli::LogFormat::Text);
            stratus::providers::sim::run(args).await
        }
    }
}
