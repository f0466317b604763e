//! The sandbox's resources and their lifecycles, and the idempotency memory: what the state
//! file holds. Computes are here, domains and records in [`dns`].
//!
//! Lifecycles are lazy: a resource stores its current state plus at most one pending
//! transition (`until`, `to`); every access first *settles* it against the clock. No task runs
//! per resource, so ten thousand computes cost a map of small structs.

mod dns;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::catalog;
use super::reply::{SimError, rfc3339};
use super::wire::{Compute, ComputeCreate, ComputeState};

pub use dns::{DomainRec, RecordGroup};

/// How long the asynchronous transitions take.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    pub create: Duration,
    pub action: Duration,
    pub destroy: Duration,
    pub activate: Duration,
    pub idempotency_ttl: Duration,
}

pub fn after(now: Timestamp, d: Duration) -> Timestamp {
    now.saturating_add(d).unwrap_or(Timestamp::MAX)
}

/// A pending lifecycle step: at `until` the compute becomes `to` (with `new_spec` if an upsize).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transition {
    pub until: Timestamp,
    pub to: ComputeState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_spec: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComputeRec {
    pub id: u64,
    pub host_name: String,
    pub image: String,
    pub specification: String,
    pub region: String,
    #[serde(default)]
    pub ipv4: Option<String>,
    #[serde(default)]
    pub private_ipv4: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub state: ComputeState,
    #[serde(default)]
    pub transition: Option<Transition>,
}

impl ComputeRec {
    /// Applies a due transition.
    pub fn settle(&mut self, now: Timestamp) {
        if self.transition.as_ref().is_some_and(|t| now >= t.until)
            && let Some(t) = self.transition.take()
        {
            self.state = t.to;
            if let Some(spec) = t.new_spec {
                self.specification = spec;
            }
            self.updated_at = t.until;
        }
    }

    /// The API view. Addresses show once the compute has left CREATING.
    pub fn view(&self) -> Compute {
        let creating = self.state == ComputeState::Creating;
        Compute {
            id: self.id.to_string(),
            host_name: self.host_name.clone(),
            state: self.state.clone(),
            image: self.image.clone(),
            specification: self.specification.clone(),
            region: self.region.clone(),
            ipv4: if creating { None } else { self.ipv4.clone() },
            private_ipv4: if creating {
                None
            } else {
                self.private_ipv4.clone()
            },
            tags: self.tags.clone(),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
}

/// A remembered successful create: the request fingerprint and the answer it got.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdemEntry {
    pub request_hash: String,
    pub message: String,
    pub data: Value,
    pub created_at: Timestamp,
}

pub enum IdemCheck {
    Fresh,
    Replay(IdemEntry),
    Mismatch,
}

#[derive(Debug, Clone, Copy)]
pub enum Action {
    Start,
    Stop,
    Reboot,
}

/// Everything the sandbox knows; the persisted snapshot is this struct minus `timing`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    #[serde(default)]
    pub version: u32,
    #[serde(default)]
    pub last_compute_id: u64,
    #[serde(default)]
    pub computes: BTreeMap<u64, ComputeRec>,
    #[serde(default)]
    pub domains: Vec<DomainRec>,
    #[serde(default)]
    pub idempotency: HashMap<String, IdemEntry>,
    #[serde(skip)]
    pub timing: Timing,
    /// Accept a record identical (name, type, value) to one the zone already has, as some DNS
    /// APIs do; set from the configuration, never persisted.
    #[serde(skip)]
    pub allow_duplicate_records: bool,
    #[serde(skip)]
    pub inserts_since_prune: u32,
}

fn private_ip(n: u64) -> String {
    format!(
        "10.{}.{}.{}",
        (n / 64_516) % 254,
        (n / 254) % 254,
        n % 254 + 1
    )
}

fn public_ip(n: u64) -> String {
    format!("195.15.{}.{}", (n / 254) % 254, n % 254 + 1)
}

impl State {
    pub fn new(timing: Timing) -> Self {
        Self {
            version: 1,
            timing,
            ..Default::default()
        }
    }

    // ---- computes -------------------------------------------------------------------------

    /// Settles every compute and forgets the destroyed ones.
    pub fn settle_computes(&mut self, now: Timestamp) {
        for c in self.computes.values_mut() {
            c.settle(now);
        }
        self.computes
            .retain(|_, c| c.state != ComputeState::Destroyed);
    }

