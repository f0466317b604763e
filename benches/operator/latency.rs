//! Section 6: a user's change is not stuck behind observation. N Ready Computes are observed
//! under the documented 2 requests/second while M new ones are being created; the bench patches
//! `powerState: STOPPED` on one object at a time and times each patch to the cloud's
//! `POST /computes/{id}/stop` (the sandbox logs when it admitted every write). The same is run
//! with the throttle's priority order, with a first-in-first-out order of the same throttle
//! (`--throttle-order fifo`, a benchmark-only baseline) and with per-resource observation, each
//! several times, so the run's own reproducibility shows.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kube::api::{Patch, PatchParams};
use serde_json::json;
use stratus::providers::strettch::sim::SimHandle;
use stratus::providers::strettch::sim::key_fingerprint as fingerprint;

use crate::Options;
use crate::cluster::{
    BenchNs, Cluster, Watch, compute_name, is_ready, is_settled, strettch_sandbox, strip_finalizers,
};
use crate::process::Operator;
use crate::report::{Report, count, table};

/// The documented limit, enforced by the sandbox and paced by the operator (its default).
const LIMIT: u32 = 2;
/// Resync of every mode: the bulk listing of N objects goes on during the measurement.
const RESYNC: &str = "60s";
/// How long one patch may wait for its write before it counts as not answered.
const PATCH_TIMEOUT: Duration = Duration::from_secs(120);
/// Between one patch's write and the next patch.
const PAUSE: Duration = Duration::from_millis(250);

struct Mode {
    label: &'static str,
    observe: &'static str,
    order: &'static str,
}

const MODES: [Mode; 3] = [
    Mode {
        label: "priority, bulk",
        observe: "bulk",
        order: "priority",
    },
    Mode {
        label: "FIFO, bulk",
        observe: "bulk",
        order: "fifo",
    },
    Mode {
        label: "priority, per-resource",
        observe: "per-resource",
        order: "priority",
    },
];

struct Run {
    mode: &'static Mode,
    round: usize,
    /// Patch → write, sorted; [`Duration::MAX`] for a patch whose write did not come within
    /// [`PATCH_TIMEOUT`] (it counts as slower than any other).
    latencies: Vec<Duration>,
    patches: usize,
    /// Patches made while some of the new Computes had not been POSTed yet.
    during_creates: usize,
    /// From applying the new Computes to all of them Ready (or how many were).
    creates_ready: Result<Duration, usize>,
    requests: u64,
    served_429: u64,
    max_per_second: u64,
    cpu: Duration,
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Nearest-rank percentile of sorted `v`.
fn percentile(v: &[Duration], p: f64) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    Some(v[rank.min(v.len()) - 1])
}

fn secs(d: Option<Duration>) -> String {
    match d {
        None => "–".into(),
        Some(Duration::MAX) => format!("> {} s", PATCH_TIMEOUT.as_secs()),
        Some(d) => format!("{:.2} s", d.as_secs_f64()),
    }
}

fn answered(v: &[Duration]) -> usize {
    v.iter().filter(|d| **d != Duration::MAX).count()
}

/// The time the sandbox admitted the stop of compute `id` at or after `since`.
fn stop_written(sandbox: &SimHandle, id: &str, since: Duration) -> Option<Duration> {
    let path = format!("/computes/{id}/stop");
    sandbox
        .writes()
        .into_iter()
        .find(|w| w.method == "POST" && w.path.ends_with(&path) && w.at >= since)
        .map(|w| w.at)
}

fn creates_posted(sandbox: &SimHandle) -> usize {
    sandbox
        .writes()
        .iter()
        .filter(|w| w.method == "POST" && w.path.ends_with("/computes"))
        .count()
}

