//! Fields and status shared by every managed resource, in Crossplane's vocabulary.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Annotation holding the cloud's id of the resource. Set it to adopt an existing resource;
/// the operator writes it itself right after a create.
pub const EXTERNAL_NAME: &str = "stratus.dev/external-name";
/// Annotation written with the id after the operator's own create: a salted fingerprint of the
/// endpoint and key it was created through (never the key). Written in the same patch as the
/// id, so a crash before the status write cannot lose it; `status.createdThrough` mirrors it.
pub const CREATED_THROUGH: &str = "stratus.dev/created-through";
/// Annotation that pauses reconciliation when set to "true".
pub const PAUSED: &str = "stratus.dev/paused";
/// Annotation written just before a create call: a create may be in flight.
pub const CREATE_PENDING: &str = "stratus.dev/create-pending";
/// Annotation counting definitive create rejections; part of the Idempotency-Key.
pub const CREATE_ATTEMPT: &str = "stratus.dev/create-attempt";
/// Annotation overriding the periodic observation interval, e.g. "30s", "5m".
pub const POLL_INTERVAL: &str = "stratus.dev/poll-interval";
/// Annotation recording the connection Secret (JSON of [`ConnectionSecretStatus`], never a
/// value): written in the same patch as the id after a create, and after every write of the
/// Secret, so what the Secret holds survives a crash before the status write.
pub const CONNECTION: &str = "stratus.dev/connection";
/// The finalizer that keeps a resource until its cloud counterpart is gone.
pub const FINALIZER: &str = "stratus.dev/finalizer";

/// A reference to the ProviderConfig that holds the endpoint and credentials to use.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ProviderConfigReference {
    /// Name of the (cluster-scoped) ProviderConfig.
    #[serde(default = "default_provider_config")]
    pub name: String,
}

fn default_provider_config() -> String {
    "default".into()
}

impl Default for ProviderConfigReference {
    fn default() -> Self {
        Self {
            name: default_provider_config(),
        }
    }
}

/// A Secret name: a DNS subdomain (RFC 1123) of lowercase letters, digits, `-` and `.`, every
/// dot-separated part starting and ending with a letter or digit; at most
/// [`SECRET_NAME_MAX`] characters.
pub const SECRET_NAME_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// The longest Secret name Kubernetes accepts.
pub const SECRET_NAME_MAX: usize = 253;
/// `spec.connectionSecretRotation`: any characters but control characters (a date, a counter).
pub const ROTATION_PATTERN: &str = r"^[^\x00-\x1F\x7F]*$";
/// The longest `spec.connectionSecretRotation`: it is copied to an annotation and the status on
/// every write, so it stays small.
pub const ROTATION_MAX: usize = 253;

/// A Secret in the object's own namespace (Crossplane's `writeConnectionSecretToRef`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretReference {
    /// Name of the Secret: a DNS subdomain (lowercase letters, digits, `-` and `.`, at most 253
    /// characters).
    #[schemars(length(min = 1, max = SECRET_NAME_MAX), pattern(SECRET_NAME_PATTERN))]
    pub name: String,
}

/// The spec fields of a kind whose resource produces credentials (API keys, tokens): embed it
/// with `#[serde(flatten)]` and return it from `Adapter::connection_secret`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSecretSpec {
    /// Write the credentials the cloud returns to this Secret (type `stratus.dev/connection`,
    /// owned by this object) in the object's namespace. The operator never takes over a Secret
    /// it did not create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_connection_secret_to_ref: Option<SecretReference>,
    /// Change this to any new string (a date, a counter) to replace the credential: the new
    /// value is written to the Secret, the previous one is kept under `previous-`-prefixed keys
    /// for the operator's grace period and then revoked. At most 253 characters, no control
    /// characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = ROTATION_MAX), pattern(ROTATION_PATTERN))]
    pub connection_secret_rotation: Option<String>,
}

