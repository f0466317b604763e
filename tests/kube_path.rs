//! The first integration test: the path from CRDs to a status write works on the real apiserver.

mod common;

use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use stratus::providers::strettch::api::Compute;

#[tokio::test]
async fn install_crds_create_read_and_patch_status() {
    let ns = common::TestNamespace::new("path").await;
    let api = ns.api::<Compute>();
    let obj: Compute = serde_json::from_value(json!({
        "apiVersion": "strettch.stratus.dev/v1alpha1",
        "kind": "Compute",
        "metadata": {"name": "web"},
        "spec": {"forProvider": {
            "hostName": "web-01", "image": "UBUNTU-24.04", "region": "KGL-1",
            "specification": "S-1C-1G", "publicKeys": ["ssh-ed25519 AAAA ops@example"]
        }}
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();

    let back = api.get("web").await.unwrap();
    // Defaults from the schema are applied by the apiserver.
    assert_eq!(back.spec.provider_config_ref.name, "default");
    assert_eq!(
        back.spec.deletion_policy,
        stratus::api::common::DeletionPolicy::Delete
    );

    let status = json!({
        "apiVersion": "strettch.stratus.dev/v1alpha1", "kind": "Compute",
        "status": {"observedGeneration": back.metadata.generation, "atProvider": {"id": "42", "state": "RUNNING"},
                   "conditions": [{"type": "Ready", "status": "True", "reason": "Available", "message": "compute 42 is RUNNING", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    });
    api.patch_status(
        "web",
        &PatchParams::apply("stratus-test").force(),
        &Patch::Apply(&status),
    )
    .await
    .unwrap();
    let patched = api.get("web").await.unwrap();
    let s = patched.status.unwrap();
    assert_eq!(s.at_provider.unwrap().id, "42");
    assert_eq!(s.managed.conditions[0].type_, "Ready");
    ns.cleanup().await;
}
