//! Observation: two objects naming one widget, the cloud's own transitions (transitional,
//! deleting outside of Kubernetes), a read deferred by the throttle, and a stale copy.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use serde_json::json;
use stratus::cloud::CloudError;
use stratus::engine::reconciler::{self, Error, Settings};

use crate::fake::{Fault, Method, State};
use crate::harness::*;

/// A second object naming a widget another object manages is refused (AlreadyManaged), records
/// nothing, and deleting it leaves the other object's widget alone.
#[tokio::test]
async fn a_second_object_naming_a_managed_widget_is_already_managed_and_its_deletion_leaves_it() {
    let env = Env::start("eng-claimed").await;
    env.create("first", json!({}), json!({})).await;
    let first = env.until("first", 3, "settled", settled).await;
    let id = ann(&first, EXTERNAL_NAME).unwrap().to_string();
    env.create(
        "second",
        json!({"forProvider": {"name": "first"}}),
        json!({ EXTERNAL_NAME: id }),
    )
    .await;
    env.publish("first").await;
    env.publish("second").await;

    let second = env.step("second").await;
    expect(&second, "Stalled", "True", "AlreadyManaged");
    assert!(
        cond(&second, "Stalled").message.contains("first"),
        "names the other object: {:?}",
        cond(&second, "Stalled")
    );
    assert_eq!(ann(&second, CREATE_DIGEST), None, "nothing recorded");
    assert_eq!(reported_id(&second), None);

    env.delete("second").await;
    env.until_gone("second", 1).await;
    assert_eq!(env.cloud.count(Method::Delete), 0);
    assert!(env.cloud.thing(&id).is_some());
    let first = env.step("first").await;
    assert!(settled(&first));
    assert_eq!(env.cloud.count(Method::Create), 1);
    env.stop().await;
}

/// While the cloud is moving a widget on by itself, the engine reports it, polls at the
/// transitional pace and does not act; once settled, the pending change is applied. A widget
/// the cloud is deleting on its own is reported, neither re-created nor deleted.
#[tokio::test]
async fn the_clouds_own_transitions_are_reported_and_waited_for() {
    let env = Env::start("eng-transition").await;
    env.create("w", json!({}), json!({})).await;
    let w = env.until("w", 3, "settled", settled).await;
    let id = ann(&w, EXTERNAL_NAME).unwrap().to_string();

    env.cloud.set_state(&id, State::Creating);
    env.patch_spec("w", json!({"forProvider": {"size": 4}}))
        .await;
    let action = env.reconcile("w").await.unwrap();
    assert_eq!(
        action,
        Action::requeue(Settings::default().transitional_poll)
    );
    let w = env.get("w").await;
    expect(&w, "Ready", "False", "Creating");
    expect(&w, "Reconciling", "True", "Progressing");
    expect(&w, "Synced", "True", "ReconcileSuccess");
    assert_eq!(
        env.cloud.count(Method::Act),
        0,
        "no action during a transition"
    );

    env.cloud.set_state(&id, State::Ready);
    env.until("w", 3, "settled", settled).await;
    assert_eq!(env.cloud.thing(&id).unwrap().size, 4);
    assert_eq!(env.cloud.count(Method::Act), 1);

    env.cloud.set_state(&id, State::Deleting);
    let w = env.step("w").await;
    expect(&w, "Ready", "False", "Unavailable");
    expect(&w, "Reconciling", "True", "Progressing");
    assert!(cond(&w, "Ready").message.contains("outside of Kubernetes"));
    assert_eq!(env.cloud.count(Method::Delete), 0);
    assert_eq!(env.cloud.count(Method::Create), 1);
    env.stop().await;
}

/// A routine read the throttle deferred is not a failure: nothing is written (not even the
/// status) and the reconcile asks to be run again.
#[tokio::test]
async fn a_deferred_read_writes_nothing_and_comes_back_later() {
    let env = Env::start("eng-deferred").await;
    env.create("w", json!({}), json!({})).await;
    let before = env.until("w", 3, "settled", settled).await;
    env.cloud.fail(
        Method::Observe,
        Fault::Refuse(CloudError::Deferred {
            operation: "widgets.list".into(),
            retry_in: Duration::from_secs(2),
        }),
    );
    let action = env.reconcile("w").await.unwrap();
    assert_ne!(action, Action::await_change(), "it comes back");
    let after = env.get("w").await;
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "nothing written"
    );
    assert_eq!(env.cloud.count(Method::Observe), 2);
    env.stop().await;
}

