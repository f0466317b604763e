//! A sandbox's rate limiter, as a cloud enforces it: several limits at once, each per API key or
//! per group of keys, counted in fixed or rolling windows, with a log of when every request was
//! let through so tests can count requests in every sliding window.
//!
//! Nothing here knows a particular cloud: keys and groups are plain names (a sandbox passes key
//! fingerprints), time is a [`Duration`] since the unix epoch. A request is let through only if
//! every limit on its path has room; a refused request counts nowhere.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

/// The limit advertised when nothing is limited.
pub const UNLIMITED: u64 = 1_000_000;
/// How many request times the log keeps per key (the oldest are dropped first).
pub const LOG_CAPACITY: usize = 100_000;

/// Whose requests a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Each key alone.
    Key,
    /// All keys of the same group together (a key in no group counts alone).
    Group,
}

/// How a limit's window is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// Windows of `per` aligned on the unix epoch (`per` = 1 s: unix seconds).
    Fixed,
    /// Any interval of length `per` ending now.
    Rolling,
}

/// At most `requests` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    pub requests: u64,
    pub per: Duration,
    pub scope: Scope,
    pub window: Window,
}

impl Limit {
    pub fn new(requests: u64, per: Duration, scope: Scope, window: Window) -> Self {
        Limit {
            requests,
            per: per.max(Duration::from_millis(1)),
            scope,
            window,
        }
    }

    /// "30 requests per 60 s per key (rolling)"
    pub fn describe(&self) -> String {
        format!(
            "{} requests per {} s per {} ({})",
            self.requests,
            self.per.as_secs_f64(),
            match self.scope {
                Scope::Key => "API key",
                Scope::Group => "group of API keys",
            },
            match self.window {
                Window::Fixed => "fixed windows",
                Window::Rolling => "rolling window",
            }
        )
    }
}

/// The verdict for one request, with what rate-limit headers would say: the values of the limit
/// with the least room left (or, when refused, the one that refused it for longest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Unix second by which the reported limit has room again (its window's end, rounded up).
    pub reset: u64,
    /// Whole seconds to wait, for `Retry-After` (≥ 1).
    pub retry_after: u64,
    /// Which limit the values are about ([`Limit::describe`]); empty when unlimited.
    pub describe: String,
}

#[derive(Debug)]
enum Counter {
    Fixed { window: u128, count: u64 },
    Rolling(VecDeque<Duration>),
}

impl Counter {
    fn new(limit: &Limit) -> Self {
        match limit.window {
            Window::Fixed => Counter::Fixed {
                window: 0,
                count: 0,
            },
            Window::Rolling => Counter::Rolling(VecDeque::new()),
        }
    }

    /// (requests counted in the window that holds `now`, when that count next drops)
    fn look(&mut self, limit: &Limit, now: Duration) -> (u64, Duration) {
        match self {
            Counter::Fixed { window, count } => {
                let idx = now.as_nanos() / limit.per.as_nanos();
                if *window != idx {
                    *window = idx;
                    *count = 0;
                }
                let end = Duration::from_nanos(((idx + 1) * limit.per.as_nanos()) as u64);
                (*count, end)
            }
            Counter::Rolling(times) => {
                while times.front().is_some_and(|t| *t + limit.per <= now) {
                    times.pop_front();
                }
                let end = times.front().map(|t| *t + limit.per).unwrap_or(now);
                (times.len() as u64, end)
            }
        }
    }

