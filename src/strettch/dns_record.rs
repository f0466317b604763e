//! The DnsRecord adapter: how a `DnsRecord` maps onto the records of a Strettch zone
//! (/domains/{id}/records).
//!
//! Records carry no tags, so a record is recognised by what it is: (name, type, value) is unique
//! in a zone. Before creating, the adapter looks for that record in a fresh listing of the zone
//! and adopts it unless another DnsRecord already manages it (then: Conflict). Together with the
//! deterministic Idempotency-Key this makes creates crash-safe.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use uuid::Uuid;

use super::cloud::StrettchCloud;
use super::domain::list_all;
use super::model::{self, RecordType, RecordWrite};
use crate::api::Compute;
use crate::api::common::{CREATE_PENDING, EXTERNAL_NAME, ManagedStatus};
use crate::api::dns_record::{
    ComputeAddressField, DnsRecord, DnsRecordObservation, DnsRecordParameters, DnsRecordType,
};
use crate::api::domain::Domain;
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::engine::{
    Adapter, Blocked, Found, Freshness, Invalid, ManagedSpec, Plan, Proof, Readiness,
};

pub const TTL_MIN: u32 = 60;
pub const TTL_MAX: u32 = 86_400;
/// What Strettch uses when a record has no TTL.
pub const TTL_DEFAULT: u32 = 60;
pub const TXT_MAX: usize = 2048;
pub const COMMENT_MAX: usize = 255;

/// How old a zone listing may be to confirm that a `domainId` exists.
const ZONE_CHECK_AGE: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct DnsRecordAdapter {
    kube: kube::Client,
    /// Namespaces the operator watches (empty: all), where claims of other objects are looked for.
    namespaces: Arc<Vec<String>>,
}

impl DnsRecordAdapter {
    pub fn new(kube: kube::Client, namespaces: Vec<String>) -> Self {
        Self {
            kube,
            namespaces: Arc::new(namespaces),
        }
    }
}

/// The record to have, with references resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredRecord {
    pub domain_id: String,
    /// The zone id was given literally (spec.forProvider.domainId), not through a Domain.
    pub literal_domain: bool,
    /// The record exists already (an id is recorded): a zone that is not ACTIVE (any more) does
    /// not stop it from being observed, only from being created.
    pub recorded: bool,
    /// TTL always set (the default made explicit), so it compares with what the API reports.
    pub write: RecordWrite,
}

/// What a record create sends: the zone (in the path) and the record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordCreate {
    pub domain_id: String,
    pub record: RecordWrite,
}

/// A record and the zone it is in.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedRecord {
    pub domain_id: String,
    pub record: model::Record,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RecordAction {
    /// PUT the record: value, ttl, priority, weight, port and comment.
    Replace(RecordWrite),
}

pub fn model_type(t: DnsRecordType) -> RecordType {
    match t {
        DnsRecordType::A => RecordType::A,
        DnsRecordType::AAAA => RecordType::AAAA,
        DnsRecordType::CNAME => RecordType::CNAME,
        DnsRecordType::MX => RecordType::MX,
        DnsRecordType::TXT => RecordType::TXT,
        DnsRecordType::SRV => RecordType::SRV,
        DnsRecordType::NS => RecordType::NS,
    }
}

/// A label of a record name or target: letters, digits, hyphens and underscores, 1-63, no
/// leading or trailing hyphen.
fn is_record_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// A fully qualified hostname (record target): two labels or more, an optional trailing dot, at
/// most 253 characters, and a top-level label that is not all digits (so not an IP address).
pub fn is_fqdn(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = s.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| is_record_label(l))
        && labels
            .last()
            .is_some_and(|tld| !tld.bytes().all(|c| c.is_ascii_digit()))
}

