//! Project: a CloudAPI project (both dialects).

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::api::common::{
    DeletionPolicy, ManagedStatus, ManagementPolicy, ProviderConfigReference,
    default_management_policies,
};

/// A project on CloudAPI: what Releases deploy to and ApiKeys belong to. In the cloudapi
/// dialect it lives in a region, fixed at creation; cloudplatform projects have none.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "cloudapi.stratus.dev",
    version = "v1alpha1",
    kind = "Project",
    namespaced,
    status = "ProjectStatus",
    shortname = "caproj",
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
        name = "REGION",
        type_ = "string",
        json_path = ".spec.forProvider.region"
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
    ),
    validation = crate::api::immutable_once_created("(has(self.spec.forProvider.region) ? self.spec.forProvider.region : '') == (has(oldSelf.spec.forProvider.region) ? oldSelf.spec.forProvider.region : '')", "region cannot be changed once the project exists (status.atProvider.id is set): create a new Project to move it")
)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSpec {
    /// The ProviderConfig (provider: cloudapi) with the endpoint, dialect and API key to use.
    #[serde(default)]
    pub provider_config_ref: ProviderConfigReference,
    /// Delete (default) deletes the project with this object — permanently, with its
    /// deployments, and revoking its API keys; Orphan leaves it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the operator may do: ["*"] (default) for everything, ["Observe"] to only report.
    #[serde(default = "default_management_policies")]
    pub management_policies: Vec<ManagementPolicy>,
    /// The desired project.
    pub for_provider: ProjectParameters,
}

/// Desired state of a project.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProjectParameters {
    /// Name of the project, 1-100 characters (e.g. acme-prod). Can be changed later.
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
    /// The region the project lives in (e.g. us-east-1). Required by the cloudapi dialect,
    /// refused by cloudplatform (which has no regions); immutable once the project exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub region: Option<String>,
}

/// Observed state of a project.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectStatus {
    #[serde(flatten)]
    pub managed: ManagedStatus,
    /// The project as the cloud last reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_provider: Option<ProjectObservation>,
}

/// The project as CloudAPI reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectObservation {
    /// The cloud's id of the project (proj_… or prj_…): what projectId fields take.
    pub id: String,
    /// The project's name in the cloud.
    pub name: String,
    /// The project's region (cloudapi dialect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The project's state as the cloud says it (cloudapi dialect: active).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// When the cloud created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}
