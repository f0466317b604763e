//! Vertra Cloud end to end: the operator process against the real apiserver and the Vertra
//! sandbox (its own model of the API, never the client's types).

mod common;

use std::time::Duration;

use common::vertra::{Env, OPERATOR_ARGS, secret_text, serve, zip};
use common::{has_condition_of, is_ready_of, wait_object, wait_object_gone};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use stratus::providers::vertra::api::{Application, Database, Workspace};
use stratus::providers::vertra::code::sha256_hex;
use stratus::providers::vertra::sim;

const T: Duration = Duration::from_secs(90);

#[tokio::test]
async fn a_database_is_created_once_its_password_is_set_once_rotated_on_the_nonce_and_delete_removes_both()
 {
    let env = Env::start("vdb").await;
    env.apply::<Database>(
        "orders",
        json!({
            "forProvider": {"engine": "PostgreSQL", "name": "orders", "memoryMB": 1024},
            "writeConnectionSecretToRef": {"name": "orders-db"},
        }),
    )
    .await;
    let dbs: Api<Database> = env.ns.api();
    let db = wait_object(&dbs, "orders", T, "Ready", is_ready_of).await;
    let id = db
        .status
        .as_ref()
        .unwrap()
        .at_provider
        .as_ref()
        .unwrap()
        .id
        .clone();
    assert_eq!(env.sim.creates().databases, 1);
    let secrets: Api<Secret> = env.ns.api();
    let s = secrets.get("orders-db").await.unwrap();
    let first = secret_text(&s, "password");
    assert_eq!(Some(first.clone()), env.sim.database_password(&id));
    assert_eq!(secret_text(&s, "username"), "postgres");
    assert!(secret_text(&s, "uri").starts_with("postgresql://postgres:"));
    for key in ["host", "port", "tls.crt", "tls.key", "ca.crt"] {
        assert!(!secret_text(&s, key).is_empty(), "{key} is empty");
    }
    let shown = serde_json::to_string(&db).unwrap();
    assert!(!shown.contains(&first), "the password is in the object");

    // Settled: no second reset.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(env.sim.database_password(&id), Some(first.clone()));

    env.patch::<Database>(
        "orders",
        json!({"forProvider": {"credentials": {"rotationNonce": "1"}}}),
    )
    .await;
    let rotated = wait_object(&secrets, "orders-db", T, "rotated", |s| {
        secret_text(s, "password") != first
    })
    .await;
    assert_eq!(
        Some(secret_text(&rotated, "password")),
        env.sim.database_password(&id)
    );

    // Memory and power follow the spec.
    env.patch::<Database>(
        "orders",
        json!({"forProvider": {"memoryMB": 2048, "powerState": "Stopped"}}),
    )
    .await;
    wait_object(&dbs, "orders", T, "resized and stopped", |_| {
        env.sim.databases().iter().any(|d| {
            d.id == id
                && d.ram == 2048
                && d.status == stratus::providers::vertra::sim::wire::Status::Down
        })
    })
    .await;

    dbs.delete("orders", &Default::default()).await.unwrap();
    wait_object_gone(&dbs, "orders", T).await;
    assert!(
        env.sim.databases().is_empty(),
        "the database was left behind"
    );
    assert!(secrets.get_opt("orders-db").await.unwrap().is_none());
    assert_eq!(env.sim.creates().databases, 1);
    env.stop().await;
}