    /// The compute with this id, settled, if it is still present.
    pub fn compute_mut(&mut self, id: &str, now: Timestamp) -> Result<&mut ComputeRec, SimError> {
        let n: u64 = id.parse().map_err(|_| SimError::compute_not_found(id))?;
        let gone = match self.computes.get_mut(&n) {
            None => return Err(SimError::compute_not_found(id)),
            Some(c) => {
                c.settle(now);
                c.state == ComputeState::Destroyed
            }
        };
        if gone {
            self.computes.remove(&n);
            return Err(SimError::compute_not_found(id));
        }
        self.computes
            .get_mut(&n)
            .ok_or_else(|| SimError::compute_not_found(id))
    }

    pub fn list_computes(
        &mut self,
        now: Timestamp,
        offset: usize,
        limit: usize,
    ) -> (Vec<Compute>, u64) {
        self.settle_computes(now);
        let total = self.computes.len() as u64;
        let page = self
            .computes
            .values()
            .skip(offset)
            .take(limit)
            .map(ComputeRec::view)
            .collect();
        (page, total)
    }

    pub fn all_computes(&mut self, now: Timestamp) -> Vec<Compute> {
        self.settle_computes(now);
        self.computes.values().map(ComputeRec::view).collect()
    }

    /// Creates a compute from an already validated request.
    pub fn create_compute(&mut self, req: ComputeCreate, now: Timestamp) -> Compute {
        self.last_compute_id += 1;
        let id = self.last_compute_id;
        let rec = ComputeRec {
            id,
            host_name: req.host_name,
            image: req.image,
            specification: req.specification,
            region: req.region,
            ipv4: req.with_public_ip.then(|| public_ip(id)),
            private_ipv4: Some(private_ip(id)),
            tags: req.tags,
            created_at: now,
            updated_at: now,
            state: ComputeState::Creating,
            transition: Some(Transition {
                until: after(now, self.timing.create),
                to: ComputeState::Running,
                new_spec: None,
            }),
        };
        let view = rec.view();
        self.computes.insert(id, rec);
        view
    }

