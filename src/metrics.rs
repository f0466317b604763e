//! Prometheus metrics. Reconcile metrics reuse controller-runtime's names and labels so existing
//! dashboards work; cloud metrics count every external call.

use std::sync::OnceLock;

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
    pub leader: Family<LeaseLabels, Gauge>,
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
            leader: Family::default(),
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
            "leader_election_master_status",
            "1 while this replica holds the leader lease `name`, else 0 (controller-runtime's name)",
            m.leader.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Whether this replica holds the lease `name`.
    pub fn set_leader(&self, name: &str, leading: bool) {
        self.leader
            .get_or_create(&LeaseLabels { name: name.into() })
            .set(i64::from(leading));
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

    pub fn throttle_wait(&self, provider: &str, key_fingerprint: &str, seconds: f64) {
        self.cloud_throttle_wait_seconds
            .get_or_create(&key_labels(provider, key_fingerprint))
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

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
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
}
