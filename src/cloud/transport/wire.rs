//! A provider's wire description: what the shared [`Transport`](super::Transport) needs to know
//! about one cloud's HTTP API and nothing more — how it authenticates, how it wraps answers and
//! errors, how its error codes classify, which headers carry its rate limits, its idempotency
//! header (if any) and how it pages lists.
//!
//! A provider implements [`Wire`] once (Strettch: `providers::strettch::wire`); its typed client
//! is then a list of endpoints over the transport.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::cloud::ErrorClass;

/// A successful answer, unwrapped from the provider's envelope.
#[derive(Debug)]
pub struct Success<T> {
    pub data: T,
    /// Where a list answer stands in the listing (page/limit or cursor facts); `None` for
    /// answers that are not lists or say nothing about it.
    pub page: Option<PageInfo>,
    /// The API's request id, when the envelope carries one (the transport falls back to the
    /// `X-Request-Id` header).
    pub request_id: Option<String>,
}

/// Pagination facts of one list answer, in whichever style the provider uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageInfo {
    /// Page/limit style: how many items the whole listing holds.
    pub total: Option<u64>,
    /// Cursor style: the cursor of the next page (`next_cursor`).
    pub next_cursor: Option<String>,
    /// Cursor style: whether another page follows (`has_more`).
    pub has_more: Option<bool>,
}

/// How a provider pages its lists; [`Transport::list_all`](super::Transport::list_all) walks
/// each style the same way for every provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pagination {
    /// Lists come whole in one answer.
    None,
    /// `?page=1&limit=N` (pages numbered from 1); the answer says the `total`.
    PageLimit {
        page: &'static str,
        limit: &'static str,
        max_limit: u64,
    },
    /// `?limit=N&cursor=C`; the answer says `next_cursor` and/or `has_more`.
    Cursor {
        cursor: &'static str,
        limit: &'static str,
        max_limit: u64,
    },
}

/// The API's error body, parsed into what every provider has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiErrorBody {
    /// A stable code (`VALIDATION_ERROR`, `RATE_LIMIT_EXCEEDED`); never empty.
    pub code: String,
    /// The human message, with the details a user needs folded in (a missing scope, the path
    /// of an invalid field). Never a secret: the API's own text about the request.
    pub message: String,
    pub request_id: Option<String>,
    /// What a rate-limit answer says about the limit it hit (from the body; headers are read
    /// by the transport).
    pub rate_limit: RateLimitHint,
}

/// Which budget a 429 says was exhausted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LimitedScope {
    /// The key's (or its account's) own budget: every request of the key waits.
    #[default]
    Key,
    /// The limit of the request's own operation class (and subject), e.g. a per-app lifecycle
    /// limit: only that class waits.
    RequestClass,
    /// A named operation class (`deploy`), whichever request met it: only that class waits.
    Class(&'static str),
}

/// What a rate-limit error body says, beyond the headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitHint {
    pub scope: LimitedScope,
    /// The body's own retry hint (Vertra's `details.retry_after`); it wins over `Retry-After`.
    pub retry_after: Option<Duration>,
    /// The limit the answer reports, and the window it is over, when it says.
    pub limit: Option<u32>,
    pub window: Option<Duration>,
}

/// Names of one set of rate-limit headers and the window their `limit` counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateHeaders {
    /// Header names that may carry each value; the most conservative value present wins.
    pub limit: &'static [&'static str],
    pub remaining: &'static [&'static str],
    /// Unix seconds, or seconds from now (see `cloud::throttle::until_reset`).
    pub reset: &'static [&'static str],
    /// The window the limit counts over (Strettch: a second; CloudAPI, Vertra: a minute).
    pub window: Duration,
}

/// The standard `X-RateLimit-*` names, per `window`.
pub const fn x_ratelimit(window: Duration) -> RateHeaders {
    RateHeaders {
        limit: &["x-ratelimit-limit"],
        remaining: &["x-ratelimit-remaining"],
        reset: &["x-ratelimit-reset"],
        window,
    }
}

/// Why a body is not what the wire expects. The transport turns it into a protocol error; the
/// text never quotes the body (it may hold anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyProblem(pub String);

/// One cloud's HTTP conventions (see the module docs). Implementations hold no secret: the key
/// is given to [`authorization`](Self::authorization) when a client is built and kept by the
/// transport.
pub trait Wire: Clone + Send + Sync + 'static {
    /// The provider name: a label of metrics and the namespace of throttles.
    fn provider(&self) -> &'static str;

    /// The value of the `Authorization` header for `key`.
    fn authorization(&self, key: &str) -> String {
        format!("Bearer {key}")
    }

    /// The header a create's idempotency key goes in; `None` when the API has none (the engine
    /// then recovers ambiguous creates by finding them, never by sending them again blindly).
    fn idempotency_header(&self) -> Option<&'static str> {
        None
    }

    /// The sets of rate-limit headers the API sends (several when it has several limits).
    fn rate_headers(&self) -> &'static [RateHeaders] {
        &[]
    }

    fn pagination(&self) -> Pagination {
        Pagination::None
    }

    /// Unwrap a 2xx answer's body.
    fn success<T: DeserializeOwned>(
        &self,
        status: u16,
        body: &[u8],
    ) -> Result<Success<T>, BodyProblem>;

    /// Parse a non-2xx answer's body.
    fn error(&self, status: u16, body: &[u8]) -> Result<ApiErrorBody, BodyProblem>;

    /// What an error means for the caller, by status and code.
    fn classify(&self, status: u16, code: &str) -> ErrorClass;
}

/// Why a JSON body does not parse as `what`, without quoting it (the transport adds the
/// content type and length).
pub fn shape_problem(what: &str, body: &[u8], e: &serde_json::Error) -> BodyProblem {
    BodyProblem(if body.iter().all(u8::is_ascii_whitespace) {
        format!("empty body where {what} was expected")
    } else if e.is_syntax() || e.is_eof() {
        format!("body is not JSON where {what} was expected: {e}")
    } else {
        format!("body does not match {what}: {e}")
    })
}
