//! `stratus sim --cloud cloudapi --dialect cloudapi|cloudplatform`: a local CloudAPI sandbox.
//!
//! A real HTTP server that speaks CloudAPI under `/v1`, in either dialect of the contract in
//! `reference/cloudapi/README.md`: the dialect's list envelope, paging and error body; API keys
//! and, for `POST /v1/keys` only, dashboard session tokens; projects, deployments whose builds
//! take time and fail for `fail-*` commits, rollbacks without a rebuild, build logs (a list and
//! a server-sent live tail), keys issued once and revoked, scoped tokens, users and usage;
//! `Idempotency-Key` on POST; and the dialect's rate limits with their 429s and headers. The
//! framework in `crate::sim` adds what every sandbox shares: the gate (latency, auth, faults),
//! the state file, `/_sim` (stats, faults, save) and the server. See docs/sim-cloudapi.md.
//!
//! It keeps its own model of the API (`wire`), written from the reference: never a client's
//! types.
//!
//! Layout: `cloud` (how CloudAPI plugs into the framework: credentials, its stats), `config`
//! and `args` (its settings and flags), `limits` (its rate limits on the framework's limiter),
//! `state` (projects, deployments and logs, keys and tokens, idempotency, usage), `routes` (API
//! handlers and the credential/limit/usage extractor), `page` (cursor paging), `control` (its
//! `/_sim` endpoints), `handle` (its `SimHandle` methods), `reply` (envelopes), `wire` (the
//! model).

mod args;
mod cloud;
mod config;
mod control;
mod handle;
mod limits;
pub mod page;
mod reply;
mod routes;
mod state;
pub mod wire;

use std::net::SocketAddr;

pub use crate::sim::{Faults, KeyStats, key_fingerprint};
pub use args::CloudApiArgs;
pub use cloud::{API_PREFIX, CloudApi, CloudApiStats};
pub use config::{
    CloudApiSimConfig, DEFAULT_BUILD_TIME, Settings, WorkspaceKey, parse_workspace_key,
};
pub use limits::{
    Budgets, CLOUDAPI_PER_KEY_PER_MINUTE, CLOUDPLATFORM_PER_KEY_PER_MINUTE,
    CLOUDPLATFORM_PER_WORKSPACE_PER_TEN_MINUTES, MaxInWindow, Served429,
};
pub use state::deployments::FAIL_PREFIX;
pub use state::{CreateCounts, DEFAULT_ACCOUNT};
pub use wire::Dialect;

/// CloudAPI's running sandbox, as handlers reach it.
pub type Sim = crate::sim::Sim<CloudApi>;
/// A running CloudAPI sandbox; see `crate::sim::SimHandle` and this module's `handle`.
pub type CloudApiSimHandle = crate::sim::SimHandle<CloudApi>;

/// Starts the sandbox on `listen` (`127.0.0.1:0` picks a free port) and returns at once.
pub async fn start(
    config: CloudApiSimConfig,
    listen: SocketAddr,
) -> anyhow::Result<CloudApiSimHandle> {
    let (cloud, config) = config.split();
    crate::sim::start(cloud, config, listen).await
}

/// `stratus sim --cloud cloudapi`: serves until Ctrl-C or SIGTERM, then saves the state (with
/// `--state-file`) and returns.
pub async fn run(
    common: &crate::sim::CommonArgs,
    args: &CloudApiArgs,
    dialect: Dialect,
) -> anyhow::Result<()> {
    let (cloud, config) = args.config(common, dialect).split();
    crate::sim::run(cloud, config, common.listen).await
}
