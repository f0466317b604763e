//! Create: success, an ambiguous answer (the cloud made it, or not), a rejection, a rejection
//! after an ambiguous attempt, a crash after every step, and a panic in one object's reconcile.

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use serde_json::json;
use stratus::cloud::CloudError;
use stratus::cloud::throttle::KeyThrottle;
use stratus::engine::CreateGuard;
use stratus::engine::reconciler::{Error, Settings};

use crate::fake::{
    FakeAdapter, Fault, Method, Point, Thing, WidgetRequest, api_error, crash_once, dropped,
    timeout, unavailable,
};
use crate::harness::*;
use crate::widget::Widget;

/// What the cloud holds for `w`: widgets carrying its ownership marker.
fn made_for(env: &Env, w: &Widget) -> Vec<Thing> {
    let uid = w.uid();
    env.cloud
        .things()
        .into_iter()
        .filter(|t| t.owner == uid)
        .collect()
}

/// The creates the cloud received for `w`.
fn creates_for(env: &Env, w: &Widget) -> Vec<(uuid::Uuid, WidgetRequest)> {
    let uid = w.uid().unwrap();
    env.cloud
        .creates()
        .into_iter()
        .filter(|(_, r)| r.owner == uid)
        .collect()
}

fn request(w: &Widget, size: i64) -> WidgetRequest {
    WidgetRequest {
        name: w.name_any(),
        size,
        owner: w.uid().unwrap(),
    }
}

/// Errors after which a create's outcome is unknown, and the reason Reconciling gives.
fn ambiguous() -> Vec<(&'static str, CloudError, &'static str)> {
    vec![
        ("timeout", timeout(), "CloudUnavailable"),
        ("dropped", dropped(), "CloudUnavailable"),
        ("unavailable", unavailable(), "CloudUnavailable"),
        (
            "internal",
            api_error(500, "INTERNAL_SERVER_ERROR"),
            "CloudUnavailable",
        ),
        (
            "throttled",
            api_error(429, "TOO_MANY_REQUESTS"),
            "RateLimited",
        ),
    ]
}

#[tokio::test]
async fn a_new_widget_is_created_once_recorded_and_then_only_observed() {
    let env = Env::start("eng-create").await;
    let w = env
        .create("w", json!({"forProvider": {"size": 3}}), json!({}))
        .await;
    let after = env.step("w").await;

    let things = env.cloud.things();
    assert_eq!(things.len(), 1, "{things:?}");
    let made = &things[0];
    assert_eq!((made.name.as_str(), made.size), ("w", 3));
    assert_eq!(made.owner, w.uid(), "the ownership marker names the object");
    assert_eq!(
        env.cloud.creates(),
        vec![(Env::key(&w, 0), request(&w, 3))],
        "one create, with the first attempt's key"
    );
    assert!(has_finalizer(&after));
    assert_eq!(ann(&after, EXTERNAL_NAME), Some(made.id.as_str()));
    assert_eq!(ann(&after, CREATE_PENDING), None);
    assert_eq!(ann(&after, CREATE_REQUEST), None);
    assert_eq!(ann(&after, CREATE_DIGEST), Some(""));
    assert_eq!(ann(&after, CREATE_ATTEMPT), None);
    assert_eq!(reported_id(&after), Some(made.id.as_str()));
    assert!(created_through(&after).is_some(), "{:?}", after.status);
    expect(&after, "Ready", "True", "Available");
    expect(&after, "Synced", "True", "ReconcileSuccess");
    expect(&after, "Reconciling", "True", "Progressing");
    expect(&after, "Stalled", "False", "NotStalled");

    let again = env.step("w").await;
    expect(&again, "Reconciling", "False", "ReconcileComplete");
    assert!(settled(&again));
    assert_eq!(
        again.status.as_ref().unwrap().managed.observed_generation,
        again.metadata.generation
    );
    assert_eq!(
        env.cloud.count(Method::Create),
        1,
        "{:?}",
        env.cloud.calls()
    );
    assert_eq!(env.cloud.count(Method::FindCreated), 0);
    assert_eq!(env.cloud.count(Method::Observe), 1);
    env.stop().await;
}

