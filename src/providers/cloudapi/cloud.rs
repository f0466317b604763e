//! The CloudAPI side of a ProviderConfig: one client (one throttle per key, and the
//! workspace's budget group in `cloudplatform`) and the shared snapshots. Every kind observes
//! in bulk: one walk of `/v1/projects`, `/v1/deployments` or `/v1/tokens` per resync serves
//! every object of the ProviderConfig, never one request per object.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::client::{CloudApiClient, budget_group, default_endpoint, default_limits};
use super::model::{Deployment, Project, Token};
use crate::api::provider_config::{CloudApiDialect, Provider, ProviderConfigSpec};
use crate::cloud::throttle::{KeyThrottle, Policy, Priority};
use crate::cloud::{ApiKey, CloudError, ErrorClass};
use crate::engine::snapshot::{Item, Snapshot};
use crate::engine::{Connect, ProviderError};

/// `cloudapi` lists 100 items a page; `cloudplatform` answers whole lists.
fn page_size(dialect: CloudApiDialect) -> usize {
    match dialect {
        CloudApiDialect::CloudApi => 100,
        CloudApiDialect::CloudPlatform => usize::MAX,
    }
}

/// Every deployment of one project, newest first: what a Release observes.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectDeployments {
    pub project_id: String,
    pub deployments: Vec<Deployment>,
}

impl ProjectDeployments {
    /// Groups a listing by project, keeping the newest-first order.
    pub fn group(all: Vec<Deployment>) -> Vec<ProjectDeployments> {
        let mut by: BTreeMap<String, Vec<Deployment>> = BTreeMap::new();
        for d in all {
            by.entry(d.project_id.clone()).or_default().push(d);
        }
        by.into_iter()
            .map(|(project_id, mut deployments)| {
                sort_newest_first(&mut deployments);
                ProjectDeployments {
                    project_id,
                    deployments,
                }
            })
            .collect()
    }
}

/// Newest first, by `created_at` (RFC 3339 UTC to the second sorts as text); the listing's own
/// order breaks ties (it is newest first already).
pub fn sort_newest_first(deployments: &mut [Deployment]) {
    deployments.sort_by(|a, b| b.created_at.cmp(&a.created_at));
}

pub struct CloudApiCloud {
    pub client: CloudApiClient,
    /// What this ProviderConfig asks of its keys (the session token's client takes its Key part).
    pub policy: Policy,
    pub projects: Snapshot<Project>,
    pub deployments: Snapshot<ProjectDeployments>,
    pub tokens: Snapshot<Token>,
    /// The last error log line of each failed deployment already looked up: a failed build's
    /// log never changes, so it is read once.
    build_errors: Mutex<HashMap<String, Option<String>>>,
}

impl Connect for CloudApiCloud {
    fn connect(
        config_name: &str,
        spec: &ProviderConfigSpec,
        key: ApiKey,
    ) -> Result<Self, ProviderError> {
        let invalid = |message: String| ProviderError::Invalid {
            config: config_name.into(),
            message,
        };
        if spec.provider != Provider::CloudApi {
            return Err(ProviderError::WrongProvider {
                config: config_name.into(),
                provider: spec.provider.as_str().into(),
            });
        }
        let settings = spec.cloudapi.clone().unwrap_or_default();
        let dialect = settings.dialect;
        let default = default_endpoint(dialect);
        // Before any client exists, so a refused endpoint never sees a request (nor the key).
        spec.check_endpoint(default).map_err(invalid)?;
        let endpoint = spec.endpoint.as_deref().unwrap_or(default);
        let mut policy = spec
            .throttle_policy(&default_limits(dialect))
            .map_err(invalid)?;
        policy.budget_group = budget_group(
            dialect,
            spec.budget_group.as_deref(),
            settings.workspace.as_deref(),
        );
        let client = CloudApiClient::for_provider_config(
            config_name,
            dialect,
            endpoint,
            key,
            policy.clone(),
        )
        .map_err(|e| invalid(e.to_string()))?;
        Ok(Self::new(client, policy))
    }

    fn usage_probe(self: &std::sync::Arc<Self>) -> Option<crate::engine::providers::UsageProbe> {
        let cloud = self.clone();
        Some(std::sync::Arc::new(move || {
            let cloud = cloud.clone();
            Box::pin(async move {
                let usage = cloud.client.usage(Priority::Routine).await?;
                Ok(status_usage(usage))
            })
        }))
    }

