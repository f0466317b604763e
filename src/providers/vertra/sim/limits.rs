//! Vertra's rate limits (api-current.md §3) on the framework's limiter
//! (`crate::sim::rate_limit`), with what the sandbox counts about them.
//!
//! - per account: requests per minute (a rolling minute) and per day (days from 00:00
//!   America/Fortaleza, UTC−3), both counted for every API-key request the gate let through;
//!   a request is counted only if both have room;
//! - per account: deploys per hour (rolling);
//! - per app: lifecycle calls (start, stop, restart, publish, unpublish) per rolling minute,
//!   and likewise subdomain changes, custom-domain calls and DNS reads.
//!
//! The account's limits live here rather than in the framework's gate because the plan (and so
//! every number) can change while the sandbox runs, and because Vertra reports both account
//! budgets on every answer (`x-ratelimit-*` and `x-quota-*`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sim::KeyStats;
use crate::sim::rate_limit::{
    Decision, Limit, RateLimiter, Scope, UNLIMITED, Window, max_in_any_window,
};
use crate::sim::stats::HISTORY_SECONDS;

pub const MINUTE: Duration = Duration::from_secs(60);
pub const HOUR: Duration = Duration::from_secs(3600);
pub const DAY: Duration = Duration::from_secs(86_400);
/// Days start at 00:00 America/Fortaleza (UTC−3, no daylight saving): 03:00 UTC.
pub const DAY_OFFSET: Duration = Duration::from_secs(3 * 3600);
/// Subdomain changes per app per minute.
pub const SUBDOMAIN_CHANGES_PER_MINUTE: u32 = 5;
/// Custom-domain calls (any method) per app per minute.
pub const CUSTOM_DOMAIN_PER_MINUTE: u32 = 10;
/// DNS record reads per app per minute.
pub const DNS_PER_MINUTE: u32 = 10;
/// Lifecycle calls per app per minute, on every plan.
pub const LIFECYCLE_PER_MINUTE: u32 = 10;

/// The account's subject in the limiters (all keys are one account).
const ACCOUNT: &str = "account";

/// The numbers in force; 0 = unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Budgets {
    pub per_minute: u32,
    pub per_day: u32,
    pub deploys_per_hour: u32,
    pub lifecycle_per_app_per_minute: u32,
}

/// The per-app budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteBudget {
    Lifecycle,
    Subdomain,
    CustomDomain,
    Dns,
}

impl RouteBudget {
    const ALL: [RouteBudget; 4] = [
        RouteBudget::Lifecycle,
        RouteBudget::Subdomain,
        RouteBudget::CustomDomain,
        RouteBudget::Dns,
    ];

    fn per_minute(self, b: &Budgets) -> u32 {
        match self {
            RouteBudget::Lifecycle => b.lifecycle_per_app_per_minute,
            RouteBudget::Subdomain => SUBDOMAIN_CHANGES_PER_MINUTE,
            RouteBudget::CustomDomain => CUSTOM_DOMAIN_PER_MINUTE,
            RouteBudget::Dns => DNS_PER_MINUTE,
        }
    }
}

fn limiter(n: u32, per: Duration, window: Window) -> RateLimiter {
    let limits = if n == 0 {
        Vec::new()
    } else {
        vec![Limit::new(u64::from(n), per, Scope::Key, window)]
    };
    RateLimiter::new(limits, HashMap::new())
}

fn day_clock(now: Duration) -> Duration {
    now.saturating_sub(DAY_OFFSET)
}

/// One account budget as the headers and a 429 report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the window has room again (`x-*-reset`).
    pub reset: u64,
    /// Seconds to wait when refused (≥ 1).
    pub retry_after: u64,
}

impl Budget {
    /// From a decision. `peeked`: the decision was about a request that was not counted, so it
    /// left one more than it says.
    fn of(d: &Decision, peeked: bool) -> Self {
        let remaining = if peeked && d.allowed {
            (d.remaining + 1).min(d.limit)
        } else {
            d.remaining
        };
        Budget {
            limit: d.limit,
            remaining,
            // Whole seconds until the window has room again, rounded up (the decision's
            // `reset` is an absolute second, too coarse to subtract from).
            reset: d.retry_after.max(1),
            retry_after: d.retry_after.max(1),
        }
    }

    pub fn unlimited(&self) -> bool {
        self.limit >= UNLIMITED
    }
}

/// Which account budget refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Minute,
    Day,
}

