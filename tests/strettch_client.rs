//! The Strettch client against the real sandbox (`stratus::providers::strettch::sim`), in process.
//!
//! Every test starts its own sandbox and uses its own API key, so the process-wide throttle
//! registry never couples two tests. Most tests run sandbox and client at 10 requests/second to keep
//! the file short (the documented 2/s is exercised by `default_rate_is_the_documented_two_per_second`
//! and by `cargo bench --bench throttle`); the sandbox's own per-second counters are the evidence.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stratus::cloud::idempotency::idempotency_key;
use stratus::cloud::retry::RetryPolicy;
use stratus::cloud::secret::fingerprint;
use stratus::cloud::throttle::Priority;
use stratus::cloud::{ApiKey, CloudError, ErrorClass};
use stratus::providers::strettch::client::{MAX_PAGE_SIZE, StrettchClient};
use stratus::providers::strettch::model::{
    ComputeCreate, ComputeState, DomainCreate, RecordType, RecordWrite,
};
use stratus::providers::strettch::sim::{self, Faults, KeyStats, SimConfig, SimHandle};

async fn sandbox(keys: &[&str], rate_limit: u32) -> SimHandle {
    let mut config = SimConfig::for_tests(keys);
    config.rate_limit = rate_limit;
    sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("sandbox starts")
}

fn client(sim: &SimHandle, key: &str, rps: f64) -> StrettchClient {
    StrettchClient::new(&sim.base_url(), ApiKey::new(key), Some(rps))
        .unwrap()
        .with_retry(quick_retry(5))
}

fn quick_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
    }
}

fn key_stats(sim: &SimHandle, key: &str) -> KeyStats {
    sim.stats()
        .keys
        .get(&stratus::providers::strettch::sim::key_fingerprint(key))
        .cloned()
        .unwrap_or_default()
}

fn route_count(sim: &SimHandle, route: &str) -> u64 {
    sim.stats()
        .requests_by_route
        .get(route)
        .copied()
        .unwrap_or(0)
}

fn compute_req(host: &str) -> ComputeCreate {
    ComputeCreate {
        host_name: host.into(),
        image: "UBUNTU-24.04".into(),
        region: "KGL-1".into(),
        specification: "S-1C-1G".into(),
        public_keys: vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB5s test@stratus".into()],
        with_public_ip: true,
        tags: vec!["stratus-uid:test".into()],
    }
}

fn record(name: &str, value: &str) -> RecordWrite {
    RecordWrite {
        name: name.into(),
        record_type: RecordType::A,
        value: value.into(),
        ttl: Some(300),
        priority: None,
        weight: None,
        port: None,
        comment: None,
    }
}

async fn wait_for_state(c: &StrettchClient, id: &str, want: ComputeState) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = c.get_compute(id, Priority::Urgent).await.unwrap();
        if got.state == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "compute {id} stuck in {}",
            got.state
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Run `call` until it is not deferred, as the reconciler does with a routine read that found no
/// budget (it comes back after `retry_in`); returns the result and how often it was deferred.
async fn until_served<T, F, Fut>(mut call: F) -> (Result<T, CloudError>, u32)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CloudError>>,
{
    let mut deferred = 0;
    loop {
        match call().await {
            Err(CloudError::Deferred { retry_in, .. }) => {
                deferred += 1;
                tokio::time::sleep(retry_in).await;
            }
            other => return (other, deferred),
        }
    }
}

/// The limit was never exceeded in any second the sandbox counted.
fn assert_within_limit(stats: &KeyStats, limit: u64) {
    let worst: Vec<_> = stats
        .per_second
        .iter()
        .filter(|(_, n)| **n > limit)
        .collect();
    assert!(
        worst.is_empty(),
        "seconds over the limit {limit}: {worst:?}"
    );
    assert!(stats.max_per_second <= limit, "{stats:?}");
}

