//! Pure planning for Applications: validation of the spec, what the cloud must change, and the
//! status the object shows. Nothing here calls anything.

use super::super::api::PowerState;
use super::super::api::application::{
    ApplicationObservation, ApplicationParameters, DnsRecordRequirement, EnvVar,
};
use super::super::cloud::ObservedApp;
use super::super::model::{AppConfigUpdate, DnsRequirement};
use crate::engine::{Invalid, Plan};

/// The env var that marks an app as this object's (its UID): how an ambiguous create is found
/// again, since the API keeps env vars and has no idempotency keys.
pub const OWNER_ENV: &str = "STRATUS_OWNER_UID";
/// Env vars the platform sets itself: refused in the spec.
pub const FORBIDDEN_ENV: [&str; 8] = [
    "PORT", "HOST", "PATH", "HOSTNAME", "HOME", "PWD", "USER", "SHELL",
];
/// The API's limits on env vars (one is the owner marker).
pub const MAX_ENV: usize = 25;
pub const MAX_ENV_KEY: usize = 255;
pub const MAX_ENV_VALUE: usize = 3072;
/// The runtimes Vertra offers.
pub const LANGUAGES: [&str; 10] = [
    "javascript",
    "typescript",
    "bun",
    "python",
    "static",
    "php",
    "go",
    "ruby",
    "java",
    "rust",
];

/// The code to deploy, as far as planning needs it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Code {
    /// A ZIP at `url` with SHA-256 `digest`.
    Archive { url: String, digest: String },
    /// A Flux artifact (`.tar.gz`) at `url` with digest `sha256:<hex>`.
    Flux { url: String, digest: String },
    /// An app snapshot (create only).
    Snapshot { id: String },
}

impl Code {
    /// What the status records as deployed.
    pub fn digest(&self) -> String {
        match self {
            Code::Archive { digest, .. } => format!("sha256:{digest}"),
            Code::Flux { digest, .. } => digest.clone(),
            Code::Snapshot { id } => format!("snapshot:{id}"),
        }
    }
}

/// The desired state with references resolved. `env_digest` covers the env spec and the
/// resourceVersions of the Secrets it reads, never a value.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredApp {
    pub params: ApplicationParameters,
    pub uid: String,
    pub namespace: String,
    pub workspace_id: Option<String>,
    pub code: Code,
    pub env_digest: String,
}

/// The app as observed, with what the operator recorded deploying.
#[derive(Debug, Clone, PartialEq)]
pub struct AppView {
    pub observed: ObservedApp,
    /// The spec asks for the app to run (so a stopped app is not "available").
    pub want_running: bool,
    pub deployed_digest: Option<String>,
    pub env_digest: Option<String>,
    /// The env vars the operator wrote (names): the only ones it removes.
    pub env_names: Vec<String>,
    /// Settings or env vars were written to the running app, which has not restarted since.
    pub restart_pending: bool,
    pub dns: Vec<DnsRequirement>,
}

/// One change the API can make, in the order planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppAction {
    Config(AppConfigUpdate),
    /// Write the env vars (values are read from the spec and its Secrets when this runs, never
    /// kept), recording `digest`.
    SyncEnv(EnvSync),
    /// Upload `code` and restart (a deploy).
    Deploy(Code),
    Publish {
        subdomain: Option<String>,
    },
    Unpublish,
    SetSubdomain(String),
    SetCustomDomain(String),
    DeleteCustomDomain,
    /// Apply settings and env changes that wait for a restart.
    Restart,
    Start,
    Stop,
}

/// What writing the env vars needs: where to read them, and the digest to record. `Debug` (which
/// events and conditions show) names the variables, never their values.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvSync {
    pub digest: String,
    pub namespace: String,
    pub uid: String,
    pub env: Vec<EnvVar>,
}

impl std::fmt::Debug for EnvSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|e| e.name.as_str()).collect();
        write!(f, "SyncEnv({})", names.join(", "))
    }
}

