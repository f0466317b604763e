//! [`CloudApiSimConfig`]: how a CloudAPI sandbox behaves, in one flat struct tests adjust field
//! by field, and the [`Settings`] it keeps while running (build time, failing commits and the
//! limits can change then). It splits into the framework's [`crate::sim::Config`] and the
//! [`CloudApi`] cloud.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::sim::keys::{key_fingerprint, redacted};
use crate::sim::{Config, Faults};

use super::cloud::CloudApi;
use super::limits::Budgets;
use super::state::DEFAULT_ACCOUNT;
use super::wire::Dialect;

/// The build time when none is given.
pub const DEFAULT_BUILD_TIME: Duration = Duration::from_secs(2);

/// `--workspace-key WORKSPACE=KEY`: an API key of one workspace (`cloudplatform`).
#[derive(Clone, PartialEq, Eq)]
pub struct WorkspaceKey {
    pub workspace: String,
    pub key: String,
}

impl fmt::Debug for WorkspaceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}=sha256:{}…",
            self.workspace,
            key_fingerprint(&self.key)
        )
    }
}

/// Parses `WORKSPACE=KEY`: a workspace name of letters, digits, `-` and `_`, and a key.
pub fn parse_workspace_key(s: &str) -> Result<WorkspaceKey, String> {
    let (ws, key) = s
        .split_once('=')
        .ok_or_else(|| "expected WORKSPACE=KEY".to_string())?;
    let (ws, key) = (ws.trim(), key.trim());
    if ws.is_empty()
        || !ws
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "the workspace {ws:?} must be letters, digits, - and _"
        ));
    }
    if key.is_empty() {
        return Err("the key after = is empty".into());
    }
    Ok(WorkspaceKey {
        workspace: ws.to_string(),
        key: key.to_string(),
    })
}

/// What a running sandbox goes by; changed through the handle or `/_sim/settings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long a build takes from create to `succeeded`/`failed` (for builds created from
    /// then on).
    pub build_time: Duration,
    /// Commits whose builds fail (besides every `fail-*` commit).
    pub fail_commits: BTreeSet<String>,
    /// Requests per minute per key instead of the dialect's (0 = unlimited).
    pub per_key_per_minute: Option<u32>,
    /// Requests per 10 minutes per workspace instead of 600 (`cloudplatform`; 0 = unlimited).
    pub per_workspace_per_ten_minutes: Option<u32>,
}

impl Settings {
    pub fn budgets(&self, dialect: Dialect) -> Budgets {
        Budgets::of(
            dialect,
            self.per_key_per_minute,
            self.per_workspace_per_ten_minutes,
        )
    }
}

/// How the sandbox behaves. `Debug` shows key fingerprints, never keys or tokens.
#[derive(Clone)]
pub struct CloudApiSimConfig {
    pub dialect: Dialect,
    /// API keys of the default workspace (`default`; in `cloudapi` all keys are one account).
    pub api_keys: Vec<String>,
    /// API keys of named workspaces (`cloudplatform`; in `cloudapi` they are plain keys of the
    /// one account).
    pub workspace_keys: Vec<WorkspaceKey>,
    /// Dashboard session tokens: only `POST /v1/keys` takes them, and it takes nothing else.
    pub session_tokens: Vec<String>,
    pub build_time: Duration,
    /// Commits whose builds fail (besides every `fail-*` commit).
    pub fail_commits: Vec<String>,
    pub per_key_per_minute: Option<u32>,
    pub per_workspace_per_ten_minutes: Option<u32>,
    pub faults: Faults,
    pub state_file: Option<PathBuf>,
}

impl fmt::Debug for CloudApiSimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudApiSimConfig")
            .field("dialect", &self.dialect)
            .field("api_keys", &redacted(&self.api_keys))
            .field("workspace_keys", &self.workspace_keys)
            .field("session_tokens", &redacted(&self.session_tokens))
            .field("build_time", &self.build_time)
            .field("fail_commits", &self.fail_commits)
            .field("per_key_per_minute", &self.per_key_per_minute)
            .field(
                "per_workspace_per_ten_minutes",
                &self.per_workspace_per_ten_minutes,
            )
            .field("faults", &self.faults)
            .field("state_file", &self.state_file)
            .finish()
    }
}

