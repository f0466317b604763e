//! `stratus sim`: a local Strettch Cloud sandbox.
//!
//! A real HTTP server that speaks the documented Strettch API under `/api/v1` (computes,
//! catalog, and the DNS model of docs/strettch-dns.md) with its envelope, error codes, bearer
//! auth, per-key rate limit, `Idempotency-Key` semantics and asynchronous lifecycles, plus fault
//! injection and `/_sim` control endpoints for tests. See docs/sim.md.
//!
//! Layout: `state` (resources, lazy lifecycles, persistence), `routes` (API handlers), `gate`
//! (auth, rate limit, faults per request), `rate_limit` (Strettch's limits on the shared
//! `crate::sim::rate_limit`, and the counters), `faults`
//! (injection and the connection kill switch), `control` (`/_sim`), `validate` (pure rules),
//! `catalog`, `reply` (envelopes).

mod catalog;
mod control;
mod faults;
mod gate;
mod rate_limit;
mod reply;
mod routes;
mod state;
mod validate;
pub mod wire;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use rate_limit::{KeyStats, SimStats};
pub use state::RecordGroup;

use state::{State, Timing};
use wire::{Compute, Domain, DomainStatus, Record};

/// The longest delay or TTL the flags accept (ten years), so durations never overflow.
const MAX_SECONDS: f64 = 315_360_000.0;

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !v.is_finite() || !(0.0..=MAX_SECONDS).contains(&v) {
        return Err(format!("seconds must be from 0 to {MAX_SECONDS}; got {s}"));
    }
    Ok(v)
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if !v.is_finite() || !(0.0..=1.0).contains(&v) {
        return Err(format!("a rate must be from 0.0 to 1.0; got {s}"));
    }
    Ok(v)
}

fn secs(v: f64) -> Duration {
    Duration::try_from_secs_f64(v.clamp(0.0, MAX_SECONDS)).unwrap_or(Duration::ZERO)
}

/// `stratus sim` flags. Every flag also reads a `STRATUS_SIM_*` environment variable.
#[derive(clap::Args, Clone)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, env = "STRATUS_SIM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// An API key the sandbox accepts (repeatable; the env variable takes a comma-separated
    /// list). All keys belong to one team and see the same resources.
    #[arg(
        long = "api-key",
        value_name = "KEY",
        env = "STRATUS_SIM_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// Requests per second allowed per API key (0 = unlimited).
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

    /// Keep resources and idempotency keys in this JSON file across restarts.
    #[arg(long, env = "STRATUS_SIM_STATE_FILE", value_name = "PATH")]
    pub state_file: Option<PathBuf>,

    /// Fraction (0..1) of authenticated requests answered 500 without applying anything.
    #[arg(long, env = "STRATUS_SIM_ERROR_RATE", default_value = "0", value_parser = parse_rate)]
    pub error_rate: f64,

    /// Milliseconds added to every API request.
    #[arg(long, env = "STRATUS_SIM_LATENCY_MS", default_value_t = 0)]
    pub latency_ms: u64,

    /// Fraction (0..1) of GET requests answered 200 with a body that is not JSON.
    #[arg(long, env = "STRATUS_SIM_MALFORMED_RATE", default_value = "0", value_parser = parse_rate)]
    pub malformed_rate: f64,

    /// Fraction (0..1) of POST/PUT/PATCH/DELETE requests applied and then answered by closing
    /// the connection without a response.
    #[arg(
        long,
        env = "STRATUS_SIM_DROP_AFTER_WRITE_RATE",
        default_value = "0",
        value_parser = parse_rate
    )]
    pub drop_after_write_rate: f64,

    /// Accept a DNS record identical (name, type, value) to one its zone already has, and list
    /// both, as some DNS APIs do; by default such a create or update is answered 409 CONFLICT.
    /// Lets tests see duplicates that the default would refuse.
    #[arg(long, env = "STRATUS_SIM_ALLOW_DUPLICATE_RECORDS")]
    pub allow_duplicate_records: bool,
}

impl fmt::Debug for SimArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimArgs")
            .field("listen", &self.listen)
            .field("api_keys", &redacted(&self.api_keys))
            .field("rate_limit", &self.rate_limit)
            .field("create_seconds", &self.create_seconds)
            .field("action_seconds", &self.action_seconds)
            .field("destroy_seconds", &self.destroy_seconds)
            .field("activate_seconds", &self.activate_seconds)
            .field("idempotency_ttl_seconds", &self.idempotency_ttl_seconds)
            .field("state_file", &self.state_file)
            .field("error_rate", &self.error_rate)
            .field("latency_ms", &self.latency_ms)
            .field("malformed_rate", &self.malformed_rate)
            .field("drop_after_write_rate", &self.drop_after_write_rate)
            .field("allow_duplicate_records", &self.allow_duplicate_records)
            .finish()
    }
}

