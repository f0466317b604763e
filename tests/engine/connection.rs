//! Connection Secrets: the credential a widget comes with (shown by the fake cloud once, at
//! create) is written to a Secret the Widget owns, before the id is recorded; a Secret someone
//! else owns is never taken over; a value lost to a crash is replaced and the lost one revoked
//! (or reported, when the kind cannot replace); deletion follows the deletion policy; a
//! rotation keeps the previous value for the grace period, across a restart; and no value ever
//! shows in events, status or `Debug`. Spec bounds are checked by the schema and again before
//! any call; a failing Secret write backs off and never asks the cloud for another value; a
//! stale copy never revokes; a Secret without the value keeps the object from Ready and is
//! written again; an adopted resource's own values are never revoked.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use stratus::api::common::{CONNECTION, ConnectionSecretStatus, SecretReference};
use stratus::engine::reconciler::{self, Error, Settings};
use stratus::engine::{ConnectionDetails, Created};

use crate::fake::{FakeAdapter, Fault, Method, Revoked, Thing};
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

/// Nothing in flight, and the Secret holds the value.
fn written(w: &Widget) -> bool {
    settled(w)
        && w.status
            .as_ref()
            .and_then(|s| s.managed.connection_secret.as_ref())
            .is_some_and(|c| c.version.is_some())
}

/// Send Widget `name` with `spec` merged into the default as is: the API server's answer.
async fn try_create(env: &Env, name: &str, spec: serde_json::Value) -> Result<Widget, kube::Error> {
    let mut full = json!({
        "providerConfigRef": {"name": env.provider_config},
        "forProvider": {"name": name, "size": 1},
    });
    crate::common::merge(&mut full, spec);
    let obj: Widget = serde_json::from_value(json!({
        "apiVersion": "fake.stratus.dev/v1alpha1", "kind": "Widget",
        "metadata": {"name": name},
        "spec": full,
    }))
    .unwrap();
    env.widgets.create(&PostParams::default(), &obj).await
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
    expect(&after, "Ready", "False", "WaitingForConnectionSecret");
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
    // Reported once, not on every reconcile; and nothing is written again.
    let reported_at = after.resource_version();
    env.step("w").await;
    assert_eq!(env.get("w").await.resource_version(), reported_at);
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

#[tokio::test]
async fn a_secret_name_or_rotation_outside_the_schema_bounds_is_refused_by_the_api_server() {
    let env = Env::start_with("eng-conn-schema", settings()).await;
    let bad = [
        (
            "upper",
            json!({"writeConnectionSecretToRef": {"name": "Bad_Name"}}),
        ),
        (
            "slash",
            json!({"writeConnectionSecretToRef": {"name": "a/b"}}),
        ),
        ("empty", json!({"writeConnectionSecretToRef": {"name": ""}})),
        (
            "long-name",
            json!({"writeConnectionSecretToRef": {"name": "a".repeat(254)}}),
        ),
        (
            "long-nonce",
            json!({"connectionSecretRotation": "x".repeat(254)}),
        ),
        ("newline", json!({"connectionSecretRotation": "2026\n12"})),
    ];
    for (name, spec) in bad {
        // The CRD may have just been updated by this test run: its schema applies within
        // moments.
        let refused = crate::common::wait_for(Duration::from_secs(10), || {
            let env = &env;
            let spec = spec.clone();
            async move {
                match try_create(env, name, spec).await {
                    Err(kube::Error::Api(s)) => {
                        assert_eq!(s.code, 422, "{name}: {s:?}");
                        true
                    }
                    Err(e) => panic!("{name}: {e}"),
                    Ok(_) => {
                        env.widgets
                            .delete(name, &DeleteParams::default())
                            .await
                            .expect("deleting what was accepted");
                        false
                    }
                }
            }
        })
        .await;
        assert!(refused, "{name} was accepted");
    }
    let fine = json!({
        "writeConnectionSecretToRef": {"name": "app.credentials-1"},
        "connectionSecretRotation": "2026-12-02 #3 (é)",
    });
    try_create(&env, "fine", fine)
        .await
        .expect("a valid name and nonce are accepted");
    env.stop().await;
}

#[tokio::test]
async fn an_invalid_secret_name_or_rotation_stored_before_the_bounds_stalls_as_invalid_spec_before_any_call()
 {
    let env = Env::start_with("eng-conn-invalid", settings()).await;
    env.create("name", with_secret("w-conn"), json!({})).await;
    env.create("nonce", with_secret("w-conn"), json!({})).await;
    // Objects stored before the schema had its bounds: the engine sees them as they are.
    let mut name = env.get("name").await;
    name.spec.connection.write_connection_secret_to_ref = Some(SecretReference {
        name: "Bad_Name".into(),
    });
    let mut nonce = env.get("nonce").await;
    nonce.spec.connection.connection_secret_rotation = Some("x".repeat(300));
    for (obj, field) in [
        (name, "spec.writeConnectionSecretToRef.name"),
        (nonce, "spec.connectionSecretRotation"),
    ] {
        let who = obj.name_any();
        reconciler::reconcile(Arc::new(obj), env.ctx.clone())
            .await
            .unwrap_or_else(|e| panic!("{who}: {e:?}"));
        let after = env.get(&who).await;
        expect(&after, "Stalled", "True", "InvalidSpec");
        expect(&after, "Ready", "False", "Unavailable");
        let message = cond(&after, "Stalled").message;
        assert!(message.contains(field), "{who}: {message}");
    }
    assert_eq!(env.cloud.calls(), vec![], "no cloud call");
    let secrets: Api<Secret> = env.ns.api();
    let connection: Vec<String> = secrets
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|s| s.type_.as_deref() == Some("stratus.dev/connection"))
        .map(|s| s.name_any())
        .collect();
    assert_eq!(connection, Vec::<String>::new(), "no Secret claimed");
    env.stop().await;
}

