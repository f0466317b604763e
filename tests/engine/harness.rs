//! One test's world: a namespace on a real API server, a ProviderConfig and Secret that resolve
//! to a fresh [`FakeCloud`], and a reconciler Context for the [`FakeAdapter`]. Reconciles are
//! driven by hand, each on a fresh read of the object (as the controller's watch would give).

use std::sync::Arc;

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;
use stratus::api::common::Condition;
use stratus::engine::Providers;
use stratus::engine::reconciler::{self, Context, Error, Settings};
use uuid::Uuid;

use crate::common::{self, TestNamespace};
use crate::fake::{FakeAdapter, FakeCloud};
use crate::widget::{self, Widget};

pub use stratus::api::common::{CREATE_ATTEMPT, CREATE_PENDING, EXTERNAL_NAME, FINALIZER, PAUSED};
pub use stratus::engine::annotations::CREATE_REQUEST;
pub use stratus::engine::reconciler::CREATE_DIGEST;

pub struct Env {
    pub ns: TestNamespace,
    pub cloud: Arc<FakeCloud>,
    pub ctx: Arc<Context<FakeAdapter>>,
    pub widgets: Api<Widget>,
    pub provider_config: String,
    /// What the controller's reflector would hold: the objects other reconciles check a cloud id
    /// against (see [`Env::publish`]).
    peers: parking_lot::Mutex<Writer<Widget>>,
}

impl Env {
    pub async fn start(prefix: &str) -> Self {
        Self::start_with(prefix, Settings::default()).await
    }

    pub async fn start_with(prefix: &str, settings: Settings) -> Self {
        let ns = TestNamespace::new(prefix).await;
        widget::install(&ns.client).await;
        // The fake cloud ignores endpoint and key; the engine still reads both (the Secret must
        // exist) and fingerprints them as the account.
        let provider_config =
            common::provider_config(&ns, "http://127.0.0.1:9/fake", "fake-api-key", None).await;
        let cloud = FakeCloud::register(&provider_config);
        let (ctx, writer) = Self::context(&ns.client, settings);
        let widgets = ns.api();
        Self {
            ns,
            cloud,
            ctx,
            widgets,
            provider_config,
            peers: parking_lot::Mutex::new(writer),
        }
    }

    fn context(
        client: &kube::Client,
        settings: Settings,
    ) -> (Arc<Context<FakeAdapter>>, Writer<Widget>) {
        let (store, writer) = reflector::store();
        let ctx = Arc::new(Context {
            kube: client.clone(),
            adapter: FakeAdapter,
            providers: Arc::new(Providers::new(client.clone())),
            recorder: Recorder::new(
                client.clone(),
                Reporter {
                    controller: "stratus-engine-test".into(),
                    instance: None,
                },
            ),
            backoffs: Default::default(),
            settings,
            peers: vec![store],
            unwritten: Default::default(),
        });
        (ctx, writer)
    }

    /// A restart of the operator: a new Context (nothing kept in memory), same settings.
    pub fn restart(&mut self) {
        let (ctx, writer) = Self::context(&self.ns.client, self.ctx.settings.clone());
        self.ctx = ctx;
        self.peers = parking_lot::Mutex::new(writer);
    }

    /// Put the current version of `name` in the peers store, as the controller's watch would.
    pub async fn publish(&self, name: &str) {
        let fresh = self.get(name).await;
        self.peers
            .lock()
            .apply_watcher_event(&watcher::Event::Apply(fresh));
    }

    /// Create Widget `name` (name = object name, size 1, policies defaulted) with `spec` merged
    /// into that default and `annotations`.
    pub async fn create(
        &self,
        name: &str,
        spec: serde_json::Value,
        annotations: serde_json::Value,
    ) -> Widget {
        let mut full = json!({
            "providerConfigRef": {"name": self.provider_config},
            "forProvider": {"name": name, "size": 1},
        });
        common::merge(&mut full, spec);
        let obj: Widget = serde_json::from_value(json!({
            "apiVersion": "fake.stratus.dev/v1alpha1", "kind": "Widget",
            "metadata": {"name": name, "annotations": annotations},
            "spec": full,
        }))
        .unwrap();
        self.widgets
            .create(&PostParams::default(), &obj)
            .await
            .expect("creating the Widget")
    }

    pub async fn get(&self, name: &str) -> Widget {
        self.widgets.get(name).await.expect("reading the Widget")
    }

    pub async fn get_opt(&self, name: &str) -> Option<Widget> {
        self.widgets
            .get_opt(name)
            .await
            .expect("reading the Widget")
    }

