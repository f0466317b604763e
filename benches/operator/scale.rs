//! Sections 3 and 4 on one set of objects: 10,000 Compute objects adopting 10,000 sandbox
//! computes. Scale: the operator's memory and CPU once settled. Engine overhead: reconciles per
//! second and CPU per reconcile when nothing waits for the cloud's rate limit.

use std::time::{Duration, Instant};

use stratus::providers::strettch::sim::key_fingerprint as fingerprint;

use crate::Options;
use crate::cluster::{BenchNs, Cluster, Watch, is_settled, strettch_sandbox};
use crate::memory::{self, Breakdown};
use crate::process::{Mem, Operator, Sample};
use crate::report::{Report, count, table};

struct Scale {
    settle: Duration,
    settle_cpu: Duration,
    /// Highest VmRSS seen by sampling every second while settling.
    sampled_peak_mib: f64,
    quiet: Duration,
    window: Duration,
    window_cpu: Duration,
    window_reconciles: u64,
    mem: Mem,
    /// The same operator with no objects, once started.
    empty: Mem,
    /// `--resync-interval`, as run.
    resync: String,
    cloud_calls: u64,
    served_429: u64,
    breakdown: Breakdown,
}

struct Pass {
    /// From spawning the operator (restart) or the first patch (touch) to the first reconcile.
    to_first: Duration,
    /// From the first to the last reconcile of the pass.
    duration: Duration,
    reconciles: u64,
    cpu: Duration,
    /// Restart: CPU from the spawn to the end of the pass (watch list, caches, everything).
    cpu_total: Duration,
    /// Touch: how long the bench took to patch every object (the apiserver's write rate).
    patching: Duration,
    object_writes: u64,
    mem: Mem,
}

impl Pass {
    fn rate(&self) -> f64 {
        self.reconciles as f64 / self.duration.as_secs_f64().max(1e-9)
    }
    fn cpu_per_reconcile_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.reconciles.max(1) as f64
    }
}

/// Wait until the operator has completed `target` reconciles, sampling every 50 ms. Returns the
/// last sample that still saw `base` (just before the pass began) and the first that reached
/// `target`: the pass lies between them, so its duration is over-estimated by at most one
/// sampling interval.
async fn follow(op: &mut Operator, base: u64, target: u64, timeout: Duration) -> (Sample, Sample) {
    let deadline = Instant::now() + timeout;
    let mut before = op.sample().await;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let s = op.sample().await;
        if s.reconciles >= target {
            return (before, s);
        }
        if s.reconciles <= base {
            before = s;
        }
        assert!(
            op.is_running(),
            "the operator exited; see {}",
            op.log.display()
        );
        assert!(
            Instant::now() < deadline,
            "only {} of {target} reconciles after {timeout:?}",
            s.reconciles
        );
    }
}

/// Adopted events published to weigh kube's event cache. Its weight per event includes the hash
/// table's slots (a power of two), so it moves with the count, up to about 2×; publishing
/// 100,000 would mostly load the apiserver.
const EVENTS_WEIGHED: usize = 10_000;

/// The operator's memory with nothing to manage: a namespace with the same ProviderConfig and no
/// objects, after the same quiet time as the measured one.
async fn empty_operator(cluster: &Cluster, opts: &Options, endpoint: &str, key: &str) -> Mem {
    let ns = BenchNs::create(&cluster.client, "scale-empty").await;
    ns.install_provider(endpoint, key, None).await;
    let mut op = Operator::start(
        &cluster.kubeconfig,
        &ns.name,
        &[],
        &opts.logs,
        "scale-empty",
    );
    op.wait_started(Duration::from_secs(60), Duration::from_secs(30))
        .await;
    tokio::time::sleep(opts.quiet).await;
    let mem = op.mem();
    op.kill();
    ns.cleanup().await;
    mem
}

