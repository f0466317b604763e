//! The generic reconcile pipeline: dereference → validate → resolve → observe → create/plan/act
//! → status. Every cloud call goes through the adapter; every status write is one server-side
//! apply with a stable field manager, made only when something changed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Api, Resource, ResourceExt};
use rand::Rng;
use serde_json::json;
use tracing::{debug, info, instrument, warn};

use super::annotations::{self, CREATE_REQUEST, Parsed};
use super::backoff::Backoffs;
use super::conditions::{self, Outcome, Sync};
use super::connection::{
    self, CREATE_KEY_ANNOTATION, ConnectionDetails, Created, Revocation, SecretError, Secrets,
    Unwritten, VERSION_ANNOTATION,
};
use super::events::Events;
use super::peers::Peers;
use super::providers::Account;
use super::registry;
use super::{
    Adapter, Blocked, CreateGuard, Found, Freshness, Invalid, Plan, Proof, Providers, Readiness,
};
use crate::api::common::{
    CONNECTION, CREATE_ATTEMPT, CREATE_PENDING, CREATED_THROUGH, ConnectionSecretStatus,
    DeletionPolicy, EXTERNAL_NAME, FINALIZER, ManagedStatus, PAUSED, allowed,
};
use crate::cloud::throttle::{self, Priority};
use crate::cloud::{CloudError, ErrorClass, idempotency::idempotency_key};
use crate::metrics;

/// How long after a create started a resource it made may still appear, by default: one
/// request (30 s timeout) after waiting out a held key (at most 60 s), with room to spare.
/// Until then, "not found" after an ambiguous attempt means "keep looking", not "nothing
/// exists".
pub const CREATE_SETTLE: Duration = Duration::from_secs(120);
/// Clock skew allowed between the operator (which writes the create-pending time) and the
/// cloud (which reports when it created a resource).
pub const CLOCK_SKEW: Duration = Duration::from_secs(10);

/// How long a replaced credential's previous value stays valid, by default: a day, so every
/// consumer restarts or re-reads the Secret (mounted Secrets refresh within about a minute).
pub const ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

pub use super::conditions::CONNECTION_SECRET;

/// Annotation with the digest of create-only inputs the cloud does not echo back.
pub const CREATE_DIGEST: &str = "stratus.dev/create-digest";

/// The create-digest annotation's value: the create-only inputs' digest, or empty for kinds
/// without any (its presence alone marks a resource this operator recorded).
fn recorded_digest<A: Adapter>(desired: &A::Desired) -> String {
    A::create_only_digest(desired).unwrap_or_default()
}

/// How soon a reconcile that read a stale copy looks again (the watch usually has the newer
/// version by then; if not, it fails cheaply again, before any cloud call that acts).
const STALE_RETRY: Duration = Duration::from_millis(500);
/// The longest wait after repeated stale reads of one object.
const STALE_RETRY_CAP: Duration = Duration::from_secs(10);

/// Field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "stratus";

/// Operator-wide reconcile settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Periodic observation to correct drift (jittered ±10%).
    pub resync: Duration,
    /// How soon to look again at a resource in a transitional state.
    pub transitional_poll: Duration,
    /// One GET per resource (baseline) instead of the shared listing.
    pub per_resource_observe: bool,
    /// Backoff for errors retrying may fix.
    pub retry_initial: Duration,
    pub retry_cap: Duration,
    /// Backoff for errors that need a human: slower, so a broken object never burns the budget.
    pub stalled_initial: Duration,
    pub stalled_cap: Duration,
    /// See [`CREATE_SETTLE`].
    pub create_settle: Duration,
    /// How long a replaced credential's previous value stays valid (and in the connection
    /// Secret under `previous-` keys) before it is revoked.
    pub rotation_grace: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(600),
            transitional_poll: Duration::from_secs(2),
            per_resource_observe: false,
            retry_initial: Duration::from_secs(1),
            retry_cap: Duration::from_secs(60),
            stalled_initial: Duration::from_secs(10),
            stalled_cap: Duration::from_secs(300),
            create_settle: CREATE_SETTLE,
            rotation_grace: ROTATION_GRACE,
        }
    }
}

/// Shared state of one controller.
pub struct Context<A: Adapter> {
    pub kube: kube::Client,
    pub adapter: A,
    pub providers: Arc<Providers>,
    pub events: Arc<Events>,
    pub backoffs: Backoffs,
    pub settings: Settings,
    /// Every object of the kind the operator watches, by the cloud ids they claim, to refuse
    /// adopting a cloud id another object already manages.
    pub peers: Peers<A::Kind>,
    /// Credential values the cloud issued whose write to the connection Secret failed, retried
    /// without asking the cloud for another value.
    pub unwritten: Unwritten,
}

/// Errors talking to Kubernetes itself; cloud and input errors become conditions instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("object has no namespace or name")]
    Unnamed,
    #[error("reconcile panicked: {0}")]
    Panicked(String),
    /// A write carried the resourceVersion the reconcile read and the API server refused it:
    /// the object changed meanwhile (or the cache was behind). Nothing was decided on the stale
    /// copy; the newer version is reconciled next.
    #[error("the object changed since it was read; reconciling the newer version")]
    Stale,
}

impl Error {
    /// Label for the errors metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Unnamed => "unnamed",
            Error::Panicked(_) => "panic",
            Error::Stale => "stale",
        }
    }
}

fn now() -> String {
    Timestamp::now().to_string()
}

fn key_of<K: Resource>(obj: &K) -> String {
    format!(
        "{}/{}",
        obj.meta().namespace.as_deref().unwrap_or(""),
        obj.meta().name.as_deref().unwrap_or("")
    )
}

fn jittered(d: Duration) -> Duration {
    let f = rand::rng().random_range(0.9..1.1);
    d.mul_f64(f)
}

/// PascalCase reason from an API code: VALIDATION_ERROR → ValidationError.
pub fn reason_from_code(code: &str) -> String {
    code.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}

/// Entry point for the kube-runtime Controller.
#[instrument(skip_all, fields(controller = %registry::controller_name::<A>(), object = %key_of(obj.as_ref())))]
pub async fn reconcile<A: Adapter>(
    obj: Arc<A::Kind>,
    ctx: Arc<Context<A>>,
) -> Result<Action, Error> {
    let m = metrics::global();
    let name = registry::controller_name::<A>();
    let controller = metrics::ControllerLabels {
        controller: name.clone(),
    };
    let queue = metrics::WorkqueueLabels::new(&name);
    m.workqueue_depth.get_or_create(&queue).inc();
    let started = Instant::now();
    // A panic in one object's reconcile must not end the controller (and with it every other
    // object of the kind): it becomes an error, retried with backoff like any other.
    let reconcile = Reconcile::new(&obj, &ctx);
    let result = {
        use futures::FutureExt;
        // Every cloud call of this reconcile is in the object's namespace's flow: the key
        // throttle serves namespaces round-robin within a priority.
        let run = throttle::in_flow(
            obj.namespace().as_deref().unwrap_or_default(),
            reconcile.run(),
        );
        match std::panic::AssertUnwindSafe(run).catch_unwind().await {
            Ok(r) => r,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!(panic = %what, "reconcile panicked; retrying with backoff");
                Err(Error::Panicked(what))
            }
        }
    };
    m.workqueue_depth.get_or_create(&queue).dec();
    m.reconcile_time_seconds
        .get_or_create(&controller)
        .observe(started.elapsed().as_secs_f64());
    let label = match &result {
        Ok(Step { failed: false, .. }) => "success",
        Ok(_) | Err(_) => "error",
    };
    m.reconcile_total
        .get_or_create(&metrics::ReconcileLabels {
            controller: name.clone(),
            result: label.into(),
        })
        .inc();
    if !matches!(result, Err(Error::Stale)) {
        ctx.backoffs.reset(&stale_key(obj.as_ref()));
    }
    match result {
        Ok(step) => {
            if let Some(reason) = &step.error_reason {
                m.reconcile_errors_total
                    .get_or_create(&metrics::ErrorLabels {
                        controller: name.clone(),
                        error: reason.clone(),
                    })
                    .inc();
            }
            Ok(step.action)
        }
        Err(e) => {
            m.reconcile_errors_total
                .get_or_create(&metrics::ErrorLabels {
                    controller: name.clone(),
                    error: e.metric_label().into(),
                })
                .inc();
            Err(e)
        }
    }
}

/// Requeue policy for Kubernetes errors (status writes, annotation patches).
pub fn error_policy<A: Adapter>(obj: Arc<A::Kind>, err: &Error, ctx: Arc<Context<A>>) -> Action {
    if matches!(err, Error::Stale) {
        // Routine: the watch brings the newer version; look again soon, backing off (from
        // 500 ms, at most 10 s) only if the object keeps changing under every attempt.
        debug!(controller = %registry::controller_name::<A>(), object = %key_of(obj.as_ref()), "stale read; retrying");
        return Action::requeue(ctx.backoffs.fail(
            &stale_key(obj.as_ref()),
            STALE_RETRY,
            STALE_RETRY_CAP,
        ));
    }
    warn!(controller = %registry::controller_name::<A>(), object = %key_of(obj.as_ref()), error = %err, "reconcile failed");
    let s = &ctx.settings;
    Action::requeue(
        ctx.backoffs
            .fail(&backoff_key(obj.as_ref()), s.retry_initial, s.retry_cap),
    )
}

/// Consecutive stale reads of one object incarnation (reset by any reconcile that got through).
fn stale_key<K: Resource>(obj: &K) -> String {
    format!("{}/stale", backoff_key(obj))
}

/// Consecutive failed writes of the object's connection Secret: a backoff of its own, reset only
/// by a write that succeeds (every observation resets the object's).
fn connection_key<K: Resource>(obj: &K) -> String {
    format!("{}/connection", backoff_key(obj))
}

/// How a failed write of connection Secret `namespace/name` is reported. Never the API server's
/// message for a refused write, which could quote what was sent; a refusal by RBAC needs a
/// human, anything else is retried.
fn secret_sync(err: &SecretError, namespace: &str, name: &str) -> Sync {
    match err {
        SecretError::Kube(kube::Error::Api(s)) if s.code == 403 => Sync::Stalled {
            reason: "SecretForbidden".into(),
            message: format!(
                "the operator may not write Secret {namespace}/{name} (HTTP 403): list namespace {namespace} in the chart's rbac.connectionSecretNamespaces; a value the cloud already issued is held and written then"
            ),
        },
        SecretError::Kube(kube::Error::Api(s)) => Sync::Error {
            reason: "SecretWriteFailed".into(),
            message: format!(
                "writing Secret {namespace}/{name} failed (HTTP {} {}); retrying with backoff",
                s.code, s.reason
            ),
        },
        SecretError::Kube(e) => Sync::Error {
            reason: "SecretWriteFailed".into(),
            message: format!(
                "writing Secret {namespace}/{name} failed ({}); retrying with backoff",
                match e {
                    // A serde message can quote the data it failed on.
                    kube::Error::SerdeError(_) => "the write could not be encoded".to_string(),
                    e => truncate(&e.to_string(), 200),
                }
            ),
        },
        SecretError::Gone => Sync::Error {
            reason: "SecretWriteFailed".into(),
            message: format!(
                "Secret {namespace}/{name} was deleted while it was being written; it is claimed again"
            ),
        },
        SecretError::Conflict => Sync::Error {
            reason: "SecretWriteFailed".into(),
            message: format!(
                "Secret {namespace}/{name} was replaced by another Secret of that name while it was being written"
            ),
        },
    }
}

