//! The Release adapter: a project's live deployment (seed 001).
//!
//! The external id is the project's id: a Release *is* the project's release, so two Releases
//! of one project are refused (`AlreadyManaged`). Its "create" is the first deployment, sent
//! once under the engine's Idempotency-Key: a create repeated after a kill is answered with the
//! deployment the first attempt made, and when the commit is already live nothing is sent at
//! all. Later deployments (a new commit, a changed redeployNonce) carry keys derived from what
//! they deploy and what was live (see [`plan::ReleaseAction::Deploy`]), so they are crash-safe
//! too; a commit set back to the release before the live one is a rollback, which builds
//! nothing.
//!
//! There is no `GET /v1/deployments/{id}`: a Release is observed through `/v1/deployments`, one
//! walk per resync shared by every Release of the ProviderConfig (or the list filtered by
//! `project_id` when one project needs news now).

pub mod plan;

/// How old the deployments a create checks may be: about what a request waits in the throttle
/// between a GET and the POST it decides, so a cached answer is no staler than a fresh one.
const CREATE_CHECK_MAX_AGE: Duration = Duration::from_secs(5);

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::api::release::Release;
use super::cloud::{CloudApiCloud, ProjectDeployments};
use super::model::{Deployment, DeploymentCreate};
use super::project::resolve_project;
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::engine::{Adapter, Blocked, Created, Found, Freshness, Invalid, Plan, Readiness};
pub use plan::{DesiredRelease, ObservedRelease, ReleaseAction};

#[derive(Clone)]
pub struct ReleaseAdapter;

/// What a Release's create sends (recorded on the object before it is sent): the body of
/// `POST /v1/deployments`, and the nonce it answers (not sent: the cloud does not keep it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseCreate {
    pub project_id: String,
    pub commit: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeploy_nonce: Option<String>,
}

/// Pure checks the schema cannot make.
pub fn validate(obj: &Release) -> Result<(), Invalid> {
    let p = &obj.spec.for_provider;
    let invalid = |m: &str| Err(Invalid::new("InvalidSpec", m));
    if p.project_ref.is_some() == p.project_id.is_some() {
        return invalid(
            "set exactly one of spec.forProvider.projectRef and spec.forProvider.projectId",
        );
    }
    if p.commit.is_empty()
        || p.commit.chars().count() > 200
        || p.commit
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return invalid("spec.forProvider.commit must be 1-200 characters without spaces");
    }
    Ok(())
}

/// The redeployNonce the live deployment answers: the one the status records; for an object
/// whose status records nothing (adopted, or re-applied from Git after its cluster was lost),
/// the spec's — adopting a release is not a request to build it again. Changing the nonce
/// afterwards redeploys.
fn nonce_of(obj: &Release) -> Option<String> {
    match obj.status.as_ref().and_then(|s| s.at_provider.as_ref()) {
        Some(at) => at.redeploy_nonce.clone(),
        None => obj.spec.for_provider.redeploy_nonce.clone(),
    }
}

/// The project's deployments with `made` written through (newest first), as the snapshot and
/// the next plan should see them.
fn with_deployment(cloud: &CloudApiCloud, made: &Deployment) -> ProjectDeployments {
    let mut deployments = cloud
        .deployments
        .find(|p| p.project_id == made.project_id)
        .map(|p| p.deployments)
        .unwrap_or_default();
    deployments.retain(|d| d.id != made.id);
    if made.current == Some(true) {
        for d in &mut deployments {
            d.current = Some(false);
        }
    }
    deployments.insert(0, made.clone());
    super::cloud::sort_newest_first(&mut deployments);
    ProjectDeployments {
        project_id: made.project_id.clone(),
        deployments,
    }
}

#[async_trait::async_trait]
impl Adapter for ReleaseAdapter {
    type Kind = Release;
    type Cloud = CloudApiCloud;
    type Observed = ObservedRelease;
    type Desired = DesiredRelease;
    type Action = ReleaseAction;
    type CreateRequest = ReleaseCreate;

    const PROVIDER: &'static str = super::PROVIDER;
    const CONTROLLER: &'static str = "release";

    crate::managed_kind_accessors!(plan::observation);

    fn validate(obj: &Release) -> Result<(), Invalid> {
        validate(obj)
    }

    async fn desired(&self, kube: &kube::Client, obj: &Release) -> Result<DesiredRelease, Blocked> {
        let p = &obj.spec.for_provider;
        let ns = obj.metadata.namespace.as_deref().unwrap_or("default");
        let project_id =
            resolve_project(kube, ns, p.project_ref.as_ref(), p.project_id.as_deref()).await?;
        Ok(DesiredRelease {
            project_id,
            commit: p.commit.clone(),
            nonce: p.redeploy_nonce.clone(),
            uid: obj.metadata.uid.clone().unwrap_or_default(),
        })
    }

    async fn observe(
        &self,
        cloud: &CloudApiCloud,
        obj: &Release,
        id: &str,
        fresh: Freshness,
    ) -> Result<Option<ObservedRelease>, CloudError> {
        // Nothing in the cloud goes with a Release (the API cannot undeploy): once the object
        // is being deleted, there is nothing left to wait for.
        if obj.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let found = cloud
            .deployments
            .observe(
                id,
                fresh,
                |p| cloud.project_deployments(id, p),
                |p| cloud.list_all_deployments(p),
            )
            .await?;
        let Some(found) = found else {
            return Ok(None);
        };
        let mut observed = ObservedRelease {
            project_id: found.project_id,
            deployments: found.deployments,
            nonce: nonce_of(obj),
            build_error: None,
        };
        if let Some(failed) = observed.failed_build() {
            let id = failed.id.clone();
            observed.build_error = match cloud.build_error(&id, fresh.priority).await {
                Ok(line) => line,
                // The log is a detail: the failure is reported without it.
                Err(e) => {
                    tracing::debug!(deployment = %id, error = %e, "build log not read");
                    None
                }
            };
        }
        Ok(Some(observed))
    }

