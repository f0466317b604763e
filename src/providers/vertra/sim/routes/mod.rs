//! The `/v1` routes, and what every one of them passes first: the account's budgets
//! (per-minute and per-day, with their headers on every answer) and the key's scope.

mod account;
mod apps;
mod databases;
mod network;
mod workspaces;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, MatchedPath, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::sim::{gate, key_fingerprint};

use super::Sim;
use super::archive::MAX_FILE_BYTES;
use super::cloud::{Vertra, insert_budget_headers, unix_now};
use super::limits::{AccountCheck, Refused};
use super::reply::ApiError;
use super::scopes;
use super::wire::codes;

pub type Answer = Result<Response, ApiError>;

/// The largest multipart body read: the largest file plus room for the form's fields.
pub const MAX_MULTIPART_BYTES: usize = MAX_FILE_BYTES + 1024 * 1024;

/// The `/v1` routes behind the account's budgets and the scopes; the framework adds its gate,
/// the fallbacks and `/_sim`.
pub fn router(cloud: Vertra) -> Router<Arc<Sim>> {
    let upload = axum::extract::DefaultBodyLimit::max(MAX_MULTIPART_BYTES);
    Router::new()
        .route("/v1/users/me", get(account::me).patch(account::update_me))
        .route("/v1/users/@me", get(account::me))
        .route("/v1/apps", post(apps::create).layer(upload))
        .route("/v1/apps/status", get(apps::list_status))
        .route("/v1/apps/{id}", get(apps::get).delete(apps::delete))
        .route("/v1/apps/{id}/status", get(apps::status))
        .route("/v1/apps/{id}/config", patch(apps::config))
        .route("/v1/apps/{id}/start", post(apps::start))
        .route("/v1/apps/{id}/stop", post(apps::stop))
        .route("/v1/apps/{id}/restart", post(apps::restart))
        .route(
            "/v1/apps/{id}/files/upload",
            post(apps::upload).layer(upload),
        )
        .route(
            "/v1/apps/{id}/envs",
            get(apps::list_envs).post(apps::set_envs),
        )
        .route("/v1/apps/{id}/envs/{env_id}", delete(apps::delete_env))
        .route(
            "/v1/apps/{id}/network/publish",
            post(network::publish).delete(network::unpublish),
        )
        .route("/v1/apps/{id}/network/subdomain", patch(network::subdomain))
        .route(
            "/v1/apps/{id}/network/custom",
            get(network::get_custom)
                .post(network::set_custom)
                .delete(network::delete_custom),
        )
        .route("/v1/apps/{id}/network/dns", get(network::dns))
        .route("/v1/databases", post(databases::create))
        .route("/v1/databases/status", get(databases::list_status))
        .route(
            "/v1/databases/{id}",
            get(databases::get)
                .put(databases::update)
                .delete(databases::delete),
        )
        .route("/v1/databases/{id}/status", get(databases::status))
        .route("/v1/databases/{id}/start", post(databases::start))
        .route("/v1/databases/{id}/stop", post(databases::stop))
        .route(
            "/v1/databases/{id}/credentials/reset",
            post(databases::reset_password),
        )
        .route(
            "/v1/databases/{id}/credentials/certificate",
            get(databases::certificate),
        )
        .route(
            "/v1/databases/{id}/credentials/certificate/reset",
            post(databases::reset_certificate),
        )
        .route(
            "/v1/workspaces",
            get(workspaces::list).post(workspaces::create),
        )
        .route(
            "/v1/workspaces/{id}",
            get(workspaces::get)
                .put(workspaces::update)
                .delete(workspaces::delete),
        )
        .layer(from_fn_with_state(cloud, account_gate))
}

/// A 429 from the account's budgets: the documented body, `Retry-After` and both budgets'
/// headers.
fn refusal(refused: Refused, check: &AccountCheck) -> Response {
    let (code, scope, b) = match refused {
        Refused::Minute => (codes::RATE_LIMIT_EXCEEDED, "minute", check.minute),
        Refused::Day => (codes::DAILY_QUOTA_EXCEEDED, "day", check.day),
    };
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        code,
        format!(
            "the account's {} API-key requests per {scope} are used up; retry in {} s",
            b.limit, b.retry_after
        ),
    )
    .with_details(json!({
        "scope": scope,
        "limit": b.limit,
        "used": b.limit - b.remaining,
        "retry_after": b.retry_after,
    }));
    e.retry_after = Some(b.retry_after);
    e.into_response()
}

