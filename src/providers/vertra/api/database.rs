//! Database: a Vertra Cloud managed database, with its credentials in a Secret.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{PowerState, WorkspaceReference};
use crate::api::common::{
    DeletionPolicy, ManagedStatus, ManagementPolicy, ProviderConfigReference, SecretReference,
    default_management_policies,
};

/// A managed database on Vertra Cloud. Its connection details (host, port, username, password,
/// client certificate, key, CA bundle and a URI) are written to the Secret named by
/// `writeConnectionSecretToRef`.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "vertra.stratus.dev",
    version = "v1alpha1",
    kind = "Database",
    namespaced,
    status = "DatabaseStatus",
    shortname = "vdb",
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
        name = "ENGINE",
        type_ = "string",
        json_path = ".spec.forProvider.engine"
    ),
    printcolumn(
        name = "HOST",
        type_ = "string",
        json_path = ".status.atProvider.host",
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
    validation = crate::api::field_immutable_once_created("engine", "engine cannot be changed once the database exists (status.atProvider.id is set): create a new Database to change it"),
    validation = kube::core::Rule::new("!has(self.spec.forProvider.workspaceRef) || !has(self.spec.forProvider.workspaceId)").message(kube::core::Message::Message("set spec.forProvider.workspaceRef or spec.forProvider.workspaceId, not both".into()))
)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSpec {
    /// The ProviderConfig (provider: vertra) with the endpoint and credentials to use.
    #[serde(default)]
    pub provider_config_ref: ProviderConfigReference,
    /// Delete (default) deletes the database with this object (Vertra takes a safety snapshot
    /// first); Orphan leaves it and its Secret.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the operator may do: ["*"] (default) for everything, ["Observe"] to only report.
    #[serde(default = "default_management_policies")]
    pub management_policies: Vec<ManagementPolicy>,
    /// The desired database.
    pub for_provider: DatabaseParameters,
    /// Write the connection details to this Secret (type `stratus.dev/connection`, owned by
    /// this object) in the object's namespace. The operator never takes over a Secret it did
    /// not create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_connection_secret_to_ref: Option<SecretReference>,
}

/// Desired state of a database.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseParameters {
    /// PostgreSQL, MongoDB, Redis or MySQL. Immutable once the database exists.
    pub engine: Engine,
    /// Name of the database, 1-50 characters.
    #[schemars(length(min = 1, max = 50))]
    pub name: String,
    /// Description, at most 128 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub description: Option<String>,
    /// Memory in MB: at least 1024 (Redis: 512). Storage follows memory.
    #[serde(rename = "memoryMB")]
    #[schemars(range(min = 512, max = 1048576))]
    pub memory_mb: u64,
    /// The Workspace object (same namespace) the database belongs to. Set at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_ref: Option<WorkspaceReference>,
    /// The id of the Vertra workspace the database belongs to, when it is not managed here.
    /// Set at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub workspace_id: Option<String>,
    /// Create the database from this database snapshot id (its engine must match). Only read
    /// at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub from_snapshot: Option<String>,
    /// Running (default) or Stopped; the operator starts or stops the database to match.
    #[serde(default)]
    pub power_state: PowerState,
    /// The database password.
    #[serde(default)]
    pub credentials: CredentialsParameters,
}

/// The password's lifecycle.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsParameters {
    /// Change this to any new string (a date, a counter) to set a new password: the operator
    /// resets it and writes the new one to the Secret. A reset DISCONNECTS every connected
    /// client and rebuilds the database's access: clients must reconnect with the new
    /// password. The password is set once after creation and never otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub rotation_nonce: Option<String>,
}

/// A database engine.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, schemars::JsonSchema)]
pub enum Engine {
    PostgreSQL,
    MongoDB,
    Redis,
    MySQL,
}

impl Engine {
    /// The API's `type` number.
    pub fn type_number(self) -> u64 {
        match self {
            Engine::PostgreSQL => 1,
            Engine::MongoDB => 2,
            Engine::Redis => 3,
            Engine::MySQL => 4,
        }
    }

    pub fn from_type_number(n: u64) -> Option<Self> {
        Some(match n {
            1 => Engine::PostgreSQL,
            2 => Engine::MongoDB,
            3 => Engine::Redis,
            4 => Engine::MySQL,
            _ => return None,
        })
    }

    /// The user every connection uses (fixed per engine).
    pub fn username(self) -> &'static str {
        match self {
            Engine::PostgreSQL => "postgres",
            Engine::MongoDB | Engine::Redis => "default",
            Engine::MySQL => "root",
        }
    }

    /// The smallest memory the API accepts, MB.
    pub fn min_memory_mb(self) -> u64 {
        match self {
            Engine::Redis => 512,
            _ => 1024,
        }
    }
}

/// Observed state of a database.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseStatus {
    #[serde(flatten)]
    pub managed: ManagedStatus,
    /// The database as the cloud last reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_provider: Option<DatabaseObservation>,
}

/// The database as Vertra reports it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseObservation {
    /// The cloud's id of the database.
    pub id: String,
    /// up or down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Host to connect to (TLS with the client certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port to connect to (unique per database).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u64>,
    /// Memory in MB.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "memoryMB")]
    pub memory_mb: Option<u64>,
    /// Since when the platform has kept it stopped (credits exhausted, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_since: Option<String>,
    /// When the cloud created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}
