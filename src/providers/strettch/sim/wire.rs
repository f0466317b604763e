//! The sandbox's own model of Strettch's wire format: the request bodies it accepts, the
//! answers it sends, the envelopes, the error codes and the states.
//!
//! Written from Strettch's documentation, not from the client's `model.rs` (house rule: a
//! sandbox never shares the serde types of the client it tests, or a wrong field name is wrong
//! on both sides and no test sees it). Sources:
//! - compute, catalog, health: `shared/reference/strettch/openapi.json` (schemas
//!   `ComputeCreateRequest`, `ComputeResponse`, `UpsizeComputeRequest`, `SpecificationResponse`,
//!   `ImageResponse`, `RegionResponse`, `HealthResponse`, `APIResponse`, `PaginationMeta`,
//!   `ErrorResponse`);
//! - envelope, error codes, pagination, idempotency: the API introduction (seed `000_*`) and
//!   `api-notes.md`; where they differ the introduction wins;
//! - DNS: `dns-dashboard-guide.mdx` for the concepts (statuses, record types, TTL default,
//!   priority) and docs/strettch-dns.md for the HTTP shape, which the public documents do not
//!   give yet.
//!
//! Where `api-notes.md` and the OpenAPI document disagree on a compute field
//! (`specificationId` / `newSpecificationId` there, `specification` / `newSpecification` in
//! OpenAPI), the sandbox follows OpenAPI, the machine-readable contract, and refuses
//! `specificationId` with a message (see `routes::decode_compute_create`).
//!
//! Nothing here may be imported from, or exported to, the client side.

use serde::{Deserialize, Serialize};

// ---- envelopes --------------------------------------------------------------------------------

/// Success envelope (`APIResponse`, `PaginatedResponse`): `{success: true, message, data,
/// meta?, requestId, timestamp}`. `meta` only on paginated lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    pub success: bool,
    pub message: String,
    pub data: T,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<PageMeta>,
    pub request_id: String,
    pub timestamp: String,
}

/// Error envelope (`ErrorResponse`): `{success: false, code, message, requestId, timestamp}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub success: bool,
    pub code: String,
    pub message: String,
    pub request_id: String,
    pub timestamp: String,
}

/// `PaginationMeta`: `{total, page, limit}`; `page` defaults to 1, `limit` to 20 (max 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageMeta {
    pub total: u64,
    pub page: u64,
    pub limit: u64,
}

/// The stable error codes, as the documents list them (HTTP status in the comment).
pub mod codes {
    /// 400: request body or parameters are malformed.
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    /// 400: request body failed validation.
    pub const VALIDATION_ERROR: &str = "VALIDATION_ERROR";
    /// 400: invalid JSON in the request body.
    pub const MALFORMED_JSON: &str = "MALFORMED_JSON";
    /// 400: the `Idempotency-Key` is not a UUID v4.
    pub const INVALID_IDEMPOTENCY_KEY: &str = "INVALID_IDEMPOTENCY_KEY";
    /// 401: API key missing, malformed or revoked.
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    /// 403: the key lacks permission.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// 403: the team has insufficient credits.
    pub const INSUFFICIENT_BALANCE: &str = "INSUFFICIENT_BALANCE";
    /// 403: the team is suspended.
    pub const TEAM_SUSPENDED: &str = "TEAM_SUSPENDED";
    /// 403: the team has overdue payments.
    pub const TEAM_PAST_DUE: &str = "TEAM_PAST_DUE";
    /// 403: the team is terminated.
    pub const TEAM_TERMINATED: &str = "TEAM_TERMINATED";
    /// 404: the resource does not exist.
    pub const RESOURCE_NOT_FOUND: &str = "RESOURCE_NOT_FOUND";
    /// 404: the compute does not exist (OpenAPI lists it for `PATCH /computes/{id}/upsize`).
    pub const COMPUTE_NOT_FOUND: &str = "COMPUTE_NOT_FOUND";
    /// 404: listed only in OpenAPI's 404 answers of `POST /computes` and upsize, without a
    /// description; the sandbox never sends it.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// 409: resource state conflict.
    pub const CONFLICT: &str = "CONFLICT";
    /// 422: valid but cannot be processed (an idempotency key reused with another request).
    pub const UNPROCESSABLE_ENTITY: &str = "UNPROCESSABLE_ENTITY";
    /// 429: rate limit exceeded.
    pub const TOO_MANY_REQUESTS: &str = "TOO_MANY_REQUESTS";
    /// 500: unexpected server error.
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
}

