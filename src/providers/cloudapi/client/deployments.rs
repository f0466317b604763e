//! `/v1/deployments` and `/v1/logs` (seed 001). There is no `GET /v1/deployments/{id}`: a
//! deployment is observed through the filtered list.

use reqwest::Method;
use uuid::Uuid;

use super::CloudApiClient;
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::cloud::transport::{PageAt, Request};
use crate::providers::cloudapi::model::{Deployment, DeploymentCreate, LogLine};

impl CloudApiClient {
    /// `GET /v1/deployments[?project_id=]`: every deployment (of one project), newest first.
    pub async fn list_deployments(
        &self,
        project: Option<&str>,
        p: Priority,
    ) -> Result<Vec<Deployment>, CloudError> {
        let mut request = Request::get("deployments.list", &["v1", "deployments"], p);
        if let Some(project) = project {
            request = request.query("project_id", project);
        }
        self.transport
            .list_all(request, |d: &Deployment| d.id.clone())
            .await
    }

    /// `POST /v1/deployments`: build and deploy `commit`, once, under `idempotency_key`.
    pub async fn create_deployment(
        &self,
        body: &DeploymentCreate,
        idempotency_key: Uuid,
    ) -> Result<Deployment, CloudError> {
        let request = Request::create(
            "deployments.create",
            &["v1", "deployments"],
            idempotency_key,
        )
        .json(body)?;
        self.transport.data(request).await
    }

    /// `POST /v1/deployments/{id}/rollback`: the release before `{id}` is live again, without
    /// a build; answers the deployment now current. Rolling back the same `{id}` again answers
    /// the same, so it is safe to repeat.
    pub async fn rollback(&self, id: &str) -> Result<Deployment, CloudError> {
        let request = Request::write(
            Method::POST,
            "deployments.rollback",
            &["v1", "deployments", id, "rollback"],
        );
        self.transport.data(request).await
    }

    /// `GET /v1/logs?deployment_id=[&level=]`: every line of one deployment (of `level` and
    /// more severe ones), oldest first, every page.
    pub async fn logs(
        &self,
        deployment: &str,
        level: Option<&str>,
        p: Priority,
    ) -> Result<Vec<LogLine>, CloudError> {
        let mut request =
            Request::get("logs.list", &["v1", "logs"], p).query("deployment_id", deployment);
        if let Some(level) = level {
            request = request.query("level", level);
        }
        self.transport
            .list_all(request, |l: &LogLine| {
                l.id.clone()
                    .unwrap_or_else(|| format!("{:?}|{}", l.timestamp, l.message))
            })
            .await
    }

    /// `GET /v1/logs?deployment_id=&level=error`: the error lines of one deployment (the first
    /// page is enough: a failed build says why in a line or two).
    pub async fn error_logs(
        &self,
        deployment: &str,
        p: Priority,
    ) -> Result<Vec<LogLine>, CloudError> {
        let request = Request::get("logs.list", &["v1", "logs"], p)
            .query("deployment_id", deployment)
            .query("level", "error");
        Ok(self
            .transport
            .page::<LogLine>(request, &PageAt::Cursor(None), 100)
            .await?
            .data)
    }
}
