//! Limiter math: what one limit ("N requests per W, burst b") means as a GCRA, why no window of
//! length W can then hold more than N requests, and how a limit that changes keeps that promise.
//!
//! # N per W, in any window
//!
//! A limit is enforced as a GCRA (generic cell rate algorithm) with a cell *interval* `T` and a
//! *tolerance* `τ = (b - 1)·T`, `b` the burst. [`Gcra`] keeps the theoretical arrival time `TAT`:
//! a request at `t` conforms iff `t ≥ TAT - τ`, and then `TAT ← max(TAT, t) + T`.
//!
//! **Claim.** For two conforming requests `i < j` (numbered in the order they were let out),
//! `t_j ≥ t_i + (j - i - b + 1)·T`.
//! *Proof sketch.* After request `i`, `TAT ≥ t_i + T`; every later request adds `T` at least, so
//! before request `j`, `TAT ≥ t_i + (j - i)·T`. Request `j` conforms, so
//! `t_j ≥ TAT - τ ≥ t_i + (j - i)·T - (b - 1)·T`. ∎
//!
//! A window of length `W` (rolling: any interval `[s, s + W)`; a fixed window is one such
//! interval) holding `m` requests `i..=j` has `t_j - t_i < W`, so `(m - b)·T < W`, i.e.
//! `m ≤ b + ⌈W/T⌉ - 1 = b + ⌊(W - ε)/T⌋`. This is at most `N` iff `⌈W/T⌉ ≤ N - b + 1`, i.e.
//!
//! ```text
//!     T ≥ W / (N - b + 1)
//! ```
//!
//! and the bound is tight (at `T = W / (N - b + 1)` a burst of `b` followed by requests every `T`
//! puts exactly `N` in a window). So a plain `per_minute(N)` quota (`b = N`, `T = W/N`) lets
//! `2N - 1` through in a minute after idling, and `per_second(2)` (`b = 2`, `T = 0.5 s`) lets 3
//! through in a second.
//!
//! # Room for the network
//!
//! The server counts requests by when they *arrive*. Requests sent `T` apart arrive a little
//! closer or further apart (queueing, retransmits, the operator's and the server's clocks), so
//! the throttle keeps two margins and paces at the larger interval:
//!
//! ```text
//!     T = max( W / ((N - b + 1) · PACING_FACTOR),  (W + NETWORK_JITTER) / (N - b + 1) )
//!     PACING_FACTOR = 0.97, NETWORK_JITTER = 50 ms
//! ```
//!
//! By the claim, `N + 1` consecutive requests `i..=i+N` span `t_{i+N} - t_i ≥ (N - b + 1)·T ≥
//! W + NETWORK_JITTER`: for them to land in one server window of `W`, arrivals would have to be
//! compressed by more than 50 ms (and by 3% of `W` for long windows, where 50 ms is nothing).
//! The relative margin alone was a few ms for a 1 s window. The single-rate form
//! (`rateLimit.requestsPerSecond: r`) is the limit [`LimitSpec::per_second`] makes of it and gets
//! the same interval: `r per 1s` for a whole `r` (Strettch's 2 per second: a request every
//! 525 ms, three of them span 1.05 s), `1 per 1/r` for a fractional one. Fixed windows get the
//! same interval as rolling ones: their boundaries are on the server's clock, unknown here, and
//! the rolling bound covers every possible alignment.
//!
//! # No budget in hand at start
//!
//! A limiter is born with its whole burst spent: `TAT = now + τ + T`, so its first permit comes
//! one interval after it was made and the burst is earned back only by idling. A predecessor
//! process that paced with the same limit had `TAT ≤ t_last + τ + T` when it died, so the two
//! processes' requests together still conform to one GCRA and the bound above holds across a
//! restart.
//!
//! # A limit that changes
//!
//! A limit added or changed at run time (a ProviderConfig edits its `rateLimits`, a second one
//! adds a lower limit, the server reports a lower limit, an adaptive limit learns) must count
//! what was already sent in its window, or the window holding the change could hold more than
//! its `N`. Every throttle keeps a [`PermitLog`] of the instants it let requests out (its last
//! `N` for the largest `N` on its path, none older than its longest window), and a new limit
//! starts from what the log says ([`PermitLog::replay`]): if the `c`-th newest logged request was
//! sent at `t`, the `m`-th request from now on may share a window with it only while
//! `c + m ≤ N`; so the new limiter's `TAT` is at least `t + S + τ - (N - c)·T` for every logged
//! request, `S = (N - b + 1)·T ≥ W + NETWORK_JITTER` the span the limit keeps `N + 1`
//! consecutive requests apart (the `m`-th one is let out at `TAT - τ + (m - 1)·T` at the
//! earliest). With the claim above for the requests after the change, no window of the new spec
//! holding a request after the change holds more than `N`, and the first one goes as soon as the
//! window has room, not a whole window later. Requests the log no longer has cannot share such a
//! window when the last one dropped is older than `W`, or the log still holds `N` newer ones.
//! Otherwise (a new limit with a longer window or a larger `N` than any on the path) they are
//! counted as the most the limits in force before the change allowed since the log began (or `W`
//! ago), all at the last dropped instant, which is never fewer or earlier than they were.
//! A new limit is also born spent when the log began, as at start.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Requests are paced at this fraction of the configured rate (see the module docs): 3% of the
/// window for clock and network disagreement, which matters for long windows.
pub const PACING_FACTOR: f64 = 0.97;
/// How far the network may compress arrivals at the server: `N + 1` consecutive requests of a
/// limit always span at least `W` plus this (see the module docs), which matters for short
/// windows, where 3% is a few ms.
pub const NETWORK_JITTER: Duration = Duration::from_millis(50);
/// The most permit instants a [`PermitLog`] keeps, whatever the limits (1 MiB per log): a larger
/// `N` (a daily quota of a million) is replayed from the bound of the limits in force instead.
pub const MAX_PERMIT_LOG: usize = 1 << 16;
/// The slowest rate a throttle accepts; lower (or invalid) values are raised to it.
pub const MIN_REQUESTS_PER_SECOND: f64 = 0.01;
/// The shortest and longest window a configured limit may have.
pub const MIN_PER: Duration = Duration::from_secs(1);
pub const MAX_PER: Duration = Duration::from_secs(24 * 3600);
/// How many limits one ProviderConfig may list.
pub const MAX_LIMITS: usize = 8;

