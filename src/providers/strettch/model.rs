//! Strettch Cloud wire types: the JSON the public API (and `stratus sim`) speaks.
//! Field names follow `shared/reference/strettch/openapi.json`; DNS follows docs/strettch-dns.md.

use serde::{Deserialize, Serialize};

/// The success envelope `{success, message, data, meta, requestId, timestamp}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    pub success: bool,
    #[serde(default)]
    pub message: Option<String>,
    pub data: T,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<PageMeta>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
}

/// The error envelope `{success: false, code, message, requestId, timestamp}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub success: bool,
    pub code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
}

/// Pagination facts of a list answer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct PageMeta {
    pub total: u64,
    pub page: u64,
    pub limit: u64,
}

/// The stable error codes of the API.
pub mod codes {
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const INSUFFICIENT_BALANCE: &str = "INSUFFICIENT_BALANCE";
    pub const TEAM_SUSPENDED: &str = "TEAM_SUSPENDED";
    pub const TEAM_PAST_DUE: &str = "TEAM_PAST_DUE";
    pub const TEAM_TERMINATED: &str = "TEAM_TERMINATED";
    pub const RESOURCE_NOT_FOUND: &str = "RESOURCE_NOT_FOUND";
    pub const COMPUTE_NOT_FOUND: &str = "COMPUTE_NOT_FOUND";
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const VALIDATION_ERROR: &str = "VALIDATION_ERROR";
    pub const MALFORMED_JSON: &str = "MALFORMED_JSON";
    pub const INVALID_IDEMPOTENCY_KEY: &str = "INVALID_IDEMPOTENCY_KEY";
    pub const CONFLICT: &str = "CONFLICT";
    pub const UNPROCESSABLE_ENTITY: &str = "UNPROCESSABLE_ENTITY";
    pub const TOO_MANY_REQUESTS: &str = "TOO_MANY_REQUESTS";
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";

    use crate::cloud::{ErrorClass, error::classify_status};

    /// What Strettch's status and code mean to a caller, whatever the status: the not-found
    /// codes are not found, rate limiting waits, internal errors are retried, and the account's
    /// codes (key, permissions, balance, team standing) need a human; otherwise the status says.
    pub fn classify(status: u16, code: &str) -> ErrorClass {
        match code {
            RESOURCE_NOT_FOUND | COMPUTE_NOT_FOUND => ErrorClass::NotFound,
            TOO_MANY_REQUESTS => ErrorClass::RateLimited,
            INTERNAL_SERVER_ERROR => ErrorClass::Retryable,
            UNAUTHORIZED | FORBIDDEN | INSUFFICIENT_BALANCE | TEAM_SUSPENDED | TEAM_PAST_DUE
            | TEAM_TERMINATED => ErrorClass::NeedsHuman,
            _ => classify_status(status),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn codes_classify_as_documented() {
            assert_eq!(classify(404, COMPUTE_NOT_FOUND), ErrorClass::NotFound);
            assert_eq!(classify(400, RESOURCE_NOT_FOUND), ErrorClass::NotFound);
            assert_eq!(classify(429, TOO_MANY_REQUESTS), ErrorClass::RateLimited);
            assert_eq!(classify(400, INTERNAL_SERVER_ERROR), ErrorClass::Retryable);
            assert_eq!(classify(503, "SOMETHING"), ErrorClass::Retryable);
            assert_eq!(classify(400, VALIDATION_ERROR), ErrorClass::Terminal);
            assert_eq!(classify(402, INSUFFICIENT_BALANCE), ErrorClass::NeedsHuman);
            assert_eq!(classify(403, TEAM_SUSPENDED), ErrorClass::NeedsHuman);
            assert_eq!(classify(409, CONFLICT), ErrorClass::Terminal);
            assert_eq!(classify(401, UNAUTHORIZED), ErrorClass::NeedsHuman);
        }
    }
}

/// Compute lifecycle states. The documented ones are CREATING, RUNNING, STOPPED, REBOOTING,
/// DESTROYING and DESTROYED; STARTING and STOPPING are the transitional power states the sandbox
/// reports while a start/stop is in flight. Anything else parses as `Other` so a new state never
/// breaks observation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ComputeState {
    Creating,
    Running,
    Starting,
    Stopping,
    Stopped,
    Rebooting,
    Destroying,
    Destroyed,
    Other(String),
}

