//! Domain: a DNS zone hosted by Strettch Cloud.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::api::common::{
    DeletionPolicy, ManagedStatus, ManagementPolicy, ProviderConfigReference,
    default_management_policies,
};

/// A DNS zone (domain) hosted by Strettch Cloud. It is Ready once Strettch serves it (status
/// ACTIVE), which needs the domain's nameservers set at its registrar: while it is ACTIVATING, the
/// Ready condition's message says which nameservers to set.
// kube's printcolumn(...) repeats `type_ =`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "strettch.stratus.dev",
    version = "v1alpha1",
    kind = "Domain",
    namespaced,
    status = "DomainStatus",
    shortname = "dom",
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
        name = "DOMAIN",
        type_ = "string",
        json_path = ".spec.forProvider.domain"
    ),
    printcolumn(
        name = "STATUS",
        type_ = "string",
        json_path = ".status.atProvider.status"
    ),
    printcolumn(
        name = "NAMESERVERS",
        type_ = "string",
        json_path = ".status.atProvider.nameservers"
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
    validation = crate::api::field_immutable_once_created("domain", "domain cannot be changed once the zone exists (status.atProvider.id is set): create a new Domain to change it")
)]
#[serde(rename_all = "camelCase")]
pub struct DomainSpec {
    /// The ProviderConfig with the endpoint and credentials to use.
    #[serde(default)]
    pub provider_config_ref: ProviderConfigReference,
    /// Delete (default) removes the zone, and every record in it, with this object; Orphan
    /// leaves it in Strettch.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the operator may do: ["*"] (default) for everything, ["Observe"] to only report.
    #[serde(default = "default_management_policies")]
    pub management_policies: Vec<ManagementPolicy>,
    /// The desired zone, as the Strettch API names it.
    pub for_provider: DomainParameters,
}

/// Desired state of a DNS zone.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DomainParameters {
    /// The domain name, e.g. example.com (at least two labels; Strettch stores it lower-case,
    /// without a trailing dot). One zone per name: a name that is, or lies under or above, a
    /// zone already registered is refused (Conflict). Immutable once the zone exists: create a
    /// new Domain instead.
    #[schemars(length(min = 1, max = 253))]
    pub domain: String,
}

/// Observed state of a zone.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DomainStatus {
    #[serde(flatten)]
    pub managed: ManagedStatus,
    /// The zone as the cloud last reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_provider: Option<DomainObservation>,
}

/// The zone as Strettch reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DomainObservation {
    /// The cloud's id of the zone; DnsRecords can name it in spec.forProvider.domainId.
    pub id: String,
    /// The domain name as Strettch stores it (lower-case, no trailing dot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// ACTIVATING (waiting for the nameservers to be set at the registrar), ACTIVE (served) or
    /// INACTIVE (activation failed: the nameservers are not set correctly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The nameservers to set at the domain's registrar.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// When the cloud created it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the cloud last changed it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}
