//! CloudAPI's rate limits on the framework's limiter (`crate::sim::rate_limit`), with what the
//! sandbox counts about them:
//!
//! - `cloudapi`: 1,000 requests a minute per API key (001's FAQ). The reset header is a unix
//!   second, so the minute is *assumed* to be a fixed window aligned on the clock's minutes.
//! - `cloudplatform`: 120 requests a minute per key, "60-second rolling window" (002's FAQ),
//!   and 600 requests per 10 minutes per workspace (002's body; rolling too, *assumed*). Both
//!   hold at once: a request counts in both or in neither.
//!
//! The limits live here rather than in the framework's gate because the keys (and their
//! workspaces) change while the sandbox runs: keys created through `POST /v1/keys` count in
//! their project's workspace.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sim::KeyStats;
use crate::sim::rate_limit::{Decision, Limit, RateLimiter, Scope, Window, max_in_any_window};
use crate::sim::stats::HISTORY_SECONDS;

use super::wire::Dialect;

pub const MINUTE: Duration = Duration::from_secs(60);
pub const TEN_MINUTES: Duration = Duration::from_secs(600);
/// `cloudapi`: requests per minute per key (001).
pub const CLOUDAPI_PER_KEY_PER_MINUTE: u32 = 1_000;
/// `cloudplatform`: requests per minute per key (002).
pub const CLOUDPLATFORM_PER_KEY_PER_MINUTE: u32 = 120;
/// `cloudplatform`: requests per 10 minutes per workspace (002).
pub const CLOUDPLATFORM_PER_WORKSPACE_PER_TEN_MINUTES: u32 = 600;

/// The numbers in force; 0 = unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Budgets {
    pub per_key_per_minute: u32,
    /// Always 0 in `cloudapi`, which has no workspace budget.
    pub per_workspace_per_ten_minutes: u32,
}

impl Budgets {
    /// The dialect's documented numbers, or the overrides.
    pub fn of(dialect: Dialect, per_key: Option<u32>, per_workspace: Option<u32>) -> Self {
        match dialect {
            Dialect::Cloudapi => Budgets {
                per_key_per_minute: per_key.unwrap_or(CLOUDAPI_PER_KEY_PER_MINUTE),
                per_workspace_per_ten_minutes: 0,
            },
            Dialect::Cloudplatform => Budgets {
                per_key_per_minute: per_key.unwrap_or(CLOUDPLATFORM_PER_KEY_PER_MINUTE),
                per_workspace_per_ten_minutes: per_workspace
                    .unwrap_or(CLOUDPLATFORM_PER_WORKSPACE_PER_TEN_MINUTES),
            },
        }
    }
}

/// 429s served, per limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Served429 {
    pub per_key: u64,
    pub per_workspace: u64,
}

impl Served429 {
    pub fn total(&self) -> u64 {
        self.per_key + self.per_workspace
    }
}

/// The most requests let through in any one window of each limit since the last stats reset,
/// over every key (or workspace): a fixed clock minute in `cloudapi`, any 60 s (per key) and
/// any 10 minutes (per workspace) in `cloudplatform`. At most the limit, or the sandbox is
/// wrong; a client's tests compare them with the budgets to report utilisation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaxInWindow {
    pub per_key_per_minute: usize,
    pub per_workspace_per_ten_minutes: usize,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Key,
    Workspace,
}

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub refused: Option<Refused>,
    /// The key's budget, as `X-RateLimit-*` reports it.
    pub key: Decision,
    /// Seconds to wait, for `Retry-After`, when refused.
    pub retry_after: u64,
    /// What refused it, for the message.
    pub describe: String,
}

fn limiter(n: u32, per: Duration, window: Window) -> RateLimiter {
    let limits = if n == 0 {
        Vec::new()
    } else {
        vec![Limit::new(u64::from(n), per, Scope::Key, window)]
    };
    RateLimiter::new(limits, HashMap::new())
}

/// The largest number of `times` in one fixed window of `per` aligned on the epoch.
fn max_in_fixed_window(times: &[Duration], per: Duration) -> usize {
    let mut counts: HashMap<u128, usize> = HashMap::new();
    for t in times {
        *counts.entry(t.as_nanos() / per.as_nanos()).or_default() += 1;
    }
    counts.into_values().max().unwrap_or(0)
}

