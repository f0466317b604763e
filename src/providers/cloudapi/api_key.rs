//! The ApiKey adapter (seed 003). `POST /v1/keys` takes the dashboard session token, never an
//! API key, and shows the key once: it goes to the connection Secret (`apiKey`, `keyId`,
//! `projectId`) and nowhere else. No read or list of keys is documented, so a key is known to
//! exist while its project does (deleting a project revokes its keys); the values the object
//! issued are known from its connection record. A rotation (`connectionSecretRotation`) issues
//! a new key under an Idempotency-Key derived from the rotation, so a kill in between never
//! leaves a key nobody knows; the previous key is revoked after the grace period, and deleting
//! the object revokes every key it issued.

use std::collections::HashSet;

use kube::ResourceExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::api::api_key::{ApiKey, ApiKeyObservation};
use super::cloud::CloudApiCloud;
use super::credentials::{
    connection_record, issued_versions, needs_session, replace_key, session_token,
};
use super::model::{IssuedKey, KeyCreate};
use super::project::resolve_project;
use crate::api::common::ConnectionSecretSpec;
use crate::cloud::CloudError;
use crate::engine::{
    Adapter, Blocked, ConnectionDetails, Created, Found, Freshness, Invalid, Plan, Readiness,
    Revocation,
};

#[derive(Clone)]
pub struct ApiKeyAdapter {
    kube: kube::Client,
    /// Keys whose object is being deleted and that were revoked: gone from here on (the API
    /// cannot be asked).
    revoked: std::sync::Arc<Mutex<HashSet<String>>>,
}

impl ApiKeyAdapter {
    pub fn new(kube: kube::Client) -> Self {
        Self {
            kube,
            revoked: Default::default(),
        }
    }
}

/// What an ApiKey create sends (recorded on the object before it is sent): no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyCreate {
    pub project_id: String,
}

/// A key as the operator knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedKey {
    /// The first key the object made: its external id.
    pub id: String,
    pub project_id: String,
    /// Every key the object issued that may still be valid.
    pub issued: Vec<String>,
}

fn details(k: &IssuedKey, project: &str) -> ConnectionDetails {
    ConnectionDetails::new(k.id.clone())
        .with("apiKey", k.key.expose().as_bytes().to_vec())
        .with("keyId", k.id.as_bytes().to_vec())
        .with("projectId", project.as_bytes().to_vec())
}

fn record(obj: &ApiKey) -> Option<crate::api::common::ConnectionSecretStatus> {
    connection_record(
        obj.annotations(),
        obj.status
            .as_ref()
            .and_then(|s| s.managed.connection_secret.as_ref()),
    )
}

pub fn observation(o: &ObservedKey) -> ApiKeyObservation {
    ApiKeyObservation {
        id: o.id.clone(),
        project_id: o.project_id.clone(),
    }
}

impl ApiKeyAdapter {
    async fn project_of(&self, obj: &ApiKey) -> Result<String, Blocked> {
        if let Some(p) = obj
            .status
            .as_ref()
            .and_then(|s| s.at_provider.as_ref())
            .map(|a| a.project_id.clone())
            .filter(|p| !p.is_empty())
        {
            return Ok(p);
        }
        let p = &obj.spec.for_provider;
        let ns = obj.metadata.namespace.as_deref().unwrap_or("default");
        resolve_project(
            &self.kube,
            ns,
            p.project_ref.as_ref(),
            p.project_id.as_deref(),
        )
        .await
    }

    async fn issue(
        &self,
        cloud: &CloudApiCloud,
        obj: &ApiKey,
        project: &str,
        key: Uuid,
    ) -> Result<ConnectionDetails, CloudError> {
        let token = session_token(&self.kube, &obj.spec.provider_config_ref.name)
            .await
            .map_err(needs_session)?;
        let session = cloud.client.session(&token, &cloud.policy)?;
        let made = session
            .create_key(
                &KeyCreate {
                    project_id: project.to_string(),
                },
                key,
            )
            .await?;
        Ok(details(&made, project))
    }

