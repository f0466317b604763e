//! One throttle per API key, shared by everything that uses the key.
//!
//! The cloud limits requests per key (Strettch: 2 requests/second, counted in fixed windows of one
//! unix second as the server sees them). A [`KeyThrottle`] paces every request of one key:
//!
//! * **Rate**: a [`governor`] GCRA limiter with burst 1 and a period of `1 / (rate × 0.97)`.
//!   Spacing requests evenly, slightly slower than the limit, means `limit + 1` arrivals inside one
//!   server second would need ~31 ms of network jitter between them; sustained throughput stays 3%
//!   under the limit.
//! * **Priority**: a small queue in front of the limiter. When a permit is available it goes to the
//!   highest-priority waiter ([`Priority::Write`] > [`Priority::Urgent`] > [`Priority::Routine`]),
//!   first come first served within a priority. There is no background task: the waiter at the
//!   head of the queue is the one that waits for the limiter, everyone else waits for the head to
//!   change. A waiter whose future is dropped leaves the queue in its destructor, so cancellation
//!   never consumes a permit or blocks the queue.
//! * **Server feedback**: rate-limit headers of every answer go to [`KeyThrottle::observe_headers`];
//!   a remaining budget of 0 holds every request of the key until the window resets, a 429 holds it
//!   until `Retry-After`/reset ([`KeyThrottle::hold_until`]). A limit the server reports that is
//!   lower than the configured rate lowers the pace to it.
//!
//! Time is `tokio::time`, so tests can run the throttle under `tokio::time::pause`.

use std::collections::{BTreeSet, HashMap};
use std::ops::Add;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::secret::ApiKey;

/// Requests are paced at this fraction of the configured rate (see the module docs).
pub const PACING_FACTOR: f64 = 0.97;
/// Added to a reset time taken from the headers, so the first request after a hold lands in the
/// new window even with a little clock disagreement.
pub const RESET_MARGIN: Duration = Duration::from_millis(20);
/// The longest hold derived from rate-limit headers; a reset further out is treated as clock skew.
pub const MAX_HEADER_HOLD: Duration = Duration::from_secs(60);
/// How long to hold when the budget is exhausted and the server gave no reset time.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(1);
/// The slowest rate a throttle accepts; lower (or invalid) values are raised to it.
pub const MIN_REQUESTS_PER_SECOND: f64 = 0.01;

/// Which waiter gets the next permit. Ordered: `Write < Urgent < Routine`, served in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// A write caused by a user's change.
    Write,
    /// A read about a resource in a transitional state.
    Urgent,
    /// A routine refresh.
    Routine,
}

impl Priority {
    pub fn as_str(&self) -> &'static str {
        match self {
            Priority::Write => "write",
            Priority::Urgent => "urgent",
            Priority::Routine => "routine",
        }
    }
}

/// `tokio::time::Instant` as a governor clock reference, so the limiter follows tokio's (pausable)
/// clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct TokioInstant(Instant);