/// The cloud made the widget but the answer was lost: the next reconcile finds it by its
/// ownership marker and records it; it never sends the create again.
#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_not_repeated() {
    let env = Env::start("eng-lost").await;
    for (label, error, reason) in ambiguous() {
        let name = format!("lost-{label}");
        env.cloud.fail(Method::Create, Fault::LoseAnswer(error));
        let w = env.create(&name, json!({}), json!({})).await;
        let first = env.step(&name).await;
        assert_eq!(made_for(&env, &w).len(), 1, "{label}: the cloud made it");
        assert!(
            ann(&first, CREATE_PENDING).is_some(),
            "{label}: marker kept"
        );
        assert_eq!(
            ann(&first, CREATE_REQUEST),
            Some(serde_json::to_string(&request(&w, 1)).unwrap().as_str()),
            "{label}: the request sent is recorded"
        );
        assert_eq!(ann(&first, EXTERNAL_NAME), None, "{label}");
        expect(&first, "Ready", "False", "Creating");
        expect(&first, "Synced", "False", "ReconcileError");
        expect(&first, "Reconciling", "True", reason);
        expect(&first, "Stalled", "False", "NotStalled");

        let done = env.until(&name, 4, "settled", settled).await;
        let made = made_for(&env, &w);
        assert_eq!(made.len(), 1, "{label}: never a second widget: {made:?}");
        assert_eq!(creates_for(&env, &w).len(), 1, "{label}: never sent twice");
        assert_eq!(
            ann(&done, EXTERNAL_NAME),
            Some(made[0].id.as_str()),
            "{label}"
        );
        assert_eq!(ann(&done, CREATE_PENDING), None, "{label}");
        assert_eq!(ann(&done, CREATE_REQUEST), None, "{label}");
        assert_eq!(reported_id(&done), Some(made[0].id.as_str()), "{label}");
        assert!(
            created_through(&done).is_some(),
            "{label}: what the object's own create made is recorded as created through this account, not as adopted: {:?}",
            done.status
        );
    }
    env.stop().await;
}

/// The create never reached the cloud (or the cloud refused it with a retryable error): the
/// next reconcile looks for it, finds nothing, and re-sends the recorded request with the same
/// key, even though the spec changed meanwhile; the change is then applied as an update.
#[tokio::test]
async fn an_unanswered_create_is_replayed_unchanged_with_the_same_key_then_updated() {
    let env = Env::start("eng-replay").await;
    for (label, error, _) in ambiguous() {
        let name = format!("replay-{label}");
        env.cloud.fail(Method::Create, Fault::Refuse(error));
        let w = env.create(&name, json!({}), json!({})).await;
        let first = env.step(&name).await;
        assert!(made_for(&env, &w).is_empty(), "{label}");
        assert!(ann(&first, CREATE_PENDING).is_some(), "{label}");
        env.patch_spec(&name, json!({"forProvider": {"size": 5}}))
            .await;

        let done = env.until(&name, 5, "settled", settled).await;
        let key = Env::key(&w, 0);
        assert_eq!(
            creates_for(&env, &w),
            vec![(key, request(&w, 1)), (key, request(&w, 1))],
            "{label}: the replay is the recorded request with the same key"
        );
        let made = made_for(&env, &w);
        assert_eq!(made.len(), 1, "{label}: {made:?}");
        assert_eq!(made[0].size, 5, "{label}: the change was applied");
        assert!(
            env.cloud.calls().contains(&crate::fake::Call::Act {
                id: made[0].id.clone(),
                action: crate::fake::Resize(5)
            }),
            "{label}: as an update"
        );
        assert_eq!(ann(&done, EXTERNAL_NAME), Some(made[0].id.as_str()));
        assert!(created_through(&done).is_some(), "{label}");
    }
    env.stop().await;
}

