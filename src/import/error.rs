//! Why `stratus import` stopped. Each message says what to fix; none carries a key or a
//! secret value (cloud errors never do, see [`crate::cloud::CloudError`]).

use crate::cloud::CloudError;
use crate::engine::ProviderError;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The ProviderConfig or its Secret could not be used (not found, no key, wrong endpoint).
    #[error(transparent)]
    Provider(ProviderError),
    #[error("ProviderConfig {0:?} not found: `kubectl get providerconfigs` lists those that exist")]
    ProviderConfigNotFound(String),
    /// The caller (not the operator) may not read the API key's Secret.
    #[error(
        "you may not read Secret {namespace}/{name} named by ProviderConfig {config:?}: stratus import reads the API key with your own credentials; ask for `get` on that Secret, or run it with a kubeconfig that has it"
    )]
    SecretForbidden {
        config: String,
        namespace: String,
        name: String,
    },
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

impl From<ProviderError> for ImportError {
    /// The operator's wording, except where it speaks of the operator's own permissions.
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::SecretForbidden {
                config,
                namespace,
                name,
            } => ImportError::SecretForbidden {
                config,
                namespace,
                name,
            },
            ProviderError::ProviderConfigNotFound(name) => {
                ImportError::ProviderConfigNotFound(name)
            }
            e => ImportError::Provider(e),
        }
    }
}

impl ImportError {
    /// A failed cloud listing of `what` (for `?` on a provider client's list call).
    pub fn cloud(what: impl Into<String>) -> impl FnOnce(CloudError) -> ImportError {
        let what = what.into();
        move |source| ImportError::Cloud { what, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forbidden_secret_is_explained_as_the_callers_permission_not_the_operators() {
        let e: ImportError = ProviderError::SecretForbidden {
            config: "prod".into(),
            namespace: "stratus-system".into(),
            name: "creds".into(),
        }
        .into();
        let m = e.to_string();
        assert!(
            m.contains("you may not read Secret stratus-system/creds"),
            "{m}"
        );
        assert!(!m.contains("the operator may not"), "{m}");
        let e: ImportError = ProviderError::ProviderConfigNotFound("prod".into()).into();
        assert!(
            e.to_string().contains("\"prod\" not found: `kubectl get"),
            "{e}"
        );
    }
}
