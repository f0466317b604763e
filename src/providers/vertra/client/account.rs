//! The account: `/v1/users/me` lists every app and database in one call, and the `/status`
//! arrays tell which of them run — the bulk observation.

use super::VertraClient;
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::cloud::transport::Request;
use crate::providers::vertra::model::{AppStatus, DatabaseStatus, Me};

impl VertraClient {
    /// `GET /v1/users/me`: the account with every app and database it owns.
    pub async fn me(&self, p: Priority) -> Result<Me, CloudError> {
        let request = Request::get("users.me", &["v1", "users", "me"], p);
        self.transport.data(request).await
    }

    /// `GET /v1/apps/status`: whether each app runs or installs.
    pub async fn apps_status(&self, p: Priority) -> Result<Vec<AppStatus>, CloudError> {
        let request = Request::get("apps.status", &["v1", "apps", "status"], p);
        self.transport.data(request).await
    }

    /// `GET /v1/databases/status`: whether each database runs.
    pub async fn databases_status(&self, p: Priority) -> Result<Vec<DatabaseStatus>, CloudError> {
        let request = Request::get("databases.status", &["v1", "databases", "status"], p);
        self.transport.data(request).await
    }
}
