//! Deletion (deletionPolicy Delete and Orphan, observe-only), deletion of an object whose create
//! is unresolved, and pause (which holds deletion too).

use std::time::Duration;

use serde_json::json;
use stratus::engine::reconciler::Settings;

use crate::fake::{Call, Fault, Method, Thing, timeout, unavailable};
use crate::harness::*;

/// The finalizer stays until the cloud confirms the widget is gone; a failed delete is
/// reported and retried.
#[tokio::test]
async fn deletion_with_policy_delete_deletes_the_widget_before_the_finalizer_goes() {
    let env = Env::start("eng-delete").await;
    env.create("w", json!({}), json!({})).await;
    let w = env.until("w", 3, "settled", settled).await;
    let id = ann(&w, EXTERNAL_NAME).unwrap().to_string();
    env.cloud.fail(Method::Delete, Fault::Refuse(unavailable()));
    env.delete("w").await;

    let failed = env.step("w").await;
    assert!(has_finalizer(&failed));
    expect(&failed, "Ready", "False", "Deleting");
    expect(&failed, "Reconciling", "True", "CloudUnavailable");
    assert!(env.cloud.thing(&id).is_some());

    let deleting = env.step("w").await;
    assert!(has_finalizer(&deleting), "kept until the cloud confirms");
    expect(&deleting, "Ready", "False", "Deleting");
    assert!(env.cloud.thing(&id).is_none());

    env.until_gone("w", 2).await;
    let deletes: Vec<_> = env
        .cloud
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::Delete { .. }))
        .collect();
    assert_eq!(
        deletes,
        vec![
            Call::Delete { id: id.clone() },
            Call::Delete { id: id.clone() }
        ],
        "the failed delete and its retry"
    );
    assert!(
        env.cloud.calls().contains(&Call::Observe {
            id: id.clone(),
            direct: true
        }),
        "the absence is confirmed with a direct read"
    );
    assert!(env.cloud.things().is_empty());
    env.stop().await;
}

/// deletionPolicy Orphan, or management policies without Delete: the object goes, the widget
/// stays, and the cloud is not even asked.
#[tokio::test]
async fn deletion_with_policy_orphan_or_without_delete_management_leaves_the_widget() {
    let env = Env::start("eng-orphan").await;
    env.create("orphan", json!({"deletionPolicy": "Orphan"}), json!({}))
        .await;
    env.create(
        "no-delete",
        json!({"managementPolicies": ["Observe", "Create", "Update"]}),
        json!({}),
    )
    .await;
    env.cloud.insert(Thing::made_elsewhere(
        "w-console",
        "observed",
        1,
        Duration::from_secs(60),
    ));
    env.create(
        "observed",
        json!({"managementPolicies": ["Observe"]}),
        json!({ EXTERNAL_NAME: "w-console" }),
    )
    .await;
    let mut ids = Vec::new();
    for name in ["orphan", "no-delete", "observed"] {
        let w = env.until(name, 3, "settled", settled).await;
        ids.push(ann(&w, EXTERNAL_NAME).unwrap().to_string());
    }
    let before = env.cloud.calls().len();
    for name in ["orphan", "no-delete", "observed"] {
        env.delete(name).await;
        env.until_gone(name, 1).await;
    }
    assert_eq!(
        env.cloud.calls()[before..],
        [],
        "no call at all: nothing to delete"
    );
    for id in &ids {
        assert!(env.cloud.thing(id).is_some(), "{id} left in the cloud");
    }
    assert_eq!(env.cloud.count(Method::Delete), 0);
    env.stop().await;
}

/// The answer of the create was lost and the object is deleted before it was found: deletion
/// looks for what the create made, and deletes it at once. (The id found is not recorded, so
/// the next reconciles find nothing and the finalizer stays until the create has settled.)
#[tokio::test]
async fn deleting_an_object_whose_create_answer_was_lost_deletes_what_it_made() {
    // A settle far longer than the test: the object must not wait for it.
    let settle = Duration::from_secs(600);
    let env = Env::start_with(
        "eng-delete-lost",
        Settings {
            create_settle: settle,
            ..Settings::default()
        },
    )
    .await;
    env.cloud.fail(Method::Create, Fault::LoseAnswer(timeout()));
    env.create("w", json!({}), json!({})).await;
    let w = env.step("w").await;
    assert_eq!(ann(&w, EXTERNAL_NAME), None);
    let made = env.cloud.things();
    assert_eq!(made.len(), 1);
    env.delete("w").await;
    let deleting = env.step("w").await;
    assert!(has_finalizer(&deleting));
    assert_eq!(
        env.cloud
            .calls()
            .into_iter()
            .filter(|c| matches!(c, Call::Delete { .. }))
            .collect::<Vec<_>>(),
        vec![Call::Delete {
            id: made[0].id.clone()
        }],
        "what the lost create made is found and deleted"
    );
    assert!(env.cloud.things().is_empty());
    // What it found was recorded, so the object goes at once, not after the create settles.
    assert_eq!(ann(&deleting, EXTERNAL_NAME), Some(made[0].id.as_str()));
    assert_eq!(ann(&deleting, CREATE_PENDING), None);
    env.until_gone("w", 2).await;
    assert_eq!(env.cloud.count(Method::Delete), 1);
    assert_eq!(env.cloud.count(Method::Create), 1, "deletion never creates");
    env.stop().await;
}

