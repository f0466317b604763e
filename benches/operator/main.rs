//! `cargo bench --bench operator`: the operator's performance claims, measured side by side in
//! one run against a real kube-apiserver, the in-process Strettch sandbox and the real `stratus`
//! binary as a child process.
//!
//! 1. convergence: N Computes applied at once under 2 requests/second → time to all Ready;
//! 2. steady: API calls per resync, bulk observation against the per-resource baseline;
//! 3. scale: memory and CPU with 10,000 objects;
//! 4. overhead: reconciles per second and CPU per reconcile with the rate limit lifted;
//! 5. providers: 500 CloudAPI Releases under each dialect's limits and 100 Vertra Applications
//!    with their Databases under a plan's → time, the fullest window of each limit, the 429s
//!    and the budget used; then each provider's calls per resync, bulk and per resource;
//! 6. latency: a user's change while N objects are observed and M created, under 2 req/s → the
//!    time from the patch to the cloud's write, with the throttle's priorities, a FIFO baseline
//!    and per-resource observation, each run several times;
//! 7. faults: N Computes under 500s, lost answers, forgotten idempotency keys and operator
//!    kills → time against the fault-free run, calls, duplicates and leaks.
//!
//! Writes docs/benchmarks/results.{md,csv,png}; see docs/benchmarks/README.md for the knobs.
//! These are measurements written to files, not assertions: the bench fails only when it cannot
//! measure (an object never settles, the operator exits).

mod cluster;
mod convergence;
mod faults;
mod latency;
mod memory;
mod plot;
mod process;
mod providers;
mod report;
mod resync;
mod scale;
mod steady;
mod vertra;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use report::{Machine, Report};

/// Counts the heap bytes a drop frees, to weigh the operator's structures (`memory.rs`).
#[global_allocator]
static ALLOC: memory::Counting = memory::Counting;

const SECTIONS: [&str; 7] = [
    "convergence",
    "steady",
    "scale",
    "overhead",
    "providers",
    "latency",
    "faults",
];

