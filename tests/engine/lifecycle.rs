//! After the create: adoption through `stratus.dev/external-name`, disappearance, update (plan →
//! act), observe-only management, natural-key recovery, and input refused before any call.

use std::time::Duration;

use kube::ResourceExt;
use serde_json::json;
use stratus::engine::reconciler::Settings;

use crate::fake::{
    Call, Fault, Method, Point, Resize, Thing, api_error, crash_once, timeout, unavailable,
};
use crate::harness::*;

const HOUR: Duration = Duration::from_secs(3600);

/// A widget made in the console is adopted by naming it, never created, and corrected to the
/// spec (full management).
#[tokio::test]
async fn an_external_name_adopts_the_existing_widget_creates_nothing_and_corrects_it() {
    let env = Env::start("eng-adopt").await;
    env.cloud
        .insert(Thing::made_elsewhere("w-console", "w", 4, HOUR));
    env.create(
        "w",
        json!({"forProvider": {"size": 2}}),
        json!({ EXTERNAL_NAME: "w-console" }),
    )
    .await;
    let done = env.until("w", 4, "settled", settled).await;
    assert_eq!(env.cloud.count(Method::Create), 0);
    assert_eq!(env.cloud.count(Method::FindCreated), 0);
    assert_eq!(env.cloud.things().len(), 1);
    assert_eq!(env.cloud.thing("w-console").unwrap().size, 2, "corrected");
    assert_eq!(
        env.cloud
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Act { .. }))
            .collect::<Vec<_>>(),
        vec![&Call::Act {
            id: "w-console".into(),
            action: Resize(2)
        }]
    );
    assert_eq!(ann(&done, EXTERNAL_NAME), Some("w-console"));
    assert_eq!(ann(&done, CREATE_DIGEST), Some(""), "recorded");
    assert_eq!(ann(&done, CREATE_PENDING), None);
    assert_eq!(reported_id(&done), Some("w-console"));
    assert_eq!(
        created_through(&done),
        None,
        "adopted, not created by this operator"
    );
    expect(&done, "Ready", "True", "Available");
    env.stop().await;
}

#[tokio::test]
async fn an_external_name_the_cloud_does_not_know_stalls_and_creates_nothing() {
    let env = Env::start("eng-typo").await;
    env.create("w", json!({}), json!({ EXTERNAL_NAME: "w-typo" }))
        .await;
    for _ in 0..2 {
        let w = env.step("w").await;
        expect(&w, "Stalled", "True", "ExternalNameNotFound");
        expect(&w, "Ready", "False", "Unavailable");
        assert!(cond(&w, "Stalled").message.contains("w-typo"));
    }
    assert!(
        env.cloud.calls().contains(&Call::Observe {
            id: "w-typo".into(),
            direct: true
        }),
        "an absence is confirmed with a direct read: {:?}",
        env.cloud.calls()
    );
    assert_eq!(env.cloud.count(Method::Create), 0);
    assert!(env.cloud.things().is_empty());
    env.stop().await;
}

/// What this object created and the cloud then lost is created again, with a new attempt (a new
/// Idempotency-Key, so the cloud does not answer with the widget that is gone).
#[tokio::test]
async fn a_created_widget_that_disappears_is_created_again_with_a_new_attempt() {
    let env = Env::start("eng-gone").await;
    let w = env.create("w", json!({}), json!({})).await;
    let first = env.until("w", 3, "settled", settled).await;
    let old = ann(&first, EXTERNAL_NAME).unwrap().to_string();
    env.cloud.remove(&old).unwrap();

    let noticed = env.step("w").await;
    assert_eq!(ann(&noticed, EXTERNAL_NAME), None);
    assert_eq!(ann(&noticed, CREATE_DIGEST), None);
    assert_eq!(ann(&noticed, CREATE_ATTEMPT), Some("1"));
    assert!(env.cloud.calls().contains(&Call::Observe {
        id: old.clone(),
        direct: true
    }));

    let done = env.until("w", 4, "settled", settled).await;
    let new = ann(&done, EXTERNAL_NAME).unwrap();
    assert_ne!(new, old);
    assert_eq!(reported_id(&done), Some(new));
    let keys: Vec<_> = env.cloud.creates().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![Env::key(&w, 0), Env::key(&w, 1)]);
    assert_eq!(env.cloud.things().len(), 1);
    env.stop().await;
}

