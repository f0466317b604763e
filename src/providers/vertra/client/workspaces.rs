//! `/v1/workspaces` (Enterprise plan).

use reqwest::Method;

use super::VertraClient;
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::cloud::transport::Request;
use crate::providers::vertra::model::{Workspace, WorkspaceInfo, WorkspaceWrite};

impl VertraClient {
    /// `GET /v1/workspaces`: every workspace of the account, in one answer.
    pub async fn list_workspaces(&self, p: Priority) -> Result<Vec<Workspace>, CloudError> {
        let request = Request::get("workspaces.list", &["v1", "workspaces"], p);
        self.transport.data(request).await
    }

    pub async fn get_workspace(&self, id: &str, p: Priority) -> Result<WorkspaceInfo, CloudError> {
        let request = Request::get("workspaces.get", &["v1", "workspaces", id], p);
        self.transport.data(request).await
    }

    /// `POST /v1/workspaces`. Sent once (no idempotency key; names are unique per owner, so an
    /// ambiguous attempt is found by name).
    pub async fn create_workspace(&self, w: &WorkspaceWrite) -> Result<Workspace, CloudError> {
        let request = Request::write(Method::POST, "workspaces.create", &["v1", "workspaces"])
            .once()
            .priority(Priority::Create)
            .json(w)?;
        self.transport.data(request).await
    }

    /// `PUT /v1/workspaces/:id`.
    pub async fn update_workspace(
        &self,
        id: &str,
        w: &WorkspaceWrite,
    ) -> Result<Workspace, CloudError> {
        let request =
            Request::write(Method::PUT, "workspaces.update", &["v1", "workspaces", id]).json(w)?;
        self.transport.data(request).await
    }

    /// `DELETE /v1/workspaces/:id` (a soft delete; its apps and databases go back to the owner).
    pub async fn delete_workspace(&self, id: &str) -> Result<(), CloudError> {
        let request = Request::write(
            Method::DELETE,
            "workspaces.delete",
            &["v1", "workspaces", id],
        );
        self.transport.no_data(request).await
    }
}