    fn throttle(&self) -> Option<&Arc<KeyThrottle>> {
        Some(self.client.throttle())
    }
}

/// `/v1/usage` in the ProviderConfig's words: `cloudapi`'s period start and end become one
/// `start/end` period, `cloudplatform`'s month the period.
pub fn status_usage(u: super::model::Usage) -> crate::api::provider_config::Usage {
    let period = match (u.month, u.period_start, u.period_end) {
        (Some(month), _, _) => Some(month),
        (None, Some(start), Some(end)) => Some(format!("{start}/{end}")),
        (None, start, end) => start.or(end),
    };
    crate::api::provider_config::Usage {
        period,
        requests: u.requests,
        overage: u.overage,
        projects: u.projects,
        observed_at: None,
    }
}

impl CloudApiCloud {
    pub fn new(client: CloudApiClient, policy: Policy) -> Self {
        let budget = client.throttle().clone();
        let page = page_size(client.dialect());
        Self {
            projects: Snapshot::paced(page, budget.clone()),
            deployments: Snapshot::paced(page, budget.clone()),
            tokens: Snapshot::paced(page, budget),
            client,
            policy,
            build_errors: Mutex::new(HashMap::new()),
        }
    }

    pub fn dialect(&self) -> CloudApiDialect {
        self.client.dialect()
    }

    /// Every project's deployments: one walk of `/v1/deployments`.
    pub async fn list_all_deployments(
        &self,
        p: Priority,
    ) -> Result<Vec<ProjectDeployments>, CloudError> {
        Ok(ProjectDeployments::group(
            self.client.list_deployments(None, p).await?,
        ))
    }

    /// One project's deployments: the list filtered by `project_id`. A project without any is
    /// an absence (404), as a GET of a missing resource would be.
    pub async fn project_deployments(
        &self,
        project: &str,
        p: Priority,
    ) -> Result<ProjectDeployments, CloudError> {
        let mut deployments = self.client.list_deployments(Some(project), p).await?;
        if deployments.is_empty() {
            return Err(not_found(&format!("deployments of project {project}")));
        }
        sort_newest_first(&mut deployments);
        Ok(ProjectDeployments {
            project_id: project.to_string(),
            deployments,
        })
    }

    /// A fresh listing of every project's deployments (after an ambiguous create).
    pub async fn relist_deployments(&self) -> Result<(), CloudError> {
        self.deployments
            .get("", Duration::ZERO, || {
                self.list_all_deployments(Priority::Urgent)
            })
            .await
            .map(|_| ())
    }

    pub async fn relist_projects(&self) -> Result<(), CloudError> {
        self.projects
            .get("", Duration::ZERO, || {
                self.client.list_projects(Priority::Urgent)
            })
            .await
            .map(|_| ())
    }

    pub async fn relist_tokens(&self) -> Result<(), CloudError> {
        self.tokens
            .get("", Duration::ZERO, || {
                self.client.list_tokens(Priority::Urgent)
            })
            .await
            .map(|_| ())
    }

    /// The last error line of failed deployment `id`, read once (`None`: it logged none).
    pub async fn build_error(&self, id: &str, p: Priority) -> Result<Option<String>, CloudError> {
        if let Some(known) = self.build_errors.lock().get(id) {
            return Ok(known.clone());
        }
        let lines = self.client.error_logs(id, p).await?;
        let last = lines
            .iter()
            .rev()
            .find(|l| l.deployment_id.as_deref().is_none_or(|d| d == id))
            .map(|l| l.message.chars().take(300).collect::<String>());
        self.build_errors
            .lock()
            .insert(id.to_string(), last.clone());
        Ok(last)
    }

    /// The build error already read for `id`, without a call.
    pub fn known_build_error(&self, id: &str) -> Option<String> {
        self.build_errors.lock().get(id).cloned().flatten()
    }
}

/// A 404 for `what` that no answer said: an absence found in a filtered list.
pub fn not_found(what: &str) -> CloudError {
    CloudError::Api {
        status: 404,
        code: super::model::codes::NOT_FOUND.into(),
        message: format!("{what} not found"),
        request_id: None,
        retry_after: None,
        class: ErrorClass::NotFound,
    }
}

impl Item for Project {
    fn id(&self) -> &str {
        &self.id
    }
    fn is_transitional(&self) -> bool {
        false
    }
}