    /// One reconcile of a fresh read of `name`.
    pub async fn reconcile(&self, name: &str) -> Result<Action, Error> {
        let fresh = self.get(name).await;
        reconciler::reconcile(Arc::new(fresh), self.ctx.clone()).await
    }

    /// One reconcile that must not fail; returns the object as it left it.
    pub async fn step(&self, name: &str) -> Widget {
        if let Err(e) = self.reconcile(name).await {
            panic!("reconciling {name} failed: {e:?}");
        }
        self.get(name).await
    }

    /// Reconcile at least once, until `done` holds (at most `max` times); returns the object
    /// then.
    pub async fn until(
        &self,
        name: &str,
        max: usize,
        what: &str,
        done: impl Fn(&Widget) -> bool,
    ) -> Widget {
        let mut last = self.step(name).await;
        for _ in 1..max {
            if done(&last) {
                return last;
            }
            last = self.step(name).await;
        }
        assert!(
            done(&last),
            "{name} was not {what} after {max} reconciles: {}",
            serde_json::to_string_pretty(&last).unwrap()
        );
        last
    }

    /// Reconcile `name` until it is gone (at most `max` times).
    pub async fn until_gone(&self, name: &str, max: usize) {
        for _ in 0..max {
            let Some(fresh) = self.get_opt(name).await else {
                return;
            };
            reconciler::reconcile(Arc::new(fresh), self.ctx.clone())
                .await
                .unwrap_or_else(|e| panic!("reconciling {name} for deletion failed: {e:?}"));
        }
        if let Some(left) = self.get_opt(name).await {
            panic!(
                "{name} still exists after {max} reconciles: {}",
                serde_json::to_string_pretty(&left).unwrap()
            );
        }
    }

    pub async fn annotate(&self, name: &str, annotations: serde_json::Value) {
        self.widgets
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
            )
            .await
            .expect("annotating the Widget");
    }

    pub async fn patch_spec(&self, name: &str, spec: serde_json::Value) {
        self.widgets
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": spec })),
            )
            .await
            .expect("patching the Widget's spec");
    }

    /// Ask the API server to delete `name` (the finalizer keeps it until the engine lets go).
    pub async fn delete(&self, name: &str) {
        self.widgets
            .delete(name, &DeleteParams::default())
            .await
            .expect("deleting the Widget");
    }

    /// The Idempotency-Key the engine derives for attempt `attempt` of `obj`'s create.
    pub fn key(obj: &Widget, attempt: u32) -> Uuid {
        stratus::cloud::idempotency::idempotency_key(
            &obj.uid().unwrap(),
            <FakeAdapter as stratus::engine::Adapter>::CONTROLLER,
            attempt,
        )
    }

    pub async fn stop(self) {
        common::strip_finalizers::<Widget>(&self.ns).await;
        FakeCloud::unregister(&self.provider_config);
        self.ns.cleanup().await;
    }
}

/// Condition `type_`; panics with the object when it has none.
pub fn cond(w: &Widget, type_: &str) -> Condition {
    w.status
        .as_ref()
        .and_then(|s| s.managed.conditions.iter().find(|c| c.type_ == type_))
        .cloned()
        .unwrap_or_else(|| panic!("{} has no {type_} condition: {:?}", w.name_any(), w.status))
}

/// Assert condition `type_` has `status` and `reason`.
#[track_caller]
pub fn expect(w: &Widget, type_: &str, status: &str, reason: &str) {
    let c = cond(w, type_);
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        (status, reason),
        "{} condition {type_}: {c:?}",
        w.name_any()
    );
}

pub fn ann<'a>(w: &'a Widget, key: &str) -> Option<&'a str> {
    w.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

pub fn has_finalizer(w: &Widget) -> bool {
    w.finalizers().iter().any(|f| f == FINALIZER)
}

pub fn reported_id(w: &Widget) -> Option<&str> {
    w.status
        .as_ref()
        .and_then(|s| s.at_provider.as_ref())
        .map(|a| a.id.as_str())
}

pub fn created_through(w: &Widget) -> Option<&str> {
    w.status
        .as_ref()
        .and_then(|s| s.managed.created_through.as_deref())
}

/// Nothing in flight: Ready, Synced, not Reconciling, not Stalled.
pub fn settled(w: &Widget) -> bool {
    let has = |t: &str, s: &str| {
        w.status
            .as_ref()
            .and_then(|st| st.managed.conditions.iter().find(|c| c.type_ == t))
            .is_some_and(|c| c.status == s)
    };
    has("Ready", "True") && has("Synced", "True") && has("Reconciling", "False")
}