/// Pure checks the schema cannot make (or that objects stored before it were not held to).
pub fn validate(p: &ApplicationParameters) -> Result<(), Invalid> {
    let invalid = |m: String| Err(Invalid::new("InvalidSpec", m));
    if p.name.trim().is_empty() || p.name.trim() != p.name || p.name.chars().count() > 50 {
        return invalid(format!(
            "spec.forProvider.name {:?} must be 1-50 characters without surrounding spaces",
            p.name
        ));
    }
    if !LANGUAGES.contains(&p.language.as_str()) {
        return invalid(format!(
            "spec.forProvider.language {:?} is not one Vertra offers: {}",
            p.language,
            LANGUAGES.join(", ")
        ));
    }
    let published = p.publish.as_ref().is_some_and(|x| x.enabled);
    let min = if published { 512 } else { 100 };
    if p.memory_mb < min {
        return invalid(format!(
            "spec.forProvider.memoryMB is {}; a{} app needs at least {min}",
            p.memory_mb,
            if published { " published" } else { "n" }
        ));
    }
    if p.description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 128)
    {
        return invalid("spec.forProvider.description is longer than 128 characters".into());
    }
    if p.workspace_ref.is_some() && p.workspace_id.is_some() {
        return invalid(
            "set spec.forProvider.workspaceRef or spec.forProvider.workspaceId, not both".into(),
        );
    }
    if p.env.len() > MAX_ENV - 1 {
        return invalid(format!(
            "spec.forProvider.env lists {} variables; at most {} are allowed (Vertra takes {MAX_ENV}, one is the operator's {OWNER_ENV})",
            p.env.len(),
            MAX_ENV - 1
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, e) in p.env.iter().enumerate() {
        let at = format!("spec.forProvider.env[{i}]");
        let valid_name = !e.name.is_empty()
            && e.name.len() <= MAX_ENV_KEY
            && e.name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && e.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return invalid(format!(
                "{at}.name {:?} must be letters, digits and underscores (not starting with a digit), at most {MAX_ENV_KEY}",
                e.name.chars().take(40).collect::<String>()
            ));
        }
        let upper = e.name.to_ascii_uppercase();
        if FORBIDDEN_ENV.contains(&upper.as_str())
            || upper.starts_with("VERTRA_")
            || upper == OWNER_ENV
        {
            return invalid(format!(
                "{at}.name {} is set by the platform (or the operator) and cannot be set",
                e.name
            ));
        }
        if !seen.insert(e.name.clone()) {
            return invalid(format!("{at}.name {} is listed twice", e.name));
        }
        match (&e.value, &e.value_from) {
            (Some(_), Some(_)) | (None, None) => {
                return invalid(format!("{at} needs exactly one of value and valueFrom"));
            }
            (Some(v), None) if v.len() > MAX_ENV_VALUE => {
                return invalid(format!(
                    "{at}.value is {} bytes; at most {MAX_ENV_VALUE} are allowed",
                    v.len()
                ));
            }
            _ => {}
        }
    }
    if let Some(d) = &p.custom_domain
        && !published
    {
        return invalid(format!(
            "spec.forProvider.customDomain {d} needs a published app: set publish.enabled: true"
        ));
    }
    Ok(())
}