impl SimArgs {
    /// The configuration these flags describe.
    pub fn config(&self) -> SimConfig {
        SimConfig {
            api_keys: self
                .api_keys
                .iter()
                .map(|k| k.trim().to_string())
                .filter(|k| !k.is_empty())
                .collect(),
            rate_limit: self.rate_limit,
            rate_limits: Vec::new(),
            key_groups: HashMap::new(),
            create_delay: secs(self.create_seconds),
            action_delay: secs(self.action_seconds),
            destroy_delay: secs(self.destroy_seconds),
            activate_delay: secs(self.activate_seconds),
            idempotency_ttl: secs(self.idempotency_ttl_seconds),
            faults: Faults {
                error_rate: self.error_rate,
                latency_ms: self.latency_ms,
                malformed_rate: self.malformed_rate,
                drop_after_write_rate: self.drop_after_write_rate,
            },
            state_file: self.state_file.clone(),
            allow_duplicate_records: self.allow_duplicate_records,
        }
    }
}

fn redacted(keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| format!("sha256:{}…", key_fingerprint(k)))
        .collect()
}

/// How the sandbox names an API key in its stats, logs and `Debug` output: the first 12 hex
/// digits of its SHA-256. The sandbox stands for the cloud, a separate program, so it does not
/// share the operator's (salted, per-process) fingerprint; tests find a key's counters with
/// `stats().keys[&key_fingerprint(key)]`.
pub fn key_fingerprint(key: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(key.trim().as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How the sandbox behaves. `Debug` shows key fingerprints, never keys.
#[derive(Clone)]
pub struct SimConfig {
    pub api_keys: Vec<String>,
    /// Requests per key per fixed unix second (Strettch's documented limit); 0 = none.
    pub rate_limit: u32,
    /// More limits, enforced with `rate_limit` (every one must have room for a request to be
    /// let through): per key or per group of keys, fixed or rolling windows.
    pub rate_limits: Vec<crate::sim::rate_limit::Limit>,
    /// API key → the group its requests count in for `Scope::Group` limits (a key in no group
    /// counts alone).
    pub key_groups: HashMap<String, String>,
    pub create_delay: Duration,
    pub action_delay: Duration,
    pub destroy_delay: Duration,
    pub activate_delay: Duration,
    pub idempotency_ttl: Duration,
    pub faults: Faults,
    pub state_file: Option<PathBuf>,
    /// Accept records identical to one their zone already has (see
    /// `SimArgs::allow_duplicate_records`).
    pub allow_duplicate_records: bool,
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("api_keys", &redacted(&self.api_keys))
            .field("rate_limit", &self.rate_limit)
            .field("rate_limits", &self.rate_limits)
            .field(
                "key_groups",
                &self
                    .key_groups
                    .iter()
                    .map(|(k, g)| (key_fingerprint(k), g.clone()))
                    .collect::<std::collections::BTreeMap<_, _>>(),
            )
            .field("create_delay", &self.create_delay)
            .field("action_delay", &self.action_delay)
            .field("destroy_delay", &self.destroy_delay)
            .field("activate_delay", &self.activate_delay)
            .field("idempotency_ttl", &self.idempotency_ttl)
            .field("faults", &self.faults)
            .field("state_file", &self.state_file)
            .field("allow_duplicate_records", &self.allow_duplicate_records)
            .finish()
    }
}

impl SimConfig {
    /// For tests: these keys, 2 requests/s per key, 200 ms lifecycles, a day of idempotency,
    /// no faults, in memory, duplicate records refused.
    pub fn for_tests(api_keys: &[&str]) -> Self {
        let d = Duration::from_millis(200);
        Self {
            api_keys: api_keys.iter().map(|k| k.trim().to_string()).collect(),
            rate_limit: 2,
            rate_limits: Vec::new(),
            key_groups: HashMap::new(),
            create_delay: d,
            action_delay: d,
            destroy_delay: d,
            activate_delay: d,
            idempotency_ttl: Duration::from_secs(86_400),
            faults: Faults::default(),
            state_file: None,
            allow_duplicate_records: false,
        }
    }

    fn timing(&self) -> Timing {
        Timing {
            create: self.create_delay,
            action: self.action_delay,
            destroy: self.destroy_delay,
            activate: self.activate_delay,
            idempotency_ttl: self.idempotency_ttl,
        }
    }
}

/// Injected faults; can be changed while running (`SimHandle::set_faults`, `POST /_sim/faults`).
/// Missing JSON fields default to 0.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Fraction of authenticated requests answered 500 INTERNAL_SERVER_ERROR, nothing applied.
    pub error_rate: f64,
    /// Milliseconds added to every `/api/v1` request.
    pub latency_ms: u64,
    /// Fraction of GET requests answered 200 with a body that is not JSON.
    pub malformed_rate: f64,
    /// Fraction of POST/PUT/PATCH/DELETE requests applied, then dropped without an answer.
    pub drop_after_write_rate: f64,
}

