//! Sustained throughput through one API key against the sandbox.
//!
//! `cargo bench --bench throttle` runs a saturated queue (8 concurrent callers) through one key
//! at the documented 2 requests/second, for 60 s (`THROTTLE_BENCH_SECONDS` changes it), against an
//! in-process sandbox enforcing 2 requests/second per key in fixed unix-second windows. It prints
//! the achieved rate, its deviation from the limit, and the sandbox's own per-second counts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stratus::cloud::ApiKey;
use stratus::cloud::throttle::Priority;
use stratus::providers::strettch::client::{DEFAULT_REQUESTS_PER_SECOND, StrettchClient};
use stratus::providers::strettch::sim::key_fingerprint as fingerprint;
use stratus::providers::strettch::sim::{self, SimConfig};

const KEY: &str = "sk-bench-throttle";
const CALLERS: usize = 8;

fn main() {
    let seconds: u64 = std::env::var("THROTTLE_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(Duration::from_secs(seconds)));
}

async fn run(duration: Duration) {
    let limit = DEFAULT_REQUESTS_PER_SECOND;
    let mut config = SimConfig::for_tests(&[KEY]);
    config.rate_limit = limit as u32;
    let sim = sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sandbox starts");
    // `None`: the client's documented default of 2 requests/second.
    let client = StrettchClient::new(&sim.base_url(), ApiKey::new(KEY), None).expect("client");

    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let first = Arc::new(parking_lot::Mutex::new(None::<Instant>));
    let last = Arc::new(parking_lot::Mutex::new(None::<Instant>));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..CALLERS {
        let (client, done, failed, stop) =
            (client.clone(), done.clone(), failed.clone(), stop.clone());
        let (first, last) = (first.clone(), last.clone());
        let priority = [Priority::Routine, Priority::Urgent][i % 2];
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let sent = client.list_computes_page(1, 1, priority).await;
                let now = Instant::now();
                match sent {
                    Ok(_) => {
                        done.fetch_add(1, Ordering::SeqCst);
                        first.lock().get_or_insert(now);
                        *last.lock() = Some(now);
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::SeqCst);
                        eprintln!("request failed: {e}");
                    }
                }
            }
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::SeqCst);
    // Waiters still queued are cancelled by dropping them.
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }
    let wall = started.elapsed().as_secs_f64();

    let stats = sim.stats();
    let key = stats
        .keys
        .get(&fingerprint(KEY))
        .cloned()
        .unwrap_or_default();
    let n = done.load(Ordering::SeqCst);
    let (first, last) = (first.lock().unwrap(), last.lock().unwrap());
    // Steady state: spacings between the first and the last answer.
    let steady = (n.saturating_sub(1)) as f64 / (last - first).as_secs_f64();
    let overall = n as f64 / wall;
    // The sandbox's own view: full seconds only (drop the first and last, partial, ones).
    let seconds: Vec<u64> = key.per_second.values().copied().collect();
    let inner = if seconds.len() > 2 {
        &seconds[1..seconds.len() - 1]
    } else {
        &seconds[..]
    };
    let server_rate = inner.iter().sum::<u64>() as f64 / inner.len().max(1) as f64;
    let mut histogram = BTreeMap::new();
    for s in inner {
        *histogram.entry(*s).or_insert(0u64) += 1;
    }

    println!(
        "throttle bench: one key, {CALLERS} concurrent callers, limit {limit} req/s, {wall:.1} s"
    );
    println!(
        "  answered requests        {n} ({} failed)",
        failed.load(Ordering::SeqCst)
    );
    println!(
        "  achieved rate (steady)   {steady:.3} req/s  ({:+.2}% vs the limit)",
        (steady / limit - 1.0) * 100.0
    );
    println!(
        "  achieved rate (overall)  {overall:.3} req/s  ({:+.2}% vs the limit)",
        (overall / limit - 1.0) * 100.0
    );
    println!(
        "  sandbox: {} requests let through, mean {server_rate:.3}/s over {} full seconds",
        key.requests,
        inner.len()
    );
    println!(
        "  sandbox: max per second {}, 429s served {}",
        key.max_per_second, key.served_429
    );
    println!("  sandbox: seconds by request count {histogram:?}");
    let ok = key.max_per_second <= limit as u64 && key.served_429 == 0 && steady >= 0.95 * limit;
    println!(
        "  verdict: {}",
        if ok {
            "OK (≤ limit every second, no 429, within 5%)"
        } else {
            "FAIL"
        }
    );
    sim.shutdown().await;
    if !ok {
        std::process::exit(1);
    }
}
