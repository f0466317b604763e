//! The Application adapter.
//!
//! - **Found again by an ownership marker.** Vertra has no idempotency keys; every app carries
//!   the env var [`OWNER_ENV`] with its object's UID, sent in the create itself. An ambiguous
//!   create is looked for among the apps of its name (from the one-call `/users/me` listing),
//!   checking each candidate's env vars (`Proof::OwnershipMarker`); until the attempt has settled
//!   the engine never sends it again (`CreateGuard::FindOnly`).
//! - **Code.** The source's digest (the archive's pinned SHA-256, the Flux artifact's digest)
//!   is compared with the one recorded in `status.atProvider.deployedDigest`; a change fetches,
//!   checks and uploads the code with a restart (a deploy, held by the deploy limit only).
//! - **Settings** go through `PATCH …/config` with the update route's names; **env vars** are
//!   written when the env spec or a Secret it reads changes (a digest of the spec and the
//!   Secrets' resourceVersions, never of a value), then the app restarts to take them.
//! - **Build failures** (`BUILD_FAILED` and friends) are reported with the API's message and not
//!   retried in a loop; **platform stops** (credits, crash loop, shield) are reported, never
//!   answered with start calls in a loop.

pub mod inputs;
pub mod plan;

use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use self::plan::{AppAction, AppView, Code, DesiredApp, OWNER_ENV};
use super::api::PowerState;
use super::api::application::Application;
use super::client::{AppCreate, AppSource};
use super::cloud::{ObservedApp, VertraCloud};
use super::code::{self, CodeError};
use crate::cloud::CloudError;
use crate::cloud::throttle::Priority;
use crate::engine::{
    Adapter, Blocked, CreateGuard, Created, Found, Freshness, Invalid, Plan, Proof, Readiness,
};

/// How often an app's Secrets and Flux source are read again (see `input_recheck`).
pub const INPUT_RECHECK: Duration = Duration::from_secs(30);

/// The most candidates (apps of one name) whose env vars are read to find an ambiguous create.
const MAX_CANDIDATES: usize = 10;

#[derive(Clone)]
pub struct ApplicationAdapter {
    kube: kube::Client,
    http: reqwest::Client,
    /// The last code fetched, by digest: a deploy retried after a failed upload does not
    /// download it again.
    fetched: Arc<Mutex<Option<Fetched>>>,
}

/// Code fetched: its digest and the ZIP.
type Fetched = (String, Arc<[u8]>);

impl ApplicationAdapter {
    pub fn new(kube: kube::Client) -> Self {
        ApplicationAdapter {
            kube,
            // Redirects are not followed: each hop would escape the URL checks.
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            fetched: Arc::new(Mutex::new(None)),
        }
    }

    /// The ZIP of `code` (fetched once per digest).
    async fn zip(&self, code: &Code, operation: &str) -> Result<Arc<[u8]>, CloudError> {
        let digest = code.digest();
        if let Some((d, bytes)) = self.fetched.lock().as_ref()
            && *d == digest
        {
            return Ok(bytes.clone());
        }
        let fetched = match code {
            Code::Archive { url, digest } => code::fetch_zip(&self.http, url, digest).await,
            Code::Flux { url, digest } => code::fetch_flux_artifact(&self.http, url, digest).await,
            Code::Snapshot { id } => Err(CodeError::Invalid(format!(
                "snapshot {id} is not code to upload"
            ))),
        }
        .map_err(|e| code_error(operation, e))?;
        *self.fetched.lock() = Some((digest, fetched.clone()));
        Ok(fetched)
    }
}

/// A code problem as a cloud error: nothing was sent to Vertra. A download that may work later
/// is retried; a wrong digest or a broken archive needs the spec or the source to change.
fn code_error(operation: &str, e: CodeError) -> CloudError {
    if e.is_transient() {
        CloudError::Transport {
            operation: operation.to_string(),
            message: e.to_string(),
        }
    } else {
        CloudError::InvalidRequest {
            operation: operation.to_string(),
            message: e.to_string(),
        }
    }
}

/// What an app create sends (recorded on the object before it is sent: names, not values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppCreateRequest {
    pub name: String,
    pub memory_mb: u64,
    pub main_file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// Published at creation: the label, or `random`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    pub code: Code,
    /// The env digest the create's env vars answer.
    pub env_digest: String,
    /// The names of the env vars the create sends (not the owner marker).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_names: Vec<String>,
    /// The ownership marker's value: the object's UID.
    pub owner: String,
}

