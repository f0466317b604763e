//! Pure rules of DNS records: what a valid record is, how records are identified, what
//! has to change.

use super::*;

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
pub(super) fn is_record_label(l: &str) -> bool {
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
        (None, Some(src)) => match (&src.compute_ref, &src.application_ref) {
            (Some(c), None) => {
                if t != DnsRecordType::A {
                    return Err(invalid(format!(
                        "spec.forProvider.valueFrom.computeRef gives an IPv4 address, so it only fits A records, not {type_name}"
                    )));
                }
                if c.name.trim().is_empty() {
                    return Err(invalid(
                        "spec.forProvider.valueFrom.computeRef.name must name a Compute".into(),
                    ));
                }
            }
            (None, Some(a)) => {
                let fits = matches!(
                    (a.record_type, t),
                    (ApplicationRecordType::CNAME, DnsRecordType::CNAME)
                        | (ApplicationRecordType::TXT, DnsRecordType::TXT)
                );
                if !fits {
                    return Err(invalid(format!(
                        "spec.forProvider.valueFrom.applicationRef.type {:?} must match the record's type {type_name}",
                        a.record_type
                    )));
                }
                if a.name.trim().is_empty() {
                    return Err(invalid(
                        "spec.forProvider.valueFrom.applicationRef.name must name an Application"
                            .into(),
                    ));
                }
            }
            _ => {
                return Err(invalid(
                    "spec.forProvider.valueFrom: set exactly one of computeRef and applicationRef"
                        .into(),
                ));
            }
        },
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

pub(super) fn record_identity(r: &model::Record) -> (String, RecordType, String) {
    identity(&r.name, r.record_type, &r.value)
}

pub(super) fn write_identity(w: &RecordWrite) -> (String, RecordType, String) {
    identity(&w.name, w.record_type, &w.value)
}

pub(super) fn describe(name: &str, t: RecordType, value: &str) -> String {
    format!("{name} {} {value}", t.as_str())
}

pub(super) fn immutable(field: &str, from: &str, to: &str) -> Invalid {
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
