//! Section 5, Vertra: N Applications, each with its own Database whose connection Secret gives
//! the app its `DATABASE_URL`, applied at once to a running operator under a Vertra plan's
//! limits — the account's requests per rolling minute (which Vertra does not publish: the
//! operator's adaptive limit starts at the smallest plan's 30 and learns the plan's from the
//! answers) and deploys per rolling hour (every app create is one) — until every object is
//! Ready: time against the floor the limits set, calls per object, the 429s served, the most
//! requests the sandbox let through in any window of each limit, and the budget used. Then the
//! same objects' steady state: calls per resync in bulk and per resource.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DeleteParams, ListParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use stratus::providers::vertra::api::{Application, Database};
use stratus::providers::vertra::code::sha256_hex;
use stratus::providers::vertra::sim::{self, VertraSimConfig, VertraSimHandle};
use stratus::sim::rate_limit::{Limit, Scope, Window, earliest_schedule};

use crate::Options;
use crate::cluster::{BenchNs, Cluster, strip_finalizers};
use crate::process::Operator;
use crate::report::{Report, count, table};
use crate::resync::{self, Mode};

const S: &str = "providers";
/// The plan the sandbox runs: the largest, with 300 requests a minute and 60 deploys an hour.
const PLAN: sim::Plan = sim::Plan::Enterprise;
/// The resync of the steady-state count: long enough that per-resource observation of the
/// section's objects (two GETs each) fits in the plan's minute budget between two resyncs —
/// except the apps' re-reads of their Secrets every 30 s (`INPUT_RECHECK`), which per resource
/// read the app again each time.
const STEADY_RESYNC: Duration = Duration::from_secs(90);
/// In quick mode (20 apps and 20 databases).
const STEADY_RESYNC_QUICK: Duration = Duration::from_secs(30);

pub struct VertraRun {
    pub apps: usize,
    /// The deploy allowance on both sides; `None`: the plan's own.
    pub deploys_per_hour: Option<u32>,
    pub ready: Result<Duration, usize>,
    pub busy: Duration,
    pub requests: u64,
    pub deploys: u64,
    pub per_minute: u32,
    pub deploys_per_hour_limit: u32,
    pub max_minute: usize,
    pub max_hour_deploys: usize,
    pub served_429: u64,
    pub served_429_minute: u64,
    pub served_429_deploy: u64,
    /// 429s after the first minute of the run, when the adaptive limit has had answers to learn
    /// from.
    pub served_429_after_first_minute: u64,
    pub routes: Vec<(String, u64)>,
    pub cpu: Duration,
    pub hwm_mib: f64,
    pub steady: Vec<resync::Count>,
}

