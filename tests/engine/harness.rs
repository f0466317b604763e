//! One test's world: a namespace on a real API server, a ProviderConfig and Secret that resolve
//! to a fresh [`FakeCloud`], and a reconciler Context for the [`FakeAdapter`]. Reconciles are
//! driven by hand, each on a fresh read of the object (as the controller's watch would give).
//! The engine reaches the API server through [`KubeFaults`], which can refuse chosen requests or
//! act between a request and its answer.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use http_body_util::BodyExt;

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::Reporter;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;
use stratus::api::common::Condition;
use stratus::engine::Providers;
use stratus::engine::controller::claimed_ids;
use stratus::engine::events::Events;
use stratus::engine::peers::{IdIndex, Peers};
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
    /// Faults in the engine's own calls to the API server (the test's calls never go through).
    pub kube_faults: Arc<KubeFaults>,
    pub ctx: Arc<Context<FakeAdapter>>,
    pub widgets: Api<Widget>,
    pub provider_config: String,
    /// What the controller's reflector would hold: the objects other reconciles check a cloud id
    /// against (see [`Env::publish`]).
    peers: parking_lot::Mutex<Writer<Widget>>,
    /// The index of those objects by the cloud ids they claim, fed as the watch feeds it.
    index: Arc<IdIndex<Widget>>,
}

impl Env {
    pub async fn start(prefix: &str) -> Self {
        Self::start_with(prefix, Settings::default()).await
    }

    pub async fn start_with(prefix: &str, settings: Settings) -> Self {
        Self::start_with_adapter(prefix, settings, FakeAdapter::default()).await
    }

    pub async fn start_with_adapter(
        prefix: &str,
        settings: Settings,
        adapter: FakeAdapter,
    ) -> Self {
        let ns = TestNamespace::new(prefix).await;
        widget::install(&ns.client).await;
        // The fake cloud ignores endpoint and key; the engine still reads both (the Secret must
        // exist) and fingerprints them as the account.
        let provider_config =
            common::provider_config(&ns, "http://127.0.0.1:9/fake", "fake-api-key", None).await;
        let cloud = FakeCloud::register(&provider_config);
        let kube_faults = Arc::new(KubeFaults::default());
        let (ctx, writer, index) =
            Self::context(&kube_faults.client(&ns.client), settings, adapter);
        let widgets = ns.api();
        Self {
            ns,
            cloud,
            kube_faults,
            ctx,
            widgets,
            provider_config,
            peers: parking_lot::Mutex::new(writer),
            index,
        }
    }

    fn context(
        client: &kube::Client,
        settings: Settings,
        adapter: FakeAdapter,
    ) -> (
        Arc<Context<FakeAdapter>>,
        Writer<Widget>,
        Arc<IdIndex<Widget>>,
    ) {
        let (store, writer) = reflector::store();
        let index = Arc::new(IdIndex::new(claimed_ids::<FakeAdapter>));
        let mut peers = Peers::new();
        peers.add(store, index.clone());
        let ctx = Arc::new(Context {
            kube: client.clone(),
            adapter,
            providers: Arc::new(Providers::new(client.clone())),
            events: Arc::new(Events::new(
                client.clone(),
                Reporter {
                    controller: "stratus-engine-test".into(),
                    instance: None,
                },
            )),
            backoffs: Default::default(),
            settings,
            peers,
            unwritten: Default::default(),
        });
        (ctx, writer, index)
    }

    /// A restart of the operator: a new Context (nothing kept in memory), same settings.
    pub fn restart(&mut self) {
        let (ctx, writer, index) = Self::context(
            &self.kube_faults.client(&self.ns.client),
            self.ctx.settings.clone(),
            self.ctx.adapter.clone(),
        );
        self.ctx = ctx;
        self.peers = parking_lot::Mutex::new(writer);
        self.index = index;
    }

