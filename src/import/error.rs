//! Why `stratus import` stopped. Each message says what to fix; none carries a key or a
//! secret value (cloud errors never do, see [`crate::cloud::CloudError`]).

use crate::cloud::CloudError;
use crate::engine::ProviderError;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The ProviderConfig or its Secret could not be used (not found, no key, wrong endpoint).
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(
        "ProviderConfig {config:?} is for provider {provider}, which has no kind {kind:?}: it imports {available}"
    )]
    UnknownKind {
        config: String,
        provider: String,
        kind: String,
        available: String,
    },
    #[error("{kind} cannot be imported: {why}")]
    NotImportable { kind: String, why: String },
    #[error("no importer for provider {0}: this build of stratus cannot import its resources")]
    NoImporter(String),
    #[error("--name {pattern:?} is not a valid glob: {message}")]
    BadGlob { pattern: String, message: String },
    #[error("listing {what} in the cloud: {source}")]
    Cloud {
        what: String,
        #[source]
        source: CloudError,
    },
    #[error("{what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ImportError {
    /// A failed cloud listing of `what` (for `?` on a provider client's list call).
    pub fn cloud(what: impl Into<String>) -> impl FnOnce(CloudError) -> ImportError {
        let what = what.into();
        move |source| ImportError::Cloud { what, source }
    }
}