#[allow(clippy::too_many_arguments)]
async fn one(
    cluster: &Cluster,
    opts: &Options,
    ns: &BenchNs,
    watch: &Watch,
    sandbox: &SimHandle,
    key: &str,
    ids: &[String],
    mode: &'static Mode,
    round: usize,
    first_patched: usize,
) -> Run {
    let n = opts.latency_n;
    let tag = format!("{}-{}-{round}", mode.order, mode.observe.replace('-', ""));
    sandbox.reset_stats();
    let mut op = Operator::start(
        &cluster.kubeconfig,
        &ns.name,
        &[
            "--resync-interval",
            RESYNC,
            "--observe-mode",
            mode.observe,
            "--throttle-order",
            mode.order,
        ],
        &opts.logs,
        &format!("latency-{tag}"),
    );
    op.wait_started(Duration::from_secs(60), Duration::from_secs(30))
        .await;
    // Let the restart's first pass run (bulk: the first listing's ⌈N/100⌉ pages, then a
    // reconcile each — a reconcile deferred while that listing is in flight counts too, so the
    // pages are what says it is done; per-resource never finishes it within a minute, which is
    // the point of measuring it).
    let warm = Instant::now();
    let pages = n.div_ceil(100) as u64;
    let listed = || {
        mode.observe != "bulk"
            || sandbox
                .stats()
                .requests_by_route
                .get("GET /computes")
                .is_some_and(|p| *p >= pages)
    };
    while !(listed() && op.reconciles().await >= n as u64)
        && warm.elapsed() < Duration::from_secs(90)
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let new_names: Vec<String> = (0..opts.latency_new)
        .map(|i| format!("new-{tag}-{i:03}"))
        .collect();
    let applied = Instant::now();
    let creating = {
        let names = new_names.clone();
        let ns_name = ns.name.clone();
        let client = ns.client.clone();
        tokio::spawn(async move {
            let ns = BenchNs {
                name: ns_name,
                client,
            };
            ns.create_named_computes(&names, None, 32).await
        })
    };

    let api = ns.computes();
    let mut latencies = Vec::new();
    let mut during_creates = 0;
    for i in 0..opts.latency_patches {
        let idx = first_patched + i;
        let (name, id) = (compute_name(idx), &ids[idx]);
        let posted = creates_posted(sandbox);
        if posted < opts.latency_new {
            during_creates += 1;
        }
        let t0 = unix_now();
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"forProvider": {"powerState": "STOPPED"}}})),
        )
        .await
        .expect("patching powerState");
        let deadline = Instant::now() + PATCH_TIMEOUT;
        loop {
            if let Some(at) = stop_written(sandbox, id, t0) {
                let took = at.saturating_sub(t0);
                eprintln!(
                    "bench: latency {tag}: patch {i} ({name}, {posted} creates posted) → write in {:.3} s",
                    took.as_secs_f64()
                );
                latencies.push(took);
                break;
            }
            if Instant::now() > deadline {
                eprintln!("bench: latency {tag}: no stop of {name} within {PATCH_TIMEOUT:?}");
                latencies.push(Duration::MAX);
                break;
            }
            assert!(
                op.is_running(),
                "the operator exited; see {}",
                op.log.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(PAUSE).await;
    }
    creating.await.expect("creating the new Computes");
    let new_ready = |c: &stratus::providers::strettch::api::Compute| {
        c.metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with(&format!("new-{tag}-")))
            && is_ready(c)
    };
    let creates_ready = watch
        .wait_for(
            opts.latency_new,
            new_ready,
            Duration::from_secs(900),
            Duration::from_millis(100),
        )
        .await
        .map(|at| at - applied);
    let cpu = op.cpu();
    op.kill();

    let stats = sandbox.stats();
    let k = stats
        .keys
        .get(&fingerprint(key))
        .cloned()
        .unwrap_or_default();

    // Back to N objects: the new ones leave Kubernetes and the sandbox without the operator.
    strip_finalizers(&api, new_names.clone()).await;
    for name in &new_names {
        let _ = api.delete(name, &Default::default()).await;
    }
    for c in sandbox.computes() {
        if new_names.contains(&c.host_name) {
            sandbox.delete_compute(&c.id);
        }
    }

    latencies.sort();
    Run {
        mode,
        round,
        latencies,
        patches: opts.latency_patches,
        during_creates,
        creates_ready,
        requests: k.requests,
        served_429: stats.served_429,
        max_per_second: k.max_per_second,
        cpu,
    }
}

