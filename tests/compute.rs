//! Compute end to end: the operator process against the real apiserver and the sandbox.

mod common;

use std::time::Duration;

use common::{Env, condition, has_condition, is_ready};
use serde_json::json;

const T: Duration = Duration::from_secs(60);

fn state(c: &stratus::providers::strettch::api::Compute) -> Option<String> {
    c.status
        .as_ref()
        .and_then(|s| s.at_provider.as_ref())
        .and_then(|a| a.state.clone())
}

#[tokio::test]
async fn create_becomes_ready_with_an_address_then_delete_removes_it() {
    let env = Env::start("create").await;
    env.create_compute("web", json!({}), json!({}), json!({}))
        .await;
    let c = env.wait_compute("web", T, "Ready", is_ready).await;
    let at = c.status.as_ref().unwrap().at_provider.clone().unwrap();
    assert!(at.ipv4.is_some(), "no ipv4 in status: {at:?}");
    assert_eq!(at.state.as_deref(), Some("RUNNING"));
    assert!(has_condition(
        &c,
        "Synced",
        "True",
        Some("ReconcileSuccess")
    ));
    assert!(has_condition(&c, "Stalled", "False", None));
    assert!(has_condition(&c, "Reconciling", "False", None));
    let ann = c.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(ann.get("stratus.dev/external-name"), Some(&at.id));
    assert!(!ann.contains_key("stratus.dev/create-pending"));
    let computes = env.sim.computes();
    assert_eq!(computes.len(), 1);
    assert!(
        computes[0]
            .tags
            .iter()
            .any(|t| t.starts_with("stratus-uid:"))
    );

    env.computes()
        .delete("web", &Default::default())
        .await
        .unwrap();
    env.wait_gone("web", T).await;
    assert!(env.sim.computes().is_empty(), "cloud compute left behind");
    assert_eq!(env.sim.stats().served_429, 0);
    env.stop().await;
}

