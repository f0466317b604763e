//! The gate every `/api/v1` request passes: latency, authentication, rate limiting, request
//! counting and the injected faults. Control endpoints (`/_sim`) bypass it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Sim;
use super::faults::{self, ConnKill};
use super::rate_limit::Decision;
use super::reply::SimError;

pub const API_PREFIX: &str = "/api/v1";

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// `"GET /computes/{id}"`: the method and the route template under `/api/v1`.
fn route_label(req: &Request) -> String {
    let path = match req.extensions().get::<MatchedPath>() {
        Some(m) => m
            .as_str()
            .strip_prefix(API_PREFIX)
            .unwrap_or(m.as_str())
            .to_string(),
        None => "(unmatched)".to_string(),
    };
    format!("{} {path}", req.method())
}

/// The key of an `Authorization: Bearer KEY` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    let key = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

fn set_rate_headers(resp: &mut Response, d: &Decision) {
    let h = resp.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(d.reset));
    if !d.allowed {
        h.insert(header::RETRY_AFTER, HeaderValue::from(d.retry_after));
    }
}

pub async fn gate(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path != API_PREFIX && !path.starts_with("/api/v1/") {
        return next.run(req).await;
    }
    let faults = sim.faults.read().clone();
    // Latency is split around the handler, like a network's two directions: half of it passes
    // after a write was applied, the window in which a lost answer or a crash hurts most.
    let (latency_in, latency_out) = (
        faults.latency_ms / 2,
        faults.latency_ms - faults.latency_ms / 2,
    );
    if latency_in > 0 {
        tokio::time::sleep(Duration::from_millis(latency_in)).await;
    }
    let route = route_label(&req);
    if req.uri().path() == "/api/v1/health" {
        sim.limiter.lock().count_route(route);
        return next.run(req).await;
    }

    let Some(fp) = bearer(req.headers()).and_then(|k| sim.keys.get(k)).cloned() else {
        return SimError::unauthorized(
            "missing or unknown API key: send the header Authorization: Bearer <api key>",
        )
        .into_response();
    };

    let decision = {
        let mut limiter = sim.limiter.lock();
        let d = limiter.check(&fp, unix_now());
        if d.allowed {
            limiter.count_route(route);
        }
        d
    };
    if !decision.allowed {
        let mut resp = SimError::too_many(format!(
            "rate limit of {} exceeded; retry after {} s",
            decision.describe, decision.retry_after
        ))
        .into_response();
        set_rate_headers(&mut resp, &decision);
        return resp;
    }

    let method = req.method().clone();
    let mutating = matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let mut resp = if faults::roll(faults.error_rate) {
        SimError::internal("injected fault: internal server error (nothing was applied)")
            .into_response()
    } else if method == Method::GET && faults::roll(faults.malformed_rate) {
        faults::malformed_response()
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
    set_rate_headers(&mut resp, &decision);
    if latency_out > 0 {
        tokio::time::sleep(Duration::from_millis(latency_out)).await;
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
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
}
