//! The `stratus` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "stratus",
    version,
    about = "Cloud resources as Kubernetes custom resources"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator.
    Run(RunArgs),
    /// Print the CustomResourceDefinitions as YAML.
    Crds,
    /// Run the local Strettch Cloud sandbox.
    Sim(crate::providers::strettch::sim::SimArgs),
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Kubeconfig to use; in-cluster configuration when omitted and none is found.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespaces to watch (repeatable or comma-separated); all namespaces when omitted.
    #[arg(long = "namespace", env = "STRATUS_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Reconciles running at once per kind. The per-key throttle, not this, limits cloud calls.
    #[arg(long, env = "STRATUS_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
    /// How often each resource is observed in the cloud to correct drift (jittered);
    /// the annotation stratus.dev/poll-interval overrides it per resource.
    #[arg(long, env = "STRATUS_RESYNC_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub resync_interval: Duration,
    /// How long after a create started a resource it made may still appear: until then a
    /// deletion keeps looking for it, and a rejected retry is not taken as "nothing exists".
    #[arg(long, env = "STRATUS_CREATE_SETTLE", default_value = "2m", value_parser = parse_duration)]
    pub create_settle: Duration,
    /// How long a rotated credential's previous value stays valid (and in the connection
    /// Secret under `previous-` keys) before it is revoked.
    #[arg(long, env = "STRATUS_ROTATION_GRACE", default_value = "24h", value_parser = parse_duration)]
    pub rotation_grace: Duration,
    /// How resources are observed: `bulk` (shared paged list snapshot) or `per-resource`
    /// (one GET per resource per resync, the common operator design; kept for benchmarks).
    #[arg(long, env = "STRATUS_OBSERVE_MODE", value_enum, default_value_t = ObserveMode::Bulk)]
    pub observe_mode: ObserveMode,
    /// Log format.
    #[arg(long, env = "STRATUS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Address serving /metrics, /healthz and /readyz.
    #[arg(long, env = "STRATUS_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Elect a leader through a coordination.k8s.io Lease; only the leader reconciles.
    #[arg(long, env = "STRATUS_LEADER_ELECT", default_value_t = false)]
    pub leader_elect: bool,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "stratus-system")]
    pub leader_election_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "STRATUS_LEADER_ELECTION_ID",
        default_value = "stratus-leader"
    )]
    pub leader_election_id: String,
    /// Lease duration: how long a silent leader keeps the lease before another replica takes over.
    #[arg(long, env = "STRATUS_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// This replica's identity in the Lease (the pod name in a cluster).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObserveMode {
    Bulk,
    PerResource,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Parse "500ms", "30s", "10m", "1h" or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    // One parser for flags and annotations: checked, so no value can panic.
    crate::engine::annotations::parse_duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
