//! The CloudAPI client against the CloudAPI sandbox, in both dialects: what goes on the wire
//! and what comes back.

use std::time::Duration;

use super::*;
use crate::cloud::ErrorClass;
use crate::cloud::throttle::Priority;
use crate::providers::cloudapi::model::{DeploymentCreate, KeyCreate, ProjectCreate, TokenCreate};
use crate::providers::cloudapi::sim::{self, CloudApiSimConfig, CloudApiSimHandle, Dialect};
use uuid::Uuid;

async fn sandbox(dialect: Dialect) -> (CloudApiSimHandle, CloudApiClient) {
    let mut config = CloudApiSimConfig::for_tests(dialect, &["k1"]);
    config.session_tokens.push("dash".into());
    config.build_time = Duration::from_millis(100);
    let sim = sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dialect = match dialect {
        Dialect::Cloudapi => CloudApiDialect::CloudApi,
        Dialect::Cloudplatform => CloudApiDialect::CloudPlatform,
    };
    let client = CloudApiClient::new(
        dialect,
        &sim.root_url(),
        ApiKey::new("k1"),
        Policy::new(Vec::new(), None),
    )
    .unwrap();
    (sim, client)
}

fn project(name: &str, region: Option<&str>) -> ProjectCreate {
    ProjectCreate {
        name: name.into(),
        region: region.map(str::to_string),
    }
}

#[tokio::test]
async fn a_cloudapi_listing_walks_every_cursor_page() {
    let (sim, c) = sandbox(Dialect::Cloudapi).await;
    for i in 0..105 {
        c.create_project(
            &project(&format!("p{i}"), Some("us-east-1")),
            Uuid::new_v4(),
        )
        .await
        .unwrap();
    }
    let all = c.list_projects(Priority::Urgent).await.unwrap();
    assert_eq!(all.len(), 105);
    assert!(all.iter().all(|p| p.region.as_deref() == Some("us-east-1")));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_create_replayed_under_its_key_makes_one_project_in_both_dialects() {
    for (dialect, region) in [
        (Dialect::Cloudapi, Some("eu-west-1")),
        (Dialect::Cloudplatform, None),
    ] {
        let (sim, c) = sandbox(dialect).await;
        let key = Uuid::new_v4();
        let a = c
            .create_project(&project("acme", region), key)
            .await
            .unwrap();
        let b = c
            .create_project(&project("acme", region), key)
            .await
            .unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!(sim.projects().len(), 1);
        let renamed = c
            .update_project(
                &a.id,
                &crate::providers::cloudapi::model::ProjectPatch {
                    name: Some("acme-2".into()),
                },
            )
            .await
            .unwrap();
        assert_eq!(renamed.name, "acme-2");
        c.delete_project(&a.id).await.unwrap();
        let gone = c.get_project(&a.id, Priority::Urgent).await.unwrap_err();
        assert_eq!(gone.class(), ErrorClass::NotFound);
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn a_rollback_makes_the_previous_release_live_without_a_build() {
    let (sim, c) = sandbox(Dialect::Cloudapi).await;
    let p = c
        .create_project(&project("app", Some("us-east-1")), Uuid::new_v4())
        .await
        .unwrap();
    for commit in ["aaa", "bbb"] {
        let body = DeploymentCreate {
            project_id: p.id.clone(),
            commit: commit.into(),
        };
        c.create_deployment(&body, Uuid::new_v4()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let list = c
        .list_deployments(Some(&p.id), Priority::Urgent)
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].commit, "bbb", "newest first");
    assert_eq!(list[0].current, Some(true));
    let live = c.rollback(&list[0].id).await.unwrap();
    assert_eq!(live.commit, "aaa");
    assert_eq!(sim.builds(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_failed_build_says_why_in_its_error_log() {
    let (sim, c) = sandbox(Dialect::Cloudplatform).await;
    let p = c
        .create_project(&project("app", None), Uuid::new_v4())
        .await
        .unwrap();
    let body = DeploymentCreate {
        project_id: p.id.clone(),
        commit: "fail-1".into(),
    };
    let d = c.create_deployment(&body, Uuid::new_v4()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let list = c.list_deployments(None, Priority::Urgent).await.unwrap();
    assert!(list[0].failed());
    let lines = c.error_logs(&d.id, Priority::Urgent).await.unwrap();
    assert!(!lines.is_empty());
    assert!(
        lines.iter().any(|l| l.message.contains("fail-1")),
        "{lines:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn keys_need_the_session_token_and_tokens_list_without_their_value() {
    let (sim, c) = sandbox(Dialect::Cloudapi).await;
    let p = c
        .create_project(&project("app", Some("us-east-1")), Uuid::new_v4())
        .await
        .unwrap();
    let body = KeyCreate {
        project_id: p.id.clone(),
    };
    let refused = c.create_key(&body, Uuid::new_v4()).await.unwrap_err();
    assert_eq!(refused.class(), ErrorClass::NeedsHuman);
    let session = c
        .session(&ApiKey::new("dash"), &Policy::new(Vec::new(), None))
        .unwrap();
    let key = session.create_key(&body, Uuid::new_v4()).await.unwrap();
    assert!(key.key.expose().starts_with("sk_"));
    assert!(c.revoke_key(&key.id).await.unwrap().revoked);
    let t = c
        .create_token(
            &TokenCreate {
                name: "ci".into(),
                scopes: vec!["usage:read".into()],
            },
            Uuid::new_v4(),
        )
        .await
        .unwrap();
    assert!(t.token.expose().starts_with("cap_"));
    let listed = c.list_tokens(Priority::Urgent).await.unwrap();
    assert_eq!(listed, vec![t.listed()]);
    c.revoke_token(&t.id).await.unwrap();
    assert!(c.list_tokens(Priority::Urgent).await.unwrap().is_empty());
    assert!(c.usage(Priority::Urgent).await.unwrap().requests.unwrap() > 0);
    sim.shutdown().await;
}

#[test]
fn the_documented_limits_and_the_workspace_budget_group() {
    use crate::cloud::throttle::Scope;
    let api = default_limits(CloudApiDialect::CloudApi);
    assert_eq!(
        (api[0].requests, api[0].per),
        (1000, Duration::from_secs(60))
    );
    let platform = default_limits(CloudApiDialect::CloudPlatform);
    assert!(
        platform
            .iter()
            .any(|l| l.scope == Scope::Key && l.requests == 120)
    );
    assert!(
        platform
            .iter()
            .any(|l| l.scope == Scope::BudgetGroup && l.requests == 600)
    );
    assert_eq!(
        budget_group(CloudApiDialect::CloudPlatform, None, Some("acme")).as_deref(),
        Some("workspace:acme")
    );
    assert_eq!(
        budget_group(CloudApiDialect::CloudPlatform, Some("g"), Some("acme")).as_deref(),
        Some("g")
    );
    assert_eq!(
        budget_group(CloudApiDialect::CloudApi, None, Some("acme")),
        None
    );
}
