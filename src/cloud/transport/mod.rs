//! The one HTTP transport every provider's typed client sends through.
//!
//! A provider describes its API once ([`Wire`]: envelope, error body, codes, rate-limit
//! headers, idempotency header, pagination); its client is a list of typed endpoints that build
//! [`Request`]s and hand them to [`Transport::execute`] / [`Transport::list_all`]. Everything
//! else is here, the same for every cloud:
//!
//! * **Auth**: the key goes into the `Authorization` header (marked sensitive) and nowhere
//!   else: not into errors, logs, tracing fields, metric labels or `Debug` output, which all use
//!   its fingerprint.
//! * **Throttle**: every authenticated attempt (retries included) takes a permit of the key's
//!   [`KeyThrottle`] at the request's priority (and of its operation class, if it has one). A
//!   [`Priority::Routine`] read that cannot have one within the throttle's patience is answered
//!   [`CloudError::Deferred`] without being sent.
//! * **Server feedback**: every answer's rate-limit headers (each set the wire names, with its
//!   window) feed the throttle; a 429 holds the budget it names — the key, or only one
//!   operation class — for the body's retry hint, else `Retry-After`, else the reset.
//! * **Retries**: reads and state-setting writes are retried on retryable errors, bounded
//!   ([`RetryPolicy`]). Creates and other non-idempotent writes are sent **once** per call
//!   ([`Replay::Once`]): after an ambiguous outcome the caller decides (find what it made, or
//!   replay under the same idempotency key where the API has one), never a blind repeat.
//! * **Bounds**: timeouts per request, ids and URLs checked before any budget is spent, answers
//!   no larger than [`MAX_BODY_BYTES`], lists no longer than [`MAX_PAGES`] pages.
//! * **Errors**: the wire parses error bodies into [`CloudError::Api`] with a stable code,
//!   request id and class; anything else is [`CloudError::Protocol`] (never quoting the body)
//!   or [`CloudError::Transport`].

mod headers;
mod list;
mod request;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{Response, Url};
use serde::de::DeserializeOwned;
use tracing::Instrument;

pub use headers::{
    MAX_RETRY_AFTER_HEADER, header_number, rate_headers, retry_after, server_date,
    usable_retry_after,
};
pub use list::{MAX_PAGES, PageAt};
pub use request::{Body, MAX_ID_BYTES, Part, PartValue, Replay, Request};
pub use wire::{
    ApiErrorBody, BodyProblem, LimitedScope, PageInfo, Pagination, RateHeaders, RateLimitHint,
    Success, Wire,
};

use crate::cloud::retry::RetryPolicy;
use crate::cloud::throttle::{KeyThrottle, Op, Policy, RateLimited, registry};
use crate::cloud::{ApiKey, CloudError};

/// Per-request timeout (connect, send and read the whole answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest URL a request may have (well under what proxies and servers accept).
pub const MAX_URL_BYTES: usize = 2048;
/// The largest answer body read; a longer one is a protocol error, so a broken or hostile
/// endpoint cannot make the operator hold gigabytes.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// A decoded successful answer.
#[derive(Debug)]
pub struct Answer<T> {
    pub data: T,
    pub page: Option<PageInfo>,
    pub status: u16,
    pub request_id: Option<String>,
}

/// An HTTP client of one endpoint and key, speaking one [`Wire`]. Cheap to clone.
pub struct Transport<W: Wire> {
    inner: Arc<Inner<W>>,
}

impl<W: Wire> Clone for Transport<W> {
    fn clone(&self) -> Self {
        Transport {
            inner: self.inner.clone(),
        }
    }
}

#[derive(Clone)]
struct Inner<W> {
    wire: W,
    http: reqwest::Client,
    endpoint: String,
    base: Url,
    /// The `Authorization` value, marked sensitive.
    auth: HeaderValue,
    throttle: Arc<KeyThrottle>,
    retry: RetryPolicy,
    timeout: Duration,
}

impl<W: Wire> std::fmt::Debug for Transport<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("provider", &self.inner.wire.provider())
            .field("endpoint", &self.inner.endpoint)
            .field(
                "key",
                &format_args!("sha256:{}…", self.inner.throttle.fingerprint()),
            )
            .field(
                "requests_per_second",
                &self.inner.throttle.requests_per_second(),
            )
            .field("retry", &self.inner.retry)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

