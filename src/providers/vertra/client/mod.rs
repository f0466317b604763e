//! The typed Vertra Cloud API client: Vertra's endpoints over the shared
//! [`Transport`](crate::cloud::transport) with [`VertraWire`].
//!
//! Vertra has no idempotency keys: every create (and every other write whose repetition would
//! do something twice, such as a deploy) is sent once per call, and the engine finds what an
//! ambiguous create made before it sends another ([`CreateGuard::FindOnly`]). Deploys count
//! against the per-hour deploy limit ([`DEPLOY`]), lifecycle calls against the per-app limit
//! ([`LIFECYCLE`]): those limits hold only their own calls, never observation.
//!
//! Endpoints by area: [`account`] (the bulk listing), [`apps`], [`databases`], [`workspaces`].
//!
//! [`CreateGuard::FindOnly`]: crate::engine::CreateGuard::FindOnly

mod account;
mod apps;
mod databases;
mod workspaces;

use std::time::Duration;

use crate::cloud::retry::RetryPolicy;
use crate::cloud::throttle::{AdaptiveLimit, ClassLimit, KeyThrottle, LimitSpec, Policy};
use crate::cloud::transport::{Request, Transport};
use crate::cloud::{ApiKey, CloudError};

pub use super::wire::{DEPLOY, LIFECYCLE, SNAPSHOT, VertraWire};
pub use apps::{AppCreate, AppSource};

pub const DEFAULT_ENDPOINT: &str = "https://api.vertracloud.app";

/// Fixed limits used for what a ProviderConfig does not set: none. Vertra's limits depend on
/// the plan and are not published to the client; [`with_vertra_limits`] adds what adapts to
/// them.
pub fn default_limits() -> Vec<LimitSpec> {
    Vec::new()
}

/// The smallest plan's per-minute limit: where the adaptive limit starts.
pub const START_PER_MINUTE: u32 = 30;
/// The largest plan's per-minute limit: the most the adaptive limit learns.
pub const MAX_PER_MINUTE: u32 = 480;
/// Deploys per hour on the largest plans; a smaller plan's 429 (`details.limit`) teaches its own.
/// A ProviderConfig's `spec.vertra.deploysPerHour` replaces it (a plan agreed with Vertra).
pub const MAX_DEPLOYS_PER_HOUR: u32 = 60;
/// Lifecycle calls per app per minute, on every plan.
pub const LIFECYCLE_PER_APP_PER_MINUTE: u32 = 10;

/// `policy` with Vertra's own limits: the per-minute account limit, adaptive (it starts at the
/// smallest plan's 30, takes the `X-RateLimit-Limit` the answers report, halves on a 429 that
/// says nothing and recovers slowly); deploys per hour, adaptive from the largest plan's 60
/// down to what a `DEPLOY_RATE_LIMITED` answer reports — holding deploys only; and lifecycle
/// calls, 10 per minute per app — holding that app's calls only.
///
/// `deploys_per_hour`: where the deploy limit starts and the most it learns (default
/// [`MAX_DEPLOYS_PER_HOUR`]).
pub fn with_vertra_limits(policy: Policy, deploys_per_hour: Option<u32>) -> Policy {
    let deploys = deploys_per_hour.unwrap_or(MAX_DEPLOYS_PER_HOUR).max(1);
    let minute = Duration::from_secs(60);
    policy
        .with_adaptive(AdaptiveLimit::new(
            minute,
            START_PER_MINUTE,
            1,
            MAX_PER_MINUTE,
        ))
        .with_class(ClassLimit::new(DEPLOY, deploys, Duration::from_secs(3600)).adaptive(deploys))
        .with_class(ClassLimit::new(LIFECYCLE, LIFECYCLE_PER_APP_PER_MINUTE, minute).per_subject())
}

/// A Vertra Cloud API client bound to one endpoint, key and (optionally) workspace. Cheap to
/// clone; `Debug` shows the key's fingerprint only.
#[derive(Clone, Debug)]
pub struct VertraClient {
    transport: Transport<VertraWire>,
    /// Sent as `?workspace_id=` on app and database routes, so a member of a workspace can act
    /// on resources they do not own.
    workspace: Option<String>,
}

impl VertraClient {
    /// A client for tests and tools; the operator uses
    /// [`for_provider_config`](Self::for_provider_config).
    pub fn new(endpoint: &str, key: ApiKey, policy: Policy) -> Result<Self, CloudError> {
        Ok(VertraClient {
            transport: Transport::new(VertraWire, endpoint, &key, policy, None)?,
            workspace: None,
        })
    }

    /// The client of ProviderConfig `config` (its policy is what it asks of the key from now
    /// on), acting in `workspace` when the ProviderConfig names one.
    pub fn for_provider_config(
        config: &str,
        endpoint: &str,
        key: ApiKey,
        policy: Policy,
        workspace: Option<String>,
    ) -> Result<Self, CloudError> {
        Ok(VertraClient {
            transport: Transport::new(VertraWire, endpoint, &key, policy, Some(config))?,
            workspace,
        })
    }

    pub fn with_retry(self, policy: RetryPolicy) -> Self {
        VertraClient {
            transport: self.transport.with_retry(policy),
            ..self
        }
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

    /// `request` acting in the client's workspace.
    fn scoped(&self, request: Request) -> Request {
        match &self.workspace {
            Some(w) => request.query("workspace_id", w),
            None => request,
        }
    }
}

#[cfg(test)]
mod tests;
