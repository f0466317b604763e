//! Pure validation rules of the sandbox: hostnames, domain names, record names and values,
//! idempotency keys, and the shape of JSON request bodies.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::wire::{RecordType, RecordWrite};

/// Smallest and largest record TTL, in seconds.
pub const TTL_MIN: u32 = 60;
pub const TTL_MAX: u32 = 86_400;
/// Default record TTL.
pub const TTL_DEFAULT: u32 = 60;
/// Longest TXT value, in characters.
pub const TXT_MAX: usize = 2048;
/// Longest record comment, in characters.
pub const COMMENT_MAX: usize = 255;

/// The record types the API accepts, as written on the wire.
pub const RECORD_TYPES: &str = "A, AAAA, CNAME, MX, TXT, SRV, NS";

/// A compute hostname: 1–63 characters, ASCII letters, digits and hyphens, no leading or
/// trailing hyphen.
pub fn is_hostname_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A DNS label of a record name: like a hostname label but also allows `_` (for `_dmarc`,
/// `_sip._tcp`, ...).
fn is_record_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A fully qualified hostname used as a record target (CNAME, MX, NS, SRV): at least two
/// hostname labels (underscores allowed), an optional trailing dot, at most 253 characters,
/// and a top-level label that is not all digits (so an IP address is not a hostname).
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

/// Normalises and checks a domain (zone) name: trims, lowercases and drops one trailing dot.
/// A domain has at least two labels, each a hostname label, at most 253 characters, and a
/// top-level label of letters (or an `xn--` IDN label) of at least two characters.
pub fn normalize_domain(raw: &str) -> Result<String, String> {
    let d = raw.trim().to_ascii_lowercase();
    let d = d.strip_suffix('.').unwrap_or(&d).to_string();
    let bad = || {
        format!(
            "domain must be a valid domain name such as example.com (labels of letters, digits \
             and hyphens, at most 63 characters each, 253 in all); got {raw:?}"
        )
    };
    if d.is_empty() || d.len() > 253 {
        return Err(bad());
    }
    let labels: Vec<&str> = d.split('.').collect();
    if labels.len() < 2 || !labels.iter().all(|l| is_hostname_label(l)) {
        return Err(bad());
    }
    let tld = labels[labels.len() - 1];
    let tld_ok = tld.len() >= 2
        && (tld.bytes().all(|c| c.is_ascii_alphabetic())
            || (tld.starts_with("xn--") && tld.len() > 4));
    if !tld_ok {
        return Err(bad());
    }
    Ok(d)
}

/// Whether one domain equals the other or lies under it (`a.example.com` vs `example.com`).
pub fn domains_overlap(a: &str, b: &str) -> bool {
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

/// A record name: `@` for the apex, or dot-separated DNS labels relative to the domain
/// (letters, digits, hyphens and underscores; `*` allowed as the leftmost label).
pub fn check_record_name(name: &str, domain: &str) -> Result<(), String> {
    if name == "@" {
        return Ok(());
    }
    let bad = |why: &str| {
        format!(
            "name must be '@' for the apex or DNS labels relative to the domain (e.g. www, \
             _dmarc, _sip._tcp): {why}; got {name:?}"
        )
    };
    if name.is_empty() {
        return Err(bad("it is empty (use '@' for the apex)"));
    }
    if name.ends_with('.') {
        return Err(bad("absolute names ending with '.' are not accepted"));
    }
    if name.len() + 1 + domain.len() > 253 {
        return Err(bad("the full name would exceed 253 characters"));
    }
    for (i, label) in name.split('.').enumerate() {
        if label == "*" && i == 0 {
            continue;
        }
        if !is_record_label(label) {
            return Err(bad(&format!("label {label:?} is not valid")));
        }
    }
    Ok(())
}

/// Checks a record write against the per-type rules. Returns the effective TTL.
pub fn check_record(w: &RecordWrite, domain: &str) -> Result<u32, String> {
    check_record_name(&w.name, domain)?;
    let t = w.record_type.as_str();
    match w.record_type {
        RecordType::A => {
            if w.value.parse::<Ipv4Addr>().is_err() {
                return Err(format!(
                    "value of an A record must be an IPv4 address such as 192.0.2.1; got {:?}",
                    w.value
                ));
            }
        }
        RecordType::AAAA => {
            if w.value.parse::<Ipv6Addr>().is_err() {
                return Err(format!(
                    "value of an AAAA record must be an IPv6 address such as 2001:db8::1; got {:?}",
                    w.value
                ));
            }
        }
        RecordType::CNAME | RecordType::MX | RecordType::NS | RecordType::SRV => {
            if !is_fqdn(&w.value) {
                return Err(format!(
                    "value of a {t} record must be a fully qualified hostname such as \
                     host.example.com; got {:?}",
                    w.value
                ));
            }
        }
        RecordType::TXT => {
            let n = w.value.chars().count();
            if n == 0 || n > TXT_MAX {
                return Err(format!(
                    "value of a TXT record must be 1 to {TXT_MAX} characters; got {n}"
                ));
            }
        }
    }
    let uses_priority = matches!(w.record_type, RecordType::MX | RecordType::SRV);
    let is_srv = w.record_type == RecordType::SRV;
    if uses_priority && w.priority.is_none() {
        return Err(format!(
            "priority is required for {t} records (an integer from 0 to 65535)"
        ));
    }
    if !uses_priority && w.priority.is_some() {
        return Err(format!(
            "priority is only allowed on MX and SRV records, not {t}"
        ));
    }
    for (field, v) in [("weight", w.weight), ("port", w.port)] {
        if is_srv && v.is_none() {
            return Err(format!(
                "{field} is required for SRV records (an integer from 0 to 65535)"
            ));
        }
        if !is_srv && v.is_some() {
            return Err(format!("{field} is only allowed on SRV records, not {t}"));
        }
    }
    let ttl = w.ttl.unwrap_or(TTL_DEFAULT);
    if !(TTL_MIN..=TTL_MAX).contains(&ttl) {
        return Err(format!(
            "ttl must be from {TTL_MIN} to {TTL_MAX} seconds; got {ttl}"
        ));
    }
    if let Some(c) = &w.comment
        && c.chars().count() > COMMENT_MAX
    {
        return Err(format!("comment must be at most {COMMENT_MAX} characters"));
    }
    Ok(ttl)
}

/// The identity of a record for duplicate detection: (name, type, value) with names compared
/// case-insensitively, hostnames without case or trailing dot, and addresses by value.
pub fn record_identity(name: &str, t: RecordType, value: &str) -> (String, RecordType, String) {
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

/// An `Idempotency-Key` must be a UUID version 4 with the RFC 4122 variant. Returns the key in
/// canonical (lowercase, hyphenated) form.
pub fn idempotency_key(raw: Option<&str>) -> Result<String, String> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Err("the Idempotency-Key header is required on create requests (a UUID v4)".into());
    };
    let bad = || format!("Idempotency-Key must be a UUID v4; got {raw:?}");
    let u = uuid::Uuid::parse_str(raw).map_err(|_| bad())?;
    if u.get_version_num() != 4 || u.get_variant() != uuid::Variant::RFC4122 {
        return Err(bad());
    }
    Ok(u.hyphenated().to_string())
}

/// The JSON kinds a body field can be checked for.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Str,
    StrList,
    Bool,
    U16,
    U32,
}

