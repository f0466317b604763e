//! `/v1/apps`: create (multipart), read, settings, lifecycle, code uploads, envs, publishing
//! and custom domains.

use std::sync::Arc;

use reqwest::Method;
use serde::Serialize;

use super::{DEPLOY, LIFECYCLE, VertraClient};
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::cloud::transport::{Part, Request};
use crate::providers::vertra::model::{
    App, AppConfigUpdate, AppStatus, DnsRequirement, Env, EnvWrite,
};

/// How long a create or an upload may take: up to 100 MB sent, and Vertra answers a create
/// once the app is installed. A timeout is an unknown outcome, so it must not come early.
pub const UPLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Where a new app's code comes from: exactly one of a ZIP or an app snapshot.
#[derive(Clone)]
pub enum AppSource {
    Zip(Arc<[u8]>),
    Snapshot(String),
}

impl std::fmt::Debug for AppSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppSource::Zip(bytes) => write!(f, "Zip({} bytes)", bytes.len()),
            AppSource::Snapshot(id) => write!(f, "Snapshot({id})"),
        }
    }
}

/// `POST /v1/apps` with the create route's names (`memory`, `main`, `start`, `build`).
#[derive(Debug, Clone)]
pub struct AppCreate {
    pub name: String,
    pub source: AppSource,
    pub memory_mb: u64,
    pub main_file: Option<String>,
    pub version: Option<String>,
    pub start_command: Option<String>,
    pub build_command: Option<String>,
    pub description: Option<String>,
    pub workspace_id: Option<String>,
    /// `None`: private.
    pub subdomain: Option<String>,
    pub envs: Vec<EnvWrite>,
}

impl AppCreate {
    fn parts(&self) -> Result<Vec<Part>, CloudError> {
        let mut parts = vec![
            Part::text("name", &self.name),
            Part::text("memory", self.memory_mb.to_string()),
        ];
        match &self.source {
            AppSource::Zip(bytes) => parts.push(Part::file(
                "file",
                "app.zip",
                "application/zip",
                bytes.clone(),
            )),
            AppSource::Snapshot(id) => parts.push(Part::text("snapshot_id", id)),
        }
        let optional = [
            ("main", &self.main_file),
            ("version", &self.version),
            ("start", &self.start_command),
            ("build", &self.build_command),
            ("description", &self.description),
            ("workspace_id", &self.workspace_id),
            ("subdomain", &self.subdomain),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                parts.push(Part::text(name, v));
            }
        }
        if !self.envs.is_empty() {
            let envs = serde_json::to_string(&self.envs).map_err(|e| {
                CloudError::Config(format!("cannot encode the app's environment: {e}"))
            })?;
            parts.push(Part::text("envs", envs));
        }
        Ok(parts)
    }
}

/// `POST /v1/apps/:id/restart`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Restart {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub reinstall_dependencies: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub force_build: bool,
}

impl VertraClient {
    pub async fn get_app(&self, id: &str, p: Priority) -> Result<App, CloudError> {
        let request = self.scoped(Request::get("apps.get", &["v1", "apps", id], p));
        self.transport.data(request).await
    }

    pub async fn app_status(&self, id: &str, p: Priority) -> Result<AppStatus, CloudError> {
        let request = self.scoped(Request::get(
            "apps.status",
            &["v1", "apps", id, "status"],
            p,
        ));
        self.transport.data(request).await
    }

    /// `POST /v1/apps` (multipart). A deploy; sent once (no idempotency key: the caller finds
    /// what an ambiguous attempt made before sending another).
    pub async fn create_app(&self, app: &AppCreate) -> Result<App, CloudError> {
        let request = Request::write(Method::POST, "apps.create", &["v1", "apps"])
            .once()
            .priority(Priority::Create)
            .timeout(UPLOAD_TIMEOUT)
            .class(DEPLOY, None)
            .multipart(app.parts()?);
        self.transport.data(request).await
    }

    /// `PATCH /v1/apps/:id/config`. A change of the build command counts as a deploy.
    pub async fn update_app_config(
        &self,
        id: &str,
        update: &AppConfigUpdate,
    ) -> Result<(), CloudError> {
        let mut request =
            Request::write(Method::PATCH, "apps.config", &["v1", "apps", id, "config"])
                .json(update)?;
        if update.build_command.is_some() {
            request = request.class(DEPLOY, None);
        }
        self.transport.no_data(self.scoped(request)).await
    }

    pub async fn start_app(&self, id: &str) -> Result<(), CloudError> {
        self.lifecycle(id, "apps.start", "start", None).await
    }

    pub async fn stop_app(&self, id: &str) -> Result<(), CloudError> {
        self.lifecycle(id, "apps.stop", "stop", None).await
    }

    /// `POST /v1/apps/:id/restart`; with a rebuild it is a deploy.
    pub async fn restart_app(&self, id: &str, restart: Restart) -> Result<(), CloudError> {
        self.lifecycle(id, "apps.restart", "restart", Some(restart))
            .await
    }

