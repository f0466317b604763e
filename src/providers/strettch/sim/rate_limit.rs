//! Strettch's rate limiting in the sandbox: its documented per-key limit (fixed unix seconds)
//! and any further limits the sandbox is configured with, enforced by the shared
//! [`crate::sim::rate_limit`]; and the request counters tests read.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::sim::rate_limit::{Decision, Limit, RateLimiter, Scope, Window};
/// How many seconds of per-second history each key keeps.
pub const HISTORY_SECONDS: usize = 3600;

/// What the sandbox has seen, as `GET /_sim/stats` and `SimHandle::stats` report it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimStats {
    /// Per API key, named by its fingerprint (`sim::key_fingerprint`).
    pub keys: BTreeMap<String, KeyStats>,
    /// All 429 answers.
    pub served_429: u64,
    /// Computes present (including DESTROYING ones).
    pub computes: usize,
    pub domains: usize,
    pub records: usize,
    /// Requests let through, by route template: `"GET /computes/{id}"`.
    pub requests_by_route: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyStats {
    /// Requests let through (not 429).
    pub requests: u64,
    /// The highest value in `per_second` since the last reset.
    pub max_per_second: u64,
    /// Requests let through per unix second (the last hour is kept).
    pub per_second: BTreeMap<u64, u64>,
    /// 429 answers to this key.
    pub served_429: u64,
}

/// The Strettch sandbox's limiter: the shared [`RateLimiter`] (every configured limit, per key
/// or per group of keys, fixed or rolling) plus the counters Strettch tests read.
#[derive(Debug)]
pub struct Limiter {
    inner: RateLimiter,
    stats: SimStats,
}

impl Limiter {
    /// `per_second`: Strettch's documented per-key limit in fixed unix seconds (0: none);
    /// `limits`: more limits; `groups`: key fingerprint → group.
    pub fn new(
        per_second: u32,
        limits: Vec<Limit>,
        groups: HashMap<String, String>,
        fingerprints: impl IntoIterator<Item = String>,
    ) -> Self {
        let mut stats = SimStats::default();
        for fp in fingerprints {
            stats.keys.entry(fp).or_default();
        }
        let mut all = Vec::new();
        if per_second > 0 {
            all.push(Limit::new(
                u64::from(per_second),
                Duration::from_secs(1),
                Scope::Key,
                Window::Fixed,
            ));
        }
        all.extend(limits);
        Self {
            inner: RateLimiter::new(all, groups),
            stats,
        }
    }

    /// Decides about one request of key `fp` arriving at `now` (since the unix epoch); counts it.
    pub fn check(&mut self, fp: &str, now: Duration) -> Decision {
        let d = self.inner.check(fp, now);
        let stats = self.stats.keys.entry(fp.to_string()).or_default();
        if !d.allowed {
            stats.served_429 += 1;
            self.stats.served_429 += 1;
            return d;
        }
        stats.requests += 1;
        let n = stats.per_second.entry(now.as_secs()).or_insert(0);
        *n += 1;
        stats.max_per_second = stats.max_per_second.max(*n);
        while stats.per_second.len() > HISTORY_SECONDS {
            stats.per_second.pop_first();
        }
        d
    }

    pub fn count_route(&mut self, route: String) {
        *self.stats.requests_by_route.entry(route).or_insert(0) += 1;
    }

    pub fn stats(&self) -> SimStats {
        self.stats.clone()
    }

    /// When each request of key `fp` was let through (since the unix epoch), oldest first.
    pub fn request_times(&self, fp: &str) -> Vec<Duration> {
        self.inner.request_times(fp)
    }

    /// When each request of any key of `group` was let through, oldest first.
    pub fn group_request_times(&self, group: &str) -> Vec<Duration> {
        self.inner.group_request_times(group)
    }

    /// Zeroes the counters and the request log (the rate-limit windows themselves are kept).
    pub fn reset_stats(&mut self) {
        let keys = self.stats.keys.keys().cloned().collect::<Vec<_>>();
        self.stats = SimStats::default();
        for fp in keys {
            self.stats.keys.entry(fp).or_default();
        }
        self.inner.clear_log();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rate_limit::UNLIMITED;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn fixed_window_per_second() {
        let mut l = Limiter::new(2, vec![], HashMap::new(), ["k".to_string()]);
        let a = l.check("k", secs(100));
        assert!(a.allowed && a.remaining == 1 && a.reset == 101 && a.limit == 2);
        assert!(l.check("k", secs(100)).allowed);
        let d = l.check("k", secs(100));
        assert!(!d.allowed && d.remaining == 0 && d.retry_after >= 1);
        assert!(l.check("other", secs(100)).allowed);
        assert!(l.check("k", secs(101)).allowed);
        let s = l.stats();
        assert_eq!(s.keys["k"].requests, 3);
        assert_eq!(s.keys["k"].served_429, 1);
        assert_eq!(s.keys["k"].max_per_second, 2);
        assert_eq!(s.keys["k"].per_second[&100], 2);
        assert_eq!(s.served_429, 1);
        l.reset_stats();
        assert_eq!(l.stats().keys["k"].requests, 0);
        // the window survives a stats reset
        assert!(l.check("k", secs(101)).allowed);
        assert!(!l.check("k", secs(101)).allowed);
    }

    #[test]
    fn zero_means_unlimited() {
        let mut l = Limiter::new(0, vec![], HashMap::new(), []);
        for _ in 0..1000 {
            assert!(l.check("k", secs(5)).allowed);
        }
        assert_eq!(l.check("k", secs(5)).limit, UNLIMITED);
    }
}
