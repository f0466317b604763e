//! Server feedback: the rate-limit headers of answers, 429s, and reading a reset time.
//!
//! The server knows what it counted; the throttle only paces. A remaining budget of 0 holds every
//! request of the key until the window resets, a 429 holds the key (or only its class: see
//! [`RateLimited`]) until its retry hint. Reset times are read against the answer's `Date` header
//! ([`until_reset`]), so a skewed local clock never turns an exhausted window into a long hold;
//! an implausible reset falls back to one window.
//!
//! A limit the server reports is over a window ([`RateLimitHeaders::window`]; per second unless
//! said otherwise): an adaptive limit of that window takes it as its N
//! ([`adaptive`](super::adaptive)); otherwise one below the configured rate becomes one more
//! limit on the
//! key's path (replaying what the window already holds, so it never lets the window exceed it),
//! and one at or above it changes nothing.
//!
//! **Holds are capped** at [`KeyThrottle::max_hold`]: the longest window on the key's path (at
//! least [`MAX_HEADER_HOLD`], at most [`MAX_PER`]), applied inside every hold function. A daily
//! quota's 429 asking for 5 hours holds 5 hours; a per-second key cannot be held for a day by a
//! misread header.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::{KeyThrottle, MAX_PER};

/// Added to a reset time taken from the headers, so the first request after a hold lands in the
/// new window even with a little clock disagreement.
pub const RESET_MARGIN: Duration = Duration::from_millis(20);
/// The shortest cap of a hold ([`KeyThrottle::max_hold`]), and of a reset time believed from the
/// headers of a key whose windows are all shorter: a reset further out is clock skew or a value
/// in the wrong unit, and one window is used instead.
pub const MAX_HEADER_HOLD: Duration = Duration::from_secs(60);
/// The API's documented rate-limit window (Strettch: one unix second). How long to hold when the
/// budget is exhausted and the server gave no usable reset time, unless the answer says which
/// window it counts.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(1);

/// A 429, as the caller read it: whose budget it is about, and what the answer said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimited {
    /// `None`: the key's own budget (per minute, per day...). `Some`: an operation class: only
    /// that class is held ([`class`](super::class)).
    pub class: Option<String>,
    /// What the class is counted for (e.g. the app id of a per-app limit): only that subject is
    /// held when the class counts per subject.
    pub subject: Option<String>,
    /// How long to wait: the error body's hint (Vertra's `details.retry_after`) or the
    /// `Retry-After`/reset headers, whichever the caller trusts. `None`: one window.
    pub retry_after: Option<Duration>,
    /// The limit the answer reports (Vertra's `details.limit`), if any.
    pub limit: Option<u32>,
    /// The window that limit (or the exhausted budget) is over (Vertra's `details.scope`
    /// minute/day, `details.window_seconds`), if the answer says.
    pub window: Option<Duration>,
}

impl KeyThrottle {
    /// Feed the rate-limit headers of an answer. `remaining == Some(0)` holds every request of the
    /// key until the reset ([`until_reset_within`], read against the answer's `Date`) plus a small
    /// margin, or for one window (`window`, else [`DEFAULT_WINDOW`]) when no usable reset was
    /// given. A `limit` is over `window` (else per second): it sets the N of an adaptive limit of
    /// that window, or lowers the pace to it if it is lower than the configured rate.
    pub fn observe_headers(&self, headers: RateLimitHeaders) {
        let RateLimitHeaders {
            limit,
            remaining,
            reset,
            date,
            window,
        } = headers;
        let window = window.filter(|w| !w.is_zero()).unwrap_or(DEFAULT_WINDOW);
        if let Some(r) = remaining {
            crate::metrics::global().budget_remaining(
                &self.provider,
                &self.fingerprint,
                i64::from(r),
            );
        }
        if let Some(limit) = limit.filter(|l| *l > 0) {
            self.learn_limit(window, limit, false);
        }
        if remaining == Some(0) {
            let wait = match reset {
                Some(reset) => {
                    let most = self.longest_hold_window().max(window.min(MAX_PER));
                    until_reset_within(reset, date, SystemTime::now(), most, window)
                }
                None => window,
            };
            tracing::debug!(key = %self.fingerprint, hold_ms = wait.as_millis() as u64, "rate-limit budget exhausted; holding the key");
            self.hold_for(wait + RESET_MARGIN);
        }
    }