    async fn lifecycle(
        &self,
        id: &str,
        operation: &'static str,
        action: &str,
        restart: Option<Restart>,
    ) -> Result<(), CloudError> {
        let mut request = Request::write(Method::POST, operation, &["v1", "apps", id, action])
            .class(LIFECYCLE, Some(id));
        if let Some(r) = restart {
            if r.force_build || r.reinstall_dependencies {
                // A rebuild is a deploy: it waits for the account's deploy budget (the tighter
                // of the two), and is not repeated blindly.
                request = request.class(DEPLOY, None).once();
            }
            request = request.json(&r)?;
        }
        self.transport.no_data(self.scoped(request)).await
    }

    /// `DELETE /v1/apps/:id`.
    pub async fn delete_app(&self, id: &str) -> Result<(), CloudError> {
        let request = Request::write(Method::DELETE, "apps.delete", &["v1", "apps", id]);
        self.transport.no_data(self.scoped(request)).await
    }

    /// `POST /v1/apps/:id/files/upload?restart=…`: new code, merged over the app's files. A
    /// deploy; sent once.
    pub async fn upload_code(
        &self,
        id: &str,
        zip: Arc<[u8]>,
        restart: bool,
    ) -> Result<(), CloudError> {
        let request = Request::write(
            Method::POST,
            "apps.upload",
            &["v1", "apps", id, "files", "upload"],
        )
        .once()
        .timeout(UPLOAD_TIMEOUT)
        .class(DEPLOY, None)
        .query("restart", restart)
        .multipart(vec![Part::file("file", "app.zip", "application/zip", zip)]);
        self.transport.no_data(self.scoped(request)).await
    }

    /// `GET /v1/apps/:id/envs` (values decrypted by the API; held as secret bytes).
    pub async fn list_envs(&self, id: &str, p: Priority) -> Result<Vec<Env>, CloudError> {
        let request = self.scoped(Request::get(
            "apps.envs.list",
            &["v1", "apps", id, "envs"],
            p,
        ));
        self.transport.data(request).await
    }

    /// `POST /v1/apps/:id/envs`: upsert by key.
    pub async fn set_envs(&self, id: &str, envs: &[EnvWrite]) -> Result<(), CloudError> {
        let request = Request::write(Method::POST, "apps.envs.set", &["v1", "apps", id, "envs"])
            .json(&envs)?;
        self.transport.no_data(self.scoped(request)).await
    }

    /// `DELETE /v1/apps/:id/envs/:envId`.
    pub async fn delete_env(&self, id: &str, env_id: &str) -> Result<(), CloudError> {
        let request = Request::write(
            Method::DELETE,
            "apps.envs.delete",
            &["v1", "apps", id, "envs", env_id],
        );
        self.transport.no_data(self.scoped(request)).await
    }

    /// `POST /v1/apps/:id/network/publish` (owner only: no workspace scoping).
    pub async fn publish(&self, id: &str, subdomain: Option<&str>) -> Result<(), CloudError> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            subdomain: Option<&'a str>,
        }
        let request = Request::write(
            Method::POST,
            "apps.publish",
            &["v1", "apps", id, "network", "publish"],
        )
        .class(LIFECYCLE, Some(id))
        .json(&Body { subdomain })?;
        self.transport.no_data(request).await
    }

    /// `DELETE /v1/apps/:id/network/publish`.
    pub async fn unpublish(&self, id: &str) -> Result<(), CloudError> {
        let request = Request::write(
            Method::DELETE,
            "apps.unpublish",
            &["v1", "apps", id, "network", "publish"],
        )
        .class(LIFECYCLE, Some(id));
        self.transport.no_data(request).await
    }

    /// `PATCH /v1/apps/:id/network/subdomain`.
    pub async fn set_subdomain(&self, id: &str, subdomain: &str) -> Result<(), CloudError> {
        let request = Request::write(
            Method::PATCH,
            "apps.subdomain",
            &["v1", "apps", id, "network", "subdomain"],
        )
        .json(&serde_json::json!({ "subdomain": subdomain }))?;
        self.transport.no_data(self.scoped(request)).await
    }

    /// `POST /v1/apps/:id/network/custom` (replaces the app's custom domain).
    pub async fn set_custom_domain(&self, id: &str, domain: &str) -> Result<(), CloudError> {
        let request = Request::write(
            Method::POST,
            "apps.custom_domain.set",
            &["v1", "apps", id, "network", "custom"],
        )
        .json(&serde_json::json!({ "domain": domain }))?;
        self.transport.no_data(self.scoped(request)).await
    }

    /// `DELETE /v1/apps/:id/network/custom`.
    pub async fn delete_custom_domain(&self, id: &str) -> Result<(), CloudError> {
        let request = Request::write(
            Method::DELETE,
            "apps.custom_domain.delete",
            &["v1", "apps", id, "network", "custom"],
        );
        self.transport.no_data(self.scoped(request)).await
    }

    /// `GET /v1/apps/:id/network/dns`: the records the custom domain needs.
    pub async fn dns_requirements(
        &self,
        id: &str,
        p: Priority,
    ) -> Result<Vec<DnsRequirement>, CloudError> {
        let request = self.scoped(Request::get(
            "apps.dns",
            &["v1", "apps", id, "network", "dns"],
            p,
        ));
        self.transport.data(request).await
    }
}
