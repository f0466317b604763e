//! A fake cloud and a fake adapter for `Widget` (in the spirit of Crossplane's
//! `ExternalClientFns`): the cloud keeps widgets in memory, records every call that reached it,
//! and answers honestly unless a test queued a [`Fault`] for the next call of a [`Method`].
//!
//! The cloud does not honour Idempotency-Keys: a create sent twice makes two widgets, so a test
//! sees every duplicate the engine would cause (the keys it sent are recorded and asserted).
//!
//! A crash is a panic at a chosen point ([`Fault::PanicBefore`], [`Fault::PanicAfter`],
//! [`crash_once`]): the reconcile stops there and everything it held in memory is lost, exactly
//! as when the process dies; only what it wrote to the API server and the cloud remains.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use jiff::Timestamp;
use kube::ResourceExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::json;
use stratus::api::common::ConnectionSecretSpec;
use stratus::api::common::ManagedStatus;
use stratus::api::provider_config::ProviderConfigSpec;
use stratus::cloud::throttle::KeyThrottle;
use stratus::cloud::{ApiKey, CloudError};
use stratus::engine::{
    Adapter, Blocked, Connect, ConnectionDetails, CreateGuard, Created, Found, Freshness, Invalid,
    ManagedSpec, Plan, Proof, ProviderError, Readiness, Revocation,
};
use uuid::Uuid;

use crate::widget::{Widget, WidgetObservation, WidgetParameters};

/// The cloud's calls, for faults and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Observe,
    FindCreated,
    Create,
    Act,
    Delete,
    Replace,
    Revoke,
}

/// What a revocation was asked to end (an owned copy of [`Revocation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    AllBut(String),
    Only(Vec<String>),
}

/// What the next call of a method does instead of answering honestly.
#[derive(Debug, Clone)]
pub enum Fault {
    /// The cloud refuses it: nothing done, this error answered.
    Refuse(CloudError),
    /// The cloud does it, but the answer is lost: this error instead (a timeout, a dropped
    /// connection, a 5xx from a proxy after the backend applied it).
    LoseAnswer(CloudError),
    /// The operator crashes before the call is sent: the cloud never sees it.
    PanicBefore,
    /// The cloud does it, and the operator crashes before reading the answer.
    PanicAfter,
}

/// A call the cloud received.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Observe { id: String, direct: bool },
    FindCreated { request: WidgetRequest },
    Create { key: Uuid, request: WidgetRequest },
    Act { id: String, action: Resize },
    Delete { id: String },
    Replace { id: String },
    Revoke { id: String, which: Revoked },
}

impl Call {
    fn method(&self) -> Method {
        match self {
            Call::Observe { .. } => Method::Observe,
            Call::FindCreated { .. } => Method::FindCreated,
            Call::Create { .. } => Method::Create,
            Call::Act { .. } => Method::Act,
            Call::Delete { .. } => Method::Delete,
            Call::Replace { .. } => Method::Replace,
            Call::Revoke { .. } => Method::Revoke,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Creating,
    Ready,
    Deleting,
}

/// A widget in the cloud.
#[derive(Debug, Clone, PartialEq)]
pub struct Thing {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub state: State,
    /// Ownership marker: the UID of the object whose create made it (like Compute's
    /// `stratus-uid:` tag); `None` for a widget made elsewhere.
    pub owner: Option<String>,
    pub created_at: Timestamp,
}

impl Thing {
    /// A widget made outside the cluster, `age` ago.
    pub fn made_elsewhere(id: &str, name: &str, size: i64, age: std::time::Duration) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            size,
            state: State::Ready,
            owner: None,
            created_at: Timestamp::now() - jiff::SignedDuration::try_from(age).unwrap(),
        }
    }
}

/// What a create sends (recorded by the engine in `stratus.dev/create-request`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidgetRequest {
    pub name: String,
    pub size: i64,
    pub owner: String,
}

/// The one update a widget accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resize(pub i64);