// ---- system and catalog -----------------------------------------------------------------------

/// `GET /health` data (`HealthResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub service: String,
    pub status: String,
}

/// `GET /computes/specifications` item (`SpecificationResponse`). OpenAPI types `memoryMb` and
/// `storageGb` as `number`; the sandbox's catalog only has whole values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Specification {
    /// A UUID.
    pub id: String,
    /// The slug computes are created and upsized with, e.g. `S-1C-1G`.
    pub specification: String,
    pub vcpus: u32,
    pub memory_mb: u64,
    pub storage_gb: u64,
}

/// `GET /images` item (`ImageResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// The slug, e.g. `UBUNTU-24.04`.
    pub image: String,
    pub image_name: String,
    pub version: String,
    pub display_name: String,
}

/// `GET /regions` item (`RegionResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Region {
    pub id: u64,
    /// The slug, e.g. `KGL-1`.
    pub region: String,
    pub name: String,
    pub country_code: String,
}

// ---- computes ---------------------------------------------------------------------------------

/// Compute states, upper case on the wire. The documents list CREATING, RUNNING, STOPPED,
/// REBOOTING, DESTROYING and DESTROYED. STARTING and STOPPING are the sandbox's own: the
/// documents do not say what a compute shows while a start or stop is in flight, so the sandbox
/// makes the transition visible under these names (clients must tolerate unknown states).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ComputeState {
    Creating,
    Running,
    /// Not documented (sandbox only).
    Starting,
    /// Not documented (sandbox only).
    Stopping,
    Stopped,
    Rebooting,
    Destroying,
    Destroyed,
}

impl ComputeState {
    /// The wire spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Creating => "CREATING",
            Self::Running => "RUNNING",
            Self::Starting => "STARTING",
            Self::Stopping => "STOPPING",
            Self::Stopped => "STOPPED",
            Self::Rebooting => "REBOOTING",
            Self::Destroying => "DESTROYING",
            Self::Destroyed => "DESTROYED",
        }
    }
}

impl std::fmt::Display for ComputeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compute as the API answers it (`ComputeResponse`). The sandbox always sends every field
/// except the addresses, which are omitted while unset (never during CREATING).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compute {
    /// A numeric string, e.g. `"325"`.
    pub id: String,
    pub host_name: String,
    pub state: ComputeState,
    pub image: String,
    /// The specification slug.
    pub specification: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ipv4: Option<String>,
    pub tags: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /computes` body (`ComputeCreateRequest`): `hostName`, `image`, `region`,
/// `specification` (a slug) and `publicKeys` (at least one) required; `withPublicIp` and `tags`
/// optional.
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

/// `PATCH /computes/{id}/upsize` body (`UpsizeComputeRequest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpsizeRequest {
    /// A specification slug.
    pub new_specification: String,
}

// ---- DNS --------------------------------------------------------------------------------------

/// Domain status: the guide's Activating, Active and Inactive, upper case on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DomainStatus {
    Activating,
    Active,
    Inactive,
}