pub struct Options {
    pub quick: bool,
    pub sections: Vec<&'static str>,
    pub convergence_sizes: Vec<usize>,
    pub steady_sizes: Vec<usize>,
    pub scale_n: usize,
    /// Section 3's `--resync-interval` (`None`: the operator's default, 10 minutes).
    pub scale_resync: Option<String>,
    /// Releases per CloudAPI dialect in the providers section.
    pub releases_n: usize,
    /// The CloudAPI dialects the providers section runs (`cloudplatform` takes 15 minutes).
    pub cloudapi_dialects: Vec<String>,
    /// Vertra Applications (each with its Database) in the providers section.
    pub vertra_n: usize,
    /// The deploys per hour the Vertra sandbox allows and the ProviderConfig declares; `None`:
    /// the plan's own (60), which makes 100 apps take over an hour.
    pub vertra_deploys_per_hour: Option<u32>,
    /// Latency: Ready objects observed, new ones created, patches timed, rounds of every mode.
    pub latency_n: usize,
    pub latency_new: usize,
    pub latency_patches: usize,
    pub latency_rounds: usize,
    /// Faults: Computes applied, operator kills.
    pub faults_n: usize,
    pub faults_kills: usize,
    /// `--resync-interval` for the steady-state measurement.
    pub resync: Duration,
    /// Whole resync intervals counted in the steady-state window.
    pub window_resyncs: u32,
    /// Scale: wait after settling, then the CPU window.
    pub quiet: Duration,
    pub scale_window: Duration,
    /// Where results.{md,csv,png} go.
    pub out: PathBuf,
    /// Operator logs.
    pub logs: PathBuf,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn sizes(name: &str, default: &[usize]) -> Vec<usize> {
    match env(name) {
        Some(v) => v
            .split(',')
            .map(|s| {
                s.trim()
                    .replace('_', "")
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: {s:?} is not a number"))
            })
            .collect(),
        None => default.to_vec(),
    }
}

impl Options {
    fn parse() -> Options {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut quick = env("STRATUS_BENCH_QUICK").is_some_and(|v| v != "0");
        let mut selected = env("STRATUS_BENCH");
        let mut i = 0;
        while i < args.len() {
            match args[i].as_str() {
                "--quick" => quick = true,
                "--sections" if i + 1 < args.len() => {
                    selected = Some(args[i + 1].clone());
                    i += 1;
                }
                a if a.starts_with("--sections=") => {
                    selected = Some(a["--sections=".len()..].to_string())
                }
                // `cargo bench` passes --bench; filters and other harness flags do not apply.
                _ => {}
            }
            i += 1;
        }
        let sections: Vec<&'static str> = match &selected {
            Some(list) if list != "all" => {
                let wanted: Vec<String> = list.split(',').map(|s| s.trim().to_string()).collect();
                for w in &wanted {
                    assert!(
                        SECTIONS.contains(&w.as_str()),
                        "unknown section {w:?}; choose from {SECTIONS:?} (or all)"
                    );
                }
                SECTIONS
                    .iter()
                    .copied()
                    .filter(|s| wanted.iter().any(|w| w == s))
                    .collect()
            }
            _ => SECTIONS.to_vec(),
        };
        let full_run = !quick && sections.len() == SECTIONS.len();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let target = env("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let work = target.join("operator-bench");
        // Only a full run replaces the committed results, unless told where to write.
        let out = env("STRATUS_BENCH_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                if full_run {
                    root.join("docs/benchmarks")
                } else {
                    work.clone()
                }
            });
        let resync = env("STRATUS_BENCH_RESYNC")
            .map(|v| stratus::cli::parse_duration(&v).expect("STRATUS_BENCH_RESYNC"))
            .unwrap_or(if quick {
                Duration::from_secs(10)
            } else {
                Duration::from_secs(20)
            });
        let window_resyncs = env("STRATUS_BENCH_WINDOW")
            .map(|v| {
                v.parse()
                    .expect("STRATUS_BENCH_WINDOW: a number of resyncs")
            })
            .unwrap_or(if quick { 2 } else { 3 });
        Options {
            quick,
            sections,
            convergence_sizes: sizes(
                "STRATUS_BENCH_CONVERGENCE_N",
                if quick { &[10, 50] } else { &[10, 100, 500] },
            ),
            steady_sizes: sizes(
                "STRATUS_BENCH_STEADY_N",
                if quick {
                    &[100, 500]
                } else {
                    &[100, 1000, 5000]
                },
            ),
            scale_n: sizes(
                "STRATUS_BENCH_SCALE_N",
                if quick { &[1000] } else { &[10_000] },
            )[0],
            scale_resync: env("STRATUS_BENCH_SCALE_RESYNC").inspect(|v| {
                stratus::cli::parse_duration(v).expect("STRATUS_BENCH_SCALE_RESYNC");
            }),
            releases_n: sizes(
                "STRATUS_BENCH_RELEASES_N",
                if quick { &[50] } else { &[500] },
            )[0],
            cloudapi_dialects: env("STRATUS_BENCH_CLOUDAPI_DIALECTS")
                .unwrap_or_else(|| "cloudapi,cloudplatform".into())
                .split(',')
                .map(|d| d.trim().to_string())
                .collect(),
            vertra_n: sizes("STRATUS_BENCH_VERTRA_N", if quick { &[20] } else { &[100] })[0],
            vertra_deploys_per_hour: match env("STRATUS_BENCH_VERTRA_DEPLOYS_PER_HOUR").as_deref() {
                Some("plan") => None,
                Some(v) => {
                    Some(v.parse().expect(
                        "STRATUS_BENCH_VERTRA_DEPLOYS_PER_HOUR: a number of deploys, or plan",
                    ))
                }
                None => Some(3600),
            },
            latency_n: sizes(
                "STRATUS_BENCH_LATENCY_N",
                if quick { &[500] } else { &[5000] },
            )[0],
            latency_new: sizes(
                "STRATUS_BENCH_LATENCY_NEW",
                if quick { &[40] } else { &[200] },
            )[0],
            latency_patches: sizes(
                "STRATUS_BENCH_LATENCY_PATCHES",
                if quick { &[10] } else { &[50] },
            )[0],
            latency_rounds: sizes("STRATUS_BENCH_LATENCY_ROUNDS", &[2])[0],
            faults_n: sizes("STRATUS_BENCH_FAULTS_N", if quick { &[20] } else { &[100] })[0],
            faults_kills: sizes("STRATUS_BENCH_FAULTS_KILLS", &[10])[0],
            resync,
            window_resyncs,
            quiet: Duration::from_secs(if quick { 5 } else { 30 }),
            scale_window: Duration::from_secs(if quick { 15 } else { 60 }),
            out,
            logs: work.join("logs"),
        }
    }

    fn wants(&self, s: &str) -> bool {
        self.sections.contains(&s)
    }
}

fn main() {
    let opts = Options::parse();
    eprintln!(
        "bench: sections {:?}{}; results to {}; operator logs in {}",
        opts.sections,
        if opts.quick { " (quick)" } else { "" },
        opts.out.display(),
        opts.logs.display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(opts));
}