#[derive(Default)]
pub struct FakeCloud {
    things: Mutex<BTreeMap<String, Thing>>,
    faults: Mutex<HashMap<Method, VecDeque<Fault>>>,
    calls: Mutex<Vec<Call>>,
    next_id: AtomicU64,
    /// find_created matches by name and says [`Proof::NaturalKey`] (like a DNS zone), instead
    /// of by ownership marker.
    natural_key: AtomicBool,
    connects: AtomicU64,
    /// Every credential value issued: version → (widget id, value, still valid).
    credentials: Mutex<BTreeMap<String, (String, String, bool)>>,
    next_version: AtomicU64,
    /// The adapter offers no `replace` (like an API that shows a value once and never again).
    no_replace: AtomicBool,
    /// The adapter cannot revoke (its `revoke` answers `false`, calling nothing).
    no_revoke: AtomicBool,
    /// The key throttle the handle reports to the engine (none: creates are never held back).
    pub throttle: std::sync::OnceLock<Arc<KeyThrottle>>,
}

/// Fake clouds by ProviderConfig name: what [`Connect`] hands the engine.
static CLOUDS: LazyLock<Mutex<HashMap<String, Arc<FakeCloud>>>> = LazyLock::new(Default::default);

impl FakeCloud {
    /// A new cloud, reached through ProviderConfig `config`.
    pub fn register(config: &str) -> Arc<Self> {
        let cloud = Arc::new(Self::default());
        CLOUDS.lock().insert(config.into(), cloud.clone());
        cloud
    }

    pub fn unregister(config: &str) {
        CLOUDS.lock().remove(config);
    }

    /// Queue `fault` for the next call of `method` (faults of one method apply in order).
    pub fn fail(&self, method: Method, fault: Fault) {
        self.faults
            .lock()
            .entry(method)
            .or_default()
            .push_back(fault);
    }

    pub fn match_by_natural_key(&self, on: bool) {
        self.natural_key.store(on, Ordering::SeqCst);
    }

    pub fn insert(&self, thing: Thing) {
        self.things.lock().insert(thing.id.clone(), thing);
    }

    /// Move a widget to `state` behind the operator's back.
    pub fn set_state(&self, id: &str, state: State) {
        if let Some(t) = self.things.lock().get_mut(id) {
            t.state = state;
        }
    }

    /// Remove a widget behind the operator's back.
    pub fn remove(&self, id: &str) -> Option<Thing> {
        self.things.lock().remove(id)
    }

    pub fn things(&self) -> Vec<Thing> {
        self.things.lock().values().cloned().collect()
    }

    pub fn thing(&self, id: &str) -> Option<Thing> {
        self.things.lock().get(id).cloned()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().clone()
    }

    pub fn count(&self, method: Method) -> usize {
        self.calls
            .lock()
            .iter()
            .filter(|c| c.method() == method)
            .count()
    }