impl ComputeState {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Creating => "CREATING",
            Self::Running => "RUNNING",
            Self::Starting => "STARTING",
            Self::Stopping => "STOPPING",
            Self::Stopped => "STOPPED",
            Self::Rebooting => "REBOOTING",
            Self::Destroying => "DESTROYING",
            Self::Destroyed => "DESTROYED",
            Self::Other(s) => s,
        }
    }

    /// A state the cloud moves out of by itself; observers want fresher news about it.
    pub fn is_transitional(&self) -> bool {
        !matches!(self, Self::Running | Self::Stopped | Self::Destroyed)
    }
}

impl From<String> for ComputeState {
    fn from(s: String) -> Self {
        match s.as_str() {
            "CREATING" => Self::Creating,
            "RUNNING" => Self::Running,
            "STARTING" => Self::Starting,
            "STOPPING" => Self::Stopping,
            "STOPPED" => Self::Stopped,
            "REBOOTING" => Self::Rebooting,
            "DESTROYING" => Self::Destroying,
            "DESTROYED" => Self::Destroyed,
            _ => Self::Other(s),
        }
    }
}

impl From<ComputeState> for String {
    fn from(s: ComputeState) -> Self {
        s.as_str().to_string()
    }
}

impl std::fmt::Display for ComputeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compute instance as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compute {
    pub id: String,
    pub host_name: String,
    pub state: ComputeState,
    pub image: String,
    pub specification: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ipv4: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// `POST /computes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComputeCreate {
    pub host_name: String,
    pub image: String,
    pub region: String,
    pub specification: String,
    pub public_keys: Vec<String>,
    #[serde(default)]
    pub with_public_ip: bool,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `PATCH /computes/{id}/upsize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsizeRequest {
    pub new_specification: String,
}

/// `GET /computes/specifications`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Specification {
    pub id: String,
    pub specification: String,
    pub vcpus: u32,
    pub memory_mb: u64,
    pub storage_gb: u64,
}

/// `GET /images`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    pub image: String,
    pub image_name: String,
    pub version: String,
    pub display_name: String,
}

/// `GET /regions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Region {
    pub id: u64,
    pub region: String,
    pub name: String,
    pub country_code: String,
}

/// `GET /health` (no auth).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub service: String,
    pub status: String,
}

/// Domain status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DomainStatus {
    Activating,
    Active,
    Inactive,
}

/// A DNS zone registered with Strettch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    pub id: String,
    pub domain: String,
    pub status: DomainStatus,
    pub nameservers: Vec<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// `POST /domains`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainCreate {
    pub domain: String,
}

/// DNS record types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RecordType {
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

impl RecordType {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::A => "A",
            Self::AAAA => "AAAA",
            Self::CNAME => "CNAME",
            Self::MX => "MX",
            Self::TXT => "TXT",
            Self::SRV => "SRV",
            Self::NS => "NS",
        }
    }
}

/// A DNS record in a domain. `name` is `@` for the apex.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: RecordType,
    pub value: String,
    pub ttl: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// `POST /domains/{id}/records` and `PUT /domains/{id}/records/{recordId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordWrite {
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: RecordType,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_compute_state_survives_a_round_trip() {
        let s: ComputeState = serde_json::from_str("\"MIGRATING\"").unwrap();
        assert_eq!(s, ComputeState::Other("MIGRATING".into()));
        assert!(s.is_transitional());
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"MIGRATING\"");
        let r: ComputeState = serde_json::from_str("\"RUNNING\"").unwrap();
        assert!(!r.is_transitional());
    }

    #[test]
    fn record_type_serialises_as_the_dns_name() {
        let w = RecordWrite {
            name: "@".into(),
            record_type: RecordType::AAAA,
            value: "::1".into(),
            ttl: None,
            priority: None,
            weight: None,
            port: None,
            comment: None,
        };
        let v = serde_json::to_value(&w).unwrap();
        assert_eq!(v["type"], "AAAA");
        assert!(v.get("ttl").is_none());
    }
}