#[tokio::test]
async fn a_failing_secret_write_backs_off_and_retries_the_value_already_issued_without_asking_for_another()
 {
    let env = Env::start_with("eng-conn-write-fails", settings()).await;
    env.create("w", with_secret("w-conn"), json!({})).await;
    let first = env.until("w", 3, "settled", written).await;
    let old = record(&first).version.unwrap();
    // Every write of values fails three times (the API server is failing, an admission webhook
    // refuses, ...); the patches that only test ownership go through.
    env.kube_faults.add(
        http::Method::PATCH,
        "/secrets/w-conn",
        "\"/data",
        3,
        KubeFault::Answer(500),
    );
    env.patch_spec("w", json!({"connectionSecretRotation": "r1"}))
        .await;
    let mut delays = Vec::new();
    for _ in 0..3 {
        let action = env
            .reconcile("w")
            .await
            .expect("a failed write is reported in the status, not an error");
        delays.push(requeue_after(&action).expect("retried"));
        let w = env.get("w").await;
        expect(&w, "Reconciling", "True", "SecretWriteFailed");
        let r = record(&w);
        assert_eq!(
            r.version.as_deref(),
            Some(old.as_str()),
            "the Secret still holds the old value"
        );
        assert!(r.unwritten.is_some(), "{r:?}");
        assert_eq!(
            env.cloud.count(Method::Replace),
            1,
            "one value asked for, however many writes fail"
        );
    }
    assert_eq!(env.kube_faults.hits(), 3);
    for (i, d) in delays.iter().enumerate() {
        // retry_initial (1 s) doubled each time; jitter only adds.
        assert!(*d >= Duration::from_secs(1 << i), "{delays:?}");
    }

    let done = env.until("w", 2, "written", written).await;
    let r = record(&done);
    let new = r.version.clone().unwrap();
    assert_eq!(r.unwritten, None);
    assert_eq!(r.previous_version.as_deref(), Some(old.as_str()));
    let s = secret(&env, "w-conn").await.unwrap();
    assert_eq!(data(&s, "token"), env.cloud.value(&new));
    assert_eq!(data(&s, "previous-token"), env.cloud.value(&old));
    assert_eq!(env.cloud.count(Method::Replace), 1);
    assert_eq!(env.cloud.values().len(), 2, "no value minted per retry");
    env.stop().await;
}

