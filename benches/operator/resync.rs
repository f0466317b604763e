//! Steady state for any provider: with N objects already Ready in a namespace, a fresh operator
//! with a short `--resync-interval` in one `--observe-mode`, and the cloud calls counted over
//! whole resync intervals. Section 2 does the same for Strettch with its own route names; this
//! counts whatever the provider's sandbox reports by route, so each provider's section can say
//! what a resync costs it in bulk and per resource.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kube::Api;
use kube::api::{ApiResource, DynamicObject, ListParams};

use crate::Options;
use crate::cluster::{self, Cluster};
use crate::process::Operator;
use crate::report::{Report, table};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Bulk,
    PerResource,
}

impl Mode {
    pub fn flag(self) -> &'static str {
        match self {
            Mode::Bulk => "bulk",
            Mode::PerResource => "per-resource",
        }
    }
}

/// What one mode's window saw.
pub struct Count {
    pub provider: &'static str,
    pub objects: usize,
    pub mode: Mode,
    pub resync: Duration,
    /// Whole resync intervals in the window.
    pub resyncs: u32,
    /// Calls by route in the window.
    pub routes: BTreeMap<String, u64>,
    pub reconciles: u64,
    pub cpu: Duration,
    /// The most calls the binding limit allows in one resync interval.
    pub budget_per_resync: f64,
    /// Bulk only: every object of the touched kind changed once, after the window.
    pub touch: Option<Touch>,
}

/// A change to every object of one kind (a `stratus.dev/` annotation, so nothing to write to the
/// cloud): the reconciles and CPU until each has been reconciled once more.
pub struct Touch {
    pub kind: String,
    pub objects: u64,
    pub reconciles: u64,
    pub cpu: Duration,
    pub calls: u64,
}

impl Touch {
    pub fn cpu_per_reconcile_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.reconciles.max(1) as f64
    }
}

impl Count {
    pub fn calls(&self) -> u64 {
        self.routes.values().sum()
    }
    /// CPU per reconcile in the window: a resync's reconciles find nothing to do.
    pub fn cpu_per_reconcile_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.reconciles.max(1) as f64
    }
    pub fn per_resync(&self) -> f64 {
        self.calls() as f64 / self.resyncs as f64
    }
}