/// An adopted widget that disappears was named by a user: creating would make something nobody
/// asked for.
#[tokio::test]
async fn an_adopted_widget_that_disappears_is_not_created_again() {
    let env = Env::start("eng-gone-adopted").await;
    env.cloud
        .insert(Thing::made_elsewhere("w-console", "w", 1, HOUR));
    env.create("w", json!({}), json!({ EXTERNAL_NAME: "w-console" }))
        .await;
    env.until("w", 3, "settled", settled).await;
    env.cloud.remove("w-console").unwrap();
    let w = env.step("w").await;
    expect(&w, "Stalled", "True", "ExternalNameNotFound");
    assert_eq!(ann(&w, EXTERNAL_NAME), Some("w-console"));
    env.step("w").await;
    assert_eq!(env.cloud.count(Method::Create), 0);
    assert!(env.cloud.things().is_empty());
    env.stop().await;
}

/// A change of the spec is planned and applied; a failed action is reported and retried.
#[tokio::test]
async fn a_spec_change_is_planned_and_applied_as_an_update() {
    let env = Env::start("eng-update").await;
    env.create("w", json!({}), json!({})).await;
    let w = env.until("w", 3, "settled", settled).await;
    let id = ann(&w, EXTERNAL_NAME).unwrap().to_string();
    env.patch_spec("w", json!({"forProvider": {"size": 3}}))
        .await;
    env.cloud.fail(Method::Act, Fault::Refuse(unavailable()));

    let failed = env.step("w").await;
    expect(&failed, "Synced", "False", "ReconcileError");
    expect(&failed, "Reconciling", "True", "CloudUnavailable");
    expect(&failed, "Ready", "True", "Available");
    assert_eq!(env.cloud.thing(&id).unwrap().size, 1);

    let applied = env.step("w").await;
    expect(&applied, "Reconciling", "True", "Progressing");
    expect(&applied, "Synced", "True", "ReconcileSuccess");
    assert_eq!(env.cloud.thing(&id).unwrap().size, 3);
    assert_eq!(
        applied
            .status
            .as_ref()
            .unwrap()
            .at_provider
            .as_ref()
            .unwrap()
            .size,
        3
    );

    let done = env.step("w").await;
    assert!(settled(&done));
    assert_eq!(
        done.status.as_ref().unwrap().managed.observed_generation,
        done.metadata.generation
    );
    assert_eq!(env.cloud.count(Method::Act), 2);
    assert_eq!(env.cloud.count(Method::Create), 1);
    env.stop().await;
}

/// A change the throttle holds back (its class's budget is spent) was never sent: reported
/// as rate limited, requeued at the budget's time without holding the worker, and applied
/// then.
#[tokio::test]
async fn a_change_the_throttle_defers_is_reported_rate_limited_and_applied_later() {
    let env = Env::start("eng-act-deferred").await;
    env.create("w", json!({}), json!({})).await;
    let w = env.until("w", 3, "settled", settled).await;
    let id = ann(&w, EXTERNAL_NAME).unwrap().to_string();
    env.patch_spec("w", json!({"forProvider": {"size": 3}}))
        .await;
    env.cloud.fail(
        Method::Act,
        Fault::Refuse(stratus::cloud::CloudError::Deferred {
            operation: "widgets.resize".into(),
            retry_in: Duration::from_secs(40),
        }),
    );
    let action = env.reconcile("w").await.expect("a deferral is no error");
    let after = requeue_after(&action).expect("requeued");
    assert!(after >= Duration::from_secs(35), "{after:?}");
    let held = env.get("w").await;
    expect(&held, "Synced", "False", "ReconcileError");
    expect(&held, "Reconciling", "True", "RateLimited");
    assert_eq!(env.cloud.thing(&id).unwrap().size, 1);
    env.until("w", 3, "applied", settled).await;
    assert_eq!(env.cloud.thing(&id).unwrap().size, 3);
    env.stop().await;
}

