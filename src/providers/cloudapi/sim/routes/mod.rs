//! The `/v1` routes, and what every one of them passes first (the [`Ctx`] extractor, behind the
//! framework's gate, which found a credential): the kind of credential the route takes (a
//! session token for `POST /v1/keys`, an API key everywhere else), the rate limits, and the
//! usage count. POST routes then honour `Idempotency-Key` ([`Ctx::post`]).
//!
//! The limits are checked in an extractor rather than a layer because they need the sandbox's
//! state (issued keys and their workspaces), which only handlers reach; the layer in front of
//! the routes ([`api_layer`]) writes the verdict's `X-RateLimit-*` headers and the dialect's
//! error bodies.

mod access;
mod account;
mod deployments;
mod logs;
mod projects;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, MatchedPath, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use jiff::Timestamp;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::sim::gate;

use super::Sim;
use super::cloud::{CloudApi, Credential, unix_now};
use super::limits::{Check, MINUTE, Refused, TEN_MINUTES};
use super::reply::{ApiError, json_response, render_errors};
use super::state::idempotency::{Idem, Stored};
use super::state::sha256_hex;
use super::wire::{Dialect, codes};

pub type Answer = Result<Response, ApiError>;

/// The one route that takes a dashboard session token (and only that).
pub const SESSION_ROUTE: (&str, &str) = ("POST", "/v1/keys");

/// The creates whose answer holds a secret shown only once.
const SECRET_ROUTES: [&str; 2] = ["POST /v1/keys", "POST /v1/tokens"];

/// The `/v1` routes; the framework adds its gate, the fallbacks and `/_sim`.
pub fn router(cloud: CloudApi) -> Router<Arc<Sim>> {
    Router::new()
        .route("/v1/projects", get(projects::list).post(projects::create))
        .route(
            "/v1/projects/{id}",
            get(projects::get)
                .patch(projects::patch)
                .delete(projects::delete),
        )
        .route(
            "/v1/deployments",
            get(deployments::list).post(deployments::create),
        )
        .route("/v1/deployments/{id}/rollback", post(deployments::rollback))
        .route("/v1/logs", get(logs::list))
        .route("/v1/logs/stream", get(logs::stream))
        .route("/v1/keys", post(access::create_key))
        .route("/v1/keys/{id}", delete(access::revoke_key))
        .route(
            "/v1/tokens",
            get(access::list_tokens).post(access::create_token),
        )
        .route("/v1/tokens/{id}", delete(access::delete_token))
        .route("/v1/users", get(account::users))
        .route("/v1/usage", get(account::usage))
        .layer(from_fn_with_state(cloud.dialect(), render_errors))
        .layer(from_fn_with_state(cloud, api_layer))
}

/// Where [`Ctx`] leaves the limits' verdict for [`api_layer`].
#[derive(Clone, Default)]
struct Verdict(Arc<Mutex<Option<Check>>>);

/// `X-RateLimit-Limit`, `-Remaining` and `-Reset` (unix seconds), as 001 documents them.
fn insert_rate_headers(check: &Check, h: &mut HeaderMap) {
    let d = &check.key;
    if d.limit >= crate::sim::rate_limit::UNLIMITED {
        return;
    }
    h.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(d.reset));
}

/// In front of every `/v1` route: a slot for the limits' verdict, and the `cloudapi`
/// rate-limit headers from it on the answer (`cloudplatform` documents none).
async fn api_layer(State(cloud): State<CloudApi>, mut req: Request, next: Next) -> Response {
    let verdict = Verdict::default();
    req.extensions_mut().insert(verdict.clone());
    let mut resp = next.run(req).await;
    if cloud.dialect() == Dialect::Cloudapi
        && let Some(check) = verdict.0.lock().take()
    {
        insert_rate_headers(&check, resp.headers_mut());
    }
    resp
}

/// A request that passed the credential check, the limits and the usage count.
pub struct Ctx {
    pub sim: Arc<Sim>,
    pub dialect: Dialect,
    pub credential: Credential,
}

