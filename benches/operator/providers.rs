//! Section 5: every provider under its own limits. N CloudAPI Releases applied at once to an
//! operator that is already running (Vertra's part is in `vertra.rs`), against the sandbox enforcing the dialect's documented
//! limits — `cloudapi` 1,000 requests/minute per key (fixed clock minutes), `cloudplatform`
//! 120/minute per key and 600/10 minutes per workspace (rolling, both at once) — until every
//! Release is Ready: time against the floor the limits set, calls per resource, the most
//! requests the sandbox let through in any window of each limit (never above the limit), the
//! 429s it served, and how much of the binding limit's budget the run used. Then, with the
//! `cloudapi` dialect's Releases settled, what a resync costs in bulk and per resource.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{ApiResource, DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use stratus::api::ProviderConfig;
use stratus::api::provider_config::CloudApiDialect;
use stratus::cloud::ApiKey;
use stratus::cloud::throttle::Policy;
use stratus::providers::cloudapi::api::Release;
use stratus::providers::cloudapi::client::CloudApiClient;
use stratus::providers::cloudapi::model::ProjectCreate;
use stratus::providers::cloudapi::sim::{
    self, CLOUDAPI_PER_KEY_PER_MINUTE, CLOUDPLATFORM_PER_KEY_PER_MINUTE,
    CLOUDPLATFORM_PER_WORKSPACE_PER_TEN_MINUTES, CloudApiSimConfig, Dialect,
};
use stratus::sim::rate_limit::{Limit, Scope, Window, capacity, earliest_schedule};

use crate::Options;
use crate::cluster::{BenchNs, Cluster, strip_finalizers};
use crate::process::Operator;
use crate::report::{Report, count, table};
use crate::resync::{self, Mode};
use crate::vertra;

const S: &str = "providers";

fn limits(dialect: Dialect) -> Vec<Limit> {
    let minute = Duration::from_secs(60);
    match dialect {
        Dialect::Cloudapi => vec![Limit::new(
            CLOUDAPI_PER_KEY_PER_MINUTE.into(),
            minute,
            Scope::Key,
            Window::Fixed,
        )],
        Dialect::Cloudplatform => vec![
            Limit::new(
                CLOUDPLATFORM_PER_KEY_PER_MINUTE.into(),
                minute,
                Scope::Key,
                Window::Rolling,
            ),
            Limit::new(
                CLOUDPLATFORM_PER_WORKSPACE_PER_TEN_MINUTES.into(),
                10 * minute,
                Scope::Key,
                Window::Rolling,
            ),
        ],
    }
}

/// The rate the limits allow for ever (requests a second): the lowest of N / W.
fn sustained_rate(limits: &[Limit]) -> f64 {
    limits
        .iter()
        .map(|l| l.requests as f64 / l.per.as_secs_f64())
        .fold(f64::INFINITY, f64::min)
}

/// Seconds before the limits let the last of `calls` requests go (see [`earliest_schedule`]).
fn floor(limits: &[Limit], calls: usize) -> f64 {
    earliest_schedule(limits, calls)
        .last()
        .map_or(0.0, Duration::as_secs_f64)
}

struct Run {
    dialect: Dialect,
    n: usize,
    ready: Result<Duration, usize>,
    /// From the first request the operator made to the last, at the sandbox.
    busy: Duration,
    requests: u64,
    max_key_minute: usize,
    max_workspace_ten_minutes: usize,
    served_429: u64,
    creates: u64,
    builds: u64,
    routes: Vec<(String, u64)>,
    cpu: Duration,
    hwm_mib: f64,
    steady: Vec<resync::Count>,
}

/// The resync of the steady-state count: per-resource observation of 500 Releases (a GET each)
/// fits in the `cloudapi` dialect's 1,000 a minute between two resyncs. (`cloudplatform`'s one
/// request a second could not: 500 GETs take over 8 minutes, so it is counted in bulk only
/// through the convergence run's listings.)
const STEADY_RESYNC: Duration = Duration::from_secs(60);
/// In quick mode (50 Releases).
const STEADY_RESYNC_QUICK: Duration = Duration::from_secs(20);

