//! The Token adapter (seed 003; the list and revoke routes are *assumed*). A token's value is
//! shown once, in the create's answer: it goes to the connection Secret (`token`, `tokenId`)
//! and nowhere else. Name and scopes are fixed at create: a change of them is handled as a
//! rotation (the engine's rotation field is the user's `connectionSecretRotation` plus a digest
//! of name and scopes), so a new token with the new scopes is issued, written, and the
//! previous one revoked after the grace period. Tokens are observed in bulk (one
//! `GET /v1/tokens` per resync for every Token of the ProviderConfig).

use std::time::Duration;

use kube::ResourceExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::api::token::{Token, TokenObservation, TokenParameters};
use super::cloud::{CloudApiCloud, not_found};
use super::credentials::{connection_record, issued_versions, replace_key};
use super::model::{self, IssuedToken, TokenCreate};
use crate::api::common::{ConnectionSecretSpec, ConnectionSecretStatus};
use crate::cloud::CloudError;
use crate::engine::{
    Adapter, Blocked, ConnectionDetails, Created, Found, Freshness, Invalid, Plan, Readiness,
    Revocation,
};

#[derive(Clone)]
pub struct TokenAdapter;

/// A token as the operator knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedToken {
    /// The first token the object made: its external id.
    pub id: String,
    /// The token in the Secret now, as listed.
    pub live: model::Token,
    /// Every token the object issued that may still be valid.
    pub issued: Vec<String>,
}

fn details(t: &IssuedToken) -> ConnectionDetails {
    ConnectionDetails::new(t.id.clone())
        .with("token", t.token.expose().as_bytes().to_vec())
        .with("tokenId", t.id.as_bytes().to_vec())
}

fn record(obj: &Token) -> Option<ConnectionSecretStatus> {
    connection_record(
        obj.annotations(),
        obj.status
            .as_ref()
            .and_then(|s| s.managed.connection_secret.as_ref()),
    )
}

/// The scopes as the API keeps them: sorted, without duplicates.
pub fn normalized(scopes: &[String]) -> Vec<String> {
    let mut s: Vec<String> = scopes.iter().map(|s| s.trim().to_string()).collect();
    s.sort();
    s.dedup();
    s
}

/// The rotation the engine sees: the user's nonce and a digest of name and scopes, so a change
/// of either issues a new token exactly as a rotation does.
pub fn rotation(spec: &ConnectionSecretSpec, p: &TokenParameters) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::json!([p.name, normalized(&p.scopes)]).to_string());
    let digest: String = h
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}/scopes-{digest}",
        spec.connection_secret_rotation.as_deref().unwrap_or("")
    )
}

pub fn validate_params(p: &TokenParameters) -> Result<(), Invalid> {
    let invalid = |m: String| Err(Invalid::new("InvalidSpec", m));
    let name = p.name.trim();
    if name.is_empty() || name != p.name || name.chars().count() > 100 {
        return invalid(format!(
            "spec.forProvider.name {:?} must be 1-100 characters without surrounding spaces",
            p.name
        ));
    }
    if p.scopes.is_empty() {
        return invalid(
            "spec.forProvider.scopes must name at least one scope (e.g. usage:read)".into(),
        );
    }
    if let Some(bad) = p
        .scopes
        .iter()
        .find(|s| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return invalid(format!(
            "spec.forProvider.scopes has {bad:?}: a scope is a word such as usage:read"
        ));
    }
    Ok(())
}

pub fn observation(o: &ObservedToken) -> TokenObservation {
    TokenObservation {
        id: o.id.clone(),
        token_id: o.live.id.clone(),
        name: o.live.name.clone().unwrap_or_default(),
        scopes: o.live.scopes.clone(),
        created_at: o.live.created_at.clone(),
    }
}

/// What a Token create sends (recorded on the object before it is sent): no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCreateRequest {
    pub name: String,
    pub scopes: Vec<String>,
}

