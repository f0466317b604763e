//! Everything the sandbox knows about the account, what the state file holds: the user, apps
//! (with their files' names, envs and network), databases (with their current password) and
//! workspaces (soft-deleted ones kept). The rules live with each kind: [`apps`],
//! [`databases`], [`workspaces`].
//!
//! Lifecycles are lazy: an installing app stores when its install ends, and every access
//! first *settles* it against the clock. No task runs per resource.

pub mod apps;
pub mod databases;
pub mod network;
pub mod workspaces;

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::plan::Plan;
use super::reply::ApiError;
use super::wire::codes;

pub use apps::{AppRec, Shield};
pub use databases::DbRec;
pub use workspaces::WorkspaceRec;

/// `now + d`, saturating.
pub fn after(now: Timestamp, d: Duration) -> Timestamp {
    now.saturating_add(d).unwrap_or(Timestamp::MAX)
}

/// A 32-hex-digit id, as apps and databases have.
pub fn hex_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `n` random letters and digits.
pub fn random_text(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The account the keys belong to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// 18 digits.
    pub id: String,
    pub name: String,
    pub email: String,
    #[serde(default = "default_language")]
    pub language: String,
    #[serde(default)]
    pub workspace_invites_enabled: bool,
    pub created_at: Timestamp,
    #[serde(default)]
    pub updated_at: Option<Timestamp>,
}

fn default_language() -> String {
    "en".into()
}

impl User {
    fn new(now: Timestamp) -> Self {
        let mut rng = rand::rng();
        User {
            id: format!(
                "{}",
                rng.random_range(100_000_000_000_000_000u64..1_000_000_000_000_000_000)
            ),
            name: "Sandbox User".into(),
            email: "sandbox@vertra.invalid".into(),
            language: default_language(),
            workspace_invites_enabled: true,
            created_at: now,
            updated_at: None,
        }
    }
}

/// Successful creates per kind, to prove a client made no duplicates (not persisted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCounts {
    pub apps: u64,
    pub databases: u64,
    pub workspaces: u64,
}

/// Database-delete safety snapshots (not persisted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotCounts {
    pub taken: u64,
    pub failed: u64,
}

/// See the module docs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub version: u32,
    pub user: User,
    #[serde(default)]
    pub apps: BTreeMap<String, AppRec>,
    #[serde(default)]
    pub databases: BTreeMap<String, DbRec>,
    #[serde(default)]
    pub workspaces: BTreeMap<String, WorkspaceRec>,
    /// The last sequence number given (orders listings by creation).
    #[serde(default)]
    pub seq: u64,
    /// The last database port given.
    #[serde(default)]
    pub last_port: u32,
    #[serde(skip)]
    pub creates: CreateCounts,
    #[serde(skip)]
    pub snapshots: SnapshotCounts,
}

/// The first database port, minus one.
const PORT_BASE: u32 = 20_000;

impl State {
    pub fn new(now: Timestamp) -> Self {
        State {
            version: 1,
            user: User::new(now),
            apps: BTreeMap::new(),
            databases: BTreeMap::new(),
            workspaces: BTreeMap::new(),
            seq: 0,
            last_port: PORT_BASE,
            creates: CreateCounts::default(),
            snapshots: SnapshotCounts::default(),
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A workspace that is not deleted, or `404 WORKSPACE_NOT_FOUND`.
    pub fn live_workspace(&self, id: &str) -> Result<&WorkspaceRec, ApiError> {
        self.workspaces
            .get(id)
            .filter(|w| w.deleted_at.is_none())
            .ok_or_else(|| {
                ApiError::not_found(
                    codes::WORKSPACE_NOT_FOUND,
                    format!("workspace {id:?} does not exist"),
                )
            })
    }

    /// A workspace a resource is created into or moved to: it must exist and, unless the plan
    /// still has workspaces, it is frozen (403 `PLAN_RESTRICTED_FEATURE`).
    pub fn writable_workspace(&self, id: &str, plan: Plan) -> Result<(), ApiError> {
        self.live_workspace(id)?;
        if !plan.has_workspaces() {
            return Err(frozen());
        }
        Ok(())
    }

    /// Settles every app (installs that ended, cooldowns that passed).
    pub fn settle(&mut self, now: Timestamp) {
        for app in self.apps.values_mut() {
            app.settle(now);
        }
    }

    /// Memory in use (MB): every app's and database's RAM.
    pub fn memory_used(&self) -> u64 {
        self.apps.values().map(|a| a.ram).sum::<u64>()
            + self.databases.values().map(|d| d.ram).sum::<u64>()
    }
}

/// `403 PLAN_RESTRICTED_FEATURE` for a write to a workspace without the plan.
pub fn frozen() -> ApiError {
    ApiError::plan(
        "workspaces need the Enterprise plan; this account's workspaces are frozen (read only)",
    )
}

/// The `?workspace_id=` scoping of an app or database route: with one, the workspace must exist
/// and hold the resource (else the resource is not found).
pub fn check_scope(
    st: &State,
    scope: Option<&str>,
    resource_ws: Option<&str>,
    not_found: impl FnOnce() -> ApiError,
) -> Result<(), ApiError> {
    let Some(ws) = scope else {
        return Ok(());
    };
    st.live_workspace(ws)?;
    if resource_ws != Some(ws) {
        return Err(not_found());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_have_their_shapes() {
        let id = hex_id();
        assert!(id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(random_text(24).len(), 24);
        assert_ne!(random_text(24), random_text(24));
        let st = State::new(Timestamp::now());
        assert!(st.user.id.len() == 18 && st.user.id.chars().all(|c| c.is_ascii_digit()));
    }

    #[test]
    fn the_state_round_trips_through_json() {
        let st = State::new(Timestamp::now());
        let back: State = serde_json::from_str(&serde_json::to_string(&st).unwrap()).unwrap();
        assert_eq!(back.user.id, st.user.id);
        assert_eq!(back.last_port, PORT_BASE);
    }
}
