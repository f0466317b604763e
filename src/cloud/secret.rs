//! API keys: held so they never reach a log, an event, a status or `Debug` output.

use sha2::{Digest, Sha256};

/// A cloud API key. `Debug` and `Display` print a fingerprint, never the key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into().trim().to_string())
    }

    /// The key itself, for the Authorization header only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short, stable, non-reversible name for the key: safe in logs and metric labels.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }
}

/// The fingerprint of a key (first 12 hex digits of its SHA-256), shared with the sandbox's counters.
pub fn fingerprint(key: &str) -> String {
    let digest = Sha256::digest(key.trim().as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey(sha256:{}…)", self.fingerprint())
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}…", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_key() {
        let key = ApiKey::new("sk-live-very-secret-value");
        for shown in [
            format!("{key:?}"),
            format!("{key}"),
            format!("{:?}", Some(&key)),
        ] {
            assert!(!shown.contains("very-secret"), "{shown}");
            assert!(shown.contains(&key.fingerprint()));
        }
        assert_eq!(key.expose(), "sk-live-very-secret-value");
        assert_eq!(key.fingerprint().len(), 12);
    }
}