    /// The server reported `limit` requests per `window` (in headers, or in a 429's body when
    /// `limited`): an adaptive limit of that window learns it, else it is remembered as the
    /// server's limit (binding while below the configured rate). A 429 without a limit halves
    /// the adaptive limit of its window instead ([`rate_limited`](Self::rate_limited)).
    fn learn_limit(&self, window: Duration, limit: u32, limited: bool) {
        let now = Instant::now();
        let mut st = self.state.lock();
        let mut changed = false;
        let mut adaptive = false;
        for a in st.adaptive.iter_mut().filter(|a| a.per() == window) {
            adaptive = true;
            changed |= if limited {
                a.limited(Some(limit), now)
            } else {
                a.reported(limit, now)
            };
        }
        if !adaptive && st.server_limits.get(&window) != Some(&limit) {
            st.server_limits.insert(window, limit);
            changed = true;
        }
        if changed && st.retune(now) {
            tracing::debug!(key = %self.fingerprint, limit, window_s = window.as_secs_f64(), "pace follows the server's limit");
        }
        if changed {
            self.report_adaptive(&st);
            drop(st);
            self.changed.notify_waiters();
        }
    }

    /// A 429 was answered. Without a class: the key is held for `retry_after` (else one window:
    /// `window`, else the shortest adaptive window, else [`DEFAULT_WINDOW`]) plus
    /// [`RESET_MARGIN`], and the adaptive limit of that window takes the reported `limit`, or
    /// halves without one. With a class: only that class (or that subject of it) is held, and
    /// only its adaptive limits learn; the key and every other class keep flowing. Every hold is
    /// capped at [`max_hold`](Self::max_hold). The caller counts the 429 in its metrics.
    pub fn rate_limited(&self, signal: RateLimited) {
        let now = Instant::now();
        let RateLimited {
            class,
            subject,
            retry_after,
            limit,
            window,
        } = signal;
        let window = window.filter(|w| !w.is_zero());
        let limit = limit.filter(|l| *l > 0);
        match class {
            Some(class) => {
                let wait = retry_after
                    .or(window)
                    .or_else(|| self.state.lock().classes.shortest(&class))
                    .unwrap_or(DEFAULT_WINDOW);
                let until = now + (wait + RESET_MARGIN).min(self.max_hold());
                tracing::debug!(key = %self.fingerprint, class, subject = subject.as_deref(), hold_ms = (until - now).as_millis() as u64, "429 for a class: holding the class");
                self.state.lock().classes.limited(
                    &class,
                    subject.as_deref(),
                    until,
                    limit,
                    window,
                    now,
                );
                self.class_changed.notify_waiters();
            }
            None => {
                let window =
                    window.or_else(|| self.state.lock().adaptive.iter().map(|a| a.per()).min());
                match limit {
                    Some(limit) => self.learn_limit(window.unwrap_or(DEFAULT_WINDOW), limit, true),
                    None => {
                        let mut st = self.state.lock();
                        let mut changed = false;
                        for a in st.adaptive.iter_mut().filter(|a| Some(a.per()) == window) {
                            changed |= a.limited(None, now);
                        }
                        if changed {
                            st.retune(now);
                            self.report_adaptive(&st);
                            tracing::debug!(key = %self.fingerprint, "429 without a limit: adaptive limit halved");
                        }
                    }
                }
                let wait = retry_after.or(window).unwrap_or(DEFAULT_WINDOW);
                tracing::debug!(key = %self.fingerprint, hold_ms = wait.as_millis() as u64, "429: holding the key");
                self.hold_for(wait + RESET_MARGIN);
            }
        }
    }

    /// The longest a hold of this key may last: the longest window on its path (its limits, the
    /// windows the server reported, its adaptive and class limits, its groups' limits), at least
    /// [`MAX_HEADER_HOLD`], at most [`MAX_PER`], plus [`RESET_MARGIN`] (so a hold of a whole
    /// window still lands in the next one). Every hold is cut to it, so a wrong header can never
    /// stop a key for longer than one of its windows, and a daily quota's 429 holds as long as it
    /// asks.
    pub fn max_hold(&self) -> Duration {
        self.longest_hold_window() + RESET_MARGIN
    }