/// Whose budget a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// This API key.
    Key,
    /// Every key of the ProviderConfigs naming the same budget group.
    BudgetGroup,
}

/// How the cloud counts a limit's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Window {
    /// Windows of `per` aligned on the server's clock (e.g. unix seconds).
    Fixed,
    /// Any interval of length `per`.
    #[default]
    Rolling,
}

/// One limit: at most `requests` per `per`, `burst` of them back to back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LimitSpec {
    pub requests: u32,
    pub per: Duration,
    pub burst: u32,
    pub scope: Scope,
    pub window: Window,
}

fn sanitize_rate(rps: f64) -> f64 {
    if rps.is_finite() && rps >= MIN_REQUESTS_PER_SECOND {
        rps
    } else if rps.is_infinite() && rps > 0.0 {
        f64::MAX
    } else {
        MIN_REQUESTS_PER_SECOND
    }
}

/// `1s`, `10m`, `1h`, `90s`, `1h30m`... as short as it can be said.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    if s != 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s != 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

impl LimitSpec {
    /// `requests` per `per` for one key, rolling, burst 1.
    pub fn key(requests: u32, per: Duration) -> Self {
        LimitSpec {
            requests,
            per,
            burst: 1,
            scope: Scope::Key,
            window: Window::Rolling,
        }
    }

    /// `requests` per `per` for a budget group, rolling, burst 1.
    pub fn group(requests: u32, per: Duration) -> Self {
        LimitSpec {
            scope: Scope::BudgetGroup,
            ..Self::key(requests, per)
        }
    }

