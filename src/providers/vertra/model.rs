//! Vertra Cloud's wire model: the serde types of requests and answers of the current API
//! generation (`../shared/reference/vertra/api-current.md`, "G3"), tolerant of what older
//! generations send where that is cheap (numbers as strings, absent optional fields, `{}` for an
//! upload answer). Secrets (passwords, certificates, env values) are held in types whose
//! `Debug` shows no value.

use serde::{Deserialize, Deserializer, Serialize};

use crate::engine::SecretBytes;

/// The success envelope `{"response": T}` (G1 also sends `status`, which is ignored).
#[derive(Debug, Deserialize)]
pub struct Envelope<T> {
    pub response: T,
}

/// The error body `{"code", "message"?, "details"?}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub details: Option<ErrorDetails>,
}

/// The `details` a client acts on; everything else in it is ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorDetails {
    /// Rate limits: `minute`, `day`, `resource`, `account`.
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default, deserialize_with = "lenient_u32")]
    pub limit: Option<u32>,
    /// Seconds, possibly fractional.
    #[serde(default, deserialize_with = "lenient_f64")]
    pub retry_after: Option<f64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub window_seconds: Option<f64>,
    /// `API_KEY_SCOPE_DENIED`: the scope the key lacks (a string or a list).
    #[serde(default)]
    pub required: Option<serde_json::Value>,
    /// `VALIDATION_ERROR`: the field at fault.
    #[serde(default)]
    pub path: Option<serde_json::Value>,
    /// `APP_SHIELD_COOLDOWN`: until when.
    #[serde(default)]
    pub until: Option<serde_json::Value>,
}

/// The error codes the operator acts on.
pub mod codes {
    use crate::cloud::ErrorClass;
    use crate::cloud::error::classify_status;

    pub const APP_NOT_FOUND: &str = "APP_NOT_FOUND";
    pub const DATABASE_NOT_FOUND: &str = "DATABASE_NOT_FOUND";
    pub const DATABASE_NOT_FOUND_OR_FORBIDDEN: &str = "DATABASE_NOT_FOUND_OR_FORBIDDEN";
    pub const WORKSPACE_NOT_FOUND: &str = "WORKSPACE_NOT_FOUND";
    pub const ENV_NOT_FOUND: &str = "ENV_NOT_FOUND";
    pub const NO_CUSTOM_DOMAIN: &str = "NO_CUSTOM_DOMAIN";
    pub const RATE_LIMIT_EXCEEDED: &str = "RATE_LIMIT_EXCEEDED";
    pub const DAILY_QUOTA_EXCEEDED: &str = "DAILY_QUOTA_EXCEEDED";
    pub const DEPLOY_RATE_LIMITED: &str = "DEPLOY_RATE_LIMITED";
    pub const SNAPSHOT_RATE_LIMITED: &str = "SNAPSHOT_RATE_LIMITED";
    pub const FORCED_SNAPSHOT_RATE_LIMIT: &str = "FORCED_SNAPSHOT_RATE_LIMIT";
    pub const SUBDOMAIN_CHANGE_RATE_LIMITED: &str = "SUBDOMAIN_CHANGE_RATE_LIMITED";
    pub const OPERATION_IN_PROGRESS: &str = "OPERATION_IN_PROGRESS";
    pub const BUILD_FAILED: &str = "BUILD_FAILED";
    pub const BUILD_TIMEOUT: &str = "BUILD_TIMEOUT";
    pub const INSTALL_FAILED: &str = "INSTALL_FAILED";
    pub const INSTALL_TIMEOUT: &str = "INSTALL_TIMEOUT";
    pub const SNAPSHOT_FAILED: &str = "SNAPSHOT_FAILED";
    pub const API_KEY_SCOPE_DENIED: &str = "API_KEY_SCOPE_DENIED";
    pub const PLAN_RESTRICTED_FEATURE: &str = "PLAN_RESTRICTED_FEATURE";
    pub const APP_SHIELD_COOLDOWN: &str = "APP_SHIELD_COOLDOWN";
    pub const APPLICATION_SHIELD_COOLDOWN: &str = "APPLICATION_SHIELD_COOLDOWN";
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";

