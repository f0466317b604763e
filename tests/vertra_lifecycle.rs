//! What the platform does to Vertra apps and databases, as the operator reports it: failed
//! builds, platform stops, safety snapshots that fail, the hourly deploy budget spent, Orphan
//! and adoption of an app, and a workspace frozen by a plan change.

mod common;

use std::time::Duration;

use common::vertra::{Env, OPERATOR_ARGS, serve, zip, zip_files};
use common::{condition_of, has_condition_of, is_ready_of, wait_object, wait_object_gone};
use kube::Api;
use serde_json::{Value, json};
use stratus::providers::vertra::api::{Application, Database, Workspace};
use stratus::providers::vertra::code::sha256_hex;
use stratus::providers::vertra::sim::wire::Status;
use stratus::providers::vertra::sim::{FAIL_BUILD, Plan};

const T: Duration = Duration::from_secs(90);

fn route_count(env: &Env, route: &str) -> u64 {
    env.sim
        .stats()
        .requests_by_route
        .get(route)
        .copied()
        .unwrap_or(0)
}

fn app_id(a: &Application) -> String {
    a.status
        .as_ref()
        .unwrap()
        .at_provider
        .as_ref()
        .unwrap()
        .id
        .clone()
}

/// An app named `name` deploying `code` (served here).
async fn app(env: &Env, name: &str, code: Vec<u8>, extra: Value) {
    let base = serve(vec![("/code.zip", code.clone())]).await;
    let mut fp = json!({
        "name": name, "memoryMB": 256, "language": "javascript", "mainFile": "index.js",
        "source": {"archive": {"url": format!("{base}/code.zip"), "sha256": sha256_hex(&code)}},
    });
    common::merge(&mut fp, extra);
    env.apply::<Application>(name, json!({"forProvider": fp}))
        .await;
}

#[tokio::test]
async fn a_failed_build_is_stalled_with_the_api_s_message_and_not_started_in_a_loop() {
    let env = Env::start("vlife-build").await;
    let filler = "//".repeat(80);
    let broken = zip_files(&[("index.js", filler.as_str()), (FAIL_BUILD, "x")]);
    app(&env, "broken", broken, json!({})).await;
    let apps: Api<Application> = env.ns.api();
    let stalled = wait_object(&apps, "broken", T, "Stalled", |a| {
        has_condition_of(a, "Stalled", "True", None)
    })
    .await;
    let message = condition_of(&stalled, "Stalled").unwrap().message;
    assert!(message.contains("build failed"), "{message}");
    // Over 40 s, the start is tried with a growing backoff (10 s, 20 s, ...), not every few
    // seconds.
    let before = route_count(&env, "POST /apps/{id}/start");
    tokio::time::sleep(Duration::from_secs(40)).await;
    let starts = route_count(&env, "POST /apps/{id}/start") - before;
    assert!(starts <= 3, "{starts} start calls in 40 s");
    assert_eq!(env.sim.creates().apps, 1);
    env.stop().await;
}

#[tokio::test]
async fn an_app_the_platform_stopped_is_reported_and_not_started_in_a_loop() {
    let env = Env::start("vlife-offline").await;
    app(&env, "shop", zip("shop"), json!({})).await;
    let apps: Api<Application> = env.ns.api();
    let id = app_id(&wait_object(&apps, "shop", T, "Ready", is_ready_of).await);
    assert!(env.sim.set_app_offline(&id, true));
    // A change makes the operator look now (the platform's stop shows at the next look).
    env.patch::<Application>("shop", json!({"forProvider": {"description": "look"}}))
        .await;
    // Seen in the listing (PlatformStopped), or answered to the restart the config change
    // asks for (InsufficientCredits): either way a reason, once.
    let stopped = wait_object(&apps, "shop", T, "stopped by the platform", |a| {
        has_condition_of(a, "Stalled", "True", Some("PlatformStopped"))
            || has_condition_of(a, "Stalled", "True", Some("InsufficientCredits"))
    })
    .await;
    assert!(
        condition_of(&stopped, "Stalled")
            .unwrap()
            .message
            .contains("credits"),
        "{stopped:?}"
    );
    let starts = || {
        route_count(&env, "POST /apps/{id}/start") + route_count(&env, "POST /apps/{id}/restart")
    };
    let before = starts();
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(
        starts() <= before + 1,
        "a platform stop was answered with starts in a loop: {}",
        starts() - before
    );
    env.stop().await;
}

#[tokio::test]
async fn a_database_delete_whose_safety_snapshot_fails_is_retried_and_says_so() {
    let env = Env::start("vlife-snapshot").await;
    env.apply::<Database>(
        "cache",
        json!({"forProvider": {"engine": "Redis", "name": "cache", "memoryMB": 512}}),
    )
    .await;
    let dbs: Api<Database> = env.ns.api();
    wait_object(&dbs, "cache", T, "Ready", is_ready_of).await;
    env.sim.set_delete_snapshots_failing(true);
    dbs.delete("cache", &Default::default()).await.unwrap();
    let failing = wait_object(&dbs, "cache", T, "said so", |d| {
        d.status.as_ref().is_some_and(|s| {
            s.managed
                .conditions
                .iter()
                .any(|c| c.message.contains("SNAPSHOT_FAILED") || c.reason == "SnapshotFailed")
        })
    })
    .await;
    assert!(failing.metadata.deletion_timestamp.is_some());
    assert_eq!(env.sim.databases().len(), 1, "nothing deleted yet");
    env.sim.set_delete_snapshots_failing(false);
    wait_object_gone(&dbs, "cache", Duration::from_secs(120)).await;
    assert!(env.sim.databases().is_empty());
    env.stop().await;
}