impl Ctx {
    /// The caller's account (workspace); a session token has none.
    pub fn account(&self) -> Result<&str, ApiError> {
        match &self.credential {
            Credential::ApiKey { account, .. } => Ok(account),
            Credential::Session { .. } => Err(ApiError::unauthorized(
                "a dashboard session token is not an API key",
            )),
        }
    }

    pub fn cloud(&self) -> &CloudApi {
        self.sim.cloud()
    }

    /// Serves a POST: parses the body as a JSON object and runs `f` on it, at most once per
    /// `Idempotency-Key` (see `state::idempotency`). `f` answers a status and a body.
    pub fn post(
        &self,
        idem: Option<IdemKey>,
        body: Result<Bytes, BytesRejection>,
        f: impl FnOnce(&Self, Map<String, Value>) -> Result<(StatusCode, Value), ApiError>,
    ) -> Answer {
        let bytes = body.map_err(|e| {
            ApiError::bad_request(format!("could not read the body: {}", e.body_text()))
        })?;
        let run = |bytes: &Bytes| -> Result<(StatusCode, Value), ApiError> {
            let object = json_object(bytes)?;
            f(self, object)
        };
        let Some(idem) = idem else {
            let (status, v) = run(&bytes)?;
            return Ok(json_response(status, &v));
        };
        let scope = match &self.credential {
            Credential::ApiKey { account, .. } => format!("account:{account}"),
            Credential::Session { .. } => "dashboard".to_string(),
        };
        let key = format!("{scope}/{}", idem.key);
        let mut request = idem.target.clone().into_bytes();
        request.push(0);
        request.extend_from_slice(&bytes);
        let request = sha256_hex(&String::from_utf8_lossy(&request));
        let begun = self
            .sim
            .state()
            .idempotency_begin(&key, &request, Timestamp::now());
        match begun {
            Idem::Replay(stored) => {
                let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
                let v: Value = serde_json::from_str(&stored.body).unwrap_or(Value::Null);
                let mut resp = json_response(status, &v);
                resp.headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                Ok(resp)
            }
            Idem::Reused => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                codes::IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was used with another request; use a new key for a new request",
            )),
            Idem::InFlight => Err(ApiError::conflict(
                codes::IDEMPOTENCY_KEY_IN_USE,
                "the first request with this Idempotency-Key is still being served; retry shortly",
            )),
            Idem::Serve => {
                let result = run(&bytes);
                let stored = result.as_ref().ok().map(|(status, v)| Stored {
                    status: status.as_u16(),
                    body: v.to_string(),
                    secret: SECRET_ROUTES.contains(&idem.target.as_str()),
                });
                self.sim.state().idempotency_end(&key, stored);
                self.sim.mutated();
                let (status, v) = result?;
                Ok(json_response(status, &v))
            }
        }
    }
}

fn route_of(parts: &Parts) -> (String, String) {
    let path = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    (parts.method.as_str().to_string(), path)
}

