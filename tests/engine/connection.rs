//! Connection Secrets: the credential a widget comes with (shown by the fake cloud once, at
//! create) is written to a Secret the Widget owns, before the id is recorded; a Secret someone
//! else owns is never taken over; a value lost to a crash is replaced and the lost one revoked
//! (or reported, when the kind cannot replace); deletion follows the deletion policy; a
//! rotation keeps the previous value for the grace period, across a restart; and no value ever
//! shows in events, status or `Debug`.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use stratus::api::common::{CONNECTION, ConnectionSecretStatus};
use stratus::engine::reconciler::{Error, Settings};
use stratus::engine::{ConnectionDetails, Created};

use crate::fake::{Fault, Method, Thing};
use crate::harness::*;
use crate::widget::Widget;

/// A grace period short enough to wait out in a test.
const GRACE: Duration = Duration::from_secs(2);

fn settings() -> Settings {
    Settings {
        rotation_grace: GRACE,
        ..Settings::default()
    }
}

fn with_secret(name: &str) -> serde_json::Value {
    json!({"writeConnectionSecretToRef": {"name": name}})
}

async fn secret(env: &Env, name: &str) -> Option<Secret> {
    let api: Api<Secret> = env.ns.api();
    api.get_opt(name).await.expect("reading the Secret")
}

fn data(s: &Secret, key: &str) -> Option<String> {
    s.data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8(b.0.clone()).unwrap())
}

fn record(w: &Widget) -> ConnectionSecretStatus {
    w.status
        .as_ref()
        .and_then(|s| s.managed.connection_secret.clone())
        .unwrap_or_else(|| {
            panic!(
                "{} records no connection Secret: {:?}",
                w.name_any(),
                w.status
            )
        })
}

async fn events_of(env: &Env, name: &str) -> Vec<Event> {
    let api: Api<Event> = env.ns.api();
    api.list(&ListParams::default())
        .await
        .expect("listing events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect()
}

fn id_of(w: &Widget) -> String {
    ann(w, EXTERNAL_NAME)
        .expect("an id is recorded")
        .to_string()
}

#[tokio::test]
async fn a_created_credential_is_written_to_a_secret_the_widget_owns() {
    let env = Env::start_with("eng-conn-write", settings()).await;
    let w = env.create("w", with_secret("w-conn"), json!({})).await;
    let after = env.until("w", 3, "settled", settled).await;
    let id = id_of(&after);

    let s = secret(&env, "w-conn")
        .await
        .expect("the Secret was written");
    assert_eq!(s.type_.as_deref(), Some("stratus.dev/connection"));
    let owners = s.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].uid, w.uid().unwrap());
    assert_eq!(owners[0].controller, Some(true));
    assert_eq!(
        s.labels().get("stratus.dev/owner-uid").map(String::as_str),
        w.uid().as_deref()
    );
    assert_eq!(
        s.annotations().get("stratus.dev/owner").map(String::as_str),
        Some(format!("Widget {}/w", env.ns.name).as_str())
    );
    let version = format!("{id}-v1");
    assert_eq!(
        data(&s, "token"),
        env.cloud.value(&version),
        "the value the create answered"
    );

    let r = record(&after);
    assert_eq!(r.name, "w-conn");
    assert_eq!(r.uid, s.metadata.uid);
    assert_eq!(r.version.as_deref(), Some(version.as_str()));
    assert!(
        ann(&after, CONNECTION).is_some(),
        "recorded with the id, in the annotation"
    );
    expect(&after, "ConnectionSecret", "True", "Written");
    env.stop().await;
}

