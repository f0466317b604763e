//! Everything the sandbox knows, what the state file holds: projects (each in a workspace),
//! deployments with their build logs, issued keys and tokens (never their values, only their
//! hashes), the seeded users, request counts per month (usage) and remembered idempotent
//! answers. The rules live with each kind: [`projects`], [`deployments`], [`access`].
//!
//! Builds are lazy: a deployment stores when it was created and how long its build takes, and
//! every access first *settles* the state against the clock ([`State::settle`]), writing the
//! log lines of every step passed at the step's own time. No task runs per deployment, so a
//! restart from the state file carries on where it stopped.

pub mod access;
pub mod deployments;
pub mod idempotency;
pub mod projects;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use jiff::Timestamp;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::wire::User;

pub use access::{KeyRec, TokenRec};
pub use deployments::{DeploymentRec, LogRec};
pub use idempotency::IdemEntry;
pub use projects::ProjectRec;

/// The account of every `cloudapi` key, and of `cloudplatform` keys given with `--api-key`.
pub const DEFAULT_ACCOUNT: &str = "default";

/// `now + d`, saturating.
pub fn after(now: Timestamp, d: Duration) -> Timestamp {
    now.saturating_add(d).unwrap_or(Timestamp::MAX)
}

/// `n` random lowercase hex digits.
pub fn hex(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// `n` random letters and digits, for secrets.
pub fn random_text(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The full SHA-256 of a secret, in hex: what the state keeps instead of the secret.
pub fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.trim().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Successful creates per kind, to prove a client made no duplicates (not persisted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateCounts {
    pub projects: u64,
    pub deployments: u64,
    pub keys: u64,
    pub tokens: u64,
}

/// The users `GET /v1/users` lists (read-only; 003's example first).
pub fn seed_users() -> Vec<User> {
    [
        ("usr_8f2", "admin@cloudapi.invalid", "admin"),
        ("usr_3a1", "dev@cloudapi.invalid", "developer"),
        ("usr_c47", "viewer@cloudapi.invalid", "viewer"),
    ]
    .into_iter()
    .map(|(id, email, role)| User {
        id: id.into(),
        email: email.into(),
        role: role.into(),
    })
    .collect()
}

/// See the module docs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub version: u32,
    /// The last sequence number given (orders everything by creation).
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub projects: BTreeMap<String, ProjectRec>,
    #[serde(default)]
    pub deployments: BTreeMap<String, DeploymentRec>,
    /// Build and rollback lines, oldest first (the last [`deployments::LOG_CAPACITY`]).
    #[serde(default)]
    pub logs: VecDeque<LogRec>,
    #[serde(default)]
    pub keys: BTreeMap<String, KeyRec>,
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenRec>,
    #[serde(default = "seed_users")]
    pub users: Vec<User>,
    /// Account → month (`2026-03`) → requests served.
    #[serde(default)]
    pub usage: BTreeMap<String, BTreeMap<String, u64>>,
    /// Account and `Idempotency-Key` → what the first request got.
    #[serde(default, serialize_with = "idempotency::serialize_without_secrets")]
    pub idempotency: BTreeMap<String, IdemEntry>,
    #[serde(skip)]
    pub creates: CreateCounts,
    /// Builds started (each deployment created starts one; a rollback starts none). Not
    /// persisted.
    #[serde(skip)]
    pub builds: u64,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: 1,
            seq: 0,
            projects: BTreeMap::new(),
            deployments: BTreeMap::new(),
            logs: VecDeque::new(),
            keys: BTreeMap::new(),
            tokens: BTreeMap::new(),
            users: seed_users(),
            usage: BTreeMap::new(),
            idempotency: BTreeMap::new(),
            creates: CreateCounts::default(),
            builds: 0,
        }
    }
}

impl State {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A fresh id: `prefix` and random hex digits, never one in use.
    pub fn new_id(&self, prefix: &str, digits: usize) -> String {
        loop {
            let id = format!("{prefix}{}", hex(digits));
            let taken = self.projects.contains_key(&id)
                || self.deployments.contains_key(&id)
                || self.keys.contains_key(&id)
                || self.tokens.contains_key(&id);
            if !taken {
                return id;
            }
        }
    }

    /// Counts one request served to `account` in the month of `now`.
    pub fn count_request(&mut self, account: &str, now: Timestamp) {
        let month = month_of(now);
        *self
            .usage
            .entry(account.to_string())
            .or_default()
            .entry(month)
            .or_insert(0) += 1;
    }

    /// Requests served to `account` in the month of `now`.
    pub fn requests_in_month(&self, account: &str, now: Timestamp) -> u64 {
        self.usage
            .get(account)
            .and_then(|m| m.get(&month_of(now)))
            .copied()
            .unwrap_or(0)
    }
}

/// `2026-03`: the UTC month of `ts`.
pub fn month_of(ts: Timestamp) -> String {
    let d = ts.to_zoned(jiff::tz::TimeZone::UTC).date();
    format!("{:04}-{:02}", d.year(), d.month())
}

/// The first and last day (`2026-03-01`, `2026-03-31`) of the UTC month of `ts`.
pub fn month_bounds(ts: Timestamp) -> (String, String) {
    let d = ts.to_zoned(jiff::tz::TimeZone::UTC).date();
    (
        d.first_of_month().to_string(),
        d.last_of_month().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_per_account_and_utc_month() {
        let mut st = State::default();
        let march: Timestamp = "2026-03-31T23:59:59Z".parse().unwrap();
        let april: Timestamp = "2026-04-01T00:00:00Z".parse().unwrap();
        st.count_request("a", march);
        st.count_request("a", march);
        st.count_request("a", april);
        st.count_request("b", april);
        assert_eq!(st.requests_in_month("a", march), 2);
        assert_eq!(st.requests_in_month("a", april), 1);
        assert_eq!(st.requests_in_month("c", april), 0);
        assert_eq!(month_of(march), "2026-03");
        assert_eq!(
            month_bounds(march),
            ("2026-03-01".to_string(), "2026-03-31".to_string())
        );
    }
}