    pub fn with_burst(self, burst: u32) -> Self {
        LimitSpec { burst, ..self }
    }

    pub fn with_window(self, window: Window) -> Self {
        LimitSpec { window, ..self }
    }

    /// The single-rate form (`rateLimit.requestsPerSecond`): a Key limit per second, fixed
    /// windows, burst 1, paced exactly as before lists of limits existed. A whole rate is `N per
    /// 1s`; a fractional one `1 per 1/rps` (0.5 → 1 per 2s).
    pub fn per_second(requests_per_second: f64) -> Self {
        let rps = sanitize_rate(requests_per_second);
        let (requests, per) = if rps.fract() == 0.0 && rps <= f64::from(u32::MAX) {
            (rps as u32, Duration::from_secs(1))
        } else {
            let per = Duration::try_from_secs_f64(1.0 / rps)
                .unwrap_or(Duration::from_secs(100))
                .max(Duration::from_nanos(1));
            (1, per)
        };
        LimitSpec::key(requests, per).with_window(Window::Fixed)
    }

    /// The burst actually used: within `1..=requests`.
    fn effective_burst(&self) -> u32 {
        self.burst.clamp(1, self.requests.max(1))
    }

    /// The GCRA cell interval `max(W / ((N - b + 1) · PACING_FACTOR), (W + NETWORK_JITTER) /
    /// (N - b + 1))` (see the module docs).
    pub fn interval(&self) -> Duration {
        let n = self.requests.max(1);
        let cells = f64::from(n - self.effective_burst() + 1);
        let w = self.per.as_secs_f64();
        let relative = w / (cells * PACING_FACTOR);
        let absolute = (w + NETWORK_JITTER.as_secs_f64()) / cells;
        Duration::try_from_secs_f64(relative.max(absolute))
            .unwrap_or(Duration::from_secs(100 * 24 * 3600))
            .max(Duration::from_nanos(1))
    }

    /// The GCRA tolerance `(b - 1) · T`.
    pub fn tolerance(&self) -> Duration {
        self.interval()
            .saturating_mul(self.effective_burst().saturating_sub(1))
    }

    /// The long-run rate the limit allows, in requests per second (`N / W`).
    pub fn rate(&self) -> f64 {
        f64::from(self.requests) / self.per.as_secs_f64().max(1e-9)
    }

    /// The most requests the throttle lets out in any window of `per`: `b + ⌈W/T⌉ - 1` (≤ N).
    pub fn worst_case_per_window(&self) -> u64 {
        self.worst_case_in(self.per)
    }

    /// The most requests the throttle lets out in any window of length `window`:
    /// `b + ⌈window/T⌉ - 1`.
    pub fn worst_case_in(&self, window: Duration) -> u64 {
        let t = self.interval().as_nanos();
        u64::from(self.effective_burst()) + (window.as_nanos().div_ceil(t) as u64).max(1) - 1
    }

    /// The largest burst a ProviderConfig may set: half of `requests` (1 for 1 or 2 requests).
    /// A limit paces its `N - b` other requests over the window after a burst of `b`, so a burst
    /// near `N` leaves a crawl: `burst == requests` lets one request per window through once the
    /// burst is spent. At half, the steady pace is still more than half the limit's rate.
    pub fn max_burst(&self) -> u32 {
        (self.requests / 2).max(1)
    }

    /// A limit a ProviderConfig may set: requests ≥ 1, per within 1s..=24h, 1 ≤ burst ≤
    /// [`max_burst`](Self::max_burst). The message says what to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.requests == 0 {
            return Err("requests must be at least 1".into());
        }
        if self.per < MIN_PER || self.per > MAX_PER {
            return Err(format!(
                "per is {}; use a window from 1s to 24h (e.g. 1s, 1m, 10m, 1h)",
                format_duration(self.per)
            ));
        }
        if self.burst == 0 || self.burst > self.max_burst() {
            return Err(format!(
                "burst {} must be from 1 to {} (half of requests {}): after a burst, the other \
                 requests - burst are spread over the window, so a burst near requests leaves a \
                 crawl (burst = requests: one request per {} once spent); omit burst for 1, or \
                 raise requests",
                self.burst,
                self.max_burst(),
                self.requests,
                format_duration(self.per)
            ));
        }
        Ok(())
    }
}

