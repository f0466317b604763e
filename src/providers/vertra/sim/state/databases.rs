//! Databases: their record, lifecycle, credentials and the delete's safety snapshot.

use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::super::plan::Plan;
use super::super::reply::{ApiError, rfc3339};
use super::super::wire::{
    Certificate, Database, DatabaseStatus, DatabaseUsage, Network, Status, codes,
};
use super::{State, check_scope, hex_id, random_text};

/// Engines by `type`.
pub const ENGINES: [&str; 4] = ["PostgreSQL 17", "MongoDB 8.0", "Redis 7", "MySQL 8.0"];
/// Redis' `type`.
pub const REDIS: u8 = 3;
/// The host databases get a name under.
pub const DB_DOMAIN: &str = "db.usa1.vertraweb.app";

/// The least RAM (MB) a database of `kind` takes.
pub fn min_ram(kind: u8) -> u64 {
    if kind == REDIS { 512 } else { 1024 }
}

/// A validated `POST /v1/databases`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDatabase {
    pub name: String,
    pub ram: u64,
    pub kind: u8,
    pub description: Option<String>,
    pub workspace_id: Option<String>,
}

/// A validated `PUT /v1/databases/:id`: `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseUpdate {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub ram: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DbRec {
    pub id: String,
    pub seq: u64,
    pub name: String,
    pub description: Option<String>,
    pub kind: u8,
    pub ram: u64,
    pub port: u32,
    pub workspace_id: Option<String>,
    pub running: bool,
    pub started_at: Option<Timestamp>,
    pub offline_since: Option<Timestamp>,
    /// The current password (the API shows it only when it is reset).
    pub password: String,
    /// Bumped by each certificate reset: the certificate's serial.
    pub certificate_serial: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub fn not_found(id: &str) -> ApiError {
    ApiError::not_found(
        codes::DATABASE_NOT_FOUND,
        format!("database {id:?} does not exist"),
    )
}

/// Credentials routes name a missing database this way.
pub fn not_found_or_forbidden(id: &str) -> ApiError {
    ApiError::not_found(
        codes::DATABASE_NOT_FOUND_OR_FORBIDDEN,
        format!("database {id:?} does not exist or is not yours"),
    )
}

