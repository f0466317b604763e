//! Disaster recovery from Git (docs/operations.md): the cluster loses every stratus object but
//! the cloud keeps its resources; re-applying the manifests from Git — spec plus the
//! `stratus.dev/external-name` the operator wrote — into the empty namespace adopts every
//! resource: nothing is created twice, nothing is written, and every object turns Ready.
//! One test per provider, each against its sandbox and the real apiserver.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestNamespace, wait_for};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use kube::core::{ApiResource, DynamicObject};
use serde_json::{Value, json};
use stratus::api::common::EXTERNAL_NAME;

const T: Duration = Duration::from_secs(90);

use common::managed_resources as resources;

fn dynamic(ns: &TestNamespace, r: &ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(ns.client.clone(), &ns.name, r)
}

/// What Git holds for each object of the namespace once its id was committed: kind, name, the
/// external-name annotation and the spec — nothing the operator keeps in status or elsewhere.
async fn manifests_as_in_git(ns: &TestNamespace) -> Vec<(ApiResource, Value)> {
    let mut out = Vec::new();
    for r in resources() {
        for o in dynamic(ns, &r).list(&Default::default()).await.unwrap() {
            let id = o
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(EXTERNAL_NAME))
                .unwrap_or_else(|| panic!("{} {:?} has no external-name", r.kind, o.metadata.name))
                .clone();
            out.push((
                r.clone(),
                json!({
                    "apiVersion": r.api_version, "kind": r.kind,
                    "metadata": {"name": o.metadata.name, "annotations": {EXTERNAL_NAME: id}},
                    "spec": o.data["spec"],
                }),
            ));
        }
    }
    out
}

/// The cluster loses the objects (the operator is stopped): finalizers stripped, every object
/// deleted. The cloud is not touched.
async fn lose_every_object(ns: &TestNamespace) {
    common::strip_all_finalizers(ns).await;
    for r in resources() {
        let api = dynamic(ns, &r);
        let _ = api
            .delete_collection(&DeleteParams::default(), &Default::default())
            .await;
        let gone = wait_for(T, || {
            let api = api.clone();
            async move {
                api.list(&Default::default())
                    .await
                    .is_ok_and(|l| l.items.is_empty())
            }
        })
        .await;
        assert!(gone, "{} objects were not deleted", r.kind);
    }
}

/// The cluster loses every object; `reset` runs (counting starts there); Git brings the
/// manifests back.
async fn lose_and_reapply(
    ns: &TestNamespace,
    manifests: &[(ApiResource, Value)],
    reset: impl FnOnce(),
) {
    lose_every_object(ns).await;
    reset();
    apply_from_git(ns, manifests).await;
}

async fn apply_from_git(ns: &TestNamespace, manifests: &[(ApiResource, Value)]) {
    for (r, m) in manifests {
        let obj: DynamicObject = serde_json::from_value(m.clone()).unwrap();
        dynamic(ns, r)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("re-applying {m}: {e}"));
    }
}