/// Backoff entries are per object incarnation: a re-created object (new UID) starts afresh.
fn backoff_key<K: Resource>(obj: &K) -> String {
    obj.meta().uid.clone().unwrap_or_else(|| key_of(obj))
}

/// What a reconcile decided.
struct Step {
    action: Action,
    failed: bool,
    error_reason: Option<String>,
}

impl Step {
    fn ok(action: Action) -> Self {
        Self {
            action,
            failed: false,
            error_reason: None,
        }
    }
}

struct Reconcile<'a, A: Adapter> {
    obj: &'a Arc<A::Kind>,
    ctx: &'a Arc<Context<A>>,
    /// The engine's annotations, checked (an error is the object's own `InvalidSpec`).
    notes: Result<Parsed, Invalid>,
    /// `status.createdThrough` as it should be written: kept from the previous status, set when
    /// this reconcile records a resource it created.
    created_through: std::sync::Mutex<Option<String>>,
    /// The resourceVersion every write carries as a precondition: the one read, then the one
    /// each write returned. A reconcile of a stale copy (the cache behind our own last write)
    /// fails at its first write with [`Error::Stale`], before it can send a create a newer
    /// version already recorded, or erase what a newer status holds.
    version: std::sync::Mutex<Option<String>>,
    /// This reconcile recorded the id of a resource its object's own create made (after the
    /// create answered, or found after an answer was lost). The copy it read does not show that
    /// record yet, so what it observes next must not be taken for a resource a user named.
    recorded: std::sync::atomic::AtomicBool,
    /// The connection Secret as recorded in the [`CONNECTION`] annotation, then as this
    /// reconcile wrote it.
    connection: std::sync::Mutex<Option<ConnectionSecretStatus>>,
}

/// How a step of the connection-Secret work ended.
enum Maintained {
    /// Carry on; the record needs a look again after this long, if at all.
    Continue,
    /// The reconcile ends here.
    Done(Step),
}

impl<'a, A: Adapter> Reconcile<'a, A> {
    fn new(obj: &'a Arc<A::Kind>, ctx: &'a Arc<Context<A>>) -> Self {
        Self {
            obj,
            ctx,
            notes: annotations::parse(obj.annotations()),
            created_through: std::sync::Mutex::new(
                obj.annotations()
                    .get(CREATED_THROUGH)
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .or_else(|| A::status(obj).and_then(|s| s.created_through.clone())),
            ),
            version: std::sync::Mutex::new(obj.meta().resource_version.clone()),
            recorded: std::sync::atomic::AtomicBool::new(false),
            connection: std::sync::Mutex::new(
                obj.annotations()
                    .get(CONNECTION)
                    .and_then(|v| serde_json::from_str(v).ok()),
            ),
        }
    }

    fn connection(&self) -> Option<ConnectionSecretStatus> {
        self.connection
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    /// The Secret the spec asks for and the rotation it asks for.
    fn secret_ref(&self) -> Option<(String, Option<String>)> {
        let spec = A::connection_secret(self.obj)?;
        let name = spec.write_connection_secret_to_ref.as_ref()?.name.clone();
        Some((name, spec.connection_secret_rotation.clone()))
    }

    fn secrets(&self) -> Secrets<'_, A::Kind> {
        Secrets::new(self.ctx.kube.clone(), self.obj.as_ref())
    }

    fn secret_conflict(&self, name: &str) -> Invalid {
        let ns = self.obj.meta().namespace.as_deref().unwrap_or("");
        Invalid::new(
            "SecretConflict",
            format!(
                "Secret {ns}/{name} exists and was not created for this {} (it lacks the {} label with this object's UID): the operator never takes over a Secret it does not own. Delete or rename that Secret, or set spec.writeConnectionSecretToRef.name to a free name",
                A::Kind::kind(&()),
                super::connection::OWNER_UID_LABEL
            ),
        )
    }

    /// Record the connection Secret in the [`CONNECTION`] annotation: a fact (what the Secret
    /// holds now), so written whatever the object's version.
    async fn record_connection(&self, record: ConnectionSecretStatus) -> Result<(), Error> {
        let json = serde_json::to_string(&record).unwrap_or_default();
        self.annotate_unconditionally(&[(CONNECTION, Some(json))])
            .await?;
        if let Ok(mut g) = self.connection.lock() {
            *g = Some(record);
        }
        Ok(())
    }

    /// Record the connection Secret conditionally on the version this reconcile read, before a
    /// call that cannot be undone (revoking values, asking the cloud for a new one): the state
    /// that justifies the call is then durably the object's current one. A reconcile working
    /// from a stale copy (whose record may name a value that is no longer the one in the
    /// Secret) stops here with [`Error::Stale`]. Writing the record the copy already holds
    /// changes nothing and still proves the copy is current.
    async fn record_connection_checked(&self, record: ConnectionSecretStatus) -> Result<(), Error> {
        let json = serde_json::to_string(&record).unwrap_or_default();
        self.annotate(&[(CONNECTION, Some(json))]).await?;
        if let Ok(mut g) = self.connection.lock() {
            *g = Some(record);
        }
        Ok(())
    }

    /// When the recorded connection work is next due (revoking what a grace period kept).
    fn connection_due(&self) -> Option<Duration> {
        let after: Timestamp = self.connection()?.revoke_others_after?.parse().ok()?;
        let left = Duration::try_from(after.duration_since(Timestamp::now())).unwrap_or_default();
        Some(left + Duration::from_secs(1))
    }