#[tokio::test]
async fn a_value_whose_write_failed_is_revoked_when_a_restart_loses_it() {
    let mut env = Env::start_with("eng-conn-write-restart", settings()).await;
    env.create("w", with_secret("w-conn"), json!({})).await;
    let first = env.until("w", 3, "settled", written).await;
    let id = id_of(&first);
    let old = record(&first).version.unwrap();
    env.kube_faults.add(
        http::Method::PATCH,
        "/secrets/w-conn",
        "\"/data",
        1,
        KubeFault::Answer(500),
    );
    env.patch_spec("w", json!({"connectionSecretRotation": "r1"}))
        .await;
    let failed = env.step("w").await;
    let unwritten = record(&failed)
        .unwritten
        .expect("the value is recorded as unwritten");

    env.restart();
    let done = env.until("w", 2, "written", written).await;
    let new = record(&done).version.unwrap();
    assert!(
        !env.cloud.valid(&id).contains(&unwritten),
        "the lost value is revoked"
    );
    assert!(
        env.cloud
            .revocations()
            .contains(&Revoked::Only(vec![unwritten.clone()])),
        "{:?}",
        env.cloud.revocations()
    );
    let mut valid = env.cloud.valid(&id);
    valid.sort();
    let mut expected = vec![old, new];
    expected.sort();
    assert_eq!(valid, expected);
    env.stop().await;
}

#[tokio::test]
async fn a_secret_the_operator_may_not_write_stalls_with_secret_forbidden_before_anything_is_created()
 {
    let env = Env::start_with("eng-conn-forbidden", settings()).await;
    env.kube_faults.add(
        http::Method::POST,
        "/secrets",
        "w-conn",
        2,
        KubeFault::Answer(403),
    );
    env.create("w", with_secret("w-conn"), json!({})).await;
    let mut delays = Vec::new();
    for _ in 0..2 {
        let action = env.reconcile("w").await.expect("reported in the status");
        delays.push(requeue_after(&action).expect("looked at again"));
        let w = env.get("w").await;
        expect(&w, "Stalled", "True", "SecretForbidden");
        let message = cond(&w, "Stalled").message;
        assert!(
            message.contains("rbac.connectionSecretNamespaces"),
            "{message}"
        );
    }
    assert!(delays[1] > delays[0], "backing off: {delays:?}");
    assert_eq!(env.cloud.count(Method::Create), 0, "nothing created");
    assert_eq!(env.cloud.count(Method::Replace), 0);

    env.until("w", 4, "written", written).await;
    assert_eq!(env.cloud.count(Method::Create), 1);
    env.stop().await;
}

#[tokio::test]
async fn a_reconcile_of_a_stale_copy_never_revokes_the_value_in_the_secret() {
    let env = Env::start_with("eng-conn-stale-revoke", settings()).await;
    env.create("w", with_secret("w-conn"), json!({})).await;
    let first = env.until("w", 3, "settled", written).await;
    let id = id_of(&first);
    env.patch_spec("w", json!({"connectionSecretRotation": "r1"}))
        .await;
    env.step("w").await;
    tokio::time::sleep(GRACE + Duration::from_millis(500)).await;
    // A copy whose grace period is over: what a reconcile may still hold (the cache behind).
    let stale = env.get("w").await;
    let second = record(&stale).version.unwrap();
    let done = env.step("w").await;
    assert!(record(&done).revoke_others_after.is_none());
    env.patch_spec("w", json!({"connectionSecretRotation": "r2"}))
        .await;
    let third = record(&env.step("w").await).version.unwrap();
    assert_ne!(third, second);

    let result = reconciler::reconcile(Arc::new(stale), env.ctx.clone()).await;
    assert!(matches!(result, Err(Error::Stale)), "{result:?}");
    let mut valid = env.cloud.valid(&id);
    valid.sort();
    let mut expected = vec![second.clone(), third.clone()];
    expected.sort();
    assert_eq!(
        valid, expected,
        "the value in the Secret, and the previous one in its grace"
    );
    let s = secret(&env, "w-conn").await.unwrap();
    assert_eq!(data(&s, "token"), env.cloud.value(&third));
    env.stop().await;
}

