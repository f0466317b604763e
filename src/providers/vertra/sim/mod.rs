//! `stratus sim --cloud vertra`: a local Vertra Cloud sandbox.
//!
//! A real HTTP server that speaks Vertra's API under `/v1`, as `https://api.vertracloud.app`
//! does, per `api-current.md` (the "G3" reference): the `{"response": …}` and
//! `{"code", "message", "details"}` envelopes and their status codes, bearer keys with scopes,
//! the plan's limits (per minute, per day, deploys per hour, lifecycle calls per app) with their
//! 429 bodies and headers, multipart app creation and code upload, installs that take time,
//! builds that fail, `OPERATION_IN_PROGRESS`, databases with their credentials and safety
//! snapshots, and Enterprise workspaces. The framework in `crate::sim` adds what every sandbox
//! shares: the gate (latency, auth, faults), the state file, `/_sim` (stats, faults, save) and
//! the server. See docs/sim-vertra.md.
//!
//! It keeps its own model of the API (`wire`), written from the reference: never the client's
//! types in `providers::vertra::model`.
//!
//! Layout: `cloud` (how Vertra plugs into the framework, its stats), `config` and `args` (its
//! settings and flags), `plan` and `scopes` (the account's plan and the keys' scopes), `limits`
//! (its rate limits on the framework's limiter), `state` (apps, databases, workspaces),
//! `routes` (API handlers and the budget/scope layer), `control` (its `/_sim` endpoints),
//! `handle` (its `SimHandle` methods), `validate` (field rules), `multipart` and `archive`
//! (request bodies and the ZIPs in them), `reply` (envelopes), `wire` (the model).

mod archive;
mod args;
mod cloud;
mod config;
mod control;
mod handle;
mod limits;
mod multipart;
pub mod plan;
mod reply;
mod routes;
pub mod scopes;
mod state;
mod validate;
pub mod wire;

use std::net::SocketAddr;

pub use crate::sim::{Faults, KeyStats, key_fingerprint};
pub use archive::{FAIL_BUILD, MAX_FILE_BYTES, MIN_ZIP_BYTES, SAMPLE_ZIP_PATH, sample_zip};
pub use args::VertraArgs;
pub use cloud::{API_PREFIX, Vertra, VertraStats};
pub use config::{Settings, SnapshotFailures, VertraSimConfig};
pub use limits::{Budgets, MaxInWindow, Served429};
pub use plan::Plan;
pub use scopes::{KeyScopes, parse_key_scopes};
pub use state::{CreateCounts, SnapshotCounts};

/// Vertra's running sandbox, as handlers reach it.
pub type Sim = crate::sim::Sim<Vertra>;
/// A running Vertra sandbox; see `crate::sim::SimHandle` and this module's `handle`.
pub type VertraSimHandle = crate::sim::SimHandle<Vertra>;

/// Starts the sandbox on `listen` (`127.0.0.1:0` picks a free port) and returns at once.
pub async fn start(config: VertraSimConfig, listen: SocketAddr) -> anyhow::Result<VertraSimHandle> {
    let (cloud, config) = config.split();
    crate::sim::start(cloud, config, listen).await
}

/// `stratus sim --cloud vertra`: serves until Ctrl-C or SIGTERM, then saves the state (with
/// `--state-file`) and returns.
pub async fn run(common: &crate::sim::CommonArgs, args: &VertraArgs) -> anyhow::Result<()> {
    let (cloud, config) = args.config(common).split();
    crate::sim::run(cloud, config, common.listen).await
}
