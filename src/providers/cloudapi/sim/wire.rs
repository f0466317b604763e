//! The sandbox's own model of CloudAPI's wire, written from the reference
//! (`reference/cloudapi/README.md` and seeds 001–003), never from a client's types: what the
//! API answers, per dialect where they differ. Fields marked *assumed* are not in any seed
//! (docs/sim-cloudapi.md lists them).

use serde::{Deserialize, Serialize};

/// The wire profile the sandbox speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// api.cloudapi.dev (seeds 001 + 003): cursor pages, `{status, code, message, request_id}`
    /// errors, 1,000 requests/minute per key with `X-RateLimit-*` headers.
    Cloudapi,
    /// Cloud API Platform (seed 002): whole lists with `meta.requestId`,
    /// `{code, message, details}` errors, workspace-scoped keys, 600 requests/10 minutes per
    /// workspace and 120/minute per key.
    Cloudplatform,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Cloudapi => "cloudapi",
            Dialect::Cloudplatform => "cloudplatform",
        }
    }

    /// The prefix of project ids: `proj_8f3a2b` (001) or `prj_77f2` (002).
    pub fn project_prefix(self) -> &'static str {
        match self {
            Dialect::Cloudapi => "proj_",
            Dialect::Cloudplatform => "prj_",
        }
    }
}

/// A project. `region` and `status` only in `cloudapi` (001); `cloudplatform` answers
/// `{id, name, created_at}` (002).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub created_at: String,
    /// Always `active` (`cloudapi` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// `DELETE /v1/projects/{id}`: `{"deleted": true, "id"}` (002; *assumed* in `cloudapi`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub deleted: bool,
    pub id: String,
}

/// A deployment's status: `queued → building → succeeded | failed` (only `succeeded` is in a
/// seed; the others are *assumed*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    Queued,
    Building,
    Succeeded,
    Failed,
}

impl DeploymentStatus {
    pub const ALL: [DeploymentStatus; 4] = [
        DeploymentStatus::Queued,
        DeploymentStatus::Building,
        DeploymentStatus::Succeeded,
        DeploymentStatus::Failed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DeploymentStatus::Queued => "queued",
            DeploymentStatus::Building => "building",
            DeploymentStatus::Succeeded => "succeeded",
            DeploymentStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.name() == s)
    }

    pub fn is_final(self) -> bool {
        matches!(self, DeploymentStatus::Succeeded | DeploymentStatus::Failed)
    }
}

/// A deployment: 001's `{id, project_id, status, commit}` plus `created_at` (README) and
/// `current` (*assumed*: whether it is the project's live release).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub project_id: String,
    pub status: DeploymentStatus,
    pub commit: String,
    pub created_at: String,
    pub current: bool,
}

/// A log line's level, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }
}

/// One structured log line (*assumed* shape: the seeds only say "structured logs").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub id: String,
    pub timestamp: String,
    pub level: Level,
    pub project_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    pub message: String,
}

/// `POST /v1/keys`: the key, shown only in this answer (003; shape *assumed*).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCreated {
    pub id: String,
    pub key: String,
    pub project_id: String,
    pub created_at: String,
}

/// `DELETE /v1/keys/{id}` and (*assumed*) `DELETE /v1/tokens/{id}`: `{"id", "revoked": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub id: String,
    pub revoked: bool,
}

/// A key as `/_sim/keys` shows it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: String,
    pub project_id: String,
    pub created_at: String,
    pub revoked: bool,
    /// The key's fingerprint (`sim::key_fingerprint`), to find its counters in the stats.
    pub fingerprint: String,
}

/// `POST /v1/tokens`: `{id, token, scopes}` (003), plus `name` and `created_at` (*assumed*);
/// the value is shown only here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCreated {
    pub id: String,
    pub token: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
}

/// A token as `GET /v1/tokens` (*assumed*) lists it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: String,
}

/// A user (003): read-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub role: String,
}

/// `GET /v1/usage` in `cloudapi` (003).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudapiUsage {
    pub period_start: String,
    pub period_end: String,
    pub requests: u64,
    pub overage: u64,
}

/// `GET /v1/usage` in `cloudplatform` (002).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudplatformUsage {
    pub month: String,
    pub requests: u64,
    pub projects: u64,
}

/// The scopes a token may have (*assumed* set: 003's `users:read` and `usage:read`, and the
/// read/write pairs of the other documented resources).
pub const TOKEN_SCOPES: &[&str] = &[
    "users:read",
    "usage:read",
    "projects:read",
    "projects:write",
    "deployments:read",
    "deployments:write",
    "logs:read",
];

/// Error codes (`NOT_FOUND` is the seeds'; the others follow its style, *assumed*).
pub mod codes {
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const VALIDATION_ERROR: &str = "VALIDATION_ERROR";
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    pub const CONFLICT: &str = "CONFLICT";
    pub const IDEMPOTENCY_KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
    pub const IDEMPOTENCY_KEY_IN_USE: &str = "IDEMPOTENCY_KEY_IN_USE";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
}

/// A project as `/_sim/projects` shows it: with its workspace and current deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectInfo {
    pub id: String,
    pub workspace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub created_at: String,
    pub current: Option<String>,
}

/// A token as `/_sim/tokens` shows it: with its account, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub account: String,
    pub name: String,
    pub scopes: Vec<String>,
}
