//! Bounded, jittered exponential retries for cloud calls.
//!
//! Only errors whose class is [`ErrorClass::Retryable`](super::ErrorClass::Retryable) are retried:
//! 429, 5xx, timeouts, dropped connections and garbled answers. A 4xx other than 429 (and 408) is
//! returned at once. Every retry of a request goes back through the per-key throttle (the caller's
//! closure acquires it), so retries can never exceed the key's rate.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use super::error::CloudError;

/// The longest a `Retry-After` (or rate-limit reset) is allowed to stretch one retry delay.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How often and how patiently to retry a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first one (0 is treated as 1).
    pub max_attempts: u32,
    /// Delay before the first retry.
    pub initial: Duration,
    /// Cap on any single delay.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial: Duration::from_millis(200),
            max: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn no_retries() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The delays to wait before the 2nd, 3rd, ... attempt: backon's jittered exponential sequence
    /// (factor 2, each delay in `[d, 2d)`), capped at `max`, `max_attempts - 1` items long.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + 'static {
        let max = self.max.max(self.initial);
        let retries = self.max_attempts.max(1) as usize - 1;
        ExponentialBuilder::default()
            .with_min_delay(self.initial)
            .with_max_delay(max)
            .with_factor(2.0)
            .with_max_times(retries)
            .with_jitter()
            .build()
            .map(move |d| d.min(max))
    }

    /// How long to wait before retrying after `error`, given the backoff's next delay: the API's
    /// `Retry-After` (or reset) wins when it asks for longer, up to [`MAX_RETRY_AFTER`].
    pub fn wait_after(error: &CloudError, backoff: Duration) -> Duration {
        match error {
            CloudError::Api {
                retry_after: Some(after),
                ..
            } => backoff.max((*after).min(MAX_RETRY_AFTER)),
            _ => backoff,
        }
    }

    /// Run `op` (given the 1-based attempt number) until it succeeds, fails with an error that is
    /// not retryable, or the attempts are used up; the last error is returned.
    pub async fn retry<T, F, Fut>(&self, mut op: F) -> Result<T, CloudError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        let mut delays = self.delays();
        let mut attempt = 1u32;
        loop {
            match op(attempt).await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() => match delays.next() {
                    Some(backoff) => {
                        let wait = Self::wait_after(&e, backoff);
                        tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, error = %e, "retrying cloud call");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn api(status: u16, code: &str, retry_after: Option<Duration>) -> CloudError {
        CloudError::Api {
            status,
            code: code.into(),
            message: "m".into(),
            request_id: None,
            retry_after,
            class: crate::cloud::error::classify_status(status),
        }
    }

    #[test]
    fn delays_are_bounded_jittered_and_growing() {
        let p = RetryPolicy::default();
        let d: Vec<_> = p.delays().collect();
        assert_eq!(d.len(), 4, "5 attempts = 4 retries");
        let base = [200u64, 400, 800, 1600];
        for (got, base) in d.iter().zip(base) {
            let base = Duration::from_millis(base);
            assert!(*got >= base && *got < base * 2, "{got:?} vs {base:?}");
        }
        let capped = RetryPolicy {
            max_attempts: 12,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert!(capped.delays().all(|d| d <= Duration::from_secs(1)));
        assert_eq!(capped.delays().count(), 11);
        assert_eq!(RetryPolicy::no_retries().delays().count(), 0);
        let zero = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(zero.delays().count(), 0);
    }

    #[test]
    fn retry_after_stretches_the_wait() {
        let b = Duration::from_millis(200);
        assert_eq!(
            RetryPolicy::wait_after(
                &api(429, "TOO_MANY_REQUESTS", Some(Duration::from_secs(2))),
                b
            ),
            Duration::from_secs(2)
        );
        assert_eq!(
            RetryPolicy::wait_after(&api(503, "X", Some(Duration::from_millis(10))), b),
            b
        );
        assert_eq!(
            RetryPolicy::wait_after(
                &api(429, "TOO_MANY_REQUESTS", Some(Duration::from_secs(3600))),
                b
            ),
            MAX_RETRY_AFTER
        );
    }

    fn quick() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
            ..RetryPolicy::default()
        }
    }

    #[tokio::test]
    async fn retries_retryable_errors_up_to_the_bound() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = quick()
            .retry(|_| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(api(503, "INTERNAL_SERVER_ERROR", None))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 5);

        let calls = AtomicU32::new(0);
        let r = quick()
            .retry(|attempt| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if attempt < 3 {
                        Err(CloudError::Transport {
                            operation: "t".into(),
                            message: "reset".into(),
                        })
                    } else {
                        Ok(attempt)
                    }
                }
            })
            .await;
        assert_eq!(r.unwrap(), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn never_retries_terminal_or_not_found() {
        for e in [
            api(400, "VALIDATION_ERROR", None),
            api(401, "UNAUTHORIZED", None),
            api(403, "FORBIDDEN", None),
            api(404, "RESOURCE_NOT_FOUND", None),
            api(409, "CONFLICT", None),
            api(422, "UNPROCESSABLE_ENTITY", None),
        ] {
            let calls = AtomicU32::new(0);
            let r: Result<(), _> = quick()
                .retry(|_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let e = e.clone();
                    async move { Err(e) }
                })
                .await;
            assert!(r.is_err());
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{e}");
        }
    }
}
