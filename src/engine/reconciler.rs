//! The generic reconcile pipeline: dereference → validate → resolve → observe → create/plan/act
//! → status. Every cloud call goes through the adapter; every status write is one server-side
//! apply with a stable field manager, made only when something changed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Resource, ResourceExt};
use rand::Rng;
use serde_json::json;
use tracing::{debug, info, instrument, warn};

use super::backoff::Backoffs;
use super::conditions::{self, Outcome, Readiness, Sync};
use super::{Adapter, Blocked, Freshness, Invalid, Plan, Providers};
use crate::api::common::{
    CREATE_ATTEMPT, CREATE_PENDING, DeletionPolicy, EXTERNAL_NAME, FINALIZER, ManagedStatus,
    PAUSED, POLL_INTERVAL, allowed,
};
use crate::cloud::{CloudError, ErrorClass, idempotency::idempotency_key};
use crate::metrics;

/// Annotation with the digest of create-only inputs the cloud does not echo back.
pub const CREATE_DIGEST: &str = "stratus.dev/create-digest";

/// The create-digest annotation's value: the create-only inputs' digest, or empty for kinds
/// without any (its presence alone marks a resource this operator recorded).
fn recorded_digest<A: Adapter>(desired: &A::Desired) -> String {
    A::create_only_digest(desired).unwrap_or_default()
}
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
        }
    }
}

/// Shared state of one controller.
pub struct Context<A: Adapter> {
    pub kube: kube::Client,
    pub adapter: A,
    pub providers: Arc<Providers>,
    pub recorder: Recorder,
    pub backoffs: Backoffs,
    pub settings: Settings,
}

/// Errors talking to Kubernetes itself; cloud and input errors become conditions instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("object has no namespace or name")]
    Unnamed,
}

impl Error {
    /// Label for the errors metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Unnamed => "unnamed",
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
#[instrument(skip_all, fields(controller = A::CONTROLLER, object = %key_of(obj.as_ref())))]
pub async fn reconcile<A: Adapter>(
    obj: Arc<A::Kind>,
    ctx: Arc<Context<A>>,
) -> Result<Action, Error> {
    let m = metrics::global();
    let controller = metrics::ControllerLabels {
        controller: A::CONTROLLER.into(),
    };
    let queue = metrics::WorkqueueLabels::new(A::CONTROLLER);
    m.workqueue_depth.get_or_create(&queue).inc();
    let started = Instant::now();
    let result = Reconcile {
        obj: &obj,
        ctx: &ctx,
    }
    .run()
    .await;
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
            controller: A::CONTROLLER.into(),
            result: label.into(),
        })
        .inc();
    match result {
        Ok(step) => {
            if let Some(reason) = &step.error_reason {
                m.reconcile_errors_total
                    .get_or_create(&metrics::ErrorLabels {
                        controller: A::CONTROLLER.into(),
                        error: reason.clone(),
                    })
                    .inc();
            }
            Ok(step.action)
        }
        Err(e) => {
            m.reconcile_errors_total
                .get_or_create(&metrics::ErrorLabels {
                    controller: A::CONTROLLER.into(),
                    error: e.metric_label().into(),
                })
                .inc();
            Err(e)
        }
    }
}

/// Requeue policy for Kubernetes errors (status writes, annotation patches).
pub fn error_policy<A: Adapter>(obj: Arc<A::Kind>, err: &Error, ctx: Arc<Context<A>>) -> Action {
    warn!(controller = A::CONTROLLER, object = %key_of(obj.as_ref()), error = %err, "reconcile failed");
    let s = &ctx.settings;
    Action::requeue(
        ctx.backoffs
            .fail(&key_of(obj.as_ref()), s.retry_initial, s.retry_cap),
    )
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
}

impl<'a, A: Adapter> Reconcile<'a, A> {
    fn api(&self) -> Result<Api<A::Kind>, Error> {
        let ns = self.obj.meta().namespace.as_deref().ok_or(Error::Unnamed)?;
        Ok(Api::namespaced(self.ctx.kube.clone(), ns))
    }

    fn name(&self) -> Result<&str, Error> {
        self.obj.meta().name.as_deref().ok_or(Error::Unnamed)
    }

