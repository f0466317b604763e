//! `stratus run`: the health/metrics server, leader election and the controllers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, CustomResourceExt, Resource, ResourceExt};
use tracing::{error, info, warn};

use crate::api::{Compute, DnsRecord, Domain, ProviderConfig};
use crate::cli::{ObserveMode, RunArgs};
use crate::engine::backoff::Backoffs;
use crate::engine::conditions;
use crate::engine::controller;
use crate::engine::reconciler::{Context, Settings};
use crate::engine::{Adapter, Providers};
use crate::metrics;
use crate::strettch::compute::ComputeAdapter;
use crate::strettch::dns_record::{DnsRecordAdapter, dependents_of_compute, dependents_of_domain};
use crate::strettch::domain::DomainAdapter;

/// What /readyz reports.
#[derive(Default)]
pub struct Health {
    crds_found: AtomicBool,
    caches_synced: AtomicBool,
    /// Kinds whose caches have not synced yet; `caches_synced` is set when the last one has.
    kinds_syncing: std::sync::atomic::AtomicUsize,
    /// A follower waiting for the lease is ready: it can take over at once, and rollouts and
    /// PodDisruptionBudgets must be able to count it.
    standby: AtomicBool,
    /// A controller task ended: the process is about to exit, and /healthz says so until then.
    failed: AtomicBool,
}

impl Health {
    pub fn ready(&self) -> bool {
        self.crds_found.load(Ordering::Relaxed)
            && (self.standby.load(Ordering::Relaxed) || self.caches_synced.load(Ordering::Relaxed))
    }
}

async fn metrics_handler() -> String {
    metrics::global().encode()
}

async fn readyz(State(h): State<Arc<Health>>) -> (StatusCode, &'static str) {
    if h.ready() {
        (StatusCode::OK, "ok")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for CRDs and caches",
        )
    }
}

async fn healthz(State(h): State<Arc<Health>>) -> (StatusCode, &'static str) {
    if h.failed.load(Ordering::Relaxed) {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "a controller stopped; the process is exiting",
        )
    } else {
        (StatusCode::OK, "ok")
    }
}

/// Wait for the controller tasks of a kind; any of them ending (it never should) fails the
/// process: /healthz turns unhealthy and the error says which, so Kubernetes restarts us
/// instead of leaving a kind unreconciled — finalizers included — while the pod looks fine.
pub async fn supervise(
    controller: &str,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    health: &Health,
) -> anyhow::Error {
    let (result, _, rest) = futures::future::select_all(tasks).await;
    for t in rest {
        t.abort();
    }
    health.failed.store(true, Ordering::Relaxed);
    let why = match result {
        Ok(()) => "ended".to_string(),
        Err(e) if e.is_panic() => "panicked".to_string(),
        Err(e) => format!("failed: {e}"),
    };
    error!(
        controller,
        why, "a controller task stopped; exiting so that Kubernetes restarts the operator"
    );
    anyhow::anyhow!("the {controller} controller {why}")
}

/// Serve /metrics, /healthz and /readyz.
pub async fn serve_health(addr: std::net::SocketAddr, health: Arc<Health>) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics/health address {addr}"))?;
    info!(%addr, "serving /metrics, /healthz and /readyz");
    axum::serve(listener, app).await?;
    Ok(())
}

async fn kube_client(args: &RunArgs) -> anyhow::Result<Client> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig and not in a cluster")?,
    };
    Ok(Client::try_from(config)?)
}

