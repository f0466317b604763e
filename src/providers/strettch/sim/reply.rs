//! The answer envelopes: success `{success, message, data, meta?, requestId, timestamp}` and
//! error `{success: false, code, message, requestId, timestamp}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::sim::{ErrorKind, ErrorReply};

use super::wire::{Envelope, ErrorBody, PageMeta, codes};

/// RFC 3339 time of now, with milliseconds.
pub fn now_rfc3339() -> String {
    format!("{:.3}", jiff::Timestamp::now())
}

/// RFC 3339 rendering of a stored time, with milliseconds.
pub fn rfc3339(ts: jiff::Timestamp) -> String {
    format!("{ts:.3}")
}

fn json_response(status: StatusCode, request_id: &str, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    resp
}

/// A success answer in the envelope.
pub fn success<T: Serialize>(
    status: StatusCode,
    message: &str,
    data: T,
    meta: Option<PageMeta>,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let env = Envelope {
        success: true,
        message: message.to_string(),
        data,
        meta,
        request_id: request_id.clone(),
        timestamp: now_rfc3339(),
    };
    match serde_json::to_vec(&env) {
        Ok(body) => json_response(status, &request_id, body),
        Err(e) => SimError::internal(format!("could not encode the answer: {e}")).into_response(),
    }
}

/// An error answer: status, stable code and a message for humans.
#[derive(Debug, Clone)]
pub struct SimError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl SimError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::VALIDATION_ERROR, message)
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::MALFORMED_JSON, message)
    }
    pub fn idempotency(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            codes::INVALID_IDEMPOTENCY_KEY,
            message,
        )
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, message)
    }
    pub fn compute_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            codes::COMPUTE_NOT_FOUND,
            format!("compute {id:?} does not exist"),
        )
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, codes::RESOURCE_NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, codes::CONFLICT, message)
    }
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::UNPROCESSABLE_ENTITY,
            message,
        )
    }
    pub fn too_many(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            codes::TOO_MANY_REQUESTS,
            message,
        )
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL_SERVER_ERROR,
            message,
        )
    }
}

/// The framework's errors (gate, `/_sim`, unknown routes) in Strettch's codes.
impl From<ErrorReply> for SimError {
    fn from(e: ErrorReply) -> Self {
        let m = e.message;
        match e.kind {
            ErrorKind::Unauthorized => Self::unauthorized(m),
            ErrorKind::RateLimited => Self::too_many(m),
            ErrorKind::InjectedFault | ErrorKind::Internal => Self::internal(m),
            ErrorKind::UnreadableBody => Self::bad_request(m),
            ErrorKind::MalformedJson => Self::malformed(m),
            ErrorKind::Invalid => Self::validation(m),
            ErrorKind::NoSuchRoute | ErrorKind::MethodNotAllowed => Self::not_found(m),
        }
    }
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        let body = ErrorBody {
            success: false,
            code: self.code.to_string(),
            message: self.message,
            request_id: request_id.clone(),
            timestamp: now_rfc3339(),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| {
            br#"{"success":false,"code":"INTERNAL_SERVER_ERROR","message":"encoding failed"}"#
                .to_vec()
        });
        json_response(self.status, &request_id, bytes)
    }
}
