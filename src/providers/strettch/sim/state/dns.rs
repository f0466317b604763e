//! Domains and their records: the DNS model of docs/strettch-dns.md.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::super::reply::{SimError, rfc3339};
use super::super::validate;
use super::super::wire::{Domain, DomainStatus, Record, RecordType, RecordWrite};
use super::{State, after};

/// The Strettch nameservers every domain is told to delegate to.
pub const NAMESERVERS: [&str; 2] = ["ns1.strettch.com", "ns2.strettch.com"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainRec {
    pub id: String,
    pub domain: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When ACTIVATING turns ACTIVE.
    pub active_at: Timestamp,
    /// A status forced through the control endpoint (wins over the clock).
    #[serde(default)]
    pub status_override: Option<DomainStatus>,
    #[serde(default)]
    pub records: Vec<Record>,
}

impl DomainRec {
    pub fn view(&self, now: Timestamp) -> Domain {
        let (status, updated) = match self.status_override {
            Some(s) => (s, self.updated_at),
            None if now >= self.active_at => {
                (DomainStatus::Active, self.updated_at.max(self.active_at))
            }
            None => (DomainStatus::Activating, self.updated_at),
        };
        Domain {
            id: self.id.clone(),
            domain: self.domain.clone(),
            status,
            nameservers: NAMESERVERS.iter().map(|s| s.to_string()).collect(),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(updated),
        }
    }
}

/// The records of one zone that share an identity (name, type and value, compared as the API
/// compares them, so `WWW` and `www` are one name). The sandbox's own view for tests that count
/// what the operator made: more than one id only when duplicates are allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordGroup {
    pub domain_id: String,
    pub domain: String,
    /// Lowercase.
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    /// Normalised: addresses in canonical form, hostnames lowercase without the final dot.
    pub value: String,
    /// `ids.len()`, spelled out for HTTP callers.
    pub count: usize,
    /// In creation order.
    pub ids: Vec<String>,
}

impl State {
    pub fn domain(&self, id: &str) -> Result<&DomainRec, SimError> {
        self.domains
            .iter()
            .find(|d| d.id == id)
            .ok_or_else(|| SimError::not_found(format!("domain {id:?} does not exist")))
    }

    pub fn domain_mut(&mut self, id: &str) -> Result<&mut DomainRec, SimError> {
        self.domains
            .iter_mut()
            .find(|d| d.id == id)
            .ok_or_else(|| SimError::not_found(format!("domain {id:?} does not exist")))
    }

    pub fn create_domain(&mut self, raw: &str, now: Timestamp) -> Result<Domain, SimError> {
        let name = validate::normalize_domain(raw).map_err(SimError::validation)?;
        if let Some(other) = self
            .domains
            .iter()
            .find(|d| validate::domains_overlap(&name, &d.domain))
        {
            let why = if other.domain == name {
                "is already registered".to_string()
            } else if name.ends_with(&format!(".{}", other.domain)) {
                format!("is a subdomain of the registered domain {}", other.domain)
            } else {
                format!("is a parent of the registered domain {}", other.domain)
            };
            return Err(SimError::conflict(format!("domain {name} {why}")));
        }
        let rec = DomainRec {
            id: uuid::Uuid::new_v4().to_string(),
            domain: name,
            created_at: now,
            updated_at: now,
            active_at: after(now, self.timing.activate),
            status_override: None,
            records: Vec::new(),
        };
        let view = rec.view(now);
        self.domains.push(rec);
        Ok(view)
    }

    pub fn delete_domain(&mut self, id: &str, now: Timestamp) -> Result<Domain, SimError> {
        let pos = self
            .domains
            .iter()
            .position(|d| d.id == id)
            .ok_or_else(|| SimError::not_found(format!("domain {id:?} does not exist")))?;
        Ok(self.domains.remove(pos).view(now))
    }

    pub fn set_domain_status(
        &mut self,
        id: &str,
        status: Option<DomainStatus>,
        now: Timestamp,
    ) -> Result<Domain, SimError> {
        let d = self.domain_mut(id)?;
        d.status_override = status;
        d.updated_at = now;
        Ok(d.view(now))
    }

    pub fn record_count(&self) -> usize {
        self.domains.iter().map(|d| d.records.len()).sum()
    }

