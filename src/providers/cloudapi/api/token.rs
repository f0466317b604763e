//! Token: a scoped CloudAPI access token (seed 003), its value in a Secret.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::api::common::{
    ConnectionSecretSpec, DeletionPolicy, ManagedStatus, ManagementPolicy, ProviderConfigReference,
    default_management_policies,
};

/// A scoped access token. Its value is written once to the Secret named by
/// writeConnectionSecretToRef (key `token`, with `tokenId`). Name and scopes are fixed at
/// creation: changing them issues a new token with the new ones, exactly as changing
/// connectionSecretRotation does (the previous token stays valid for the operator's grace
/// period, then is revoked). Deleting the object (deletionPolicy Delete) revokes its tokens.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "cloudapi.stratus.dev",
    version = "v1alpha1",
    kind = "Token",
    namespaced,
    status = "TokenStatus",
    shortname = "catok",
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
        name = "TOKEN",
        type_ = "string",
        json_path = ".status.connectionSecret.version",
        priority = 1
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TokenSpec {
    /// The ProviderConfig (provider: cloudapi) with the endpoint and API key to use.
    #[serde(default)]
    pub provider_config_ref: ProviderConfigReference,
    /// Delete (default) revokes the token with this object; Orphan leaves it valid.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the operator may do: ["*"] (default) for everything, ["Observe"] to only report.
    #[serde(default = "default_management_policies")]
    pub management_policies: Vec<ManagementPolicy>,
    /// The desired token.
    pub for_provider: TokenParameters,
    /// The Secret the token goes to, and the rotation nonce.
    #[serde(flatten)]
    pub connection: ConnectionSecretSpec,
}

/// Desired token.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TokenParameters {
    /// Name of the token (e.g. ci-token), 1-100 characters.
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
    /// What the token may do: users:read, usage:read, projects:read, projects:write,
    /// deployments:read, deployments:write, logs:read. At least one.
    #[schemars(length(min = 1, max = 16))]
    pub scopes: Vec<String>,
}

/// Observed state of a token.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenStatus {
    #[serde(flatten)]
    pub managed: ManagedStatus,
    /// The token as the cloud last listed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_provider: Option<TokenObservation>,
}

/// The token as CloudAPI lists it: never its value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenObservation {
    /// The id of the first token this object made (tok_…).
    pub id: String,
    /// The id of the token in the Secret now (differs from id after a replacement).
    pub token_id: String,
    /// Its name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// When the cloud created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}
