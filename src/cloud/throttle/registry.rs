//! Every key throttle and budget group of the process, and what each user (ProviderConfig) of a
//! key asks for.
//!
//! A key's own limits are the union of the Key limits its current users ask for (every limit
//! applies, so the lowest rate wins); the keys of every user naming a budget group share one
//! [`Group`] whose limits are the union of the BudgetGroup limits those users ask for. The
//! registry does not keep a throttle or a group alive: it holds them weakly, and forgets a key
//! once no client holds its throttle and no user is registered for it, so keys that come and go
//! (rotated API keys, deleted ProviderConfigs) leave nothing behind.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::Mutex;

use super::{Group, KeyThrottle, LimitSpec, Policy};
use crate::cloud::secret::ApiKey;

/// (provider, key fingerprint)
type KeyId = (String, String);
/// (provider, budget group)
type GroupId = (String, String);

#[derive(Default)]
pub struct ThrottleRegistry {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<KeyId, Entry>,
    groups: HashMap<GroupId, Weak<Group>>,
}

struct Entry {
    throttle: Weak<KeyThrottle>,
    /// What each named user (a ProviderConfig) asks for now.
    users: BTreeMap<String, Policy>,
    /// What callers without a name (tests, tools) asked for, merged; used only while the key
    /// has no named user.
    anonymous: Policy,
}

impl Entry {
    fn policies(&self) -> Vec<&Policy> {
        if self.users.is_empty() {
            vec![&self.anonymous]
        } else {
            self.users.values().collect()
        }
    }

    /// The key's part of its users' policies together: every Key limit, adaptive and class
    /// limit (merged by the throttle, the lowest figures winning).
    fn key_policy(&self) -> Policy {
        let mut key = Policy::default();
        for p in self.policies() {
            key.limits.extend(p.key_limits());
            key.adaptive.extend(p.adaptive.iter().copied());
            key.classes.extend(p.classes.iter().cloned());
        }
        key.limits.sort();
        key.limits.dedup();
        key.adaptive.sort();
        key.adaptive.dedup();
        key.classes.sort();
        key.classes.dedup();
        key
    }

    fn group_names(&self) -> BTreeSet<String> {
        self.policies()
            .iter()
            .filter_map(|p| p.budget_group.clone())
            .collect()
    }

    fn in_use(&self) -> bool {
        !self.users.is_empty() || self.throttle.strong_count() > 0
    }
}

fn merge(into: &mut Policy, more: &Policy) {
    into.limits.extend(more.limits.iter().copied());
    into.limits.sort();
    into.limits.dedup();
    into.adaptive.extend(more.adaptive.iter().copied());
    into.adaptive.sort();
    into.adaptive.dedup();
    into.classes.extend(more.classes.iter().cloned());
    into.classes.sort();
    into.classes.dedup();
    if into.budget_group.is_none() {
        into.budget_group = more.budget_group.clone();
    }
}

impl std::fmt::Debug for ThrottleRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("ThrottleRegistry")
            .field("keys", &inner.entries.len())
            .field("groups", &inner.groups.len())
            .finish()
    }
}

impl ThrottleRegistry {
    /// The throttle of `key` at `provider` for a caller without a name (tests, tools), created on
    /// first use. Every caller of the same key gets the same one; until a named user
    /// ([`throttle_for`](Self::throttle_for)) sets the limits, every limit asked for applies
    /// (the lowest rate wins). `policy`: a rate in requests per second, or a [`Policy`].
    pub fn throttle(
        &self,
        provider: &str,
        key: &ApiKey,
        policy: impl Into<Policy>,
    ) -> Arc<KeyThrottle> {
        self.obtain(provider, &key.fingerprint(), None, policy.into())
    }

    /// The throttle of `key` at `provider` for `user` (a ProviderConfig name), which asks for
    /// `policy` (its limits and budget group) from now on, replacing what it asked for before,
    /// up or down. The key's limits are the union of its current users' Key limits; its groups
    /// those its users name. A user has one key: if `user` used another key before, it no
    /// longer counts there.
    pub fn throttle_for(
        &self,
        provider: &str,
        key: &ApiKey,
        user: &str,
        policy: impl Into<Policy>,
    ) -> Arc<KeyThrottle> {
        self.obtain(provider, &key.fingerprint(), Some(user), policy.into())
    }

