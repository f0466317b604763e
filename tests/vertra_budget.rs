//! What Vertra objects cost the key: observation in bulk (two listings per resync however many
//! apps there are), and a plan's unpublished per-minute limit learned without exceeding it.

mod common;

use std::time::Duration;

use common::vertra::{Env, OPERATOR_ARGS, serve, zip};
use common::{is_ready_of, wait_object};
use kube::Api;
use serde_json::json;
use stratus::providers::vertra::api::{Application, Database};
use stratus::providers::vertra::code::sha256_hex;

const T: Duration = Duration::from_secs(180);

async fn apps_and_databases(env: &Env, apps: usize, databases: usize) {
    let code = zip("budget");
    let base = serve(vec![("/code.zip", code.clone())]).await;
    for i in 0..apps {
        env.apply::<Application>(
            &format!("app{i}"),
            json!({"forProvider": {
                "name": format!("app{i}"), "memoryMB": 256, "language": "javascript",
                "mainFile": "index.js",
                "source": {"archive": {"url": format!("{base}/code.zip"), "sha256": sha256_hex(&code)}},
            }}),
        )
        .await;
    }
    for i in 0..databases {
        env.apply::<Database>(
            &format!("db{i}"),
            json!({"forProvider": {"engine": "Redis", "name": format!("db{i}"), "memoryMB": 512}}),
        )
        .await;
    }
    let (a, d): (Api<Application>, Api<Database>) = (env.ns.api(), env.ns.api());
    for i in 0..apps {
        wait_object(&a, &format!("app{i}"), T, "Ready", is_ready_of).await;
    }
    for i in 0..databases {
        wait_object(&d, &format!("db{i}"), T, "Ready", is_ready_of).await;
    }
}

#[tokio::test]
async fn a_resync_of_many_apps_and_databases_costs_a_few_listings_not_a_call_each() {
    let mut args = OPERATOR_ARGS.to_vec();
    args.extend(["--resync-interval", "6s"]);
    let env = Env::start_with("vbudget-observe", |_| {}, &args).await;
    let (apps, databases) = (12, 6);
    apps_and_databases(&env, apps, databases).await;
    // Settled: let what converging started finish, then count three resyncs.
    tokio::time::sleep(Duration::from_secs(8)).await;
    env.sim.reset_stats();
    let window = Duration::from_secs(18);
    tokio::time::sleep(window).await;
    let stats = env.sim.stats();
    let total: u64 = stats.requests_by_route.values().sum();
    let resyncs = window.as_secs_f64() / 6.0;
    println!(
        "{apps} apps and {databases} databases, {resyncs} resyncs: {total} requests {:?}",
        stats.requests_by_route
    );
    for route in stats.requests_by_route.keys() {
        assert!(
            ["GET /users/me", "GET /apps/status", "GET /databases/status"]
                .contains(&route.as_str()),
            "a per-object call during steady resyncs: {:?}",
            stats.requests_by_route
        );
    }
    // Each listing is shared by every object of the key: at most the three of them per
    // resync (plus one resync's worth of jitter), far below one call per object.
    assert!(
        (total as f64) <= 3.0 * (resyncs + 1.0),
        "{total} requests in {resyncs} resyncs of {} objects",
        apps + databases
    );
    env.stop().await;
}

/// The plan allows 20 requests a minute (less than where the operator's adaptive limit starts,
/// 30: Vertra does not publish it). The operator learns it from the answers' headers and 429s:
/// the sandbox refuses what a minute cannot hold, so few 429s mean the operator kept within it.
#[tokio::test]
async fn an_unpublished_per_minute_limit_is_learned_and_never_exceeded_while_apps_converge() {
    let env = Env::start_with("vbudget-plan", |c| c.per_minute = Some(20), OPERATOR_ARGS).await;
    let started = std::time::Instant::now();
    apps_and_databases(&env, 24, 0).await;
    let stats = env.sim.stats();
    let requests: u64 = stats.requests_by_route.values().sum();
    println!(
        "24 apps under 20 requests/minute, Ready in {:?}: {requests} requests, {} answered 429 ({:?}), most in a minute: {}",
        started.elapsed(),
        stats.served_429,
        stats.served_429_by_limit,
        stats.max_in_window.per_minute
    );
    assert!(
        requests > 20,
        "{requests} requests: the limit never bound, so this proves nothing"
    );
    assert!(
        stats.served_429_by_limit.minute <= 3,
        "{} 429s: the limit was not learned",
        stats.served_429_by_limit.minute
    );
    env.stop().await;
}
