//! Each imported manifest must be what the adapter considers in sync with the resource it was
//! read from: applied, it causes no update call.

use super::*;
use crate::engine::Adapter;
use crate::engine::Plan;
use crate::providers::strettch::compute::{self, DesiredCompute};
use crate::providers::strettch::dns_record::{self as rules, ObservedRecord, desired_record};
use crate::providers::strettch::domain::{self, DesiredDomain, normalize_domain};
use crate::providers::strettch::model::DomainStatus;

fn cloud_compute(state: ComputeState, tags: &[&str]) -> model::Compute {
    model::Compute {
        id: "cmp-1".into(),
        host_name: "web-1".into(),
        state,
        image: "UBUNTU-24.04".into(),
        specification: "S-1C-1G".into(),
        region: "KGL-1".into(),
        ipv4: Some("192.0.2.10".into()),
        private_ipv4: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        created_at: None,
        updated_at: None,
    }
}

fn zone() -> model::Domain {
    model::Domain {
        id: "dom-1".into(),
        domain: "Example.COM.".into(),
        status: DomainStatus::Active,
        nameservers: vec![],
        created_at: None,
        updated_at: None,
    }
}

fn cloud_record(name: &str, t: RecordType, value: &str, ttl: u32) -> model::Record {
    model::Record {
        id: format!("rec-{name}"),
        name: name.into(),
        record_type: t,
        value: value.into(),
        ttl,
        priority: (t == RecordType::MX).then_some(10),
        weight: None,
        port: None,
        comment: Some(String::new()),
        created_at: None,
        updated_at: None,
    }
}

#[test]
fn an_imported_compute_is_in_sync_with_a_placeholder_key_and_its_power_state() {
    for state in [ComputeState::Running, ComputeState::Stopped] {
        let c = cloud_compute(state.clone(), &["team:web", "stratus-uid:abc"]);
        let f = compute(&c).unwrap();
        assert_eq!(
            (f.kind.as_str(), f.external_id.as_str()),
            ("Compute", "cmp-1")
        );
        assert_eq!(f.region.as_deref(), Some("KGL-1"));
        let params: ComputeParameters = serde_json::from_value(f.for_provider.clone()).unwrap();
        assert_eq!(params.tags, ["team:web"]);
        assert!(params.public_keys[0].starts_with(PLACEHOLDER));
        compute::validate_params(&params).unwrap();
        let d = DesiredCompute {
            params,
            uid: "u".into(),
            offer: None,
        };
        // At adoption the engine records the digest of the spec's keys: the placeholder's.
        let digest = compute::ComputeAdapter::create_only_digest(&d).unwrap();
        assert_eq!(
            compute::plan(&d, &c, Some(&digest)),
            Plan::UpToDate,
            "{state}"
        );
        assert_eq!(f.placeholders[0].field, "publicKeys");
        assert!(!f.notes.is_empty(), "the owner tag is pointed out");
    }
}

#[test]
fn a_compute_being_deleted_is_not_imported() {
    assert!(compute(&cloud_compute(ComputeState::Destroying, &[])).is_none());
    assert!(compute(&cloud_compute(ComputeState::Destroyed, &[])).is_none());
}

#[test]
fn an_imported_domain_is_in_sync_under_its_normal_name() {
    let f = domain(&zone());
    assert_eq!(f.cloud_name, "example.com");
    let p: DomainParameters = serde_json::from_value(f.for_provider).unwrap();
    let d = DesiredDomain {
        domain: normalize_domain(&p.domain).unwrap(),
    };
    assert_eq!(domain::plan(&d, &zone()), Plan::UpToDate);
}

#[test]
fn imported_records_are_in_sync_and_point_at_their_zone() {
    for r in [
        cloud_record("www", RecordType::A, "192.0.2.1", 300),
        cloud_record("@", RecordType::MX, "mail.example.com.", 3600),
        cloud_record("_dmarc", RecordType::TXT, "v=DMARC1; p=none", 60),
    ] {
        let f = record(&zone(), &r);
        let p: DnsRecordParameters = serde_json::from_value(f.for_provider.clone()).unwrap();
        rules::validate_params(&p).unwrap();
        let d = desired_record(&p, "dom-1".into(), p.value.clone().unwrap());
        let o = ObservedRecord {
            domain_id: "dom-1".into(),
            record: r.clone(),
        };
        assert_eq!(rules::plan(&d, &o), Plan::UpToDate, "{r:?}");
        assert_eq!(f.references[0].id, "dom-1");
        assert_eq!(f.references[0].ref_field, "domainRef");
    }
    let apex = record(
        &zone(),
        &cloud_record("@", RecordType::MX, "mx.example.com", 60),
    );
    assert_eq!(apex.cloud_name, "example.com");
    assert_eq!(apex.name_hint, "example.com-MX");
    let www = record(
        &zone(),
        &cloud_record("www", RecordType::A, "192.0.2.1", 60),
    );
    assert_eq!(www.cloud_name, "www.example.com");
}
