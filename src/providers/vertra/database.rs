//! The Database adapter.
//!
//! - **Found again by name.** Vertra has no idempotency keys and no filters; `/users/me` lists
//!   every database. An ambiguous create is looked for by its name and adopted only if the cloud
//!   made it after the attempt started and no other object records it (`Proof::NaturalKey`);
//!   until the attempt has settled the engine never sends it again (`CreateGuard::FindOnly`).
//! - **The password.** The API never returns one on read: the only source is
//!   `credentials/reset`, which disconnects clients. The operator resets it once, right after its
//!   own create (the engine asks [`replace`](Adapter::replace) for a value the Secret lacks),
//!   writes it with the certificate and the connection details to the Secret, and resets it again
//!   only when `credentials.rotationNonce` changes.
//! - **Platform stops** (credits exhausted: `offline_since`) are reported, never answered with
//!   start calls in a loop. A delete whose safety snapshot fails (`SNAPSHOT_FAILED`) deleted
//!   nothing and is retried with backoff.

use kube::ResourceExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::api::PowerState;
use super::api::database::{Database, DatabaseObservation, DatabaseParameters, Engine};
use super::cloud::{ObservedDatabase, VertraCloud};
use super::model::{self, DatabaseCreate, DatabaseUpdate};
use crate::api::common::ConnectionSecretSpec;
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::engine::{
    Adapter, Blocked, ConnectionDetails, CreateGuard, Created, Found, Freshness, Invalid, Plan,
    Proof, Readiness,
};

#[derive(Clone)]
pub struct DatabaseAdapter;

/// The desired state with the workspace resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredDatabase {
    pub params: DatabaseParameters,
    pub workspace_id: Option<String>,
}

/// What a database create sends (recorded on the object before it is sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseCreateRequest {
    pub name: String,
    pub engine: Engine,
    pub memory_mb: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
}

/// One change the API can make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseAction {
    /// `PUT`: name, description and memory together.
    Update(DatabaseUpdate),
    Start,
    Stop,
}

/// Pure checks the schema cannot make.
pub fn validate_params(p: &DatabaseParameters) -> Result<(), Invalid> {
    let invalid = |m: String| Err(Invalid::new("InvalidSpec", m));
    if p.name.trim().is_empty() || p.name.trim() != p.name || p.name.chars().count() > 50 {
        return invalid(format!(
            "spec.forProvider.name {:?} must be 1-50 characters without surrounding spaces",
            p.name
        ));
    }
    if p.name.chars().any(char::is_control) {
        return invalid("spec.forProvider.name must not contain control characters".into());
    }
    if let Some(d) = &p.description
        && d.chars().count() > 128
    {
        return invalid(format!(
            "spec.forProvider.description is {} characters long; at most 128 are allowed",
            d.chars().count()
        ));
    }
    let min = p.engine.min_memory_mb();
    if p.memory_mb < min {
        return invalid(format!(
            "spec.forProvider.memoryMB is {}; {:?} needs at least {min}",
            p.memory_mb, p.engine
        ));
    }
    if p.workspace_ref.is_some() && p.workspace_id.is_some() {
        return invalid(
            "set spec.forProvider.workspaceRef or spec.forProvider.workspaceId, not both".into(),
        );
    }
    Ok(())
}

/// What to change to match the spec.
pub fn plan(d: &DesiredDatabase, o: &ObservedDatabase) -> Plan<DatabaseAction> {
    let p = &d.params;
    if let Some(engine) = o.db.engine.and_then(Engine::from_type_number)
        && engine != p.engine
    {
        return Plan::Impossible(Invalid::new(
            "EngineMismatch",
            format!(
                "database {} runs {engine:?}, the spec says {:?}: the engine cannot change; create a new Database",
                o.db.id, p.engine
            ),
        ));
    }
    let mut update = DatabaseUpdate::default();
    if o.db.name != p.name {
        update.name = Some(p.name.clone());
    }
    if let Some(want) = p.description.as_ref().filter(|d| !d.is_empty())
        && o.db.description.as_deref() != Some(want.as_str())
    {
        update.description = Some(want.clone());
    }
    if o.db.ram.is_some_and(|ram| ram != p.memory_mb) {
        update.ram = Some(p.memory_mb);
    }
    let mut actions = Vec::new();
    if update != DatabaseUpdate::default() {
        actions.push(DatabaseAction::Update(update));
    }
    match (p.power_state, o.running) {
        (PowerState::Running, false) => {
            if let Some(since) = &o.db.offline_since {
                return Plan::Impossible(Invalid::new(
                    "PlatformStopped",
                    format!(
                        "Vertra stopped database {} at {since} (credits exhausted, say): add credits in the Vertra dashboard; the operator starts it again once the platform allows",
                        o.db.id
                    ),
                ));
            }
            actions.push(DatabaseAction::Start);
        }
        (PowerState::Stopped, true) => actions.push(DatabaseAction::Stop),
        _ => {}
    }
    if actions.is_empty() {
        Plan::UpToDate
    } else {
        Plan::Update(actions)
    }
}

