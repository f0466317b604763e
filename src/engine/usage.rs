//! Account usage, for clouds that report it (CloudAPI's `/v1/usage`): read slowly, at routine
//! priority through the key's throttle, for each ProviderConfig some object uses, and written to
//! the ProviderConfig's `status.usage` and to the `stratus_cloud_usage_*` gauges.
//!
//! Slowly, because usage is for people and dashboards: every read spends the same budget as the
//! objects' work, and a month's request count does not need minute resolution.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use tracing::{debug, warn};

use super::Providers;
use super::reconciler::FIELD_MANAGER;
use crate::api::provider_config::{ProviderConfig, Usage};
use crate::metrics;

/// How often each ProviderConfig's usage is read when nothing says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// Reads and reports usage; one per operator.
pub struct UsageReporter {
    kube: kube::Client,
    providers: Arc<Providers>,
    interval: Duration,
    /// When each ProviderConfig was last read (answered or not).
    last: BTreeMap<String, Instant>,
    /// Whose gauges are set, so a ProviderConfig no longer in use loses them.
    reported: BTreeSet<String>,
}

impl UsageReporter {
    pub fn new(kube: kube::Client, providers: Arc<Providers>, interval: Duration) -> Self {
        Self {
            kube,
            providers,
            interval,
            last: BTreeMap::new(),
            reported: BTreeSet::new(),
        }
    }

    /// Report forever: look every few seconds for a ProviderConfig whose interval has passed.
    pub async fn run(mut self) {
        let tick = (self.interval / 4).clamp(Duration::from_millis(500), Duration::from_secs(30));
        loop {
            self.report_due().await;
            tokio::time::sleep(tick).await;
        }
    }

    /// Read and write the usage of each ProviderConfig in use whose interval has passed.
    pub async fn report_due(&mut self) {
        let probes = self.providers.usage_probes();
        let in_use: BTreeSet<String> = probes.iter().map(|(n, _)| n.clone()).collect();
        for gone in self
            .reported
            .difference(&in_use)
            .cloned()
            .collect::<Vec<_>>()
        {
            metrics::global().forget_usage(&gone);
            self.reported.remove(&gone);
        }
        self.last.retain(|name, _| in_use.contains(name));
        for (name, probe) in probes {
            if self
                .last
                .get(&name)
                .is_some_and(|at| at.elapsed() < self.interval)
            {
                continue;
            }
            self.last.insert(name.clone(), Instant::now());
            match probe().await {
                Ok(usage) => {
                    let usage = stamped(usage, jiff::Timestamp::now());
                    metrics::global().set_usage(&name, &usage);
                    self.reported.insert(name.clone());
                    if let Err(e) = self.write(&name, &usage).await {
                        warn!(provider_config = %name, error = %e, "could not write status.usage");
                    }
                }
                // A key without the scope, or a cloud that is down: the objects' work is what
                // matters; the next interval tries again.
                Err(e) => {
                    warn!(provider_config = %name, error = %e, "could not read the account's usage")
                }
            }
        }
    }

    async fn write(&self, name: &str, usage: &Usage) -> Result<(), kube::Error> {
        let api: Api<ProviderConfig> = Api::all(self.kube.clone());
        let patch = json!({
            "apiVersion": "stratus.dev/v1alpha1",
            "kind": "ProviderConfig",
            "status": { "usage": usage },
        });
        api.patch_status(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        debug!(provider_config = %name, "status.usage written");
        Ok(())
    }
}

/// `usage` as read at `now`, with what a cloud may send that a status must not carry cut away:
/// a period is at most 128 characters of printable ASCII (dates and times; no control or
/// direction-changing characters), and a count is at most what the status's int64 holds.
pub fn stamped(mut usage: Usage, now: jiff::Timestamp) -> Usage {
    usage.period = usage.period.filter(|p| {
        p.len() <= 128 && !p.is_empty() && p.chars().all(|c| c.is_ascii_graphic() || c == ' ')
    });
    let most = i64::MAX as u64;
    for count in [&mut usage.requests, &mut usage.overage, &mut usage.projects] {
        *count = count.map(|n| n.min(most));
    }
    usage.observed_at = Some(format!("{:.0}", now));
    usage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_is_stamped_and_an_unprintable_or_huge_period_is_dropped() {
        let now: jiff::Timestamp = "2026-12-04T10:00:00.25Z".parse().unwrap();
        let u = stamped(
            Usage {
                period: Some("2026-12".into()),
                requests: Some(7),
                ..Default::default()
            },
            now,
        );
        assert_eq!(u.observed_at.as_deref(), Some("2026-12-04T10:00:00Z"));
        assert_eq!(
            (u.period.as_deref(), u.requests),
            (Some("2026-12"), Some(7))
        );
        for bad in [
            "x".repeat(129),
            "a\nb".into(),
            String::new(),
            "2026-12\u{202e}".into(),
        ] {
            let u = stamped(
                Usage {
                    period: Some(bad),
                    ..Default::default()
                },
                now,
            );
            assert_eq!(u.period, None);
        }
    }

    #[test]
    fn a_count_beyond_what_the_status_holds_is_clamped_not_refused() {
        let now: jiff::Timestamp = "2026-12-04T10:00:00Z".parse().unwrap();
        let u = stamped(
            Usage {
                requests: Some(u64::MAX),
                overage: Some(3),
                ..Default::default()
            },
            now,
        );
        assert_eq!(u.requests, Some(i64::MAX as u64));
        assert_eq!(u.overage, Some(3));
        let ok = stamped(
            Usage {
                period: Some("2026-12-01T00:00:00.000+00:00/2026-12-31T23:59:59.999+00:00".into()),
                ..Default::default()
            },
            now,
        );
        assert!(ok.period.is_some());
    }
}