fn dialect_name(d: Dialect) -> &'static str {
    match d {
        Dialect::Cloudapi => "cloudapi",
        Dialect::Cloudplatform => "cloudplatform",
    }
}

/// `n` projects made at the sandbox from outside Kubernetes, with its limits lifted; returns
/// their ids. The Releases deploy to them.
async fn seed_projects(
    sandbox: &sim::CloudApiSimHandle,
    dialect: Dialect,
    key: &str,
    n: usize,
) -> Vec<String> {
    let client = CloudApiClient::new(
        match dialect {
            Dialect::Cloudapi => CloudApiDialect::CloudApi,
            Dialect::Cloudplatform => CloudApiDialect::CloudPlatform,
        },
        &sandbox.root_url(),
        ApiKey::new(key.to_string()),
        Policy::new(Vec::new(), None),
    )
    .expect("a CloudAPI client");
    let region = (dialect == Dialect::Cloudapi).then(|| "us-east-1".to_string());
    futures::stream::iter(0..n)
        .map(|i| {
            let client = &client;
            let body = ProjectCreate {
                name: format!("bench-{i:04}"),
                region: region.clone(),
            };
            async move {
                client
                    .create_project(&body, uuid::Uuid::new_v4())
                    .await
                    .expect("seeding a project")
                    .id
            }
        })
        .buffered(16)
        .collect()
        .await
}

async fn install_provider(ns: &BenchNs, endpoint: &str, key: &str, dialect: Dialect) {
    let mut cloudapi = json!({"dialect": dialect_name(dialect)});
    if dialect == Dialect::Cloudplatform {
        cloudapi["workspace"] = json!(sim::DEFAULT_ACCOUNT);
    }
    ns.install("cloudapi", endpoint, key, json!({"cloudapi": cloudapi}))
        .await;
}