impl Faults {
    /// Checks that the rates are within 0..=1.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("errorRate", self.error_rate),
            ("malformedRate", self.malformed_rate),
            ("dropAfterWriteRate", self.drop_after_write_rate),
        ] {
            if !v.is_finite() || !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be from 0.0 to 1.0; got {v}"));
            }
        }
        Ok(())
    }

    fn clamped(mut self) -> Self {
        for v in [
            &mut self.error_rate,
            &mut self.malformed_rate,
            &mut self.drop_after_write_rate,
        ] {
            *v = if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                0.0
            };
        }
        self
    }
}

struct Persist {
    path: PathBuf,
    notify: Notify,
    /// Serialises snapshot writes so they land in order.
    lock: tokio::sync::Mutex<()>,
}

/// The shared core of a running sandbox.
pub(crate) struct Sim {
    /// key → fingerprint
    keys: HashMap<String, String>,
    faults: RwLock<Faults>,
    state: Mutex<State>,
    limiter: Mutex<rate_limit::Limiter>,
    persist: Option<Persist>,
}

impl Sim {
    /// Schedules a (debounced) save after a mutation.
    fn mutated(&self) {
        if let Some(p) = &self.persist {
            p.notify.notify_one();
        }
    }

    async fn save(&self) -> anyhow::Result<()> {
        let Some(p) = &self.persist else {
            return Ok(());
        };
        let _guard = p.lock.lock().await;
        let bytes = self.state.lock().snapshot_bytes(Timestamp::now())?;
        let path = p.path.clone();
        tokio::task::spawn_blocking(move || state::write_atomic(&path, &bytes)).await??;
        Ok(())
    }

    fn stats(&self) -> SimStats {
        let mut s = self.limiter.lock().stats();
        let mut st = self.state.lock();
        st.settle_computes(Timestamp::now());
        s.computes = st.computes.len();
        s.domains = st.domains.len();
        s.records = st.record_count();
        s
    }

    fn reset_stats(&self) {
        self.limiter.lock().reset_stats();
    }

    fn set_faults(&self, f: Faults) {
        *self.faults.write() = f.clamped();
    }

    fn seed(&self, n: usize, tags: &[String]) -> Vec<String> {
        let ids = self.state.lock().seed_computes(n, tags, Timestamp::now());
        self.mutated();
        ids
    }

    fn computes(&self) -> Vec<Compute> {
        self.state.lock().all_computes(Timestamp::now())
    }

    fn record_groups(&self) -> Vec<RecordGroup> {
        self.state.lock().record_groups()
    }

    fn domains(&self) -> Vec<Domain> {
        let now = Timestamp::now();
        self.state
            .lock()
            .domains
            .iter()
            .map(|d| d.view(now))
            .collect()
    }
}