/// A definitive rejection of a first attempt stalls with the API's reason, clears the pending
/// marker and moves the attempt counter, so the next try (after the user's fix) is not answered
/// with the old failure.
#[tokio::test]
async fn a_rejected_create_stalls_and_the_next_attempt_gets_a_new_key() {
    let env = Env::start("eng-reject").await;
    for (status, code, reason) in [
        (400, "VALIDATION_ERROR", "ValidationError"),
        (403, "INSUFFICIENT_BALANCE", "InsufficientBalance"),
        (409, "CONFLICT", "Conflict"),
    ] {
        let name = format!("rejected-{status}");
        env.cloud
            .fail(Method::Create, Fault::Refuse(api_error(status, code)));
        let w = env.create(&name, json!({}), json!({})).await;
        let first = env.step(&name).await;
        expect(&first, "Stalled", "True", reason);
        expect(&first, "Synced", "False", "ReconcileError");
        expect(&first, "Ready", "False", "Unavailable");
        expect(&first, "Reconciling", "False", "ReconcileComplete");
        assert_eq!(ann(&first, CREATE_PENDING), None, "{code}");
        assert_eq!(ann(&first, CREATE_REQUEST), None, "{code}");
        assert_eq!(ann(&first, CREATE_ATTEMPT), Some("1"), "{code}");
        assert_eq!(ann(&first, EXTERNAL_NAME), None, "{code}");
        assert!(made_for(&env, &w).is_empty());

        let done = env.until(&name, 3, "settled", settled).await;
        assert_eq!(
            creates_for(&env, &w),
            vec![
                (Env::key(&w, 0), request(&w, 1)),
                (Env::key(&w, 1), request(&w, 1))
            ],
            "{code}"
        );
        assert_eq!(made_for(&env, &w).len(), 1, "{code}");
        assert_eq!(ann(&done, CREATE_ATTEMPT), Some("1"), "{code}");
    }
    env.stop().await;
}

/// A rejection that follows an ambiguous attempt may be the cloud's answer to what that attempt
/// made: the engine keeps the marker and the key and keeps looking until the create has settled;
/// only then is the rejection definitive.
#[tokio::test]
async fn a_rejection_after_an_ambiguous_attempt_keeps_looking_until_the_create_settles() {
    let settle = Duration::from_secs(2);
    let env = Env::start_with(
        "eng-settle",
        Settings {
            create_settle: settle,
            ..Settings::default()
        },
    )
    .await;
    env.cloud.fail(Method::Create, Fault::Refuse(timeout()));
    for _ in 0..2 {
        env.cloud
            .fail(Method::Create, Fault::Refuse(api_error(409, "CONFLICT")));
    }
    let w = env.create("w", json!({}), json!({})).await;
    let first = env.step("w").await;
    assert!(ann(&first, CREATE_PENDING).is_some());

    let second = env.step("w").await;
    expect(&second, "Stalled", "False", "NotStalled");
    expect(&second, "Reconciling", "True", "Conflict");
    expect(&second, "Ready", "False", "Creating");
    assert_eq!(ann(&second, CREATE_PENDING), ann(&first, CREATE_PENDING));
    assert!(ann(&second, CREATE_REQUEST).is_some());
    assert_eq!(
        ann(&second, CREATE_ATTEMPT),
        None,
        "the key does not move yet"
    );
    assert!(env.cloud.count(Method::FindCreated) >= 1, "it looked");

    tokio::time::sleep(settle + Duration::from_millis(500)).await;
    let third = env.step("w").await;
    expect(&third, "Stalled", "True", "Conflict");
    assert_eq!(ann(&third, CREATE_PENDING), None);
    assert_eq!(ann(&third, CREATE_ATTEMPT), Some("1"));

    env.until("w", 3, "settled", settled).await;
    let key0 = Env::key(&w, 0);
    let keys: Vec<_> = creates_for(&env, &w).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![key0, key0, key0, Env::key(&w, 1)]);
    assert_eq!(made_for(&env, &w).len(), 1);
    env.stop().await;
}