/// The verdict on one request against the account's budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountCheck {
    pub refused: Option<Refused>,
    pub minute: Budget,
    pub day: Budget,
}

/// 429s served, per limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Served429 {
    pub minute: u64,
    pub day: u64,
    pub deploy: u64,
    pub lifecycle: u64,
    pub subdomain: u64,
    pub custom_domain: u64,
    pub dns: u64,
}

impl Served429 {
    pub fn total(&self) -> u64 {
        self.minute
            + self.day
            + self.deploy
            + self.lifecycle
            + self.subdomain
            + self.custom_domain
            + self.dns
    }

    fn route(&mut self, r: RouteBudget) -> &mut u64 {
        match r {
            RouteBudget::Lifecycle => &mut self.lifecycle,
            RouteBudget::Subdomain => &mut self.subdomain,
            RouteBudget::CustomDomain => &mut self.custom_domain,
            RouteBudget::Dns => &mut self.dns,
        }
    }
}

/// The most requests let through in any one window of each limit (since the last stats reset):
/// a rolling minute, an hour of deploys, a Fortaleza day, and one app's rolling minute of
/// lifecycle calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaxInWindow {
    pub per_minute: usize,
    pub per_day: usize,
    pub deploys_per_hour: usize,
    pub lifecycle_per_app_per_minute: usize,
}

/// What the limits counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitStats {
    /// Per key (by fingerprint): `requests` are those the account's budgets let through;
    /// `served429` every 429 the key got, whichever limit.
    pub keys: BTreeMap<String, KeyStats>,
    pub served_429: Served429,
    pub max_in_window: MaxInWindow,
}

/// The limiters and their counters.
#[derive(Debug)]
pub struct Meter {
    budgets: Budgets,
    minute: RateLimiter,
    day: RateLimiter,
    deploys: RateLimiter,
    routes: BTreeMap<RouteBudget, RateLimiter>,
    /// The apps each per-app budget has seen, for the max-in-window stats.
    subjects: BTreeSet<String>,
    keys: BTreeMap<String, KeyStats>,
    served: Served429,
}

impl Meter {
    /// `fingerprints` are listed in the stats from the start.
    pub fn new(budgets: Budgets, fingerprints: impl IntoIterator<Item = String>) -> Self {
        let mut m = Meter {
            budgets,
            minute: limiter(budgets.per_minute, MINUTE, Window::Rolling),
            day: limiter(budgets.per_day, DAY, Window::Fixed),
            deploys: limiter(budgets.deploys_per_hour, HOUR, Window::Rolling),
            routes: RouteBudget::ALL
                .into_iter()
                .map(|r| (r, limiter(r.per_minute(&budgets), MINUTE, Window::Rolling)))
                .collect(),
            subjects: BTreeSet::new(),
            keys: BTreeMap::new(),
            served: Served429::default(),
        };
        for fp in fingerprints {
            m.keys.entry(fp).or_default();
        }
        m
    }

    pub fn budgets(&self) -> Budgets {
        self.budgets
    }

    /// New numbers; the windows of the limits that changed start empty.
    pub fn set_budgets(&mut self, b: Budgets) {
        let old = self.budgets;
        if b.per_minute != old.per_minute {
            self.minute = limiter(b.per_minute, MINUTE, Window::Rolling);
        }
        if b.per_day != old.per_day {
            self.day = limiter(b.per_day, DAY, Window::Fixed);
        }
        if b.deploys_per_hour != old.deploys_per_hour {
            self.deploys = limiter(b.deploys_per_hour, HOUR, Window::Rolling);
        }
        if b.lifecycle_per_app_per_minute != old.lifecycle_per_app_per_minute {
            self.routes.insert(
                RouteBudget::Lifecycle,
                limiter(b.lifecycle_per_app_per_minute, MINUTE, Window::Rolling),
            );
        }
        self.budgets = b;
    }

    fn key(&mut self, fp: &str) -> &mut KeyStats {
        self.keys.entry(fp.to_string()).or_default()
    }

    fn refused(&mut self, fp: &str) {
        self.key(fp).served_429 += 1;
    }

