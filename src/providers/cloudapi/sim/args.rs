//! The flags only CloudAPI's sandbox takes (`stratus sim --cloud cloudapi --dialect …`), with
//! the framework's [`CommonArgs`] making up its [`CloudApiSimConfig`]. Every flag also reads a
//! `STRATUS_SIM_*` environment variable.

use crate::sim::CommonArgs;
use crate::sim::args::{parse_seconds, secs};

use super::config::{CloudApiSimConfig, WorkspaceKey, parse_workspace_key};
use super::wire::Dialect;

/// `stratus sim` flags for CloudAPI's sandbox.
#[derive(clap::Args, Clone, Debug)]
#[command(next_help_heading = "CloudAPI sandbox (--cloud cloudapi)")]
pub struct CloudApiArgs {
    /// A dashboard session token (repeatable; the env variable takes a comma-separated list).
    /// Only POST /v1/keys takes one, and that route takes nothing else.
    #[arg(
        long = "session-token",
        value_name = "TOKEN",
        env = "STRATUS_SIM_SESSION_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub session_tokens: Vec<String>,

    /// An API key of a named workspace: WORKSPACE=KEY (repeatable; the env variable separates
    /// entries with ';'). In cloudplatform a workspace's keys see its projects only and share
    /// its budget; --api-key keys belong to the workspace "default". In cloudapi every key is
    /// of the one account.
    #[arg(
        long = "workspace-key",
        value_name = "WORKSPACE=KEY",
        env = "STRATUS_SIM_WORKSPACE_KEYS",
        value_parser = parse_workspace_key,
        value_delimiter = ';',
        hide_env_values = true
    )]
    pub workspace_keys: Vec<WorkspaceKey>,

    /// Seconds a build takes from create to succeeded or failed (queued for the first
    /// quarter, building for the rest).
    #[arg(
        long,
        visible_alias = "build-time",
        env = "STRATUS_SIM_BUILD_SECONDS",
        default_value = "2",
        value_parser = parse_seconds
    )]
    pub build_seconds: f64,

    /// A commit whose builds fail (repeatable; the env variable takes a comma-separated
    /// list), besides every commit whose name starts with fail-.
    #[arg(
        long = "fail-commit",
        value_name = "COMMIT",
        env = "STRATUS_SIM_FAIL_COMMITS",
        value_delimiter = ','
    )]
    pub fail_commits: Vec<String>,

    /// Requests per minute per API key instead of the dialect's (cloudapi 1000, cloudplatform
    /// 120; 0 = unlimited).
    #[arg(long, env = "STRATUS_SIM_KEY_PER_MINUTE", value_name = "N")]
    pub key_per_minute: Option<u32>,

    /// Requests per 10 minutes per workspace instead of 600 (cloudplatform only; 0 =
    /// unlimited).
    #[arg(long, env = "STRATUS_SIM_WORKSPACE_PER_TEN_MINUTES", value_name = "N")]
    pub workspace_per_ten_minutes: Option<u32>,
}

impl CloudApiArgs {
    /// The configuration these flags, the common ones and the dialect describe.
    pub fn config(&self, common: &CommonArgs, dialect: Dialect) -> CloudApiSimConfig {
        CloudApiSimConfig {
            dialect,
            api_keys: common.api_keys(),
            workspace_keys: self.workspace_keys.clone(),
            session_tokens: crate::sim::keys::cleaned(&self.session_tokens),
            build_time: secs(self.build_seconds),
            fail_commits: crate::sim::keys::cleaned(&self.fail_commits),
            per_key_per_minute: self.key_per_minute,
            per_workspace_per_ten_minutes: self.workspace_per_ten_minutes,
            faults: common.faults(),
            state_file: common.state_file.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        cloudapi: CloudApiArgs,
    }

    fn config(args: &[&str]) -> Result<CloudApiSimConfig, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))?;
        Ok(cli.cloudapi.config(&cli.common, Dialect::Cloudplatform))
    }

    #[test]
    fn flags_parse_with_defaults() {
        let c = config(&["--api-key", "a"]).unwrap();
        assert_eq!(c.build_time, Duration::from_secs(2));
        assert!(c.session_tokens.is_empty() && c.workspace_keys.is_empty());
        assert_eq!(
            (c.per_key_per_minute, c.per_workspace_per_ten_minutes),
            (None, None)
        );

        let c = config(&[
            "--session-token",
            "s1",
            "--session-token",
            "s2",
            "--workspace-key",
            "acme=k1",
            "--build-time",
            "0.2",
            "--fail-commit",
            "abc",
            "--key-per-minute",
            "5",
            "--workspace-per-ten-minutes",
            "0",
        ])
        .unwrap();
        assert_eq!(c.session_tokens, ["s1", "s2"]);
        assert_eq!(c.workspace_keys[0].workspace, "acme");
        assert_eq!(c.build_time, Duration::from_millis(200));
        assert_eq!(c.fail_commits, ["abc"]);
        assert_eq!(
            (c.per_key_per_minute, c.per_workspace_per_ten_minutes),
            (Some(5), Some(0))
        );
        assert!(config(&["--workspace-key", "nokey"]).is_err());
        assert!(config(&["--build-seconds", "-1"]).is_err());
    }
}
