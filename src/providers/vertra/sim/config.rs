//! [`VertraSimConfig`]: how a Vertra sandbox behaves, in one flat struct tests adjust field by
//! field, and the [`Settings`] it keeps while running (the plan and limits can change then).
//! It splits into the framework's [`crate::sim::Config`] and the [`Vertra`] cloud.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sim::keys::{key_fingerprint, redacted};
use crate::sim::{Config, Faults};

use super::cloud::Vertra;
use super::limits::{Budgets, LIFECYCLE_PER_MINUTE};
use super::plan::Plan;
use super::scopes::{KeyScopes, Scopes};

/// Database-delete safety snapshots that fail (500 `SNAPSHOT_FAILED`, nothing deleted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SnapshotFailures {
    /// The next this many fail.
    pub next: u64,
    /// Every one fails.
    pub always: bool,
}

impl SnapshotFailures {
    /// Whether the snapshot being taken now fails (uses up one of `next`).
    pub fn take(&mut self) -> bool {
        if self.always {
            return true;
        }
        if self.next > 0 {
            self.next -= 1;
            return true;
        }
        false
    }
}

/// `--fail-delete-snapshots`: a count, or `always`.
pub fn parse_failures(s: &str) -> Result<SnapshotFailures, String> {
    match s.trim() {
        "always" => Ok(SnapshotFailures {
            next: 0,
            always: true,
        }),
        n => n
            .parse()
            .map(|next| SnapshotFailures {
                next,
                always: false,
            })
            .map_err(|_| format!("{s:?} is neither a count nor \"always\"")),
    }
}

/// What a running Vertra sandbox goes by; changed through the handle or `/_sim/settings`.
#[derive(Clone)]
pub struct Settings {
    pub plan: Plan,
    /// `None`: the plan's number; `Some(0)`: unlimited.
    pub per_minute: Option<u32>,
    pub per_day: Option<u32>,
    pub deploys_per_hour: Option<u32>,
    /// Lifecycle calls per app per minute (0 = unlimited).
    pub lifecycle_per_minute: u32,
    pub install_delay: Duration,
    /// Key fingerprint → its scopes; a key without an entry has them all.
    pub key_scopes: BTreeMap<String, Scopes>,
    pub snapshot_failures: SnapshotFailures,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("plan", &self.plan)
            .field("budgets", &self.budgets())
            .field("install_delay", &self.install_delay)
            .field("key_scopes", &self.key_scopes)
            .field("snapshot_failures", &self.snapshot_failures)
            .finish()
    }
}

impl Settings {
    /// The numbers in force: the overrides, else the plan's.
    pub fn budgets(&self) -> Budgets {
        Budgets {
            per_minute: self.per_minute.unwrap_or(self.plan.per_minute()),
            per_day: self.per_day.unwrap_or(self.plan.per_day()),
            deploys_per_hour: self
                .deploys_per_hour
                .unwrap_or(self.plan.deploys_per_hour()),
            lifecycle_per_app_per_minute: self.lifecycle_per_minute,
        }
    }
}

/// How the sandbox behaves. `Debug` shows key fingerprints, never keys.
#[derive(Clone)]
pub struct VertraSimConfig {
    /// Accepted keys; all belong to one account. Keys named in `key_scopes` are accepted too.
    pub api_keys: Vec<String>,
    /// Keys that have only some scopes (the others have all).
    pub key_scopes: Vec<KeyScopes>,
    pub plan: Plan,
    /// Requests per minute per account; `None`: the plan's; `Some(0)`: unlimited.
    pub per_minute: Option<u32>,
    /// Requests per day per account; `None`: the plan's; `Some(0)`: unlimited.
    pub per_day: Option<u32>,
    /// Deploys per hour per account; `None`: the plan's; `Some(0)`: unlimited.
    pub deploys_per_hour: Option<u32>,
    /// Lifecycle calls per app per minute (documented: 10); 0 = unlimited.
    pub lifecycle_per_minute: u32,
    /// How long an install (create, upload with restart, rebuild) takes.
    pub install_delay: Duration,
    pub snapshot_failures: SnapshotFailures,
    pub faults: Faults,
    pub state_file: Option<PathBuf>,
}

