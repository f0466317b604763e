//! The flags only Vertra's sandbox takes (`stratus sim --cloud vertra`), with the framework's
//! [`CommonArgs`] making up its [`VertraSimConfig`]. Every flag also reads a `STRATUS_SIM_*`
//! environment variable.

use crate::sim::CommonArgs;
use crate::sim::args::{parse_seconds, secs};

use super::config::{SnapshotFailures, VertraSimConfig, parse_failures};
use super::limits::LIFECYCLE_PER_MINUTE;
use super::plan::Plan;
use super::scopes::{KeyScopes, parse_key_scopes};

/// `stratus sim` flags for Vertra's sandbox.
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Vertra sandbox (--cloud vertra)")]
pub struct VertraArgs {
    /// The account's plan: it sets the per-minute, per-day and per-hour deploy limits and the
    /// features open to the account (publishing, custom domains, workspaces…).
    #[arg(long, env = "STRATUS_SIM_PLAN", value_enum, default_value_t = Plan::Enterprise)]
    pub plan: Plan,

    /// Give one key only some scopes: KEY=scope,scope,… (presets read, write, full allowed;
    /// repeatable; the env variable separates entries with ';'). Other keys have every scope.
    /// A key named here is accepted even without --api-key.
    #[arg(
        long = "key-scopes",
        env = "STRATUS_SIM_KEY_SCOPES",
        value_name = "KEY=SCOPES",
        value_parser = parse_key_scopes,
        value_delimiter = ';',
        hide_env_values = true
    )]
    pub key_scopes: Vec<KeyScopes>,

    /// API-key requests per minute per account instead of the plan's (0 = unlimited).
    #[arg(long, env = "STRATUS_SIM_PER_MINUTE", value_name = "N")]
    pub per_minute: Option<u32>,

    /// API-key requests per day per account instead of the plan's (0 = unlimited).
    #[arg(long, env = "STRATUS_SIM_PER_DAY", value_name = "N")]
    pub per_day: Option<u32>,

    /// Deploys per hour per account instead of the plan's (0 = unlimited).
    #[arg(long, env = "STRATUS_SIM_DEPLOYS_PER_HOUR", value_name = "N")]
    pub deploys_per_hour: Option<u32>,

    /// Lifecycle calls (start, stop, restart, publish, unpublish) per app per minute
    /// (0 = unlimited).
    #[arg(long, env = "STRATUS_SIM_LIFECYCLE_PER_MINUTE", value_name = "N", default_value_t = LIFECYCLE_PER_MINUTE)]
    pub lifecycle_per_minute: u32,

    /// Seconds an install or build takes (after a create, an upload with restart, a restart
    /// with a rebuild).
    #[arg(long, env = "STRATUS_SIM_INSTALL_SECONDS", default_value = "1", value_parser = parse_seconds)]
    pub install_seconds: f64,

    /// Database deletes whose safety snapshot fails (500 SNAPSHOT_FAILED, nothing deleted):
    /// the next N, or `always`.
    #[arg(
        long,
        env = "STRATUS_SIM_FAIL_DELETE_SNAPSHOTS",
        value_name = "N|always",
        default_value = "0",
        value_parser = parse_failures
    )]
    pub fail_delete_snapshots: SnapshotFailures,
}

impl VertraArgs {
    /// The configuration these flags and the common ones describe.
    pub fn config(&self, common: &CommonArgs) -> VertraSimConfig {
        VertraSimConfig {
            api_keys: common.api_keys(),
            key_scopes: self.key_scopes.clone(),
            plan: self.plan,
            per_minute: self.per_minute,
            per_day: self.per_day,
            deploys_per_hour: self.deploys_per_hour,
            lifecycle_per_minute: self.lifecycle_per_minute,
            install_delay: secs(self.install_seconds),
            snapshot_failures: self.fail_delete_snapshots,
            faults: common.faults(),
            state_file: common.state_file.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        vertra: VertraArgs,
    }

    fn config(args: &[&str]) -> Result<VertraSimConfig, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))?;
        Ok(cli.vertra.config(&cli.common))
    }

    #[test]
    fn flags_parse_with_defaults() {
        let c = config(&["--api-key", "a"]).unwrap();
        assert_eq!(c.plan, Plan::Enterprise);
        assert_eq!(
            (c.per_minute, c.per_day, c.deploys_per_hour),
            (None, None, None)
        );
        assert_eq!(c.lifecycle_per_minute, 10);
        assert_eq!(c.install_delay, Duration::from_secs(1));
        assert_eq!(c.snapshot_failures, SnapshotFailures::default());
        assert!(c.key_scopes.is_empty());

        let c = config(&[
            "--plan",
            "free",
            "--per-minute",
            "5",
            "--per-day",
            "0",
            "--deploys-per-hour",
            "2",
            "--install-seconds",
            "0.25",
            "--key-scopes",
            "ro=read",
            "--key-scopes",
            "apps=apps:read,apps:write",
            "--fail-delete-snapshots",
            "always",
        ])
        .unwrap();
        assert_eq!(c.plan, Plan::Free);
        assert_eq!(
            (c.per_minute, c.per_day, c.deploys_per_hour),
            (Some(5), Some(0), Some(2))
        );
        assert_eq!(c.install_delay, Duration::from_millis(250));
        assert_eq!(c.key_scopes.len(), 2);
        assert_eq!(c.key_scopes[1].scopes.len(), 2);
        assert!(c.snapshot_failures.always);

        assert!(config(&["--plan", "gold"]).is_err());
        assert!(config(&["--key-scopes", "k=apps:fly"]).is_err());
        assert!(config(&["--install-seconds", "-1"]).is_err());
    }
}