impl Add<Nanos> for TokioInstant {
    type Output = Self;
    fn add(self, other: Nanos) -> Self {
        TokioInstant(self.0 + Duration::from(other))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_duration_since(earlier.0).into()
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        self.0
            .checked_sub(duration.into())
            .map(TokioInstant)
            .unwrap_or(*self)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct TokioClock;

impl Clock for TokioClock {
    type Instant = TokioInstant;
    fn now(&self) -> TokioInstant {
        TokioInstant(Instant::now())
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<TokioInstant>>;

fn sanitize_rate(rps: f64) -> f64 {
    if rps.is_finite() && rps >= MIN_REQUESTS_PER_SECOND {
        rps
    } else if rps.is_infinite() && rps > 0.0 {
        f64::MAX
    } else {
        MIN_REQUESTS_PER_SECOND
    }
}

/// The spacing between two permits at `rps`.
pub fn pacing_period(rps: f64) -> Duration {
    let period = 1.0 / (sanitize_rate(rps) * PACING_FACTOR);
    Duration::try_from_secs_f64(period)
        .unwrap_or(Duration::from_secs(100))
        .max(Duration::from_nanos(1))
}

fn limiter(rps: f64) -> Limiter {
    let quota = Quota::with_period(pacing_period(rps)).expect("period is non-zero");
    RateLimiter::direct_with_clock(quota, TokioClock)
}

struct State {
    /// The lowest rate anyone configured for this key.
    configured_rps: f64,
    /// The per-window limit the server last reported, if any.
    server_limit: Option<u32>,
    /// `min(configured_rps, server_limit)`: what the limiter paces at.
    effective_rps: f64,
    limiter: Limiter,
    /// Waiters, best first: (priority, arrival sequence).
    queue: BTreeSet<(Priority, u64)>,
    next_seq: u64,
    /// No request of the key is released before this instant.
    hold: Option<Instant>,
}

impl State {
    fn retune(&mut self) {
        let server = self.server_limit.map(f64::from).unwrap_or(f64::INFINITY);
        let effective = self.configured_rps.min(server);
        if (effective - self.effective_rps).abs() > f64::EPSILON * effective.max(1.0) {
            self.effective_rps = effective;
            self.limiter = limiter(effective);
            // A fresh limiter has its burst cell free; spend it so a rate change never lets two
            // requests out back to back.
            let _ = self.limiter.check();
        }
    }
}

enum Step {
    Granted,
    /// Not at the head of the queue: wait until the head changes.
    Wait,
    /// At the head: wait until then (or until something changes).
    Until(Instant),
}

/// The throttle of one API key. Obtain it from [`registry()`]; see the module docs.
pub struct KeyThrottle {
    provider: String,
    fingerprint: String,
    state: Mutex<State>,
    /// Woken whenever the head of the queue, the hold or the rate may have changed.
    changed: Notify,
}

impl std::fmt::Debug for KeyThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock();
        f.debug_struct("KeyThrottle")
            .field("provider", &self.provider)
            .field("key", &self.fingerprint)
            .field("requests_per_second", &st.configured_rps)
            .field("effective_requests_per_second", &st.effective_rps)
            .field("waiting", &st.queue.len())
            .finish()
    }
}

impl KeyThrottle {
    /// A throttle of its own, not shared through the registry. Production code wants
    /// [`ThrottleRegistry::throttle`]; this exists for tests and tools.
    pub fn new(provider: &str, fingerprint: &str, requests_per_second: f64) -> Arc<Self> {
        let rps = sanitize_rate(requests_per_second);
        Arc::new(KeyThrottle {
            provider: provider.to_string(),
            fingerprint: fingerprint.to_string(),
            state: Mutex::new(State {
                configured_rps: rps,
                server_limit: None,
                effective_rps: rps,
                limiter: limiter(rps),
                queue: BTreeSet::new(),
                next_seq: 0,
                hold: None,
            }),
            changed: Notify::new(),
        })
    }

    /// Returns when this request may be sent. Waiters are served by priority, FIFO within one.
    /// Cancel-safe: dropping the future leaves the queue without using a permit.
    pub async fn acquire(&self, priority: Priority) {
        let started = Instant::now();
        let entry = {
            let mut st = self.state.lock();
            let seq = st.next_seq;
            st.next_seq += 1;
            st.queue.insert((priority, seq));
            (priority, seq)
        };
        let mut guard = QueueSlot {
            throttle: self,
            entry,
            granted: false,
        };
        // The newcomer may have become the head: let the previous head step back.
        self.changed.notify_waiters();
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_grant(entry) {
                Step::Granted => break,
                Step::Wait => notified.await,
                Step::Until(t) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t) => {}
                        _ = &mut notified => {}
                    }
                }
            }
        }
        guard.granted = true;
        drop(guard);
        // The next waiter is the new head.
        self.changed.notify_waiters();
        let waited = started.elapsed().as_secs_f64();
        crate::metrics::global().throttle_wait(&self.provider, &self.fingerprint, waited);
        tracing::trace!(key = %self.fingerprint, priority = priority.as_str(), waited, "throttle permit");
    }

    fn try_grant(&self, entry: (Priority, u64)) -> Step {
        let mut st = self.state.lock();
        if st.queue.first() != Some(&entry) {
            return Step::Wait;
        }
        let now = Instant::now();
        if let Some(hold) = st.hold {
            if hold > now {
                return Step::Until(hold);
            }
            st.hold = None;
        }
        match st.limiter.check() {
            Ok(()) => {
                st.queue.remove(&entry);
                Step::Granted
            }
            Err(not_until) => Step::Until(not_until.earliest_possible().0.max(now)),
        }
    }

    /// Feed the rate-limit headers of an answer. `remaining == Some(0)` holds every request of the
    /// key until `reset_unix` (unix seconds; small values are read as seconds from now) plus a small
    /// margin, or for one window when no reset was given. A `limit` lower than the configured rate
    /// lowers the pace to it.
    pub fn observe_headers(
        &self,
        limit: Option<u32>,
        remaining: Option<u32>,
        reset_unix: Option<u64>,
    ) {
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
                let before = st.effective_rps;
                st.retune();
                if st.effective_rps != before {
                    tracing::debug!(key = %self.fingerprint, server_limit = limit, rps = st.effective_rps, "pace follows the server's limit");
                }
                drop(st);
                self.changed.notify_waiters();
            }
        }
        if remaining == Some(0) {
            let wait = match reset_unix {
                Some(reset) => until_reset(reset),
                None => Some(DEFAULT_WINDOW),
            };
            if let Some(wait) = wait {
                tracing::debug!(key = %self.fingerprint, hold_ms = wait.as_millis() as u64, "rate-limit budget exhausted; holding the key");
                self.hold_for(wait.min(MAX_HEADER_HOLD) + RESET_MARGIN);
            }
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

    /// Lower the configured rate to `requests_per_second` if that is lower (never raises it).
    pub fn restrict_rate(&self, requests_per_second: f64) {
        let rps = sanitize_rate(requests_per_second);
        let mut st = self.state.lock();
        if rps < st.configured_rps {
            st.configured_rps = rps;
            st.retune();
            drop(st);
            self.changed.notify_waiters();
        }
    }

    /// How many requests are waiting for a permit.
    pub fn waiting(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// The key's fingerprint (never the key).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The configured rate: the lowest any user of the key asked for.
    pub fn requests_per_second(&self) -> f64 {
        self.state.lock().configured_rps
    }

    /// The rate actually paced at: the configured rate, or the server's reported limit if lower.
    pub fn effective_requests_per_second(&self) -> f64 {
        self.state.lock().effective_rps
    }
}

/// How long until `reset` (unix seconds, or seconds from now when too small to be a timestamp).
/// `None` when the reset is already past.
fn until_reset(reset: u64) -> Option<Duration> {
    const PLAUSIBLE_TIMESTAMP: u64 = 1_000_000_000;
    if reset < PLAUSIBLE_TIMESTAMP {
        return Some(Duration::from_secs(reset)).filter(|d| !d.is_zero());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(reset)
        .checked_sub(now)
        .filter(|d| !d.is_zero())
}

/// A waiter's place in the queue; leaving it (by cancellation) frees the place for the next one.
struct QueueSlot<'a> {
    throttle: &'a KeyThrottle,
    entry: (Priority, u64),
    granted: bool,
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        if !self.granted {
            let was_head = {
                let mut st = self.throttle.state.lock();
                let was_head = st.queue.first() == Some(&self.entry);
                st.queue.remove(&self.entry);
                was_head
            };
            if was_head {
                self.throttle.changed.notify_waiters();
            }
        }
    }
}