#[tokio::test]
async fn every_endpoint_round_trips() {
    let key = "sk-it-endpoints";
    let sim = sandbox(&[key], 10).await;
    let c = client(&sim, key, 10.0);

    let health = c.health().await.unwrap();
    assert_eq!(health.status, "ok");
    let specs = c.list_specifications(Priority::Routine).await.unwrap();
    assert!(
        specs.iter().any(|s| s.specification == "S-2C-4G"),
        "{specs:?}"
    );
    assert!(!c.list_images(Priority::Routine).await.unwrap().is_empty());
    let regions = c.list_regions(Priority::Routine).await.unwrap();
    assert!(regions.iter().any(|r| r.region == "KGL-1"));

    // Create, and a replay of the same create (same Idempotency-Key) answers the original.
    let idem = idempotency_key("uid-endpoints", "compute.create", 0);
    let created = c.create_compute(&compute_req("web-1"), idem).await.unwrap();
    assert_eq!(created.state, ComputeState::Creating);
    let replayed = c.create_compute(&compute_req("web-1"), idem).await.unwrap();
    assert_eq!(replayed.id, created.id);
    assert_eq!(sim.computes().len(), 1);

    let got = c.get_compute(&created.id, Priority::Urgent).await.unwrap();
    assert_eq!(got.host_name, "web-1");
    let page = c
        .list_computes_page(1, 20, Priority::Routine)
        .await
        .unwrap();
    assert_eq!(page.page.as_ref().and_then(|p| p.total), Some(1));
    assert_eq!(page.data[0].id, created.id);

    wait_for_state(&c, &created.id, ComputeState::Running).await;
    assert_eq!(
        c.stop_compute(&created.id).await.unwrap().state,
        ComputeState::Stopping
    );
    wait_for_state(&c, &created.id, ComputeState::Stopped).await;
    assert_eq!(
        c.start_compute(&created.id).await.unwrap().state,
        ComputeState::Starting
    );
    wait_for_state(&c, &created.id, ComputeState::Running).await;
    assert_eq!(
        c.reboot_compute(&created.id).await.unwrap().state,
        ComputeState::Rebooting
    );
    wait_for_state(&c, &created.id, ComputeState::Running).await;
    let up = c.upsize_compute(&created.id, "S-2C-4G").await.unwrap();
    assert_eq!(up.id, created.id);
    wait_for_state(&c, &created.id, ComputeState::Running).await;
    assert_eq!(
        c.get_compute(&created.id, Priority::Urgent)
            .await
            .unwrap()
            .specification,
        "S-2C-4G"
    );
    c.delete_compute(&created.id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match c.get_compute(&created.id, Priority::Urgent).await {
            Err(e) if e.is_not_found() => break,
            Ok(c) => assert!(
                matches!(c.state, ComputeState::Destroying | ComputeState::Destroyed),
                "{c:?}"
            ),
            Err(e) => panic!("{e}"),
        }
        assert!(Instant::now() < deadline, "compute never went away");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // DNS.
    let domain = c
        .create_domain(
            &DomainCreate {
                domain: "example-stratus.com".into(),
            },
            idempotency_key("uid-domain", "domain.create", 0),
        )
        .await
        .unwrap();
    assert_eq!(
        c.get_domain(&domain.id, Priority::Urgent)
            .await
            .unwrap()
            .domain,
        domain.domain
    );
    assert!(
        c.list_domains(Priority::Routine)
            .await
            .unwrap()
            .iter()
            .any(|d| d.id == domain.id)
    );
    let rec = c
        .create_record(
            &domain.id,
            &record("www", "192.0.2.10"),
            idempotency_key("uid-record", "record.create", 0),
        )
        .await
        .unwrap();
    assert_eq!(rec.value, "192.0.2.10");
    let listed = c.list_records(&domain.id, Priority::Routine).await.unwrap();
    assert!(listed.iter().any(|r| r.id == rec.id));
    let updated = c
        .update_record(&domain.id, &rec.id, &record("www", "192.0.2.11"))
        .await
        .unwrap();
    assert_eq!(updated.value, "192.0.2.11");
    assert_eq!(
        c.get_record(&domain.id, &rec.id, Priority::Urgent)
            .await
            .unwrap()
            .value,
        "192.0.2.11"
    );
    c.delete_record(&domain.id, &rec.id).await.unwrap();
    assert!(
        c.get_record(&domain.id, &rec.id, Priority::Urgent)
            .await
            .unwrap_err()
            .is_not_found()
    );
    c.delete_domain(&domain.id).await.unwrap();
    assert!(
        c.get_domain(&domain.id, Priority::Urgent)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(key_stats(&sim, key).served_429, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn lists_walk_all_pages() {
    let key = "sk-it-pages";
    let sim = sandbox(&[key], 10).await;
    sim.seed_computes(250, vec![]);
    let c = client(&sim, key, 10.0);
    let before = route_count(&sim, "GET /computes");
    let all = c.list_all_computes(Priority::Routine).await.unwrap();
    assert_eq!(all.len(), 250);
    let ids: std::collections::HashSet<_> = all.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids.len(), 250);
    assert_eq!(
        route_count(&sim, "GET /computes") - before,
        3,
        "pages of {MAX_PAGE_SIZE}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn error_classes() {
    let key = "sk-it-errors";
    let sim = sandbox(&[key], 10).await;
    let c = client(&sim, key, 10.0);

    // 401: a key the sandbox does not know. For a human to fix, not retried.
    let stranger = client(&sim, "sk-it-errors-unknown", 10.0);
    let e = stranger
        .list_all_computes(Priority::Routine)
        .await
        .unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(401), "UNAUTHORIZED"), "{e:?}");
    assert_eq!(e.class(), ErrorClass::NeedsHuman);
    assert!(e.request_id().is_some());

    // 400 VALIDATION_ERROR: terminal, sent once.
    let before = key_stats(&sim, key).requests;
    let mut bad = compute_req("bad");
    bad.public_keys.clear();
    let e = c
        .create_compute(&bad, idempotency_key("uid-bad", "compute.create", 0))
        .await
        .unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(400), "VALIDATION_ERROR"),
        "{e:?}"
    );
    assert_eq!(e.class(), ErrorClass::Terminal);
    assert_eq!(
        key_stats(&sim, key).requests - before,
        1,
        "terminal errors are not retried"
    );

    // 400 INVALID_IDEMPOTENCY_KEY: not a v4 UUID.
    let e = c
        .create_compute(&compute_req("nil"), uuid::Uuid::nil())
        .await
        .unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(400), "INVALID_IDEMPOTENCY_KEY"),
        "{e:?}"
    );

    // 404: the not-found class.
    let before = key_stats(&sim, key).requests;
    let e = c
        .get_compute("does-not-exist", Priority::Urgent)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    assert!(e.is_not_found(), "{e:?}");
    assert!(
        c.delete_compute("does-not-exist")
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        c.get_domain("nope", Priority::Routine)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(key_stats(&sim, key).requests - before, 3);

    // 409: start a compute that is already RUNNING; register a domain twice.
    let created = c
        .create_compute(
            &compute_req("conflict"),
            idempotency_key("uid-409", "compute.create", 0),
        )
        .await
        .unwrap();
    wait_for_state(&c, &created.id, ComputeState::Running).await;
    let e = c.start_compute(&created.id).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(409), "CONFLICT"), "{e:?}");
    assert_eq!(e.class(), ErrorClass::Terminal);
    let d = DomainCreate {
        domain: "twice-stratus.com".into(),
    };
    c.create_domain(&d, idempotency_key("uid-d1", "domain.create", 0))
        .await
        .unwrap();
    let e = c
        .create_domain(&d, idempotency_key("uid-d2", "domain.create", 0))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(409), "{e:?}");

    // 422: upsize to a smaller specification; reuse of an Idempotency-Key with another body.
    c.upsize_compute(&created.id, "S-2C-4G").await.unwrap();
    let e = c.upsize_compute(&created.id, "S-1C-1G").await.unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(422), "UNPROCESSABLE_ENTITY"),
        "{e:?}"
    );
    let e = c
        .create_compute(
            &compute_req("other-body"),
            idempotency_key("uid-409", "compute.create", 0),
        )
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(422), "{e:?}");

    assert_eq!(key_stats(&sim, key).served_429, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_bodies_are_protocol_errors_and_5xx_are_retried() {
    let key = "sk-it-faults";
    let sim = sandbox(&[key], 10).await;
    let c = client(&sim, key, 10.0).with_retry(quick_retry(3));

    // Every GET answers 200 with a truncated body: retried (it may be a hiccup), then Protocol.
    sim.set_faults(Faults {
        malformed_rate: 1.0,
        ..Faults::default()
    });
    let before = key_stats(&sim, key).requests;
    let e = c
        .list_computes_page(1, 10, Priority::Routine)
        .await
        .unwrap_err();
    match &e {
        CloudError::Protocol {
            operation,
            status,
            message,
        } => {
            assert_eq!(operation, "computes.list");
            assert_eq!(*status, 200);
            assert!(message.contains("not JSON"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(key_stats(&sim, key).requests - before, 3, "3 attempts");

    // Every request answers 500: retried up to the bound, then the 500 is returned.
    sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let before = key_stats(&sim, key).requests;
    let e = c.get_compute("1", Priority::Routine).await.unwrap_err();
    assert_eq!(
        (e.status(), e.code()),
        (Some(500), "INTERNAL_SERVER_ERROR"),
        "{e:?}"
    );
    assert!(e.is_retryable());
    assert_eq!(key_stats(&sim, key).requests - before, 3);

    // A 500 that clears up: the call succeeds on a later attempt.
    let c2 = c.clone().with_retry(RetryPolicy {
        max_attempts: 10,
        initial: Duration::from_millis(100),
        max: Duration::from_millis(200),
    });
    let task = tokio::spawn(async move { c2.list_regions(Priority::Routine).await });
    tokio::time::sleep(Duration::from_millis(250)).await;
    sim.set_faults(Faults::default());
    assert!(!task.await.unwrap().unwrap().is_empty());
    sim.shutdown().await;
}

/// A create under "the write is applied but the answer is lost" and under a 500: the client sends
/// it once and reports the unknown outcome; the caller (the reconciler) sends it again with the
/// same Idempotency-Key and the sandbox answers with the original compute. Exactly one exists.
#[tokio::test]
async fn a_lost_answer_to_a_create_never_duplicates() {
    let key = "sk-it-drop";
    let sim = sandbox(&[key], 10).await;
    let c = client(&sim, key, 10.0);
    for (n, faults) in [
        Faults {
            drop_after_write_rate: 1.0,
            ..Faults::default()
        },
        Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
    ]
    .into_iter()
    .enumerate()
    {
        sim.set_faults(faults);
        let before = route_count(&sim, "POST /computes");
        let host = format!("drop-{n}");
        let idem = idempotency_key(&format!("uid-drop-{n}"), "compute.create", 0);
        let e = c
            .create_compute(&compute_req(&host), idem)
            .await
            .expect_err("the answer is lost");
        assert!(e.is_retryable(), "the outcome is unknown: {e:?}");
        assert_eq!(
            route_count(&sim, "POST /computes") - before,
            1,
            "one logical attempt: the client does not retry a create"
        );
        sim.set_faults(Faults::default());
        let created = c
            .create_compute(&compute_req(&host), idem)
            .await
            .expect("the caller's second attempt succeeds");
        let named: Vec<_> = sim
            .computes()
            .into_iter()
            .filter(|c| c.host_name == host)
            .collect();
        assert_eq!(named.len(), 1, "exactly one compute: {named:?}");
        assert_eq!(named[0].id, created.id);
        assert_eq!(route_count(&sim, "POST /computes") - before, 2);
    }
    assert_eq!(sim.computes().len(), 2);
    sim.shutdown().await;
}

/// 200 requests through one key, from 20 concurrent tasks of mixed priority, with sandbox and
/// client both at 10 requests/second (the documented 2/s would take 100 s; the bench runs it).
#[tokio::test]
async fn two_hundred_requests_never_exceed_the_limit() {
    let key = "sk-it-throttle-200";
    let limit = 10;
    let sim = sandbox(&[key], limit).await;
    let c = client(&sim, key, f64::from(limit));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..20 {
        let c = c.clone();
        let p = [Priority::Routine, Priority::Urgent, Priority::Write][t % 3];
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let (r, deferred) = until_served(|| c.list_computes_page(1, 1, p)).await;
                r.unwrap();
                assert!(
                    deferred == 0 || p == Priority::Routine,
                    "only routine reads are deferred"
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = key_stats(&sim, key);
    assert_eq!(stats.requests, 200);
    assert_eq!(stats.served_429, 0, "no 429 was served");
    assert_eq!(sim.stats().served_429, 0);
    assert_within_limit(&stats, u64::from(limit));
    assert_eq!(stats.per_second.values().sum::<u64>(), 200);
    let rate = 200.0 / elapsed;
    eprintln!(
        "200 requests in {elapsed:.2} s = {rate:.2} req/s (limit {limit}); max per second {}",
        stats.max_per_second
    );
    // Never faster than the limit; how close to it is a benchmark figure (benches/throttle.rs),
    // not an assertion that a busy machine could fail.
    assert!(rate <= f64::from(limit), "{rate}");
    sim.shutdown().await;
}

#[tokio::test]
async fn two_clients_sharing_a_key_share_one_budget() {
    let key = "sk-it-shared";
    let limit = 10;
    let sim = sandbox(&[key], limit).await;
    let a = client(&sim, key, 10.0);
    let b = client(&sim, key, 10.0);
    assert!(Arc::ptr_eq(a.throttle(), b.throttle()));
    let run = |c: StrettchClient, p: Priority| async move {
        for _ in 0..30 {
            until_served(|| c.list_regions(p)).await.0.unwrap();
        }
    };
    let started = Instant::now();
    tokio::join!(
        run(a.clone(), Priority::Routine),
        run(a.clone(), Priority::Urgent),
        run(b.clone(), Priority::Routine),
        run(b.clone(), Priority::Write),
    );
    let stats = key_stats(&sim, key);
    assert_eq!(stats.requests, 120);
    assert_eq!(stats.served_429, 0);
    assert_within_limit(&stats, u64::from(limit));
    // Together they got one key's budget, not two.
    assert!(started.elapsed() >= Duration::from_secs_f64(119.0 / 10.0 * 0.99));
    sim.shutdown().await;
}

/// The sandbox allows 2/s, the client is configured for 10/s, and every answer takes 1 s, so ten
/// requests are in flight before the first rate-limit headers come back: the sandbox answers some
/// of them 429. Those hold the key (Retry-After / reset), the pace drops to the server's reported
/// limit, every call succeeds, and the number of requests stays bounded: no retry storm.
#[tokio::test]
async fn a_lower_server_limit_causes_no_retry_storm() {
    let key = "sk-it-429";
    let sim = sandbox(&[key], 2).await;
    sim.set_faults(Faults {
        latency_ms: 1000,
        ..Faults::default()
    });
    let c = client(&sim, key, 10.0).with_retry(quick_retry(8));
    let logical = 12;
    let mut tasks = Vec::new();
    for _ in 0..logical {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            until_served(|| c.list_images(Priority::Routine)).await.0
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("every call succeeds in the end");
    }
    let stats = key_stats(&sim, key);
    let sent = stats.requests + stats.served_429;
    eprintln!(
        "{logical} calls: {} served, {} answered 429, max per second {}",
        stats.requests, stats.served_429, stats.max_per_second
    );
    assert_eq!(stats.requests, logical);
    // Ten requests arrive within one second or two of which the sandbox lets through at most four.
    assert!(
        stats.served_429 >= 1,
        "the 429 path was exercised: {stats:?}"
    );
    assert!(
        sent <= 2 * logical,
        "{sent} requests for {logical} calls (unthrottled retries could send {})",
        logical * 8
    );
    assert_within_limit(&stats, 2);
    assert!(c.throttle().effective_requests_per_second() <= 2.0);
    assert_eq!(c.throttle().requests_per_second(), 10.0);
    sim.shutdown().await;
}

#[tokio::test]
async fn default_rate_is_the_documented_two_per_second() {
    let key = "sk-it-default-rate";
    let sim = sandbox(&[key], 2).await;
    let c = StrettchClient::new(&sim.base_url(), ApiKey::new(key), None).unwrap();
    assert_eq!(c.throttle().requests_per_second(), 2.0);
    let started = Instant::now();
    for _ in 0..9 {
        c.list_regions(Priority::Routine).await.unwrap();
    }
    // 8 spacings of ~0.525 s.
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let stats = key_stats(&sim, key);
    assert_eq!(stats.served_429, 0);
    assert_within_limit(&stats, 2);
    sim.shutdown().await;
}

/// A writer for a tracing subscriber that keeps everything logged.
#[derive(Clone, Default)]
struct Captured(Arc<parking_lot::Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_key_never_shows() {
    let key = "sk-it-very-secret-value-42";
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The test runtime is single-threaded, so a thread-local default sees every request.
    let _guard = tracing::subscriber::set_default(subscriber);
    // Other tests of this binary run on other threads without a subscriber; callsites they
    // registered first may have cached "never interested". Ask again now that one listens.
    tracing::callsite::rebuild_interest_cache();

    let sim = sandbox(&[key], 10).await;
    let c = client(&sim, key, 10.0).with_retry(quick_retry(2));
    c.list_regions(Priority::Routine).await.unwrap();
    let created = c
        .create_compute(
            &compute_req("secret-test"),
            idempotency_key("uid-secret", "c", 0),
        )
        .await
        .unwrap();
    let errors = vec![
        c.get_compute("missing", Priority::Routine)
            .await
            .unwrap_err(),
        c.upsize_compute(&created.id, "S-1C-1G").await.unwrap_err(),
        StrettchClient::new(
            &sim.base_url(),
            ApiKey::new("sk-it-very-secret-unknown"),
            Some(10.0),
        )
        .unwrap()
        .get_compute("1", Priority::Routine)
        .await
        .unwrap_err(),
    ];
    sim.set_faults(Faults {
        malformed_rate: 1.0,
        ..Faults::default()
    });
    let mut errors = errors;
    errors.push(c.list_images(Priority::Routine).await.unwrap_err());
    sim.shutdown().await;
    // Connection refused now.
    errors.push(c.list_images(Priority::Routine).await.unwrap_err());

    let mut shown = format!("{c:?}\n{:?}\n", c.throttle());
    for e in &errors {
        shown.push_str(&format!("{e:?}\n{e}\n"));
    }
    let logs = String::from_utf8_lossy(&captured.0.lock()).to_string();
    let metrics = stratus::metrics::global().encode();
    for (what, text) in [
        ("debug/display", &shown),
        ("logs", &logs),
        ("metrics", &metrics),
    ] {
        assert!(
            !text.contains("very-secret"),
            "{what} show the key:\n{text}"
        );
    }
    let fp = fingerprint(key);
    assert!(shown.contains(&fp), "{shown}");
    assert!(logs.contains(&fp), "the logs name the key by fingerprint");
    assert!(
        logs.contains("cloud.request")
            && logs.contains("strettch")
            && logs.contains("computes.create"),
        "{logs}"
    );
    assert!(logs.contains("request_id"), "{logs}");
    assert!(
        metrics.contains("operation=\"computes.create\",code=\"202\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("operation=\"images.list\",code=\"transport\""),
        "{metrics}"
    );
}

#[tokio::test]
async fn metrics_count_every_call() {
    let key = "sk-it-metrics";
    let sim = sandbox(&[key], 10).await;
    let c = client(&sim, key, 10.0);
    c.list_domains(Priority::Routine).await.unwrap();
    let _ = c.get_record("nope", "nope", Priority::Routine).await;
    let text = stratus::metrics::global().encode();
    let mut found = BTreeMap::new();
    for needle in [
        "stratus_cloud_requests_total{provider=\"strettch\",operation=\"domains.list\",code=\"200\"}",
        "stratus_cloud_requests_total{provider=\"strettch\",operation=\"records.get\",code=\"404\"}",
        "stratus_cloud_throttle_wait_seconds_count{provider=\"strettch\"",
        "stratus_cloud_budget_remaining{provider=\"strettch\"",
    ] {
        found.insert(needle, text.contains(needle));
    }
    assert!(found.values().all(|f| *f), "{found:?}\n{text}");
    sim.shutdown().await;
}
