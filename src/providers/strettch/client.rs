//! The typed Strettch Cloud API client.
//!
//! Every request of a key goes through that key's [`KeyThrottle`] (shared process-wide through
//! [`registry()`]), including retries. Answers are parsed from the documented envelope; anything
//! else becomes [`CloudError::Protocol`]. The rate-limit headers of every answer (plain and
//! `-second` variants, reset read against the answer's `Date`) feed the throttle; a 429 holds the
//! key until `Retry-After` or the reset, and for one window when it says neither usably.
//!
//! Reads and idempotent writes (updates, deletes, start/stop) are retried, bounded
//! ([`RetryPolicy`]) and only for retryable errors. A **create is sent once per call**: one logical
//! attempt with the caller's `Idempotency-Key`, which the caller records before sending. After an
//! ambiguous outcome (timeout, dropped connection, 5xx) the caller decides what to do next — look
//! for the resource, or send the same create again with the same key, which the API answers with
//! the original resource — so the client never spends budget on blind repeats of a write whose
//! fate is unknown.
//!
//! A [`Priority::Routine`] read that cannot have a permit within the throttle's patience is
//! answered [`CloudError::Deferred`] without being sent, so a routine refresh never holds a
//! bounded reconcile worker while the key is busy. A request that cannot be built (an id longer
//! than [`MAX_ID_BYTES`] or with control characters, a URL longer than [`MAX_URL_BYTES`]) is
//! [`CloudError::InvalidRequest`] before it spends any budget.
//!
//! The API key goes into the `Authorization` header (marked sensitive) and nowhere else: not into
//! errors, logs, tracing fields, metric labels or `Debug` output, which all use its fingerprint.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, DATE, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT,
};
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use tracing::Instrument;
use uuid::Uuid;

use crate::cloud::retry::{MAX_RETRY_AFTER, RetryPolicy};
use crate::cloud::throttle::{
    DEFAULT_WINDOW, KeyThrottle, LimitSpec, Policy, Priority, RESET_MARGIN, RateLimitHeaders,
    registry, until_reset,
};
use crate::cloud::{ApiKey, CloudError};
use crate::providers::strettch::model::{
    Compute, ComputeCreate, Domain, DomainCreate, Envelope, ErrorBody, Health, Image, PageMeta,
    Record, RecordWrite, Region, Specification, UpsizeRequest,
};

pub use super::PROVIDER;
pub const DEFAULT_ENDPOINT: &str = "https://api.strettch.cloud/api/v1";
/// The documented limit: 2 requests per second per API key.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 2.0;

/// The documented limits, used for what a ProviderConfig does not set: 2 requests per key per
/// fixed unix second.
pub fn default_limits() -> Vec<LimitSpec> {
    vec![LimitSpec::per_second(DEFAULT_REQUESTS_PER_SECOND)]
}
pub const MAX_PAGE_SIZE: u64 = 100;
/// Per-request timeout (connect, send and read the whole answer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A list walk stops after this many pages even if the server keeps answering full pages.
pub const MAX_PAGES: u64 = 10_000;

const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The rate-limit headers, in the seed's plain form and api-notes' `-second` form.
const LIMIT_HEADERS: [&str; 2] = ["x-ratelimit-limit", "x-ratelimit-limit-second"];
const REMAINING_HEADERS: [&str; 2] = ["x-ratelimit-remaining", "x-ratelimit-remaining-second"];
const RESET_HEADERS: [&str; 2] = ["x-ratelimit-reset", "x-ratelimit-reset-second"];
/// The longest id (one path segment) a request may carry. Strettch ids are short numbers and
/// slugs; anything longer comes from a mistyped `stratus.dev/external-name` and is refused before
/// it is sent.
pub const MAX_ID_BYTES: usize = 256;
/// The longest URL a request may have (well under what proxies and servers accept).
pub const MAX_URL_BYTES: usize = 2048;

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub meta: PageMeta,
}

/// A Strettch Cloud API client bound to one endpoint and key. Cheap to clone.
#[derive(Clone)]
pub struct StrettchClient {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    http: reqwest::Client,
    endpoint: String,
    base: Url,
    /// `Bearer <key>`, marked sensitive.
    auth: HeaderValue,
    throttle: Arc<KeyThrottle>,
    retry: RetryPolicy,
    timeout: Duration,
}

impl std::fmt::Debug for StrettchClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrettchClient")
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

/// What one request is.
struct Call {
    method: Method,
    operation: &'static str,
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    idempotency_key: Option<Uuid>,
    priority: Priority,
    /// Sent with the key and through its throttle (everything but `/health`).
    authenticated: bool,
    /// Retried on retryable errors (everything but creates).
    retries: bool,
    /// May give its place in the throttle's queue up ([`CloudError::Deferred`]): routine reads
    /// that are not the continuation of a paged walk.
    may_defer: bool,
}

impl Call {
    fn new(method: Method, operation: &'static str, segments: &[&str], priority: Priority) -> Self {
        Call {
            method,
            operation,
            segments: segments.iter().map(|s| s.to_string()).collect(),
            query: Vec::new(),
            body: None,
            idempotency_key: None,
            priority,
            authenticated: true,
            retries: true,
            may_defer: priority == Priority::Routine,
        }
    }

    fn get(operation: &'static str, segments: &[&str], priority: Priority) -> Self {
        Self::new(Method::GET, operation, segments, priority)
    }

    fn write(method: Method, operation: &'static str, segments: &[&str]) -> Self {
        Self::new(method, operation, segments, Priority::Write)
    }

    fn json<B: Serialize>(mut self, body: &B) -> Result<Self, CloudError> {
        let bytes = serde_json::to_vec(body).map_err(|e| {
            CloudError::Config(format!(
                "cannot encode the {} request body: {e}",
                self.operation
            ))
        })?;
        self.body = Some(bytes);
        Ok(self)
    }

    fn query(mut self, name: &'static str, value: impl ToString) -> Self {
        self.query.push((name, value.to_string()));
        self
    }

    /// A create: `POST` with an `Idempotency-Key`, sent once (see the module docs).
    fn create<B: Serialize>(
        operation: &'static str,
        segments: &[&str],
        body: &B,
        key: Uuid,
    ) -> Result<Self, CloudError> {
        let mut call = Self::write(Method::POST, operation, segments).json(body)?;
        call.idempotency_key = Some(key);
        call.retries = false;
        Ok(call)
    }

