//! Starting a sandbox: the configuration every cloud shares, the app (the cloud's API behind the
//! gate, plus `/_sim`), the server with its kill-switch listener and state-file saver, and
//! `stratus sim`'s serve-until-signal loop.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::faults::Faults;
use super::handle::SimHandle;
use super::keys::{ApiKeys, key_fingerprint, redacted};
use super::kill_switch::{ConnKill, SimListener};
use super::rate_limit::Limit;
use super::reply::{ErrorKind, ErrorReply};
use super::state_file::StateFile;
use super::stats::Meter;
use super::{Cloud, Sim, control, gate};

/// How every sandbox is configured, whatever the cloud. `Debug` shows key fingerprints, never
/// keys.
#[derive(Clone, Default)]
pub struct Config {
    /// The keys the sandbox accepts; all see the same resources.
    pub api_keys: Vec<String>,
    /// The rate limits, all enforced (every one must have room for a request to be let
    /// through): per key or per group of keys, fixed or rolling windows. Usually the cloud's
    /// documented limits plus any a test adds.
    pub limits: Vec<Limit>,
    /// API key → the group its requests count in for `Scope::Group` limits (a key in no group
    /// counts alone).
    pub key_groups: HashMap<String, String>,
    /// The faults injected from the start.
    pub faults: Faults,
    /// Where to keep the state across restarts; memory only without one.
    pub state_file: Option<PathBuf>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("api_keys", &redacted(&self.api_keys))
            .field("limits", &self.limits)
            .field(
                "key_groups",
                &self
                    .key_groups
                    .iter()
                    .map(|(k, g)| (key_fingerprint(k), g.clone()))
                    .collect::<Vec<_>>(),
            )
            .field("faults", &self.faults)
            .field("state_file", &self.state_file)
            .finish()
    }
}

/// Starts `cloud`'s sandbox on `listen` (`127.0.0.1:0` picks a free port) and returns at once.
/// With a state file, the state is loaded from it first (see `Cloud::initial_state`).
pub async fn start<C: Cloud>(
    cloud: C,
    config: Config,
    listen: SocketAddr,
) -> anyhow::Result<SimHandle<C>> {
    config.faults.validate().map_err(anyhow::Error::msg)?;
    let state_file = config.state_file.clone().map(StateFile::new);
    let saved = match &state_file {
        Some(f) => f.load()?,
        None => None,
    };
    let state = cloud.initial_state(saved);
    let keys = ApiKeys::new(&config.api_keys);
    let meter = Meter::new(
        config.limits.clone(),
        config
            .key_groups
            .iter()
            .map(|(k, g)| (key_fingerprint(k), g.clone()))
            .collect(),
        keys.fingerprints().map(str::to_string),
    );
    let sim = Arc::new(Sim::new(
        cloud,
        keys,
        config.faults.clone(),
        meter,
        state,
        state_file,
    ));

    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the sandbox to {listen}"))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut signal_rx = stop_rx.clone();
    let server = tokio::spawn(
        axum::serve(
            SimListener::new(listener),
            app(sim.clone()).into_make_service_with_connect_info::<ConnKill>(),
        )
        .with_graceful_shutdown(async move {
            let _ = signal_rx.wait_for(|stop| *stop).await;
        })
        .into_future(),
    );
    let saver = sim.state_file().is_some().then(|| {
        let sim = sim.clone();
        tokio::spawn(async move {
            if let Some(file) = sim.state_file() {
                file.autosave(stop_rx, || sim.save()).await;
            }
        })
    });
    tracing::info!(%addr, cloud = ?sim.cloud(), config = ?config, "{} sandbox listening", sim.cloud().name());
    Ok(SimHandle::new(sim, addr, stop_tx, server, saver))
}

/// The whole app: the cloud's API behind the gate (unknown paths too, so they need a key), and
/// the control endpoints, which bypass it.
fn app<C: Cloud>(sim: Arc<Sim<C>>) -> Router {
    let cloud = sim.cloud();
    cloud
        .api_routes()
        .fallback(not_found::<C>)
        .method_not_allowed_fallback(method_not_allowed::<C>)
        .layer(from_fn_with_state(sim.clone(), gate::gate::<C>))
        .merge(control::router(cloud.control_routes()))
        .with_state(sim)
}

async fn not_found<C: Cloud>(State(sim): State<Arc<Sim<C>>>, method: Method, uri: Uri) -> Response {
    sim.cloud().error_response(ErrorReply::new(
        ErrorKind::NoSuchRoute,
        format!("no such route: {method} {}", uri.path()),
    ))
}

pub(super) async fn method_not_allowed<C: Cloud>(
    State(sim): State<Arc<Sim<C>>>,
    method: Method,
    uri: Uri,
) -> Response {
    sim.cloud().error_response(ErrorReply::new(
        ErrorKind::MethodNotAllowed,
        format!(
            "no such route: {method} {} (the path exists with other methods)",
            uri.path()
        ),
    ))
}

/// `stratus sim`: serves `cloud`'s sandbox until Ctrl-C or SIGTERM, then saves the state (with
/// a state file) and returns.
pub async fn run<C: Cloud>(cloud: C, config: Config, listen: SocketAddr) -> anyhow::Result<()> {
    if config.api_keys.iter().all(|k| k.trim().is_empty()) {
        anyhow::bail!(
            "the sandbox needs at least one API key: pass --api-key KEY or set STRATUS_SIM_API_KEYS"
        );
    }
    let name = cloud.name();
    let handle = start(cloud, config, listen).await?;
    eprintln!(
        "{name} sandbox listening on {} (control endpoints under http://{}{})",
        handle.base_url(),
        handle.addr(),
        control::CONTROL_PREFIX
    );
    shutdown_signal().await;
    eprintln!("{name} sandbox shutting down");
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