    /// What Vertra's status and code mean to a caller. Rate limits of every kind wait; the
    /// not-found codes are not found; one-operation-at-a-time, shield cooldowns and a failed
    /// safety snapshot are retried with backoff; a build that failed is terminal (the code, not
    /// the spec's validity, is wrong — it is reported, not retried in a loop); the account's
    /// codes (scopes, IP allow-list, plan, limits) need a human; otherwise the status says.
    pub fn classify(status: u16, code: &str) -> ErrorClass {
        match code {
            RATE_LIMIT_EXCEEDED
            | DAILY_QUOTA_EXCEEDED
            | DEPLOY_RATE_LIMITED
            | SNAPSHOT_RATE_LIMITED
            | FORCED_SNAPSHOT_RATE_LIMIT
            | SUBDOMAIN_CHANGE_RATE_LIMITED
            | "RESTORE_COOLDOWN" => ErrorClass::RateLimited,
            APP_NOT_FOUND | DATABASE_NOT_FOUND | WORKSPACE_NOT_FOUND => ErrorClass::NotFound,
            OPERATION_IN_PROGRESS
            | APP_SHIELD_COOLDOWN
            | APPLICATION_SHIELD_COOLDOWN
            | SNAPSHOT_FAILED
            | INTERNAL_SERVER_ERROR => ErrorClass::Retryable,
            // A credential page's 404 does not prove the database is gone.
            BUILD_FAILED
            | BUILD_TIMEOUT
            | INSTALL_FAILED
            | INSTALL_TIMEOUT
            | DATABASE_NOT_FOUND_OR_FORBIDDEN => ErrorClass::Terminal,
            API_KEY_SCOPE_DENIED
            | "API_KEY_IP_DENIED"
            | "API_KEY_INVALID"
            | "AUTH_TOKEN_MISSING"
            | "WEBSITE_ONLY"
            | PLAN_RESTRICTED_FEATURE
            | "PLAN_NOT_ALLOWED"
            | "MAX_APPS_REACHED"
            | "MAX_DATABASES_REACHED"
            | "FREE_PLAN_SUSPENDED" => ErrorClass::NeedsHuman,
            c if c.starts_with("PLAN_DOES_NOT_SUPPORT_") || c.starts_with("FREE_PLAN_") => {
                ErrorClass::NeedsHuman
            }
            _ => classify_status(status),
        }
    }
}

/// An application (`App`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct App {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    /// Memory in MB.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub ram: Option<u64>,
    /// `up` or `down`.
    #[serde(default)]
    pub status: Option<String>,
    /// The published host, or `None` when private.
    #[serde(default)]
    pub subdomain: Option<String>,
    #[serde(default)]
    pub public_url: Option<String>,
    #[serde(default)]
    pub custom_domain: Option<String>,
    #[serde(default)]
    pub main_file: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub start_command: Option<String>,
    #[serde(default)]
    pub build_command: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub offline_since: Option<String>,
    #[serde(default)]
    pub shield_cooldown: Option<ShieldCooldown>,
    #[serde(default)]
    pub missing_dependencies: Option<Vec<String>>,
}

/// A platform cooldown after too much traffic (`shield_cooldown`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ShieldCooldown {
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// One app's entry of `GET /v1/apps/status` (or `GET /v1/apps/:id/status`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AppStatus {
    pub id: String,
    #[serde(default)]
    pub running: bool,
    #[serde(default)]
    pub installing: Option<bool>,
}

/// A managed database (`Database`). The API never returns a password.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Database {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// 1 PostgreSQL, 2 MongoDB, 3 Redis, 4 MySQL.
    #[serde(rename = "type", default, deserialize_with = "lenient_u64")]
    pub engine: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub ram: Option<u64>,
    /// `up` or `down`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub port: Option<u64>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub offline_since: Option<String>,
}

/// One database's entry of `GET /v1/databases/status`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DatabaseStatus {
    pub id: String,
    #[serde(default)]
    pub running: bool,
}

/// A workspace.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The owner lost the plan: writes are refused until it is back.
    #[serde(default)]
    pub frozen: bool,
    #[serde(default)]
    pub deleted_at: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// `GET /v1/workspaces/:id`: the workspace and what it holds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WorkspaceInfo {
    #[serde(flatten)]
    pub workspace: Workspace,
    #[serde(default)]
    pub applications: Vec<App>,
    #[serde(default)]
    pub databases: Vec<Database>,
}

/// `GET /v1/users/me`: the account, and every app and database it owns — the bulk listing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Me {
    pub id: serde_json::Value,
    #[serde(default)]
    pub plan_id: Option<serde_json::Value>,
    #[serde(default)]
    pub applications: Vec<App>,
    #[serde(default)]
    pub databases: Vec<Database>,
}

/// One DNS record a custom domain needs (`GET /v1/apps/:id/network/dns`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DnsRequirement {
    #[serde(rename = "type")]
    pub record_type: String,
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

/// An environment variable as sent (`POST /v1/apps/:id/envs`, and the create's `envs`).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct EnvWrite {
    pub key: String,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl std::fmt::Debug for EnvWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EnvWrite({}, {} bytes)", self.key, self.value.len())
    }
}

/// An environment variable as read (`GET /v1/apps/:id/envs`): the value is decrypted by the
/// API, so it is held as secret bytes.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct Env {
    pub id: String,
    pub key: String,
    #[serde(deserialize_with = "secret_string")]
    pub value: SecretBytes,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Env({}, {}, {:?})", self.id, self.key, self.value)
    }
}

/// `PATCH /v1/apps/:id/config`: the update route's names (`ram`, `main_file`,
/// `start_command`); the create route's names are silently dropped there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AppConfigUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_command: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_command: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ram: Option<u64>,
}

/// `POST /v1/databases`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseCreate {
    pub name: String,
    pub ram: u64,
    #[serde(rename = "type")]
    pub engine: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
}