    /// Every zone's records grouped by identity, zones in creation order, groups sorted by
    /// (name, type, value).
    pub fn record_groups(&self) -> Vec<RecordGroup> {
        let mut out = Vec::new();
        for d in &self.domains {
            let mut groups: BTreeMap<(String, &'static str, String), Vec<String>> = BTreeMap::new();
            for r in &d.records {
                let (name, t, value) = validate::record_identity(&r.name, r.record_type, &r.value);
                groups
                    .entry((name, t.as_str(), value))
                    .or_default()
                    .push(r.id.clone());
            }
            out.extend(
                groups
                    .into_iter()
                    .map(|((name, t, value), ids)| RecordGroup {
                        domain_id: d.id.clone(),
                        domain: d.domain.clone(),
                        name,
                        record_type: t.to_string(),
                        value,
                        count: ids.len(),
                        ids,
                    }),
            );
        }
        out
    }

    /// Refuses a write that would give the zone two records with one identity, unless
    /// duplicates are allowed.
    fn check_duplicate(
        allow: bool,
        d: &DomainRec,
        w: &RecordWrite,
        except: Option<&str>,
    ) -> Result<(), SimError> {
        if allow {
            return Ok(());
        }
        let id = validate::record_identity(&w.name, w.record_type, &w.value);
        if let Some(r) = d.records.iter().find(|r| {
            Some(r.id.as_str()) != except
                && validate::record_identity(&r.name, r.record_type, &r.value) == id
        }) {
            return Err(SimError::conflict(format!(
                "a {} record named {} with value {:?} already exists in {} (id {})",
                w.record_type.as_str(),
                w.name,
                w.value,
                d.domain,
                r.id
            )));
        }
        Ok(())
    }

    pub fn create_record(
        &mut self,
        domain_id: &str,
        w: RecordWrite,
        now: Timestamp,
    ) -> Result<Record, SimError> {
        let allow = self.allow_duplicate_records;
        let d = self.domain_mut(domain_id)?;
        let ttl = validate::check_record(&w, &d.domain).map_err(SimError::validation)?;
        Self::check_duplicate(allow, d, &w, None)?;
        let ts = rfc3339(now);
        let rec = Record {
            id: uuid::Uuid::new_v4().to_string(),
            name: w.name,
            record_type: w.record_type,
            value: w.value,
            ttl,
            priority: w.priority,
            weight: w.weight,
            port: w.port,
            comment: w.comment,
            created_at: ts.clone(),
            updated_at: ts,
        };
        d.records.push(rec.clone());
        Ok(rec)
    }

    /// Adds `n` A records (`seed-<i>` → 10.x.y.z) to a zone, as if made outside the operator.
    pub fn seed_records(
        &mut self,
        domain_id: &str,
        n: usize,
        now: Timestamp,
    ) -> Result<usize, SimError> {
        for i in 0..n {
            let w = RecordWrite {
                name: format!("seed-{i}"),
                record_type: RecordType::A,
                value: format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255),
                ttl: None,
                priority: None,
                weight: None,
                port: None,
                comment: None,
            };
            self.create_record(domain_id, w, now)?;
        }
        Ok(n)
    }

    pub fn record(&self, domain_id: &str, record_id: &str) -> Result<Record, SimError> {
        let d = self.domain(domain_id)?;
        d.records
            .iter()
            .find(|r| r.id == record_id)
            .cloned()
            .ok_or_else(|| record_not_found(record_id, &d.domain))
    }

    pub fn update_record(
        &mut self,
        domain_id: &str,
        record_id: &str,
        w: RecordWrite,
        now: Timestamp,
    ) -> Result<Record, SimError> {
        let allow = self.allow_duplicate_records;
        let d = self.domain_mut(domain_id)?;
        if !d.records.iter().any(|r| r.id == record_id) {
            return Err(record_not_found(record_id, &d.domain));
        }
        let ttl = validate::check_record(&w, &d.domain).map_err(SimError::validation)?;
        Self::check_duplicate(allow, d, &w, Some(record_id))?;
        let domain = d.domain.clone();
        let r = d
            .records
            .iter_mut()
            .find(|r| r.id == record_id)
            .ok_or_else(|| record_not_found(record_id, &domain))?;
        r.name = w.name;
        r.record_type = w.record_type;
        r.value = w.value;
        r.ttl = ttl;
        r.priority = w.priority;
        r.weight = w.weight;
        r.port = w.port;
        r.comment = w.comment;
        r.updated_at = rfc3339(now);
        Ok(r.clone())
    }

    pub fn delete_record(&mut self, domain_id: &str, record_id: &str) -> Result<Record, SimError> {
        let d = self.domain_mut(domain_id)?;
        let pos = d
            .records
            .iter()
            .position(|r| r.id == record_id)
            .ok_or_else(|| record_not_found(record_id, &d.domain))?;
        Ok(d.records.remove(pos))
    }
}

fn record_not_found(record_id: &str, domain: &str) -> SimError {
    SimError::not_found(format!("record {record_id:?} does not exist in {domain}"))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{at, timing};
    use super::*;

    #[test]
    fn domains_conflict_and_activate() {
        let mut st = State::new(timing());
        let t0 = Timestamp::now();
        let d = st.create_domain("Example.com", t0).unwrap();
        assert_eq!(d.status, DomainStatus::Activating);
        assert_eq!(d.domain, "example.com");
        assert_eq!(
            st.create_domain("a.example.com", t0)
                .unwrap_err()
                .status
                .as_u16(),
            409
        );
        assert_eq!(
            st.create_domain("example.com.", t0)
                .unwrap_err()
                .status
                .as_u16(),
            409
        );
        assert_eq!(
            st.create_domain("bad..com", t0)
                .unwrap_err()
                .status
                .as_u16(),
            400
        );
        st.create_domain("a.other.org", t0).unwrap();
        assert_eq!(
            st.create_domain("other.org", t0)
                .unwrap_err()
                .status
                .as_u16(),
            409
        );
        assert_eq!(st.domains[0].view(at(t0, 10)).status, DomainStatus::Active);
    }
}