    /// The creates received, in order: key and request.
    pub fn creates(&self) -> Vec<(Uuid, WidgetRequest)> {
        self.calls
            .lock()
            .iter()
            .filter_map(|c| match c {
                Call::Create { key, request } => Some((*key, request.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn without_replace(&self) {
        self.no_replace.store(true, Ordering::SeqCst);
    }

    pub fn without_revoke(&self) {
        self.no_revoke.store(true, Ordering::SeqCst);
    }

    /// Issue a new credential value for widget `id`.
    fn issue(&self, id: &str) -> ConnectionDetails {
        let n = self.next_version.fetch_add(1, Ordering::SeqCst) + 1;
        let version = format!("{id}-v{n}");
        let value = format!("s3cr3t-{}", Uuid::new_v4().simple());
        self.credentials
            .lock()
            .insert(version.clone(), (id.into(), value.clone(), true));
        ConnectionDetails::new(version).with("token", value)
    }

    /// A value of widget `id`'s credential issued outside the operator (by whoever made the
    /// widget): its version.
    pub fn issue_elsewhere(&self, id: &str) -> String {
        self.issue(id).version
    }

    /// The value of credential `version`.
    pub fn value(&self, version: &str) -> Option<String> {
        self.credentials.lock().get(version).map(|c| c.1.clone())
    }

    /// Every value ever issued (to check none leaks).
    pub fn values(&self) -> Vec<String> {
        self.credentials
            .lock()
            .values()
            .map(|c| c.1.clone())
            .collect()
    }

    /// The versions of widget `id`'s credential that are still valid.
    pub fn valid(&self, id: &str) -> Vec<String> {
        self.credentials
            .lock()
            .iter()
            .filter(|(_, c)| c.0 == id && c.2)
            .map(|(v, _)| v.clone())
            .collect()
    }

    fn replace(&self, id: &str) -> Result<ConnectionDetails, CloudError> {
        self.call(Call::Replace { id: id.into() }, |things| {
            if !things.contains_key(id) {
                return Err(not_found());
            }
            Ok(())
        })?;
        Ok(self.issue(id))
    }

    fn revoke(&self, id: &str, which: Revocation<'_>) -> Result<(), CloudError> {
        let which = match which {
            Revocation::AllBut(keep) => Revoked::AllBut(keep.into()),
            Revocation::Only(versions) => Revoked::Only(versions.to_vec()),
        };
        let call = Call::Revoke {
            id: id.into(),
            which: which.clone(),
        };
        self.call(call, |_| Ok(()))?;
        for (v, c) in self.credentials.lock().iter_mut() {
            let ends = match &which {
                Revoked::AllBut(keep) => v != keep,
                Revoked::Only(versions) => versions.contains(v),
            };
            if c.0 == id && ends {
                c.2 = false;
            }
        }
        Ok(())
    }

    /// The revocations received, in order.
    pub fn revocations(&self) -> Vec<Revoked> {
        self.calls
            .lock()
            .iter()
            .filter_map(|c| match c {
                Call::Revoke { which, .. } => Some(which.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::SeqCst)
    }

    /// One call: a queued fault, or the honest answer `apply` gives.
    fn call<T>(
        &self,
        call: Call,
        apply: impl FnOnce(&mut BTreeMap<String, Thing>) -> Result<T, CloudError>,
    ) -> Result<T, CloudError> {
        let method = call.method();
        let fault = self
            .faults
            .lock()
            .get_mut(&method)
            .and_then(VecDeque::pop_front);
        if matches!(fault, Some(Fault::PanicBefore)) {
            panic!("fake cloud: the operator crashed before sending {method:?}");
        }
        self.calls.lock().push(call);
        if let Some(Fault::Refuse(e)) = fault {
            return Err(e);
        }
        let answer = apply(&mut self.things.lock());
        match fault {
            Some(Fault::LoseAnswer(e)) => Err(e),
            Some(Fault::PanicAfter) => {
                panic!("fake cloud: the operator crashed before reading the answer to {method:?}")
            }
            _ => answer,
        }
    }

    fn observe(&self, id: &str, direct: bool) -> Result<Option<Thing>, CloudError> {
        let call = Call::Observe {
            id: id.into(),
            direct,
        };
        self.call(call, |things| Ok(things.get(id).cloned()))
    }

    fn find_created(&self, request: &WidgetRequest) -> Result<Option<Found<Thing>>, CloudError> {
        let natural = self.natural_key.load(Ordering::SeqCst);
        let call = Call::FindCreated {
            request: request.clone(),
        };
        self.call(call, |things| {
            Ok(things
                .values()
                .find(|t| {
                    if natural {
                        t.name == request.name
                    } else {
                        t.owner.as_deref() == Some(request.owner.as_str())
                    }
                })
                .map(|t| Found {
                    observed: t.clone(),
                    proof: if natural {
                        Proof::NaturalKey
                    } else {
                        Proof::OwnershipMarker
                    },
                }))
        })
    }

    /// A create answers the new widget and its credential's value (shown only here).
    fn create(&self, key: Uuid, request: &WidgetRequest) -> Result<Created<Thing>, CloudError> {
        let call = Call::Create {
            key,
            request: request.clone(),
        };
        self.call(call, |things| {
            let n = self.next_id.fetch_add(1, Ordering::SeqCst) + 1;
            let thing = Thing {
                id: format!("w-{n}"),
                name: request.name.clone(),
                size: request.size,
                state: State::Ready,
                owner: Some(request.owner.clone()),
                created_at: Timestamp::now(),
            };
            things.insert(thing.id.clone(), thing.clone());
            let connection = Some(self.issue(&thing.id));
            Ok(Created {
                observed: thing,
                connection,
            })
        })
    }

    fn act(&self, id: &str, action: Resize) -> Result<Thing, CloudError> {
        let call = Call::Act {
            id: id.into(),
            action,
        };
        self.call(call, |things| match things.get_mut(id) {
            Some(t) => {
                t.size = action.0;
                Ok(t.clone())
            }
            None => Err(not_found()),
        })
    }

    fn delete(&self, id: &str) -> Result<(), CloudError> {
        self.call(Call::Delete { id: id.into() }, |things| {
            things.remove(id).map(|_| ()).ok_or_else(not_found)
        })
    }
}

/// The handle the engine resolves from a ProviderConfig: the fake cloud registered under its
/// name (endpoint and key are ignored).
pub struct FakeHandle(pub Arc<FakeCloud>);

impl Connect for FakeHandle {
    fn connect(
        config_name: &str,
        _spec: &ProviderConfigSpec,
        _key: ApiKey,
    ) -> Result<Self, ProviderError> {
        let cloud =
            CLOUDS
                .lock()
                .get(config_name)
                .cloned()
                .ok_or_else(|| ProviderError::Invalid {
                    config: config_name.into(),
                    message: "no fake cloud is registered under this name".into(),
                })?;
        cloud.connects.fetch_add(1, Ordering::SeqCst);
        Ok(Self(cloud))
    }

    fn throttle(&self) -> Option<&Arc<KeyThrottle>> {
        self.0.throttle.get()
    }
}

/// Where a reconcile can be made to crash outside a cloud call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Computing the desired state: after the finalizer was added, before anything else.
    Desired,
    /// Building the status: after the create's id was recorded, before the status is written.
    StatusBody,
}

static CRASHES: LazyLock<Mutex<Vec<(String, Point)>>> = LazyLock::new(Default::default);

/// The next time a reconcile of the object with `uid` reaches `point`, it panics.
pub fn crash_once(uid: &str, point: Point) {
    CRASHES.lock().push((uid.into(), point));
}

fn maybe_crash(uid: Option<&str>, point: Point) {
    let hit = {
        let mut crashes = CRASHES.lock();
        let at = crashes
            .iter()
            .position(|(u, p)| Some(u.as_str()) == uid && *p == point);
        at.map(|i| crashes.remove(i)).is_some()
    };
    if hit {
        panic!("fake adapter: the operator crashed at {point:?}");
    }
}

pub fn timeout() -> CloudError {
    CloudError::Transport {
        operation: "widgets.create".into(),
        message: "timed out after 30s".into(),
    }
}

pub fn dropped() -> CloudError {
    CloudError::Transport {
        operation: "widgets.create".into(),
        message: "connection reset by peer".into(),
    }
}

pub fn api_error(status: u16, code: &str) -> CloudError {
    CloudError::Api {
        status,
        code: code.into(),
        message: format!("fake {code}"),
        request_id: Some("req-fake".into()),
        retry_after: None,
        class: stratus::cloud::error::classify_status(status),
    }
}

pub fn unavailable() -> CloudError {
    api_error(503, "SERVICE_UNAVAILABLE")
}

pub fn not_found() -> CloudError {
    api_error(404, "RESOURCE_NOT_FOUND")
}

/// The adapter: every method is the cloud call or a pure mapping; nothing provider-specific.
#[derive(Clone, Default)]
pub struct FakeAdapter {
    /// What the adapter says its cloud does about duplicate creates.
    pub guard: CreateGuard,
    /// Whether issuing a new credential disrupts the widget's users (like a password reset).
    pub disrupts: bool,
}

#[async_trait::async_trait]
impl Adapter for FakeAdapter {
    type Kind = Widget;
    type Cloud = FakeHandle;
    type Observed = Thing;
    type Desired = WidgetParameters;
    type Action = Resize;
    type CreateRequest = WidgetRequest;

    const PROVIDER: &'static str = "fake";
    const CONTROLLER: &'static str = "widget";

    fn create_guard(&self) -> CreateGuard {
        self.guard
    }

    fn replace_disrupts(&self) -> bool {
        self.disrupts
    }

    fn managed(obj: &Widget) -> ManagedSpec {
        ManagedSpec {
            provider_config: obj.spec.provider_config_ref.name.clone(),
            deletion_policy: obj.spec.deletion_policy,
            management_policies: obj.spec.management_policies.clone(),
        }
    }

    fn status(obj: &Widget) -> Option<&ManagedStatus> {
        obj.status.as_ref().map(|s| &s.managed)
    }

    fn validate(obj: &Widget) -> Result<(), Invalid> {
        if obj.spec.for_provider.size < 1 {
            return Err(Invalid::new(
                "InvalidSpec",
                "forProvider.size must be at least 1",
            ));
        }
        Ok(())
    }

    async fn desired(
        &self,
        _kube: &kube::Client,
        obj: &Widget,
    ) -> Result<WidgetParameters, Blocked> {
        maybe_crash(obj.metadata.uid.as_deref(), Point::Desired);
        Ok(obj.spec.for_provider.clone())
    }

    async fn observe(
        &self,
        cloud: &FakeHandle,
        _obj: &Widget,
        id: &str,
        fresh: Freshness,
    ) -> Result<Option<Thing>, CloudError> {
        cloud.0.observe(id, fresh.direct)
    }

    fn create_request(obj: &Widget, desired: &WidgetParameters) -> WidgetRequest {
        WidgetRequest {
            name: desired.name.clone(),
            size: desired.size,
            owner: obj.uid().unwrap_or_default(),
        }
    }

    async fn find_created(
        &self,
        cloud: &FakeHandle,
        _obj: &Widget,
        request: &WidgetRequest,
    ) -> Result<Option<Found<Thing>>, CloudError> {
        cloud.0.find_created(request)
    }

    async fn create(
        &self,
        cloud: &FakeHandle,
        _obj: &Widget,
        request: &WidgetRequest,
        idempotency_key: Uuid,
    ) -> Result<Created<Thing>, CloudError> {
        cloud.0.create(idempotency_key, request)
    }

    fn connection_secret(obj: &Widget) -> Option<ConnectionSecretSpec> {
        Some(obj.spec.connection.clone())
    }

    async fn replace(
        &self,
        cloud: &FakeHandle,
        _obj: &Widget,
        observed: &Thing,
    ) -> Result<Option<ConnectionDetails>, CloudError> {
        if cloud.0.no_replace.load(Ordering::SeqCst) {
            return Ok(None);
        }
        cloud.0.replace(&observed.id).map(Some)
    }

    async fn revoke(
        &self,
        cloud: &FakeHandle,
        _obj: &Widget,
        observed: &Thing,
        which: Revocation<'_>,
    ) -> Result<bool, CloudError> {
        if cloud.0.no_revoke.load(Ordering::SeqCst) {
            return Ok(false);
        }
        cloud.0.revoke(&observed.id, which).map(|()| true)
    }

    fn created_at(observed: &Thing) -> Option<Timestamp> {
        Some(observed.created_at)
    }

    fn plan(desired: &WidgetParameters, observed: &Thing, _digest: Option<&str>) -> Plan<Resize> {
        if desired.name != observed.name {
            return Plan::Impossible(Invalid::new(
                "NameImmutable",
                format!(
                    "forProvider.name cannot change from {:?} to {:?}: create a new Widget",
                    observed.name, desired.name
                ),
            ));
        }
        if desired.size != observed.size {
            return Plan::Update(vec![Resize(desired.size)]);
        }
        Plan::UpToDate
    }

    async fn act(
        &self,
        cloud: &FakeHandle,
        observed: &Thing,
        action: &Resize,
    ) -> Result<Thing, CloudError> {
        cloud.0.act(&observed.id, *action)
    }

    async fn delete(&self, cloud: &FakeHandle, observed: &Thing) -> Result<(), CloudError> {
        cloud.0.delete(&observed.id)
    }

    fn external_id(observed: &Thing) -> String {
        observed.id.clone()
    }

    fn reported_id(obj: &Widget) -> Option<&str> {
        obj.status
            .as_ref()
            .and_then(|s| s.at_provider.as_ref())
            .map(|a| a.id.as_str())
    }

    fn is_deleting(observed: &Thing) -> bool {
        observed.state == State::Deleting
    }

    fn is_transitional(observed: &Thing) -> bool {
        observed.state == State::Creating
    }

    fn readiness(observed: &Thing) -> Readiness {
        match observed.state {
            State::Ready => Readiness::Available("READY".into()),
            State::Creating => Readiness::Creating("CREATING".into()),
            State::Deleting => Readiness::Deleting("DELETING".into()),
        }
    }

    fn status_body(
        observed: Option<&Thing>,
        previous: &Widget,
        managed: ManagedStatus,
    ) -> serde_json::Value {
        maybe_crash(previous.metadata.uid.as_deref(), Point::StatusBody);
        let at_provider = observed
            .map(|t| WidgetObservation {
                id: t.id.clone(),
                name: t.name.clone(),
                size: t.size,
                state: format!("{:?}", t.state).to_uppercase(),
            })
            .or_else(|| previous.status.as_ref().and_then(|s| s.at_provider.clone()));
        let mut body = serde_json::to_value(&managed).unwrap_or_else(|_| json!({}));
        if let Some(a) = at_provider {
            body["atProvider"] = serde_json::to_value(a).unwrap_or_default();
        }
        body
    }
}
