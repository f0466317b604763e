//! Reference data: specifications, images and regions.

use serde::de::DeserializeOwned;

use super::StrettchClient;
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::cloud::transport::Request;
use crate::providers::strettch::model::{Image, Region, Specification};

impl StrettchClient {
    /// `GET /computes/specifications`, every page (the sandbox pages it; a short answer without
    /// `meta` is the whole list).
    pub async fn list_specifications(&self, p: Priority) -> Result<Vec<Specification>, CloudError> {
        self.catalog(
            "specifications.list",
            &["computes", "specifications"],
            p,
            |s: &Specification| s.id.clone(),
        )
        .await
    }

    pub async fn list_images(&self, p: Priority) -> Result<Vec<Image>, CloudError> {
        self.catalog("images.list", &["images"], p, |i: &Image| i.image.clone())
            .await
    }

    pub async fn list_regions(&self, p: Priority) -> Result<Vec<Region>, CloudError> {
        self.catalog("regions.list", &["regions"], p, |r: &Region| {
            r.region.clone()
        })
        .await
    }

    async fn catalog<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        segments: &[&str],
        p: Priority,
        id: impl Fn(&T) -> String,
    ) -> Result<Vec<T>, CloudError> {
        self.transport
            .list_all(Request::get(operation, segments, p), id)
            .await
    }
}
