//! The flags only Strettch's sandbox takes (`stratus sim`, `--cloud strettch`), with the
//! framework's [`CommonArgs`] making up its [`SimConfig`]. Every flag also reads a
//! `STRATUS_SIM_*` environment variable.

use crate::sim::CommonArgs;
use crate::sim::args::{parse_seconds, secs};

use super::config::SimConfig;

/// `stratus sim` flags for Strettch's sandbox.
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "Strettch sandbox (--cloud strettch, the default)")]
pub struct StrettchArgs {
    /// Requests per second allowed per API key, counted in fixed unix seconds as Strettch does
    /// (0 = unlimited).
    #[arg(long, env = "STRATUS_SIM_RATE_LIMIT", default_value_t = 2)]
    pub rate_limit: u32,

    /// Seconds a compute stays CREATING.
    #[arg(long, env = "STRATUS_SIM_CREATE_SECONDS", default_value = "5", value_parser = parse_seconds)]
    pub create_seconds: f64,

    /// Seconds a start, stop, reboot or upsize takes.
    #[arg(long, env = "STRATUS_SIM_ACTION_SECONDS", default_value = "3", value_parser = parse_seconds)]
    pub action_seconds: f64,

    /// Seconds a compute stays DESTROYING before it is gone.
    #[arg(long, env = "STRATUS_SIM_DESTROY_SECONDS", default_value = "3", value_parser = parse_seconds)]
    pub destroy_seconds: f64,

    /// Seconds a domain stays ACTIVATING.
    #[arg(long, env = "STRATUS_SIM_ACTIVATE_SECONDS", default_value = "10", value_parser = parse_seconds)]
    pub activate_seconds: f64,

    /// Seconds an Idempotency-Key is remembered.
    #[arg(
        long,
        env = "STRATUS_SIM_IDEMPOTENCY_TTL_SECONDS",
        default_value = "86400",
        value_parser = parse_seconds
    )]
    pub idempotency_ttl_seconds: f64,

    /// Accept a DNS record identical (name, type, value) to one its zone already has, and list
    /// both, as some DNS APIs do; by default such a create or update is answered 409 CONFLICT.
    /// Lets tests see duplicates that the default would refuse.
    #[arg(long, env = "STRATUS_SIM_ALLOW_DUPLICATE_RECORDS")]
    pub allow_duplicate_records: bool,
}

impl StrettchArgs {
    /// The configuration these flags and the common ones describe.
    pub fn config(&self, common: &CommonArgs) -> SimConfig {
        SimConfig {
            api_keys: common.api_keys(),
            rate_limit: self.rate_limit,
            rate_limits: Vec::new(),
            key_groups: Default::default(),
            create_delay: secs(self.create_seconds),
            action_delay: secs(self.action_seconds),
            destroy_delay: secs(self.destroy_seconds),
            activate_delay: secs(self.activate_seconds),
            idempotency_ttl: secs(self.idempotency_ttl_seconds),
            faults: common.faults(),
            state_file: common.state_file.clone(),
            allow_duplicate_records: self.allow_duplicate_records,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Faults;
    use clap::Parser;
    use std::path::PathBuf;
    use std::time::Duration;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        strettch: StrettchArgs,
    }

    fn config(args: &[&str]) -> Result<SimConfig, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))?;
        Ok(cli.strettch.config(&cli.common))
    }

    #[test]
    fn flags_parse_with_defaults() {
        let c = config(&["--api-key", "a", "--api-key", "b"]).unwrap();
        assert_eq!(c.api_keys, vec!["a", "b"]);
        assert_eq!(c.rate_limit, 2);
        assert_eq!(c.create_delay, Duration::from_secs(5));
        assert_eq!(c.action_delay, Duration::from_secs(3));
        assert_eq!(c.destroy_delay, Duration::from_secs(3));
        assert_eq!(c.activate_delay, Duration::from_secs(10));
        assert_eq!(c.idempotency_ttl, Duration::from_secs(86_400));
        assert_eq!(c.faults, Faults::default());
        assert!(!c.allow_duplicate_records);

        let c = config(&[
            "--create-seconds",
            "0.25",
            "--error-rate",
            "0.5",
            "--latency-ms",
            "7",
            "--state-file",
            "/tmp/s.json",
            "--allow-duplicate-records",
            "--rate-limit",
            "0",
        ])
        .unwrap();
        assert_eq!(c.create_delay, Duration::from_millis(250));
        assert_eq!(c.faults.error_rate, 0.5);
        assert_eq!(c.faults.latency_ms, 7);
        assert_eq!(c.state_file, Some(PathBuf::from("/tmp/s.json")));
        assert!(c.allow_duplicate_records);
        assert_eq!(c.rate_limit, 0);

        assert!(config(&["--error-rate", "1.5"]).is_err());
        assert!(config(&["--create-seconds", "-1"]).is_err());
        assert!(config(&["--create-seconds", "inf"]).is_err());
    }
}