impl fmt::Debug for VertraSimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VertraSimConfig")
            .field("api_keys", &redacted(&self.api_keys))
            .field("key_scopes", &self.key_scopes)
            .field("plan", &self.plan)
            .field("per_minute", &self.per_minute)
            .field("per_day", &self.per_day)
            .field("deploys_per_hour", &self.deploys_per_hour)
            .field("lifecycle_per_minute", &self.lifecycle_per_minute)
            .field("install_delay", &self.install_delay)
            .field("snapshot_failures", &self.snapshot_failures)
            .field("faults", &self.faults)
            .field("state_file", &self.state_file)
            .finish()
    }
}

impl VertraSimConfig {
    /// For tests: these keys with every scope, the Enterprise plan and its limits, 200 ms
    /// installs, no faults, in memory.
    pub fn for_tests(api_keys: &[&str]) -> Self {
        Self {
            api_keys: api_keys.iter().map(|k| k.trim().to_string()).collect(),
            key_scopes: Vec::new(),
            plan: Plan::Enterprise,
            per_minute: None,
            per_day: None,
            deploys_per_hour: None,
            lifecycle_per_minute: LIFECYCLE_PER_MINUTE,
            install_delay: Duration::from_millis(200),
            snapshot_failures: SnapshotFailures::default(),
            faults: Faults::default(),
            state_file: None,
        }
    }

    /// The settings a run starts with.
    pub fn settings(&self) -> Settings {
        Settings {
            plan: self.plan,
            per_minute: self.per_minute,
            per_day: self.per_day,
            deploys_per_hour: self.deploys_per_hour,
            lifecycle_per_minute: self.lifecycle_per_minute,
            install_delay: self.install_delay,
            key_scopes: self
                .key_scopes
                .iter()
                .map(|ks| (key_fingerprint(&ks.key), ks.scopes.clone()))
                .collect(),
            snapshot_failures: self.snapshot_failures,
        }
    }

    /// The cloud these settings describe, and the framework's share of them. The framework
    /// enforces no limit itself: Vertra's are the cloud's (see `limits`).
    pub fn split(self) -> (Vertra, Config) {
        let mut keys = self.api_keys.clone();
        for ks in &self.key_scopes {
            if !keys.contains(&ks.key) {
                keys.push(ks.key.clone());
            }
        }
        let fingerprints = keys.iter().map(|k| key_fingerprint(k)).collect::<Vec<_>>();
        let cloud = Vertra::new(self.settings(), fingerprints);
        let config = Config {
            api_keys: keys,
            limits: Vec::new(),
            key_groups: Default::default(),
            faults: self.faults,
            state_file: self.state_file,
        };
        (cloud, config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::vertra::sim::scopes::parse_key_scopes;

    #[test]
    fn debug_never_shows_keys() {
        let mut c = VertraSimConfig::for_tests(&["super-secret-key"]);
        c.key_scopes
            .push(parse_key_scopes("other-secret=apps:read").unwrap());
        let shown = format!("{c:?} {:?}", c.settings());
        assert!(
            !shown.contains("secret-key") && !shown.contains("other-secret"),
            "{shown}"
        );
    }

    #[test]
    fn overrides_win_over_the_plan_and_scoped_keys_are_accepted() {
        let mut c = VertraSimConfig::for_tests(&["a"]);
        c.plan = Plan::Free;
        c.per_day = Some(0);
        c.key_scopes.push(parse_key_scopes("b=read").unwrap());
        let b = c.settings().budgets();
        assert_eq!((b.per_minute, b.per_day, b.deploys_per_hour), (30, 0, 5));
        let (_, config) = c.split();
        assert_eq!(config.api_keys, ["a", "b"]);
        assert!(config.limits.is_empty());
    }

    #[test]
    fn snapshot_failures_count_down_or_stay() {
        let mut f = parse_failures("2").unwrap();
        assert!(f.take() && f.take() && !f.take());
        let mut f = parse_failures("always").unwrap();
        assert!(f.take() && f.take());
        assert!(parse_failures("sometimes").is_err());
    }
}
