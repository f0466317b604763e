//! The errors the framework answers itself (a missing key, a rate limit, an injected fault, a
//! bad `/_sim` body, an unknown route). It only says what went wrong; the cloud writes the answer
//! in its own envelope (`Cloud::error_response`), so every answer a client sees has the cloud's
//! shape.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use serde_json::Value;

/// What kind of error the framework answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No API key, or one the sandbox does not accept (usually 401).
    Unauthorized,
    /// Past a rate limit (429); the gate adds the cloud's rate-limit headers.
    RateLimited,
    /// An injected server error (`--error-rate`): nothing was applied (usually 500).
    InjectedFault,
    /// The request body could not be read (400).
    UnreadableBody,
    /// The request body is empty or not JSON (400).
    MalformedJson,
    /// The body is JSON but not what the endpoint takes, or a value is out of range (400).
    Invalid,
    /// No route has this path.
    NoSuchRoute,
    /// The path exists, with other methods.
    MethodNotAllowed,
    /// The sandbox itself failed, e.g. writing its state file (500).
    Internal,
}

/// An error for the cloud to answer: its kind and a message for humans that says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    pub kind: ErrorKind,
    pub message: String,
}

impl ErrorReply {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Parses a request body as JSON: empty or not JSON is [`ErrorKind::MalformedJson`].
pub fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ErrorReply> {
    let bytes = body.map_err(|e| {
        ErrorReply::new(
            ErrorKind::UnreadableBody,
            format!("could not read the body: {}", e.body_text()),
        )
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ErrorReply::new(
            ErrorKind::MalformedJson,
            "the request body is empty; a JSON object is expected",
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ErrorReply::new(
            ErrorKind::MalformedJson,
            format!("the request body is not valid JSON: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_broken_body_is_malformed_json_and_a_json_one_parses() {
        let kind = |b: &'static str| json_body(Ok(Bytes::from(b))).unwrap_err().kind;
        assert_eq!(kind(" \n"), ErrorKind::MalformedJson);
        assert_eq!(kind("{\"a\":"), ErrorKind::MalformedJson);
        assert_eq!(
            json_body(Ok(Bytes::from("{\"a\": 1}"))).unwrap()["a"],
            Value::from(1)
        );
    }
}
