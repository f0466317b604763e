//! `Idempotency-Key` on POST (002: "idempotency keys prevent duplicate creates"; *assumed* in
//! `cloudapi` from 003's "idempotent requests"): per account, the first request's answer is
//! kept for [`TTL`] and replayed to a retry with the same method, path and body; the same key
//! with another request is refused (`422 IDEMPOTENCY_KEY_REUSED`), and while the first is still
//! being served a second gets `409 IDEMPOTENCY_KEY_IN_USE`. Only successful (2xx) answers are
//! kept: after an error the retry runs again.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{State, after};

/// How long an answer is remembered (*assumed*: a day).
pub const TTL: Duration = Duration::from_secs(24 * 3600);

/// A kept answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub status: u16,
    pub body: String,
    /// The answer holds a secret (a created key or token): kept in memory only, never in the
    /// state file, so a replay of it does not survive a restart.
    #[serde(default)]
    pub secret: bool,
}

/// Writes the remembered answers without those that hold a secret (`State::idempotency`).
pub fn serialize_without_secrets<S: serde::Serializer>(
    map: &BTreeMap<String, IdemEntry>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let kept: Vec<_> = map
        .iter()
        .filter(|(_, e)| !e.answer.as_ref().is_some_and(|a| a.secret))
        .collect();
    let mut m = s.serialize_map(Some(kept.len()))?;
    for (k, v) in kept {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdemEntry {
    /// SHA-256 of method, path and body.
    pub request: String,
    pub at: Timestamp,
    /// `None` while the first request is being served.
    #[serde(default)]
    pub answer: Option<Stored>,
}

/// What to do with a request that carries an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idem {
    /// First time: serve it (an entry now marks it in flight).
    Serve,
    Replay(Stored),
    /// The key was used for another request.
    Reused,
    /// The first request with this key is still being served.
    InFlight,
}

impl State {
    pub fn idempotency_begin(&mut self, key: &str, request: &str, now: Timestamp) -> Idem {
        self.idempotency.retain(|_, e| now < after(e.at, TTL));
        match self.idempotency.get(key) {
            Some(e) if e.request != request => Idem::Reused,
            Some(IdemEntry {
                answer: Some(a), ..
            }) => Idem::Replay(a.clone()),
            Some(_) => Idem::InFlight,
            None => {
                self.idempotency.insert(
                    key.to_string(),
                    IdemEntry {
                        request: request.to_string(),
                        at: now,
                        answer: None,
                    },
                );
                Idem::Serve
            }
        }
    }

    /// Keeps the answer (`Some`) or forgets the key (`None`: the answer was not a success).
    pub fn idempotency_end(&mut self, key: &str, answer: Option<Stored>) {
        match answer {
            Some(a) => {
                if let Some(e) = self.idempotency.get_mut(key) {
                    e.answer = Some(a);
                }
            }
            None => {
                self.idempotency.remove(key);
            }
        }
    }

    /// Forgets every remembered key (`/_sim/idempotency/forget`).
    pub fn forget_idempotency(&mut self) -> usize {
        let n = self.idempotency.len();
        self.idempotency.clear();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_replays_its_first_success_and_refuses_another_request() {
        let mut st = State::default();
        let now = Timestamp::now();
        assert_eq!(st.idempotency_begin("k", "r1", now), Idem::Serve);
        assert_eq!(st.idempotency_begin("k", "r1", now), Idem::InFlight);
        let a = Stored {
            status: 201,
            body: "{}".into(),
            secret: false,
        };
        st.idempotency_end("k", Some(a.clone()));
        assert_eq!(st.idempotency_begin("k", "r1", now), Idem::Replay(a));
        assert_eq!(st.idempotency_begin("k", "r2", now), Idem::Reused);
        // An error is not kept: the retry runs again.
        assert_eq!(st.idempotency_begin("e", "r", now), Idem::Serve);
        st.idempotency_end("e", None);
        assert_eq!(st.idempotency_begin("e", "r", now), Idem::Serve);
        // A day later the key is free again.
        assert_eq!(
            st.idempotency_begin("k", "r2", after(now, TTL)),
            Idem::Serve
        );
    }
}
