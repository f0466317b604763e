//! The Vertra side of a ProviderConfig: one client (one throttle per key) and the shared
//! snapshots. Vertra lists everything whole — `/v1/users/me` holds every app and database,
//! `/v1/apps/status` and `/v1/databases/status` whether each runs — so observing N apps costs
//! two requests per resync, not N.

use std::sync::Arc;
use std::time::Duration;

use super::client::{DEFAULT_ENDPOINT, VertraClient, default_limits, with_vertra_limits};
use super::model::{App, Database, Workspace};
use crate::api::provider_config::{Provider, ProviderConfigSpec};
use crate::cloud::throttle::{KeyThrottle, Priority};
use crate::cloud::{ApiKey, CloudError};
use crate::engine::snapshot::{Item, Snapshot};
use crate::engine::{Connect, ProviderError};

/// One listing holds every item: a snapshot's refresh is always one request.
const WHOLE: usize = usize::MAX;

/// An app with what `/status` says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedApp {
    pub app: App,
    pub running: bool,
    pub installing: bool,
}

/// A database with what `/status` says of it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedDatabase {
    pub db: Database,
    pub running: bool,
}

pub struct VertraCloud {
    pub client: VertraClient,
    pub apps: Snapshot<ObservedApp>,
    pub databases: Snapshot<ObservedDatabase>,
    pub workspaces: Snapshot<Workspace>,
}

impl Connect for VertraCloud {
    fn connect(
        config_name: &str,
        spec: &ProviderConfigSpec,
        key: ApiKey,
    ) -> Result<Self, ProviderError> {
        let invalid = |message: String| ProviderError::Invalid {
            config: config_name.into(),
            message,
        };
        if spec.provider != Provider::Vertra {
            return Err(ProviderError::WrongProvider {
                config: config_name.into(),
                provider: spec.provider.as_str().into(),
            });
        }
        // Before any client exists, so a refused endpoint never sees a request (nor the key).
        spec.check_endpoint(DEFAULT_ENDPOINT).map_err(invalid)?;
        let endpoint = spec.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT);
        let deploys = spec.vertra.as_ref().and_then(|v| v.deploys_per_hour);
        let policy = with_vertra_limits(
            spec.throttle_policy(&default_limits()).map_err(invalid)?,
            deploys,
        );
        let workspace = spec.vertra.as_ref().and_then(|v| v.workspace_id.clone());
        let client =
            VertraClient::for_provider_config(config_name, endpoint, key, policy, workspace)
                .map_err(|e| invalid(e.to_string()))?;
        Ok(Self::new(client))
    }

    fn throttle(&self) -> Option<&Arc<KeyThrottle>> {
        Some(self.client.throttle())
    }
}

impl VertraCloud {
    pub fn new(client: VertraClient) -> Self {
        let budget = client.throttle().clone();
        Self {
            apps: Snapshot::paced(WHOLE, budget.clone()),
            databases: Snapshot::paced(WHOLE, budget.clone()),
            workspaces: Snapshot::paced(WHOLE, budget),
            client,
        }
    }

    /// Every app with its run state: `/users/me` and `/apps/status`.
    pub async fn list_apps(&self, p: Priority) -> Result<Vec<ObservedApp>, CloudError> {
        let me = self.client.me(p).await?;
        let status = self.client.apps_status(p).await?;
        Ok(me
            .applications
            .into_iter()
            .map(|app| {
                let s = status.iter().find(|s| s.id == app.id);
                ObservedApp {
                    running: s.map_or(app.status.as_deref() == Some("up"), |s| s.running),
                    installing: s.and_then(|s| s.installing).unwrap_or(false),
                    app,
                }
            })
            .collect())
    }

    /// One app with its run state: two GETs.
    pub async fn get_app(&self, id: &str, p: Priority) -> Result<ObservedApp, CloudError> {
        let app = self.client.get_app(id, p).await?;
        let status = self.client.app_status(id, p).await?;
        Ok(ObservedApp {
            app,
            running: status.running,
            installing: status.installing.unwrap_or(false),
        })
    }

    /// Every database with its run state: `/users/me` and `/databases/status`.
    pub async fn list_databases(&self, p: Priority) -> Result<Vec<ObservedDatabase>, CloudError> {
        let me = self.client.me(p).await?;
        let status = self.client.databases_status(p).await?;
        Ok(me
            .databases
            .into_iter()
            .map(|db| ObservedDatabase {
                running: status
                    .iter()
                    .find(|s| s.id == db.id)
                    .map_or(db.status.as_deref() == Some("up"), |s| s.running),
                db,
            })
            .collect())
    }

    pub async fn get_database(
        &self,
        id: &str,
        p: Priority,
    ) -> Result<ObservedDatabase, CloudError> {
        let db = self.client.get_database(id, p).await?;
        Ok(ObservedDatabase {
            running: db.status.as_deref() == Some("up"),
            db,
        })
    }

    /// A fresh listing of every app, for finding what an ambiguous create made.
    pub async fn relist_apps(&self) -> Result<(), CloudError> {
        self.apps
            .get("", Duration::ZERO, || self.list_apps(Priority::Urgent))
            .await
            .map(|_| ())
    }

    pub async fn relist_databases(&self) -> Result<(), CloudError> {
        self.databases
            .get("", Duration::ZERO, || self.list_databases(Priority::Urgent))
            .await
            .map(|_| ())
    }

    pub async fn relist_workspaces(&self) -> Result<(), CloudError> {
        self.workspaces
            .get("", Duration::ZERO, || {
                self.client.list_workspaces(Priority::Urgent)
            })
            .await
            .map(|_| ())
    }
}

impl Item for ObservedApp {
    fn id(&self) -> &str {
        &self.app.id
    }
    fn is_transitional(&self) -> bool {
        self.installing
    }
}

impl Item for ObservedDatabase {
    fn id(&self) -> &str {
        &self.db.id
    }
    fn is_transitional(&self) -> bool {
        false
    }
}

impl Item for Workspace {
    fn id(&self) -> &str {
        &self.id
    }
    fn is_transitional(&self) -> bool {
        false
    }
}
