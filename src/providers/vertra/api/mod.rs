//! Vertra's custom resources (`vertra.stratus.dev/v1alpha1`), one file per kind, and the parts
//! they share.

pub mod application;
pub mod database;
pub mod workspace;

pub use application::Application;
pub use database::Database;
pub use workspace::Workspace;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired power state of an app or database.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PowerState {
    #[default]
    Running,
    Stopped,
}

/// A reference to a Workspace object in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct WorkspaceReference {
    /// Name of the Workspace object.
    pub name: String,
}
