//! The managed-resource engine: one generic reconciler that every kind plugs into through a
//! small [`Adapter`]. The engine owns the hard parts (crash-safe create protocol, finalizer,
//! deletion policy, management policies, pause, adoption, drift correction, conditions, events,
//! backoff, metrics); an adapter says how one kind maps to one cloud collection.

pub mod annotations;
pub mod backoff;
pub mod conditions;
pub mod connection;
pub mod controller;
pub mod events;
pub mod peers;
pub mod providers;
pub mod reconciler;
pub mod registry;
pub mod snapshot;
pub mod usage;

use std::fmt::Debug;
use std::time::Duration;

use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::api::common::{ConnectionSecretSpec, DeletionPolicy, ManagedStatus, ManagementPolicy};
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
pub use conditions::Readiness;
pub use connection::{ConnectionDetails, Created, Revocation, SecretBytes};
pub use providers::{Connect, ProviderError, Providers};

/// The Crossplane-style fields every managed resource spec has.
#[derive(Debug, Clone)]
pub struct ManagedSpec {
    pub provider_config: String,
    pub deletion_policy: DeletionPolicy,
    pub management_policies: Vec<ManagementPolicy>,
}

/// A problem with the user's input: a condition reason and a message saying how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub reason: String,
    pub message: String,
}

impl Invalid {
    pub fn new(reason: &str, message: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Why the desired state cannot be computed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// Waiting for another object (a Domain to be active, a Compute to get an address).
    Waiting(Invalid),
    /// The input is wrong (a reference to nothing, a value of the wrong kind).
    Invalid(Invalid),
}

/// How fresh an observation must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Oldest acceptable data.
    pub max_age: Duration,
    /// The resource is in a transitional state, or the operator is about to act on it.
    pub urgent: bool,
    /// One GET per resource instead of the shared listing (the baseline mode for benchmarks,
    /// and confirmation before acting on an absence).
    pub direct: bool,
    /// The throttle priority of the reads: a reconcile caused by a user's change reads at the
    /// priority of a user's write, so it never waits behind routine observation.
    pub priority: Priority,
}

impl Freshness {
    /// A read that must see the cloud as it is now: one GET, at urgent priority.
    pub fn confirm() -> Self {
        Self {
            max_age: Duration::ZERO,
            urgent: true,
            direct: true,
            priority: Priority::Urgent,
        }
    }
}

/// A kind's `.status`: the engine's managed part (observedGeneration, conditions, ...) and the
/// adapter's `atProvider`.
pub fn status_with_at_provider<T: Serialize>(
    at_provider: Option<T>,
    managed: &ManagedStatus,
) -> serde_json::Value {
    let mut body = serde_json::to_value(managed).unwrap_or_else(|_| serde_json::json!({}));
    if let Some(a) = at_provider {
        body["atProvider"] = serde_json::to_value(a).unwrap_or_default();
    }
    body
}

/// The [`Adapter`] accessors every kind with the managed layout shares: `spec.providerConfigRef`,
/// `spec.deletionPolicy`, `spec.managementPolicies`, `status` flattening [`ManagedStatus`] and an
/// `atProvider` with the cloud's `id`. Use inside `impl Adapter for ...`, naming the pure
/// function that maps `Observed` to `atProvider`; the last reported `atProvider` stays when
/// nothing was observed.
#[macro_export]
macro_rules! managed_kind_accessors {
    ($observation:path) => {
        fn managed(obj: &Self::Kind) -> $crate::engine::ManagedSpec {
            $crate::engine::ManagedSpec {
                provider_config: obj.spec.provider_config_ref.name.clone(),
                deletion_policy: obj.spec.deletion_policy,
                management_policies: obj.spec.management_policies.clone(),
            }
        }

        fn status(obj: &Self::Kind) -> Option<&$crate::api::common::ManagedStatus> {
            obj.status.as_ref().map(|s| &s.managed)
        }

        fn reported_id(obj: &Self::Kind) -> Option<&str> {
            let at = obj.status.as_ref()?.at_provider.as_ref()?;
            Some(at.id.as_str()).filter(|id| !id.is_empty())
        }

        fn status_body(
            observed: Option<&Self::Observed>,
            previous: &Self::Kind,
            managed: $crate::api::common::ManagedStatus,
        ) -> serde_json::Value {
            let at_provider = observed
                .map($observation)
                .or_else(|| previous.status.as_ref().and_then(|s| s.at_provider.clone()));
            $crate::engine::status_with_at_provider(at_provider, &managed)
        }
    };
}

/// How the cloud keeps a create from being applied twice: what the engine may do after an
/// attempt whose outcome is unknown and that [`Adapter::find_created`] cannot find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CreateGuard {
    /// The API honours an idempotency key: the recorded request is sent again under the same
    /// key, and the API answers with what the first attempt made, if it made anything.
    #[default]
    IdempotencyKey,
    /// The API has no idempotency key: sending again could make a second resource. The engine
    /// refuses to guess: it keeps looking (`find_created`, by ownership marker or natural key)
    /// until the attempt is older than the create-settle time — when a late-applied request
    /// would be visible — and only then, still finding nothing, sends a new attempt (stamped
    /// anew, so its own outcome gets the same care).
    FindOnly,
}

