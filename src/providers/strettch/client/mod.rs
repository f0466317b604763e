//! The typed Strettch Cloud API client: Strettch's endpoints over the shared
//! [`Transport`](crate::cloud::transport) with Strettch's [`StrettchWire`].
//!
//! Everything about sending lives in the transport: the key's throttle (shared process-wide,
//! retries included), the rate-limit headers and 429 holds, bounded retries of reads and
//! state-setting writes, and errors that never carry the key. A **create is sent once per
//! call**: one logical attempt with the caller's `Idempotency-Key`, which the caller records
//! before sending; after an ambiguous outcome the caller looks for the resource or sends the
//! same create again with the same key, which the API answers with the original resource.
//!
//! Endpoints by area: [`computes`], [`catalog`] (reference data), [`dns`] (domains and records).

mod catalog;
mod computes;
mod dns;

use std::time::Duration;

use crate::cloud::retry::RetryPolicy;
use crate::cloud::throttle::{KeyThrottle, LimitSpec, Policy, Priority};
use crate::cloud::transport::{Request, Transport};
use crate::cloud::{ApiKey, CloudError};
use crate::providers::strettch::model::Health;

pub use super::PROVIDER;
pub use super::wire::{MAX_PAGE_SIZE, StrettchWire};
pub use crate::cloud::transport::{
    CONNECT_TIMEOUT, DEFAULT_TIMEOUT, MAX_ID_BYTES, MAX_PAGES, MAX_URL_BYTES,
};

pub const DEFAULT_ENDPOINT: &str = "https://api.strettch.cloud/api/v1";
/// The documented limit: 2 requests per second per API key.
pub const DEFAULT_REQUESTS_PER_SECOND: f64 = 2.0;

/// The documented limits, used for what a ProviderConfig does not set: 2 requests per key per
/// fixed unix second.
pub fn default_limits() -> Vec<LimitSpec> {
    vec![LimitSpec::per_second(DEFAULT_REQUESTS_PER_SECOND)]
}

/// A Strettch Cloud API client bound to one endpoint and key. Cheap to clone; `Debug` shows
/// the key's fingerprint only.
#[derive(Clone, Debug)]
pub struct StrettchClient {
    transport: Transport<StrettchWire>,
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
        Ok(StrettchClient {
            transport: Transport::new(StrettchWire, endpoint, &key, policy, config)?,
        })
    }

    /// The same client with another retry policy.
    pub fn with_retry(self, policy: RetryPolicy) -> Self {
        StrettchClient {
            transport: self.transport.with_retry(policy),
        }
    }

    /// The same client with another per-request timeout (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(self, timeout: Duration) -> Self {
        StrettchClient {
            transport: self.transport.with_timeout(timeout),
        }
    }

    /// The key's shared throttle.
    pub fn throttle(&self) -> &std::sync::Arc<KeyThrottle> {
        self.transport.throttle()
    }

    pub fn endpoint(&self) -> &str {
        self.transport.endpoint()
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        self.transport.retry_policy()
    }

    /// The key's fingerprint.
    pub fn key_fingerprint(&self) -> &str {
        self.transport.key_fingerprint()
    }

    /// `GET /health`. Needs no key, so it is sent without one and outside the key's throttle.
    pub async fn health(&self) -> Result<Health, CloudError> {
        let request = Request::get("health", &["health"], Priority::Routine).unauthenticated();
        self.transport.data(request).await
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

#[cfg(test)]
mod tests;
