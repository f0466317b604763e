//! CloudAPI's custom resources (`cloudapi.stratus.dev/v1alpha1`), one file per kind, and the
//! parts they share.

pub mod api_key;
pub mod project;
pub mod release;
pub mod token;

pub use api_key::ApiKey;
pub use project::Project;
pub use release::Release;
pub use token::Token;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A reference to a Project object in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ProjectReference {
    /// Name of the Project object.
    pub name: String,
}