/// A DNS zone as the API answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    /// A UUID.
    pub id: String,
    /// Lowercase, without the final dot.
    pub domain: String,
    pub status: DomainStatus,
    pub nameservers: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /domains` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainCreate {
    pub domain: String,
}

/// The record types the guide lists, upper case on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[allow(clippy::upper_case_acronyms)]
pub enum RecordType {
    A,
    AAAA,
    CNAME,
    MX,
    TXT,
    SRV,
    NS,
}

impl RecordType {
    /// The wire spelling.
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

/// A DNS record as the API answers it. `name` is `@` for the apex; `priority`, `weight`,
/// `port` and `comment` are omitted when unset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// A UUID.
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: RecordType,
    pub value: String,
    /// Seconds; always present in answers (the default, 60, when the write left it out).
    pub ttl: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// `POST /domains/{id}/records` and `PUT /domains/{id}/records/{recordId}` body: `name`,
/// `type`, `value` required; the rest optional (`null` counts as absent).
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
    use serde_json::json;

    #[test]
    fn compute_answer_is_spelled_as_documented() {
        let c = Compute {
            id: "325".into(),
            host_name: "my-server-01".into(),
            state: ComputeState::Running,
            image: "UBUNTU-24.04".into(),
            specification: "S-1C-1G".into(),
            region: "KGL-1".into(),
            ipv4: Some("195.15.0.73".into()),
            private_ipv4: None,
            tags: vec!["web".into()],
            created_at: "2024-01-15T10:00:00Z".into(),
            updated_at: "2024-01-15T10:05:00Z".into(),
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({
                "id": "325", "hostName": "my-server-01", "state": "RUNNING",
                "image": "UBUNTU-24.04", "specification": "S-1C-1G", "region": "KGL-1",
                "ipv4": "195.15.0.73", "tags": ["web"],
                "createdAt": "2024-01-15T10:00:00Z", "updatedAt": "2024-01-15T10:05:00Z"
            })
        );
        for (s, w) in [
            (ComputeState::Creating, "CREATING"),
            (ComputeState::Stopping, "STOPPING"),
            (ComputeState::Destroyed, "DESTROYED"),
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), w);
        }
    }

    #[test]
    fn requests_read_the_documented_names() {
        let c: ComputeCreate = serde_json::from_value(json!({
            "hostName": "h", "image": "UBUNTU-24.04", "region": "KGL-1",
            "specification": "S-1C-1G", "publicKeys": ["ssh-ed25519 AAAA"]
        }))
        .unwrap();
        assert!(!c.with_public_ip && c.tags.is_empty());
        let u: UpsizeRequest =
            serde_json::from_value(json!({"newSpecification": "S-2C-4G"})).unwrap();
        assert_eq!(u.new_specification, "S-2C-4G");
        let w: RecordWrite = serde_json::from_value(
            json!({"name": "@", "type": "AAAA", "value": "::1", "ttl": null}),
        )
        .unwrap();
        assert_eq!((w.record_type, w.ttl), (RecordType::AAAA, None));
        assert!(
            serde_json::from_value::<RecordWrite>(
                json!({"name": "@", "type": "aaaa", "value": "::1"})
            )
            .is_err()
        );
    }

    #[test]
    fn envelopes_are_spelled_as_documented() {
        let e = Envelope {
            success: true,
            message: "ok".into(),
            data: Vec::<u8>::new(),
            meta: Some(PageMeta {
                total: 42,
                page: 1,
                limit: 20,
            }),
            request_id: "r".into(),
            timestamp: "t".into(),
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"success": true, "message": "ok", "data": [],
                   "meta": {"total": 42, "page": 1, "limit": 20},
                   "requestId": "r", "timestamp": "t"})
        );
        let b = ErrorBody {
            success: false,
            code: codes::RESOURCE_NOT_FOUND.into(),
            message: "m".into(),
            request_id: "r".into(),
            timestamp: "t".into(),
        };
        assert_eq!(
            serde_json::to_value(&b).unwrap(),
            json!({"success": false, "code": "RESOURCE_NOT_FOUND", "message": "m",
                   "requestId": "r", "timestamp": "t"})
        );
        assert_eq!(
            serde_json::to_value(DomainStatus::Activating).unwrap(),
            "ACTIVATING"
        );
    }
}
