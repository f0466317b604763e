//! DnsRecord: one record in a Strettch-hosted DNS zone.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::api::common::{
    DeletionPolicy, ManagedStatus, ManagementPolicy, ProviderConfigReference,
    default_management_policies,
};

/// A DNS record in a zone hosted by Strettch Cloud. The zone is a Domain in the same namespace
/// (domainRef) or a zone id (domainId); the value is a literal (value) or the address of a
/// Compute in the same namespace (valueFrom), which the record follows when it changes.
// kube's printcolumn(...) repeats `type_ =`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "strettch.stratus.dev",
    version = "v1alpha1",
    kind = "DnsRecord",
    namespaced,
    status = "DnsRecordStatus",
    shortname = "dnsr",
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
        name = "RECORD",
        type_ = "string",
        json_path = ".spec.forProvider.name"
    ),
    printcolumn(name = "TYPE", type_ = "string", json_path = ".spec.forProvider.type"),
    printcolumn(
        name = "VALUE",
        type_ = "string",
        json_path = ".status.atProvider.value"
    ),
    printcolumn(
        name = "TTL",
        type_ = "integer",
        json_path = ".status.atProvider.ttl",
        priority = 1
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
    validation = crate::api::immutable_once_created(
        "(has(self.spec.forProvider.domainRef) ? self.spec.forProvider.domainRef.name : '') == (has(oldSelf.spec.forProvider.domainRef) ? oldSelf.spec.forProvider.domainRef.name : '') && (has(self.spec.forProvider.domainId) ? self.spec.forProvider.domainId : '') == (has(oldSelf.spec.forProvider.domainId) ? oldSelf.spec.forProvider.domainId : '')",
        "the zone (domainRef or domainId) cannot be changed once the record exists (status.atProvider.id is set): create a new DnsRecord to put a record in another zone"
    ),
    validation = crate::api::field_immutable_once_created("name", "name cannot be changed once the record exists (status.atProvider.id is set): create a new DnsRecord to change it"),
    validation = crate::api::field_immutable_once_created("type", "type cannot be changed once the record exists (status.atProvider.id is set): create a new DnsRecord to change it")
)]
#[serde(rename_all = "camelCase")]
pub struct DnsRecordSpec {
    /// The ProviderConfig with the endpoint and credentials to use (the account of the zone).
    #[serde(default)]
    pub provider_config_ref: ProviderConfigReference,
    /// Delete (default) removes the record from the zone with this object; Orphan leaves it.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the operator may do: ["*"] (default) for everything, ["Observe"] to only report.
    #[serde(default = "default_management_policies")]
    pub management_policies: Vec<ManagementPolicy>,
    /// The desired record, as the Strettch API names it.
    pub for_provider: DnsRecordParameters,
}

/// Desired state of a DNS record.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.domainRef) != has(self.domainId)").message("set exactly one of domainRef and domainId"),
    validation = Rule::new("has(self.value) != has(self.valueFrom)").message("set exactly one of value and valueFrom"),
    validation = Rule::new("!(self.type == 'MX' || self.type == 'SRV') || has(self.priority)").message("MX and SRV records need a priority"),
    validation = Rule::new("self.type == 'MX' || self.type == 'SRV' || !has(self.priority)").message("priority is only allowed on MX and SRV records"),
    validation = Rule::new("self.type != 'SRV' || (has(self.weight) && has(self.port))").message("SRV records need a weight and a port"),
    validation = Rule::new("self.type == 'SRV' || (!has(self.weight) && !has(self.port))").message("weight and port are only allowed on SRV records"),
    validation = Rule::new("!has(self.valueFrom) || self.type == 'A'").message("valueFrom gives an IPv4 address: use it with A records"),
    validation = Rule::new(r"self.type != 'A' || !has(self.value) || self.value.matches('^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])([.](25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$')").message("the value of an A record must be an IPv4 address such as 192.0.2.1"),
    validation = Rule::new(r"!(self.type in ['CNAME', 'MX', 'NS', 'SRV']) || !has(self.value) || self.value.matches('^([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?[.])+[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?[.]?$')").message("the value of a CNAME, MX, NS or SRV record must be a fully qualified hostname such as host.example.com")
)]
pub struct DnsRecordParameters {
    /// The zone: a Domain in the same namespace. The record is created once that Domain is
    /// ACTIVE. Set exactly one of domainRef and domainId. Immutable once the record exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_ref: Option<DomainReference>,
    /// The zone by its Strettch id (a Domain's status.atProvider.id), for a zone not managed in
    /// this namespace. Set exactly one of domainRef and domainId. Immutable once the record exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub domain_id: Option<String>,
    /// The record name relative to the zone: `@` for the apex, or labels such as www, _dmarc,
    /// _sip._tcp, *.dev (letters, digits, hyphens, underscores; no trailing dot). Immutable once
    /// the record exists.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The record type: A, AAAA, CNAME, MX, TXT, SRV or NS. Immutable once the record exists.
    #[serde(rename = "type")]
    pub record_type: DnsRecordType,
    /// The record's value: an IPv4 address (A), an IPv6 address (AAAA), a fully qualified
    /// hostname (CNAME, MX, NS, SRV target) or text (TXT, up to 2048 characters). Set exactly
    /// one of value and valueFrom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    pub value: Option<String>,
    /// Take the value from another object instead: a Compute's address (A records), or a
    /// Vertra Application's custom-domain record (CNAME or TXT). The record follows the source
    /// when it changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueSource>,
    /// Time to live in seconds, 60 to 86400; Strettch's default, 60, when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60, max = 86400))]
    pub ttl: Option<u32>,
    /// Preference of an MX or SRV record (0-65535, lower first). Required on MX and SRV,
    /// refused on other types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
    /// Weight of an SRV record (0-65535). Required on SRV, refused on other types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    /// Port of an SRV record's target (0-65535). Required on SRV, refused on other types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// A note stored with the record (up to 255 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub comment: Option<String>,
}

