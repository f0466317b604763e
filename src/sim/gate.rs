//! The gate every API request passes, for every cloud: latency, authentication, rate limiting,
//! request counting and the injected faults. Requests outside the cloud's API prefix (`/_sim`)
//! pass straight through.
//!
//! The order matters and tests rely on it: half the latency; a public path (health) is counted
//! and served, nothing else; then the key (401 without a known one), the rate limit (429, not
//! counted as a request), then one of: an injected 500 (nothing applied), a malformed GET
//! answer, or the handler, after which a write may lose its connection. Every answer to an
//! authenticated request carries the cloud's rate-limit headers; the other half of the latency
//! comes last.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;

use super::keys::key_fingerprint;
use super::kill_switch::ConnKill;
use super::reply::{ErrorKind, ErrorReply};
use super::stats::WriteRecord;
use super::{Cloud, Sim, faults};

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// `"GET /computes/{id}"`: the method and the route template under `prefix`.
fn route_label(req: &Request, prefix: &str) -> String {
    let path = match req.extensions().get::<MatchedPath>() {
        Some(m) => m.as_str().strip_prefix(prefix).unwrap_or(m.as_str()),
        None => "(unmatched)",
    };
    format!("{} {path}", req.method())
}

/// True if `path` is `prefix` or below it.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The key of an `Authorization: Bearer KEY` header, for clouds that authenticate that way.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    let key = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

/// The gate, as an axum middleware: `from_fn_with_state(sim, gate::<C>)`.
pub async fn gate<C: Cloud>(State(sim): State<Arc<Sim<C>>>, req: Request, next: Next) -> Response {
    let cloud = sim.cloud();
    let prefix = cloud.api_prefix();
    if !under(req.uri().path(), prefix) {
        return next.run(req).await;
    }
    let faults = sim.faults();
    let (latency_in, latency_out) = faults.latency_halves();
    if !latency_in.is_zero() {
        tokio::time::sleep(latency_in).await;
    }
    let route = route_label(&req, prefix);
    if cloud.is_public(req.uri().path()) {
        sim.meter().count_route(route);
        return next.run(req).await;
    }

    let Some(fp) = cloud.api_key(req.headers()).and_then(|k| {
        sim.fingerprint_of(k)
            .or_else(|| C::accepts_key(&sim, k).then(|| key_fingerprint(k)))
    }) else {
        return cloud.unauthorized_response(
            req.headers(),
            ErrorReply::new(
                ErrorKind::Unauthorized,
                format!(
                    "missing or unknown API key: {}",
                    cloud.how_to_authenticate()
                ),
            ),
        );
    };

    let mutating = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let decision = {
        let mut meter = sim.meter();
        let now = unix_now();
        let d = meter.check(&fp, now);
        if d.allowed {
            meter.count_route(route);
            if mutating {
                meter.log_write(WriteRecord {
                    at: now,
                    method: req.method().to_string(),
                    path: req.uri().path().to_string(),
                });
            }
        }
        d
    };
    if !decision.allowed {
        let mut resp = cloud.error_response(ErrorReply::new(
            ErrorKind::RateLimited,
            format!(
                "rate limit of {} exceeded; retry after {} s",
                decision.describe, decision.retry_after
            ),
        ));
        cloud.rate_limit_headers(&decision, resp.headers_mut());
        return resp;
    }

    let method = req.method().clone();
    let mut resp = if faults::roll(faults.error_rate) {
        cloud.error_response(ErrorReply::new(
            ErrorKind::InjectedFault,
            "injected fault: internal server error (nothing was applied)",
        ))
    } else if method == Method::GET && faults::roll(faults.malformed_rate) {
        cloud.malformed_response()
    } else {
        let kill = req
            .extensions()
            .get::<ConnectInfo<ConnKill>>()
            .map(|c| c.0.clone());
        let resp = next.run(req).await;
        if mutating
            && faults::roll(faults.drop_after_write_rate)
            && let Some(kill) = kill
        {
            tracing::debug!("sandbox drops the connection after applying the request");
            kill.trigger();
        }
        resp
    };
    cloud.rate_limit_headers(&decision, resp.headers_mut());
    if !latency_out.is_zero() {
        tokio::time::sleep(latency_out).await;
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_takes_the_key_of_a_bearer_header_only() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc "),
        );
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn a_path_is_under_a_prefix_only_at_a_segment_boundary() {
        assert!(under("/api/v1", "/api/v1"));
        assert!(under("/api/v1/computes", "/api/v1"));
        assert!(!under("/api/v10", "/api/v1"));
        assert!(!under("/_sim/stats", "/api/v1"));
    }
}
