//! Section 2: steady state. N Ready Computes (adopted from seeded sandbox computes) → cloud API
//! calls per resync, bulk observation against the per-resource baseline, same build, same run.

use std::time::{Duration, Instant};

use stratus::providers::strettch::sim::{self, SimStats};

use crate::Options;
use crate::cluster::{BenchNs, Cluster, Watch, is_settled, strettch_sandbox};
use crate::process::{Mem, Operator};
use crate::report::{Report, count, table};
use crate::resync::Mode;

/// Resyncs per hour at the default `--resync-interval` of 10 minutes.
const RESYNCS_PER_HOUR_AT_DEFAULT: f64 = 6.0;

struct ModeRun {
    mode: Mode,
    settle: Duration,
    window: Duration,
    resyncs: f64,
    list_pages: u64,
    single_gets: u64,
    other_calls: u64,
    reconciles: u64,
    object_writes: u64,
    cpu: Duration,
    mem: Mem,
}

impl ModeRun {
    fn gets(&self) -> u64 {
        self.list_pages + self.single_gets
    }
    fn per_resync(&self) -> f64 {
        self.gets() as f64 / self.resyncs
    }
    fn per_reconcile(&self) -> f64 {
        self.gets() as f64 / self.reconciles.max(1) as f64
    }
}

fn route(s: &SimStats, r: &str) -> u64 {
    s.requests_by_route.get(r).copied().unwrap_or(0)
}

fn total(s: &SimStats) -> u64 {
    s.requests_by_route.values().sum()
}