impl std::fmt::Display for LimitSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} per {} ({:?}, {:?}",
            self.requests,
            format_duration(self.per),
            self.scope,
            self.window
        )?;
        if self.burst > 1 {
            write!(f, ", burst {}", self.burst)?;
        }
        f.write_str(")")
    }
}

/// The spacing between two permits at `rps` (a single per-second limit, burst 1).
pub fn pacing_period(rps: f64) -> Duration {
    LimitSpec::per_second(rps).interval()
}

/// One limit's GCRA state.
#[derive(Debug, Clone)]
pub struct Gcra {
    spec: LimitSpec,
    interval: Duration,
    tolerance: Duration,
    /// Theoretical arrival time of the next cell.
    tat: Instant,
}

impl Gcra {
    /// A limiter with its whole burst spent: the first permit comes one interval from `now`.
    pub fn spent(spec: LimitSpec, now: Instant) -> Self {
        let interval = spec.interval();
        let tolerance = spec.tolerance();
        Gcra {
            spec,
            interval,
            tolerance,
            tat: now + tolerance + interval,
        }
    }

    pub fn spec(&self) -> &LimitSpec {
        &self.spec
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The earliest instant a request conforms.
    pub fn earliest(&self) -> Instant {
        self.tat.checked_sub(self.tolerance).unwrap_or(self.tat)
    }

    /// Spend one cell at `now` (which must be at or after [`earliest`](Self::earliest)).
    pub fn consume(&mut self, now: Instant) {
        self.tat = self.tat.max(now) + self.interval;
    }
}

/// Keep the state of limits that stay; a new one is `log` replayed into it (see the module
/// docs), with the limits being replaced bounding what the log no longer has. `limits` ends up in
/// the order of `specs`, sorted, one per distinct spec. Whether anything changed.
pub fn respec(limits: &mut Vec<Gcra>, specs: &[LimitSpec], now: Instant, log: &PermitLog) -> bool {
    let mut wanted: Vec<LimitSpec> = specs.to_vec();
    wanted.sort();
    wanted.dedup();
    if limits.len() == wanted.len() && limits.iter().zip(&wanted).all(|(l, s)| l.spec == *s) {
        return false;
    }
    let mut old = std::mem::take(limits);
    let before: Vec<LimitSpec> = old.iter().map(|l| l.spec).collect();
    for spec in wanted {
        match old.iter().position(|l| l.spec == spec) {
            Some(i) => limits.push(old.swap_remove(i)),
            None => limits.push(log.replay(spec, &before, now)),
        }
    }
    true
}

/// The instants a throttle (a key, a group, a class) let requests out, newest last, so that a
/// limit made later knows what its window already holds ([`replay`](Self::replay)). Bounded:
/// at most [`capacity`](Self::set_bounds) instants (the largest `N` on the path), none older than
/// the longest window on the path.
#[derive(Debug, Clone)]
pub struct PermitLog {
    times: VecDeque<Instant>,
    /// When logging began: nothing sent before is known (another process may have sent it).
    began: Instant,
    /// The newest instant dropped from the log, if any.
    dropped: Option<Instant>,
    capacity: usize,
    horizon: Duration,
}

impl PermitLog {
    /// An empty log that began at `now`.
    pub fn new(now: Instant) -> Self {
        PermitLog {
            times: VecDeque::new(),
            began: now,
            dropped: None,
            capacity: 0,
            horizon: Duration::ZERO,
        }
    }

