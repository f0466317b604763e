//! 50 Computes applied at once under the documented 2 requests/second: all become Ready and the
//! sandbox never had to answer 429.

mod common;

use std::time::{Duration, Instant};

use common::{Env, is_ready};
use serde_json::json;
use stratus::strettch::sim::key_fingerprint as fingerprint;

#[tokio::test]
async fn fifty_computes_under_two_requests_per_second_without_a_429() {
    let env = Env::start("budget").await;
    let started = Instant::now();
    for i in 0..50 {
        env.create_compute(&format!("n{i}"), json!({}), json!({}), json!({}))
            .await;
    }
    for i in 0..50 {
        env.wait_compute(
            &format!("n{i}"),
            Duration::from_secs(180),
            "Ready",
            is_ready,
        )
        .await;
    }
    let elapsed = started.elapsed();
    let stats = env.sim.stats();
    let key = stats.keys.get(&fingerprint(&env.key)).expect("key stats");
    println!(
        "50 computes Ready in {elapsed:?}; {} requests ({:.2}/compute), max {} in one second, {} 429s",
        key.requests,
        key.requests as f64 / 50.0,
        key.max_per_second,
        stats.served_429
    );
    assert_eq!(stats.served_429, 0, "the sandbox served 429s");
    assert!(
        key.max_per_second <= 2,
        "a second saw {} requests",
        key.max_per_second
    );
    assert_eq!(env.sim.computes().len(), 50);
    let metrics = env.operator.metrics().await;
    assert!(
        metrics.contains("stratus_cloud_requests_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("controller_runtime_reconcile_total"),
        "{metrics}"
    );
    env.stop().await;
}
