//! Section 1: N Computes applied at once under the documented 2 requests/second → time until
//! all are Ready, against the floor the rate limit sets.

use std::time::{Duration, Instant};

use stratus::providers::strettch::sim::key_fingerprint as fingerprint;

use crate::Options;
use crate::cluster::{BenchNs, Cluster, Watch, is_ready, strettch_sandbox};
use crate::process::Operator;
use crate::report::{Report, count, table};

/// The documented limit, enforced by the sandbox and (by default) paced by the operator.
const LIMIT: f64 = 2.0;
/// Catalog reads (regions, images, specifications) the first reconcile needs.
const CATALOG_CALLS: u64 = 3;

struct Run {
    n: usize,
    /// From the first `kubectl apply` to the moment the watch saw the last one Ready.
    ready: Result<Duration, usize>,
    applied_in: Duration,
    requests: u64,
    served_429: u64,
    max_per_second: u64,
    /// Seconds from the first to the last second with a request.
    busy_seconds: u64,
    routes: Vec<(String, u64)>,
    cpu: Duration,
    hwm_mib: f64,
    readyz: bool,
}

impl Run {
    fn min_calls(&self) -> u64 {
        // One create each, the catalog once, and one listing (⌈N/100⌉ pages) to see them RUNNING.
        self.n as u64 + CATALOG_CALLS + (self.n as u64).div_ceil(100)
    }
}

async fn one(cluster: &Cluster, opts: &Options, n: usize) -> Run {
    let (key, sandbox) = strettch_sandbox(|c| c.rate_limit = LIMIT as u32).await;
    let ns = BenchNs::create(&cluster.client, &format!("conv-{n}")).await;
    ns.install_provider(&sandbox.base_url(), &key, None).await;
    let watch = Watch::start(ns.computes()).await;
    let mut op = Operator::start(
        &cluster.kubeconfig,
        &ns.name,
        &[],
        &opts.logs,
        &format!("convergence-{n}"),
    );
    let readyz = op
        .wait_started(Duration::from_secs(60), Duration::from_secs(5))
        .await;

    let started = Instant::now();
    let applied_in = ns.create_computes(n, None, 32).await;
    // Generous: three times the floor plus two minutes.
    let timeout = Duration::from_secs_f64(3.0 * (n as f64 + 10.0) / LIMIT + 120.0);
    let ready = watch
        .wait_for(n, is_ready, timeout, Duration::from_millis(100))
        .await
        .map(|at| at - started);
    let cpu = op.cpu();
    let hwm_mib = op.mem().hwm_mib();
    op.kill();

    let stats = sandbox.stats();
    let k = stats
        .keys
        .get(&fingerprint(&key))
        .cloned()
        .unwrap_or_default();
    let busy_seconds = match (k.per_second.keys().next(), k.per_second.keys().next_back()) {
        (Some(a), Some(b)) => b - a + 1,
        _ => 0,
    };
    let mut routes: Vec<(String, u64)> = stats.requests_by_route.into_iter().collect();
    routes.sort_by_key(|r| std::cmp::Reverse(r.1));
    drop(watch);
    ns.cleanup().await;
    sandbox.shutdown().await;
    Run {
        n,
        ready,
        applied_in,
        requests: k.requests,
        served_429: stats.served_429,
        max_per_second: k.max_per_second,
        busy_seconds,
        routes,
        cpu,
        hwm_mib,
        readyz,
    }
}

