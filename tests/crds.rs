//! The checked-in CRDs are what the Rust types generate.

#[test]
fn checked_in_crds_match_the_rust_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/stratus.yaml");
    let on_disk = std::fs::read_to_string(path).expect("crds/stratus.yaml");
    let generated = stratus::api::crds_yaml();
    assert!(
        on_disk == generated,
        "crds/stratus.yaml is stale: regenerate it with `cargo run -q -- crds > crds/stratus.yaml`"
    );
}

#[test]
fn every_kind_has_printer_columns_a_category_and_descriptions() {
    for crd in stratus::api::crds() {
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
    for crd in stratus::api::crds() {
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
