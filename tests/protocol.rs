//! The create/delete protocol against the sandbox and a real apiserver: what happens after an
//! ambiguous create, what the operator refuses to adopt or re-create, what keeps a finalizer,
//! and what one object's bad annotation may (not) do to the others.

mod common;

use std::time::Duration;

use common::{Env, has_condition, is_ready};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use stratus::providers::strettch::api::Domain;
use stratus::providers::strettch::sim::{self, Faults, SimConfig};

const T: Duration = Duration::from_secs(60);

fn posts(env: &Env, route: &str) -> u64 {
    env.sim
        .stats()
        .requests_by_route
        .get(route)
        .copied()
        .unwrap_or(0)
}

fn stalled_with(c: &stratus::providers::strettch::api::Compute, reason: &str) -> bool {
    has_condition(c, "Stalled", "True", Some(reason))
}

#[tokio::test]
async fn a_poll_interval_out_of_range_stalls_only_that_object() {
    let env = Env::start("poll-bad").await;
    env.create_compute(
        "bad",
        json!({}),
        json!({}),
        json!({"stratus.dev/poll-interval": "100000000000000000000s"}),
    )
    .await;
    let bad = env
        .wait_compute("bad", T, "Stalled (InvalidSpec)", |c| {
            stalled_with(c, "InvalidSpec")
        })
        .await;
    let msg = common::condition(&bad, "Stalled").unwrap().message;
    assert!(msg.contains("stratus.dev/poll-interval"), "{msg}");
    assert_eq!(posts(&env, "POST /computes"), 0, "nothing created for it");
    // The controller lives on: another object is created, and the bad one can still be fixed
    // and deleted (its finalizer is served).
    env.create_compute("good", json!({}), json!({}), json!({}))
        .await;
    env.wait_compute("good", T, "Ready", is_ready).await;
    env.annotate("bad", json!({"stratus.dev/create-attempt": "4294967295"}))
        .await;
    env.wait_compute("bad", T, "Stalled on the attempt counter", |c| {
        common::condition(c, "Stalled").is_some_and(|s| s.message.contains("create-attempt"))
            || common::condition(c, "Stalled").is_some_and(|s| s.message.contains("poll-interval"))
    })
    .await;
    env.annotate(
        "bad",
        json!({"stratus.dev/poll-interval": "30s", "stratus.dev/create-attempt": null}),
    )
    .await;
    env.wait_compute("bad", T, "Ready once fixed", is_ready)
        .await;
    env.computes()
        .delete("bad", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_gone("bad", T).await;
    env.stop().await;
}

#[tokio::test]
async fn an_external_name_the_cloud_does_not_know_stalls_and_creates_nothing() {
    let env = Env::start("ext-typo").await;
    env.create_compute(
        "typo",
        json!({}),
        json!({}),
        json!({"stratus.dev/external-name": "0b6f3c1e-0000-4000-8000-00000000dead"}),
    )
    .await;
    let c = env
        .wait_compute("typo", T, "Stalled (ExternalNameNotFound)", |c| {
            stalled_with(c, "ExternalNameNotFound") && !is_ready(c)
        })
        .await;
    assert!(
        common::condition(&c, "Stalled")
            .unwrap()
            .message
            .contains("0b6f3c1e-0000-4000-8000-00000000dead")
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(posts(&env, "POST /computes"), 0, "no create for a typo");
    assert!(env.sim.computes().is_empty());
    env.stop().await;
}

#[tokio::test]
async fn a_second_object_naming_a_managed_id_is_already_managed() {
    let env = Env::start("two-owners").await;
    env.create_compute("first", json!({}), json!({}), json!({}))
        .await;
    let first = env.wait_compute("first", T, "Ready", is_ready).await;
    let id = first.status.unwrap().at_provider.unwrap().id;
    env.create_compute(
        "second",
        json!({"hostName": "first"}),
        json!({}),
        json!({"stratus.dev/external-name": id}),
    )
    .await;
    let second = env
        .wait_compute("second", T, "Stalled (AlreadyManaged)", |c| {
            stalled_with(c, "AlreadyManaged")
        })
        .await;
    let msg = common::condition(&second, "Stalled").unwrap().message;
    assert!(msg.contains("first"), "names the other object: {msg}");
    // Deleting the second object must not delete what the first manages.
    env.computes()
        .delete("second", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_gone("second", T).await;
    assert_eq!(env.sim.computes().len(), 1);
    env.wait_compute("first", T, "still Ready", is_ready).await;
    env.stop().await;
}

/// The answer of the create is lost after the cloud applied it, the cloud forgets idempotency
/// keys at once, and the spec changes before the operator knows: one compute, found (not made
/// twice), and the change applied to it as an update.
#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_and_a_change_meanwhile_is_an_update() {
    let mut config = SimConfig::for_tests(&[]);
    config.idempotency_ttl = Duration::ZERO;
    let env = Env::start_with("lost-answer", config, &[]).await;
    env.sim.set_faults(Faults {
        drop_after_write_rate: 1.0,
        ..Faults::default()
    });
    env.create_compute("lost", json!({}), json!({}), json!({}))
        .await;
    assert!(
        common::wait_for(T, || {
            let n = env.sim.computes().len();
            async move { n >= 1 }
        })
        .await,
        "the create reached the cloud"
    );
    env.wait_compute("lost", T, "pending with an unknown outcome", |c| {
        c.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("stratus.dev/create-pending"))
    })
    .await;
    // The user changes the spec while the create is unresolved.
    env.patch_spec("lost", json!({"forProvider": {"powerState": "STOPPED"}}))
        .await;
    env.sim.set_faults(Faults::default());
    env.wait_compute("lost", T, "Ready and STOPPED", |c| {
        is_ready(c)
            && c.status
                .as_ref()
                .and_then(|s| s.at_provider.as_ref())
                .and_then(|a| a.state.as_deref())
                == Some("STOPPED")
    })
    .await;
    let computes = env.sim.computes();
    assert_eq!(computes.len(), 1, "never a second compute: {computes:?}");
    env.stop().await;
}

#[tokio::test]
async fn a_zone_that_existed_before_is_not_adopted_nor_deleted_with_the_domain() {
    let env = Env::start_with(
        "old-zone",
        SimConfig::for_tests(&[]),
        &["--create-settle", "3s"],
    )
    .await;
    // Made in the console, some time before the object's create started.
    let console = stratus::providers::strettch::client::StrettchClient::new(
        &env.sim.base_url(),
        stratus::cloud::ApiKey::new(env.key.clone()),
        None,
    )
    .unwrap();
    let zone = console
        .create_domain(
            &stratus::providers::strettch::model::DomainCreate {
                domain: "preexisting.example".into(),
            },
            uuid::Uuid::new_v4(),
        )
        .await
        .unwrap();
    tokio::time::sleep(stratus::engine::reconciler::CLOCK_SKEW + Duration::from_secs(2)).await;
    // The object as a crash left it: a create marked pending, its answer never recorded.
    let pending = jiff::Timestamp::now().to_string();
    let domains: kube::Api<Domain> = env.ns.api();
    let obj: Domain = serde_json::from_value(json!({
        "apiVersion": "strettch.stratus.dev/v1alpha1", "kind": "Domain",
        "metadata": {"name": "old", "annotations": {
            "stratus.dev/create-pending": pending,
            "stratus.dev/create-request": "{\"domain\":\"preexisting.example\"}",
        }},
        "spec": {"providerConfigRef": {"name": env.provider_config}, "forProvider": {"domain": "preexisting.example"}},
    }))
    .unwrap();
    domains.create(&PostParams::default(), &obj).await.unwrap();
    let stalled = common::wait_object(&domains, "old", T, "Stalled (Conflict)", |d: &Domain| {
        common::has_condition_of(d, "Stalled", "True", Some("Conflict"))
    })
    .await;
    let msg = common::condition_of(&stalled, "Stalled").unwrap().message;
    assert!(msg.contains(&zone.id), "names the zone: {msg}");
    assert!(
        stalled
            .metadata
            .annotations
            .as_ref()
            .is_none_or(|a| !a.contains_key("stratus.dev/external-name")),
        "not adopted"
    );
    domains
        .delete("old", &DeleteParams::default())
        .await
        .unwrap();
    common::wait_object_gone(&domains, "old", T).await;
    assert!(
        env.sim.domains().iter().any(|d| d.id == zone.id),
        "the console's zone survives the Domain's deletion"
    );
    env.stop().await;
}

#[tokio::test]
async fn deletion_keeps_the_finalizer_while_a_pending_create_may_still_appear() {
    let env = Env::start_with(
        "settle",
        SimConfig::for_tests(&[]),
        &["--create-settle", "25s"],
    )
    .await;
    let request = json!({
        "hostName": "p", "image": "UBUNTU-24.04", "region": "KGL-1", "specification": "S-1C-1G",
        "publicKeys": ["ssh-ed25519 AAAA ops@example"], "withPublicIp": true, "tags": []
    });
    // Observe and Delete only: the operator never sends the create itself here, so what the
    // deletion sees is only what the (simulated) earlier attempt left.
    let pending = jiff::Timestamp::now();
    env.create_compute(
        "p",
        json!({}),
        json!({"managementPolicies": ["Observe", "Delete"]}),
        json!({
            "stratus.dev/create-pending": pending.to_string(),
            "stratus.dev/create-request": request.to_string(),
        }),
    )
    .await;
    env.wait_compute("p", T, "observed once", |c| {
        c.status
            .as_ref()
            .is_some_and(|s| !s.managed.conditions.is_empty())
    })
    .await;
    env.computes()
        .delete("p", &DeleteParams::default())
        .await
        .unwrap();
    let waiting = env
        .wait_compute("p", T, "kept while the create may appear", |c| {
            c.metadata.deletion_timestamp.is_some()
                && common::condition(c, "Reconciling").is_some_and(|s| s.reason == "CreatePending")
        })
        .await;
    assert!(
        waiting
            .metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| !f.is_empty())
    );
    // Once the window has passed with nothing found, it goes.
    env.wait_gone("p", T).await;
    let waited = jiff::Timestamp::now().duration_since(pending);
    assert!(
        waited >= jiff::SignedDuration::from_secs(25),
        "kept for the whole window, not {waited:?}"
    );
    assert_eq!(posts(&env, "POST /computes"), 0);
    env.stop().await;
}