/// Serves `bytes` at `/code.zip` on loopback (the operator fetches an app's code by URL).
async fn serve_code(bytes: Vec<u8>) -> String {
    let app = axum::Router::new().route(
        "/code.zip",
        axum::routing::get(move || async move { bytes.clone() }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/code.zip")
}

async fn install_provider(ns: &BenchNs, endpoint: &str, key: &str, deploys: Option<u32>) {
    let extra = match deploys {
        Some(d) => json!({"vertra": {"deploysPerHour": d}}),
        None => json!({}),
    };
    ns.install("vertra", endpoint, key, extra).await;
}

/// Database `db-i` writes its connection Secret `db-i`; Application `app-i` reads its `uri`.
async fn create_objects(ns: &BenchNs, n: usize, code_url: &str, code_sha: &str) {
    let dbs: Api<Database> = Api::namespaced(ns.client.clone(), &ns.name);
    let apps: Api<Application> = Api::namespaced(ns.client.clone(), &ns.name);
    let pc = ns.provider_config();
    let objects = (0..n).flat_map(|i| [(i, true), (i, false)]);
    futures::stream::iter(objects)
        .map(|(i, database)| {
            let (dbs, apps) = (dbs.clone(), apps.clone());
            async move {
                if database {
                    let db: Database = serde_json::from_value(json!({
                        "apiVersion": Database::api_version(&()), "kind": "Database",
                        "metadata": {"name": format!("db-{i:03}")},
                        "spec": {
                            "providerConfigRef": {"name": pc},
                            "writeConnectionSecretToRef": {"name": format!("db-{i:03}")},
                            "forProvider": {"engine": "Redis", "name": format!("db{i:03}"), "memoryMB": 512},
                        },
                    }))
                    .expect("a Database");
                    dbs.create(&PostParams::default(), &db)
                        .await
                        .expect("creating a Database");
                } else {
                    let app: Application = serde_json::from_value(json!({
                        "apiVersion": Application::api_version(&()), "kind": "Application",
                        "metadata": {"name": format!("app-{i:03}")},
                        "spec": {
                            "providerConfigRef": {"name": pc},
                            "forProvider": {
                                "name": format!("app{i:03}"), "memoryMB": 256,
                                "language": "javascript", "mainFile": "index.js",
                                "env": [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": format!("db-{i:03}"), "key": "uri"}}}],
                                "source": {"archive": {"url": code_url, "sha256": code_sha}},
                            },
                        },
                    }))
                    .expect("an Application");
                    apps.create(&PostParams::default(), &app)
                        .await
                        .expect("creating an Application");
                }
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
}

fn ready_now<K: Resource + serde::Serialize>(obj: &K) -> bool {
    let v = serde_json::to_value(obj).unwrap_or_default();
    v["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    }) && v["status"]["observedGeneration"].as_i64() == obj.meta().generation
}

async fn ready_count(ns: &BenchNs) -> usize {
    let dbs: Api<Database> = Api::namespaced(ns.client.clone(), &ns.name);
    let apps: Api<Application> = Api::namespaced(ns.client.clone(), &ns.name);
    let lp = ListParams::default();
    let d = dbs
        .list(&lp)
        .await
        .map(|l| l.items.iter().filter(|o| ready_now(*o)).count())
        .unwrap_or(0);
    let a = apps
        .list(&lp)
        .await
        .map(|l| l.items.iter().filter(|o| ready_now(*o)).count())
        .unwrap_or(0);
    d + a
}

/// The limits in force: the plan's minute for every request, its (or the agreed) deploys.
fn limits(per_minute: u32, deploys: u32) -> (Limit, Limit) {
    (
        Limit::new(
            per_minute.into(),
            Duration::from_secs(60),
            Scope::Key,
            Window::Rolling,
        ),
        Limit::new(
            deploys.into(),
            Duration::from_secs(3600),
            Scope::Key,
            Window::Rolling,
        ),
    )
}

/// Seconds before the limits let `requests` go, `deploys` of them deploys, from empty windows.
fn floor_empty(per_minute: u32, deploys_limit: u32, requests: usize, deploys: usize) -> f64 {
    let (minute, hour) = limits(per_minute, deploys_limit);
    let last = |l: Limit, n: usize| {
        earliest_schedule(&[l], n)
            .last()
            .map_or(0.0, Duration::as_secs_f64)
    };
    last(minute, requests).max(last(hour, deploys))
}

/// Seconds the limits' sustained rates need for `requests`, `deploys` of them deploys.
fn floor_sustained(per_minute: u32, deploys_limit: u32, requests: usize, deploys: usize) -> f64 {
    (requests as f64 * 60.0 / per_minute as f64).max(deploys as f64 * 3600.0 / deploys_limit as f64)
}

fn routes_of(s: &VertraSimHandle) -> BTreeMap<String, u64> {
    s.stats().requests_by_route
}

pub async fn run(cluster: &Cluster, opts: &Options) -> VertraRun {
    let n = opts.vertra_n;
    let deploys = opts.vertra_deploys_per_hour;
    let key = format!("vc_live_{}", uuid::Uuid::new_v4().simple());
    let mut config = VertraSimConfig::for_tests(&[key.as_str()]);
    config.plan = PLAN;
    config.deploys_per_hour = deploys;
    let sandbox = sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sandbox");
    let budgets = sandbox.settings().budgets();
    let code = sim::sample_zip();
    let code_url = serve_code(code.clone()).await;

    let ns = BenchNs::create(&cluster.client, &format!("vertra-{n}")).await;
    install_provider(&ns, &sandbox.root_url(), &key, deploys).await;
    let mut op = Operator::start(
        &cluster.kubeconfig,
        &ns.name,
        &[],
        &opts.logs,
        &format!("providers-vertra-{n}"),
    );
    op.wait_started(Duration::from_secs(60), Duration::from_secs(5))
        .await;
    sandbox.reset_stats();

    let started = Instant::now();
    create_objects(&ns, n, &code_url, &sha256_hex(&code)).await;
    // Generous: three times the floor of three calls per object pair, plus five minutes.
    let timeout = Duration::from_secs_f64(
        3.0 * floor_sustained(budgets.per_minute, budgets.deploys_per_hour, 3 * n, n) + 300.0,
    );
    let mut served_429_at_first_minute = None;
    let ready = loop {
        if served_429_at_first_minute.is_none() && started.elapsed() >= Duration::from_secs(60) {
            served_429_at_first_minute = Some(sandbox.stats().served_429);
        }
        let got = ready_count(&ns).await;
        if got >= 2 * n {
            break Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            break Err(got);
        }
        assert!(
            op.is_running(),
            "the operator exited; see {}",
            op.log.display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let cpu = op.cpu();
    let hwm_mib = op.mem().hwm_mib();
    op.kill();
    let times = sandbox.account_request_times();
    let busy = match (times.first(), times.last()) {
        (Some(a), Some(b)) => *b - *a,
        _ => Duration::ZERO,
    };
    let stats = sandbox.stats();
    let mut routes: Vec<(String, u64)> = stats.requests_by_route.clone().into_iter().collect();
    routes.sort_by_key(|r| std::cmp::Reverse(r.1));
    let mut run = VertraRun {
        apps: n,
        deploys_per_hour: deploys,
        ready,
        busy,
        requests: times.len() as u64,
        deploys: sandbox.deploy_times().len() as u64,
        per_minute: budgets.per_minute,
        deploys_per_hour_limit: budgets.deploys_per_hour,
        max_minute: stats.max_in_window.per_minute,
        max_hour_deploys: stats.max_in_window.deploys_per_hour,
        served_429: stats.served_429,
        served_429_minute: stats.served_429_by_limit.minute,
        served_429_deploy: stats.served_429_by_limit.deploy,
        served_429_after_first_minute: served_429_at_first_minute
            .map_or(0, |at| stats.served_429.saturating_sub(at)),
        routes,
        cpu,
        hwm_mib,
        steady: Vec::new(),
    };

    if run.ready.is_ok() {
        let every = if opts.quick {
            STEADY_RESYNC_QUICK
        } else {
            STEADY_RESYNC
        };
        for mode in [Mode::Bulk, Mode::PerResource] {
            eprintln!("bench: providers, Vertra steady state, {}", mode.flag());
            run.steady.push(
                resync::count(
                    cluster,
                    opts,
                    &ns.name,
                    "Vertra",
                    2 * n,
                    mode,
                    every,
                    budgets.per_minute as f64 * every.as_secs_f64() / 60.0,
                    &ApiResource::erase::<Application>(&()),
                    || routes_of(&sandbox),
                )
                .await,
            );
        }
    }
    delete_all::<Application>(&ns).await;
    delete_all::<Database>(&ns).await;
    delete_all::<Secret>(&ns).await;
    ns.cleanup().await;
    sandbox.shutdown().await;
    run
}

/// Rows for results.csv and the Markdown of the Vertra part of section 5.
pub fn write(report: &mut Report, r: &VertraRun) -> String {
    let case = format!("vertra N={}", r.apps);
    let objects = 2 * r.apps;
    // One create per app (a deploy) and per database, and the three listings that see them up.
    let min_calls = objects + 3;
    let floor_made_sustained = floor_sustained(
        r.per_minute,
        r.deploys_per_hour_limit,
        r.requests as usize,
        r.deploys as usize,
    );
    let floor_min_sustained =
        floor_sustained(r.per_minute, r.deploys_per_hour_limit, min_calls, r.apps);
    let floor_made_empty = floor_empty(
        r.per_minute,
        r.deploys_per_hour_limit,
        r.requests as usize,
        r.deploys as usize,
    );
    let floor_min_empty = floor_empty(r.per_minute, r.deploys_per_hour_limit, min_calls, r.apps);
    let (ready_text, vs_floor, used) = match r.ready {
        Ok(d) => {
            let s = d.as_secs_f64();
            report.row(S, &case, "time_to_all_ready", format!("{s:.1}"), "s");
            let span = r.busy.as_secs_f64().max(1.0);
            let minute_used = r.requests as f64 / (span * r.per_minute as f64 / 60.0);
            let deploy_used = r.deploys as f64 / (span * r.deploys_per_hour_limit as f64 / 3600.0);
            report.row(
                S,
                &case,
                "budget_used_minute_limit",
                format!("{minute_used:.3}"),
                "ratio",
            );
            report.row(
                S,
                &case,
                "budget_used_deploy_limit",
                format!("{deploy_used:.3}"),
                "ratio",
            );
            (
                format!("{s:.1} s"),
                format!(
                    "{:.2}× / {:.2}×",
                    s / floor_made_sustained,
                    s / floor_min_sustained
                ),
                format!(
                    "{:.0}% of the minute limit, {:.0}% of the deploy limit ({} requests, {} deploys in {span:.0} s)",
                    100.0 * minute_used,
                    100.0 * deploy_used,
                    r.requests,
                    r.deploys
                ),
            )
        }
        Err(got) => {
            report.row(S, &case, "time_to_all_ready", "timeout", "s");
            report.row(S, &case, "ready_at_timeout", got, "objects");
            (
                format!("timeout ({got}/{objects} Ready)"),
                "—".into(),
                "—".into(),
            )
        }
    };
    for (metric, v) in [
        ("floor_sustained_calls_made", floor_made_sustained),
        ("floor_sustained_min_calls", floor_min_sustained),
        ("floor_empty_windows_calls_made", floor_made_empty),
        ("floor_empty_windows_min_calls", floor_min_empty),
    ] {
        report.row(S, &case, metric, format!("{v:.1}"), "s");
    }
    report.row(S, &case, "api_calls", r.requests, "requests");
    report.row(
        S,
        &case,
        "api_calls_per_object",
        format!("{:.3}", r.requests as f64 / objects as f64),
        "requests",
    );
    report.row(S, &case, "deploys", r.deploys, "deploys");
    report.row(S, &case, "max_per_minute", r.max_minute, "requests");
    report.row(
        S,
        &case,
        "max_deploys_per_hour",
        r.max_hour_deploys,
        "deploys",
    );
    report.row(S, &case, "served_429", r.served_429, "responses");
    report.row(
        S,
        &case,
        "served_429_after_first_minute",
        r.served_429_after_first_minute,
        "responses",
    );
    report.operator_rows(S, &case, r.cpu, r.hwm_mib, &r.routes);

    let agreed = match r.deploys_per_hour {
        Some(d) => format!(
            "the deploy allowance raised to {} an hour on both sides (the sandbox, and the \
             ProviderConfig's `spec.vertra.deploysPerHour`, as for a plan agreed with Vertra) so \
             that the run takes minutes: under the plan's own 60 an hour, 100 apps need at least \
             an hour (`STRATUS_BENCH_VERTRA_DEPLOYS_PER_HOUR=plan` runs it so)",
            count(d.into())
        ),
        None => "the plan's own deploy allowance".into(),
    };
    let mut md = format!(
        "**Vertra.** N Applications and N Databases are applied at once (32 in flight) to a \
         running operator: Database `db-i` writes its connection Secret, whose `uri` Application \
         `app-i` takes as `DATABASE_URL` (so an app deploys once its database is up). The sandbox \
         runs the {plan} plan: {pm} requests per rolling minute per account — which Vertra does \
         not publish, so the operator's adaptive limit starts at the smallest plan's 30 and \
         learns the plan's from the answers — with {agreed}. Installs take 200 ms. The clock runs \
         until every object is `Ready=True` for its generation. Floors as above, for two limits \
         at once (requests per minute, deploys per hour); *minimum* = one create per object and \
         the three listings (`/users/me`, `/apps/status`, `/databases/status`) that see them up. \
         *429s after the first minute*: those served once the operator has had answers to learn \
         the plan from.\n\n",
        plan = PLAN.display_name(),
        pm = r.per_minute,
    );
    md.push_str(&table(
        &[
            "N (apps + databases)",
            "all Ready after",
            "floor at the sustained rates (made / minimum)",
            "× that floor (made / minimum)",
            "floor from empty windows (made / minimum)",
            "API calls",
            "most in one window",
            "429s (after the first minute)",
            "budget used",
        ],
        &[vec![
            format!("{} + {}", r.apps, r.apps),
            ready_text,
            format!("{floor_made_sustained:.0} s / {floor_min_sustained:.0} s"),
            vs_floor,
            format!("{floor_made_empty:.0} s / {floor_min_empty:.0} s"),
            format!(
                "{} ({:.2}/object)",
                count(r.requests),
                r.requests as f64 / objects as f64
            ),
            format!(
                "{} / {} per rolling minute; {} / {} deploys per rolling hour",
                r.max_minute,
                r.per_minute,
                r.max_hour_deploys,
                count(r.deploys_per_hour_limit.into())
            ),
            format!(
                "{} ({} minute, {} deploy) ({})",
                r.served_429,
                r.served_429_minute,
                r.served_429_deploy,
                r.served_429_after_first_minute
            ),
            used,
        ]],
    ));
    md.push_str(&format!(
        "\nCalls by route: {}; operator CPU {:.2} s, peak RSS {:.1} MiB.\n\n",
        r.routes
            .iter()
            .map(|(route, c)| format!("`{route}` {c}"))
            .collect::<Vec<_>>()
            .join(", "),
        r.cpu.as_secs_f64(),
        r.hwm_mib
    ));
    md
}

/// Deletes every `K` in the namespace after stripping its finalizers (the operator is stopped,
/// so nothing is deleted in the cloud).
async fn delete_all<K>(ns: &BenchNs)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(ns.client.clone(), &ns.name);
    let names = api
        .list(&ListParams::default())
        .await
        .map(|l| l.items.iter().map(|o| o.name_any()).collect())
        .unwrap_or_default();
    strip_finalizers(&api, names).await;
    let _ = api
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await;
}
