//! Vertra Cloud: hosted applications and managed databases (seed `004`, API reference
//! `../shared/reference/vertra/api-current.md`): its CRD types, wire model, wire description,
//! typed client, adapters (Workspace, Application, Database) and sandbox.

pub mod api;
pub mod application;
pub mod client;
pub mod cloud;
pub mod code;
pub mod database;
pub mod import;
pub mod model;
pub mod sim;
pub mod wire;
pub mod workspace;

use crate::engine::registry::{Kind, ManagedKind};

/// The provider's name in ProviderConfigs, controller names and metrics.
pub const PROVIDER: &str = "vertra";

/// Vertra's kinds, in the order their CRDs are installed.
pub fn kinds() -> Vec<Box<dyn ManagedKind>> {
    vec![
        Box::new(Kind::new(|_| workspace::WorkspaceAdapter)),
        Box::new(Kind::new(|rt| {
            application::ApplicationAdapter::new(rt.client.clone())
        })),
        Box::new(Kind::new(|_| database::DatabaseAdapter)),
    ]
}
