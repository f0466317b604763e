//! `/computes`: list, get, create, delete and the lifecycle actions.

use reqwest::Method;
use uuid::Uuid;

use super::{MAX_PAGE_SIZE, StrettchClient};
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::cloud::transport::{Answer, PageAt, Request};
use crate::providers::strettch::model::{Compute, ComputeCreate, UpsizeRequest};

impl StrettchClient {
    /// One page of `GET /computes` (`limit` is clamped to 1..=[`MAX_PAGE_SIZE`]).
    pub async fn list_computes_page(
        &self,
        page: u64,
        limit: u64,
        p: Priority,
    ) -> Result<Answer<Vec<Compute>>, CloudError> {
        let request = Request::get("computes.list", &["computes"], p);
        self.transport
            .page(request, &PageAt::Number(page), limit.min(MAX_PAGE_SIZE))
            .await
    }

    /// Every compute: walks the pages at [`MAX_PAGE_SIZE`].
    pub async fn list_all_computes(&self, p: Priority) -> Result<Vec<Compute>, CloudError> {
        let request = Request::get("computes.list", &["computes"], p);
        self.transport
            .list_all(request, |c: &Compute| c.id.clone())
            .await
    }

    pub async fn get_compute(&self, id: &str, p: Priority) -> Result<Compute, CloudError> {
        let request = Request::get("computes.get", &["computes", id], p);
        self.transport.data(request).await
    }

    /// `POST /computes` with `idempotency_key`; a 202 and a replayed 202 both return the compute.
    /// Sent once: after an error whose outcome is unknown, the caller decides (module docs).
    pub async fn create_compute(
        &self,
        req: &ComputeCreate,
        idempotency_key: Uuid,
    ) -> Result<Compute, CloudError> {
        let request =
            Request::create("computes.create", &["computes"], idempotency_key).json(req)?;
        self.transport.data(request).await
    }

    /// `DELETE /computes/{id}`.
    pub async fn delete_compute(&self, id: &str) -> Result<(), CloudError> {
        let request = Request::write(Method::DELETE, "computes.delete", &["computes", id]);
        self.transport.no_data(request).await
    }

    pub async fn start_compute(&self, id: &str) -> Result<Compute, CloudError> {
        self.action(id, "computes.start", "start").await
    }

    pub async fn stop_compute(&self, id: &str) -> Result<Compute, CloudError> {
        self.action(id, "computes.stop", "stop").await
    }

    pub async fn reboot_compute(&self, id: &str) -> Result<Compute, CloudError> {
        self.action(id, "computes.reboot", "reboot").await
    }

    /// `POST /computes/{id}/{action}`: sets a state, so it is retried like any idempotent write.
    async fn action(
        &self,
        id: &str,
        operation: &'static str,
        action: &str,
    ) -> Result<Compute, CloudError> {
        let request = Request::write(Method::POST, operation, &["computes", id, action]);
        self.transport.data(request).await
    }

    /// `PATCH /computes/{id}/upsize` with `{newSpecification}` (a specification slug).
    pub async fn upsize_compute(
        &self,
        id: &str,
        new_specification: &str,
    ) -> Result<Compute, CloudError> {
        let body = UpsizeRequest {
            new_specification: new_specification.to_string(),
        };
        let request = Request::write(
            Method::PATCH,
            "computes.upsize",
            &["computes", id, "upsize"],
        )
        .json(&body)?;
        self.transport.data(request).await
    }
}