async fn create_releases(api: &Api<Release>, provider_config: &str, projects: &[String]) {
    futures::stream::iter(projects.iter().enumerate())
        .map(|(i, project)| {
            let obj: Release = serde_json::from_value(json!({
                "apiVersion": "cloudapi.stratus.dev/v1alpha1", "kind": "Release",
                "metadata": {"name": format!("r-{i:04}")},
                "spec": {
                    "providerConfigRef": {"name": provider_config},
                    "forProvider": {"projectId": project, "commit": format!("c{i}")},
                },
            }))
            .expect("a Release");
            async move {
                api.create(&PostParams::default(), &obj)
                    .await
                    .expect("creating a Release");
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
}

/// Ready=True for the current generation, live at the commit asked for.
fn is_live(r: &Release) -> bool {
    let v = serde_json::to_value(r).unwrap_or_default();
    let ready = v["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    ready
        && v["status"]["observedGeneration"].as_i64() == r.metadata.generation
        && v["status"]["atProvider"]["current"]["commit"] == v["spec"]["forProvider"]["commit"]
}

async fn wait_all_live(api: &Api<Release>, n: usize, timeout: Duration) -> Result<Instant, usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = match api.list(&ListParams::default()).await {
            Ok(list) => list.items.iter().filter(|r| is_live(r)).count(),
            Err(e) => {
                eprintln!("bench: listing Releases: {e}");
                0
            }
        };
        if got >= n {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            return Err(got);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Strips the Releases' finalizers (the operator is stopped) and deletes them with the rest.
async fn cleanup(client: &Client, ns: BenchNs) {
    let api: Api<Release> = Api::namespaced(client.clone(), &ns.name);
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .map(|l| l.items.iter().map(|r| r.name_any()).collect())
        .unwrap_or_default();
    strip_finalizers(&api, names).await;
    let _ = api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let _ = secrets
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
    let pcs: Api<ProviderConfig> = Api::all(client.clone());
    let _ = pcs.delete(&ns.name, &DeleteParams::default()).await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let _ = nss.delete(&ns.name, &DeleteParams::default()).await;
}

async fn one(cluster: &Cluster, opts: &Options, dialect: Dialect, n: usize) -> Run {
    let key = format!("sk_bench_{}", uuid::Uuid::new_v4().simple());
    let mut config = CloudApiSimConfig::for_tests(dialect, &[&key]);
    // Seeding is not part of the run: no limit until the projects exist.
    config.per_key_per_minute = Some(0);
    config.per_workspace_per_ten_minutes = Some(0);
    let sandbox = sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sandbox");
    let projects = seed_projects(&sandbox, dialect, &key, n).await;
    // The documented limits from here on, their windows empty.
    sandbox.set_per_key_per_minute(None);
    sandbox.set_per_workspace_per_ten_minutes(None);
    sandbox.reset_stats();

    let label = format!("{}-{n}", dialect_name(dialect));
    let ns = BenchNs::create(&cluster.client, &format!("rel-{label}")).await;
    install_provider(&ns, &sandbox.root_url(), &key, dialect).await;
    let releases: Api<Release> = Api::namespaced(cluster.client.clone(), &ns.name);
    let mut op = Operator::start(
        &cluster.kubeconfig,
        &ns.name,
        &[],
        &opts.logs,
        &format!("providers-{label}"),
    );
    op.wait_started(Duration::from_secs(60), Duration::from_secs(5))
        .await;

    let started = Instant::now();
    create_releases(&releases, ns.provider_config(), &projects).await;
    let lim = limits(dialect);
    // Generous: three times the floor of two calls per Release, plus five minutes.
    let timeout = Duration::from_secs_f64(3.0 * floor(&lim, 2 * n) + 300.0);
    let ready = wait_all_live(&releases, n, timeout)
        .await
        .map(|at| at - started);
    let cpu = op.cpu();
    let hwm_mib = op.mem().hwm_mib();
    op.kill();

    let times = sandbox.key_request_times(&key);
    let busy = match (times.first(), times.last()) {
        (Some(a), Some(b)) => *b - *a,
        _ => Duration::ZERO,
    };
    let stats = sandbox.stats();
    let max = sandbox.max_in_window();
    let mut routes: Vec<(String, u64)> = stats.requests_by_route.into_iter().collect();
    routes.sort_by_key(|r| std::cmp::Reverse(r.1));
    let mut run = Run {
        dialect,
        n,
        ready,
        busy,
        requests: times.len() as u64,
        max_key_minute: max.per_key_per_minute,
        max_workspace_ten_minutes: max.per_workspace_per_ten_minutes,
        served_429: sandbox.served_429().total(),
        creates: stats.creates.deployments,
        builds: stats.builds,
        routes,
        cpu,
        hwm_mib,
        steady: Vec::new(),
    };
    if dialect == Dialect::Cloudapi && run.ready.is_ok() {
        let every = if opts.quick {
            STEADY_RESYNC_QUICK
        } else {
            STEADY_RESYNC
        };
        for mode in [Mode::Bulk, Mode::PerResource] {
            eprintln!("bench: providers, CloudAPI steady state, {}", mode.flag());
            run.steady.push(
                resync::count(
                    cluster,
                    opts,
                    &ns.name,
                    "CloudAPI (`cloudapi`)",
                    n,
                    mode,
                    every,
                    sustained_rate(&limits(dialect)) * every.as_secs_f64(),
                    &ApiResource::erase::<Release>(&()),
                    || sandbox.stats().requests_by_route,
                )
                .await,
            );
        }
    }
    cleanup(&cluster.client, ns).await;
    sandbox.shutdown().await;
    run
}

pub async fn run(cluster: &Cluster, opts: &Options, report: &mut Report) {
    let mut runs = Vec::new();
    for dialect in [Dialect::Cloudapi, Dialect::Cloudplatform]
        .into_iter()
        .filter(|d| opts.cloudapi_dialects.iter().any(|w| w == dialect_name(*d)))
    {
        let n = opts.releases_n;
        eprintln!(
            "bench: providers, {} N = {n} Releases",
            dialect_name(dialect)
        );
        let r = one(cluster, opts, dialect, n).await;
        match r.ready {
            Ok(d) => eprintln!(
                "bench: {} N = {n}: all live in {:.1} s, {} requests, {} 429s, max in window {} / {}",
                dialect_name(dialect),
                d.as_secs_f64(),
                r.requests,
                r.served_429,
                r.max_key_minute,
                r.max_workspace_ten_minutes
            ),
            Err(got) => eprintln!(
                "bench: {} N = {n}: only {got} live at the timeout",
                dialect_name(dialect)
            ),
        }
        runs.push(r);
    }

    let mut rows = Vec::new();
    let mut route_rows = Vec::new();
    for r in &runs {
        let lim = limits(r.dialect);
        let case = format!("{} N={}", dialect_name(r.dialect), r.n);
        let rate = sustained_rate(&lim);
        let floor_made = floor(&lim, r.requests as usize);
        // One create per Release and one list page (100 deployments) per 100 to see them live.
        let min_calls = r.n + r.n.div_ceil(100);
        let floor_min = floor(&lim, min_calls);
        let paced_made = r.requests as f64 / rate;
        let paced_min = min_calls as f64 / rate;
        let (ready_text, vs_floor, used) = match r.ready {
            Ok(d) => {
                let s = d.as_secs_f64();
                report.row(S, &case, "time_to_all_ready", format!("{s:.1}"), "s");
                let span = r.busy.as_secs_f64();
                // The budget the limits offered while the operator was calling: at their
                // sustained rate, and from empty windows (bursts included).
                let paced_offered = (span * rate).max(1.0);
                let offered = capacity(&lim, r.busy).max(1);
                let used_paced = r.requests as f64 / paced_offered;
                let used_empty = r.requests as f64 / offered as f64;
                report.row(
                    S,
                    &case,
                    "budget_used_of_sustained_rate",
                    format!("{used_paced:.3}"),
                    "ratio",
                );
                report.row(
                    S,
                    &case,
                    "budget_used_of_empty_windows",
                    format!("{used_empty:.3}"),
                    "ratio",
                );
                (
                    format!("{s:.1} s"),
                    format!("{:.2}× / {:.2}×", s / paced_made, s / paced_min),
                    format!(
                        "{:.0}% / {:.0}% ({} requests in {span:.0} s)",
                        100.0 * used_paced,
                        100.0 * used_empty,
                        r.requests,
                    ),
                )
            }
            Err(got) => {
                report.row(S, &case, "time_to_all_ready", "timeout", "s");
                report.row(S, &case, "ready_at_timeout", got, "objects");
                (
                    format!("timeout ({got}/{} live)", r.n),
                    "—".into(),
                    "—".into(),
                )
            }
        };
        report.row(
            S,
            &case,
            "floor_sustained_calls_made",
            format!("{paced_made:.1}"),
            "s",
        );
        report.row(
            S,
            &case,
            "floor_sustained_min_calls",
            format!("{paced_min:.1}"),
            "s",
        );
        report.row(
            S,
            &case,
            "floor_empty_windows_calls_made",
            format!("{floor_made:.1}"),
            "s",
        );
        report.row(
            S,
            &case,
            "floor_empty_windows_min_calls",
            format!("{floor_min:.1}"),
            "s",
        );
        report.row(S, &case, "api_calls", r.requests, "requests");
        report.row(
            S,
            &case,
            "api_calls_per_resource",
            format!("{:.3}", r.requests as f64 / r.n as f64),
            "requests",
        );
        report.row(
            S,
            &case,
            "max_per_key_per_minute",
            r.max_key_minute,
            "requests",
        );
        report.row(
            S,
            &case,
            "max_per_workspace_per_ten_minutes",
            r.max_workspace_ten_minutes,
            "requests",
        );
        report.row(S, &case, "served_429", r.served_429, "responses");
        report.row(S, &case, "deployments_created", r.creates, "deployments");
        report.row(S, &case, "builds", r.builds, "builds");
        report.operator_rows(S, &case, r.cpu, r.hwm_mib, &r.routes);
        let windows = match r.dialect {
            Dialect::Cloudapi => format!("{} / 1,000 per clock minute", r.max_key_minute),
            Dialect::Cloudplatform => format!(
                "{} / 120 per any 60 s; {} / 600 per any 10 min",
                r.max_key_minute, r.max_workspace_ten_minutes
            ),
        };
        rows.push(vec![
            format!("`{}`", dialect_name(r.dialect)),
            count(r.n as u64),
            ready_text,
            format!("{paced_made:.0} s / {paced_min:.0} s"),
            vs_floor,
            format!("{floor_made:.0} s / {floor_min:.0} s"),
            format!(
                "{} ({:.2}/Release)",
                count(r.requests),
                r.requests as f64 / r.n as f64
            ),
            windows,
            r.served_429.to_string(),
            used,
            format!("{} / {}", r.creates, r.builds),
        ]);
        route_rows.push(vec![
            format!("`{}`", dialect_name(r.dialect)),
            r.routes
                .iter()
                .map(|(route, c)| format!("`{route}` {c}"))
                .collect::<Vec<_>>()
                .join(", "),
            format!("{:.2} s", r.cpu.as_secs_f64()),
            format!("{:.1} MiB", r.hwm_mib),
        ]);
    }
    let mut md = String::new();
    md.push_str(
        "**CloudAPI.** N CloudAPI Releases, each deploying commit `cN` to its own project, are applied at once \
         (32 creates in flight) to a running operator. The projects were made beforehand from \
         outside Kubernetes with the sandbox's limits lifted; then the sandbox enforces the \
         dialect's documented limits from empty windows: `cloudapi` 1,000 requests per clock \
         minute per key; `cloudplatform` 120 per any 60 s per key **and** 600 per any 10 minutes \
         per workspace. Builds take 200 ms. The clock runs from the first apply until every \
         Release is `Ready=True` for its generation and live at its commit.\n\n\
         - *floor at the sustained rate*: the calls ÷ the lowest N/W of the limits (1,000/60 s; \
         min(120/60 s, 600/600 s) = 1/s) — what a client can count on when it cannot know what \
         was spent before it started, as the operator assumes (a new limit starts with its burst \
         spent); for the calls the run made / for the fewest that can do it (N deployment creates \
         and ⌈N/100⌉ list pages);\n\
         - *floor from empty windows*: when the limits alone would let the last request go out \
         if every window were empty at the start (bursts included, no latency);\n\
         - *most in one window*: what the sandbox let through in the fullest window of each \
         limit (it counts every request it admits), against the limit;\n\
         - *budget used*: requests made over the span from the run's first to its last request \
         at the sandbox ÷ what the sustained rate offers over that span / ÷ the most the limits \
         admit over it from empty windows.\n\n",
    );
    md.push_str(&table(
        &[
            "dialect",
            "N",
            "all live after",
            "floor at the sustained rate (made / minimum)",
            "× that floor (made / minimum)",
            "floor from empty windows (made / minimum)",
            "API calls",
            "most in one window",
            "429s",
            "budget used (sustained / empty windows)",
            "deployments / builds",
        ],
        &rows,
    ));
    md.push_str("\nAPI calls by route:\n\n");
    md.push_str(&table(
        &[
            "dialect",
            "calls by route",
            "operator CPU",
            "operator peak RSS",
        ],
        &route_rows,
    ));
    eprintln!(
        "bench: providers, Vertra N = {} Applications with their Databases",
        opts.vertra_n
    );
    let v = vertra::run(cluster, opts).await;
    match v.ready {
        Ok(d) => eprintln!(
            "bench: Vertra N = {}: all Ready in {:.1} s, {} requests, {} 429s",
            v.apps,
            d.as_secs_f64(),
            v.requests,
            v.served_429
        ),
        Err(got) => eprintln!("bench: Vertra: only {got} Ready at the timeout"),
    }
    md.push('\n');
    md.push_str(&vertra::write(report, &v));
    let steady: Vec<resync::Count> = runs
        .into_iter()
        .flat_map(|r| r.steady)
        .chain(v.steady)
        .collect();
    if !steady.is_empty() {
        md.push_str(
            "**Steady state, every provider.** With the objects above settled, a fresh operator \
             per mode with a short `--resync-interval`, under the same limits; after its first \
             pass and 1.5 intervals, every call the sandbox let through is counted over whole \
             intervals (so the window holds whole rounds of ±10% jittered resyncs). *Bulk*: the \
             shared listings; *per-resource*: each object read on its own (Vertra: `GET \
             /apps/{id}` and its `/status`, `GET /databases/{id}`; CloudAPI: `GET \
             /deployments/{id}`). Section 2 has Strettch's.\n\n",
        );
        md.push_str(&resync::write(report, S, &steady));
    }
    report
        .sections
        .push(("5. Every provider under its own limits".into(), md));
}