/// Checks the presence and JSON kind of body fields, so errors name the field. `null` counts as
/// absent. Unknown fields are ignored.
pub fn check_fields(body: &Value, fields: &[(&str, Kind, bool)]) -> Result<(), String> {
    let Some(obj) = body.as_object() else {
        return Err("the request body must be a JSON object".into());
    };
    for (name, kind, required) in fields {
        let v = obj.get(*name).filter(|v| !v.is_null());
        let Some(v) = v else {
            if *required {
                return Err(format!("{name} is required"));
            }
            continue;
        };
        let ok = match kind {
            Kind::Str => v.is_string(),
            Kind::StrList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            Kind::Bool => v.is_boolean(),
            Kind::U16 => v.as_u64().is_some_and(|n| n <= u16::MAX as u64),
            Kind::U32 => v.as_u64().is_some_and(|n| n <= u32::MAX as u64),
        };
        if !ok {
            let want = match kind {
                Kind::Str => "a string",
                Kind::StrList => "an array of strings",
                Kind::Bool => "a boolean",
                Kind::U16 => "an integer from 0 to 65535",
                Kind::U32 => "a non-negative integer",
            };
            return Err(format!("{name} must be {want}"));
        }
    }
    Ok(())
}

/// Drops `null` members of a JSON object so `#[serde(default)]` fields see them as absent.
pub fn strip_nulls(mut body: Value) -> Value {
    if let Some(obj) = body.as_object_mut() {
        obj.retain(|_, v| !v.is_null());
    }
    body
}

