//! Kill the operator process (SIGKILL) at random moments while it creates computes, many times
//! over; then count: exactly one cloud compute per Compute, and none left after deletion.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Env, Operator, is_ready};
use rand::Rng;
use serde_json::json;
use stratus::strettch::sim::SimConfig;

async fn kill_during_creates(
    prefix: &str,
    idempotency_ttl: Duration,
    objects: usize,
    kills: usize,
) {
    let mut config = SimConfig::for_tests(&[]);
    // Slow answers widen the window between "applied in the cloud" and "recorded in Kubernetes".
    config.faults.latency_ms = 800;
    config.idempotency_ttl = idempotency_ttl;
    config.rate_limit = 20;
    let mut env = Env::start_with(prefix, config, &[]).await;
    env.operator.kill();
    // A faster budget on both sides keeps the test short; the protocol is the same.
    let pcs: kube::Api<stratus::api::ProviderConfig> = kube::Api::all(env.ns.client.clone());
    pcs.patch(
        &env.provider_config,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"spec": {"rateLimit": {"requestsPerSecond": 5}}})),
    )
    .await
    .unwrap();
    for i in 0..objects {
        env.create_compute(&format!("c{i}"), json!({}), json!({}), json!({}))
            .await;
    }
    let mut rng = rand::rng();
    let posts = |env: &Env| {
        env.sim
            .stats()
            .requests_by_route
            .get("POST /computes")
            .copied()
            .unwrap_or(0)
    };
    for _ in 0..kills {
        let mut op = Operator::start(&env.ns.name, &[]);
        // Kill at a random moment once this life has started creating: with 800 ms of latency
        // (half of it after the cloud applied the create) many kills land between "created in
        // the cloud" and "id recorded in Kubernetes".
        let before = posts(&env);
        common::wait_for(Duration::from_secs(15), || {
            let now = posts(&env);
            async move { now > before }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..900))).await;
        op.kill();
    }
    env.operator = Operator::start(&env.ns.name, &[]);
    let posts = env
        .sim
        .stats()
        .requests_by_route
        .get("POST /computes")
        .copied()
        .unwrap_or(0);
    println!("{kills} kills; POST /computes answered {posts} times for {objects} objects so far");
    for i in 0..objects {
        env.wait_compute(
            &format!("c{i}"),
            Duration::from_secs(120),
            "Ready",
            is_ready,
        )
        .await;
    }

    // Exactly one compute per object, each tagged with its object's UID.
    let list = env.computes().list(&Default::default()).await.unwrap();
    let mut by_uid: BTreeMap<String, usize> = BTreeMap::new();
    for c in env.sim.computes() {
        for t in c.tags.iter().filter(|t| t.starts_with("stratus-uid:")) {
            *by_uid
                .entry(t.trim_start_matches("stratus-uid:").to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(
        env.sim.computes().len(),
        objects,
        "cloud computes: {by_uid:?}"
    );
    for obj in &list {
        let uid = obj.metadata.uid.clone().unwrap();
        assert_eq!(
            by_uid.get(&uid),
            Some(&1),
            "compute count for {:?}",
            obj.metadata.name
        );
        let recorded = obj
            .metadata
            .annotations
            .as_ref()
            .unwrap()
            .get("stratus.dev/external-name")
            .unwrap();
        let cloud = env
            .sim
            .computes()
            .into_iter()
            .find(|c| &c.id == recorded)
            .expect("recorded id exists");
        assert!(cloud.tags.contains(&format!("stratus-uid:{uid}")));
    }

    // Deleting every object leaves nothing behind.
    env.computes()
        .delete_collection(&Default::default(), &Default::default())
        .await
        .unwrap();
    for i in 0..objects {
        env.wait_gone(&format!("c{i}"), Duration::from_secs(120))
            .await;
    }
    assert!(
        env.sim.computes().is_empty(),
        "orphaned: {:?}",
        env.sim.computes()
    );
    env.stop().await;
}

#[tokio::test]
async fn random_kills_during_creates_leave_exactly_one_compute_each() {
    kill_during_creates("crash", Duration::from_secs(86_400), 12, 12).await;
}

#[tokio::test]
async fn ownership_tags_prevent_duplicates_even_when_idempotency_keys_expired() {
    // Keys forgotten at once: only the create-pending marker and the ownership tag protect us.
    kill_during_creates("crash-nokey", Duration::ZERO, 12, 12).await;
}
