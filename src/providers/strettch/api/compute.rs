//! Compute: a Strettch Cloud compute instance.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::api::common::{
    DeletionPolicy, ManagedStatus, ManagementPolicy, ProviderConfigReference,
    default_management_policies,
};

/// A compute instance on Strettch Cloud.
// kube's printcolumn(...) repeats `type_ =`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "strettch.stratus.dev",
    version = "v1alpha1",
    kind = "Compute",
    namespaced,
    status = "ComputeStatus",
    shortname = "cmp",
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
        name = "STATE",
        type_ = "string",
        json_path = ".status.atProvider.state"
    ),
    printcolumn(name = "IP", type_ = "string", json_path = ".status.atProvider.ipv4"),
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
    validation = crate::api::field_immutable_once_created("hostName", "hostName cannot be changed once the compute exists (status.atProvider.id is set): create a new Compute to change it"),
    validation = crate::api::field_immutable_once_created("image", "image cannot be changed once the compute exists (status.atProvider.id is set): create a new Compute to change it"),
    validation = crate::api::field_immutable_once_created("region", "region cannot be changed once the compute exists (status.atProvider.id is set): create a new Compute to change it"),
    validation = crate::api::field_immutable_once_created("publicKeys", "publicKeys cannot be changed once the compute exists (status.atProvider.id is set): create a new Compute to change them")
)]
#[serde(rename_all = "camelCase")]
pub struct ComputeSpec {
    /// The ProviderConfig with the endpoint and credentials to use.
    #[serde(default)]
    pub provider_config_ref: ProviderConfigReference,
    /// Delete (default) removes the cloud compute with this object; Orphan leaves it running.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the operator may do: ["*"] (default) for everything, ["Observe"] to only report.
    #[serde(default = "default_management_policies")]
    pub management_policies: Vec<ManagementPolicy>,
    /// The desired compute, as the Strettch API names it.
    pub for_provider: ComputeParameters,
}

/// Desired state of a compute instance.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ComputeParameters {
    /// Hostname of the instance (letters, digits, hyphens; 1-63 characters). Set at creation:
    /// immutable once the compute exists.
    #[schemars(length(min = 1, max = 63))]
    pub host_name: String,
    /// OS image slug from GET /images, e.g. UBUNTU-24.04. Immutable once the compute exists.
    pub image: String,
    /// Region code from GET /regions, e.g. KGL-1. Immutable once the compute exists.
    pub region: String,
    /// Specification slug from GET /computes/specifications, e.g. S-1C-1G. Can only grow
    /// (upsize); a smaller one is refused.
    pub specification: String,
    /// SSH public keys installed at creation (at least one). Immutable once the compute exists.
    #[schemars(length(min = 1))]
    pub public_keys: Vec<String>,
    /// Allocate a public IPv4 address. Set at creation.
    #[serde(default)]
    pub with_public_ip: bool,
    /// Labels for the instance. Set at creation; the operator adds its ownership tag
    /// `stratus-uid:<uid>` to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// RUNNING (default) or STOPPED; the operator starts or stops the instance to match.
    #[serde(default)]
    pub power_state: PowerState,
}

/// Desired power state.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PowerState {
    #[default]
    Running,
    Stopped,
}

/// Observed state of a compute.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComputeStatus {
    #[serde(flatten)]
    pub managed: ManagedStatus,
    /// The compute as the cloud last reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_provider: Option<ComputeObservation>,
}

/// The compute as Strettch reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComputeObservation {
    /// The cloud's id of the compute.
    pub id: String,
    /// CREATING, RUNNING, STOPPED, REBOOTING, DESTROYING, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Public IPv4 address, when the compute has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    /// Private IPv4 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ipv4: Option<String>,
    /// The specification the compute runs with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specification: Option<String>,
    /// When the cloud created it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the cloud last changed it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}