/// A cloud without idempotency keys: after an attempt with no definite answer, the engine never
/// sends the create again while a late-applied attempt could still show up; it keeps looking,
/// and sends a new attempt only once the first has settled unfound. An attempt that was applied
/// is found and adopted, never made twice.
#[tokio::test]
async fn without_idempotency_keys_an_ambiguous_create_is_sent_again_only_after_it_settled_unfound()
{
    let settle = Duration::from_secs(2);
    let env = Env::start_with_adapter(
        "eng-findonly",
        Settings {
            create_settle: settle,
            ..Settings::default()
        },
        FakeAdapter {
            guard: CreateGuard::FindOnly,
            ..FakeAdapter::default()
        },
    )
    .await;
    // Not applied: looked for until settled, then sent once more.
    env.cloud.fail(Method::Create, Fault::Refuse(timeout()));
    let lost = env.create("lost", json!({}), json!({})).await;
    let first = env.step("lost").await;
    let stamped = ann(&first, CREATE_PENDING).expect("pending");
    for _ in 0..3 {
        let waiting = env.step("lost").await;
        expect(&waiting, "Ready", "False", "WaitingForCreateOutcome");
        assert_eq!(creates_for(&env, &lost).len(), 1, "not sent again yet");
    }
    assert!(env.cloud.count(Method::FindCreated) >= 3, "it kept looking");
    tokio::time::sleep(settle + Duration::from_millis(300)).await;
    // The new attempt is refused (a name taken: maybe by the attempt the search missed): that
    // is not definitive until it settles in turn.
    env.cloud
        .fail(Method::Create, Fault::Refuse(api_error(409, "CONFLICT")));
    let resent = env.step("lost").await;
    assert_eq!(
        creates_for(&env, &lost).len(),
        2,
        "a new attempt once settled"
    );
    assert_ne!(
        ann(&resent, CREATE_PENDING),
        Some(stamped),
        "the new attempt is stamped anew"
    );
    assert!(ann(&resent, CREATE_PENDING).is_some(), "still looking");
    assert_eq!(
        ann(&resent, CREATE_ATTEMPT),
        None,
        "not a definitive rejection"
    );
    tokio::time::sleep(settle + Duration::from_millis(300)).await;
    env.until("lost", 4, "settled", settled).await;
    assert_eq!(creates_for(&env, &lost).len(), 3);
    assert_eq!(made_for(&env, &lost).len(), 1);

    // Applied, answer lost: found by its marker and adopted, with no second create.
    env.cloud.fail(Method::Create, Fault::LoseAnswer(timeout()));
    let applied = env.create("applied", json!({}), json!({})).await;
    env.until("applied", 4, "settled", settled).await;
    assert_eq!(creates_for(&env, &applied).len(), 1);
    assert_eq!(made_for(&env, &applied).len(), 1);
    env.stop().await;
}

fn deferred() -> CloudError {
    CloudError::Deferred {
        operation: "widgets.create".into(),
        retry_in: Duration::from_secs(30),
    }
}

