//! The envelopes of each dialect: lists (`{"data", "next_cursor", "has_more"}` in `cloudapi`,
//! `{"data", "meta": {"requestId"}}` in `cloudplatform`), single objects as themselves, and the
//! error bodies (`{"status", "code", "message", "request_id"}` in `cloudapi`,
//! `{"code", "message", "details"}` in `cloudplatform`).
//!
//! Handlers do not know the dialect: they return an [`ApiError`], whose `IntoResponse` only
//! parks it in the response's extensions; the layer in front of the routes ([`render_errors`])
//! writes it in the dialect's body. So an extractor's rejection gets the same body as a
//! handler's error.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde::Serialize;
use serde_json::{Value, json};

use crate::sim::{ErrorKind, ErrorReply};

use super::page::Page;
use super::wire::{Dialect, codes};

/// `req_` and 12 hex digits, as 002's FAQ shows request ids.
pub fn request_id() -> String {
    format!(
        "req_{:012x}",
        rand::rng().random::<u64>() & 0xffff_ffff_ffff
    )
}

/// RFC 3339 UTC to the second, as the seeds write times (`2026-04-28T14:02:11Z`).
pub fn rfc3339(ts: jiff::Timestamp) -> String {
    format!("{:.0}", ts)
}

pub fn json_response(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut resp = (status, body).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => ApiError::internal(format!("could not encode the answer: {e}")).into_response(),
    }
}

/// `200` with the object itself.
pub fn ok(value: &impl Serialize) -> Response {
    json_response(StatusCode::OK, value)
}

/// A list in the dialect's envelope. `cloudplatform` has no paging: `page` holds everything.
pub fn list<T: Serialize>(dialect: Dialect, page: Page<T>) -> Response {
    let body = match dialect {
        Dialect::Cloudapi => json!({
            "data": page.items,
            "next_cursor": page.next_cursor,
            "has_more": page.has_more,
        }),
        Dialect::Cloudplatform => json!({
            "data": page.items,
            "meta": { "requestId": request_id() },
        }),
    };
    ok(&body)
}

/// An error: status, code, a message that says what to do, details when there are some.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// `Retry-After`, in seconds, for a 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// `422 VALIDATION_ERROR` about `field` (`details.field`).
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::VALIDATION_ERROR,
            message,
        )
        .with_details(json!({ "field": field }))
    }

    /// `400 BAD_REQUEST`: the body or a query parameter cannot be read at all.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::NOT_FOUND,
            format!("{what} {id:?} does not exist"),
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, codes::FORBIDDEN, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_ERROR,
            message,
        )
    }

    /// `429 RATE_LIMITED` with `Retry-After`.
    pub fn rate_limited(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, codes::RATE_LIMITED, message);
        e.retry_after = Some(retry_after.max(1));
        e
    }

    /// The error in `dialect`'s body.
    pub fn render(self, dialect: Dialect) -> Response {
        let body = match dialect {
            Dialect::Cloudapi => json!({
                "status": self.status.as_u16(),
                "code": self.code,
                "message": self.message,
                "request_id": request_id(),
            }),
            Dialect::Cloudplatform => json!({
                "code": self.code,
                "message": self.message,
                "details": self.details.unwrap_or_else(|| json!({})),
            }),
        };
        let mut resp = json_response(self.status, &body);
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// The framework's errors (gate, `/_sim`, unknown routes) as CloudAPI errors.
impl From<ErrorReply> for ApiError {
    fn from(e: ErrorReply) -> Self {
        let m = e.message;
        match e.kind {
            ErrorKind::Unauthorized => Self::unauthorized(m),
            ErrorKind::RateLimited => Self::rate_limited(m, 1),
            ErrorKind::InjectedFault | ErrorKind::Internal => Self::internal(m),
            ErrorKind::UnreadableBody | ErrorKind::MalformedJson => Self::bad_request(m),
            ErrorKind::Invalid => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, codes::VALIDATION_ERROR, m)
            }
            ErrorKind::NoSuchRoute => Self::new(StatusCode::NOT_FOUND, codes::NOT_FOUND, m),
            ErrorKind::MethodNotAllowed => {
                Self::new(StatusCode::METHOD_NOT_ALLOWED, codes::METHOD_NOT_ALLOWED, m)
            }
        }
    }
}

/// Parks the error in the answer for [`render_errors`] to write.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = self.status.into_response();
        resp.extensions_mut().insert(Parked(self));
        resp
    }
}

#[derive(Clone)]
struct Parked(ApiError);

/// Writes any parked [`ApiError`] in the dialect's body: a layer on every route.
pub async fn render_errors(State(dialect): State<Dialect>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    match resp.extensions_mut().remove::<Parked>() {
        Some(Parked(e)) => {
            let mut out = e.render(dialect);
            for (name, value) in resp.headers() {
                if !out.headers().contains_key(name) && name != header::CONTENT_LENGTH {
                    out.headers_mut().insert(name.clone(), value.clone());
                }
            }
            out
        }
        None => resp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(r: Response) -> Value {
        let b = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&b).unwrap()
    }

    #[tokio::test]
    async fn an_error_has_each_dialects_own_body() {
        let e = ApiError::not_found("project", "proj_1");
        let a = body(e.clone().render(Dialect::Cloudapi)).await;
        assert_eq!(a["status"], 404);
        assert_eq!(a["code"], "NOT_FOUND");
        assert!(a["request_id"].as_str().unwrap().starts_with("req_"));
        assert!(a.get("details").is_none());
        let p = body(e.render(Dialect::Cloudplatform)).await;
        assert_eq!(p["code"], "NOT_FOUND");
        assert!(p["details"].is_object() && p.get("status").is_none());
    }

    #[test]
    fn framework_errors_get_cloudapi_codes_and_statuses() {
        let cases = [
            (ErrorKind::Unauthorized, 401, "UNAUTHORIZED"),
            (ErrorKind::RateLimited, 429, "RATE_LIMITED"),
            (ErrorKind::InjectedFault, 500, "INTERNAL_ERROR"),
            (ErrorKind::MalformedJson, 400, "BAD_REQUEST"),
            (ErrorKind::Invalid, 422, "VALIDATION_ERROR"),
            (ErrorKind::NoSuchRoute, 404, "NOT_FOUND"),
            (ErrorKind::MethodNotAllowed, 405, "METHOD_NOT_ALLOWED"),
        ];
        for (kind, status, code) in cases {
            let e = ApiError::from(ErrorReply::new(kind, "m"));
            assert_eq!((e.status.as_u16(), e.code), (status, code), "{kind:?}");
        }
    }
}
