//! One throttle per API key, shared by everything that uses the key.
//!
//! The cloud limits requests per key (Strettch: 2 requests/second, counted in fixed windows of one
//! unix second as the server sees them). A [`KeyThrottle`] paces every request of one key:
//!
//! * **Rate**: a [`governor`] GCRA limiter with burst 1 and a period of `1 / (rate × 0.97)`.
//!   Spacing requests evenly, slightly slower than the limit, means `limit + 1` arrivals inside one
//!   server second would need ~31 ms of network jitter between them; sustained throughput stays 3%
//!   under the limit.
//! * **No budget in hand at start**: a new throttle's first permit comes one pacing period after
//!   it was made, not at once. A process that replaces another (crash, rollout, failover) cannot
//!   know what its predecessor spent in the server's current window; a predecessor that paced the
//!   same way sent its last request at least one period before it died, so waiting one period
//!   lands the first request of the new process where the predecessor's next one would have gone.
//!   The first answers' rate-limit headers then tell the real state (a remaining budget of 0
//!   holds the key until the reset).
//! * **Who sets the rate**: every ProviderConfig using the key reports the rate it asks for
//!   ([`ThrottleRegistry::throttle_for`]); the key is paced at the lowest *current* one, so raising
//!   a rate again or deleting a ProviderConfig ([`ThrottleRegistry::release_user`]) restores the
//!   pace without a restart. A registry entry and its metric series go away once no
//!   ProviderConfig uses the key and no client holds its throttle.
//! * **Priority**: a small queue in front of the limiter. When a permit is available it goes to the
//!   highest-priority waiter ([`Priority::Write`] > [`Priority::Urgent`] > [`Priority::Routine`]),
//!   first come first served within a priority. There is no background task: the waiter at the
//!   head of the queue is the one that waits for the limiter, everyone else waits for the head to
//!   change. A waiter whose future is dropped leaves the queue in its destructor, so cancellation
//!   never consumes a permit or blocks the queue.
//! * **Server feedback**: rate-limit headers of every answer go to [`KeyThrottle::observe_headers`];
//!   a remaining budget of 0 holds every request of the key until the window resets, a 429 holds it
//!   until `Retry-After`/reset ([`KeyThrottle::hold_until`]). A limit the server reports that is
//!   lower than the configured rate lowers the pace to it. Reset times are read against the
//!   answer's `Date` header ([`until_reset`]), so a skewed local clock never turns an exhausted
//!   window into a long hold; an implausible reset falls back to one [`DEFAULT_WINDOW`].
//! * **Routine reads do not wait long**: [`KeyThrottle::acquire_or_defer`] gives a
//!   [`Priority::Routine`] request up (without spending a permit) when no permit can be had
//!   within [`ROUTINE_PATIENCE`], so a routine refresh never holds a bounded reconcile worker
//!   while the key is busy with writes; the caller tries again later.
//!
//! Time is `tokio::time`, so tests can run the throttle under `tokio::time::pause`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Add;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
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
/// The longest hold derived from rate-limit headers; a reset further out is not believed (it is
/// clock skew or a value in the wrong unit) and [`DEFAULT_WINDOW`] is used instead.
pub const MAX_HEADER_HOLD: Duration = Duration::from_secs(60);
/// The API's documented rate-limit window (Strettch: one unix second). How long to hold when the
/// budget is exhausted and the server gave no usable reset time.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(1);
/// How long a [`Priority::Routine`] request may wait for a permit in
/// [`KeyThrottle::acquire_or_defer`] before it gives its place up.
pub const ROUTINE_PATIENCE: Duration = Duration::from_secs(1);
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

/// A limiter whose burst cell is already spent: its first permit comes one period from now. Used
/// for a new throttle (no budget in hand at start) and on every rate change (never two requests
/// back to back).
fn limiter(rps: f64) -> Limiter {
    let quota = Quota::with_period(pacing_period(rps)).expect("period is non-zero");
    let limiter = RateLimiter::direct_with_clock(quota, TokioClock);
    let _ = limiter.check();
    limiter
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
            // Born with its burst cell spent, so a rate change never lets two requests out back
            // to back.
            self.limiter = limiter(effective);
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
    /// Permits handed out so far.
    granted: AtomicU64,
}