async fn settle(op: &mut Operator, watch: &Watch, n: usize, timeout: Duration) -> (Duration, f64) {
    let started = op.started;
    let mut peak = 0f64;
    loop {
        peak = peak.max(op.mem().rss_mib());
        if watch.count(is_settled) >= n && op.reconciles().await >= n as u64 {
            return (started.elapsed(), peak);
        }
        assert!(
            op.is_running(),
            "the operator exited; see {}",
            op.log.display()
        );
        assert!(
            started.elapsed() < timeout,
            "only {} of {n} objects settled after {timeout:?}",
            watch.count(is_settled)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

pub async fn run(
    cluster: &Cluster,
    opts: &Options,
    report: &mut Report,
    do_scale: bool,
    do_overhead: bool,
) {
    let n = opts.scale_n;
    // The operator paces itself (the ProviderConfig's rate); the sandbox does not need to.
    let (key, sandbox) = strettch_sandbox(|c| c.rate_limit = 0).await;
    let ids = sandbox.seed_computes(n, vec![]);
    let ns = BenchNs::create(&cluster.client, &format!("scale-{n}")).await;
    // Scale runs at the documented default rate (2 req/s); overhead lifts it.
    let first_rate = if do_scale { None } else { Some(1000.0) };
    ns.install_provider(&sandbox.base_url(), &key, first_rate)
        .await;
    eprintln!("bench: scale: creating {n} Compute objects");
    let created_in = ns.create_computes(n, Some(&ids), 32).await;
    eprintln!(
        "bench: scale: {n} objects created in {:.1} s ({:.0}/s)",
        created_in.as_secs_f64(),
        n as f64 / created_in.as_secs_f64()
    );
    let watch = Watch::start(ns.computes()).await;
    // The apiserver takes the first pass's three writes per object at a few hundred a second.
    let timeout = Duration::from_secs(1200) + Duration::from_millis(30) * n as u32;

    let mut scale = None;
    {
        let label = if do_scale { "scale" } else { "overhead-warmup" };
        let resync: Vec<&str> = match &opts.scale_resync {
            Some(r) => vec!["--resync-interval", r],
            None => vec![],
        };
        let mut op = Operator::start(&cluster.kubeconfig, &ns.name, &resync, &opts.logs, label);
        let (settle_time, sampled_peak_mib) = settle(&mut op, &watch, n, timeout).await;
        let settle_cpu = op.cpu();
        eprintln!(
            "bench: {label}: {n} objects settled in {:.1} s, {:.1} s CPU, RSS {:.1} MiB (peak {:.1} MiB)",
            settle_time.as_secs_f64(),
            settle_cpu.as_secs_f64(),
            op.mem().rss_mib(),
            op.mem().hwm_mib()
        );
        if do_scale {
            tokio::time::sleep(opts.quiet).await;
            let r0 = op.reconciles().await;
            let c0 = op.cpu();
            let t0 = Instant::now();
            tokio::time::sleep(opts.scale_window).await;
            let window_cpu = op.cpu() - c0;
            let window = t0.elapsed();
            let window_reconciles = op.reconciles().await - r0;
            let mem = op.mem();
            let stats = sandbox.stats();
            let k = stats
                .keys
                .get(&fingerprint(&key))
                .cloned()
                .unwrap_or_default();
            eprintln!(
                "bench: scale: settled RSS {:.1} MiB, peak {:.1} MiB, {:.3} s CPU in {:.0} s",
                mem.rss_mib(),
                mem.hwm_mib(),
                window_cpu.as_secs_f64(),
                window.as_secs_f64()
            );
            op.kill();
            let empty = empty_operator(cluster, opts, &sandbox.base_url(), &key).await;
            eprintln!("bench: scale: weighing the operator's structures for {n} objects");
            let breakdown = memory::breakdown(
                &cluster.client,
                watch.store.state(),
                &sandbox.base_url(),
                &key,
                EVENTS_WEIGHED,
            )
            .await;
            scale = Some(Scale {
                settle: settle_time,
                settle_cpu,
                sampled_peak_mib,
                quiet: opts.quiet,
                window,
                window_cpu,
                window_reconciles,
                mem,
                empty,
                resync: opts
                    .scale_resync
                    .clone()
                    .unwrap_or_else(|| "10m (the default)".into()),
                cloud_calls: k.requests,
                served_429: stats.served_429,
                breakdown,
            });
        }
        op.kill();
    }

    let mut passes = None;
    if do_overhead {
        ns.set_provider_rate(Some(1000.0)).await;
        // (a) A restart: every object is reconciled once; nothing has changed, so a reconcile
        // makes no write and its observation comes from one shared listing.
        let mut op = Operator::start(&cluster.kubeconfig, &ns.name, &[], &opts.logs, "overhead");
        let e0 = watch.events();
        let (before, last) = follow(&mut op, 0, n as u64, timeout).await;
        let restart = Pass {
            to_first: before.at - op.started,
            duration: last.at - before.at,
            reconciles: last.reconciles - before.reconciles,
            cpu: last.cpu - before.cpu,
            cpu_total: last.cpu,
            patching: Duration::ZERO,
            object_writes: watch.events() - e0,
            mem: op.mem(),
        };
        eprintln!(
            "bench: overhead restart: {} reconciles in {:.2} s = {:.0}/s, {:.0} µs CPU each",
            restart.reconciles,
            restart.duration.as_secs_f64(),
            restart.rate(),
            restart.cpu_per_reconcile_us()
        );
        tokio::time::sleep(Duration::from_secs(5)).await;

        // (b) A change to every object: one watch event and one reconcile each.
        let base = op.sample().await;
        let e0 = watch.events();
        let touch_started = Instant::now();
        let touching = ns.touch_all(n, "1", 64);
        let following = follow(
            &mut op,
            base.reconciles,
            base.reconciles + n as u64,
            timeout,
        );
        let (patching, (before, last)) = tokio::join!(touching, following);
        let touch = Pass {
            to_first: before.at.saturating_duration_since(touch_started),
            duration: last.at - base.at,
            reconciles: last.reconciles - base.reconciles,
            cpu: last.cpu - base.cpu,
            cpu_total: last.cpu,
            patching,
            object_writes: (watch.events() - e0).saturating_sub(n as u64),
            mem: op.mem(),
        };
        eprintln!(
            "bench: overhead touch: {} reconciles in {:.2} s = {:.0}/s ({} patches took {:.2} s), {:.0} µs CPU each",
            touch.reconciles,
            touch.duration.as_secs_f64(),
            touch.rate(),
            n,
            touch.patching.as_secs_f64(),
            touch.cpu_per_reconcile_us()
        );
        op.kill();
        passes = Some((restart, touch));
    }
    drop(watch);
    eprintln!("bench: scale: cleaning up {n} objects");
    ns.cleanup().await;
    sandbox.shutdown().await;

    if let Some(s) = scale {
        write_scale(report, n, created_in, &s);
    }
    if let Some((restart, touch)) = passes {
        write_overhead(report, n, &restart, &touch);
    }
}

fn write_scale(report: &mut Report, n: usize, created_in: Duration, s: &Scale) {
    const S: &str = "scale";
    let case = format!("N={n}");
    let cpu_pct = 100.0 * s.window_cpu.as_secs_f64() / s.window.as_secs_f64();
    report.row(
        S,
        &case,
        "vm_rss_settled",
        format!("{:.1}", s.mem.rss_mib()),
        "MiB",
    );
    report.row(S, &case, "vm_hwm", format!("{:.1}", s.mem.hwm_mib()), "MiB");
    report.row(
        S,
        &case,
        "rss_sampled_peak_while_settling",
        format!("{:.1}", s.sampled_peak_mib),
        "MiB",
    );
    report.row(S, &case, "threads", s.mem.threads, "threads");
    report.row(
        S,
        &case,
        "cpu_settled_window",
        format!("{:.3}", s.window_cpu.as_secs_f64()),
        "s",
    );
    report.row(
        S,
        &case,
        "settled_window",
        format!("{:.1}", s.window.as_secs_f64()),
        "s",
    );
    report.row(
        S,
        &case,
        "cpu_settled_percent_of_one_core",
        format!("{cpu_pct:.2}"),
        "%",
    );
    report.row(
        S,
        &case,
        "reconciles_in_settled_window",
        s.window_reconciles,
        "reconciles",
    );
    report.row(
        S,
        &case,
        "time_to_settle",
        format!("{:.1}", s.settle.as_secs_f64()),
        "s",
    );
    report.row(
        S,
        &case,
        "cpu_to_settle",
        format!("{:.2}", s.settle_cpu.as_secs_f64()),
        "s",
    );
    report.row(S, &case, "cloud_calls_to_settle", s.cloud_calls, "requests");
    report.row(S, &case, "served_429", s.served_429, "responses");
    report.row(
        S,
        &case,
        "apiserver_create_rate",
        format!("{:.0}", n as f64 / created_in.as_secs_f64()),
        "objects/s",
    );
    let target = target_mib(n);
    let verdict = if s.mem.rss_mib() < target && s.mem.hwm_mib() < target {
        format!("under the {target:.0} MiB target, settled and at peak")
    } else if s.mem.rss_mib() < target {
        format!("settled RSS under the {target:.0} MiB target; the peak is over it")
    } else {
        format!("**over the {target:.0} MiB target**")
    };
    let floor = first_pass_floor(n);
    report.row(
        S,
        &case,
        "first_pass_floor",
        format!("{:.1}", floor.as_secs_f64()),
        "s",
    );
    report.row(
        S,
        &case,
        "vm_rss_no_objects",
        format!("{:.1}", s.empty.rss_mib()),
        "MiB",
    );
    let per_object_kib = (s.mem.rss_kib.saturating_sub(s.empty.rss_kib)) as f64 / n.max(1) as f64;
    report.row(
        S,
        &case,
        "rss_per_object",
        format!("{:.2}", per_object_kib),
        "KiB",
    );
    let b = &s.breakdown;
    for (name, per_object, w) in [
        (
            "heap_reflector_store",
            "heap_reflector_store_per_object",
            b.store,
        ),
        (
            "heap_predicate_cache",
            "heap_predicate_cache_per_object",
            b.predicate_cache,
        ),
        ("heap_snapshot", "heap_snapshot_per_object", b.snapshot),
        (
            "heap_claim_index",
            "heap_claim_index_per_object",
            b.claim_index,
        ),
    ] {
        report.row(S, &case, name, format!("{:.1}", w.mib()), "MiB");
        report.row(
            S,
            &case,
            per_object,
            format!("{:.0}", b.per_object(w)),
            "bytes",
        );
    }
    report.row(
        S,
        &case,
        "heap_event_cache_per_event",
        format!("{:.0}", b.per_event()),
        "bytes",
    );
    let mut md = format!(
        "{} Compute objects in the apiserver adopt {} computes seeded in the sandbox. The operator \
         starts after the objects exist (a restart in a populated cluster), with the defaults \
         (`--observe-mode bulk`, concurrency 16; `--resync-interval` {}) and the documented \
         2 requests/second (the ProviderConfig has no `rateLimit`). *Settled*: every object \
         `Ready` with the operator's first-pass writes done (finalizer, create digest, status) \
         and at least N reconciles counted. Then after {} s of quiet, CPU (utime + stime from \
         `/proc/PID/stat`) is read over a {:.0} s window, and memory from `/proc/PID/status`.\n\n",
        count(n as u64),
        count(n as u64),
        s.resync,
        s.quiet.as_secs(),
        s.window.as_secs_f64()
    );
    md.push_str(&table(
        &["measure", "value"],
        &[
            vec![
                "VmRSS, settled".into(),
                format!("**{:.1} MiB**", s.mem.rss_mib()),
            ],
            vec![
                "VmHWM (peak RSS, first pass included)".into(),
                format!("**{:.1} MiB**", s.mem.hwm_mib()),
            ],
            vec![
                "CPU, settled".into(),
                format!(
                    "{:.3} s in {:.0} s ({cpu_pct:.2}% of one core; {} reconciles in the window)",
                    s.window_cpu.as_secs_f64(),
                    s.window.as_secs_f64(),
                    s.window_reconciles
                ),
            ],
            vec![
                "first pass: start → settled".into(),
                format!(
                    "{:.1} s, {:.1} s CPU",
                    s.settle.as_secs_f64(),
                    s.settle_cpu.as_secs_f64()
                ),
            ],
            vec![
                "cloud calls for the first pass".into(),
                format!("{} ({} 429s)", s.cloud_calls, s.served_429),
            ],
            vec![
                "VmRSS of the same operator with no objects".into(),
                format!("{:.1} MiB", s.empty.rss_mib()),
            ],
            vec![
                "per object: (settled − no objects) ÷ N".into(),
                format!("**{per_object_kib:.2} KiB**"),
            ],
            vec!["threads".into(), s.mem.threads.to_string()],
            vec![
                "creating the objects (bench, 32 in flight)".into(),
                format!(
                    "{:.1} s ({:.0} objects/s)",
                    created_in.as_secs_f64(),
                    n as f64 / created_in.as_secs_f64()
                ),
            ],
        ],
    ));
    md.push_str(&format!(
        "\nTarget < {target:.0} MiB: {verdict}. The first pass took {:.1}× its floor of {:.0} s \
         (the ⌈N/100⌉ = {} list pages the documented 2 requests/second must buy).\n",
        s.settle.as_secs_f64() / floor.as_secs_f64(),
        floor.as_secs_f64(),
        n.div_ceil(100)
    ));
    md.push_str(&memory_md(n, s));
    report
        .sections
        .push((format!("3. Scale: {} objects", count(n as u64)), md));
}

/// The targets: 150 MiB at 10,000 objects, 600 MiB at 100,000 (settled).
fn target_mib(n: usize) -> f64 {
    if n <= 10_000 { 150.0 } else { 600.0 }
}

/// The first pass cannot be faster than the ⌈N/100⌉ list pages at 2 requests/second.
fn first_pass_floor(n: usize) -> Duration {
    Duration::from_secs_f64(n.div_ceil(100) as f64 / 2.0)
}

/// Where the settled memory goes (see `memory.rs`).
fn memory_md(n: usize, s: &Scale) -> String {
    let b = &s.breakdown;
    let mib = |bytes: f64| bytes / (1024.0 * 1024.0);
    // At most one Adopted event per object on a first pass, of which the operator keeps the
    // last 1,000 (src/engine/events.rs).
    let events_worst = b.per_event() * n as f64;
    let parts = [
        (
            "kube reflector store (the Compute objects, managedFields stripped)",
            b.store,
        ),
        ("engine snapshot (every compute as listed)", b.snapshot),
        (
            "kube predicate cache (name, namespace, uid → hash)",
            b.predicate_cache,
        ),
        (
            "engine claim index (cloud id → objects naming or reporting it)",
            b.claim_index,
        ),
    ];
    let grown: f64 = parts.iter().map(|(_, w)| w.mib()).sum();
    let rss_grown = (s.mem.rss_kib.saturating_sub(s.empty.rss_kib)) as f64 / 1024.0;
    let mut rows: Vec<Vec<String>> = parts
        .iter()
        .map(|(name, w)| {
            vec![
                name.to_string(),
                format!("{:.1} MiB", w.mib()),
                format!("{:.0} B", b.per_object(*w)),
                format!("{:.0}", w.blocks as f64 / n.max(1) as f64),
            ]
        })
        .collect();
    rows.push(vec![
        format!(
            "kube event cache if it held one event per object (weighed with {} Adopted events; the operator holds at most 1,000)",
            count(b.events as u64)
        ),
        format!("≤ {:.1} MiB", mib(events_worst)),
        format!("{:.0} B per event", b.per_event()),
        format!("{:.0}", b.event_cache.blocks as f64 / b.events.max(1) as f64),
    ]);
    rows.push(vec![
        "settled RSS above the empty operator's".into(),
        format!("{rss_grown:.1} MiB"),
        format!("{:.0} B", rss_grown * 1024.0 * 1024.0 / n.max(1) as f64),
        "–".into(),
    ]);
    let mut md = format!(
        "\n**Where the memory goes.** Each structure the operator keeps per object is rebuilt in \
         the bench process from the same objects with the same types, and weighed by the heap \
         bytes dropping it frees (a counting allocator; `benches/operator/memory.rs`). The \
         allocator's own overhead per block (8–16 B in glibc) is not in these bytes. The three \
         structures that grow with N add up to {grown:.1} MiB of the {rss_grown:.1} MiB the \
         settled operator holds above the empty one; the rest is the event cache (the \
         operator drops it after 1,000 publishes), the scheduler's queue of requeues, the throttle's maps, and freed memory the \
         allocator keeps.\n\n"
    );
    md.push_str(&table(
        &["structure", "heap", "per object", "blocks per object"],
        &rows,
    ));
    md
}

fn write_overhead(report: &mut Report, n: usize, restart: &Pass, touch: &Pass) {
    const S: &str = "overhead";
    for (case, p) in [("restart", restart), ("touch", touch)] {
        let case = format!("N={n} {case}");
        report.row(S, &case, "reconciles", p.reconciles, "reconciles");
        report.row(
            S,
            &case,
            "duration",
            format!("{:.2}", p.duration.as_secs_f64()),
            "s",
        );
        report.row(
            S,
            &case,
            "reconciles_per_second",
            format!("{:.0}", p.rate()),
            "1/s",
        );
        report.row(
            S,
            &case,
            "cpu_per_reconcile",
            format!("{:.0}", p.cpu_per_reconcile_us()),
            "us",
        );
        report.row(S, &case, "cpu", format!("{:.2}", p.cpu.as_secs_f64()), "s");
        report.row(
            S,
            &case,
            "to_first_reconcile",
            format!("{:.2}", p.to_first.as_secs_f64()),
            "s",
        );
        report.row(S, &case, "object_writes", p.object_writes, "writes");
        report.row(
            S,
            &case,
            "vm_rss_after",
            format!("{:.1}", p.mem.rss_mib()),
            "MiB",
        );
    }
    report.row(
        S,
        format!("N={n} restart"),
        "cpu_from_spawn",
        format!("{:.2}", restart.cpu_total.as_secs_f64()),
        "s",
    );
    report.row(
        S,
        format!("N={n} touch"),
        "patch_rate",
        format!("{:.0}", n as f64 / touch.patching.as_secs_f64()),
        "1/s",
    );
    let mut md = format!(
        "The {} objects of section 3, settled, with the rate limit lifted (ProviderConfig \
         `rateLimit.requestsPerSecond: 1000`, sandbox unlimited), so no reconcile waits for the \
         cloud's budget. Reconciles are counted from the operator's \
         `controller_runtime_reconcile_total` and its CPU from `/proc/PID/stat`, both sampled \
         every 50 ms.\n\n\
         - **restart**: a fresh operator reconciles every object once: the watch's initial list, \
         one bulk listing of the cloud (⌈N/100⌉ pages), then N reconciles that find nothing to \
         change (no cloud call, no write). Rate and CPU are taken from the last sample before the first \
         reconcile to the first sample after the N-th.\n\
         - **touch**: with the operator running, the bench patches a `stratus.dev/` annotation on \
         every object (64 patches in flight): one watch event and one reconcile each, observed \
         from the shared snapshot, no write. Rate is taken from the first patch to the N-th \
         reconcile, so it cannot exceed the apiserver's patch rate on this machine, which is shown \
         beside it. The bench's own watch, the apiserver and etcd share the same 2 cores.\n\n",
        count(n as u64)
    );
    let rows = vec![
        vec![
            "restart".into(),
            count(restart.reconciles),
            format!("{:.2} s", restart.duration.as_secs_f64()),
            format!("**{:.0}/s**", restart.rate()),
            format!("**{:.0} µs**", restart.cpu_per_reconcile_us()),
            format!(
                "{:.2} s from spawn to the first reconcile; {:.2} s CPU from spawn to the last",
                restart.to_first.as_secs_f64(),
                restart.cpu_total.as_secs_f64()
            ),
            restart.object_writes.to_string(),
        ],
        vec![
            "touch".into(),
            count(touch.reconciles),
            format!("{:.2} s", touch.duration.as_secs_f64()),
            format!("**{:.0}/s**", touch.rate()),
            format!("**{:.0} µs**", touch.cpu_per_reconcile_us()),
            format!(
                "patching took {:.2} s ({:.0} patches/s); first reconcile {:.2} s after the first patch",
                touch.patching.as_secs_f64(),
                n as f64 / touch.patching.as_secs_f64(),
                touch.to_first.as_secs_f64()
            ),
            touch.object_writes.to_string(),
        ],
    ];
    md.push_str(&table(
        &[
            "pass",
            "reconciles",
            "took",
            "reconciles/s",
            "CPU per reconcile",
            "notes",
            "object writes by the operator",
        ],
        &rows,
    ));
    report.sections.push(("4. Engine overhead".into(), md));
}