/// A create the throttle holds back (a deploy budget spent) was never sent: the worker is
/// given back with a requeue at the budget's time, the marker is restored to what it said
/// before, and the next attempt is sent at once, with either guard.
#[tokio::test]
async fn a_create_the_throttle_defers_is_not_sent_and_leaves_no_marker_to_wait_on() {
    for guard in [CreateGuard::IdempotencyKey, CreateGuard::FindOnly] {
        let env = Env::start_with_adapter(
            "eng-deferred",
            Settings::default(),
            FakeAdapter {
                guard,
                ..FakeAdapter::default()
            },
        )
        .await;
        env.cloud.fail(Method::Create, Fault::Refuse(deferred()));
        let w = env.create("w", json!({}), json!({})).await;
        let action = env.reconcile("w").await.expect("a deferral is no error");
        let after = requeue_after(&action).expect("requeued");
        assert!(
            after >= Duration::from_secs(25) && after <= Duration::from_secs(35),
            "{guard:?}: requeued after {after:?}"
        );
        let held = env.get("w").await;
        assert_eq!(ann(&held, CREATE_PENDING), None, "{guard:?}: marker left");
        assert_eq!(ann(&held, CREATE_REQUEST), None, "{guard:?}: request left");
        expect(&held, "Ready", "False", "RateLimited");
        assert!(made_for(&env, &w).is_empty());

        // Budget back: sent at once (no settle window to wait out), and made once.
        env.until("w", 4, "settled", settled).await;
        assert_eq!(made_for(&env, &w).len(), 1, "{guard:?}");
        env.stop().await;
    }
}

/// A create the key could not send within its patience (here: a key held for 6 s, whose
/// first create in line has just gone to wait at the key) waits for its turn before anything is
/// recorded or sent, and gives the worker back until then; once the key can send it, it is
/// created once.
#[tokio::test]
async fn a_create_the_key_cannot_send_soon_waits_for_its_turn_without_recording_an_attempt() {
    let env = Env::start("eng-turn").await;
    let throttle = KeyThrottle::new("fake", "turn", 2.0);
    env.cloud.throttle.set(throttle.clone()).ok();
    throttle.hold_for(Duration::from_secs(6));
    // The first in line goes whatever the backlog (so creates always move); the next waits.
    let first = env.create("first", json!({}), json!({})).await;
    env.until("first", 4, "settled", settled).await;
    assert_eq!(made_for(&env, &first).len(), 1);
    let w = env.create("w", json!({}), json!({})).await;
    let action = env
        .reconcile("w")
        .await
        .expect("waiting for a turn is no error");
    let after = requeue_after(&action).expect("requeued");
    // The hold and the first create beyond the 2 s patience, and one permit: about 5 s.
    assert!(
        after >= Duration::from_secs(3) && after <= Duration::from_secs(7),
        "requeued after {after:?}"
    );
    let waiting = env.get("w").await;
    assert_eq!(
        ann(&waiting, CREATE_PENDING),
        None,
        "an attempt was recorded"
    );
    assert_eq!(
        ann(&waiting, CREATE_REQUEST),
        None,
        "a request was recorded"
    );
    expect(&waiting, "Ready", "False", "WaitingForRateLimit");
    assert!(creates_for(&env, &w).is_empty());

    tokio::time::sleep(after).await;
    env.until("w", 4, "settled", settled).await;
    assert_eq!(made_for(&env, &w).len(), 1);
    assert_eq!(creates_for(&env, &w).len(), 1);
    env.stop().await;
}

/// An attempt whose outcome is unknown is replayed without waiting for a turn: the key's
/// backlog never keeps a pending create from being resolved.
#[tokio::test]
async fn a_pending_create_is_replayed_with_its_key_even_when_the_key_is_busy() {
    let env = Env::start("eng-turn-pending").await;
    env.cloud.fail(Method::Create, Fault::Refuse(timeout()));
    let w = env.create("w", json!({}), json!({})).await;
    let _ = env.reconcile("w").await;
    let pending = env.get("w").await;
    assert!(
        ann(&pending, CREATE_PENDING).is_some(),
        "no attempt pending"
    );
    // Now the key is held far beyond the patience, and a create has just gone first.
    let throttle = KeyThrottle::new("fake", "turn-pending", 2.0);
    env.cloud.throttle.set(throttle.clone()).ok();
    throttle.hold_for(Duration::from_secs(30));
    assert!(throttle.admit_create("someone-else").is_ok());
    env.until("w", 4, "settled", settled).await;
    let sent = creates_for(&env, &w);
    assert_eq!(sent.len(), 2, "the replay was not sent");
    assert_eq!(sent[0].0, sent[1].0, "the replay used another key");
    assert_eq!(made_for(&env, &w).len(), 1);
    env.stop().await;
}