    /// Creates `n` computes that are RUNNING at once.
    pub fn seed_computes(&mut self, n: usize, tags: &[String], now: Timestamp) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            self.last_compute_id += 1;
            let id = self.last_compute_id;
            self.computes.insert(
                id,
                ComputeRec {
                    id,
                    host_name: format!("seed-{id}"),
                    image: "UBUNTU-24.04".into(),
                    specification: "S-1C-1G".into(),
                    region: "KGL-1".into(),
                    ipv4: Some(public_ip(id)),
                    private_ipv4: Some(private_ip(id)),
                    tags: tags.to_vec(),
                    created_at: now,
                    updated_at: now,
                    state: ComputeState::Running,
                    transition: None,
                },
            );
            ids.push(id.to_string());
        }
        ids
    }

    pub fn compute_action(
        &mut self,
        id: &str,
        action: Action,
        now: Timestamp,
    ) -> Result<Compute, SimError> {
        let delay = self.timing.action;
        let c = self.compute_mut(id, now)?;
        let (verb, need, via, to) = match action {
            Action::Start => (
                "start",
                ComputeState::Stopped,
                ComputeState::Starting,
                ComputeState::Running,
            ),
            Action::Stop => (
                "stop",
                ComputeState::Running,
                ComputeState::Stopping,
                ComputeState::Stopped,
            ),
            Action::Reboot => (
                "reboot",
                ComputeState::Running,
                ComputeState::Rebooting,
                ComputeState::Running,
            ),
        };
        if c.state != need {
            return Err(SimError::conflict(format!(
                "cannot {verb} compute {id}: it is {}; {verb} needs a {need} compute",
                c.state
            )));
        }
        c.state = via;
        c.updated_at = now;
        c.transition = Some(Transition {
            until: after(now, delay),
            to,
            new_spec: None,
        });
        Ok(c.view())
    }

    pub fn upsize(
        &mut self,
        id: &str,
        new_spec: &str,
        now: Timestamp,
    ) -> Result<Compute, SimError> {
        let delay = self.timing.action;
        let Some(new_rank) = catalog::spec_rank(new_spec) else {
            return Err(SimError::validation(format!(
                "newSpecification must be one of {}; got {new_spec:?}",
                catalog::spec_slugs().join(", ")
            )));
        };
        let c = self.compute_mut(id, now)?;
        let cur_rank = catalog::spec_rank(&c.specification).unwrap_or(0);
        if new_rank <= cur_rank {
            let larger = catalog::spec_slugs()[cur_rank + 1..].join(", ");
            let larger = if larger.is_empty() {
                "none".to_string()
            } else {
                larger
            };
            return Err(SimError::unprocessable(format!(
                "cannot upsize compute {id} from {} to {new_spec}: upsize only moves to a strictly \
                 larger specification (larger than {}: {larger})",
                c.specification, c.specification
            )));
        }
        if c.state != ComputeState::Running {
            return Err(SimError::conflict(format!(
                "cannot upsize compute {id}: it is {}; upsize needs a RUNNING compute",
                c.state
            )));
        }
        c.state = ComputeState::Rebooting;
        c.updated_at = now;
        c.transition = Some(Transition {
            until: after(now, delay),
            to: ComputeState::Running,
            new_spec: Some(new_spec.to_string()),
        });
        Ok(c.view())
    }

    pub fn delete_compute(&mut self, id: &str, now: Timestamp) -> Result<Compute, SimError> {
        let delay = self.timing.destroy;
        let c = self.compute_mut(id, now)?;
        if c.state != ComputeState::Destroying {
            c.state = ComputeState::Destroying;
            c.updated_at = now;
            c.transition = Some(Transition {
                until: after(now, delay),
                to: ComputeState::Destroyed,
                new_spec: None,
            });
        }
        Ok(c.view())
    }

    /// Changes a compute's addresses (None = unchanged, Some(None) = cleared).
    pub fn set_address(
        &mut self,
        id: &str,
        ipv4: Option<Option<String>>,
        private_ipv4: Option<Option<String>>,
        now: Timestamp,
    ) -> Result<Compute, SimError> {
        let c = self.compute_mut(id, now)?;
        if let Some(v) = ipv4 {
            c.ipv4 = v;
        }
        if let Some(v) = private_ipv4 {
            c.private_ipv4 = v;
        }
        c.updated_at = now.max(c.updated_at);
        Ok(c.view())
    }

    // ---- idempotency ----------------------------------------------------------------------

    fn idem_live(&self, e: &IdemEntry, now: Timestamp) -> bool {
        now < after(e.created_at, self.timing.idempotency_ttl)
    }

    pub fn idem_check(&mut self, key: &str, hash: &str, now: Timestamp) -> IdemCheck {
        let Some(e) = self.idempotency.get(key) else {
            return IdemCheck::Fresh;
        };
        if !self.idem_live(e, now) {
            self.idempotency.remove(key);
            return IdemCheck::Fresh;
        }
        if e.request_hash == hash {
            IdemCheck::Replay(e.clone())
        } else {
            IdemCheck::Mismatch
        }
    }

    pub fn idem_remember(
        &mut self,
        key: String,
        hash: String,
        message: &str,
        data: Value,
        now: Timestamp,
    ) {
        self.inserts_since_prune += 1;
        if self.inserts_since_prune >= 256 {
            self.prune_idempotency(now);
        }
        self.idempotency.insert(
            key,
            IdemEntry {
                request_hash: hash,
                message: message.to_string(),
                data,
                created_at: now,
            },
        );
    }

    pub fn prune_idempotency(&mut self, now: Timestamp) {
        self.inserts_since_prune = 0;
        let ttl = self.timing.idempotency_ttl;
        self.idempotency
            .retain(|_, e| now < after(e.created_at, ttl));
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::cloud::Strettch;
    use super::*;
    use crate::sim::Cloud;

    pub(super) fn timing() -> Timing {
        Timing {
            create: Duration::from_secs(5),
            action: Duration::from_secs(3),
            destroy: Duration::from_secs(3),
            activate: Duration::from_secs(10),
            idempotency_ttl: Duration::from_secs(60),
        }
    }

    fn req() -> ComputeCreate {
        ComputeCreate {
            host_name: "web".into(),
            image: "UBUNTU-24.04".into(),
            region: "KGL-1".into(),
            specification: "S-1C-1G".into(),
            public_keys: vec!["ssh-ed25519 AAAA".into()],
            with_public_ip: true,
            tags: vec!["a".into()],
        }
    }

    pub(super) fn at(t0: Timestamp, secs: u64) -> Timestamp {
        after(t0, Duration::from_secs(secs))
    }

    #[test]
    fn compute_lifecycle_is_lazy() {
        let mut st = State::new(timing());
        let t0 = Timestamp::now();
        let c = st.create_compute(req(), t0);
        assert_eq!(c.state, ComputeState::Creating);
        assert!(c.ipv4.is_none() && c.private_ipv4.is_none());
        let c = st.compute_mut("1", at(t0, 5)).unwrap().view();
        assert_eq!(c.state, ComputeState::Running);
        assert!(c.ipv4.is_some() && c.private_ipv4.is_some());

        assert!(st.compute_action("1", Action::Start, at(t0, 6)).is_err());
        let c = st.compute_action("1", Action::Stop, at(t0, 6)).unwrap();
        assert_eq!(c.state, ComputeState::Stopping);
        assert!(st.compute_action("1", Action::Reboot, at(t0, 7)).is_err());
        assert_eq!(
            st.compute_mut("1", at(t0, 9)).unwrap().state,
            ComputeState::Stopped
        );
        let e = st.upsize("1", "S-2C-4G", at(t0, 9)).unwrap_err();
        assert_eq!(e.status.as_u16(), 409);
        st.compute_action("1", Action::Start, at(t0, 10)).unwrap();
        assert_eq!(
            st.compute_mut("1", at(t0, 13)).unwrap().state,
            ComputeState::Running
        );

        let e = st.upsize("1", "S-1C-1G", at(t0, 13)).unwrap_err();
        assert_eq!(e.status.as_u16(), 422);
        let e = st.upsize("1", "S-9C", at(t0, 13)).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        let c = st.upsize("1", "S-2C-4G", at(t0, 13)).unwrap();
        assert_eq!(c.state, ComputeState::Rebooting);
        assert_eq!(c.specification, "S-1C-1G");
        let c = st.compute_mut("1", at(t0, 16)).unwrap().view();
        assert_eq!(
            (c.state, c.specification.as_str()),
            (ComputeState::Running, "S-2C-4G")
        );

        assert_eq!(
            st.delete_compute("1", at(t0, 20)).unwrap().state,
            ComputeState::Destroying
        );
        assert_eq!(
            st.delete_compute("1", at(t0, 21)).unwrap().state,
            ComputeState::Destroying
        );
        assert!(st.compute_action("1", Action::Reboot, at(t0, 21)).is_err());
        assert_eq!(st.list_computes(at(t0, 22), 0, 10).1, 1);
        assert_eq!(st.list_computes(at(t0, 23), 0, 10).1, 0);
        assert_eq!(
            st.compute_mut("1", at(t0, 23)).unwrap_err().code,
            "COMPUTE_NOT_FOUND"
        );
        assert_eq!(
            st.compute_mut("x", at(t0, 23)).unwrap_err().code,
            "COMPUTE_NOT_FOUND"
        );
    }

    #[test]
    fn a_snapshot_loads_back_with_this_runs_timing() {
        let mut st = State::new(timing());
        let t0 = Timestamp::now();
        st.create_compute(req(), t0);
        st.create_domain("example.com", t0).unwrap();
        st.idem_remember(
            "k".into(),
            "h".into(),
            "m",
            serde_json::json!({"id": "1"}),
            t0,
        );
        let bytes = serde_json::to_vec(&st).unwrap();
        let strettch = Strettch {
            timing: timing(),
            allow_duplicate_records: false,
        };
        let mut back = strettch.initial_state(Some(serde_json::from_slice(&bytes).unwrap()));
        assert_eq!(back.last_compute_id, 1);
        assert_eq!(back.domains.len(), 1);
        assert!(matches!(
            back.idem_check("k", "h", t0),
            IdemCheck::Replay(_)
        ));
        assert!(matches!(
            back.idem_check("k", "other", t0),
            IdemCheck::Mismatch
        ));
        assert!(
            matches!(back.idem_check("k", "h", at(t0, 61)), IdemCheck::Fresh),
            "the TTL is this run's"
        );

        let empty: State = serde_json::from_str("{}").unwrap();
        assert!(empty.computes.is_empty() && empty.domains.is_empty());
    }
}
