//! One request of a typed client, described before it is sent: what it is, what it costs in
//! budget, and whether it may be sent again.

use reqwest::Method;
use serde::Serialize;
use uuid::Uuid;

use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;

/// The longest id (one path segment) a request may carry. Ids of every cloud we speak are short;
/// anything longer comes from a mistyped `stratus.dev/external-name` and is refused before it is
/// sent.
pub const MAX_ID_BYTES: usize = 256;

/// How a write may be repeated when its answer is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Reads, and writes that set a state (PUT, PATCH, DELETE, start/stop): retried on
    /// retryable errors, within the client's retry policy.
    Retry,
    /// Creates, and writes that are not idempotent: sent once per call. After an ambiguous
    /// outcome the caller decides (find what it made, or send it again under the same
    /// idempotency key where the API has one): never a blind repeat.
    Once,
}

/// A body to send. `Debug` shows sizes only: bodies may carry configuration values.
#[derive(Clone)]
pub enum Body {
    Json(Vec<u8>),
    /// `multipart/form-data`, rebuilt for every attempt.
    Multipart(Vec<Part>),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Json(bytes) => write!(f, "Json({} bytes)", bytes.len()),
            Body::Multipart(parts) => f.debug_tuple("Multipart").field(parts).finish(),
        }
    }
}

/// One part of a multipart body.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: &'static str,
    pub value: PartValue,
}

/// A text field or a file.
#[derive(Clone)]
pub enum PartValue {
    Text(String),
    File {
        file_name: String,
        content_type: &'static str,
        bytes: std::sync::Arc<[u8]>,
    },
}

impl std::fmt::Debug for PartValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Text fields may carry configuration values (env vars): only their length shows.
            PartValue::Text(t) => write!(f, "Text({} bytes)", t.len()),
            PartValue::File {
                file_name, bytes, ..
            } => write!(f, "File({file_name:?}, {} bytes)", bytes.len()),
        }
    }
}

impl Part {
    pub fn text(name: &'static str, value: impl Into<String>) -> Self {
        Part {
            name,
            value: PartValue::Text(value.into()),
        }
    }

    pub fn file(
        name: &'static str,
        file_name: impl Into<String>,
        content_type: &'static str,
        bytes: std::sync::Arc<[u8]>,
    ) -> Self {
        Part {
            name,
            value: PartValue::File {
                file_name: file_name.into(),
                content_type,
                bytes,
            },
        }
    }
}

/// What one request is.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// A stable name (`computes.create`): the metric label and the word in errors.
    pub operation: &'static str,
    pub segments: Vec<String>,
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Body>,
    pub idempotency_key: Option<Uuid>,
    pub priority: Priority,
    /// An operation class with a limit of its own (`deploy`, `lifecycle`) and the subject it
    /// is counted per (an app id), if any.
    pub class: Option<(&'static str, Option<String>)>,
    /// Sent with the key and through its throttle (everything but unauthenticated health
    /// checks).
    pub authenticated: bool,
    pub replay: Replay,
    /// May give its place in the throttle's queue up (`CloudError::Deferred`): routine reads
    /// that are not the continuation of a paged walk.
    pub may_defer: bool,
    /// This request's own timeout (large uploads), instead of the transport's.
    pub timeout: Option<std::time::Duration>,
}

impl Request {
    pub fn new(method: Method, operation: &'static str, segments: &[&str], p: Priority) -> Self {
        Request {
            method,
            operation,
            segments: segments.iter().map(|s| s.to_string()).collect(),
            query: Vec::new(),
            body: None,
            idempotency_key: None,
            priority: p,
            class: None,
            authenticated: true,
            replay: Replay::Retry,
            may_defer: p == Priority::Routine,
            timeout: None,
        }
    }

    pub fn get(operation: &'static str, segments: &[&str], p: Priority) -> Self {
        Self::new(Method::GET, operation, segments, p)
    }

    /// A write that sets a state (retried on retryable errors).
    pub fn write(method: Method, operation: &'static str, segments: &[&str]) -> Self {
        Self::new(method, operation, segments, Priority::Write)
    }

    /// A create: `POST`, sent once, with `idempotency_key` in the wire's idempotency header
    /// when the API has one.
    pub fn create(operation: &'static str, segments: &[&str], idempotency_key: Uuid) -> Self {
        let mut r = Self::write(Method::POST, operation, segments)
            .once()
            .priority(Priority::Create);
        r.idempotency_key = Some(idempotency_key);
        r
    }

