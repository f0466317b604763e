//! Throttle policies against the sandbox: two API keys in one budget group, each with a
//! per-minute Key limit with a burst, sharing a per-10-minute BudgetGroup limit, and
//! Strettch's documented 2 per second. The sandbox enforces the same limits (rolling windows)
//! and logs when it let each request through; from that log the test counts requests in every
//! sliding window: none may hold more than its limit, and the sandbox may answer no 429.
//!
//! Timeline (~100 s): the clients are made, then idle long enough for the Key bursts to come
//! back; key A floods alone (its Key limit binds, and its burst plus pacing fill a minute to the
//! limit), then A and B flood together (the group limit binds: together they get less than
//! their two Key limits would allow).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stratus::api::provider_config::ProviderConfigSpec;
use stratus::cloud::ApiKey;
use stratus::cloud::throttle::{LimitSpec, Priority};
use stratus::providers::strettch::client::{StrettchClient, default_limits};
use stratus::providers::strettch::sim::{self, SimConfig, SimHandle};
use stratus::sim::rate_limit::{Limit, Scope, Window, max_in_any_window};

const KEY_A: &str = "sk-policies-a";
const KEY_B: &str = "sk-policies-b";
const GROUP: &str = "acme-workspace";
const SEC: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);

/// The ProviderConfig both keys' configurations share, but for the Secret.
const POLICY: &str = "
budgetGroup: acme-workspace
rateLimits:
  - {requests: 400, per: 10m, scope: BudgetGroup, window: Rolling, burst: 4}
  - {requests: 30, per: 1m, scope: Key, window: Rolling, burst: 5}
";

fn provider_config(secret: &str) -> ProviderConfigSpec {
    serde_yaml::from_str(&format!(
        "provider: strettch\ncredentials: {{secretRef: {{namespace: ns, name: {secret}, key: k}}}}\n{POLICY}"
    ))
    .expect("ProviderConfig spec")
}

async fn sandbox() -> SimHandle {
    let mut config = SimConfig::for_tests(&[KEY_A, KEY_B]);
    config.rate_limit = 2;
    config.rate_limits = vec![
        Limit::new(30, MIN, Scope::Key, Window::Rolling),
        Limit::new(400, 10 * MIN, Scope::Group, Window::Rolling),
    ];
    config.key_groups = [KEY_A, KEY_B]
        .iter()
        .map(|k| (k.to_string(), GROUP.to_string()))
        .collect();
    sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sandbox starts")
}

/// `callers` tasks sending reads through `client` until `stop`.
fn flood(
    client: &StrettchClient,
    callers: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..callers)
        .map(|_| {
            let (client, stop) = (client.clone(), stop.clone());
            tokio::spawn(async move {
                let mut failed = 0;
                while !stop.load(Ordering::SeqCst) {
                    if client
                        .list_computes_page(1, 1, Priority::Urgent)
                        .await
                        .is_err()
                    {
                        failed += 1;
                    }
                }
                failed
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sliding_window_at_the_sandbox_holds_more_than_its_limit() {
    let sim = sandbox().await;
    let mut clients = Vec::new();
    for (n, key) in [KEY_A, KEY_B].into_iter().enumerate() {
        let name = format!("pc-{n}");
        let policy = provider_config(&name)
            .throttle_policy(&default_limits())
            .expect("valid policy");
        clients.push(
            StrettchClient::for_provider_config(&name, &sim.base_url(), ApiKey::new(key), policy)
                .expect("client"),
        );
    }
    let (a, b) = (clients[0].clone(), clients[1].clone());
    // One budget: both keys' throttles hold the same group.
    assert!(Arc::ptr_eq(
        &a.throttle().groups()[0],
        &b.throttle().groups()[0]
    ));
    let key_limit = LimitSpec::key(30, MIN).with_burst(5);
    let group_limit = LimitSpec::group(400, 10 * MIN).with_burst(4);

    // Idle until the Key bursts are back (new limits start spent).
    tokio::time::sleep(key_limit.tolerance() + key_limit.interval() + SEC).await;

    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
    };
    let phase1 = now();
    let stop_a = Arc::new(AtomicBool::new(false));
    let mut tasks = flood(&a, 4, &stop_a);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let stop_b = Arc::new(AtomicBool::new(false));
    let phase2 = now();
    tasks.extend(flood(&b, 4, &stop_b));
    tokio::time::sleep(Duration::from_secs(55)).await;
    let end = now();
    stop_a.store(true, Ordering::SeqCst);
    stop_b.store(true, Ordering::SeqCst);
    let mut failed = 0;
    for t in tasks {
        failed += t.await.unwrap();
    }

    let stats = sim.stats();
    assert_eq!(stats.served_429, 0, "the sandbox answered 429: {stats:?}");
    assert_eq!(failed, 0);
    let times_a = sim.request_times(KEY_A);
    let times_b = sim.request_times(KEY_B);
    let group = sim.group_request_times(GROUP);
    assert_eq!(group.len(), times_a.len() + times_b.len());

    // The limits, over every sliding window.
    for (name, times) in [("A", &times_a), ("B", &times_b)] {
        let per_minute = max_in_any_window(times, MIN);
        let per_second = max_in_any_window(times, SEC);
        eprintln!(
            "key {name}: {} requests, at most {per_minute} in a minute, {per_second} in a second",
            times.len()
        );
        assert!(per_minute <= 30, "key {name}: {per_minute} in one minute");
        assert!(per_second <= 2, "key {name}: {per_second} in one second");
    }
    let per_10m = max_in_any_window(&group, 10 * MIN);
    assert!(per_10m <= 400, "group: {per_10m} in ten minutes");

    let within = |times: &[Duration], from: Duration, to: Duration| {
        times.iter().filter(|t| **t >= from && **t < to).count() as u64
    };
    // Phase 1, A alone: its Key limit binds, and its burst was used (more than its pace alone
    // would give, no more than burst and pace allow).
    let alone = within(&times_a, phase1, phase2);
    let span1 = phase2 - phase1;
    eprintln!(
        "phase 1: A sent {alone} in {span1:?} (burst and pace allow {})",
        key_limit.worst_case_in(span1)
    );
    assert!(alone <= key_limit.worst_case_in(span1));
    assert!(
        alone as f64 > span1.as_secs_f64() / key_limit.interval().as_secs_f64() + 1.0,
        "the burst was not used: {alone}"
    );
    // Phase 2, A and B (from when B's first requests are out): the group binds. Together they
    // get no more than the group's pace allows, which is less than their two Key limits would,
    // and more than one key alone could; and B is not starved by A's earlier queue.
    let from = phase2 + Duration::from_secs(5);
    let span2 = end - from;
    let together = within(&group, from, end);
    let of_b = within(&times_b, from, end);
    eprintln!(
        "phase 2: together {together} ({of_b} of B) in {span2:?}; group allows {}, one key {}",
        group_limit.worst_case_in(span2),
        key_limit.worst_case_in(span2)
    );
    assert!(together <= group_limit.worst_case_in(span2));
    assert!(together > key_limit.worst_case_in(span2));
    assert!(of_b * 3 >= together, "B got {of_b} of {together}");
}