    fn longest_hold_window(&self) -> Duration {
        self.state
            .lock()
            .longest_window()
            .clamp(MAX_HEADER_HOLD, MAX_PER)
    }

    /// Pause every request of the key until `until` (after a 429: until reset or Retry-After),
    /// at most [`max_hold`](Self::max_hold) from now. Only ever extends an existing hold.
    pub fn hold_until(&self, until: std::time::Instant) {
        let most = Instant::now() + self.max_hold();
        self.hold_until_instant(Instant::from_std(until).min(most));
    }

    /// [`hold_until`](Self::hold_until) `now + duration` (at most
    /// [`max_hold`](Self::max_hold)), on tokio's clock.
    pub fn hold_for(&self, duration: Duration) {
        let duration = duration.min(self.max_hold());
        self.hold_until_instant(Instant::now() + duration);
    }

    fn hold_until_instant(&self, until: Instant) {
        {
            let mut st = self.state.lock();
            if st.hold.is_some_and(|h| h >= until) {
                return;
            }
            st.hold = Some(until);
        }
        self.changed.notify_waiters();
    }

    /// When the current hold ends, if there is one.
    pub fn held_until(&self) -> Option<Instant> {
        self.state.lock().hold.filter(|h| *h > Instant::now())
    }
}

/// The rate-limit facts of one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    /// Requests allowed per window.
    pub limit: Option<u32>,
    /// Requests left in the current window.
    pub remaining: Option<u32>,
    /// When the window resets: unix seconds (or, when too small to be a timestamp, seconds from
    /// now).
    pub reset: Option<u64>,
    /// The answer's `Date` header, unix seconds: the server's clock, truncated to the second.
    pub date: Option<u64>,
    /// The window `limit` and `remaining` are over (e.g. 60 s for Vertra's and CloudAPI's
    /// per-minute `x-ratelimit-limit`, a day for Vertra's `x-quota-*`). `None`: one second, as
    /// Strettch's headers are.
    pub window: Option<Duration>,
}

/// A [`Priority::Routine`] request that gave its place up: no permit could be had within
/// [`ROUTINE_PATIENCE`]. Try again after `retry_in` (an estimate: the hold and the queue ahead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deferred {
    pub retry_in: Duration,
}

/// How long until the window ends at `reset`, as far as the server's clock is concerned.
///
/// * `reset` is unix seconds; a value below 10⁹ is read as seconds from now.
/// * With the answer's `Date` (`server_date`, unix seconds), the wait is `reset - Date`: the server
///   clock against itself, whatever the local clock says. `Date` is truncated to the second, so
///   the true wait lies in `(reset - Date - 1, reset - Date]`; when the local clock agrees with
///   that (it is in sync with the server), its finer reading is used, else the upper bound.
/// * Without `Date`, the local clock (`local_now`) is all there is.
/// * A reset that is past, further ahead than [`MAX_HEADER_HOLD`], or looks like milliseconds is
///   not believed: one [`DEFAULT_WINDOW`].
///
/// Never zero: a budget reported exhausted is always waited out for a little.
pub fn until_reset(reset: u64, server_date: Option<u64>, local_now: SystemTime) -> Duration {
    until_reset_within(
        reset,
        server_date,
        local_now,
        MAX_HEADER_HOLD,
        DEFAULT_WINDOW,
    )
}

