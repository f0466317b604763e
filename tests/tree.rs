//! `stratus tree` against a real apiserver: the objects of a namespace, their references and
//! their conditions, as a user sees them (no operator runs; the statuses are written here).

mod common;

use std::process::Command;

use common::TestNamespace;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

fn resource(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1alpha1", kind), plural)
}

/// Creates `kind/name` with `spec` and gives it Ready/Synced/Stalled conditions.
async fn object(
    ns: &TestNamespace,
    ar: &ApiResource,
    name: &str,
    spec: Value,
    ready: (&str, &str),
) {
    let api: Api<DynamicObject> = Api::namespaced_with(ns.client.clone(), &ns.name, ar);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": ar.api_version, "kind": ar.kind,
        "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
    let now = "2026-12-04T00:00:00Z";
    let condition = |t: &str, s: &str, r: &str| json!({"type": t, "status": s, "reason": r, "message": "set by the test", "lastTransitionTime": now});
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"conditions": [
            condition("Ready", ready.0, ready.1),
            condition("Synced", "True", "ReconcileSuccess"),
            condition("Stalled", "False", "NotStalled"),
        ]}})),
    )
    .await
    .unwrap();
}

fn tree(ns: &TestNamespace, what: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["tree", what, "-n", &ns.name])
        .args(["--kubeconfig", common::kubeconfig_path().to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn tree_shows_an_app_with_its_database_secret_workspace_and_the_records_that_follow_it() {
    let ns = TestNamespace::new("tree").await;
    let vertra = "vertra.stratus.dev";
    let strettch = "strettch.stratus.dev";
    let pc = json!({"name": "vertra"});
    object(
        &ns,
        &resource(vertra, "Workspace", "workspaces"),
        "team",
        json!({"providerConfigRef": pc, "forProvider": {"name": "team"}}),
        ("True", "Available"),
    )
    .await;
    object(
        &ns,
        &resource(vertra, "Database", "databases"),
        "orders",
        json!({
            "providerConfigRef": pc,
            "forProvider": {"engine": "PostgreSQL", "name": "orders", "memoryMB": 1024},
            "writeConnectionSecretToRef": {"name": "orders-db"},
        }),
        ("False", "Creating"),
    )
    .await;
    object(
        &ns,
        &resource(vertra, "Application", "applications"),
        "shop",
        json!({
            "providerConfigRef": pc,
            "forProvider": {
                "name": "shop", "memoryMB": 512, "language": "javascript", "mainFile": "index.js",
                "workspaceRef": {"name": "team"},
                "env": [{"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "orders-db", "key": "uri"}}}],
                "source": {"archive": {"url": "https://example.com/a.zip", "sha256": "a".repeat(64)}},
            },
        }),
        ("True", "Available"),
    )
    .await;
    object(
        &ns,
        &resource(strettch, "DnsRecord", "dnsrecords"),
        "www",
        json!({
            "providerConfigRef": {"name": "default"},
            "forProvider": {
                "domainRef": {"name": "example-com"}, "type": "CNAME", "name": "www",
                "valueFrom": {"applicationRef": {"name": "shop", "type": "CNAME"}},
            },
        }),
        ("False", "WaitingForDomain"),
    )
    .await;

    let (ok, out, err) = tree(&ns, "application/shop");
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("READY"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("Application/shop") && lines[1].ends_with("Available"),
        "{out}"
    );
    let line = |needle: &str| {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in\n{out}"))
            .to_string()
    };
    assert!(
        line("uses Secret/orders-db").ends_with("written by Database/orders"),
        "{out}"
    );
    assert!(line("uses Workspace/team").ends_with("Available"), "{out}");
    assert!(
        line("uses ProviderConfig/vertra").ends_with("not found"),
        "{out}"
    );
    assert!(
        line("used by DnsRecord/www").ends_with("WaitingForDomain"),
        "{out}"
    );

    // From the record's side: the app it follows, and the missing Domain.
    let (ok, out, err) = tree(&ns, "dnsrecords/www");
    assert!(ok, "{err}");
    assert!(
        out.contains("uses Application/shop (forProvider.valueFrom.applicationRef)"),
        "{out}"
    );
    assert!(
        out.contains("uses Domain/example-com (forProvider.domainRef)"),
        "{out}"
    );

    // A typo is a clear answer, not a crash.
    let (ok, _, err) = tree(&ns, "application/nope");
    assert!(!ok && err.contains("Application/nope not found"), "{err}");
    let (ok, _, err) = tree(&ns, "gadget/x");
    assert!(!ok && err.contains("not a stratus kind"), "{err}");
    ns.cleanup().await;
}
