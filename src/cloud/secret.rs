//! API keys: held so they never reach a log, an event, a status or `Debug` output.

use std::sync::LazyLock;

use hmac::{Hmac, Mac};
use sha2::Sha256;

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

    /// A short name for the key, safe in logs and metric labels: see [`fingerprint`].
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }
}

/// A random salt drawn once per process.
static SALT: LazyLock<[u8; 32]> = LazyLock::new(rand::random);

/// The fingerprint of a key: the first 12 hex digits of HMAC-SHA256(key) under a salt drawn at
/// random when the process starts. It names one key consistently for as long as the process
/// runs, which is what log lines, metric series and the per-key throttles need; it is not a
/// plain hash, so a published fingerprint cannot be matched against a hash of a guessed or
/// leaked key, nor correlated across processes or installations. It changes on every restart:
/// never persist it, nor compare it with one from another process (the sandbox names keys its
/// own way).
pub fn fingerprint(key: &str) -> String {
    salted(SALT.as_slice(), key)
}

fn salted(salt: &[u8], key: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(salt).expect("HMAC accepts a key of any length");
    mac.update(key.trim().as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
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

    #[test]
    fn the_fingerprint_is_not_a_plain_hash_of_the_key() {
        use sha2::Digest;
        for key in ["sk-live-very-secret-value", "a", "another key"] {
            let plain: String = Sha256::digest(key.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let fp = fingerprint(key);
            assert_eq!(fp.len(), 12);
            assert!(
                !plain.starts_with(&fp),
                "{fp} is a prefix of SHA-256({key:?})"
            );
        }
    }

    #[test]
    fn the_fingerprint_is_stable_within_the_process_and_differs_between_keys() {
        let key = ApiKey::new("sk-live-one");
        assert_eq!(
            key.fingerprint(),
            ApiKey::new(" sk-live-one\n").fingerprint()
        );
        assert_eq!(key.fingerprint(), fingerprint("sk-live-one"));
        assert_ne!(key.fingerprint(), ApiKey::new("sk-live-two").fingerprint());
    }

    #[test]
    fn another_salt_gives_another_fingerprint() {
        assert_ne!(
            salted(&[1; 32], "sk-live-one"),
            salted(&[2; 32], "sk-live-one")
        );
        assert_eq!(
            salted(&[1; 32], "sk-live-one"),
            salted(&[1; 32], "sk-live-one")
        );
    }
}
