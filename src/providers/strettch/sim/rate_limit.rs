//! Per-key fixed-window rate limiting (one window per unix second) and the request counters.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// The limit advertised when rate limiting is off (`rate_limit` 0).
pub const UNLIMITED: u64 = 1_000_000;
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

/// The verdict for one request, with the values of the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Unix second when the current window ends.
    pub reset: u64,
    /// Seconds to wait, for `Retry-After` (≥ 1).
    pub retry_after: u64,
}

#[derive(Debug)]
pub struct Limiter {
    limit: u32,
    /// fingerprint → (window second, requests let through in it)
    windows: HashMap<String, (u64, u64)>,
    stats: SimStats,
}

impl Limiter {
    pub fn new(limit: u32, fingerprints: impl IntoIterator<Item = String>) -> Self {
        let mut stats = SimStats::default();
        for fp in fingerprints {
            stats.keys.entry(fp).or_default();
        }
        Self {
            limit,
            windows: HashMap::new(),
            stats,
        }
    }

    /// Decides about one request of key `fp` arriving at unix second `now`; counts it.
    pub fn check(&mut self, fp: &str, now: u64) -> Decision {
        let limit = if self.limit == 0 {
            UNLIMITED
        } else {
            u64::from(self.limit)
        };
        let w = self.windows.entry(fp.to_string()).or_insert((now, 0));
        if w.0 != now {
            *w = (now, 0);
        }
        let stats = self.stats.keys.entry(fp.to_string()).or_default();
        if self.limit != 0 && w.1 >= limit {
            stats.served_429 += 1;
            self.stats.served_429 += 1;
            return Decision {
                allowed: false,
                limit,
                remaining: 0,
                reset: now + 1,
                retry_after: 1,
            };
        }
        w.1 += 1;
        stats.requests += 1;
        let n = stats.per_second.entry(now).or_insert(0);
        *n += 1;
        stats.max_per_second = stats.max_per_second.max(*n);
        while stats.per_second.len() > HISTORY_SECONDS {
            stats.per_second.pop_first();
        }
        Decision {
            allowed: true,
            limit,
            remaining: limit.saturating_sub(w.1),
            reset: now + 1,
            retry_after: 1,
        }
    }

    pub fn count_route(&mut self, route: String) {
        *self.stats.requests_by_route.entry(route).or_insert(0) += 1;
    }

    pub fn stats(&self) -> SimStats {
        self.stats.clone()
    }

    /// Zeroes the counters (the rate-limit windows themselves are kept).
    pub fn reset_stats(&mut self) {
        let keys = self.stats.keys.keys().cloned().collect::<Vec<_>>();
        self.stats = SimStats::default();
        for fp in keys {
            self.stats.keys.entry(fp).or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_window_per_second() {
        let mut l = Limiter::new(2, ["k".to_string()]);
        let a = l.check("k", 100);
        assert!(a.allowed && a.remaining == 1 && a.reset == 101 && a.limit == 2);
        assert!(l.check("k", 100).allowed);
        let d = l.check("k", 100);
        assert!(!d.allowed && d.remaining == 0 && d.retry_after >= 1);
        assert!(l.check("other", 100).allowed);
        assert!(l.check("k", 101).allowed);
        let s = l.stats();
        assert_eq!(s.keys["k"].requests, 3);
        assert_eq!(s.keys["k"].served_429, 1);
        assert_eq!(s.keys["k"].max_per_second, 2);
        assert_eq!(s.keys["k"].per_second[&100], 2);
        assert_eq!(s.served_429, 1);
        l.reset_stats();
        assert_eq!(l.stats().keys["k"].requests, 0);
        // the window survives a stats reset
        assert!(l.check("k", 101).allowed);
        assert!(!l.check("k", 101).allowed);
    }

    #[test]
    fn zero_means_unlimited() {
        let mut l = Limiter::new(0, []);
        for _ in 0..1000 {
            assert!(l.check("k", 5).allowed);
        }
        assert_eq!(l.check("k", 5).limit, UNLIMITED);
    }
}
