//! The sandbox framework behind `stratus sim`: what every cloud's sandbox shares, whatever API it
//! imitates. See docs/sim.md.
//!
//! Shared here: the common flags ([`args::CommonArgs`]), the per-request gate (latency,
//! authentication, rate limiting, request counting, injected faults), the rate limiter (fixed and
//! rolling windows, per key or per group of keys), the connection kill switch, the state file,
//! the `/_sim` control endpoints (stats, faults, save), and the server with its handle.
//!
//! Each cloud keeps its own model of its API: its wire types, routes, validation, state and
//! envelopes live with the provider (Strettch's in `crate::providers::strettch::sim`). A sandbox
//! must never share the client's serde types, or a field the client gets wrong is got wrong on
//! both sides and no test sees it. A cloud plugs in by implementing [`Cloud`]; nothing here
//! knows any cloud (`crate::providers` is where `--cloud` picks one).

pub mod args;
pub mod control;
pub mod faults;
pub mod gate;
pub mod handle;
pub mod keys;
pub mod kill_switch;
pub mod rate_limit;
pub mod reply;
pub mod sandbox;
pub mod server;
pub mod state_file;
pub mod stats;
#[cfg(test)]
mod tests;

use std::fmt::Debug;
use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use args::CommonArgs;
pub use control::CONTROL_PREFIX;
pub use faults::Faults;
pub use handle::SimHandle;
pub use keys::key_fingerprint;
pub use rate_limit::Decision;
pub use reply::{ErrorKind, ErrorReply};
pub use sandbox::Sim;
pub use server::{Config, run, start};
pub use stats::{KeyStats, RequestStats};

/// One cloud's sandbox, as the framework drives it. The framework owns the server, the gate,
/// the limiter, the faults, the state file and `/_sim`; the cloud says how its API
/// authenticates, what its answers look like, and serves its routes.
///
/// Handlers get the running sandbox as `axum::extract::State<Arc<Sim<Self>>>`: the cloud's
/// state is `sim.state()`, and a handler that changed it calls `sim.mutated()` so the state
/// file is written. A cloud adds its own `SimHandle` methods with an inherent
/// `impl SimHandle<ItsCloud>` in its module.
pub trait Cloud: Debug + Send + Sync + Sized + 'static {
    /// The cloud's resources as the sandbox keeps them, and what `--state-file` holds. Written
    /// from the cloud's documents: never the client's types.
    type State: Serialize + DeserializeOwned + Send + 'static;
    /// What `GET /_sim/stats` and `SimHandle::stats` answer.
    type Stats: Serialize + Send + 'static;

    /// The cloud's name in logs and the start-up line: "Strettch".
    fn name(&self) -> &'static str;

    /// Where the API is served, e.g. `/api/v1`: requests under it pass the gate; others
    /// (`/_sim`) do not.
    fn api_prefix(&self) -> &'static str;

    /// A path under the API prefix that needs no key and is neither rate limited nor faulted
    /// (a health check); its requests are still counted by route and delayed by half the
    /// latency.
    fn is_public(&self, _path: &str) -> bool {
        false
    }

    /// The API key a request presents (e.g. [`gate::bearer`]), if any; the gate looks it up
    /// among the accepted keys.
    fn api_key<'r>(&self, headers: &'r HeaderMap) -> Option<&'r str>;

    /// Whether `key`, none of the keys the sandbox was started with, is a credential the cloud
    /// accepts now: one its own API issued (a created API key), or another kind of credential
    /// that some routes take (a dashboard session token). The gate then lets the request
    /// through under `key_fingerprint(key)`, and the cloud's routes decide what it may do.
    /// Default: no other key.
    fn accepts_key(_sim: &Sim<Self>, _key: &str) -> bool {
        false
    }

    /// What a client must send, for the 401 message: "send the header Authorization: Bearer
    /// <api key>".
    fn how_to_authenticate(&self) -> &'static str;

    /// The cloud's error answer for an error the framework found.
    fn error_response(&self, error: ErrorReply) -> Response;

    /// The answer to an API request without an accepted key (an [`ErrorKind::Unauthorized`]
    /// error), given the request's headers: by default [`Cloud::error_response`]. A cloud that
    /// tells a missing key from an unknown one (different codes) looks at the headers.
    fn unauthorized_response(&self, _headers: &HeaderMap, error: ErrorReply) -> Response {
        self.error_response(error)
    }

    /// Adds the cloud's rate-limit headers to an answer to an authenticated request (a 429 or
    /// an injected fault included).
    fn rate_limit_headers(&self, decision: &Decision, headers: &mut HeaderMap);

    /// A `200` whose body is not JSON, as `--malformed-rate` sends it: a truncated answer that
    /// starts like the cloud's own.
    fn malformed_response(&self) -> Response;

    /// The state to serve: `saved` is what the state file held (`None`: no state file, or a
    /// missing or empty one). Settings that are not persisted are set here.
    fn initial_state(&self, saved: Option<Self::State>) -> Self::State;

    /// Called under the state lock just before the state file is written, e.g. to forget
    /// expired entries.
    fn before_save(&self, _state: &mut Self::State) {}

    /// The stats: the framework's request counters plus whatever the cloud counts.
    fn stats(&self, requests: RequestStats, state: &mut Self::State) -> Self::Stats;

    /// Called when the stats are reset (`POST /_sim/stats/reset`, `SimHandle::reset_stats`),
    /// after the framework zeroed its own counters: a cloud that counts more zeroes its
    /// counters here.
    fn reset_stats(&self, _state: &mut Self::State) {}

    /// The API's routes, with full paths under [`Cloud::api_prefix`]. No fallback: the
    /// framework answers unknown paths and methods (through [`Cloud::error_response`]).
    fn api_routes(&self) -> Router<Arc<Sim<Self>>>;

    /// The cloud's own control routes, with full paths under [`CONTROL_PREFIX`] (e.g. seeding
    /// resources, forcing a status). No fallback, and none of the framework's paths.
    fn control_routes(&self) -> Router<Arc<Sim<Self>>> {
        Router::new()
    }
}
