//! Application: a Vertra Cloud hosted application, deployed from an archive, a snapshot or a
//! Flux source.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{PowerState, WorkspaceReference};
use crate::api::common::{
    DeletionPolicy, ManagedStatus, ManagementPolicy, ProviderConfigReference,
    default_management_policies,
};

/// An application on Vertra Cloud. A change of `source` deploys the new code; settings change
/// through the update route; env values may come from Secrets and never appear in the status.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vertra.stratus.dev",
    version = "v1alpha1",
    kind = "Application",
    namespaced,
    status = "ApplicationStatus",
    shortname = "vapp",
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
        name = "URL",
        type_ = "string",
        json_path = ".status.atProvider.publicURL"
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
    validation = kube::core::Rule::new("!has(self.spec.forProvider.workspaceRef) || !has(self.spec.forProvider.workspaceId)").message(kube::core::Message::Message("set spec.forProvider.workspaceRef or spec.forProvider.workspaceId, not both".into()))
)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// The ProviderConfig (provider: vertra) with the endpoint and credentials to use.
    #[serde(default)]
    pub provider_config_ref: ProviderConfigReference,
    /// Delete (default) deletes the app with this object; Orphan leaves it running.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the operator may do: ["*"] (default) for everything, ["Observe"] to only report.
    #[serde(default = "default_management_policies")]
    pub management_policies: Vec<ManagementPolicy>,
    /// The desired application.
    pub for_provider: ApplicationParameters,
}

/// Desired state of an application.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationParameters {
    /// Name of the app, 1-50 characters.
    #[schemars(length(min = 1, max = 50))]
    pub name: String,
    /// Description, at most 128 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub description: Option<String>,
    /// Memory in MB, at least 100 (512 when published).
    #[serde(rename = "memoryMB")]
    #[schemars(range(min = 100, max = 1048576))]
    pub memory_mb: u64,
    /// Runtime: javascript, typescript, bun, python, static, php, go, ruby, java or rust.
    #[schemars(length(min = 1, max = 32))]
    pub language: String,
    /// Runtime version: recommended (default), latest, or an exact version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub version: Option<String>,
    /// The file the runtime starts, relative to the code's root (e.g. index.js).
    #[schemars(length(min = 1, max = 512))]
    pub main_file: String,
    /// Command that starts the app instead of the runtime's default, at most 512 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub start_command: Option<String>,
    /// Command run before start on every deploy, at most 512 characters. A change counts as a
    /// deploy against the account's hourly deploy limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub build_command: Option<String>,
    /// The Workspace object (same namespace) the app belongs to. Set at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_ref: Option<WorkspaceReference>,
    /// The id of the Vertra workspace the app belongs to, when it is not managed here. Set at
    /// creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub workspace_id: Option<String>,
    /// Environment variables (at most 25). PORT, HOST, PATH and the platform's own variables
    /// cannot be set. Values from Secrets are re-read when the Secret changes; no value ever
    /// appears in the status, events or logs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 25))]
    pub env: Vec<EnvVar>,
    /// Whether and where the app is reachable from the internet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<Publish>,
    /// A custom domain for the published app (Intermediary plan or higher). The DNS records it
    /// needs are reported in status.atProvider.dnsRecords; a Strettch DnsRecord can take its
    /// value from them (valueFrom.applicationRef).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 253))]
    pub custom_domain: Option<String>,
    /// Running (default) or Stopped; the operator starts or stops the app to match.
    #[serde(default)]
    pub power_state: PowerState,
    /// Where the code comes from. A change deploys the new code.
    pub source: Source,
}

/// One environment variable. `Debug` shows its name and where the value comes from, never the
/// value.
#[derive(KubeSchema, Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    /// The variable's name (letters, digits, underscores; at most 255 characters).
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$")
    )]
    pub name: String,
    /// The value (at most 3072 characters). Prefer valueFrom for secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 3072))]
    pub value: Option<String>,
    /// Where to read the value from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

impl std::fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("EnvVar");
        d.field("name", &self.name);
        if let Some(v) = &self.value {
            d.field("value", &format_args!("<{} bytes>", v.len()));
        }
        if let Some(from) = &self.value_from {
            d.field("value_from", from);
        }
        d.finish()
    }
}

