//! The manifests `stratus import` writes: one object per imported resource, adopting it by its
//! `stratus.dev/external-name`, as one multi-document YAML stream or one file per object.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::error::ImportError;
use super::found::{Found, ImportKind};
use crate::api::common::EXTERNAL_NAME;

/// One object to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub kind: ImportKind,
    pub name: String,
    pub body: Value,
}

/// What every manifest shares.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub namespace: &'a str,
    pub provider_config: &'a str,
    /// `--manage`: no `managementPolicies` (the CRD's default, `["*"]`); otherwise
    /// `["Observe"]`, so nothing in the cloud is ever changed or deleted through the object.
    pub manage: bool,
}

/// The manifest of `found`, named `name`. `names` maps `(kind, external id)` to the name of
/// every object in the same output: a reference to one of them becomes its `…Ref`, any other
/// stays the provider's id field.
pub fn manifest(
    kind: &ImportKind,
    found: &Found,
    name: &str,
    names: &HashMap<(String, String), String>,
    target: &Target<'_>,
) -> Manifest {
    let mut for_provider = found.for_provider.clone();
    if let Some(fields) = for_provider.as_object_mut() {
        for r in &found.references {
            if let Some(other) = names.get(&(r.kind.clone(), r.id.clone())) {
                fields.remove(r.id_field);
                fields.insert(r.ref_field.to_string(), json!({ "name": other }));
            } else {
                fields.remove(r.ref_field);
                fields.insert(r.id_field.to_string(), json!(r.id));
            }
        }
    }
    let mut spec = json!({
        "providerConfigRef": {"name": target.provider_config},
    });
    if !target.manage {
        spec["managementPolicies"] = json!(["Observe"]);
    }
    spec["forProvider"] = for_provider;
    let body = json!({
        "apiVersion": kind.api_version(),
        "kind": kind.kind,
        "metadata": {
            "name": name,
            "namespace": target.namespace,
            "annotations": {EXTERNAL_NAME: found.external_id},
        },
        "spec": spec,
    });
    Manifest {
        kind: kind.clone(),
        name: name.to_string(),
        body,
    }
}

/// One manifest as a YAML document (without the `---` separator).
pub fn yaml(m: &Manifest) -> String {
    // A JSON value always serializes to YAML.
    serde_yaml::to_string(&m.body).expect("a JSON value serializes to YAML")
}

/// Every manifest as one multi-document YAML stream.
pub fn stream(manifests: &[Manifest]) -> String {
    manifests
        .iter()
        .map(|m| format!("---\n{}", yaml(m)))
        .collect()
}

/// The file one manifest is written to: `<kind-lowercase>-<name>.yaml`.
pub fn file_name(m: &Manifest) -> String {
    format!("{}-{}.yaml", m.kind.kind.to_ascii_lowercase(), m.name)
}

/// Write each manifest to its own file in `dir` (created if missing); returns the paths.
pub fn write_dir(dir: &Path, manifests: &[Manifest]) -> Result<Vec<PathBuf>, ImportError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ImportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for m in manifests {
        let path = dir.join(file_name(m));
        std::fs::write(&path, yaml(m)).map_err(io(&path))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::found::Reference;

    fn kind(k: &str) -> ImportKind {
        ImportKind {
            group: "strettch.stratus.dev".into(),
            version: "v1alpha1".into(),
            kind: k.into(),
            plural: format!("{}s", k.to_ascii_lowercase()),
            regional: false,
        }
    }

    fn record() -> Found {
        let mut f = Found::new(
            "DnsRecord",
            "rec-1",
            "www.example.com",
            json!({"domainId": "dom-1", "name": "www", "type": "A", "value": "192.0.2.1"}),
        );
        f.references.push(Reference {
            kind: "Domain".into(),
            id: "dom-1".into(),
            ref_field: "domainRef",
            id_field: "domainId",
        });
        f
    }

    fn target(manage: bool) -> Target<'static> {
        Target {
            namespace: "imported",
            provider_config: "prod",
            manage,
        }
    }

    #[test]
    fn a_manifest_adopts_by_external_name_and_only_observes_by_default() {
        let m = manifest(
            &kind("DnsRecord"),
            &record(),
            "www-example-com-a",
            &HashMap::new(),
            &target(false),
        );
        let text = yaml(&m);
        let back: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back["apiVersion"], "strettch.stratus.dev/v1alpha1");
        assert_eq!(back["kind"], "DnsRecord");
        assert_eq!(back["metadata"]["name"], "www-example-com-a");
        assert_eq!(back["metadata"]["namespace"], "imported");
        assert_eq!(
            back["metadata"]["annotations"]["stratus.dev/external-name"],
            "rec-1"
        );
        assert_eq!(back["spec"]["providerConfigRef"]["name"], "prod");
        assert_eq!(back["spec"]["managementPolicies"], json!(["Observe"]));
        assert_eq!(back["spec"]["forProvider"]["domainId"], "dom-1");
        assert!(back["spec"]["forProvider"].get("domainRef").is_none());
    }

    #[test]
    fn with_manage_the_manifest_has_no_management_policies() {
        let m = manifest(
            &kind("DnsRecord"),
            &record(),
            "r",
            &HashMap::new(),
            &target(true),
        );
        assert!(m.body["spec"].get("managementPolicies").is_none());
    }

    #[test]
    fn a_reference_to_an_object_in_the_same_output_becomes_its_ref() {
        let names = HashMap::from([(
            ("Domain".to_string(), "dom-1".to_string()),
            "example-com".to_string(),
        )]);
        let m = manifest(&kind("DnsRecord"), &record(), "r", &names, &target(false));
        let fp = &m.body["spec"]["forProvider"];
        assert_eq!(fp["domainRef"], json!({"name": "example-com"}));
        assert!(fp.get("domainId").is_none());
    }

    #[test]
    fn the_stream_has_one_document_per_object_and_files_are_named_by_kind_and_name() {
        let a = manifest(
            &kind("Domain"),
            &record(),
            "a",
            &HashMap::new(),
            &target(false),
        );
        let b = manifest(
            &kind("DnsRecord"),
            &record(),
            "b",
            &HashMap::new(),
            &target(false),
        );
        let text = stream(&[a.clone(), b.clone()]);
        let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["metadata"]["name"], "b");
        assert_eq!(file_name(&b), "dnsrecord-b.yaml");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("new");
        let paths = write_dir(&out, &[a, b]).unwrap();
        assert_eq!(paths.len(), 2);
        let text = std::fs::read_to_string(out.join("domain-a.yaml")).unwrap();
        assert!(text.contains("external-name"), "{text}");
    }
}