    /// Decides about one request of key `fp` at `now` (since the unix epoch) against the
    /// account's per-minute and per-day budgets, and counts it in both if both have room.
    pub fn account(&mut self, fp: &str, now: Duration) -> AccountCheck {
        let m = self.minute.peek(ACCOUNT, now);
        let d = self.day.peek(ACCOUNT, day_clock(now));
        if !m.allowed || !d.allowed {
            let refused = if !d.allowed && (m.allowed || d.retry_after >= m.retry_after) {
                self.served.day += 1;
                Refused::Day
            } else {
                self.served.minute += 1;
                Refused::Minute
            };
            self.refused(fp);
            // Neither counted the request: each reports what is left as it stands.
            return AccountCheck {
                refused: Some(refused),
                minute: Budget::of(&m, true),
                day: Budget::of(&d, true),
            };
        }
        let m = self.minute.check(ACCOUNT, now);
        let d = self.day.check(ACCOUNT, day_clock(now));
        let stats = self.key(fp);
        stats.requests += 1;
        let n = stats.per_second.entry(now.as_secs()).or_insert(0);
        *n += 1;
        stats.max_per_second = stats.max_per_second.max(*n);
        while stats.per_second.len() > HISTORY_SECONDS {
            stats.per_second.pop_first();
        }
        AccountCheck {
            refused: None,
            minute: Budget::of(&m, false),
            day: Budget::of(&d, false),
        }
    }

    /// The account's budgets as they stand, counting nothing: for answers to requests that never
    /// reached the budgets (an injected fault, an unknown route).
    pub fn peek_account(&mut self, now: Duration) -> AccountCheck {
        let m = self.minute.peek(ACCOUNT, now);
        let d = self.day.peek(ACCOUNT, day_clock(now));
        AccountCheck {
            refused: None,
            minute: Budget::of(&m, true),
            day: Budget::of(&d, true),
        }
    }

    /// Counts a deploy of key `fp`, or says why not: `(limit, retry_after)`.
    pub fn deploy(&mut self, fp: &str, now: Duration) -> Result<(), (u64, u64)> {
        let d = self.deploys.check(ACCOUNT, now);
        if d.allowed {
            return Ok(());
        }
        self.served.deploy += 1;
        self.refused(fp);
        Err((d.limit, d.retry_after.max(1)))
    }

    /// Counts a call against app `app`'s budget `budget`, or refuses it.
    pub fn route(
        &mut self,
        budget: RouteBudget,
        app: &str,
        fp: &str,
        now: Duration,
    ) -> Result<(), ()> {
        let allowed = self
            .routes
            .get_mut(&budget)
            .map(|l| l.check(app, now).allowed)
            .unwrap_or(true);
        if allowed {
            if budget == RouteBudget::Lifecycle {
                self.subjects.insert(app.to_string());
            }
            return Ok(());
        }
        *self.served.route(budget) += 1;
        self.refused(fp);
        Err(())
    }

    /// When each request the account's budgets let through arrived, oldest first (the last
    /// 100 000).
    pub fn account_times(&self) -> Vec<Duration> {
        self.minute.request_times(ACCOUNT)
    }

    /// When each counted deploy arrived, oldest first.
    pub fn deploy_times(&self) -> Vec<Duration> {
        self.deploys.request_times(ACCOUNT)
    }

    /// When each lifecycle call on `app` was let through, oldest first.
    pub fn lifecycle_times(&self, app: &str) -> Vec<Duration> {
        self.routes
            .get(&RouteBudget::Lifecycle)
            .map(|l| l.request_times(app))
            .unwrap_or_default()
    }

    pub fn stats(&self) -> LimitStats {
        let minute = self.account_times();
        let mut per_day: BTreeMap<u64, usize> = BTreeMap::new();
        for t in self.day.request_times(ACCOUNT) {
            *per_day.entry(t.as_secs() / DAY.as_secs()).or_default() += 1;
        }
        let lifecycle = self
            .subjects
            .iter()
            .map(|app| max_in_any_window(&self.lifecycle_times(app), MINUTE))
            .max()
            .unwrap_or(0);
        LimitStats {
            keys: self.keys.clone(),
            served_429: self.served.clone(),
            max_in_window: MaxInWindow {
                per_minute: max_in_any_window(&minute, MINUTE),
                per_day: per_day.values().copied().max().unwrap_or(0),
                deploys_per_hour: max_in_any_window(&self.deploy_times(), HOUR),
                lifecycle_per_app_per_minute: lifecycle,
            },
        }
    }