async fn issue(
    cloud: &CloudApiCloud,
    p: &TokenParameters,
    key: Uuid,
) -> Result<IssuedToken, CloudError> {
    let made = cloud
        .client
        .create_token(
            &TokenCreate {
                name: p.name.clone(),
                scopes: normalized(&p.scopes),
            },
            key,
        )
        .await?;
    cloud.tokens.put(made.listed());
    Ok(made)
}

/// `DELETE /v1/tokens/{id}` for each; a token already gone is fine.
async fn revoke_tokens(cloud: &CloudApiCloud, ids: &[String]) -> Result<(), CloudError> {
    for id in ids {
        match cloud.client.revoke_token(id).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        cloud.tokens.remove(id);
    }
    Ok(())
}

#[async_trait::async_trait]
impl Adapter for TokenAdapter {
    type Kind = Token;
    type Cloud = CloudApiCloud;
    type Observed = ObservedToken;
    type Desired = TokenParameters;
    type Action = ();
    type CreateRequest = TokenCreateRequest;

    const PROVIDER: &'static str = super::PROVIDER;
    const CONTROLLER: &'static str = "token";

    crate::managed_kind_accessors!(observation);

    fn validate(obj: &Token) -> Result<(), Invalid> {
        validate_params(&obj.spec.for_provider)
    }

    async fn desired(&self, _kube: &kube::Client, obj: &Token) -> Result<TokenParameters, Blocked> {
        Ok(obj.spec.for_provider.clone())
    }

