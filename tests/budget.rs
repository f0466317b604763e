//! 50 Computes applied at once under the documented 2 requests/second: all become Ready and the
//! sandbox never had to answer 429.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Env, Operator, TestNamespace, is_ready, provider_config};
use serde_json::json;
use stratus::providers::strettch::sim::key_fingerprint as fingerprint;
use stratus::providers::strettch::sim::{self, SimConfig};

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

/// The operator is killed right after the sandbox counted the request that used up the current
/// second, and a new one starts at once, five times over while new Computes keep the key saturated. A
/// new process cannot know what its predecessor spent, so it must not spend in that window: the
/// sandbox never counts more than the limit in one of its seconds, and never answers 429.
///
/// Sandbox and ProviderConfig allow 1 request/second here, not the documented 2: with one request
/// per window, the kill can follow a request made early in its second, which leaves the new
/// process more than half a second to start and send within the spent window (at 2/s the second
/// request of a window comes at least 0.525 s into it, and a restart rarely fits in what is left).
#[tokio::test]
async fn an_operator_restarted_within_the_second_never_spends_its_predecessors_budget() {
    const LIMIT: u64 = 1;
    let mut config = SimConfig::for_tests(&[]);
    config.rate_limit = LIMIT as u32;
    let key = format!("key-{}", uuid::Uuid::new_v4().simple());
    config.api_keys = vec![key.clone()];
    let sim = sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sandbox");
    let ns = TestNamespace::new("restart").await;
    let provider_config = provider_config(&ns, &sim.base_url(), &key, Some(LIMIT as f64)).await;
    let operator = Operator::start(&ns.name, &[]);
    let mut env = Env {
        ns,
        sim,
        provider_config,
        operator,
        key,
    };
    // Creates keep coming faster than the key allows, so every window is spent.
    let computes = env.computes();
    let config = env.provider_config.clone();
    let load = tokio::spawn(async move {
        for i in 0.. {
            let c: stratus::providers::strettch::api::Compute = serde_json::from_value(json!({
                "apiVersion": "strettch.stratus.dev/v1alpha1", "kind": "Compute",
                "metadata": {"name": format!("r{i}")},
                "spec": {"providerConfigRef": {"name": config}, "forProvider": {
                    "hostName": format!("r{i}"), "image": "UBUNTU-24.04", "region": "KGL-1",
                    "specification": "S-1C-1G", "publicKeys": ["ssh-ed25519 AAAA ops@example"],
                    "withPublicIp": true}},
            }))
            .unwrap();
            computes
                .create(&Default::default(), &c)
                .await
                .expect("create Compute");
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    });
    let fp = fingerprint(&env.key);
    let key_stats = |env: &Env| env.sim.stats().keys.get(&fp).cloned().unwrap_or_default();
    let mut restarts = 0;
    let deadline = Instant::now() + Duration::from_secs(150);
    while restarts < 5 {
        assert!(
            Instant::now() < deadline,
            "the key was never saturated: {:?}",
            key_stats(&env)
        );
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let spent = key_stats(&env).per_second.get(&now.as_secs()).copied();
        if spent != Some(LIMIT) || now.subsec_millis() > 500 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        }
        // The predecessor spent the whole window; its successor starts within the same second.
        env.operator.kill();
        env.operator = Operator::start(&env.ns.name, &[]);
        restarts += 1;
        let before = key_stats(&env).requests;
        // Let the new process work (and spend a few windows) before the next kill.
        let working = common::wait_for(Duration::from_secs(30), || {
            let after = key_stats(&env).requests;
            async move { after >= before + 3 }
        })
        .await;
        assert!(working, "restart {restarts}: the new operator sent nothing");
    }
    load.abort();
    let stats = env.sim.stats();
    let key = stats.keys.get(&fp).expect("key stats");
    let over: Vec<_> = key.per_second.iter().filter(|(_, n)| **n > LIMIT).collect();
    println!(
        "{restarts} restarts; {} requests, max {} in one second, {} 429s",
        key.requests, key.max_per_second, key.served_429
    );
    assert!(
        over.is_empty(),
        "seconds with more than {LIMIT} requests: {over:?}"
    );
    assert_eq!(key.served_429, 0, "the sandbox answered 429");
    assert_eq!(stats.served_429, 0);
    env.stop().await;
}

/// Forty Computes observed one GET each every 10 s (per-resource mode) ask for 4 requests/second
/// of a key that allows 2: routine observation alone saturates it. A user's change still reaches
/// the cloud at once, because it reads and writes at a higher priority and routine reads give
/// their place up instead of queueing: the stop request arrives long before the routine backlog
/// (one observation round at the key's rate, 20 s) could have drained.
#[tokio::test]
async fn a_users_change_is_not_delayed_by_observation_that_saturates_the_key() {
    const N: usize = 40;
    let env = Env::start_with(
        "saturated",
        SimConfig::for_tests(&[]),
        &["--observe-mode", "per-resource", "--resync-interval", "10s"],
    )
    .await;
    for i in 0..N {
        env.create_compute(&format!("s{i}"), json!({}), json!({}), json!({}))
            .await;
    }
    for i in 0..N {
        env.wait_compute(
            &format!("s{i}"),
            Duration::from_secs(240),
            "Ready",
            is_ready,
        )
        .await;
    }
    // Let the routine observation of all forty settle into its steady, saturating rhythm.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let key = fingerprint(&env.key);
    let busy = |since: u64| {
        let stats = env.sim.stats();
        let k = stats.keys.get(&key).cloned().unwrap_or_default();
        k.per_second
            .range(since..)
            .filter(|(_, n)| **n >= 2)
            .count()
    };
    let now_s = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let window_start = now_s() - 10;
    let saturated = busy(window_start);
    assert!(
        saturated >= 7,
        "the key was not saturated by observation: {saturated} of the last 10 s at the limit"
    );

    let stops = || {
        env.sim
            .stats()
            .requests_by_route
            .iter()
            .filter(|(route, _)| route.ends_with("/stop"))
            .map(|(_, n)| *n)
            .sum::<u64>()
    };
    assert_eq!(stops(), 0);
    let changed = Instant::now();
    env.patch_spec("s7", json!({"forProvider": {"powerState": "STOPPED"}}))
        .await;
    let arrived = common::wait_for(Duration::from_secs(60), || async { stops() == 1 }).await;
    assert!(arrived, "the stop never reached the cloud");
    let latency = changed.elapsed();
    let after = busy(now_s() - 5);
    println!(
        "stop reached the sandbox {latency:?} after the change; the key was at its limit in {saturated}/10 s before and {after}/5 s around it"
    );
    let backlog = Duration::from_secs((N / 2) as u64);
    assert!(
        latency < backlog / 2,
        "the user's change waited {latency:?}, as long as routine observation ({backlog:?} per round)"
    );
    assert_eq!(env.sim.stats().served_429, 0, "the sandbox served 429s");
    env.stop().await;
}