/// Every `/v1` route (behind the framework's gate, which found the key): the account's budgets,
/// then the key's scope for the route, then the handler; both budgets' headers on the answer.
async fn account_gate(State(cloud): State<Vertra>, req: Request, next: Next) -> Response {
    let fp = gate::bearer(req.headers())
        .map(key_fingerprint)
        .unwrap_or_default();
    let check = cloud.meter().account(&fp, unix_now());
    let mut resp = if let Some(refused) = check.refused {
        refusal(refused, &check)
    } else {
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_string());
        let method = req.method().as_str().to_string();
        match route.map(|r| scopes::required(&method, &r)) {
            Some(None) => ApiError::forbidden(
                codes::API_KEY_SCOPE_DENIED,
                "this route is not open to API keys (dashboard only)",
            )
            .into_response(),
            Some(Some(scope)) if !cloud.has_scope(&fp, scope) => ApiError::forbidden(
                codes::API_KEY_SCOPE_DENIED,
                format!("the API key lacks the scope {scope}; give it that scope"),
            )
            .with_details(json!({ "required": scope }))
            .into_response(),
            _ => next.run(req).await,
        }
    };
    insert_budget_headers(&check, resp.headers_mut());
    resp
}

// ---- extractors -------------------------------------------------------------------------------

/// Path parameters with rejections in Vertra's envelope.
pub struct P<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| P(t))
            .map_err(|e| ApiError::validation(&[], e.body_text()))
    }
}

/// The query string, decoded.
pub struct Q(pub HashMap<String, String>);

impl Q {
    /// `?workspace_id=` (empty = none).
    pub fn ws(&self) -> Option<&str> {
        self.0
            .get("workspace_id")
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Q {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let RawQuery(q) = RawQuery::from_request_parts(parts, state)
            .await
            .unwrap_or(RawQuery(None));
        Ok(Q(url::form_urlencoded::parse(
            q.unwrap_or_default().as_bytes(),
        )
        .into_owned()
        .collect()))
    }
}

/// The calling key's fingerprint (the gate has checked the key).
pub struct Caller(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Caller(
            gate::bearer(&parts.headers)
                .map(key_fingerprint)
                .unwrap_or_default(),
        ))
    }
}

// ---- helpers ----------------------------------------------------------------------------------

/// A body that could not be read: too large for a file route, else unreadable.
pub fn unreadable(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::bad_request(
            codes::FILE_TOO_LARGE,
            format!("the upload is larger than {MAX_FILE_BYTES} bytes (100 MB)"),
        )
    } else {
        ApiError::validation(&[], format!("could not read the body: {}", e.body_text()))
    }
}

pub fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// `429 DEPLOY_RATE_LIMITED` with its details and no header.
pub fn deploy_limited((limit, retry_after): (u64, u64)) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        codes::DEPLOY_RATE_LIMITED,
        format!("the account's {limit} deploys per hour are used up; retry in {retry_after} s"),
    )
    .with_details(json!({
        "limit": limit,
        "window_seconds": 3600,
        "retry_after": retry_after,
    }))
}

/// `429 RATE_LIMIT_EXCEEDED` of a per-app budget: no details.
pub fn app_limited(what: &str) -> impl FnOnce(()) -> ApiError + '_ {
    move |()| ApiError::route_limited(format!("too many {what} calls for this app; slow down"))
}

/// `200 {"response": null}`.
pub fn null() -> Response {
    super::reply::ok(serde_json::Value::Null).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the router serves has its scope in the table, and the table has no route the
    /// router lacks.
    #[test]
    fn the_scope_table_and_the_router_agree() {
        let src = include_str!("mod.rs");
        let routed: Vec<&str> = src
            .split(".route(")
            .skip(1)
            .filter_map(|r| r.trim_start().strip_prefix('"')?.split('"').next())
            .filter(|p| p.starts_with("/v1"))
            .collect();
        for (_, path, _) in scopes::ROUTES {
            assert!(
                routed.contains(path),
                "{path} is in the table but not routed"
            );
        }
        for path in routed {
            assert!(
                scopes::ROUTES.iter().any(|(_, p, _)| *p == path),
                "{path} is routed without a scope"
            );
        }
    }
}
