//! The checked-in CRDs are what the Rust types generate.

#[test]
fn checked_in_crds_match_the_rust_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/stratus.yaml");
    let on_disk = std::fs::read_to_string(path).expect("crds/stratus.yaml");
    let generated = stratus::providers::crds_yaml();
    assert!(
        on_disk == generated,
        "crds/stratus.yaml is stale: regenerate it with `cargo run -q -- crds > crds/stratus.yaml`"
    );
}

#[test]
fn every_kind_has_printer_columns_a_category_and_descriptions() {
    for crd in stratus::providers::crds() {
        let name = crd.metadata.name.clone().unwrap();
        assert!(
            crd.spec
                .names
                .categories
                .as_ref()
                .is_some_and(|c| c.contains(&"stratus".to_string())),
            "{name} has no stratus category"
        );
        let version = &crd.spec.versions[0];
        assert!(
            version
                .additional_printer_columns
                .as_ref()
                .is_some_and(|c| !c.is_empty()),
            "{name}"
        );
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{name} has no status subresource"
        );
        let schema = serde_json::to_value(&version.schema).unwrap();
        let spec = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"];
        for (field, def) in spec.as_object().unwrap() {
            assert!(
                def.get("description").is_some(),
                "{name}: spec.{field} has no description"
            );
        }
    }
}

/// Every property below spec and status, recursively, that has no description.
fn undescribed_fields(node: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    if let Some(props) = node.get("properties").and_then(|p| p.as_object()) {
        for (field, def) in props {
            let here = format!("{path}.{field}");
            if !["apiVersion", "kind", "metadata"].contains(&field.as_str())
                && def.get("description").is_none()
            {
                out.push(here.clone());
            }
            undescribed_fields(def, &here, out);
        }
    }
    if let Some(items) = node.get("items") {
        undescribed_fields(items, &format!("{path}[]"), out);
    }
}

