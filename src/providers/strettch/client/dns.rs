//! `/domains` and `/domains/{id}/records`.

use reqwest::Method;
use uuid::Uuid;

use super::StrettchClient;
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::cloud::transport::Request;
use crate::providers::strettch::model::{Domain, DomainCreate, Record, RecordWrite};

impl StrettchClient {
    /// Every domain (all pages).
    pub async fn list_domains(&self, p: Priority) -> Result<Vec<Domain>, CloudError> {
        let request = Request::get("domains.list", &["domains"], p);
        self.transport
            .list_all(request, |d: &Domain| d.id.clone())
            .await
    }

    pub async fn get_domain(&self, id: &str, p: Priority) -> Result<Domain, CloudError> {
        let request = Request::get("domains.get", &["domains", id], p);
        self.transport.data(request).await
    }

    pub async fn create_domain(
        &self,
        req: &DomainCreate,
        idempotency_key: Uuid,
    ) -> Result<Domain, CloudError> {
        let request = Request::create("domains.create", &["domains"], idempotency_key).json(req)?;
        self.transport.data(request).await
    }

    pub async fn delete_domain(&self, id: &str) -> Result<(), CloudError> {
        let request = Request::write(Method::DELETE, "domains.delete", &["domains", id]);
        self.transport.no_data(request).await
    }

    /// Every record of a domain (all pages).
    pub async fn list_records(
        &self,
        domain_id: &str,
        p: Priority,
    ) -> Result<Vec<Record>, CloudError> {
        let request = Request::get("records.list", &["domains", domain_id, "records"], p);
        self.transport
            .list_all(request, |r: &Record| r.id.clone())
            .await
    }

    pub async fn get_record(
        &self,
        domain_id: &str,
        id: &str,
        p: Priority,
    ) -> Result<Record, CloudError> {
        let request = Request::get("records.get", &["domains", domain_id, "records", id], p);
        self.transport.data(request).await
    }

    pub async fn create_record(
        &self,
        domain_id: &str,
        req: &RecordWrite,
        idempotency_key: Uuid,
    ) -> Result<Record, CloudError> {
        let request = Request::create(
            "records.create",
            &["domains", domain_id, "records"],
            idempotency_key,
        )
        .json(req)?;
        self.transport.data(request).await
    }

    pub async fn update_record(
        &self,
        domain_id: &str,
        id: &str,
        req: &RecordWrite,
    ) -> Result<Record, CloudError> {
        let request = Request::write(
            Method::PUT,
            "records.update",
            &["domains", domain_id, "records", id],
        )
        .json(req)?;
        self.transport.data(request).await
    }

    pub async fn delete_record(&self, domain_id: &str, id: &str) -> Result<(), CloudError> {
        let request = Request::write(
            Method::DELETE,
            "records.delete",
            &["domains", domain_id, "records", id],
        );
        self.transport.no_data(request).await
    }
}