async fn run(opts: Options) {
    let started = Instant::now();
    let machine = Machine::describe();
    let load_before = report::load_average();
    let mut cluster = cluster::Cluster::connect().await;
    let mut report = Report::default();
    let mut timings = Vec::new();

    if opts.wants("convergence") {
        let t = Instant::now();
        convergence::run(&cluster, &opts, &mut report).await;
        timings.push(("convergence", t.elapsed()));
    }
    if opts.wants("steady") {
        let t = Instant::now();
        steady::run(&cluster, &opts, &mut report).await;
        timings.push(("steady", t.elapsed()));
    }
    if opts.wants("scale") || opts.wants("overhead") {
        let t = Instant::now();
        scale::run(
            &cluster,
            &opts,
            &mut report,
            opts.wants("scale"),
            opts.wants("overhead"),
        )
        .await;
        timings.push(("scale + overhead", t.elapsed()));
    }
    if opts.wants("providers") {
        let t = Instant::now();
        providers::run(&cluster, &opts, &mut report).await;
        timings.push(("providers", t.elapsed()));
    }
    if opts.wants("latency") {
        let t = Instant::now();
        latency::run(&cluster, &opts, &mut report).await;
        timings.push(("latency", t.elapsed()));
    }
    if opts.wants("faults") {
        let t = Instant::now();
        faults::run(&cluster, &opts, &mut report).await;
        timings.push(("faults", t.elapsed()));
    }
    let apiserver = cluster.version.clone();
    cluster.stop();
    let load_after = report::load_average();
    let total = started.elapsed();

    std::fs::create_dir_all(&opts.out).expect("output directory");
    let png = opts.out.join("results.png");
    let plotted = match plot::draw(&report, &png) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("bench: no plot: {e}");
            false
        }
    };
    let md = markdown(
        &opts,
        &machine,
        &report,
        &apiserver,
        &load_before,
        &load_after,
        total,
        &timings,
        plotted,
    );
    std::fs::write(opts.out.join("results.md"), md).expect("writing results.md");
    std::fs::write(opts.out.join("results.csv"), report.csv()).expect("writing results.csv");
    eprintln!(
        "bench: done in {:.1} min; wrote {}/results.md and results.csv{}",
        total.as_secs_f64() / 60.0,
        opts.out.display(),
        if plotted { " and results.png" } else { "" }
    );
}

#[allow(clippy::too_many_arguments)]
fn markdown(
    opts: &Options,
    m: &Machine,
    report: &Report,
    apiserver: &str,
    load_before: &str,
    load_after: &str,
    total: Duration,
    timings: &[(&str, Duration)],
    plotted: bool,
) -> String {
    let mut md = String::from("# Operator benchmark results\n\n");
    md.push_str(
        "Generated by `cargo bench --bench operator` (see [README.md](README.md) for what each \
         section measures and how to run a subset); the same figures are in \
         [results.csv](results.csv).\n\n",
    );
    if opts.quick {
        md.push_str("**Quick mode: smaller sizes, a smoke run, not the reference figures.**\n\n");
    }
    md.push_str("## Machine and run\n\n");
    let run_time = timings
        .iter()
        .map(|(s, d)| format!("{s} {:.1} min", d.as_secs_f64() / 60.0))
        .collect::<Vec<_>>()
        .join(", ");
    md.push_str(&report::table(
        &["", ""],
        &[
            vec!["CPU".into(), m.cpu_model.clone()],
            vec!["cores (`nproc`)".into(), m.nproc.to_string()],
            vec!["memory".into(), m.mem_total.clone()],
            vec!["kernel".into(), m.kernel.clone()],
            vec!["date".into(), m.date.clone()],
            vec!["commit".into(), m.git.clone()],
            vec!["toolchain".into(), m.rustc.clone()],
            vec![
                "Kubernetes".into(),
                format!("kube-apiserver {apiserver} + etcd on loopback, same machine"),
            ],
            vec![
                "load average (1/5/15 min)".into(),
                format!("{load_before} before, {load_after} after"),
            ],
            vec![
                "run time".into(),
                format!("{:.1} min ({run_time})", total.as_secs_f64() / 60.0),
            ],
            vec![
                "profile".into(),
                "`bench` (optimised, as `cargo bench` builds it); the operator is the real `stratus` binary, the sandbox runs in the bench process".into(),
            ],
        ],
    ));
    md.push('\n');
    if plotted {
        md.push_str("![API calls per resync and convergence time](results.png)\n\n");
    }
    if !report.notes.is_empty() {
        md.push_str("Seen during the run:\n\n");
        for n in &report.notes {
            md.push_str(&format!("- {n}\n"));
        }
        md.push('\n');
    }
    for (title, body) in &report.sections {
        md.push_str(&format!("## {title}\n\n{body}\n"));
    }
    md
}
