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
        Command::Sim(args) => {
            if let Some(why) = args.unavailable() {
                // Not a failure of the sandbox: the command asks for one this build lacks.
                eprintln!("stratus sim: {why}");
                std::process::exit(2);
            }
            stratus::telemetry::init(stratus::cli::LogFormat::Text);
            stratus::providers::sim::run(args).await
        }
    }
}
