//! [`SimConfig`]: how a Strettch sandbox behaves, in one flat struct tests adjust field by field.
//! It splits into the framework's [`crate::sim::Config`] and the [`Strettch`] cloud.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::sim::keys::{key_fingerprint, redacted};
use crate::sim::rate_limit::{Limit, Scope, Window};
use crate::sim::{Config, Faults};

use super::cloud::Strettch;
use super::state::Timing;

/// How the sandbox behaves. `Debug` shows key fingerprints, never keys.
#[derive(Clone)]
pub struct SimConfig {
    pub api_keys: Vec<String>,
    /// Requests per key per fixed unix second (Strettch's documented limit); 0 = none.
    pub rate_limit: u32,
    /// More limits, enforced with `rate_limit` (every one must have room for a request to be
    /// let through): per key or per group of keys, fixed or rolling windows.
    pub rate_limits: Vec<Limit>,
    /// API key → the group its requests count in for `Scope::Group` limits (a key in no group
    /// counts alone).
    pub key_groups: HashMap<String, String>,
    pub create_delay: Duration,
    pub action_delay: Duration,
    pub destroy_delay: Duration,
    pub activate_delay: Duration,
    pub idempotency_ttl: Duration,
    pub faults: Faults,
    pub state_file: Option<PathBuf>,
    /// Accept records identical to one their zone already has (see
    /// `StrettchArgs::allow_duplicate_records`).
    pub allow_duplicate_records: bool,
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("api_keys", &redacted(&self.api_keys))
            .field("rate_limit", &self.rate_limit)
            .field("rate_limits", &self.rate_limits)
            .field(
                "key_groups",
                &self
                    .key_groups
                    .iter()
                    .map(|(k, g)| (key_fingerprint(k), g.clone()))
                    .collect::<Vec<_>>(),
            )
            .field("create_delay", &self.create_delay)
            .field("action_delay", &self.action_delay)
            .field("destroy_delay", &self.destroy_delay)
            .field("activate_delay", &self.activate_delay)
            .field("idempotency_ttl", &self.idempotency_ttl)
            .field("faults", &self.faults)
            .field("state_file", &self.state_file)
            .field("allow_duplicate_records", &self.allow_duplicate_records)
            .finish()
    }
}

impl SimConfig {
    /// For tests: these keys, 2 requests/s per key, 200 ms lifecycles, a day of idempotency,
    /// no faults, in memory, duplicate records refused.
    pub fn for_tests(api_keys: &[&str]) -> Self {
        let d = Duration::from_millis(200);
        Self {
            api_keys: api_keys.iter().map(|k| k.trim().to_string()).collect(),
            rate_limit: 2,
            rate_limits: Vec::new(),
            key_groups: HashMap::new(),
            create_delay: d,
            action_delay: d,
            destroy_delay: d,
            activate_delay: d,
            idempotency_ttl: Duration::from_secs(86_400),
            faults: Faults::default(),
            state_file: None,
            allow_duplicate_records: false,
        }
    }

    /// The cloud these settings describe, and the framework's share of them.
    pub fn split(self) -> (Strettch, Config) {
        let mut limits = Vec::new();
        if self.rate_limit > 0 {
            limits.push(Limit::new(
                u64::from(self.rate_limit),
                Duration::from_secs(1),
                Scope::Key,
                Window::Fixed,
            ));
        }
        limits.extend(self.rate_limits);
        let cloud = Strettch {
            timing: Timing {
                create: self.create_delay,
                action: self.action_delay,
                destroy: self.destroy_delay,
                activate: self.activate_delay,
                idempotency_ttl: self.idempotency_ttl,
            },
            allow_duplicate_records: self.allow_duplicate_records,
        };
        let config = Config {
            api_keys: self.api_keys,
            limits,
            key_groups: self.key_groups,
            faults: self.faults,
            state_file: self.state_file,
        };
        (cloud, config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_keys() {
        let mut c = SimConfig::for_tests(&["super-secret-key"]);
        c.key_groups
            .insert("super-secret-key".into(), "team".into());
        let shown = format!("{c:?}");
        assert!(!shown.contains("super-secret"), "{shown}");
        assert!(shown.contains(&key_fingerprint("super-secret-key")));
    }

    #[test]
    fn the_documented_limit_comes_first_and_zero_means_none() {
        let mut c = SimConfig::for_tests(&["k"]);
        c.rate_limits = vec![Limit::new(
            30,
            Duration::from_secs(60),
            Scope::Group,
            Window::Rolling,
        )];
        let (_, config) = c.clone().split();
        assert_eq!(config.limits.len(), 2);
        assert_eq!(
            config.limits[0],
            Limit::new(2, Duration::from_secs(1), Scope::Key, Window::Fixed)
        );
        c.rate_limit = 0;
        let (_, config) = c.split();
        assert_eq!(config.limits.len(), 1);
        assert_eq!(config.limits[0].scope, Scope::Group);
    }
}
