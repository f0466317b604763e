//! CloudAPI: one provider, two dialects (wire profiles) of the same kind of platform —
//! `cloudapi` (api.cloudapi.dev, seeds 001 and 003) and `cloudplatform` (Cloud API Platform,
//! seed 002); the contract is `reference/cloudapi/README.md`, the user's guide
//! `docs/cloudapi.md`.
//!
//! Its CRD types (`api/`), wire model (`model`), wire description (`wire`), typed client
//! (`client/`), the handle with the shared snapshots (`cloud`), the adapters (`project`,
//! `release/`, `api_key`, `token`) and the sandbox (`sim/`, `stratus sim --cloud cloudapi`),
//! which keeps its own types: the client never shares them.

pub mod api;
pub mod api_key;
pub mod client;
pub mod cloud;
pub mod credentials;
pub mod import;
pub mod logs;
pub mod model;
pub mod project;
pub mod release;
pub mod sim;
pub mod token;
pub mod wire;

use crate::engine::registry::{Kind, ManagedKind};

/// The provider's name in ProviderConfigs, controller names and metrics.
pub const PROVIDER: &str = "cloudapi";

/// CloudAPI's kinds, in the order their CRDs are installed.
pub fn kinds() -> Vec<Box<dyn ManagedKind>> {
    vec![
        Box::new(Kind::new(|_| project::ProjectAdapter)),
        Box::new(Kind::new(|_| release::ReleaseAdapter)),
        Box::new(Kind::new(|rt| {
            api_key::ApiKeyAdapter::new(rt.client.clone())
        })),
        Box::new(Kind::new(|_| token::TokenAdapter)),
    ]
}
