//! Adaptive limits, class limits, capped holds and limits that change under traffic, on tokio's
//! paused clock.

use super::*;
use crate::cloud::ApiKey;
use std::time::{SystemTime, UNIX_EPOCH};

const SEC: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Acquires `op` as fast as the throttle lets it until `until`; the grant times.
async fn greedy_until(t: Arc<KeyThrottle>, op: Op<'static>, until: Instant) -> Vec<Instant> {
    let mut times = Vec::new();
    loop {
        tokio::select! {
            _ = t.acquire_op(&op) => {}
            _ = tokio::time::sleep_until(until) => return times,
        }
        times.push(Instant::now());
    }
}

/// The most of `times` in a window of length `window` that holds one at or after `from`.
fn max_in_a_window_reaching(times: &[Instant], window: Duration, from: Instant) -> usize {
    (0..times.len())
        .filter(|&j| times[j] >= from)
        .map(|j| {
            times[..=j]
                .iter()
                .filter(|s| times[j].duration_since(**s) < window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn class_waiting(t: &KeyThrottle, class: &str) -> usize {
    t.state.lock().classes.waiting(class)
}

async fn until_class_waiting(t: &KeyThrottle, class: &str, n: usize) {
    for _ in 0..10_000 {
        if class_waiting(t, class) == n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("expected {n} waiters for {class}");
}

fn adaptive_key(name: &str, limit: AdaptiveLimit) -> Arc<KeyThrottle> {
    KeyThrottle::new("test", name, Policy::default().with_adaptive(limit))
}

#[tokio::test(start_paused = true)]
async fn an_adaptive_limit_halves_on_a_429_and_recovers_by_a_tenth_per_clean_window() {
    let t = adaptive_key("adaptive-halves", AdaptiveLimit::new(MIN, 60, 5, 120));
    assert_eq!(t.adaptive_limits(), [(MIN, 60)]);
    let start = Instant::now();
    t.rate_limited(RateLimited {
        retry_after: Some(10 * SEC),
        ..Default::default()
    });
    assert_eq!(t.adaptive_limits(), [(MIN, 30)]);
    let held = t.held_until().expect("held") - start;
    assert_eq!(held, 10 * SEC + RESET_MARGIN);
    // Traffic as fast as allowed: one raise per full window, 10% at a time.
    let mut seen = vec![30];
    let t2 = t.clone();
    let mut times = Vec::new();
    while Instant::now() < start + 210 * SEC {
        t2.acquire(Priority::Routine).await;
        times.push(Instant::now());
        let n = t.adaptive_limits()[0].1;
        if *seen.last().unwrap() != n {
            seen.push(n);
        }
    }
    assert_eq!(seen, [30, 33, 36, 39]);
    assert!(times[0] >= start + 10 * SEC, "the hold came first");
    assert!(max_in_any_window(&times, MIN) <= 39);
    // A 429 halves again; never below min.
    for _ in 0..5 {
        t.rate_limited(RateLimited::default());
    }
    assert_eq!(t.adaptive_limits(), [(MIN, 5)]);
}

#[tokio::test(start_paused = true)]
async fn an_adaptive_limit_learns_the_reported_limit_and_no_window_exceeds_it() {
    let t = adaptive_key("adaptive-learns", AdaptiveLimit::new(MIN, 60, 5, 300));
    let start = Instant::now();
    let before = greedy_until(t.clone(), Op::new(Priority::Routine), start + 2 * MIN).await;
    assert!(max_in_any_window(&before, MIN) >= 55);
    // Vertra: {"code":"RATE_LIMIT_EXCEEDED","details":{"scope":"minute","limit":20,...}}
    let change = Instant::now();
    t.rate_limited(RateLimited {
        retry_after: Some(SEC),
        limit: Some(20),
        window: Some(MIN),
        ..Default::default()
    });
    assert_eq!(t.adaptive_limits(), [(MIN, 20)]);
    let after = greedy_until(t.clone(), Op::new(Priority::Routine), change + 5 * MIN).await;
    let all = [before, after.clone()].concat();
    // The minute before the 429 held ~60: the learned 20 counts them (the new limit replays the
    // key's log), and recovery stops at the reported limit.
    let worst = max_in_a_window_reaching(&all, MIN, change);
    assert!(worst <= 20, "{worst}");
    // The first one goes once the window has room (the 20th newest is ~20 s old, plus a paced
    // window), not a whole window later than that.
    let first = after[0] - change;
    assert!(first >= 40 * SEC && first <= 45 * SEC, "{first:?}");
    assert!(max_in_any_window(&after, MIN) >= 19);
    assert_eq!(t.adaptive_limits(), [(MIN, 20)]);
    // The headers of an answer set N directly, never above max.
    t.observe_headers(RateLimitHeaders {
        limit: Some(120),
        window: Some(MIN),
        ..Default::default()
    });
    assert_eq!(t.adaptive_limits(), [(MIN, 120)]);
    t.observe_headers(RateLimitHeaders {
        limit: Some(100_000),
        window: Some(MIN),
        ..Default::default()
    });
    assert_eq!(t.adaptive_limits(), [(MIN, 300)]);
}

#[tokio::test(start_paused = true)]
async fn a_per_minute_limit_in_the_headers_is_read_per_minute() {
    let t = KeyThrottle::new("test", "headers-per-minute", 10.0);
    // CloudAPI: x-ratelimit-limit: 300 (per minute) is 5/s, below the configured 10/s.
    t.observe_headers(RateLimitHeaders {
        limit: Some(300),
        remaining: Some(299),
        window: Some(MIN),
        ..Default::default()
    });
    assert_eq!(t.effective_requests_per_second(), 5.0);
    // Read per second (no window, Strettch's headers), the same figure would not bind.
    let s = KeyThrottle::new("test", "headers-per-second", 10.0);
    s.observe_headers(RateLimitHeaders {
        limit: Some(300),
        ..Default::default()
    });
    assert_eq!(s.effective_requests_per_second(), 10.0);
    // An exhausted per-minute budget with a reset 45 s out holds 45 s: believed, it is within the
    // window the headers count.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    t.observe_headers(RateLimitHeaders {
        remaining: Some(0),
        reset: Some(now + 45),
        date: Some(now),
        window: Some(MIN),
        ..Default::default()
    });
    let held = t.held_until().expect("held") - Instant::now();
    assert!(
        held > 44 * SEC && held <= 45 * SEC + RESET_MARGIN,
        "{held:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hold_never_exceeds_max_hold() {
    // A per-second key: one minute at most, whatever is asked.
    let t = KeyThrottle::new("test", "max-hold-second", 2.0);
    assert_eq!(t.max_hold(), MAX_HEADER_HOLD + RESET_MARGIN);
    t.hold_for(5 * HOUR);
    assert_eq!(t.held_until().unwrap() - Instant::now(), t.max_hold());
    t.hold_until(std::time::Instant::now() + 2 * HOUR);
    assert!(t.held_until().unwrap() - Instant::now() <= t.max_hold());
    t.rate_limited(RateLimited {
        retry_after: Some(5 * HOUR),
        ..Default::default()
    });
    assert_eq!(t.held_until().unwrap() - Instant::now(), t.max_hold());
    // Today's Strettch caller: a 429 asking a minute or more holds exactly as before.
    let strettch = KeyThrottle::new("test", "max-hold-strettch", 2.0);
    strettch.hold_for(Duration::from_secs(120).min(MAX_HEADER_HOLD) + RESET_MARGIN);
    assert_eq!(
        strettch.held_until().unwrap() - Instant::now(),
        MAX_HEADER_HOLD + RESET_MARGIN
    );
    // The longest window on the path sets the cap: a group's, a class's, a reported one.
    let hourly = KeyThrottle::new(
        "test",
        "max-hold-class",
        Policy::from(2.0).with_class(ClassLimit::new("deploy", 5, HOUR)),
    );
    assert_eq!(hourly.max_hold(), HOUR + RESET_MARGIN);
    let grouped = KeyThrottle::new(
        "test",
        "max-hold-group",
        Policy::new(
            vec![LimitSpec::per_second(2.0), LimitSpec::group(600, 10 * MIN)],
            Some("acme".into()),
        ),
    );
    assert_eq!(grouped.max_hold(), 10 * MIN + RESET_MARGIN);
    let daily = KeyThrottle::new("test", "max-hold-day", vec![LimitSpec::key(1000, DAY)]);
    assert_eq!(daily.max_hold(), DAY + RESET_MARGIN);
    daily.hold_for(2 * DAY);
    assert_eq!(
        daily.held_until().unwrap() - Instant::now(),
        daily.max_hold()
    );
    t.observe_headers(RateLimitHeaders {
        limit: Some(20_000),
        window: Some(DAY),
        ..Default::default()
    });
    assert_eq!(t.max_hold(), DAY + RESET_MARGIN);
}

#[tokio::test(start_paused = true)]
async fn a_429_asking_five_hours_on_a_key_with_a_daily_limit_holds_five_hours() {
    let t = KeyThrottle::new(
        "test",
        "daily-429",
        Policy::from(2.0).with_adaptive(AdaptiveLimit::new(DAY, 1000, 100, 20_000)),
    );
    // Vertra: DAILY_QUOTA_EXCEEDED, details {scope: "day", limit: 1000, retry_after: 18000}.
    t.rate_limited(RateLimited {
        retry_after: Some(5 * HOUR),
        limit: Some(1000),
        window: Some(DAY),
        ..Default::default()
    });
    assert_eq!(
        t.held_until().unwrap() - Instant::now(),
        5 * HOUR + RESET_MARGIN
    );
    let start = Instant::now();
    t.acquire(Priority::Write).await;
    assert!(start.elapsed() >= 5 * HOUR);
    // The daily quota's headers (x-quota-*) say the same: a reset 3 hours out is believed.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    t.observe_headers(RateLimitHeaders {
        limit: Some(1000),
        remaining: Some(0),
        reset: Some(now + 3 * 3600),
        date: Some(now),
        window: Some(DAY),
    });
    let held = t.held_until().expect("held") - Instant::now();
    assert!(
        held > 3 * HOUR - 2 * SEC && held <= 3 * HOUR + RESET_MARGIN,
        "{held:?}"
    );
}

fn vertra_like(name: &str) -> Arc<KeyThrottle> {
    KeyThrottle::new(
        "test",
        name,
        Policy::from(10.0)
            .with_class(ClassLimit::new("deploy", 5, HOUR))
            .with_class(ClassLimit::new("lifecycle", 10, MIN).per_subject()),
    )
}

#[tokio::test(start_paused = true)]
async fn a_class_429_holds_only_that_class_and_never_the_key() {
    let t = vertra_like("class-hold");
    tokio::time::sleep(HOUR).await;
    let start = Instant::now();
    t.rate_limited(RateLimited {
        class: Some("deploy".into()),
        retry_after: Some(HOUR),
        ..Default::default()
    });
    assert!(t.held_until().is_none(), "the key is not held");
    let t2 = t.clone();
    let deploy = tokio::spawn(async move {
        t2.acquire_op(&Op::new(Priority::Write).class("deploy", Some("app-a")))
            .await;
        Instant::now()
    });
    until_class_waiting(&t, "deploy", 1).await;
    // The deploy waits at its class, not at the head of the key's queue.
    assert_eq!(t.waiting(), 0);
    for i in 0..5 {
        let app = format!("app-{i}");
        t.acquire_op(&Op::new(Priority::Routine).class("lifecycle", Some(&app)))
            .await;
        t.acquire(Priority::Routine).await;
    }
    assert!(start.elapsed() < 10 * SEC, "{:?}", start.elapsed());
    // A routine request of the held class gives its place up at once.
    let deferred = t
        .acquire_op_or_defer(&Op::new(Priority::Routine).class("deploy", None))
        .await
        .expect_err("the class is held for an hour");
    assert!(deferred.retry_in >= HOUR - 20 * SEC, "{deferred:?}");
    let at = deploy.await.unwrap();
    assert!(at >= start + HOUR, "{:?}", at - start);
    assert_eq!(class_waiting(&t, "deploy"), 0);
}

#[tokio::test(start_paused = true)]
async fn a_per_subject_class_429_holds_that_subject_only() {
    let t = vertra_like("subject-hold");
    tokio::time::sleep(MIN).await;
    let start = Instant::now();
    t.rate_limited(RateLimited {
        class: Some("lifecycle".into()),
        subject: Some("app-a".into()),
        retry_after: Some(30 * SEC),
        ..Default::default()
    });
    let t2 = t.clone();
    let a = tokio::spawn(async move {
        t2.acquire_op(&Op::new(Priority::Write).class("lifecycle", Some("app-a")))
            .await;
        Instant::now()
    });
    until_class_waiting(&t, "lifecycle", 1).await;
    t.acquire_op(&Op::new(Priority::Write).class("lifecycle", Some("app-b")))
        .await;
    assert!(start.elapsed() < SEC, "{:?}", start.elapsed());
    let at = a.await.unwrap();
    assert!(at >= start + 30 * SEC, "{:?}", at - start);
}

#[tokio::test(start_paused = true)]
async fn a_class_limit_counts_each_subject_apart_and_a_deploy_waiting_an_hour_blocks_nothing() {
    let t = vertra_like("class-limits");
    tokio::time::sleep(HOUR).await;
    let start = Instant::now();
    let until = start + 5 * MIN;
    let mut tasks = Vec::new();
    for op in [
        Op::new(Priority::Write).class("lifecycle", Some("app-a")),
        Op::new(Priority::Write).class("lifecycle", Some("app-a")),
        Op::new(Priority::Write).class("lifecycle", Some("app-b")),
        Op::new(Priority::Write).class("deploy", Some("app-a")),
        Op::new(Priority::Routine),
    ] {
        tasks.push(tokio::spawn(greedy_until(t.clone(), op, until)));
    }
    let mut times = Vec::new();
    for task in tasks {
        times.push(task.await.unwrap());
    }
    let app_a = {
        let mut a = [times[0].clone(), times[1].clone()].concat();
        a.sort();
        a
    };
    assert!(max_in_any_window(&app_a, MIN) <= 10);
    assert!(max_in_any_window(&times[2], MIN) <= 10);
    assert!(
        max_in_any_window(&times[2], MIN) >= 9,
        "app-b has its own budget"
    );
    // 5 per hour: one deploy, the next is 12 minutes away (and never at the key's head).
    assert_eq!(times[3].len(), 1);
    // Observation kept most of the key's 10/s the whole time.
    let all: Vec<Instant> = {
        let mut all = times.concat();
        all.sort();
        all
    };
    assert!(max_in_any_window(&all, SEC) <= 10);
    assert!(times[4].len() > 5 * 60 * 9, "{}", times[4].len());
}

#[tokio::test(start_paused = true)]
async fn within_a_class_priorities_hold_and_namespaces_take_turns() {
    let t = KeyThrottle::new(
        "test",
        "class-order",
        Policy::from(10.0).with_class(ClassLimit::new("deploy", 6, MIN)),
    );
    tokio::time::sleep(MIN).await;
    t.rate_limited(RateLimited {
        class: Some("deploy".into()),
        retry_after: Some(5 * SEC),
        ..Default::default()
    });
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (i, (ns, p)) in [
        ("team-a", Priority::Routine),
        ("team-a", Priority::Routine),
        ("team-a", Priority::Write),
        ("team-a", Priority::Write),
        ("team-b", Priority::Write),
        ("team-b", Priority::Urgent),
    ]
    .into_iter()
    .enumerate()
    {
        let (t2, order) = (t.clone(), order.clone());
        let name = format!("{ns}-{}{i}", p.as_str());
        tasks.push(tokio::spawn(in_flow(ns, async move {
            t2.acquire_op(&Op::new(p).class("deploy", None)).await;
            order.lock().push(name);
        })));
        until_class_waiting(&t, "deploy", i + 1).await;
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        *order.lock(),
        [
            "team-a-write2",
            "team-b-write4",
            "team-a-write3",
            "team-b-urgent5",
            "team-a-routine0",
            "team-a-routine1"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_class_permit_given_up_while_waiting_for_the_key_frees_the_class() {
    let t = KeyThrottle::new(
        "test",
        "class-cancel",
        Policy::from(10.0).with_class(ClassLimit::new("deploy", 6, MIN)),
    );
    tokio::time::sleep(MIN).await;
    t.hold_for(10 * SEC);
    // The class permit is had at once; the key is held: the request gives up while at the key.
    let op = Op::new(Priority::Write).class("deploy", None);
    let r = tokio::time::timeout(SEC, t.acquire_op(&op)).await;
    assert!(r.is_err());
    assert_eq!(t.waiting(), 0);
    // The class was not spent: the next deploy goes as soon as the key allows.
    let start = Instant::now();
    t.acquire_op(&op).await;
    assert!(start.elapsed() <= 10 * SEC, "{:?}", start.elapsed());
}

#[tokio::test(start_paused = true)]
async fn subjects_of_a_class_are_forgotten_once_idle() {
    let t = vertra_like("class-memory");
    tokio::time::sleep(MIN).await;
    for i in 0..200 {
        let app = format!("app-{i}");
        t.acquire_op(&Op::new(Priority::Write).class("lifecycle", Some(&app)))
            .await;
    }
    assert!(t.state.lock().classes.subjects("lifecycle") <= 200);
    tokio::time::sleep(2 * MIN).await;
    t.acquire_op(&Op::new(Priority::Write).class("lifecycle", Some("app-new")))
        .await;
    let left = t.state.lock().classes.subjects("lifecycle");
    assert!(left < 64, "{left}");
}

#[tokio::test(start_paused = true)]
async fn a_second_provider_config_adding_a_lower_limit_counts_what_the_window_already_holds() {
    let reg = ThrottleRegistry::default();
    let key = ApiKey::new("respec-under-traffic");
    let t = reg.throttle_for("test", &key, "pc-a", 2.0);
    let start = Instant::now();
    let before = greedy_until(t.clone(), Op::new(Priority::Routine), start + 30 * SEC).await;
    assert!(before.len() >= 55);
    // Mid-stream, a second ProviderConfig adds 30 per minute: the last 30 s already hold ~57.
    reg.throttle_for(
        "test",
        &key,
        "pc-b",
        Policy::from(vec![LimitSpec::per_second(2.0), LimitSpec::key(30, MIN)]),
    );
    let after = greedy_until(t.clone(), Op::new(Priority::Routine), start + 4 * MIN).await;
    let all = [before, after].concat();
    let worst = max_in_any_window(&all, MIN);
    assert!(worst <= 57, "{worst}");
    let change = start + 30 * SEC;
    let reaching = max_in_a_window_reaching(&all, MIN, change);
    assert!(reaching <= 30 || reaching == 0, "{reaching}");
    assert!(
        max_in_any_window(&all[60..], MIN) >= 29,
        "the new limit is used"
    );
}

#[tokio::test(start_paused = true)]
async fn the_registry_merges_adaptive_and_class_limits_lowest_first() {
    let reg = ThrottleRegistry::default();
    let key = ApiKey::new("merge-adaptive");
    let a = Policy::default()
        .with_adaptive(AdaptiveLimit::new(MIN, 100, 10, 300))
        .with_class(ClassLimit::new("deploy", 20, HOUR).adaptive(60));
    let b = Policy::default()
        .with_adaptive(AdaptiveLimit::new(MIN, 60, 20, 480))
        .with_adaptive(AdaptiveLimit::new(DAY, 1000, 100, 20_000))
        .with_class(ClassLimit::new("deploy", 10, HOUR));
    let t = reg.throttle_for("test", &key, "pc-a", a.clone());
    assert_eq!(t.adaptive_limits(), [(MIN, 100)]);
    reg.throttle_for("test", &key, "pc-b", b);
    assert_eq!(t.adaptive_limits(), [(MIN, 60), (DAY, 1000)]);
    let (classes, learned) = t.class_limits();
    assert_eq!(
        classes,
        [ClassLimit::new("deploy", 10, HOUR).adaptive(10)],
        "the lowest figures, learning as one of them does"
    );
    assert_eq!(learned, [("deploy".to_string(), HOUR, 10)]);
    assert_eq!(t.max_hold(), DAY + RESET_MARGIN);
    // pc-b goes: its limits go, what was learned stays within pc-a's bounds.
    t.rate_limited(RateLimited {
        window: Some(MIN),
        ..Default::default()
    });
    reg.release_user("pc-b");
    assert_eq!(t.adaptive_limits(), [(MIN, 30)]);
    let (classes, _) = t.class_limits();
    assert_eq!(classes, [ClassLimit::new("deploy", 20, HOUR).adaptive(60)]);
    assert_eq!(t.max_hold(), HOUR + RESET_MARGIN);
    // Policies compare and print.
    assert_eq!(a, a.clone());
    assert!(format!("{a:?}").contains("deploy"));
    assert!(format!("{t:?}").contains("deploy 20 per 1h"));
}

#[tokio::test(start_paused = true)]
async fn a_write_its_class_holds_longer_than_the_class_patience_is_deferred_without_a_permit() {
    let t = vertra_like("write-defer");
    tokio::time::sleep(MIN).await;
    t.rate_limited(RateLimited {
        class: Some("deploy".into()),
        retry_after: Some(HOUR),
        ..Default::default()
    });
    let before = t.permits_granted();
    let deferred = t
        .acquire_op_or_defer(&Op::new(Priority::Write).class("deploy", None))
        .await
        .expect_err("the deploy class is held for an hour");
    assert!(deferred.retry_in >= HOUR - 20 * SEC, "{deferred:?}");
    assert_eq!(
        t.permits_granted(),
        before,
        "a deferred write spends nothing"
    );
    assert_eq!(class_waiting(&t, "deploy"), 0, "and does not queue");

    // A short hold (a lifecycle call's next slot) is waited out.
    t.rate_limited(RateLimited {
        class: Some("lifecycle".into()),
        subject: Some("app-a".into()),
        retry_after: Some(5 * SEC),
        ..Default::default()
    });
    let start = Instant::now();
    t.acquire_op_or_defer(&Op::new(Priority::Write).class("lifecycle", Some("app-a")))
        .await
        .expect("a hold shorter than the class patience is waited");
    assert!(start.elapsed() >= 5 * SEC, "{:?}", start.elapsed());
}