    /// Refuse what cannot be a request of the API, before any budget is spent on it.
    fn check(&self) -> Result<(), CloudError> {
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

/// A decoded successful answer.
#[derive(Debug)]
struct Answer<T> {
    data: T,
    meta: Option<PageMeta>,
    #[allow(dead_code)]
    status: u16,
    #[allow(dead_code)]
    request_id: Option<String>,
}

impl StrettchClient {
    /// A client for `endpoint` (e.g. [`DEFAULT_ENDPOINT`]) using `key`, paced at
    /// `requests_per_second` (`None`: the documented 2 requests/second). The key's throttle is
    /// shared with every other client of the same key; the lowest configured rate wins. For tests
    /// and tools: the operator uses [`for_provider_config`](Self::for_provider_config).
    pub fn new(
        endpoint: &str,
        key: ApiKey,
        requests_per_second: Option<f64>,
    ) -> Result<Self, CloudError> {
        Self::build(endpoint, key, rate_policy(requests_per_second)?, None)
    }

    /// Like [`new`](Self::new), with several limits and a budget group ([`Policy`]). For tests
    /// and tools.
    pub fn with_policy(endpoint: &str, key: ApiKey, policy: Policy) -> Result<Self, CloudError> {
        Self::build(endpoint, key, policy, None)
    }

    /// The client of ProviderConfig `config`: its limits and budget group (checked by
    /// `ProviderConfigSpec::throttle_policy`) are what it asks of the key from now on
    /// (replacing what it asked before, up or down), so the key follows the ProviderConfigs
    /// that use it now.
    pub fn for_provider_config(
        config: &str,
        endpoint: &str,
        key: ApiKey,
        policy: Policy,
    ) -> Result<Self, CloudError> {
        Self::build(endpoint, key, policy, Some(config))
    }

    fn build(
        endpoint: &str,
        key: ApiKey,
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
                "the endpoint must be an http(s) URL such as https://api.strettch.cloud/api/v1"
                    .into(),
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
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
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
        let throttle = match config {
            Some(config) => registry().throttle_for(PROVIDER, &key, config, policy),
            None => registry().throttle(PROVIDER, &key, policy),
        };
        Ok(StrettchClient {
            inner: Arc::new(Inner {
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

    /// The same client with another retry policy.
    pub fn with_retry(self, policy: RetryPolicy) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.retry = policy;
        StrettchClient {
            inner: Arc::new(inner),
        }
    }

    /// The same client with another per-request timeout (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.timeout = timeout;
        StrettchClient {
            inner: Arc::new(inner),
        }
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

    /// The key's fingerprint.
    pub fn key_fingerprint(&self) -> &str {
        self.inner.throttle.fingerprint()
    }

    // ---- system -------------------------------------------------------------------------------

    /// `GET /health`. Needs no key, so it is sent without one and outside the key's throttle.
    pub async fn health(&self) -> Result<Health, CloudError> {
        let mut call = Call::get("health", &["health"], Priority::Routine);
        call.authenticated = false;
        Ok(self.execute::<Health>(call).await?.data)
    }

    // ---- computes -----------------------------------------------------------------------------

    /// One page of `GET /computes` (`limit` is clamped to 1..=[`MAX_PAGE_SIZE`]).
    pub async fn list_computes_page(
        &self,
        page: u64,
        limit: u64,
        p: Priority,
    ) -> Result<Page<Compute>, CloudError> {
        self.page("computes.list", &["computes"], page, limit, p)
            .await
    }

    /// Every compute: walks the pages at [`MAX_PAGE_SIZE`].
    pub async fn list_all_computes(&self, p: Priority) -> Result<Vec<Compute>, CloudError> {
        self.all_pages("computes.list", &["computes"], p, |c: &Compute| {
            c.id.clone()
        })
        .await
    }

    pub async fn get_compute(&self, id: &str, p: Priority) -> Result<Compute, CloudError> {
        self.data(Call::get("computes.get", &["computes", id], p))
            .await
    }

    /// `POST /computes` with `idempotency_key`; a 202 and a replayed 202 both return the compute.
    /// Sent once: after an error whose outcome is unknown, the caller decides (module docs).
    pub async fn create_compute(
        &self,
        req: &ComputeCreate,
        idempotency_key: Uuid,
    ) -> Result<Compute, CloudError> {
        let call = Call::create("computes.create", &["computes"], req, idempotency_key)?;
        self.data(call).await
    }

    /// `DELETE /computes/{id}`.
    pub async fn delete_compute(&self, id: &str) -> Result<(), CloudError> {
        self.no_data(Call::write(
            Method::DELETE,
            "computes.delete",
            &["computes", id],
        ))
        .await
    }

    pub async fn start_compute(&self, id: &str) -> Result<Compute, CloudError> {
        self.data(Call::write(
            Method::POST,
            "computes.start",
            &["computes", id, "start"],
        ))
        .await
    }

    pub async fn stop_compute(&self, id: &str) -> Result<Compute, CloudError> {
        self.data(Call::write(
            Method::POST,
            "computes.stop",
            &["computes", id, "stop"],
        ))
        .await
    }

    pub async fn reboot_compute(&self, id: &str) -> Result<Compute, CloudError> {
        self.data(Call::write(
            Method::POST,
            "computes.reboot",
            &["computes", id, "reboot"],
        ))
        .await
    }

    /// `PATCH /computes/{id}/upsize` with `{newSpecification}` (a specification slug).
    pub async fn upsize_compute(
        &self,
        id: &str,
        new_specification: &str,
    ) -> Result<Compute, CloudError> {
        let body = UpsizeRequest {
            new_specification: new_specification.to_string(),
        };
        let call = Call::write(
            Method::PATCH,
            "computes.upsize",
            &["computes", id, "upsize"],
        )
        .json(&body)?;
        self.data(call).await
    }

    // ---- reference data -----------------------------------------------------------------------

    /// `GET /computes/specifications`, every page (the sandbox pages it; an unpaged answer is
    /// the whole list).
    pub async fn list_specifications(&self, p: Priority) -> Result<Vec<Specification>, CloudError> {
        self.catalog("specifications.list", &["computes", "specifications"], p)
            .await
    }

    pub async fn list_images(&self, p: Priority) -> Result<Vec<Image>, CloudError> {
        self.catalog("images.list", &["images"], p).await
    }

    pub async fn list_regions(&self, p: Priority) -> Result<Vec<Region>, CloudError> {
        self.catalog("regions.list", &["regions"], p).await
    }

    // ---- DNS ----------------------------------------------------------------------------------

    pub async fn list_domains_page(
        &self,
        page: u64,
        limit: u64,
        p: Priority,
    ) -> Result<Page<Domain>, CloudError> {
        self.page("domains.list", &["domains"], page, limit, p)
            .await
    }

    /// Every domain (all pages).
    pub async fn list_domains(&self, p: Priority) -> Result<Vec<Domain>, CloudError> {
        self.all_pages("domains.list", &["domains"], p, |d: &Domain| d.id.clone())
            .await
    }

    pub async fn get_domain(&self, id: &str, p: Priority) -> Result<Domain, CloudError> {
        self.data(Call::get("domains.get", &["domains", id], p))
            .await
    }

    pub async fn create_domain(
        &self,
        req: &DomainCreate,
        idempotency_key: Uuid,
    ) -> Result<Domain, CloudError> {
        let call = Call::create("domains.create", &["domains"], req, idempotency_key)?;
        self.data(call).await
    }

    pub async fn delete_domain(&self, id: &str) -> Result<(), CloudError> {
        self.no_data(Call::write(
            Method::DELETE,
            "domains.delete",
            &["domains", id],
        ))
        .await
    }

    pub async fn list_records_page(
        &self,
        domain_id: &str,
        page: u64,
        limit: u64,
        p: Priority,
    ) -> Result<Page<Record>, CloudError> {
        self.page(
            "records.list",
            &["domains", domain_id, "records"],
            page,
            limit,
            p,
        )
        .await
    }

    /// Every record of a domain (all pages).
    pub async fn list_records(
        &self,
        domain_id: &str,
        p: Priority,
    ) -> Result<Vec<Record>, CloudError> {
        self.all_pages(
            "records.list",
            &["domains", domain_id, "records"],
            p,
            |r: &Record| r.id.clone(),
        )
        .await
    }

    pub async fn get_record(
        &self,
        domain_id: &str,
        id: &str,
        p: Priority,
    ) -> Result<Record, CloudError> {
        self.data(Call::get(
            "records.get",
            &["domains", domain_id, "records", id],
            p,
        ))
        .await
    }

    pub async fn create_record(
        &self,
        domain_id: &str,
        req: &RecordWrite,
        idempotency_key: Uuid,
    ) -> Result<Record, CloudError> {
        let call = Call::create(
            "records.create",
            &["domains", domain_id, "records"],
            req,
            idempotency_key,
        )?;
        self.data(call).await
    }

    pub async fn update_record(
        &self,
        domain_id: &str,
        id: &str,
        req: &RecordWrite,
    ) -> Result<Record, CloudError> {
        let call = Call::write(
            Method::PUT,
            "records.update",
            &["domains", domain_id, "records", id],
        )
        .json(req)?;
        self.data(call).await
    }

    pub async fn delete_record(&self, domain_id: &str, id: &str) -> Result<(), CloudError> {
        self.no_data(Call::write(
            Method::DELETE,
            "records.delete",
            &["domains", domain_id, "records", id],
        ))
        .await
    }

    // ---- plumbing -----------------------------------------------------------------------------

    async fn data<T: DeserializeOwned>(&self, call: Call) -> Result<T, CloudError> {
        Ok(self.execute::<T>(call).await?.data)
    }

    /// For answers whose `data` does not matter (deletes): any `data`, even none, is accepted.
    async fn no_data(&self, call: Call) -> Result<(), CloudError> {
        self.execute::<Option<IgnoredAny>>(call).await.map(|_| ())
    }

    async fn page<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        segments: &[&str],
        page: u64,
        limit: u64,
        p: Priority,
    ) -> Result<Page<T>, CloudError> {
        self.page_of_walk(operation, segments, page, limit, p, true)
            .await
    }

    /// One page; `may_defer: false` for the pages after the first of a walk, whose budget is
    /// better spent finishing it than wasted by starting over.
    async fn page_of_walk<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        segments: &[&str],
        page: u64,
        limit: u64,
        p: Priority,
        may_defer: bool,
    ) -> Result<Page<T>, CloudError> {
        let page = page.max(1);
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let mut call = Call::get(operation, segments, p)
            .query("page", page)
            .query("limit", limit);
        call.may_defer &= may_defer;
        let answer = self.execute::<Vec<T>>(call).await?;
        let meta = answer.meta.ok_or_else(|| CloudError::Protocol {
            operation: operation.to_string(),
            status: answer.status,
            message: "a list answer without `meta` (total, page, limit)".into(),
        })?;
        Ok(Page {
            items: answer.data,
            meta,
        })
    }

    /// Walk every page at [`MAX_PAGE_SIZE`]; stops at a short page or once `meta.total` items were
    /// seen. Items that moved between pages while walking are kept once. A full page that adds no
    /// new id means the server is repeating itself (whatever `meta.total` says): the walk stops
    /// there with [`CloudError::Protocol`] rather than costing up to [`MAX_PAGES`] requests, and
    /// rather than passing a listing that may be incomplete off as the whole list.
    async fn all_pages<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        segments: &[&str],
        p: Priority,
        id: impl Fn(&T) -> String,
    ) -> Result<Vec<T>, CloudError> {
        let mut seen = HashSet::new();
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let Page { items, meta } = self
                .page_of_walk::<T>(operation, segments, page, MAX_PAGE_SIZE, p, page == 1)
                .await?;
            let short = (items.len() as u64) < MAX_PAGE_SIZE;
            let before = all.len();
            for item in items {
                if seen.insert(id(&item)) {
                    all.push(item);
                }
            }
            if short || all.len() as u64 >= meta.total {
                return Ok(all);
            }
            if all.len() == before {
                return Err(CloudError::Protocol {
                    operation: operation.to_string(),
                    status: 200,
                    message: format!(
                        "page {page} repeats ids already listed (meta.total says {}, {} seen): the listing does not advance",
                        meta.total,
                        all.len()
                    ),
                });
            }
        }
        Err(CloudError::Protocol {
            operation: operation.to_string(),
            status: 200,
            message: format!("the list did not end after {MAX_PAGES} pages"),
        })
    }

    /// A reference-data list: asked for in pages of [`MAX_PAGE_SIZE`]; an answer without `meta`
    /// is taken as the whole list.
    async fn catalog<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        segments: &[&str],
        p: Priority,
    ) -> Result<Vec<T>, CloudError> {
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let mut call = Call::get(operation, segments, p)
                .query("page", page)
                .query("limit", MAX_PAGE_SIZE);
            call.may_defer &= page == 1;
            let answer = self.execute::<Vec<T>>(call).await?;
            let n = answer.data.len() as u64;
            all.extend(answer.data);
            match answer.meta {
                Some(meta) if n == MAX_PAGE_SIZE && (all.len() as u64) < meta.total => {}
                _ => return Ok(all),
            }
        }
        Ok(all)
    }

