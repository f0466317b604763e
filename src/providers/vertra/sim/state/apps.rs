//! Apps: their record, lifecycle (install → up, builds that fail), envs and network.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::StatusCode;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::super::archive::Archive;
use super::super::plan::Plan;
use super::super::reply::{ApiError, rfc3339};
use super::super::wire::{App, AppUsage, Env, Network, ShieldCooldown, Status, codes};
use super::network::{CustomDomain, SubdomainWish};
use super::{State, after, check_scope, hex_id};

/// The domain published apps get a name under.
pub const APP_DOMAIN: &str = "vertraweb.app";
/// The most environment variables an app has.
pub const MAX_ENVS: usize = 25;

/// The language a main file implies (§6's names).
pub fn language_of(main_file: &str) -> &'static str {
    let ext = main_file.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "ts" | "mts" | "cts" => "typescript",
        "py" => "python",
        "php" => "php",
        "go" => "go",
        "rb" => "ruby",
        "java" | "jar" => "java",
        "rs" => "rust",
        "html" | "htm" => "static",
        _ => "javascript",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvRec {
    pub id: String,
    pub key: String,
    pub value: String,
    pub note: Option<String>,
    pub created_at: Timestamp,
}

/// An env to set: `note` absent keeps the current note, `Some(None)` clears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvInput {
    pub key: String,
    pub value: String,
    pub note: Option<Option<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shield {
    pub until: Timestamp,
    pub reason: String,
    pub direction: String,
    pub strikes: u32,
}

/// A validated `POST /v1/apps`.
#[derive(Debug, Clone)]
pub struct NewApp {
    pub name: String,
    pub description: Option<String>,
    pub ram: u64,
    pub main_file: String,
    pub version: String,
    pub start_command: Option<String>,
    pub build_command: Option<String>,
    pub workspace_id: Option<String>,
    pub subdomain: Option<SubdomainWish>,
    pub envs: Vec<EnvInput>,
    pub archive: Archive,
}

/// A validated `PATCH /v1/apps/:id/config`: `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigUpdate {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub main_file: Option<String>,
    pub language: Option<String>,
    pub version: Option<String>,
    pub start_command: Option<Option<String>>,
    pub build_command: Option<Option<String>>,
    pub ram: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppRec {
    pub id: String,
    pub seq: u64,
    pub name: String,
    pub description: Option<String>,
    pub language: String,
    pub ram: u64,
    pub main_file: String,
    pub version: String,
    pub start_command: Option<String>,
    pub build_command: Option<String>,
    pub workspace_id: Option<String>,
    /// Running, or will run when the install ends.
    pub running: bool,
    pub installing_until: Option<Timestamp>,
    /// The last archive received had the build marker: builds of this code fail.
    pub build_failed: bool,
    pub started_at: Option<Timestamp>,
    /// The published label (`<label>.vertraweb.app`).
    pub subdomain: Option<String>,
    pub custom_domain: Option<CustomDomain>,
    pub files: BTreeSet<String>,
    pub envs: Vec<EnvRec>,
    pub offline_since: Option<Timestamp>,
    pub shield: Option<Shield>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(codes::APP_NOT_FOUND, format!("app {id:?} does not exist"))
}

fn build_failed() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        codes::BUILD_FAILED,
        "the app's build failed (its code holds the sandbox's FAIL_BUILD marker); upload code \
         without it",
    )
}

impl AppRec {
    /// Ends an install that is due, forgets a cooldown that passed.
    pub fn settle(&mut self, now: Timestamp) {
        if let Some(until) = self.installing_until
            && now >= until
        {
            self.installing_until = None;
            self.running = true;
            self.started_at = Some(until);
            self.updated_at = until;
        }
        if self.shield.as_ref().is_some_and(|s| now >= s.until) {
            self.shield = None;
        }
    }

    pub fn installing(&self) -> bool {
        self.installing_until.is_some()
    }