fn has_true(o: &DynamicObject, type_: &str) -> bool {
    o.data["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    })
}

/// Ready for its generation.
fn is_ready(o: &DynamicObject) -> bool {
    o.data["status"]["observedGeneration"].as_i64() == o.metadata.generation && has_true(o, "Ready")
}

/// Ready and Synced for its generation: nothing is left to write, nor held back.
fn is_settled(o: &DynamicObject) -> bool {
    is_ready(o) && has_true(o, "Synced")
}

/// Waits until every object re-applied is Ready and Synced for its generation, then a few
/// seconds more (a write held back would show by then); panics with those that are not.
async fn wait_all_ready(ns: &TestNamespace, manifests: &[(ApiResource, Value)]) {
    let pending = || async {
        let mut pending = Vec::new();
        for (r, m) in manifests {
            let name = m["metadata"]["name"].as_str().unwrap();
            match dynamic(ns, r).get_opt(name).await.unwrap() {
                Some(o) if is_settled(&o) => {}
                other => pending.push(format!(
                    "{}/{name}: {}",
                    r.kind,
                    other.map_or(Value::Null, |o| o.data["status"].clone())
                )),
            }
        }
        pending
    };
    let all = wait_for(T, || async { pending().await.is_empty() }).await;
    assert!(
        all,
        "not Ready and Synced after the restore: {:#?}",
        pending().await
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(pending().await, Vec::<String>::new(), "unsettled again");
}

/// The requests of `routes` (method and route, as the sandboxes count them) that change
/// something: every method but GET.
fn writes(routes: BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    routes
        .into_iter()
        .filter(|(route, n)| *n > 0 && !route.starts_with("GET "))
        .collect()
}

#[tokio::test]
async fn strettch_computes_domains_and_records_reapplied_from_git_are_adopted_without_a_create_or_a_write()
 {
    use stratus::providers::strettch::api::{Compute, DnsRecord, Domain};
    let mut env = common::Env::start("dr-strettch").await;
    let pc = env.provider_config.clone();
    env.ns
        .create_managed::<Domain>(
            "example-com",
            json!({}),
            json!({"forProvider": {"domain": "example.com"}}),
            &pc,
        )
        .await;
    env.ns
        .create_managed::<DnsRecord>(
            "www",
            json!({}),
            json!({"forProvider": {"domainRef": {"name": "example-com"}, "name": "www", "type": "A", "value": "192.0.2.10", "ttl": 300}}),
            &pc,
        )
        .await;
    env.create_compute("web", json!({}), json!({}), json!({}))
        .await;
    let before = wait_for_inventory(&env.ns).await;
    let inventory = |sim: &stratus::providers::strettch::sim::SimHandle| {
        (
            sim.computes().len(),
            sim.domains().len(),
            sim.record_groups().len(),
        )
    };
    let cloud_before = inventory(&env.sim);

    env.operator.kill();
    lose_and_reapply(&env.ns, &before, || env.sim.reset_stats()).await;
    env.operator = common::Operator::start(&env.ns.name, &[]);
    wait_all_ready(&env.ns, &before).await;

    assert_eq!(
        inventory(&env.sim),
        cloud_before,
        "the restore changed the cloud"
    );
    assert_eq!(writes(env.sim.stats().requests_by_route), BTreeMap::new());
    let computes: Api<Compute> = env.ns.api();
    assert_eq!(
        computes
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    env.stop().await;
}

#[tokio::test]
async fn vertra_workspaces_databases_and_apps_reapplied_from_git_are_adopted_without_a_create_and_only_the_apps_code_and_env_are_written_again()
 {
    use stratus::providers::vertra::api::{Application, Database, Workspace};
    let mut env = common::vertra::Env::start("dr-vertra").await;
    env.apply::<Workspace>("team", json!({"forProvider": {"name": "team-dr"}}))
        .await;
    env.apply::<Database>(
        "orders",
        json!({"forProvider": {"engine": "PostgreSQL", "name": "orders", "memoryMB": 1024}}),
    )
    .await;
    let code = common::vertra::zip("dr");
    let base = common::vertra::serve(vec![("/code.zip", code.clone())]).await;
    env.apply::<Application>(
        "shop",
        json!({"forProvider": {
            "name": "shop", "memoryMB": 256, "language": "javascript", "mainFile": "index.js",
            "source": {"archive": {"url": format!("{base}/code.zip"), "sha256": stratus::providers::vertra::code::sha256_hex(&code)}},
        }}),
    )
    .await;
    let before = wait_for_inventory(&env.ns).await;
    let inventory = |sim: &stratus::providers::vertra::sim::VertraSimHandle| {
        (
            sim.workspaces().len(),
            sim.databases().len(),
            sim.apps().len(),
        )
    };
    let cloud_before = inventory(&env.sim);

    env.operator.kill();
    lose_and_reapply(&env.ns, &before, || env.sim.reset_stats()).await;
    env.restart_operator();
    wait_all_ready(&env.ns, &before).await;

    assert_eq!(
        inventory(&env.sim),
        cloud_before,
        "the restore changed the cloud"
    );
    assert_eq!(
        env.sim.creates(),
        Default::default(),
        "creates since the restore"
    );
    // Vertra does not report which code an app runs or which env vars an operator wrote: what
    // the status recorded (`deployedDigest`, `envDigest`) is gone with the cluster, so the
    // app's code is uploaded again and its env written again, once each (docs/operations.md).
    // The workspace and the database are not written.
    assert_eq!(
        writes(env.sim.stats().requests_by_route),
        BTreeMap::from([
            ("POST /apps/{id}/envs".to_string(), 1),
            ("POST /apps/{id}/files/upload".to_string(), 1),
        ])
    );
    env.stop().await;
}

#[tokio::test]
async fn cloudapi_projects_and_releases_reapplied_from_git_are_adopted_without_a_create_or_a_write()
{
    use stratus::providers::cloudapi::api::{Project, Release};
    use stratus::providers::cloudapi::sim::Dialect;
    for dialect in [Dialect::Cloudapi, Dialect::Cloudplatform] {
        let mut env = common::cloudapi::Env::start("dr-cloudapi", dialect).await;
        let mut project = json!({"forProvider": {"name": "shop"}});
        if dialect == Dialect::Cloudapi {
            project["forProvider"]["region"] = json!("us-east-1");
        }
        env.apply::<Project>("shop", project).await;
        env.apply::<Release>(
            "shop",
            json!({"forProvider": {"projectRef": {"name": "shop"}, "commit": "v1", "redeployNonce": "2"}}),
        )
        .await;
        let before = wait_for_inventory(&env.ns).await;
        let projects_before = env.sim.projects().len();

        env.operator.kill();
        lose_and_reapply(&env.ns, &before, || env.sim.reset_stats()).await;
        env.restart_operator();
        wait_all_ready(&env.ns, &before).await;

        assert_eq!(env.sim.projects().len(), projects_before, "{dialect:?}");
        assert_eq!(env.sim.builds(), 0, "{dialect:?}: builds since the restore");
        assert_eq!(env.sim.creates(), Default::default(), "{dialect:?}");
        assert_eq!(
            writes(env.sim.stats().requests_by_route),
            BTreeMap::new(),
            "{dialect:?}"
        );
        env.stop().await;
    }
}

/// Waits until every stratus object of the namespace is Ready and carries its external-name,
/// then returns their manifests as Git would hold them.
async fn wait_for_inventory(ns: &TestNamespace) -> Vec<(ApiResource, Value)> {
    let settled = wait_for(T, || async {
        let mut any = false;
        for r in resources() {
            for o in dynamic(ns, &r).list(&Default::default()).await.unwrap() {
                any = true;
                let named = o
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(EXTERNAL_NAME));
                if !(named && is_ready(&o)) {
                    return false;
                }
            }
        }
        any
    })
    .await;
    assert!(settled, "the objects did not all turn Ready with an id");
    manifests_as_in_git(ns).await
}
