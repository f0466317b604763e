//! Workspace: a Vertra Cloud workspace (Enterprise plan).

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::api::common::{
    DeletionPolicy, ManagedStatus, ManagementPolicy, ProviderConfigReference,
    default_management_policies,
};

/// A workspace on Vertra Cloud: a group of apps and databases shared with members. Needs the
/// Enterprise plan: on another plan the object is `Stalled` saying so.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vertra.stratus.dev",
    version = "v1alpha1",
    kind = "Workspace",
    namespaced,
    status = "WorkspaceStatus",
    shortname = "vws",
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
        name = "EXTERNAL-NAME",
        type_ = "string",
        json_path = ".metadata.annotations.stratus\\.dev/external-name",
        priority = 1
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSpec {
    /// The ProviderConfig (provider: vertra) with the endpoint and credentials to use.
    #[serde(default)]
    pub provider_config_ref: ProviderConfigReference,
    /// Delete (default) removes the workspace with this object (its apps and databases go back
    /// to the account's owner); Orphan leaves it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the operator may do: ["*"] (default) for everything, ["Observe"] to only report.
    #[serde(default = "default_management_policies")]
    pub management_policies: Vec<ManagementPolicy>,
    /// The desired workspace.
    pub for_provider: WorkspaceParameters,
}

/// Desired state of a workspace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceParameters {
    /// Name of the workspace, 1-50 characters, unique among the owner's workspaces.
    #[schemars(length(min = 1, max = 50))]
    pub name: String,
    /// Description, at most 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    pub description: Option<String>,
}

/// Observed state of a workspace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceStatus {
    #[serde(flatten)]
    pub managed: ManagedStatus,
    /// The workspace as the cloud last reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_provider: Option<WorkspaceObservation>,
}

/// The workspace as Vertra reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceObservation {
    /// The cloud's id of the workspace (what `workspaceId` fields take).
    pub id: String,
    /// True when the owner lost the Enterprise plan: the workspace is read-only until it is
    /// back, and the operator reports it instead of retrying writes.
    #[serde(default)]
    pub frozen: bool,
    /// When the cloud created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}