async fn saver(sim: Arc<Sim>, mut stop: watch::Receiver<bool>) {
    let Some(p) = sim.persist.as_ref() else {
        return;
    };
    loop {
        tokio::select! {
            _ = p.notify.notified() => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = sim.save().await {
            tracing::warn!(error = %format!("{e:#}"), "sandbox could not save its state");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Starts the sandbox on `listen` (`127.0.0.1:0` picks a free port) and returns at once.
pub async fn start(config: SimConfig, listen: SocketAddr) -> anyhow::Result<SimHandle> {
    config.faults.validate().map_err(anyhow::Error::msg)?;
    let timing = config.timing();
    let mut state = match &config.state_file {
        Some(p) if p.exists() => State::load(p, timing)?,
        _ => State::new(timing),
    };
    state.allow_duplicate_records = config.allow_duplicate_records;
    let keys: HashMap<String, String> = config
        .api_keys
        .iter()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .map(|k| {
            let fp = key_fingerprint(&k);
            (k, fp)
        })
        .collect();
    let sim = Arc::new(Sim {
        limiter: Mutex::new(rate_limit::Limiter::new(
            config.rate_limit,
            config.rate_limits.clone(),
            config
                .key_groups
                .iter()
                .map(|(k, g)| (key_fingerprint(k), g.clone()))
                .collect(),
            keys.values().cloned(),
        )),
        keys,
        faults: RwLock::new(config.faults.clone()),
        state: Mutex::new(state),
        persist: config.state_file.clone().map(|path| Persist {
            path,
            notify: Notify::new(),
            lock: tokio::sync::Mutex::new(()),
        }),
    });

    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the sandbox to {listen}"))?;
    let addr = listener.local_addr()?;
    let app = routes::router(sim.clone());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut signal_rx = stop_rx.clone();
    let server = tokio::spawn(
        axum::serve(
            faults::SimListener::new(listener),
            app.into_make_service_with_connect_info::<faults::ConnKill>(),
        )
        .with_graceful_shutdown(async move {
            let _ = signal_rx.wait_for(|stop| *stop).await;
        })
        .into_future(),
    );
    let saver = sim
        .persist
        .is_some()
        .then(|| tokio::spawn(saver(sim.clone(), stop_rx)));
    tracing::info!(%addr, config = ?config, "Strettch sandbox listening");
    Ok(SimHandle {
        sim,
        addr,
        stop: Some(stop_tx),
        server: Some(server),
        saver,
    })
}

/// Serves until Ctrl-C or SIGTERM, then saves the state (with `--state-file`) and returns.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let config = args.config();
    if config.api_keys.is_empty() {
        anyhow::bail!(
            "the sandbox needs at least one API key: pass --api-key KEY or set STRATUS_SIM_API_KEYS"
        );
    }
    let handle = start(config, args.listen).await?;
    eprintln!(
        "Strettch sandbox listening on {} (control endpoints under http://{}/_sim)",
        handle.base_url(),
        handle.addr()
    );
    shutdown_signal().await;
    eprintln!("Strettch sandbox shutting down");
    handle.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A running sandbox. Dropping it stops the server (without a final save); prefer
/// [`SimHandle::shutdown`].
pub struct SimHandle {
    sim: Arc<Sim>,
    addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    saver: Option<JoinHandle<()>>,
}

impl fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/api/v1` (loopback when bound to an unspecified address).
    pub fn base_url(&self) -> String {
        format!("{}/api/v1", self.root_url())
    }

    /// `http://127.0.0.1:PORT`: the root, where `/_sim` lives.
    pub fn root_url(&self) -> String {
        let mut a = self.addr;
        if a.ip().is_unspecified() {
            a.set_ip(match a.ip() {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            });
        }
        format!("http://{a}")
    }

    pub fn stats(&self) -> SimStats {
        self.sim.stats()
    }

    /// Zeroes the counters of [`SimHandle::stats`] and the request log.
    pub fn reset_stats(&self) {
        self.sim.reset_stats()
    }

    /// When each request of API key `key` was let through (time since the unix epoch), oldest
    /// first: count them in any window with `crate::sim::rate_limit::max_in_any_window`.
    pub fn request_times(&self, key: &str) -> Vec<Duration> {
        self.sim.limiter.lock().request_times(&key_fingerprint(key))
    }

    /// When each request of any key of `group` (`SimConfig::key_groups`) was let through.
    pub fn group_request_times(&self, group: &str) -> Vec<Duration> {
        self.sim.limiter.lock().group_request_times(group)
    }

    /// Replaces the injected faults (rates are clamped to 0..=1).
    pub fn set_faults(&self, f: Faults) {
        self.sim.set_faults(f)
    }

    pub fn faults(&self) -> Faults {
        self.sim.faults.read().clone()
    }

    /// Changes a compute's addresses: `None` leaves one unchanged, `Some("")` clears it.
    /// False if the compute does not exist or an address is not IPv4. `updatedAt` moves.
    pub fn set_compute_address(
        &self,
        id: &str,
        ipv4: Option<String>,
        private_ipv4: Option<String>,
    ) -> bool {
        let parse = |v: Option<String>| v.map(|s| validate::optional_ipv4(&s)).transpose();
        let (Ok(ipv4), Ok(private_ipv4)) = (parse(ipv4), parse(private_ipv4)) else {
            return false;
        };
        let ok = self
            .sim
            .state
            .lock()
            .set_address(id, ipv4, private_ipv4, Timestamp::now())
            .is_ok();
        if ok {
            self.sim.mutated();
        }
        ok
    }

    /// Present computes (DESTROYING ones included), as the API shows them.
    pub fn computes(&self) -> Vec<Compute> {
        self.sim.computes()
    }

    pub fn domains(&self) -> Vec<Domain> {
        self.sim.domains()
    }

    /// The records of a domain (empty if the domain does not exist).
    pub fn records(&self, domain_id: &str) -> Vec<Record> {
        self.sim
            .state
            .lock()
            .domain(domain_id)
            .map(|d| d.records.clone())
            .unwrap_or_default()
    }

    /// Every zone's records grouped by (name, type, value), to count duplicates.
    pub fn record_groups(&self) -> Vec<RecordGroup> {
        self.sim.record_groups()
    }

    /// Forces a domain's status (`None` returns it to the clock). False if it does not exist.
    pub fn set_domain_status(&self, domain_id: &str, status: Option<DomainStatus>) -> bool {
        let ok = self
            .sim
            .state
            .lock()
            .set_domain_status(domain_id, status, Timestamp::now())
            .is_ok();
        if ok {
            self.sim.mutated();
        }
        ok
    }

    /// Creates `n` computes that are RUNNING at once (hostName `seed-ID`, S-1C-1G, KGL-1).
    pub fn seed_computes(&self, n: usize, tags: Vec<String>) -> Vec<String> {
        self.sim.seed(n, &tags)
    }

    /// Adds `n` A records (`seed-<i>`) to zone `domain_id`, as if made outside the operator;
    /// how many, or why not (no such zone).
    pub fn seed_records(&self, domain_id: &str, n: usize) -> Result<usize, String> {
        let added = self
            .sim
            .state
            .lock()
            .seed_records(domain_id, n, Timestamp::now())
            .map_err(|e| format!("{e:?}"));
        self.sim.mutated();
        added
    }

    /// Writes the state file now (no-op without one).
    pub async fn save(&self) -> anyhow::Result<()> {
        self.sim.save().await
    }

    /// Stops serving (in-flight requests get up to 2 s) and saves the state.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(Duration::from_secs(2), &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
        if let Some(saver) = self.saver.take() {
            let _ = saver.await;
        }
        if let Err(e) = self.sim.save().await {
            tracing::warn!(error = %format!("{e:#}"), "sandbox could not save its state on shutdown");
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn flags_parse_with_defaults() {
        let cli = Cli::try_parse_from(["x", "--api-key", "a", "--api-key", "b"]).unwrap();
        let c = cli.sim.config();
        assert_eq!(c.api_keys, vec!["a", "b"]);
        assert_eq!(c.rate_limit, 2);
        assert_eq!(c.create_delay, Duration::from_secs(5));
        assert_eq!(c.action_delay, Duration::from_secs(3));
        assert_eq!(c.destroy_delay, Duration::from_secs(3));
        assert_eq!(c.activate_delay, Duration::from_secs(10));
        assert_eq!(c.idempotency_ttl, Duration::from_secs(86_400));
        assert_eq!(cli.sim.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.faults, Faults::default());
        assert!(!c.allow_duplicate_records);

        let cli = Cli::try_parse_from([
            "x",
            "--create-seconds",
            "0.25",
            "--error-rate",
            "0.5",
            "--latency-ms",
            "7",
            "--state-file",
            "/tmp/s.json",
            "--allow-duplicate-records",
        ])
        .unwrap();
        let c = cli.sim.config();
        assert_eq!(c.create_delay, Duration::from_millis(250));
        assert_eq!(c.faults.error_rate, 0.5);
        assert_eq!(c.faults.latency_ms, 7);
        assert_eq!(c.state_file, Some(PathBuf::from("/tmp/s.json")));
        assert!(c.allow_duplicate_records);

        assert!(Cli::try_parse_from(["x", "--error-rate", "1.5"]).is_err());
        assert!(Cli::try_parse_from(["x", "--create-seconds", "-1"]).is_err());
        assert!(Cli::try_parse_from(["x", "--create-seconds", "inf"]).is_err());
    }

    #[test]
    fn debug_never_shows_keys() {
        let c = SimConfig::for_tests(&["super-secret-key"]);
        let shown = format!("{c:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains(&key_fingerprint("super-secret-key")));
    }

    #[test]
    fn faults_json_is_camel_case_and_partial() {
        let f: Faults = serde_json::from_str(r#"{"errorRate": 0.5}"#).unwrap();
        assert_eq!(f.error_rate, 0.5);
        assert_eq!(f.latency_ms, 0);
        let v = serde_json::to_value(Faults::default()).unwrap();
        assert!(v.get("dropAfterWriteRate").is_some());
        assert!(
            Faults {
                error_rate: 2.0,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }
}
