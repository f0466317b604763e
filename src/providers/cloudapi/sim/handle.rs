//! What a test can ask CloudAPI's running sandbox beyond the framework's handle: its resources
//! (in the sandbox's own wire types), the build count that proves a rollback did not rebuild,
//! the keys it issued (never their values), create counts, usage, the limits' counters, and the
//! platform's doings (build time, failing commits, limits). `/_sim` offers the same
//! (`control`).

use std::time::Duration;

use jiff::Timestamp;

use super::config::Settings;
use super::limits::{Budgets, MaxInWindow, Served429};
use super::reply::rfc3339;
use super::state::CreateCounts;
use super::state::deployments::DeploymentFilter;
use super::wire::{Deployment, KeyInfo, ProjectInfo, TokenInfo};
use super::{CloudApiSimHandle, Sim};
use crate::sim::key_fingerprint;

impl Sim {
    /// Every project of every workspace, oldest first.
    pub fn projects(&self) -> Vec<ProjectInfo> {
        let mut st = self.state();
        st.settle(Timestamp::now());
        let mut all: Vec<_> = st.projects.values().collect();
        all.sort_by_key(|p| p.seq);
        all.into_iter()
            .map(|p| ProjectInfo {
                id: p.id.clone(),
                workspace: p.workspace.clone(),
                name: p.name.clone(),
                region: p.region.clone(),
                created_at: rfc3339(p.created_at),
                current: p.current.clone(),
            })
            .collect()
    }

    /// Deployments (of one project, or all), newest first, with `current` set.
    pub fn deployments(&self, project_id: Option<&str>) -> Vec<Deployment> {
        let mut st = self.state();
        st.settle(Timestamp::now());
        let filter = DeploymentFilter {
            project_id: project_id.map(str::to_string),
            ..Default::default()
        };
        st.deployments_where(|_| true, &filter)
            .into_iter()
            .map(|(_, d)| d)
            .collect()
    }

    pub fn key_infos(&self) -> Vec<KeyInfo> {
        self.state().key_infos()
    }

    pub fn token_infos(&self) -> Vec<TokenInfo> {
        let st = self.state();
        let mut all: Vec<_> = st.tokens.values().collect();
        all.sort_by_key(|t| t.seq);
        all.into_iter()
            .map(|t| TokenInfo {
                id: t.id.clone(),
                account: t.account.clone(),
                name: t.name.clone(),
                scopes: t.scopes.clone(),
            })
            .collect()
    }

    /// Makes every build of `commit` created from now on fail (`false`: succeed again, unless
    /// it is a `fail-*` commit).
    pub fn set_commit_failing(&self, commit: &str, fail: bool) -> Settings {
        self.cloud().update_settings(|s| {
            if fail {
                s.fail_commits.insert(commit.to_string());
            } else {
                s.fail_commits.remove(commit);
            }
        })
    }
}

impl CloudApiSimHandle {
    pub fn projects(&self) -> Vec<ProjectInfo> {
        self.sim().projects()
    }

    pub fn project(&self, id: &str) -> Option<ProjectInfo> {
        self.projects().into_iter().find(|p| p.id == id)
    }

    /// The project's deployments, newest first, each saying whether it is current.
    pub fn deployments(&self, project_id: &str) -> Vec<Deployment> {
        self.sim().deployments(Some(project_id))
    }

    /// The project's current deployment (its live release), if any.
    pub fn current_deployment(&self, project_id: &str) -> Option<Deployment> {
        self.deployments(project_id).into_iter().find(|d| d.current)
    }

    /// Builds started since the start or the last stats reset: one per deployment created,
    /// none per rollback.
    pub fn builds(&self) -> u64 {
        self.sim().state().builds
    }

    /// Every key the API issued, revoked ones included, oldest first; never the values.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.sim().key_infos()
    }

    /// Every token, oldest first; never the values.
    pub fn tokens(&self) -> Vec<TokenInfo> {
        self.sim().token_infos()
    }

    /// Successful creates per kind since the start (or the last stats reset): more creates
    /// than resources a client meant to make are duplicates.
    pub fn creates(&self) -> CreateCounts {
        self.sim().state().creates
    }

    /// Requests served to `account` (a workspace, or `default`) this UTC month, as
    /// `GET /v1/usage` reports them.
    pub fn usage(&self, account: &str) -> u64 {
        self.sim()
            .state()
            .requests_in_month(account, Timestamp::now())
    }

    pub fn settings(&self) -> Settings {
        self.sim().cloud().settings()
    }

    /// How long builds created from now on take.
    pub fn set_build_time(&self, d: Duration) {
        self.sim().cloud().update_settings(|s| s.build_time = d);
    }

    /// See [`Sim::set_commit_failing`].
    pub fn fail_commit(&self, commit: &str) {
        self.sim().set_commit_failing(commit, true);
    }

    /// Requests per minute per key (`None`: the dialect's; `Some(0)`: unlimited). The window
    /// starts empty.
    pub fn set_per_key_per_minute(&self, n: Option<u32>) {
        self.sim()
            .cloud()
            .update_settings(|s| s.per_key_per_minute = n);
    }

    /// Requests per 10 minutes per workspace (`cloudplatform`; `None`: 600; `Some(0)`:
    /// unlimited). The window starts empty.
    pub fn set_per_workspace_per_ten_minutes(&self, n: Option<u32>) {
        self.sim()
            .cloud()
            .update_settings(|s| s.per_workspace_per_ten_minutes = n);
    }

    pub fn budgets(&self) -> Budgets {
        self.sim().cloud().meter().budgets()
    }

    /// The most requests let through in any one window of each limit.
    pub fn max_in_window(&self) -> MaxInWindow {
        self.sim().cloud().meter().max_in_window()
    }

    /// 429s the limits served, per limit.
    pub fn served_429(&self) -> Served429 {
        self.sim().cloud().meter().served_429()
    }

    /// When each request of `key` (an API key or session token) was let through the limits,
    /// since the unix epoch, oldest first.
    pub fn key_request_times(&self, key: &str) -> Vec<Duration> {
        self.sim().cloud().meter().key_times(&key_fingerprint(key))
    }

    /// When each request of any key of `workspace` was let through (`cloudplatform`).
    pub fn workspace_request_times(&self, workspace: &str) -> Vec<Duration> {
        self.sim().cloud().meter().workspace_times(workspace)
    }

    /// Forgets every remembered `Idempotency-Key`: a retry then creates again.
    pub fn forget_idempotency_keys(&self) -> usize {
        let n = self.sim().state().forget_idempotency();
        self.sim().mutated();
        n
    }
}
