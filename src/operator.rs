//! `stratus run`: wire the controllers, the metrics/health server and leader election together.

use crate::cli::RunArgs;

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    crate::telemetry::init(args.log_format);
    anyhow::bail!("the operator is not wired yet")
}