/// A change the cloud keeps refusing (a build that fails to start) is retried with a growing
/// delay, though every reconcile observes the resource successfully; reaching the spec ends
/// the backoff.
#[tokio::test]
async fn a_change_the_cloud_keeps_refusing_backs_off_more_each_time_until_it_is_made() {
    let env = Env::start("eng-refused-backoff").await;
    env.create("w", json!({}), json!({})).await;
    env.until("w", 3, "settled", settled).await;
    env.patch_spec("w", json!({"forProvider": {"size": 3}}))
        .await;
    for _ in 0..3 {
        env.cloud
            .fail(Method::Act, Fault::Refuse(api_error(422, "BUILD_FAILED")));
    }
    let mut delays = Vec::new();
    for _ in 0..3 {
        let action = env.reconcile("w").await.expect("reported in the status");
        delays.push(requeue_after(&action).expect("retried"));
        expect(&env.get("w").await, "Stalled", "True", "BuildFailed");
    }
    let initial = Settings::default().stalled_initial;
    for (i, d) in delays.iter().enumerate() {
        // stalled_initial doubled each time; jitter only adds.
        assert!(*d >= initial * (1 << i), "{delays:?}");
    }
    env.until("w", 3, "settled", settled).await;

    // Made: the next refusal starts from the first delay again.
    env.patch_spec("w", json!({"forProvider": {"size": 4}}))
        .await;
    env.cloud
        .fail(Method::Act, Fault::Refuse(api_error(422, "BUILD_FAILED")));
    let action = env.reconcile("w").await.expect("reported in the status");
    let d = requeue_after(&action).expect("retried");
    assert!(d < initial * 2 + Duration::from_millis(1), "{d:?}");
    env.stop().await;
}

#[tokio::test]
async fn a_change_the_cloud_cannot_make_stalls_without_a_call() {
    let env = Env::start("eng-impossible").await;
    env.create("w", json!({}), json!({})).await;
    env.until("w", 3, "settled", settled).await;
    env.patch_spec("w", json!({"forProvider": {"name": "renamed"}}))
        .await;
    let w = env.step("w").await;
    expect(&w, "Stalled", "True", "NameImmutable");
    expect(&w, "Synced", "False", "ReconcileError");
    expect(&w, "Ready", "True", "Available");
    assert_eq!(env.cloud.count(Method::Act), 0);
    assert_eq!(env.cloud.count(Method::Create), 1);
    env.stop().await;
}

/// Observe-only: never creates (without an external name there is nothing to observe), reports
/// drift instead of correcting it, and reports a disappearance instead of re-creating.
#[tokio::test]
async fn observe_only_reports_and_never_creates_or_updates() {
    let env = Env::start("eng-observe").await;
    let observe = json!({"managementPolicies": ["Observe"]});

    env.create("nothing", observe.clone(), json!({})).await;
    let w = env.step("nothing").await;
    expect(&w, "Ready", "False", "Unavailable");
    expect(&w, "Synced", "True", "ReconcileSuccess");
    assert!(cond(&w, "Ready").message.contains("managementPolicies"));
    assert_eq!(ann(&w, CREATE_PENDING), None, "no create was started");

    env.cloud
        .insert(Thing::made_elsewhere("w-console", "drifted", 4, HOUR));
    let mut spec = observe.clone();
    spec["forProvider"] = json!({"size": 2});
    env.create("drifted", spec, json!({ EXTERNAL_NAME: "w-console" }))
        .await;
    env.step("drifted").await;
    let w = env.step("drifted").await;
    expect(&w, "Ready", "True", "Available");
    expect(&w, "Synced", "False", "ReconcileError");
    expect(&w, "Reconciling", "False", "ReconcileComplete");
    expect(&w, "Stalled", "False", "NotStalled");
    assert!(
        cond(&w, "Synced")
            .message
            .contains("managementPolicies do not allow Update")
    );
    assert_eq!(
        env.cloud.thing("w-console").unwrap().size,
        4,
        "left as it is"
    );

    // Created under full management, then switched to observe-only, then lost by the cloud.
    env.create("created", json!({}), json!({})).await;
    let w = env.until("created", 3, "settled", settled).await;
    let id = ann(&w, EXTERNAL_NAME).unwrap().to_string();
    env.patch_spec("created", observe.clone()).await;
    env.cloud.remove(&id).unwrap();
    let w = env.step("created").await;
    expect(&w, "Ready", "False", "Unavailable");
    assert!(cond(&w, "Ready").message.contains("does not exist"));
    assert_eq!(ann(&w, EXTERNAL_NAME), Some(id.as_str()));

    assert_eq!(env.cloud.count(Method::Act), 0);
    assert_eq!(
        env.cloud.count(Method::Create),
        1,
        "only the full-managed one"
    );
    env.stop().await;
}