/// A record name relative to its zone.
pub fn check_name(name: &str) -> Result<(), String> {
    if name == "@" {
        return Ok(());
    }
    let bad = |why: &str| {
        format!(
            "spec.forProvider.name {name:?} is not a record name: {why}; use '@' for the apex or labels relative to the zone such as www, _dmarc, _sip._tcp, *.dev"
        )
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.ends_with('.') {
        return Err(bad(
            "it ends with a dot (absolute names are not accepted: give it relative to the zone)",
        ));
    }
    for (i, label) in name.split('.').enumerate() {
        if label == "*" && i == 0 {
            continue;
        }
        if !is_record_label(label) {
            return Err(bad(&format!(
                "label {label:?} must be 1-63 letters, digits, hyphens and underscores, not starting or ending with a hyphen ('*' only as the first label)"
            )));
        }
    }
    Ok(())
}

/// The value rules of each type. `field` names where the value came from, for the message.
pub fn check_value(t: DnsRecordType, value: &str, field: &str) -> Result<(), String> {
    match t {
        DnsRecordType::A => {
            if value.parse::<Ipv4Addr>().is_err() {
                return Err(format!(
                    "{field}: an A record needs an IPv4 address such as 192.0.2.1; got {value:?}"
                ));
            }
        }
        DnsRecordType::AAAA => {
            if value.parse::<Ipv6Addr>().is_err() {
                return Err(format!(
                    "{field}: an AAAA record needs an IPv6 address such as 2001:db8::1; got {value:?}"
                ));
            }
        }
        DnsRecordType::CNAME | DnsRecordType::MX | DnsRecordType::NS | DnsRecordType::SRV => {
            if !is_fqdn(value) {
                return Err(format!(
                    "{field}: a {} record needs a fully qualified hostname such as host.example.com; got {value:?}",
                    model_type(t).as_str()
                ));
            }
        }
        DnsRecordType::TXT => {
            let n = value.chars().count();
            if n == 0 || n > TXT_MAX {
                return Err(format!(
                    "{field}: a TXT record needs 1 to {TXT_MAX} characters; got {n}"
                ));
            }
        }
    }
    Ok(())
}

/// Every rule that can be checked without reading anything.
pub fn validate_params(p: &DnsRecordParameters) -> Result<(), Invalid> {
    let invalid = |m: String| Invalid::new("InvalidSpec", m);
    match (&p.domain_ref, &p.domain_id) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(invalid(
                "spec.forProvider: set exactly one of domainRef (a Domain in this namespace) and domainId (a zone id)".into(),
            ));
        }
        (Some(r), None) if r.name.trim().is_empty() => {
            return Err(invalid(
                "spec.forProvider.domainRef.name must name a Domain".into(),
            ));
        }
        (None, Some(id)) if id.trim().is_empty() => {
            return Err(invalid(
                "spec.forProvider.domainId must not be empty".into(),
            ));
        }
        _ => {}
    }
    check_name(&p.name).map_err(invalid)?;
    let t = p.record_type;
    let type_name = model_type(t).as_str();
    match (&p.value, &p.value_from) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(invalid(
                "spec.forProvider: set exactly one of value and valueFrom".into(),
            ));
        }
        (Some(v), None) => check_value(t, v, "spec.forProvider.value").map_err(invalid)?,
        (None, Some(src)) => {
            if t != DnsRecordType::A {
                return Err(invalid(format!(
                    "spec.forProvider.valueFrom gives an IPv4 address, so it only fits A records, not {type_name}"
                )));
            }
            if src.compute_ref.name.trim().is_empty() {
                return Err(invalid(
                    "spec.forProvider.valueFrom.computeRef.name must name a Compute".into(),
                ));
            }
        }
    }
    if let Some(ttl) = p.ttl
        && !(TTL_MIN..=TTL_MAX).contains(&ttl)
    {
        return Err(invalid(format!(
            "spec.forProvider.ttl must be from {TTL_MIN} to {TTL_MAX} seconds; got {ttl}"
        )));
    }
    let uses_priority = matches!(t, DnsRecordType::MX | DnsRecordType::SRV);
    let is_srv = t == DnsRecordType::SRV;
    if uses_priority && p.priority.is_none() {
        return Err(invalid(format!(
            "spec.forProvider.priority is required for {type_name} records (0-65535, lower is preferred)"
        )));
    }
    if !uses_priority && p.priority.is_some() {
        return Err(invalid(format!(
            "spec.forProvider.priority is only allowed on MX and SRV records, not {type_name}"
        )));
    }
    for (field, v) in [("weight", p.weight), ("port", p.port)] {
        if is_srv && v.is_none() {
            return Err(invalid(format!(
                "spec.forProvider.{field} is required for SRV records (0-65535)"
            )));
        }
        if !is_srv && v.is_some() {
            return Err(invalid(format!(
                "spec.forProvider.{field} is only allowed on SRV records, not {type_name}"
            )));
        }
    }
    if let Some(c) = &p.comment
        && c.chars().count() > COMMENT_MAX
    {
        return Err(invalid(format!(
            "spec.forProvider.comment must be at most {COMMENT_MAX} characters"
        )));
    }
    Ok(())
}

/// What makes a record unique in a zone: names compare case-insensitively, hostnames without
/// case or trailing dot, addresses by value, text exactly.
pub fn identity(name: &str, t: RecordType, value: &str) -> (String, RecordType, String) {
    let v = match t {
        RecordType::A => value
            .parse::<Ipv4Addr>()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| value.to_string()),
        RecordType::AAAA => value
            .parse::<Ipv6Addr>()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| value.to_string()),
        RecordType::TXT => value.to_string(),
        _ => value
            .strip_suffix('.')
            .unwrap_or(value)
            .to_ascii_lowercase(),
    };
    (name.to_ascii_lowercase(), t, v)
}

fn record_identity(r: &model::Record) -> (String, RecordType, String) {
    identity(&r.name, r.record_type, &r.value)
}

fn write_identity(w: &RecordWrite) -> (String, RecordType, String) {
    identity(&w.name, w.record_type, &w.value)
}

fn describe(name: &str, t: RecordType, value: &str) -> String {
    format!("{name} {} {value}", t.as_str())
}

fn immutable(field: &str, from: &str, to: &str) -> Invalid {
    Invalid::new(
        "ImmutableFieldChanged",
        format!(
            "spec.forProvider.{field} changed from {from:?} to {to:?}, which cannot change on an existing record; revert it, or create a new DnsRecord"
        ),
    )
}

/// Pure diff of desired against observed.
pub fn plan(d: &DesiredRecord, o: &ObservedRecord) -> Plan<RecordAction> {
    let w = &d.write;
    let r = &o.record;
    if o.domain_id != d.domain_id {
        return Plan::Impossible(immutable(
            if d.literal_domain {
                "domainId"
            } else {
                "domainRef"
            },
            &format!("zone {}", o.domain_id),
            &format!("zone {}", d.domain_id),
        ));
    }
    if !r.name.eq_ignore_ascii_case(&w.name) {
        return Plan::Impossible(immutable("name", &r.name, &w.name));
    }
    if r.record_type != w.record_type {
        return Plan::Impossible(immutable(
            "type",
            r.record_type.as_str(),
            w.record_type.as_str(),
        ));
    }
    let empty = |c: &Option<String>| c.clone().filter(|c| !c.is_empty());
    let same = record_identity(r) == write_identity(w)
        && r.ttl == w.ttl.unwrap_or(TTL_DEFAULT)
        && r.priority == w.priority
        && r.weight == w.weight
        && r.port == w.port
        && empty(&r.comment) == empty(&w.comment);
    if same {
        Plan::UpToDate
    } else {
        Plan::Update(vec![RecordAction::Replace(w.clone())])
    }
}

