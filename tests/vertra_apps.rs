//! Vertra Applications and Databases against the sandbox and the real apiserver, beyond the
//! basics of `tests/vertra.rs`: every mutable field, the power state, drift made in the
//! console, env vars set outside Kubernetes, Secrets re-read, bad input, credentials across
//! restarts, and a custom domain validated by records in a Strettch zone.

mod common;

use std::time::Duration;

use common::vertra::{Env, OPERATOR_ARGS, secret_text, serve, zip};
use common::{condition_of, has_condition_of, is_ready_of, wait_object};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use stratus::providers::vertra::api::{Application, Database};
use stratus::providers::vertra::code::sha256_hex;
use stratus::providers::vertra::sim::wire::Status;

const T: Duration = Duration::from_secs(90);

/// A call made in Vertra's console (straight to the API with the account's key).
async fn console(env: &Env, method: reqwest::Method, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .request(method, format!("{}/v1{path}", env.sim.root_url()))
        .bearer_auth(&env.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn env_keys(env: &Env, app: &str) -> Vec<String> {
    let envs = console(
        env,
        reqwest::Method::GET,
        &format!("/apps/{app}/envs"),
        Value::Null,
    )
    .await;
    let mut keys: Vec<String> = envs["response"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect();
    keys.sort();
    keys
}

async fn env_value(env: &Env, app: &str, key: &str) -> Option<String> {
    let envs = console(
        env,
        reqwest::Method::GET,
        &format!("/apps/{app}/envs"),
        Value::Null,
    )
    .await;
    envs["response"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == key)
        .map(|e| e["value"].as_str().unwrap().to_string())
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

/// An app from a served ZIP, with `extra` merged into forProvider.
async fn app_spec(extra: Value) -> Value {
    let code = zip("app");
    let base = serve(vec![("/app.zip", code.clone())]).await;
    let mut fp = json!({
        "name": "shop", "memoryMB": 256, "language": "javascript", "mainFile": "index.js",
        "source": {"archive": {"url": format!("{base}/app.zip"), "sha256": sha256_hex(&code)}},
    });
    common::merge(&mut fp, extra);
    json!({"forProvider": fp})
}

#[tokio::test]
async fn every_mutable_field_of_an_app_and_its_power_state_follow_the_spec() {
    let env = Env::start("vapp-fields").await;
    env.apply::<Application>("shop", app_spec(json!({"description": "first"})).await)
        .await;
    let apps: Api<Application> = env.ns.api();
    let id = app_id(&wait_object(&apps, "shop", T, "Ready", is_ready_of).await);

    env.patch::<Application>(
        "shop",
        json!({"forProvider": {
            "name": "shop-2", "description": "second", "memoryMB": 512, "mainFile": "main.js",
            "language": "typescript", "version": "20", "startCommand": "node main.js",
            "buildCommand": "npm run build",
        }}),
    )
    .await;
    wait_object(&apps, "shop", T, "every field applied", |_| {
        env.sim.app(&id).is_some_and(|a| {
            a.name == "shop-2"
                && a.description.as_deref() == Some("second")
                && a.ram == 512
                && a.main_file == "main.js"
                && a.language == "typescript"
                && a.version == "20"
                && a.start_command.as_deref() == Some("node main.js")
                && a.build_command.as_deref() == Some("npm run build")
        })
    })
    .await;
    wait_object(&apps, "shop", T, "Ready again", is_ready_of).await;

    env.patch::<Application>("shop", json!({"forProvider": {"powerState": "Stopped"}}))
        .await;
    let stopped = wait_object(&apps, "shop", T, "stopped", |a| {
        is_ready_of(a) && env.sim.app(&id).is_some_and(|x| x.status == Status::Down)
    })
    .await;
    assert!(!stopped.status.unwrap().at_provider.unwrap().running);
    env.patch::<Application>("shop", json!({"forProvider": {"powerState": "Running"}}))
        .await;
    wait_object(&apps, "shop", T, "started", |a| {
        is_ready_of(a) && env.sim.app(&id).is_some_and(|x| x.status == Status::Up)
    })
    .await;
    assert_eq!(env.sim.creates().apps, 1, "one app throughout");
    env.stop().await;
}

#[tokio::test]
async fn console_drift_is_corrected_and_env_vars_set_outside_kubernetes_are_left_alone() {
    let mut args = OPERATOR_ARGS.to_vec();
    args.extend(["--resync-interval", "5s"]);
    let env = Env::start_with("vapp-drift", |_| {}, &args).await;
    env.apply::<Application>(
        "shop",
        app_spec(json!({"env": [
            {"name": "MODE", "value": "prod"},
            {"name": "LEVEL", "value": "info"},
        ]}))
        .await,
    )
    .await;
    let apps: Api<Application> = env.ns.api();
    let id = app_id(&wait_object(&apps, "shop", T, "Ready", is_ready_of).await);

    // In the console: more memory, and a variable of someone else's.
    console(
        &env,
        reqwest::Method::PATCH,
        &format!("/apps/{id}/config"),
        json!({"ram": 1024}),
    )
    .await;
    console(
        &env,
        reqwest::Method::POST,
        &format!("/apps/{id}/envs"),
        json!({"key": "CONSOLE_FLAG", "value": "on"}),
    )
    .await;
    assert_eq!(env.sim.app(&id).unwrap().ram, 1024);
    wait_object(&apps, "shop", T, "memory corrected to the spec", |_| {
        env.sim.app(&id).is_some_and(|a| a.ram == 256)
    })
    .await;

    // The spec drops LEVEL: it goes; CONSOLE_FLAG, never written by the operator, stays.
    env.patch::<Application>(
        "shop",
        json!({"forProvider": {"env": [{"name": "MODE", "value": "prod"}]}}),
    )
    .await;
    let mut keys = Vec::new();
    for _ in 0..60 {
        keys = env_keys(&env, &id).await;
        if !keys.contains(&"LEVEL".to_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(keys, ["CONSOLE_FLAG", "MODE", "STRATUS_OWNER_UID"]);
    let recorded = wait_object(&apps, "shop", T, "Ready", is_ready_of).await;
    assert_eq!(
        recorded.status.unwrap().at_provider.unwrap().env_names,
        ["MODE"]
    );
    env.stop().await;
}

#[tokio::test]
async fn a_changed_secret_is_written_to_the_app_s_env_without_a_spec_change() {
    let env = Env::start("vapp-secret").await;
    env.secret("api", json!({"token": "first-token-value"}))
        .await;
    env.apply::<Application>(
        "shop",
        app_spec(json!({"env": [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
        ]}))
        .await,
    )
    .await;
    let apps: Api<Application> = env.ns.api();
    let id = app_id(&wait_object(&apps, "shop", T, "Ready", is_ready_of).await);
    assert_eq!(
        env_value(&env, &id, "TOKEN").await.as_deref(),
        Some("first-token-value")
    );
    env.secret("api", json!({"token": "second-token-value"}))
        .await;
    // Secrets cannot be watched with the operator's rights: re-read every 30 s.
    let mut value = None;
    for _ in 0..90 {
        value = env_value(&env, &id, "TOKEN").await;
        if value.as_deref() == Some("second-token-value") {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(value.as_deref(), Some("second-token-value"));
    let log = env.operator_log();
    assert!(!log.contains("first-token-value") && !log.contains("second-token-value"));
    env.stop().await;
}

/// Each bad input is a clear answer on its own object, sends nothing, and stops no other
/// object.
#[tokio::test]
async fn bad_input_stalls_only_its_own_object_with_a_message_and_creates_nothing() {
    let env = Env::start("vapp-bad").await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "port",
            json!({"env": [{"name": "PORT", "value": "80"}]}),
            "set by the platform",
        ),
        (
            "dup",
            json!({"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}),
            "listed twice",
        ),
        (
            "domain",
            json!({"customDomain": "www.example.com"}),
            "needs a published app",
        ),
        (
            "small",
            json!({"memoryMB": 256, "publish": {"enabled": true}}),
            "needs at least 512",
        ),
        (
            "plainhttp",
            json!({"source": {"archive": {"url": "http://example.com/app.zip", "sha256": "a".repeat(64)}}}),
            "https://",
        ),
    ];
    for (name, extra, _) in &cases {
        let mut spec = app_spec(extra.clone()).await;
        spec["forProvider"]["name"] = json!(name);
        env.apply::<Application>(name, spec).await;
    }
    // A Secret that does not exist: waited for, not an error.
    let mut spec = app_spec(json!({"env": [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "nowhere", "key": "token"}}},
    ]}))
    .await;
    spec["forProvider"]["name"] = json!("waits");
    env.apply::<Application>("waits", spec).await;
    // And a good one beside them.
    env.apply::<Application>("good", app_spec(json!({"name": "good"})).await)
        .await;

    let apps: Api<Application> = env.ns.api();
    wait_object(&apps, "good", T, "Ready", is_ready_of).await;
    for (name, _, says) in &cases {
        let a = wait_object(&apps, name, T, "Stalled", |a| {
            has_condition_of(a, "Stalled", "True", None)
        })
        .await;
        let message = condition_of(&a, "Stalled").unwrap().message;
        assert!(message.contains(says), "{name}: {message}");
    }
    let waiting = wait_object(&apps, "waits", T, "waiting", |a| {
        has_condition_of(a, "Ready", "False", None)
    })
    .await;
    let ready = condition_of(&waiting, "Ready").unwrap();
    assert!(ready.message.contains("nowhere"), "{ready:?}");
    assert!(has_condition_of(&waiting, "Stalled", "False", None));
    assert_eq!(env.sim.creates().apps, 1, "only the good app was created");
    env.stop().await;
}

#[tokio::test]
async fn a_key_without_a_needed_scope_stalls_naming_the_scope_to_add() {
    let env = Env::start("vapp-scope").await;
    env.sim
        .set_key_scopes(&env.key, Some("apps:read,account:read"))
        .unwrap();
    env.apply::<Database>(
        "db",
        json!({"forProvider": {"engine": "Redis", "name": "db", "memoryMB": 512}}),
    )
    .await;
    let dbs: Api<Database> = env.ns.api();
    let d = wait_object(&dbs, "db", T, "Stalled", |d| {
        has_condition_of(d, "Stalled", "True", None)
    })
    .await;
    let message = condition_of(&d, "Stalled").unwrap().message;
    assert!(message.contains("databases:write"), "{message}");
    assert!(env.sim.databases().is_empty());
    env.stop().await;
}

#[tokio::test]
async fn a_database_password_survives_operator_restarts_unchanged_and_is_never_logged() {
    let mut env = Env::start("vdb-restart").await;
    env.apply::<Database>(
        "orders",
        json!({
            "forProvider": {"engine": "MySQL", "name": "orders", "memoryMB": 1024},
            "writeConnectionSecretToRef": {"name": "orders-db"},
        }),
    )
    .await;
    let dbs: Api<Database> = env.ns.api();
    let id = wait_object(&dbs, "orders", T, "Ready", is_ready_of)
        .await
        .status
        .unwrap()
        .at_provider
        .unwrap()
        .id;
    let secrets: Api<Secret> = env.ns.api();
    let first = secrets.get("orders-db").await.unwrap();
    let password = secret_text(&first, "password");
    assert_eq!(env.sim.database_password(&id), Some(password.clone()));
    let mut logs = String::new();
    for _ in 0..2 {
        logs.push_str(&env.operator_log());
        env.restart_operator();
        // The new life settles the object again.
        tokio::time::sleep(Duration::from_secs(4)).await;
        wait_object(&dbs, "orders", T, "Ready", is_ready_of).await;
    }
    logs.push_str(&env.operator_log());
    let after = secrets.get("orders-db").await.unwrap();
    assert_eq!(secret_text(&after, "password"), password);
    assert_eq!(
        after.metadata.resource_version, first.metadata.resource_version,
        "rewritten"
    );
    assert_eq!(
        env.sim.database_password(&id),
        Some(password.clone()),
        "reset"
    );
    assert!(!logs.is_empty());
    assert!(
        !logs.contains(&password),
        "the password is in the operator's log"
    );
    env.stop().await;
}

/// One manifest: a published app with a custom domain, and the records Vertra needs for it
/// in a Strettch zone, their values taken from the app's status.
#[tokio::test]
async fn a_custom_domain_is_validated_by_records_in_a_strettch_zone_taking_their_values_from_the_app()
 {
    let strettch = common::Env::start("vapp-dns").await;
    // Vertra beside Strettch in the same namespace, served by the same operator.
    let key = format!("vc_live_{}", uuid::Uuid::new_v4().simple());
    let vertra = stratus::providers::vertra::sim::start(
        stratus::providers::vertra::sim::VertraSimConfig::for_tests(&[key.as_str()]),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let ns = &strettch.ns;
    let secrets: Api<Secret> = ns.api();
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "vertra-credentials"}, "stringData": {"apiKey": key},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let configs: Api<stratus::api::ProviderConfig> = Api::all(ns.client.clone());
    let vertra_config = format!("{}-vertra", ns.name);
    configs
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "stratus.dev/v1alpha1", "kind": "ProviderConfig",
                "metadata": {"name": vertra_config},
                "spec": {
                    "provider": "vertra", "endpoint": vertra.root_url(),
                    "credentials": {"secretRef": {"namespace": ns.name, "name": "vertra-credentials", "key": "apiKey"}},
                },
            }))
            .unwrap(),
        )
        .await
        .unwrap();

    let code = zip("site");
    let base = serve(vec![("/site.zip", code.clone())]).await;
    let apply = |kind: &str, name: &str, api_version: &str, spec: Value| json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec});
    let domains: Api<stratus::providers::strettch::api::Domain> = ns.api();
    domains
        .create(
            &PostParams::default(),
            &serde_json::from_value(apply(
                "Domain",
                "example-com",
                "strettch.stratus.dev/v1alpha1",
                json!({"providerConfigRef": {"name": strettch.provider_config}, "forProvider": {"domain": "example.com"}}),
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    let apps: Api<Application> = ns.api();
    apps.create(
        &PostParams::default(),
        &serde_json::from_value(apply(
            "Application",
            "site",
            "vertra.stratus.dev/v1alpha1",
            json!({
                "providerConfigRef": {"name": vertra_config},
                "forProvider": {
                    "name": "site", "memoryMB": 512, "language": "static", "mainFile": "index.js",
                    "publish": {"enabled": true, "subdomain": "site"},
                    "customDomain": "www.example.com",
                    "source": {"archive": {"url": format!("{base}/site.zip"), "sha256": sha256_hex(&code)}},
                },
            }),
        ))
        .unwrap(),
    )
    .await
    .unwrap();
    let records: Api<stratus::providers::strettch::api::DnsRecord> = ns.api();
    for (name, record_type, record_name) in [
        ("www-cname", "CNAME", "www"),
        ("www-txt", "TXT", "_vertra-challenge.www"),
    ] {
        records
            .create(
                &PostParams::default(),
                &serde_json::from_value(apply(
                    "DnsRecord",
                    name,
                    "strettch.stratus.dev/v1alpha1",
                    json!({
                        "providerConfigRef": {"name": strettch.provider_config},
                        "forProvider": {
                            "domainRef": {"name": "example-com"}, "type": record_type,
                            "name": record_name,
                            "valueFrom": {"applicationRef": {"name": "site", "type": record_type}},
                        },
                    }),
                ))
                .unwrap(),
            )
            .await
            .unwrap();
    }
    let site = wait_object(&apps, "site", T, "Ready, with the domain's records", |a| {
        is_ready_of(a)
            && a.status
                .as_ref()
                .and_then(|s| s.at_provider.as_ref())
                .is_some_and(|x| x.dns_records.len() == 2)
    })
    .await;
    let wanted = site.status.unwrap().at_provider.unwrap().dns_records;
    assert_eq!(wanted.len(), 2, "{wanted:?}");
    for (name, record_type) in [("www-cname", "CNAME"), ("www-txt", "TXT")] {
        let want = wanted
            .iter()
            .find(|r| r.record_type == record_type)
            .and_then(|r| r.value.clone())
            .expect("the app's status names the value");
        let r = wait_object(&records, name, T, "Ready", is_ready_of).await;
        let got = r
            .status
            .unwrap()
            .at_provider
            .unwrap()
            .value
            .unwrap_or_default();
        assert_eq!(
            got.trim_end_matches('.'),
            want.trim_end_matches('.'),
            "{name}"
        );
    }
    strettch.stop().await;
    vertra.shutdown().await;
}

/// `deploy/examples/vertra.yaml`, applied as a user would (pointed at this test's sandboxes
/// and namespace): the database, the app that waits for its Secret, and the records in a
/// Strettch zone all become Ready, and the app gets the database's URI.
#[tokio::test]
async fn the_vertra_example_converges_with_its_database_and_its_records_in_a_strettch_zone() {
    use kube::core::{ApiResource, DynamicObject};
    let strettch = common::Env::start("vexample").await;
    let key = "vertra-demo-key";
    let vertra = stratus::providers::vertra::sim::start(
        stratus::providers::vertra::sim::VertraSimConfig::for_tests(&[key]),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let ns = &strettch.ns;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/examples/vertra.yaml"
    ))
    .unwrap();
    // Everything the example names, renamed into this test's namespace and sandboxes.
    let text = text
        .replace("http://127.0.0.1:8081", &vertra.root_url())
        .replace(
            "namespace: stratus-system",
            &format!("namespace: {}", ns.name),
        )
        .replace("namespace: shop", &format!("namespace: {}", ns.name))
        .replace("name: vertra\n", &format!("name: {}-vertra\n", ns.name))
        .replace("{name: vertra}", &format!("{{name: {}-vertra}}", ns.name))
        .replace(
            "{name: default}",
            &format!("{{name: {}}}", strettch.provider_config),
        );
    let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|d: &Value| d["kind"] != "Namespace")
        .collect();
    let mut resources: std::collections::HashMap<String, ApiResource> = common::managed_resources()
        .into_iter()
        .map(|r| (r.kind.clone(), r))
        .collect();
    resources.insert("Secret".into(), ApiResource::erase::<Secret>(&()));
    resources.insert(
        "ProviderConfig".into(),
        ApiResource::erase::<stratus::api::ProviderConfig>(&()),
    );
    let mut kinds = Vec::new();
    for doc in docs {
        let kind = doc["kind"].as_str().unwrap().to_string();
        let obj: DynamicObject = serde_json::from_value(doc).unwrap();
        let ar = &resources[&kind];
        let api: Api<DynamicObject> = if kind == "ProviderConfig" {
            Api::all_with(ns.client.clone(), ar)
        } else {
            Api::namespaced_with(ns.client.clone(), &ns.name, ar)
        };
        api.create(&PostParams::default(), &obj).await.unwrap();
        kinds.push(kind);
    }
    assert_eq!(
        kinds,
        [
            "Secret",
            "ProviderConfig",
            "Database",
            "Application",
            "Domain",
            "DnsRecord",
            "DnsRecord"
        ]
    );

    let apps: Api<Application> = ns.api();
    let dbs: Api<Database> = ns.api();
    let records: Api<stratus::providers::strettch::api::DnsRecord> = ns.api();
    wait_object(
        &dbs,
        "orders",
        Duration::from_secs(180),
        "Ready",
        is_ready_of,
    )
    .await;
    let shop = wait_object(
        &apps,
        "shop",
        Duration::from_secs(180),
        "Ready, with its records",
        |a| {
            is_ready_of(a)
                && a.status
                    .as_ref()
                    .and_then(|s| s.at_provider.as_ref())
                    .is_some_and(|x| x.dns_records.len() == 2)
        },
    )
    .await;
    for name in ["www-cname", "www-txt"] {
        wait_object(
            &records,
            name,
            Duration::from_secs(180),
            "Ready",
            is_ready_of,
        )
        .await;
    }
    let id = app_id(&shop);
    let secrets: Api<Secret> = ns.api();
    let uri = secret_text(&secrets.get("orders-db").await.unwrap(), "uri");
    let url = {
        let envs = reqwest::Client::new()
            .get(format!("{}/v1/apps/{id}/envs", vertra.root_url()))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        envs["response"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == "DATABASE_URL")
            .map(|e| e["value"].as_str().unwrap().to_string())
    };
    assert_eq!(url.as_deref(), Some(uri.as_str()));
    strettch.stop().await;
    vertra.shutdown().await;
}