/// [`until_reset`] for a window of another length: a reset further ahead than `most` is not
/// believed (a key whose longest window is a day may be told to wait hours), and `fallback` (one
/// window) is used for a reset that is not believed.
pub fn until_reset_within(
    reset: u64,
    server_date: Option<u64>,
    local_now: SystemTime,
    most: Duration,
    fallback: Duration,
) -> Duration {
    /// Below this (2001-09-09) a "reset" is a number of seconds, not a timestamp.
    const PLAUSIBLE_TIMESTAMP: u64 = 1_000_000_000;
    /// From this (year 5138) on, a "timestamp" is in milliseconds (or nonsense).
    const IMPLAUSIBLE_TIMESTAMP: u64 = 100_000_000_000;
    let local = local_now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let wait = if reset < PLAUSIBLE_TIMESTAMP {
        Some(Duration::from_secs(reset))
    } else if reset >= IMPLAUSIBLE_TIMESTAMP {
        None
    } else if let Some(date) = server_date {
        reset
            .checked_sub(date)
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .map(|upper| {
                let lower = upper - Duration::from_secs(1);
                match Duration::from_secs(reset).checked_sub(local) {
                    Some(local_wait) if local_wait >= lower && local_wait <= upper => local_wait,
                    _ => upper,
                }
            })
    } else {
        Duration::from_secs(reset).checked_sub(local)
    };
    wait.filter(|d| !d.is_zero() && *d <= most)
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::throttle::{Priority, pacing_period};

    #[tokio::test]
    async fn hold_delays_everyone() {
        let t = KeyThrottle::new("test", "hold", 50.0);
        let start = Instant::now();
        t.hold_for(Duration::from_millis(300));
        let mut tasks = Vec::new();
        for p in [Priority::Write, Priority::Urgent, Priority::Routine] {
            let t2 = t.clone();
            tasks.push(tokio::spawn(async move {
                t2.acquire(p).await;
                Instant::now()
            }));
        }
        for task in tasks {
            let at = task.await.unwrap();
            assert!(at - start >= Duration::from_millis(300), "{:?}", at - start);
        }
        // A shorter hold never shortens a longer one.
        t.hold_for(Duration::from_millis(400));
        t.hold_for(Duration::from_millis(10));
        let s = Instant::now();
        t.acquire(Priority::Write).await;
        assert!(
            s.elapsed() >= Duration::from_millis(390),
            "{:?}",
            s.elapsed()
        );
    }

    #[tokio::test]
    async fn hold_until_std_instant_delays_everyone() {
        let t = KeyThrottle::new("test", "hold-std", 50.0);
        let start = std::time::Instant::now();
        t.hold_until(start + Duration::from_millis(300));
        tokio::join!(t.acquire(Priority::Write), t.acquire(Priority::Routine));
        assert!(start.elapsed() >= Duration::from_millis(300));
    }

    fn facts(
        limit: Option<u32>,
        remaining: Option<u32>,
        reset: Option<u64>,
        date: Option<u64>,
    ) -> RateLimitHeaders {
        RateLimitHeaders {
            limit,
            remaining,
            reset,
            date,
            window: None,
        }
    }

    #[tokio::test]
    async fn remaining_zero_holds_until_reset() {
        let t = KeyThrottle::new("test", "headers", 50.0);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let reset = now.as_secs() + 1;
        let expected = Duration::from_secs(reset) - now;
        t.observe_headers(facts(Some(100), Some(0), Some(reset), None));
        assert!(t.held_until().is_some());
        let start = std::time::Instant::now();
        t.acquire(Priority::Write).await;
        assert!(
            start.elapsed() + Duration::from_millis(5) >= expected,
            "{:?} < {expected:?}",
            start.elapsed()
        );
        // Remaining > 0 does not hold.
        t.observe_headers(facts(Some(100), Some(3), Some(reset + 5), None));
        assert!(t.held_until().is_none());
        // A reset already past is not believed: one window.
        t.observe_headers(facts(Some(100), Some(0), Some(now.as_secs() - 10), None));
        let held = t.held_until().expect("held") - Instant::now();
        assert!(
            held > Duration::from_millis(900) && held <= DEFAULT_WINDOW + RESET_MARGIN,
            "{held:?}"
        );
        // Without a reset, one window.
        let t = KeyThrottle::new("test", "headers-2", 50.0);
        t.observe_headers(facts(None, Some(0), None, None));
        let held = t.held_until().expect("held") - Instant::now();
        assert!(
            held > Duration::from_millis(900) && held <= DEFAULT_WINDOW + RESET_MARGIN,
            "{held:?}"
        );
    }

    fn at(unix: f64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs_f64(unix)
    }

    const DATE: u64 = 1_776_410_380;

    #[test]
    fn the_reset_is_read_against_the_answers_date_whatever_the_local_clock_says() {
        let hour = 3600.0;
        let date = DATE as f64;
        // The window resets 1 s after the server's Date; an operator clock an hour behind would
        // have read it as an hour ahead (held for MAX_HEADER_HOLD), one an hour ahead as past.
        for skew in [-hour, hour, -30.0, 30.0, -2.0, 2.0] {
            let local = at(date + 0.4 + skew);
            assert_eq!(
                until_reset(DATE + 1, Some(DATE), local),
                Duration::from_secs(1),
                "skew {skew}"
            );
            assert_eq!(
                until_reset(DATE + 3, Some(DATE), local),
                Duration::from_secs(3),
                "skew {skew}"
            );
        }
        // A local clock in step with the server is finer than Date's whole seconds.
        let wait = until_reset(DATE + 1, Some(DATE), at(date + 0.75));
        assert!(
            wait > Duration::from_millis(240) && wait < Duration::from_millis(260),
            "{wait:?}"
        );
        // Without Date, the local clock is all there is.
        let wait = until_reset(DATE + 1, None, at(date + 0.75));
        assert!(
            wait > Duration::from_millis(240) && wait < Duration::from_millis(260),
            "{wait:?}"
        );
        // A number of seconds rather than a timestamp.
        assert_eq!(until_reset(2, Some(DATE), at(date)), Duration::from_secs(2));
    }

    #[test]
    fn an_implausible_reset_falls_back_to_the_documented_window() {
        let date = DATE as f64;
        for (reset, server_date, local) in [
            // past, by the server's clock and by the local one
            (DATE - 5, Some(DATE), at(date)),
            (DATE, Some(DATE), at(date)),
            (DATE - 5, None, at(date)),
            // further ahead than any window
            (DATE + 120, Some(DATE), at(date)),
            (DATE + 86_400 * 365, None, at(date)),
            // milliseconds
            (DATE * 1000 + 1000, Some(DATE), at(date)),
            (DATE * 1000 + 1000, None, at(date)),
            // zero seconds from now, or a minute and more
            (0, None, at(date)),
            (61, Some(DATE), at(date)),
        ] {
            assert_eq!(
                until_reset(reset, server_date, local),
                DEFAULT_WINDOW,
                "{reset} {server_date:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_exhausted_window_holds_for_the_servers_reset_despite_a_local_clock_an_hour_off() {
        // The answer says: window exhausted, resets one second after its Date. The local clock is
        // an hour off either way; the hold is one window, not MAX_HEADER_HOLD, and not ~0.
        let local = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        for (n, skew) in [3600i64, -3600].into_iter().enumerate() {
            let t = KeyThrottle::new("test", &format!("skew-{n}"), 50.0);
            let date = local.saturating_add_signed(skew);
            t.observe_headers(facts(Some(2), Some(0), Some(date + 1), Some(date)));
            let held = t.held_until().expect("held") - Instant::now();
            assert!(
                held > Duration::from_millis(900) && held <= DEFAULT_WINDOW + RESET_MARGIN,
                "skew {skew}: {held:?}"
            );
        }
    }

    #[tokio::test]
    async fn server_limit_lowers_the_pace_but_never_raises_it() {
        let t = KeyThrottle::new("test", "server-limit", 40.0);
        t.observe_headers(facts(Some(10), Some(1), None, None));
        assert_eq!(t.effective_requests_per_second(), 10.0);
        assert_eq!(t.requests_per_second(), 40.0);
        let start = Instant::now();
        for _ in 0..3 {
            t.acquire(Priority::Routine).await;
        }
        // The burst cell was spent on the change: three permits take three periods.
        assert!(
            start.elapsed() >= pacing_period(10.0) * 3 - Duration::from_millis(2),
            "{:?}",
            start.elapsed()
        );
        t.observe_headers(facts(Some(30), Some(29), None, None));
        assert_eq!(t.effective_requests_per_second(), 30.0);
        t.observe_headers(facts(Some(300), Some(29), None, None));
        assert_eq!(t.effective_requests_per_second(), 40.0);
        t.restrict_rate(5.0);
        assert_eq!(t.effective_requests_per_second(), 5.0);
        t.restrict_rate(50.0);
        assert_eq!(t.requests_per_second(), 5.0);
    }
}
