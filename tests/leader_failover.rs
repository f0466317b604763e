//! Two operator processes with leader election: only the leader acts; when it is killed the
//! other takes over within the lease duration, with no duplicate cloud call.

mod common;

use std::time::{Duration, Instant};

use common::{Env, Operator, is_ready};
use serde_json::json;

fn reconciles(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("controller_runtime_reconcile_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// The `leader_election_master_status` gauge: `Some(true)` while the replica holds the lease.
fn leading(metrics: &str) -> Option<bool> {
    metrics
        .lines()
        .find(|l| l.starts_with("leader_election_master_status{"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v == 1.0)
}

#[tokio::test]
async fn only_the_leader_acts_and_a_follower_takes_over_after_a_kill() {
    let mut env = Env::start("leader").await;
    env.operator.kill();
    let lease = format!("stratus-{}", env.ns.name);
    let args = [
        "--leader-elect",
        "--leader-election-namespace",
        env.ns.name.as_str(),
        "--leader-election-id",
        lease.as_str(),
        "--lease-duration",
        "4s",
    ];
    let mut a = Operator::start(&env.ns.name, &[&args[..], &["--identity", "a"]].concat());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut b = Operator::start(&env.ns.name, &[&args[..], &["--identity", "b"]].concat());

    for i in 0..4 {
        env.create_compute(&format!("l{i}"), json!({}), json!({}), json!({}))
            .await;
    }
    for i in 0..4 {
        env.wait_compute(&format!("l{i}"), Duration::from_secs(60), "Ready", is_ready)
            .await;
    }
    let (ma, mb) = (
        reconciles(&a.metrics().await),
        reconciles(&b.metrics().await),
    );
    assert!(
        (ma > 0) != (mb > 0),
        "exactly one replica may reconcile: a={ma} b={mb}"
    );
    let (leader, follower) = if ma > 0 {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    // The follower is ready (it can take over at once) while it waits.
    let ready = reqwest::get(format!("http://127.0.0.1:{}/readyz", follower.metrics_port))
        .await
        .unwrap()
        .status();
    assert!(ready.is_success(), "a standby replica must report ready");

    assert_eq!(leading(&leader.metrics().await), Some(true));
    assert_eq!(leading(&follower.metrics().await), Some(false));

    leader.kill();
    let killed = Instant::now();
    let port = follower.metrics_port;
    let http = reqwest::Client::new();
    let mut acquired = false;
    while killed.elapsed() < Duration::from_secs(15) {
        let text = match http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if leading(&text) == Some(true) {
            acquired = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let acquisition = killed.elapsed();
    println!("follower held the lease {acquisition:?} after the leader was killed (lease 4s)");
    // The holder renewed at most a lease ago, and the follower wakes when that renewal expires;
    // the allowance (1 s) is for this test's 50 ms polling of /metrics, the follower's own
    // wake-up jitter and round trip, and scheduling on a loaded 2-core CI machine.
    assert!(
        acquired && acquisition < Duration::from_millis(5_000),
        "the follower did not take the lease within the lease duration: {acquisition:?}"
    );
    let took_over = common::wait_for(Duration::from_secs(15), || async move {
        let text = match reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        reconciles(&text) > 0
    })
    .await;
    let takeover = killed.elapsed();
    println!("follower reconciling {takeover:?} after the leader was killed (lease 4s)");
    // Reconciling also needs the controllers' caches, which start once the lease is held.
    assert!(
        took_over && takeover < Duration::from_secs(8),
        "the new leader did not start reconciling: {takeover:?}"
    );
    for i in 4..8 {
        env.create_compute(&format!("l{i}"), json!({}), json!({}), json!({}))
            .await;
    }
    for i in 4..8 {
        env.wait_compute(&format!("l{i}"), Duration::from_secs(60), "Ready", is_ready)
            .await;
    }
    let took = killed.elapsed();
    println!("follower took over and converged 4 new computes {took:?} after the kill");
    assert!(
        reconciles(&follower.metrics().await) > 0,
        "the follower never took over"
    );

    let posts = env
        .sim
        .stats()
        .requests_by_route
        .get("POST /computes")
        .copied()
        .unwrap_or(0);
    assert_eq!(env.sim.computes().len(), 8);
    assert_eq!(posts, 8, "one create call per Compute, across the failover");
    drop(a);
    drop(b);
    env.stop().await;
}
