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
use kube::runtime::events::Reporter;
use kube::{Api, Client};
use tracing::{error, info, warn};

use crate::cli::{ObserveMode, RunArgs};
use crate::engine::Providers;
use crate::engine::events::Events;
use crate::engine::reconciler::Settings;
use crate::engine::registry::{Counts, ManagedKind, Runtime};
use crate::metrics;

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
    tasks: Vec<(String, tokio::task::JoinHandle<()>)>,
    health: &Health,
) -> anyhow::Error {
    let (names, handles): (Vec<String>, Vec<_>) = tasks.into_iter().unzip();
    if handles.is_empty() {
        health.failed.store(true, Ordering::Relaxed);
        return anyhow::anyhow!("no controllers to run");
    }
    let (result, index, rest) = futures::future::select_all(handles).await;
    for t in rest {
        t.abort();
    }
    let controller = names[index].as_str();
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
async fn wait_for_crds(client: &Client, names: &[String]) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
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

/// Set the per-kind gauges.
fn update_gauges(kind: &str, counts: Counts) {
    let m = metrics::global();
    let labels = metrics::KindLabels { kind: kind.into() };
    m.managed_resources
        .get_or_create(&labels)
        .set(counts.objects as i64);
    m.managed_resources_ready
        .get_or_create(&labels)
        .set(counts.ready as i64);
    m.managed_resources_synced
        .get_or_create(&labels)
        .set(counts.synced as i64);
    m.set_reasons(kind, &counts.not_ready, &counts.stalled);
}

fn settings(args: &RunArgs) -> Settings {
    Settings {
        resync: args.resync_interval,
        create_settle: args.create_settle,
        rotation_grace: args.rotation_grace,
        per_resource_observe: args.observe_mode == ObserveMode::PerResource,
        ..Settings::default()
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    crate::telemetry::init(args.log_format);
    crate::cloud::throttle::Order::set_process_default(args.throttle_order);
    let client = kube_client(&args).await?;
    let health = Arc::new(Health::default());
    let server = tokio::spawn(serve_health(args.metrics_addr, health.clone()));

    let identity = args
        .identity
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| format!("stratus-{}", uuid::Uuid::new_v4()));
    let kinds = crate::providers::kinds();
    let crd_names: Vec<String> = crate::providers::crds()
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    wait_for_crds(&client, &crd_names).await;
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
    let events = Arc::new(Events::new(
        client.clone(),
        Reporter {
            controller: "stratus".into(),
            instance: Some(identity.clone()),
        },
    ));
    info!(namespaces = ?args.namespaces, concurrency = args.concurrency, resync = ?args.resync_interval, observe = ?args.observe_mode, throttle_order = ?args.throttle_order, "starting controllers");
    let swept = providers.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            swept.sweep().await;
        }
    });
    tokio::spawn(
        crate::engine::usage::UsageReporter::new(
            client.clone(),
            providers.clone(),
            args.usage_interval.max(Duration::from_secs(1)),
        )
        .run(),
    );
    health.kinds_syncing.store(kinds.len(), Ordering::Relaxed);
    let synced_health = health.clone();
    let rt = Runtime {
        client: client.clone(),
        namespaces: args.namespaces.clone(),
        concurrency: args.concurrency,
        settings: settings(&args),
        providers,
        events,
        synced: Arc::new(move |_kind: &str| {
            if synced_health.kinds_syncing.fetch_sub(1, Ordering::Relaxed) <= 1 {
                synced_health.caches_synced.store(true, Ordering::Relaxed);
            }
        }),
        counts: Arc::new(update_gauges),
    };
    let controllers = supervise_all(&kinds, &rt, &health);
    tokio::select! {
        e = controllers => Err(e),
        res = server => { res??; anyhow::bail!("the health server stopped") }
    }
}

/// Start every kind and wait for any of their tasks to end (see [`supervise`]).
async fn supervise_all(
    kinds: &[Box<dyn ManagedKind>],
    rt: &Runtime,
    health: &Health,
) -> anyhow::Error {
    let mut tasks = Vec::new();
    for kind in kinds {
        let started = kind.start(rt);
        tasks.extend(started.tasks.into_iter().map(|t| (started.name.clone(), t)));
    }
    supervise(tasks, health).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_controller_task_that_ends_fails_health_and_the_process() {
        let health = Health::default();
        let forever = tokio::spawn(std::future::pending::<()>());
        let ends = tokio::spawn(async {});
        let err = supervise(
            vec![
                ("strettch/compute".into(), forever),
                ("strettch/compute".into(), ends),
            ],
            &health,
        )
        .await;
        assert!(err.to_string().contains("compute"), "{err}");
        assert!(health.failed.load(Ordering::Relaxed));
        let (code, _) = healthz(State(Arc::new(health))).await;
        assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn a_panicking_controller_task_is_reported_as_such() {
        let health = Health::default();
        let panics = tokio::spawn(async { panic!("boom") });
        let err = supervise(vec![("strettch/dnsrecord".into(), panics)], &health).await;
        assert!(err.to_string().contains("panicked"), "{err}");
    }

    #[tokio::test]
    async fn healthz_is_ok_while_every_controller_runs() {
        let (code, _) = healthz(State(Arc::new(Health::default()))).await;
        assert_eq!(code, StatusCode::OK);
    }
}