async fn measure(
    cluster: &Cluster,
    opts: &Options,
    ns: &BenchNs,
    watch: &Watch,
    sandbox: &sim::SimHandle,
    n: usize,
    mode: Mode,
) -> ModeRun {
    let resync = opts.resync;
    let resync_flag = format!("{}ms", resync.as_millis());
    let mut op = Operator::start(
        &cluster.kubeconfig,
        &ns.name,
        &[
            "--resync-interval",
            &resync_flag,
            "--observe-mode",
            mode.flag(),
        ],
        &opts.logs,
        &format!("steady-{n}-{}", mode.flag()),
    );
    let started = Instant::now();
    // Settled: every object Ready with the operator's first-pass writes done, and reconciled at
    // least once by this process.
    let timeout = Duration::from_secs(900);
    if let Err(got) = watch
        .wait_for(n, is_settled, timeout, Duration::from_millis(500))
        .await
    {
        panic!("steady N={n} {}: only {got} objects settled", mode.flag());
    }
    loop {
        if op.reconciles().await >= n as u64 {
            break;
        }
        assert!(
            op.is_running(),
            "the operator exited; see {}",
            op.log.display()
        );
        assert!(
            started.elapsed() < timeout,
            "steady N={n}: first pass did not finish"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let settle = started.elapsed();
    // The first pass's reconciles come round again in clusters near every multiple of the
    // resync (each requeue is jittered ±10%, so the m-th cluster spreads over ±m·10%). Start the
    // window half-way between the first and the second cluster, so that a window of up to three
    // whole intervals holds whole clusters, not parts of them.
    tokio::time::sleep(resync.mul_f64(1.5)).await;

    let s0 = sandbox.stats();
    let r0 = op.reconciles().await;
    let c0 = op.cpu();
    let e0 = watch.events();
    let t0 = Instant::now();
    tokio::time::sleep(resync * opts.window_resyncs).await;
    let s1 = sandbox.stats();
    let r1 = op.reconciles().await;
    let c1 = op.cpu();
    let e1 = watch.events();
    let window = t0.elapsed();
    let mem = op.mem();
    op.kill();

    let list_pages = route(&s1, "GET /computes") - route(&s0, "GET /computes");
    let single_gets = route(&s1, "GET /computes/{id}") - route(&s0, "GET /computes/{id}");
    ModeRun {
        mode,
        settle,
        window,
        resyncs: window.as_secs_f64() / resync.as_secs_f64(),
        list_pages,
        single_gets,
        other_calls: (total(&s1) - total(&s0)) - list_pages - single_gets,
        reconciles: r1 - r0,
        object_writes: e1 - e0,
        cpu: c1 - c0,
        mem,
    }
}

async fn one(cluster: &Cluster, opts: &Options, n: usize) -> Vec<ModeRun> {
    // Calls per resync do not depend on the rate: lift it so that the run is quick.
    let (key, sandbox) = strettch_sandbox(|c| c.rate_limit = 0).await;
    let ids = sandbox.seed_computes(n, vec![]);
    let ns = BenchNs::create(&cluster.client, &format!("steady-{n}")).await;
    ns.install_provider(&sandbox.base_url(), &key, Some(1000.0))
        .await;
    let took = ns.create_computes(n, Some(&ids), 32).await;
    eprintln!(
        "bench: steady N = {n}: {n} Compute objects created in {:.1} s",
        took.as_secs_f64()
    );
    let watch = Watch::start(ns.computes()).await;
    let mut runs = Vec::new();
    // Bulk first: it makes the first-pass writes (finalizer, digest, status), so that both modes
    // are then measured on the same settled objects.
    for mode in [Mode::Bulk, Mode::PerResource] {
        let r = measure(cluster, opts, &ns, &watch, &sandbox, n, mode).await;
        eprintln!(
            "bench: steady N = {n} {}: {} GETs in {:.0} s = {:.1} per resync ({} reconciles, {} object writes)",
            mode.flag(),
            r.gets(),
            r.window.as_secs_f64(),
            r.per_resync(),
            r.reconciles,
            r.object_writes
        );
        runs.push(r);
    }
    drop(watch);
    ns.cleanup().await;
    sandbox.shutdown().await;
    runs
}

pub async fn run(cluster: &Cluster, opts: &Options, report: &mut Report) {
    const S: &str = "steady";
    let mut rows = Vec::new();
    let mut ratio_rows = Vec::new();
    for &n in &opts.steady_sizes {
        eprintln!("bench: steady state, N = {n}");
        let runs = one(cluster, opts, n).await;
        let per = |m: Mode| runs.iter().find(|r| r.mode == m).map(ModeRun::per_resync);
        for r in &runs {
            let case = format!("N={n} {}", r.mode.flag());
            let pr = r.per_resync();
            report.row(
                S,
                &case,
                "get_calls_per_resync",
                format!("{pr:.2}"),
                "requests",
            );
            report.row(
                S,
                &case,
                "get_calls_per_hour_at_10m_resync",
                format!("{:.0}", pr * RESYNCS_PER_HOUR_AT_DEFAULT),
                "requests",
            );
            report.row(
                S,
                &case,
                "get_calls_per_reconcile",
                format!("{:.4}", r.per_reconcile()),
                "requests",
            );
            report.row(S, &case, "list_pages_in_window", r.list_pages, "requests");
            report.row(S, &case, "single_gets_in_window", r.single_gets, "requests");
            report.row(S, &case, "other_calls_in_window", r.other_calls, "requests");
            report.row(
                S,
                &case,
                "window",
                format!("{:.1}", r.window.as_secs_f64()),
                "s",
            );
            report.row(
                S,
                &case,
                "reconciles_per_resync",
                format!("{:.1}", r.reconciles as f64 / r.resyncs),
                "reconciles",
            );
            report.row(
                S,
                &case,
                "object_writes_in_window",
                r.object_writes,
                "writes",
            );
            report.row(
                S,
                &case,
                "operator_cpu_per_resync",
                format!("{:.3}", r.cpu.as_secs_f64() / r.resyncs),
                "s",
            );
            report.row(
                S,
                &case,
                "operator_rss",
                format!("{:.1}", r.mem.rss_mib()),
                "MiB",
            );
            report.row(
                S,
                &case,
                "first_pass",
                format!("{:.1}", r.settle.as_secs_f64()),
                "s",
            );
            rows.push(vec![
                count(n as u64),
                format!("`{}`", r.mode.flag()),
                format!("**{pr:.1}**"),
                format!("{} (+{} single GETs)", r.list_pages, r.single_gets),
                count((pr * RESYNCS_PER_HOUR_AT_DEFAULT).round() as u64),
                format!("{:.0}", r.reconciles as f64 / r.resyncs),
                format!("{:.3}", r.per_reconcile()),
                r.object_writes.to_string(),
                format!("{:.2} s", r.cpu.as_secs_f64() / r.resyncs),
                format!("{:.1} MiB", r.mem.rss_mib()),
            ]);
        }
        if let (Some(b), Some(p)) = (per(Mode::Bulk), per(Mode::PerResource)) {
            report.steady_points.push((n, b, p));
            let ratio = p / b.max(f64::MIN_POSITIVE);
            report.row(
                S,
                format!("N={n}"),
                "per_resource_to_bulk_ratio",
                format!("{ratio:.1}"),
                "x",
            );
            ratio_rows.push(vec![
                count(n as u64),
                format!("{b:.1}"),
                format!("{p:.1}"),
                format!("**{ratio:.0}×**"),
                n.div_ceil(100).to_string(),
            ]);
        }
    }
    let mut md = format!(
        "N computes are seeded RUNNING in a fresh sandbox and N Compute objects adopt them \
         (`stratus.dev/external-name`), so no create is needed. The rate limit is lifted \
         (sandbox unlimited, ProviderConfig `rateLimit.requestsPerSecond: 1000`): the calls a \
         resync makes do not depend on the rate. The operator runs with `--resync-interval {}` \
         and `--observe-mode bulk`, then the same objects are measured again with a fresh operator \
         in `--observe-mode per-resource` (one GET per resource per resync, the usual operator \
         design). Once the first pass has settled, the sandbox's GET counters (`GET /computes` \
         pages and `GET /computes/{{id}}`) are read over a window of {} whole resync intervals \
         that starts 1.5 intervals later, half-way between two rounds of (±10% jittered) resyncs, \
         so that it holds whole rounds; *per resync* = GETs in the window ÷ {}. *Reconciles per \
         resync* (≈ N) checks that the window saw every object once per interval. *Per hour* \
         scales that to the default 10-minute resync (6 resyncs an hour). *Object writes* counts \
         the changes the bench's own watch saw on the Compute objects during the window (status \
         writes and patches: 0 means a resync writes nothing to Kubernetes).\n\n",
        humantime(opts.resync),
        opts.window_resyncs,
        opts.window_resyncs
    );
    md.push_str(&table(
        &[
            "N",
            "mode",
            "GET calls per resync",
            "in the window: list pages",
            "GET calls per hour (10 min resync)",
            "reconciles per resync",
            "GETs per reconcile",
            "object writes in window",
            "operator CPU per resync",
            "operator RSS",
        ],
        &rows,
    ));
    md.push_str("\nBulk against the per-resource baseline:\n\n");
    md.push_str(&table(
        &[
            "N",
            "bulk GETs per resync",
            "per-resource GETs per resync",
            "fewer calls",
            "⌈N/100⌉",
        ],
        &ratio_rows,
    ));
    report
        .sections
        .push(("2. Steady state: API calls per resync".into(), md));
}

pub fn humantime(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 60.0 && s % 60.0 == 0.0 {
        format!("{}m", s as u64 / 60)
    } else if s.fract() == 0.0 {
        format!("{}s", s as u64)
    } else {
        format!("{}ms", d.as_millis())
    }
}
