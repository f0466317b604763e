//! How Vertra's sandbox plugs into the framework (`crate::sim::Cloud`): bearer keys under
//! `/v1`, `401 AUTH_TOKEN_MISSING` apart from `401 API_KEY_INVALID`, errors in Vertra's
//! envelope, both budgets' headers on every answer to a key, and its stats.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use parking_lot::{Mutex, MutexGuard, RwLock};
use serde::{Deserialize, Serialize};

use crate::sim::{Cloud, Decision, ErrorReply, KeyStats, RequestStats, Sim, gate};

use super::config::Settings;
use super::limits::{AccountCheck, Budgets, MaxInWindow, Meter, Served429};
use super::plan::Plan;
use super::reply::ApiError;
use super::scopes::Scopes;
use super::state::{CreateCounts, SnapshotCounts, State};
use super::wire::codes;
use super::{control, routes};

/// Where Vertra serves its API, as `https://api.vertracloud.app/v1` does.
pub const API_PREFIX: &str = "/v1";

/// Now, since the unix epoch.
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// What the cloud keeps outside the persisted state: settings and limit counters.
struct Shared {
    settings: RwLock<Settings>,
    meter: Mutex<Meter>,
}

/// Vertra's sandbox. Cheap to clone (the settings and limiters are shared).
#[derive(Clone)]
pub struct Vertra {
    shared: Arc<Shared>,
}

impl fmt::Debug for Vertra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vertra")
            .field("settings", &*self.shared.settings.read())
            .finish()
    }
}

impl Vertra {
    /// `fingerprints`: the accepted keys', listed in the stats from the start.
    pub fn new(settings: Settings, fingerprints: Vec<String>) -> Self {
        let meter = Meter::new(settings.budgets(), fingerprints);
        Vertra {
            shared: Arc::new(Shared {
                settings: RwLock::new(settings),
                meter: Mutex::new(meter),
            }),
        }
    }

    pub fn settings(&self) -> Settings {
        self.shared.settings.read().clone()
    }

    pub fn plan(&self) -> Plan {
        self.shared.settings.read().plan
    }

    pub fn install_delay(&self) -> Duration {
        self.shared.settings.read().install_delay
    }

    /// Changes the settings; budgets that changed start with empty windows.
    pub fn update_settings(&self, change: impl FnOnce(&mut Settings)) -> Settings {
        let mut s = self.shared.settings.write();
        change(&mut s);
        self.shared.meter.lock().set_budgets(s.budgets());
        s.clone()
    }

    /// The limiters. Lock after the state, never before.
    pub fn meter(&self) -> MutexGuard<'_, Meter> {
        self.shared.meter.lock()
    }

    /// True if key `fp` has `scope`.
    pub fn has_scope(&self, fp: &str, scope: &str) -> bool {
        self.shared
            .settings
            .read()
            .key_scopes
            .get(fp)
            .is_none_or(|s: &Scopes| s.contains(scope))
    }

    /// Whether the safety snapshot of the delete being made now fails.
    pub fn snapshot_fails(&self) -> bool {
        self.shared.settings.write().snapshot_failures.take()
    }
}

fn header_value(n: u64) -> HeaderValue {
    HeaderValue::from(n)
}

/// `x-ratelimit-*` (the minute) and `x-quota-*` (the day), resets in seconds from now.
pub fn insert_budget_headers(check: &AccountCheck, h: &mut HeaderMap) {
    let (m, d) = (check.minute, check.day);
    h.insert("x-ratelimit-limit", header_value(m.limit));
    h.insert("x-ratelimit-remaining", header_value(m.remaining));
    h.insert("x-ratelimit-reset", header_value(m.reset));
    h.insert("x-quota-limit", header_value(d.limit));
    h.insert("x-quota-remaining", header_value(d.remaining));
    h.insert("x-quota-reset", header_value(d.reset));
}

/// What `GET /_sim/stats` and `SimHandle::stats` report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VertraStats {
    /// Per API key, by fingerprint (`sim::key_fingerprint`): `requests` let through the
    /// account's per-minute and per-day budgets, `served429` every 429 the key got.
    pub keys: BTreeMap<String, KeyStats>,
    /// Every 429 answered.
    pub served_429: u64,
    pub served_429_by_limit: Served429,
    /// The most requests let through in any one window of each limit.
    pub max_in_window: MaxInWindow,
    /// Authenticated requests, by method and route template under `/v1`.
    pub requests_by_route: BTreeMap<String, u64>,
    pub plan: Plan,
    pub budgets: Budgets,
    pub apps: usize,
    pub databases: usize,
    /// Live (not deleted) workspaces.
    pub workspaces: usize,
    /// Successful creates per kind since the start or the last stats reset.
    pub creates: CreateCounts,
    /// Database-delete safety snapshots, taken and failed.
    pub safety_snapshots: SnapshotCounts,
}

