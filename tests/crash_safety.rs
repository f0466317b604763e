//! Kill the operator process (SIGKILL) at random moments while it creates computes, many times
//! over; then count: exactly one cloud compute per Compute, and none left after deletion. The
//! sandbox can make it harder: forget idempotency keys at once, and drop the answers of writes
//! it has applied.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Env, Operator, is_ready};
use rand::Rng;
use serde_json::json;
use stratus::providers::strettch::sim::SimConfig;

/// How hard the sandbox makes it.
struct Cloud {
    /// How long the sandbox remembers an Idempotency-Key (zero: forgotten at once).
    idempotency_ttl: Duration,
    /// Fraction of writes applied and then answered by closing the connection.
    drop_after_write_rate: f64,
    /// Each life of the operator is killed at a random moment within this time of its first
    /// create reaching the sandbox.
    kill_within: Duration,
}

const KEYS_REMEMBERED: Cloud = Cloud {
    idempotency_ttl: Duration::from_secs(86_400),
    drop_after_write_rate: 0.0,
    kill_within: Duration::from_millis(900),
};

/// The external-name annotation of a Compute: the id it recorded.
fn recorded_id(c: &stratus::providers::strettch::api::Compute) -> Option<String> {
    c.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("stratus.dev/external-name").cloned())
}

async fn kill_during_creates(prefix: &str, cloud: Cloud, objects: usize, kills: usize) {
    let mut config = SimConfig::for_tests(&[]);
    // Slow answers widen the window between "applied in the cloud" and "recorded in Kubernetes".
    config.faults.latency_ms = 800;
    config.faults.drop_after_write_rate = cloud.drop_after_write_rate;
    config.idempotency_ttl = cloud.idempotency_ttl;
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
    let mut killed = 0;
    for life in 0..kills {
        let mut op = Operator::start(&env.ns.name, &[]);
        // Kill at a random moment once this life has started creating: with 800 ms of latency
        // (half of it after the cloud applied the create) many kills land between "created in
        // the cloud" and "id recorded in Kubernetes".
        let before = posts(&env);
        let sent = common::wait_for(Duration::from_secs(15), || {
            let now = posts(&env);
            async move { now > before }
        })
        .await;
        if !sent {
            // A life that creates nothing is right only when nothing is left to create.
            let unrecorded: Vec<String> = env
                .computes()
                .list(&Default::default())
                .await
                .unwrap()
                .into_iter()
                .filter(|c| recorded_id(c).is_none())
                .filter_map(|c| c.metadata.name)
                .collect();
            assert!(
                unrecorded.is_empty(),
                "operator life {life} sent no POST /computes within 15 s while {unrecorded:?} \
                 had no recorded compute id"
            );
            op.kill();
            break;
        }
        tokio::time::sleep(rng.random_range(Duration::ZERO..cloud.kill_within)).await;
        op.kill();
        killed += 1;
    }
    env.operator = Operator::start(&env.ns.name, &[]);
    let posts = env
        .sim
        .stats()
        .requests_by_route
        .get("POST /computes")
        .copied()
        .unwrap_or(0);
    println!(
        "{killed} kills during creates; POST /computes received {posts} times for {objects} \
         objects so far"
    );
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
    let duplicated: BTreeMap<String, usize> = list
        .iter()
        .filter_map(|o| {
            let n = by_uid.get(o.metadata.uid.as_ref()?).copied()?;
            (n > 1).then(|| (o.metadata.name.clone().unwrap_or_default(), n))
        })
        .collect();
    assert_eq!(
        env.sim.computes().len(),
        objects,
        "cloud computes per object UID: {by_uid:?}; objects with more than one: {duplicated:?}"
    );
    for obj in &list {
        let uid = obj.metadata.uid.clone().unwrap();
        assert_eq!(
            by_uid.get(&uid),
            Some(&1),
            "compute count for {:?}",
            obj.metadata.name
        );
        let recorded = recorded_id(obj).expect("a Ready Compute records its id");
        let cloud = env
            .sim
            .computes()
            .into_iter()
            .find(|c| c.id == recorded)
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
    kill_during_creates("crash", KEYS_REMEMBERED, 12, 12).await;
}

#[tokio::test]
async fn ownership_tags_prevent_duplicates_even_when_idempotency_keys_expired() {
    // Keys forgotten at once: only the create-pending marker and the ownership tag protect us.
    let keys_forgotten = Cloud {
        idempotency_ttl: Duration::ZERO,
        ..KEYS_REMEMBERED
    };
    kill_during_creates("crash-nokey", keys_forgotten, 12, 12).await;
}

#[tokio::test]
async fn creates_never_duplicate_when_keys_are_forgotten_and_applied_writes_lose_their_answers() {
    // Keys forgotten at once, and nearly a third of the writes (creates and deletes alike)
    // applied but never answered: a create whose answer was lost may exist, and re-sending it
    // blindly makes a second compute that no key can deduplicate. A lost answer is noticed
    // ~400 ms after the create was applied (the rest of the latency), so lives last up to 3 s:
    // long enough, often, for what follows a lost answer to happen before the kill.
    let hostile = Cloud {
        idempotency_ttl: Duration::ZERO,
        drop_after_write_rate: 0.3,
        kill_within: Duration::from_secs(3),
    };
    kill_during_creates("crash-drop", hostile, 12, 12).await;
}