/// A copy older than the engine's own last write (a cache behind its writes) creates nothing
/// and erases nothing: every write carries the version read, and a stale one is refused.
#[tokio::test]
async fn a_reconcile_of_a_stale_copy_creates_nothing_and_erases_nothing() {
    let env = Env::start("eng-stale").await;
    let first = env.create("w", json!({}), json!({})).await;
    let recorded = env.until("w", 3, "settled", settled).await;
    assert!(created_through(&recorded).is_some());

    // From before the create: the finalizer, but no pending marker and no id.
    let mut before = first.clone();
    before.metadata.finalizers = recorded.metadata.finalizers.clone();
    let stale = reconciler::reconcile(Arc::new(before), env.ctx.clone()).await;
    assert!(matches!(stale, Err(Error::Stale)), "{stale:?}");
    // From between recording the id and writing the status.
    let mut between = recorded.clone();
    between.status = None;
    between.metadata.resource_version = first.metadata.resource_version.clone();
    let stale = reconciler::reconcile(Arc::new(between), env.ctx.clone()).await;
    assert!(matches!(stale, Err(Error::Stale)), "{stale:?}");

    assert_eq!(env.cloud.count(Method::Create), 1, "no second create");
    let now = env.get("w").await;
    assert!(created_through(&now).is_some(), "status survives");
    assert_eq!(ann(&now, EXTERNAL_NAME), ann(&recorded, EXTERNAL_NAME));
    env.stop().await;
}

/// The object that created a widget deletes it with itself even when another object names the
/// same id by mistake (a typo in its external-name, with an earlier create recorded): the
/// mistaken object is refused, and it must not make the creator orphan its widget.
#[tokio::test]
async fn a_creator_deletes_its_widget_even_while_another_object_names_it_by_mistake() {
    let env = Env::start("eng-typo-claim").await;
    env.create("first", json!({}), json!({})).await;
    let first = env.until("first", 3, "settled", settled).await;
    let id = ann(&first, EXTERNAL_NAME).unwrap().to_string();
    // The second managed something before (its create-digest is there), then its external-name
    // was changed to the first's id by a typo.
    env.create(
        "second",
        json!({"forProvider": {"name": "first"}}),
        json!({ EXTERNAL_NAME: id, CREATE_DIGEST: "" }),
    )
    .await;
    env.publish("first").await;
    env.publish("second").await;

    env.delete("first").await;
    env.publish("first").await;
    env.until_gone("first", 3).await;
    assert_eq!(
        env.cloud.count(Method::Delete),
        1,
        "the creator deleted its widget instead of leaving it to the object that names it by mistake"
    );
    assert!(env.cloud.thing(&id).is_none());
    env.stop().await;
}

/// An object copied with its annotations (exported and applied under another name, or
/// restored) looks like one whose id this operator recorded, but its status reports nothing:
/// it is refused as AlreadyManaged, and deleting the copy leaves the original's widget alone.
#[tokio::test]
async fn a_copy_of_an_object_with_its_annotations_does_not_manage_the_same_widget() {
    let env = Env::start("eng-copy").await;
    env.create("first", json!({}), json!({})).await;
    let first = env.until("first", 3, "settled", settled).await;
    let id = ann(&first, EXTERNAL_NAME).unwrap().to_string();
    let copied: serde_json::Map<String, serde_json::Value> = first
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k.starts_with("stratus.dev/"))
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    assert!(copied.contains_key(CREATE_DIGEST), "{copied:?}");
    env.create(
        "copy",
        json!({"forProvider": {"name": "first"}}),
        serde_json::Value::Object(copied),
    )
    .await;
    env.publish("first").await;
    env.publish("copy").await;
    let copy = env.step("copy").await;
    expect(&copy, "Stalled", "True", "AlreadyManaged");
    env.delete("copy").await;
    env.publish("copy").await;
    env.until_gone("copy", 3).await;
    assert_eq!(
        env.cloud.count(Method::Delete),
        0,
        "the copy deleted the original's widget"
    );
    assert!(env.cloud.thing(&id).is_some());
    env.stop().await;
}
