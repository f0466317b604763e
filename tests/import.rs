//! `stratus import` end to end: a sandbox populated directly (as a console or a script would),
//! the command run as a child process against the real API server, its output applied, and
//! the operator adopting every object (Ready) without a single create, update or delete.

mod common;

use std::time::Duration;

use common::{Operator, TestNamespace, wait_for};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};
use stratus::cloud::ApiKey;
use stratus::cloud::throttle::{Policy, Priority};

/// How long an imported object may take to become Ready.
const T: Duration = Duration::from_secs(90);

/// What one `stratus import` run printed.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The manifests of the YAML stream on stdout.
    fn docs(&self) -> Vec<Value> {
        docs(&self.stdout)
    }
}

fn docs(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// `stratus import ARGS` with the test cluster's kubeconfig. Asynchronous: the sandbox it
/// talks to runs in this test's runtime.
async fn import(args: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stratus"))
        .arg("import")
        .args(args)
        .args(["--kubeconfig", common::kubeconfig_path().to_str().unwrap()])
        .output()
        .await
        .expect("running stratus import");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn api(ns: &TestNamespace, doc: &Value) -> Api<DynamicObject> {
    let (group, version) = doc["apiVersion"].as_str().unwrap().split_once('/').unwrap();
    let kind = doc["kind"].as_str().unwrap();
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", kind.to_ascii_lowercase()));
    Api::namespaced_with(ns.client.clone(), &ns.name, &ar)
}

fn name_of(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap()
}

/// Creates every manifest, as `kubectl apply` of the output would.
async fn apply(ns: &TestNamespace, docs: &[Value]) {
    for doc in docs {
        let obj: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
        api(ns, doc)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("applying {doc}: {e}"));
    }
}

fn ready(o: &DynamicObject) -> bool {
    o.data["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Waits until every object of `docs` is Ready.
async fn wait_ready(ns: &TestNamespace, docs: &[Value]) {
    for doc in docs {
        let api = api(ns, doc);
        let name = name_of(doc).to_string();
        let ok = wait_for(T, || {
            let (api, name) = (api.clone(), name.clone());
            async move {
                api.get_opt(&name)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|o| ready(&o))
            }
        })
        .await;
        let last = api.get_opt(&name).await.ok().flatten();
        assert!(
            ok,
            "{} {name} did not become Ready: {}",
            doc["kind"],
            serde_json::to_string_pretty(&last.map(|o| o.data["status"].clone())).unwrap()
        );
    }
}

/// The routes a sandbox served that are not reads.
fn writes(routes: &std::collections::BTreeMap<String, u64>) -> Vec<String> {
    routes
        .keys()
        .filter(|r| !r.starts_with("GET "))
        .cloned()
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

mod strettch {
    use super::*;
    use stratus::providers::strettch::client::StrettchClient;
    use stratus::providers::strettch::model::{
        ComputeCreate, DomainCreate, RecordType, RecordWrite,
    };
    use stratus::providers::strettch::sim::wire::{ComputeState, DomainStatus};

    fn compute(host: &str, tags: &[&str]) -> ComputeCreate {
        ComputeCreate {
            host_name: host.into(),
            image: "UBUNTU-24.04".into(),
            region: "KGL-1".into(),
            specification: "S-1C-1G".into(),
            public_keys: vec!["ssh-ed25519 AAAAC3secretish ops@example".into()],
            with_public_ip: true,
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn record(name: &str, t: RecordType, value: &str) -> RecordWrite {
        RecordWrite {
            name: name.into(),
            record_type: t,
            value: value.into(),
            ttl: Some(300),
            priority: (t == RecordType::MX).then_some(10),
            weight: None,
            port: None,
            comment: None,
        }
    }

    #[tokio::test]
    async fn an_imported_strettch_account_is_adopted_without_a_single_write() {
        let mut env = common::Env::start("import-strettch").await;
        env.operator.kill();
        let outside = StrettchClient::new(
            &env.sim.base_url(),
            ApiKey::new(env.key.clone()),
            Some(100.0),
        )
        .unwrap();
        let mut ids = Vec::new();
        for (host, tags) in [
            ("web-1", &["team:web"][..]),
            ("WEB-1", &[]),
            ("legacy", &[]),
        ] {
            let c = outside
                .create_compute(&compute(host, tags), uuid::Uuid::new_v4())
                .await
                .unwrap();
            ids.push(c.id);
        }
        let zone = outside
            .create_domain(
                &DomainCreate {
                    domain: "example.com".into(),
                },
                uuid::Uuid::new_v4(),
            )
            .await
            .unwrap();
        assert!(
            env.sim
                .set_domain_status(&zone.id, Some(DomainStatus::Active))
        );
        for r in [
            record("www", RecordType::A, "192.0.2.1"),
            record("@", RecordType::MX, "mail.example.com"),
            record("_dmarc", RecordType::TXT, "v=DMARC1; p=none"),
        ] {
            outside
                .create_record(&zone.id, &r, uuid::Uuid::new_v4())
                .await
                .unwrap();
        }
        let records = env.sim.records(&zone.id).len();
        assert!(
            wait_for(T, || async {
                env.sim
                    .computes()
                    .iter()
                    .all(|c| c.state == ComputeState::Running)
            })
            .await,
            "the computes never ran"
        );
        // One compute is already managed by an object of the cluster.
        env.ns
            .create_managed::<stratus::providers::strettch::api::Compute>(
                "legacy-obj",
                json!({"annotations": {"stratus.dev/external-name": ids[2]}}),
                json!({"managementPolicies": ["Observe"], "forProvider": {
                    "hostName": "legacy", "image": "UBUNTU-24.04", "region": "KGL-1",
                    "specification": "S-1C-1G", "publicKeys": ["ssh-ed25519 AAAA x"]}}),
                &env.provider_config,
            )
            .await;

        let pc = env.provider_config.clone();
        let ns = env.ns.name.clone();
        let run = import(&["--provider-config", &pc, "-n", &ns]).await;
        assert!(run.ok, "{}", run.stderr);
        let all = run.docs();
        assert_eq!(of_kind(&all, "Compute").len(), 2, "{}", run.stdout);
        assert_eq!(of_kind(&all, "Domain").len(), 1);
        assert_eq!(of_kind(&all, "DnsRecord").len(), records);
        assert!(
            run.stderr.contains(&format!(
                "({}): skipped (already managed by {ns}/legacy-obj)",
                ids[2]
            )),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("publicKeys"), "{}", run.stderr);
        assert!(!run.stdout.contains(&env.key) && !run.stderr.contains(&env.key));
        assert!(!run.stdout.contains("AAAAC3secretish"));
        for d in &all {
            assert_eq!(d["spec"]["managementPolicies"], json!(["Observe"]), "{d}");
            assert_eq!(d["metadata"]["namespace"], ns.as_str());
            assert_eq!(d["spec"]["providerConfigRef"]["name"], pc.as_str());
        }
        // web-1 and WEB-1 derive the same name: both get an id suffix.
        let names: Vec<&str> = of_kind(&all, "Compute").into_iter().map(name_of).collect();
        assert!(names.iter().all(|n| n.starts_with("web-1-")), "{names:?}");
        for r in of_kind(&all, "DnsRecord") {
            assert_eq!(r["spec"]["forProvider"]["domainRef"]["name"], "example-com");
        }

        env.sim.reset_stats();
        apply(&env.ns, &all).await;
        env.operator = Operator::start(&ns, &[]);
        wait_ready(&env.ns, &all).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let routes = env.sim.stats().requests_by_route;
        assert!(writes(&routes).is_empty(), "{routes:?}");

        // Filters: records whose name matches, alone (their zone by id); another region.
        let only = import(&[
            "--provider-config",
            &pc,
            "-n",
            &ns,
            "--kind",
            "DNSRecords",
            "--name",
            "www.*",
        ])
        .await;
        assert!(only.ok, "{}", only.stderr);
        // Everything is managed now: skipped.
        assert!(only.docs().is_empty(), "{}", only.stdout);
        assert!(only.stderr.contains("www.example.com"), "{}", only.stderr);
        let elsewhere = import(&[
            "--provider-config",
            &pc,
            "-n",
            "elsewhere",
            "--kind",
            "compute",
            "--region",
            "NBO-1",
        ])
        .await;
        assert!(
            elsewhere.ok && elsewhere.docs().is_empty(),
            "{}",
            elsewhere.stderr
        );
        env.stop().await;
    }

    #[tokio::test]
    async fn filters_manage_and_output_dir_shape_what_is_written() {
        let env = common::Env::start("import-filters").await;
        let outside = StrettchClient::new(
            &env.sim.base_url(),
            ApiKey::new(env.key.clone()),
            Some(100.0),
        )
        .unwrap();
        let zone = outside
            .create_domain(
                &DomainCreate {
                    domain: "example.org".into(),
                },
                uuid::Uuid::new_v4(),
            )
            .await
            .unwrap();
        for name in ["www", "api"] {
            outside
                .create_record(
                    &zone.id,
                    &record(name, RecordType::A, "192.0.2.7"),
                    uuid::Uuid::new_v4(),
                )
                .await
                .unwrap();
        }
        outside
            .create_compute(&compute("batch", &[]), uuid::Uuid::new_v4())
            .await
            .unwrap();
        let pc = env.provider_config.clone();
        let ns = env.ns.name.clone();

        let only = import(&[
            "--provider-config",
            &pc,
            "-n",
            &ns,
            "--kind",
            "dnsrecord",
            "--name",
            "WWW.*",
        ])
        .await;
        assert!(only.ok, "{}", only.stderr);
        let docs = only.docs();
        assert_eq!(docs.len(), 1, "{}", only.stdout);
        assert_eq!(docs[0]["spec"]["forProvider"]["name"], "www");
        // Its zone is not in the output: named by id.
        assert_eq!(docs[0]["spec"]["forProvider"]["domainId"], zone.id.as_str());

        let region = import(&["--provider-config", &pc, "-n", &ns, "--region", "kgl-1"]).await;
        assert!(region.ok, "{}", region.stderr);
        assert_eq!(
            of_kind(&region.docs(), "Compute").len(),
            1,
            "{}\n{}",
            region.stdout,
            region.stderr
        );
        // Zones have no region: not filtered by it.
        assert_eq!(of_kind(&region.docs(), "Domain").len(), 1);
        let nowhere = import(&["--provider-config", &pc, "-n", &ns, "--region", "NBO-1"]).await;
        assert!(of_kind(&nowhere.docs(), "Compute").is_empty());

        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("imported");
        let managed = import(&[
            "--provider-config",
            &pc,
            "-n",
            &ns,
            "--manage",
            "--output-dir",
            out.to_str().unwrap(),
        ])
        .await;
        assert!(managed.ok, "{}", managed.stderr);
        assert!(managed.stdout.is_empty(), "{}", managed.stdout);
        let mut files: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert!(
            files.contains(&"compute-batch.yaml".to_string()),
            "{files:?}"
        );
        assert!(
            files.contains(&"domain-example-org.yaml".to_string()),
            "{files:?}"
        );
        assert!(
            files.contains(&"dnsrecord-www-example-org-a.yaml".to_string()),
            "{files:?}"
        );
        for f in &files {
            let text = std::fs::read_to_string(out.join(f)).unwrap();
            let doc = &docs_of(&text)[0];
            assert!(
                doc["spec"].get("managementPolicies").is_none(),
                "{f}: {text}"
            );
            assert!(!text.contains(&env.key));
        }

        // Errors: what is wrong, and a non-zero exit.
        let missing = import(&["--provider-config", "no-such-config", "-n", &ns]).await;
        assert!(!missing.ok);
        assert!(
            missing.stderr.contains("\"no-such-config\" not found"),
            "{}",
            missing.stderr
        );
        let wrong = import(&["--provider-config", &pc, "-n", &ns, "--kind", "database"]).await;
        assert!(!wrong.ok);
        assert!(
            wrong.stderr.contains("has no kind \"database\"")
                && wrong.stderr.contains("Compute, Domain, DnsRecord"),
            "{}",
            wrong.stderr
        );
        let secrets: Api<k8s_openapi::api::core::v1::Secret> = env.ns.api();
        secrets
            .delete("strettch-credentials", &Default::default())
            .await
            .unwrap();
        let no_secret = import(&["--provider-config", &pc, "-n", &ns]).await;
        assert!(!no_secret.ok);
        assert!(
            no_secret.stderr.contains("strettch-credentials")
                && no_secret.stderr.contains("not found"),
            "{}",
            no_secret.stderr
        );
        env.stop().await;
    }

    fn docs_of(text: &str) -> Vec<Value> {
        super::docs(text)
    }
}

mod vertra {
    use std::sync::Arc;

    use super::*;
    use common::vertra::{Env, zip};
    use stratus::providers::vertra::client::{AppCreate, AppSource, VertraClient};
    use stratus::providers::vertra::model::{DatabaseCreate, EnvWrite, WorkspaceWrite};

    #[tokio::test]
    async fn an_imported_vertra_account_is_adopted_without_a_single_write() {
        let mut env = Env::start("import-vertra").await;
        env.operator.kill();
        let outside = VertraClient::new(
            &env.sim.root_url(),
            ApiKey::new(env.key.clone()),
            Policy::new(Vec::new(), None),
        )
        .unwrap();
        let ws = outside
            .create_workspace(&WorkspaceWrite {
                name: Some("Team A".into()),
                description: Some("the A team".into()),
            })
            .await
            .unwrap();
        let app = outside
            .create_app(&AppCreate {
                name: "shop".into(),
                source: AppSource::Zip(Arc::from(zip("shop"))),
                memory_mb: 512,
                main_file: Some("index.js".into()),
                version: Some("recommended".into()),
                start_command: None,
                build_command: None,
                description: Some("the shop".into()),
                workspace_id: Some(ws.id.clone()),
                subdomain: Some("shop-front".into()),
                envs: vec![EnvWrite {
                    key: "API_TOKEN".into(),
                    value: "tok-very-secret-value-42".into(),
                    note: None,
                }],
            })
            .await
            .unwrap();
        let db = outside
            .create_database(&DatabaseCreate {
                name: "orders".into(),
                ram: 1024,
                engine: 1,
                description: None,
                workspace_id: None,
                snapshot_id: None,
            })
            .await
            .unwrap();
        assert!(
            wait_for(T, || async {
                outside
                    .app_status(&app.id, Priority::Urgent)
                    .await
                    .is_ok_and(|s| s.running)
            })
            .await,
            "the app never ran"
        );
        let password = env.sim.database_password(&db.id);

        let ns = env.ns.name.clone();
        let run = import(&["--provider-config", &ns, "-n", &ns]).await;
        assert!(run.ok, "{}", run.stderr);
        let all = run.docs();
        assert_eq!(all.len(), 3, "{}", run.stdout);
        let app_doc = of_kind(&all, "Application")[0];
        let fp = &app_doc["spec"]["forProvider"];
        assert_eq!(fp["workspaceRef"]["name"], "team-a");
        assert_eq!(fp["publish"]["enabled"], true);
        assert!(fp.get("env").is_none(), "{fp}");
        assert!(run.stderr.contains("source.snapshotRef"), "{}", run.stderr);
        for secret in [
            Some(env.key.clone()),
            password,
            Some("tok-very-secret-value-42".into()),
        ]
        .into_iter()
        .flatten()
        {
            assert!(!run.stdout.contains(&secret) && !run.stderr.contains(&secret));
        }

        let manage = import(&["--provider-config", &ns, "-n", "other", "--manage"]).await;
        assert!(manage.ok, "{}", manage.stderr);
        assert!(
            manage.stderr.contains("restarts it once"),
            "{}",
            manage.stderr
        );
        assert!(
            manage
                .docs()
                .iter()
                .all(|d| d["spec"].get("managementPolicies").is_none()),
            "{}",
            manage.stdout
        );
        env.sim.reset_stats();
        apply(&env.ns, &all).await;
        env.restart_operator();
        wait_ready(&env.ns, &all).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let routes = env.sim.stats().requests_by_route;
        assert!(writes(&routes).is_empty(), "{routes:?}");

        env.stop().await;
    }
}

mod cloudapi {
    use super::*;
    use common::cloudapi::{Env, SESSION_TOKEN, outside_project};
    use stratus::providers::cloudapi::model::DeploymentCreate;
    use stratus::providers::cloudapi::sim::Dialect;

    #[tokio::test]
    async fn an_imported_cloudapi_account_is_adopted_without_a_single_write() {
        adopted_without_a_write(Dialect::Cloudapi).await;
    }

    #[tokio::test]
    async fn an_imported_cloudplatform_account_is_adopted_without_a_single_write() {
        adopted_without_a_write(Dialect::Cloudplatform).await;
    }

    async fn adopted_without_a_write(dialect: Dialect) {
        let mut env = Env::start("import-cloudapi", dialect).await;
        env.operator.kill();
        let shop = outside_project(&env, "shop").await;
        let _empty = outside_project(&env, "empty").await;
        env.outside()
            .create_deployment(
                &DeploymentCreate {
                    project_id: shop.clone(),
                    commit: "v1".into(),
                },
                uuid::Uuid::new_v4(),
            )
            .await
            .unwrap();
        assert!(
            wait_for(T, || async {
                env.sim
                    .current_deployment(&shop)
                    .is_some_and(|d| d.commit == "v1")
            })
            .await,
            "v1 never went live"
        );

        let ns = env.ns.name.clone();
        let run = import(&["--provider-config", &ns, "-n", &ns]).await;
        assert!(run.ok, "{}", run.stderr);
        let all = run.docs();
        assert_eq!(of_kind(&all, "Project").len(), 2, "{}", run.stdout);
        let releases = of_kind(&all, "Release");
        assert_eq!(releases.len(), 1, "{}", run.stdout);
        let fp = &releases[0]["spec"]["forProvider"];
        assert_eq!(
            (fp["commit"].as_str(), fp["projectRef"]["name"].as_str()),
            (Some("v1"), Some("shop"))
        );
        assert!(run.stderr.contains("no live deployment"), "{}", run.stderr);
        for secret in [env.key.as_str(), SESSION_TOKEN] {
            assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
        }

        env.sim.reset_stats();
        apply(&env.ns, &all).await;
        env.restart_operator();
        wait_ready(&env.ns, &all).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let routes = env.sim.stats().requests_by_route;
        assert!(writes(&routes).is_empty(), "{routes:?}");

        let tokens = import(&["--provider-config", &ns, "-n", &ns, "--kind", "tokens"]).await;
        assert!(!tokens.ok);
        assert!(
            tokens.stderr.contains("Token cannot be imported"),
            "{}",
            tokens.stderr
        );
        env.stop().await;
    }
}