#[tokio::test]
async fn a_secret_owned_by_someone_else_stalls_with_secret_conflict_and_stays_untouched() {
    let env = Env::start_with("eng-conn-conflict", settings()).await;
    let api: Api<Secret> = env.ns.api();
    let theirs: Secret = serde_json::from_value(json!({
        "metadata": {"name": "taken", "labels": {"app": "theirs"}},
        "stringData": {"password": "theirs"},
    }))
    .unwrap();
    let before = api.create(&PostParams::default(), &theirs).await.unwrap();

    env.create("w", with_secret("taken"), json!({})).await;
    let after = env.step("w").await;
    expect(&after, "Stalled", "True", "SecretConflict");
    let message = cond(&after, "Stalled").message;
    assert!(
        message.contains(&format!("{}/taken", env.ns.name))
            && message.contains("writeConnectionSecretToRef"),
        "{message}"
    );
    assert_eq!(env.cloud.count(Method::Create), 0, "nothing was created");
    let now = secret(&env, "taken").await.unwrap();
    assert_eq!(
        now.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(data(&now, "password").as_deref(), Some("theirs"));
    assert!(now.metadata.owner_references.is_none());
    env.stop().await;
}

#[tokio::test]
async fn a_crash_between_the_create_answer_and_the_secret_write_is_recovered_by_replacing_and_revoking_the_lost_value()
 {
    let env = Env::start_with("eng-conn-crash", settings()).await;
    env.create("w", with_secret("w-conn"), json!({})).await;
    env.cloud.fail(Method::Create, Fault::PanicAfter);
    assert!(matches!(env.reconcile("w").await, Err(Error::Panicked(_))));
    let things = env.cloud.things();
    assert_eq!(things.len(), 1, "{things:?}");
    let id = things[0].id.clone();
    let lost = format!("{id}-v1");
    assert_eq!(env.cloud.valid(&id), vec![lost.clone()]);

    let after = env
        .until("w", 6, "holding a new value", |w| {
            settled(w)
                && w.status
                    .as_ref()
                    .and_then(|s| s.managed.connection_secret.as_ref())
                    .is_some_and(|c| c.version.is_some())
        })
        .await;
    assert_eq!(env.cloud.count(Method::Create), 1, "no second create");
    assert_eq!(env.cloud.count(Method::Replace), 1);
    let r = record(&after);
    let fresh = r.version.clone().unwrap();
    assert_ne!(fresh, lost);
    let s = secret(&env, "w-conn").await.unwrap();
    assert_eq!(data(&s, "token"), env.cloud.value(&fresh));

    // The lost value is revoked once the grace period is over.
    tokio::time::sleep(GRACE + Duration::from_millis(500)).await;
    let done = env.step("w").await;
    assert_eq!(env.cloud.valid(&id), vec![fresh.clone()]);
    assert!(record(&done).revoke_others_after.is_none());
    env.stop().await;
}

#[tokio::test]
async fn without_replace_a_lost_value_is_reported_by_a_warning_and_a_condition() {
    let env = Env::start_with("eng-conn-lost", settings()).await;
    env.cloud.without_replace();
    env.create("w", with_secret("w-conn"), json!({})).await;
    env.cloud.fail(Method::Create, Fault::PanicAfter);
    assert!(env.reconcile("w").await.is_err());
    let after = env
        .until("w", 6, "reporting the lost value", |w| {
            w.status.as_ref().is_some_and(|s| {
                s.managed
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "ConnectionSecret" && c.reason == "ValueLost")
            })
        })
        .await;
    expect(&after, "ConnectionSecret", "False", "ValueLost");
    assert!(record(&after).version.is_none());
    assert!(
        ann(&after, EXTERNAL_NAME).is_some(),
        "the resource itself is recorded"
    );
    let events = events_of(&env, "w").await;
    let warning = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("ConnectionSecretLost"))
        .unwrap_or_else(|| panic!("no ConnectionSecretLost event: {events:?}"));
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert!(
        warning
            .note
            .as_deref()
            .unwrap_or("")
            .contains("Delete this object and create it again"),
        "{warning:?}"
    );
    // Reported once, not on every reconcile.
    env.step("w").await;
    let again = events_of(&env, "w").await;
    let lost_events: Vec<_> = again
        .iter()
        .filter(|e| e.reason.as_deref() == Some("ConnectionSecretLost"))
        .collect();
    assert_eq!(lost_events.len(), 1, "{lost_events:?}");
    assert_eq!(
        lost_events[0].deprecated_count.unwrap_or(1),
        1,
        "{lost_events:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_later_observation_without_the_value_never_clears_it() {
    let env = Env::start_with("eng-conn-keep", settings()).await;
    env.create("w", with_secret("w-conn"), json!({})).await;
    let first = env.until("w", 3, "settled", settled).await;
    let written = secret(&env, "w-conn").await.unwrap();
    // Observations (which never carry the value), an update, and a restart.
    env.patch_spec("w", json!({"forProvider": {"size": 2}}))
        .await;
    for _ in 0..3 {
        env.step("w").await;
    }
    let after = env.until("w", 3, "settled", settled).await;
    let now = secret(&env, "w-conn").await.unwrap();
    assert_eq!(now.data, written.data);
    assert_eq!(
        now.metadata.resource_version,
        written.metadata.resource_version
    );
    assert_eq!(record(&after), record(&first));
    assert_eq!(env.cloud.count(Method::Replace), 0);
    env.stop().await;
}