#[tokio::test]
async fn a_deleted_connection_secret_keeps_the_widget_from_ready_and_is_written_again_once() {
    let env = Env::start_with("eng-conn-deleted", settings()).await;
    env.create("w", with_secret("w-conn"), json!({})).await;
    let first = env.until("w", 3, "settled", written).await;
    let id = id_of(&first);
    let old = record(&first).version.unwrap();
    let secrets: Api<Secret> = env.ns.api();
    secrets
        .delete("w-conn", &DeleteParams::default())
        .await
        .expect("deleting the Secret");
    // The first write of the new value fails: the value is missing meanwhile.
    env.kube_faults.add(
        http::Method::PATCH,
        "/secrets/w-conn",
        "\"/data",
        1,
        KubeFault::Answer(500),
    );

    let missing = env.step("w").await;
    expect(&missing, "Ready", "False", "WaitingForConnectionSecret");
    expect(&missing, "ConnectionSecret", "False", "WriteFailed");
    let events = events_of(&env, "w").await;
    assert!(
        events
            .iter()
            .any(|e| e.reason.as_deref() == Some("ConnectionSecretMissing")),
        "{events:?}"
    );

    let again = env.step("w").await;
    expect(&again, "Ready", "True", "Available");
    expect(&again, "ConnectionSecret", "True", "Written");
    let new = record(&again).version.unwrap();
    assert_ne!(new, old);
    let s = secret(&env, "w-conn").await.expect("the Secret is back");
    assert_eq!(data(&s, "token"), env.cloud.value(&new));
    assert_eq!(env.cloud.count(Method::Replace), 1);

    // Settled: more reconciles write nothing and ask for nothing.
    let settled_at = again.resource_version();
    for _ in 0..2 {
        env.step("w").await;
    }
    assert_eq!(env.get("w").await.resource_version(), settled_at);
    assert_eq!(env.cloud.count(Method::Replace), 1);

    // The value that was in the deleted Secret is revoked after the grace period.
    tokio::time::sleep(GRACE + Duration::from_millis(500)).await;
    env.step("w").await;
    assert_eq!(env.cloud.valid(&id), vec![new]);
    env.stop().await;
}

#[tokio::test]
async fn an_adopted_widget_gets_a_value_of_its_own_and_values_issued_before_are_never_revoked() {
    let env = Env::start_with("eng-conn-adopt", settings()).await;
    env.cloud.insert(Thing::made_elsewhere(
        "w-77",
        "w",
        1,
        Duration::from_secs(3600),
    ));
    let theirs = env.cloud.issue_elsewhere("w-77");
    env.create("w", with_secret("w-conn"), json!({EXTERNAL_NAME: "w-77"}))
        .await;
    let adopted = env.until("w", 4, "written", written).await;
    let first = record(&adopted).version.unwrap();
    let s = secret(&env, "w-conn").await.unwrap();
    assert_eq!(data(&s, "token"), env.cloud.value(&first));

    tokio::time::sleep(GRACE + Duration::from_millis(500)).await;
    env.step("w").await;
    env.patch_spec("w", json!({"connectionSecretRotation": "r1"}))
        .await;
    let second = record(&env.step("w").await).version.unwrap();
    tokio::time::sleep(GRACE + Duration::from_millis(500)).await;
    let done = env.step("w").await;
    assert!(record(&done).revoke_others_after.is_none());

    let mut valid = env.cloud.valid("w-77");
    valid.sort();
    let mut expected = vec![theirs.clone(), second];
    expected.sort();
    assert_eq!(
        valid, expected,
        "theirs stays; of the operator's, only the one in the Secret"
    );
    let revocations = env.cloud.revocations();
    assert_eq!(
        revocations,
        vec![Revoked::Only(vec![first])],
        "only what the operator issued"
    );
    env.stop().await;
}