    fn create_request(_obj: &Release, d: &DesiredRelease) -> ReleaseCreate {
        ReleaseCreate {
            project_id: d.project_id.clone(),
            commit: d.commit.clone(),
            redeploy_nonce: d.nonce.clone(),
        }
    }

    /// Nothing is looked for: the engine replays the recorded request under its
    /// Idempotency-Key, which `create` answers with the deployment the first attempt made (or,
    /// when the commit went live meanwhile, without sending anything).
    async fn find_created(
        &self,
        _cloud: &CloudApiCloud,
        _obj: &Release,
        _request: &ReleaseCreate,
    ) -> Result<Option<Found<ObservedRelease>>, CloudError> {
        Ok(None)
    }

    async fn create(
        &self,
        cloud: &CloudApiCloud,
        _obj: &Release,
        request: &ReleaseCreate,
        key: Uuid,
    ) -> Result<Created<ObservedRelease>, CloudError> {
        // A project whose live release is already this commit needs no build: the Release
        // takes it as it is (the nonce counts from here). News of the last few seconds tells,
        // so a commit that went live meanwhile is not built again: a listing or write that
        // recent, else the filtered GET, or during a burst of creates (more than a listing
        // has pages) the next shared listing.
        let project = &request.project_id;
        let existing = cloud
            .deployments
            .read_before_write(
                project,
                CREATE_CHECK_MAX_AGE,
                cloud.project_deployments(project, Priority::Write),
                || cloud.list_all_deployments(Priority::Write),
            )
            .await?;
        if let Some(existing) = existing {
            let observed = ObservedRelease {
                project_id: existing.project_id,
                deployments: existing.deployments,
                nonce: request.redeploy_nonce.clone(),
                build_error: None,
            };
            let live = observed.live().map(|d| d.commit.as_str());
            let building = observed
                .newest()
                .is_some_and(|d| d.in_progress() && d.commit == request.commit);
            if live == Some(request.commit.as_str()) && !building {
                return Ok(observed.into());
            }
        }
        let body = DeploymentCreate {
            project_id: request.project_id.clone(),
            commit: request.commit.clone(),
        };
        let made = cloud.client.create_deployment(&body, key).await?;
        let all = with_deployment(cloud, &made);
        cloud.deployments.put(all.clone());
        Ok(ObservedRelease {
            project_id: all.project_id,
            deployments: all.deployments,
            nonce: request.redeploy_nonce.clone(),
            build_error: None,
        }
        .into())
    }

    fn plan(d: &DesiredRelease, o: &ObservedRelease, _digest: Option<&str>) -> Plan<ReleaseAction> {
        plan::plan(d, o)
    }

    async fn act(
        &self,
        cloud: &CloudApiCloud,
        o: &ObservedRelease,
        action: &ReleaseAction,
    ) -> Result<ObservedRelease, CloudError> {
        let (made, nonce) = match action {
            ReleaseAction::Deploy {
                commit, nonce, key, ..
            } => {
                let body = DeploymentCreate {
                    project_id: o.project_id.clone(),
                    commit: commit.clone(),
                };
                let made = cloud.client.create_deployment(&body, *key).await?;
                (made, nonce.clone())
            }
            ReleaseAction::Rollback { live_id, .. } => {
                let mut now = cloud.client.rollback(live_id).await?;
                now.current = Some(true);
                (now, o.nonce.clone())
            }
        };
        let all = with_deployment(cloud, &made);
        cloud.deployments.put(all.clone());
        Ok(ObservedRelease {
            project_id: all.project_id,
            deployments: all.deployments,
            nonce,
            build_error: None,
        })
    }

    /// The API cannot undeploy: the project's deployments stay, whatever the deletion policy.
    async fn delete(&self, _cloud: &CloudApiCloud, _o: &ObservedRelease) -> Result<(), CloudError> {
        Ok(())
    }

    fn external_id(o: &ObservedRelease) -> String {
        o.project_id.clone()
    }

    fn is_deleting(_o: &ObservedRelease) -> bool {
        false
    }

    fn is_transitional(o: &ObservedRelease) -> bool {
        o.newest().is_some_and(Deployment::in_progress)
    }

    fn readiness(o: &ObservedRelease) -> Readiness {
        plan::readiness(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn release(spec: serde_json::Value) -> Release {
        serde_json::from_value(json!({
            "apiVersion": "cloudapi.stratus.dev/v1alpha1", "kind": "Release",
            "metadata": {"name": "r", "namespace": "ns"},
            "spec": {"forProvider": spec},
        }))
        .unwrap()
    }

    #[test]
    fn a_release_names_one_project_and_a_commit_without_spaces() {
        assert!(validate(&release(json!({"projectId": "proj_1", "commit": "a1b2"}))).is_ok());
        assert!(validate(&release(json!({"commit": "a1b2"}))).is_err());
        assert!(
            validate(&release(
                json!({"projectId": "p", "projectRef": {"name": "p"}, "commit": "a"})
            ))
            .is_err()
        );
        assert!(validate(&release(json!({"projectId": "p", "commit": "a b"}))).is_err());
    }
}