    fn url(&self, call: &Call) -> Url {
        let mut url = self.inner.base.clone();
        {
            // `base` was checked to be a base URL in `new`.
            if let Ok(mut path) = url.path_segments_mut() {
                path.pop_if_empty().extend(&call.segments);
            }
        }
        if !call.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(call.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// Send `call`, with retries unless it is a create; every attempt goes through the key's
    /// throttle. A call that cannot be a request is refused before it spends a permit.
    async fn execute<T: DeserializeOwned>(&self, call: Call) -> Result<Answer<T>, CloudError> {
        call.check()?;
        let url = self.url(&call);
        if url.as_str().len() > MAX_URL_BYTES {
            return Err(CloudError::InvalidRequest {
                operation: call.operation.to_string(),
                message: format!(
                    "the URL would be {} bytes long, more than {MAX_URL_BYTES}",
                    url.as_str().len()
                ),
            });
        }
        let once = RetryPolicy::no_retries();
        let policy = if call.retries {
            &self.inner.retry
        } else {
            &once
        };
        policy
            .retry(|attempt| self.attempt::<T>(&call, &url, attempt))
            .await
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        call: &Call,
        url: &Url,
        attempt: u32,
    ) -> Result<Answer<T>, CloudError> {
        let inner = &*self.inner;
        let span = tracing::debug_span!(
            "strettch.request",
            method = %call.method,
            path = url.path(),
            operation = call.operation,
            key = %inner.throttle.fingerprint(),
            attempt,
            status = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        async move {
            if call.authenticated {
                if call.may_defer {
                    inner
                        .throttle
                        .acquire_or_defer(call.priority)
                        .await
                        .map_err(|d| CloudError::Deferred {
                            operation: call.operation.to_string(),
                            retry_in: d.retry_in,
                        })?;
                } else {
                    inner.throttle.acquire(call.priority).await;
                }
            }
            let mut req = inner
                .http
                .request(call.method.clone(), url.clone())
                .timeout(inner.timeout)
                .header(ACCEPT, "application/json")
                .header(USER_AGENT, concat!("stratus/", env!("CARGO_PKG_VERSION")));
            if call.authenticated {
                req = req.header(AUTHORIZATION, inner.auth.clone());
            }
            if let Some(key) = call.idempotency_key {
                req = req.header(IDEMPOTENCY_KEY, key.hyphenated().to_string());
            }
            if let Some(body) = &call.body {
                req = req.header(CONTENT_TYPE, "application/json").body(body.clone());
            }
            let metrics = crate::metrics::global();
            let started = std::time::Instant::now();
            let response = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    metrics.cloud_request(PROVIDER, call.operation, "transport", started.elapsed().as_secs_f64());
                    let err = transport_error(call.operation, e);
                    tracing::debug!(error = %err, "no answer");
                    return Err(err);
                }
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            if call.authenticated {
                self.observe(status, &headers);
            }
            let body = match response.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    metrics.cloud_request(PROVIDER, call.operation, "transport", started.elapsed().as_secs_f64());
                    let err = transport_error(call.operation, e);
                    tracing::debug!(status, error = %err, "answer cut off");
                    return Err(err);
                }
            };
            metrics.cloud_request(PROVIDER, call.operation, &status.to_string(), started.elapsed().as_secs_f64());
            let result = decode::<T>(call.operation, status, &headers, &body);
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

    /// Feed an answer's rate-limit facts to the throttle; a 429 holds the key.
    fn observe(&self, status: u16, headers: &HeaderMap) {
        let throttle = &self.inner.throttle;
        throttle.observe_headers(rate_headers(headers));
        if status == 429 {
            crate::metrics::global().rate_limited(PROVIDER, throttle.fingerprint());
            let wait = retry_after(status, headers).unwrap_or(DEFAULT_WINDOW);
            tracing::debug!(key = %throttle.fingerprint(), hold_ms = wait.as_millis() as u64, "429: holding the key");
            throttle.hold_for(wait.min(MAX_RETRY_AFTER) + RESET_MARGIN);
        }
    }
}

/// The single-rate form: `None` is the documented rate.
fn rate_policy(requests_per_second: Option<f64>) -> Result<Policy, CloudError> {
    let rps = requests_per_second.unwrap_or(DEFAULT_REQUESTS_PER_SECOND);
    if !(rps.is_finite() && rps > 0.0) {
        return Err(CloudError::Config(format!(
            "requests per second must be a positive number, got {rps}"
        )));
    }
    Ok(Policy::from(rps))
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

fn header_number(headers: &HeaderMap, name: &str) -> Option<u64> {
    let text = headers.get(name)?.to_str().ok()?.trim();
    text.parse::<u64>().ok().or_else(|| {
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.ceil() as u64)
    })
}

/// The answer's `Date`, unix seconds: the server's clock.
fn server_date(headers: &HeaderMap) -> Option<u64> {
    let text = headers.get(DATE)?.to_str().ok()?;
    let when = jiff::fmt::rfc2822::parse(text.trim()).ok()?;
    u64::try_from(when.timestamp().as_second()).ok()
}

/// Both header variants, most conservative value of each, and the answer's `Date`.
fn rate_headers(headers: &HeaderMap) -> RateLimitHeaders {
    let all =
        |names: [&'static str; 2]| names.into_iter().filter_map(|n| header_number(headers, n));
    let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    RateLimitHeaders {
        limit: all(LIMIT_HEADERS).min().map(clamp),
        remaining: all(REMAINING_HEADERS).min().map(clamp),
        reset: all(RESET_HEADERS).max(),
        date: server_date(headers),
        // Strettch's headers count one unix second.
        window: None,
    }
}

/// A `Retry-After` that asks for a wait: seconds, or an HTTP date read against the answer's `Date`
/// (the local clock only when there is none). Missing, unparseable, zero or negative: `None`.
fn usable_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs > 0.0)
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let now = match server_date(headers).and_then(|d| i64::try_from(d).ok()) {
        Some(date) => jiff::Timestamp::from_second(date).ok()?,
        None => jiff::Timestamp::now(),
    };
    Duration::try_from(when.duration_since(now))
        .ok()
        .filter(|d| !d.is_zero())
}

/// How long the API asks to wait: a usable `Retry-After`; on a 429 without one, the time until the
/// rate-limit reset ([`until_reset`]: against `Date`, plausible, never zero), or one window.
fn retry_after(status: u16, headers: &HeaderMap) -> Option<Duration> {
    if let Some(wait) = usable_retry_after(headers) {
        return Some(wait);
    }
    if status == 429 {
        let rate = rate_headers(headers);
        return Some(match rate.reset {
            Some(reset) => until_reset(reset, rate.date, std::time::SystemTime::now()),
            None => DEFAULT_WINDOW,
        });
    }
    None
}

/// Why a body is not what was expected, without quoting it.
fn shape_problem(what: &str, headers: &HeaderMap, body: &[u8], e: &serde_json::Error) -> String {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no content type");
    if body.iter().all(u8::is_ascii_whitespace) {
        format!("empty body where {what} was expected ({content_type})")
    } else if e.is_syntax() || e.is_eof() {
        format!(
            "body is not JSON ({content_type}, {} bytes) where {what} was expected: {e}",
            body.len()
        )
    } else {
        format!("body does not match {what}: {e}")
    }
}

/// Turn an answer into data or an error. Never panics on any body.
fn decode<T: DeserializeOwned>(
    operation: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Answer<T>, CloudError> {
    let protocol = |message: String| CloudError::Protocol {
        operation: operation.to_string(),
        status,
        message,
    };
    let header_request_id = || {
        headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if (200..300).contains(&status) {
        let envelope: Envelope<T> = serde_json::from_slice(body).map_err(|e| {
            protocol(shape_problem(
                "the success envelope {success, data, ...}",
                headers,
                body,
                &e,
            ))
        })?;
        if !envelope.success {
            return Err(protocol(format!(
                "HTTP {status} answer says success=false{}",
                envelope
                    .message
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )));
        }
        return Ok(Answer {
            data: envelope.data,
            meta: envelope.meta,
            status,
            request_id: envelope.request_id.or_else(header_request_id),
        });
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(err) if !err.success && !err.code.is_empty() => Err(CloudError::Api {
            status,
            class: super::model::codes::classify(status, &err.code),
            code: err.code,
            message: err.message,
            request_id: err.request_id.or_else(header_request_id),
            retry_after: retry_after(status, headers),
        }),
        Ok(_) => Err(protocol(format!(
            "HTTP {status} answer is not an error envelope (success or code missing)"
        ))),
        Err(e) => Err(protocol(format!(
            "HTTP {status}: {}",
            shape_problem(
                "the error envelope {success: false, code, message}",
                headers,
                body,
                &e
            )
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ErrorClass;
    use crate::providers::strettch::model::ComputeState;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const COMPUTE: &str = r#"{"id":"325","hostName":"web-1","state":"RUNNING","image":"UBUNTU-24.04",
        "specification":"S-1C-1G","region":"KGL-1","ipv4":"195.15.0.73","tags":["a"]}"#;

    #[test]
    fn decodes_the_success_envelope() {
        let body = format!(
            r#"{{"success":true,"message":"ok","data":{COMPUTE},"requestId":"r-1","timestamp":"t"}}"#
        );
        let a = decode::<Compute>("computes.get", 200, &HeaderMap::new(), body.as_bytes()).unwrap();
        assert_eq!(a.data.id, "325");
        assert_eq!(a.data.state, ComputeState::Running);
        assert_eq!(a.request_id.as_deref(), Some("r-1"));

        let body = format!(
            r#"{{"success":true,"data":[{COMPUTE}],"meta":{{"total":1,"page":1,"limit":100}}}}"#
        );
        let a = decode::<Vec<Compute>>("computes.list", 200, &HeaderMap::new(), body.as_bytes())
            .unwrap();
        assert_eq!(a.data.len(), 1);
        assert_eq!(
            a.meta,
            Some(PageMeta {
                total: 1,
                page: 1,
                limit: 100
            })
        );
    }

    #[test]
    fn odd_success_bodies_are_protocol_errors() {
        let h = headers(&[("content-type", "text/html")]);
        let cases: &[(&str, &str)] = &[
            ("", "empty body"),
            ("   ", "empty body"),
            ("<html>502 Bad Gateway</html>", "not JSON"),
            ("{\"success\":true,", "not JSON"),
            ("null", "does not match"),
            ("[]", "does not match"),
            ("{\"success\":true}", "missing field `data`"),
            ("{\"success\":true,\"data\":\"325\"}", "does not match"),
            ("{\"success\":true,\"data\":{\"id\":325}}", "does not match"),
            ("{\"success\":\"yes\",\"data\":{}}", "does not match"),
            ("{\"success\":false,\"data\":null}", "does not match"),
            ("\u{0}\u{1}\u{ff}", "not JSON"),
        ];
        for (body, expect) in cases {
            let e = decode::<Compute>("computes.get", 200, &h, body.as_bytes()).unwrap_err();
            match &e {
                CloudError::Protocol {
                    operation,
                    status,
                    message,
                } => {
                    assert_eq!(operation, "computes.get");
                    assert_eq!(*status, 200);
                    assert!(message.contains(expect), "{body:?}: {message}");
                }
                other => panic!("{body:?}: {other:?}"),
            }
            assert!(e.is_retryable(), "a garbled 2xx may be a hiccup: {e}");
        }
        let e = decode::<Compute>(
            "computes.get",
            200,
            &h,
            format!(r#"{{"success":false,"data":{COMPUTE}}}"#).as_bytes(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("success=false"), "{e}");
        // Invalid UTF-8 inside a string.
        let bytes = b"{\"success\":true,\"data\":{\"id\":\"\xff\"}}";
        assert!(matches!(
            decode::<Compute>("x", 200, &h, bytes),
            Err(CloudError::Protocol { .. })
        ));
        // Deletes accept any data, or none.
        for body in [
            "{\"success\":true}",
            "{\"success\":true,\"data\":null}",
            "{\"success\":true,\"data\":{\"id\":\"1\"}}",
        ] {
            decode::<Option<IgnoredAny>>("computes.delete", 202, &h, body.as_bytes()).unwrap();
        }
        assert!(decode::<Option<IgnoredAny>>("computes.delete", 202, &h, b"").is_err());
    }

    #[test]
    fn error_envelopes_become_api_errors() {
        let body = br#"{"success":false,"code":"VALIDATION_ERROR","message":"hostName is required","requestId":"r-9"}"#;
        let e = decode::<Compute>("computes.create", 400, &HeaderMap::new(), body).unwrap_err();
        match &e {
            CloudError::Api {
                status,
                code,
                message,
                request_id,
                retry_after,
                ..
            } => {
                assert_eq!(*status, 400);
                assert_eq!(code, "VALIDATION_ERROR");
                assert_eq!(message, "hostName is required");
                assert_eq!(request_id.as_deref(), Some("r-9"));
                assert_eq!(*retry_after, None);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.class(), ErrorClass::Terminal);

        let body = br#"{"success":false,"code":"COMPUTE_NOT_FOUND","message":"no"}"#;
        let e = decode::<Compute>(
            "computes.get",
            404,
            &headers(&[("x-request-id", "hdr-1")]),
            body,
        )
        .unwrap_err();
        assert!(e.is_not_found());
        assert_eq!(e.request_id(), Some("hdr-1"));

        for (status, code, class) in [
            (401, "UNAUTHORIZED", ErrorClass::Terminal),
            (409, "CONFLICT", ErrorClass::Terminal),
            (422, "UNPROCESSABLE_ENTITY", ErrorClass::Terminal),
            (500, "INTERNAL_SERVER_ERROR", ErrorClass::Retryable),
            (503, "SERVICE_UNAVAILABLE", ErrorClass::Retryable),
        ] {
            let body = format!(r#"{{"success":false,"code":"{code}","message":"m"}}"#);
            let e =
                decode::<Compute>("op", status, &HeaderMap::new(), body.as_bytes()).unwrap_err();
            assert_eq!(e.class(), class, "{e}");
            assert_eq!(e.code(), code);
        }
    }

    #[test]
    fn odd_error_bodies_are_protocol_errors_classified_by_status() {
        let h = headers(&[("content-type", "text/html")]);
        for (status, retryable) in [
            (502, true),
            (503, true),
            (429, true),
            (404, false),
            (400, false),
        ] {
            for body in [
                "",
                "<html>oops</html>",
                "{\"error\":\"x\"}",
                "{\"success\":true,\"code\":\"X\"}",
                "[1,2]",
            ] {
                let e = decode::<Compute>("op", status, &h, body.as_bytes()).unwrap_err();
                assert!(
                    matches!(e, CloudError::Protocol { .. }),
                    "{status} {body:?}: {e:?}"
                );
                assert_eq!(e.is_retryable(), retryable, "{status} {body:?}: {e}");
                assert!(
                    !e.is_not_found(),
                    "a bare 404 is not proof the resource is gone"
                );
            }
        }
    }

    #[test]
    fn retry_after_from_header_or_reset() {
        let body = br#"{"success":false,"code":"TOO_MANY_REQUESTS","message":"slow down"}"#;
        let e = decode::<Compute>("op", 429, &headers(&[("retry-after", "3")]), body).unwrap_err();
        assert!(e.is_retryable());
        match e {
            CloudError::Api { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(3)))
            }
            other => panic!("{other:?}"),
        }
        let now = jiff::Timestamp::now().as_second() as u64;
        let h = headers(&[
            ("x-ratelimit-limit", "2"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &(now + 2).to_string()),
        ]);
        match decode::<Compute>("op", 429, &h, body).unwrap_err() {
            CloudError::Api {
                retry_after: Some(d),
                ..
            } => {
                assert!(
                    d > Duration::from_millis(900) && d <= Duration::from_secs(2),
                    "{d:?}"
                )
            }
            other => panic!("{other:?}"),
        }
        let date = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(5))
            .unwrap()
            .strftime("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let d = retry_after(503, &headers(&[("retry-after", &date)])).unwrap();
        assert!(
            d > Duration::from_secs(3) && d <= Duration::from_secs(5),
            "{date} {d:?}"
        );
        assert_eq!(retry_after(503, &headers(&[("retry-after", "soon")])), None);
        assert_eq!(
            retry_after(500, &h),
            None,
            "the reset only stands in on a 429"
        );
    }

    #[test]
    fn both_header_variants_are_read_most_conservative_wins() {
        let h = headers(&[
            ("x-ratelimit-limit", "2"),
            ("x-ratelimit-remaining", "1"),
            ("x-ratelimit-reset", "1776410380"),
            ("x-ratelimit-limit-second", "30"),
            ("x-ratelimit-remaining-second", "0"),
            ("x-ratelimit-reset-second", "1776410381"),
        ]);
        assert_eq!(
            rate_headers(&h),
            RateLimitHeaders {
                limit: Some(2),
                remaining: Some(0),
                reset: Some(1776410381),
                date: None,
                window: None,
            }
        );
        let h = headers(&[
            ("x-ratelimit-remaining-second", "7"),
            ("x-ratelimit-limit", "junk"),
        ]);
        assert_eq!(
            rate_headers(&h),
            RateLimitHeaders {
                limit: None,
                remaining: Some(7),
                reset: None,
                date: None,
                window: None,
            }
        );
        assert_eq!(rate_headers(&HeaderMap::new()), RateLimitHeaders::default());
    }

    #[test]
    fn construction_validates_and_never_shows_the_key() {
        let secret = "sk-live-unit-test-secret-1234";
        let c =
            StrettchClient::new("http://127.0.0.1:9/api/v1/", ApiKey::new(secret), None).unwrap();
        assert_eq!(c.endpoint(), "http://127.0.0.1:9/api/v1");
        let shown = format!("{c:?} {:?}", c.throttle());
        assert!(
            !shown.contains(secret) && !shown.contains("unit-test-secret"),
            "{shown}"
        );
        assert!(
            shown.contains(&ApiKey::new(secret).fingerprint()),
            "{shown}"
        );
        assert_eq!(
            c.throttle().requests_per_second(),
            DEFAULT_REQUESTS_PER_SECOND
        );

        let url = c.url(
            &Call::get("x", &["domains", "a/b c", "records"], Priority::Routine).query("page", 2),
        );
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/api/v1/domains/a%2Fb%20c/records?page=2"
        );

        for (endpoint, rps) in [
            ("not a url", None),
            ("ftp://x/api/v1", None),
            ("https://user:pw@api.example/api/v1", None),
            ("http://127.0.0.1:9", Some(0.0)),
            ("http://127.0.0.1:9", Some(f64::NAN)),
        ] {
            let e = StrettchClient::new(endpoint, ApiKey::new(secret), rps).unwrap_err();
            assert!(matches!(e, CloudError::Config(_)), "{endpoint}: {e:?}");
            assert!(!format!("{e:?} {e}").contains(secret));
            assert!(!format!("{e}").contains("pw"), "{e}");
        }
        assert!(StrettchClient::new("http://x", ApiKey::new("  "), None).is_err());
        let e = StrettchClient::new("http://x", ApiKey::new("bad\nkey-secret"), None).unwrap_err();
        assert!(!format!("{e:?}").contains("key-secret"), "{e:?}");
    }

    // ---- against a scripted local server --------------------------------------------------------

    use axum::extract::State;
    use axum::http::{HeaderMap as AxumHeaders, StatusCode};
    use axum::response::{IntoResponse, Response};
    use parking_lot::Mutex;

    /// Status, headers, body.
    type Canned = (u16, Vec<(&'static str, String)>, String);

    #[derive(Clone, Default)]
    struct Script {
        /// Answers to give, in order; the last one repeats.
        answers: Arc<Mutex<Vec<Canned>>>,
        seen: Arc<Mutex<Vec<AxumHeaders>>>,
    }

    async fn scripted(State(s): State<Script>, headers: AxumHeaders) -> Response {
        s.seen.lock().push(headers);
        let (status, hs, body) = {
            let mut a = s.answers.lock();
            if a.len() > 1 {
                a.remove(0)
            } else {
                a[0].clone()
            }
        };
        let mut resp = (StatusCode::from_u16(status).unwrap(), body).into_response();
        for (k, v) in hs {
            resp.headers_mut().insert(k, v.parse().unwrap());
        }
        resp
    }

    async fn serve(answers: Vec<Canned>) -> (String, Script) {
        let script = Script {
            answers: Arc::new(Mutex::new(answers)),
            ..Default::default()
        };
        let app = axum::Router::new()
            .fallback(scripted)
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/api/v1"), script)
    }

    fn fast_retry() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
        }
    }

    fn ok_compute(status: u16) -> (u16, Vec<(&'static str, String)>, String) {
        (
            status,
            vec![],
            format!(r#"{{"success":true,"data":{COMPUTE}}}"#),
        )
    }

    fn err(status: u16, code: &str) -> (u16, Vec<(&'static str, String)>, String) {
        (
            status,
            vec![],
            format!(r#"{{"success":false,"code":"{code}","message":"m","requestId":"rq"}}"#),
        )
    }

    fn compute_create() -> ComputeCreate {
        ComputeCreate {
            host_name: "web-1".into(),
            image: "UBUNTU-24.04".into(),
            region: "KGL-1".into(),
            specification: "S-1C-1G".into(),
            public_keys: vec!["ssh-ed25519 AAAA".into()],
            with_public_ip: true,
            tags: vec![],
        }
    }

    #[tokio::test]
    async fn a_create_is_sent_once_even_on_a_503_with_its_idempotency_key_and_bearer_auth() {
        let (url, script) = serve(vec![err(503, "INTERNAL_SERVER_ERROR"), ok_compute(202)]).await;
        let secret = "sk-unit-create-once-secret";
        let c = StrettchClient::new(&url, ApiKey::new(secret), Some(50.0))
            .unwrap()
            .with_retry(fast_retry());
        let key = crate::cloud::idempotency::idempotency_key("uid", "create", 0);
        let e = c.create_compute(&compute_create(), key).await.unwrap_err();
        assert_eq!(e.status(), Some(503));
        assert!(e.is_retryable(), "the outcome is unknown: {e}");
        assert_eq!(script.seen.lock().len(), 1, "one logical attempt");
        // The caller decides to send it again, with the same key.
        let got = c.create_compute(&compute_create(), key).await.unwrap();
        assert_eq!(got.id, "325");
        let seen = script.seen.lock();
        assert_eq!(seen.len(), 2);
        for h in seen.iter() {
            assert_eq!(h["idempotency-key"], key.to_string().as_str());
            assert_eq!(h["authorization"], format!("Bearer {secret}").as_str());
            assert_eq!(h["content-type"], "application/json");
        }
    }

    #[tokio::test]
    async fn no_create_is_retried_inside_the_client() {
        let domain = DomainCreate {
            domain: "example.com".into(),
        };
        let record = RecordWrite {
            name: "www".into(),
            record_type: crate::providers::strettch::model::RecordType::A,
            value: "192.0.2.1".into(),
            ttl: Some(300),
            priority: None,
            weight: None,
            port: None,
            comment: None,
        };
        for n in 0..3 {
            let (url, script) = serve(vec![err(503, "INTERNAL_SERVER_ERROR")]).await;
            let c = StrettchClient::new(&url, ApiKey::new(format!("sk-unit-once-{n}")), Some(50.0))
                .unwrap()
                .with_retry(fast_retry());
            let key = crate::cloud::idempotency::idempotency_key("uid", "create", n);
            let e = match n {
                0 => c.create_compute(&compute_create(), key).await.err(),
                1 => c.create_domain(&domain, key).await.err(),
                _ => c.create_record("7", &record, key).await.err(),
            };
            assert!(e.expect("503").is_retryable());
            assert_eq!(script.seen.lock().len(), 1, "create {n} was sent once");
            // Reads and idempotent writes still retry.
            let before = script.seen.lock().len();
            c.get_compute("325", Priority::Urgent).await.unwrap_err();
            c.delete_compute("325").await.unwrap_err();
            assert_eq!(script.seen.lock().len() - before, 8, "4 attempts each");
        }
    }

    #[tokio::test]
    async fn a_request_that_cannot_be_built_is_terminal_and_spends_no_permit() {
        let (url, script) = serve(vec![ok_compute(200)]).await;
        let c = StrettchClient::new(&url, ApiKey::new("sk-unit-invalid-id"), Some(50.0))
            .unwrap()
            .with_retry(fast_retry());
        let long = "7".repeat(MAX_ID_BYTES + 1);
        let huge = "x".repeat(100_000);
        for id in [
            long.as_str(),
            huge.as_str(),
            "a\nb",
            "tab\there",
            "\u{7f}",
            "",
            ".",
            "..",
        ] {
            let errors = [
                c.get_compute(id, Priority::Urgent).await.unwrap_err(),
                c.delete_compute(id).await.unwrap_err(),
                c.start_compute(id).await.unwrap_err(),
                c.upsize_compute(id, "S-2C-4G").await.unwrap_err(),
                c.get_record(id, "1", Priority::Routine).await.unwrap_err(),
                c.list_records(id, Priority::Routine).await.unwrap_err(),
            ];
            for e in errors {
                assert!(
                    matches!(e, CloudError::InvalidRequest { .. }),
                    "{id:.20?}: {e:?}"
                );
                assert_eq!(e.class(), ErrorClass::Terminal);
                assert_eq!(e.code(), "INVALID_REQUEST");
                assert!(e.to_string().len() < 400, "the message quotes no huge id");
            }
        }
        // Ids that fit but make too long a URL together.
        let half = "9".repeat(MAX_ID_BYTES);
        let mut segments = vec!["domains"];
        segments.extend(std::iter::repeat_n(
            half.as_str(),
            MAX_URL_BYTES / MAX_ID_BYTES + 1,
        ));
        let e = c
            .data::<Compute>(Call::get("x", &segments, Priority::Urgent))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "INVALID_REQUEST", "{e}");
        assert_eq!(script.seen.lock().len(), 0, "nothing reached the server");
        assert_eq!(c.throttle().permits_granted(), 0, "no permit was spent");
        // A plausible id still goes out.
        c.get_compute(&"7".repeat(MAX_ID_BYTES), Priority::Urgent)
            .await
            .unwrap();
        assert_eq!(script.seen.lock().len(), 1);
    }

    #[test]
    fn a_429_without_a_usable_retry_after_holds_the_key_for_one_window() {
        let now = jiff::Timestamp::now();
        let past = now
            .checked_sub(jiff::SignedDuration::from_secs(30))
            .unwrap()
            .strftime("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let date = now.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let cases: [&[(&'static str, &str)]; 7] = [
            &[],
            &[("retry-after", "soon")],
            &[("retry-after", "0")],
            &[("retry-after", "-3")],
            &[("retry-after", &past)],
            &[("retry-after", &past), ("date", &date)],
            // A reset in milliseconds is not believed either.
            &[
                ("x-ratelimit-reset", "1776410380000"),
                ("x-ratelimit-remaining", "0"),
            ],
        ];
        for (n, case) in cases.into_iter().enumerate() {
            let c = StrettchClient::new(
                "http://127.0.0.1:9/api/v1",
                ApiKey::new(format!("sk-unit-429-hold-{n}")),
                Some(50.0),
            )
            .unwrap();
            let h = headers(case);
            assert_eq!(retry_after(429, &h), Some(DEFAULT_WINDOW), "{case:?}");
            c.observe(429, &h);
            let held = c.throttle().held_until().expect("held") - tokio::time::Instant::now();
            assert!(
                held > DEFAULT_WINDOW - Duration::from_millis(100)
                    && held <= DEFAULT_WINDOW + RESET_MARGIN,
                "{case:?}: {held:?}"
            );
        }
    }

    #[test]
    fn retry_after_dates_are_read_against_the_answers_date() {
        // The server's clock is an hour ahead of ours: its Retry-After date is 3 s after its Date.
        let server_now = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(3600))
            .unwrap();
        let fmt = |t: jiff::Timestamp| t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let later = fmt(server_now
            .checked_add(jiff::SignedDuration::from_secs(3))
            .unwrap());
        let h = headers(&[("retry-after", &later), ("date", &fmt(server_now))]);
        assert_eq!(retry_after(503, &h), Some(Duration::from_secs(3)));
        // The reset of a 429, likewise.
        let date = server_now.as_second() as u64;
        let h = headers(&[
            ("date", &fmt(server_now)),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &(date + 1).to_string()),
        ]);
        assert_eq!(rate_headers(&h).date, Some(date));
        assert_eq!(retry_after(429, &h), Some(Duration::from_secs(1)));
    }

    #[tokio::test]
    async fn a_routine_read_on_a_busy_key_is_deferred_without_being_sent() {
        let (url, script) = serve(vec![ok_compute(200)]).await;
        let c = StrettchClient::new(&url, ApiKey::new("sk-unit-deferred"), Some(50.0)).unwrap();
        c.throttle()
            .hold_for(crate::cloud::throttle::ROUTINE_PATIENCE * 3);
        let e = c.get_compute("325", Priority::Routine).await.unwrap_err();
        match &e {
            CloudError::Deferred {
                operation,
                retry_in,
            } => {
                assert_eq!(operation, "computes.get");
                assert!(*retry_in >= crate::cloud::throttle::ROUTINE_PATIENCE * 2);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.class(), ErrorClass::Deferred);
        assert_eq!(script.seen.lock().len(), 0, "nothing was sent");
        assert_eq!(c.throttle().waiting(), 0, "it left the queue");
        // An urgent read (and a write) waits for the budget instead.
        c.get_compute("325", Priority::Urgent).await.unwrap();
        assert_eq!(script.seen.lock().len(), 1);
    }

    #[tokio::test]
    async fn terminal_errors_are_not_retried() {
        for (status, code) in [
            (400, "VALIDATION_ERROR"),
            (401, "UNAUTHORIZED"),
            (404, "COMPUTE_NOT_FOUND"),
            (409, "CONFLICT"),
            (422, "UNPROCESSABLE_ENTITY"),
        ] {
            let (url, script) = serve(vec![err(status, code)]).await;
            let key = format!("sk-unit-terminal-{status}");
            let c = StrettchClient::new(&url, ApiKey::new(&key), Some(50.0))
                .unwrap()
                .with_retry(fast_retry());
            let e = c.start_compute("325").await.unwrap_err();
            assert_eq!(e.status(), Some(status));
            assert_eq!(e.code(), code);
            assert_eq!(e.request_id(), Some("rq"));
            assert_eq!(script.seen.lock().len(), 1, "{code} must not be retried");
            assert!(!format!("{e:?} {e}").contains(&key));
        }
    }

    #[tokio::test]
    async fn a_429_holds_the_key_and_is_retried_once_after_retry_after() {
        let (url, script) = serve(vec![
            (
                429,
                vec![("retry-after", "1".into())],
                r#"{"success":false,"code":"TOO_MANY_REQUESTS","message":"m"}"#.into(),
            ),
            ok_compute(200),
        ])
        .await;
        let c = StrettchClient::new(&url, ApiKey::new("sk-unit-429"), Some(50.0))
            .unwrap()
            .with_retry(fast_retry());
        let start = std::time::Instant::now();
        c.get_compute("325", Priority::Routine).await.unwrap();
        assert!(
            start.elapsed() >= Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(script.seen.lock().len(), 2);
    }

    #[tokio::test]
    async fn lists_walk_every_page() {
        let item = |i: u64| COMPUTE.replace("\"325\"", &format!("\"{i}\""));
        let page = |from: u64, n: u64, total: u64, page: u64| {
            let items: Vec<_> = (from..from + n).map(item).collect();
            (
                200,
                vec![],
                format!(
                    r#"{{"success":true,"data":[{}],"meta":{{"total":{total},"page":{page},"limit":100}}}}"#,
                    items.join(",")
                ),
            )
        };
        let (url, script) = serve(vec![
            page(0, 100, 250, 1),
            page(100, 100, 250, 2),
            page(200, 50, 250, 3),
        ])
        .await;
        let c = StrettchClient::new(&url, ApiKey::new("sk-unit-pages"), Some(50.0)).unwrap();
        let all = c.list_all_computes(Priority::Routine).await.unwrap();
        assert_eq!(all.len(), 250);
        assert_eq!(script.seen.lock().len(), 3);

        // Exactly a multiple of the page size: stop at meta.total without asking for an empty page.
        let (url, script) = serve(vec![page(0, 100, 100, 1), page(0, 0, 100, 2)]).await;
        let c = StrettchClient::new(&url, ApiKey::new("sk-unit-pages-2"), Some(50.0)).unwrap();
        assert_eq!(
            c.list_all_computes(Priority::Routine).await.unwrap().len(),
            100
        );
        assert_eq!(script.seen.lock().len(), 1);

        // A server that answers the same full page again and again, whatever meta.total says:
        // the walk stops at the first page that adds nothing, not after MAX_PAGES requests.
        let (url, script) = serve(vec![page(0, 100, 1_000_000, 1)]).await;
        let c = StrettchClient::new(&url, ApiKey::new("sk-unit-pages-4"), Some(50.0)).unwrap();
        let e = c.list_all_computes(Priority::Routine).await.unwrap_err();
        assert!(matches!(e, CloudError::Protocol { .. }), "{e:?}");
        assert!(e.to_string().contains("does not advance"), "{e}");
        assert_eq!(script.seen.lock().len(), 2);
        // Items that moved between pages are fine as long as each page adds something.
        let (url, script) = serve(vec![
            page(0, 100, 150, 1),
            page(50, 100, 150, 2),
            page(150, 0, 150, 3),
        ])
        .await;
        let c = StrettchClient::new(&url, ApiKey::new("sk-unit-pages-5"), Some(50.0)).unwrap();
        assert_eq!(
            c.list_all_computes(Priority::Routine).await.unwrap().len(),
            150
        );
        assert_eq!(script.seen.lock().len(), 2);

        // A list answer without meta is a protocol error.
        let (url, _) = serve(vec![(
            200,
            vec![],
            format!(r#"{{"success":true,"data":[{COMPUTE}]}}"#),
        )])
        .await;
        let c = StrettchClient::new(&url, ApiKey::new("sk-unit-pages-3"), Some(50.0))
            .unwrap()
            .with_retry(RetryPolicy::no_retries());
        let e = c
            .list_computes_page(1, 20, Priority::Routine)
            .await
            .unwrap_err();
        assert!(matches!(e, CloudError::Protocol { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn connection_errors_are_transport_errors_after_retries() {
        // Nothing listens on the port: connect fails fast.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let c = StrettchClient::new(
            &format!("http://127.0.0.1:{port}/api/v1"),
            ApiKey::new("sk-unit-refused"),
            Some(50.0),
        )
        .unwrap()
        .with_retry(fast_retry());
        let e = c.get_compute("1", Priority::Routine).await.unwrap_err();
        assert!(matches!(e, CloudError::Transport { .. }), "{e:?}");
        assert!(e.is_retryable());
        assert!(!format!("{e:?}").contains("sk-unit-refused"));
    }
}