pub fn readiness(o: &ObservedRecord) -> Readiness {
    let r = &o.record;
    Readiness::Available(format!(
        "record {} is served (ttl {}s)",
        describe(&r.name, r.record_type, &r.value),
        r.ttl
    ))
}

pub fn observation(o: &ObservedRecord) -> DnsRecordObservation {
    let r = &o.record;
    DnsRecordObservation {
        id: r.id.clone(),
        domain_id: o.domain_id.clone(),
        name: Some(r.name.clone()),
        record_type: Some(r.record_type.as_str().into()),
        value: Some(r.value.clone()),
        ttl: Some(r.ttl),
        priority: r.priority,
        weight: r.weight,
        port: r.port,
        comment: r.comment.clone(),
        created_at: r.created_at.clone(),
        updated_at: r.updated_at.clone(),
    }
}

fn waiting(reason: &str, message: String) -> Blocked {
    Blocked::Waiting(Invalid::new(reason, message))
}

fn ready_message(d: &Domain) -> Option<String> {
    d.status.as_ref().and_then(|s| {
        s.managed
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.message.clone())
    })
}

/// A zone named by `domainId` takes records once it is ACTIVE, as a referenced Domain does.
pub fn zone_gate(zone: &model::Domain) -> Result<(), Blocked> {
    let nameservers = if zone.nameservers.is_empty() {
        "the nameservers Strettch lists for it".to_string()
    } else {
        zone.nameservers.join(", ")
    };
    let name = &zone.domain;
    let id = &zone.id;
    match zone.status {
        model::DomainStatus::Active => Ok(()),
        model::DomainStatus::Activating => Err(waiting(
            "WaitingForDomain",
            format!(
                "zone {id} ({name}) is ACTIVATING: the record is created once it is ACTIVE; set its nameservers at the registrar to {nameservers}"
            ),
        )),
        model::DomainStatus::Inactive => Err(waiting(
            "WaitingForDomain",
            format!(
                "zone {id} ({name}) is INACTIVE: its nameservers are not set correctly; set them at the registrar to {nameservers}"
            ),
        )),
    }
}

/// The zone id of a referenced Domain, once that Domain is ACTIVE (or at once, for a record
/// that exists already: `recorded`).
pub fn domain_gate(name: &str, d: Option<&Domain>, recorded: bool) -> Result<String, Blocked> {
    let Some(d) = d else {
        return Err(waiting(
            "WaitingForDomain",
            format!(
                "Domain {name} does not exist (yet) in this namespace: create it, or fix spec.forProvider.domainRef"
            ),
        ));
    };
    if d.meta().deletion_timestamp.is_some() {
        return Err(waiting(
            "WaitingForDomain",
            format!("Domain {name} is being deleted"),
        ));
    }
    let at = d.status.as_ref().and_then(|s| s.at_provider.as_ref());
    let nameservers = at
        .map(|a| a.nameservers.join(", "))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "the nameservers the Domain lists".into());
    match at.map(|a| (a.id.as_str(), a.status.as_deref())) {
        Some((id, Some("ACTIVE"))) if !id.is_empty() => Ok(id.to_string()),
        Some((id, _)) if recorded && !id.is_empty() => Ok(id.to_string()),
        Some((_, Some("ACTIVATING"))) => Err(waiting(
            "WaitingForDomain",
            format!(
                "Domain {name} is ACTIVATING: the record is created once it is ACTIVE; set its nameservers at the registrar to {nameservers}"
            ),
        )),
        Some((_, Some("INACTIVE"))) => Err(waiting(
            "WaitingForDomain",
            format!(
                "Domain {name} is INACTIVE: its nameservers are not set correctly; set them at the registrar to {nameservers}"
            ),
        )),
        Some((_, status)) => Err(waiting(
            "WaitingForDomain",
            format!(
                "Domain {name} is {}",
                status.unwrap_or("not reported by Strettch yet")
            ),
        )),
        None => Err(waiting(
            "WaitingForDomain",
            format!(
                "Domain {name} has no zone in Strettch yet{}",
                ready_message(d)
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
        )),
    }
}

/// The address a Compute gives, once it has one.
pub fn compute_address(
    name: &str,
    field: ComputeAddressField,
    c: Option<&Compute>,
) -> Result<String, Blocked> {
    let Some(c) = c else {
        return Err(waiting(
            "WaitingForCompute",
            format!(
                "Compute {name} does not exist (yet) in this namespace: create it, or fix spec.forProvider.valueFrom.computeRef"
            ),
        ));
    };
    let at = c.status.as_ref().and_then(|s| s.at_provider.as_ref());
    let addr = at.and_then(|a| match field {
        ComputeAddressField::Ipv4 => a.ipv4.clone(),
        ComputeAddressField::PrivateIpv4 => a.private_ipv4.clone(),
    });
    match addr.filter(|a| !a.is_empty()) {
        Some(a) => {
            check_value(
                DnsRecordType::A,
                &a,
                &format!("status.atProvider.{} of Compute {name}", field.as_str()),
            )
            .map_err(|m| Blocked::Invalid(Invalid::new("InvalidValue", m)))?;
            Ok(a)
        }
        None => Err(waiting(
            "WaitingForCompute",
            format!("Compute {name} has no {} yet", field.as_str()),
        )),
    }
}

/// The desired record from the spec and the resolved zone id and value.
pub fn desired_record(p: &DnsRecordParameters, domain_id: String, value: String) -> DesiredRecord {
    DesiredRecord {
        domain_id,
        literal_domain: p.domain_id.is_some(),
        recorded: false,
        write: RecordWrite {
            name: p.name.clone(),
            record_type: model_type(p.record_type),
            value,
            ttl: Some(p.ttl.unwrap_or(TTL_DEFAULT)),
            priority: p.priority,
            weight: p.weight,
            port: p.port,
            comment: p.comment.clone().filter(|c| !c.is_empty()),
        },
    }
}

