//! The sandbox's own model of Vertra's API, written from api-current.md (§5, §6): what its
//! answers carry. Never the client's types (`providers::vertra::model`): a field name the client
//! gets wrong must not be wrong here too. Tests that read sandbox answers may decode into these.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Error codes the sandbox answers (§2, §3).
pub mod codes {
    pub const VALIDATION_ERROR: &str = "VALIDATION_ERROR";
    pub const SOURCE_REQUIRED: &str = "SOURCE_REQUIRED";
    pub const SOURCE_CONFLICT: &str = "SOURCE_CONFLICT";
    pub const INVALID_ZIP: &str = "INVALID_ZIP";
    pub const ZIP_TOO_SMALL: &str = "ZIP_TOO_SMALL";
    pub const FILE_TOO_LARGE: &str = "FILE_TOO_LARGE";
    pub const MAIN_FILE_NOT_FOUND: &str = "MAIN_FILE_NOT_FOUND";
    pub const NO_FILE_UPLOADED: &str = "NO_FILE_UPLOADED";
    pub const INVALID_CUSTOM_DOMAIN_FORMAT: &str = "INVALID_CUSTOM_DOMAIN_FORMAT";
    pub const DOMAIN_ALREADY_IN_USE: &str = "DOMAIN_ALREADY_IN_USE";
    pub const APP_ALREADY_PUBLISHED: &str = "APP_ALREADY_PUBLISHED";
    pub const APP_HAS_NO_SUBDOMAIN: &str = "APP_HAS_NO_SUBDOMAIN";
    pub const AUTH_TOKEN_MISSING: &str = "AUTH_TOKEN_MISSING";
    pub const API_KEY_INVALID: &str = "API_KEY_INVALID";
    pub const API_KEY_SCOPE_DENIED: &str = "API_KEY_SCOPE_DENIED";
    pub const PLAN_RESTRICTED_FEATURE: &str = "PLAN_RESTRICTED_FEATURE";
    pub const FREE_PLAN_SUSPENDED: &str = "FREE_PLAN_SUSPENDED";
    pub const APP_SHIELD_COOLDOWN: &str = "APP_SHIELD_COOLDOWN";
    /// The sandbox's code for starting an app or database the platform stopped
    /// (`offline_since`): the account is out of credits. No source names one.
    pub const INSUFFICIENT_CREDITS: &str = "INSUFFICIENT_CREDITS";
    pub const APP_NOT_FOUND: &str = "APP_NOT_FOUND";
    pub const DATABASE_NOT_FOUND: &str = "DATABASE_NOT_FOUND";
    pub const DATABASE_NOT_FOUND_OR_FORBIDDEN: &str = "DATABASE_NOT_FOUND_OR_FORBIDDEN";
    pub const SNAPSHOT_NOT_FOUND: &str = "SNAPSHOT_NOT_FOUND";
    pub const ENV_NOT_FOUND: &str = "ENV_NOT_FOUND";
    pub const NO_CUSTOM_DOMAIN: &str = "NO_CUSTOM_DOMAIN";
    pub const WORKSPACE_NOT_FOUND: &str = "WORKSPACE_NOT_FOUND";
    /// Unknown path, or a known path with another method (the sandbox's choice).
    pub const ROUTE_NOT_FOUND: &str = "ROUTE_NOT_FOUND";
    pub const OPERATION_IN_PROGRESS: &str = "OPERATION_IN_PROGRESS";
    pub const SUBDOMAIN_TAKEN: &str = "SUBDOMAIN_TAKEN";
    pub const WORKSPACE_NAME_ALREADY_EXISTS: &str = "WORKSPACE_NAME_ALREADY_EXISTS";
    pub const BUILD_FAILED: &str = "BUILD_FAILED";
    pub const RATE_LIMIT_EXCEEDED: &str = "RATE_LIMIT_EXCEEDED";
    pub const DAILY_QUOTA_EXCEEDED: &str = "DAILY_QUOTA_EXCEEDED";
    pub const DEPLOY_RATE_LIMITED: &str = "DEPLOY_RATE_LIMITED";
    pub const SUBDOMAIN_CHANGE_RATE_LIMITED: &str = "SUBDOMAIN_CHANGE_RATE_LIMITED";
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
    pub const SNAPSHOT_FAILED: &str = "SNAPSHOT_FAILED";
}

/// `{"code", "message"?, "details"?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// `up` or `down` (apps and databases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Up,
    Down,
}

/// An app's shield cooldown: stopped for abuse until `until`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShieldCooldown {
    pub until: String,
    /// `burst` or `rate_limit`.
    pub reason: String,
    /// `in` or `out`.
    pub direction: String,
    pub strikes: u32,
}

