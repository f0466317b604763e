//! What a sandbox counts about the requests it sees, next to the rate limiter that decides about
//! them: [`Meter`] is the shared [`RateLimiter`] plus the counters every cloud's `/_sim/stats`
//! reports ([`RequestStats`]). A cloud adds its own resource counts (`Cloud::stats`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rate_limit::{Decision, Limit, RateLimiter};

/// How many seconds of per-second history each key keeps.
pub const HISTORY_SECONDS: usize = 3600;

/// The requests a sandbox has seen since its start or the last stats reset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestStats {
    /// Per API key, named by its fingerprint (`sim::key_fingerprint`).
    pub keys: BTreeMap<String, KeyStats>,
    /// All 429 answers.
    pub served_429: u64,
    /// Requests let through, by method and route template under the API prefix:
    /// `"GET /computes/{id}"`.
    pub requests_by_route: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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

/// How many writes [`Meter::writes`] keeps (the oldest go first).
pub const WRITE_LOG_LEN: usize = 100_000;

/// A write (POST, PUT, PATCH, DELETE) the sandbox let through: when, and what. Lets a benchmark
/// time a user's change to the cloud call it caused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRecord {
    /// Since the unix epoch, when the gate admitted it (before the handler ran).
    pub at: Duration,
    pub method: String,
    /// The request's path, ids included: `/api/v1/computes/42/stop`.
    pub path: String,
}

/// The rate limiter with its counters. See the module docs.
#[derive(Debug)]
pub struct Meter {
    limiter: RateLimiter,
    stats: RequestStats,
    writes: VecDeque<WriteRecord>,
}

impl Meter {
    /// Every one of `limits` applies; `groups` maps key fingerprints to their group;
    /// `fingerprints` are listed in the stats from the start, requests or not.
    pub fn new(
        limits: Vec<Limit>,
        groups: HashMap<String, String>,
        fingerprints: impl IntoIterator<Item = String>,
    ) -> Self {
        let mut stats = RequestStats::default();
        for fp in fingerprints {
            stats.keys.entry(fp).or_default();
        }
        Self {
            limiter: RateLimiter::new(limits, groups),
            stats,
            writes: VecDeque::new(),
        }
    }

    /// Decides about one request of key `fp` arriving at `now` (since the unix epoch); counts it.
    pub fn check(&mut self, fp: &str, now: Duration) -> Decision {
        let d = self.limiter.check(fp, now);
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

    /// Counts a request let through on `route` (see [`RequestStats::requests_by_route`]).
    pub fn count_route(&mut self, route: String) {
        *self.stats.requests_by_route.entry(route).or_insert(0) += 1;
    }

    pub fn stats(&self) -> RequestStats {
        self.stats.clone()
    }

    /// Logs a write let through (see [`WriteRecord`]); the log keeps the last
    /// [`WRITE_LOG_LEN`].
    pub fn log_write(&mut self, record: WriteRecord) {
        if self.writes.len() >= WRITE_LOG_LEN {
            self.writes.pop_front();
        }
        self.writes.push_back(record);
    }

    /// The writes let through since the start or the last reset, oldest first.
    pub fn writes(&self) -> Vec<WriteRecord> {
        self.writes.iter().cloned().collect()
    }

    /// When each request of key `fp` was let through (since the unix epoch), oldest first.
    pub fn request_times(&self, fp: &str) -> Vec<Duration> {
        self.limiter.request_times(fp)
    }

    /// When each request of any key of `group` was let through, oldest first.
    pub fn group_request_times(&self, group: &str) -> Vec<Duration> {
        self.limiter.group_request_times(group)
    }

    /// Zeroes the counters and the request log (the rate-limit windows themselves are kept).
    pub fn reset_stats(&mut self) {
        let keys = self.stats.keys.keys().cloned().collect::<Vec<_>>();
        self.stats = RequestStats::default();
        for fp in keys {
            self.stats.keys.entry(fp).or_default();
        }
        self.limiter.clear_log();
        self.writes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::rate_limit::{Scope, UNLIMITED, Window};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn per_second(n: u64) -> Vec<Limit> {
        vec![Limit::new(n, secs(1), Scope::Key, Window::Fixed)]
    }

    #[test]
    fn counters_follow_the_verdicts_and_a_reset_keeps_the_windows() {
        let mut m = Meter::new(per_second(2), HashMap::new(), ["k".to_string()]);
        let a = m.check("k", secs(100));
        assert!(a.allowed && a.remaining == 1 && a.reset == 101 && a.limit == 2);
        assert!(m.check("k", secs(100)).allowed);
        let d = m.check("k", secs(100));
        assert!(!d.allowed && d.remaining == 0 && d.retry_after >= 1);
        assert!(m.check("other", secs(100)).allowed);
        assert!(m.check("k", secs(101)).allowed);
        m.count_route("GET /x".into());
        let s = m.stats();
        assert_eq!(s.keys["k"].requests, 3);
        assert_eq!(s.keys["k"].served_429, 1);
        assert_eq!(s.keys["k"].max_per_second, 2);
        assert_eq!(s.keys["k"].per_second[&100], 2);
        assert_eq!(s.served_429, 1);
        assert_eq!(s.requests_by_route["GET /x"], 1);
        assert_eq!(m.request_times("k").len(), 3);
        let w = WriteRecord {
            at: secs(101),
            method: "POST".into(),
            path: "/x/1/stop".into(),
        };
        m.log_write(w.clone());
        assert_eq!(m.writes(), [w]);
        m.reset_stats();
        assert!(m.writes().is_empty());
        let s = m.stats();
        assert_eq!(s.keys["k"], KeyStats::default(), "known keys stay listed");
        assert!(s.requests_by_route.is_empty() && m.request_times("k").is_empty());
        // the window survives a stats reset
        assert!(m.check("k", secs(101)).allowed);
        assert!(!m.check("k", secs(101)).allowed);
    }

    #[test]
    fn no_limits_means_unlimited() {
        let mut m = Meter::new(vec![], HashMap::new(), []);
        for _ in 0..1000 {
            assert!(m.check("k", secs(5)).allowed);
        }
        assert_eq!(m.check("k", secs(5)).limit, UNLIMITED);
    }

    #[test]
    fn stats_json_is_camel_case() {
        let v = serde_json::to_value(RequestStats::default()).unwrap();
        assert!(v.get("served429").is_some() && v.get("requestsByRoute").is_some());
        let v = serde_json::to_value(KeyStats::default()).unwrap();
        assert!(v.get("maxPerSecond").is_some() && v.get("perSecond").is_some());
    }
}