impl<W: Wire> Transport<W> {
    /// A transport to `endpoint` with `key`, whose requests go through the key's shared
    /// throttle: registered for ProviderConfig `config` (its `policy` is what that
    /// ProviderConfig asks of the key from now on), or, without one, for tests and tools.
    pub fn new(
        wire: W,
        endpoint: &str,
        key: &ApiKey,
        policy: Policy,
        config: Option<&str>,
    ) -> Result<Self, CloudError> {
        let endpoint = endpoint.trim().trim_end_matches('/').to_string();
        let base = Url::parse(&endpoint)
            .map_err(|e| CloudError::Config(format!("invalid endpoint URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https")
            || base.cannot_be_a_base()
            || base.host().is_none()
        {
            return Err(CloudError::Config(
                "the endpoint must be an http(s) URL such as https://api.example.com/v1".into(),
            ));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(CloudError::Config(
                "the endpoint URL must not carry credentials; the API key is passed separately"
                    .into(),
            ));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(CloudError::Config(
                "the endpoint URL must not have a query or fragment".into(),
            ));
        }
        if key.expose().is_empty() {
            return Err(CloudError::Config("the API key is empty".into()));
        }
        let mut auth = HeaderValue::from_str(&wire.authorization(key.expose())).map_err(|_| {
            CloudError::Config(format!(
                "the API key {} contains characters that cannot be sent in an HTTP header",
                key.fingerprint()
            ))
        })?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(DEFAULT_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| CloudError::Config(format!("cannot build the HTTP client: {e}")))?;
        let provider = wire.provider();
        let throttle = match config {
            Some(config) => registry().throttle_for(provider, key, config, policy),
            None => registry().throttle(provider, key, policy),
        };
        Ok(Transport {
            inner: Arc::new(Inner {
                wire,
                http,
                endpoint,
                base,
                auth,
                throttle,
                retry: RetryPolicy::default(),
                timeout: DEFAULT_TIMEOUT,
            }),
        })
    }

    /// The same transport with another retry policy.
    pub fn with_retry(self, policy: RetryPolicy) -> Self {
        self.rebuilt(|inner| inner.retry = policy)
    }

    /// The same transport with another per-request timeout (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.rebuilt(|inner| inner.timeout = timeout)
    }

    fn rebuilt(self, change: impl FnOnce(&mut Inner<W>)) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        change(&mut inner);
        Transport {
            inner: Arc::new(inner),
        }
    }

    pub fn wire(&self) -> &W {
        &self.inner.wire
    }

    /// The key's shared throttle.
    pub fn throttle(&self) -> &Arc<KeyThrottle> {
        &self.inner.throttle
    }

    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// The key's fingerprint (safe to show).
    pub fn key_fingerprint(&self) -> &str {
        self.inner.throttle.fingerprint()
    }

    /// The answer's data.
    pub async fn data<T: DeserializeOwned>(&self, request: Request) -> Result<T, CloudError> {
        Ok(self.execute::<T>(request).await?.data)
    }

    /// For answers whose data does not matter (deletes): any data, even none, is accepted.
    pub async fn no_data(&self, request: Request) -> Result<(), CloudError> {
        self.execute::<Option<serde::de::IgnoredAny>>(request)
            .await
            .map(|_| ())
    }

    /// Send `request`: retried unless it is [`Replay::Once`]; every attempt goes through the
    /// key's throttle. A request that cannot be built is refused before it spends a permit.
    pub async fn execute<T: DeserializeOwned>(
        &self,
        request: Request,
    ) -> Result<Answer<T>, CloudError> {
        request.check()?;
        let url = self.url(&request);
        if url.as_str().len() > MAX_URL_BYTES {
            return Err(CloudError::InvalidRequest {
                operation: request.operation.to_string(),
                message: format!(
                    "the URL would be {} bytes long, more than {MAX_URL_BYTES}",
                    url.as_str().len()
                ),
            });
        }
        let once = RetryPolicy::no_retries();
        let policy = match request.replay {
            Replay::Retry => &self.inner.retry,
            Replay::Once => &once,
        };
        policy
            .retry(|attempt| self.attempt::<T>(&request, &url, attempt))
            .await
    }

