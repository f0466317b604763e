//! The API keys a sandbox accepts, and the name it shows for each.
//!
//! A sandbox stands for the cloud, a separate program, so it does not share the operator's
//! (salted, per-process) fingerprint: it names a key by the first 12 hex digits of its SHA-256,
//! in stats, logs and `Debug` output, and never shows the key itself.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// How a sandbox names an API key: the first 12 hex digits of its SHA-256. Tests find a key's
/// counters with `stats().keys[&key_fingerprint(key)]`.
pub fn key_fingerprint(key: &str) -> String {
    Sha256::digest(key.trim().as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `sha256:<fingerprint>…` for each key, for `Debug` output.
pub fn redacted(keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| format!("sha256:{}…", key_fingerprint(k)))
        .collect()
}

/// `keys` trimmed, the empty ones dropped (a trailing comma in an env list is not a key).
pub fn cleaned(keys: &[String]) -> Vec<String> {
    keys.iter()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect()
}

/// The accepted keys, each with its fingerprint.
#[derive(Clone, Default)]
pub struct ApiKeys(HashMap<String, String>);

impl ApiKeys {
    pub fn new(keys: &[String]) -> Self {
        ApiKeys(
            cleaned(keys)
                .into_iter()
                .map(|k| {
                    let fp = key_fingerprint(&k);
                    (k, fp)
                })
                .collect(),
        )
    }

    /// The fingerprint of `key` if it is accepted.
    pub fn fingerprint_of(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn fingerprints(&self) -> impl Iterator<Item = &str> {
        self.0.values().map(String::as_str)
    }
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.fingerprints()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_trimmed_and_looked_up_by_exact_value() {
        let keys = ApiKeys::new(&[" a ".into(), "".into(), "b".into()]);
        assert_eq!(
            keys.fingerprint_of("a"),
            Some(key_fingerprint("a").as_str())
        );
        assert_eq!(keys.fingerprint_of("c"), None);
        assert_eq!(keys.fingerprints().count(), 2);
        assert_eq!(key_fingerprint(" a"), key_fingerprint("a"));
        assert_eq!(key_fingerprint("a").len(), 12);
    }

    #[test]
    fn debug_output_never_shows_a_key() {
        let keys = ApiKeys::new(&["super-secret-key".into()]);
        let shown = format!("{keys:?} {:?}", redacted(&["super-secret-key".into()]));
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains(&key_fingerprint("super-secret-key")));
    }
}