    /// Zeroes the counters and the request logs; the windows are kept.
    pub fn reset_stats(&mut self) {
        for stats in self.keys.values_mut() {
            *stats = KeyStats::default();
        }
        self.served = Served429::default();
        self.subjects.clear();
        self.minute.clear_log();
        self.day.clear_log();
        self.deploys.clear_log();
        for l in self.routes.values_mut() {
            l.clear_log();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(per_minute: u32, per_day: u32, deploys: u32) -> Budgets {
        Budgets {
            per_minute,
            per_day,
            deploys_per_hour: deploys,
            lifecycle_per_app_per_minute: 2,
        }
    }

    /// 2026-12-02 12:00:00 UTC.
    fn noon() -> Duration {
        Duration::from_secs(1_796_212_800)
    }

    #[test]
    fn both_account_budgets_must_have_room_and_a_refusal_counts_nowhere() {
        let mut m = Meter::new(budgets(3, 4, 0), ["k".to_string()]);
        let t = noon();
        let a = m.account("k", t);
        assert_eq!(a.refused, None);
        assert_eq!(
            (a.minute.limit, a.minute.remaining, a.minute.reset),
            (3, 2, 60)
        );
        assert_eq!((a.day.limit, a.day.remaining), (4, 3));
        // noon UTC is 09:00 in Fortaleza: 15 h to its midnight.
        assert_eq!(a.day.reset, 15 * 3600);
        m.account("k", t);
        m.account("k", t);
        let r = m.account("k", t + Duration::from_secs(10));
        assert_eq!(r.refused, Some(Refused::Minute));
        assert_eq!((r.minute.remaining, r.minute.retry_after), (0, 50));
        assert_eq!(r.day.remaining, 1, "the refused request was not counted");
        // A minute later one more fits in the day, then the day refuses for longer.
        assert_eq!(m.account("k", t + MINUTE).refused, None);
        let r = m.account("k", t + MINUTE * 2);
        assert_eq!(r.refused, Some(Refused::Day));
        assert_eq!(r.day.retry_after, 15 * 3600 - 120);
        let s = m.stats();
        assert_eq!(s.keys["k"].requests, 4);
        assert_eq!(s.keys["k"].served_429, 2);
        assert_eq!((s.served_429.minute, s.served_429.day), (1, 1));
        assert_eq!(s.max_in_window.per_minute, 3);
        assert_eq!(s.max_in_window.per_day, 4);
    }

    #[test]
    fn a_peek_reports_what_is_left_without_counting() {
        let mut m = Meter::new(budgets(3, 0, 0), []);
        m.account("k", noon());
        let p = m.peek_account(noon());
        assert_eq!((p.minute.remaining, p.day.limit), (2, UNLIMITED));
        assert!(p.day.unlimited());
        assert_eq!(m.account("k", noon()).minute.remaining, 1);
    }

    #[test]
    fn deploys_and_per_app_budgets_refuse_with_their_own_counts() {
        let mut m = Meter::new(budgets(0, 0, 2), []);
        let t = noon();
        assert!(m.deploy("k", t).is_ok() && m.deploy("k", t).is_ok());
        assert_eq!(m.deploy("k", t + MINUTE), Err((2, 3540)));
        assert!(m.route(RouteBudget::Lifecycle, "a", "k", t).is_ok());
        assert!(m.route(RouteBudget::Lifecycle, "a", "k", t).is_ok());
        assert!(m.route(RouteBudget::Lifecycle, "a", "k", t).is_err());
        assert!(
            m.route(RouteBudget::Lifecycle, "b", "k", t).is_ok(),
            "per app"
        );
        let s = m.stats();
        assert_eq!((s.served_429.deploy, s.served_429.lifecycle), (1, 1));
        assert_eq!(s.max_in_window.deploys_per_hour, 2);
        assert_eq!(s.max_in_window.lifecycle_per_app_per_minute, 2);
        assert_eq!(s.keys["k"].served_429, 2);
        m.reset_stats();
        assert_eq!(m.stats().served_429.total(), 0);
        assert!(
            m.deploy("k", t + MINUTE).is_err(),
            "the window survives a reset"
        );
    }

    #[test]
    fn changing_a_budget_restarts_only_its_window() {
        let mut m = Meter::new(budgets(1, 10, 1), []);
        let t = noon();
        m.account("k", t);
        m.deploy("k", t).unwrap();
        assert!(m.account("k", t).refused.is_some());
        m.set_budgets(budgets(5, 10, 1));
        assert_eq!(m.account("k", t).refused, None);
        assert!(m.deploy("k", t).is_err());
        assert_eq!(m.account("k", t).day.remaining, 7);
    }
}