    async fn observe(
        &self,
        cloud: &CloudApiCloud,
        obj: &Token,
        id: &str,
        fresh: Freshness,
    ) -> Result<Option<ObservedToken>, CloudError> {
        // The token in the Secret now; the first one until a replacement is recorded.
        let live_id = record(obj)
            .and_then(|r| r.version)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| id.to_string());
        let wanted = live_id.clone();
        let live = cloud
            .tokens
            .observe(
                &live_id,
                fresh,
                // The API has no GET of one token: its "GET" is a listing, shared by every
                // reader waiting for one and installed in the snapshot.
                |p| async move {
                    cloud
                        .tokens
                        .get(&wanted, Duration::ZERO, || cloud.client.list_tokens(p))
                        .await?
                        .ok_or_else(|| not_found(&format!("token {wanted}")))
                },
                |p| cloud.client.list_tokens(p),
            )
            .await?;
        Ok(live.map(|live| ObservedToken {
            id: id.to_string(),
            live,
            issued: issued_versions(id, record(obj).as_ref()),
        }))
    }

    fn create_request(_obj: &Token, p: &TokenParameters) -> TokenCreateRequest {
        TokenCreateRequest {
            name: p.name.clone(),
            scopes: normalized(&p.scopes),
        }
    }

    /// Nothing is looked for (a listing never shows a value): the engine replays the request
    /// under its Idempotency-Key, which answers the token the first attempt made, value
    /// included.
    async fn find_created(
        &self,
        _cloud: &CloudApiCloud,
        _obj: &Token,
        _request: &TokenCreateRequest,
    ) -> Result<Option<Found<ObservedToken>>, CloudError> {
        Ok(None)
    }

    async fn create(
        &self,
        cloud: &CloudApiCloud,
        _obj: &Token,
        request: &TokenCreateRequest,
        key: Uuid,
    ) -> Result<Created<ObservedToken>, CloudError> {
        let p = TokenParameters {
            name: request.name.clone(),
            scopes: request.scopes.clone(),
        };
        let made = issue(cloud, &p, key).await?;
        Ok(Created {
            observed: ObservedToken {
                id: made.id.clone(),
                live: made.listed(),
                issued: vec![made.id.clone()],
            },
            connection: Some(details(&made)),
        })
    }

    fn connection_secret(obj: &Token) -> Option<ConnectionSecretSpec> {
        Some(ConnectionSecretSpec {
            write_connection_secret_to_ref: obj
                .spec
                .connection
                .write_connection_secret_to_ref
                .clone(),
            connection_secret_rotation: Some(rotation(
                &obj.spec.connection,
                &obj.spec.for_provider,
            )),
        })
    }

    /// A new token with the spec's name and scopes (a rotation, a scope change, or a value
    /// lost before it reached the Secret).
    async fn replace(
        &self,
        cloud: &CloudApiCloud,
        obj: &Token,
        _observed: &ObservedToken,
    ) -> Result<Option<ConnectionDetails>, CloudError> {
        let current = record(obj).and_then(|r| r.version);
        let key = replace_key(
            obj.metadata.uid.as_deref().unwrap_or_default(),
            "token.replace",
            Some(&rotation(&obj.spec.connection, &obj.spec.for_provider)),
            current.as_deref(),
        );
        let made = issue(cloud, &obj.spec.for_provider, key).await?;
        Ok(Some(details(&made)))
    }

    async fn revoke(
        &self,
        cloud: &CloudApiCloud,
        _obj: &Token,
        observed: &ObservedToken,
        which: Revocation<'_>,
    ) -> Result<bool, CloudError> {
        let ids: Vec<String> = match which {
            Revocation::AllBut(keep) => observed
                .issued
                .iter()
                .filter(|v| v.as_str() != keep)
                .cloned()
                .collect(),
            Revocation::Only(versions) => versions.to_vec(),
        };
        revoke_tokens(cloud, &ids).await?;
        Ok(true)
    }

    /// Name and scopes are fixed at create; a change of them is a rotation (see the module
    /// docs), never an update.
    fn plan(_d: &TokenParameters, _o: &ObservedToken, _digest: Option<&str>) -> Plan<()> {
        Plan::UpToDate
    }

    async fn act(
        &self,
        _cloud: &CloudApiCloud,
        o: &ObservedToken,
        _action: &(),
    ) -> Result<ObservedToken, CloudError> {
        Ok(o.clone())
    }

    /// Revokes every token the object issued.
    async fn delete(&self, cloud: &CloudApiCloud, o: &ObservedToken) -> Result<(), CloudError> {
        revoke_tokens(cloud, &o.issued).await
    }

    fn external_id(o: &ObservedToken) -> String {
        o.id.clone()
    }

    fn is_deleting(_o: &ObservedToken) -> bool {
        false
    }

    fn is_transitional(_o: &ObservedToken) -> bool {
        false
    }

    fn readiness(o: &ObservedToken) -> Readiness {
        Readiness::Available(format!(
            "token {} ({}) is valid with scopes {}",
            o.live.id,
            o.live.name.as_deref().unwrap_or(""),
            o.live.scopes.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(name: &str, scopes: &[&str]) -> TokenParameters {
        TokenParameters {
            name: name.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_scope_change_is_a_rotation_and_their_order_is_not() {
        let spec = ConnectionSecretSpec::default();
        let a = rotation(&spec, &params("ci", &["usage:read", "users:read"]));
        assert_eq!(
            a,
            rotation(&spec, &params("ci", &["users:read", "usage:read"]))
        );
        assert_ne!(a, rotation(&spec, &params("ci", &["usage:read"])));
        assert_ne!(
            a,
            rotation(&spec, &params("cd", &["usage:read", "users:read"]))
        );
        let nonce = ConnectionSecretSpec {
            connection_secret_rotation: Some("2026-12".into()),
            ..Default::default()
        };
        assert_ne!(
            a,
            rotation(&nonce, &params("ci", &["usage:read", "users:read"]))
        );
    }

    #[test]
    fn names_and_scopes_the_api_would_refuse_are_spec_errors() {
        assert!(validate_params(&params("ci", &["usage:read"])).is_ok());
        assert!(validate_params(&params("", &["usage:read"])).is_err());
        assert!(validate_params(&params("ci", &[])).is_err());
        assert!(validate_params(&params("ci", &["usage read"])).is_err());
    }

    #[test]
    fn a_token_value_goes_to_the_secret_only() {
        let t: IssuedToken = serde_json::from_value(serde_json::json!({
            "id": "tok_1", "token": "cap_secretvalue", "name": "ci", "scopes": ["usage:read"]
        }))
        .unwrap();
        let d = details(&t);
        assert_eq!(d.keys(), vec!["token", "tokenId"]);
        assert!(!format!("{d:?} {t:?}").contains("cap_secret"));
    }
}