#[tokio::test]
async fn power_state_and_upsize_are_corrected_and_downsize_is_refused_without_a_call() {
    let env = Env::start("update").await;
    env.create_compute("app", json!({}), json!({}), json!({}))
        .await;
    env.wait_compute("app", T, "Ready", is_ready).await;

    env.patch_spec("app", json!({"forProvider": {"powerState": "STOPPED"}}))
        .await;
    env.wait_compute("app", T, "STOPPED", |c| {
        is_ready(c) && state(c).as_deref() == Some("STOPPED")
    })
    .await;

    env.patch_spec(
        "app",
        json!({"forProvider": {"specification": "S-2C-4G", "powerState": "RUNNING"}}),
    )
    .await;
    let c = env
        .wait_compute("app", T, "upsized and running", |c| {
            is_ready(c)
                && state(c).as_deref() == Some("RUNNING")
                && c.status
                    .as_ref()
                    .and_then(|s| s.at_provider.as_ref())
                    .and_then(|a| a.specification.as_deref())
                    == Some("S-2C-4G")
        })
        .await;
    assert!(has_condition(&c, "Synced", "True", None));

    let upsizes_before = env
        .sim
        .stats()
        .requests_by_route
        .iter()
        .filter(|(k, _)| k.contains("upsize"))
        .map(|(_, v)| v)
        .sum::<u64>();
    env.patch_spec("app", json!({"forProvider": {"specification": "S-1C-1G"}}))
        .await;
    let c = env
        .wait_compute("app", T, "Stalled", |c| {
            has_condition(c, "Stalled", "True", Some("DownsizeNotSupported"))
        })
        .await;
    assert!(has_condition(&c, "Synced", "False", None));
    let msg = common::condition(&c, "Stalled").unwrap().message;
    assert!(
        msg.contains("upsize"),
        "message should say what to do: {msg}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let upsizes_after = env
        .sim
        .stats()
        .requests_by_route
        .iter()
        .filter(|(k, _)| k.contains("upsize"))
        .map(|(_, v)| v)
        .sum::<u64>();
    assert_eq!(
        upsizes_before, upsizes_after,
        "a downsize must not reach the API"
    );

    // An immutable field: Stalled, no call.
    env.patch_spec(
        "app",
        json!({"forProvider": {"specification": "S-2C-4G", "image": "DEBIAN-12"}}),
    )
    .await;
    let c = env
        .wait_compute("app", T, "Stalled on image", |c| {
            has_condition(c, "Stalled", "True", Some("ImmutableFieldChanged"))
        })
        .await;
    assert!(
        common::condition(&c, "Stalled")
            .unwrap()
            .message
            .contains("image")
    );
    env.stop().await;
}

#[tokio::test]
async fn orphan_leaves_the_cloud_compute_and_adoption_takes_it_back() {
    let env = Env::start("orphan").await;
    env.create_compute(
        "keep",
        json!({}),
        json!({"deletionPolicy": "Orphan"}),
        json!({}),
    )
    .await;
    let c = env.wait_compute("keep", T, "Ready", is_ready).await;
    let id = c.status.unwrap().at_provider.unwrap().id;
    env.computes()
        .delete("keep", &Default::default())
        .await
        .unwrap();
    env.wait_gone("keep", T).await;
    assert_eq!(env.sim.computes().len(), 1, "Orphan must leave the compute");

    // Adopt it under a new object through the external-name annotation: no second compute.
    env.create_compute(
        "keep",
        json!({}),
        json!({}),
        json!({"stratus.dev/external-name": id}),
    )
    .await;
    let c = env.wait_compute("keep", T, "Ready", is_ready).await;
    assert_eq!(c.status.unwrap().at_provider.unwrap().id, id);
    assert_eq!(env.sim.computes().len(), 1);
    assert_eq!(
        env.sim
            .stats()
            .requests_by_route
            .get("POST /computes")
            .copied()
            .unwrap_or(0),
        1
    );
    // The adoption is announced once, as an event on the new object.
    let events: kube::Api<k8s_openapi::api::events::v1::Event> = env.ns.api();
    let adopted = || async {
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| {
                e.reason.as_deref() == Some("Adopted")
                    && e.regarding.as_ref().and_then(|r| r.uid.clone()) == c.metadata.uid
            })
            // A repeat would be folded into the same Event's series by the recorder.
            .map(|e| {
                let repeats = e.series.as_ref().map_or(0, |s| s.count);
                format!("{} (repeats: {repeats})", e.note.unwrap_or_default())
            })
            .collect::<Vec<_>>()
    };
    assert!(
        common::wait_for(T, || async { !adopted().await.is_empty() }).await,
        "no Adopted event"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let notes = adopted().await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains(&id)
            && notes[0].contains("external-name")
            && notes[0].ends_with("(repeats: 0)"),
        "{notes:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn observe_only_reports_without_acting_and_pause_stops_everything() {
    let env = Env::start("observe").await;
    let ids = env.sim.seed_computes(1, vec![]);
    let seeded = env
        .sim
        .computes()
        .into_iter()
        .find(|c| c.id == ids[0])
        .unwrap();
    env.create_compute(
        "seen",
        json!({"hostName": seeded.host_name, "image": seeded.image, "region": seeded.region,
               "specification": seeded.specification, "powerState": "STOPPED"}),
        json!({"managementPolicies": ["Observe"]}),
        json!({"stratus.dev/external-name": ids[0]}),
    )
    .await;
    let c = env
        .wait_compute("seen", T, "observed", |c| {
            c.status
                .as_ref()
                .and_then(|s| s.at_provider.as_ref())
                .is_some()
        })
        .await;
    assert_eq!(
        state(&c).as_deref(),
        Some("RUNNING"),
        "observe-only must not stop it"
    );
    assert!(has_condition(&c, "Synced", "False", Some("ReconcileError")));
    // The difference is reported, but nothing is in flight (kstatus: not "in progress").
    assert!(has_condition(&c, "Reconciling", "False", None));
    let posts = |env: &Env| {
        env.sim
            .stats()
            .requests_by_route
            .iter()
            .filter(|(k, _)| {
                k.starts_with("POST") || k.starts_with("PATCH") || k.starts_with("DELETE")
            })
            .map(|(_, v)| *v)
            .sum::<u64>()
    };
    assert_eq!(posts(&env), 0);

    // Observe-only without an id never creates.
    env.create_compute(
        "nothing",
        json!({}),
        json!({"managementPolicies": ["Observe"]}),
        json!({}),
    )
    .await;
    let c = env
        .wait_compute("nothing", T, "reported as not found", |c| {
            has_condition(c, "Ready", "False", Some("Unavailable"))
        })
        .await;
    let msg = condition(&c, "Ready").unwrap().message;
    assert!(msg.contains("stratus.dev/external-name"), "{msg}");
    assert_eq!(posts(&env), 0);

    // Pause: a spec change makes no call and the conditions say paused.
    env.create_compute("p", json!({}), json!({}), json!({}))
        .await;
    env.wait_compute("p", T, "Ready", is_ready).await;
    env.annotate("p", json!({"stratus.dev/paused": "true"}))
        .await;
    env.wait_compute("p", T, "paused", |c| {
        has_condition(c, "Synced", "False", Some("ReconcilePaused"))
    })
    .await;
    let before = posts(&env);
    env.patch_spec("p", json!({"forProvider": {"powerState": "STOPPED"}}))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        posts(&env),
        before,
        "a paused resource must not be acted on"
    );
    env.annotate("p", json!({"stratus.dev/paused": null})).await;
    let c = env
        .wait_compute("p", T, "stopped after unpause", |c| {
            is_ready(c) && state(c).as_deref() == Some("STOPPED")
        })
        .await;
    let id = c.status.unwrap().at_provider.unwrap().id;

    // Deleting a paused object deletes nothing (that would leak the compute if the object just
    // went): it waits, says so, and goes on once unpaused.
    env.annotate("p", json!({"stratus.dev/paused": "true"}))
        .await;
    env.wait_compute("p", T, "paused", |c| {
        has_condition(c, "Synced", "False", Some("ReconcilePaused"))
    })
    .await;
    env.computes()
        .delete("p", &Default::default())
        .await
        .unwrap();
    let c = env
        .wait_compute("p", T, "waiting to delete", |c| {
            has_condition(c, "Ready", "False", Some("Deleting"))
        })
        .await;
    let msg = condition(&c, "Ready").unwrap().message;
    assert!(msg.contains("stratus.dev/paused"), "{msg}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(env.computes().get_opt("p").await.unwrap().is_some());
    assert!(env.sim.computes().iter().any(|c| c.id == id));
    env.annotate("p", json!({"stratus.dev/paused": null})).await;
    env.wait_gone("p", T).await;
    assert!(!env.sim.computes().iter().any(|c| c.id == id));

    // Paused from birth, it never had a cloud resource: deleting it does not wait.
    env.create_compute(
        "never",
        json!({}),
        json!({}),
        json!({"stratus.dev/paused": "true"}),
    )
    .await;
    env.wait_compute("never", T, "paused", |c| {
        has_condition(c, "Synced", "False", Some("ReconcilePaused"))
    })
    .await;
    env.computes()
        .delete("never", &Default::default())
        .await
        .unwrap();
    env.wait_gone("never", T).await;
    env.stop().await;
}

#[tokio::test]
async fn missing_secret_and_bad_input_get_clear_conditions_then_recover() {
    let key = "late-key";
    let mut config = stratus::providers::strettch::sim::SimConfig::for_tests(&[key]);
    config.rate_limit = 2;
    let sim = stratus::providers::strettch::sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let ns = common::TestNamespace::new("secret").await;
    let pc = common::create_provider_config(&ns, &sim.base_url(), None).await;
    let mut operator = common::Operator::start(&ns.name, &[]);
    let api: kube::Api<stratus::providers::strettch::api::Compute> = ns.api();
    let obj: stratus::providers::strettch::api::Compute = serde_json::from_value(json!({
        "apiVersion": "strettch.stratus.dev/v1alpha1", "kind": "Compute", "metadata": {"name": "s"},
        "spec": {"providerConfigRef": {"name": pc}, "forProvider": {"hostName": "s", "image": "UBUNTU-24.04",
                 "region": "KGL-1", "specification": "S-1C-1G", "publicKeys": ["k"]}}
    }))
    .unwrap();
    api.create(&Default::default(), &obj).await.unwrap();
    let wait = |reason: &'static str| {
        let api = api.clone();
        async move {
            common::wait_for(T, || {
                let api = api.clone();
                async move {
                    api.get("s")
                        .await
                        .is_ok_and(|c| has_condition(&c, "Stalled", "True", Some(reason)))
                }
            })
            .await
        }
    };
    assert!(wait("SecretNotFound").await, "missing Secret not reported");
    let c = api.get("s").await.unwrap();
    let msg = common::condition(&c, "Stalled").unwrap().message;
    assert!(
        msg.contains("strettch-credentials") && msg.contains("apiKey"),
        "{msg}"
    );
    assert!(!msg.contains(key));

    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> = ns.api();
    secrets
        .create(
            &Default::default(),
            &serde_json::from_value(json!({"metadata": {"name": "strettch-credentials"}, "stringData": {"apiKey": key}})).unwrap(),
        )
        .await
        .unwrap();
    assert!(
        common::wait_for(Duration::from_secs(90), || {
            let api = api.clone();
            async move { api.get("s").await.is_ok_and(|c| is_ready(&c)) }
        })
        .await,
        "did not recover after the Secret appeared"
    );

    // Unknown region: caught against the offer, before any create.
    let mut bad = obj.clone();
    bad.metadata.name = Some("bad-region".into());
    bad.spec.for_provider.region = "MARS-1".into();
    api.create(&Default::default(), &bad).await.unwrap();
    assert!(
        common::wait_for(T, || {
            let api = api.clone();
            async move {
                api.get("bad-region")
                    .await
                    .is_ok_and(|c| has_condition(&c, "Stalled", "True", Some("NotOffered")))
            }
        })
        .await
    );
    // Invalid hostname: caught by the operator's own validation.
    let mut bad = obj.clone();
    bad.metadata.name = Some("bad-host".into());
    bad.spec.for_provider.host_name = "-nope-".into();
    api.create(&Default::default(), &bad).await.unwrap();
    assert!(
        common::wait_for(T, || {
            let api = api.clone();
            async move {
                api.get("bad-host")
                    .await
                    .is_ok_and(|c| has_condition(&c, "Stalled", "True", Some("InvalidSpec")))
            }
        })
        .await
    );
    // The event is published after the status is written: wait for it, do not list once.
    let events: kube::Api<k8s_openapi::api::events::v1::Event> = ns.api();
    assert!(
        common::wait_for(T, || {
            let events = events.clone();
            async move {
                events.list(&Default::default()).await.is_ok_and(|evs| {
                    evs.items.iter().any(|e| {
                        e.reason.as_deref() == Some("InvalidSpec")
                            && e.type_.as_deref() == Some("Warning")
                    })
                })
            }
        })
        .await,
        "no Warning event for the invalid spec"
    );
    assert_eq!(
        sim.computes().len(),
        1,
        "only the valid Compute may exist in the cloud"
    );
    // Nothing exists for the region typo, so the region can still be corrected in place (no
    // ImmutableFieldChanged); the corrected Compute is created.
    api.patch(
        "bad-region",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"spec": {"forProvider": {"region": "KGL-1"}}})),
    )
    .await
    .unwrap();
    assert!(
        common::wait_for(Duration::from_secs(90), || {
            let api = api.clone();
            async move { api.get("bad-region").await.is_ok_and(|c| is_ready(&c)) }
        })
        .await,
        "the Compute with its region corrected did not become Ready"
    );
    assert_eq!(sim.computes().len(), 2);
    operator.kill();
    ns.cleanup().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn converges_through_server_errors_and_latency() {
    let mut config = stratus::providers::strettch::sim::SimConfig::for_tests(&[]);
    config.faults.error_rate = 0.3;
    config.faults.latency_ms = 150;
    let env = Env::start_with("faults", config, &[]).await;
    for i in 0..3 {
        env.create_compute(&format!("f{i}"), json!({}), json!({}), json!({}))
            .await;
    }
    for i in 0..3 {
        env.wait_compute(
            &format!("f{i}"),
            Duration::from_secs(120),
            "Ready",
            is_ready,
        )
        .await;
    }
    assert_eq!(
        env.sim.computes().len(),
        3,
        "faults must not cause duplicates"
    );
    env.stop().await;
}