    /// `user` (a ProviderConfig that was deleted) no longer uses any key: the limits of the key
    /// and group it used follow the remaining users, and a key nobody uses any more is forgotten
    /// once no client holds its throttle.
    pub fn release_user(&self, user: &str) {
        let mut inner = self.inner.lock();
        for entry in inner.entries.values_mut() {
            entry.users.remove(user);
        }
        Self::sync(&mut inner);
    }

    fn obtain(
        &self,
        provider: &str,
        fingerprint: &str,
        user: Option<&str>,
        policy: Policy,
    ) -> Arc<KeyThrottle> {
        let id = (provider.to_string(), fingerprint.to_string());
        let mut inner = self.inner.lock();
        if let Some(user) = user {
            for (other, entry) in inner.entries.iter_mut() {
                if *other != id {
                    entry.users.remove(user);
                }
            }
        }
        let entry = inner.entries.entry(id).or_insert_with(|| Entry {
            throttle: Weak::new(),
            users: BTreeMap::new(),
            anonymous: policy.clone(),
        });
        match user {
            Some(user) => {
                entry.users.insert(user.to_string(), policy);
            }
            None => merge(&mut entry.anonymous, &policy),
        }
        let throttle = match entry.throttle.upgrade() {
            Some(t) => t,
            None => {
                let t = KeyThrottle::with_path(provider, fingerprint, &entry.key_policy(), vec![]);
                entry.throttle = Arc::downgrade(&t);
                t
            }
        };
        Self::sync(&mut inner);
        throttle
    }

    /// Bring every live throttle and group in line with what the users ask for now, and forget
    /// what nobody uses.
    fn sync(inner: &mut Inner) {
        inner.entries.retain(|_, e| e.in_use());
        let mut group_limits: BTreeMap<GroupId, Vec<LimitSpec>> = BTreeMap::new();
        for ((provider, _), entry) in &inner.entries {
            for p in entry.policies() {
                if let Some(g) = &p.budget_group {
                    group_limits
                        .entry((provider.clone(), g.clone()))
                        .or_default()
                        .extend(p.group_limits());
                }
            }
        }
        // Groups are made (and updated) only for keys that are alive: a group nobody holds has
        // no state worth keeping, and starts spent when it is made again.
        for ((provider, _), entry) in &inner.entries {
            let Some(throttle) = entry.throttle.upgrade() else {
                continue;
            };
            let mut groups = Vec::new();
            for name in entry.group_names() {
                let id = (provider.clone(), name.clone());
                let limits = group_limits.get(&id).cloned().unwrap_or_default();
                let group = match inner.groups.get(&id).and_then(Weak::upgrade) {
                    Some(g) => {
                        g.set_limits(&limits);
                        g
                    }
                    None => {
                        let g = Group::new(&name, &limits);
                        inner.groups.insert(id, Arc::downgrade(&g));
                        g
                    }
                };
                groups.push(group);
            }
            throttle.set_path(&entry.key_policy(), groups);
        }
        inner.groups.retain(|_, g| g.strong_count() > 0);
    }

    /// The throttle of a key fingerprint, if one exists.
    pub fn get(&self, provider: &str, fingerprint: &str) -> Option<Arc<KeyThrottle>> {
        self.inner
            .lock()
            .entries
            .get(&(provider.to_string(), fingerprint.to_string()))
            .and_then(|e| e.throttle.upgrade())
    }

    /// The budget group `name` at `provider`, if a live key uses it.
    pub fn group(&self, provider: &str, name: &str) -> Option<Arc<Group>> {
        self.inner
            .lock()
            .groups
            .get(&(provider.to_string(), name.to_string()))
            .and_then(Weak::upgrade)
    }

