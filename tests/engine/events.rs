//! The engine's event recorders: kube's series for a repeat, and caches that are dropped on a
//! timer instead of holding a burst of events for the process's life.

use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{ListParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Api, Resource};
use serde_json::json;
use stratus::engine::events::Events;

use crate::common::TestNamespace;

const CONTROLLER: &str = "stratus-events-test";

/// A ConfigMap for the events to be about, and the recorders.
async fn subject(ns: &TestNamespace) -> (ObjectReference, Events) {
    let subject: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "subject"}})).unwrap();
    let subject = ns
        .api::<ConfigMap>()
        .create(&PostParams::default(), &subject)
        .await
        .expect("creating the event's subject");
    let events = Events::new(
        ns.client.clone(),
        Reporter {
            controller: CONTROLLER.into(),
            instance: None,
        },
    );
    (subject.object_ref(&()), events)
}

async fn published(ns: &TestNamespace) -> Vec<K8sEvent> {
    let api: Api<K8sEvent> = Api::namespaced(ns.client.clone(), &ns.name);
    api.list(&ListParams::default())
        .await
        .expect("listing events")
        .items
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some(CONTROLLER))
        .collect()
}

async fn publish(events: &Events, ev: &Event, reference: &ObjectReference) {
    events
        .recorder(ev.type_)
        .publish(ev, reference)
        .await
        .expect("publishing an event");
}

#[tokio::test]
async fn a_repeat_counts_into_its_event_until_the_cache_is_forgotten_then_starts_a_new_one() {
    let ns = TestNamespace::new("events").await;
    let (reference, events) = subject(&ns).await;
    let adopted = Event {
        type_: EventType::Normal,
        reason: "Adopted".into(),
        note: Some("Adopted 42, named by the stratus.dev/external-name annotation".into()),
        action: "Observe".into(),
        secondary: None,
    };

    publish(&events, &adopted, &reference).await;
    publish(&events, &adopted, &reference).await;
    let once = published(&ns).await;
    assert_eq!(once.len(), 1, "a repeat is folded into the first event");
    assert_eq!(
        once[0].series.as_ref().map(|s| s.count),
        Some(2),
        "and counted in its series"
    );

    events.forget(EventType::Normal);
    publish(&events, &adopted, &reference).await;
    let after = published(&ns).await;
    assert_eq!(
        after.len(),
        2,
        "after the cache is forgotten, the repeat is a new event: {after:?}"
    );
    ns.cleanup().await;
}

#[tokio::test]
async fn a_repeated_warning_keeps_counting_into_its_series_when_normal_events_are_forgotten() {
    let ns = TestNamespace::new("events").await;
    let (reference, events) = subject(&ns).await;
    let failed = Event {
        type_: EventType::Warning,
        reason: "CloudUnavailable".into(),
        note: Some("Strettch answered 503; retrying".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    for _ in 0..2 {
        publish(&events, &failed, &reference).await;
        events.forget(EventType::Normal);
    }
    publish(&events, &failed, &reference).await;
    let warnings = published(&ns).await;
    assert_eq!(warnings.len(), 1, "one Warning event: {warnings:?}");
    assert_eq!(warnings[0].series.as_ref().map(|s| s.count), Some(3));
    ns.cleanup().await;
}