    /// At priority `p` (a create without an idempotency key: [`Priority::Create`]).
    pub fn priority(mut self, p: Priority) -> Self {
        self.priority = p;
        self.may_defer = p == Priority::Routine;
        self
    }

    /// Sent once per call (see [`Replay::Once`]).
    pub fn once(mut self) -> Self {
        self.replay = Replay::Once;
        self
    }

    pub fn json<B: Serialize>(mut self, body: &B) -> Result<Self, CloudError> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            CloudError::Config(format!(
                "cannot encode the {} request body: {e}",
                self.operation
            ))
        })?;
        self.body = Some(Body::Json(bytes));
        Ok(self)
    }

    pub fn multipart(mut self, parts: Vec<Part>) -> Self {
        self.body = Some(Body::Multipart(parts));
        self
    }

    /// A timeout of its own (a large upload that the API answers after installing it).
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub fn query(mut self, name: &'static str, value: impl ToString) -> Self {
        self.query.push((name, value.to_string()));
        self
    }

    /// Counted against the limit of operation class `class` (per `subject`, if given) as well
    /// as the key's.
    pub fn class(mut self, class: &'static str, subject: Option<&str>) -> Self {
        self.class = Some((class, subject.map(str::to_string)));
        self
    }

    /// Sent without the key and outside its throttle.
    pub fn unauthenticated(mut self) -> Self {
        self.authenticated = false;
        self
    }

    /// Refuse what cannot be a request of the API, before any budget is spent on it.
    pub fn check(&self) -> Result<(), CloudError> {
        let invalid = |message: String| CloudError::InvalidRequest {
            operation: self.operation.to_string(),
            message,
        };
        for segment in &self.segments {
            let shown: String = segment.chars().take(40).collect();
            if segment.len() > MAX_ID_BYTES {
                return Err(invalid(format!(
                    "the id {shown:?}... is {} bytes long, more than the {MAX_ID_BYTES} an id may have; check the stratus.dev/external-name annotation",
                    segment.len()
                )));
            }
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(invalid(format!(
                    "{segment:?} is not an id; check the stratus.dev/external-name annotation"
                )));
            }
            if segment.chars().any(char::is_control) {
                return Err(invalid(format!(
                    "the id {shown:?} contains control characters; check the stratus.dev/external-name annotation"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_cannot_be_path_segments_are_refused_before_sending() {
        let long = "9".repeat(MAX_ID_BYTES + 1);
        for bad in [long.as_str(), "", ".", "..", "a\nb"] {
            let r = Request::get("computes.get", &["computes", bad], Priority::Urgent);
            let e = r.check().unwrap_err();
            assert!(
                matches!(e, CloudError::InvalidRequest { .. }),
                "{bad:?}: {e}"
            );
            assert!(e.to_string().contains("external-name"), "{e}");
        }
        let ok = Request::get("computes.get", &["computes", "vm-1"], Priority::Urgent);
        assert!(ok.check().is_ok());
    }

    #[test]
    fn a_create_is_sent_once_and_a_state_write_is_retried() {
        let key = Uuid::new_v4();
        let create = Request::create("computes.create", &["computes"], key);
        assert_eq!(create.replay, Replay::Once);
        assert_eq!(create.idempotency_key, Some(key));
        assert_eq!(create.priority, Priority::Create);
        assert!(!create.may_defer);
        let delete = Request::write(Method::DELETE, "computes.delete", &["computes", "1"]);
        assert_eq!(delete.replay, Replay::Retry);
        let routine = Request::get("computes.list", &["computes"], Priority::Routine);
        assert!(routine.may_defer);
    }

    #[test]
    fn multipart_text_fields_show_only_their_length_in_debug_output() {
        let r = Request::write(Method::POST, "apps.create", &["apps"]).multipart(vec![
            Part::text("envs", r#"[{"key":"PASSWORD","value":"hunter2"}]"#),
            Part::file("file", "app.zip", "application/zip", vec![1u8, 2, 3].into()),
        ]);
        let shown = format!("{r:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("app.zip") && shown.contains("3 bytes"),
            "{shown}"
        );
    }
}