pub async fn run(cluster: &Cluster, opts: &Options, report: &mut Report) {
    let mut runs = Vec::new();
    for &n in &opts.convergence_sizes {
        eprintln!("bench: convergence, N = {n}");
        let r = one(cluster, opts, n).await;
        match r.ready {
            Ok(d) => eprintln!(
                "bench: convergence N = {n}: all Ready in {:.1} s, {} requests, {} 429s",
                d.as_secs_f64(),
                r.requests,
                r.served_429
            ),
            Err(got) => eprintln!("bench: convergence N = {n}: only {got} Ready at the timeout"),
        }
        if !r.readyz {
            report.notes.push(format!(
                "convergence N={n}: the operator's /readyz still answered 503 five seconds after \
                 it started serving; the run went on without it"
            ));
        }
        runs.push(r);
    }

    const S: &str = "convergence";
    let mut rows = Vec::new();
    for r in &runs {
        let case = format!("N={}", r.n);
        let floor = r.requests as f64 / LIMIT;
        let floor_min = r.min_calls() as f64 / LIMIT;
        let (ready_text, vs_floor) = match r.ready {
            Ok(d) => {
                let s = d.as_secs_f64();
                report.row(S, &case, "time_to_all_ready", format!("{s:.1}"), "s");
                report.convergence_points.push((r.n, s, floor, floor_min));
                (
                    format!("{s:.1} s"),
                    format!("{:.2}× / {:.2}×", s / floor, s / floor_min),
                )
            }
            Err(got) => {
                report.row(S, &case, "time_to_all_ready", "timeout", "s");
                report.row(S, &case, "ready_at_timeout", got, "objects");
                (format!("timeout ({got}/{} Ready)", r.n), "—".into())
            }
        };
        report.row(S, &case, "floor_calls_made", format!("{floor:.1}"), "s");
        report.row(S, &case, "floor_min_calls", format!("{floor_min:.1}"), "s");
        report.row(S, &case, "api_calls", r.requests, "requests");
        report.row(S, &case, "min_api_calls", r.min_calls(), "requests");
        report.row(
            S,
            &case,
            "api_calls_per_resource",
            format!("{:.3}", r.requests as f64 / r.n as f64),
            "requests",
        );
        report.row(S, &case, "served_429", r.served_429, "responses");
        report.row(
            S,
            &case,
            "max_requests_in_one_second",
            r.max_per_second,
            "requests",
        );
        report.row(S, &case, "api_busy_span", r.busy_seconds, "s");
        report.row(
            S,
            &case,
            "apply_duration",
            format!("{:.2}", r.applied_in.as_secs_f64()),
            "s",
        );
        report.operator_rows(S, &case, r.cpu, r.hwm_mib, &r.routes);
        rows.push(vec![
            count(r.n as u64),
            ready_text,
            format!("{floor:.1} s"),
            format!("{floor_min:.1} s"),
            vs_floor,
            format!(
                "{} ({:.2}/resource)",
                count(r.requests),
                r.requests as f64 / r.n as f64
            ),
            format!("{}", r.min_calls()),
            r.served_429.to_string(),
            r.max_per_second.to_string(),
        ]);
    }
    let mut md = String::new();
    md.push_str(
        "N Compute objects are applied at once (32 creates in flight; every apply takes well under \
         a second) to an operator that is already running, against a sandbox enforcing the documented \
         **2 requests/second** per key (200 ms lifecycles, so the wait is the rate limit's, not \
         the cloud's). The ProviderConfig has no `rateLimit`: the operator paces itself at the \
         documented default (2 req/s less its 3% safety margin, 1.94 req/s). The clock runs from the \
         first apply until the bench's watch sees the last object `Ready=True` for its \
         generation.\n\n\
         - *floor (calls made)*: the API calls the run actually made ÷ 2 req/s;\n\
         - *floor (minimum)*: the fewest calls that can do it ÷ 2 req/s: N creates, 3 catalog \
         reads (regions, images, specifications), and one listing of ⌈N/100⌉ pages to see them \
         RUNNING;\n\
         - *× floor*: time ÷ floor (calls made) / time ÷ floor (minimum).\n\n",
    );
    md.push_str(&table(
        &[
            "N",
            "all Ready after",
            "floor (calls made)",
            "floor (minimum)",
            "× floor",
            "API calls",
            "minimum calls",
            "429s served",
            "max calls in one second",
        ],
        &rows,
    ));
    md.push_str("\nAPI calls by route:\n\n");
    let route_rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                count(r.n as u64),
                r.routes
                    .iter()
                    .map(|(route, c)| format!("`{route}` {c}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                format!("{:.2} s", r.cpu.as_secs_f64()),
                format!("{:.1} MiB", r.hwm_mib),
            ]
        })
        .collect();
    md.push_str(&table(
        &[
            "N",
            "calls by route",
            "operator CPU (whole run)",
            "operator peak RSS",
        ],
        &route_rows,
    ));
    report
        .sections
        .push(("1. Convergence under 2 requests/second".into(), md));
}
