//! CloudAPI wire types: the JSON both dialects speak, written from the contract
//! (`reference/cloudapi/README.md`, seeds 001–003), never from the sandbox's types.
//!
//! One object (a project, a deployment, a created key) is the object itself in both dialects;
//! lists are `{"data": [...], "next_cursor", "has_more"}` (`cloudapi`) or `{"data": [...],
//! "meta": {"requestId"}}` (`cloudplatform`), unwrapped by [`super::wire::CloudApiWire`].
//! Fields the contract marks *assumed* are optional here, so an API that leaves them out still
//! parses.

use serde::{Deserialize, Serialize};

/// A credential value the API shows once (a created key's `key`, a token's `token`). Its
/// `Debug` prints the length only, so it never reaches a log line through a `{:?}`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Credential(String);

impl Credential {
    /// The value, for the connection Secret only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({} chars)", self.0.len())
    }
}

/// A project (both dialects). `region` and `status` are `cloudapi`'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// `POST /v1/projects`: `{name, region}` (`cloudapi`) or `{name}` (`cloudplatform`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectCreate {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// `PATCH /v1/projects/{id}`: project metadata (the name; the region is fixed at create).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `DELETE /v1/projects/{id}`: `{"deleted": true, "id"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Deleted {
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub id: Option<String>,
}

/// Deployment states (`succeeded` is documented; the others are *assumed*).
pub mod deployment_status {
    pub const QUEUED: &str = "queued";
    pub const BUILDING: &str = "building";
    pub const SUCCEEDED: &str = "succeeded";
    pub const FAILED: &str = "failed";
}

/// A deployment (seed 001): a build of one commit of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub project_id: String,
    pub status: String,
    pub commit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Whether it is the project's live release (*assumed* field). Absent: the newest
    /// succeeded deployment is taken as live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<bool>,
}

impl Deployment {
    pub fn in_progress(&self) -> bool {
        matches!(
            self.status.as_str(),
            deployment_status::QUEUED | deployment_status::BUILDING
        )
    }

    pub fn succeeded(&self) -> bool {
        self.status == deployment_status::SUCCEEDED
    }

    pub fn failed(&self) -> bool {
        self.status == deployment_status::FAILED
    }
}

/// `POST /v1/deployments` (*assumed* body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentCreate {
    pub project_id: String,
    pub commit: String,
}

/// One structured log line (`GET /v1/logs`, *assumed* shape).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LogLine {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub deployment_id: Option<String>,
    #[serde(default)]
    pub message: String,
}

/// `POST /v1/keys` (seed 003), sent with the dashboard session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCreate {
    pub project_id: String,
}

/// A created API key: the value is in this answer only.
#[derive(Debug, Clone, Deserialize)]
pub struct IssuedKey {
    pub id: String,
    pub key: Credential,
    #[serde(default)]
    pub project_id: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// `DELETE /v1/keys/{id}`, `DELETE /v1/tokens/{id}`: `{"id", "revoked": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Revoked {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub revoked: bool,
}

/// `POST /v1/tokens` (seed 003).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCreate {
    pub name: String,
    pub scopes: Vec<String>,
}

/// A token as listed (`GET /v1/tokens`, *assumed*): never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

/// A created token: the value is in this answer only.
#[derive(Debug, Clone, Deserialize)]
pub struct IssuedToken {
    pub id: String,
    pub token: Credential,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

impl IssuedToken {
    /// The token as a listing shows it.
    pub fn listed(&self) -> Token {
        Token {
            id: self.id.clone(),
            name: self.name.clone(),
            scopes: self.scopes.clone(),
            created_at: self.created_at.clone(),
        }
    }
}

/// `GET /v1/usage`: `cloudapi` says `{period_start, period_end, requests, overage}`,
/// `cloudplatform` `{month, requests, projects}`; both fields sets are optional here.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub requests: Option<u64>,
    #[serde(default)]
    pub period_start: Option<String>,
    #[serde(default)]
    pub period_end: Option<String>,
    #[serde(default)]
    pub overage: Option<u64>,
    #[serde(default)]
    pub month: Option<String>,
    #[serde(default)]
    pub projects: Option<u64>,
}

/// The error body: `{status, code, message, request_id}` (`cloudapi`, 002's FAQ shape) or
/// `{code, message, details}` (`cloudplatform`).
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub status: Option<u16>,
    pub code: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub details: Option<ErrorDetails>,
}

/// `details` of a `cloudplatform` error: the field refused, or which limit a 429 hit.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorDetails {
    #[serde(default)]
    pub field: Option<String>,
    /// `key` or `workspace` on a 429.
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub window_seconds: Option<f64>,
    #[serde(default)]
    pub retry_after: Option<f64>,
}

/// The error codes (002's `NOT_FOUND` and its style).
pub mod codes {
    use crate::cloud::ErrorClass;
    use crate::cloud::error::classify_status;

    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const CONFLICT: &str = "CONFLICT";
    pub const IDEMPOTENCY_KEY_IN_USE: &str = "IDEMPOTENCY_KEY_IN_USE";
    pub const IDEMPOTENCY_KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
    pub const VALIDATION_ERROR: &str = "VALIDATION_ERROR";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";

    /// 429 → rate limited; 401/403 → a human must fix the credential; 404 → not found;
    /// 409/422 → terminal (the spec must change) — except a key still in use by its first
    /// request, which is worth asking again.
    pub fn classify(status: u16, code: &str) -> ErrorClass {
        match code {
            RATE_LIMITED => ErrorClass::RateLimited,
            IDEMPOTENCY_KEY_IN_USE => ErrorClass::Retryable,
            INTERNAL_ERROR => ErrorClass::Retryable,
            UNAUTHORIZED | FORBIDDEN => ErrorClass::NeedsHuman,
            NOT_FOUND => ErrorClass::NotFound,
            _ => classify_status(status),
        }
    }
}