/// An application (TA, GA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub id: String,
    pub cluster: u8,
    /// 1 bot (private), 2 website (published).
    #[serde(rename = "type")]
    pub kind: u8,
    pub name: String,
    pub description: Option<String>,
    pub owner_id: String,
    pub owner_plan_id: u32,
    pub language: String,
    /// MB.
    pub ram: u64,
    pub status: Status,
    /// The published host (`<label>.vertraweb.app`), or null when private.
    pub subdomain: Option<String>,
    /// `https://` + the custom domain, else the subdomain, else null.
    pub public_url: Option<String>,
    pub github: Option<Value>,
    pub custom_domain: Option<String>,
    pub last_snapshot: Option<Value>,
    pub created_at: String,
    pub updated_at: String,
    pub main_file: String,
    pub version: String,
    pub start_command: Option<String>,
    pub build_command: Option<String>,
    pub offline_since: Option<String>,
    pub missing_dependencies: Vec<String>,
    pub shield_cooldown: Option<ShieldCooldown>,
}

/// `POST /v1/apps`'s answer: the app and the directories stripped from the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppCreated {
    #[serde(flatten)]
    pub app: App,
    pub removed_directories: Vec<String>,
}

/// `POST /v1/apps/:id/files/upload`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Uploaded {
    pub app_id: String,
    pub updated_at: String,
    pub missing_dependencies: Vec<String>,
    pub removed_directories: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub total: String,
    pub now: String,
}

/// An entry of `GET /v1/apps/status`, and `GET /v1/apps/:id/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppUsage {
    pub id: String,
    /// `"25.50%"`.
    pub cpu: String,
    /// `"512.00 MB"`.
    pub ram: String,
    pub storage: String,
    pub network: Option<Network>,
    pub running: bool,
    pub installing: bool,
    /// Seconds since the app started; null when it is not running.
    pub uptime: Option<u64>,
}

/// `POST/DELETE /v1/apps/:id/network/publish`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Publication {
    pub subdomain: Option<String>,
    pub custom_domain: Option<String>,
    #[serde(rename = "type")]
    pub kind: u8,
}

/// An environment variable (`GET /v1/apps/:id/envs`), value decrypted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Env {
    pub id: String,
    pub key: String,
    pub value: String,
    pub note: Option<String>,
    pub created_at: String,
}

/// A record a custom domain needs (`GET /v1/apps/:id/network/dns`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsRecord {
    /// `CNAME` or `TXT`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub value: Option<String>,
    /// `pending_validation` or `active`.
    pub status: String,
}

/// A managed database (TD, GD). No credentials: those have their own routes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Database {
    pub id: String,
    pub cluster: u8,
    /// 1 PostgreSQL, 2 MongoDB, 3 Redis, 4 MySQL.
    #[serde(rename = "type")]
    pub kind: u8,
    pub name: String,
    pub description: Option<String>,
    pub owner_id: String,
    pub owner_plan_id: u32,
    pub status: Status,
    pub ram: u64,
    pub host: String,
    pub port: u32,
    pub created_at: String,
    pub updated_at: String,
    pub last_snapshot: Option<Value>,
    pub offline_since: Option<String>,
}

/// An entry of `GET /v1/databases/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseUsage {
    pub id: String,
    pub cpu: String,
    pub ram: String,
    pub storage: String,
    pub running: bool,
}

/// `GET /v1/databases/:id/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseStatus {
    pub id: String,
    pub cpu: String,
    pub ram: String,
    pub storage: String,
    /// `running` or `stopped`.
    pub status: String,
    pub running: bool,
    pub network: Option<Network>,
    pub uptime: Option<u64>,
}

/// `POST /v1/databases/:id/credentials/reset`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Password {
    pub password: String,
}

/// `GET /v1/databases/:id/credentials/certificate`: PEM text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Certificate {
    /// The client certificate.
    pub crt: String,
    /// The client key.
    pub key: String,
    /// Key, certificate and CA, concatenated.
    pub pem: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DisplayName {
    pub display_name: String,
}

/// A workspace (TW, GW).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub owner_id: String,
    pub owner: DisplayName,
    pub members_count: u32,
    pub deleted_at: Option<String>,
    /// The owner lost the Enterprise plan: writes are refused.
    pub frozen: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberUser {
    pub display_name: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: String,
    pub role_id: String,
    pub role_name: String,
    pub joined_at: String,
    pub expires_at: Option<String>,
    pub user: MemberUser,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub permissions: Vec<String>,
    pub position: u32,
}

/// `GET /v1/workspaces/:id`: the workspace with its members, roles and resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceInfo {
    #[serde(flatten)]
    pub workspace: Workspace,
    pub members: Vec<Member>,
    pub roles: Vec<Role>,
    pub applications: Vec<App>,
    pub databases: Vec<Database>,
    pub permissions: Vec<String>,
    pub is_owner: bool,
    pub owner_plan_id: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub limit: u64,
    pub used: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanInfo {
    pub id: u32,
    pub name: String,
    pub expires_at: Option<String>,
    pub duration: Option<u32>,
    pub memory: Memory,
}

/// `GET /v1/users/me`: the account, its plan and every app and database it has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub id: String,
    pub name: String,
    pub email: String,
    pub plan_id: u32,
    pub language: String,
    pub workspace_invites_enabled: bool,
    pub created_at: String,
    pub updated_at: String,
    pub plan: PlanInfo,
    pub applications: Vec<App>,
    pub databases: Vec<Database>,
    pub connections: Vec<Value>,
    pub resource_organization: Option<Value>,
}
