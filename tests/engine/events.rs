//! The engine's event recorders: kube's series for a repeat, and caches that are dropped after
//! a number of publishes instead of holding a burst of events for the process's life.

use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{ListParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Api, Resource};
use serde_json::json;
use stratus::engine::events::Events;

use crate::common::TestNamespace;

const CONTROLLER: &str = "stratus-events-test";

/// A ConfigMap for the events to be about, and recorders that drop a cache after `cap` publishes.
async fn subject(ns: &TestNamespace, cap: u64) -> (ObjectReference, Events) {
    let subject: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "subject"}})).unwrap();
    let subject = ns
        .api::<ConfigMap>()
        .create(&PostParams::default(), &subject)
        .await
        .expect("creating the event's subject");
    let events = Events::with_cap(
        ns.client.clone(),
        Reporter {
            controller: CONTROLLER.into(),
            instance: None,
        },
        cap,
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

fn event(type_: EventType, reason: &str) -> Event {
    Event {
        type_,
        reason: reason.into(),
        note: Some(format!("{reason} happened")),
        action: "Reconcile".into(),
        secondary: None,
    }
}

#[tokio::test]
async fn a_repeat_counts_into_its_event_until_its_cache_has_had_its_publishes_then_starts_a_new_one()
 {
    let ns = TestNamespace::new("events").await;
    let (reference, events) = subject(&ns, 4).await;
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

    // Two more publishes fill the cache's four ...
    publish(&events, &event(EventType::Normal, "Updated"), &reference).await;
    publish(&events, &event(EventType::Normal, "Updated"), &reference).await;
    assert_eq!(published(&ns).await.len(), 2);
    // ... so the next repeat comes from an empty cache: a new event.
    publish(&events, &adopted, &reference).await;
    let after = published(&ns).await;
    assert_eq!(
        after.len(),
        3,
        "after the cache is dropped, the repeat is a new event: {after:?}"
    );
    ns.cleanup().await;
}

#[tokio::test]
async fn a_repeated_warning_keeps_counting_into_its_series_through_a_burst_of_normal_events() {
    let ns = TestNamespace::new("events").await;
    let (reference, events) = subject(&ns, 3).await;
    let failed = Event {
        type_: EventType::Warning,
        reason: "CloudUnavailable".into(),
        note: Some("Strettch answered 503; retrying".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    for n in 0..2 {
        publish(&events, &failed, &reference).await;
        // More Normal events than their cache holds: it is dropped, the Warnings' is not.
        for m in 0..4 {
            let burst = event(EventType::Normal, &format!("Adopted{n}x{m}"));
            publish(&events, &burst, &reference).await;
        }
    }
    publish(&events, &failed, &reference).await;
    let warnings: Vec<_> = published(&ns)
        .await
        .into_iter()
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .collect();
    assert_eq!(warnings.len(), 1, "one Warning event: {warnings:?}");
    assert_eq!(warnings[0].series.as_ref().map(|s| s.count), Some(3));
    ns.cleanup().await;
}