/// A kind whose new value disrupts the resource's users (a database password reset): an
/// adopted one gets no value until the spec's rotation asks, one it created gets one at once.
#[tokio::test]
async fn a_disruptive_credential_of_an_adopted_widget_is_issued_only_when_the_spec_asks() {
    let env = Env::start_with_adapter(
        "eng-conn-disrupt",
        settings(),
        FakeAdapter {
            disrupts: true,
            ..FakeAdapter::default()
        },
    )
    .await;
    env.cloud.insert(Thing::made_elsewhere(
        "w-88",
        "w",
        1,
        Duration::from_secs(3600),
    ));
    env.create("w", with_secret("w-conn"), json!({EXTERNAL_NAME: "w-88"}))
        .await;
    for _ in 0..3 {
        env.step("w").await;
    }
    assert_eq!(
        env.cloud.count(Method::Replace),
        0,
        "no value issued on its own"
    );
    let waiting = env.get("w").await;
    expect(&waiting, "Ready", "False", "WaitingForConnectionSecret");
    env.patch_spec("w", json!({"connectionSecretRotation": "r1"}))
        .await;
    let issued = env.until("w", 4, "written", written).await;
    assert_eq!(env.cloud.count(Method::Replace), 1);
    assert!(record(&issued).version.is_some());

    // One it created gets its value at once.
    env.create("mine", with_secret("mine-conn"), json!({}))
        .await;
    env.until("mine", 4, "written", written).await;
    env.stop().await;
}

/// An adopted widget whose manifest already carries a rotation value (copied from the
/// resource's first owner, say) gets no disruptive value for it: that value is the baseline, and
/// only a change of it asks.
#[tokio::test]
async fn an_adopted_widget_s_rotation_value_at_adoption_is_a_baseline_not_a_request() {
    let mut env = Env::start_with_adapter(
        "eng-conn-baseline",
        settings(),
        FakeAdapter {
            disrupts: true,
            ..FakeAdapter::default()
        },
    )
    .await;
    env.cloud.insert(Thing::made_elsewhere(
        "w-89",
        "w",
        1,
        Duration::from_secs(3600),
    ));
    let mut spec = with_secret("w-conn");
    spec["connectionSecretRotation"] = json!("r7");
    env.create("w", spec, json!({EXTERNAL_NAME: "w-89"})).await;
    for _ in 0..3 {
        env.step("w").await;
    }
    assert_eq!(
        env.cloud.count(Method::Replace),
        0,
        "the rotation value the object was adopted with issued a value"
    );
    let waiting = env.get("w").await;
    expect(&waiting, "Ready", "False", "WaitingForConnectionSecret");
    assert_eq!(record(&waiting).rotation.as_deref(), Some("r7"));

    // A restart keeps the baseline: it is recorded on the object.
    env.restart();
    env.step("w").await;
    assert_eq!(env.cloud.count(Method::Replace), 0);

    env.patch_spec("w", json!({"connectionSecretRotation": "r8"}))
        .await;
    let issued = env.until("w", 4, "written", written).await;
    assert_eq!(env.cloud.count(Method::Replace), 1);
    assert_eq!(record(&issued).rotation.as_deref(), Some("r8"));
    env.stop().await;
}

#[tokio::test]
async fn a_value_that_cannot_be_revoked_is_named_in_a_warning() {
    let mut env = Env::start_with("eng-conn-no-revoke", settings()).await;
    env.cloud.without_revoke();
    env.create("w", with_secret("w-conn"), json!({})).await;
    env.until("w", 3, "settled", written).await;
    env.kube_faults.add(
        http::Method::PATCH,
        "/secrets/w-conn",
        "\"/data",
        1,
        KubeFault::Answer(500),
    );
    env.patch_spec("w", json!({"connectionSecretRotation": "r1"}))
        .await;
    let failed = env.step("w").await;
    let unwritten = record(&failed).unwritten.expect("recorded as unwritten");
    // The held value is lost with the process; this kind cannot revoke it.
    env.restart();
    env.until("w", 2, "written", written).await;
    let events = events_of(&env, "w").await;
    let warning = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("CredentialNotRevoked"))
        .unwrap_or_else(|| panic!("no CredentialNotRevoked event: {events:?}"));
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    let note = warning.note.as_deref().unwrap_or("");
    assert!(
        note.contains(&unwritten) && note.contains("Revoke them in the cloud"),
        "{note}"
    );
    assert_eq!(env.cloud.count(Method::Revoke), 0);
    env.stop().await;
}