    pub fn is_up(&self) -> bool {
        self.running && !self.installing() && self.offline_since.is_none()
    }

    pub fn host(&self) -> Option<String> {
        self.subdomain.as_ref().map(|l| format!("{l}.{APP_DOMAIN}"))
    }

    pub(super) fn kind(&self) -> u8 {
        if self.subdomain.is_some() { 2 } else { 1 }
    }

    /// Starts an install of `delay` (none: up at once).
    fn begin_install(&mut self, now: Timestamp, delay: Duration) {
        self.running = true;
        if delay.is_zero() {
            self.installing_until = None;
            self.started_at = Some(now);
        } else {
            self.installing_until = Some(after(now, delay));
            self.started_at = None;
        }
        self.updated_at = now;
    }

    /// `409 OPERATION_IN_PROGRESS` while installing.
    pub fn ensure_idle(&self) -> Result<(), ApiError> {
        if self.installing() {
            return Err(ApiError::in_progress(&format!("app {}", self.id)));
        }
        Ok(())
    }

    /// `403 APP_SHIELD_COOLDOWN` while the shield holds the app.
    pub fn ensure_no_shield(&self) -> Result<(), ApiError> {
        match &self.shield {
            Some(s) => Err(ApiError::forbidden(
                codes::APP_SHIELD_COOLDOWN,
                format!("the app is in a shield cooldown until {}", rfc3339(s.until)),
            )
            .with_details(json!({ "until": rfc3339(s.until) }))),
            None => Ok(()),
        }
    }

    /// What stops the app from running: the platform stopped it (credits), a cooldown, a
    /// failed build.
    pub fn ensure_can_run(&self) -> Result<(), ApiError> {
        if let Some(since) = self.offline_since {
            return Err(ApiError::forbidden(
                codes::INSUFFICIENT_CREDITS,
                format!(
                    "the platform stopped this app at {} (the account is out of credits); add \
                     credits before starting it",
                    rfc3339(since)
                ),
            ));
        }
        self.ensure_no_shield()?;
        if self.build_failed {
            return Err(build_failed());
        }
        Ok(())
    }

    pub fn start(&mut self, now: Timestamp) -> Result<(), ApiError> {
        self.ensure_idle()?;
        self.ensure_can_run()?;
        if !self.running {
            self.running = true;
            self.started_at = Some(now);
            self.updated_at = now;
        }
        Ok(())
    }

    /// Idempotent: a stopped app stays `down`.
    pub fn stop(&mut self, now: Timestamp) -> Result<(), ApiError> {
        self.ensure_idle()?;
        if self.running {
            self.running = false;
            self.started_at = None;
            self.updated_at = now;
        }
        Ok(())
    }

    /// Checks a restart could run (before its budgets are counted).
    pub fn check_restart(&self) -> Result<(), ApiError> {
        self.ensure_idle()?;
        self.ensure_can_run()
    }

    /// A restart: a rebuild installs again, a plain restart is up at once.
    pub fn restart(&mut self, rebuild: bool, now: Timestamp, delay: Duration) {
        if rebuild {
            self.begin_install(now, delay);
        } else {
            self.running = true;
            self.started_at = Some(now);
            self.updated_at = now;
        }
    }

    /// New code merged over the files; with `restart`, an install (or a failed build: down).
    pub fn upload(&mut self, archive: Archive, restart: bool, now: Timestamp, delay: Duration) {
        self.files.extend(archive.files);
        self.build_failed = archive.fail_build;
        self.updated_at = now;
        if restart {
            if self.build_failed {
                self.running = false;
                self.started_at = None;
            } else if self.offline_since.is_none() {
                self.begin_install(now, delay);
            }
        }
    }

    /// Applies a config change; true if the build command changed (a deploy).
    pub fn check_config(&self, u: &ConfigUpdate) -> Result<bool, ApiError> {
        self.ensure_no_shield()?;
        if let Some(ram) = u.ram
            && self.subdomain.is_some()
            && ram < 512
        {
            return Err(ApiError::validation(
                &["ram"],
                format!("a published app needs at least 512 MB; got {ram}"),
            ));
        }
        Ok(u.build_command
            .as_ref()
            .is_some_and(|b| *b != self.build_command))
    }