    fn version(&self) -> Option<String> {
        self.version.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Make a write conditional on the version this reconcile last saw.
    fn precondition(&self, metadata: &mut serde_json::Value) {
        if let Some(version) = self.version() {
            metadata["resourceVersion"] = json!(version);
        }
    }

    /// Note the version a write returned, and map a refused precondition to [`Error::Stale`].
    fn track(&self, result: Result<A::Kind, kube::Error>) -> Result<(), Error> {
        match result {
            Ok(written) => {
                if let Ok(mut g) = self.version.lock() {
                    *g = written.meta().resource_version.clone();
                }
                Ok(())
            }
            Err(e) if refused_precondition(&e) => Err(Error::Stale),
            Err(e) => Err(e.into()),
        }
    }

    fn uid(&self) -> String {
        self.obj.meta().uid.clone().unwrap_or_default()
    }

    fn created_through(&self) -> Option<String> {
        self.created_through
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    fn set_created_through(&self, value: Option<String>) {
        if let Ok(mut g) = self.created_through.lock() {
            *g = value;
        }
    }

    /// The object's id was recorded by this operator (after its own create, or at an adoption it
    /// already reported): the create-digest annotation is there (empty for kinds without a
    /// digest), or the created-through fingerprint written with the id.
    fn recorded_by_us(&self) -> bool {
        let a = self.obj.annotations();
        a.contains_key(CREATE_DIGEST) || a.get(CREATED_THROUGH).is_some_and(|v| !v.is_empty())
    }

    /// A reconcile caused by a change of the spec reads at the priority of a user's write.
    fn user_changed(&self) -> bool {
        let seen = A::status(self.obj).and_then(|s| s.observed_generation);
        self.obj.meta().generation.is_some() && seen != self.obj.meta().generation
    }

    /// The create-pending time, if a create may be in flight. `Err`: the marker is there but
    /// unreadable, so its age is unknown.
    fn pending_since(&self) -> Result<Option<Timestamp>, Invalid> {
        match &self.notes {
            Ok(p) => Ok(p.create_pending),
            Err(_) => match self.annotation(CREATE_PENDING) {
                None => Ok(None),
                Some(v) => v.trim().parse::<Timestamp>().map(Some).map_err(|_| {
                    Invalid::new(
                        "InvalidSpec",
                        format!("annotation {CREATE_PENDING}: {v:?} is not a timestamp the operator wrote"),
                    )
                }),
            },
        }
    }

    /// The request of the pending create: as recorded before it was sent; for a marker written
    /// by an older version (no recorded request), the request the spec asks for now.
    fn pending_request(&self, desired: Option<&A::Desired>) -> Result<A::CreateRequest, Invalid> {
        match self.annotation(CREATE_REQUEST) {
            Some(json) => serde_json::from_str(json).map_err(|e| {
                Invalid::new(
                    "InvalidSpec",
                    format!(
                        "annotation {CREATE_REQUEST} is not the request the operator recorded ({e}); it describes a create that may be in flight: restore it, or remove it together with {CREATE_PENDING} only if you are sure no cloud resource was created"
                    ),
                )
            }),
            None => desired
                .map(|d| A::create_request(self.obj, d))
                .ok_or_else(|| {
                    Invalid::new(
                        "DependencyUnavailable",
                        "a create may be in flight and what it sent was not recorded (an older version of the operator started it); it is looked for once the desired state can be computed again",
                    )
                }),
        }
    }

    /// Another object that manages cloud id `id` (other than this one), by `namespace/name`.
    /// Of two objects naming one id that neither has recorded yet, the older one keeps it.
    fn claimant(&self, id: &str) -> Option<String> {
        self.find_claimant(id, false)
    }

    /// [`claimant`](Self::claimant) for deleting `id`: an object that reports `id` as its own
    /// yields only to another that reports it too, and a peer being deleted as well claims
    /// nothing — otherwise a typo naming the id elsewhere, or deleting both objects at once
    /// (a namespace), would leave the resource with no owner at all.
    fn deletion_claimant(&self, id: &str) -> Option<String> {
        self.find_claimant(id, true)
    }

    fn find_claimant(&self, id: &str, deleting: bool) -> Option<String> {
        let me = self.obj.meta();
        let mine_key = (me.creation_timestamp.as_ref().map(|t| t.0), me.uid.clone());
        let i_report = A::reported_id(self.obj) == Some(id);
        self.ctx
            .peers
            .claiming(id)
            .into_iter()
            .find(|other| {
                let m = other.meta();
                if m.uid.is_some() && m.uid == me.uid {
                    return false;
                }
                if deleting && m.deletion_timestamp.is_some() {
                    return false;
                }
                let named = other
                    .annotations()
                    .get(EXTERNAL_NAME)
                    .is_some_and(|v| v == id);
                let reported = A::reported_id(other) == Some(id);
                if reported {
                    return true;
                }
                if !named || (deleting && i_report) {
                    return false;
                }
                let recorded = other.annotations().contains_key(CREATE_DIGEST);
                recorded || (m.creation_timestamp.as_ref().map(|t| t.0), m.uid.clone()) < mine_key
            })
            .map(|o| key_of(o.as_ref()))
    }

    fn already_managed(id: &str, other: &str) -> Invalid {
        Invalid::new(
            "AlreadyManaged",
            format!(
                "{id} is already managed by {} {other}; two objects cannot manage one cloud resource: delete one of them, or point this one at another resource",
                A::Kind::kind(&())
            ),
        )
    }

    fn api(&self) -> Result<Api<A::Kind>, Error> {
        let ns = self.obj.meta().namespace.as_deref().ok_or(Error::Unnamed)?;
        Ok(Api::namespaced(self.ctx.kube.clone(), ns))
    }

    fn name(&self) -> Result<&str, Error> {
        self.obj.meta().name.as_deref().ok_or(Error::Unnamed)
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.obj
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    async fn run(&self) -> Result<Step, Error> {
        let meta = self.obj.meta();
        if meta.deletion_timestamp.is_some() {
            return self.cleanup().await;
        }
        if !meta
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
        {
            self.add_finalizer().await?;
        }
        if self.annotation(PAUSED) == Some("true") {
            return self.paused().await;
        }
        self.apply().await
    }

    async fn add_finalizer(&self) -> Result<(), Error> {
        let mut finalizers = self.obj.meta().finalizers.clone().unwrap_or_default();
        finalizers.push(FINALIZER.into());
        let mut metadata = json!({ "finalizers": finalizers });
        self.precondition(&mut metadata);
        let patch = json!({ "metadata": metadata });
        let result = self
            .api()?
            .patch(self.name()?, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
        self.track(result)
    }

    async fn remove_finalizer(&self) -> Result<(), Error> {
        let finalizers: Vec<String> = self
            .obj
            .meta()
            .finalizers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f != FINALIZER)
            .collect();
        let mut metadata = json!({ "finalizers": finalizers });
        self.precondition(&mut metadata);
        let patch = json!({ "metadata": metadata });
        match self
            .api()?
            .patch(self.name()?, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            result => self.track(result),
        }
    }

    /// Merge-patch annotations (None removes one).
    async fn annotate(&self, values: &[(&str, Option<String>)]) -> Result<(), Error> {
        self.patch_annotations(values, true).await
    }

    /// Start a new create attempt (a new idempotency key) after `attempt`, removing the markers
    /// of the one that ended.
    async fn next_create_attempt(
        &self,
        attempt: u32,
        clear: &[&str],
        precondition: bool,
    ) -> Result<(), Error> {
        let mut values: Vec<(&str, Option<String>)> = clear.iter().map(|k| (*k, None)).collect();
        values.push((
            CREATE_ATTEMPT,
            Some(annotations::next_attempt(attempt).to_string()),
        ));
        self.patch_annotations(&values, precondition).await
    }

    /// Merge-patch annotations whatever the object's version: for recording a fact (the id a
    /// create returned, a definitive rejection) that must not be lost because someone edited or
    /// deleted the object meanwhile.
    async fn annotate_unconditionally(
        &self,
        values: &[(&str, Option<String>)],
    ) -> Result<(), Error> {
        self.patch_annotations(values, false).await
    }

    async fn patch_annotations(
        &self,
        values: &[(&str, Option<String>)],
        precondition: bool,
    ) -> Result<(), Error> {
        let map: serde_json::Map<String, serde_json::Value> = values
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.clone()
                        .map(serde_json::Value::String)
                        .unwrap_or(serde_json::Value::Null),
                )
            })
            .collect();
        // Every write names the object's UID: never one created again under its name.
        let mut metadata = json!({"annotations": map, "uid": self.uid()});
        self.precondition(&mut metadata);
        let patch = json!({ "metadata": metadata });
        let api = self.api()?;
        let name = self.name()?;
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            // A fact is written whatever the object's version, but not as if the copy were
            // current: the version read stays the precondition of every later write of this
            // reconcile, which then fails as stale instead of deciding on the old copy.
            Err(kube::Error::Api(s)) if s.code == 409 && !precondition => {
                let patch = json!({"metadata": {"annotations": map, "uid": self.uid()}});
                match api
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if refused_precondition(&e) => Err(Error::Stale),
                    Err(e) => Err(e.into()),
                }
            }
            result => self.track(result),
        }
    }

    async fn event(&self, type_: EventType, reason: &str, action: &str, note: String) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(truncate(&note, 1000)),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self
            .ctx
            .events
            .recorder(type_)
            .publish(&ev, &self.obj.object_ref(&()))
            .await
        {
            debug!(error = %e, "could not publish event");
        }
    }

    /// Write status when it differs from what the object has.
    async fn write_status(
        &self,
        observed: Option<&A::Observed>,
        outcome: &Outcome,
    ) -> Result<(), Error> {
        let generation = self.obj.meta().generation;
        let previous = A::status(self.obj).cloned().unwrap_or_default();
        let now = now();
        let ns = self.obj.meta().namespace.as_deref().unwrap_or("");
        let secret = self
            .secret_ref()
            .map(|(name, _)| conditions::connection_secret(ns, &name, self.connection().as_ref()));
        let outcome = Outcome {
            readiness: conditions::with_connection_secret(
                outcome.readiness.clone(),
                secret.as_ref(),
            ),
            ..outcome.clone()
        };
        let mut conditions =
            conditions::conditions(&outcome, generation, &previous.conditions, &now);
        conditions.extend(
            secret.as_ref().map(|s| {
                conditions::connection_condition(s, generation, &previous.conditions, &now)
            }),
        );
        let managed = ManagedStatus {
            observed_generation: generation,
            conditions,
            created_through: self.created_through(),
            connection_secret: self.connection(),
        };
        let body = A::status_body(observed, self.obj, managed);
        let current = serde_json::to_value(self.obj.as_ref())
            .ok()
            .and_then(|v| v.get("status").cloned())
            .unwrap_or(serde_json::Value::Null);
        if current == body {
            return Ok(());
        }
        // Conditional like every write: a stale copy must not erase what a newer status holds.
        let mut metadata = json!({});
        self.precondition(&mut metadata);
        let patch = json!({
            "apiVersion": A::Kind::api_version(&()),
            "kind": A::Kind::kind(&()),
            "metadata": metadata,
            "status": body,
        });
        match self
            .api()?
            .patch_status(
                self.name()?,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
        {
            // Deleted meanwhile: nothing to report to.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            result => self.track(result),
        }
    }

    /// The per-resource poll interval from the annotation, when it is set.
    fn poll_interval(&self) -> Option<Duration> {
        self.notes.as_ref().ok().and_then(|p| p.poll_interval)
    }

    /// Not Ready while a dependency is not: say which, and look again after `recheck`.
    async fn wait_for(&self, w: Invalid, recheck: Duration) -> Result<Step, Error> {
        let outcome = Outcome {
            readiness: Readiness::Waiting {
                reason: w.reason.clone(),
                message: w.message.clone(),
            },
            sync: Sync::Success,
            progressing: Some(w.message.clone()),
        };
        self.write_status(None, &outcome).await?;
        Ok(Step::ok(Action::requeue(recheck)))
    }

    fn steady_requeue(&self) -> Action {
        let every = self.poll_interval().unwrap_or(self.ctx.settings.resync);
        let every = jittered(A::input_recheck(self.obj).map_or(every, |r| r.min(every)));
        Action::requeue(self.connection_due().map_or(every, |due| due.min(every)))
    }

    fn freshness(&self, transitional: bool) -> Freshness {
        let s = &self.ctx.settings;
        let every = self.poll_interval().unwrap_or(s.resync);
        // A resource polled faster than the resync asks for fresher news than the shared
        // listing has: like a transitional one, it gets whichever is cheaper, a GET or a list.
        let urgent = transitional || every < s.resync;
        Freshness {
            max_age: if transitional {
                s.transitional_poll.min(every)
            } else {
                every
            },
            urgent,
            direct: s.per_resource_observe,
            priority: if self.user_changed() {
                Priority::Write
            } else if urgent {
                Priority::Urgent
            } else {
                Priority::Routine
            },
        }
    }

    /// Report an outcome and pick the next requeue: a retryable error backs off quickly,
    /// a stalled one slowly.
    async fn fail(
        &self,
        observed: Option<&A::Observed>,
        readiness: Readiness,
        sync: Sync,
    ) -> Result<Step, Error> {
        self.fail_keyed(observed, readiness, sync, &backoff_key(self.obj.as_ref()))
            .await
    }

    /// [`fail`](Self::fail), counting failures under backoff entry `key`.
    async fn fail_keyed(
        &self,
        observed: Option<&A::Observed>,
        readiness: Readiness,
        sync: Sync,
        key: &str,
    ) -> Result<Step, Error> {
        let s = &self.ctx.settings;
        let (reason, message, initial, cap, stalled) = match &sync {
            Sync::Stalled { reason, message } => (
                reason.clone(),
                message.clone(),
                s.stalled_initial,
                s.stalled_cap,
                true,
            ),
            Sync::Error { reason, message } => (
                reason.clone(),
                message.clone(),
                s.retry_initial,
                s.retry_cap,
                false,
            ),
            _ => unreachable!("fail() takes errors"),
        };
        let outcome = Outcome {
            readiness,
            sync,
            progressing: None,
        };
        self.write_status(observed, &outcome).await?;
        self.event(EventType::Warning, &reason, "Reconcile", message.clone())
            .await;
        let delay = self.ctx.backoffs.fail(key, initial, cap);
        if stalled {
            warn!(reason, message, retry_in = ?delay, "stalled: needs a change to the spec or account");
        } else {
            info!(reason, message, retry_in = ?delay, "retrying after error");
        }
        Ok(Step {
            action: Action::requeue(delay),
            failed: true,
            error_reason: Some(reason),
        })
    }

    fn previous_readiness(&self) -> Readiness {
        let prev = A::status(self.obj)
            .and_then(|s| conditions::find(&s.conditions, conditions::READY).cloned());
        match prev {
            Some(c) if c.status == "True" => Readiness::Available(c.message),
            Some(c) => match c.reason.as_str() {
                "Creating" => Readiness::Creating(c.message),
                "Deleting" => Readiness::Deleting(c.message),
                r if r.starts_with("Waiting") || r == "Activating" || r == "NameserversNotSet" => {
                    Readiness::Waiting {
                        reason: c.reason,
                        message: c.message,
                    }
                }
                // "Unavailable", and reasons older versions wrote.
                _ => Readiness::Unavailable(c.message),
            },
            None => Readiness::Unavailable("Not reconciled yet".into()),
        }
    }

    async fn paused(&self) -> Result<Step, Error> {
        self.settle(self.previous_readiness(), Sync::Paused).await
    }

    /// Nothing to do until the object changes: report, and wait for that change.
    async fn settle(&self, readiness: Readiness, sync: Sync) -> Result<Step, Error> {
        let outcome = Outcome {
            readiness,
            sync,
            progressing: None,
        };
        self.write_status(None, &outcome).await?;
        Ok(Step::ok(Action::await_change()))
    }

    fn cloud_sync(err: &CloudError) -> Sync {
        let message = format!("{err}");
        match err.class() {
            ErrorClass::Terminal | ErrorClass::NeedsHuman => Sync::Stalled {
                reason: reason_from_code(err.code()),
                message,
            },
            ErrorClass::RateLimited => Sync::Error {
                reason: "RateLimited".into(),
                message,
            },
            _ => Sync::Error {
                reason: "CloudUnavailable".into(),
                message,
            },
        }
    }

    async fn apply(&self) -> Result<Step, Error> {
        let adapter = &self.ctx.adapter;
        let managed = A::managed(self.obj);
        let may = allowed(&managed.management_policies);

        if let Err(invalid) = &self.notes {
            return self.invalid(invalid.clone(), false).await;
        }
        if let Err(invalid) = A::validate(self.obj) {
            return self.invalid(invalid, false).await;
        }
        if let Some(spec) = A::connection_secret(self.obj)
            && let Err(invalid) = connection::validate(&spec)
        {
            return self.invalid(invalid, false).await;
        }
        let mut desired = match adapter.desired(&self.ctx.kube, self.obj).await {
            Ok(d) => d,
            Err(Blocked::Invalid(invalid)) => return self.invalid(invalid, true).await,
            // Watches on the dependency requeue us; this is a safety net.
            Err(Blocked::Waiting(w)) => return self.wait_for(w, Duration::from_secs(30)).await,
        };
        let (cloud, account) = match self
            .ctx
            .providers
            .resolve_account::<A::Cloud>(&managed.provider_config)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                let sync = Sync::Stalled {
                    reason: e.reason().into(),
                    message: e.to_string(),
                };
                let readiness = Readiness::Unavailable(e.to_string());
                return self.fail(None, readiness, sync).await;
            }
        };
        match adapter.check_offer(&cloud, &mut desired).await {
            Ok(Ok(())) => {}
            Ok(Err(Blocked::Invalid(invalid))) => return self.invalid(invalid, true).await,
            // A cloud-side dependency has no watch: look again at the pace of a transition.
            Ok(Err(Blocked::Waiting(w))) => {
                return self
                    .wait_for(w, self.ctx.settings.transitional_poll * 15)
                    .await;
            }
            Err(e) => {
                return self
                    .fail(None, self.previous_readiness(), Self::cloud_sync(&e))
                    .await;
            }
        }

        // Dereference the cloud resource: recorded id, or one an earlier attempt created.
        let mut id = self.annotation(EXTERNAL_NAME).map(str::to_string);
        let pending = self.notes.as_ref().ok().and_then(|p| p.create_pending);
        if id.is_none()
            && let Some(since) = pending
        {
            let request = match self.pending_request(Some(&desired)) {
                Ok(r) => r,
                Err(invalid) => return self.invalid(invalid, false).await,
            };
            match self.recover(&cloud, &request, since).await {
                Ok(None) => {}
                Ok(Some(Ok(found))) => {
                    let found_id = A::external_id(&found);
                    let connection = match self.recovered_connection().await? {
                        Ok(c) => c,
                        Err(invalid) => return self.invalid(invalid, true).await,
                    };
                    self.record_created(&found_id, &desired, &account, connection)
                        .await?;
                    self.event(
                        EventType::Normal,
                        "Created",
                        "Create",
                        format!(
                            "Found {found_id}, created by an earlier attempt whose answer was lost"
                        ),
                    )
                    .await;
                    id = Some(found_id);
                }
                // Not ours: report it, never adopt it; the pending marker stays, so deletion
                // keeps looking for what our own attempt may have made.
                Ok(Some(Err(invalid))) => return self.invalid(invalid, true).await,
                Err(e) => {
                    return self
                        .fail(
                            None,
                            Readiness::Creating("looking for an earlier create".into()),
                            Self::cloud_sync(&e),
                        )
                        .await;
                }
            }
        }

        let Some(id) = id else {
            if !may.create {
                let readiness = Readiness::Unavailable(format!(
                    "managementPolicies do not allow Create; set the {EXTERNAL_NAME} annotation to the id of an existing resource to observe it"
                ));
                return self.settle(readiness, Sync::Success).await;
            }
            return self.create(&cloud, &account, &desired).await;
        };

        // Observe.
        let previous_transitional = A::status(self.obj).is_some_and(|s| {
            conditions::find(&s.conditions, conditions::RECONCILING)
                .is_some_and(|c| c.status == "True")
        });
        let observed = match adapter
            .observe(&cloud, self.obj, &id, self.freshness(previous_transitional))
            .await
        {
            Ok(o) => o,
            // A routine read found no budget: ask again later without holding a worker, and
            // without touching the status (nothing is wrong).
            Err(CloudError::Deferred { retry_in, .. }) => {
                return Ok(Step::ok(Action::requeue(jittered(retry_in))));
            }
            Err(e) => {
                return self
                    .fail(None, self.previous_readiness(), Self::cloud_sync(&e))
                    .await;
            }
        };
        let observed = match observed {
            Some(o) => o,
            None => return self.gone(&cloud, &account, &id, may.create).await,
        };
        // The create-digest annotation marks a resource this operator has recorded (it is
        // written with the id after a create, empty for kinds without create-only inputs). An
        // id the status does not report yet, without it, or an id that replaced the one the
        // status reports, was named by the user: adopted. Unless this reconcile recorded it
        // itself (found after a create whose answer was lost): the copy read predates that.
        let recorded_here = self.recorded.load(std::sync::atomic::Ordering::Relaxed);
        let adopted = !recorded_here
            && match A::reported_id(self.obj) {
                None => !self.recorded_by_us(),
                Some(reported) => reported != id.as_str(),
            };
        // An id the status does not report yet is checked against the other objects even when
        // the annotations say this operator recorded it: annotations are copied with the object
        // (`kubectl get -o yaml` applied under another name, a restore), the status is not.
        let unreported = A::reported_id(self.obj) != Some(id.as_str());
        if (adopted || unreported)
            && !recorded_here
            && let Some(other) = self.claimant(&id)
        {
            return self.invalid(Self::already_managed(&id, &other), true).await;
        }
        if adopted {
            // Named by the user: not something this operator created.
            self.set_created_through(None);
            self.event(
                EventType::Normal,
                "Adopted",
                "Observe",
                format!("Adopted {id}, named by the {EXTERNAL_NAME} annotation"),
            )
            .await;
        }
        if adopted {
            // Record what it was (as far as we know) created with; not created through us.
            self.annotate(&[
                (CREATE_DIGEST, Some(recorded_digest::<A>(&desired))),
                (CREATED_THROUGH, None),
            ])
            .await?;
        } else if !recorded_here && !self.obj.annotations().contains_key(CREATE_DIGEST) {
            self.annotate(&[(CREATE_DIGEST, Some(recorded_digest::<A>(&desired)))])
                .await?;
        }
        // A failure's backoff ends when the object reaches its spec, not when it is merely
        // observed: else a change the cloud keeps refusing (a build that fails to start) would
        // be retried at the first delay forever. A user's edit starts afresh.
        if self.user_changed() {
            self.ctx.backoffs.reset(&backoff_key(self.obj.as_ref()));
        }

        if A::is_deleting(&observed) {
            let outcome = Outcome {
                readiness: Readiness::Unavailable(format!(
                    "{id} is being deleted outside of Kubernetes"
                )),
                sync: Sync::Success,
                progressing: Some("waiting for the cloud".into()),
            };
            self.write_status(Some(&observed), &outcome).await?;
            return Ok(Step::ok(Action::requeue(
                self.ctx.settings.transitional_poll,
            )));
        }

        // Plan and act.
        let readiness = A::readiness(&observed);
        if A::is_transitional(&observed) {
            // Act once the cloud has settled; say what it is doing meanwhile.
            let outcome = Outcome {
                readiness,
                sync: Sync::Success,
                progressing: Some("waiting for the cloud to finish a transition".into()),
            };
            self.write_status(Some(&observed), &outcome).await?;
            return Ok(Step::ok(Action::requeue(
                A::transitional_poll(&observed).unwrap_or(self.ctx.settings.transitional_poll),
            )));
        }
        if let Maintained::Done(step) = self
            .maintain_connection(&cloud, &observed, may.update)
            .await?
        {
            return Ok(step);
        }
        match A::plan(&desired, &observed, self.annotation(CREATE_DIGEST)) {
            Plan::UpToDate => {
                self.ctx.backoffs.reset(&backoff_key(self.obj.as_ref()));
                let outcome = Outcome {
                    readiness,
                    sync: Sync::Success,
                    progressing: None,
                };
                self.write_status(Some(&observed), &outcome).await?;
                Ok(Step::ok(self.steady_requeue()))
            }
            Plan::Impossible(invalid) => {
                let sync = Sync::Stalled {
                    reason: invalid.reason.clone(),
                    message: invalid.message.clone(),
                };
                self.fail(Some(&observed), readiness, sync).await
            }
            Plan::Update(actions) if !may.update => {
                self.ctx.backoffs.reset(&backoff_key(self.obj.as_ref()));
                let outcome = Outcome {
                    readiness,
                    sync: Sync::Differs(format!(
                        "the cloud resource differs from the spec ({actions:?}) but managementPolicies do not allow Update"
                    )),
                    progressing: None,
                };
                self.write_status(Some(&observed), &outcome).await?;
                Ok(Step::ok(self.steady_requeue()))
            }
            Plan::Update(actions) => {
                let mut current = observed;
                for action in &actions {
                    match adapter.act(&cloud, &current, action).await {
                        Ok(next) => {
                            self.event(
                                EventType::Normal,
                                "Updated",
                                "Update",
                                format!("{action:?} on {id}"),
                            )
                            .await;
                            current = next;
                        }
                        // Held back by an operation class's limit (a deploy budget): nothing was
                        // sent; what was applied so far stays, and the rest waits without
                        // holding a worker or growing the backoff.
                        Err(CloudError::Deferred { retry_in, .. }) => {
                            let outcome = Outcome {
                                readiness: A::readiness(&current),
                                sync: Sync::Error {
                                    reason: "RateLimited".into(),
                                    message: format!(
                                        "{action:?} on {id} waits for the cloud's limit on it; next try in {} s",
                                        retry_in.as_secs().max(1)
                                    ),
                                },
                                progressing: None,
                            };
                            self.write_status(Some(&current), &outcome).await?;
                            return Ok(Step::ok(Action::requeue(jittered(retry_in))));
                        }
                        Err(e) => {
                            return self
                                .fail(Some(&current), A::readiness(&current), Self::cloud_sync(&e))
                                .await;
                        }
                    }
                }
                self.ctx.backoffs.reset(&backoff_key(self.obj.as_ref()));
                let outcome = Outcome {
                    readiness: A::readiness(&current),
                    sync: Sync::Success,
                    progressing: Some(format!("applied {actions:?}")),
                };
                self.write_status(Some(&current), &outcome).await?;
                Ok(Step::ok(Action::requeue(
                    self.ctx.settings.transitional_poll,
                )))
            }
        }
    }

    /// Report wrong input. `recheck`: the verdict depends on something outside the spec (what
    /// the cloud offers, other objects), so look again now and then; otherwise only a spec
    /// change can fix it.
    async fn invalid(&self, invalid: Invalid, recheck: bool) -> Result<Step, Error> {
        let readiness = Readiness::Unavailable(invalid.message.clone());
        let sync = Sync::Stalled {
            reason: invalid.reason.clone(),
            message: invalid.message.clone(),
        };
        let outcome = Outcome {
            readiness,
            sync,
            progressing: None,
        };
        self.write_status(None, &outcome).await?;
        self.event(
            EventType::Warning,
            &invalid.reason,
            "Validate",
            invalid.message.clone(),
        )
        .await;
        let s = &self.ctx.settings;
        let action = if recheck {
            Action::requeue(self.ctx.backoffs.fail(
                &backoff_key(self.obj.as_ref()),
                s.stalled_initial,
                s.stalled_cap,
            ))
        } else {
            Action::await_change()
        };
        Ok(Step {
            action,
            failed: true,
            error_reason: Some(invalid.reason),
        })
    }

    /// After an attempt whose outcome is unknown: what it made, if anything. `Some(Err)`: a
    /// resource matches, but it is not ours to adopt (it existed before the attempt started, or
    /// another object manages it).
    async fn recover(
        &self,
        cloud: &A::Cloud,
        request: &A::CreateRequest,
        since: Timestamp,
    ) -> Result<Option<Result<A::Observed, Invalid>>, CloudError> {
        let Some(Found { observed, proof }) = self
            .ctx
            .adapter
            .find_created(cloud, self.obj, request)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(self.verify_found(observed, proof, since)))
    }

    /// Whether a resource found after an interrupted create may be adopted as ours.
    fn verify_found(
        &self,
        observed: A::Observed,
        proof: Proof,
        since: Timestamp,
    ) -> Result<A::Observed, Invalid> {
        let id = A::external_id(&observed);
        if proof == Proof::NaturalKey {
            let earliest = since
                .checked_sub(jiff::SignedDuration::try_from(CLOCK_SKEW).unwrap_or_default())
                .unwrap_or(since);
            match A::created_at(&observed) {
                Some(at) if at >= earliest => {}
                made => {
                    let when = made
                        .map(|t| format!("was created at {t}"))
                        .unwrap_or_else(|| "does not say when it was created".into());
                    return Err(Invalid::new(
                        "Conflict",
                        format!(
                            "{id} matches what this object creates, but it {when}, before this object's create started ({since}): it was made elsewhere (in the console, by a script or another cluster), so it is not adopted and will not be deleted with this object. To manage it, set the {EXTERNAL_NAME} annotation to {id}; otherwise remove it or change the spec"
                        ),
                    ));
                }
            }
        }
        if let Some(other) = self.claimant(&id) {
            return Err(Self::already_managed(&id, &other));
        }
        Ok(observed)
    }

    /// Record that `id` is the resource this object created: its id, what it was created with,
    /// and through which account; the pending marker goes.
    /// `connection`: what the connection Secret holds, recorded in the same patch (so once the
    /// id is recorded, the engine knows whether the credential's value reached the Secret).
    async fn record_created(
        &self,
        id: &str,
        desired: &A::Desired,
        account: &Account,
        connection: Option<ConnectionSecretStatus>,
    ) -> Result<(), Error> {
        let through = account.fingerprint_for(&self.uid());
        let mut values = vec![
            (EXTERNAL_NAME, Some(id.to_string())),
            (CREATE_PENDING, None),
            (CREATE_REQUEST, None),
            (CREATE_DIGEST, Some(recorded_digest::<A>(desired))),
            (CREATED_THROUGH, Some(through.clone())),
        ];
        if let Some(c) = &connection {
            values.push((
                CONNECTION,
                Some(serde_json::to_string(c).unwrap_or_default()),
            ));
        }
        self.annotate_unconditionally(&values).await?;
        if let Some(c) = connection
            && let Ok(mut g) = self.connection.lock()
        {
            *g = Some(c);
        }
        self.set_created_through(Some(through));
        self.recorded
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.ctx.backoffs.reset(&backoff_key(self.obj.as_ref()));
        Ok(())
    }

    /// Write the value a create answered to the claimed Secret; the record says what the
    /// Secret holds (no version: the value is not in it, and is replaced or reported lost).
    async fn write_created(
        &self,
        id: &str,
        name: String,
        uid: String,
        rotation: Option<String>,
        details: Option<ConnectionDetails>,
        key: uuid::Uuid,
    ) -> ConnectionSecretStatus {
        let mut record = ConnectionSecretStatus {
            name,
            uid: Some(uid),
            rotation,
            ..Default::default()
        };
        let Some(details) = details else {
            return record;
        };
        let uid = record.uid.clone().unwrap_or_default();
        match self
            .secrets()
            .write(&record.name, &uid, &details, Some(&key.to_string()))
            .await
        {
            Ok(_) => {
                record.version = Some(details.version.clone());
                record.keys = details.keys();
            }
            Err(e) => {
                // Held, not lost: the next reconcile writes this value (with backoff while the
                // write keeps failing) instead of asking the cloud for another; the record names
                // it, so a restart, which loses it, revokes it.
                if matches!(e, SecretError::Gone | SecretError::Conflict) {
                    record.uid = None;
                }
                record.unwritten = Some(details.version.clone());
                let ns = self.obj.meta().namespace.as_deref().unwrap_or("");
                let why = match secret_sync(&e, ns, &record.name) {
                    Sync::Error { message, .. } | Sync::Stalled { message, .. } => message,
                    _ => String::new(),
                };
                self.ctx.unwritten.hold(&self.uid(), details);
                self.event(
                    EventType::Warning,
                    "ConnectionSecretWriteFailed",
                    "Create",
                    format!(
                        "could not write the credential of {id} to Secret {} yet: {why}",
                        record.name
                    ),
                )
                .await;
            }
        }
        record
    }

    /// After a create whose answer was lost, what the connection Secret holds: the value, if
    /// that create's answer reached it before the crash (told by the create key the Secret
    /// carries); otherwise nothing, which the next step replaces or reports lost. `Err`: the
    /// Secret is not ours.
    async fn recovered_connection(
        &self,
    ) -> Result<Result<Option<ConnectionSecretStatus>, Invalid>, Error> {
        let Some((name, rotation)) = self.secret_ref() else {
            return Ok(Ok(None));
        };
        let secret = match self.secrets().claim(&name).await {
            Ok(s) => s,
            Err(SecretError::Conflict) => return Ok(Err(self.secret_conflict(&name))),
            Err(SecretError::Gone) => return Ok(Ok(None)),
            Err(SecretError::Kube(e)) => return Err(e.into()),
        };
        let attempt = self.notes.as_ref().map(|p| p.create_attempt).unwrap_or(0);
        let key = idempotency_key(&self.uid(), A::CONTROLLER, attempt).to_string();
        let notes = secret.metadata.annotations.clone().unwrap_or_default();
        let holds = notes.get(CREATE_KEY_ANNOTATION) == Some(&key);
        // Only the key names are taken from the answer, never a value.
        let keys: Vec<String> = secret
            .data
            .as_ref()
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
        Ok(Ok(Some(ConnectionSecretStatus {
            name,
            uid: secret.metadata.uid.clone(),
            version: notes
                .get(VERSION_ANNOTATION)
                .filter(|_| holds && !keys.is_empty())
                .cloned(),
            keys: if holds { keys } else { Vec::new() },
            rotation,
            ..Default::default()
        })))
    }

    /// Keep the connection Secret of an existing resource: revoke what a grace period kept once
    /// it is over; notice a Secret someone deleted; put a value in a Secret that lacks one (lost
    /// at create, deleted, adopted resource, new Secret name) or rotate on request, through
    /// [`Adapter::replace`]; report a value that is lost for good. Values are only ever written
    /// by these steps and at create: an observation never clears them.
    ///
    /// Every call that cannot be undone (a revocation, asking for a new value) comes after a
    /// write of the record conditional on the version read: a reconcile working from a stale
    /// copy stops there ([`Error::Stale`]) and never revokes the value a newer record names.
    async fn maintain_connection(
        &self,
        cloud: &A::Cloud,
        observed: &A::Observed,
        may_update: bool,
    ) -> Result<Maintained, Error> {
        let Some((name, rotation)) = self.secret_ref() else {
            return Ok(Maintained::Continue);
        };
        let id = A::external_id(observed);
        let readiness = A::readiness(observed);
        // Created by this object: every value of its credential was issued by the operator.
        // Adopted: values issued before are someone else's, and only the operator's are revoked.
        let own = self.created_through().is_some();
        let mine = |r: &ConnectionSecretStatus| r.name == name;

        // 1. A grace period is over: revoke what it kept.
        if may_update
            && let Some(r) = self.connection().filter(mine)
            && let (Some(version), Some(after)) = (&r.version, &r.revoke_others_after)
            && after
                .parse::<Timestamp>()
                .is_ok_and(|t| t <= Timestamp::now())
        {
            self.record_connection_checked(r.clone()).await?;
            let issued: Vec<String> = r
                .previous_version
                .iter()
                .chain(&r.retired)
                .cloned()
                .collect();
            let which = if own {
                Revocation::AllBut(version)
            } else {
                Revocation::Only(&issued)
            };
            if (own || !issued.is_empty())
                && let Some(step) = self.revoke_values(cloud, observed, which).await?
            {
                return Ok(Maintained::Done(step));
            }
            if let Some(uid) = &r.uid {
                match self.secrets().drop_previous(&name, uid, &r.keys).await {
                    Ok(()) | Err(SecretError::Gone | SecretError::Conflict) => {}
                    Err(e) => {
                        return Ok(Maintained::Done(
                            self.fail_secret(Some(observed), readiness, &e, &name)
                                .await?,
                        ));
                    }
                }
            }
            let version = version.clone();
            self.record_connection(ConnectionSecretStatus {
                previous_version: None,
                revoke_others_after: None,
                retired: Vec::new(),
                ..r
            })
            .await?;
            let message = if own {
                format!(
                    "Revoked every value of {id}'s credential but {version}, the one in Secret {name}"
                )
            } else {
                format!(
                    "Revoked value(s) {} of {id}'s credential, issued by the operator; {version} stays, and values issued before {id} was adopted are left alone",
                    issued.join(", ")
                )
            };
            if own || !issued.is_empty() {
                self.event(EventType::Normal, "CredentialRevoked", "Update", message)
                    .await;
            }
        }

        // 2. The Secret still holds the value recorded: someone may have deleted it (the
        //    operator cannot watch Secrets, so it asks at every reconcile, with a patch of
        //    nothing but tests).
        let mut current = self.connection().filter(mine);
        if let Some(r) = current.clone()
            && let (Some(version), Some(uid)) = (&r.version, &r.uid)
        {
            match self.secrets().check(&name, uid).await {
                Ok(()) => {}
                Err(SecretError::Gone | SecretError::Conflict) => {
                    // The value is still valid in the cloud: revoked once a new one is written
                    // and its grace period is over.
                    let mut retired = r.retired.clone();
                    retired.push(version.clone());
                    let missing = ConnectionSecretStatus {
                        uid: None,
                        version: None,
                        keys: Vec::new(),
                        retired,
                        ..r.clone()
                    };
                    self.record_connection(missing.clone()).await?;
                    self.event(
                        EventType::Warning,
                        "ConnectionSecretMissing",
                        "Observe",
                        format!(
                            "Secret {name} no longer holds value {version} of {id}'s credential: it was deleted, or another Secret took its name. A new value is written to it where the kind can issue one, and {version} is revoked after the grace period"
                        ),
                    )
                    .await;
                    current = Some(missing);
                }
                Err(e) => {
                    return Ok(Maintained::Done(
                        self.fail_secret(Some(observed), readiness, &e, &name)
                            .await?,
                    ));
                }
            }
        }

        // 3. A value to put in the Secret, or a rotation to make.
        let needs_value = current.as_ref().is_none_or(|r| r.version.is_none());
        // An adopted resource whose new value disrupts its users: the rotation field as first
        // seen is a baseline (often copied with the manifest of the resource's first owner),
        // and only a change of it asks for a value.
        // Only when there is no record at all: a record under another Secret name means values
        // the operator issued (still to be revoked), and a renamed Secret may get a new one.
        if needs_value
            && self.connection().is_none()
            && may_update
            && !own
            && self.ctx.adapter.replace_disrupts()
        {
            let baseline = ConnectionSecretStatus {
                name: name.clone(),
                rotation: rotation.clone(),
                ..Default::default()
            };
            self.record_connection_checked(baseline.clone()).await?;
            current = Some(baseline);
        }
        let rotate = !needs_value && current.as_ref().is_some_and(|r| r.rotation != rotation);
        let lost = current.as_ref().is_some_and(|r| r.lost);
        // One rotation at a time: the next starts once the previous value is revoked.
        let grace = current
            .as_ref()
            .is_some_and(|r| r.revoke_others_after.is_some());
        let wanted = may_update && ((needs_value && !lost) || (rotate && !grace));
        // Issuing a value disrupts what uses the resource (a password reset disconnects every
        // client): for a resource the operator did not create, only when the spec asks.
        let asked = rotation.is_some() && current.as_ref().is_none_or(|r| r.rotation != rotation);
        if wanted && needs_value && !own && !asked && self.ctx.adapter.replace_disrupts() {
            self.event(
                EventType::Warning,
                "ConnectionSecretNotIssued",
                "Update",
                format!(
                    "{id} was adopted and its credential's value is not in Secret {name}: issuing a new one would disrupt what uses {id} now, so the operator waits until the spec's rotation field changes to ask for it"
                ),
            )
            .await;
            return Ok(Maintained::Continue);
        }

        // 3a. A value issued earlier whose write failed: written below if the operator still
        //     holds it and it is still wanted; otherwise (a restart lost it, the spec changed)
        //     revoked now, so it is never left valid and forgotten.
        let me = self.uid();
        // Whatever ends this step early keeps a held value for the next attempt.
        let keep = |held: Option<ConnectionDetails>| {
            if let Some(d) = held {
                self.ctx.unwritten.hold(&me, d);
            }
        };
        let mut held = None;
        if let Some(r) = current.clone()
            && let Some(version) = &r.unwritten
        {
            held = self.ctx.unwritten.take(&me, version);
            if !(wanted && held.is_some()) && may_update {
                held = None;
                self.record_connection_checked(r.clone()).await?;
                if let Some(step) = self
                    .revoke_values(
                        cloud,
                        observed,
                        Revocation::Only(std::slice::from_ref(version)),
                    )
                    .await?
                {
                    return Ok(Maintained::Done(step));
                }
                let r = ConnectionSecretStatus {
                    unwritten: None,
                    ..r
                };
                self.record_connection(r.clone()).await?;
                current = Some(r);
            }
        }
        if !wanted {
            // Not revoked above only while managementPolicies forbid it: still held.
            keep(held);
            return Ok(Maintained::Continue);
        }

        // 3b. The Secret is ours and may be written, before the cloud is asked for anything:
        //     a Secret the operator cannot write never costs a credential.
        let uid = match current.as_ref().and_then(|r| r.uid.clone()) {
            // Proven by the check above.
            Some(uid) if rotate => uid,
            _ => match self.secrets().claim(&name).await {
                Ok(s) => s.metadata.uid.unwrap_or_default(),
                Err(SecretError::Conflict) => {
                    keep(held);
                    return Ok(Maintained::Done(
                        self.invalid(self.secret_conflict(&name), true).await?,
                    ));
                }
                Err(e) => {
                    keep(held);
                    return Ok(Maintained::Done(
                        self.fail_secret(Some(observed), readiness, &e, &name)
                            .await?,
                    ));
                }
            },
        };
        let base = current.clone().unwrap_or_else(|| ConnectionSecretStatus {
            name: name.clone(),
            rotation: rotation.clone(),
            ..Default::default()
        });
        let base = ConnectionSecretStatus {
            uid: Some(uid.clone()),
            ..base
        };

        // 3c. The value: the one held, or a new one.
        let (details, base) = match held {
            Some(d) => (d, base),
            None => match self
                .replace_value(
                    cloud,
                    observed,
                    &id,
                    &name,
                    base,
                    needs_value,
                    own,
                    &rotation,
                )
                .await?
            {
                Ok(v) => v,
                Err(m) => return Ok(m),
            },
        };

        // 3d. Written whole, or rotated (the current keys move to previous- keys).
        let written = if rotate {
            self.secrets()
                .rotate(&name, &uid, &base.keys, &details)
                .await
        } else {
            self.secrets().write(&name, &uid, &details, None).await
        };
        if let Err(e) = written {
            // Held, not lost: the next attempt (after a backoff) writes this value instead of
            // asking the cloud for another; the record names it, so a restart revokes it.
            let version = details.version.clone();
            self.ctx.unwritten.hold(&me, details);
            let record = if matches!(e, SecretError::Gone | SecretError::Conflict) {
                // Deleted, or another Secret took its name: the value it held is no longer in
                // it (revoked once a new one is written), and the next attempt claims it anew
                // and writes the held value whole.
                let mut retired = base.retired.clone();
                retired.extend(base.version.clone());
                ConnectionSecretStatus {
                    uid: None,
                    version: None,
                    keys: Vec::new(),
                    retired,
                    ..base
                }
            } else {
                base
            };
            self.record_connection(ConnectionSecretStatus {
                replacing: None,
                unwritten: Some(version),
                ..record
            })
            .await?;
            return Ok(Maintained::Done(
                self.fail_secret(Some(observed), readiness, &e, &name)
                    .await?,
            ));
        }
        self.ctx.backoffs.reset(&connection_key(self.obj.as_ref()));

        // 3e. Recorded: what the Secret holds, and what is revoked when.
        let (previous, mut retired) = if rotate {
            (base.version.clone(), base.retired.clone())
        } else {
            // A value written whole: a previous value is no longer under previous- keys.
            let mut retired = base.retired.clone();
            retired.extend(base.previous_version.clone());
            (None, retired)
        };
        retired.retain(|v| *v != details.version);
        let grace = self.ctx.settings.rotation_grace;
        let until = Timestamp::now()
            .checked_add(jiff::SignedDuration::try_from(grace).unwrap_or_default())
            .unwrap_or_else(|_| Timestamp::now());
        let revokes = own || previous.is_some() || !retired.is_empty();
        self.record_connection(ConnectionSecretStatus {
            name: name.clone(),
            uid: Some(uid),
            version: Some(details.version.clone()),
            keys: details.keys(),
            rotation,
            previous_version: previous.clone(),
            revoke_others_after: revokes.then(|| until.to_string()),
            retired,
            replacing: None,
            unwritten: None,
            lost: false,
        })
        .await?;
        let message = match (previous, own, revokes) {
            (Some(p), true, _) => format!(
                "Rotated {id}'s credential: Secret {name} holds value {}; the previous value {p} stays under previous- keys and valid until {until}, then every value but the new one is revoked",
                details.version
            ),
            (Some(p), false, _) => format!(
                "Rotated {id}'s credential: Secret {name} holds value {}; the previous value {p} stays under previous- keys and valid until {until}, then it is revoked (values issued before {id} was adopted are left alone)",
                details.version
            ),
            (None, true, _) => format!(
                "Wrote a new value ({}) of {id}'s credential to Secret {name}, whose value was not known; every other value is revoked at {until}",
                details.version
            ),
            (None, false, true) => format!(
                "Wrote a new value ({}) of {id}'s credential to Secret {name}; the values the operator issued before are revoked at {until}. Values issued before {id} was adopted are not revoked by the operator (it did not issue them): revoke them in the cloud if they must not stay valid",
                details.version
            ),
            (None, false, false) => format!(
                "Wrote a new value ({}) of {id}'s credential to Secret {name}. Values issued before {id} was adopted are not revoked by the operator (it did not issue them): revoke them in the cloud if they must not stay valid",
                details.version
            ),
        };
        self.event(EventType::Normal, "CredentialReplaced", "Update", message)
            .await;
        Ok(Maintained::Continue)
    }

    /// Ask the cloud for a new value of the credential, recording first (conditionally on the
    /// version read) that it was asked for. `Err`: how the reconcile goes on without a value
    /// (this kind cannot issue one, or the cloud refused).
    #[allow(clippy::too_many_arguments)]
    async fn replace_value(
        &self,
        cloud: &A::Cloud,
        observed: &A::Observed,
        id: &str,
        name: &str,
        base: ConnectionSecretStatus,
        needs_value: bool,
        own: bool,
        rotation: &Option<String>,
    ) -> Result<Result<(ConnectionDetails, ConnectionSecretStatus), Maintained>, Error> {
        if !own && let Some(since) = &base.replacing {
            // The operator stopped between asking and writing; for a resource it created, the
            // next revocation (every value but the current one) covers that value.
            self.event(
                EventType::Warning,
                "CredentialMayStayValid",
                "Update",
                format!(
                    "The operator asked for a new value of {id}'s credential at {since} and stopped before writing it: that value may be valid. {id} was adopted, so the operator revokes only the values it knows; revoke that one in the cloud if it must not stay valid"
                ),
            )
            .await;
        }
        let marker = ConnectionSecretStatus {
            replacing: Some(now()),
            ..base
        };
        self.record_connection_checked(marker.clone()).await?;
        let base = ConnectionSecretStatus {
            replacing: None,
            ..marker.clone()
        };
        match self.ctx.adapter.replace(cloud, self.obj, observed).await {
            Ok(Some(d)) => Ok(Ok((d, marker))),
            Ok(None) if needs_value => {
                // Recorded as lost: not asked again, and reported once.
                self.record_connection(ConnectionSecretStatus { lost: true, ..base })
                    .await?;
                self.event(
                    EventType::Warning,
                    "ConnectionSecretLost",
                    "Create",
                    format!(
                        "The value of {id}'s credential is not in Secret {name}: the cloud shows it only once, and the operator stopped before writing it (or the Secret was deleted, or the resource was adopted); this kind cannot issue a new value. Delete this object and create it again to get a new credential, or revoke {id} in the cloud if it must not stay valid"
                    ),
                )
                .await;
                Ok(Err(Maintained::Continue))
            }
            Ok(None) => {
                // Recorded as seen, so it is said once.
                self.record_connection(ConnectionSecretStatus {
                    rotation: rotation.clone(),
                    ..base
                })
                .await?;
                self.event(
                    EventType::Warning,
                    "RotationUnsupported",
                    "Update",
                    format!("{id}'s credential cannot be replaced by this kind: spec.connectionSecretRotation has no effect; create a new object to get a new credential"),
                )
                .await;
                Ok(Err(Maintained::Continue))
            }
            Err(e) => {
                // A refusal issued nothing; after an unknown outcome the marker stays (a value
                // may exist).
                if e.class() == ErrorClass::Terminal {
                    self.record_connection(base).await?;
                }
                let readiness = A::readiness(observed);
                Ok(Err(Maintained::Done(
                    self.fail(Some(observed), readiness, Self::cloud_sync(&e))
                        .await?,
                )))
            }
        }
    }

    /// Revoke `which` values of the credential. `Some`: the reconcile ends with this step (the
    /// cloud failed). A kind that cannot revoke them says so in a Warning event, naming them.
    async fn revoke_values(
        &self,
        cloud: &A::Cloud,
        observed: &A::Observed,
        which: Revocation<'_>,
    ) -> Result<Option<Step>, Error> {
        let id = A::external_id(observed);
        match self
            .ctx
            .adapter
            .revoke(cloud, self.obj, observed, which)
            .await
        {
            Ok(true) => Ok(None),
            Ok(false) => {
                let what = match which {
                    Revocation::AllBut(keep) => {
                        format!("every value of {id}'s credential but {keep}")
                    }
                    Revocation::Only(versions) => {
                        format!("value(s) {} of {id}'s credential", versions.join(", "))
                    }
                };
                self.event(
                    EventType::Warning,
                    "CredentialNotRevoked",
                    "Update",
                    format!("This kind cannot revoke {what}: they stay valid. Revoke them in the cloud if they must not"),
                )
                .await;
                Ok(None)
            }
            Err(e) => Ok(Some(
                self.fail(Some(observed), A::readiness(observed), Self::cloud_sync(&e))
                    .await?,
            )),
        }
    }

    /// A failed write to connection Secret `name`, reported, with a backoff of its own that
    /// grows until a write succeeds (the object's backoff is reset by every observation).
    async fn fail_secret(
        &self,
        observed: Option<&A::Observed>,
        readiness: Readiness,
        err: &SecretError,
        name: &str,
    ) -> Result<Step, Error> {
        let ns = self.obj.meta().namespace.as_deref().unwrap_or("");
        let sync = secret_sync(err, ns, name);
        self.fail_keyed(
            observed,
            readiness,
            sync,
            &connection_key(self.obj.as_ref()),
        )
        .await
    }

    /// The crash-safe create protocol (design-notes §1): record the request and mark it
    /// pending, send it once with a deterministic Idempotency-Key, record the id, clear the
    /// marker. After an attempt whose outcome is unknown the same request is re-sent with the
    /// same key (the caller has looked for what it may have made first); the attempt counter,
    /// part of the key, moves only after a definitive rejection of an attempt that nothing
    /// ambiguous came before.
    async fn create(
        &self,
        cloud: &A::Cloud,
        account: &Account,
        desired: &A::Desired,
    ) -> Result<Step, Error> {
        let (attempt, pending) = match &self.notes {
            Ok(p) => (p.create_attempt, p.create_pending),
            Err(invalid) => return self.invalid(invalid.clone(), false).await,
        };
        // A new create that would wait long for the key waits for its turn off the worker,
        // before anything is recorded: else a burst of creates holds every worker, and a
        // user's change to another object waits behind all of them (see `throttle::waitlist`).
        // An attempt already pending (its outcome unknown) is replayed without a turn: those
        // are few, and the reconcile that reached here has just looked for what it made. The
        // line spreads the returns itself, so the requeue is not jittered.
        if pending.is_none()
            && let Some(throttle) = super::Connect::throttle(cloud)
            && let Err(deferred) = throttle.admit_create(&self.uid())
        {
            let waiting = Invalid::new(
                "WaitingForRateLimit",
                "the create waits for its turn at the API key's rate limit; nothing was sent yet",
            );
            return self.wait_for(waiting, deferred.retry_in).await;
        }
        let request = match pending {
            Some(_) => match self.pending_request(Some(desired)) {
                Ok(r) => r,
                Err(invalid) => return self.invalid(invalid, false).await,
            },
            None => {
                let request = A::create_request(self.obj, desired);
                let recorded = match annotations::record_request(&request) {
                    Ok(r) => r,
                    Err(invalid) => return self.invalid(invalid, false).await,
                };
                match self
                    .annotate(&[
                        (CREATE_PENDING, Some(now())),
                        (CREATE_REQUEST, Some(recorded)),
                    ])
                    .await
                {
                    Ok(()) => {}
                    // The API server refused the annotations (their total size, say): the
                    // object's own problem, never a retry loop; nothing was sent.
                    Err(Error::Kube(kube::Error::Api(s))) if s.code == 422 => {
                        let invalid = Invalid::new(
                            "InvalidSpec",
                            format!(
                                "the create request could not be recorded in the {CREATE_REQUEST} annotation before sending it: {}",
                                s.message
                            ),
                        );
                        return self.invalid(invalid, false).await;
                    }
                    Err(e) => return Err(e),
                }
                request
            }
        };
        // What the marker said before this attempt: restored if the attempt is never sent.
        let before = pending;
        let mut pending = pending;
        if let Some(since) = pending
            && self.ctx.adapter.create_guard() == CreateGuard::FindOnly
        {
            let settle = self.ctx.settings.create_settle;
            if !older_than(since, settle) {
                let waiting = Invalid::new(
                    "WaitingForCreateOutcome",
                    format!(
                        "a create attempt started at {since} got no definite answer and the API has no idempotency key: it is looked for, and sent again only if it is still not found {} s after it started",
                        settle.as_secs()
                    ),
                );
                // Each look is a fresh listing: look a few times per settle window, not at
                // the pace of a transition, so waiting does not spend the key's budget.
                let every = (settle / 4)
                    .min(Duration::from_secs(30))
                    .max(self.ctx.settings.transitional_poll);
                return self.wait_for(waiting, every).await;
            }
            // Settled and not found: a new attempt, stamped now. A rejection of it is not
            // definitive until it settles in turn: it may be the cloud's answer to the attempt
            // the search missed (a name or subdomain already taken).
            let stamp = Timestamp::now();
            self.annotate(&[(CREATE_PENDING, Some(stamp.to_string()))])
                .await?;
            pending = Some(stamp);
        }
        let key = idempotency_key(&self.uid(), A::CONTROLLER, attempt);
        // The connection Secret is claimed before anything is sent: a Secret of that name that
        // is not ours stops the create here, and the value the answer carries has a Secret to
        // go to.
        let claimed = match self.secret_ref() {
            None => None,
            Some((name, rotation)) => match self.secrets().claim(&name).await {
                Ok(secret) => Some((name, secret.metadata.uid.unwrap_or_default(), rotation)),
                Err(SecretError::Conflict) => {
                    return self.invalid(self.secret_conflict(&name), true).await;
                }
                Err(SecretError::Gone) => return Ok(Step::ok(Action::requeue(STALE_RETRY))),
                // Nothing was sent: reported (a Secret the operator may not write needs a
                // human), and retried with backoff.
                Err(e) => {
                    return self
                        .fail_secret(
                            None,
                            Readiness::Creating(
                                "the connection Secret is claimed before the create is sent".into(),
                            ),
                            &e,
                            &name,
                        )
                        .await;
                }
            },
        };
        match self
            .ctx
            .adapter
            .create(cloud, self.obj, &request, key)
            .await
        {
            Ok(Created {
                observed: created,
                connection,
            }) => {
                let id = A::external_id(&created);
                // The value is written before the id is recorded: once the id is recorded, the
                // record says whether the Secret holds the value.
                let connection = match claimed {
                    Some((name, uid, rotation)) => Some(
                        self.write_created(&id, name, uid, rotation, connection, key)
                            .await,
                    ),
                    None => None,
                };
                self.record_created(&id, desired, account, connection)
                    .await?;
                self.event(
                    EventType::Normal,
                    "Created",
                    "Create",
                    format!("Created {id}"),
                )
                .await;
                let outcome = Outcome {
                    readiness: A::readiness(&created),
                    sync: Sync::Success,
                    progressing: Some(format!("created {id}")),
                };
                self.write_status(Some(&created), &outcome).await?;
                Ok(Step::ok(Action::requeue(
                    self.ctx.settings.transitional_poll,
                )))
            }
            // The throttle held it back (an operation class's limit, a deploy budget): nothing
            // was sent, so the marker goes back to what it said before this attempt, and the
            // worker goes on with other objects until the budget allows it.
            Err(CloudError::Deferred { retry_in, .. }) => {
                if before.is_none() {
                    // Stamped by this attempt: as if it had not started.
                    self.annotate(&[(CREATE_PENDING, None), (CREATE_REQUEST, None)])
                        .await?;
                } else if before != pending {
                    // Stamped anew over an attempt that settled unfound: that stamp again.
                    self.annotate(&[(CREATE_PENDING, before.map(|t| t.to_string()))])
                        .await?;
                }
                self.wait_for(
                    Invalid::new(
                        "RateLimited",
                        format!(
                            "the create waits for the cloud's limit on it; nothing was sent, next try in {} s",
                            retry_in.as_secs().max(1)
                        ),
                    ),
                    jittered(retry_in),
                )
                .await
            }
            Err(e) if e.is_rejection() => {
                let settled =
                    pending.is_none_or(|since| older_than(since, self.ctx.settings.create_settle));
                if !settled {
                    // An earlier attempt's outcome is unknown: a 409/422 (or any rejection) now
                    // may mean that attempt made it. Keep the marker and the key, and look again.
                    return self
                        .fail(
                            None,
                            Readiness::Creating(format!(
                                "the create was answered {e} after an earlier attempt whose outcome is unknown; looking for what that attempt made"
                            )),
                            Sync::Error {
                                reason: reason_from_code(e.code()),
                                message: e.to_string(),
                            },
                        )
                        .await;
                }
                // A definitive rejection, and nothing found from earlier attempts: the next
                // try, after the user's fix, gets a new key so it is not answered with this
                // failure.
                // Recorded whatever happened to the object meanwhile (a deletion, an edit): the
                // cloud's answer is a fact, and a marker left behind would hold a deletion back.
                self.next_create_attempt(attempt, &[CREATE_PENDING, CREATE_REQUEST], false)
                    .await?;
                let readiness = Readiness::Unavailable(e.to_string());
                self.fail(None, readiness, Self::cloud_sync(&e)).await
            }
            // Unknown outcome: keep the marker, the request and the key; the next reconcile
            // looks for what it made, then replays it.
            Err(e) => {
                self.fail(
                    None,
                    Readiness::Creating(format!("create not confirmed yet: {e}")),
                    Self::cloud_sync(&e),
                )
                .await
            }
        }
    }

    /// The recorded cloud resource is not in the cloud.
    async fn gone(
        &self,
        cloud: &A::Cloud,
        account: &Account,
        id: &str,
        may_create: bool,
    ) -> Result<Step, Error> {
        // Confirm with a direct read before acting on an absence.
        match self
            .ctx
            .adapter
            .observe(cloud, self.obj, id, Freshness::confirm())
            .await
        {
            Ok(Some(_)) => return Ok(Step::ok(Action::requeue(Duration::ZERO))),
            Ok(None) => {}
            Err(e) => {
                return self
                    .fail(None, self.previous_readiness(), Self::cloud_sync(&e))
                    .await;
            }
        }
        let managed = A::managed(self.obj);
        let here = account.fingerprint_for(&self.uid());
        match self.created_through() {
            None => {
                // Named by the user (or recorded by a version that did not say): a typo, or
                // another account. Creating would make something nobody asked for.
                let invalid = Invalid::new(
                    "ExternalNameNotFound",
                    format!(
                        "{id}, named by the {EXTERNAL_NAME} annotation, does not exist in the account of ProviderConfig {:?}: check the id and the ProviderConfig; remove the annotation to create a new resource instead",
                        managed.provider_config
                    ),
                );
                self.invalid(invalid, true).await
            }
            Some(through) if through != here => {
                let invalid = Invalid::new(
                    "ExternalNameNotFound",
                    format!(
                        "{id} was created through another endpoint or API key than ProviderConfig {:?} uses now, and is not found with the current ones; not creating it again in this account: restore the endpoint and key, or remove the {EXTERNAL_NAME} annotation to create a new resource here",
                        managed.provider_config
                    ),
                );
                self.invalid(invalid, true).await
            }
            Some(_) if may_create => {
                let attempt = self.notes.as_ref().map(|p| p.create_attempt).unwrap_or(0);
                // Conditional: only the version that was read may be found gone and re-created.
                self.next_create_attempt(
                    attempt,
                    &[EXTERNAL_NAME, CREATE_DIGEST, CREATED_THROUGH],
                    true,
                )
                .await?;
                self.event(
                    EventType::Warning,
                    "ExternalResourceGone",
                    "Observe",
                    format!("{id} no longer exists in the cloud; creating it again"),
                )
                .await;
                Ok(Step::ok(Action::requeue(Duration::ZERO)))
            }
            Some(_) => {
                let outcome = Outcome {
                    readiness: Readiness::Unavailable(format!("{id} does not exist in the cloud")),
                    sync: Sync::Success,
                    progressing: None,
                };
                self.write_status(None, &outcome).await?;
                Ok(Step::ok(self.steady_requeue()))
            }
        }
    }

    /// The object is going away: drop what the controller keeps about it.
    fn forget(&self) {
        self.ctx.backoffs.reset(&backoff_key(self.obj.as_ref()));
        self.ctx.backoffs.reset(&stale_key(self.obj.as_ref()));
        self.ctx.backoffs.reset(&connection_key(self.obj.as_ref()));
        self.ctx.unwritten.forget(&self.uid());
    }

    /// Deleting an object without a recorded id: the resource a pending create may have made.
    /// `Ok(Ok(None))`: nothing exists (or nothing was ever attempted); `Ok(Err)`: something may
    /// still exist and the finalizer must stay (an ambiguous attempt younger than
    /// [`CREATE_SETTLE`], or a request that cannot be looked for).
    async fn find_for_deletion(
        &self,
        cloud: &A::Cloud,
    ) -> Result<Result<Option<String>, Invalid>, CloudError> {
        let since = match self.pending_since() {
            Ok(None) => return Ok(Ok(None)),
            Ok(Some(t)) => Some(t),
            Err(_) => None,
        };
        // What the attempt sent; for a marker of an older version, what the spec asks for now
        // (an error computing it keeps the finalizer: never "nothing exists" by default).
        let request = match self.annotation(CREATE_REQUEST) {
            Some(_) => self.pending_request(None),
            None => match self.ctx.adapter.desired(&self.ctx.kube, self.obj).await {
                Ok(d) => self.pending_request(Some(&d)),
                Err(Blocked::Invalid(i) | Blocked::Waiting(i)) => Err(Invalid::new(
                    "DependencyUnavailable",
                    format!(
                        "a create may have made a cloud resource, and looking for it needs the desired state: {}",
                        i.message
                    ),
                )),
            },
        };
        let request = match request {
            Ok(r) => r,
            Err(i) => return Ok(Err(i)),
        };
        let found = self
            .ctx
            .adapter
            .find_created(cloud, self.obj, &request)
            .await?;
        if let Some(Found { observed, proof }) = found {
            let since = since.unwrap_or_else(Timestamp::now);
            // Only what is ours is deleted; a match that is not ours is left alone.
            if let Ok(o) = self.verify_found(observed, proof, since) {
                return Ok(Ok(Some(A::external_id(&o))));
            }
        }
        match since {
            Some(t) if older_than(t, self.ctx.settings.create_settle) => Ok(Ok(None)),
            Some(t) => Ok(Err(Invalid::new(
                "CreatePending",
                format!(
                    "a create started at {t} may still make a cloud resource; deletion looks for it until {} s have passed",
                    self.ctx.settings.create_settle.as_secs()
                ),
            ))),
            None => Ok(Err(Invalid::new(
                "InvalidSpec",
                format!(
                    "annotation {CREATE_PENDING} is not a timestamp the operator wrote, so it is unknown whether a create may still make a cloud resource; restore it, or remove it if you are sure nothing was created"
                ),
            ))),
        }
    }

    /// The connection Secret this object may own: the recorded one, or the one the spec names
    /// (claimed before a create whose id was never recorded).
    fn owned_secret_name(&self) -> Option<String> {
        self.connection()
            .map(|r| r.name)
            .or_else(|| self.secret_ref().map(|(name, _)| name))
            .filter(|name| connection::check_secret_name(name).is_ok())
    }

    /// Delete the connection Secret with the deleted resource: the recorded one, by its UID;
    /// one claimed but never recorded goes with the object, by its owner reference.
    async fn delete_secret(&self) -> Result<(), Error> {
        // A kind that writes no connection Secret has none to delete, whatever the annotation
        // says (anyone who may edit the object can write it).
        if A::connection_secret(self.obj).is_none() {
            return Ok(());
        }
        if let Some(r) = self.connection()
            && let Some(uid) = &r.uid
        {
            match self.secrets().delete(&r.name, uid).await {
                Ok(()) => {}
                Err(SecretError::Kube(e)) => return Err(e.into()),
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// Deletion: keep the finalizer until the cloud says the resource is gone.
    async fn cleanup(&self) -> Result<Step, Error> {
        if !self
            .obj
            .meta()
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
        {
            return Ok(Step::ok(Action::await_change()));
        }
        let managed = A::managed(self.obj);
        let may = allowed(&managed.management_policies);
        let orphan = managed.deletion_policy == DeletionPolicy::Orphan || !may.delete;
        let may_exist =
            self.annotation(EXTERNAL_NAME).is_some() || self.annotation(CREATE_PENDING).is_some();
        if !orphan && may_exist && self.annotation(PAUSED) == Some("true") {
            // Paused means hands off, deletion included: letting the object go would leak the
            // cloud resource. Removing the annotation (or choosing Orphan) lets it proceed.
            let readiness = Readiness::Deleting(format!(
                "deletion waits: the object is paused; remove the {PAUSED} annotation to delete the cloud resource, or set deletionPolicy: Orphan to keep it"
            ));
            return self.settle(readiness, Sync::Paused).await;
        }
        if orphan {
            if let Some(r) = self.connection()
                && let Some(version) = &r.unwritten
            {
                self.event(
                    EventType::Warning,
                    "CredentialNotRevoked",
                    "Delete",
                    format!(
                        "Value {version} of the credential was issued but never written to Secret {}, and the resource is left in the cloud: it stays valid; revoke it in the cloud if it must not",
                        r.name
                    ),
                )
                .await;
            }
            // The credential stays valid in the cloud: so does the Secret holding its value.
            if let Some(name) = self.owned_secret_name() {
                match self.secrets().orphan(&name).await {
                    Ok(()) => {}
                    Err(SecretError::Kube(e)) => return Err(e.into()),
                    Err(_) => {}
                }
            }
            if let Some(id) = self.annotation(EXTERNAL_NAME) {
                self.event(
                    EventType::Normal,
                    "Orphaned",
                    "Delete",
                    format!("Left {id} in the cloud"),
                )
                .await;
            }
            self.forget();
            self.remove_finalizer().await?;
            return Ok(Step::ok(Action::await_change()));
        }
        let cloud = match self
            .ctx
            .providers
            .resolve::<A::Cloud>(&managed.provider_config)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                let sync = Sync::Stalled {
                    reason: e.reason().into(),
                    message: format!("cannot delete the cloud resource: {e}"),
                };
                return self
                    .fail(None, Readiness::Deleting(e.to_string()), sync)
                    .await;
            }
        };
        let adapter = &self.ctx.adapter;
        let mut id = self.annotation(EXTERNAL_NAME).map(str::to_string);
        if id.is_none() {
            match self.find_for_deletion(&cloud).await {
                Ok(Ok(Some(found))) => {
                    // Record it first: the next reconcile then follows this id to its end
                    // instead of looking again for what the pending create may have made (and
                    // waiting out create-settle once it is gone).
                    self.annotate_unconditionally(&[
                        (EXTERNAL_NAME, Some(found.clone())),
                        (CREATE_PENDING, None),
                        (CREATE_REQUEST, None),
                    ])
                    .await?;
                    id = Some(found);
                }
                Ok(Ok(None)) => {}
                // A create may still exist: keep the finalizer and say why.
                Ok(Err(why)) => {
                    let outcome = Outcome {
                        readiness: Readiness::Deleting(why.message.clone()),
                        sync: Sync::Error {
                            reason: why.reason,
                            message: why.message,
                        },
                        progressing: None,
                    };
                    self.write_status(None, &outcome).await?;
                    return Ok(Step::ok(Action::requeue(Duration::from_secs(10))));
                }
                Err(e) => {
                    return self
                        .fail(
                            None,
                            Readiness::Deleting(e.to_string()),
                            Self::cloud_sync(&e),
                        )
                        .await;
                }
            }
        }
        let Some(id) = id else {
            self.delete_secret().await?;
            self.forget();
            self.remove_finalizer().await?;
            return Ok(Step::ok(Action::await_change()));
        };
        if let Some(other) = self.deletion_claimant(&id) {
            // Another object manages it (this one was refused as AlreadyManaged): deleting
            // this object must not delete that object's resource.
            self.event(
                EventType::Normal,
                "Orphaned",
                "Delete",
                format!("Left {id} in the cloud: it is managed by {other}"),
            )
            .await;
            self.forget();
            self.remove_finalizer().await?;
            return Ok(Step::ok(Action::await_change()));
        }
        let shared = Freshness {
            max_age: self.ctx.settings.transitional_poll,
            urgent: true,
            direct: false,
            priority: Priority::Write,
        };
        let direct = Freshness {
            priority: Priority::Write,
            ..Freshness::confirm()
        };
        // The shared listing may predate the resource: confirm an absence with a GET before
        // letting the object go.
        let observed = match adapter.observe(&cloud, self.obj, &id, shared).await {
            Ok(None) => adapter.observe(&cloud, self.obj, &id, direct).await,
            other => other,
        };
        let observed = match observed {
            Ok(o) => o,
            Err(e) => {
                return self
                    .fail(
                        None,
                        Readiness::Deleting(e.to_string()),
                        Self::cloud_sync(&e),
                    )
                    .await;
            }
        };
        match observed {
            None => {
                self.event(
                    EventType::Normal,
                    "Deleted",
                    "Delete",
                    format!("Deleted {id}"),
                )
                .await;
                // Only once the credential is gone from the cloud.
                self.delete_secret().await?;
                self.forget();
                self.remove_finalizer().await?;
                Ok(Step::ok(Action::await_change()))
            }
            Some(o) if A::is_deleting(&o) => {
                let outcome = Outcome {
                    readiness: Readiness::Deleting(format!("{id} is being deleted")),
                    sync: Sync::Success,
                    progressing: Some("deleting".into()),
                };
                self.write_status(Some(&o), &outcome).await?;
                Ok(Step::ok(Action::requeue(
                    self.ctx.settings.transitional_poll,
                )))
            }
            Some(o) => match adapter.delete(&cloud, &o).await {
                Ok(()) => {
                    self.event(
                        EventType::Normal,
                        "Deleting",
                        "Delete",
                        format!("Deleting {id}"),
                    )
                    .await;
                    let outcome = Outcome {
                        readiness: Readiness::Deleting(format!("{id} is being deleted")),
                        sync: Sync::Success,
                        progressing: Some("deleting".into()),
                    };
                    self.write_status(Some(&o), &outcome).await?;
                    Ok(Step::ok(Action::requeue(
                        self.ctx.settings.transitional_poll,
                    )))
                }
                Err(e) if e.is_not_found() => Ok(Step::ok(Action::requeue(Duration::ZERO))),
                Err(e) => {
                    self.fail(
                        Some(&o),
                        Readiness::Deleting(e.to_string()),
                        Self::cloud_sync(&e),
                    )
                    .await
                }
            },
        }
    }
}

/// Whether the API server refused a write for its precondition: the resourceVersion (409), or
/// the UID (422 on `metadata.uid`: the object was deleted and created again under its name).
fn refused_precondition(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) if s.code == 409 => true,
        kube::Error::Api(s) if s.code == 422 => s
            .details
            .as_ref()
            .is_some_and(|d| d.causes.iter().any(|c| c.field == "metadata.uid")),
        _ => false,
    }
}

/// Whether `since` is more than `age` ago (a marker from the future is not).
fn older_than(since: Timestamp, age: Duration) -> bool {
    Duration::try_from(Timestamp::now().duration_since(since)).is_ok_and(|elapsed| elapsed > age)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Annotations the engine reads, for watch predicates.
pub fn relevant_annotations<K: Resource>(obj: &K) -> BTreeMap<String, String> {
    obj.annotations()
        .iter()
        .filter(|(k, _)| k.starts_with("stratus.dev/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_become_pascal_case_reasons() {
        assert_eq!(reason_from_code("VALIDATION_ERROR"), "ValidationError");
        assert_eq!(
            reason_from_code("INSUFFICIENT_BALANCE"),
            "InsufficientBalance"
        );
        assert_eq!(reason_from_code("CONFLICT"), "Conflict");
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h…");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