impl Item for ProjectDeployments {
    fn id(&self) -> &str {
        &self.project_id
    }
    fn is_transitional(&self) -> bool {
        self.deployments.iter().any(Deployment::in_progress)
    }
}

impl Item for Token {
    fn id(&self) -> &str {
        &self.id
    }
    fn is_transitional(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::throttle::Scope;

    fn spec(dialect: &str, workspace: Option<&str>) -> ProviderConfigSpec {
        let mut cloudapi = serde_json::json!({"dialect": dialect});
        if let Some(w) = workspace {
            cloudapi["workspace"] = serde_json::json!(w);
        }
        serde_json::from_value(serde_json::json!({
            "provider": "cloudapi",
            "endpoint": "http://127.0.0.1:9",
            "credentials": {"secretRef": {"namespace": "ns", "name": "s", "key": "k"}},
            "cloudapi": cloudapi,
        }))
        .unwrap()
    }

    #[test]
    fn every_key_of_a_cloudplatform_workspace_shares_its_budget() {
        let ws = format!("acme-{}", uuid::Uuid::new_v4().simple());
        let a =
            CloudApiCloud::connect("pc-a", &spec("cloudplatform", Some(&ws)), ApiKey::new("ka"))
                .unwrap();
        let b =
            CloudApiCloud::connect("pc-b", &spec("cloudplatform", Some(&ws)), ApiKey::new("kb"))
                .unwrap();
        let group = |c: &CloudApiCloud| c.client.throttle().groups();
        let (ga, gb) = (group(&a), group(&b));
        assert_eq!(ga.len(), 1);
        assert!(
            std::sync::Arc::ptr_eq(&ga[0], &gb[0]),
            "one budget for the workspace"
        );
        assert_eq!(ga[0].name(), format!("workspace:{ws}"));
        let limits = ga[0].limits();
        assert!(
            limits
                .iter()
                .any(|l| l.requests == 600 && l.per == Duration::from_secs(600)),
            "{limits:?}"
        );
        let key = a.client.throttle().key_limits();
        assert!(
            key.iter()
                .any(|l| l.scope == Scope::Key && l.requests == 120),
            "{key:?}"
        );
        // cloudapi: one account, 1,000 per minute per key, no group.
        let c = CloudApiCloud::connect("pc-c", &spec("cloudapi", None), ApiKey::new("kc")).unwrap();
        assert!(group(&c).is_empty());
        assert!(
            c.client
                .throttle()
                .key_limits()
                .iter()
                .any(|l| l.requests == 1000)
        );
    }

    #[test]
    fn a_deployment_listing_is_grouped_by_project_newest_first() {
        let d = |id: &str, project: &str, at: u32| Deployment {
            id: id.into(),
            project_id: project.into(),
            status: "succeeded".into(),
            commit: "c".into(),
            created_at: Some(format!("2026-04-28T14:00:{at:02}Z")),
            current: None,
        };
        let grouped =
            ProjectDeployments::group(vec![d("d3", "p1", 3), d("d2", "p2", 2), d("d1", "p1", 1)]);
        assert_eq!(grouped.len(), 2);
        let p1 = grouped.iter().find(|g| g.project_id == "p1").unwrap();
        let ids: Vec<&str> = p1.deployments.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, vec!["d3", "d1"]);
    }

    #[test]
    fn usage_in_either_dialect_becomes_one_period_and_its_figures() {
        let cloudapi: super::super::model::Usage = serde_json::from_value(serde_json::json!({
            "period_start": "2026-12-01T00:00:00Z", "period_end": "2026-12-31T23:59:59Z",
            "requests": 42, "overage": 0
        }))
        .unwrap();
        let u = status_usage(cloudapi);
        assert_eq!(
            u.period.as_deref(),
            Some("2026-12-01T00:00:00Z/2026-12-31T23:59:59Z")
        );
        assert_eq!(
            (u.requests, u.overage, u.projects),
            (Some(42), Some(0), None)
        );
        let platform: super::super::model::Usage = serde_json::from_value(
            serde_json::json!({"month": "2026-12", "requests": 7, "projects": 3}),
        )
        .unwrap();
        let u = status_usage(platform);
        assert_eq!(u.period.as_deref(), Some("2026-12"));
        assert_eq!(
            (u.requests, u.overage, u.projects),
            (Some(7), None, Some(3))
        );
    }
}