#[tokio::test]
async fn deleting_with_delete_removes_the_secret_and_with_orphan_keeps_it() {
    let env = Env::start_with("eng-conn-delete", settings()).await;
    env.create("gone", with_secret("gone-conn"), json!({}))
        .await;
    let mut orphan = with_secret("kept-conn");
    orphan["deletionPolicy"] = json!("Orphan");
    env.create("kept", orphan, json!({})).await;
    env.until("gone", 3, "settled", settled).await;
    env.until("kept", 3, "settled", settled).await;
    let kept_before = secret(&env, "kept-conn").await.unwrap();

    env.delete("gone").await;
    env.until_gone("gone", 5).await;
    assert!(
        secret(&env, "gone-conn").await.is_none(),
        "the Secret went with the credential"
    );

    env.delete("kept").await;
    env.until_gone("kept", 5).await;
    let kept = secret(&env, "kept-conn")
        .await
        .expect("the Secret stays with the orphaned credential");
    assert_eq!(kept.data, kept_before.data);
    assert!(
        kept.metadata
            .owner_references
            .as_ref()
            .is_none_or(|o| o.is_empty()),
        "no owner reference left for garbage collection: {:?}",
        kept.metadata.owner_references
    );
    env.stop().await;
}

#[tokio::test]
async fn a_rotation_keeps_the_previous_value_for_the_grace_period_then_revokes_it_across_a_restart()
{
    let mut env = Env::start_with("eng-conn-rotate", settings()).await;
    env.create("w", with_secret("w-conn"), json!({})).await;
    let first = env.until("w", 3, "settled", settled).await;
    let id = id_of(&first);
    let old = record(&first).version.unwrap();

    env.patch_spec("w", json!({"connectionSecretRotation": "2026-12-02"}))
        .await;
    let rotated = env.step("w").await;
    let r = record(&rotated);
    let new = r.version.clone().unwrap();
    assert_ne!(new, old);
    assert_eq!(r.previous_version.as_deref(), Some(old.as_str()));
    assert_eq!(r.rotation.as_deref(), Some("2026-12-02"));
    let s = secret(&env, "w-conn").await.unwrap();
    assert_eq!(data(&s, "token"), env.cloud.value(&new));
    assert_eq!(data(&s, "previous-token"), env.cloud.value(&old));
    let mut valid = env.cloud.valid(&id);
    valid.sort();
    let mut both = vec![old.clone(), new.clone()];
    both.sort();
    assert_eq!(valid, both, "both valid during the grace period");

    // A restart in the grace period: nothing in memory, the record carries on.
    env.restart();
    env.step("w").await;
    assert_eq!(env.cloud.valid(&id).len(), 2, "not revoked early");
    assert_eq!(env.cloud.count(Method::Replace), 1, "not rotated twice");

    tokio::time::sleep(GRACE + Duration::from_millis(500)).await;
    env.restart();
    let done = env.step("w").await;
    assert_eq!(env.cloud.valid(&id), vec![new.clone()]);
    let s = secret(&env, "w-conn").await.unwrap();
    assert_eq!(data(&s, "token"), env.cloud.value(&new));
    assert_eq!(data(&s, "previous-token"), None);
    let r = record(&done);
    assert!(r.previous_version.is_none() && r.revoke_others_after.is_none());
    assert_eq!(env.cloud.count(Method::Replace), 1);
    env.stop().await;
}

#[tokio::test]
async fn values_never_appear_in_events_status_annotations_or_debug() {
    let env = Env::start_with("eng-conn-leak", settings()).await;
    env.create("w", with_secret("w-conn"), json!({})).await;
    env.until("w", 3, "settled", settled).await;
    env.patch_spec("w", json!({"connectionSecretRotation": "1"}))
        .await;
    env.step("w").await;
    tokio::time::sleep(GRACE + Duration::from_millis(500)).await;
    let w = env.step("w").await;

    let values = env.cloud.values();
    assert_eq!(values.len(), 2, "{}", values.len());
    let object = serde_json::to_string(&w).unwrap();
    let events = serde_json::to_string(&events_of(&env, "w").await).unwrap();
    assert!(events.contains("CredentialReplaced") && events.contains("CredentialRevoked"));
    let details = ConnectionDetails::new("v1").with("token", values[0].clone());
    let debug = format!(
        "{details:?} {:?} {:?}",
        details.get("token"),
        Created {
            observed: Thing::made_elsewhere("w-9", "x", 1, Duration::ZERO),
            connection: Some(details.clone()),
        }
    );
    for v in &values {
        assert!(!object.contains(v.as_str()), "a value in the object");
        assert!(!events.contains(v.as_str()), "a value in an event");
        assert!(!debug.contains(v.as_str()), "a value in Debug: {debug}");
    }
    env.stop().await;
}
