//! Vertra's envelopes: `{"response": T}` (`null` when there is nothing to return) and
//! `{"code", "message", "details"?}`, and the sandbox's errors in them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::sim::{ErrorKind, ErrorReply};

use super::wire::{ErrorBody, codes};

/// RFC 3339 UTC with milliseconds, as the API writes times.
pub fn rfc3339(ts: jiff::Timestamp) -> String {
    format!("{ts:.3}")
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// `{"response": value}` with `status`.
pub fn answer<T: Serialize>(status: StatusCode, value: T) -> Response {
    #[derive(Serialize)]
    struct Envelope<T> {
        response: T,
    }
    match serde_json::to_vec(&Envelope { response: value }) {
        Ok(body) => json_response(status, body),
        Err(e) => ApiError::internal(format!("could not encode the answer: {e}")).into_response(),
    }
}

/// `200 {"response": value}`.
pub fn ok<T: Serialize>(value: T) -> Response {
    answer(StatusCode::OK, value)
}

/// `201 {"response": value}`.
pub fn created<T: Serialize>(value: T) -> Response {
    answer(StatusCode::CREATED, value)
}

/// `200 {"response": {"status": "success"}}`.
pub fn success() -> Response {
    ok(json!({ "status": "success" }))
}

/// An error answer: status, code, a message saying what to do, details when the code has them.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// `Retry-After` in seconds, for the 429s that carry it.
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

    /// `400 VALIDATION_ERROR` about the field at `path` (`details.path`, zod style).
    pub fn validation(path: &[&str], message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::VALIDATION_ERROR, message)
            .with_details(json!({ "path": path }))
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// `403 PLAN_RESTRICTED_FEATURE`.
    pub fn plan(message: impl Into<String>) -> Self {
        Self::forbidden(codes::PLAN_RESTRICTED_FEATURE, message)
    }

    /// `409 OPERATION_IN_PROGRESS`.
    pub fn in_progress(what: &str) -> Self {
        Self::conflict(
            codes::OPERATION_IN_PROGRESS,
            format!("{what} has an operation in progress (installing); retry when it is done"),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_SERVER_ERROR,
            message,
        )
    }

    /// A per-route `429 RATE_LIMIT_EXCEEDED` (lifecycle, custom domain, DNS): no details, no
    /// `Retry-After`, as documented.
    pub fn route_limited(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            codes::RATE_LIMIT_EXCEEDED,
            message,
        )
    }
}

/// The framework's errors (gate, `/_sim`, unknown routes) in Vertra's codes.
impl From<ErrorReply> for ApiError {
    fn from(e: ErrorReply) -> Self {
        let m = e.message;
        match e.kind {
            ErrorKind::Unauthorized => {
                Self::new(StatusCode::UNAUTHORIZED, codes::API_KEY_INVALID, m)
            }
            ErrorKind::RateLimited => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, codes::RATE_LIMIT_EXCEEDED, m)
            }
            ErrorKind::InjectedFault | ErrorKind::Internal => Self::internal(m),
            ErrorKind::UnreadableBody | ErrorKind::MalformedJson | ErrorKind::Invalid => {
                Self::validation(&[], m)
            }
            ErrorKind::NoSuchRoute | ErrorKind::MethodNotAllowed => {
                Self::not_found(codes::ROUTE_NOT_FOUND, m)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_string(),
            message: Some(self.message),
            details: self.details,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| {
            br#"{"code":"INTERNAL_SERVER_ERROR","message":"encoding failed"}"#.to_vec()
        });
        let mut resp = json_response(self.status, bytes);
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framework_errors_get_vertras_codes() {
        let cases = [
            (ErrorKind::Unauthorized, 401, "API_KEY_INVALID"),
            (ErrorKind::RateLimited, 429, "RATE_LIMIT_EXCEEDED"),
            (ErrorKind::InjectedFault, 500, "INTERNAL_SERVER_ERROR"),
            (ErrorKind::MalformedJson, 400, "VALIDATION_ERROR"),
            (ErrorKind::NoSuchRoute, 404, "ROUTE_NOT_FOUND"),
            (ErrorKind::MethodNotAllowed, 404, "ROUTE_NOT_FOUND"),
            (ErrorKind::Internal, 500, "INTERNAL_SERVER_ERROR"),
        ];
        for (kind, status, code) in cases {
            let e = ApiError::from(ErrorReply::new(kind, "m"));
            assert_eq!((e.status.as_u16(), e.code), (status, code), "{kind:?}");
        }
    }

    #[test]
    fn a_validation_error_names_its_path_in_details() {
        let e = ApiError::validation(&["name"], "too long");
        assert_eq!(e.details, Some(json!({"path": ["name"]})));
    }
}