/// The limiters and their counters.
#[derive(Debug)]
pub struct Meter {
    dialect: Dialect,
    budgets: Budgets,
    key: RateLimiter,
    workspace: RateLimiter,
    keys_seen: BTreeSet<String>,
    workspaces_seen: BTreeSet<String>,
    keys: BTreeMap<String, KeyStats>,
    served: Served429,
}

impl Meter {
    /// `fingerprints` are listed in the stats from the start.
    pub fn new(
        dialect: Dialect,
        budgets: Budgets,
        fingerprints: impl IntoIterator<Item = String>,
    ) -> Self {
        let mut m = Meter {
            dialect,
            budgets,
            key: limiter(0, MINUTE, Window::Fixed),
            workspace: limiter(0, TEN_MINUTES, Window::Rolling),
            keys_seen: BTreeSet::new(),
            workspaces_seen: BTreeSet::new(),
            keys: BTreeMap::new(),
            served: Served429::default(),
        };
        m.set_budgets(budgets, true);
        for fp in fingerprints {
            m.keys.entry(fp).or_default();
        }
        m
    }

    fn key_window(&self) -> Window {
        match self.dialect {
            Dialect::Cloudapi => Window::Fixed,
            Dialect::Cloudplatform => Window::Rolling,
        }
    }

    pub fn budgets(&self) -> Budgets {
        self.budgets
    }

    /// New numbers; the windows of the limits that changed start empty.
    pub fn set_budgets(&mut self, b: Budgets, force: bool) {
        if force || b.per_key_per_minute != self.budgets.per_key_per_minute {
            self.key = limiter(b.per_key_per_minute, MINUTE, self.key_window());
        }
        if force || b.per_workspace_per_ten_minutes != self.budgets.per_workspace_per_ten_minutes {
            self.workspace = limiter(
                b.per_workspace_per_ten_minutes,
                TEN_MINUTES,
                Window::Rolling,
            );
        }
        self.budgets = b;
    }

    /// Decides about one request of key `fp` (in `workspace`, if it counts in one) at `now`
    /// (since the unix epoch); counts it in every budget if all have room.
    pub fn check(&mut self, fp: &str, workspace: Option<&str>, now: Duration) -> Check {
        let k = self.key.peek(fp, now);
        let w = workspace.map(|ws| self.workspace.peek(ws, now));
        let w_refused = w.as_ref().is_some_and(|d| !d.allowed);
        if !k.allowed || w_refused {
            self.keys.entry(fp.to_string()).or_default().served_429 += 1;
            let (refused, d) = match (&w, k.allowed) {
                (Some(w), true) => (Refused::Workspace, w),
                (Some(w), false) if !w.allowed && w.retry_after > k.retry_after => {
                    (Refused::Workspace, w)
                }
                _ => (Refused::Key, &k),
            };
            match refused {
                Refused::Key => self.served.per_key += 1,
                Refused::Workspace => self.served.per_workspace += 1,
            }
            let (retry_after, describe) = (d.retry_after.max(1), d.describe.clone());
            let mut key = k.clone();
            if !key.allowed {
                key.remaining = 0;
            }
            return Check {
                refused: Some(refused),
                key,
                retry_after,
                describe,
            };
        }
        let k = self.key.check(fp, now);
        if let Some(ws) = workspace {
            self.workspace.check(ws, now);
            self.workspaces_seen.insert(ws.to_string());
        }
        self.keys_seen.insert(fp.to_string());
        let stats = self.keys.entry(fp.to_string()).or_default();
        stats.requests += 1;
        let n = stats.per_second.entry(now.as_secs()).or_insert(0);
        *n += 1;
        stats.max_per_second = stats.max_per_second.max(*n);
        while stats.per_second.len() > HISTORY_SECONDS {
            stats.per_second.pop_first();
        }
        Check {
            refused: None,
            describe: k.describe.clone(),
            retry_after: k.retry_after,
            key: k,
        }
    }

    /// When each request of key `fp` was let through, oldest first.
    pub fn key_times(&self, fp: &str) -> Vec<Duration> {
        self.key.request_times(fp)
    }

    /// When each request of any key of `workspace` was let through, oldest first.
    pub fn workspace_times(&self, workspace: &str) -> Vec<Duration> {
        self.workspace.request_times(workspace)
    }