    pub fn update_config(&mut self, u: ConfigUpdate, now: Timestamp) {
        if let Some(v) = u.name {
            self.name = v;
        }
        if let Some(v) = u.description {
            self.description = v;
        }
        if let Some(v) = u.main_file {
            self.main_file = v;
        }
        if let Some(v) = u.version {
            self.version = v;
        }
        if let Some(v) = u.language
            && v != self.language
        {
            self.language = v;
            self.version = "recommended".into();
        }
        if let Some(v) = u.start_command {
            self.start_command = v;
        }
        if let Some(v) = u.build_command {
            self.build_command = v;
        }
        if let Some(v) = u.ram {
            self.ram = v;
        }
        self.updated_at = now;
    }

    /// Upserts by key; the whole list stays within [`MAX_ENVS`].
    pub fn set_envs(&mut self, inputs: Vec<EnvInput>, now: Timestamp) -> Result<(), ApiError> {
        let new_keys = inputs
            .iter()
            .filter(|i| !self.envs.iter().any(|e| e.key == i.key))
            .count();
        if self.envs.len() + new_keys > MAX_ENVS {
            return Err(ApiError::validation(
                &["envs"],
                format!("an app has at most {MAX_ENVS} environment variables"),
            ));
        }
        for i in inputs {
            match self.envs.iter_mut().find(|e| e.key == i.key) {
                Some(e) => {
                    e.value = i.value;
                    if let Some(note) = i.note {
                        e.note = note;
                    }
                }
                None => self.envs.push(EnvRec {
                    id: format!("env-{}", &hex_id()[..12]),
                    key: i.key,
                    value: i.value,
                    note: i.note.flatten(),
                    created_at: now,
                }),
            }
        }
        self.updated_at = now;
        Ok(())
    }

    pub fn delete_env(&mut self, env_id: &str, now: Timestamp) -> Result<(), ApiError> {
        let before = self.envs.len();
        self.envs.retain(|e| e.id != env_id);
        if self.envs.len() == before {
            return Err(ApiError::not_found(
                codes::ENV_NOT_FOUND,
                format!("the app has no environment variable {env_id:?}"),
            ));
        }
        self.updated_at = now;
        Ok(())
    }

    pub fn envs(&self) -> Vec<Env> {
        self.envs
            .iter()
            .map(|e| Env {
                id: e.id.clone(),
                key: e.key.clone(),
                value: e.value.clone(),
                note: e.note.clone(),
                created_at: rfc3339(e.created_at),
            })
            .collect()
    }

    pub fn view(&self, owner_id: &str, plan: Plan) -> App {
        let public_url = match (&self.custom_domain, self.host()) {
            (Some(c), _) => Some(format!("https://{}", c.domain)),
            (None, Some(h)) => Some(format!("https://{h}")),
            (None, None) => None,
        };
        App {
            id: self.id.clone(),
            cluster: 1,
            kind: self.kind(),
            name: self.name.clone(),
            description: self.description.clone(),
            owner_id: owner_id.to_string(),
            owner_plan_id: plan.id(),
            language: self.language.clone(),
            ram: self.ram,
            status: if self.is_up() {
                Status::Up
            } else {
                Status::Down
            },
            subdomain: self.host(),
            public_url,
            github: None,
            custom_domain: self.custom_domain.as_ref().map(|c| c.domain.clone()),
            last_snapshot: None,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            main_file: self.main_file.clone(),
            version: self.version.clone(),
            start_command: self.start_command.clone(),
            build_command: self.build_command.clone(),
            offline_since: self.offline_since.map(rfc3339),
            missing_dependencies: Vec::new(),
            shield_cooldown: self.shield.as_ref().map(|s| ShieldCooldown {
                until: rfc3339(s.until),
                reason: s.reason.clone(),
                direction: s.direction.clone(),
                strikes: s.strikes,
            }),
        }
    }