/// The create's outcome is unknown and nothing is found: the finalizer stays until the create
/// has settled (it may still appear), then the object goes.
#[tokio::test]
async fn deletion_waits_while_a_pending_create_may_still_appear() {
    let settle = Duration::from_secs(3);
    let env = Env::start_with(
        "eng-delete-pending",
        Settings {
            create_settle: settle,
            ..Settings::default()
        },
    )
    .await;
    env.cloud.fail(Method::Create, Fault::Refuse(timeout()));
    env.create("w", json!({}), json!({})).await;
    let w = env.step("w").await;
    let pending: jiff::Timestamp = ann(&w, CREATE_PENDING).unwrap().parse().unwrap();
    env.delete("w").await;
    let waiting = env.step("w").await;
    assert!(has_finalizer(&waiting));
    expect(&waiting, "Reconciling", "True", "CreatePending");
    expect(&waiting, "Ready", "False", "Deleting");

    let waited = jiff::Timestamp::now().duration_since(pending);
    let rest = jiff::SignedDuration::try_from(settle).unwrap() - waited;
    tokio::time::sleep(Duration::try_from(rest).unwrap_or_default() + Duration::from_millis(500))
        .await;
    env.until_gone("w", 2).await;
    assert_eq!(env.cloud.count(Method::Create), 1, "deletion never creates");
    assert_eq!(env.cloud.count(Method::Delete), 0, "nothing to delete");
    assert!(env.cloud.count(Method::FindCreated) >= 2, "it kept looking");
    env.stop().await;
}

/// Paused means hands off: no cloud call at all, not even an observation; a spec change waits;
/// deletion waits too (letting the object go would leak the widget) until the pause is lifted.
#[tokio::test]
async fn a_paused_widget_gets_no_cloud_call_and_its_deletion_waits() {
    let env = Env::start("eng-pause").await;
    env.create("newborn", json!({}), json!({ PAUSED: "true" }))
        .await;
    let w = env.step("newborn").await;
    expect(&w, "Synced", "False", "ReconcilePaused");
    expect(&w, "Ready", "False", "Unavailable");
    assert!(has_finalizer(&w));
    assert!(env.cloud.calls().is_empty(), "nothing created while paused");

    env.create("w", json!({}), json!({})).await;
    let w = env.until("w", 3, "settled", settled).await;
    let id = ann(&w, EXTERNAL_NAME).unwrap().to_string();
    env.annotate("w", json!({ PAUSED: "true" })).await;
    env.patch_spec("w", json!({"forProvider": {"size": 9}}))
        .await;
    let before = env.cloud.calls().len();
    let w = env.step("w").await;
    expect(&w, "Synced", "False", "ReconcilePaused");
    expect(&w, "Ready", "True", "Available");
    assert_eq!(env.cloud.thing(&id).unwrap().size, 1, "the change waits");

    env.delete("w").await;
    for _ in 0..2 {
        let w = env.step("w").await;
        assert!(has_finalizer(&w), "deletion waits while paused");
        expect(&w, "Ready", "False", "Deleting");
        assert!(cond(&w, "Ready").message.contains(PAUSED));
    }
    assert_eq!(
        env.cloud.calls().len(),
        before,
        "{:?}",
        &env.cloud.calls()[before..]
    );

    env.annotate("w", json!({ PAUSED: null })).await;
    env.until_gone("w", 3).await;
    assert!(env.cloud.thing(&id).is_none(), "deleted once resumed");

    // Deleting a paused object that never made anything needs no cloud.
    let before = env.cloud.calls().len();
    env.delete("newborn").await;
    env.until_gone("newborn", 1).await;
    assert_eq!(env.cloud.calls().len(), before);
    env.stop().await;
}