    pub fn max_in_window(&self) -> MaxInWindow {
        let per_key = self
            .keys_seen
            .iter()
            .map(|fp| {
                let times = self.key_times(fp);
                match self.key_window() {
                    Window::Fixed => max_in_fixed_window(&times, MINUTE),
                    Window::Rolling => max_in_any_window(&times, MINUTE),
                }
            })
            .max()
            .unwrap_or(0);
        let per_workspace = self
            .workspaces_seen
            .iter()
            .map(|ws| max_in_any_window(&self.workspace_times(ws), TEN_MINUTES))
            .max()
            .unwrap_or(0);
        MaxInWindow {
            per_key_per_minute: per_key,
            per_workspace_per_ten_minutes: per_workspace,
        }
    }

    pub fn served_429(&self) -> Served429 {
        self.served
    }

    pub fn key_stats(&self) -> BTreeMap<String, KeyStats> {
        self.keys.clone()
    }

    /// Zeroes the counters and the request logs; the windows are kept.
    pub fn reset_stats(&mut self) {
        for stats in self.keys.values_mut() {
            *stats = KeyStats::default();
        }
        self.served = Served429::default();
        self.keys_seen.clear();
        self.workspaces_seen.clear();
        self.key.clear_log();
        self.workspace.clear_log();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-02 12:00:00 UTC, a minute boundary.
    fn noon() -> Duration {
        Duration::from_secs(1_796_212_800)
    }

    #[test]
    fn cloudapi_counts_each_key_in_fixed_clock_minutes() {
        let b = Budgets::of(Dialect::Cloudapi, Some(2), Some(1));
        assert_eq!(b.per_workspace_per_ten_minutes, 0, "no workspace budget");
        let mut m = Meter::new(Dialect::Cloudapi, b, []);
        let t = noon() + Duration::from_secs(50);
        let a = m.check("k", None, t);
        assert_eq!((a.refused, a.key.limit, a.key.remaining), (None, 2, 1));
        assert_eq!(a.key.reset, noon().as_secs() + 60);
        m.check("k", None, t);
        let r = m.check("k", None, t);
        assert_eq!(
            (r.refused, r.key.remaining, r.retry_after),
            (Some(Refused::Key), 0, 10)
        );
        assert_eq!(m.check("other", None, t).refused, None);
        // The next clock minute has room though the last two were seconds ago.
        assert_eq!(m.check("k", None, noon() + MINUTE).refused, None);
        assert_eq!(m.max_in_window().per_key_per_minute, 2);
        assert_eq!(m.served_429().per_key, 1);
    }

    #[test]
    fn cloudplatform_needs_room_in_the_key_and_the_workspace_and_counts_in_both_or_neither() {
        let b = Budgets::of(Dialect::Cloudplatform, Some(2), Some(3));
        let mut m = Meter::new(Dialect::Cloudplatform, b, []);
        let t = noon();
        assert_eq!(m.check("a", Some("w"), t).refused, None);
        assert_eq!(m.check("a", Some("w"), t).refused, None);
        assert_eq!(m.check("a", Some("w"), t).refused, Some(Refused::Key));
        // b has its own minute, and the workspace one request left: a's refusal was not counted.
        assert_eq!(m.check("b", Some("w"), t).refused, None);
        let r = m.check("b", Some("w"), t);
        assert_eq!(r.refused, Some(Refused::Workspace));
        assert_eq!(r.retry_after, 600);
        // Another workspace is not touched.
        assert_eq!(m.check("c", Some("v"), t).refused, None);
        // A minute later a's key has room, the workspace still has none (rolling 10 minutes).
        assert_eq!(
            m.check("a", Some("w"), t + MINUTE).refused,
            Some(Refused::Workspace)
        );
        let mw = m.max_in_window();
        assert_eq!(
            (mw.per_key_per_minute, mw.per_workspace_per_ten_minutes),
            (2, 3)
        );
        assert_eq!(
            m.served_429(),
            Served429 {
                per_key: 1,
                per_workspace: 2
            }
        );
        m.reset_stats();
        assert_eq!(m.max_in_window(), MaxInWindow::default());
    }

    #[test]
    fn the_fixed_window_count_sees_a_burst_across_a_boundary_as_two_windows() {
        let times = [noon() - Duration::from_secs(1), noon(), noon()];
        assert_eq!(max_in_fixed_window(&times, MINUTE), 2);
        assert_eq!(max_in_any_window(&times, MINUTE), 3);
    }
}