/// Wait until the CRDs this operator serves exist.
async fn wait_for_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let names = [
        ProviderConfig::crd_name(),
        Compute::crd_name(),
        Domain::crd_name(),
        DnsRecord::crd_name(),
    ];
    loop {
        let mut missing = Vec::new();
        for name in names {
            match crds.get_opt(name).await {
                Ok(Some(_)) => {}
                Ok(None) => missing.push(name.to_string()),
                Err(e) => missing.push(format!("{name} ({e})")),
            }
        }
        if missing.is_empty() {
            return;
        }
        warn!(
            ?missing,
            "CRDs not found yet: install them with `stratus crds | kubectl create -f -` or the Helm chart"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Count managed objects, Ready and Synced, for the per-kind gauges.
fn update_gauges<K: Resource<DynamicType = ()> + Clone + 'static>(
    kind: &str,
    store: &Store<K>,
    status: impl Fn(&K) -> Option<&crate::api::common::ManagedStatus>,
) {
    let m = metrics::global();
    let labels = metrics::KindLabels { kind: kind.into() };
    let objects = store.state();
    let is_true = |o: &K, t: &str| {
        status(o)
            .and_then(|s| conditions::find(&s.conditions, t))
            .is_some_and(|c| c.status == "True")
    };
    m.managed_resources
        .get_or_create(&labels)
        .set(objects.len() as i64);
    m.managed_resources_ready.get_or_create(&labels).set(
        objects
            .iter()
            .filter(|o| is_true(o, conditions::READY))
            .count() as i64,
    );
    m.managed_resources_synced.get_or_create(&labels).set(
        objects
            .iter()
            .filter(|o| is_true(o, conditions::SYNCED))
            .count() as i64,
    );
}

fn settings(args: &RunArgs) -> Settings {
    Settings {
        resync: args.resync_interval,
        create_settle: args.create_settle,
        per_resource_observe: args.observe_mode == ObserveMode::PerResource,
        ..Settings::default()
    }
}

/// Extra watches for one controller: gets the controller, the store of the objects it
/// reconciles, and the namespace it watches (`None`: all).
type Customize<K> = fn(Controller<K>, Store<K>, &Client, Option<&str>) -> Controller<K>;

/// Build and run one kind's controllers (one per watched namespace, or one for all), each
/// passed through `customize` (for watches on the objects the kind depends on).
async fn run_kind<A>(
    adapter: A,
    client: Client,
    args: &RunArgs,
    providers: Arc<Providers>,
    recorder: Recorder,
    health: Arc<Health>,
    customize: Option<Customize<A::Kind>>,
) -> anyhow::Error
where
    A: Adapter + Clone,
    A::Kind: ResourceExt,
{
    let scopes: Vec<Option<&str>> = if args.namespaces.is_empty() {
        vec![None]
    } else {
        args.namespaces.iter().map(|ns| Some(ns.as_str())).collect()
    };
    let mut tasks = Vec::new();
    let mut stores = Vec::new();
    let mut controllers = Vec::new();
    for scope in scopes {
        let api = match scope {
            None => Api::all(client.clone()),
            Some(ns) => Api::namespaced(client.clone(), ns),
        };
        let mut built = controller::build::<A>(api, args.concurrency);
        if let Some(customize) = customize {
            built.controller = customize(built.controller, built.store.clone(), &client, scope);
        }
        stores.push(built.store.clone());
        controllers.push(built.controller);
    }
    for built in controllers {
        let ctx = Arc::new(Context {
            kube: client.clone(),
            adapter: adapter.clone(),
            providers: providers.clone(),
            recorder: recorder.clone(),
            backoffs: Backoffs::default(),
            settings: settings(args),
            peers: stores.clone(),
        });
        tasks.push(tokio::spawn(controller::run::<A>(built, ctx)));
    }
    let gauge_stores = stores.clone();
    let gauge_health = health.clone();
    tokio::spawn(async move {
        let health = gauge_health;
        for s in &gauge_stores {
            // The store's readiness is a oneshot that wakes only its last waiter, and the
            // controller waits on it too: poll again now and then instead of trusting the wake.
            while tokio::time::timeout(Duration::from_millis(500), s.wait_until_ready())
                .await
                .is_err()
            {}
        }
        info!(controller = A::CONTROLLER, "cache synced");
        if health.kinds_syncing.fetch_sub(1, Ordering::Relaxed) <= 1 {
            health.caches_synced.store(true, Ordering::Relaxed);
        }
        loop {
            for s in &gauge_stores {
                update_gauges(A::CONTROLLER, s, |o| A::status(o));
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    });
    supervise(A::CONTROLLER, tasks, &health).await
}

/// A DnsRecord depends on its Domain (created once it is ACTIVE) and on the Compute its value
/// comes from: reconcile the dependent records when either changes, status included, so a
/// record follows a new address within seconds without polling.
fn watch_record_dependencies(
    controller: Controller<DnsRecord>,
    records: Store<DnsRecord>,
    client: &Client,
    scope: Option<&str>,
) -> Controller<DnsRecord> {
    let (domains, computes): (Api<Domain>, Api<Compute>) = match scope {
        None => (Api::all(client.clone()), Api::all(client.clone())),
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
    };
    let by_domain = records.clone();
    let by_compute = records;
    controller
        .watches(domains, watcher::Config::default(), move |d: Domain| {
            let state = by_domain.state();
            dependents_of_domain(
                state.iter().map(|r| r.as_ref()),
                d.namespace().as_deref(),
                &d.name_any(),
            )
            .into_iter()
            .map(ObjectRef::from_obj)
            .collect::<Vec<_>>()
        })
        .watches(computes, watcher::Config::default(), move |c: Compute| {
            let state = by_compute.state();
            dependents_of_compute(
                state.iter().map(|r| r.as_ref()),
                c.namespace().as_deref(),
                &c.name_any(),
            )
            .into_iter()
            .map(ObjectRef::from_obj)
            .collect::<Vec<_>>()
        })
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    crate::telemetry::init(args.log_format);
    let client = kube_client(&args).await?;
    let health = Arc::new(Health::default());
    let server = tokio::spawn(serve_health(args.metrics_addr, health.clone()));

    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("stratus-{}", uuid::Uuid::new_v4()));
    wait_for_crds(&client).await;
    health.crds_found.store(true, Ordering::Relaxed);

    if args.leader_elect {
        let election = crate::leader_election::LeaderElection::new(
            client.clone(),
            &args.leader_election_namespace,
            &args.leader_election_id,
            &identity,
            args.lease_duration,
        )
        .with_owner_deployment(
            std::env::var("STRATUS_LEASE_OWNER_DEPLOYMENT")
                .ok()
                .as_deref(),
        );
        let releaser = election.clone();
        let mut leader = election.spawn();
        health.standby.store(true, Ordering::Relaxed);
        info!(%identity, "waiting to become the leader");
        while !*leader.borrow_and_update() {
            if leader.changed().await.is_err() {
                anyhow::bail!("leader election stopped");
            }
        }
        health.standby.store(false, Ordering::Relaxed);
        info!(%identity, "leading");
        // Only the leader writes: when leadership is lost, stop at once and let the
        // Deployment restart us as a follower. On SIGTERM, hand the lease over at once.
        tokio::spawn(async move {
            loop {
                if leader.changed().await.is_err() || !*leader.borrow() {
                    error!("lost the leader lease; exiting so that only one replica acts");
                    std::process::exit(1);
                }
            }
        });
        tokio::spawn(async move {
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                term.recv().await;
                info!("SIGTERM: releasing the leader lease");
                let _ = releaser.release().await;
                std::process::exit(0);
            }
        });
    }

    let providers = Arc::new(Providers::new(client.clone()));
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "stratus".into(),
            instance: Some(identity.clone()),
        },
    );
    info!(namespaces = ?args.namespaces, concurrency = args.concurrency, resync = ?args.resync_interval, observe = ?args.observe_mode, "starting controllers");
    health.kinds_syncing.store(3, Ordering::Relaxed);
    let computes = run_kind(
        ComputeAdapter,
        client.clone(),
        &args,
        providers.clone(),
        recorder.clone(),
        health.clone(),
        None,
    );
    let domains = run_kind(
        DomainAdapter::new(client.clone(), args.namespaces.clone()),
        client.clone(),
        &args,
        providers.clone(),
        recorder.clone(),
        health.clone(),
        None,
    );
    let records = run_kind(
        DnsRecordAdapter::new(client.clone(), args.namespaces.clone()),
        client.clone(),
        &args,
        providers.clone(),
        recorder.clone(),
        health.clone(),
        Some(watch_record_dependencies),
    );
    tokio::select! {
        e = computes => Err(e),
        e = domains => Err(e),
        e = records => Err(e),
        res = server => { res??; anyhow::bail!("the health server stopped") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_controller_task_that_ends_fails_health_and_the_process() {
        let health = Health::default();
        let forever = tokio::spawn(std::future::pending::<()>());
        let ends = tokio::spawn(async {});
        let err = supervise("compute", vec![forever, ends], &health).await;
        assert!(err.to_string().contains("compute"), "{err}");
        assert!(health.failed.load(Ordering::Relaxed));
        let (code, _) = healthz(State(Arc::new(health))).await;
        assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn a_panicking_controller_task_is_reported_as_such() {
        let health = Health::default();
        let panics = tokio::spawn(async { panic!("boom") });
        let err = supervise("dnsrecord", vec![panics], &health).await;
        assert!(err.to_string().contains("panicked"), "{err}");
    }

    #[tokio::test]
    async fn healthz_is_ok_while_every_controller_runs() {
        let (code, _) = healthz(State(Arc::new(Health::default()))).await;
        assert_eq!(code, StatusCode::OK);
    }
}
