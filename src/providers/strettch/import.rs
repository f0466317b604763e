//! Strettch's side of `stratus import`: computes, domains and their records, from the bulk
//! listings the operator observes with (`GET /computes` and `GET /domains` in pages of 100,
//! `GET /domains/{id}/records` per zone), mapped to `forProvider` as the adapters compare it.

use super::api::compute::{Compute, ComputeParameters, PowerState};
use super::api::dns_record::{DnsRecord, DnsRecordParameters, DnsRecordType};
use super::api::domain::{Domain, DomainParameters};
use super::cloud::StrettchCloud;
use super::compute::OWNER_TAG_PREFIX;
use super::model::{self, ComputeState, RecordType};
use crate::api::provider_config::Provider;
use crate::cloud::throttle::Priority;
use crate::engine::Connect;
use crate::import::{
    Connection, Found, ImportError, ImportKind, Importer, ListOptions, Listing, PLACEHOLDER,
    Placeholder, Reference, wants,
};

/// A user waits for the answer: the listings go ahead of the routine refreshes.
const PRIORITY: Priority = Priority::Urgent;

/// What `publicKeys` holds in an imported Compute.
pub const PUBLIC_KEY_PLACEHOLDER: &str =
    "REPLACE-ME the SSH public key this compute was created with (Strettch does not report it)";

pub struct StrettchImporter;

#[async_trait::async_trait]
impl Importer for StrettchImporter {
    fn provider(&self) -> Provider {
        Provider::Strettch
    }

    fn kinds(&self) -> Vec<ImportKind> {
        vec![
            ImportKind::of::<Compute>(true),
            ImportKind::of::<Domain>(false),
            ImportKind::of::<DnsRecord>(false),
        ]
    }

    async fn list(
        &self,
        connection: Connection,
        want: &[ImportKind],
        _options: ListOptions,
    ) -> Result<Listing, ImportError> {
        let cloud =
            StrettchCloud::connect(&connection.config_name, &connection.spec, connection.key)?;
        let client = &cloud.client;
        let mut listing = Listing::default();
        if wants(want, "Compute") {
            let computes = client
                .list_all_computes(PRIORITY)
                .await
                .map_err(ImportError::cloud("computes"))?;
            listing.found.extend(computes.iter().filter_map(compute));
        }
        if wants(want, "Domain") || wants(want, "DnsRecord") {
            let domains = client
                .list_domains(PRIORITY)
                .await
                .map_err(ImportError::cloud("domains"))?;
            for d in &domains {
                if wants(want, "Domain") {
                    listing.found.push(domain(d));
                }
                if wants(want, "DnsRecord") {
                    let records = client
                        .list_records(&d.id, PRIORITY)
                        .await
                        .map_err(ImportError::cloud(format!("the records of {}", d.domain)))?;
                    listing.found.extend(records.iter().map(|r| record(d, r)));
                }
            }
        }
        Ok(listing)
    }
}

/// A compute's manifest, or `None` for one being deleted. `publicKeys` is a placeholder: the
/// API never returns a compute's keys.
pub fn compute(c: &model::Compute) -> Option<Found> {
    if matches!(c.state, ComputeState::Destroying | ComputeState::Destroyed) {
        return None;
    }
    let params = ComputeParameters {
        host_name: c.host_name.clone(),
        image: c.image.clone(),
        region: c.region.clone(),
        specification: c.specification.clone(),
        public_keys: vec![PUBLIC_KEY_PLACEHOLDER.to_string()],
        with_public_ip: c.ipv4.is_some(),
        tags: c
            .tags
            .iter()
            .filter(|t| !t.starts_with(OWNER_TAG_PREFIX))
            .cloned()
            .collect(),
        power_state: match c.state {
            ComputeState::Stopped | ComputeState::Stopping => PowerState::Stopped,
            _ => PowerState::Running,
        },
    };
    let mut f = Found::new("Compute", &c.id, &c.host_name, params);
    f.region = Some(c.region.clone());
    f.placeholders.push(Placeholder {
        field: "publicKeys".into(),
        why: format!(
            "Strettch does not report a compute's SSH keys; replace the {PLACEHOLDER} line with the key(s) it was created with before applying (the field cannot change once the object has adopted the compute). The operator sends them only if it has to create the compute again"
        ),
    });
    if let Some(uid) = c.tags.iter().find_map(|t| t.strip_prefix(OWNER_TAG_PREFIX)) {
        f.owner_uid = Some(uid.to_string());
        f.notes.push(format!(
            "it carries a {OWNER_TAG_PREFIX} tag of an object this cluster does not have: a stratus operator created it for an object deleted with deletionPolicy: Orphan, or in another cluster"
        ));
    }
    Some(f)
}

/// A zone's manifest (its name as the Domain adapter normalises it).
pub fn domain(d: &model::Domain) -> Found {
    let name = d.domain.trim_end_matches('.').to_ascii_lowercase();
    Found::new(
        "Domain",
        &d.id,
        &name,
        DomainParameters {
            domain: name.clone(),
        },
    )
}

/// A record's manifest: in its zone (`domainRef` when the Domain is imported too), with the
/// TTL written out so it never falls back to the default.
pub fn record(d: &model::Domain, r: &model::Record) -> Found {
    let zone = d.domain.trim_end_matches('.').to_ascii_lowercase();
    let fqdn = if r.name == "@" {
        zone.clone()
    } else {
        format!("{}.{zone}", r.name)
    };
    let params = DnsRecordParameters {
        domain_ref: None,
        domain_id: Some(d.id.clone()),
        name: r.name.clone(),
        record_type: record_type(r.record_type),
        value: Some(r.value.clone()),
        value_from: None,
        ttl: Some(r.ttl),
        priority: r.priority,
        weight: r.weight,
        port: r.port,
        comment: r.comment.clone().filter(|c| !c.is_empty()),
    };
    let mut f = Found::new("DnsRecord", &r.id, &fqdn, params);
    f.name_hint = format!("{fqdn}-{}", r.record_type.as_str());
    f.references.push(Reference {
        kind: "Domain".into(),
        id: d.id.clone(),
        ref_field: "domainRef",
        id_field: "domainId",
    });
    f
}

fn record_type(t: RecordType) -> DnsRecordType {
    match t {
        RecordType::A => DnsRecordType::A,
        RecordType::AAAA => DnsRecordType::AAAA,
        RecordType::CNAME => DnsRecordType::CNAME,
        RecordType::MX => DnsRecordType::MX,
        RecordType::TXT => DnsRecordType::TXT,
        RecordType::SRV => DnsRecordType::SRV,
        RecordType::NS => DnsRecordType::NS,
    }
}

#[cfg(test)]
mod tests;