/// A fake PEM block whose body is `seed`, base64-looking and wrapped at 64 columns.
fn pem(label: &str, seed: &str) -> String {
    let body: String = seed
        .bytes()
        .cycle()
        .take(384)
        .map(|b| {
            const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            B64[usize::from(b) % 64] as char
        })
        .collect();
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

impl DbRec {
    pub fn host(&self) -> String {
        format!("{}.{DB_DOMAIN}", self.id.replace('-', ""))
    }

    pub fn is_up(&self) -> bool {
        self.running && self.offline_since.is_none()
    }

    pub fn start(&mut self, now: Timestamp) -> Result<(), ApiError> {
        if let Some(since) = self.offline_since {
            return Err(ApiError::forbidden(
                codes::INSUFFICIENT_CREDITS,
                format!(
                    "the platform stopped this database at {} (the account is out of credits); \
                     add credits before starting it",
                    rfc3339(since)
                ),
            ));
        }
        if !self.running {
            self.running = true;
            self.started_at = Some(now);
            self.updated_at = now;
        }
        Ok(())
    }

    pub fn stop(&mut self, now: Timestamp) {
        if self.running {
            self.running = false;
            self.started_at = None;
            self.updated_at = now;
        }
    }

    pub fn update(&mut self, u: DatabaseUpdate, now: Timestamp) -> Result<(), ApiError> {
        if let Some(ram) = u.ram
            && ram < min_ram(self.kind)
        {
            return Err(ApiError::validation(
                &["ram"],
                format!(
                    "a {} database needs at least {} MB; got {ram}",
                    ENGINES[usize::from(self.kind - 1)],
                    min_ram(self.kind)
                ),
            ));
        }
        if let Some(v) = u.name {
            self.name = v;
        }
        if let Some(v) = u.description {
            self.description = v;
        }
        if let Some(v) = u.ram {
            self.ram = v;
        }
        self.updated_at = now;
        Ok(())
    }

    /// A new password replaces the old one (clients are disconnected).
    pub fn reset_password(&mut self, now: Timestamp) -> String {
        self.password = random_text(24);
        self.updated_at = now;
        self.password.clone()
    }

    pub fn certificate(&self) -> Certificate {
        let seed = format!("{}:{}", self.id, self.certificate_serial);
        let crt = pem("CERTIFICATE", &format!("client-crt:{seed}"));
        let key = pem("PRIVATE KEY", &format!("client-key:{seed}"));
        let ca = pem("CERTIFICATE", "vertra-sandbox-ca");
        Certificate {
            pem: format!("{key}{crt}{ca}"),
            crt,
            key,
        }
    }

    pub fn view(&self, owner_id: &str, plan: Plan) -> Database {
        Database {
            id: self.id.clone(),
            cluster: 1,
            kind: self.kind,
            name: self.name.clone(),
            description: self.description.clone(),
            owner_id: owner_id.to_string(),
            owner_plan_id: plan.id(),
            status: if self.is_up() {
                Status::Up
            } else {
                Status::Down
            },
            ram: self.ram,
            host: self.host(),
            port: self.port,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            last_snapshot: None,
            offline_since: self.offline_since.map(rfc3339),
        }
    }

    pub fn usage(&self) -> DatabaseUsage {
        let up = self.is_up();
        DatabaseUsage {
            id: self.id.clone(),
            cpu: if up { "0.20%" } else { "0.00%" }.into(),
            ram: format!("{:.2} MB", if up { self.ram as f64 / 8.0 } else { 0.0 }),
            storage: "8.00 MB".into(),
            running: up,
        }
    }

    pub fn status(&self, now: Timestamp) -> DatabaseStatus {
        let u = self.usage();
        DatabaseStatus {
            id: u.id,
            cpu: u.cpu,
            ram: u.ram,
            storage: u.storage,
            status: if u.running { "running" } else { "stopped" }.into(),
            running: u.running,
            network: u.running.then(|| Network {
                total: "0 B".into(),
                now: "0 B".into(),
            }),
            uptime: self
                .started_at
                .filter(|_| u.running)
                .map(|s| now.duration_since(s).as_secs().max(0) as u64),
        }
    }
}

impl State {
    /// Database `id` within the `?workspace_id=` scope; `missing` says how a missing one is
    /// answered.
    pub fn database_or(
        &mut self,
        id: &str,
        scope: Option<&str>,
        missing: fn(&str) -> ApiError,
    ) -> Result<&mut DbRec, ApiError> {
        let ws = self
            .databases
            .get(id)
            .ok_or_else(|| missing(id))?
            .workspace_id
            .clone();
        check_scope(self, scope, ws.as_deref(), || missing(id))?;
        self.databases.get_mut(id).ok_or_else(|| missing(id))
    }

    pub fn database(&mut self, id: &str, scope: Option<&str>) -> Result<&mut DbRec, ApiError> {
        self.database_or(id, scope, not_found)
    }

    pub fn databases_in_order(&self) -> Vec<&DbRec> {
        let mut dbs: Vec<&DbRec> = self.databases.values().collect();
        dbs.sort_by_key(|d| d.seq);
        dbs
    }

    pub fn database_views(&self, plan: Plan) -> Vec<Database> {
        self.databases_in_order()
            .into_iter()
            .map(|d| d.view(&self.user.id, plan))
            .collect()
    }

    /// Creates a running database with a fresh password and the next port.
    pub fn insert_database(
        &mut self,
        new: NewDatabase,
        plan: Plan,
        now: Timestamp,
    ) -> Result<String, ApiError> {
        if let Some(ws) = &new.workspace_id {
            self.writable_workspace(ws, plan)?;
        }
        self.last_port += 1;
        let seq = self.next_seq();
        let db = DbRec {
            id: hex_id(),
            seq,
            name: new.name,
            description: new.description,
            kind: new.kind,
            ram: new.ram,
            port: self.last_port,
            workspace_id: new.workspace_id,
            running: true,
            started_at: Some(now),
            offline_since: None,
            password: random_text(24),
            certificate_serial: 1,
            created_at: now,
            updated_at: now,
        };
        let id = db.id.clone();
        self.databases.insert(id.clone(), db);
        self.creates.databases += 1;
        Ok(id)
    }

    /// Deletes database `id` after a safety snapshot; `snapshot_fails`: the snapshot fails
    /// (500 `SNAPSHOT_FAILED`) and nothing is deleted.
    pub fn delete_database(
        &mut self,
        id: &str,
        scope: Option<&str>,
        snapshot_fails: bool,
    ) -> Result<(), ApiError> {
        self.database(id, scope)?;
        if snapshot_fails {
            self.snapshots.failed += 1;
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::SNAPSHOT_FAILED,
                "the safety snapshot taken before deleting the database failed; nothing was \
                 deleted, try again",
            ));
        }
        self.snapshots.taken += 1;
        self.databases.remove(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_db(kind: u8) -> NewDatabase {
        NewDatabase {
            name: "orders".into(),
            ram: 1024,
            kind,
            description: None,
            workspace_id: None,
        }
    }

    #[test]
    fn databases_get_unique_ports_and_passwords_change_on_reset() {
        let mut st = State::new(Timestamp::now());
        let t = Timestamp::now();
        let a = st.insert_database(new_db(1), Plan::Pro, t).unwrap();
        let b = st.insert_database(new_db(3), Plan::Pro, t).unwrap();
        assert_ne!(st.databases[&a].port, st.databases[&b].port);
        let db = st.database(&a, None).unwrap();
        let old = db.password.clone();
        let new = db.reset_password(t);
        assert_ne!(old, new);
        assert_eq!(db.password, new);
        assert!(db.host().ends_with(".db.usa1.vertraweb.app"));
        let c = db.certificate();
        assert!(c.crt.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(c.pem.starts_with(&c.key) && c.pem.contains(&c.crt));
        assert_eq!(
            db.update(
                DatabaseUpdate {
                    ram: Some(512),
                    ..Default::default()
                },
                t
            )
            .unwrap_err()
            .code,
            codes::VALIDATION_ERROR
        );
    }

    #[test]
    fn a_failed_safety_snapshot_deletes_nothing() {
        let mut st = State::new(Timestamp::now());
        let a = st
            .insert_database(new_db(1), Plan::Pro, Timestamp::now())
            .unwrap();
        let e = st.delete_database(&a, None, true).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (500, codes::SNAPSHOT_FAILED));
        assert!(st.databases.contains_key(&a));
        st.delete_database(&a, None, false).unwrap();
        assert!(st.databases.is_empty());
        assert_eq!(
            st.snapshots,
            super::super::SnapshotCounts {
                taken: 1,
                failed: 1
            }
        );
        assert_eq!(
            st.delete_database(&a, None, false).unwrap_err().code,
            codes::DATABASE_NOT_FOUND
        );
    }
}
