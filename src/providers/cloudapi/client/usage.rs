//! `/v1/usage`: the account's (workspace's) requests this month.

use super::CloudApiClient;
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::cloud::transport::Request;
use crate::providers::cloudapi::model::Usage;

impl CloudApiClient {
    /// `GET /v1/usage`.
    pub async fn usage(&self, p: Priority) -> Result<Usage, CloudError> {
        let request = Request::get("usage.get", &["v1", "usage"], p);
        self.transport.data(request).await
    }
}