#[test]
fn every_spec_and_status_field_is_described_at_every_depth() {
    let mut missing = Vec::new();
    for crd in stratus::providers::crds() {
        let name = crd.metadata.name.clone().unwrap();
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        let root = &schema["openAPIV3Schema"]["properties"];
        for part in ["spec", "status"] {
            if let Some(node) = root.get(part) {
                undescribed_fields(node, &format!("{name}: {part}"), &mut missing);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "fields without a description (add a doc comment):\n{}",
        missing.join("\n")
    );
}

/// The CEL rules of the CRDs, evaluated offline (kube's `cel` feature): an update from `old` to
/// `new`, as the apiserver would judge it. Returns the failure messages.
mod cel {
    use kube::CustomResourceExt;
    use kube::core::cel::{ErrorKind, validate_cel, validate_cel_update};
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};
    use stratus::providers::strettch::api::{Compute, DnsRecord, Domain};

    fn update<K>(old: &Value, new: &Value) -> Vec<String>
    where
        K: CustomResourceExt + Serialize + DeserializeOwned,
    {
        let old: K = serde_json::from_value(old.clone()).expect("old object");
        let new: K = serde_json::from_value(new.clone()).expect("new object");
        validate_cel(&old).expect("the old object is valid on its own");
        match validate_cel_update(&new, &old) {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .iter()
                .map(|e| {
                    assert_eq!(e.kind, ErrorKind::ValidationFailure, "{e}");
                    e.message.clone()
                })
                .collect(),
        }
    }

    /// One create-only field of one kind: an object, and a change of that field.
    struct Case {
        kind: &'static str,
        field: &'static str,
        object: Value,
        at_provider: Value,
        change: fn(&mut Value),
        check: fn(&Value, &Value) -> Vec<String>,
    }

    fn object(kind: &str, api_version: &str, for_provider: Value) -> Value {
        json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": {"name": "x", "namespace": "ns"},
            "spec": {"forProvider": for_provider},
        })
    }

    fn compute(field: &'static str, change: fn(&mut Value)) -> Case {
        Case {
            kind: "Compute",
            field,
            object: object(
                "Compute",
                "strettch.stratus.dev/v1alpha1",
                json!({"hostName": "web-01", "image": "UBUNTU-24.04", "region": "KGL-1",
                       "specification": "S-1C-1G", "publicKeys": ["ssh-ed25519 AAAA ops"]}),
            ),
            at_provider: json!({"id": "c-1", "state": "RUNNING"}),
            change,
            check: update::<Compute>,
        }
    }

    fn domain(field: &'static str, change: fn(&mut Value)) -> Case {
        Case {
            kind: "Domain",
            field,
            object: object(
                "Domain",
                "strettch.stratus.dev/v1alpha1",
                json!({"domain": "example.com"}),
            ),
            at_provider: json!({"id": "d-1", "status": "ACTIVE"}),
            change,
            check: update::<Domain>,
        }
    }

    fn record(field: &'static str, change: fn(&mut Value)) -> Case {
        Case {
            kind: "DnsRecord",
            field,
            object: object(
                "DnsRecord",
                "strettch.stratus.dev/v1alpha1",
                json!({"domainRef": {"name": "zone"}, "name": "www", "type": "TXT", "value": "hello"}),
            ),
            at_provider: json!({"id": "r-1", "domainId": "d-1"}),
            change,
            check: update::<DnsRecord>,
        }
    }

    fn every_create_only_field() -> Vec<Case> {
        vec![
            compute("hostName", |fp| fp["hostName"] = json!("web-02")),
            compute("image", |fp| fp["image"] = json!("DEBIAN-12")),
            compute("region", |fp| fp["region"] = json!("NBO-1")),
            compute("publicKeys", |fp| {
                fp["publicKeys"] = json!(["ssh-ed25519 BBBB ops"])
            }),
            domain("domain", |fp| fp["domain"] = json!("example.org")),
            record("name", |fp| fp["name"] = json!("api")),
            record("type", |fp| fp["type"] = json!("AAAA")),
            record("the zone (domainRef", |fp| {
                fp["domainRef"] = json!({"name": "other-zone"})
            }),
            record("the zone (domainRef", |fp| {
                fp.as_object_mut().unwrap().remove("domainRef");
                fp["domainId"] = json!("d-2");
            }),
        ]
    }

    /// `object` with `status`, and the same object with the field changed.
    fn before_and_after(case: &Case, status: Option<Value>) -> (Value, Value) {
        let mut old = case.object.clone();
        if let Some(status) = status {
            old["status"] = status;
        }
        let mut new = old.clone();
        (case.change)(&mut new["spec"]["forProvider"]);
        assert_ne!(old, new);
        (old, new)
    }

    #[test]
    fn a_create_only_field_can_be_corrected_while_no_cloud_resource_exists() {
        let stalled = json!({"conditions": [{
            "type": "Stalled", "status": "True", "reason": "NotOffered",
            "message": "not offered", "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
        for case in every_create_only_field() {
            for status in [None, Some(json!({})), Some(stalled.clone())] {
                let (old, new) = before_and_after(&case, status.clone());
                assert_eq!(
                    (case.check)(&old, &new),
                    Vec::<String>::new(),
                    "{} {}: refused with status {status:?}",
                    case.kind,
                    case.field
                );
            }
        }
    }

    #[test]
    fn a_create_only_field_is_immutable_once_the_cloud_resource_exists_and_the_message_names_it() {
        for case in every_create_only_field() {
            let status = json!({"atProvider": case.at_provider});
            let (old, new) = before_and_after(&case, Some(status));
            let refused = (case.check)(&old, &new);
            assert_eq!(
                refused.len(),
                1,
                "{} {}: {refused:?}",
                case.kind,
                case.field
            );
            assert!(
                refused[0].starts_with(case.field)
                    && refused[0].contains("status.atProvider.id is set")
                    && refused[0].contains(&format!("create a new {}", case.kind)),
                "{} {}: {}",
                case.kind,
                case.field,
                refused[0]
            );
        }
    }

    #[test]
    fn other_fields_stay_editable_once_the_cloud_resource_exists() {
        let edits = [
            compute("specification and powerState", |fp| {
                fp["specification"] = json!("S-2C-4G");
                fp["powerState"] = json!("STOPPED");
            }),
            domain("nothing in forProvider", |_| {}),
            record("ttl and value", |fp| {
                fp["ttl"] = json!(300);
                fp["value"] = json!("changed");
            }),
        ];
        for case in edits {
            let mut old = case.object.clone();
            old["status"] = json!({"atProvider": case.at_provider});
            let mut new = old.clone();
            (case.change)(&mut new["spec"]["forProvider"]);
            new["spec"]["deletionPolicy"] = json!("Orphan");
            assert_eq!(
                (case.check)(&old, &new),
                Vec::<String>::new(),
                "{}: {}",
                case.kind,
                case.field
            );
        }
    }
}
