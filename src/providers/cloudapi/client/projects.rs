//! `/v1/projects` (both dialects).

use reqwest::Method;
use uuid::Uuid;

use super::CloudApiClient;
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::cloud::transport::Request;
use crate::providers::cloudapi::model::{Deleted, Project, ProjectCreate, ProjectPatch};

impl CloudApiClient {
    /// `GET /v1/projects`: every project the key sees (cursor-walked in `cloudapi`, whole in
    /// `cloudplatform`).
    pub async fn list_projects(&self, p: Priority) -> Result<Vec<Project>, CloudError> {
        let request = Request::get("projects.list", &["v1", "projects"], p);
        self.transport
            .list_all(request, |p: &Project| p.id.clone())
            .await
    }

    /// `GET /v1/projects/{id}`.
    pub async fn get_project(&self, id: &str, p: Priority) -> Result<Project, CloudError> {
        let request = Request::get("projects.get", &["v1", "projects", id], p);
        self.transport.data(request).await
    }

    /// `POST /v1/projects`, once, under `idempotency_key`.
    pub async fn create_project(
        &self,
        body: &ProjectCreate,
        idempotency_key: Uuid,
    ) -> Result<Project, CloudError> {
        let request =
            Request::create("projects.create", &["v1", "projects"], idempotency_key).json(body)?;
        self.transport.data(request).await
    }

    /// `PATCH /v1/projects/{id}`: the project's metadata (its name).
    pub async fn update_project(
        &self,
        id: &str,
        body: &ProjectPatch,
    ) -> Result<Project, CloudError> {
        let request =
            Request::write(Method::PATCH, "projects.update", &["v1", "projects", id]).json(body)?;
        self.transport.data(request).await
    }

    /// `DELETE /v1/projects/{id}`: permanent; its deployments go and its keys are revoked.
    pub async fn delete_project(&self, id: &str) -> Result<Deleted, CloudError> {
        let request = Request::write(Method::DELETE, "projects.delete", &["v1", "projects", id]);
        self.transport.data(request).await
    }
}