/// `PUT /v1/databases/:id` (flat body).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DatabaseUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ram: Option<u64>,
}

/// `POST /v1/workspaces` and `PUT /v1/workspaces/:id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WorkspaceWrite {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `POST /v1/databases/:id/credentials/reset` answers `{password}` (older: a bare string).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub SecretBytes);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Password({:?})", self.0)
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Object { password: String },
            Bare(String),
        }
        let text = match Shape::deserialize(d)? {
            Shape::Object { password } | Shape::Bare(password) => password,
        };
        if text.is_empty() {
            return Err(serde::de::Error::custom("the password is empty"));
        }
        Ok(Password(SecretBytes::new(text)))
    }
}

/// `GET /v1/databases/:id/credentials/certificate`: the client certificate, its key and the
/// bundle with the CA.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct Certificate {
    #[serde(deserialize_with = "secret_string")]
    pub crt: SecretBytes,
    #[serde(deserialize_with = "secret_string")]
    pub key: SecretBytes,
    #[serde(deserialize_with = "secret_string")]
    pub pem: SecretBytes,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Certificate({:?}, {:?}, {:?})",
            self.crt, self.key, self.pem
        )
    }
}

fn secret_string<'de, D: Deserializer<'de>>(d: D) -> Result<SecretBytes, D::Error> {
    Ok(SecretBytes::new(String::deserialize(d)?))
}

/// A number that older generations send as a string ("512"); anything else is `None`.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e15)
                .map(|f| f as u64)
        }),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

fn lenient_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(lenient_u64(d)?.and_then(|v| u32::try_from(v).ok()))
}

fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite() && *f >= 0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ErrorClass;

    #[test]
    fn codes_classify_by_what_the_caller_must_do() {
        use codes::classify;
        assert_eq!(
            classify(429, "DEPLOY_RATE_LIMITED"),
            ErrorClass::RateLimited
        );
        assert_eq!(
            classify(429, "DAILY_QUOTA_EXCEEDED"),
            ErrorClass::RateLimited
        );
        assert_eq!(classify(404, "APP_NOT_FOUND"), ErrorClass::NotFound);
        assert_eq!(
            classify(404, "DATABASE_NOT_FOUND_OR_FORBIDDEN"),
            ErrorClass::Terminal,
            "a credential page's 404 does not prove the database is gone"
        );
        assert_eq!(
            classify(409, "OPERATION_IN_PROGRESS"),
            ErrorClass::Retryable
        );
        assert_eq!(classify(500, "SNAPSHOT_FAILED"), ErrorClass::Retryable);
        assert_eq!(classify(422, "BUILD_FAILED"), ErrorClass::Terminal);
        assert_eq!(
            classify(403, "API_KEY_SCOPE_DENIED"),
            ErrorClass::NeedsHuman
        );
        assert_eq!(
            classify(403, "PLAN_DOES_NOT_SUPPORT_X"),
            ErrorClass::NeedsHuman
        );
        assert_eq!(classify(400, "VALIDATION_ERROR"), ErrorClass::Terminal);
        assert_eq!(classify(503, "HTTP_503"), ErrorClass::Retryable);
    }

    #[test]
    fn numbers_as_strings_and_missing_optional_fields_are_accepted() {
        let app: App = serde_json::from_value(serde_json::json!({
            "id": "a1", "name": "web", "ram": "512", "status": "up"
        }))
        .unwrap();
        assert_eq!(app.ram, Some(512));
        let db: Database = serde_json::from_value(serde_json::json!({
            "id": "d1", "name": "db", "type": 1, "port": "30001", "ram": 1024.0
        }))
        .unwrap();
        assert_eq!(
            (db.engine, db.port, db.ram),
            (Some(1), Some(30001), Some(1024))
        );
        let details: ErrorDetails = serde_json::from_value(serde_json::json!({
            "scope": "minute", "limit": 300, "retry_after": "12.5", "window_seconds": -1
        }))
        .unwrap();
        assert_eq!(details.retry_after, Some(12.5));
        assert_eq!(details.window_seconds, None);
    }

    #[test]
    fn passwords_certificates_and_env_values_never_show_in_debug_output() {
        let p: Password = serde_json::from_str(r#"{"password":"hunter2-secret"}"#).unwrap();
        let bare: Password = serde_json::from_str(r#""hunter2-secret""#).unwrap();
        assert_eq!(p, bare);
        assert!(serde_json::from_str::<Password>(r#"{"password":""}"#).is_err());
        let c: Certificate =
            serde_json::from_str(r#"{"crt":"CRT-secret","key":"KEY-secret","pem":"PEM-secret"}"#)
                .unwrap();
        let e: Env =
            serde_json::from_str(r#"{"id":"env-1","key":"TOKEN","value":"v-secret"}"#).unwrap();
        let w = EnvWrite {
            key: "TOKEN".into(),
            value: "w-secret".into(),
            note: None,
        };
        let shown = format!("{p:?} {c:?} {e:?} {w:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("TOKEN"), "{shown}");
    }
}