    fn key(&self) -> String {
        key_of(self.obj.as_ref())
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

    async fn run(self) -> Result<Step, Error> {
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
        let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": self.obj.meta().resource_version}});
        self.api()?
            .patch(self.name()?, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
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
        let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": self.obj.meta().resource_version}});
        match self
            .api()?
            .patch(self.name()?, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Merge-patch annotations (None removes one).
    async fn annotate(&self, values: &[(&str, Option<String>)]) -> Result<(), Error> {
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
        let patch = json!({"metadata": {"annotations": map}});
        self.api()?
            .patch(self.name()?, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
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
            .recorder
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
        let conditions = conditions::conditions(outcome, generation, &previous.conditions, &now());
        let managed = ManagedStatus {
            observed_generation: generation,
            conditions,
        };
        let body = A::status_body(observed, self.obj, managed);
        let current = serde_json::to_value(self.obj.as_ref())
            .ok()
            .and_then(|v| v.get("status").cloned())
            .unwrap_or(serde_json::Value::Null);
        if current == body {
            return Ok(());
        }
        let patch = json!({
            "apiVersion": A::Kind::api_version(&()),
            "kind": A::Kind::kind(&()),
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
            Ok(_) => Ok(()),
            // Deleted meanwhile: nothing to report to.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The per-resource poll interval from the annotation, when it is set.
    fn poll_interval(&self) -> Option<Duration> {
        self.annotation(POLL_INTERVAL)
            .and_then(|v| crate::cli::parse_duration(v).ok())
            .filter(|d| !d.is_zero())
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
        Action::requeue(jittered(
            self.poll_interval().unwrap_or(self.ctx.settings.resync),
        ))
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
        let delay = self.ctx.backoffs.fail(&self.key(), initial, cap);
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
            ErrorClass::Terminal => Sync::Stalled {
                reason: reason_from_code(err.code()),
                message,
            },
            _ => Sync::Error {
                reason: match err.code() {
                    "TOO_MANY_REQUESTS" => "RateLimited".into(),
                    _ => "CloudUnavailable".into(),
                },
                message,
            },
        }
    }

    async fn apply(&self) -> Result<Step, Error> {
        let adapter = &self.ctx.adapter;
        let managed = A::managed(self.obj);
        let may = allowed(&managed.management_policies);

        if let Err(invalid) = A::validate(self.obj) {
            return self.invalid(invalid, false).await;
        }
        let mut desired = match adapter.desired(&self.ctx.kube, self.obj).await {
            Ok(d) => d,
            Err(Blocked::Invalid(invalid)) => return self.invalid(invalid, true).await,
            // Watches on the dependency requeue us; this is a safety net.
            Err(Blocked::Waiting(w)) => return self.wait_for(w, Duration::from_secs(30)).await,
        };
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

        // Dereference the cloud resource: recorded id, or one created before a crash.
        let mut id = self.annotation(EXTERNAL_NAME).map(str::to_string);
        if id.is_none() && self.annotation(CREATE_PENDING).is_some() {
            match adapter.find_created(&cloud, self.obj, &desired).await {
                Ok(Some(found)) => {
                    let found_id = A::external_id(&found);
                    self.annotate(&[
                        (EXTERNAL_NAME, Some(found_id.clone())),
                        (CREATE_PENDING, None),
                        (CREATE_DIGEST, Some(recorded_digest::<A>(&desired))),
                    ])
                    .await?;
                    self.event(
                        EventType::Normal,
                        "Adopted",
                        "Create",
                        format!(
                            "Found {found_id}, created by an earlier attempt that did not record it"
                        ),
                    )
                    .await;
                    id = Some(found_id);
                }
                Ok(None) => {}
                Err(e) => {
                    return self
                        .fail(
                            None,
                            Readiness::Creating("Looking for an earlier create".into()),
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
            return self.create(&cloud, &desired).await;
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
            Err(e) => {
                return self
                    .fail(None, self.previous_readiness(), Self::cloud_sync(&e))
                    .await;
            }
        };
        let observed = match observed {
            Some(o) => o,
            None => return self.gone(&cloud, &id, may.create).await,
        };
        // The create-digest annotation marks a resource this operator has recorded (it is
        // written with the id after a create, empty for kinds without create-only inputs). An
        // id the status does not report yet, without it, or an id that replaced the one the
        // status reports, was named by the user: adopted.
        let adopted = match A::reported_id(self.obj) {
            None => self.annotation(CREATE_DIGEST).is_none(),
            Some(reported) => reported != id.as_str(),
        };
        if adopted {
            self.event(
                EventType::Normal,
                "Adopted",
                "Observe",
                format!("Adopted {id}, named by the {EXTERNAL_NAME} annotation"),
            )
            .await;
        }
        if adopted || self.annotation(CREATE_DIGEST).is_none() {
            // Record what it was (as far as we know) created with.
            self.annotate(&[(CREATE_DIGEST, Some(recorded_digest::<A>(&desired)))])
                .await?;
        }
        self.ctx.backoffs.reset(&self.key());

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
        match A::plan(&desired, &observed, self.annotation(CREATE_DIGEST)) {
            Plan::UpToDate => {
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
                        Err(e) => {
                            return self
                                .fail(Some(&current), A::readiness(&current), Self::cloud_sync(&e))
                                .await;
                        }
                    }
                }
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
            Action::requeue(
                self.ctx
                    .backoffs
                    .fail(&self.key(), s.stalled_initial, s.stalled_cap),
            )
        } else {
            Action::await_change()
        };
        Ok(Step {
            action,
            failed: true,
            error_reason: Some(invalid.reason),
        })
    }

    /// The crash-safe create protocol (design-notes §1): mark pending, create with a
    /// deterministic Idempotency-Key, record the id, clear pending.
    async fn create(&self, cloud: &A::Cloud, desired: &A::Desired) -> Result<Step, Error> {
        let attempt: u32 = self
            .annotation(CREATE_ATTEMPT)
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        if self.annotation(CREATE_PENDING).is_none() {
            self.annotate(&[(CREATE_PENDING, Some(now()))]).await?;
        }
        let uid = self.obj.meta().uid.clone().unwrap_or_default();
        let key = idempotency_key(&uid, A::CONTROLLER, attempt);
        match self.ctx.adapter.create(cloud, self.obj, desired, key).await {
            Ok(created) => {
                let id = A::external_id(&created);
                self.annotate(&[
                    (EXTERNAL_NAME, Some(id.clone())),
                    (CREATE_PENDING, None),
                    (CREATE_DIGEST, Some(recorded_digest::<A>(desired))),
                ])
                .await?;
                self.ctx.backoffs.reset(&self.key());
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
            Err(e) if e.class() == ErrorClass::Terminal => {
                // A definitive rejection created nothing: the next try, after the user's fix,
                // gets a new key so it is not answered with this failure.
                self.annotate(&[
                    (CREATE_PENDING, None),
                    (CREATE_ATTEMPT, Some((attempt + 1).to_string())),
                ])
                .await?;
                let readiness = Readiness::Unavailable(e.to_string());
                self.fail(None, readiness, Self::cloud_sync(&e)).await
            }
            // Unknown outcome: keep pending and the key; the retry replays or finds it.
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
    async fn gone(&self, cloud: &A::Cloud, id: &str, may_create: bool) -> Result<Step, Error> {
        // Confirm with a direct read before acting on an absence.
        let fresh = Freshness {
            max_age: Duration::ZERO,
            urgent: true,
            direct: true,
        };
        match self.ctx.adapter.observe(cloud, self.obj, id, fresh).await {
            Ok(Some(_)) => return Ok(Step::ok(Action::requeue(Duration::ZERO))),
            Ok(None) => {}
            Err(e) => {
                return self
                    .fail(None, self.previous_readiness(), Self::cloud_sync(&e))
                    .await;
            }
        }
        if may_create {
            let attempt: u32 = self
                .annotation(CREATE_ATTEMPT)
                .and_then(|a| a.parse().ok())
                .unwrap_or(0);
            self.annotate(&[
                (EXTERNAL_NAME, None),
                (CREATE_DIGEST, None),
                (CREATE_ATTEMPT, Some((attempt + 1).to_string())),
            ])
            .await?;
            self.event(
                EventType::Warning,
                "ExternalResourceGone",
                "Observe",
                format!("{id} no longer exists in the cloud; creating it again"),
            )
            .await;
            return Ok(Step::ok(Action::requeue(Duration::ZERO)));
        }
        let outcome = Outcome {
            readiness: Readiness::Unavailable(format!("{id} does not exist in the cloud")),
            sync: Sync::Success,
            progressing: None,
        };
        self.write_status(None, &outcome).await?;
        Ok(Step::ok(self.steady_requeue()))
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
            if let Some(id) = self.annotation(EXTERNAL_NAME) {
                self.event(
                    EventType::Normal,
                    "Orphaned",
                    "Delete",
                    format!("Left {id} in the cloud"),
                )
                .await;
            }
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
        if id.is_none() && self.annotation(CREATE_PENDING).is_some() {
            // A create may have happened; delete what it made.
            if let Ok(desired) = adapter.desired(&self.ctx.kube, self.obj).await {
                match adapter.find_created(&cloud, self.obj, &desired).await {
                    Ok(found) => id = found.map(|f| A::external_id(&f)),
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
        }
        let Some(id) = id else {
            self.remove_finalizer().await?;
            return Ok(Step::ok(Action::await_change()));
        };
        let shared = Freshness {
            max_age: self.ctx.settings.transitional_poll,
            urgent: true,
            direct: false,
        };
        let direct = Freshness {
            max_age: Duration::ZERO,
            urgent: true,
            direct: true,
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
