//! `/v1/databases`: create, read, update, lifecycle, delete and credentials.

use reqwest::Method;

use super::VertraClient;
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::cloud::transport::Request;
use crate::providers::vertra::model::{
    Certificate, Database, DatabaseCreate, DatabaseUpdate, Password,
};

impl VertraClient {
    pub async fn get_database(&self, id: &str, p: Priority) -> Result<Database, CloudError> {
        let request = self.scoped(Request::get("databases.get", &["v1", "databases", id], p));
        self.transport.data(request).await
    }

    /// `POST /v1/databases`. Sent once (no idempotency key).
    pub async fn create_database(&self, db: &DatabaseCreate) -> Result<Database, CloudError> {
        let request = Request::write(Method::POST, "databases.create", &["v1", "databases"])
            .once()
            .priority(Priority::Create)
            .json(db)?;
        self.transport.data(request).await
    }

    /// `PUT /v1/databases/:id` (flat body).
    pub async fn update_database(
        &self,
        id: &str,
        update: &DatabaseUpdate,
    ) -> Result<(), CloudError> {
        let request = Request::write(Method::PUT, "databases.update", &["v1", "databases", id])
            .json(update)?;
        self.transport.no_data(self.scoped(request)).await
    }

    pub async fn start_database(&self, id: &str) -> Result<(), CloudError> {
        let request = Request::write(
            Method::POST,
            "databases.start",
            &["v1", "databases", id, "start"],
        );
        self.transport.no_data(self.scoped(request)).await
    }

    pub async fn stop_database(&self, id: &str) -> Result<(), CloudError> {
        let request = Request::write(
            Method::POST,
            "databases.stop",
            &["v1", "databases", id, "stop"],
        );
        self.transport.no_data(self.scoped(request)).await
    }

    /// `DELETE /v1/databases/:id`: takes a safety snapshot first; `SNAPSHOT_FAILED` means
    /// nothing was deleted.
    pub async fn delete_database(&self, id: &str) -> Result<(), CloudError> {
        let request = Request::write(Method::DELETE, "databases.delete", &["v1", "databases", id]);
        self.transport.no_data(self.scoped(request)).await
    }

    /// `POST /v1/databases/:id/credentials/reset`: a new password (the only way the API gives
    /// one). Disconnects clients; sent once, since a repeat would replace the password again.
    pub async fn reset_password(&self, id: &str) -> Result<Password, CloudError> {
        let request = Request::write(
            Method::POST,
            "databases.credentials.reset",
            &["v1", "databases", id, "credentials", "reset"],
        )
        .once();
        self.transport.data(self.scoped(request)).await
    }

    /// `GET /v1/databases/:id/credentials/certificate`.
    pub async fn certificate(&self, id: &str, p: Priority) -> Result<Certificate, CloudError> {
        let request = self.scoped(Request::get(
            "databases.credentials.certificate",
            &["v1", "databases", id, "credentials", "certificate"],
            p,
        ));
        self.transport.data(request).await
    }
}
