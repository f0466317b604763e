//! `/v1/keys` and `/v1/tokens` (seed 003). A key is created with the dashboard session token,
//! never an API key (the API refuses one there): [`CloudApiClient::session`] is a client of
//! that credential.

use reqwest::Method;
use uuid::Uuid;

use super::{CloudApiClient, CloudApiWire};
use crate::cloud::throttle::{Policy, Priority};
use crate::cloud::transport::{Request, Transport};
use crate::cloud::{ApiKey, CloudError};
use crate::providers::cloudapi::model::{
    IssuedKey, IssuedToken, KeyCreate, Revoked, Token, TokenCreate,
};

impl CloudApiClient {
    /// A client of the same endpoint and dialect acting with the dashboard session `token`:
    /// only for `POST /v1/keys`. Session tokens have the per-key limit and no workspace's.
    pub fn session(&self, token: &ApiKey, policy: &Policy) -> Result<CloudApiClient, CloudError> {
        Ok(CloudApiClient {
            transport: Transport::new(
                CloudApiWire::new(self.dialect),
                self.endpoint(),
                token,
                policy.key_part(),
                None,
            )?,
            dialect: self.dialect,
        })
    }

    /// `POST /v1/keys` (with a session client): a new key of `project`, its value shown once.
    pub async fn create_key(
        &self,
        body: &KeyCreate,
        idempotency_key: Uuid,
    ) -> Result<IssuedKey, CloudError> {
        let request =
            Request::create("keys.create", &["v1", "keys"], idempotency_key).json(body)?;
        self.transport.data(request).await
    }

    /// `DELETE /v1/keys/{id}`: revokes at once; revoking again answers the same.
    pub async fn revoke_key(&self, id: &str) -> Result<Revoked, CloudError> {
        let request = Request::write(Method::DELETE, "keys.revoke", &["v1", "keys", id]);
        self.transport.data(request).await
    }

    /// `GET /v1/tokens` (*assumed*): ids, names and scopes, never a value.
    pub async fn list_tokens(&self, p: Priority) -> Result<Vec<Token>, CloudError> {
        let request = Request::get("tokens.list", &["v1", "tokens"], p);
        self.transport
            .list_all(request, |t: &Token| t.id.clone())
            .await
    }

    /// `POST /v1/tokens`: a token, its value shown once.
    pub async fn create_token(
        &self,
        body: &TokenCreate,
        idempotency_key: Uuid,
    ) -> Result<IssuedToken, CloudError> {
        let request =
            Request::create("tokens.create", &["v1", "tokens"], idempotency_key).json(body)?;
        self.transport.data(request).await
    }

    /// `DELETE /v1/tokens/{id}` (*assumed*).
    pub async fn revoke_token(&self, id: &str) -> Result<Revoked, CloudError> {
        let request = Request::write(Method::DELETE, "tokens.revoke", &["v1", "tokens", id]);
        self.transport.data(request).await
    }
}