/// A resource found by natural key after an ambiguous create is ours only if the cloud made it
/// after the create started: an older one is reported, never adopted, and not deleted with the
/// object; a newer one is adopted.
#[tokio::test]
async fn a_natural_key_match_is_adopted_only_if_made_after_the_create_started() {
    let settle = Duration::from_secs(2);
    let env = Env::start_with(
        "eng-natural",
        Settings {
            create_settle: settle,
            ..Settings::default()
        },
    )
    .await;
    env.cloud.match_by_natural_key(true);
    env.cloud
        .insert(Thing::made_elsewhere("w-old", "old", 1, HOUR));
    env.cloud.fail(Method::Create, Fault::Refuse(timeout()));
    env.create("old", json!({}), json!({})).await;
    env.step("old").await;
    let w = env.step("old").await;
    expect(&w, "Stalled", "True", "Conflict");
    assert!(cond(&w, "Stalled").message.contains("w-old"));
    assert_eq!(ann(&w, EXTERNAL_NAME), None, "not adopted");
    assert!(
        ann(&w, CREATE_PENDING).is_some(),
        "still looking for our own"
    );
    assert_eq!(env.cloud.count(Method::Create), 1, "not sent again");

    env.delete("old").await;
    tokio::time::sleep(settle + Duration::from_millis(500)).await;
    env.until_gone("old", 3).await;
    assert!(
        env.cloud.thing("w-old").is_some(),
        "the console's widget survives"
    );
    assert_eq!(env.cloud.count(Method::Delete), 0);

    env.cloud.fail(Method::Create, Fault::LoseAnswer(timeout()));
    env.create("new", json!({}), json!({})).await;
    let w = env.until("new", 4, "settled", settled).await;
    let made: Vec<_> = env
        .cloud
        .things()
        .into_iter()
        .filter(|t| t.name == "new")
        .collect();
    assert_eq!(made.len(), 1);
    assert_eq!(ann(&w, EXTERNAL_NAME), Some(made[0].id.as_str()));
    env.stop().await;
}

/// Wrong input is the object's own Stalled condition, reported before any cloud call.
#[tokio::test]
async fn invalid_input_stalls_before_any_cloud_call() {
    let env = Env::start("eng-invalid").await;
    let cases = [
        (
            "size",
            json!({"forProvider": {"size": 0}}),
            json!({}),
            "InvalidSpec",
        ),
        (
            "poll",
            json!({}),
            json!({"stratus.dev/poll-interval": "forever"}),
            "InvalidSpec",
        ),
        (
            "attempt",
            json!({}),
            json!({ CREATE_ATTEMPT: "-1" }),
            "InvalidSpec",
        ),
        (
            "config",
            json!({"providerConfigRef": {"name": "no-such-config"}}),
            json!({}),
            "ProviderConfigNotFound",
        ),
    ];
    for (name, spec, annotations, reason) in cases {
        env.create(name, spec, annotations).await;
        let w = env.step(name).await;
        expect(&w, "Stalled", "True", reason);
        expect(&w, "Ready", "False", "Unavailable");
        assert!(has_finalizer(&w), "{name}: deletion is still served");
        assert_eq!(ann(&w, CREATE_PENDING), None, "{name}");
    }
    assert!(env.cloud.calls().is_empty(), "{:?}", env.cloud.calls());
    assert_eq!(
        env.cloud.connects(),
        0,
        "the ProviderConfig was not even resolved"
    );
    // Deletion of an object that never created anything needs no cloud either.
    env.delete("size").await;
    env.until_gone("size", 2).await;
    assert!(env.cloud.calls().is_empty());
    env.stop().await;
}

/// A crash after the create's id was recorded but before the status was written keeps the
/// account the resource was created through (it is written with the id, in
/// `stratus.dev/created-through`), so a later disappearance creates it again instead of being
/// treated like that of an adopted resource (Stalled ExternalNameNotFound).
#[tokio::test]
async fn a_crash_between_recording_the_id_and_the_status_keeps_the_account_it_was_created_through()
{
    let env = Env::start("eng-gap").await;
    let w = env.create("w", json!({}), json!({})).await;
    crash_once(&w.uid().unwrap(), Point::StatusBody);
    assert!(env.reconcile("w").await.is_err());
    let done = env.until("w", 3, "settled", settled).await;
    assert!(created_through(&done).is_some(), "{:?}", done.status);
    let id = ann(&done, EXTERNAL_NAME).unwrap().to_string();
    env.cloud.remove(&id);
    let noticed = env.step("w").await;
    assert_eq!(ann(&noticed, CREATE_ATTEMPT), Some("1"), "created again");
    env.stop().await;
}