    /// Put the current version of `name` in the peers store, as the controller's watch would.
    pub async fn publish(&self, name: &str) {
        let event = watcher::Event::Apply(self.get(name).await);
        self.index.observe(&event);
        self.peers.lock().apply_watcher_event(&event);
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

/// What a request the engine sends to the API server gets instead of (or besides) its answer.
#[derive(Clone)]
pub enum KubeFault {
    /// Not sent: answered with this HTTP status (a `Status` body, as the API server would).
    Answer(u16),
    /// Sent; this runs once the API server answered, before the engine reads the answer.
    Then(Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>),
}

struct KubeRule {
    method: http::Method,
    /// The request path ends with this (`/secrets/w-conn`).
    path_end: String,
    /// The request body contains this (`"/data` for a write of a Secret's values).
    body_has: String,
    times: usize,
    fault: KubeFault,
}

/// Faults for the engine's requests to the API server: a request matching a rule's method,
/// path ending and body gets the rule's [`KubeFault`], `times` times.
#[derive(Default)]
pub struct KubeFaults {
    rules: parking_lot::Mutex<Vec<KubeRule>>,
    /// Every request matched by a rule so far: method and path.
    hits: parking_lot::Mutex<Vec<(String, String)>>,
}

impl KubeFaults {
    pub fn add(
        &self,
        method: http::Method,
        path_end: &str,
        body_has: &str,
        times: usize,
        fault: KubeFault,
    ) {
        self.rules.lock().push(KubeRule {
            method,
            path_end: path_end.into(),
            body_has: body_has.into(),
            times,
            fault,
        });
    }

    /// How many requests a rule matched.
    pub fn hits(&self) -> usize {
        self.hits.lock().len()
    }

    fn take(&self, method: &http::Method, path: &str, body: &[u8]) -> Option<KubeFault> {
        let body = String::from_utf8_lossy(body);
        let mut rules = self.rules.lock();
        let rule = rules.iter_mut().find(|r| {
            r.times > 0
                && r.method == *method
                && path.ends_with(&r.path_end)
                && body.contains(&r.body_has)
        })?;
        rule.times -= 1;
        self.hits.lock().push((method.to_string(), path.into()));
        Some(rule.fault.clone())
    }

    /// A client that sends through `inner` unless a rule says otherwise.
    fn client(self: &Arc<Self>, inner: &kube::Client) -> kube::Client {
        let faults = self.clone();
        let inner_client = inner.clone();
        let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let faults = faults.clone();
            let inner = inner_client.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = body.collect().await?.to_bytes();
                let fault = faults.take(&parts.method, parts.uri.path(), &bytes);
                let req = http::Request::from_parts(parts, kube::client::Body::from(bytes));
                match fault {
                    Some(KubeFault::Answer(code)) => {
                        let status = json!({
                            "kind": "Status", "apiVersion": "v1", "metadata": {},
                            "status": "Failure", "code": code,
                            "reason": if code == 403 { "Forbidden" } else { "InternalError" },
                            "message": format!("injected by the test (HTTP {code})"),
                        });
                        Ok::<_, kube::Error>(
                            http::Response::builder()
                                .status(code)
                                .header("content-type", "application/json")
                                .body(kube::client::Body::from(status.to_string().into_bytes()))
                                .expect("a response"),
                        )
                    }
                    Some(KubeFault::Then(after)) => {
                        let answer = inner.send(req).await;
                        after().await;
                        answer
                    }
                    None => inner.send(req).await,
                }
            }
        });
        kube::Client::new(service, inner.default_namespace().to_string())
    }
}

/// How long a reconcile asked to wait before the next one (`None`: until the object changes).
pub fn requeue_after(action: &Action) -> Option<Duration> {
    // `Action` keeps its delay private; its Debug form is `Action { requeue_after: Some(1.5s) }`.
    let shown = format!("{action:?}");
    let inner = shown.split("Some(").nth(1)?.split(')').next()?;
    let (number, unit) = inner
        .find(|c: char| c.is_ascii_alphabetic() || c == 'µ')
        .map(|i| inner.split_at(i))?;
    let n: f64 = number.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "ms" => n / 1e3,
        "µs" => n / 1e6,
        "ns" => n / 1e9,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
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