/// Where a crash stops a create.
#[derive(Debug, Clone, Copy)]
enum CrashAt {
    /// After the finalizer was added: nothing recorded, nothing sent.
    AfterFinalizer,
    /// After the request was recorded, before it was sent.
    BeforeSend,
    /// After the cloud made it, before the answer was read.
    InFlight,
    /// After the id was recorded, before the status was written.
    BeforeStatus,
}

/// A crash after any step of a create (the reconcile stops there; only what it wrote remains)
/// followed by reconciles of the object as the crash left it: exactly one widget, one create
/// received, always with the first attempt's key, and the id recorded.
#[tokio::test]
async fn a_crash_after_any_step_of_a_create_leaves_exactly_one_widget() {
    let env = Env::start("eng-crash").await;
    for at in [
        CrashAt::AfterFinalizer,
        CrashAt::BeforeSend,
        CrashAt::InFlight,
        CrashAt::BeforeStatus,
    ] {
        let name = format!("{at:?}").to_lowercase();
        let w = env.create(&name, json!({}), json!({})).await;
        let uid = w.uid().unwrap();
        match at {
            CrashAt::AfterFinalizer => crash_once(&uid, Point::Desired),
            CrashAt::BeforeSend => env.cloud.fail(Method::Create, Fault::PanicBefore),
            CrashAt::InFlight => env.cloud.fail(Method::Create, Fault::PanicAfter),
            CrashAt::BeforeStatus => crash_once(&uid, Point::StatusBody),
        }
        let crashed = env.reconcile(&name).await;
        assert!(
            matches!(crashed, Err(Error::Panicked(_))),
            "{at:?}: {crashed:?}"
        );
        let left = env.get(&name).await;
        assert!(has_finalizer(&left), "{at:?}");
        let (pending, sent, recorded) = match at {
            CrashAt::AfterFinalizer => (false, 0, false),
            CrashAt::BeforeSend => (true, 0, false),
            CrashAt::InFlight => (true, 1, false),
            CrashAt::BeforeStatus => (false, 1, true),
        };
        assert_eq!(ann(&left, CREATE_PENDING).is_some(), pending, "{at:?}");
        assert_eq!(ann(&left, CREATE_REQUEST).is_some(), pending, "{at:?}");
        assert_eq!(creates_for(&env, &w).len(), sent, "{at:?}");
        assert_eq!(ann(&left, EXTERNAL_NAME).is_some(), recorded, "{at:?}");
        assert!(left.status.is_none(), "{at:?}: no status written yet");

        let done = env.until(&name, 4, "settled", settled).await;
        let made = made_for(&env, &w);
        assert_eq!(made.len(), 1, "{at:?}: {made:?}");
        let creates = creates_for(&env, &w);
        assert_eq!(creates.len(), 1, "{at:?}: {creates:?}");
        assert_eq!(creates[0].0, Env::key(&w, 0), "{at:?}");
        assert_eq!(
            ann(&done, EXTERNAL_NAME),
            Some(made[0].id.as_str()),
            "{at:?}"
        );
        assert_eq!(reported_id(&done), Some(made[0].id.as_str()), "{at:?}");
        assert_eq!(ann(&done, CREATE_PENDING), None, "{at:?}");
        if !matches!(at, CrashAt::BeforeStatus) {
            // BeforeStatus loses it: see the ignored test below.
            assert!(
                created_through(&done).is_some(),
                "{at:?}: {:?}",
                done.status
            );
        }
    }
    env.stop().await;
}

