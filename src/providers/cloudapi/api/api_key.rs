//! ApiKey: an API key of a CloudAPI project (seed 003), its value in a Secret.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::ProjectReference;
use crate::api::common::{
    ConnectionSecretSpec, DeletionPolicy, ManagedStatus, ManagementPolicy, ProviderConfigReference,
    default_management_policies,
};

/// An API key of a CloudAPI project. The key is written once to the Secret named by
/// writeConnectionSecretToRef (key `apiKey`, with `keyId`); change connectionSecretRotation to
/// get a new key (the previous one stays valid for the operator's grace period, then is
/// revoked). Creating keys needs the dashboard session token named by the ProviderConfig's
/// spec.cloudapi.sessionTokenSecretRef: without it the object is Stalled saying so. Deleting
/// the object (deletionPolicy Delete) revokes its keys.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "cloudapi.stratus.dev",
    version = "v1alpha1",
    kind = "ApiKey",
    namespaced,
    status = "ApiKeyStatus",
    shortname = "cakey",
    category = "stratus",
    category = "managed",
    printcolumn(
        name = "READY",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "SYNCED",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Synced\")].status"
    ),
    printcolumn(
        name = "SECRET",
        type_ = "string",
        json_path = ".spec.writeConnectionSecretToRef.name"
    ),
    printcolumn(
        name = "KEY",
        type_ = "string",
        json_path = ".status.connectionSecret.version",
        priority = 1
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    validation = kube::core::Rule::new("has(self.spec.forProvider.projectRef) != has(self.spec.forProvider.projectId)").message(kube::core::Message::Message("set exactly one of spec.forProvider.projectRef and spec.forProvider.projectId".into())),
    validation = crate::api::immutable_once_created("(has(self.spec.forProvider.projectId) ? self.spec.forProvider.projectId : '') == (has(oldSelf.spec.forProvider.projectId) ? oldSelf.spec.forProvider.projectId : '') && (has(self.spec.forProvider.projectRef) ? self.spec.forProvider.projectRef.name : '') == (has(oldSelf.spec.forProvider.projectRef) ? oldSelf.spec.forProvider.projectRef.name : '')", "the project cannot be changed once the key exists (status.atProvider.id is set): create another ApiKey")
)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeySpec {
    /// The ProviderConfig (provider: cloudapi) with the endpoint, API key and session token.
    #[serde(default)]
    pub provider_config_ref: ProviderConfigReference,
    /// Delete (default) revokes the key with this object; Orphan leaves it valid.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the operator may do: ["*"] (default) for everything, ["Observe"] to only report.
    #[serde(default = "default_management_policies")]
    pub management_policies: Vec<ManagementPolicy>,
    /// The desired key.
    pub for_provider: ApiKeyParameters,
    /// The Secret the key goes to, and the rotation nonce.
    #[serde(flatten)]
    pub connection: ConnectionSecretSpec,
}

/// Desired key.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyParameters {
    /// The Project object (same namespace) the key belongs to. Set exactly one of projectRef
    /// and projectId; fixed once the key exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_ref: Option<ProjectReference>,
    /// The id of a project not managed here (proj_… or prj_…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub project_id: Option<String>,
}

/// Observed state of a key.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyStatus {
    #[serde(flatten)]
    pub managed: ManagedStatus,
    /// The key as the operator last saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_provider: Option<ApiKeyObservation>,
}

/// What is known of the key (the API has no read of keys): never its value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyObservation {
    /// The id of the first key this object made (key_…); the key in the Secret now is
    /// status.connectionSecret.version.
    pub id: String,
    /// The project the key belongs to.
    pub project_id: String,
}