impl Drop for KeyThrottle {
    /// The key is gone from this process: so are its metric series.
    fn drop(&mut self) {
        crate::metrics::global().forget_key(&self.provider, &self.fingerprint);
    }
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
            granted: AtomicU64::new(0),
        })
    }

    /// Like [`acquire`](Self::acquire), except that a [`Priority::Routine`] request gives its place
    /// up when it cannot have a permit within [`ROUTINE_PATIENCE`]: at once when the hold and the
    /// queue ahead already promise a longer wait, else when the patience runs out. A deferred
    /// request spent no permit; try it again after [`Deferred::retry_in`]. Writes and urgent
    /// reads always wait, as with `acquire`.
    pub async fn acquire_or_defer(&self, priority: Priority) -> Result<(), Deferred> {
        if priority != Priority::Routine {
            self.acquire(priority).await;
            return Ok(());
        }
        let backlog = self.backlog();
        if backlog > ROUTINE_PATIENCE {
            return Err(self.defer(backlog));
        }
        match tokio::time::timeout(ROUTINE_PATIENCE, self.acquire(priority)).await {
            Ok(()) => Ok(()),
            Err(_) => Err(self.defer(self.backlog())),
        }
    }

    /// A lower bound of how long a request arriving now at the back of the queue waits: the
    /// hold, then one pacing period per waiter ahead.
    fn backlog(&self) -> Duration {
        let st = self.state.lock();
        let hold = st
            .hold
            .map(|h| h.saturating_duration_since(Instant::now()))
            .unwrap_or_default();
        let waiters = u32::try_from(st.queue.len()).unwrap_or(u32::MAX);
        hold.saturating_add(pacing_period(st.effective_rps).saturating_mul(waiters))
    }

    fn defer(&self, backlog: Duration) -> Deferred {
        let retry_in = backlog.max(ROUTINE_PATIENCE);
        tracing::trace!(key = %self.fingerprint, retry_in_ms = retry_in.as_millis() as u64, "routine read deferred: no budget now");
        Deferred { retry_in }
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
        self.granted.fetch_add(1, Ordering::Relaxed);
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
    /// key until the reset ([`until_reset`], read against the answer's `Date`) plus a small
    /// margin, or for one [`DEFAULT_WINDOW`] when no usable reset was given. A `limit` lower than
    /// the configured rate lowers the pace to it.
    pub fn observe_headers(&self, headers: RateLimitHeaders) {
        let RateLimitHeaders {
            limit,
            remaining,
            reset,
            date,
        } = headers;
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

    /// Lower the configured rate to `requests_per_second` if that is lower (never raises it).
    pub fn restrict_rate(&self, requests_per_second: f64) {
        let rps = sanitize_rate(requests_per_second);
        if rps < self.requests_per_second() {
            self.set_rate(rps);
        }
    }

    /// Set the configured rate, up or down. The registry calls it when the ProviderConfigs using
    /// the key change; use [`ThrottleRegistry::throttle_for`] rather than calling it directly.
    pub fn set_rate(&self, requests_per_second: f64) {
        let rps = sanitize_rate(requests_per_second);
        let mut st = self.state.lock();
        if st.configured_rps != rps {
            st.configured_rps = rps;
            st.retune();
            drop(st);
            self.changed.notify_waiters();
        }
    }

    /// How many permits were handed out so far (every request sent through the key).
    pub fn permits_granted(&self) -> u64 {
        self.granted.load(Ordering::Relaxed)
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

/// Every key throttle of the process, by (provider, key fingerprint), with the rate each user
/// (ProviderConfig) of the key asks for.
///
/// The registry does not keep a throttle alive: it holds it weakly, and forgets a key once no
/// client holds its throttle and no user is registered for it, so keys that come and go (rotated
/// API keys, deleted ProviderConfigs) leave nothing behind.
#[derive(Default)]
pub struct ThrottleRegistry {
    entries: Mutex<HashMap<(String, String), Entry>>,
}

struct Entry {
    throttle: Weak<KeyThrottle>,
    /// The rate each named user (a ProviderConfig) asks for now.
    users: BTreeMap<String, f64>,
    /// The lowest rate asked for by callers without a name (tests, tools); used only while the
    /// key has no named user.
    anonymous: f64,
}

impl Entry {
    /// The rate the key is paced at: the lowest any current user asks for.
    fn rate(&self) -> f64 {
        self.users
            .values()
            .copied()
            .reduce(f64::min)
            .unwrap_or(self.anonymous)
    }

    fn in_use(&self) -> bool {
        !self.users.is_empty() || self.throttle.strong_count() > 0
    }
}

impl std::fmt::Debug for ThrottleRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThrottleRegistry")
            .field("keys", &self.entries.lock().len())
            .finish()
    }
}

impl ThrottleRegistry {
    /// The throttle of `key` at `provider` for a caller without a name (tests, tools), created on
    /// first use. Every caller of the same key gets the same one; until a named user
    /// ([`throttle_for`](Self::throttle_for)) sets the rate, the lowest rate asked for wins.
    pub fn throttle(
        &self,
        provider: &str,
        key: &ApiKey,
        requests_per_second: f64,
    ) -> Arc<KeyThrottle> {
        self.obtain(provider, &key.fingerprint(), None, requests_per_second)
    }

    /// The throttle of `key` at `provider` for `user` (a ProviderConfig name), which asks for
    /// `requests_per_second` from now on (replacing what it asked for before, up or down). The
    /// key is paced at the lowest rate of its current users. A user has one key: if `user` used
    /// another key before, it no longer counts there.
    pub fn throttle_for(
        &self,
        provider: &str,
        key: &ApiKey,
        user: &str,
        requests_per_second: f64,
    ) -> Arc<KeyThrottle> {
        self.obtain(
            provider,
            &key.fingerprint(),
            Some(user),
            requests_per_second,
        )
    }

    /// `user` (a ProviderConfig that was deleted) no longer uses any key: the rate of the key it
    /// used follows the remaining users, and a key nobody uses any more is forgotten once no
    /// client holds its throttle.
    pub fn release_user(&self, user: &str) {
        let mut map = self.entries.lock();
        Self::remove_user(&mut map, user, None);
        map.retain(|_, e| e.in_use());
    }

    fn remove_user(
        map: &mut HashMap<(String, String), Entry>,
        user: &str,
        except: Option<&(String, String)>,
    ) {
        for (id, entry) in map.iter_mut() {
            if Some(id) != except
                && entry.users.remove(user).is_some()
                && let Some(t) = entry.throttle.upgrade()
            {
                t.set_rate(entry.rate());
            }
        }
    }

    fn obtain(
        &self,
        provider: &str,
        fingerprint: &str,
        user: Option<&str>,
        requests_per_second: f64,
    ) -> Arc<KeyThrottle> {
        let rps = sanitize_rate(requests_per_second);
        let id = (provider.to_string(), fingerprint.to_string());
        let mut map = self.entries.lock();
        if let Some(user) = user {
            Self::remove_user(&mut map, user, Some(&id));
        }
        let entry = map.entry(id.clone()).or_insert_with(|| Entry {
            throttle: Weak::new(),
            users: BTreeMap::new(),
            anonymous: rps,
        });
        match user {
            Some(user) => {
                entry.users.insert(user.to_string(), rps);
            }
            None => entry.anonymous = entry.anonymous.min(rps),
        }
        let rate = entry.rate();
        let throttle = match entry.throttle.upgrade() {
            Some(t) => {
                t.set_rate(rate);
                t
            }
            None => {
                let t = KeyThrottle::new(provider, fingerprint, rate);
                entry.throttle = Arc::downgrade(&t);
                t
            }
        };
        map.retain(|_, e| e.in_use());
        throttle
    }

    /// The throttle of a key fingerprint, if one exists.
    pub fn get(&self, provider: &str, fingerprint: &str) -> Option<Arc<KeyThrottle>> {
        self.entries
            .lock()
            .get(&(provider.to_string(), fingerprint.to_string()))
            .and_then(|e| e.throttle.upgrade())
    }

    /// How many keys the registry remembers (after forgetting those nobody uses any more).
    pub fn len(&self) -> usize {
        let mut map = self.entries.lock();
        map.retain(|_, e| e.in_use());
        map.len()
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

    #[tokio::test]
    async fn a_new_throttle_has_no_permit_in_hand_for_one_pacing_period() {
        // A process that just started cannot know what its predecessor spent in the server's
        // current window: its first permit waits one period, like the predecessor's next one.
        let rate = 4.0;
        let t = KeyThrottle::new("test", "no-burst", rate);
        let start = Instant::now();
        t.acquire(Priority::Write).await;
        let first = start.elapsed();
        t.acquire(Priority::Write).await;
        let second = start.elapsed();
        let period = pacing_period(rate);
        assert!(first + Duration::from_millis(2) >= period, "{first:?}");
        assert!(
            second + Duration::from_millis(2) >= period * 2,
            "{second:?}"
        );
        assert_eq!(t.permits_granted(), 2);
    }

    #[tokio::test]
    async fn a_routine_read_gives_its_place_up_at_once_when_the_key_is_held_beyond_its_patience() {
        let t = KeyThrottle::new("test", "defer-held", 20.0);
        t.hold_for(ROUTINE_PATIENCE * 4);
        let t2 = t.clone();
        let write = tokio::spawn(async move { t2.acquire_or_defer(Priority::Write).await });
        until_waiting(&t, 1).await;
        let start = Instant::now();
        let deferred = t
            .acquire_or_defer(Priority::Routine)
            .await
            .expect_err("no permit within the patience");
        assert!(start.elapsed() < ROUTINE_PATIENCE, "{:?}", start.elapsed());
        assert!(
            deferred.retry_in >= ROUTINE_PATIENCE * 3,
            "the hold is the estimate: {deferred:?}"
        );
        // It left no trace in the queue; the write still waits and is served after the hold.
        assert_eq!(t.waiting(), 1);
        assert_eq!(t.permits_granted(), 0);
        write.await.unwrap().expect("a write always waits");
        assert_eq!(t.permits_granted(), 1);
        assert_eq!(t.waiting(), 0);
    }

    #[tokio::test]
    async fn a_routine_read_that_gets_no_permit_within_its_patience_leaves_the_queue_unserved() {
        // 0.4/s: the first permit of a new throttle is 2.6 s away, further than the patience,
        // though neither a hold nor a queue says so in advance.
        let t = KeyThrottle::new("test", "defer-timeout", 0.4);
        let (t2, t3) = (t.clone(), t.clone());
        let routine = tokio::spawn(async move {
            let start = Instant::now();
            let r = t2.acquire_or_defer(Priority::Routine).await;
            (r, start.elapsed())
        });
        until_waiting(&t, 1).await;
        // A write that arrives while the routine read waits is ahead of it.
        let write = tokio::spawn(async move { t3.acquire_or_defer(Priority::Write).await });
        until_waiting(&t, 2).await;
        let (r, waited) = routine.await.unwrap();
        let deferred = r.expect_err("deferred");
        assert!(deferred.retry_in >= ROUTINE_PATIENCE, "{deferred:?}");
        assert!(
            waited >= ROUTINE_PATIENCE && waited < ROUTINE_PATIENCE * 2,
            "{waited:?}"
        );
        assert_eq!(t.waiting(), 1, "only the write is left");
        assert_eq!(t.permits_granted(), 0, "giving up spent no permit");
        write.await.unwrap().unwrap();
        assert_eq!(t.permits_granted(), 1);
    }

    #[tokio::test]
    async fn writes_and_urgent_reads_never_defer_and_routine_reads_within_patience_are_served() {
        let t = KeyThrottle::new("test", "defer-never", 0.9);
        // Held beyond the patience: writes and urgent reads wait it out.
        t.hold_for(ROUTINE_PATIENCE + Duration::from_millis(300));
        let start = Instant::now();
        t.acquire_or_defer(Priority::Urgent).await.unwrap();
        t.acquire_or_defer(Priority::Write).await.unwrap();
        assert!(start.elapsed() >= ROUTINE_PATIENCE, "{:?}", start.elapsed());
        // A fast key: a routine read is served.
        let fast = KeyThrottle::new("test", "defer-fast", 50.0);
        fast.acquire_or_defer(Priority::Routine).await.unwrap();
        assert_eq!(fast.permits_granted(), 1);
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
        t.observe_headers(facts(Some(2), Some(1), None, None));
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