    async fn revoke_all(&self, cloud: &CloudApiCloud, ids: &[String]) -> Result<(), CloudError> {
        for id in ids {
            match cloud.client.revoke_key(id).await {
                Ok(_) => {}
                // The key (or its project) is gone: nothing left to revoke.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Adapter for ApiKeyAdapter {
    type Kind = ApiKey;
    type Cloud = CloudApiCloud;
    type Observed = ObservedKey;
    type Desired = String;
    type Action = ();
    type CreateRequest = ApiKeyCreate;

    const PROVIDER: &'static str = super::PROVIDER;
    const CONTROLLER: &'static str = "apikey";

    crate::managed_kind_accessors!(observation);

    fn validate(obj: &ApiKey) -> Result<(), Invalid> {
        let p = &obj.spec.for_provider;
        if p.project_ref.is_some() == p.project_id.is_some() {
            return Err(Invalid::new(
                "InvalidSpec",
                "set exactly one of spec.forProvider.projectRef and spec.forProvider.projectId",
            ));
        }
        Ok(())
    }

    /// The project id. A key not made yet also needs the session token: without it the object
    /// is Stalled (SessionTokenMissing) before any call.
    async fn desired(&self, _kube: &kube::Client, obj: &ApiKey) -> Result<String, Blocked> {
        let project = self.project_of(obj).await?;
        if Self::reported_id(obj).is_none() && obj.metadata.deletion_timestamp.is_none() {
            session_token(&self.kube, &obj.spec.provider_config_ref.name)
                .await
                .map_err(Blocked::Invalid)?;
        }
        Ok(project)
    }

    async fn observe(
        &self,
        cloud: &CloudApiCloud,
        obj: &ApiKey,
        id: &str,
        fresh: Freshness,
    ) -> Result<Option<ObservedKey>, CloudError> {
        if obj.metadata.deletion_timestamp.is_some() && self.revoked.lock().contains(id) {
            return Ok(None);
        }
        let project = match self.project_of(obj).await {
            Ok(p) => p,
            Err(Blocked::Invalid(i) | Blocked::Waiting(i)) => {
                return Err(CloudError::Config(i.message));
            }
        };
        // A project's keys go with it.
        let found = cloud
            .projects
            .observe(
                &project,
                fresh,
                |p| cloud.client.get_project(&project, p),
                |p| cloud.client.list_projects(p),
            )
            .await?;
        Ok(found.map(|_| ObservedKey {
            id: id.to_string(),
            project_id: project.clone(),
            issued: issued_versions(id, record(obj).as_ref()),
        }))
    }

    fn create_request(_obj: &ApiKey, project: &String) -> ApiKeyCreate {
        ApiKeyCreate {
            project_id: project.clone(),
        }
    }

    /// Nothing is looked for (keys cannot be listed): the engine replays the request under
    /// its Idempotency-Key, which answers the key the first attempt made, value included.
    async fn find_created(
        &self,
        _cloud: &CloudApiCloud,
        _obj: &ApiKey,
        _request: &ApiKeyCreate,
    ) -> Result<Option<Found<ObservedKey>>, CloudError> {
        Ok(None)
    }

    async fn create(
        &self,
        cloud: &CloudApiCloud,
        obj: &ApiKey,
        request: &ApiKeyCreate,
        key: Uuid,
    ) -> Result<Created<ObservedKey>, CloudError> {
        let details = self.issue(cloud, obj, &request.project_id, key).await?;
        let id = details.version.clone();
        Ok(Created {
            observed: ObservedKey {
                id: id.clone(),
                project_id: request.project_id.clone(),
                issued: vec![id],
            },
            connection: Some(details),
        })
    }

    fn connection_secret(obj: &ApiKey) -> Option<ConnectionSecretSpec> {
        Some(obj.spec.connection.clone())
    }

    async fn replace(
        &self,
        cloud: &CloudApiCloud,
        obj: &ApiKey,
        observed: &ObservedKey,
    ) -> Result<Option<ConnectionDetails>, CloudError> {
        let current = record(obj).and_then(|r| r.version);
        let key = replace_key(
            obj.metadata.uid.as_deref().unwrap_or_default(),
            "apikey.replace",
            obj.spec.connection.connection_secret_rotation.as_deref(),
            current.as_deref(),
        );
        self.issue(cloud, obj, &observed.project_id, key)
            .await
            .map(Some)
    }

    async fn revoke(
        &self,
        cloud: &CloudApiCloud,
        _obj: &ApiKey,
        observed: &ObservedKey,
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
        self.revoke_all(cloud, &ids).await?;
        Ok(true)
    }

    fn plan(project: &String, o: &ObservedKey, _digest: Option<&str>) -> Plan<()> {
        if *project != o.project_id {
            return Plan::Impossible(Invalid::new(
                "ProjectImmutable",
                format!(
                    "key {} belongs to project {}, the spec names {project}: a key cannot move; create another ApiKey",
                    o.id, o.project_id
                ),
            ));
        }
        Plan::UpToDate
    }

    async fn act(
        &self,
        _cloud: &CloudApiCloud,
        o: &ObservedKey,
        _action: &(),
    ) -> Result<ObservedKey, CloudError> {
        Ok(o.clone())
    }

    /// Revokes every key the object issued.
    async fn delete(&self, cloud: &CloudApiCloud, o: &ObservedKey) -> Result<(), CloudError> {
        self.revoke_all(cloud, &o.issued).await?;
        self.revoked.lock().insert(o.id.clone());
        Ok(())
    }

    fn external_id(o: &ObservedKey) -> String {
        o.id.clone()
    }

    fn is_deleting(_o: &ObservedKey) -> bool {
        false
    }

    fn is_transitional(_o: &ObservedKey) -> bool {
        false
    }

    fn readiness(o: &ObservedKey) -> Readiness {
        Readiness::Available(format!("key {} of project {} is valid", o.id, o.project_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::cloudapi::model::IssuedKey;

    #[test]
    fn a_key_goes_to_the_secret_only_and_every_issued_key_is_known_for_revocation() {
        let k: IssuedKey = serde_json::from_value(serde_json::json!({
            "id": "key_1", "key": "sk_live_secretvalue", "project_id": "proj_1"
        }))
        .unwrap();
        let d = details(&k, "proj_1");
        assert_eq!(d.version, "key_1");
        assert_eq!(d.keys(), vec!["apiKey", "keyId", "projectId"]);
        assert!(!format!("{d:?}").contains("sk_live"));
        let record = crate::api::common::ConnectionSecretStatus {
            version: Some("key_3".into()),
            previous_version: Some("key_2".into()),
            retired: vec!["key_0".into()],
            ..Default::default()
        };
        assert_eq!(
            issued_versions("key_1", Some(&record)),
            vec!["key_0", "key_1", "key_2", "key_3"]
        );
    }
}