    pub(crate) fn url(&self, request: &Request) -> Url {
        let mut url = self.inner.base.clone();
        // `base` was checked to be a base URL in `new`.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(&request.segments);
        }
        if !request.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(request.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// Wait for the budget the request needs: its class's (if it has one), then the key's.
    ///
    /// A request of an operation class may be deferred on its first attempt only: a later
    /// attempt follows one that may have been applied, and its caller must hear how that
    /// ended, not that nothing was sent.
    async fn permit(&self, request: &Request, attempt: u32) -> Result<(), CloudError> {
        let throttle = &self.inner.throttle;
        let mut op = Op::new(request.priority);
        if let Some((class, subject)) = &request.class {
            op = op.class(class, subject.as_deref());
        }
        if request.may_defer || (request.class.is_some() && attempt <= 1) {
            throttle
                .acquire_op_or_defer(&op)
                .await
                .map_err(|d| CloudError::Deferred {
                    operation: request.operation.to_string(),
                    retry_in: d.retry_in,
                })
        } else {
            throttle.acquire_op(&op).await;
            Ok(())
        }
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        request: &Request,
        url: &Url,
        attempt: u32,
    ) -> Result<Answer<T>, CloudError> {
        let inner = &*self.inner;
        let provider = inner.wire.provider();
        let span = tracing::debug_span!(
            "cloud.request",
            provider,
            method = %request.method,
            path = url.path(),
            operation = request.operation,
            key = %inner.throttle.fingerprint(),
            attempt,
            status = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        async move {
            if request.authenticated {
                self.permit(request, attempt).await?;
            }
            let mut req = inner
                .http
                .request(request.method.clone(), url.clone())
                .timeout(request.timeout.unwrap_or(inner.timeout))
                .header(ACCEPT, "application/json")
                .header(USER_AGENT, concat!("stratus/", env!("CARGO_PKG_VERSION")));
            if request.authenticated {
                req = req.header(AUTHORIZATION, inner.auth.clone());
            }
            if let (Some(key), Some(header)) =
                (request.idempotency_key, inner.wire.idempotency_header())
            {
                req = req.header(header, key.hyphenated().to_string());
            }
            match &request.body {
                Some(Body::Json(bytes)) => {
                    req = req
                        .header(CONTENT_TYPE, "application/json")
                        .body(bytes.clone());
                }
                Some(Body::Multipart(parts)) => req = req.multipart(form(request.operation, parts)?),
                None => {}
            }
            let metrics = crate::metrics::global();
            let started = std::time::Instant::now();
            let seconds = || started.elapsed().as_secs_f64();
            let response = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    metrics.cloud_request(provider, request.operation, "transport", seconds());
                    let err = transport_error(request.operation, e);
                    tracing::debug!(error = %err, "no answer");
                    return Err(err);
                }
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            if request.authenticated {
                self.observe_headers(&headers);
            }
            let body = match read_body(response).await {
                Ok(b) => b,
                Err(BodyError::Transport(e)) => {
                    metrics.cloud_request(provider, request.operation, "transport", seconds());
                    let err = transport_error(request.operation, e);
                    tracing::debug!(status, error = %err, "answer cut off");
                    return Err(err);
                }
                Err(BodyError::TooLarge) => {
                    metrics.cloud_request(provider, request.operation, &status.to_string(), seconds());
                    return Err(CloudError::Protocol {
                        operation: request.operation.to_string(),
                        status,
                        message: format!("the answer is larger than {MAX_BODY_BYTES} bytes"),
                    });
                }
            };
            metrics.cloud_request(provider, request.operation, &status.to_string(), seconds());
            let decoded = decode::<W, T>(&inner.wire, request.operation, status, &headers, &body);
            if request.authenticated && status == 429 {
                self.rate_limited(request, &decoded);
            }
            let result = decoded.result;
            let span = tracing::Span::current();
            span.record("status", status);
            let request_id = match &result {
                Ok(a) => a.request_id.clone(),
                Err(e) => e.request_id().map(str::to_string),
            };
            if let Some(r) = &request_id {
                span.record("request_id", r.as_str());
            }
            match &result {
                Ok(_) => tracing::debug!(status, request_id = request_id.as_deref(), "answered"),
                Err(e) => tracing::debug!(status, request_id = request_id.as_deref(), error = %e, "answered with an error"),
            }
            result
        }
        .instrument(span)
        .await
    }

    /// Feed every rate-limit header set of an answer to the throttle.
    fn observe_headers(&self, headers: &HeaderMap) {
        for names in self.inner.wire.rate_headers() {
            if let Some(facts) = rate_headers(headers, names) {
                self.inner.throttle.observe_headers(facts);
            }
        }
    }

    /// A 429: hold the budget it names (the key, or one operation class) for as long as it
    /// asks, and let an adaptive limit learn from it.
    fn rate_limited<T>(&self, request: &Request, decoded: &Decoded<T>) {
        let throttle = &self.inner.throttle;
        let retry_after = match &decoded.result {
            Err(CloudError::Api { retry_after, .. }) => *retry_after,
            _ => None,
        };
        let hint = decoded.hint.clone().unwrap_or_default();
        let (class, subject) = match hint.scope {
            LimitedScope::Key => (None, None),
            LimitedScope::RequestClass => match &request.class {
                Some((class, subject)) => (Some(class.to_string()), subject.clone()),
                // A route's own limit on a request without a class: hold that route only,
                // never the whole key.
                None => (Some(request.operation.to_string()), None),
            },
            LimitedScope::Class(class) => (Some(class.to_string()), None),
        };
        crate::metrics::global().rate_limited(self.inner.wire.provider(), throttle.fingerprint());
        throttle.rate_limited(RateLimited {
            class,
            subject,
            retry_after: hint.retry_after.or(retry_after),
            limit: hint.limit,
            window: hint.window,
        });
    }
}

/// A decoded answer, and what a rate-limit error body said.
struct Decoded<T> {
    result: Result<Answer<T>, CloudError>,
    hint: Option<RateLimitHint>,
}

/// A multipart form from its parts (a form is consumed by a send, so each attempt builds one).
fn form(operation: &str, parts: &[Part]) -> Result<reqwest::multipart::Form, CloudError> {
    let mut form = reqwest::multipart::Form::new();
    for part in parts {
        form = match &part.value {
            PartValue::Text(text) => form.text(part.name, text.clone()),
            PartValue::File {
                file_name,
                content_type,
                bytes,
            } => {
                let file = reqwest::multipart::Part::bytes(bytes.to_vec())
                    .file_name(file_name.clone())
                    .mime_str(content_type)
                    .map_err(|e| CloudError::InvalidRequest {
                        operation: operation.to_string(),
                        message: format!("the content type of {file_name:?} is invalid: {e}"),
                    })?;
                form.part(part.name, file)
            }
        };
    }
    Ok(form)
}

enum BodyError {
    Transport(reqwest::Error),
    TooLarge,
}

/// The whole body, refusing more than [`MAX_BODY_BYTES`].
async fn read_body(mut response: Response) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn transport_error(operation: &str, e: reqwest::Error) -> CloudError {
    if e.is_builder() {
        return CloudError::InvalidRequest {
            operation: operation.to_string(),
            message: format!("the request cannot be built: {}", e.without_url()),
        };
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off"
    } else {
        "request failed"
    };
    // The URL carries no secret, but the chain below is enough; keep messages short.
    let e = e.without_url();
    let mut message = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    CloudError::Transport {
        operation: operation.to_string(),
        message,
    }
}

/// How the transport reads an answer (status, headers, body) through `wire`: for tests of a
/// provider's wire.
pub fn decode_answer<W: Wire, T: DeserializeOwned>(
    wire: &W,
    operation: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Answer<T>, CloudError> {
    decode(wire, operation, status, headers, body).result
}

/// Turn an answer into data or an error, through the wire. Never panics on any body.
fn decode<W: Wire, T: DeserializeOwned>(
    wire: &W,
    operation: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Decoded<T> {
    let protocol = |BodyProblem(problem): BodyProblem| {
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("no content type");
        CloudError::Protocol {
            operation: operation.to_string(),
            status,
            message: format!(
                "HTTP {status}: {problem} ({content_type}, {} bytes)",
                body.len()
            ),
        }
    };
    let header_request_id = || {
        headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if (200..300).contains(&status) {
        let result = wire
            .success::<T>(status, body)
            .map_err(protocol)
            .map(|success| Answer {
                data: success.data,
                page: success.page,
                status,
                request_id: success.request_id.or_else(header_request_id),
            });
        return Decoded { result, hint: None };
    }
    match wire.error(status, body) {
        Ok(err) => {
            let class = wire.classify(status, &err.code);
            let retry_after = err
                .rate_limit
                .retry_after
                .or_else(|| retry_after(status, headers, wire.rate_headers()));
            Decoded {
                result: Err(CloudError::Api {
                    status,
                    class,
                    code: err.code,
                    message: err.message,
                    request_id: err.request_id.or_else(header_request_id),
                    retry_after,
                }),
                hint: Some(err.rate_limit),
            }
        }
        Err(p) => Decoded {
            result: Err(protocol(p)),
            hint: None,
        },
    }
}

#[cfg(test)]
mod tests;
