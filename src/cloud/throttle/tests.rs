//! The key throttle: queue, priorities, cancellation, deferral, limits and groups.

use super::*;
use crate::cloud::ApiKey;
use std::sync::atomic::{AtomicUsize, Ordering};

async fn until_waiting(t: &KeyThrottle, n: usize) {
    for _ in 0..10_000 {
        if t.waiting() == n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("expected {n} waiters, have {}", t.waiting());
}
#[test]
fn priorities_order_write_create_urgent_routine() {
    let mut v = vec![
        Priority::Routine,
        Priority::Create,
        Priority::Write,
        Priority::Urgent,
    ];
    v.sort();
    assert_eq!(
        v,
        [
            Priority::Write,
            Priority::Create,
            Priority::Urgent,
            Priority::Routine
        ]
    );
}
#[test]
fn pacing_is_slightly_slower_than_the_limit() {
    let p = pacing_period(2.0).as_secs_f64();
    assert!(p > 0.5 && p < 0.5 / 0.95, "{p}");
    assert!(pacing_period(f64::NAN) > Duration::from_secs(1));
    assert!(pacing_period(-3.0) > Duration::from_secs(1));
}
/// Real time is used in these (the clock is not paused); assertions leave room for
/// a loaded machine and never depend on scheduling for ordering: the queue is built while the
/// key is held, so who is served first is decided by the queue alone.
#[tokio::test]
async fn a_later_write_is_served_before_queued_routine_reads() {
    let t = KeyThrottle::new("test", "prio", 20.0);
    t.hold_for(Duration::from_millis(300));
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (t2, order) = (t.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            t2.acquire(Priority::Routine).await;
            order.lock().push(format!("routine{i}"));
        }));
        until_waiting(&t, i + 1).await;
    }
    for (n, (name, p)) in [("urgent", Priority::Urgent), ("write", Priority::Write)]
        .into_iter()
        .enumerate()
    {
        let (t2, order) = (t.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            t2.acquire(p).await;
            order.lock().push(name.to_string());
        }));
        until_waiting(&t, 6 + n).await;
    }
    assert!(
        t.held_until().is_some(),
        "the machine was too slow to build the queue in time"
    );
    for task in tasks {
        task.await.unwrap();
    }
    let order = order.lock().clone();
    assert_eq!(
        order,
        [
            "write", "urgent", "routine0", "routine1", "routine2", "routine3", "routine4"
        ]
    );
    assert_eq!(t.waiting(), 0);
}
#[tokio::test]
async fn fifo_within_a_priority_and_paced() {
    let rate = 20.0;
    let t = KeyThrottle::new("test", "fifo", rate);
    t.hold_for(Duration::from_millis(200));
    let grants = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (t2, grants) = (t.clone(), grants.clone());
        tasks.push(tokio::spawn(async move {
            t2.acquire(Priority::Urgent).await;
            grants.lock().push((i, Instant::now()));
        }));
        until_waiting(&t, i + 1).await;
    }
    for task in tasks {
        task.await.unwrap();
    }
    let grants = grants.lock().clone();
    assert_eq!(
        grants.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (0..20).collect::<Vec<_>>()
    );
    // 19 periods between the first and the last grant: never faster than the pace, and (with
    // room for a busy machine) not much slower.
    let span = grants[19].1 - grants[0].1;
    let period = pacing_period(rate);
    assert!(span + Duration::from_millis(2) >= period * 19, "{span:?}");
    assert!(span <= period * 19 + Duration::from_millis(250), "{span:?}");
}
#[tokio::test]
async fn a_cancelled_waiter_does_not_consume_a_permit() {
    let period = pacing_period(10.0);
    let t = KeyThrottle::new("test", "cancel", 10.0);
    t.acquire(Priority::Routine).await;
    let start = Instant::now();
    // A waiter that gives up (its future is dropped) while at the head of the queue.
    let r = tokio::time::timeout(Duration::from_millis(10), t.acquire(Priority::Write)).await;
    assert!(r.is_err());
    assert_eq!(t.waiting(), 0);
    // The next one gets the very next permit, not the one after.
    t.acquire(Priority::Routine).await;
    let at = start.elapsed();
    assert!(at < period + period / 2, "{at:?}");

    // Abort the head while others wait behind it; the queue keeps moving.
    let t2 = t.clone();
    let head = tokio::spawn(async move { t2.acquire(Priority::Write).await });
    until_waiting(&t, 1).await;
    let served = Arc::new(AtomicUsize::new(0));
    let mut rest = Vec::new();
    for i in 0..3 {
        let (t2, served) = (t.clone(), served.clone());
        rest.push(tokio::spawn(async move {
            t2.acquire(Priority::Routine).await;
            served.fetch_add(1, Ordering::SeqCst);
        }));
        until_waiting(&t, i + 2).await;
    }
    head.abort();
    let _ = head.await;
    let before = Instant::now();
    for r in rest {
        r.await.unwrap();
    }
    assert_eq!(served.load(Ordering::SeqCst), 3);
    assert_eq!(t.waiting(), 0);
    // 3 permits, the first one due within a period: well under 4 periods.
    assert!(
        before.elapsed() < period * 3 + period / 2,
        "{:?}",
        before.elapsed()
    );
}
#[tokio::test]
async fn many_cancellations_leave_no_trace() {
    let t = KeyThrottle::new("test", "cancel-many", 50.0);
    t.hold_for(Duration::from_millis(100));
    let mut handles = Vec::new();
    for i in 0..40 {
        let t2 = t.clone();
        let p = [Priority::Write, Priority::Urgent, Priority::Routine][i % 3];
        handles.push(tokio::spawn(async move { t2.acquire(p).await }));
        until_waiting(&t, i + 1).await;
    }
    for h in handles.iter().step_by(2) {
        h.abort();
    }
    let mut done = 0;
    for h in handles {
        if h.await.is_ok() {
            done += 1;
        }
    }
    assert!(done >= 20, "{done}");
    assert_eq!(t.waiting(), 0);
    let start = Instant::now();
    t.acquire(Priority::Routine).await;
    assert!(
        start.elapsed() < pacing_period(50.0) * 2,
        "{:?}",
        start.elapsed()
    );
}
#[tokio::test]
async fn a_new_throttle_has_no_permit_in_hand_for_one_pacing_period() {
    // A process that just started cannot know what its predecessor spent in the server's
    // current window: its first permit waits one period, like the predecessor's next one.
    let rate = 4.0;
    let t = KeyThrottle::new("test", "no-burst", rate);
    let start = Instant::now();
    t.acquire(Priority::Write).await;
    let first = start.elapsed();
    t.acquire(Priority::Write).await;
    let second = start.elapsed();
    let period = pacing_period(rate);
    assert!(first + Duration::from_millis(2) >= period, "{first:?}");
    assert!(
        second + Duration::from_millis(2) >= period * 2,
        "{second:?}"
    );
    assert_eq!(t.permits_granted(), 2);
}
#[tokio::test]
async fn a_routine_read_gives_its_place_up_at_once_when_the_key_is_held_beyond_its_patience() {
    let t = KeyThrottle::new("test", "defer-held", 20.0);
    t.hold_for(ROUTINE_PATIENCE * 4);
    let t2 = t.clone();
    let write = tokio::spawn(async move { t2.acquire_or_defer(Priority::Write).await });
    until_waiting(&t, 1).await;
    let start = Instant::now();
    let deferred = t
        .acquire_or_defer(Priority::Routine)
        .await
        .expect_err("no permit within the patience");
    assert!(start.elapsed() < ROUTINE_PATIENCE, "{:?}", start.elapsed());
    assert!(
        deferred.retry_in >= ROUTINE_PATIENCE * 3,
        "the hold is the estimate: {deferred:?}"
    );
    // It left no trace in the queue; the write still waits and is served after the hold.
    assert_eq!(t.waiting(), 1);
    assert_eq!(t.permits_granted(), 0);
    write.await.unwrap().expect("a write always waits");
    assert_eq!(t.permits_granted(), 1);
    assert_eq!(t.waiting(), 0);
}
#[tokio::test]
async fn a_routine_read_that_gets_no_permit_within_its_patience_leaves_the_queue_unserved() {
    // 0.4/s: the first permit of a new throttle is 2.6 s away, further than the patience,
    // though neither a hold nor a queue says so in advance.
    let t = KeyThrottle::new("test", "defer-timeout", 0.4);
    let (t2, t3) = (t.clone(), t.clone());
    let routine = tokio::spawn(async move {
        let start = Instant::now();
        let r = t2.acquire_or_defer(Priority::Routine).await;
        (r, start.elapsed())
    });
    until_waiting(&t, 1).await;
    // A write that arrives while the routine read waits is ahead of it.
    let write = tokio::spawn(async move { t3.acquire_or_defer(Priority::Write).await });
    until_waiting(&t, 2).await;
    let (r, waited) = routine.await.unwrap();
    let deferred = r.expect_err("deferred");
    assert!(deferred.retry_in >= ROUTINE_PATIENCE, "{deferred:?}");
    assert!(
        waited >= ROUTINE_PATIENCE && waited < ROUTINE_PATIENCE * 2,
        "{waited:?}"
    );
    assert_eq!(t.waiting(), 1, "only the write is left");
    assert_eq!(t.permits_granted(), 0, "giving up spent no permit");
    write.await.unwrap().unwrap();
    assert_eq!(t.permits_granted(), 1);
}
#[tokio::test]
async fn writes_and_urgent_reads_never_defer_and_routine_reads_within_patience_are_served() {
    let t = KeyThrottle::new("test", "defer-never", 0.9);
    // Held beyond the patience: writes and urgent reads wait it out.
    t.hold_for(ROUTINE_PATIENCE + Duration::from_millis(300));
    let start = Instant::now();
    t.acquire_or_defer(Priority::Urgent).await.unwrap();
    t.acquire_or_defer(Priority::Write).await.unwrap();
    assert!(start.elapsed() >= ROUTINE_PATIENCE, "{:?}", start.elapsed());
    // A fast key: a routine read is served.
    let fast = KeyThrottle::new("test", "defer-fast", 50.0);
    fast.acquire_or_defer(Priority::Routine).await.unwrap();
    assert_eq!(fast.permits_granted(), 1);
}

