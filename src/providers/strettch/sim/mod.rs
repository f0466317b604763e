//! `stratus sim` (`--cloud strettch`, the default): a local Strettch Cloud sandbox.
//!
//! A real HTTP server that speaks the documented Strettch API under `/api/v1` (computes,
//! catalog, and the DNS model of docs/strettch-dns.md) with its envelope, error codes, bearer
//! auth, per-key rate limit, `Idempotency-Key` semantics and asynchronous lifecycles. The
//! framework in `crate::sim` adds what every sandbox shares: the gate (latency, auth, rate
//! limit, faults), the state file, `/_sim` (stats, faults, save) and the server. See
//! docs/sim.md.
//!
//! Layout: `cloud` (how Strettch plugs into the framework, and its stats), `config` and `args`
//! (its settings and flags), `state` (resources, lazy lifecycles, idempotency; `state::dns`
//! for domains and records), `routes` (API handlers), `control` (its own `/_sim` endpoints),
//! `handle` (its `SimHandle` methods), `validate` (pure rules), `catalog`, `reply`
//! (envelopes), `wire` (the sandbox's own model of the API).

mod args;
mod catalog;
mod cloud;
mod config;
mod control;
mod handle;
mod reply;
mod routes;
mod state;
mod validate;
pub mod wire;

use std::net::SocketAddr;

pub use crate::sim::{Faults, KeyStats, key_fingerprint};
pub use args::StrettchArgs;
pub use cloud::{SimStats, Strettch};
pub use config::SimConfig;
pub use state::RecordGroup;

/// Strettch's running sandbox, as handlers reach it.
pub type Sim = crate::sim::Sim<Strettch>;
/// A running Strettch sandbox; see `crate::sim::SimHandle` and this module's `handle`.
pub type SimHandle = crate::sim::SimHandle<Strettch>;

/// Starts the sandbox on `listen` (`127.0.0.1:0` picks a free port) and returns at once.
pub async fn start(config: SimConfig, listen: SocketAddr) -> anyhow::Result<SimHandle> {
    let (cloud, config) = config.split();
    crate::sim::start(cloud, config, listen).await
}

/// `stratus sim --cloud strettch`: serves until Ctrl-C or SIGTERM, then saves the state (with
/// `--state-file`) and returns.
pub async fn run(common: &crate::sim::CommonArgs, args: &StrettchArgs) -> anyhow::Result<()> {
    let (cloud, config) = args.config(common).split();
    crate::sim::run(cloud, config, common.listen).await
}