pub async fn run(cluster: &Cluster, opts: &Options, report: &mut Report) {
    let n = opts.latency_n;
    let (key, sandbox) = strettch_sandbox(|c| c.rate_limit = LIMIT).await;
    let ids = sandbox.seed_computes(n, vec![]);
    let ns = BenchNs::create(&cluster.client, &format!("latency-{n}")).await;
    ns.install_provider(&sandbox.base_url(), &key, None).await;
    eprintln!("bench: latency: creating {n} Compute objects adopting seeded computes");
    ns.create_computes(n, Some(&ids), 32).await;
    let watch = Watch::start(ns.computes()).await;
    {
        let mut op = Operator::start(
            &cluster.kubeconfig,
            &ns.name,
            &[],
            &opts.logs,
            "latency-settle",
        );
        let settled = watch
            .wait_for(
                n,
                is_settled,
                Duration::from_secs(1200),
                Duration::from_secs(1),
            )
            .await;
        assert!(
            settled.is_ok(),
            "only {:?} of {n} objects settled; see {}",
            settled.err(),
            op.log.display()
        );
        op.kill();
    }

    let rounds = opts.latency_rounds;
    assert!(
        MODES.len() * rounds * opts.latency_patches <= n,
        "latency: {n} objects are too few for {rounds} rounds of {} patches per mode",
        opts.latency_patches
    );
    let mut runs = Vec::new();
    let mut first_patched = 0;
    // STRATUS_BENCH_LATENCY_MODES: a comma-separated subset of the modes' labels' first words
    // and observe modes, e.g. `priority-bulk` (for a closer look at one with debug logs).
    let only = std::env::var("STRATUS_BENCH_LATENCY_MODES").unwrap_or_default();
    let wanted = |m: &Mode| {
        only.trim().is_empty()
            || only
                .split(',')
                .any(|w| w.trim() == format!("{}-{}", m.order, m.observe))
    };
    for round in 1..=rounds {
        for mode in MODES.iter().filter(|m| wanted(m)) {
            eprintln!("bench: latency: {}, round {round}", mode.label);
            let r = one(
                cluster,
                opts,
                &ns,
                &watch,
                &sandbox,
                &key,
                &ids,
                mode,
                round,
                first_patched,
            )
            .await;
            first_patched += opts.latency_patches;
            eprintln!(
                "bench: latency {}, round {round}: p50 {} p99 {} max {} ({} of {} answered)",
                mode.label,
                secs(percentile(&r.latencies, 50.0)),
                secs(percentile(&r.latencies, 99.0)),
                secs(r.latencies.last().copied()),
                answered(&r.latencies),
                r.patches
            );
            runs.push(r);
        }
    }
    drop(watch);
    ns.cleanup().await;
    sandbox.shutdown().await;
    write(report, opts, &runs);
}