/// The connection Secret an object owns and the state of its credential: names, ids and
/// times, never a value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionSecretStatus {
    /// The Secret's name, in the object's namespace.
    pub name: String,
    /// The Secret's UID: every later write carries it as a precondition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The cloud's non-secret name of the value in the Secret (a key id, a prefix); absent
    /// when the Secret does not hold the credential's value (it was lost, or never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The keys of the value in the Secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// The `spec.connectionSecretRotation` the value answers (for a kind that cannot replace
    /// its credential: the last one seen, which a Warning event said had no effect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<String>,
    /// The version kept under `previous-` keys during the grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_version: Option<String>,
    /// When every value but `version` is revoked (and the `previous-` keys removed). For an
    /// adopted resource, only the values the operator issued are: `previousVersion` and
    /// `retired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke_others_after: Option<String>,
    /// Other values the operator issued that are no longer in the Secret (it was deleted or
    /// replaced by someone): revoked with the previous one, at `revokeOthersAfter`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<String>,
    /// When the operator asked the cloud for a new value whose answer is not in the Secret yet
    /// (recorded before the call). Found by a later reconcile, it means the operator stopped
    /// before writing that answer: for a resource the operator created, that value is revoked
    /// with the next grace period; for an adopted one, a Warning event says to revoke it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacing: Option<String>,
    /// A value the cloud issued whose write to the Secret failed: the operator holds it in
    /// memory and retries the write (with backoff) instead of asking for another; after a
    /// restart it is revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unwritten: Option<String>,
    /// The Secret does not hold the value and this kind cannot issue a new one: delete the
    /// object and create it again to get a new credential.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lost: bool,
}

/// What happens to the cloud resource when the Kubernetes object is deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the cloud resource, and keep the object until the cloud confirms it is gone.
    #[default]
    Delete,
    /// Leave the cloud resource in place; only the Kubernetes object goes away.
    Orphan,
}

/// What the operator may do to the cloud resource (Crossplane's management policies).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ManagementPolicy {
    /// Every action below.
    #[serde(rename = "*")]
    All,
    /// Read the cloud resource and report it in status.
    Observe,
    /// Create the cloud resource when it does not exist.
    Create,
    /// Change the cloud resource to match the spec.
    Update,
    /// Delete the cloud resource when the object is deleted (with deletionPolicy Delete).
    Delete,
}

pub fn default_management_policies() -> Vec<ManagementPolicy> {
    vec![ManagementPolicy::All]
}

/// The action set a list of policies allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    pub observe: bool,
    pub create: bool,
    pub update: bool,
    pub delete: bool,
}

pub fn allowed(policies: &[ManagementPolicy]) -> Allowed {
    let has = |p| policies.contains(&ManagementPolicy::All) || policies.contains(&p);
    Allowed {
        // Acting without observing is not meaningful; any policy implies observation.
        observe: !policies.is_empty(),
        create: has(ManagementPolicy::Create),
        update: has(ManagementPolicy::Update),
        delete: has(ManagementPolicy::Delete),
    }
}

/// A status condition, shaped like metav1.Condition so kstatus, Flux, Argo CD and `kubectl wait`
/// understand it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Ready, Synced, Reconciling or Stalled.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// A PascalCase word for machines.
    pub reason: String,
    /// What happened and, for errors, what to do about it.
    pub message: String,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
    /// The metadata.generation this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The status fields every managed resource has.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedStatus {
    /// The metadata.generation the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Synced, Reconciling and Stalled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Set when the operator created the cloud resource: a salted fingerprint of the endpoint
    /// and API key it was created through (never the key). A resource that then disappears is
    /// created again only through the same endpoint and key, never in another account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_through: Option<String>,
    /// The connection Secret the object owns, for kinds that write one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_secret: Option<ConnectionSecretStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observe_only_allows_nothing_else() {
        let a = allowed(&[ManagementPolicy::Observe]);
        assert!(a.observe && !a.create && !a.update && !a.delete);
        let all = allowed(&default_management_policies());
        assert!(all.observe && all.create && all.update && all.delete);
    }

    #[test]
    fn star_round_trips() {
        let v: Vec<ManagementPolicy> = serde_json::from_str(r#"["*"]"#).unwrap();
        assert_eq!(v, vec![ManagementPolicy::All]);
    }
}
