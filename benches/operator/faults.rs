//! Section 7: faults. N Computes applied at once under 2 requests/second while the sandbox
//! answers 20% of requests 500 (nothing applied), drops 10% of writes' connections after
//! applying them, and forgets every Idempotency-Key at once, and the operator is killed
//! (SIGKILL) 10 times at random moments and started again. Against the same N without faults:
//! time to all Ready, calls made, and what must be 0 — duplicates (two computes for one object)
//! and leaks (a compute no object owns, or an object pointing at none).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use stratus::api::common::EXTERNAL_NAME;
use stratus::providers::strettch::sim::Faults;
use stratus::providers::strettch::sim::key_fingerprint as fingerprint;

use crate::Options;
use crate::cluster::{BenchNs, Cluster, Watch, is_ready, list_computes, strettch_sandbox};
use crate::process::Operator;
use crate::report::{Report, count, table};

const LIMIT: u32 = 2;
/// The seed of the kill times, so a rerun kills at the same moments.
const SEED: u64 = 14;

struct Run {
    label: &'static str,
    ready: Result<Duration, usize>,
    kills: usize,
    requests: u64,
    served_429: u64,
    creates: u64,
    computes: usize,
    duplicates: usize,
    leaked: usize,
    dangling: usize,
}

async fn one(cluster: &Cluster, opts: &Options, faulty: bool) -> Run {
    let n = opts.faults_n;
    let label = if faulty { "faults" } else { "fault-free" };
    let (key, sandbox) = strettch_sandbox(|c| {
        c.rate_limit = LIMIT;
        if faulty {
            // Forgotten at once: a retry of a create whose answer was lost is a new request.
            c.idempotency_ttl = Duration::ZERO;
        }
    })
    .await;
    let ns = BenchNs::create(&cluster.client, &format!("faults-{label}")).await;
    ns.install_provider(&sandbox.base_url(), &key, None).await;
    let watch = Watch::start(ns.computes()).await;
    let log = |i: usize| format!("faults-{label}-{i}");
    let mut op = Operator::start(&cluster.kubeconfig, &ns.name, &[], &opts.logs, &log(0));
    op.wait_started(Duration::from_secs(60), Duration::from_secs(5))
        .await;
    if faulty {
        sandbox.set_faults(Faults {
            error_rate: 0.2,
            drop_after_write_rate: 0.1,
            ..Faults::default()
        });
    }

    let started = Instant::now();
    ns.create_computes(n, None, 32).await;
    // Kills at random moments within the fault-free floor (N creates at 2/s), so they land
    // while creates are in flight.
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    let span = (n as f64 / LIMIT as f64).max(10.0);
    let mut kill_at: Vec<f64> = if faulty {
        (0..opts.faults_kills)
            .map(|_| rng.random_range(0.0..span))
            .collect()
    } else {
        Vec::new()
    };
    kill_at.sort_by(f64::total_cmp);
    let mut kills = 0;
    for at in &kill_at {
        let wait = Duration::from_secs_f64(*at).saturating_sub(started.elapsed());
        tokio::time::sleep(wait).await;
        op.kill();
        kills += 1;
        op = Operator::start(&cluster.kubeconfig, &ns.name, &[], &opts.logs, &log(kills));
    }
    let timeout = Duration::from_secs_f64(10.0 * n as f64 / LIMIT as f64 + 300.0);
    let ready = watch
        .wait_for(n, is_ready, timeout, Duration::from_millis(100))
        .await
        .map(|at| at - started);
    op.kill();
    sandbox.set_faults(Faults::default());

    let stats = sandbox.stats();
    let k = stats
        .keys
        .get(&fingerprint(&key))
        .cloned()
        .unwrap_or_default();
    let writes = sandbox.writes();
    let creates = writes
        .iter()
        .filter(|w| w.method == "POST" && w.path.ends_with("/computes"))
        .count() as u64;
    // What exists against what is declared: each object's hostName is its name.
    let objects = list_computes(&ns.computes()).await;
    let computes = sandbox.computes();
    let mut by_host: HashMap<&str, usize> = HashMap::new();
    for c in &computes {
        *by_host.entry(c.host_name.as_str()).or_default() += 1;
    }
    let names: Vec<&str> = objects
        .iter()
        .filter_map(|o| o.metadata.name.as_deref())
        .collect();
    let duplicates = by_host.values().map(|c| c.saturating_sub(1)).sum();
    let leaked = by_host.keys().filter(|h| !names.contains(h)).count();
    let dangling = objects
        .iter()
        .filter(|o| {
            let id = o
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(EXTERNAL_NAME));
            !id.is_some_and(|id| computes.iter().any(|c| &c.id == id))
        })
        .count();
    drop(watch);
    ns.cleanup().await;
    sandbox.shutdown().await;
    Run {
        label,
        ready,
        kills,
        requests: k.requests,
        served_429: stats.served_429,
        creates,
        computes: computes.len(),
        duplicates,
        leaked,
        dangling,
    }
}