    pub fn usage(&self, now: Timestamp) -> AppUsage {
        let up = self.is_up();
        let storage = format!("{:.2} MB", 1.0 + self.files.len() as f64 * 0.01);
        AppUsage {
            id: self.id.clone(),
            cpu: if up { "0.50%" } else { "0.00%" }.into(),
            ram: format!("{:.2} MB", if up { self.ram as f64 / 4.0 } else { 0.0 }),
            storage,
            network: up.then(|| Network {
                total: "0 B".into(),
                now: "0 B".into(),
            }),
            running: up,
            installing: self.installing(),
            uptime: if up {
                self.started_at
                    .map(|s| now.duration_since(s).as_secs().max(0) as u64)
            } else {
                None
            },
        }
    }
}

impl State {
    /// App `id`, settled, within the `?workspace_id=` scope.
    pub fn app(
        &mut self,
        id: &str,
        scope: Option<&str>,
        now: Timestamp,
    ) -> Result<&mut AppRec, ApiError> {
        let ws = self
            .apps
            .get(id)
            .ok_or_else(|| not_found(id))?
            .workspace_id
            .clone();
        check_scope(self, scope, ws.as_deref(), || not_found(id))?;
        let app = self.apps.get_mut(id).ok_or_else(|| not_found(id))?;
        app.settle(now);
        Ok(app)
    }

    /// Apps in creation order, settled.
    pub fn apps_in_order(&mut self, now: Timestamp) -> Vec<&AppRec> {
        self.settle(now);
        let mut apps: Vec<&AppRec> = self.apps.values().collect();
        apps.sort_by_key(|a| a.seq);
        apps
    }

    pub fn app_views(&mut self, plan: Plan, now: Timestamp) -> Vec<App> {
        let owner = self.user.id.clone();
        self.apps_in_order(now)
            .into_iter()
            .map(|a| a.view(&owner, plan))
            .collect()
    }

    /// What refuses `new` before anything is counted: its workspace, its subdomain.
    pub fn check_new_app(&self, new: &NewApp, plan: Plan) -> Result<(), ApiError> {
        if let Some(ws) = &new.workspace_id {
            self.writable_workspace(ws, plan)?;
        }
        if let Some(wish) = &new.subdomain {
            self.grant_label(wish, plan, None)?;
        }
        Ok(())
    }

    /// Creates the app: installing, or `down` at once when its build fails.
    pub fn insert_app(
        &mut self,
        new: NewApp,
        plan: Plan,
        now: Timestamp,
        delay: Duration,
    ) -> Result<String, ApiError> {
        let subdomain = match &new.subdomain {
            Some(wish) => Some(self.grant_label(wish, plan, None)?),
            None => None,
        };
        let seq = self.next_seq();
        let mut app = AppRec {
            id: hex_id(),
            seq,
            language: language_of(&new.main_file).into(),
            name: new.name,
            description: new.description,
            ram: new.ram,
            main_file: new.main_file,
            version: new.version,
            start_command: new.start_command,
            build_command: new.build_command,
            workspace_id: new.workspace_id,
            running: false,
            installing_until: None,
            build_failed: new.archive.fail_build,
            started_at: None,
            subdomain,
            custom_domain: None,
            files: new.archive.files,
            envs: Vec::new(),
            offline_since: None,
            shield: None,
            created_at: now,
            updated_at: now,
        };
        app.set_envs(new.envs, now)?;
        if !app.build_failed {
            app.begin_install(now, delay);
        }
        let id = app.id.clone();
        self.apps.insert(id.clone(), app);
        self.creates.apps += 1;
        Ok(id)
    }