/// Every key throttle of the process, by (provider, key fingerprint).
#[derive(Default)]
pub struct ThrottleRegistry {
    throttles: Mutex<HashMap<(String, String), Arc<KeyThrottle>>>,
}

impl std::fmt::Debug for ThrottleRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThrottleRegistry")
            .field("keys", &self.throttles.lock().len())
            .finish()
    }
}

impl ThrottleRegistry {
    /// The throttle of `key` at `provider`, created on first use. Every client, controller and
    /// configuration using the key gets the same one; when callers configure different rates the
    /// lowest wins.
    pub fn throttle(
        &self,
        provider: &str,
        key: &ApiKey,
        requests_per_second: f64,
    ) -> Arc<KeyThrottle> {
        let fingerprint = key.fingerprint();
        let mut map = self.throttles.lock();
        match map.get(&(provider.to_string(), fingerprint.clone())) {
            Some(t) => {
                t.restrict_rate(requests_per_second);
                t.clone()
            }
            None => {
                let t = KeyThrottle::new(provider, &fingerprint, requests_per_second);
                map.insert((provider.to_string(), fingerprint), t.clone());
                t
            }
        }
    }

    /// The throttle of a key fingerprint, if one exists.
    pub fn get(&self, provider: &str, fingerprint: &str) -> Option<Arc<KeyThrottle>> {
        self.throttles
            .lock()
            .get(&(provider.to_string(), fingerprint.to_string()))
            .cloned()
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn until_waiting(t: &KeyThrottle, n: usize) {
        for _ in 0..10_000 {
            if t.waiting() == n {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("expected {n} waiters, have {}", t.waiting());
    }

    #[test]
    fn priorities_order_write_urgent_routine() {
        let mut v = vec![Priority::Routine, Priority::Write, Priority::Urgent];
        v.sort();
        assert_eq!(v, [Priority::Write, Priority::Urgent, Priority::Routine]);
    }

    #[test]
    fn pacing_is_slightly_slower_than_the_limit() {
        let p = pacing_period(2.0).as_secs_f64();
        assert!(p > 0.5 && p < 0.5 / 0.95, "{p}");
        assert!(pacing_period(f64::NAN) > Duration::from_secs(1));
        assert!(pacing_period(-3.0) > Duration::from_secs(1));
    }

    /// Real time is used throughout (tokio's `test-util` is not enabled); assertions leave room for
    /// a loaded machine and never depend on scheduling for ordering: the queue is built while the
    /// key is held, so who is served first is decided by the queue alone.
    #[tokio::test]
    async fn a_later_write_is_served_before_queued_routine_reads() {
        let t = KeyThrottle::new("test", "prio", 20.0);
        t.hold_for(Duration::from_millis(300));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (t2, order) = (t.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                t2.acquire(Priority::Routine).await;
                order.lock().push(format!("routine{i}"));
            }));
            until_waiting(&t, i + 1).await;
        }
        for (n, (name, p)) in [("urgent", Priority::Urgent), ("write", Priority::Write)]
            .into_iter()
            .enumerate()
        {
            let (t2, order) = (t.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                t2.acquire(p).await;
                order.lock().push(name.to_string());
            }));
            until_waiting(&t, 6 + n).await;
        }
        assert!(
            t.held_until().is_some(),
            "the machine was too slow to build the queue in time"
        );
        for task in tasks {
            task.await.unwrap();
        }
        let order = order.lock().clone();
        assert_eq!(
            order,
            [
                "write", "urgent", "routine0", "routine1", "routine2", "routine3", "routine4"
            ]
        );
        assert_eq!(t.waiting(), 0);
    }

    #[tokio::test]
    async fn fifo_within_a_priority_and_paced() {
        let rate = 20.0;
        let t = KeyThrottle::new("test", "fifo", rate);
        t.hold_for(Duration::from_millis(200));
        let grants = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (t2, grants) = (t.clone(), grants.clone());
            tasks.push(tokio::spawn(async move {
                t2.acquire(Priority::Urgent).await;
                grants.lock().push((i, Instant::now()));
            }));
            until_waiting(&t, i + 1).await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        let grants = grants.lock().clone();
        assert_eq!(
            grants.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>()
        );
        // 19 periods between the first and the last grant: never faster than the pace, and (with
        // room for a busy machine) not much slower.
        let span = grants[19].1 - grants[0].1;
        let period = pacing_period(rate);
        assert!(span + Duration::from_millis(2) >= period * 19, "{span:?}");
        assert!(span <= period * 19 + Duration::from_millis(250), "{span:?}");
    }

    #[tokio::test]
    async fn a_cancelled_waiter_does_not_consume_a_permit() {
        let period = pacing_period(10.0);
        let t = KeyThrottle::new("test", "cancel", 10.0);
        t.acquire(Priority::Routine).await;
        let start = Instant::now();
        // A waiter that gives up (its future is dropped) while at the head of the queue.
        let r = tokio::time::timeout(Duration::from_millis(10), t.acquire(Priority::Write)).await;
        assert!(r.is_err());
        assert_eq!(t.waiting(), 0);
        // The next one gets the very next permit, not the one after.
        t.acquire(Priority::Routine).await;
        let at = start.elapsed();
        assert!(at < period + period / 2, "{at:?}");

        // Abort the head while others wait behind it; the queue keeps moving.
        let t2 = t.clone();
        let head = tokio::spawn(async move { t2.acquire(Priority::Write).await });
        until_waiting(&t, 1).await;
        let served = Arc::new(AtomicUsize::new(0));
        let mut rest = Vec::new();
        for i in 0..3 {
            let (t2, served) = (t.clone(), served.clone());
            rest.push(tokio::spawn(async move {
                t2.acquire(Priority::Routine).await;
                served.fetch_add(1, Ordering::SeqCst);
            }));
            until_waiting(&t, i + 2).await;
        }
        head.abort();
        let _ = head.await;
        let before = Instant::now();
        for r in rest {
            r.await.unwrap();
        }
        assert_eq!(served.load(Ordering::SeqCst), 3);
        assert_eq!(t.waiting(), 0);
        // 3 permits, the first one due within a period: well under 4 periods.
        assert!(
            before.elapsed() < period * 3 + period / 2,
            "{:?}",
            before.elapsed()
        );
    }

    #[tokio::test]
    async fn many_cancellations_leave_no_trace() {
        let t = KeyThrottle::new("test", "cancel-many", 50.0);
        t.hold_for(Duration::from_millis(100));
        let mut handles = Vec::new();
        for i in 0..40 {
            let t2 = t.clone();
            let p = [Priority::Write, Priority::Urgent, Priority::Routine][i % 3];
            handles.push(tokio::spawn(async move { t2.acquire(p).await }));
            until_waiting(&t, i + 1).await;
        }
        for h in handles.iter().step_by(2) {
            h.abort();
        }
        let mut done = 0;
        for h in handles {
            if h.await.is_ok() {
                done += 1;
            }
        }
        assert!(done >= 20, "{done}");
        assert_eq!(t.waiting(), 0);
        let start = Instant::now();
        t.acquire(Priority::Routine).await;
        assert!(
            start.elapsed() < pacing_period(50.0) * 2,
            "{:?}",
            start.elapsed()
        );
    }

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

    #[tokio::test]
    async fn remaining_zero_holds_until_reset() {
        let t = KeyThrottle::new("test", "headers", 50.0);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let reset = now.as_secs() + 1;
        let expected = Duration::from_secs(reset) - now;
        t.observe_headers(Some(100), Some(0), Some(reset));
        assert!(t.held_until().is_some());
        let start = std::time::Instant::now();
        t.acquire(Priority::Write).await;
        assert!(
            start.elapsed() + Duration::from_millis(5) >= expected,
            "{:?} < {expected:?}",
            start.elapsed()
        );
        // Remaining > 0, or a reset already past, do not hold.
        t.observe_headers(Some(100), Some(3), Some(reset + 5));
        t.observe_headers(Some(100), Some(0), Some(now.as_secs() - 10));
        assert!(t.held_until().is_none());
        // Without a reset, one window.
        t.observe_headers(None, Some(0), None);
        let held = t.held_until().expect("held") - Instant::now();
        assert!(
            held > Duration::from_millis(900) && held <= DEFAULT_WINDOW + RESET_MARGIN,
            "{held:?}"
        );
    }

    #[tokio::test]
    async fn server_limit_lowers_the_pace_but_never_raises_it() {
        let t = KeyThrottle::new("test", "server-limit", 40.0);
        t.observe_headers(Some(10), Some(1), None);
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
        t.observe_headers(Some(30), Some(29), None);
        assert_eq!(t.effective_requests_per_second(), 30.0);
        t.observe_headers(Some(300), Some(29), None);
        assert_eq!(t.effective_requests_per_second(), 40.0);
        t.restrict_rate(5.0);
        assert_eq!(t.effective_requests_per_second(), 5.0);
        t.restrict_rate(50.0);
        assert_eq!(t.requests_per_second(), 5.0);
    }

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
}