/// The app as the object last recorded it, around what the cloud reports now.
fn view(obj: &Application, observed: ObservedApp) -> AppView {
    let at = obj.status.as_ref().and_then(|s| s.at_provider.as_ref());
    AppView {
        want_running: obj.spec.for_provider.power_state == PowerState::Running,
        deployed_digest: at.and_then(|a| a.deployed_digest.clone()),
        env_digest: at.and_then(|a| a.env_digest.clone()),
        env_names: at.map(|a| a.env_names.clone()).unwrap_or_default(),
        restart_pending: at.is_some_and(|a| a.restart_pending),
        dns: Vec::new(),
        observed,
    }
}

#[async_trait::async_trait]
impl Adapter for ApplicationAdapter {
    type Kind = Application;
    type Cloud = VertraCloud;
    type Observed = AppView;
    type Desired = DesiredApp;
    type Action = AppAction;
    type CreateRequest = AppCreateRequest;

    const PROVIDER: &'static str = super::PROVIDER;
    const CONTROLLER: &'static str = "application";

    crate::managed_kind_accessors!(plan::observation);

    fn validate(obj: &Application) -> Result<(), Invalid> {
        plan::validate(&obj.spec.for_provider)
    }

    /// Env values from Secrets and code from a Flux source cannot be watched (the operator may
    /// only `get` Secrets, and Flux may not be installed): they are read again this often.
    fn input_recheck(obj: &Application) -> Option<Duration> {
        let p = &obj.spec.for_provider;
        let reads_secrets = p.env.iter().any(|e| e.value_from.is_some());
        let follows_flux = p.source.flux_source_ref.is_some();
        (reads_secrets || follows_flux).then_some(INPUT_RECHECK)
    }

    async fn desired(&self, kube: &kube::Client, obj: &Application) -> Result<DesiredApp, Blocked> {
        let p = &obj.spec.for_provider;
        let namespace = obj.namespace().unwrap_or_default();
        let workspace_id = super::workspace::resolve_workspace(
            kube,
            &namespace,
            p.workspace_ref.as_ref(),
            p.workspace_id.as_deref(),
        )
        .await?;
        let code = inputs::code(kube, &namespace, &p.source).await?;
        let env_digest = inputs::env_digest(kube, &namespace, &p.env).await?;
        Ok(DesiredApp {
            params: p.clone(),
            uid: obj.uid().unwrap_or_default(),
            namespace,
            workspace_id,
            code,
            env_digest,
        })
    }