    /// How many keys the registry remembers (after forgetting those nobody uses any more).
    pub fn len(&self) -> usize {
        let mut inner = self.inner.lock();
        inner.entries.retain(|_, e| e.in_use());
        inner.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The process-wide registry.
pub fn registry() -> &'static ThrottleRegistry {
    static REGISTRY: OnceLock<ThrottleRegistry> = OnceLock::new();
    REGISTRY.get_or_init(ThrottleRegistry::default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::throttle::{Priority, RateLimitHeaders};

    #[test]
    fn registry_shares_one_throttle_per_key_and_keeps_the_lowest_rate() {
        let key = ApiKey::new("registry-test-key-1");
        let a = registry().throttle("strettch", &key, 5.0);
        let b = registry().throttle("strettch", &ApiKey::new("registry-test-key-1 "), 2.0);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.requests_per_second(), 2.0);
        let c = registry().throttle("strettch", &key, 10.0);
        assert!(Arc::ptr_eq(&a, &c));
        assert_eq!(c.requests_per_second(), 2.0);
        assert_eq!(a.fingerprint(), key.fingerprint());
        let other = registry().throttle("vertra", &key, 10.0);
        assert!(!Arc::ptr_eq(&a, &other));
        let d = registry().throttle("strettch", &ApiKey::new("registry-test-key-2"), 10.0);
        assert!(!Arc::ptr_eq(&a, &d));
        assert!(!format!("{a:?}").contains("registry-test-key"));
        assert!(registry().get("strettch", &key.fingerprint()).is_some());
    }

    #[test]
    fn the_rate_of_a_key_follows_the_provider_configs_that_use_it_now() {
        let reg = ThrottleRegistry::default();
        let key = ApiKey::new("registry-users-key-1");
        let t = reg.throttle_for("strettch", &key, "pc-a", 2.0);
        assert_eq!(t.requests_per_second(), 2.0);
        // pc-b lowers the key's rate ...
        let b = reg.throttle_for("strettch", &key, "pc-b", 0.5);
        assert!(Arc::ptr_eq(&t, &b));
        assert_eq!(t.requests_per_second(), 0.5);
        // ... and raising it again restores it.
        reg.throttle_for("strettch", &key, "pc-b", 5.0);
        assert_eq!(t.requests_per_second(), 2.0);
        assert_eq!(t.effective_requests_per_second(), 2.0);
        // Lowered again, then deleted.
        reg.throttle_for("strettch", &key, "pc-b", 0.5);
        assert_eq!(t.requests_per_second(), 0.5);
        reg.release_user("pc-b");
        assert_eq!(t.requests_per_second(), 2.0);
        // pc-a moves to another key: the first key no longer follows pc-a's rate.
        reg.throttle_for("strettch", &key, "pc-c", 3.0);
        reg.throttle_for("strettch", &key, "pc-a", 1.0);
        assert_eq!(t.requests_per_second(), 1.0);
        let other = reg.throttle_for(
            "strettch",
            &ApiKey::new("registry-users-key-2"),
            "pc-a",
            1.0,
        );
        assert!(!Arc::ptr_eq(&t, &other));
        assert_eq!(t.requests_per_second(), 3.0);
        // A caller without a name does not override the named users.
        reg.throttle("strettch", &key, 0.1);
        assert_eq!(t.requests_per_second(), 3.0);
    }

    #[tokio::test]
    async fn a_key_nobody_uses_any_more_is_forgotten_with_its_metric_series() {
        let reg = ThrottleRegistry::default();
        let key = ApiKey::new("registry-forget-key");
        let fp = key.fingerprint();
        let series = |fp: &str| {
            crate::metrics::global()
                .encode()
                .lines()
                .filter(|l| l.contains(fp))
                .count()
        };
        let t = reg.throttle_for("strettch", &key, "pc-forget", 50.0);
        t.acquire(Priority::Routine).await;
        t.observe_headers(RateLimitHeaders {
            limit: Some(2),
            remaining: Some(1),
            ..Default::default()
        });
        assert!(series(&fp) > 0, "the key has metric series while in use");
        assert_eq!(reg.len(), 1);
        // No client holds the throttle any more, but a ProviderConfig still uses the key.
        drop(t);
        assert_eq!(reg.len(), 1);
        assert!(reg.get("strettch", &fp).is_none());
        assert_eq!(series(&fp), 0, "series go with the throttle");
        // The ProviderConfig is gone too: nothing is left.
        reg.release_user("pc-forget");
        assert_eq!(reg.len(), 0);
        assert!(reg.is_empty());
        // Keys that come and go do not pile up.
        for i in 0..100 {
            let t = reg.throttle("strettch", &ApiKey::new(format!("rotated-{i}")), 2.0);
            drop(t);
        }
        assert_eq!(reg.len(), 0);
        // A client holding the throttle keeps the key, even without a named user.
        let held = reg.throttle("strettch", &key, 2.0);
        reg.release_user("nobody");
        assert_eq!(reg.len(), 1);
        assert!(Arc::ptr_eq(&held, &reg.get("strettch", &fp).unwrap()));
    }
}