/// The account's deploys for the hour are spent: the next app waits for the budget (its
/// worker given back), while observation and another app's stop and start go on.
#[tokio::test]
async fn a_spent_deploy_budget_holds_new_deploys_but_not_another_app_s_stop_and_start() {
    let env = Env::start_configured(
        "vlife-deploys",
        |c| c.deploys_per_hour = Some(2),
        json!({"deploysPerHour": 3600}),
        OPERATOR_ARGS,
    )
    .await;
    let apps: Api<Application> = env.ns.api();
    for name in ["one", "two"] {
        app(&env, name, zip(name), json!({})).await;
        wait_object(&apps, name, T, "Ready", is_ready_of).await;
    }
    app(&env, "three", zip("three"), json!({})).await;
    let held = wait_object(&apps, "three", T, "held by the deploy budget", |a| {
        condition_of(a, "Ready").is_some_and(|c| c.reason == "RateLimited")
            || condition_of(a, "Reconciling").is_some_and(|c| c.reason == "RateLimited")
    })
    .await;
    assert!(held.metadata.annotations.is_some());
    assert_eq!(env.sim.creates().apps, 2);

    let one = app_id(&apps.get("one").await.unwrap());
    env.patch::<Application>("one", json!({"forProvider": {"powerState": "Stopped"}}))
        .await;
    wait_object(&apps, "one", T, "stopped", |a| {
        is_ready_of(a) && env.sim.app(&one).is_some_and(|x| x.status == Status::Down)
    })
    .await;
    env.patch::<Application>("one", json!({"forProvider": {"powerState": "Running"}}))
        .await;
    wait_object(&apps, "one", T, "started", |a| {
        is_ready_of(a) && env.sim.app(&one).is_some_and(|x| x.status == Status::Up)
    })
    .await;
    assert_eq!(env.sim.creates().apps, 2, "the held deploy stayed held");
    assert!(
        env.sim.stats().served_429 <= 2,
        "the operator kept knocking: {} 429s",
        env.sim.stats().served_429
    );
    env.stop().await;
}

#[tokio::test]
async fn an_orphaned_app_stays_and_is_adopted_by_a_new_object_without_a_second_create() {
    let env = Env::start("vlife-orphan").await;
    let code = zip("kept");
    app(&env, "kept", code.clone(), json!({})).await;
    env.patch::<Application>("kept", json!({})).await;
    let apps: Api<Application> = env.ns.api();
    apps.patch(
        "kept",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"spec": {"deletionPolicy": "Orphan"}})),
    )
    .await
    .unwrap();
    let id = app_id(&wait_object(&apps, "kept", T, "Ready", is_ready_of).await);
    apps.delete("kept", &Default::default()).await.unwrap();
    wait_object_gone(&apps, "kept", T).await;
    assert!(env.sim.app(&id).is_some(), "Orphan deleted the app");

    let base = serve(vec![("/code.zip", code.clone())]).await;
    env.apply_with::<Application>(
        "kept",
        json!({"annotations": {"stratus.dev/external-name": id}}),
        json!({"forProvider": {
            "name": "kept", "memoryMB": 256, "language": "javascript", "mainFile": "index.js",
            "source": {"archive": {"url": format!("{base}/code.zip"), "sha256": sha256_hex(&code)}},
        }}),
    )
    .await;
    let adopted = wait_object(&apps, "kept", T, "Ready", is_ready_of).await;
    assert_eq!(app_id(&adopted), id);
    assert_eq!(env.sim.creates().apps, 1, "adoption created an app");
    env.stop().await;
}

#[tokio::test]
async fn a_workspace_frozen_by_a_plan_change_is_reported_not_fought() {
    let env = Env::start("vlife-frozen").await;
    env.apply::<Workspace>("team", json!({"forProvider": {"name": "team-f"}}))
        .await;
    let workspaces: Api<Workspace> = env.ns.api();
    wait_object(&workspaces, "team", T, "Ready", is_ready_of).await;
    env.sim.set_plan(Plan::Pro);
    env.patch::<Workspace>("team", json!({"forProvider": {"description": "after"}}))
        .await;
    // Known frozen from the listing (Frozen), or told by the API when the change is tried
    // (PlanRestrictedFeature): a reason that says to change the plan.
    let frozen = wait_object(&workspaces, "team", T, "frozen", |w| {
        has_condition_of(w, "Stalled", "True", Some("Frozen"))
            || has_condition_of(w, "Stalled", "True", Some("PlanRestrictedFeature"))
    })
    .await;
    let message = condition_of(&frozen, "Stalled").unwrap().message;
    assert!(message.contains("Enterprise"), "{message}");
    let puts = || route_count(&env, "PUT /workspaces/{id}");
    let before = puts();
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(
        puts() <= before + 2,
        "updates in a loop: {}",
        puts() - before
    );
    assert_eq!(env.sim.workspaces().len(), 1);
    env.stop().await;
}