#[tokio::test]
async fn drift_outside_kubernetes_is_corrected_at_the_next_observation() {
    let env = Env::start("drift").await;
    env.create_compute(
        "d",
        json!({}),
        json!({}),
        json!({"stratus.dev/poll-interval": "5s"}),
    )
    .await;
    let c = env.wait_compute("d", T, "Ready", is_ready).await;
    let id = c.status.unwrap().at_provider.unwrap().id;
    // Someone stops it with the API directly.
    let client = stratus::providers::strettch::client::StrettchClient::new(
        &env.sim.base_url(),
        stratus::cloud::ApiKey::new(env.key.clone()),
        None,
    )
    .unwrap();
    client.stop_compute(&id).await.unwrap();
    // The next observation (1 s) sees it stopped and starts it again.
    let starts = |env: &Env| {
        env.sim
            .stats()
            .requests_by_route
            .iter()
            .filter(|(k, _)| k.ends_with("/start"))
            .map(|(_, v)| *v)
            .sum::<u64>()
    };
    assert!(
        common::wait_for(T, || {
            let n = starts(&env);
            async move { n >= 1 }
        })
        .await,
        "the drift was not corrected"
    );
    env.wait_compute("d", T, "started again", |c| {
        is_ready(c) && state(c).as_deref() == Some("RUNNING")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(starts(&env), 1, "exactly one start call corrects the drift");
    env.stop().await;
}

#[tokio::test]
async fn kubectl_wait_for_ready_works() {
    let kubectl = std::env::var("STRATUS_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let env = Env::start("wait").await;
    env.create_compute("w", json!({}), json!({}), json!({}))
        .await;
    let out = tokio::process::Command::new(&kubectl)
        .args([
            "wait",
            "--for=condition=Ready",
            "compute/w",
            "-n",
            &env.ns.name,
            "--timeout=90s",
        ])
        .env("KUBECONFIG", common::kubeconfig_path())
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "running {kubectl}: {e}; scripts/test puts kubectl on PATH (scripts/install-helm)"
            )
        });
    assert!(
        out.status.success(),
        "kubectl wait failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    env.stop().await;
}
