//! Server feedback: the rate-limit headers of answers, 429 holds, and reading a reset time.
//!
//! The server knows what it counted; the throttle only paces. A remaining budget of 0 holds every
//! request of the key until the window resets, a 429 holds it until `Retry-After`/reset. Reset
//! times are read against the answer's `Date` header ([`until_reset`]), so a skewed local clock
//! never turns an exhausted window into a long hold; an implausible reset falls back to one
//! [`DEFAULT_WINDOW`]. A per-second limit the server reports below the configured rate becomes
//! one more limit on the key's path (started spent, so it never lets two requests out back to
//! back); one at or above it changes nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::KeyThrottle;

/// Added to a reset time taken from the headers, so the first request after a hold lands in the
/// new window even with a little clock disagreement.
pub const RESET_MARGIN: Duration = Duration::from_millis(20);
/// The longest hold derived from rate-limit headers; a reset further out is not believed (it is
/// clock skew or a value in the wrong unit) and [`DEFAULT_WINDOW`] is used instead.
pub const MAX_HEADER_HOLD: Duration = Duration::from_secs(60);
/// The API's documented rate-limit window (Strettch: one unix second). How long to hold when the
/// budget is exhausted and the server gave no usable reset time.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(1);

impl KeyThrottle {
    /// Feed the rate-limit headers of an answer. `remaining == Some(0)` holds every request of the
    /// key until the reset ([`until_reset`], read against the answer's `Date`) plus a small
    /// margin, or for one [`DEFAULT_WINDOW`] when no usable reset was given. A `limit` (read as
    /// requests per [`DEFAULT_WINDOW`]) lower than the configured rate lowers the pace to it.
    pub fn observe_headers(&self, headers: RateLimitHeaders) {
        let RateLimitHeaders {
            limit,
            remaining,
            reset,
            date,
            window,
        } = headers;
        // Only a per-second limit is compared with the pace here.
        let limit = limit.filter(|_| window.is_none_or(|w| w == DEFAULT_WINDOW));
        if let Some(r) = remaining {
            crate::metrics::global().budget_remaining(
                &self.provider,
                &self.fingerprint,
                i64::from(r),
            );
        }
        if let Some(limit) = limit.filter(|l| *l > 0) {
            let mut st = self.state.lock();
            if st.server_limit != Some(limit) {
                st.server_limit = Some(limit);
                let before = st.server.is_some();
                st.retune_server(Instant::now());
                if st.server.is_some() || before {
                    tracing::debug!(key = %self.fingerprint, server_limit = limit, "pace follows the server's limit");
                }
                drop(st);
                self.changed.notify_waiters();
            }
        }
        if remaining == Some(0) {
            let wait = match reset {
                Some(reset) => until_reset(reset, date, SystemTime::now()),
                None => DEFAULT_WINDOW,
            };
            tracing::debug!(key = %self.fingerprint, hold_ms = wait.as_millis() as u64, "rate-limit budget exhausted; holding the key");
            self.hold_for(wait + RESET_MARGIN);
        }
    }

    /// Pause every request of the key until `until` (after a 429: until reset or Retry-After).
    /// Only ever extends an existing hold.
    pub fn hold_until(&self, until: std::time::Instant) {
        self.hold_until_instant(Instant::from_std(until));
    }

    /// [`hold_until`](Self::hold_until) `now + duration`, on tokio's clock.
    pub fn hold_for(&self, duration: Duration) {
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
    /// The window `limit` counts over (`None`: one second).
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
    wait.filter(|d| !d.is_zero() && *d <= MAX_HEADER_HOLD)
        .unwrap_or(DEFAULT_WINDOW)
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
