//! The typed CloudAPI client: CloudAPI's endpoints over the shared
//! [`Transport`](crate::cloud::transport) with [`CloudApiWire`], in either dialect.
//!
//! Both dialects honour `Idempotency-Key` on POST: every create (a project, a deployment, a
//! key, a token) goes out once per call under the key the engine derives, so an ambiguous
//! attempt is replayed, never applied twice. Lists walk `cloudapi`'s cursor at 100 per page;
//! `cloudplatform` answers whole lists.
//!
//! Endpoints by area: [`projects`], [`deployments`] (deployments and their logs), [`access`]
//! (keys and tokens), [`usage`].

mod access;
mod deployments;
mod projects;
mod usage;

use std::time::Duration;

use crate::api::provider_config::CloudApiDialect;
use crate::cloud::retry::RetryPolicy;
use crate::cloud::throttle::{KeyThrottle, LimitSpec, Policy, Window};
use crate::cloud::transport::Transport;
use crate::cloud::{ApiKey, CloudError};

pub use super::wire::CloudApiWire;

/// `cloudapi`'s public root (paths are `/v1/…` below it).
pub const CLOUDAPI_ENDPOINT: &str = "https://api.cloudapi.dev";
/// `cloudplatform`'s public root.
pub const CLOUDPLATFORM_ENDPOINT: &str = "https://api.cloudplatform.example.com";

/// The public root of `dialect`.
pub fn default_endpoint(dialect: CloudApiDialect) -> &'static str {
    match dialect {
        CloudApiDialect::CloudApi => CLOUDAPI_ENDPOINT,
        CloudApiDialect::CloudPlatform => CLOUDPLATFORM_ENDPOINT,
    }
}

/// The documented limits of `dialect`, for what a ProviderConfig does not restate:
/// `cloudapi`: 1,000 requests per minute per key (the reset header is a unix second: fixed
/// clock minutes); `cloudplatform`: 120 per minute per key and 600 per 10 minutes per
/// workspace, both rolling, both at once. The workspace limit is a BudgetGroup limit: every
/// ProviderConfig of the same workspace shares it (see [`budget_group`]).
pub fn default_limits(dialect: CloudApiDialect) -> Vec<LimitSpec> {
    let minute = Duration::from_secs(60);
    match dialect {
        CloudApiDialect::CloudApi => {
            vec![LimitSpec::key(1000, minute).with_window(Window::Fixed)]
        }
        CloudApiDialect::CloudPlatform => vec![
            LimitSpec::key(120, minute),
            LimitSpec::group(600, Duration::from_secs(600)),
        ],
    }
}

/// The budget group of a `cloudplatform` ProviderConfig: its `spec.budgetGroup` if set, else
/// `workspace:<spec.cloudapi.workspace>`, so every ProviderConfig of one workspace shares the
/// workspace's 600 requests per 10 minutes without further setting. Neither set: none, and the
/// workspace limit counts for the key alone (right when it is the workspace's only key).
pub fn budget_group(
    dialect: CloudApiDialect,
    budget_group: Option<&str>,
    workspace: Option<&str>,
) -> Option<String> {
    match (budget_group, dialect, workspace) {
        (Some(g), _, _) => Some(g.to_string()),
        (None, CloudApiDialect::CloudPlatform, Some(w)) if !w.trim().is_empty() => {
            Some(format!("workspace:{}", w.trim()))
        }
        _ => None,
    }
}

/// A CloudAPI client bound to one endpoint, key and dialect. Cheap to clone; `Debug` shows the
/// key's fingerprint only.
#[derive(Clone, Debug)]
pub struct CloudApiClient {
    transport: Transport<CloudApiWire>,
    dialect: CloudApiDialect,
}

impl CloudApiClient {
    /// A client for tests and tools; the operator uses
    /// [`for_provider_config`](Self::for_provider_config).
    pub fn new(
        dialect: CloudApiDialect,
        endpoint: &str,
        key: ApiKey,
        policy: Policy,
    ) -> Result<Self, CloudError> {
        Ok(CloudApiClient {
            transport: Transport::new(CloudApiWire::new(dialect), endpoint, &key, policy, None)?,
            dialect,
        })
    }

    /// The client of ProviderConfig `config` (its policy is what it asks of the key from now
    /// on).
    pub fn for_provider_config(
        config: &str,
        dialect: CloudApiDialect,
        endpoint: &str,
        key: ApiKey,
        policy: Policy,
    ) -> Result<Self, CloudError> {
        Ok(CloudApiClient {
            transport: Transport::new(
                CloudApiWire::new(dialect),
                endpoint,
                &key,
                policy,
                Some(config),
            )?,
            dialect,
        })
    }

    pub fn with_retry(self, policy: RetryPolicy) -> Self {
        CloudApiClient {
            transport: self.transport.with_retry(policy),
            ..self
        }
    }

    pub fn dialect(&self) -> CloudApiDialect {
        self.dialect
    }

    pub fn throttle(&self) -> &std::sync::Arc<KeyThrottle> {
        self.transport.throttle()
    }

    pub fn endpoint(&self) -> &str {
        self.transport.endpoint()
    }

    pub fn key_fingerprint(&self) -> &str {
        self.transport.key_fingerprint()
    }
}

#[cfg(test)]
mod tests;