/// DNS record types Strettch serves.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum DnsRecordType {
    A,
    #[allow(clippy::upper_case_acronyms)]
    AAAA,
    #[allow(clippy::upper_case_acronyms)]
    CNAME,
    MX,
    #[allow(clippy::upper_case_acronyms)]
    TXT,
    #[allow(clippy::upper_case_acronyms)]
    SRV,
    NS,
}

/// A Domain in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub struct DomainReference {
    /// Name of the Domain object.
    #[schemars(length(min = 1))]
    pub name: String,
}

/// Where a record's value comes from: exactly one of computeRef and applicationRef.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueSource {
    /// An address of a Compute in the same namespace, from its status.atProvider (A records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_ref: Option<ComputeAddressReference>,
    /// A record a Vertra Application's custom domain needs, from its
    /// status.atProvider.dnsRecords (CNAME or TXT records): so the domain is validated by a
    /// record in a Strettch zone, declared in the same manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_ref: Option<ApplicationRecordReference>,
}

/// A record a Vertra Application in the same namespace needs for its custom domain.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub struct ApplicationRecordReference {
    /// Name of the Application object (vertra.stratus.dev).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Which of its records: CNAME (the domain pointing at the app) or TXT (the ownership
    /// challenge). Must match this record's type.
    #[serde(rename = "type")]
    pub record_type: ApplicationRecordType,
}

/// The record types a Vertra custom domain needs.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum ApplicationRecordType {
    #[allow(clippy::upper_case_acronyms)]
    CNAME,
    #[allow(clippy::upper_case_acronyms)]
    TXT,
}

/// An address of a Compute.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub struct ComputeAddressReference {
    /// Name of the Compute object.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Which address: ipv4 (the public one, default) or privateIpv4.
    #[serde(default)]
    pub field: ComputeAddressField,
}

/// A Compute address field.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum ComputeAddressField {
    /// status.atProvider.ipv4, the public address.
    #[default]
    #[serde(rename = "ipv4")]
    Ipv4,
    /// status.atProvider.privateIpv4.
    #[serde(rename = "privateIpv4")]
    PrivateIpv4,
}

impl ComputeAddressField {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ipv4 => "ipv4",
            Self::PrivateIpv4 => "privateIpv4",
        }
    }
}

/// Observed state of a record.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsRecordStatus {
    #[serde(flatten)]
    pub managed: ManagedStatus,
    /// The record as the cloud last reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_provider: Option<DnsRecordObservation>,
}

/// The record as Strettch reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsRecordObservation {
    /// The cloud's id of the record.
    pub id: String,
    /// The id of the zone the record is in.
    pub domain_id: String,
    /// Name within the zone (@ for the apex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Record type (A, AAAA, CNAME, MX, TXT, SRV, NS).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    /// The value Strettch serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Time to live in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// Priority (MX, SRV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
    /// Weight (SRV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    /// Port (SRV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The note attached to the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When the cloud created it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the cloud last changed it (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}