impl Cloud for Vertra {
    type State = State;
    type Stats = VertraStats;

    fn name(&self) -> &'static str {
        "Vertra"
    }

    fn api_prefix(&self) -> &'static str {
        API_PREFIX
    }

    fn api_key<'r>(&self, headers: &'r HeaderMap) -> Option<&'r str> {
        gate::bearer(headers)
    }

    fn how_to_authenticate(&self) -> &'static str {
        "send the header Authorization: Bearer <api key>"
    }

    fn error_response(&self, error: ErrorReply) -> Response {
        ApiError::from(error).into_response()
    }

    fn unauthorized_response(&self, headers: &HeaderMap, error: ErrorReply) -> Response {
        let code = if gate::bearer(headers).is_some() {
            codes::API_KEY_INVALID
        } else {
            codes::AUTH_TOKEN_MISSING
        };
        ApiError::new(StatusCode::UNAUTHORIZED, code, error.message).into_response()
    }

    /// The budgets' headers, for answers that never reached them (an injected fault, an unknown
    /// route); answers that did carry them already.
    fn rate_limit_headers(&self, _framework: &Decision, h: &mut HeaderMap) {
        if !h.contains_key("x-ratelimit-limit") {
            let check = self.meter().peek_account(unix_now());
            insert_budget_headers(&check, h);
        }
    }

    /// A truncated answer.
    fn malformed_response(&self) -> Response {
        let mut resp = (StatusCode::OK, "{\"response\":{\"id\":\"a1b2").into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }

    fn initial_state(&self, saved: Option<State>) -> State {
        let mut st = saved.unwrap_or_else(|| State::new(Timestamp::now()));
        st.version = 1;
        st
    }

    fn stats(&self, requests: RequestStats, st: &mut State) -> VertraStats {
        let limits = self.meter().stats();
        let settings = self.settings();
        VertraStats {
            keys: limits.keys,
            served_429: requests.served_429 + limits.served_429.total(),
            served_429_by_limit: limits.served_429,
            max_in_window: limits.max_in_window,
            requests_by_route: requests.requests_by_route,
            plan: settings.plan,
            budgets: settings.budgets(),
            apps: st.apps.len(),
            databases: st.databases.len(),
            workspaces: st
                .workspaces
                .values()
                .filter(|w| w.deleted_at.is_none())
                .count(),
            creates: st.creates,
            safety_snapshots: st.snapshots,
        }
    }

    fn reset_stats(&self, st: &mut State) {
        self.meter().reset_stats();
        st.creates = CreateCounts::default();
        st.snapshots = SnapshotCounts::default();
    }

    fn api_routes(&self) -> Router<Arc<Sim<Self>>> {
        routes::router(self.clone())
    }

    fn control_routes(&self) -> Router<Arc<Sim<Self>>> {
        control::router()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::vertra::sim::VertraSimConfig;

    #[tokio::test]
    async fn a_missing_key_and_an_unknown_one_get_their_own_codes() {
        let (v, _) = VertraSimConfig::for_tests(&["k"]).split();
        let code = |h: &HeaderMap| {
            let r = v.unauthorized_response(
                h,
                ErrorReply::new(crate::sim::ErrorKind::Unauthorized, "m"),
            );
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            r
        };
        let body = |r: Response| async move {
            let b = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
            serde_json::from_slice::<serde_json::Value>(&b).unwrap()["code"].clone()
        };
        let mut h = HeaderMap::new();
        assert_eq!(body(code(&h)).await, codes::AUTH_TOKEN_MISSING);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(body(code(&h)).await, codes::AUTH_TOKEN_MISSING);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert_eq!(body(code(&h)).await, codes::API_KEY_INVALID);
    }

    #[test]
    fn answers_that_missed_the_budgets_still_get_their_headers() {
        let (v, _) = VertraSimConfig::for_tests(&["k"]).split();
        let d = Decision {
            allowed: true,
            limit: 1,
            remaining: 1,
            reset: 1,
            retry_after: 1,
            describe: String::new(),
        };
        let mut h = HeaderMap::new();
        v.rate_limit_headers(&d, &mut h);
        assert_eq!(h["x-ratelimit-limit"], "300");
        assert_eq!(h["x-ratelimit-remaining"], "300");
        assert_eq!(h["x-quota-limit"], "864000");
        h.insert("x-ratelimit-limit", HeaderValue::from_static("7"));
        v.rate_limit_headers(&d, &mut h);
        assert_eq!(
            h["x-ratelimit-limit"], "7",
            "headers already there are kept"
        );
    }
}