    fn count(&mut self, now: Duration) {
        match self {
            Counter::Fixed { count, .. } => *count += 1,
            Counter::Rolling(times) => times.push_back(now),
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct RateLimiter {
    limits: Vec<Limit>,
    /// key → group
    groups: HashMap<String, String>,
    /// (limit index, key or group) → counter
    counters: HashMap<(usize, String), Counter>,
    /// key → when each request was let through
    log: BTreeMap<String, VecDeque<Duration>>,
}

impl RateLimiter {
    /// `limits` all apply; `groups` maps keys to their group.
    pub fn new(limits: Vec<Limit>, groups: HashMap<String, String>) -> Self {
        RateLimiter {
            limits,
            groups,
            counters: HashMap::new(),
            log: BTreeMap::new(),
        }
    }

    pub fn limits(&self) -> &[Limit] {
        &self.limits
    }

    /// The group of `key`, if it has one.
    pub fn group_of(&self, key: &str) -> Option<&str> {
        self.groups.get(key).map(String::as_str)
    }

    fn subject(&self, limit: &Limit, key: &str) -> String {
        match limit.scope {
            Scope::Key => format!("key:{key}"),
            Scope::Group => match self.groups.get(key) {
                Some(g) => format!("group:{g}"),
                None => format!("key:{key}"),
            },
        }
    }

    /// Decides about one request of `key` arriving at `now` (since the unix epoch); counts it
    /// in every limit and logs it if it is let through.
    pub fn check(&mut self, key: &str, now: Duration) -> Decision {
        self.decide(key, now, true)
    }

    /// What [`RateLimiter::check`] would decide about a request of `key` at `now`, counting and
    /// logging nothing: for a cloud with several budgets that must all have room before any
    /// counts the request, or that reports a budget it did not consult.
    pub fn peek(&mut self, key: &str, now: Duration) -> Decision {
        self.decide(key, now, false)
    }

    fn decide(&mut self, key: &str, now: Duration, commit: bool) -> Decision {
        let mut looks = Vec::with_capacity(self.limits.len());
        for (i, limit) in self.limits.iter().enumerate() {
            let subject = self.subject(limit, key);
            let counter = self
                .counters
                .entry((i, subject))
                .or_insert_with(|| Counter::new(limit));
            let (count, end) = counter.look(limit, now);
            looks.push((i, count, end));
        }
        let refused: Vec<_> = looks
            .iter()
            .filter(|(i, count, _)| *count >= self.limits[*i].requests)
            .collect();
        if let Some((i, _, end)) = refused.iter().max_by_key(|(_, _, end)| *end) {
            let limit = &self.limits[*i];
            return Decision {
                allowed: false,
                limit: limit.requests,
                remaining: 0,
                reset: ceil_secs(*end),
                retry_after: ceil_secs(end.saturating_sub(now)).max(1),
                describe: limit.describe(),
            };
        }
        if commit {
            for (i, limit) in self.limits.iter().enumerate() {
                let subject = self.subject(limit, key);
                if let Some(c) = self.counters.get_mut(&(i, subject)) {
                    c.count(now);
                }
            }
            let log = self.log.entry(key.to_string()).or_default();
            log.push_back(now);
            if log.len() > LOG_CAPACITY {
                log.pop_front();
            }
        }
        let tightest = looks.iter().min_by_key(|(i, count, _)| {
            (self.limits[*i].requests - count - 1, self.limits[*i].per)
        });
        match tightest {
            None => Decision {
                allowed: true,
                limit: UNLIMITED,
                remaining: UNLIMITED,
                reset: now.as_secs() + 1,
                retry_after: 1,
                describe: String::new(),
            },
            Some((i, count, end)) => {
                let limit = &self.limits[*i];
                // A rolling window that was empty ends `per` from now.
                let end = if *count == 0 && limit.window == Window::Rolling {
                    now + limit.per
                } else {
                    *end
                };
                Decision {
                    allowed: true,
                    limit: limit.requests,
                    remaining: limit.requests - count - 1,
                    reset: ceil_secs(end),
                    retry_after: ceil_secs(end.saturating_sub(now)).max(1),
                    describe: limit.describe(),
                }
            }
        }
    }

    /// When each request of `key` was let through, oldest first.
    pub fn request_times(&self, key: &str) -> Vec<Duration> {
        self.log
            .get(key)
            .map(|l| l.iter().copied().collect())
            .unwrap_or_default()
    }

    /// When each request of any key of `group` was let through, oldest first.
    pub fn group_request_times(&self, group: &str) -> Vec<Duration> {
        let mut times: Vec<Duration> = self
            .log
            .iter()
            .filter(|(k, _)| self.groups.get(*k).map(String::as_str) == Some(group))
            .flat_map(|(_, l)| l.iter().copied())
            .collect();
        times.sort();
        times
    }

    /// Forgets the request log (the windows themselves are kept).
    pub fn clear_log(&mut self) {
        self.log.clear();
    }
}

/// The largest number of `times` (sorted) inside any half-open interval `[s, s + window)`: what
/// a rolling window of `window` would have counted at its fullest.
pub fn max_in_any_window(times: &[Duration], window: Duration) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi].saturating_sub(times[lo]) >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// The earliest moments, from empty windows at time zero (a fixed window's start), at which
/// `calls` requests of one key can all be admitted by `limits`, with no latency: the floor a
/// budget sets under any client. Benchmarks compare a run's time with it.
pub fn earliest_schedule(limits: &[Limit], calls: usize) -> Vec<Duration> {
    let mut t: Vec<Duration> = Vec::with_capacity(calls);
    for i in 0..calls {
        let mut at = t.last().copied().unwrap_or(Duration::ZERO);
        // A later limit can push `at` past an earlier one's window: repeat until all agree.
        loop {
            let before = at;
            for l in limits {
                let n = l.requests as usize;
                match l.window {
                    Window::Rolling if i >= n => at = at.max(t[i - n] + l.per),
                    Window::Rolling => {}
                    Window::Fixed => {
                        let window = at.as_nanos() / l.per.as_nanos();
                        let full = i >= n && t[i - n].as_nanos() / l.per.as_nanos() == window;
                        if full {
                            at = l.per * (window + 1) as u32;
                        }
                    }
                }
            }
            if at == before {
                break;
            }
        }
        t.push(at);
    }
    t
}

/// The most requests `limits` admit in the first `span` from empty windows.
pub fn capacity(limits: &[Limit], span: Duration) -> usize {
    let Some(bound) = limits
        .iter()
        .map(|l| {
            let windows = span.as_nanos() / l.per.as_nanos() + 1;
            (l.requests as u128 * windows) as usize
        })
        .min()
    else {
        return usize::MAX;
    };
    earliest_schedule(limits, bound + 1)
        .iter()
        .filter(|&&x| x <= span)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const M: Duration = Duration::from_secs(60);

    fn at(ms: u64) -> Duration {
        Duration::from_millis(1_700_000_000_000 + ms)
    }

    #[test]
    fn a_rolling_minute_of_120_admits_the_121st_request_a_minute_after_the_first() {
        let l = [Limit::new(120, M, Scope::Key, Window::Rolling)];
        let t = earliest_schedule(&l, 241);
        assert_eq!((t[119], t[120], t[240]), (Duration::ZERO, M, 2 * M));
    }

    #[test]
    fn two_rolling_limits_bind_together_and_the_tighter_wins_after_600() {
        let l = [
            Limit::new(120, M, Scope::Key, Window::Rolling),
            Limit::new(600, 10 * M, Scope::Key, Window::Rolling),
        ];
        let t = earliest_schedule(&l, 721);
        // 600 in five minutes at 120 a minute, then the 601st waits for the first to leave
        // the ten minutes, and 120 of the next go at once.
        assert_eq!(t[599], 4 * M);
        assert_eq!((t[600], t[719], t[720]), (10 * M, 10 * M, 11 * M));
        assert_eq!(capacity(&l, 9 * M), 600);
        assert_eq!(capacity(&l, 10 * M), 720);
    }

    #[test]
    fn a_fixed_minute_refills_at_the_next_boundary() {
        let l = [Limit::new(1000, M, Scope::Key, Window::Fixed)];
        let t = earliest_schedule(&l, 2001);
        assert_eq!((t[999], t[1000], t[2000]), (Duration::ZERO, M, 2 * M));
        assert_eq!(capacity(&l, Duration::from_secs(30)), 1000);
        assert_eq!(capacity(&l, M), 2000);
    }

    #[test]
    fn no_limit_admits_everything_at_once() {
        assert_eq!(earliest_schedule(&[], 5), vec![Duration::ZERO; 5]);
        assert_eq!(capacity(&[], M), usize::MAX);
    }

    #[test]
    fn fixed_windows_reset_at_their_boundary() {
        let mut l = RateLimiter::new(
            vec![Limit::new(2, S, Scope::Key, Window::Fixed)],
            HashMap::new(),
        );
        let a = l.check("k", at(100));
        assert!(a.allowed && a.remaining == 1 && a.limit == 2);
        assert_eq!(a.reset, at(1000).as_secs());
        assert!(l.check("k", at(900)).allowed);
        let d = l.check("k", at(950));
        assert!(!d.allowed && d.remaining == 0 && d.retry_after == 1);
        assert!(l.check("other", at(950)).allowed);
        // The next second: room again, though the last two were 100 ms ago.
        assert!(l.check("k", at(1000)).allowed);
        assert!(l.check("k", at(1001)).allowed);
        assert_eq!(l.request_times("k").len(), 4);
    }

    #[test]
    fn rolling_windows_count_the_last_per() {
        let mut l = RateLimiter::new(
            vec![Limit::new(3, M, Scope::Key, Window::Rolling)],
            HashMap::new(),
        );
        for ms in [0, 10_000, 20_000] {
            assert!(l.check("k", at(ms)).allowed);
        }
        let d = l.check("k", at(59_999));
        assert!(!d.allowed);
        assert_eq!(d.retry_after, 1);
        assert_eq!(d.reset, at(60_000).as_secs());
        assert!(
            l.check("k", at(60_000)).allowed,
            "the first left the window"
        );
        assert!(!l.check("k", at(65_000)).allowed);
        assert!(l.check("k", at(70_000)).allowed);
    }

    #[test]
    fn group_limits_count_every_key_of_the_group_and_every_limit_applies() {
        let groups = HashMap::from([
            ("a".to_string(), "acme".to_string()),
            ("b".to_string(), "acme".to_string()),
        ]);
        let mut l = RateLimiter::new(
            vec![
                Limit::new(2, S, Scope::Key, Window::Fixed),
                Limit::new(3, M, Scope::Group, Window::Rolling),
            ],
            groups,
        );
        assert!(l.check("a", at(0)).allowed);
        assert!(l.check("a", at(1)).allowed);
        // a is out of its per-second budget, b is not.
        let d = l.check("a", at(2));
        assert!(!d.allowed && d.describe.contains("per API key"), "{d:?}");
        let ok = l.check("b", at(3));
        assert!(ok.allowed && ok.remaining == 0 && ok.limit == 3, "{ok:?}");
        // The group's minute is spent, for both keys, and a refused request counted nowhere.
        let d = l.check("b", at(2000));
        assert!(!d.allowed && d.describe.contains("group"), "{d:?}");
        assert_eq!(d.retry_after, 58);
        // A key in no group has its own.
        assert!(l.check("c", at(2000)).allowed);
        assert_eq!(l.group_request_times("acme").len(), 3);
        assert_eq!(l.group_of("a"), Some("acme"));
    }

    #[test]
    fn a_peek_decides_like_a_check_and_counts_nothing() {
        let mut l = RateLimiter::new(
            vec![Limit::new(2, M, Scope::Key, Window::Rolling)],
            HashMap::new(),
        );
        assert_eq!(l.peek("k", at(0)), l.check("k", at(0)));
        for _ in 0..5 {
            assert!(l.peek("k", at(1)).allowed);
        }
        assert!(
            l.check("k", at(1)).allowed,
            "peeks left room for the second"
        );
        let refused = l.peek("k", at(2));
        assert!(!refused.allowed);
        assert_eq!(refused, l.check("k", at(2)));
        assert_eq!(l.request_times("k").len(), 2, "peeks are not logged");
    }

    #[test]
    fn no_limits_means_unlimited() {
        let mut l = RateLimiter::default();
        for _ in 0..1000 {
            assert!(l.check("k", at(5)).allowed);
        }
        assert_eq!(l.check("k", at(5)).limit, UNLIMITED);
    }

    /// The window count a test relies on must be able to fail: a naive quota (30 at once, then
    /// one every 2 s, as `per_minute(30)` does) puts almost 60 in one minute, while requests
    /// spaced W / N never exceed N.
    #[test]
    fn the_window_count_catches_a_naive_quota() {
        let mut naive: Vec<Duration> = (0..30).map(|_| at(0)).collect();
        naive.extend((1..=30).map(|i| at(i * 2000 - 1)));
        assert_eq!(max_in_any_window(&naive, M), 60);
        let paced: Vec<Duration> = (0..100).map(|i| at(i * 2000)).collect();
        assert_eq!(max_in_any_window(&paced, M), 30);
        assert_eq!(max_in_any_window(&[], M), 0);
    }
}
