//! The kinds the operator serves. Each provider lists its kinds once
//! (`crate::providers::kinds()`); the controllers, `stratus crds`, the wait for CRDs and the
//! tests' clean-up all come from that list, so adding a kind is an adapter, its CRD type and one
//! line there.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::controller::Controller;
use kube::runtime::events::Recorder;
use kube::runtime::reflector::Store;
use kube::{Api, CustomResourceExt, Resource};
use tokio::task::JoinHandle;
use tracing::info;

use super::Adapter;
use super::Providers;
use super::backoff::Backoffs;
use super::controller;
use super::reconciler::{Context, Settings};
use crate::api::common::ManagedStatus;

/// Told that a kind (by controller name) has synced its caches.
pub type OnSynced = Arc<dyn Fn(&str) + Send + Sync>;
/// Told a kind's (by controller name) object counts.
pub type OnCounts = Arc<dyn Fn(&str, Counts) + Send + Sync>;

/// What every kind's controllers need from the process.
#[derive(Clone)]
pub struct Runtime {
    pub client: kube::Client,
    /// Namespaces to watch; empty: every namespace.
    pub namespaces: Vec<String>,
    /// Reconciles of one kind at a time.
    pub concurrency: u16,
    pub settings: Settings,
    pub providers: Arc<Providers>,
    pub recorder: Recorder,
    /// Told once per kind (by its controller name) when every cache of the kind has synced.
    pub synced: OnSynced,
    /// Told every few seconds, per kind, how many objects there are, Ready and Synced.
    pub counts: OnCounts,
}

/// Objects of one kind in the caches, for the per-kind gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub objects: usize,
    pub ready: usize,
    pub synced: usize,
}

/// A kind's running controllers: tasks that should never end.
pub struct Started {
    pub name: String,
    pub tasks: Vec<JoinHandle<()>>,
}

/// One kind of one provider, as the operator runs it.
pub trait ManagedKind: Send + Sync {
    /// `provider/kind` (e.g. `strettch/compute`): the controller's name in metrics and logs.
    fn name(&self) -> String;
    /// The kind's CustomResourceDefinition.
    fn crd(&self) -> CustomResourceDefinition;
    /// Build and spawn the kind's controllers (one per watched namespace, or one for all).
    fn start(&self, rt: &Runtime) -> Started;
}

/// Extra watches for one controller: gets the controller, the store of the objects it
/// reconciles, the client and the namespace it watches (`None`: all).
pub type Customize<K> = fn(Controller<K>, Store<K>, &kube::Client, Option<&str>) -> Controller<K>;

/// A kind served by the generic reconciler through adapter `A`.
pub struct Kind<A: Adapter> {
    make: fn(&Runtime) -> A,
    customize: Option<Customize<A::Kind>>,
}

impl<A: Adapter> Kind<A> {
    /// `make` builds the adapter (once per start) from what the process has.
    pub fn new(make: fn(&Runtime) -> A) -> Self {
        Self {
            make,
            customize: None,
        }
    }

    /// Add watches (on the objects the kind depends on) to each of its controllers.
    pub fn with_watches(mut self, customize: Customize<A::Kind>) -> Self {
        self.customize = Some(customize);
        self
    }
}

/// The controller name of adapter `A` in metrics and logs.
pub fn controller_name<A: Adapter>() -> String {
    format!("{}/{}", A::PROVIDER, A::CONTROLLER)
}

impl<A> ManagedKind for Kind<A>
where
    A: Adapter + Clone,
    A::Kind: CustomResourceExt,
{
    fn name(&self) -> String {
        controller_name::<A>()
    }

    fn crd(&self) -> CustomResourceDefinition {
        A::Kind::crd()
    }

    fn start(&self, rt: &Runtime) -> Started {
        let adapter = (self.make)(rt);
        let scopes: Vec<Option<&str>> = if rt.namespaces.is_empty() {
            vec![None]
        } else {
            rt.namespaces.iter().map(|ns| Some(ns.as_str())).collect()
        };
        let mut stores = Vec::new();
        let mut controllers = Vec::new();
        for scope in scopes {
            let api = match scope {
                None => Api::all(rt.client.clone()),
                Some(ns) => Api::namespaced(rt.client.clone(), ns),
            };
            let mut built = controller::build::<A>(api, rt.concurrency);
            if let Some(customize) = self.customize {
                built.controller =
                    customize(built.controller, built.store.clone(), &rt.client, scope);
            }
            stores.push(built.store.clone());
            controllers.push(built.controller);
        }
        let mut tasks = Vec::new();
        for built in controllers {
            let ctx = Arc::new(Context {
                kube: rt.client.clone(),
                adapter: adapter.clone(),
                providers: rt.providers.clone(),
                recorder: rt.recorder.clone(),
                backoffs: Backoffs::default(),
                settings: rt.settings.clone(),
                peers: stores.clone(),
                unwritten: Default::default(),
            });
            tasks.push(tokio::spawn(controller::run::<A>(built, ctx)));
        }
        let name = self.name();
        let synced = rt.synced.clone();
        let counts = rt.counts.clone();
        let label = name.clone();
        tasks.push(tokio::spawn(async move {
            for s in &stores {
                // The store's readiness is a oneshot that wakes only its last waiter, and the
                // controller waits on it too: poll again now and then instead of trusting the wake.
                while tokio::time::timeout(Duration::from_millis(500), s.wait_until_ready())
                    .await
                    .is_err()
                {}
            }
            info!(controller = %label, "cache synced");
            synced(&label);
            loop {
                let mut total = Counts::default();
                for s in &stores {
                    let c = count(s, |o| A::status(o));
                    total.objects += c.objects;
                    total.ready += c.ready;
                    total.synced += c.synced;
                }
                counts(&label, total);
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        }));
        Started { name, tasks }
    }
}

/// Count objects, Ready and Synced, in one store.
fn count<K: Resource<DynamicType = ()> + Clone + 'static>(
    store: &Store<K>,
    status: impl Fn(&K) -> Option<&ManagedStatus>,
) -> Counts {
    use super::conditions;
    let objects = store.state();
    let is_true = |o: &K, t: &str| {
        status(o)
            .and_then(|s| conditions::find(&s.conditions, t))
            .is_some_and(|c| c.status == "True")
    };
    Counts {
        objects: objects.len(),
        ready: objects
            .iter()
            .filter(|o| is_true(o, conditions::READY))
            .count(),
        synced: objects
            .iter()
            .filter(|o| is_true(o, conditions::SYNCED))
            .count(),
    }
}