impl FromRequestParts<Arc<Sim>> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, sim: &Arc<Sim>) -> Result<Self, ApiError> {
        let secret = gate::bearer(&parts.headers).unwrap_or_default().to_string();
        let cloud = sim.cloud();
        let now = Timestamp::now();
        let credential = {
            let st = sim.state();
            cloud.credential(&secret, &st)
        }
        .ok_or_else(|| ApiError::unauthorized("the API key was revoked; use a live key"))?;
        let (method, path) = route_of(parts);
        let session_route = (method.as_str(), path.as_str()) == SESSION_ROUTE;
        match (&credential, session_route) {
            (Credential::Session { .. }, false) => {
                return Err(ApiError::unauthorized(
                    "a dashboard session token is not an API key: send an API key \
                     (Authorization: Bearer sk_live_…)",
                ));
            }
            (Credential::ApiKey { .. }, true) => {
                return Err(ApiError::forbidden(
                    "creating API keys requires a dashboard session token, not an API key",
                ));
            }
            _ => {}
        }
        let workspace = match (&credential, cloud.dialect()) {
            (Credential::ApiKey { account, .. }, Dialect::Cloudplatform) => Some(account.clone()),
            _ => None,
        };
        let check = cloud
            .meter()
            .check(credential.fp(), workspace.as_deref(), unix_now());
        let refused = check.refused;
        let (retry_after, describe) = (check.retry_after, check.describe.clone());
        if let Some(v) = parts.extensions.get::<Verdict>() {
            *v.0.lock() = Some(check);
        }
        if let Some(r) = refused {
            let b = cloud.meter().budgets();
            let (whose, scope, limit, window) = match r {
                Refused::Key => ("this key's", "key", b.per_key_per_minute, MINUTE),
                Refused::Workspace => (
                    "the workspace's",
                    "workspace",
                    b.per_workspace_per_ten_minutes,
                    TEN_MINUTES,
                ),
            };
            // `details` shows only in `cloudplatform`'s body; what a client needs to pace.
            return Err(ApiError::rate_limited(
                format!("{whose} rate limit ({describe}) is used up; retry after {retry_after} s"),
                retry_after,
            )
            .with_details(json!({
                "scope": scope,
                "limit": limit,
                "window_seconds": window.as_secs(),
                "retry_after": retry_after,
            })));
        }
        if let Credential::ApiKey { account, .. } = &credential {
            let mut st = sim.state();
            st.count_request(account, now);
        }
        sim.mutated();
        Ok(Ctx {
            sim: sim.clone(),
            dialect: cloud.dialect(),
            credential,
        })
    }
}

/// The `Idempotency-Key` header of a request, with its method and path.
pub struct IdemKey {
    pub key: String,
    target: String,
}

/// `Option<IdemKey>` as an extractor.
pub struct Idempotency(pub Option<IdemKey>);

impl<S: Send + Sync> FromRequestParts<S> for Idempotency {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get("idempotency-key") else {
            return Ok(Idempotency(None));
        };
        let key = v
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 255)
            .ok_or_else(|| {
                ApiError::bad_request("Idempotency-Key must be 1 to 255 visible characters")
            })?;
        Ok(Idempotency(Some(IdemKey {
            key: key.to_string(),
            target: format!("{} {}", parts.method, parts.uri.path()),
        })))
    }
}

/// Path parameters with rejections in the dialect's body.
pub struct P<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| P(t))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// The query string, decoded.
pub struct Q(pub HashMap<String, String>);

impl Q {
    /// A parameter, `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    /// A time: RFC 3339 (`2026-04-01T10:00:00Z`) or a date (`2026-04-01`, midnight UTC), as
    /// 001's `?created_after=2026-04-01` shows.
    pub fn time(&self, name: &str) -> Result<Option<Timestamp>, ApiError> {
        let Some(s) = self.get(name) else {
            return Ok(None);
        };
        if let Ok(t) = s.parse::<Timestamp>() {
            return Ok(Some(t));
        }
        s.parse::<jiff::civil::Date>()
            .ok()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| Some(z.timestamp()))
            .ok_or_else(|| {
                ApiError::invalid(
                    name,
                    format!("{name} must be a date (2026-04-01) or an RFC 3339 time; got {s:?}"),
                )
            })
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

/// A body that must be a JSON object.
pub fn json_object(bytes: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; a JSON object is expected",
        ));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(ApiError::bad_request(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

/// A required string field.
pub fn required_str(o: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match o.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(ApiError::invalid(field, format!("{field} is required")))
        }
        Some(_) => Err(ApiError::invalid(
            field,
            format!("{field} must be a string"),
        )),
    }
}

/// An optional string field.
pub fn optional_str(o: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(_) => Err(ApiError::invalid(
            field,
            format!("{field} must be a string"),
        )),
    }
}

/// The value as JSON, for [`Ctx::post`].
pub fn to_value(v: &impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::internal(format!("encoding failed: {e}")))
}

/// An answer that is an object.
pub fn object(v: impl serde::Serialize) -> Answer {
    Ok(super::reply::ok(&v).into_response())
}