#[tokio::test]
async fn an_app_deploys_its_archive_takes_env_from_a_secret_and_redeploys_a_new_digest() {
    let env = Env::start("vapp").await;
    let (v1, v2) = (zip("v1"), zip("v2"));
    let base = serve(vec![("/v1.zip", v1.clone()), ("/v2.zip", v2.clone())]).await;
    let secrets: Api<Secret> = env.ns.api();
    let token: Secret = serde_json::from_value(json!({
        "metadata": {"name": "app-secrets"},
        "stringData": {"token": "tok-very-secret-1"},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &token)
        .await
        .unwrap();
    env.apply::<Application>(
        "web",
        json!({"forProvider": {
            "name": "web", "memoryMB": 512, "language": "javascript", "mainFile": "index.js",
            "env": [
                {"name": "MODE", "value": "prod"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "app-secrets", "key": "token"}}},
            ],
            "source": {"archive": {"url": format!("{base}/v1.zip"), "sha256": sha256_hex(&v1)}},
        }}),
    )
    .await;
    let apps: Api<Application> = env.ns.api();
    let app = wait_object(&apps, "web", T, "Ready", is_ready_of).await;
    let at = app.status.as_ref().unwrap().at_provider.clone().unwrap();
    assert_eq!(
        at.deployed_digest,
        Some(format!("sha256:{}", sha256_hex(&v1)))
    );
    assert!(at.running);
    assert_eq!(env.sim.creates().apps, 1);
    let shown = serde_json::to_string(&app).unwrap();
    assert!(
        !shown.contains("tok-very-secret"),
        "an env value is in the object"
    );

    // A new digest deploys; the app stays one app.
    env.patch::<Application>(
        "web",
        json!({"forProvider": {"source": {"archive": {"url": format!("{base}/v2.zip"), "sha256": sha256_hex(&v2)}}}}),
    )
    .await;
    let want = format!("sha256:{}", sha256_hex(&v2));
    wait_object(&apps, "web", T, "redeployed", |a| {
        is_ready_of(a)
            && a.status
                .as_ref()
                .and_then(|s| s.at_provider.as_ref())
                .and_then(|x| x.deployed_digest.clone())
                == Some(want.clone())
    })
    .await;
    assert_eq!(env.sim.creates().apps, 1);

    // A wrong digest is a clear answer, and nothing is uploaded.
    env.patch::<Application>(
        "web",
        json!({"forProvider": {"source": {"archive": {"url": format!("{base}/v1.zip"), "sha256": "0".repeat(64)}}}}),
    )
    .await;
    let stalled = wait_object(&apps, "web", T, "Stalled", |a| {
        has_condition_of(a, "Stalled", "True", None)
    })
    .await;
    let message = common::condition_of(&stalled, "Stalled").unwrap().message;
    assert!(message.contains("SHA-256"), "{message}");

    apps.delete("web", &Default::default()).await.unwrap();
    wait_object_gone(&apps, "web", T).await;
    assert!(env.sim.apps().is_empty(), "the app was left behind");
    env.stop().await;
}

#[tokio::test]
async fn a_workspace_needs_the_enterprise_plan_and_is_said_so() {
    let env = Env::start_with("vws", |c| c.plan = sim::Plan::Pro, OPERATOR_ARGS).await;
    env.apply::<Workspace>("team", json!({"forProvider": {"name": "team-a"}}))
        .await;
    let workspaces: Api<Workspace> = env.ns.api();
    let w = wait_object(&workspaces, "team", T, "Stalled", |w| {
        has_condition_of(w, "Stalled", "True", None)
    })
    .await;
    let message = common::condition_of(&w, "Stalled").unwrap().message;
    assert!(message.contains("PLAN_RESTRICTED_FEATURE"), "{message}");
    assert!(env.sim.workspaces().is_empty());
    env.stop().await;
}

#[tokio::test]
async fn an_orphaned_database_is_left_in_place_and_adopted_back_without_a_reset() {
    let env = Env::start("vorphan").await;
    env.apply::<Database>(
        "cache",
        json!({
            "deletionPolicy": "Orphan",
            "forProvider": {"engine": "Redis", "name": "cache", "memoryMB": 512},
            "writeConnectionSecretToRef": {"name": "cache-db"},
        }),
    )
    .await;
    let dbs: Api<Database> = env.ns.api();
    let db = wait_object(&dbs, "cache", T, "Ready", is_ready_of).await;
    let id = db.status.unwrap().at_provider.unwrap().id;
    let password = env.sim.database_password(&id);
    dbs.delete("cache", &Default::default()).await.unwrap();
    wait_object_gone(&dbs, "cache", T).await;
    assert_eq!(env.sim.databases().len(), 1, "Orphan leaves the database");

    // Adopted by a new object: no second database, no password reset on its own.
    let mut spec = json!({
        "forProvider": {"engine": "Redis", "name": "cache", "memoryMB": 512},
        "writeConnectionSecretToRef": {"name": "cache-db-2"},
        "providerConfigRef": {"name": env.ns.name},
    });
    spec["providerConfigRef"] = json!({"name": env.ns.name});
    let obj: Database = serde_json::from_value(json!({
        "apiVersion": "vertra.stratus.dev/v1alpha1", "kind": "Database",
        "metadata": {"name": "cache", "annotations": {"stratus.dev/external-name": id}},
        "spec": spec,
    }))
    .unwrap();
    dbs.create(&PostParams::default(), &obj).await.unwrap();
    wait_object(&dbs, "cache", T, "observed", |d| {
        d.status
            .as_ref()
            .and_then(|s| s.at_provider.as_ref())
            .is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        env.sim.database_password(&id),
        password,
        "an adoption reset the password"
    );
    assert_eq!(env.sim.creates().databases, 1);
    env.stop().await;
}
