//! The `stratus` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::cloud::throttle::Order;

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

impl Cli {
    /// The command line of this process; exits with clap's usage message (status 2) when it
    /// breaks a rule, clap's own or [`Cli::try_parse_checked_from`]'s.
    pub fn parse_checked() -> Self {
        Self::try_parse_checked_from(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// [`Parser::try_parse_from`], plus the rules clap's attributes cannot express
    /// (`stratus sim --dialect` only with `--cloud cloudapi`).
    pub fn try_parse_checked_from<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let cli = Self::try_parse_from(args)?;
        if let Command::Sim(sim) = &cli.command {
            sim.check()
                .map_err(|m| usage_error("sim", ErrorKind::ArgumentConflict, m))?;
        }
        Ok(cli)
    }
}

/// A usage error of `subcommand`, shown with its usage line as clap shows its own.
fn usage_error(subcommand: &str, kind: ErrorKind, message: String) -> clap::Error {
    let mut cli = Cli::command();
    cli.build();
    match cli.find_subcommand_mut(subcommand) {
        Some(sub) => sub.error(kind, message),
        None => cli.error(kind, message),
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the operator.
    Run(RunArgs),
    /// Print the CustomResourceDefinitions as YAML.
    Crds,
    /// Run a local sandbox that imitates a cloud's API (Strettch Cloud unless `--cloud` says
    /// otherwise).
    Sim(crate::providers::sim::SimArgs),
    /// Show an object, what it references and what references it, with Ready, Synced and
    /// the reason of each (`kubectl stratus tree` when installed as `kubectl-stratus`).
    Tree(crate::tree::TreeArgs),
    /// Print a CloudAPI Release's build log (`--follow` for the live tail).
    Logs(crate::providers::cloudapi::logs::LogsArgs),
    /// Write the manifests that adopt what a ProviderConfig's account already holds
    /// (observe-only unless `--manage`), to stdout or one file per object.
    Import(crate::import::ImportArgs),
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
    /// Benchmark baseline only: `fifo` serves a key's requests in arrival order, ignoring the
    /// priorities (a user's change before observation) and the namespaces' turns.
    #[arg(long, value_enum, default_value_t = Order::Priority, hide = true)]
    pub throttle_order: Order,
    /// How often the account usage of each ProviderConfig in use is read (clouds that report
    /// it, such as CloudAPI) and written to its status.usage and metrics.
    #[arg(long, env = "STRATUS_USAGE_INTERVAL", default_value = "5m", value_parser = parse_duration)]
    pub usage_interval: Duration,
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
        Cli::command().debug_assert();
    }

    #[test]
    fn import_takes_its_filters_repeated_or_comma_separated() {
        let argv = [
            "stratus",
            "import",
            "--provider-config",
            "prod",
            "-n",
            "imported",
            "--kind",
            "compute,domains",
            "--kind",
            "DnsRecord",
            "--name",
            "web-*",
            "--region",
            "KGL-1",
            "--manage",
            "--output-dir",
            "out",
        ];
        let Command::Import(a) = Cli::try_parse_checked_from(argv).unwrap().command else {
            panic!("not import");
        };
        assert_eq!(
            (a.provider_config.as_str(), a.namespace.as_str()),
            ("prod", "imported")
        );
        assert_eq!(a.kinds, ["compute", "domains", "DnsRecord"]);
        assert_eq!(
            (a.name.as_deref(), a.region.as_deref()),
            (Some("web-*"), Some("KGL-1"))
        );
        assert!(a.manage);
        assert_eq!(a.output_dir, Some(PathBuf::from("out")));
        let e = Cli::try_parse_checked_from(["stratus", "import"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        let Command::Import(d) =
            Cli::try_parse_checked_from(["stratus", "import", "--provider-config", "p"])
                .unwrap()
                .command
        else {
            panic!("not import");
        };
        assert_eq!(
            (d.namespace.as_str(), d.manage, d.kinds.len()),
            ("default", false, 0)
        );
    }

    fn sim(args: &[&str]) -> Result<crate::providers::sim::SimArgs, clap::Error> {
        let argv = ["stratus", "sim"].into_iter().chain(args.iter().copied());
        match Cli::try_parse_checked_from(argv)?.command {
            Command::Sim(a) => Ok(a),
            other => panic!("not sim: {other:?}"),
        }
    }

    #[test]
    fn sim_without_cloud_is_strettch_with_its_flags() {
        use crate::providers::sim::SimCloud;
        let a = sim(&["--api-key", "k", "--rate-limit", "5", "--latency-ms", "3"]).unwrap();
        assert_eq!((a.cloud, a.dialect), (SimCloud::Strettch, None));
        let c = a.strettch.config(&a.common);
        assert_eq!(
            (c.api_keys, c.rate_limit, c.faults.latency_ms),
            (vec!["k".to_string()], 5, 3)
        );
        assert_eq!(
            sim(&["--cloud", "strettch"]).unwrap().cloud,
            SimCloud::Strettch
        );
    }

    #[test]
    fn sim_dialect_is_refused_as_a_usage_error_without_cloud_cloudapi() {
        for args in [
            &["--dialect", "cloudapi"][..],
            &["--cloud", "strettch", "--dialect", "cloudplatform"],
            &["--cloud", "vertra", "--dialect", "cloudapi"],
        ] {
            let e = sim(args).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ArgumentConflict, "{args:?}");
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("only for --cloud cloudapi"), "{e}");
            assert!(e.to_string().contains("Usage: stratus sim"), "{e}");
        }
    }

    #[test]
    fn sim_cloudapi_needs_a_dialect_and_takes_either() {
        use crate::providers::sim::Dialect;
        let e = sim(&["--cloud", "cloudapi"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        assert!(e.to_string().contains("--dialect"), "{e}");
        for (v, d) in [
            ("cloudapi", Dialect::Cloudapi),
            ("cloudplatform", Dialect::Cloudplatform),
        ] {
            assert_eq!(
                sim(&["--cloud", "cloudapi", "--dialect", v])
                    .unwrap()
                    .dialect,
                Some(d)
            );
        }
        assert_eq!(
            sim(&["--cloud", "cloudapi", "--dialect", "aws"])
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidValue
        );
    }

    #[test]
    fn sim_cloud_vertra_takes_its_own_flags() {
        use crate::providers::sim::SimCloud;
        use crate::providers::vertra::sim::Plan;
        let a = sim(&[
            "--cloud",
            "vertra",
            "--api-key",
            "k",
            "--plan",
            "pro",
            "--per-minute",
            "7",
        ])
        .unwrap();
        assert_eq!(a.cloud, SimCloud::Vertra);
        let c = a.vertra.config(&a.common);
        assert_eq!((c.plan, c.per_minute), (Plan::Pro, Some(7)));
    }

    #[test]
    fn sim_cloud_cloudapi_takes_its_own_flags_and_the_dialect() {
        use crate::providers::cloudapi::sim::Dialect;
        use crate::providers::sim::SimCloud;
        let a = sim(&[
            "--cloud",
            "cloudapi",
            "--dialect",
            "cloudplatform",
            "--api-key",
            "k",
            "--session-token",
            "s",
            "--workspace-key",
            "acme=w",
            "--key-per-minute",
            "7",
        ])
        .unwrap();
        assert_eq!(a.cloud, SimCloud::Cloudapi);
        let dialect: Dialect = a.dialect.unwrap().into();
        let c = a.cloudapi.config(&a.common, dialect);
        assert_eq!(c.dialect, Dialect::Cloudplatform);
        assert_eq!((c.session_tokens.len(), c.per_key_per_minute), (1, Some(7)));
        assert_eq!(c.workspace_keys[0].workspace, "acme");
        assert_eq!(
            sim(&["--cloud", "aws"]).unwrap_err().kind(),
            ErrorKind::InvalidValue
        );
    }
}