    /// Keep the last `capacity` instants (at most [`MAX_PERMIT_LOG`]), none older than
    /// `horizon`: the largest `N` and the longest `W` of the limits the log serves.
    pub fn set_bounds(&mut self, capacity: usize, horizon: Duration, now: Instant) {
        self.capacity = capacity.min(MAX_PERMIT_LOG);
        self.horizon = horizon;
        self.prune(now);
    }

    /// The bounds for `specs`, with `max_requests` the largest `N` any of them may come to have
    /// (an adaptive limit's ceiling).
    pub fn set_bounds_for(&mut self, specs: &[LimitSpec], max_requests: u32, now: Instant) {
        let capacity = specs
            .iter()
            .map(|s| s.requests)
            .chain([max_requests])
            .max()
            .unwrap_or(0);
        let horizon = specs.iter().map(|s| s.per).max().unwrap_or_default();
        self.set_bounds(capacity as usize, horizon, now);
    }

    /// A request was let out at `now`.
    pub fn record(&mut self, now: Instant) {
        if self.capacity == 0 {
            self.dropped = Some(now);
            return;
        }
        self.times.push_back(now);
        self.prune(now);
    }

    fn prune(&mut self, now: Instant) {
        while let Some(&t) = self.times.front() {
            if self.times.len() > self.capacity || now.saturating_duration_since(t) >= self.horizon
            {
                self.times.pop_front();
                self.dropped = Some(self.dropped.map_or(t, |d| d.max(t)));
            } else {
                break;
            }
        }
    }

    /// How many instants the log holds.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// The newest instant logged.
    pub fn last(&self) -> Option<Instant> {
        self.times.back().copied()
    }

