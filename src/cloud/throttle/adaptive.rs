//! Limits whose N is learned from the server, for clouds that do not publish theirs (Vertra's
//! per-minute and per-day budgets depend on the account's plan).
//!
//! An [`AdaptiveLimit`] starts at a conservative `start` and moves within `min..=max`:
//!
//! * a 429 for its window that reports the limit (Vertra's `details.limit`) sets N to it; one that
//!   does not halves N, never below `min` (the key is held for the answer's retry hint as well);
//! * a limit reported for its window by the rate-limit headers of any answer sets N to it;
//! * after each full window without a 429 in which requests were let out, N grows by 10% (at
//!   least 1), up to the last reported limit, else up to `max`.
//!
//! A reported limit is believed above `start` and below `min` (it is the server's own count), but
//! never above `max`: a figure in another unit or over another window than the one expected must
//! not open the throttle wide. Every change of N makes a new limiter that replays what was sent in
//! its window ([`pace`](super::pace)), so lowering N never lets the window hold more than the new
//! N.

use std::time::Duration;

use tokio::time::Instant;

use super::pace::LimitSpec;

/// A Key limit whose N is learned (see the module docs): at most N requests per `per`, N
/// starting at `start` and staying within `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AdaptiveLimit {
    pub per: Duration,
    pub start: u32,
    pub min: u32,
    pub max: u32,
}

impl AdaptiveLimit {
    /// `per` from 1s to 24h; `max ≥ 1`, `min` within `1..=max`, `start` within `min..=max` (values
    /// outside are brought in).
    pub fn new(per: Duration, start: u32, min: u32, max: u32) -> Self {
        AdaptiveLimit {
            per,
            start,
            min,
            max,
        }
        .normalized()
    }

    pub(crate) fn normalized(self) -> Self {
        let per = self.per.clamp(super::MIN_PER, super::MAX_PER);
        let max = self.max.max(1);
        let min = self.min.clamp(1, max);
        AdaptiveLimit {
            per,
            start: self.start.clamp(min, max),
            min,
            max,
        }
    }

    /// Of two users' adaptive limits of one window, the lowest of each figure wins.
    pub(crate) fn merge(self, other: AdaptiveLimit) -> Self {
        AdaptiveLimit {
            per: self.per,
            start: self.start.min(other.start),
            min: self.min.min(other.min),
            max: self.max.min(other.max),
        }
        .normalized()
    }
}

impl std::fmt::Display for AdaptiveLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "adaptive {}..={} (from {}) per {}",
            self.min,
            self.max,
            self.start,
            super::format_duration(self.per)
        )
    }
}

/// The learned state of one adaptive limit.
#[derive(Debug, Clone)]
pub(crate) struct Learned {
    pub bounds: AdaptiveLimit,
    /// N now.
    pub n: u32,
    /// The limit the server last reported for this window, if any: recovery stops there.
    pub reported: Option<u32>,
    /// When the current window without a 429 began.
    clean_since: Instant,
    /// Whether N moved from `start` (reported, 429, recovery): then it stays when the bounds do.
    moved: bool,
}

impl Learned {
    pub fn new(bounds: AdaptiveLimit, now: Instant) -> Self {
        Learned {
            bounds,
            n: bounds.start,
            reported: None,
            clean_since: now,
            moved: false,
        }
    }

    pub fn per(&self) -> Duration {
        self.bounds.per
    }

    /// The limit as it stands.
    pub fn spec(&self) -> LimitSpec {
        LimitSpec::key(self.n, self.bounds.per)
    }

    /// New bounds (the users of the key changed): what was learned stays, within them; N that
    /// learned nothing yet starts again at the new `start`.
    pub fn rebound(&mut self, bounds: AdaptiveLimit) {
        self.bounds = bounds;
        self.reported = self.reported.map(|r| r.min(bounds.max));
        self.n = if self.moved {
            self.n.clamp(1, bounds.max)
        } else {
            bounds.start
        };
    }

    fn ceiling(&self) -> u32 {
        self.reported
            .unwrap_or(self.bounds.max)
            .min(self.bounds.max)
    }

    /// The server reported its limit for this window: N is that (at most `max`). Whether N
    /// changed.
    pub fn reported(&mut self, limit: u32, now: Instant) -> bool {
        let limit = limit.clamp(1, self.bounds.max);
        self.reported = Some(limit);
        self.moved = true;
        if self.n == limit {
            return false;
        }
        self.n = limit;
        self.clean_since = now;
        true
    }

    /// A 429 for this window: the reported limit if there is one, else half (not below `min`).
    pub fn limited(&mut self, reported: Option<u32>, now: Instant) -> bool {
        self.clean_since = now;
        self.moved = true;
        if let Some(limit) = reported {
            return self.reported(limit, now);
        }
        let halved = (self.n / 2).max(self.bounds.min).min(self.n);
        let changed = halved != self.n;
        self.n = halved;
        changed
    }

    /// A request was let out at `now`: a full window since the last change or 429 raises N by
    /// 10% (at least 1), up to the ceiling. Whether N changed.
    pub fn recover(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.clean_since) < self.bounds.per {
            return false;
        }
        self.clean_since = now;
        let ceiling = self.ceiling();
        if self.n >= ceiling {
            return false;
        }
        self.n = self.n.saturating_add((self.n / 10).max(1)).min(ceiling);
        self.moved = true;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Duration = Duration::from_secs(60);

    #[test]
    fn bounds_are_brought_in_and_merged_lowest_wins() {
        let a = AdaptiveLimit::new(M, 500, 0, 300);
        assert_eq!((a.start, a.min, a.max), (300, 1, 300));
        let b = AdaptiveLimit::new(M, 30, 10, 480);
        let m = a.merge(b);
        assert_eq!((m.start, m.min, m.max), (30, 1, 300));
        assert_eq!(
            AdaptiveLimit::new(Duration::ZERO, 1, 1, 1).per,
            super::super::MIN_PER
        );
    }

    #[test]
    fn n_halves_learns_and_recovers_by_a_tenth_per_clean_window() {
        let t0 = Instant::now();
        let mut l = Learned::new(AdaptiveLimit::new(M, 60, 10, 200), t0);
        assert!(l.limited(None, t0));
        assert_eq!(l.n, 30);
        l.limited(None, t0);
        l.limited(None, t0);
        assert_eq!(l.n, 10, "never below min");
        assert!(!l.recover(t0 + M / 2), "not a full window yet");
        assert!(l.recover(t0 + M));
        assert_eq!(l.n, 11);
        assert!(!l.recover(t0 + M + M / 2));
        // The server's word is believed below min, never above max.
        assert!(l.limited(Some(5), t0 + 2 * M));
        assert_eq!(l.n, 5);
        assert!(l.reported(1000, t0 + 2 * M));
        assert_eq!(l.n, 200);
        // Recovery stops at the reported limit.
        l.reported(120, t0 + 3 * M);
        l.limited(None, t0 + 3 * M);
        assert_eq!(l.n, 60);
        let mut at = t0 + 3 * M;
        for _ in 0..20 {
            at += M;
            l.recover(at);
        }
        assert_eq!(l.n, 120);
    }
}