/// A panic inside the adapter during one object's reconcile is that reconcile's error
/// (`Error::Panicked`), and the controller goes on: another object reconciles normally, and the
/// one that panicked recovers on its next reconcile.
#[tokio::test]
async fn a_panic_in_the_adapter_becomes_an_error_and_the_next_object_still_reconciles() {
    let env = Env::start("eng-panic").await;
    let a = env.create("a", json!({}), json!({})).await;
    let b = env.create("b", json!({}), json!({})).await;
    env.cloud.fail(Method::Create, Fault::PanicBefore);
    match env.reconcile("a").await {
        Err(Error::Panicked(what)) => {
            assert!(what.contains("crashed before sending Create"), "{what}")
        }
        other => panic!("expected Error::Panicked, got {other:?}"),
    }
    assert!(env.cloud.things().is_empty());

    env.until("b", 3, "settled", settled).await;
    assert_eq!(made_for(&env, &b).len(), 1);

    // A panic in a status write (outside any cloud call) is caught the same way.
    crash_once(&b.uid().unwrap(), Point::StatusBody);
    env.patch_spec("b", json!({"forProvider": {"size": 2}}))
        .await;
    assert!(matches!(env.reconcile("b").await, Err(Error::Panicked(_))));

    let a_done = env.until("a", 3, "settled", settled).await;
    assert_eq!(made_for(&env, &a).len(), 1);
    assert_eq!(creates_for(&env, &a).len(), 1);
    assert!(ann(&a_done, EXTERNAL_NAME).is_some());
    env.until("b", 3, "settled", settled).await;
    assert_eq!(made_for(&env, &b)[0].size, 2);
    env.stop().await;
}

#[tokio::test]
async fn a_create_answered_after_its_object_was_deleted_and_created_again_is_not_recorded_on_the_new_one()
 {
    let env = Env::start("eng-create-recreated").await;
    let spec = json!({"writeConnectionSecretToRef": {"name": "w-conn"}});
    let old = env.create("w", spec.clone(), json!({})).await;
    // Between the create's answer (written to the Secret) and the record of its id, the object
    // is deleted (its finalizer removed by hand) and another is created under its name.
    let client = env.ns.client.clone();
    let ns = env.ns.name.clone();
    let replacement = serde_json::to_value(&old).unwrap();
    env.kube_faults.add(
        http::Method::PATCH,
        "/secrets/w-conn",
        "\"/data",
        1,
        KubeFault::Then(Arc::new(move || {
            let widgets: kube::Api<Widget> = kube::Api::namespaced(client.clone(), &ns);
            let mut fresh = replacement.clone();
            Box::pin(async move {
                widgets
                    .patch(
                        "w",
                        &kube::api::PatchParams::default(),
                        &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
                    )
                    .await
                    .expect("removing the finalizer");
                widgets
                    .delete("w", &Default::default())
                    .await
                    .expect("deleting the Widget");
                let gone = crate::common::wait_for(Duration::from_secs(10), || {
                    let widgets = widgets.clone();
                    async move { widgets.get_opt("w").await.expect("reading").is_none() }
                })
                .await;
                assert!(gone, "the Widget was not deleted");
                let meta = fresh["metadata"].as_object_mut().unwrap();
                for k in [
                    "uid",
                    "resourceVersion",
                    "creationTimestamp",
                    "managedFields",
                    "finalizers",
                ] {
                    meta.remove(k);
                }
                let obj: Widget = serde_json::from_value(fresh).unwrap();
                widgets
                    .create(&Default::default(), &obj)
                    .await
                    .expect("creating the new Widget");
            })
        })),
    );

    let result = env.reconcile("w").await;
    assert!(matches!(result, Err(Error::Stale)), "{result:?}");
    assert_eq!(env.kube_faults.hits(), 1);
    assert_eq!(env.cloud.count(Method::Create), 1);
    let new = env.get("w").await;
    assert_ne!(new.uid(), old.uid(), "another object");
    for key in [EXTERNAL_NAME, CREATE_DIGEST, "stratus.dev/connection"] {
        assert_eq!(ann(&new, key), None, "{key} landed on the new object");
    }
    env.stop().await;
}
