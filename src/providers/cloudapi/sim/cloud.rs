//! How CloudAPI's sandbox plugs into the framework (`crate::sim::Cloud`): bearer credentials
//! under `/v1` — the configured API keys, the keys the API issued, and dashboard session
//! tokens — errors in the dialect's body, and its stats.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::{Mutex, MutexGuard, RwLock};
use serde::{Deserialize, Serialize};

use crate::sim::{Cloud, Decision, ErrorReply, KeyStats, RequestStats, Sim, gate};

use super::config::Settings;
use super::limits::{Budgets, MaxInWindow, Meter, Served429};
use super::reply::ApiError;
use super::state::{CreateCounts, State, sha256_hex};
use super::wire::Dialect;
use super::{control, routes};

/// Where CloudAPI serves its API, as `https://api.cloudapi.dev/v1` does.
pub const API_PREFIX: &str = "/v1";

/// Now, since the unix epoch.
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API key (configured or issued by `POST /v1/keys`) of `account`: the workspace in
    /// `cloudplatform`, the one account in `cloudapi`.
    ApiKey { fp: String, account: String },
    /// A dashboard session token.
    Session { fp: String },
}

impl Credential {
    pub fn fp(&self) -> &str {
        match self {
            Credential::ApiKey { fp, .. } | Credential::Session { fp } => fp,
        }
    }
}

struct Shared {
    dialect: Dialect,
    settings: RwLock<Settings>,
    meter: Mutex<Meter>,
    /// SHA-256 of each configured key → its account.
    keys: HashMap<String, String>,
    /// SHA-256 of each session token.
    sessions: HashSet<String>,
}

/// CloudAPI's sandbox, in one dialect. Cheap to clone (everything is shared).
#[derive(Clone)]
pub struct CloudApi {
    shared: Arc<Shared>,
}

impl fmt::Debug for CloudApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudApi")
            .field("dialect", &self.shared.dialect)
            .field("settings", &*self.shared.settings.read())
            .field("session_tokens", &self.shared.sessions.len())
            .finish()
    }
}

impl CloudApi {
    /// `keys`: the configured API keys with their accounts; `sessions`: the session tokens.
    pub fn new(
        dialect: Dialect,
        settings: Settings,
        keys: Vec<(String, String)>,
        sessions: Vec<String>,
    ) -> Self {
        let fps = keys
            .iter()
            .map(|(k, _)| crate::sim::key_fingerprint(k))
            .collect::<Vec<_>>();
        let meter = Meter::new(dialect, settings.budgets(dialect), fps);
        CloudApi {
            shared: Arc::new(Shared {
                dialect,
                settings: RwLock::new(settings),
                meter: Mutex::new(meter),
                keys: keys.into_iter().map(|(k, a)| (sha256_hex(&k), a)).collect(),
                sessions: sessions.iter().map(|s| sha256_hex(s)).collect(),
            }),
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.shared.dialect
    }

    pub fn settings(&self) -> Settings {
        self.shared.settings.read().clone()
    }

    /// Changes the settings; limits that changed start with empty windows.
    pub fn update_settings(&self, change: impl FnOnce(&mut Settings)) -> Settings {
        let mut s = self.shared.settings.write();
        change(&mut s);
        self.shared
            .meter
            .lock()
            .set_budgets(s.budgets(self.shared.dialect), false);
        s.clone()
    }

    /// The limiters. Lock after the state, never before.
    pub fn meter(&self) -> MutexGuard<'_, Meter> {
        self.shared.meter.lock()
    }

    /// Who `secret` is: a configured key, a session token, or a live issued key (in `st`).
    pub fn credential(&self, secret: &str, st: &State) -> Option<Credential> {
        let h = sha256_hex(secret);
        let fp = || crate::sim::key_fingerprint(secret);
        if let Some(account) = self.shared.keys.get(&h) {
            return Some(Credential::ApiKey {
                fp: fp(),
                account: account.clone(),
            });
        }
        if self.shared.sessions.contains(&h) {
            return Some(Credential::Session { fp: fp() });
        }
        st.active_key(secret).map(|k| Credential::ApiKey {
            fp: k.fingerprint.clone(),
            account: k.workspace.clone(),
        })
    }

