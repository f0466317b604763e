//! Per-object exponential backoff on errors, reset on success (kaniop-style), with the delay
//! sequence from `backon`.

use std::collections::HashMap;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use parking_lot::Mutex;

/// Failure counts per object key.
#[derive(Default)]
pub struct Backoffs {
    failures: Mutex<HashMap<String, usize>>,
}

/// The delay before retry number `failures` (1-based), jittered, at most `cap`.
pub fn delay(failures: usize, initial: Duration, cap: Duration) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(initial)
        .with_max_delay(cap)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(failures.saturating_sub(1).min(64))
        .unwrap_or(cap)
        .min(cap)
}

impl Backoffs {
    /// Record a failure of `key` and return how long to wait before trying again.
    pub fn fail(&self, key: &str, initial: Duration, cap: Duration) -> Duration {
        let mut map = self.failures.lock();
        let n = map.entry(key.to_string()).or_insert(0);
        *n += 1;
        delay(*n, initial, cap)
    }

    /// Forget the failures of `key` after a success.
    pub fn reset(&self, key: &str) {
        self.failures.lock().remove(key);
    }

    pub fn failures(&self, key: &str) -> usize {
        self.failures.lock().get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let b = Backoffs::default();
        let (init, cap) = (Duration::from_secs(1), Duration::from_secs(300));
        let first = b.fail("a", init, cap);
        assert!(first >= init && first <= init * 2, "{first:?}");
        let mut last = first;
        for _ in 0..20 {
            last = b.fail("a", init, cap);
        }
        assert!(last <= cap && last >= Duration::from_secs(150), "{last:?}");
        b.reset("a");
        assert_eq!(b.failures("a"), 0);
        assert!(b.fail("a", init, cap) <= init * 2);
    }
}