fn write(report: &mut Report, opts: &Options, runs: &[Run]) {
    const S: &str = "latency";
    let mut rows = Vec::new();
    for r in runs {
        let case = format!("{} #{}", r.mode.label, r.round);
        let p = |q: f64| percentile(&r.latencies, q);
        for (metric, v) in [
            ("write_latency_p50", p(50.0)),
            ("write_latency_p90", p(90.0)),
            ("write_latency_p99", p(99.0)),
            ("write_latency_max", r.latencies.last().copied()),
        ] {
            match v {
                Some(Duration::MAX) => report.row(S, &case, metric, "timeout", "s"),
                Some(v) => report.row(S, &case, metric, format!("{:.3}", v.as_secs_f64()), "s"),
                None => {}
            }
        }
        report.row(
            S,
            &case,
            "patches_answered",
            answered(&r.latencies),
            "patches",
        );
        report.row(
            S,
            &case,
            "patches_during_creates",
            r.during_creates,
            "patches",
        );
        report.row(S, &case, "api_calls", r.requests, "requests");
        report.row(S, &case, "served_429", r.served_429, "responses");
        report.row(
            S,
            &case,
            "max_calls_in_one_second",
            r.max_per_second,
            "requests",
        );
        report.row(
            S,
            &case,
            "operator_cpu",
            format!("{:.2}", r.cpu.as_secs_f64()),
            "s",
        );
        let creates = match r.creates_ready {
            Ok(d) => {
                report.row(
                    S,
                    &case,
                    "new_computes_ready_after",
                    format!("{:.1}", d.as_secs_f64()),
                    "s",
                );
                format!("{:.1} s", d.as_secs_f64())
            }
            Err(got) => format!("only {got} after 900 s"),
        };
        rows.push(vec![
            r.mode.label.to_string(),
            r.round.to_string(),
            format!("**{}**", secs(p(50.0))),
            secs(p(90.0)),
            format!("**{}**", secs(p(99.0))),
            secs(r.latencies.last().copied()),
            format!("{} / {}", answered(&r.latencies), r.patches),
            format!("{} / {}", r.during_creates, r.patches),
            creates,
            count(r.requests),
            r.served_429.to_string(),
            r.max_per_second.to_string(),
        ]);
    }
    let mut body = format!(
        "{n} Compute objects adopt {n} RUNNING sandbox computes and settle. Then, for each mode, a \
         fresh operator starts with `--resync-interval {RESYNC}` (so observation goes on all the \
         time: in bulk ⌈N/100⌉ list pages a minute, per resource N GETs a minute, more than the \
         key can ever give), waits for its first pass (in bulk, the first listing's pages and \
         a reconcile each; at most 90 s), and {m} new Computes are applied at once (32 in flight). While they are being created the bench patches \
         `spec.forProvider.powerState: STOPPED` on one Ready object at a time, {p} objects in \
         all, {pause} ms apart, and takes the time from just before the patch to the moment the \
         sandbox admitted that compute's `POST /computes/{{id}}/stop`. The sandbox enforces the \
         documented **2 requests/second** and the operator paces itself at its default. Modes:\n\n\
         - *priority, bulk*: the operator as shipped (a change to an existing resource before a \
         create, before urgent reads, before routine observation; namespaces taking turns);\n\
         - *FIFO, bulk*: the same throttle serving in arrival order (`--throttle-order fifo`, \
         a hidden benchmark-only flag);\n\
         - *priority, per-resource*: the shipped order with one GET per resource per resync \
         (`--observe-mode per-resource`, the common operator design).\n\n\
         The modes take turns, round after round, so each round is a repeat under the same \
         conditions; different objects are patched in each. With {p} patches the p99 by nearest \
         rank is the largest. A patch whose write did not come within {timeout} s counts as slower \
         than any other (`> {timeout} s`). *During creates*: patches made while some \
         new Compute had not been POSTed yet. Target: p99 ≤ 2 s with priorities.\n\n",
        n = opts.latency_n,
        m = opts.latency_new,
        p = opts.latency_patches,
        pause = PAUSE.as_millis(),
        timeout = PATCH_TIMEOUT.as_secs(),
    );
    body.push_str(&table(
        &[
            "mode",
            "round",
            "p50",
            "p90",
            "p99",
            "max",
            "writes seen",
            "during creates",
            "new Computes all Ready after",
            "API calls",
            "429s",
            "max calls in one second",
        ],
        &rows,
    ));
    report.sections.push((
        "6. A user's change under load: patch → cloud write".into(),
        body,
    ));
}