    /// Why the build of `commit` fails, if it does.
    pub fn failure_of(&self, commit: &str) -> Option<String> {
        if commit.starts_with(super::state::deployments::FAIL_PREFIX) {
            Some(format!(
                "the build step exited with status 1 (the sandbox fails every commit whose name \
                 starts with {:?})",
                super::state::deployments::FAIL_PREFIX
            ))
        } else if self.shared.settings.read().fail_commits.contains(commit) {
            Some(
                "the build step exited with status 1 (the sandbox was told to fail this commit)"
                    .into(),
            )
        } else {
            None
        }
    }
}

/// What `GET /_sim/stats` and `SimHandle::stats` report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudApiStats {
    pub dialect: Dialect,
    /// Per credential, by fingerprint (`sim::key_fingerprint`): `requests` let through the
    /// limits, `served429` every 429 it got.
    pub keys: BTreeMap<String, KeyStats>,
    /// Every 429 answered.
    pub served_429: u64,
    pub served_429_by_limit: Served429,
    /// The most requests let through in any one window of each limit.
    pub max_in_window: MaxInWindow,
    pub budgets: Budgets,
    /// Requests that passed the gate, by method and route template under `/v1`.
    pub requests_by_route: BTreeMap<String, u64>,
    pub projects: usize,
    pub deployments: usize,
    /// Builds started since the start or the last stats reset (a rollback starts none).
    pub builds: u64,
    /// Issued keys that still work.
    pub active_keys: usize,
    pub tokens: usize,
    /// Successful creates per kind since the start or the last stats reset.
    pub creates: CreateCounts,
}

impl Cloud for CloudApi {
    type State = State;
    type Stats = CloudApiStats;

    fn name(&self) -> &'static str {
        "CloudAPI"
    }

    fn api_prefix(&self) -> &'static str {
        API_PREFIX
    }

    fn api_key<'r>(&self, headers: &'r HeaderMap) -> Option<&'r str> {
        gate::bearer(headers)
    }

    /// Keys the API issued (until revoked) and session tokens.
    fn accepts_key(sim: &Sim<Self>, key: &str) -> bool {
        let st = sim.state();
        sim.cloud().credential(key, &st).is_some()
    }

    fn how_to_authenticate(&self) -> &'static str {
        "send the header Authorization: Bearer <api key>"
    }

    fn error_response(&self, error: ErrorReply) -> Response {
        ApiError::from(error).render(self.dialect())
    }

    /// `X-RateLimit-*` are written by the routes' own limiter (`routes`), which knows the key;
    /// answers that never reached it (an injected fault, an unknown route) carry none.
    fn rate_limit_headers(&self, _framework: &Decision, _h: &mut HeaderMap) {}

    /// A truncated list.
    fn malformed_response(&self) -> Response {
        let mut resp = (StatusCode::OK, "{\"data\":[{\"id\":\"proj_8f").into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }

    fn initial_state(&self, saved: Option<State>) -> State {
        let mut st = saved.unwrap_or_default();
        st.version = 1;
        st
    }

    fn stats(&self, requests: RequestStats, st: &mut State) -> CloudApiStats {
        st.settle(jiff::Timestamp::now());
        let meter = self.meter();
        let served = meter.served_429();
        CloudApiStats {
            dialect: self.dialect(),
            keys: meter.key_stats(),
            served_429: requests.served_429 + served.total(),
            served_429_by_limit: served,
            max_in_window: meter.max_in_window(),
            budgets: meter.budgets(),
            requests_by_route: requests.requests_by_route,
            projects: st.projects.len(),
            deployments: st.deployments.len(),
            builds: st.builds,
            active_keys: st
                .keys
                .values()
                .filter(|k| k.revoked_at.is_none() && !k.project_deleted)
                .count(),
            tokens: st.tokens.len(),
            creates: st.creates,
        }
    }

    fn reset_stats(&self, st: &mut State) {
        self.meter().reset_stats();
        st.creates = CreateCounts::default();
        st.builds = 0;
    }

    fn api_routes(&self) -> Router<Arc<Sim<Self>>> {
        routes::router(self.clone())
    }

    fn control_routes(&self) -> Router<Arc<Sim<Self>>> {
        control::router(self.dialect())
    }
}