/// Starts an operator on `namespace` in `mode`, waits for its first pass over `objects`
/// (that many reconciles), skips to half-way between the first and the second round of
/// (±10% jittered) resyncs, and counts `calls()` over `resyncs` whole intervals. In bulk mode
/// it then changes every object of kind `touched` once (see [`Touch`]).
#[allow(clippy::too_many_arguments)]
pub async fn count(
    cluster: &Cluster,
    opts: &Options,
    namespace: &str,
    provider: &'static str,
    objects: usize,
    mode: Mode,
    resync: Duration,
    budget_per_resync: f64,
    touched: &ApiResource,
    calls: impl Fn() -> BTreeMap<String, u64>,
) -> Count {
    let resync_flag = format!("{}ms", resync.as_millis());
    let mut op = Operator::start(
        &cluster.kubeconfig,
        namespace,
        &[
            "--resync-interval",
            &resync_flag,
            "--observe-mode",
            mode.flag(),
        ],
        &opts.logs,
        &format!(
            "resync-{}-{objects}-{}",
            provider
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>(),
            mode.flag()
        ),
    );
    let started = Instant::now();
    let timeout = Duration::from_secs(600);
    while op.reconciles().await < objects as u64 {
        assert!(
            op.is_running(),
            "the operator exited; see {}",
            op.log.display()
        );
        assert!(
            started.elapsed() < timeout,
            "{provider}: the first pass over {objects} objects did not finish; see {}",
            op.log.display()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(resync.mul_f64(1.5)).await;
    let resyncs = opts.window_resyncs;
    let before = calls();
    let reconciles_before = op.reconciles().await;
    let cpu_before = op.cpu();
    tokio::time::sleep(resync * resyncs).await;
    let after = calls();
    let reconciles = op.reconciles().await.saturating_sub(reconciles_before);
    let cpu = op.cpu().saturating_sub(cpu_before);
    assert!(
        op.is_running(),
        "the operator exited during the window; see {}",
        op.log.display()
    );
    let touch = match mode {
        Mode::Bulk => Some(touch(cluster, namespace, touched, &mut op, &calls).await),
        Mode::PerResource => None,
    };
    op.kill();
    let routes = after
        .into_iter()
        .map(|(route, n)| {
            let d = n.saturating_sub(before.get(&route).copied().unwrap_or(0));
            (route, d)
        })
        .filter(|(_, d)| *d > 0)
        .collect();
    Count {
        provider,
        objects,
        mode,
        resync,
        resyncs,
        routes,
        reconciles,
        cpu,
        budget_per_resync,
        touch,
    }
}

/// Patch a `stratus.dev/` annotation on every object of `kind` in `namespace` and follow the
/// operator until it has reconciled as many more times. Resyncs falling in the pass are counted
/// too; they are no-op reconciles as well.
async fn touch(
    cluster: &Cluster,
    namespace: &str,
    kind: &ApiResource,
    op: &mut Operator,
    calls: &impl Fn() -> BTreeMap<String, u64>,
) -> Touch {
    let api: Api<DynamicObject> = Api::namespaced_with(cluster.client.clone(), namespace, kind);
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .expect("listing the objects to touch")
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect();
    let n = names.len() as u64;
    let calls_before: u64 = calls().values().sum();
    let r0 = op.reconciles().await;
    let c0 = op.cpu();
    cluster::touch(&api, names, "1", 32).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    let reconciles = loop {
        let r = op.reconciles().await.saturating_sub(r0);
        if r >= n {
            break r;
        }
        assert!(
            op.is_running() && Instant::now() < deadline,
            "{} of {n} touched objects reconciled; see {}",
            r,
            op.log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    Touch {
        kind: kind.kind.clone(),
        objects: n,
        reconciles,
        cpu: op.cpu().saturating_sub(c0),
        calls: calls().values().sum::<u64>().saturating_sub(calls_before),
    }
}

/// Rows for results.csv and one Markdown table comparing the modes of every provider.
pub fn write(report: &mut Report, section: &'static str, counts: &[Count]) -> String {
    let mut rows = Vec::new();
    for c in counts {
        let case = format!("{} N={} {}", c.provider, c.objects, c.mode.flag());
        report.row(
            section,
            &case,
            "calls_per_resync",
            format!("{:.1}", c.per_resync()),
            "requests",
        );
        report.row(
            section,
            &case,
            "reconciles_per_resync",
            format!("{:.1}", c.reconciles as f64 / c.resyncs as f64),
            "reconciles",
        );
        report.row(
            section,
            &case,
            "operator_cpu_per_resync",
            format!("{:.3}", c.cpu.as_secs_f64() / c.resyncs as f64),
            "s",
        );
        report.row(
            section,
            &case,
            "cpu_per_noop_reconcile",
            format!("{:.0}", c.cpu_per_reconcile_us()),
            "us",
        );
        if let Some(t) = &c.touch {
            report.row(
                section,
                &case,
                "cpu_per_changed_object_reconcile",
                format!("{:.0}", t.cpu_per_reconcile_us()),
                "us",
            );
            report.row(section, &case, "touch_cloud_calls", t.calls, "requests");
        }
        let bulk = counts
            .iter()
            .find(|b| b.provider == c.provider && b.mode == Mode::Bulk)
            .map(Count::per_resync);
        let fewer = match (c.mode, bulk) {
            (Mode::PerResource, Some(b)) if b > 0.0 => format!("{:.0}×", c.per_resync() / b),
            _ => "–".into(),
        };
        // At 90% of the limit the count says what the key could give, not what the mode wants.
        let bound = if c.per_resync() >= 0.9 * c.budget_per_resync {
            format!(" (the limit's {:.0}: bound by it)", c.budget_per_resync)
        } else {
            String::new()
        };
        rows.push(vec![
            c.provider.to_string(),
            c.objects.to_string(),
            format!("`{}`", c.mode.flag()),
            format!("{:.0} s", c.resync.as_secs_f64()),
            format!("**{:.1}**{bound}", c.per_resync()),
            fewer,
            format!("{:.1}", c.reconciles as f64 / c.resyncs as f64),
            c.routes
                .iter()
                .map(|(r, n)| format!("`{r}` {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            format!("{:.2} s", c.cpu.as_secs_f64() / c.resyncs as f64),
            format!("{:.0} µs", c.cpu_per_reconcile_us()),
            match &c.touch {
                Some(t) => format!(
                    "{:.0} µs ({} {}s changed, {} reconciles, {} cloud calls)",
                    t.cpu_per_reconcile_us(),
                    t.objects,
                    t.kind,
                    t.reconciles,
                    t.calls
                ),
                None => "–".into(),
            },
        ]);
    }
    table(
        &[
            "provider",
            "objects",
            "mode",
            "resync",
            "calls per resync",
            "per-resource ÷ bulk",
            "reconciles per resync",
            "calls in the window by route",
            "operator CPU per resync",
            "CPU per no-op reconcile",
            "CPU per reconcile of a changed object",
        ],
        &rows,
    )
}
