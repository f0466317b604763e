//! Errors from a cloud API, classified the way the reconciler acts on them.

use std::time::Duration;

/// What a caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Worth retrying as-is: 429, 5xx, timeouts, dropped connections. The outcome of a write that
    /// failed this way is unknown (it may have been applied).
    Retryable,
    /// Retrying the same request cannot succeed: the spec must change (invalid input, a
    /// conflict). Nothing was done.
    Terminal,
    /// A budget is spent (HTTP 429): nothing was done; worth retrying once the throttle's hold
    /// (from the answer's retry hint) has passed.
    RateLimited,
    /// The account, not the spec, must change: a key without a needed scope, an unpaid balance,
    /// a plan without the feature, a revoked key. Nothing was done; reported as `Stalled` and
    /// looked at again now and then, since the fix happens outside Kubernetes.
    NeedsHuman,
    /// The resource does not exist.
    NotFound,
    /// Nothing was sent: a routine read found no budget for it now. Not a failure; try again
    /// after the error's `retry_in`, without reporting an error to the user.
    Deferred,
}

/// An error from a cloud API call. Never carries the API key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CloudError {
    /// The API answered with its error envelope.
    #[error("{code} (HTTP {status}): {message}{}", request_id.as_deref().map(|r| format!(" [requestId {r}]")).unwrap_or_default())]
    Api {
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
        /// From Retry-After or the rate-limit reset header, when the API gave one.
        retry_after: Option<Duration>,
        /// What the provider's wire description says this status and code mean
        /// ([`classify_status`] for a provider without codes of its own).
        class: ErrorClass,
    },
    /// The request did not get an answer (connect failure, timeout, connection dropped).
    #[error("no answer from {operation}: {message}")]
    Transport { operation: String, message: String },
    /// The API answered something that is not the documented shape.
    #[error("unexpected answer to {operation} (HTTP {status}): {message}")]
    Protocol {
        operation: String,
        status: u16,
        message: String,
    },
    /// The client was configured wrongly (bad endpoint URL, ...).
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The request cannot be built from the spec (an id too long or with control characters, a
    /// URL too long): nothing was sent and no budget was spent. Fix the spec (e.g. the
    /// `stratus.dev/external-name` annotation).
    #[error("cannot send {operation}: {message}")]
    InvalidRequest { operation: String, message: String },
    /// A routine read gave its place in the key's queue up: no budget for it within the
    /// throttle's patience. Nothing was sent; ask again in `retry_in`.
    #[error("{operation} held back by the throttle (nothing was sent); try again in {retry_in:?}")]
    Deferred {
        operation: String,
        retry_in: Duration,
    },
}

impl CloudError {
    pub fn class(&self) -> ErrorClass {
        match self {
            CloudError::Api { class, .. } => *class,
            CloudError::Transport { .. } => ErrorClass::Retryable,
            // A garbled body from a 2xx or 5xx may be a proxy hiccup; retry it. So is a 429 or 408
            // whatever its body says.
            CloudError::Protocol { status: 429, .. } => ErrorClass::RateLimited,
            CloudError::Protocol { status, .. }
                if *status >= 500 || *status < 300 || *status == 408 =>
            {
                ErrorClass::Retryable
            }
            CloudError::Protocol { .. } => ErrorClass::Terminal,
            CloudError::Config(_) | CloudError::InvalidRequest { .. } => ErrorClass::Terminal,
            CloudError::Deferred { .. } => ErrorClass::Deferred,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.class() == ErrorClass::NotFound
    }

    /// Worth sending again: a retryable error, or a spent budget once its hold has passed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.class(),
            ErrorClass::Retryable | ErrorClass::RateLimited
        )
    }

    /// The API refused the request for good (the spec or the account must change): nothing
    /// was done, and sending it again as it is cannot succeed.
    pub fn is_rejection(&self) -> bool {
        matches!(self.class(), ErrorClass::Terminal | ErrorClass::NeedsHuman)
    }

    /// The API's stable code, or a synthetic one for errors without an answer.
    pub fn code(&self) -> &str {
        match self {
            CloudError::Api { code, .. } => code,
            CloudError::Transport { .. } => "TRANSPORT_ERROR",
            CloudError::Protocol { .. } => "UNEXPECTED_RESPONSE",
            CloudError::Config(_) => "INVALID_CONFIGURATION",
            CloudError::InvalidRequest { .. } => "INVALID_REQUEST",
            CloudError::Deferred { .. } => "DEFERRED",
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            CloudError::Api { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            CloudError::Api { status, .. } | CloudError::Protocol { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What an HTTP status alone says: 404 not found; 429 rate limited; 408 and 5xx worth
/// retrying; 401 and 403 for a human to fix the key or account; anything else terminal.
/// Providers refine it by their codes.
pub fn classify_status(status: u16) -> ErrorClass {
    match status {
        404 => ErrorClass::NotFound,
        429 => ErrorClass::RateLimited,
        408 | 500..=599 => ErrorClass::Retryable,
        401 | 403 => ErrorClass::NeedsHuman,
        _ => ErrorClass::Terminal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> CloudError {
        CloudError::Api {
            status,
            code: code.into(),
            message: "m".into(),
            request_id: Some("req-1".into()),
            retry_after: None,
            class: classify_status(status),
        }
    }

    #[test]
    fn statuses_classify_without_codes() {
        assert_eq!(classify_status(404), ErrorClass::NotFound);
        assert_eq!(classify_status(429), ErrorClass::RateLimited);
        assert_eq!(classify_status(408), ErrorClass::Retryable);
        assert_eq!(classify_status(503), ErrorClass::Retryable);
        assert_eq!(classify_status(400), ErrorClass::Terminal);
        assert_eq!(classify_status(409), ErrorClass::Terminal);
        assert_eq!(classify_status(403), ErrorClass::NeedsHuman);
        assert_eq!(api(401, "UNAUTHORIZED").class(), ErrorClass::NeedsHuman);
        for status in [429, 503] {
            assert!(api(status, "X").is_retryable() && !api(status, "X").is_rejection());
        }
        for status in [400, 401, 403, 409, 422] {
            assert!(api(status, "X").is_rejection() && !api(status, "X").is_retryable());
        }
    }

    #[test]
    fn a_request_that_cannot_be_built_is_terminal_and_a_deferred_read_is_neither_retried_nor_terminal()
     {
        let e = CloudError::InvalidRequest {
            operation: "computes.get".into(),
            message: "id too long".into(),
        };
        assert_eq!(e.class(), ErrorClass::Terminal);
        assert_eq!(e.code(), "INVALID_REQUEST");
        assert!(!e.is_retryable());
        let e = CloudError::Deferred {
            operation: "computes.list".into(),
            retry_in: Duration::from_secs(2),
        };
        assert_eq!(e.class(), ErrorClass::Deferred);
        assert_eq!(e.code(), "DEFERRED");
        assert!(!e.is_retryable() && !e.is_not_found());
        assert!(e.to_string().contains("2s"), "{e}");
    }

    #[test]
    fn message_carries_code_and_request_id() {
        let text = api(400, "VALIDATION_ERROR").to_string();
        assert!(
            text.contains("VALIDATION_ERROR") && text.contains("req-1"),
            "{text}"
        );
    }
}