/// Whether `other` asks for the same record as `me` (same zone, name, type and value source).
fn same_target(me: &DnsRecord, other: &DnsRecord) -> bool {
    let (a, b) = (&me.spec.for_provider, &other.spec.for_provider);
    let same_ns = me.namespace() == other.namespace();
    let zone = match (&a.domain_id, &b.domain_id, &a.domain_ref, &b.domain_ref) {
        (Some(x), Some(y), _, _) => x == y,
        (None, None, Some(x), Some(y)) => same_ns && x.name == y.name,
        _ => false,
    };
    let t = model_type(a.record_type);
    let value = match (&a.value, &b.value, &a.value_from, &b.value_from) {
        (Some(x), Some(y), _, _) => identity("", t, x) == identity("", t, y),
        (None, None, Some(x), Some(y)) => same_ns && x == y,
        _ => false,
    };
    zone && value && a.record_type == b.record_type && a.name.eq_ignore_ascii_case(&b.name)
}

fn annotation<'a>(obj: &'a DnsRecord, key: &str) -> Option<&'a str> {
    obj.annotations()
        .get(key)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

fn conflict(message: String) -> CloudError {
    CloudError::Api {
        status: 409,
        code: model::codes::CONFLICT.into(),
        message,
        request_id: None,
        retry_after: None,
    }
}

fn zone_missing(domain_id: &str) -> CloudError {
    CloudError::Api {
        status: 404,
        code: "DOMAIN_NOT_FOUND".into(),
        message: format!("zone {domain_id} does not exist in Strettch"),
        request_id: None,
        retry_after: None,
    }
}

/// Who, besides `me`, has a claim on record `found`: a DnsRecord recording its id, or one in the
/// middle of creating the same record (it may have made this one and not recorded it yet).
/// `include_pending` is false for crash recovery, where the record is most likely ours.
async fn rival(
    kube: &kube::Client,
    namespaces: &[String],
    me: &DnsRecord,
    found: &model::Record,
    include_pending: bool,
) -> Result<Option<CloudError>, CloudError> {
    let others: Vec<DnsRecord> = list_all(kube, namespaces).await?;
    let what = format!(
        "record {} ({})",
        found.id,
        describe(&found.name, found.record_type, &found.value)
    );
    let mine = |o: &DnsRecord| o.meta().uid.is_some() && o.meta().uid == me.meta().uid;
    let key = |o: &DnsRecord| format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any());
    if let Some(owner) = others
        .iter()
        .find(|o| !mine(o) && annotation(o, EXTERNAL_NAME) == Some(found.id.as_str()))
    {
        return Ok(Some(conflict(format!(
            "{what} is already managed by DnsRecord {}; two objects cannot manage one record: delete one of them, or change its name, type or value",
            key(owner)
        ))));
    }
    if include_pending
        && let Some(other) = others.iter().find(|o| {
            !mine(o)
                && annotation(o, EXTERNAL_NAME).is_none()
                && annotation(o, CREATE_PENDING).is_some()
                && same_target(me, o)
        })
    {
        return Ok(Some(conflict(format!(
            "{what} is being created by DnsRecord {} as well; two objects cannot manage one record: delete one of them",
            key(other)
        ))));
    }
    Ok(None)
}

impl DnsRecordAdapter {
    /// The zone a recorded record is in: from the status, the spec, or the referenced Domain;
    /// `None` when none of them says.
    async fn zone_of(&self, obj: &DnsRecord, id: &str) -> Option<String> {
        if let Some(at) = obj.status.as_ref().and_then(|s| s.at_provider.as_ref())
            && at.id == id
            && !at.domain_id.is_empty()
        {
            return Some(at.domain_id.clone());
        }
        let p = &obj.spec.for_provider;
        if let Some(id) = p.domain_id.as_ref().filter(|i| !i.is_empty()) {
            return Some(id.clone());
        }
        let r = p.domain_ref.as_ref()?;
        let api: Api<Domain> = Api::namespaced(self.kube.clone(), &obj.namespace()?);
        api.get_opt(&r.name)
            .await
            .ok()
            .flatten()
            .and_then(|d| d.status)
            .and_then(|s| s.at_provider)
            .map(|a| a.id)
            .filter(|i| !i.is_empty())
    }

    /// A create refused because the record exists: say who holds it — another DnsRecord, or
    /// nobody in this cluster (made outside it: adopt it deliberately with the annotation).
    async fn explain_conflict(
        &self,
        cloud: &StrettchCloud,
        obj: &DnsRecord,
        request: &RecordCreate,
        refused: CloudError,
    ) -> CloudError {
        if Self::list_zone(cloud, &request.domain_id, Duration::from_secs(2))
            .await
            .is_err()
        {
            return refused;
        }
        let want = write_identity(&request.record);
        let Some(found) = cloud
            .records(&request.domain_id)
            .find(|r| record_identity(r) == want)
        else {
            return refused;
        };
        match rival(&self.kube, &self.namespaces, obj, &found, true).await {
            Ok(Some(err)) => err,
            Ok(None) => conflict(format!(
                "record {} ({}) exists already and no DnsRecord manages it: it was made outside this cluster's objects, so it is not adopted silently; to manage it, set the {EXTERNAL_NAME} annotation to {}",
                found.id,
                describe(&found.name, found.record_type, &found.value),
                found.id
            )),
            Err(_) => refused,
        }
    }