/// What to change, in order: settings, env, code, publishing, custom domain, a restart for
/// what waits for one, then the power state.
pub fn plan(d: &DesiredApp, v: &AppView) -> Plan<AppAction> {
    let p = &d.params;
    let app = &v.observed.app;
    let mut actions = Vec::new();

    let mut config = AppConfigUpdate::default();
    if app.name != p.name {
        config.name = Some(p.name.clone());
    }
    if let Some(want) = p.description.as_ref().filter(|d| !d.is_empty())
        && app.description.as_deref() != Some(want.as_str())
    {
        config.description = Some(Some(want.clone()));
    }
    if app.main_file.as_deref() != Some(p.main_file.as_str()) {
        config.main_file = Some(p.main_file.clone());
    }
    if app.language.as_deref() != Some(p.language.as_str()) {
        config.language = Some(p.language.clone());
    }
    if let Some(want) = &p.version
        && app.version.as_deref() != Some(want.as_str())
    {
        config.version = Some(want.clone());
    }
    if app.start_command != p.start_command {
        config.start_command = Some(p.start_command.clone());
    }
    if app.build_command != p.build_command {
        config.build_command = Some(p.build_command.clone());
    }
    // A listing that does not say leaves the field alone (else every refresh would write).
    if app.ram.is_some_and(|ram| ram != p.memory_mb) {
        config.ram = Some(p.memory_mb);
    }
    let configured = config != AppConfigUpdate::default();
    if configured {
        actions.push(AppAction::Config(config));
    }

    let env_changed = v.env_digest.as_deref() != Some(d.env_digest.as_str());
    if env_changed {
        actions.push(AppAction::SyncEnv(EnvSync {
            digest: d.env_digest.clone(),
            namespace: d.namespace.clone(),
            uid: d.uid.clone(),
            env: p.env.clone(),
        }));
    }

    let deploy = match &d.code {
        Code::Snapshot { .. } => false,
        code => v.deployed_digest.as_deref() != Some(code.digest().as_str()),
    };
    if deploy {
        actions.push(AppAction::Deploy(d.code.clone()));
    }

    let want_published = p.publish.as_ref().is_some_and(|x| x.enabled);
    let want_label = p.publish.as_ref().and_then(|x| x.subdomain.clone());
    let published = app.subdomain.is_some();
    match (want_published, published) {
        (true, false) => actions.push(AppAction::Publish {
            subdomain: want_label.clone(),
        }),
        (false, true) => actions.push(AppAction::Unpublish),
        (true, true) => {
            if let Some(label) = &want_label {
                let have = app.subdomain.as_deref().unwrap_or_default();
                if have.split('.').next() != Some(label.as_str()) {
                    actions.push(AppAction::SetSubdomain(label.clone()));
                }
            }
        }
        (false, false) => {}
    }
    if want_published {
        let same_domain = |a: &str, b: &str| {
            a.trim_end_matches('.')
                .eq_ignore_ascii_case(b.trim_end_matches('.'))
        };
        match (&p.custom_domain, &app.custom_domain) {
            (Some(want), have) if !have.as_deref().is_some_and(|h| same_domain(h, want)) => {
                actions.push(AppAction::SetCustomDomain(want.clone()))
            }
            (None, Some(_)) => actions.push(AppAction::DeleteCustomDomain),
            _ => {}
        }
    }

    let o = &v.observed;
    if (configured || env_changed || v.restart_pending)
        && !deploy
        && o.running
        && p.power_state == PowerState::Running
    {
        actions.push(AppAction::Restart);
    }
    match (p.power_state, o.running) {
        (PowerState::Running, false) if !o.installing && !deploy => {
            if let Some(since) = &app.offline_since {
                if actions.is_empty() {
                    return Plan::Impossible(Invalid::new(
                        "PlatformStopped",
                        format!(
                            "Vertra stopped app {} at {since} (credits exhausted or a crash loop): fix it in the Vertra dashboard; the operator does not start it in a loop",
                            app.id
                        ),
                    ));
                }
            } else if let Some(until) = app.shield_cooldown.as_ref().and_then(|s| s.until.clone()) {
                if actions.is_empty() {
                    return Plan::Impossible(Invalid::new(
                        "ShieldCooldown",
                        format!(
                            "Vertra's traffic shield holds app {} until {until}; it is started after that",
                            app.id
                        ),
                    ));
                }
            } else {
                actions.push(AppAction::Start);
            }
        }
        (PowerState::Stopped, true) => actions.push(AppAction::Stop),
        _ => {}
    }
    if actions.is_empty() {
        Plan::UpToDate
    } else {
        Plan::Update(actions)
    }
}

/// `status.atProvider`.
pub fn observation(v: &AppView) -> ApplicationObservation {
    let app = &v.observed.app;
    ApplicationObservation {
        id: app.id.clone(),
        status: app.status.clone(),
        running: v.observed.running,
        installing: v.observed.installing,
        public_url: app.public_url.clone(),
        subdomain: app.subdomain.clone(),
        dns_records: v
            .dns
            .iter()
            .map(|r| DnsRecordRequirement {
                record_type: r.record_type.clone(),
                name: r.name.clone(),
                value: r.value.clone(),
                status: r.status.clone(),
            })
            .collect(),
        deployed_digest: v.deployed_digest.clone(),
        env_digest: v.env_digest.clone(),
        env_names: v.env_names.clone(),
        restart_pending: v.restart_pending,
        offline_since: app.offline_since.clone(),
        shield_cooldown: app.shield_cooldown.as_ref().and_then(|s| s.until.clone()),
    }
}

#[cfg(test)]
mod tests;