/// Flux's GitRepository, as far as the operator reads it (the apiserver of the tests has no
/// Flux): a CRD that keeps any field and has a status subresource.
async fn install_flux_git_repository_crd(client: &kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "gitrepositories.source.toolkit.fluxcd.io"},
        "spec": {
            "group": "source.toolkit.fluxcd.io",
            "names": {"kind": "GitRepository", "plural": "gitrepositories", "singular": "gitrepository", "listKind": "GitRepositoryList"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}},
            }],
        },
    }))
    .unwrap();
    match crds.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("installing the GitRepository CRD: {e}"),
    }
    let established = common::wait_for(Duration::from_secs(30), || {
        let crds = crds.clone();
        async move {
            crds.get("gitrepositories.source.toolkit.fluxcd.io")
                .await
                .ok()
                .and_then(|c| c.status)
                .and_then(|s| s.conditions)
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                })
        }
    })
    .await;
    assert!(established, "the GitRepository CRD was not established");
}

fn tar_gz(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, text.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// A repo Flux syncs deploys to Vertra without a script: each new artifact of the
/// GitRepository is repackaged as a ZIP and deployed, with its digest in the status.
#[tokio::test]
async fn a_new_artifact_of_a_flux_git_repository_deploys_the_app_again() {
    let env = Env::start("vapp-flux").await;
    install_flux_git_repository_crd(&env.ns.client).await;
    let filler = "//".repeat(80);
    let v1 = tar_gz(&[("index.js", &format!("console.log(1);\n{filler}"))]);
    let v2 = tar_gz(&[
        ("index.js", &format!("console.log(2);\n{filler}")),
        ("lib/util.js", "module.exports = 2;\n"),
    ]);
    let base = serve(vec![("/v1.tar.gz", v1.clone()), ("/v2.tar.gz", v2.clone())]).await;
    let repos: Api<kube::api::DynamicObject> = Api::namespaced_with(
        env.ns.client.clone(),
        &env.ns.name,
        &kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "source.toolkit.fluxcd.io",
            "v1",
            "GitRepository",
        )),
    );
    let repo: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "shop"},
        "spec": {"url": "https://example.com/shop.git", "interval": "1m"},
    }))
    .unwrap();
    repos.create(&PostParams::default(), &repo).await.unwrap();
    let publish = |file: &str, bytes: &[u8]| {
        json!({"status": {"artifact": {
            "url": format!("{base}/{file}"),
            "digest": format!("sha256:{}", sha256_hex(bytes)),
            "revision": format!("main@sha1:{}", &sha256_hex(bytes)[..40]),
        }}})
    };
    let status_patch = |body: Value| {
        let repos = repos.clone();
        async move {
            repos
                .patch_status(
                    "shop",
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(body),
                )
                .await
                .unwrap();
        }
    };
    // The app waits for the first artifact.
    let mut spec = app_spec(json!({})).await;
    spec["forProvider"]["source"] =
        json!({"fluxSourceRef": {"kind": "GitRepository", "name": "shop"}});
    env.apply::<Application>("shop", spec).await;
    let apps: Api<Application> = env.ns.api();
    let waiting = wait_object(&apps, "shop", T, "waiting for the source", |a| {
        has_condition_of(a, "Ready", "False", Some("WaitingForSource"))
    })
    .await;
    assert!(
        condition_of(&waiting, "Ready")
            .unwrap()
            .message
            .contains("no artifact")
    );
    assert_eq!(env.sim.creates().apps, 0);

    status_patch(publish("v1.tar.gz", &v1)).await;
    let want = format!("sha256:{}", sha256_hex(&v1));
    let a = wait_object(&apps, "shop", T, "deployed v1", |a| {
        is_ready_of(a)
            && a.status
                .as_ref()
                .and_then(|s| s.at_provider.as_ref())
                .and_then(|x| x.deployed_digest.clone())
                == Some(want.clone())
    })
    .await;
    let id = app_id(&a);

    // Flux fetched a new commit: no change to the Application, and within the recheck it is live.
    status_patch(publish("v2.tar.gz", &v2)).await;
    let want = format!("sha256:{}", sha256_hex(&v2));
    wait_object(&apps, "shop", T, "deployed v2", |a| {
        is_ready_of(a)
            && a.status
                .as_ref()
                .and_then(|s| s.at_provider.as_ref())
                .and_then(|x| x.deployed_digest.clone())
                == Some(want.clone())
    })
    .await;
    assert_eq!(env.sim.creates().apps, 1, "the same app, deployed again");
    assert!(env.sim.app(&id).is_some());
    env.stop().await;
}
