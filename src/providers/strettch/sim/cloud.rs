//! How Strettch's sandbox plugs into the framework (`crate::sim::Cloud`): bearer keys under
//! `/api/v1`, errors in Strettch's envelope, its `x-ratelimit-*` headers, and its stats.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::sim::{Cloud, Decision, ErrorReply, KeyStats, RequestStats, Sim, gate};

use super::reply::SimError;
use super::state::{State, Timing};
use super::{control, routes};

/// Where Strettch serves its API, as `https://api.strettch.cloud/api/v1` does.
pub const API_PREFIX: &str = "/api/v1";

/// Strettch's sandbox: the settings its model needs (the rest is in `State`).
#[derive(Debug, Clone)]
pub struct Strettch {
    pub timing: Timing,
    /// Accept records identical to one their zone already has (`--allow-duplicate-records`).
    pub allow_duplicate_records: bool,
}

/// What the sandbox has seen, as `GET /_sim/stats` and `SimHandle::stats` report it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimStats {
    /// Per API key, named by its fingerprint (`sim::key_fingerprint`).
    pub keys: BTreeMap<String, KeyStats>,
    /// All 429 answers.
    pub served_429: u64,
    /// Computes present (including DESTROYING ones).
    pub computes: usize,
    pub domains: usize,
    pub records: usize,
    /// Requests let through, by route template: `"GET /computes/{id}"`.
    pub requests_by_route: BTreeMap<String, u64>,
}

impl Cloud for Strettch {
    type State = State;
    type Stats = SimStats;

    fn name(&self) -> &'static str {
        "Strettch"
    }

    fn api_prefix(&self) -> &'static str {
        API_PREFIX
    }

    fn is_public(&self, path: &str) -> bool {
        path == "/api/v1/health"
    }

    fn api_key<'r>(&self, headers: &'r HeaderMap) -> Option<&'r str> {
        gate::bearer(headers)
    }

    fn how_to_authenticate(&self) -> &'static str {
        "send the header Authorization: Bearer <api key>"
    }

    fn error_response(&self, error: ErrorReply) -> Response {
        SimError::from(error).into_response()
    }

    fn rate_limit_headers(&self, d: &Decision, h: &mut HeaderMap) {
        h.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
        h.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
        h.insert("x-ratelimit-reset", HeaderValue::from(d.reset));
        if !d.allowed {
            h.insert(header::RETRY_AFTER, HeaderValue::from(d.retry_after));
        }
    }

    /// A truncated success envelope.
    fn malformed_response(&self) -> Response {
        let mut resp = (
            StatusCode::OK,
            "{\"success\":true,\"message\":\"Operation successful\",\"data\":[{\"id\":\"1\",\"hostNa",
        )
            .into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }

    fn initial_state(&self, saved: Option<State>) -> State {
        let mut st = match saved {
            Some(mut st) => {
                st.timing = self.timing;
                st.version = 1;
                st
            }
            None => State::new(self.timing),
        };
        st.allow_duplicate_records = self.allow_duplicate_records;
        st
    }

    /// Expired idempotency keys are not worth keeping.
    fn before_save(&self, state: &mut State) {
        state.prune_idempotency(Timestamp::now());
    }

    fn stats(&self, requests: RequestStats, st: &mut State) -> SimStats {
        st.settle_computes(Timestamp::now());
        SimStats {
            keys: requests.keys,
            served_429: requests.served_429,
            computes: st.computes.len(),
            domains: st.domains.len(),
            records: st.record_count(),
            requests_by_route: requests.requests_by_route,
        }
    }

    fn api_routes(&self) -> Router<Arc<Sim<Self>>> {
        routes::router()
    }

    fn control_routes(&self) -> Router<Arc<Sim<Self>>> {
        control::router()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::ErrorKind;

    fn strettch() -> Strettch {
        Strettch {
            timing: Timing::default(),
            allow_duplicate_records: true,
        }
    }

    #[test]
    fn framework_errors_get_strettchs_codes() {
        let cases = [
            (ErrorKind::Unauthorized, 401, "UNAUTHORIZED"),
            (ErrorKind::RateLimited, 429, "TOO_MANY_REQUESTS"),
            (ErrorKind::InjectedFault, 500, "INTERNAL_SERVER_ERROR"),
            (ErrorKind::UnreadableBody, 400, "BAD_REQUEST"),
            (ErrorKind::MalformedJson, 400, "MALFORMED_JSON"),
            (ErrorKind::Invalid, 400, "VALIDATION_ERROR"),
            (ErrorKind::NoSuchRoute, 404, "RESOURCE_NOT_FOUND"),
            (ErrorKind::MethodNotAllowed, 404, "RESOURCE_NOT_FOUND"),
            (ErrorKind::Internal, 500, "INTERNAL_SERVER_ERROR"),
        ];
        for (kind, status, code) in cases {
            let e = SimError::from(ErrorReply::new(kind, "m"));
            assert_eq!((e.status.as_u16(), e.code), (status, code), "{kind:?}");
        }
    }

    #[test]
    fn a_refused_request_says_when_to_retry() {
        let mut d = Decision {
            allowed: true,
            limit: 2,
            remaining: 1,
            reset: 101,
            retry_after: 1,
            describe: String::new(),
        };
        let mut h = HeaderMap::new();
        strettch().rate_limit_headers(&d, &mut h);
        assert_eq!(h["x-ratelimit-remaining"], "1");
        assert!(h.get(header::RETRY_AFTER).is_none());
        d.allowed = false;
        strettch().rate_limit_headers(&d, &mut h);
        assert_eq!(h[header::RETRY_AFTER], "1");
    }

    #[test]
    fn a_loaded_state_takes_this_runs_settings() {
        let mut saved = State::new(Timing::default());
        saved.version = 0;
        saved.last_compute_id = 7;
        let st = strettch().initial_state(Some(saved));
        assert_eq!((st.version, st.last_compute_id), (1, 7));
        assert!(st.allow_duplicate_records);
        assert!(strettch().initial_state(None).allow_duplicate_records);
    }
}