/// How a resource found after an interrupted create is known to be the one it made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// It carries an ownership marker naming this object (a tag with its UID): it is ours.
    OwnershipMarker,
    /// It matched by natural key (a zone name; a record's name, type and value): it is ours only
    /// if the cloud made it after this object's create started, so the engine checks
    /// [`Adapter::created_at`] against the create-pending time and never adopts an older one.
    NaturalKey,
}

/// A resource that an earlier create attempt may have made (Crossplane's `ExternalObservation`
/// for the recovery path).
#[derive(Debug, Clone)]
pub struct Found<O> {
    pub observed: O,
    pub proof: Proof,
}

/// What has to change for the cloud resource to match the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan<A> {
    UpToDate,
    /// Changes the API can make, in order.
    Update(Vec<A>),
    /// A change the API cannot make: reported as Stalled, no call.
    Impossible(Invalid),
}

/// One kind of managed resource on one cloud.
#[async_trait::async_trait]
pub trait Adapter: Send + Sync + 'static {
    type Kind: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static;
    type Cloud: Connect;
    /// The cloud's representation of the resource.
    type Observed: Clone + Debug + Send + Sync + 'static;
    /// The desired state with references resolved.
    type Desired: Clone + Debug + Send + Sync + 'static;
    /// One update the API can make.
    type Action: Clone + Debug + Send + Sync + 'static;
    /// What a create sends. Recorded on the object (as JSON, in the `stratus.dev/create-request`
    /// annotation) before it is sent, and re-sent unchanged until its outcome is known, so an
    /// ambiguous attempt is replayed exactly (same Idempotency-Key, same body) even when the spec
    /// changed meanwhile; the change is applied as an update once the resource is found. Must
    /// not carry secrets: it is stored in plain sight.
    type CreateRequest: Clone
        + Debug
        + PartialEq
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static;

    /// The provider the kind belongs to (`strettch`): with [`CONTROLLER`](Self::CONTROLLER),
    /// the controller's name in metrics and logs (`strettch/compute`).
    const PROVIDER: &'static str;
    /// The kind's name within its provider (`compute`). Part of the Idempotency-Key
    /// derivation: never change it for an existing kind, or a create in flight across an
    /// upgrade would be sent under a new key.
    const CONTROLLER: &'static str;

    fn managed(obj: &Self::Kind) -> ManagedSpec;
    fn status(obj: &Self::Kind) -> Option<&ManagedStatus>;

    /// Pure checks of the spec, before any call.
    fn validate(obj: &Self::Kind) -> Result<(), Invalid>;

    /// The desired state, resolving references to other objects.
    async fn desired(
        &self,
        kube: &kube::Client,
        obj: &Self::Kind,
    ) -> Result<Self::Desired, Blocked>;

    /// Checks against what the cloud offers (regions, images, ...), completing `desired` with
    /// what planning needs from the offer. `Ok(Err)`: the input is wrong, or a cloud-side
    /// dependency is not ready yet.
    async fn check_offer(
        &self,
        _cloud: &Self::Cloud,
        _desired: &mut Self::Desired,
    ) -> Result<Result<(), Blocked>, CloudError> {
        Ok(Ok(()))
    }

    /// The cloud resource with `id`; `None` when it does not exist.
    async fn observe(
        &self,
        cloud: &Self::Cloud,
        obj: &Self::Kind,
        id: &str,
        fresh: Freshness,
    ) -> Result<Option<Self::Observed>, CloudError>;

    /// The create request for the desired state (pure: no call).
    fn create_request(obj: &Self::Kind, desired: &Self::Desired) -> Self::CreateRequest;

    /// After an attempt whose outcome is unknown (timeout, dropped connection, 5xx, a crash while
    /// it was in flight): find what `request` may have made, from a listing that started after
    /// this call did. Say how it is known to be ours ([`Proof`]); the engine adopts a
    /// natural-key match only if [`created_at`](Self::created_at) is after the attempt started
    /// and no other object claims it.
    async fn find_created(
        &self,
        cloud: &Self::Cloud,
        obj: &Self::Kind,
        request: &Self::CreateRequest,
    ) -> Result<Option<Found<Self::Observed>>, CloudError>;

    /// How the cloud guards a create against duplicates ([`CreateGuard`]); an adapter of an API
    /// without idempotency keys must say [`CreateGuard::FindOnly`].
    fn create_guard(&self) -> CreateGuard {
        CreateGuard::IdempotencyKey
    }

    /// Send `request` once, with `idempotency_key` (no retries inside: the engine decides).
    /// A kind whose resource is a credential returns the value the cloud shows only in this
    /// answer in [`Created::connection`]; every other kind returns `Ok(observed.into())`. The
    /// engine writes that value to the connection Secret before it records the id, so it is
    /// never lost without the engine knowing.
    async fn create(
        &self,
        cloud: &Self::Cloud,
        obj: &Self::Kind,
        request: &Self::CreateRequest,
        idempotency_key: Uuid,
    ) -> Result<Created<Self::Observed>, CloudError>;

    /// The connection-Secret fields of the spec (`writeConnectionSecretToRef`,
    /// `connectionSecretRotation`, or the kind's own names for them), for kinds whose resource
    /// produces a credential. `None` (the default): the kind writes no Secret.
    fn connection_secret(_obj: &Self::Kind) -> Option<ConnectionSecretSpec> {
        None
    }

    /// Issue a new value of the resource's credential (for a rotation, or because the value
    /// is not in the Secret: lost in a crash between the create's answer and the Secret
    /// write, or the resource was adopted). The values issued before stay valid until
    /// [`revoke`](Self::revoke). `Ok(None)` (the default): the API cannot issue a new value;
    /// the engine then reports a lost value to the user instead.
    async fn replace(
        &self,
        _cloud: &Self::Cloud,
        _obj: &Self::Kind,
        _observed: &Self::Observed,
    ) -> Result<Option<ConnectionDetails>, CloudError> {
        Ok(None)
    }

    /// Whether issuing a new value ([`replace`](Self::replace)) disrupts what uses the
    /// resource now (a database password reset disconnects every client). Then the engine
    /// issues one for a resource the operator created, or when the spec's rotation field asks,
    /// never on its own for an adopted resource: for that one the rotation value it was adopted
    /// with is a baseline, and only a change of it asks. Default: no.
    fn replace_disrupts(&self) -> bool {
        false
    }

    /// Revoke values of the resource's credential: every value but one
    /// ([`Revocation::AllBut`], for a resource this object created: the previous value after a
    /// rotation's grace period, and any value whose answer was lost), or exactly the versions
    /// given ([`Revocation::Only`]: values the operator issued for a resource it adopted, whose
    /// other values are someone else's, and a value it could not write). Must be idempotent: it
    /// is repeated after a crash. `Ok(false)` (the default): this API cannot revoke those values;
    /// the engine then tells the user, in a Warning event, which values stay valid.
    async fn revoke(
        &self,
        _cloud: &Self::Cloud,
        _obj: &Self::Kind,
        _observed: &Self::Observed,
        _which: Revocation<'_>,
    ) -> Result<bool, CloudError> {
        Ok(false)
    }

    /// When the cloud made the resource, if it says (needed for [`Proof::NaturalKey`]).
    fn created_at(_observed: &Self::Observed) -> Option<jiff::Timestamp> {
        None
    }

    /// A digest of create-only inputs the cloud does not report back (so a later change can be
    /// detected), recorded at create/adoption.
    fn create_only_digest(_desired: &Self::Desired) -> Option<String> {
        None
    }

    /// What to change. `digest` is the recorded create-only digest, if any.
    fn plan(
        desired: &Self::Desired,
        observed: &Self::Observed,
        digest: Option<&str>,
    ) -> Plan<Self::Action>;

    async fn act(
        &self,
        cloud: &Self::Cloud,
        observed: &Self::Observed,
        action: &Self::Action,
    ) -> Result<Self::Observed, CloudError>;

    async fn delete(
        &self,
        cloud: &Self::Cloud,
        observed: &Self::Observed,
    ) -> Result<(), CloudError>;

    fn external_id(observed: &Self::Observed) -> String;

    /// The cloud id the object's status reports (`status.atProvider.id`), to tell a resource
    /// seen for the first time.
    fn reported_id(obj: &Self::Kind) -> Option<&str>;
    /// The cloud is already deleting it.
    fn is_deleting(observed: &Self::Observed) -> bool;
    /// The cloud will move it on by itself soon.
    fn is_transitional(observed: &Self::Observed) -> bool;
    /// How soon to look again at a resource in a transitional state; `None` means the
    /// operator-wide setting (`Settings::transitional_poll`). For states that can last hours
    /// (a domain waiting for its nameservers), so they are not polled every few seconds.
    fn transitional_poll(_observed: &Self::Observed) -> Option<Duration> {
        None
    }

    /// How often to read again inputs of `obj` the operator cannot watch (Secrets it may only
    /// `get`, another tool's objects whose CRDs may not exist), so a change of one is acted on
    /// within this time. Such a recheck observes the cloud from the shared snapshot as any
    /// steady reconcile does: it spends no budget of the key. `None` (the default): the resync.
    fn input_recheck(_obj: &Self::Kind) -> Option<Duration> {
        None
    }
    fn readiness(observed: &Self::Observed) -> Readiness;

    /// The complete `.status` to write.
    fn status_body(
        observed: Option<&Self::Observed>,
        previous: &Self::Kind,
        managed: ManagedStatus,
    ) -> serde_json::Value;
}
