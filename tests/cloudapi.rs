//! CloudAPI end to end: the operator process against the real apiserver and the CloudAPI
//! sandbox (its own model of the API, never the client's types), in both dialects where they
//! differ.

mod common;

use std::time::Duration;

use common::cloudapi::{
    Env, Setup, T, at_provider, id_of, live_commit, outside_project, secret_text, wait_live,
};
use common::{condition_of, has_condition_of, is_ready_of, wait_object, wait_object_gone};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use stratus::cloud::throttle::Priority;
use stratus::providers::cloudapi::api::{ApiKey, Project, Release, Token};
use stratus::providers::cloudapi::model::DeploymentCreate;
use stratus::providers::cloudapi::sim::Dialect;
use stratus::providers::cloudapi::sim::wire::DeploymentStatus;

#[tokio::test]
async fn a_project_is_created_once_renamed_in_place_and_deleted_with_its_object() {
    let env = Env::start("caproj", Dialect::Cloudapi).await;
    env.apply::<Project>(
        "shop",
        json!({"forProvider": {"name": "acme-prod", "region": "us-east-1"}}),
    )
    .await;
    let projects: Api<Project> = env.ns.api();
    let p = wait_object(&projects, "shop", T, "Ready", is_ready_of).await;
    let id = id_of(&p);
    assert!(id.starts_with("proj_"), "{id}");
    assert_eq!(at_provider(&p)["region"], "us-east-1");
    assert_eq!(env.sim.creates().projects, 1);

    env.patch::<Project>("shop", json!({"forProvider": {"name": "acme-production"}}))
        .await;
    wait_object(&projects, "shop", T, "renamed", |p| {
        is_ready_of(p) && at_provider(p)["name"] == "acme-production"
    })
    .await;
    assert_eq!(env.sim.project(&id).unwrap().name, "acme-production");

    // The region is fixed once the project exists: an API server with CEL refuses the
    // change; an older one takes it and the operator stalls on it without a call.
    let patched = projects
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"forProvider": {"region": "eu-west-1"}}})),
        )
        .await;
    match patched {
        Err(refused) => {
            assert!(
                refused.to_string().contains("region cannot be changed"),
                "{refused}"
            )
        }
        Ok(_) => {
            let p = wait_object(&projects, "shop", T, "Stalled", |p| {
                has_condition_of(p, "Stalled", "True", Some("RegionImmutable"))
            })
            .await;
            let message = condition_of(&p, "Stalled").unwrap().message;
            assert!(message.contains("us-east-1"), "{message}");
            assert_eq!(
                env.sim.project(&id).unwrap().region.as_deref(),
                Some("us-east-1")
            );
        }
    }

    projects.delete("shop", &Default::default()).await.unwrap();
    wait_object_gone(&projects, "shop", T).await;
    assert!(
        env.sim.project(&id).is_none(),
        "the project was left behind"
    );
    assert_eq!(env.sim.creates().projects, 1);
    env.stop().await;
}

