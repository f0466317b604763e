//! API keys (created with a dashboard session token, revoked for good) and scoped tokens. The
//! state keeps a secret's SHA-256, never the secret: the value exists only in the create answer.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::super::reply::{ApiError, rfc3339};
use super::super::wire::{KeyCreated, KeyInfo, Revoked, TOKEN_SCOPES, Token, TokenCreated};
use super::{State, random_text, sha256_hex};
use crate::sim::key_fingerprint;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRec {
    pub id: String,
    pub seq: u64,
    pub project_id: String,
    /// The workspace of the key's project: whose budget and resources it has.
    pub workspace: String,
    pub secret_sha256: String,
    pub fingerprint: String,
    pub created_at: Timestamp,
    #[serde(default)]
    pub revoked_at: Option<Timestamp>,
    /// The project was deleted (the key is gone from the API, kept for `/_sim/keys`).
    #[serde(default)]
    pub project_deleted: bool,
}

impl KeyRec {
    pub fn info(&self) -> KeyInfo {
        KeyInfo {
            id: self.id.clone(),
            project_id: self.project_id.clone(),
            created_at: rfc3339(self.created_at),
            revoked: self.revoked_at.is_some(),
            fingerprint: self.fingerprint.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRec {
    pub id: String,
    pub seq: u64,
    /// The account that created it; only its keys see it.
    pub account: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub secret_sha256: String,
    pub created_at: Timestamp,
}

impl TokenRec {
    pub fn view(&self) -> Token {
        Token {
            id: self.id.clone(),
            name: self.name.clone(),
            scopes: self.scopes.clone(),
            created_at: rfc3339(self.created_at),
        }
    }
}

/// Scopes: at least one, each from [`TOKEN_SCOPES`], duplicates dropped (order kept).
pub fn check_scopes(scopes: &[String]) -> Result<Vec<String>, ApiError> {
    if scopes.is_empty() {
        return Err(ApiError::invalid(
            "scopes",
            "scopes must name at least one scope",
        ));
    }
    let unknown: Vec<&String> = scopes
        .iter()
        .filter(|s| !TOKEN_SCOPES.contains(&s.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::invalid(
            "scopes",
            format!("unknown scopes {unknown:?}; the scopes are {TOKEN_SCOPES:?}"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for s in scopes {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    Ok(out)
}

impl State {
    /// The live key whose value is `secret`, if any.
    pub fn active_key(&self, secret: &str) -> Option<&KeyRec> {
        let h = sha256_hex(secret);
        self.keys
            .values()
            .find(|k| k.secret_sha256 == h && k.revoked_at.is_none() && !k.project_deleted)
    }

    /// Creates a key for project `project_id` (of `workspace`): the value, once.
    pub fn create_key(&mut self, project_id: &str, workspace: &str, now: Timestamp) -> KeyCreated {
        let id = self.new_id("key_", 6);
        let seq = self.next_seq();
        let secret = format!("sk_live_{}", random_text(32));
        self.creates.keys += 1;
        self.keys.insert(
            id.clone(),
            KeyRec {
                id: id.clone(),
                seq,
                project_id: project_id.to_string(),
                workspace: workspace.to_string(),
                secret_sha256: sha256_hex(&secret),
                fingerprint: key_fingerprint(&secret),
                created_at: now,
                revoked_at: None,
                project_deleted: false,
            },
        );
        KeyCreated {
            id,
            key: secret,
            project_id: project_id.to_string(),
            created_at: rfc3339(now),
        }
    }

    /// Revokes key `id` of `workspace` (again: the same answer). A key of a deleted project
    /// is gone.
    pub fn revoke_key(
        &mut self,
        workspace: &str,
        id: &str,
        now: Timestamp,
    ) -> Result<Revoked, ApiError> {
        let k = self
            .keys
            .get_mut(id)
            .filter(|k| k.workspace == workspace && !k.project_deleted)
            .ok_or_else(|| ApiError::not_found("key", id))?;
        k.revoked_at.get_or_insert(now);
        Ok(Revoked {
            id: id.to_string(),
            revoked: true,
        })
    }

    /// Every key, oldest first.
    pub fn key_infos(&self) -> Vec<KeyInfo> {
        let mut all: Vec<_> = self.keys.values().collect();
        all.sort_by_key(|k| k.seq);
        all.into_iter().map(KeyRec::info).collect()
    }

    pub fn create_token(
        &mut self,
        account: &str,
        name: String,
        scopes: Vec<String>,
        now: Timestamp,
    ) -> TokenCreated {
        let id = self.new_id("tok_", 6);
        let seq = self.next_seq();
        let secret = format!("cap_{}", random_text(32));
        self.creates.tokens += 1;
        self.tokens.insert(
            id.clone(),
            TokenRec {
                id: id.clone(),
                seq,
                account: account.to_string(),
                name: name.clone(),
                scopes: scopes.clone(),
                secret_sha256: sha256_hex(&secret),
                created_at: now,
            },
        );
        TokenCreated {
            id,
            token: secret,
            name,
            scopes,
            created_at: rfc3339(now),
        }
    }

    /// `account`'s tokens, oldest first, with their sequence numbers.
    pub fn tokens_of(&self, account: &str) -> Vec<(u64, Token)> {
        let mut all: Vec<_> = self
            .tokens
            .values()
            .filter(|t| t.account == account)
            .collect();
        all.sort_by_key(|t| t.seq);
        all.into_iter().map(|t| (t.seq, t.view())).collect()
    }

    /// Deletes token `id` of `account`: it is gone (a second delete is a 404).
    pub fn delete_token(&mut self, account: &str, id: &str) -> Result<Revoked, ApiError> {
        match self.tokens.get(id) {
            Some(t) if t.account == account => {
                self.tokens.remove(id);
                Ok(Revoked {
                    id: id.to_string(),
                    revoked: true,
                })
            }
            _ => Err(ApiError::not_found("token", id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_works_until_it_is_revoked_or_its_project_is_deleted() {
        let now = Timestamp::now();
        let mut st = State::default();
        let a = st.create_key("proj_1", "default", now);
        let b = st.create_key("proj_2", "default", now);
        assert!(a.key.starts_with("sk_live_") && a.id.starts_with("key_"));
        assert_eq!(st.active_key(&a.key).unwrap().id, a.id);
        assert!(
            st.revoke_key("other", &a.id, now).is_err(),
            "another workspace's key"
        );
        assert!(st.revoke_key("default", &a.id, now).unwrap().revoked);
        assert!(st.active_key(&a.key).is_none());
        assert!(
            st.revoke_key("default", &a.id, now).is_ok(),
            "again: same answer"
        );
        st.keys.get_mut(&b.id).unwrap().project_deleted = true;
        assert!(st.active_key(&b.key).is_none());
        assert_eq!(
            st.revoke_key("default", &b.id, now).unwrap_err().status,
            404
        );
        let shown = format!("{:?}", st.key_infos());
        assert!(
            !shown.contains(&a.key) && !shown.contains(&b.key),
            "{shown}"
        );
    }

    #[test]
    fn scopes_are_checked_against_the_documented_set() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_scopes(&s(&["users:read", "usage:read", "users:read"])).unwrap(),
            s(&["users:read", "usage:read"])
        );
        assert_eq!(check_scopes(&s(&[])).unwrap_err().status, 422);
        let e = check_scopes(&s(&["users:read", "admin:all"])).unwrap_err();
        assert!(e.message.contains("admin:all"), "{}", e.message);
    }
}