pub async fn run(cluster: &Cluster, opts: &Options, report: &mut Report) {
    let mut runs = Vec::new();
    for faulty in [false, true] {
        eprintln!(
            "bench: faults: {}",
            if faulty { "with faults" } else { "fault-free" }
        );
        let r = one(cluster, opts, faulty).await;
        eprintln!(
            "bench: faults {}: ready {:?}, {} requests, {} creates, {} duplicates, {} leaked, {} dangling",
            r.label, r.ready, r.requests, r.creates, r.duplicates, r.leaked, r.dangling
        );
        runs.push(r);
    }
    write(report, opts, &runs);
}

fn write(report: &mut Report, opts: &Options, runs: &[Run]) {
    const S: &str = "faults";
    let base = runs
        .iter()
        .find(|r| r.label == "fault-free")
        .and_then(|r| r.ready.ok());
    let mut rows = Vec::new();
    for r in runs {
        let case = format!("N={} {}", opts.faults_n, r.label);
        let (ready, vs) = match r.ready {
            Ok(d) => {
                report.row(
                    S,
                    &case,
                    "time_to_all_ready",
                    format!("{:.1}", d.as_secs_f64()),
                    "s",
                );
                (
                    format!("{:.1} s", d.as_secs_f64()),
                    base.map(|b| format!("{:.2}×", d.as_secs_f64() / b.as_secs_f64()))
                        .unwrap_or_else(|| "–".into()),
                )
            }
            Err(got) => (format!("only {got} Ready at the timeout"), "–".into()),
        };
        report.row(S, &case, "kills", r.kills, "kills");
        report.row(S, &case, "api_calls", r.requests, "requests");
        report.row(S, &case, "creates_posted", r.creates, "requests");
        report.row(S, &case, "served_429", r.served_429, "responses");
        report.row(S, &case, "duplicates", r.duplicates, "computes");
        report.row(S, &case, "leaked", r.leaked, "computes");
        report.row(
            S,
            &case,
            "objects_without_their_compute",
            r.dangling,
            "objects",
        );
        rows.push(vec![
            r.label.to_string(),
            opts.faults_n.to_string(),
            r.kills.to_string(),
            ready,
            vs,
            format!(
                "{} ({:.2}/resource)",
                count(r.requests),
                r.requests as f64 / opts.faults_n as f64
            ),
            r.creates.to_string(),
            r.served_429.to_string(),
            r.computes.to_string(),
            format!("**{}**", r.duplicates),
            format!("**{}**", r.leaked),
            format!("**{}**", r.dangling),
        ]);
    }
    let mut body = format!(
        "{n} Compute objects are applied at once (32 in flight) to a running operator, against \
         a sandbox enforcing 2 requests/second with 200 ms lifecycles. *faults*: the sandbox \
         answers 20% of requests 500 (nothing applied), applies 10% of writes and then drops \
         the connection without an answer, and forgets every Idempotency-Key at once (so a \
         retried create is a new request to it); the operator is killed with SIGKILL {k} times \
         at moments drawn (seed {SEED}) from the first N/2 seconds and started again at once. \
         *fault-free*: the same without any of it. The clock runs from the first apply until \
         every object is Ready for its generation. Then the sandbox's computes are compared \
         with the objects (each compute's hostName is its object's name): *duplicates* are \
         computes beyond one per object, *leaked* computes no object declares, *without their \
         compute* objects whose `stratus.dev/external-name` names no compute. *Create requests* \
         counts every `POST /computes` the rate limit let through (those answered 500, which \
         applied nothing, included). *API calls* counts every request the rate limit let through, \
         the 500s included.\n\n",
        n = opts.faults_n,
        k = opts.faults_kills,
    );
    body.push_str(&table(
        &[
            "run",
            "N",
            "operator kills",
            "all Ready after",
            "× fault-free",
            "API calls",
            "create requests",
            "429s",
            "computes at the end",
            "duplicates",
            "leaked",
            "without their compute",
        ],
        &rows,
    ));
    report.sections.push((
        "7. Faults: 500s, lost answers, forgotten keys, kills".into(),
        body,
    ));
}
