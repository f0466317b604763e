//! Prometheus metrics. Reconcile metrics reuse controller-runtime's names and labels so existing
//! dashboards work; cloud metrics count every external call.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: String,
}

/// controller-runtime labels its workqueue metrics with both `controller` and `name`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkqueueLabels {
    pub controller: String,
    pub name: String,
}

impl WorkqueueLabels {
    pub fn new(controller: &str) -> Self {
        Self {
            controller: controller.into(),
            name: controller.into(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub controller: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: String,
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloudRequestLabels {
    pub provider: String,
    pub operation: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabels {
    pub provider: String,
    /// The key's fingerprint, never the key.
    pub key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WindowLabels {
    pub provider: String,
    /// The key's fingerprint, never the key.
    pub key: String,
    /// The limit's window, e.g. `1m`.
    pub window: String,
}

/// A throttle queue's waiters of one priority (`write`, `urgent`, `routine`), over every key of a
/// provider: per key would multiply the series by keys for no dashboard that needs it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PriorityLabels {
    pub provider: String,
    pub priority: String,
}

/// Objects of a kind by a condition's reason (a PascalCase word of the code, never a message).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub kind: String,
    pub reason: String,
}

/// One ProviderConfig (names are cluster-wide, so the name alone says which).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderConfigLabels {
    pub provider_config: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaseLabels {
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

pub struct Metrics {
    pub reconcile_total: Family<ReconcileLabels, Counter>,
    pub reconcile_errors_total: Family<ErrorLabels, Counter>,
    pub reconcile_time_seconds: Family<ControllerLabels, Histogram>,
    pub workqueue_depth: Family<WorkqueueLabels, Gauge>,
    pub cloud_requests_total: Family<CloudRequestLabels, Counter>,
    pub cloud_request_seconds: Family<CloudRequestLabels, Histogram>,
    pub cloud_rate_limited_total: Family<KeyLabels, Counter>,
    pub cloud_throttle_wait_seconds: Family<KeyLabels, Histogram>,
    pub cloud_budget_remaining: Family<KeyLabels, Gauge>,
    pub cloud_adaptive_limit: Family<WindowLabels, Gauge>,
    pub managed_resources: Family<KindLabels, Gauge>,
    pub managed_resources_ready: Family<KindLabels, Gauge>,
    pub managed_resources_synced: Family<KindLabels, Gauge>,
    pub managed_resources_not_ready: Family<ReasonLabels, Gauge>,
    pub managed_resources_stalled: Family<ReasonLabels, Gauge>,
    pub throttle_queue_depth: Family<PriorityLabels, Gauge>,
    pub throttle_priority_wait_seconds: Family<PriorityLabels, Histogram>,
    pub leader: Family<LeaseLabels, Gauge>,
    pub usage_requests: Family<ProviderConfigLabels, Gauge>,
    pub usage_overage: Family<ProviderConfigLabels, Gauge>,
    pub usage_projects: Family<ProviderConfigLabels, Gauge>,
    /// The reasons last set per kind in the two by-reason families, so that a reason no object
    /// has any more is removed rather than left at its last count.
    reasons: Mutex<HashMap<String, [BTreeSet<String>; 2]>>,
    registry: Registry,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            reconcile_total: Family::default(),
            reconcile_errors_total: Family::default(),
            reconcile_time_seconds: Family::new_with_constructor(latency_histogram),
            workqueue_depth: Family::default(),
            cloud_requests_total: Family::default(),
            cloud_request_seconds: Family::new_with_constructor(latency_histogram),
            cloud_rate_limited_total: Family::default(),
            cloud_throttle_wait_seconds: Family::new_with_constructor(latency_histogram),
            cloud_budget_remaining: Family::default(),
            cloud_adaptive_limit: Family::default(),
            managed_resources: Family::default(),
            managed_resources_ready: Family::default(),
            managed_resources_synced: Family::default(),
            managed_resources_not_ready: Family::default(),
            managed_resources_stalled: Family::default(),
            throttle_queue_depth: Family::default(),
            throttle_priority_wait_seconds: Family::new_with_constructor(latency_histogram),
            leader: Family::default(),
            usage_requests: Family::default(),
            usage_overage: Family::default(),
            usage_projects: Family::default(),
            reasons: Mutex::default(),
            registry: Registry::default(),
        };
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            m.reconcile_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            m.reconcile_errors_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            m.reconcile_time_seconds.clone(),
        );
        registry.register(
            "workqueue_depth",
            "Reconciles in progress (busy workers; kube-runtime does not expose its waiting queue)",
            m.workqueue_depth.clone(),
        );
        registry.register(
            "stratus_cloud_requests",
            "Cloud API requests by provider, operation and status code",
            m.cloud_requests_total.clone(),
        );
        registry.register(
            "stratus_cloud_request_duration_seconds",
            "Cloud API request latency",
            m.cloud_request_seconds.clone(),
        );
        registry.register(
            "stratus_cloud_rate_limited",
            "429 answers received from the cloud API",
            m.cloud_rate_limited_total.clone(),
        );
        registry.register(
            "stratus_cloud_throttle_wait_seconds",
            "Time requests waited in the per-key throttle",
            m.cloud_throttle_wait_seconds.clone(),
        );
        registry.register(
            "stratus_cloud_budget_remaining",
            "Requests remaining in the current rate-limit window, as the API last reported",
            m.cloud_budget_remaining.clone(),
        );
        registry.register(
            "stratus_cloud_adaptive_limit",
            "Requests per window an adaptive limit of the key allows now, as learned from the API",
            m.cloud_adaptive_limit.clone(),
        );
        registry.register(
            "stratus_managed_resources",
            "Managed resources that exist, per kind",
            m.managed_resources.clone(),
        );
        registry.register(
            "stratus_managed_resources_ready",
            "Managed resources with Ready=True, per kind",
            m.managed_resources_ready.clone(),
        );
        registry.register(
            "stratus_managed_resources_synced",
            "Managed resources with Synced=True, per kind",
            m.managed_resources_synced.clone(),
        );
        registry.register(
            "stratus_managed_resources_not_ready",
            "Managed resources whose Ready is not True, per kind and Ready's reason",
            m.managed_resources_not_ready.clone(),
        );
        registry.register(
            "stratus_managed_resources_stalled",
            "Managed resources with Stalled=True (they need a human), per kind and reason",
            m.managed_resources_stalled.clone(),
        );
        registry.register(
            "stratus_cloud_throttle_queue_depth",
            "Requests waiting in the key throttles for a permit, per provider and priority",
            m.throttle_queue_depth.clone(),
        );
        registry.register(
            "stratus_cloud_throttle_priority_wait_seconds",
            "Time requests waited in the key throttles, per provider and priority",
            m.throttle_priority_wait_seconds.clone(),
        );
        registry.register(
            "leader_election_master_status",
            "1 while this replica holds the leader lease `name`, else 0 (controller-runtime's name)",
            m.leader.clone(),
        );
        registry.register(
            "stratus_cloud_usage_requests",
            "Requests the account made in the current billing period, as the cloud reports them",
            m.usage_requests.clone(),
        );
        registry.register(
            "stratus_cloud_usage_overage_requests",
            "Requests over the plan's allowance in the current billing period, as the cloud reports them",
            m.usage_overage.clone(),
        );
        registry.register(
            "stratus_cloud_usage_projects",
            "Projects the account holds, as the cloud reports them",
            m.usage_projects.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Whether this replica holds the lease `name`.
    pub fn set_leader(&self, name: &str, leading: bool) {
        self.leader
            .get_or_create(&LeaseLabels { name: name.into() })
            .set(i64::from(leading));
    }

    /// Set a kind's objects not Ready and Stalled, by reason; reasons gone since the last call
    /// are removed.
    pub fn set_reasons(
        &self,
        kind: &str,
        not_ready: &BTreeMap<String, usize>,
        stalled: &BTreeMap<String, usize>,
    ) {
        let mut last = self.reasons.lock().unwrap_or_else(|e| e.into_inner());
        let last = last.entry(kind.to_string()).or_default();
        let families = [
            &self.managed_resources_not_ready,
            &self.managed_resources_stalled,
        ];
        for ((family, now), before) in families.into_iter().zip([not_ready, stalled]).zip(last) {
            for gone in before.iter().filter(|r| !now.contains_key(*r)) {
                family.remove(&reason_labels(kind, gone));
            }
            for (reason, n) in now {
                family
                    .get_or_create(&reason_labels(kind, reason))
                    .set(i64::try_from(*n).unwrap_or(i64::MAX));
            }
            *before = now.keys().cloned().collect();
        }
    }

    /// A request joined (`+1`) or left (`-1`, granted or given up) a throttle queue.
    pub fn throttle_queued(&self, provider: &str, priority: &str, delta: i64) {
        self.throttle_queue_depth
            .get_or_create(&priority_labels(provider, priority))
            .inc_by(delta);
    }

    /// Record one cloud API call. `code` is the HTTP status, or a word such as `transport`.
    pub fn cloud_request(&self, provider: &str, operation: &str, code: &str, seconds: f64) {
        let labels = CloudRequestLabels {
            provider: provider.into(),
            operation: operation.into(),
            code: code.into(),
        };
        self.cloud_requests_total.get_or_create(&labels).inc();
        self.cloud_request_seconds
            .get_or_create(&labels)
            .observe(seconds);
    }

    pub fn rate_limited(&self, provider: &str, key_fingerprint: &str) {
        self.cloud_rate_limited_total
            .get_or_create(&key_labels(provider, key_fingerprint))
            .inc();
    }

    pub fn throttle_wait(
        &self,
        provider: &str,
        key_fingerprint: &str,
        priority: &str,
        seconds: f64,
    ) {
        self.cloud_throttle_wait_seconds
            .get_or_create(&key_labels(provider, key_fingerprint))
            .observe(seconds);
        self.throttle_priority_wait_seconds
            .get_or_create(&priority_labels(provider, priority))
            .observe(seconds);
    }

    pub fn budget_remaining(&self, provider: &str, key_fingerprint: &str, remaining: i64) {
        self.cloud_budget_remaining
            .get_or_create(&key_labels(provider, key_fingerprint))
            .set(remaining);
    }

    /// The N an adaptive limit of the key learned, for its window.
    pub fn adaptive_limit(
        &self,
        provider: &str,
        key_fingerprint: &str,
        window: std::time::Duration,
        requests: u32,
    ) {
        self.cloud_adaptive_limit
            .get_or_create(&window_labels(provider, key_fingerprint, window))
            .set(i64::from(requests));
    }

    /// The key's adaptive limit of `window` is gone.
    pub fn forget_adaptive_limit(
        &self,
        provider: &str,
        key_fingerprint: &str,
        window: std::time::Duration,
    ) {
        self.cloud_adaptive_limit
            .remove(&window_labels(provider, key_fingerprint, window));
    }

    /// Drop every series of a key that this process no longer uses, so rotated keys do not pile
    /// up in memory and in the exposition.
    pub fn forget_key(&self, provider: &str, key_fingerprint: &str) {
        let labels = key_labels(provider, key_fingerprint);
        self.cloud_rate_limited_total.remove(&labels);
        self.cloud_throttle_wait_seconds.remove(&labels);
        self.cloud_budget_remaining.remove(&labels);
    }

    /// Set a ProviderConfig's usage gauges; a figure the cloud did not report has no series.
    pub fn set_usage(&self, provider_config: &str, usage: &crate::api::provider_config::Usage) {
        let labels = ProviderConfigLabels {
            provider_config: provider_config.into(),
        };
        for (family, value) in [
            (&self.usage_requests, usage.requests),
            (&self.usage_overage, usage.overage),
            (&self.usage_projects, usage.projects),
        ] {
            match value {
                Some(v) => {
                    family
                        .get_or_create(&labels)
                        .set(i64::try_from(v).unwrap_or(i64::MAX));
                }
                None => {
                    family.remove(&labels);
                }
            }
        }
    }

    /// Drop a ProviderConfig's usage series (it is no longer in use).
    pub fn forget_usage(&self, provider_config: &str) {
        let labels = ProviderConfigLabels {
            provider_config: provider_config.into(),
        };
        self.usage_requests.remove(&labels);
        self.usage_overage.remove(&labels);
        self.usage_projects.remove(&labels);
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

fn reason_labels(kind: &str, reason: &str) -> ReasonLabels {
    ReasonLabels {
        kind: kind.into(),
        reason: reason.into(),
    }
}

fn priority_labels(provider: &str, priority: &str) -> PriorityLabels {
    PriorityLabels {
        provider: provider.into(),
        priority: priority.into(),
    }
}

fn window_labels(provider: &str, key: &str, window: std::time::Duration) -> WindowLabels {
    WindowLabels {
        provider: provider.into(),
        key: key.into(),
        window: crate::cloud::throttle::format_duration(window),
    }
}

fn key_labels(provider: &str, key: &str) -> KeyLabels {
    KeyLabels {
        provider: provider.into(),
        key: key.into(),
    }
}

/// A fresh registry, apart from the process's, with one series in every family: its exposition
/// names every metric and label the operator exports, so the chart's dashboard and alerts can be
/// checked against it (tests/chart_monitoring.rs) instead of against a list that could drift. A
/// family added without a series here fails `sample_has_a_series_in_every_family`.
#[doc(hidden)]
pub fn sample() -> Metrics {
    let m = Metrics::new();
    let c = "strettch/compute";
    for result in ["success", "error"] {
        m.reconcile_total
            .get_or_create(&ReconcileLabels {
                controller: c.into(),
                result: result.into(),
            })
            .inc();
    }
    m.reconcile_errors_total
        .get_or_create(&ErrorLabels {
            controller: c.into(),
            error: "kube".into(),
        })
        .inc();
    m.reconcile_time_seconds
        .get_or_create(&ControllerLabels {
            controller: c.into(),
        })
        .observe(0.1);
    m.workqueue_depth
        .get_or_create(&WorkqueueLabels::new(c))
        .set(0);
    m.cloud_request("strettch", "computes.list", "429", 0.01);
    m.rate_limited("strettch", "fp");
    m.throttle_wait("strettch", "fp", "routine", 0.5);
    m.budget_remaining("strettch", "fp", 10);
    m.adaptive_limit("strettch", "fp", std::time::Duration::from_secs(60), 100);
    m.throttle_queued("strettch", "routine", 1);
    let kind = KindLabels { kind: c.into() };
    m.managed_resources.get_or_create(&kind).set(2);
    m.managed_resources_ready.get_or_create(&kind).set(1);
    m.managed_resources_synced.get_or_create(&kind).set(1);
    m.set_reasons(
        c,
        &BTreeMap::from([("Creating".to_string(), 1)]),
        &BTreeMap::from([("UnsupportedChange".to_string(), 1)]),
    );
    m.set_leader("stratus-leader", true);
    m.set_usage(
        "default",
        &crate::api::provider_config::Usage {
            requests: Some(1),
            overage: Some(0),
            projects: Some(1),
            ..Default::default()
        },
    );
    m
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_uses_controller_runtime_names() {
        let m = global();
        m.reconcile_total
            .get_or_create(&ReconcileLabels {
                controller: "compute".into(),
                result: "success".into(),
            })
            .inc();
        m.cloud_request("strettch", "computes.list", "200", 0.01);
        m.set_leader("stratus-leader", true);
        let text = m.encode();
        assert!(
            text.contains("leader_election_master_status{name=\"stratus-leader\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "controller_runtime_reconcile_total{controller=\"compute\",result=\"success\"}"
            ),
            "{text}"
        );
        assert!(text.contains("stratus_cloud_requests_total{provider=\"strettch\",operation=\"computes.list\",code=\"200\"}"), "{text}");
    }

    #[test]
    fn sample_has_a_series_in_every_family() {
        let text = sample().encode();
        let families: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .collect();
        assert!(families.len() >= 18, "{text}");
        for (name, kind) in families {
            let series = match kind {
                "counter" => format!("{name}_total{{"),
                "histogram" => format!("{name}_count{{"),
                _ => format!("{name}{{"),
            };
            assert!(
                text.lines().any(|l| l.starts_with(&series)),
                "no series of {name} in the sample: add one to metrics::sample\n{text}"
            );
        }
    }

    #[test]
    fn a_reason_no_object_has_any_more_is_removed() {
        let m = Metrics::new();
        let reasons = |pairs: &[(&str, usize)]| -> BTreeMap<String, usize> {
            pairs.iter().map(|(r, n)| (r.to_string(), *n)).collect()
        };
        m.set_reasons(
            "vertra/application",
            &reasons(&[("Creating", 2), ("BuildFailed", 1)]),
            &reasons(&[("BuildFailed", 1)]),
        );
        m.set_reasons(
            "strettch/compute",
            &reasons(&[("Creating", 1)]),
            &reasons(&[]),
        );
        m.set_reasons(
            "vertra/application",
            &reasons(&[("Creating", 1)]),
            &reasons(&[]),
        );
        let text = m.encode();
        assert!(
            text.contains("stratus_managed_resources_not_ready{kind=\"vertra/application\",reason=\"Creating\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("stratus_managed_resources_not_ready{kind=\"strettch/compute\",reason=\"Creating\"} 1"),
            "{text}"
        );
        assert!(!text.contains("BuildFailed"), "{text}");
    }

    #[test]
    fn the_throttle_queue_depth_goes_back_to_zero_when_every_waiter_left() {
        let m = Metrics::new();
        m.throttle_queued("vertra", "write", 1);
        m.throttle_queued("vertra", "write", 1);
        m.throttle_queued("vertra", "write", -1);
        m.throttle_queued("vertra", "write", -1);
        let text = m.encode();
        assert!(
            text.contains(
                "stratus_cloud_throttle_queue_depth{provider=\"vertra\",priority=\"write\"} 0"
            ),
            "{text}"
        );
    }
}
