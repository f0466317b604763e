//! Release: the live deployment of a CloudAPI project (seed 001's deployments). Not named
//! Deployment, which kubectl users read as apps/v1.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::ProjectReference;
use crate::api::common::{
    DeletionPolicy, ManagedStatus, ManagementPolicy, ProviderConfigReference,
    default_management_policies,
};

/// The commit a CloudAPI project runs. A new commit builds and deploys it; setting the commit
/// back to the release that was live just before rolls back to it without a rebuild; changing
/// redeployNonce builds the same commit again. A failed build leaves the previous release live
/// and the Release Ready=False with the build's last error line: push a fix (a new commit) or
/// change redeployNonce to try again. Deleting a Release leaves the project's deployments as
/// they are (the API has no undeploy).
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "cloudapi.stratus.dev",
    version = "v1alpha1",
    kind = "Release",
    namespaced,
    status = "ReleaseStatus",
    shortname = "carel",
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
    printcolumn(name = "COMMIT", type_ = "string", json_path = ".spec.forProvider.commit"),
    printcolumn(
        name = "LIVE",
        type_ = "string",
        json_path = ".status.atProvider.current.commit"
    ),
    printcolumn(
        name = "DEPLOYMENT",
        type_ = "string",
        json_path = ".status.atProvider.current.id",
        priority = 1
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    validation = kube::core::Rule::new("has(self.spec.forProvider.projectRef) != has(self.spec.forProvider.projectId)").message(kube::core::Message::Message("set exactly one of spec.forProvider.projectRef and spec.forProvider.projectId".into())),
    validation = crate::api::immutable_once_created("(has(self.spec.forProvider.projectId) ? self.spec.forProvider.projectId : '') == (has(oldSelf.spec.forProvider.projectId) ? oldSelf.spec.forProvider.projectId : '') && (has(self.spec.forProvider.projectRef) ? self.spec.forProvider.projectRef.name : '') == (has(oldSelf.spec.forProvider.projectRef) ? oldSelf.spec.forProvider.projectRef.name : '')", "the project cannot be changed once the Release has deployed (status.atProvider.id is set): create another Release for another project")
)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseSpec {
    /// The ProviderConfig (provider: cloudapi) with the endpoint, dialect and API key to use.
    #[serde(default)]
    pub provider_config_ref: ProviderConfigReference,
    /// Delete (default) or Orphan: both leave the project's deployments in place, since the
    /// API cannot undeploy; the object just stops managing the project's release.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the operator may do: ["*"] (default) for everything, ["Observe"] to only report
    /// (a release made outside Kubernetes is then shown, not corrected).
    #[serde(default = "default_management_policies")]
    pub management_policies: Vec<ManagementPolicy>,
    /// The desired release.
    pub for_provider: ReleaseParameters,
}

/// Desired release of a project.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseParameters {
    /// The Project object (same namespace) to deploy to. Set exactly one of projectRef and
    /// projectId; fixed once deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_ref: Option<ProjectReference>,
    /// The id of a project not managed here (proj_… or prj_…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub project_id: Option<String>,
    /// The commit to run: 1-200 characters without spaces (a SHA, a tag).
    #[schemars(length(min = 1, max = 200))]
    pub commit: String,
    /// Change this to any new string to build and deploy the same commit again (after a
    /// failed build, or to pick up a changed dependency).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub redeploy_nonce: Option<String>,
}

/// Observed state of a release.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseStatus {
    #[serde(flatten)]
    pub managed: ManagedStatus,
    /// The project's deployments as the cloud last reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_provider: Option<ReleaseObservation>,
}

/// A project's release as CloudAPI reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseObservation {
    /// The id of the project whose release this is.
    pub id: String,
    /// The live deployment: the one the project serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<DeploymentSummary>,
    /// The project's newest deployments (at most 5), newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<DeploymentSummary>,
    /// The redeployNonce the newest deployment made by this object answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeploy_nonce: Option<String>,
    /// The last error line of the newest deployment's build, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_error: Option<String>,
}

/// One deployment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSummary {
    /// The deployment's id (dep_…).
    pub id: String,
    /// The commit it built.
    pub commit: String,
    /// queued, building, succeeded or failed.
    pub status: String,
    /// When it was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}