    /// Deletes app `id` (its names are released).
    pub fn delete_app(
        &mut self,
        id: &str,
        scope: Option<&str>,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        let app = self.app(id, scope, now)?;
        app.ensure_no_shield()?;
        app.ensure_idle()?;
        self.apps.remove(id);
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn new_app(files: &[&str], fail: bool) -> NewApp {
        NewApp {
            name: "web".into(),
            description: None,
            ram: 512,
            main_file: "index.js".into(),
            version: "recommended".into(),
            start_command: None,
            build_command: None,
            workspace_id: None,
            subdomain: None,
            envs: vec![EnvInput {
                key: "A".into(),
                value: "1".into(),
                note: None,
            }],
            archive: Archive {
                files: files.iter().map(|f| f.to_string()).collect(),
                removed_directories: Vec::new(),
                fail_build: fail,
            },
        }
    }

    #[test]
    fn an_app_installs_then_is_up_and_refuses_lifecycle_calls_meanwhile() {
        let mut st = State::new(Timestamp::now());
        let t0 = Timestamp::now();
        let d = Duration::from_secs(2);
        let id = st
            .insert_app(new_app(&["index.js"], false), Plan::Enterprise, t0, d)
            .unwrap();
        let app = st.app(&id, None, t0).unwrap();
        assert!(app.installing() && !app.is_up());
        assert_eq!(
            app.start(t0).unwrap_err().code,
            codes::OPERATION_IN_PROGRESS
        );
        assert_eq!(app.stop(t0).unwrap_err().code, codes::OPERATION_IN_PROGRESS);
        let later = after(t0, d);
        let app = st.app(&id, None, later).unwrap();
        assert!(app.is_up() && app.usage(later).uptime == Some(0));
        app.stop(later).unwrap();
        app.stop(later).unwrap();
        assert!(!app.is_up());
        assert_eq!(st.creates.apps, 1);
    }

    #[test]
    fn a_failed_build_leaves_the_app_down_until_code_without_the_marker_comes() {
        let mut st = State::new(Timestamp::now());
        let t = Timestamp::now();
        let d = Duration::from_secs(1);
        let id = st
            .insert_app(new_app(&["index.js", "FAIL_BUILD"], true), Plan::Pro, t, d)
            .unwrap();
        let app = st.app(&id, None, t).unwrap();
        assert!(!app.installing() && !app.is_up());
        assert_eq!(app.start(t).unwrap_err().code, codes::BUILD_FAILED);
        app.upload(Archive::default(), true, t, Duration::ZERO);
        assert!(app.is_up());
    }

    #[test]
    fn envs_upsert_by_key_and_a_null_note_clears() {
        let mut st = State::new(Timestamp::now());
        let t = Timestamp::now();
        let id = st
            .insert_app(new_app(&[], false), Plan::Pro, t, Duration::ZERO)
            .unwrap();
        let app = st.app(&id, None, t).unwrap();
        let env = |k: &str, v: &str, note: Option<Option<&str>>| EnvInput {
            key: k.into(),
            value: v.into(),
            note: note.map(|n| n.map(String::from)),
        };
        app.set_envs(vec![env("A", "2", Some(Some("n"))), env("B", "x", None)], t)
            .unwrap();
        app.set_envs(vec![env("A", "3", None)], t).unwrap();
        let envs = app.envs();
        assert_eq!(envs.len(), 2);
        assert_eq!(
            (envs[0].value.as_str(), envs[0].note.as_deref()),
            ("3", Some("n"))
        );
        app.set_envs(vec![env("A", "3", Some(None))], t).unwrap();
        assert_eq!(app.envs()[0].note, None);
        let id_b = app.envs()[1].id.clone();
        app.delete_env(&id_b, t).unwrap();
        assert_eq!(
            app.delete_env(&id_b, t).unwrap_err().code,
            codes::ENV_NOT_FOUND
        );
        let many = (0..25).map(|i| env(&format!("K{i}"), "v", None)).collect();
        assert_eq!(
            app.set_envs(many, t).unwrap_err().code,
            codes::VALIDATION_ERROR
        );
    }
}