/// Where an environment variable's value comes from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EnvVarSource {
    /// A key of a Secret in the object's namespace.
    pub secret_key_ref: SecretKeySelector,
}

/// A key of a Secret in the object's namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Key within the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Publishing the app.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Publish {
    /// Publish the app (Pro plan or higher). Unpublishing frees its subdomain and custom
    /// domain.
    pub enabled: bool,
    /// The subdomain label under vertraweb.app (3-50 of a-z, 0-9 and -; Scale plan or higher);
    /// omitted: a random one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 3, max = 50),
        regex(pattern = r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
    )]
    pub subdomain: Option<String>,
}

/// Where the code comes from: exactly one of archive, snapshotRef and fluxSourceRef.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("(has(self.archive) ? 1 : 0) + (has(self.snapshotRef) ? 1 : 0) + (has(self.fluxSourceRef) ? 1 : 0) == 1").message(kube::core::Message::Message("set exactly one of source.archive, source.snapshotRef and source.fluxSourceRef".into())))]
pub struct Source {
    /// A ZIP the operator fetches over HTTPS and checks against its digest before uploading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<Archive>,
    /// An app snapshot id to create the app from (only read at creation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub snapshot_ref: Option<String>,
    /// A Flux GitRepository, OCIRepository or Bucket whose artifact is the code: every new
    /// artifact is repackaged as a ZIP and deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flux_source_ref: Option<FluxSourceReference>,
}

/// A ZIP archive of the code.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Archive {
    /// HTTPS URL of the ZIP (at most 100 MB). Plain http:// is only fetched from a loopback or
    /// in-cluster (*.svc) host; the digest is checked either way.
    #[schemars(length(min = 8, max = 2048), regex(pattern = r"^https?://"))]
    pub url: String,
    /// The ZIP's SHA-256, 64 hex digits: a download with another digest is refused.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: String,
}

/// A Flux source object.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FluxSourceReference {
    /// GitRepository, OCIRepository or Bucket.
    pub kind: FluxSourceKind,
    /// Name of the source object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the source object: the Application's own (the default; another namespace's
    /// source is refused, since it is another team's code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// The Flux source kinds an app can deploy from.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum FluxSourceKind {
    GitRepository,
    OCIRepository,
    Bucket,
}

/// Observed state of an application.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    #[serde(flatten)]
    pub managed: ManagedStatus,
    /// The app as the cloud last reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_provider: Option<ApplicationObservation>,
}

/// The app as Vertra reports it, and what the operator deployed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationObservation {
    /// The cloud's id of the app.
    pub id: String,
    /// up or down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Whether the app's process runs.
    #[serde(default)]
    pub running: bool,
    /// Whether an install or build is under way.
    #[serde(default)]
    pub installing: bool,
    /// The URL the app answers at (its custom domain, else its subdomain).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "publicURL")]
    pub public_url: Option<String>,
    /// The published host under vertraweb.app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    /// The DNS records the custom domain needs, and whether each is validated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_records: Vec<DnsRecordRequirement>,
    /// The digest of the code last deployed by the operator (`sha256:<hex>`, or the snapshot
    /// it was created from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_digest: Option<String>,
    /// A digest of the env spec and of the resourceVersions of the Secrets it reads, as last
    /// applied (never of a value): a change writes the env vars again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_digest: Option<String>,
    /// The names of the env vars the operator wrote (never their values). When the spec drops
    /// one of them, it is removed from the app; variables set outside Kubernetes (on an
    /// adopted app, say) are left alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_names: Vec<String>,
    /// Settings or env vars were written to the running app and it has not restarted to take
    /// them yet (the restart is the next action, even if it had to wait).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart_pending: bool,
    /// Since when the platform has kept the app stopped (credits exhausted, crash loop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_since: Option<String>,
    /// Until when the platform's traffic shield holds the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shield_cooldown: Option<String>,
}

/// One DNS record a custom domain needs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsRecordRequirement {
    /// CNAME or TXT.
    #[serde(rename = "type")]
    pub record_type: String,
    /// The record's name.
    pub name: String,
    /// The value it must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// active or pending_validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}