#[tokio::test]
async fn a_cloudplatform_project_has_no_region_and_asking_for_one_is_a_spec_error() {
    let env = Env::start("caplat", Dialect::Cloudplatform).await;
    env.apply::<Project>(
        "bad",
        json!({"forProvider": {"name": "gamma", "region": "us-east-1"}}),
    )
    .await;
    env.apply::<Project>("good", json!({"forProvider": {"name": "gamma"}}))
        .await;
    let projects: Api<Project> = env.ns.api();
    let p = wait_object(&projects, "good", T, "Ready", is_ready_of).await;
    assert!(id_of(&p).starts_with("prj_"));
    let bad = wait_object(&projects, "bad", T, "Stalled", |p| {
        has_condition_of(p, "Stalled", "True", Some("InvalidSpec"))
    })
    .await;
    let message = condition_of(&bad, "Stalled").unwrap().message;
    assert!(
        message.contains("cloudplatform") && message.contains("region"),
        "{message}"
    );
    assert_eq!(
        env.sim.creates().projects,
        1,
        "nothing was sent for the bad one"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_project_named_by_external_name_is_adopted_and_left_in_place_by_orphan() {
    let env = Env::start("caadopt", Dialect::Cloudplatform).await;
    let id = outside_project(&env, "legacy").await;
    env.apply_with::<Project>(
        "legacy",
        json!({"annotations": {"stratus.dev/external-name": id}}),
        json!({"deletionPolicy": "Orphan", "forProvider": {"name": "legacy"}}),
    )
    .await;
    let projects: Api<Project> = env.ns.api();
    let p = wait_object(&projects, "legacy", T, "Ready", is_ready_of).await;
    assert_eq!(id_of(&p), id);
    assert_eq!(env.sim.creates().projects, 1, "adopted, not created");
    projects
        .delete("legacy", &Default::default())
        .await
        .unwrap();
    wait_object_gone(&projects, "legacy", T).await;
    assert!(env.sim.project(&id).is_some(), "an orphaned project stays");
    env.stop().await;
}

#[tokio::test]
async fn a_release_deploys_a_new_commit_and_setting_the_previous_one_back_rolls_back_without_a_build()
 {
    let env = Env::start("carel", Dialect::Cloudapi).await;
    env.apply::<Project>(
        "app",
        json!({"forProvider": {"name": "app", "region": "us-east-1"}}),
    )
    .await;
    env.apply::<Release>(
        "app",
        json!({"forProvider": {"projectRef": {"name": "app"}, "commit": "a1a1a1"}}),
    )
    .await;
    let r = wait_live(&env, "app", "a1a1a1").await;
    let project = id_of(&r);
    assert!(project.starts_with("proj_"));
    assert_eq!(env.sim.builds(), 1);

    env.patch::<Release>("app", json!({"forProvider": {"commit": "b2b2b2"}}))
        .await;
    let r = wait_live(&env, "app", "b2b2b2").await;
    assert_eq!(env.sim.builds(), 2);
    assert_eq!(at_provider(&r)["recent"].as_array().unwrap().len(), 2);

    env.patch::<Release>("app", json!({"forProvider": {"commit": "a1a1a1"}}))
        .await;
    wait_live(&env, "app", "a1a1a1").await;
    assert_eq!(env.sim.builds(), 2, "a rollback builds nothing");
    assert_eq!(
        env.sim.deployments(&project).len(),
        2,
        "and makes no deployment"
    );
    assert_eq!(
        env.sim.current_deployment(&project).unwrap().commit,
        "a1a1a1"
    );
    // Settled: nothing more happens.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(env.sim.creates().deployments, 2);
    env.stop().await;
}

#[tokio::test]
async fn a_failed_build_is_ready_false_with_its_last_log_line_and_is_not_retried() {
    let env = Env::start("cafail", Dialect::Cloudapi).await;
    let project = outside_project(&env, "app").await;
    env.apply::<Release>(
        "app",
        json!({"forProvider": {"projectId": project, "commit": "good-1"}}),
    )
    .await;
    wait_live(&env, "app", "good-1").await;
    env.patch::<Release>("app", json!({"forProvider": {"commit": "fail-2"}}))
        .await;
    let releases: Api<Release> = env.ns.api();
    let r = wait_object(&releases, "app", T, "failed", |r| {
        has_condition_of(r, "Ready", "False", None)
            && at_provider(r)["buildError"].as_str().is_some()
            && has_condition_of(r, "Stalled", "True", Some("BuildFailed"))
    })
    .await;
    let ready = condition_of(&r, "Ready").unwrap().message;
    let line = at_provider(&r)["buildError"].as_str().unwrap().to_string();
    assert!(ready.contains(&line), "{ready} / {line}");
    assert!(line.contains("fail-2"), "{line}");
    assert_eq!(live_commit(&r), "good-1", "the previous release stays live");
    let builds = env.sim.builds();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(env.sim.builds(), builds, "a failed build is not retried");

    // A fixed commit deploys.
    env.patch::<Release>("app", json!({"forProvider": {"commit": "good-3"}}))
        .await;
    wait_live(&env, "app", "good-3").await;

    // A build that failed for a reason outside the commit (a flaky dependency) is retried by
    // a new redeployNonce, not before.
    env.sim.fail_commit("flaky-4");
    env.patch::<Release>("app", json!({"forProvider": {"commit": "flaky-4"}}))
        .await;
    wait_object(&releases, "app", T, "failed", |r| {
        has_condition_of(r, "Stalled", "True", Some("BuildFailed"))
            && r.metadata.generation == r.status.as_ref().unwrap().managed.observed_generation
    })
    .await;
    env.sim.sim().set_commit_failing("flaky-4", false);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let builds = env.sim.builds();
    assert_eq!(live_commit(&releases.get("app").await.unwrap()), "good-3");
    env.patch::<Release>("app", json!({"forProvider": {"redeployNonce": "retry-1"}}))
        .await;
    wait_live(&env, "app", "flaky-4").await;
    assert_eq!(env.sim.builds(), builds + 1);
    env.stop().await;
}

#[tokio::test]
async fn a_changed_redeploy_nonce_builds_the_same_commit_again_once() {
    let env = Env::start("canonce", Dialect::Cloudplatform).await;
    let project = outside_project(&env, "app").await;
    env.apply::<Release>(
        "app",
        json!({"forProvider": {"projectId": project, "commit": "c0ffee"}}),
    )
    .await;
    wait_live(&env, "app", "c0ffee").await;
    assert_eq!(env.sim.builds(), 1);
    env.patch::<Release>("app", json!({"forProvider": {"redeployNonce": "2"}}))
        .await;
    let releases: Api<Release> = env.ns.api();
    wait_object(&releases, "app", T, "redeployed", |r| {
        is_ready_of(r) && at_provider(r)["redeployNonce"] == "2"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(env.sim.builds(), 2, "one rebuild for one nonce change");
    let deployments = env.sim.deployments(&project);
    assert!(deployments.iter().all(|d| d.commit == "c0ffee"));
    assert_eq!(deployments[0].status, DeploymentStatus::Succeeded);
    assert!(deployments[0].current);
    env.stop().await;
}

#[tokio::test]
async fn a_deployment_made_outside_kubernetes_is_reported_under_observe_and_rolled_back_otherwise()
{
    let env = Env::start("cadrift", Dialect::Cloudapi).await;
    let watched = outside_project(&env, "watched").await;
    let managed = outside_project(&env, "managed").await;
    // Drift is seen at the next observation: poll often instead of the 10-minute resync.
    let poll = json!({"annotations": {"stratus.dev/poll-interval": "5s"}});
    env.apply_with::<Release>(
        "watched",
        poll.clone(),
        json!({"forProvider": {"projectId": watched, "commit": "v1"}}),
    )
    .await;
    env.apply_with::<Release>(
        "managed",
        poll,
        json!({"forProvider": {"projectId": managed, "commit": "v1"}}),
    )
    .await;
    wait_live(&env, "watched", "v1").await;
    wait_live(&env, "managed", "v1").await;
    env.patch::<Release>("watched", json!({"managementPolicies": ["Observe"]}))
        .await;

    let outside = env.outside();
    for project in [&watched, &managed] {
        outside
            .create_deployment(
                &DeploymentCreate {
                    project_id: project.to_string(),
                    commit: "hotfix".into(),
                },
                uuid::Uuid::new_v4(),
            )
            .await
            .unwrap();
    }
    let releases: Api<Release> = env.ns.api();
    let r = wait_object(&releases, "watched", T, "drifted", |r| {
        has_condition_of(r, "Synced", "False", None) && live_commit(r) == "hotfix"
    })
    .await;
    let synced = condition_of(&r, "Synced").unwrap().message;
    assert!(synced.contains("live: hotfix"), "{synced}");
    // The managed one goes back to its commit, by a rollback (no third build of v1). Waited
    // for in the sandbox too: the object may still show v1 from before the hotfix went live.
    let hotfix_built = || {
        env.sim
            .deployments(&managed)
            .iter()
            .any(|d| d.commit == "hotfix" && d.status == DeploymentStatus::Succeeded)
    };
    wait_object(&releases, "managed", T, "back at v1", |r| {
        is_ready_of(r)
            && live_commit(r) == "v1"
            && hotfix_built()
            && env
                .sim
                .current_deployment(&managed)
                .is_some_and(|d| d.commit == "v1")
    })
    .await;
    assert_eq!(env.sim.current_deployment(&managed).unwrap().commit, "v1");
    assert_eq!(env.sim.deployments(&managed).len(), 2);
    assert_eq!(
        env.sim.current_deployment(&watched).unwrap().commit,
        "hotfix"
    );
    let _ = outside.list_projects(Priority::Urgent).await.unwrap();
    env.stop().await;
}

fn secret_of(env: &Env) -> Api<Secret> {
    env.ns.api()
}

#[tokio::test]
async fn an_api_key_is_written_to_its_secret_once_rotated_on_the_nonce_and_revoked_on_delete() {
    let env = Env::start("cakey", Dialect::Cloudapi).await;
    env.apply::<Project>(
        "app",
        json!({"forProvider": {"name": "app", "region": "us-east-1"}}),
    )
    .await;
    env.apply::<ApiKey>(
        "ci",
        json!({
            "forProvider": {"projectRef": {"name": "app"}},
            "writeConnectionSecretToRef": {"name": "ci-key"},
        }),
    )
    .await;
    let keys: Api<ApiKey> = env.ns.api();
    let k = wait_object(&keys, "ci", T, "Ready", is_ready_of).await;
    let secrets = secret_of(&env);
    let s = secrets.get("ci-key").await.unwrap();
    let first = secret_text(&s, "apiKey");
    let first_id = secret_text(&s, "keyId");
    assert!(first.starts_with("sk_live_"), "{first_id}");
    assert_eq!(id_of(&k), first_id);
    assert_eq!(env.sim.creates().keys, 1);
    let shown = serde_json::to_string(&k).unwrap();
    assert!(!shown.contains(&first), "the key is in the object");
    // Settled: written once, never issued again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(env.sim.creates().keys, 1);

    env.patch::<ApiKey>("ci", json!({"connectionSecretRotation": "2026-12"}))
        .await;
    let rotated = wait_object(&secrets, "ci-key", T, "rotated", |s| {
        secret_text(s, "keyId") != first_id
    })
    .await;
    let second_id = secret_text(&rotated, "keyId");
    assert_ne!(secret_text(&rotated, "apiKey"), first);
    // The previous key is revoked after the grace period.
    assert!(
        common::wait_for(T, || {
            let revoked = env.sim.keys().iter().any(|k| k.id == first_id && k.revoked);
            async move { revoked }
        })
        .await,
        "the previous key was not revoked: {:?}",
        env.sim.keys()
    );
    assert_eq!(env.sim.creates().keys, 2);

    keys.delete("ci", &Default::default()).await.unwrap();
    wait_object_gone(&keys, "ci", T).await;
    assert!(
        env.sim.keys().iter().all(|k| k.revoked),
        "{:?}",
        env.sim.keys()
    );
    assert!(env.sim.keys().iter().any(|k| k.id == second_id));
    assert!(secrets.get_opt("ci-key").await.unwrap().is_none());
    let log = env.operator_log();
    assert!(
        !log.contains(&first) && !log.contains("sk_live_"),
        "a key value is in the log"
    );
    env.stop().await;
}

#[tokio::test]
async fn an_api_key_without_a_session_token_is_stalled_saying_how_to_give_one() {
    let env = Env::start_with(
        "canosess",
        Setup {
            session: false,
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let project = outside_project(&env, "app").await;
    env.apply::<ApiKey>(
        "ci",
        json!({
            "forProvider": {"projectId": project},
            "writeConnectionSecretToRef": {"name": "ci-key"},
        }),
    )
    .await;
    let keys: Api<ApiKey> = env.ns.api();
    let k = wait_object(&keys, "ci", T, "Stalled", |k| {
        has_condition_of(k, "Stalled", "True", Some("SessionTokenMissing"))
    })
    .await;
    let message = condition_of(&k, "Stalled").unwrap().message;
    assert!(message.contains("sessionTokenSecretRef"), "{message}");
    assert_eq!(env.sim.creates().keys, 0);
    env.stop().await;
}

#[tokio::test]
async fn a_token_is_written_once_and_replaced_by_a_new_one_when_its_scopes_change() {
    let env = Env::start("catok", Dialect::Cloudapi).await;
    env.apply::<Token>(
        "ci",
        json!({
            "forProvider": {"name": "ci-token", "scopes": ["usage:read"]},
            "writeConnectionSecretToRef": {"name": "ci-token"},
        }),
    )
    .await;
    let tokens: Api<Token> = env.ns.api();
    let t = wait_object(&tokens, "ci", T, "Ready", is_ready_of).await;
    let secrets = secret_of(&env);
    let s = secrets.get("ci-token").await.unwrap();
    let first = secret_text(&s, "token");
    let first_id = secret_text(&s, "tokenId");
    assert!(first.starts_with("cap_"));
    assert_eq!(id_of(&t), first_id);
    assert!(!serde_json::to_string(&t).unwrap().contains(&first));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(env.sim.creates().tokens, 1, "written once");

    env.patch::<Token>(
        "ci",
        json!({"forProvider": {"scopes": ["usage:read", "users:read"]}}),
    )
    .await;
    let replaced = wait_object(&secrets, "ci-token", T, "replaced", |s| {
        secret_text(s, "tokenId") != first_id
    })
    .await;
    let second_id = secret_text(&replaced, "tokenId");
    assert!(
        common::wait_for(T, || {
            let ids: Vec<String> = env.sim.tokens().iter().map(|t| t.id.clone()).collect();
            let done = ids == vec![second_id.clone()];
            async move { done }
        })
        .await,
        "the previous token was not revoked: {:?}",
        env.sim.tokens()
    );
    let live = &env.sim.tokens()[0];
    assert_eq!(live.scopes, vec!["usage:read", "users:read"]);
    wait_object(&tokens, "ci", T, "showing the new scopes", |t| {
        is_ready_of(t) && at_provider(t)["tokenId"] == second_id.as_str()
    })
    .await;
    assert_eq!(env.sim.creates().tokens, 2);

    tokens.delete("ci", &Default::default()).await.unwrap();
    wait_object_gone(&tokens, "ci", T).await;
    assert!(env.sim.tokens().is_empty(), "{:?}", env.sim.tokens());
    assert!(!env.operator_log().contains(&first));
    env.stop().await;
}

#[tokio::test]
async fn the_cloudapi_example_converges_against_the_sandbox() {
    let env = Env::start("caexample", Dialect::Cloudapi).await;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/examples/cloudapi.yaml"
    ))
    .unwrap();
    let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|d: &serde_json::Value| d["apiVersion"] == "cloudapi.stratus.dev/v1alpha1")
        .collect();
    assert_eq!(docs.len(), 4, "a Project, a Release, an ApiKey and a Token");
    let mut names = Vec::new();
    for doc in docs {
        let kind = doc["kind"].as_str().unwrap().to_string();
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        let spec = doc["spec"].clone();
        match kind.as_str() {
            "Project" => env.apply::<Project>(&name, spec).await,
            "Release" => env.apply::<Release>(&name, spec).await,
            "ApiKey" => env.apply::<ApiKey>(&name, spec).await,
            "Token" => env.apply::<Token>(&name, spec).await,
            other => panic!("unexpected kind {other}"),
        }
        names.push((kind, name));
    }
    for (kind, name) in names {
        match kind.as_str() {
            "Project" => {
                drop(wait_object(&env.ns.api::<Project>(), &name, T, "Ready", is_ready_of).await)
            }
            "Release" => {
                drop(wait_object(&env.ns.api::<Release>(), &name, T, "Ready", is_ready_of).await)
            }
            "ApiKey" => {
                drop(wait_object(&env.ns.api::<ApiKey>(), &name, T, "Ready", is_ready_of).await)
            }
            _ => drop(wait_object(&env.ns.api::<Token>(), &name, T, "Ready", is_ready_of).await),
        }
    }
    assert_eq!(env.sim.builds(), 1);
    env.stop().await;
}

#[tokio::test]
async fn the_accounts_usage_reaches_the_provider_configs_status_and_the_metrics_in_both_dialects() {
    const ARGS: &[&str] = &[
        "--create-settle",
        "5s",
        "--rotation-grace",
        "2s",
        "--usage-interval",
        "1s",
    ];
    for dialect in [Dialect::Cloudapi, Dialect::Cloudplatform] {
        let env = Env::start_with(
            "causage",
            Setup {
                dialect,
                operator_args: ARGS,
                ..Default::default()
            },
            |_| {},
        )
        .await;
        let for_provider = match dialect {
            Dialect::Cloudapi => json!({"name": "web", "region": "us-east-1"}),
            Dialect::Cloudplatform => json!({"name": "web"}),
        };
        env.apply::<Project>("web", json!({ "forProvider": for_provider }))
            .await;
        let projects: Api<Project> = env.ns.api();
        wait_object(&projects, "web", T, "Ready", is_ready_of).await;

        // Usage is read only for a ProviderConfig in use, and then every interval: the figure
        // the status shows grows with the requests the operator goes on making.
        let configs: Api<stratus::api::ProviderConfig> = Api::all(env.ns.client.clone());
        let usage_of =
            |pc: &stratus::api::ProviderConfig| pc.status.as_ref().and_then(|s| s.usage.clone());
        let mut first = None;
        for _ in 0..120 {
            let pc = configs.get(&env.ns.name).await.unwrap();
            first = usage_of(&pc).filter(|u| u.requests.unwrap_or(0) > 0);
            if first.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let first = first.unwrap_or_else(|| panic!("{dialect:?}: no status.usage"));
        assert!(first.observed_at.is_some(), "{first:?}");
        let period = first.period.clone().unwrap_or_default();
        match dialect {
            // `cloudapi` reports a period with start and end, and an overage.
            Dialect::Cloudapi => {
                assert!(period.contains('/'), "{first:?}");
                assert!(first.overage.is_some(), "{first:?}");
            }
            // `cloudplatform` the month and the projects.
            Dialect::Cloudplatform => {
                assert_eq!(period.len(), 7, "{first:?}");
                assert_eq!(first.projects, Some(1), "{first:?}");
            }
        }
        let grew = common::wait_for(T, || async {
            let pc = configs.get(&env.ns.name).await.unwrap();
            usage_of(&pc).and_then(|u| u.requests) > first.requests
        })
        .await;
        assert!(grew, "{dialect:?}: status.usage was not refreshed");

        let series = format!(
            "stratus_cloud_usage_requests{{provider_config=\"{}\"}}",
            env.ns.name
        );
        let metrics = env.operator.metrics().await;
        assert!(
            metrics.contains(&series),
            "{dialect:?}: no {series}:\n{metrics}"
        );
        assert!(
            !env.operator_log().contains(&env.key),
            "the API key reached the log"
        );
        env.stop().await;
    }
}