    /// A limiter for `spec` that counts what the log knows was sent (see the module docs):
    /// born spent when the log began, and no earlier than every logged request allows. `before`
    /// are the limits that were in force (they bound what the log dropped, if that can matter).
    pub fn replay(&self, spec: LimitSpec, before: &[LimitSpec], now: Instant) -> Gcra {
        let mut g = Gcra::spent(spec, self.began);
        // What was sent, newest first: (when, how many).
        let mut sent: Vec<(Instant, u32)> = self.times.iter().rev().map(|t| (*t, 1)).collect();
        if let Some(dropped) = self.dropped {
            let may_share_a_window = now.saturating_duration_since(dropped) < spec.per
                && self.times.len() < spec.requests as usize;
            if may_share_a_window {
                // Dropped instants inside the new window (and after the log began): at most what
                // the old limits allowed in that span, counted at the latest they can have been.
                let from = self
                    .began
                    .max(now.checked_sub(spec.per).unwrap_or(self.began));
                let span = dropped.saturating_duration_since(from) + Duration::from_nanos(1);
                match before.iter().map(|l| l.worst_case_in(span)).min() {
                    Some(n) => sent.push((dropped, u32::try_from(n).unwrap_or(u32::MAX))),
                    // Nothing bounded them: as before logs existed, spent from now.
                    None => g.tat = g.tat.max(now + g.tolerance + g.interval),
                }
            }
        }
        // The c-th newest request sent at t, and the m-th request from now on, may share a window
        // only if c + m ≤ N: the m-th (earliest at TAT - τ + (m - 1)·T) must be a paced span
        // (N - b + 1)·T ≥ W + jitter after t once c + m > N, so TAT ≥ t + span + τ - (N - c)·T.
        let n = u64::from(spec.requests.max(1));
        let span = g.interval * (spec.requests.max(1) - spec.effective_burst() + 1);
        let mut count = 0u64;
        for (t, k) in sent {
            count += u64::from(k);
            let ahead = u32::try_from(n.saturating_sub(count)).unwrap_or(u32::MAX);
            if let Some(tat) =
                (t + span + g.tolerance).checked_sub(g.interval.saturating_mul(ahead))
            {
                g.tat = g.tat.max(tat);
            }
            if count >= n {
                // Older ones were sent earlier still: they ask for less.
                break;
            }
        }
        g
    }
}

/// The largest number of `times` (sorted) inside any half-open window `[s, s + window)`.
pub fn max_in_any_window(times: &[Instant], window: Duration) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi].duration_since(times[lo]) >= window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const M: Duration = Duration::from_secs(60);

    #[test]
    fn the_interval_keeps_every_window_within_its_limit() {
        for (n, per, b) in [
            (2, S, 1),
            (2, S, 2),
            (30, M, 5),
            (20, 10 * M, 4),
            (120, M, 10),
            (600, 10 * M, 1),
            (5, S, 5),
            (1, 60 * M, 1),
        ] {
            let spec = LimitSpec::key(n, per).with_burst(b);
            assert!(
                spec.worst_case_per_window() <= u64::from(n),
                "{spec}: {}",
                spec.worst_case_per_window()
            );
            // Tight up to the margins: without them, exactly N.
            let cells = f64::from(n - b + 1);
            let relative = per.as_secs_f64() / cells / PACING_FACTOR;
            let absolute = (per + NETWORK_JITTER).as_secs_f64() / cells;
            assert!((spec.interval().as_secs_f64() - relative.max(absolute)).abs() < 1e-6);
        }
    }

    #[test]
    fn n_plus_one_consecutive_requests_span_the_window_and_the_network_jitter() {
        for (n, per, b) in [
            (2, S, 1),
            (10, S, 5),
            (1, S, 1),
            (30, M, 5),
            (1000, M, 1),
            (5, Duration::from_secs(3), 2),
        ] {
            let spec = LimitSpec::key(n, per).with_burst(b);
            // By the claim, requests i and i + N are at least (N - b + 1)·T apart.
            let span = spec.interval() * (n - b + 1);
            assert!(span >= per + NETWORK_JITTER, "{spec}: {span:?}");
            // (within the nanoseconds an interval is rounded to)
            assert!(span.as_secs_f64() * PACING_FACTOR >= per.as_secs_f64() - 1e-6);
        }
        // Strettch's 2 per second: 525 ms apart (the 3% alone gave 515 ms).
        assert_eq!(
            LimitSpec::per_second(2.0).interval(),
            Duration::from_millis(525)
        );
    }

    #[test]
    fn the_single_rate_form_paces_as_the_per_second_limit_it_is() {
        let jitter = NETWORK_JITTER.as_secs_f64();
        for rps in [2.0, 0.5, 10.0, 40.0, 0.4, 2.5] {
            // A whole rate is r per 1s, a fractional one 1 per 1/r.
            let absolute = if f64::fract(rps) == 0.0 {
                (1.0 + jitter) / rps
            } else {
                1.0 / rps + jitter
            };
            let expected = Duration::from_secs_f64(f64::max(1.0 / (rps * PACING_FACTOR), absolute));
            let new = pacing_period(rps);
            assert!(
                expected.abs_diff(new) < Duration::from_micros(1),
                "{rps}: {expected:?} {new:?}"
            );
            assert!((LimitSpec::per_second(rps).rate() - rps).abs() < 1e-9);
        }
        assert_eq!(
            LimitSpec::per_second(2.0).to_string(),
            "2 per 1s (Key, Fixed)"
        );
        assert!(pacing_period(f64::NAN) > Duration::from_secs(1));
        assert!(pacing_period(-3.0) > Duration::from_secs(1));
        assert!(pacing_period(f64::INFINITY) >= Duration::from_nanos(1));
    }

    #[test]
    fn validation_says_how_to_fix() {
        assert!(LimitSpec::key(120, M).with_burst(10).validate().is_ok());
        let e = LimitSpec::key(0, M).validate().unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
        let e = LimitSpec::key(5, Duration::from_millis(500))
            .validate()
            .unwrap_err();
        assert!(e.contains("1s to 24h"), "{e}");
        let e = LimitSpec::key(5, 25 * 60 * M).validate().unwrap_err();
        assert!(e.contains("1s to 24h"), "{e}");
        let e = LimitSpec::key(5, M).with_burst(6).validate().unwrap_err();
        assert!(e.contains("from 1 to 2 (half of requests 5)"), "{e}");
        // A burst of all the requests would pace at one request per window once spent.
        let e = LimitSpec::key(10, M).with_burst(10).validate().unwrap_err();
        assert!(e.contains("one request per 1m"), "{e}");
        assert!(LimitSpec::key(10, M).with_burst(5).validate().is_ok());
        assert!(LimitSpec::key(10, M).with_burst(6).validate().is_err());
        assert!(LimitSpec::key(1, M).validate().is_ok());
        assert!(LimitSpec::key(2, S).validate().is_ok());
        assert!(LimitSpec::key(2, S).with_burst(2).validate().is_err());
        assert!(LimitSpec::key(3, S).with_burst(0).validate().is_err());
        assert_eq!(format_duration(10 * M), "10m");
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
    }

    #[test]
    fn max_in_any_window_counts_sliding_windows() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let times = [at(0), at(100), at(999), at(1000), at(1500), at(1999)];
        assert_eq!(max_in_any_window(&times, S), 3);
        assert_eq!(max_in_any_window(&times, Duration::from_millis(1001)), 4);
        assert_eq!(max_in_any_window(&[], S), 0);
        assert_eq!(max_in_any_window(&times[..1], S), 1);
    }

    /// Permits under GCRA with the derived interval, requested as fast as allowed with idle gaps
    /// (so the burst refills), never put more than N in any window of W: counted over every
    /// sliding window, on tokio's paused clock.
    #[tokio::test(start_paused = true)]
    async fn no_sliding_window_holds_more_than_n_under_greedy_use_with_idle_gaps() {
        for spec in [
            LimitSpec::key(2, S),
            LimitSpec::key(2, S).with_burst(2),
            LimitSpec::key(30, M).with_burst(5),
            LimitSpec::key(20, 10 * M).with_burst(4),
            LimitSpec::key(10, M).with_burst(10),
        ] {
            let start = Instant::now();
            let mut g = Gcra::spent(spec, start);
            let mut times = Vec::new();
            while times.len() < 4 * spec.requests as usize + 1 {
                tokio::time::sleep_until(g.earliest()).await;
                let now = Instant::now();
                g.consume(now);
                times.push(now);
                // After every N permits, idle long enough for the whole burst to come back.
                if times.len() % spec.requests as usize == 0 {
                    tokio::time::sleep(spec.tolerance() + spec.interval() * 2).await;
                }
            }
            let worst = max_in_any_window(&times, spec.per);
            assert!(worst <= spec.requests as usize, "{spec}: {worst}");
            // And the burst was used: right after an idle gap, b permits at once.
            if spec.burst > 1 {
                assert!(
                    max_in_any_window(&times, Duration::from_nanos(1)) >= spec.burst as usize,
                    "{spec}"
                );
            }
            // Tight: the busiest window holds N (burst, then N - b paced within W).
            assert!(worst == spec.requests as usize, "{spec}: {worst}");
        }
    }

    /// The reason for all this: a plain `per_minute(N)` (burst N, interval W/N) would let almost
    /// 2N through in a minute, and the window count sees it.
    #[tokio::test(start_paused = true)]
    async fn a_naive_quota_is_caught_by_the_window_count() {
        let n = 30;
        let naive = LimitSpec::key(n, M).with_burst(n);
        // Burst N and interval W/N, as governor's per_minute(N) does (no N - b + 1, no margin).
        let mut g = Gcra {
            spec: naive,
            interval: M / n,
            tolerance: (M / n) * (n - 1),
            tat: Instant::now(),
        };
        let mut times = Vec::new();
        for _ in 0..(2 * n) {
            tokio::time::sleep_until(g.earliest()).await;
            let now = Instant::now();
            g.consume(now);
            times.push(now);
        }
        let worst = max_in_any_window(&times, M);
        assert!(worst > n as usize * 3 / 2, "{worst}");
    }

    #[test]
    fn respec_keeps_the_state_of_limits_that_stay() {
        let now = Instant::now();
        let a = LimitSpec::key(2, S);
        let b = LimitSpec::key(30, M).with_burst(5);
        let log = PermitLog::new(now);
        let mut limits = vec![Gcra::spent(a, now)];
        limits[0].tat = now; // used: no longer spent
        assert!(!respec(&mut limits, &[a, a], now, &log));
        assert!(respec(&mut limits, &[b, a], now, &log));
        assert_eq!(limits.len(), 2);
        let kept = limits.iter().find(|l| l.spec == a).unwrap();
        assert_eq!(kept.tat, now);
        // Nothing logged, the log began now: the new limit is born spent.
        let new = limits.iter().find(|l| l.spec == b).unwrap();
        assert_eq!(new.earliest(), now + b.interval());
    }

    /// Lets `spec`'s limiter out as fast as it allows until `until`, logging every permit.
    async fn drive(
        limits: &mut [Gcra],
        log: &mut PermitLog,
        times: &mut Vec<Instant>,
        until: Instant,
    ) {
        loop {
            let at = limits.iter().map(Gcra::earliest).max().unwrap();
            if at >= until {
                tokio::time::sleep_until(until).await;
                return;
            }
            tokio::time::sleep_until(at).await;
            let now = Instant::now();
            for l in limits.iter_mut() {
                l.consume(now);
            }
            log.record(now);
            times.push(now);
        }
    }

    /// The largest number of `times` in a window of `window` that holds one at or after `from`.
    fn max_in_a_window_reaching(times: &[Instant], window: Duration, from: Instant) -> usize {
        times
            .iter()
            .enumerate()
            .filter(|(_, t)| **t >= from)
            .map(|(j, t)| {
                times[..=j]
                    .iter()
                    .filter(|s| t.duration_since(**s) < window)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test(start_paused = true)]
    async fn a_limit_replayed_from_the_log_counts_what_its_window_already_holds() {
        // A key limit is replaced by a stricter one of a window that the log covers, and by one
        // of a longer window that it does not: neither lets a window of it exceed its N.
        for (a, b) in [
            (LimitSpec::key(60, M), LimitSpec::key(30, M)),
            (LimitSpec::key(2, S), LimitSpec::key(30, M)),
            (LimitSpec::key(10, S).with_burst(5), LimitSpec::key(4, S)),
        ] {
            let start = Instant::now();
            let mut log = PermitLog::new(start);
            log.set_bounds_for(&[a], 0, start);
            let mut limits = vec![Gcra::spent(a, start)];
            let mut times = Vec::new();
            drive(
                &mut limits,
                &mut log,
                &mut times,
                start + 2 * a.per + S * 10,
            )
            .await;
            let change = Instant::now();
            assert!(respec(&mut limits, &[a, b], change, &log));
            log.set_bounds_for(&[a, b], 0, change);
            drive(&mut limits, &mut log, &mut times, change + 3 * b.per).await;
            let worst = max_in_a_window_reaching(&times, b.per, change);
            assert!(worst <= b.requests as usize, "{a} then {b}: {worst}");
            // Yet not stalled: the new limit is used up to its N.
            assert!(worst + 1 >= b.requests as usize, "{a} then {b}: {worst}");
        }
    }

    #[test]
    fn the_permit_log_keeps_the_largest_n_within_the_longest_window() {
        let t0 = Instant::now();
        let mut log = PermitLog::new(t0);
        log.set_bounds(3, S, t0);
        for ms in [0, 100, 200, 300, 400] {
            log.record(t0 + Duration::from_millis(ms));
        }
        assert_eq!(log.len(), 3);
        log.record(t0 + Duration::from_millis(1350));
        // 0 and 100 went for the capacity; 200 and 300 are a second old by then.
        assert_eq!(log.len(), 2);
        assert_eq!(log.last(), Some(t0 + Duration::from_millis(1350)));
        log.set_bounds(usize::MAX, S, t0);
        assert_eq!(log.capacity, MAX_PERMIT_LOG);
    }
}