#[tokio::test]
async fn a_resource_gone_after_the_account_changed_is_not_created_again() {
    let env = Env::start("account").await;
    env.create_compute("acct", json!({}), json!({}), json!({}))
        .await;
    env.wait_compute("acct", T, "Ready", is_ready).await;
    // The ProviderConfig now points at another cloud (same key, other endpoint).
    let mut other_config = SimConfig::for_tests(&[]);
    other_config.api_keys = vec![env.key.clone()];
    let other = sim::start(other_config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let pcs: kube::Api<stratus::api::ProviderConfig> = kube::Api::all(env.ns.client.clone());
    pcs.patch(
        &env.provider_config,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"endpoint": other.base_url()}})),
    )
    .await
    .unwrap();
    env.annotate("acct", json!({"stratus.dev/poll-interval": "5s"}))
        .await;
    let c = env
        .wait_compute("acct", T, "Stalled (ExternalNameNotFound)", |c| {
            stalled_with(c, "ExternalNameNotFound")
        })
        .await;
    let msg = common::condition(&c, "Stalled").unwrap().message;
    assert!(msg.contains("another endpoint or API key"), "{msg}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        other.computes().is_empty(),
        "nothing created in the other account"
    );
    other.shutdown().await;
    env.stop().await;
}

/// A reconcile handed a copy older than the operator's own last write (a cache behind its
/// writes) must neither send a create the newer version already recorded nor erase what the
/// newer status holds: every write carries the version read, and a stale one is refused.
#[tokio::test]
async fn a_reconcile_of_a_stale_copy_creates_nothing_and_erases_nothing() {
    use std::sync::Arc;
    use stratus::engine::reconciler::{self, Context, Error, Settings};
    // The sandbox forgets idempotency keys at once: a re-sent create would be a duplicate.
    let mut config = SimConfig::for_tests(&[]);
    config.idempotency_ttl = Duration::ZERO;
    let key = format!("key-{}", uuid::Uuid::new_v4().simple());
    config.api_keys = vec![key.clone()];
    let sim = sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let ns = common::TestNamespace::new("stale").await;
    let pc = common::provider_config(&ns, &sim.base_url(), &key, None).await;
    let computes: kube::Api<stratus::providers::strettch::api::Compute> = ns.api();
    let obj: stratus::providers::strettch::api::Compute = serde_json::from_value(json!({
        "apiVersion": "strettch.stratus.dev/v1alpha1", "kind": "Compute",
        "metadata": {"name": "stale"},
        "spec": {"providerConfigRef": {"name": pc}, "forProvider": {
            "hostName": "stale", "image": "UBUNTU-24.04", "region": "KGL-1",
            "specification": "S-1C-1G", "publicKeys": ["ssh-ed25519 AAAA ops@example"],
            "withPublicIp": true}},
    }))
    .unwrap();
    let first = computes.create(&PostParams::default(), &obj).await.unwrap();
    let ctx = Arc::new(Context {
        kube: ns.client.clone(),
        adapter: stratus::providers::strettch::compute::ComputeAdapter,
        providers: Arc::new(stratus::engine::Providers::new(ns.client.clone())),
        events: Arc::new(stratus::engine::events::Events::new(
            ns.client.clone(),
            kube::runtime::events::Reporter {
                controller: "stratus-test".into(),
                instance: None,
            },
        )),
        backoffs: Default::default(),
        settings: Settings::default(),
        peers: Default::default(),
        unwritten: Default::default(),
    });
    // Reconcile fresh copies until the create is recorded in annotations and status.
    let mut recorded = None;
    for _ in 0..20 {
        let fresh = computes.get("stale").await.unwrap();
        let through = fresh
            .status
            .as_ref()
            .and_then(|s| s.managed.created_through.clone());
        if through.is_some() {
            recorded = Some(fresh);
            break;
        }
        reconciler::reconcile(Arc::new(fresh), ctx.clone())
            .await
            .expect("a fresh copy reconciles");
    }
    let recorded = recorded.expect("the create was recorded within 20 reconciles");
    assert_eq!(sim.computes().len(), 1);

    // A copy from before the create: the finalizer, but no pending marker and no id.
    let mut before = first.clone();
    before.metadata.finalizers = recorded.metadata.finalizers.clone();
    let stale = reconciler::reconcile(Arc::new(before), ctx.clone()).await;
    assert!(matches!(stale, Err(Error::Stale)), "{stale:?}");
    // A copy from between recording the id and writing the status.
    let mut between = recorded.clone();
    between.status = None;
    between.metadata.resource_version = first.metadata.resource_version.clone();
    let stale = reconciler::reconcile(Arc::new(between), ctx.clone()).await;
    assert!(matches!(stale, Err(Error::Stale)), "{stale:?}");

    assert_eq!(sim.computes().len(), 1, "no second compute");
    assert_eq!(
        sim.stats()
            .requests_by_route
            .get("POST /computes")
            .copied()
            .unwrap_or(0),
        1
    );
    let now = computes.get("stale").await.unwrap();
    assert!(
        now.status
            .as_ref()
            .and_then(|s| s.managed.created_through.as_ref())
            .is_some(),
        "status.createdThrough survives"
    );
    common::strip_all_finalizers(&ns).await;
    ns.cleanup().await;
    sim.shutdown().await;
}