    async fn observe(
        &self,
        cloud: &VertraCloud,
        obj: &Application,
        id: &str,
        fresh: Freshness,
    ) -> Result<Option<AppView>, CloudError> {
        let Some(observed) = cloud
            .apps
            .observe(id, fresh, |p| cloud.get_app(id, p), |p| cloud.list_apps(p))
            .await?
        else {
            return Ok(None);
        };
        let mut v = view(obj, observed);
        // The records a custom domain needs, read only while it has one that is not validated.
        let validated = obj
            .status
            .as_ref()
            .and_then(|s| s.at_provider.as_ref())
            .is_some_and(|a| {
                !a.dns_records.is_empty()
                    && a.dns_records
                        .iter()
                        .all(|r| r.status.as_deref() == Some("active"))
            });
        if v.observed.app.custom_domain.is_some() && !validated {
            match cloud.client.dns_requirements(id, fresh.priority).await {
                Ok(dns) => v.dns = dns,
                Err(e) if e.is_not_found() || e.code() == "NO_CUSTOM_DOMAIN" => {}
                Err(e) => return Err(e),
            }
        } else if validated {
            // Keep what was reported: nothing to wait for.
            let at = obj.status.as_ref().and_then(|s| s.at_provider.as_ref());
            v.dns = at
                .map(|a| {
                    a.dns_records
                        .iter()
                        .map(|r| super::model::DnsRequirement {
                            record_type: r.record_type.clone(),
                            name: r.name.clone(),
                            value: r.value.clone(),
                            status: r.status.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
        }
        Ok(Some(v))
    }

    fn create_guard(&self) -> CreateGuard {
        CreateGuard::FindOnly
    }

    fn create_request(obj: &Application, d: &DesiredApp) -> AppCreateRequest {
        let p = &d.params;
        let subdomain = p
            .publish
            .as_ref()
            .filter(|x| x.enabled)
            .map(|x| x.subdomain.clone().unwrap_or_else(|| "random".into()));
        AppCreateRequest {
            name: p.name.clone(),
            memory_mb: p.memory_mb,
            main_file: p.main_file.clone(),
            // Required with a ZIP: the runtime's recommended version unless the spec names one.
            version: Some(p.version.clone().unwrap_or_else(|| "recommended".into())),
            start_command: p.start_command.clone(),
            build_command: p.build_command.clone(),
            description: p.description.clone(),
            workspace_id: d.workspace_id.clone(),
            subdomain,
            code: d.code.clone(),
            env_digest: d.env_digest.clone(),
            env_names: p.env.iter().map(|e| e.name.clone()).collect(),
            owner: obj.uid().unwrap_or_default(),
        }
    }

    async fn find_created(
        &self,
        cloud: &VertraCloud,
        _obj: &Application,
        request: &AppCreateRequest,
    ) -> Result<Option<Found<AppView>>, CloudError> {
        cloud.relist_apps().await?;
        let mut candidates = cloud.apps.filter(|a| a.app.name == request.name);
        if candidates.len() > MAX_CANDIDATES {
            // Reading every candidate's env vars would cost too much; skipping some could miss
            // ours and lead to a second create. Never guess: say so.
            return Err(super::database::ambiguous(
                "apps.find",
                "apps",
                &request.name,
                candidates.len(),
            ));
        }
        // The newest first: an unanswered create is most likely the latest app of its name.
        candidates.sort_by(|a, b| b.app.created_at.cmp(&a.app.created_at));
        for candidate in candidates {
            let envs = match cloud
                .client
                .list_envs(&candidate.app.id, Priority::Urgent)
                .await
            {
                Ok(envs) => envs,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            let ours = envs
                .iter()
                .any(|e| e.key == OWNER_ENV && e.value.expose() == request.owner.as_bytes());
            if ours {
                return Ok(Some(Found {
                    observed: AppView {
                        observed: candidate,
                        want_running: true,
                        deployed_digest: Some(request.code.digest()),
                        env_digest: Some(request.env_digest.clone()),
                        env_names: request.env_names.clone(),
                        restart_pending: false,
                        dns: Vec::new(),
                    },
                    proof: Proof::OwnershipMarker,
                }));
            }
        }
        Ok(None)
    }

    async fn create(
        &self,
        cloud: &VertraCloud,
        obj: &Application,
        r: &AppCreateRequest,
        _key: Uuid,
    ) -> Result<Created<AppView>, CloudError> {
        let source = match &r.code {
            Code::Snapshot { id } => AppSource::Snapshot(id.clone()),
            code => AppSource::Zip(self.zip(code, "apps.create").await?),
        };
        let namespace = obj.namespace().unwrap_or_default();
        let envs = inputs::env_values(&self.kube, &namespace, &r.owner, &obj.spec.for_provider.env)
            .await
            .map_err(|b| {
                let (Blocked::Waiting(i) | Blocked::Invalid(i)) = b;
                CloudError::InvalidRequest {
                    operation: "apps.create".into(),
                    message: i.message,
                }
            })?;
        let app = cloud
            .client
            .create_app(&AppCreate {
                name: r.name.clone(),
                source,
                memory_mb: r.memory_mb,
                main_file: Some(r.main_file.clone()),
                version: r.version.clone(),
                start_command: r.start_command.clone(),
                build_command: r.build_command.clone(),
                description: r.description.clone(),
                workspace_id: r.workspace_id.clone(),
                subdomain: r.subdomain.clone(),
                envs,
            })
            .await?;
        let observed = ObservedApp {
            running: app.status.as_deref() == Some("up"),
            installing: app.status.as_deref() != Some("up"),
            app,
        };
        cloud.apps.put(observed.clone());
        Ok(AppView {
            observed,
            want_running: obj.spec.for_provider.power_state == PowerState::Running,
            deployed_digest: Some(r.code.digest()),
            env_digest: Some(r.env_digest.clone()),
            env_names: r.env_names.clone(),
            restart_pending: false,
            dns: Vec::new(),
        }
        .into())
    }

    fn created_at(v: &AppView) -> Option<jiff::Timestamp> {
        v.observed
            .app
            .created_at
            .as_deref()
            .and_then(|t| t.parse().ok())
    }

    fn plan(d: &DesiredApp, v: &AppView, _digest: Option<&str>) -> Plan<AppAction> {
        plan::plan(d, v)
    }

    async fn act(
        &self,
        cloud: &VertraCloud,
        v: &AppView,
        action: &AppAction,
    ) -> Result<AppView, CloudError> {
        let id = v.observed.app.id.clone();
        let client = &cloud.client;
        let mut next = v.clone();
        match action {
            AppAction::Config(update) => {
                client.update_app_config(&id, update).await?;
                // Recorded with the change, so a restart that has to wait is not forgotten.
                next.restart_pending |= v.observed.running;
                let app = &mut next.observed.app;
                if let Some(n) = &update.name {
                    app.name = n.clone();
                }
                if let Some(d) = &update.description {
                    app.description = d.clone();
                }
                if let Some(m) = &update.main_file {
                    app.main_file = Some(m.clone());
                }
                if let Some(l) = &update.language {
                    app.language = Some(l.clone());
                }
                if let Some(x) = &update.version {
                    app.version = Some(x.clone());
                }
                if let Some(s) = &update.start_command {
                    app.start_command = s.clone();
                }
                if let Some(b) = &update.build_command {
                    app.build_command = b.clone();
                }
                if let Some(r) = update.ram {
                    app.ram = Some(r);
                }
            }
            AppAction::SyncEnv(sync) => {
                let wanted = inputs::env_values(&self.kube, &sync.namespace, &sync.uid, &sync.env)
                    .await
                    .map_err(|b| {
                        let (Blocked::Waiting(i) | Blocked::Invalid(i)) = b;
                        CloudError::InvalidRequest {
                            operation: "apps.envs.set".into(),
                            message: i.message,
                        }
                    })?;
                // Only what the operator wrote is removed: an adopted app's other variables
                // are someone else's.
                let current = client.list_envs(&id, Priority::Write).await?;
                for stale in current.iter().filter(|e| {
                    v.env_names.contains(&e.key) && !wanted.iter().any(|w| w.key == e.key)
                }) {
                    match client.delete_env(&id, &stale.id).await {
                        Ok(()) => {}
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(e),
                    }
                }
                client.set_envs(&id, &wanted).await?;
                next.env_digest = Some(sync.digest.clone());
                next.env_names = sync.env.iter().map(|e| e.name.clone()).collect();
                next.restart_pending |= v.observed.running;
            }
            AppAction::Deploy(code) => {
                let zip = self.zip(code, "apps.upload").await?;
                client.upload_code(&id, zip, true).await?;
                next.restart_pending = false;
                next.deployed_digest = Some(code.digest());
                next.observed.installing = true;
            }
            AppAction::Publish { subdomain } => {
                match client.publish(&id, subdomain.as_deref()).await {
                    Ok(()) => {}
                    // A retried publish whose first answer was lost.
                    Err(e) if e.code() == "APP_ALREADY_PUBLISHED" => {}
                    Err(e) => return Err(e),
                }
                next.observed.app.subdomain = Some(
                    subdomain
                        .clone()
                        .map(|s| format!("{s}.vertraweb.app"))
                        .unwrap_or_else(|| "pending".into()),
                );
            }
            AppAction::Unpublish => {
                client.unpublish(&id).await?;
                next.observed.app.subdomain = None;
                next.observed.app.custom_domain = None;
            }
            AppAction::SetSubdomain(label) => {
                client.set_subdomain(&id, label).await?;
                next.observed.app.subdomain = Some(format!("{label}.vertraweb.app"));
            }
            AppAction::SetCustomDomain(domain) => {
                client.set_custom_domain(&id, domain).await?;
                next.observed.app.custom_domain = Some(domain.clone());
            }
            AppAction::DeleteCustomDomain => {
                match client.delete_custom_domain(&id).await {
                    Ok(()) => {}
                    Err(e) if e.code() == "NO_CUSTOM_DOMAIN" => {}
                    Err(e) => return Err(e),
                }
                next.observed.app.custom_domain = None;
                next.dns.clear();
            }
            AppAction::Restart => {
                client.restart_app(&id, Default::default()).await?;
                next.restart_pending = false;
            }
            AppAction::Start => {
                client.start_app(&id).await?;
                next.restart_pending = false;
                next.observed.running = true;
                next.observed.app.status = Some("up".into());
            }
            AppAction::Stop => {
                client.stop_app(&id).await?;
                next.observed.running = false;
                next.observed.app.status = Some("down".into());
            }
        }
        cloud.apps.put(next.observed.clone());
        Ok(next)
    }

    async fn delete(&self, cloud: &VertraCloud, v: &AppView) -> Result<(), CloudError> {
        match cloud.client.delete_app(&v.observed.app.id).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        cloud.apps.remove(&v.observed.app.id);
        Ok(())
    }

    fn external_id(v: &AppView) -> String {
        v.observed.app.id.clone()
    }

    fn is_deleting(_v: &AppView) -> bool {
        false
    }

    fn is_transitional(v: &AppView) -> bool {
        v.observed.installing
    }

    fn readiness(v: &AppView) -> Readiness {
        let o = &v.observed;
        let id = &o.app.id;
        if o.installing {
            return Readiness::Creating(format!("app {id} is installing or building"));
        }
        if let Some(since) = &o.app.offline_since
            && !o.running
        {
            return Readiness::Unavailable(format!("Vertra stopped app {id} at {since}"));
        }
        match (o.running, v.want_running) {
            (true, _) => Readiness::Available(format!("app {id} is running")),
            (false, false) => Readiness::Available(format!("app {id} is stopped")),
            (false, true) => Readiness::Unavailable(format!("app {id} is down")),
        }
    }
}