/// A JSON value in a canonical textual form (object keys sorted), for request fingerprints.
pub fn canonical_json(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String((*k).clone()).to_string());
                    out.push(':');
                    write(&m[k.as_str()], out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// Parses an IPv4 address given to the control endpoint (empty string = clear).
pub fn optional_ipv4(v: &str) -> Result<Option<String>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    v.parse::<Ipv4Addr>()
        .map(|a| Some(a.to_string()))
        .map_err(|_| format!("{v:?} is not an IPv4 address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(name: &str, t: RecordType, value: &str) -> RecordWrite {
        RecordWrite {
            name: name.into(),
            record_type: t,
            value: value.into(),
            ttl: None,
            priority: None,
            weight: None,
            port: None,
            comment: None,
        }
    }

    #[test]
    fn hostnames() {
        for ok in ["a", "web-01", "A1", &"x".repeat(63)] {
            assert!(is_hostname_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a_b", "a.b", "ü", &"x".repeat(64), "a b"] {
            assert!(!is_hostname_label(bad), "{bad}");
        }
    }

    #[test]
    fn domains() {
        assert_eq!(normalize_domain(" Example.COM. ").unwrap(), "example.com");
        assert_eq!(
            normalize_domain("a.b.example.co.rw").unwrap(),
            "a.b.example.co.rw"
        );
        assert!(normalize_domain("xn--80ak6aa92e.xn--p1ai").is_ok());
        for bad in [
            "",
            "com",
            "example",
            "-a.com",
            "a-.com",
            "a..com",
            "1.2.3.4",
            "exa mple.com",
            "a_b.com",
            "example.c",
            "example.123",
            ".com",
        ] {
            assert!(normalize_domain(bad).is_err(), "{bad}");
        }
        assert!(domains_overlap("a.example.com", "example.com"));
        assert!(domains_overlap("example.com", "a.example.com"));
        assert!(domains_overlap("example.com", "example.com"));
        assert!(!domains_overlap("notexample.com", "example.com"));
        assert!(!domains_overlap("example.com", "example.org"));
    }

    #[test]
    fn record_names() {
        for ok in ["@", "www", "_dmarc", "_sip._tcp", "*", "*.dev", "a.b-c"] {
            assert!(check_record_name(ok, "example.com").is_ok(), "{ok}");
        }
        for bad in ["", "www.", "a..b", "-a", "a*", "dev.*", "has space"] {
            assert!(check_record_name(bad, "example.com").is_err(), "{bad}");
        }
    }

    #[test]
    fn record_values_per_type() {
        let d = "example.com";
        assert!(check_record(&rec("@", RecordType::A, "192.0.2.1"), d).is_ok());
        assert!(check_record(&rec("@", RecordType::A, "192.0.2"), d).is_err());
        assert!(check_record(&rec("@", RecordType::A, "::1"), d).is_err());
        assert!(check_record(&rec("@", RecordType::AAAA, "2001:db8::1"), d).is_ok());
        assert!(check_record(&rec("@", RecordType::AAAA, "192.0.2.1"), d).is_err());
        assert!(check_record(&rec("www", RecordType::CNAME, "web.example.com."), d).is_ok());
        assert!(check_record(&rec("www", RecordType::CNAME, "192.0.2.1"), d).is_err());
        assert!(check_record(&rec("www", RecordType::CNAME, "localhost"), d).is_err());
        assert!(check_record(&rec("@", RecordType::NS, "ns1.strettch.com"), d).is_ok());
        assert!(check_record(&rec("@", RecordType::TXT, "v=spf1 -all"), d).is_ok());
        assert!(check_record(&rec("@", RecordType::TXT, ""), d).is_err());
        assert!(check_record(&rec("@", RecordType::TXT, &"x".repeat(2049)), d).is_err());

        let mut mx = rec("@", RecordType::MX, "mail.example.com");
        let e = check_record(&mx, d).unwrap_err();
        assert!(e.contains("priority"), "{e}");
        mx.priority = Some(10);
        assert!(check_record(&mx, d).is_ok());

        let mut srv = rec("_sip._tcp", RecordType::SRV, "sip.example.com");
        srv.priority = Some(10);
        srv.weight = Some(60);
        assert!(check_record(&srv, d).unwrap_err().contains("port"));
        srv.port = Some(5060);
        assert!(check_record(&srv, d).is_ok());

        let mut a = rec("@", RecordType::A, "192.0.2.1");
        a.priority = Some(1);
        assert!(check_record(&a, d).unwrap_err().contains("priority"));
        a.priority = None;
        a.ttl = Some(59);
        assert!(check_record(&a, d).unwrap_err().contains("ttl"));
        a.ttl = Some(86_401);
        assert!(check_record(&a, d).is_err());
        a.ttl = Some(3600);
        assert_eq!(check_record(&a, d).unwrap(), 3600);
        a.ttl = None;
        assert_eq!(check_record(&a, d).unwrap(), 60);
    }

    #[test]
    fn record_identity_normalises() {
        assert_eq!(
            record_identity("WWW", RecordType::CNAME, "Web.Example.com."),
            record_identity("www", RecordType::CNAME, "web.example.com")
        );
        assert_eq!(
            record_identity("@", RecordType::AAAA, "2001:0db8::0001"),
            record_identity("@", RecordType::AAAA, "2001:db8::1")
        );
        assert_ne!(
            record_identity("@", RecordType::TXT, "A"),
            record_identity("@", RecordType::TXT, "a")
        );
    }

    #[test]
    fn idempotency_keys() {
        let k = uuid::Uuid::new_v4().to_string();
        assert_eq!(idempotency_key(Some(&k)).unwrap(), k);
        assert_eq!(idempotency_key(Some(&k.to_uppercase())).unwrap(), k);
        assert!(idempotency_key(None).is_err());
        assert!(idempotency_key(Some("")).is_err());
        assert!(idempotency_key(Some("not-a-uuid")).is_err());
        // version 1
        assert!(idempotency_key(Some("c232ab00-9414-11ec-b3c8-9f6bdeced846")).is_err());
        // version nibble 4 but NCS variant
        assert!(idempotency_key(Some("550e8400-e29b-41d4-0716-446655440000")).is_err());
        assert!(idempotency_key(Some("550e8400-e29b-41d4-a716-446655440000")).is_ok());
    }

    #[test]
    fn fields_are_named() {
        let spec = [
            ("hostName", Kind::Str, true),
            ("tags", Kind::StrList, false),
            ("ttl", Kind::U32, false),
        ];
        assert!(check_fields(&json!({"hostName": "a"}), &spec).is_ok());
        assert!(check_fields(&json!({"hostName": "a", "tags": null}), &spec).is_ok());
        assert_eq!(
            check_fields(&json!({}), &spec).unwrap_err(),
            "hostName is required"
        );
        assert!(
            check_fields(&json!({"hostName": 1}), &spec)
                .unwrap_err()
                .starts_with("hostName")
        );
        assert!(
            check_fields(&json!({"hostName": "a", "tags": [1]}), &spec)
                .unwrap_err()
                .starts_with("tags")
        );
        assert!(
            check_fields(&json!({"hostName": "a", "ttl": -1}), &spec)
                .unwrap_err()
                .starts_with("ttl")
        );
        assert!(check_fields(&json!([1]), &spec).is_err());
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let a = json!({"b": 1, "a": {"d": [1, {"y": 2, "x": 1}], "c": "s"}});
        let b = json!({"a": {"c": "s", "d": [1, {"x": 1, "y": 2}]}, "b": 1});
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(canonical_json(&json!({"b":1,"a":2})), r#"{"a":2,"b":1}"#);
    }
}