/// More than one resource matches what an ambiguous create sent: the operator cannot tell which
/// one (if any) it made, so it stops and says so (a terminal error: nothing is created, adopted
/// or deleted until a human decides).
pub fn ambiguous(operation: &str, what: &str, name: &str, n: usize) -> CloudError {
    CloudError::InvalidRequest {
        operation: operation.to_string(),
        message: format!(
            "{n} {what} are named {name:?}: the operator cannot tell which one (if any) its unanswered create made. Set the stratus.dev/external-name annotation to the right id, or remove the others"
        ),
    }
}

pub fn observation(o: &ObservedDatabase) -> DatabaseObservation {
    DatabaseObservation {
        id: o.db.id.clone(),
        status: o.db.status.clone(),
        host: o.db.host.clone(),
        port: o.db.port,
        memory_mb: o.db.ram,
        offline_since: o.db.offline_since.clone(),
        created_at: o.db.created_at.clone(),
    }
}

/// Percent-encode everything but RFC 3986's unreserved characters (for a URI's userinfo).
fn encode(text: &[u8]) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The certificates of a PEM bundle other than `client` (the CA chain).
fn ca_bundle(pem: &[u8], client: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(pem);
    let client = String::from_utf8_lossy(client);
    let client = client.trim();
    let mut out = String::new();
    for block in text.split_inclusive("-----END CERTIFICATE-----") {
        let Some(start) = block.find("-----BEGIN CERTIFICATE-----") else {
            continue;
        };
        let cert = block[start..].trim();
        if cert != client {
            out.push_str(cert);
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// The connection Secret's values: host, port, username, password, the client certificate and
/// key, the CA bundle and a URI with TLS required.
pub fn connection_details(
    engine: Engine,
    db: &model::Database,
    password: &[u8],
    cert: &model::Certificate,
    version: String,
) -> ConnectionDetails {
    let host = db.host.clone().unwrap_or_default();
    let port = db.port.map(|p| p.to_string()).unwrap_or_default();
    let user = engine.username();
    let secret = encode(password);
    let uri = match engine {
        Engine::PostgreSQL => {
            format!("postgresql://{user}:{secret}@{host}:{port}/postgres?sslmode=verify-full")
        }
        Engine::MongoDB => {
            format!("mongodb://{user}:{secret}@{host}:{port}/?authSource=admin&tls=true")
        }
        Engine::Redis => format!("rediss://{user}:{secret}@{host}:{port}"),
        Engine::MySQL => {
            format!("mysql://{user}:{secret}@{host}:{port}/default?ssl-mode=VERIFY_IDENTITY")
        }
    };
    ConnectionDetails::new(version)
        .with("host", host)
        .with("port", port)
        .with("username", user)
        .with("password", password.to_vec())
        .with("tls.crt", cert.crt.expose().to_vec())
        .with("tls.key", cert.key.expose().to_vec())
        .with("ca.crt", ca_bundle(cert.pem.expose(), cert.crt.expose()))
        .with("uri", uri)
}

#[async_trait::async_trait]
impl Adapter for DatabaseAdapter {
    type Kind = Database;
    type Cloud = VertraCloud;
    type Observed = ObservedDatabase;
    type Desired = DesiredDatabase;
    type Action = DatabaseAction;
    type CreateRequest = DatabaseCreateRequest;

    const PROVIDER: &'static str = super::PROVIDER;
    const CONTROLLER: &'static str = "database";

    crate::managed_kind_accessors!(observation);

    fn validate(obj: &Database) -> Result<(), Invalid> {
        validate_params(&obj.spec.for_provider)
    }

    async fn desired(
        &self,
        kube: &kube::Client,
        obj: &Database,
    ) -> Result<DesiredDatabase, Blocked> {
        let p = &obj.spec.for_provider;
        let workspace_id = super::workspace::resolve_workspace(
            kube,
            &obj.namespace().unwrap_or_default(),
            p.workspace_ref.as_ref(),
            p.workspace_id.as_deref(),
        )
        .await?;
        Ok(DesiredDatabase {
            params: p.clone(),
            workspace_id,
        })
    }

    async fn observe(
        &self,
        cloud: &VertraCloud,
        _obj: &Database,
        id: &str,
        fresh: Freshness,
    ) -> Result<Option<ObservedDatabase>, CloudError> {
        cloud
            .databases
            .observe(
                id,
                fresh,
                |p| cloud.get_database(id, p),
                |p| cloud.list_databases(p),
            )
            .await
    }

    fn create_guard(&self) -> CreateGuard {
        CreateGuard::FindOnly
    }

    fn create_request(_obj: &Database, d: &DesiredDatabase) -> DatabaseCreateRequest {
        let p = &d.params;
        DatabaseCreateRequest {
            name: p.name.clone(),
            engine: p.engine,
            memory_mb: p.memory_mb,
            description: p.description.clone(),
            workspace_id: d.workspace_id.clone(),
            snapshot_id: p.from_snapshot.clone(),
        }
    }

    async fn find_created(
        &self,
        cloud: &VertraCloud,
        _obj: &Database,
        request: &DatabaseCreateRequest,
    ) -> Result<Option<Found<ObservedDatabase>>, CloudError> {
        cloud.relist_databases().await?;
        let mut candidates = cloud.databases.filter(|o| {
            o.db.name == request.name
                && o.db
                    .engine
                    .is_none_or(|e| e == request.engine.type_number())
        });
        if candidates.len() > 1 {
            // Which one the lost attempt made cannot be told: never guess (adopting, resetting
            // or deleting another's database); keep the marker and say what to do.
            return Err(ambiguous(
                "databases.find",
                "databases",
                &request.name,
                candidates.len(),
            ));
        }
        Ok(candidates.pop().map(|observed| Found {
            observed,
            proof: Proof::NaturalKey,
        }))
    }

    async fn create(
        &self,
        cloud: &VertraCloud,
        _obj: &Database,
        r: &DatabaseCreateRequest,
        _key: Uuid,
    ) -> Result<Created<ObservedDatabase>, CloudError> {
        let db = cloud
            .client
            .create_database(&DatabaseCreate {
                name: r.name.clone(),
                ram: r.memory_mb,
                engine: r.engine.type_number(),
                description: r.description.clone(),
                workspace_id: r.workspace_id.clone(),
                snapshot_id: r.snapshot_id.clone(),
            })
            .await?;
        let observed = ObservedDatabase {
            running: db.status.as_deref() != Some("down"),
            db,
        };
        cloud.databases.put(observed.clone());
        // No password yet: the engine asks `replace` for one before anything else.
        Ok(observed.into())
    }

    fn connection_secret(obj: &Database) -> Option<ConnectionSecretSpec> {
        Some(ConnectionSecretSpec {
            write_connection_secret_to_ref: obj.spec.write_connection_secret_to_ref.clone(),
            connection_secret_rotation: obj.spec.for_provider.credentials.rotation_nonce.clone(),
        })
    }

    fn replace_disrupts(&self) -> bool {
        true
    }

    /// A new password (`credentials/reset`: it disconnects clients) and the certificate.
    async fn replace(
        &self,
        cloud: &VertraCloud,
        obj: &Database,
        observed: &ObservedDatabase,
    ) -> Result<Option<ConnectionDetails>, CloudError> {
        let id = &observed.db.id;
        // The certificate first: a reset whose answer could not be completed would leave
        // clients disconnected and the Secret with a password that no longer works.
        let cert = cloud.client.certificate(id, Priority::Write).await?;
        let password = cloud.client.reset_password(id).await?;
        let engine = observed
            .db
            .engine
            .and_then(Engine::from_type_number)
            .unwrap_or(obj.spec.for_provider.engine);
        let version = format!("reset-{}", jiff::Timestamp::now().as_millisecond());
        Ok(Some(connection_details(
            engine,
            &observed.db,
            password.0.expose(),
            &cert,
            version,
        )))
    }

    fn created_at(o: &ObservedDatabase) -> Option<jiff::Timestamp> {
        o.db.created_at.as_deref().and_then(|t| t.parse().ok())
    }

    fn plan(
        d: &DesiredDatabase,
        o: &ObservedDatabase,
        _digest: Option<&str>,
    ) -> Plan<DatabaseAction> {
        plan(d, o)
    }

    async fn act(
        &self,
        cloud: &VertraCloud,
        o: &ObservedDatabase,
        action: &DatabaseAction,
    ) -> Result<ObservedDatabase, CloudError> {
        let mut next = o.clone();
        match action {
            DatabaseAction::Update(u) => {
                cloud.client.update_database(&o.db.id, u).await?;
                if let Some(n) = &u.name {
                    next.db.name = n.clone();
                }
                if let Some(d) = &u.description {
                    next.db.description = Some(d.clone());
                }
                if let Some(r) = u.ram {
                    next.db.ram = Some(r);
                }
            }
            DatabaseAction::Start => {
                cloud.client.start_database(&o.db.id).await?;
                next.running = true;
                next.db.status = Some("up".into());
            }
            DatabaseAction::Stop => {
                cloud.client.stop_database(&o.db.id).await?;
                next.running = false;
                next.db.status = Some("down".into());
            }
        }
        cloud.databases.put(next.clone());
        Ok(next)
    }

    async fn delete(&self, cloud: &VertraCloud, o: &ObservedDatabase) -> Result<(), CloudError> {
        match cloud.client.delete_database(&o.db.id).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        cloud.databases.remove(&o.db.id);
        Ok(())
    }

    fn external_id(o: &ObservedDatabase) -> String {
        o.db.id.clone()
    }

    fn is_deleting(_o: &ObservedDatabase) -> bool {
        false
    }

    fn is_transitional(_o: &ObservedDatabase) -> bool {
        false
    }

    fn readiness(o: &ObservedDatabase) -> Readiness {
        match (&o.db.offline_since, o.running) {
            (Some(since), false) => {
                Readiness::Unavailable(format!("Vertra stopped database {} at {since}", o.db.id))
            }
            (_, true) => Readiness::Available(format!("database {} is running", o.db.id)),
            (None, false) => Readiness::Available(format!("database {} is stopped", o.db.id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SecretBytes;
    use serde_json::json;

    fn params(engine: Engine, memory_mb: u64) -> DatabaseParameters {
        serde_json::from_value(json!({
            "engine": engine, "name": "orders", "memoryMB": memory_mb
        }))
        .unwrap()
    }

    fn observed(running: bool, offline: Option<&str>) -> ObservedDatabase {
        ObservedDatabase {
            db: serde_json::from_value(json!({
                "id": "d1", "name": "orders", "type": 1, "ram": 1024, "status": if running {"up"} else {"down"},
                "host": "d1.db.usa1.vertraweb.app", "port": 30001, "offline_since": offline
            }))
            .unwrap(),
            running,
        }
    }

    fn desired(p: DatabaseParameters) -> DesiredDatabase {
        DesiredDatabase {
            params: p,
            workspace_id: None,
        }
    }

    #[test]
    fn memory_below_the_engines_minimum_is_a_spec_error() {
        assert!(validate_params(&params(Engine::PostgreSQL, 512)).is_err());
        assert!(validate_params(&params(Engine::Redis, 512)).is_ok());
        assert!(validate_params(&params(Engine::MySQL, 1024)).is_ok());
    }

    #[test]
    fn a_platform_stop_is_reported_and_never_answered_with_a_start() {
        let d = desired(params(Engine::PostgreSQL, 1024));
        assert_eq!(
            plan(&d, &observed(false, None)),
            Plan::Update(vec![DatabaseAction::Start])
        );
        match plan(&d, &observed(false, Some("2026-12-01T00:00:00Z"))) {
            Plan::Impossible(i) => assert_eq!(i.reason, "PlatformStopped"),
            other => panic!("{other:?}"),
        }
        assert_eq!(plan(&d, &observed(true, None)), Plan::UpToDate);
    }

    #[test]
    fn memory_and_name_change_in_one_update_and_the_engine_never_changes() {
        let mut p = params(Engine::PostgreSQL, 2048);
        p.name = "orders-2".into();
        assert_eq!(
            plan(&desired(p), &observed(true, None)),
            Plan::Update(vec![DatabaseAction::Update(DatabaseUpdate {
                name: Some("orders-2".into()),
                description: None,
                ram: Some(2048)
            })])
        );
        match plan(&desired(params(Engine::MySQL, 1024)), &observed(true, None)) {
            Plan::Impossible(i) => assert_eq!(i.reason, "EngineMismatch"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_secret_holds_a_uri_with_the_password_encoded_and_the_ca_apart_from_the_client_cert() {
        let crt = "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----";
        let ca = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----";
        let key = "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----";
        let cert = model::Certificate {
            crt: SecretBytes::new(crt),
            key: SecretBytes::new(key),
            pem: SecretBytes::new(format!("{key}\n{crt}\n{ca}\n")),
        };
        let o = observed(true, None);
        let d = connection_details(Engine::PostgreSQL, &o.db, b"p@ss/w:rd", &cert, "v1".into());
        let uri = String::from_utf8(d.get("uri").unwrap().expose().to_vec()).unwrap();
        assert_eq!(
            uri,
            "postgresql://postgres:p%40ss%2Fw%3Ard@d1.db.usa1.vertraweb.app:30001/postgres?sslmode=verify-full"
        );
        let ca_out = String::from_utf8(d.get("ca.crt").unwrap().expose().to_vec()).unwrap();
        assert_eq!(ca_out.trim(), ca);
        assert_eq!(d.get("username").unwrap().expose(), b"postgres");
        assert!(!format!("{d:?}").contains("p@ss"));
    }
}
