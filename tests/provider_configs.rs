//! ProviderConfigs as the throttle sees them: a key is paced at the lowest rate of the
//! ProviderConfigs that use it *now*.

mod common;

use std::time::Duration;

use common::TestNamespace;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use stratus::engine::Providers;
use stratus::providers::strettch::cloud::StrettchCloud;

/// A slow ProviderConfig deleted after its last object went (so nothing resolves it again) stops
/// slowing the key it shared with another: the operator's periodic sweep notices it is gone.
#[tokio::test]
async fn a_deleted_provider_config_no_object_uses_stops_slowing_its_key() {
    let ns = TestNamespace::new("pc-sweep").await;
    let key = format!("key-{}", uuid::Uuid::new_v4().simple());
    let endpoint = "http://127.0.0.1:9/api/v1";
    // The shared key, and two ProviderConfigs using it: the test namespace's at 2/s, a slow one.
    let fast = common::provider_config(&ns, endpoint, &key, Some(2.0)).await;
    let configs: kube::Api<stratus::api::ProviderConfig> = kube::Api::all(ns.client.clone());
    let slow = format!("{}-slow", ns.name);
    let pc: stratus::api::ProviderConfig = serde_json::from_value(json!({
        "apiVersion": "stratus.dev/v1alpha1", "kind": "ProviderConfig",
        "metadata": {"name": slow},
        "spec": {"provider": "strettch", "endpoint": endpoint, "rateLimit": {"requestsPerSecond": 0.5},
                 "credentials": {"secretRef": {"namespace": ns.name, "name": "strettch-credentials", "key": "apiKey"}}},
    }))
    .unwrap();
    configs.create(&PostParams::default(), &pc).await.unwrap();

    let providers = Providers::new(ns.client.clone());
    let a = providers.resolve::<StrettchCloud>(&fast).await.unwrap();
    let _b = providers.resolve::<StrettchCloud>(&slow).await.unwrap();
    let throttle = a.client.throttle().clone();
    assert_eq!(throttle.requests_per_second(), 0.5, "the lowest rate wins");

    configs
        .delete(&slow, &DeleteParams::default())
        .await
        .unwrap();
    // Within the recheck interval nothing is re-read; after it, the sweep finds it gone.
    providers.sweep().await;
    assert_eq!(throttle.requests_per_second(), 0.5, "swept too early");
    tokio::time::sleep(Duration::from_secs(11)).await;
    providers.sweep().await;
    assert_eq!(
        throttle.requests_per_second(),
        2.0,
        "the deleted ProviderConfig's rate still counts"
    );
    let _ = configs.delete(&fast, &DeleteParams::default()).await;
    ns.cleanup().await;
}
