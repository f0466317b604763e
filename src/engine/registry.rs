//! The kinds the operator serves. Each provider lists its kinds once
//! (`crate::providers::kinds()`); the controllers, `stratus crds`, the wait for CRDs and the
//! tests' clean-up all come from that list, so adding a kind is an adapter, its CRD type and one
//! line there.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::Store;
use kube::{Api, CustomResourceExt, Resource};
use tokio::task::JoinHandle;
use tracing::info;

use super::Adapter;
use super::Providers;
use super::backoff::Backoffs;
use super::controller;
use super::events::Events;
use super::peers::Peers;
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
    pub events: Arc<Events>,
    /// Told once per kind (by its controller name) when every cache of the kind has synced.
    pub synced: OnSynced,
    /// Told every few seconds, per kind, how many objects there are, Ready and Synced.
    pub counts: OnCounts,
}

/// Objects of one kind in the caches, for the per-kind gauges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counts {
    pub objects: usize,
    pub ready: usize,
    pub synced: usize,
    /// Objects whose Ready is not True, by Ready's reason (`Unknown` without one): what a
    /// dashboard shows as "not Ready, and why". Reasons are the code's words, never messages.
    pub not_ready: BTreeMap<String, usize>,
    /// Objects with Stalled=True, by Stalled's reason: each needs a human.
    pub stalled: BTreeMap<String, usize>,
}

impl Counts {
    /// Add another store's counts (a kind watched in several namespaces).
    pub fn add(&mut self, other: Counts) {
        self.objects += other.objects;
        self.ready += other.ready;
        self.synced += other.synced;
        for (reason, n) in other.not_ready {
            *self.not_ready.entry(reason).or_default() += n;
        }
        for (reason, n) in other.stalled {
            *self.stalled.entry(reason).or_default() += n;
        }
    }
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
        let mut peers = Peers::new();
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
            peers.add(built.store.clone(), built.index.clone());
            controllers.push(built.controller);
        }
        let mut tasks = Vec::new();
        for built in controllers {
            let ctx = Arc::new(Context {
                kube: rt.client.clone(),
                adapter: adapter.clone(),
                providers: rt.providers.clone(),
                events: rt.events.clone(),
                backoffs: Backoffs::default(),
                settings: rt.settings.clone(),
                peers: peers.clone(),
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
                    total.add(count(s, |o| A::status(o)));
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
    let mut not_ready = BTreeMap::<String, usize>::new();
    let mut stalled = BTreeMap::<String, usize>::new();
    for o in &objects {
        let conds = status(o)
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default();
        match conditions::find(conds, conditions::READY) {
            Some(c) if c.status == "True" => {}
            Some(c) if !c.reason.is_empty() => *not_ready.entry(c.reason.clone()).or_default() += 1,
            _ => *not_ready.entry("Unknown".into()).or_default() += 1,
        }
        if let Some(c) = conditions::find(conds, conditions::STALLED)
            && c.status == "True"
        {
            *stalled.entry(c.reason.clone()).or_default() += 1;
        }
    }
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
        not_ready,
        stalled,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher;

    use super::*;
    use crate::api::common::Condition;

    fn condition(type_: &str, status: &str, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            last_transition_time: String::new(),
            observed_generation: None,
        }
    }

    #[test]
    fn objects_not_ready_and_stalled_are_counted_by_reason() {
        // ConfigMaps stand in for a managed kind; their statuses come from this map, by name
        // (leaked: `count` wants a status borrowed for as long as any object could be).
        let statuses: HashMap<&str, ManagedStatus> = [
            ("ready", vec![condition("Ready", "True", "Available")]),
            ("creating-1", vec![condition("Ready", "False", "Creating")]),
            ("creating-2", vec![condition("Ready", "False", "Creating")]),
            (
                "stalled",
                vec![
                    condition("Ready", "False", "Unavailable"),
                    condition("Stalled", "True", "UnsupportedChange"),
                ],
            ),
            ("new", vec![]),
        ]
        .into_iter()
        .map(|(name, conditions)| {
            (
                name,
                ManagedStatus {
                    conditions,
                    ..ManagedStatus::default()
                },
            )
        })
        .collect();
        let statuses: &'static HashMap<&str, ManagedStatus> = Box::leak(Box::new(statuses));
        let mut writer = Writer::<ConfigMap>::default();
        for name in statuses.keys() {
            let mut cm = ConfigMap::default();
            cm.metadata.name = Some(name.to_string());
            cm.metadata.namespace = Some("team-a".into());
            writer.apply_watcher_event(&watcher::Event::Apply(cm));
        }
        let c = count(&writer.as_reader(), |o: &ConfigMap| {
            statuses.get(o.metadata.name.as_deref().unwrap_or_default())
        });
        assert_eq!((c.objects, c.ready), (5, 1));
        let reasons = |m: &[(&str, usize)]| -> BTreeMap<String, usize> {
            m.iter().map(|(r, n)| (r.to_string(), *n)).collect()
        };
        assert_eq!(
            c.not_ready,
            reasons(&[("Creating", 2), ("Unavailable", 1), ("Unknown", 1)])
        );
        assert_eq!(c.stalled, reasons(&[("UnsupportedChange", 1)]));
    }
}