    /// Look for record `id` in every zone (when nothing says which zone it is in).
    async fn search_zones(
        &self,
        cloud: &StrettchCloud,
        id: &str,
    ) -> Result<Option<ObservedRecord>, CloudError> {
        for d in cloud.client.list_domains(Priority::Urgent).await? {
            match cloud.client.get_record(&d.id, id, Priority::Urgent).await {
                Ok(record) => {
                    return Ok(Some(ObservedRecord {
                        domain_id: d.id,
                        record,
                    }));
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// A listing of the zone no older than `max_age`; `Err(zone_missing)` when the zone is gone.
    async fn list_zone(
        cloud: &StrettchCloud,
        domain_id: &str,
        max_age: Duration,
    ) -> Result<(), CloudError> {
        let snap = cloud.records(domain_id);
        match snap
            .get("", max_age, || {
                cloud.client.list_records(domain_id, Priority::Urgent)
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => {
                cloud.forget_zone(domain_id);
                Err(zone_missing(domain_id))
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait::async_trait]
impl Adapter for DnsRecordAdapter {
    type Kind = DnsRecord;
    type Cloud = StrettchCloud;
    type Observed = ObservedRecord;
    type Desired = DesiredRecord;
    type Action = RecordAction;
    type CreateRequest = RecordCreate;

    const CONTROLLER: &'static str = "dnsrecord";

    fn managed(obj: &DnsRecord) -> ManagedSpec {
        ManagedSpec {
            provider_config: obj.spec.provider_config_ref.name.clone(),
            deletion_policy: obj.spec.deletion_policy,
            management_policies: obj.spec.management_policies.clone(),
        }
    }

    fn status(obj: &DnsRecord) -> Option<&ManagedStatus> {
        obj.status.as_ref().map(|s| &s.managed)
    }

    fn reported_id(obj: &DnsRecord) -> Option<&str> {
        let at = obj.status.as_ref()?.at_provider.as_ref()?;
        Some(at.id.as_str()).filter(|id| !id.is_empty())
    }

    fn validate(obj: &DnsRecord) -> Result<(), Invalid> {
        validate_params(&obj.spec.for_provider)
    }

    async fn desired(
        &self,
        kube: &kube::Client,
        obj: &DnsRecord,
    ) -> Result<DesiredRecord, Blocked> {
        let p = &obj.spec.for_provider;
        let ns = obj.namespace().unwrap_or_default();
        let read_error = |what: String, e: kube::Error| {
            waiting("DependencyUnreadable", format!("cannot read {what}: {e}"))
        };
        let recorded = obj
            .annotations()
            .get(crate::api::common::EXTERNAL_NAME)
            .is_some_and(|id| !id.is_empty());
        let domain_id = match (&p.domain_id, &p.domain_ref) {
            (Some(id), _) => id.clone(),
            (None, Some(r)) => {
                let api: Api<Domain> = Api::namespaced(kube.clone(), &ns);
                let d = api
                    .get_opt(&r.name)
                    .await
                    .map_err(|e| read_error(format!("Domain {}", r.name), e))?;
                domain_gate(&r.name, d.as_ref(), recorded)?
            }
            (None, None) => {
                return Err(Blocked::Invalid(Invalid::new(
                    "InvalidSpec",
                    "spec.forProvider: set exactly one of domainRef and domainId",
                )));
            }
        };
        let value = match (&p.value, &p.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(src)) => {
                let r = &src.compute_ref;
                let api: Api<Compute> = Api::namespaced(kube.clone(), &ns);
                let c = api
                    .get_opt(&r.name)
                    .await
                    .map_err(|e| read_error(format!("Compute {}", r.name), e))?;
                compute_address(&r.name, r.field, c.as_ref())?
            }
            (None, None) => {
                return Err(Blocked::Invalid(Invalid::new(
                    "InvalidSpec",
                    "spec.forProvider: set exactly one of value and valueFrom",
                )));
            }
        };
        Ok(DesiredRecord {
            recorded,
            ..desired_record(p, domain_id, value)
        })
    }

    async fn check_offer(
        &self,
        cloud: &StrettchCloud,
        desired: &mut DesiredRecord,
    ) -> Result<Result<(), Blocked>, CloudError> {
        if !desired.literal_domain || desired.recorded {
            // A referenced Domain was just seen ACTIVE.
            return Ok(Ok(()));
        }
        let id = desired.domain_id.clone();
        let list = || cloud.client.list_domains(Priority::Routine);
        let mut found = cloud.domains.get(&id, ZONE_CHECK_AGE, list).await?;
        if found.is_none() {
            // Confirm an absence with a listing made now.
            found = cloud
                .domains
                .get(&id, Duration::ZERO, || {
                    cloud.client.list_domains(Priority::Urgent)
                })
                .await?;
        }
        Ok(match found {
            Some(zone) => zone_gate(&zone),
            None => Err(Blocked::Invalid(Invalid::new(
                "DomainNotFound",
                format!(
                    "spec.forProvider.domainId {id:?}: no such zone in the Strettch account of this ProviderConfig"
                ),
            ))),
        })
    }

    async fn observe(
        &self,
        cloud: &StrettchCloud,
        obj: &DnsRecord,
        id: &str,
        fresh: Freshness,
    ) -> Result<Option<ObservedRecord>, CloudError> {
        let Some(domain_id) = self.zone_of(obj, id).await else {
            return self.search_zones(cloud, id).await;
        };
        let found = cloud
            .records(&domain_id)
            .observe(
                id,
                fresh,
                |p| cloud.client.get_record(&domain_id, id, p),
                // A 404 for the listing means the zone is gone, and its records with it.
                |p| cloud.client.list_records(&domain_id, p),
            )
            .await?;
        Ok(found.map(|record| ObservedRecord { domain_id, record }))
    }

    fn create_request(_obj: &DnsRecord, d: &DesiredRecord) -> RecordCreate {
        RecordCreate {
            domain_id: d.domain_id.clone(),
            record: d.write.clone(),
        }
    }

    async fn find_created(
        &self,
        cloud: &StrettchCloud,
        obj: &DnsRecord,
        request: &RecordCreate,
    ) -> Result<Option<Found<ObservedRecord>>, CloudError> {
        match Self::list_zone(cloud, &request.domain_id, Duration::ZERO).await {
            Ok(()) => {}
            Err(e) if e.code() == "DOMAIN_NOT_FOUND" => return Ok(None),
            Err(e) => return Err(e),
        }
        // Records carry no owner marker: a record with the name, type and value the attempt
        // sent is ours only if it was made after the attempt started (the engine checks) and
        // no other DnsRecord records it. Where the zone allows identical records, take the
        // newest one nobody else records.
        let want = write_identity(&request.record);
        let mut candidates = cloud
            .records(&request.domain_id)
            .filter(|r| record_identity(r) == want);
        candidates.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        for found in candidates {
            if rival(&self.kube, &self.namespaces, obj, &found, false)
                .await?
                .is_none()
            {
                return Ok(Some(Found {
                    observed: ObservedRecord {
                        domain_id: request.domain_id.clone(),
                        record: found,
                    },
                    proof: Proof::NaturalKey,
                }));
            }
        }
        Ok(None)
    }

    async fn create(
        &self,
        cloud: &StrettchCloud,
        obj: &DnsRecord,
        request: &RecordCreate,
        key: Uuid,
    ) -> Result<ObservedRecord, CloudError> {
        // No listing first: an identical record that exists already is refused by the API (or,
        // where identical records are allowed, is someone else's), never adopted silently.
        let created = match cloud
            .client
            .create_record(&request.domain_id, &request.record, key)
            .await
        {
            Ok(r) => r,
            Err(e) if e.is_not_found() => {
                cloud.forget_zone(&request.domain_id);
                return Err(zone_missing(&request.domain_id));
            }
            Err(e) if e.code() == model::codes::CONFLICT => {
                return Err(self.explain_conflict(cloud, obj, request, e).await);
            }
            Err(e) => return Err(e),
        };
        cloud.records(&request.domain_id).put(created.clone());
        Ok(ObservedRecord {
            domain_id: request.domain_id.clone(),
            record: created,
        })
    }

    fn created_at(o: &ObservedRecord) -> Option<jiff::Timestamp> {
        o.record.created_at.as_deref().and_then(|t| t.parse().ok())
    }

    fn plan(d: &DesiredRecord, o: &ObservedRecord, _digest: Option<&str>) -> Plan<RecordAction> {
        plan(d, o)
    }

    async fn act(
        &self,
        cloud: &StrettchCloud,
        o: &ObservedRecord,
        action: &RecordAction,
    ) -> Result<ObservedRecord, CloudError> {
        match action {
            RecordAction::Replace(w) => {
                let r = cloud
                    .client
                    .update_record(&o.domain_id, &o.record.id, w)
                    .await?;
                cloud.records(&o.domain_id).put(r.clone());
                Ok(ObservedRecord {
                    domain_id: o.domain_id.clone(),
                    record: r,
                })
            }
        }
    }

    async fn delete(&self, cloud: &StrettchCloud, o: &ObservedRecord) -> Result<(), CloudError> {
        cloud
            .client
            .delete_record(&o.domain_id, &o.record.id)
            .await?;
        cloud.records(&o.domain_id).remove(&o.record.id);
        Ok(())
    }

    fn external_id(o: &ObservedRecord) -> String {
        o.record.id.clone()
    }

    fn is_deleting(_o: &ObservedRecord) -> bool {
        false
    }

    fn is_transitional(_o: &ObservedRecord) -> bool {
        false
    }

    fn readiness(o: &ObservedRecord) -> Readiness {
        readiness(o)
    }

    fn status_body(
        o: Option<&ObservedRecord>,
        previous: &DnsRecord,
        managed: ManagedStatus,
    ) -> serde_json::Value {
        let at_provider = o
            .map(observation)
            .or_else(|| previous.status.as_ref().and_then(|s| s.at_provider.clone()));
        let mut body = serde_json::to_value(&managed).unwrap_or_else(|_| json!({}));
        if let Some(a) = at_provider {
            body["atProvider"] = serde_json::to_value(a).unwrap_or_default();
        }
        body
    }
}

/// The DnsRecords that depend on Domain `domain` (in `namespace`), among `records`.
pub fn dependents_of_domain<'a>(
    records: impl IntoIterator<Item = &'a DnsRecord>,
    namespace: Option<&str>,
    domain: &str,
) -> Vec<&'a DnsRecord> {
    records
        .into_iter()
        .filter(|r| {
            r.namespace().as_deref() == namespace
                && r.spec
                    .for_provider
                    .domain_ref
                    .as_ref()
                    .is_some_and(|d| d.name == domain)
        })
        .collect()
}

/// The DnsRecords that take their value from Compute `compute` (in `namespace`), among `records`.
pub fn dependents_of_compute<'a>(
    records: impl IntoIterator<Item = &'a DnsRecord>,
    namespace: Option<&str>,
    compute: &str,
) -> Vec<&'a DnsRecord> {
    records
        .into_iter()
        .filter(|r| {
            r.namespace().as_deref() == namespace
                && r.spec
                    .for_provider
                    .value_from
                    .as_ref()
                    .is_some_and(|v| v.compute_ref.name == compute)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::compute::{ComputeObservation, ComputeStatus};
    use crate::api::dns_record::{ComputeAddressReference, DomainReference, ValueSource};
    use crate::api::domain::{DomainObservation, DomainStatus};

    fn params(t: DnsRecordType, value: &str) -> DnsRecordParameters {
        DnsRecordParameters {
            domain_ref: Some(DomainReference {
                name: "example-com".into(),
            }),
            domain_id: None,
            name: "www".into(),
            record_type: t,
            value: Some(value.into()),
            value_from: None,
            ttl: None,
            priority: None,
            weight: None,
            port: None,
            comment: None,
        }
    }

    fn reason(p: &DnsRecordParameters) -> String {
        validate_params(p).unwrap_err().message
    }

    #[test]
    fn values_must_fit_their_type() {
        assert!(validate_params(&params(DnsRecordType::A, "192.0.2.1")).is_ok());
        assert!(reason(&params(DnsRecordType::A, "2001:db8::1")).contains("IPv4"));
        assert!(reason(&params(DnsRecordType::A, "web.example.com")).contains("IPv4"));
        assert!(validate_params(&params(DnsRecordType::AAAA, "2001:db8::1")).is_ok());
        assert!(reason(&params(DnsRecordType::AAAA, "192.0.2.1")).contains("IPv6"));
        assert!(validate_params(&params(DnsRecordType::CNAME, "web.example.com.")).is_ok());
        for bad in ["web", "192.0.2.1", "-a.example.com", "a b.example.com"] {
            assert!(
                reason(&params(DnsRecordType::CNAME, bad)).contains("hostname"),
                "{bad}"
            );
        }
        assert!(validate_params(&params(DnsRecordType::TXT, "v=spf1 -all")).is_ok());
        assert!(reason(&params(DnsRecordType::TXT, &"x".repeat(2049))).contains("TXT"));
    }

    #[test]
    fn mx_needs_a_priority_and_srv_weight_and_port() {
        let mut mx = params(DnsRecordType::MX, "mail.example.com");
        assert!(reason(&mx).contains("priority"));
        mx.priority = Some(10);
        assert!(validate_params(&mx).is_ok());
        let mut a = params(DnsRecordType::A, "192.0.2.1");
        a.priority = Some(10);
        assert!(reason(&a).contains("only allowed"));
        let mut srv = params(DnsRecordType::SRV, "sip.example.com");
        srv.priority = Some(10);
        assert!(reason(&srv).contains("weight"));
        srv.weight = Some(5);
        assert!(reason(&srv).contains("port"));
        srv.port = Some(5060);
        assert!(validate_params(&srv).is_ok());
        let mut a = params(DnsRecordType::A, "192.0.2.1");
        a.port = Some(80);
        assert!(reason(&a).contains("port"));
    }

    #[test]
    fn ttl_names_and_exactly_one_of_each_pair() {
        let mut p = params(DnsRecordType::A, "192.0.2.1");
        p.ttl = Some(30);
        assert!(reason(&p).contains("ttl"));
        p.ttl = Some(86_401);
        assert!(reason(&p).contains("ttl"));
        p.ttl = Some(3600);
        assert!(validate_params(&p).is_ok());
        for ok in ["@", "www", "_dmarc", "_sip._tcp", "*", "*.dev"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "www.", "a.*", "-a", "a b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let mut both = params(DnsRecordType::A, "192.0.2.1");
        both.domain_id = Some("z".into());
        assert!(reason(&both).contains("domainRef"));
        let mut neither = params(DnsRecordType::A, "192.0.2.1");
        neither.domain_ref = None;
        assert!(reason(&neither).contains("domainRef"));
        let mut from = params(DnsRecordType::A, "192.0.2.1");
        from.value_from = Some(ValueSource {
            compute_ref: ComputeAddressReference {
                name: "web".into(),
                field: ComputeAddressField::Ipv4,
            },
        });
        assert!(reason(&from).contains("value and valueFrom"));
        from.value = None;
        assert!(validate_params(&from).is_ok());
        from.record_type = DnsRecordType::CNAME;
        assert!(reason(&from).contains("only fits A records"));
    }

    fn observed(value: &str, ttl: u32) -> ObservedRecord {
        ObservedRecord {
            domain_id: "z1".into(),
            record: model::Record {
                id: "r1".into(),
                name: "www".into(),
                record_type: RecordType::A,
                value: value.into(),
                ttl,
                priority: None,
                weight: None,
                port: None,
                comment: None,
                created_at: None,
                updated_at: None,
            },
        }
    }

    #[test]
    fn plan_replaces_changed_values_and_refuses_identity_changes() {
        let p = params(DnsRecordType::A, "192.0.2.1");
        let d = desired_record(&p, "z1".into(), "192.0.2.1".into());
        assert_eq!(plan(&d, &observed("192.0.2.1", 60)), Plan::UpToDate);
        // A new address (from a literal or a Compute) or TTL is one PUT.
        let d2 = desired_record(&p, "z1".into(), "192.0.2.9".into());
        assert_eq!(
            plan(&d2, &observed("192.0.2.1", 60)),
            Plan::Update(vec![RecordAction::Replace(d2.write.clone())])
        );
        assert!(matches!(
            plan(&d, &observed("192.0.2.1", 3600)),
            Plan::Update(_)
        ));
        // Name, type and zone cannot change.
        let mut renamed = d.clone();
        renamed.write.name = "api".into();
        match plan(&renamed, &observed("192.0.2.1", 60)) {
            Plan::Impossible(i) => {
                assert_eq!(i.reason, "ImmutableFieldChanged");
                assert!(i.message.contains("name"), "{}", i.message);
            }
            other => panic!("{other:?}"),
        }
        let moved = desired_record(&p, "z2".into(), "192.0.2.1".into());
        assert!(matches!(
            plan(&moved, &observed("192.0.2.1", 60)),
            Plan::Impossible(_)
        ));
        // Case and a trailing dot do not make a hostname different.
        let cname = params(DnsRecordType::CNAME, "Web.Example.com.");
        let d = desired_record(&cname, "z1".into(), "Web.Example.com.".into());
        let mut o = observed("web.example.com", 60);
        o.record.record_type = RecordType::CNAME;
        assert_eq!(plan(&d, &o), Plan::UpToDate);
    }

    fn domain(status: Option<&str>) -> Domain {
        let mut d = Domain::new(
            "example-com",
            serde_json::from_value(serde_json::json!({"forProvider": {"domain": "example.com"}}))
                .unwrap(),
        );
        d.status = status.map(|s| DomainStatus {
            managed: Default::default(),
            at_provider: Some(DomainObservation {
                id: "z1".into(),
                status: Some(s.into()),
                nameservers: vec!["ns1.strettch.com".into(), "ns2.strettch.com".into()],
                ..Default::default()
            }),
        });
        d
    }

    fn blocked_message(b: Blocked) -> (String, String) {
        match b {
            Blocked::Waiting(w) => (w.reason, w.message),
            Blocked::Invalid(i) => panic!("expected Waiting, got {i:?}"),
        }
    }

    #[test]
    fn records_in_a_zone_named_by_id_wait_until_it_is_active() {
        let mut zone = model::Domain {
            id: "z9".into(),
            domain: "example.org".into(),
            status: model::DomainStatus::Activating,
            nameservers: vec!["ns1.strettch.com".into()],
            created_at: None,
            updated_at: None,
        };
        let (reason, message) = blocked_message(zone_gate(&zone).unwrap_err());
        assert_eq!(reason, "WaitingForDomain");
        assert!(
            message.starts_with("zone z9 (example.org) is ACTIVATING")
                && message.contains("ns1.strettch.com"),
            "{message}"
        );
        zone.status = model::DomainStatus::Inactive;
        let (_, message) = blocked_message(zone_gate(&zone).unwrap_err());
        assert!(message.contains("INACTIVE"), "{message}");
        zone.status = model::DomainStatus::Active;
        assert!(zone_gate(&zone).is_ok());
    }

    #[test]
    fn records_wait_for_an_active_domain_and_a_compute_address() {
        assert_eq!(
            domain_gate("example-com", Some(&domain(Some("ACTIVE"))), false).unwrap(),
            "z1"
        );
        let (reason, message) = blocked_message(
            domain_gate("example-com", Some(&domain(Some("ACTIVATING"))), false).unwrap_err(),
        );
        assert_eq!(reason, "WaitingForDomain");
        assert!(
            message.starts_with("Domain example-com is ACTIVATING")
                && message.contains("ns1.strettch.com"),
            "{message}"
        );
        // A record that exists is observed whatever its Domain's state; only creating waits.
        assert_eq!(
            domain_gate("example-com", Some(&domain(Some("INACTIVE"))), true).unwrap(),
            "z1"
        );
        let (_, message) = blocked_message(domain_gate("example-com", None, false).unwrap_err());
        assert!(message.contains("does not exist"), "{message}");
        let (_, message) =
            blocked_message(domain_gate("example-com", Some(&domain(None)), false).unwrap_err());
        assert!(message.contains("no zone"), "{message}");

        let mut c = Compute::new(
            "web",
            serde_json::from_value(serde_json::json!({"forProvider": {
                "hostName": "web", "image": "UBUNTU-24.04", "region": "KGL-1",
                "specification": "S-1C-1G", "publicKeys": ["k"]}}))
            .unwrap(),
        );
        let (reason, message) = blocked_message(
            compute_address("web", ComputeAddressField::Ipv4, Some(&c)).unwrap_err(),
        );
        assert_eq!(reason, "WaitingForCompute");
        assert_eq!(message, "Compute web has no ipv4 yet");
        c.status = Some(ComputeStatus {
            managed: Default::default(),
            at_provider: Some(ComputeObservation {
                id: "7".into(),
                ipv4: Some("195.15.0.7".into()),
                private_ipv4: Some("10.0.0.7".into()),
                ..Default::default()
            }),
        });
        assert_eq!(
            compute_address("web", ComputeAddressField::Ipv4, Some(&c)).unwrap(),
            "195.15.0.7"
        );
        assert_eq!(
            compute_address("web", ComputeAddressField::PrivateIpv4, Some(&c)).unwrap(),
            "10.0.0.7"
        );
        // A resolved value is validated too.
        c.status
            .as_mut()
            .unwrap()
            .at_provider
            .as_mut()
            .unwrap()
            .ipv4 = Some("2001:db8::1".into());
        match compute_address("web", ComputeAddressField::Ipv4, Some(&c)) {
            Err(Blocked::Invalid(i)) => {
                assert_eq!(i.reason, "InvalidValue");
                assert!(
                    i.message.contains("status.atProvider.ipv4"),
                    "{}",
                    i.message
                );
            }
            other => panic!("{other:?}"),
        }
        let (_, message) =
            blocked_message(compute_address("web", ComputeAddressField::Ipv4, None).unwrap_err());
        assert!(message.contains("does not exist"), "{message}");
    }

    #[test]
    fn identity_ignores_case_dots_and_address_spelling() {
        assert_eq!(
            identity("WWW", RecordType::CNAME, "A.Example.com."),
            identity("www", RecordType::CNAME, "a.example.com")
        );
        assert_eq!(
            identity("@", RecordType::AAAA, "2001:0db8::0001"),
            identity("@", RecordType::AAAA, "2001:db8::1")
        );
        assert_ne!(
            identity("@", RecordType::TXT, "Hello"),
            identity("@", RecordType::TXT, "hello")
        );
    }
}