impl CloudApiSimConfig {
    /// For tests: `dialect`, these keys in the default workspace, no session token, 200 ms
    /// builds, the documented limits, no faults, in memory.
    pub fn for_tests(dialect: Dialect, api_keys: &[&str]) -> Self {
        Self {
            dialect,
            api_keys: api_keys.iter().map(|k| k.trim().to_string()).collect(),
            workspace_keys: Vec::new(),
            session_tokens: Vec::new(),
            build_time: Duration::from_millis(200),
            fail_commits: Vec::new(),
            per_key_per_minute: None,
            per_workspace_per_ten_minutes: None,
            faults: Faults::default(),
            state_file: None,
        }
    }

    pub fn settings(&self) -> Settings {
        Settings {
            build_time: self.build_time,
            fail_commits: self.fail_commits.iter().cloned().collect(),
            per_key_per_minute: self.per_key_per_minute,
            per_workspace_per_ten_minutes: self.per_workspace_per_ten_minutes,
        }
    }

    /// Every configured API key with its account.
    pub fn keys_with_accounts(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = crate::sim::keys::cleaned(&self.api_keys)
            .into_iter()
            .map(|k| (k, DEFAULT_ACCOUNT.to_string()))
            .collect();
        for wk in &self.workspace_keys {
            let account = match self.dialect {
                Dialect::Cloudapi => DEFAULT_ACCOUNT.to_string(),
                Dialect::Cloudplatform => wk.workspace.clone(),
            };
            out.push((wk.key.trim().to_string(), account));
        }
        out
    }

    /// The cloud these settings describe, and the framework's share of them. The framework
    /// enforces no limit itself: CloudAPI's are the cloud's (see `limits`).
    pub fn split(self) -> (CloudApi, Config) {
        let keys = self.keys_with_accounts();
        let sessions = crate::sim::keys::cleaned(&self.session_tokens);
        let cloud = CloudApi::new(self.dialect, self.settings(), keys.clone(), sessions);
        let config = Config {
            api_keys: keys.into_iter().map(|(k, _)| k).collect(),
            limits: Vec::new(),
            key_groups: Default::default(),
            faults: self.faults,
            state_file: self.state_file,
        };
        (cloud, config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_keys_parse_and_never_show_their_key() {
        let wk = parse_workspace_key(" acme = sk_secret_1 ").unwrap();
        assert_eq!(
            (wk.workspace.as_str(), wk.key.as_str()),
            ("acme", "sk_secret_1")
        );
        for bad in ["nokey", "=k", "a b=k", "acme="] {
            assert!(parse_workspace_key(bad).is_err(), "{bad}");
        }
        let mut c = CloudApiSimConfig::for_tests(Dialect::Cloudplatform, &["plain-secret"]);
        c.workspace_keys.push(wk);
        c.session_tokens.push("session-secret".into());
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("sk_secret")
                && !shown.contains("plain-secret")
                && !shown.contains("session-secret"),
            "{shown}"
        );
    }

    #[test]
    fn keys_belong_to_their_workspace_in_cloudplatform_and_to_one_account_in_cloudapi() {
        let mut c = CloudApiSimConfig::for_tests(Dialect::Cloudplatform, &["a"]);
        c.workspace_keys
            .push(parse_workspace_key("acme=b").unwrap());
        assert_eq!(
            c.keys_with_accounts(),
            [("a".into(), "default".into()), ("b".into(), "acme".into())]
        );
        c.dialect = Dialect::Cloudapi;
        assert_eq!(c.keys_with_accounts()[1].1, "default");
        let (_, config) = c.split();
        assert_eq!(config.api_keys, ["a", "b"]);
        assert!(config.limits.is_empty());
    }
}
