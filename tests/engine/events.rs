//! The engine's event recorder: kube's series for a repeat, and a cache that is dropped on a
//! timer instead of holding a burst of events for the process's life.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{ListParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::{Api, Resource};
use serde_json::json;
use stratus::engine::events::Events;

use crate::common::TestNamespace;

async fn published(ns: &TestNamespace) -> Vec<K8sEvent> {
    let api: Api<K8sEvent> = Api::namespaced(ns.client.clone(), &ns.name);
    api.list(&ListParams::default())
        .await
        .expect("listing events")
        .items
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some("stratus-events-test"))
        .collect()
}

#[tokio::test]
async fn a_repeat_counts_into_its_event_until_the_cache_is_forgotten_then_starts_a_new_one() {
    let ns = TestNamespace::new("events").await;
    let subject: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "subject"}})).unwrap();
    let subject = ns
        .api::<ConfigMap>()
        .create(&PostParams::default(), &subject)
        .await
        .expect("creating the event's subject");
    let reference = subject.object_ref(&());
    let events = Events::new(
        ns.client.clone(),
        Reporter {
            controller: "stratus-events-test".into(),
            instance: None,
        },
    );
    let adopted = Event {
        type_: EventType::Normal,
        reason: "Adopted".into(),
        note: Some("Adopted 42, named by the stratus.dev/external-name annotation".into()),
        action: "Observe".into(),
        secondary: None,
    };

    events
        .recorder()
        .publish(&adopted, &reference)
        .await
        .unwrap();
    events
        .recorder()
        .publish(&adopted, &reference)
        .await
        .unwrap();
    let once = published(&ns).await;
    assert_eq!(once.len(), 1, "a repeat is folded into the first event");
    assert_eq!(
        once[0].series.as_ref().map(|s| s.count),
        Some(2),
        "and counted in its series"
    );

    events.forget();
    events
        .recorder()
        .publish(&adopted, &reference)
        .await
        .unwrap();
    let after = published(&ns).await;
    assert_eq!(
        after.len(),
        2,
        "after the cache is forgotten, the repeat is a new event: {after:?}"
    );
    ns.cleanup().await;
}