const SEC: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);

/// Runs `callers` tasks per throttle that acquire as fast as they are let, pausing every
/// `burst_every` permits long enough for bursts to come back; returns the grant times per
/// throttle. For a paused clock.
async fn greedy(
    throttles: &[Arc<KeyThrottle>],
    per_throttle: usize,
    pause_every: usize,
    pause: Duration,
) -> Vec<Vec<Instant>> {
    let mut tasks = Vec::new();
    for t in throttles {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            while times.len() < per_throttle {
                t.acquire(Priority::Routine).await;
                times.push(Instant::now());
                if times.len() % pause_every == 0 {
                    tokio::time::sleep(pause).await;
                }
            }
            times
        }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn every_request_takes_every_limit_on_its_path_and_no_window_holds_more_than_n() {
    let per_minute = LimitSpec::key(30, MIN).with_burst(5);
    let per_second = LimitSpec::key(2, SEC).with_window(Window::Fixed);
    let t = KeyThrottle::new("test", "multi", vec![per_minute, per_second]);
    let times = greedy(std::slice::from_ref(&t), 200, 37, MIN)
        .await
        .remove(0);
    assert_eq!(times.len(), 200);
    assert!(
        max_in_any_window(&times, MIN) <= 30,
        "{}",
        max_in_any_window(&times, MIN)
    );
    assert!(
        max_in_any_window(&times, SEC) <= 2,
        "{}",
        max_in_any_window(&times, SEC)
    );
    // Both bind: the per-second limit stops the burst of 5 from going out at once, the
    // per-minute one keeps the long run at 30/min, not 2/s.
    assert_eq!(max_in_any_window(&times, Duration::from_millis(1)), 1);
    assert!(max_in_any_window(&times, MIN) >= 28);
}

#[tokio::test(start_paused = true)]
async fn keys_of_a_budget_group_share_its_limits() {
    let reg = ThrottleRegistry::default();
    let policy = |group: &str| {
        Policy::new(
            vec![
                LimitSpec::key(30, MIN).with_burst(5),
                LimitSpec::group(40, 10 * MIN).with_burst(6),
            ],
            Some(group.to_string()),
        )
    };
    let a = reg.throttle_for("test", &ApiKey::new("group-key-a"), "pc-a", policy("acme"));
    let b = reg.throttle_for("test", &ApiKey::new("group-key-b"), "pc-b", policy("acme"));
    let g = reg.group("test", "acme").expect("group");
    assert!(Arc::ptr_eq(&a.groups()[0], &g) && Arc::ptr_eq(&b.groups()[0], &g));
    assert_eq!(a.key_limits(), [LimitSpec::key(30, MIN).with_burst(5)]);
    let times = greedy(&[a.clone(), b.clone()], 45, 20, 3 * MIN).await;
    let mut all: Vec<Instant> = times.concat();
    all.sort();
    for (name, key) in [("a", &times[0]), ("b", &times[1])] {
        assert!(max_in_any_window(key, MIN) <= 30, "{name}");
    }
    let worst = max_in_any_window(&all, 10 * MIN);
    assert!(worst <= 40, "group: {worst}");
    assert!(worst >= 36, "the group limit binds: {worst}");
    // Another group is another budget.
    let c = reg.throttle_for("test", &ApiKey::new("group-key-c"), "pc-c", policy("other"));
    assert!(!Arc::ptr_eq(&c.groups()[0], &g));
}

#[tokio::test(start_paused = true)]
async fn priorities_hold_across_the_keys_of_a_group() {
    let reg = ThrottleRegistry::default();
    let policy = Policy::new(
        vec![LimitSpec::key(100, SEC), LimitSpec::group(1, SEC)],
        Some("acme".into()),
    );
    let a = reg.throttle_for("test", &ApiKey::new("prio-group-a"), "pc-a", policy.clone());
    let b = reg.throttle_for("test", &ApiKey::new("prio-group-b"), "pc-b", policy);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..3 {
        let (a2, order) = (a.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            a2.acquire(Priority::Routine).await;
            order.lock().push(format!("a-routine{i}"));
        }));
        until_waiting(&a, i + 1).await;
    }
    // Let a's head register with the group, then a write arrives on the other key.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (b2, order2) = (b.clone(), order.clone());
    tasks.push(tokio::spawn(async move {
        b2.acquire(Priority::Write).await;
        order2.lock().push("b-write".to_string());
    }));
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        *order.lock(),
        ["b-write", "a-routine0", "a-routine1", "a-routine2"]
    );
}

#[tokio::test(start_paused = true)]
async fn one_namespace_applying_many_objects_does_not_hold_up_anothers_single_change() {
    let t = KeyThrottle::new("test", "fair", 2.0);
    t.hold_for(SEC);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (t2, order) = (t.clone(), order.clone());
        tasks.push(tokio::spawn(in_flow("team-a", async move {
            t2.acquire(Priority::Write).await;
            order.lock().push(format!("a{i}"));
        })));
        until_waiting(&t, i + 1).await;
    }
    let (t2, order2) = (t.clone(), order.clone());
    let started = Instant::now();
    let b = tokio::spawn(async move {
        t2.acquire_in("team-b", Priority::Write).await;
        order2.lock().push("b".to_string());
        started.elapsed()
    });
    until_waiting(&t, 51).await;
    let b_waited = b.await.unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let order = order.lock().clone();
    assert_eq!(&order[..3], ["a0", "b", "a1"]);
    // Served within the hold and two pacing periods, not behind 50 of team-a's.
    assert!(b_waited <= SEC + pacing_period(2.0) * 2, "{b_waited:?}");
    assert_eq!(current_flow().as_ref(), "");
}
