//! Deployments and their build logs. A deployment is `queued` for the first quarter of its
//! build time, `building` for the rest, then `succeeded` (and current: the project's live
//! release) or `failed` with an error line naming the cause. A rollback makes an earlier
//! release current again without a build.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::super::reply::{ApiError, rfc3339};
use super::super::wire::{Deployment, DeploymentStatus, Level, LogLine, codes};
use super::{State, after};

/// How many log lines are kept (the oldest go first).
pub const LOG_CAPACITY: usize = 50_000;
/// Commits whose name starts with this fail their build.
pub const FAIL_PREFIX: &str = "fail-";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeploymentRec {
    pub id: String,
    pub seq: u64,
    pub project_id: String,
    pub commit: String,
    pub created_at: Timestamp,
    /// How long this build takes (the build time when it was created).
    pub build_ms: u64,
    /// Why the build fails, if it does.
    #[serde(default)]
    pub failure: Option<String>,
    /// The status as last settled (and logged).
    pub status: DeploymentStatus,
}

impl DeploymentRec {
    fn build(&self) -> Duration {
        Duration::from_millis(self.build_ms)
    }

    /// When the build leaves the queue.
    pub fn started_at(&self) -> Timestamp {
        after(self.created_at, self.build() / 4)
    }

    pub fn finished_at(&self) -> Timestamp {
        after(self.created_at, self.build())
    }

    /// The status at `now`.
    pub fn status_at(&self, now: Timestamp) -> DeploymentStatus {
        if now >= self.finished_at() {
            if self.failure.is_some() {
                DeploymentStatus::Failed
            } else {
                DeploymentStatus::Succeeded
            }
        } else if now >= self.started_at() {
            DeploymentStatus::Building
        } else {
            DeploymentStatus::Queued
        }
    }

    pub fn view(&self, current: Option<&str>) -> Deployment {
        Deployment {
            id: self.id.clone(),
            project_id: self.project_id.clone(),
            status: self.status,
            commit: self.commit.clone(),
            created_at: rfc3339(self.created_at),
            current: current == Some(self.id.as_str()),
        }
    }
}

/// One log line as kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogRec {
    pub seq: u64,
    pub at: Timestamp,
    pub level: Level,
    pub project_id: String,
    #[serde(default)]
    pub deployment_id: Option<String>,
    pub message: String,
}

impl LogRec {
    pub fn view(&self) -> LogLine {
        LogLine {
            id: format!("log_{:x}", self.seq),
            timestamp: rfc3339(self.at),
            level: self.level,
            project_id: self.project_id.clone(),
            deployment_id: self.deployment_id.clone(),
            message: self.message.clone(),
        }
    }
}

/// What `GET /v1/deployments` filters on.
#[derive(Debug, Clone, Default)]
pub struct DeploymentFilter {
    pub project_id: Option<String>,
    pub status: Option<DeploymentStatus>,
    /// Strictly after.
    pub created_after: Option<Timestamp>,
}

/// What `GET /v1/logs` and the stream filter on.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub project_id: Option<String>,
    pub deployment_id: Option<String>,
    /// From (inclusive).
    pub since: Option<Timestamp>,
    /// Until (exclusive).
    pub until: Option<Timestamp>,
    /// This level and more severe ones.
    pub level: Option<Level>,
}

impl LogFilter {
    pub fn matches(&self, l: &LogRec) -> bool {
        self.project_id.as_ref().is_none_or(|p| *p == l.project_id)
            && self
                .deployment_id
                .as_ref()
                .is_none_or(|d| l.deployment_id.as_ref() == Some(d))
            && self.since.is_none_or(|s| l.at >= s)
            && self.until.is_none_or(|u| l.at < u)
            && self.level.is_none_or(|lv| l.level >= lv)
    }
}

impl State {
    fn log(
        &mut self,
        at: Timestamp,
        level: Level,
        project_id: &str,
        deployment_id: Option<&str>,
        message: String,
    ) {
        let seq = self.next_seq();
        self.logs.push_back(LogRec {
            seq,
            at,
            level,
            project_id: project_id.to_string(),
            deployment_id: deployment_id.map(str::to_string),
            message,
        });
        while self.logs.len() > LOG_CAPACITY {
            self.logs.pop_front();
        }
    }

    /// Brings every deployment up to `now`: logs each step passed at its own time, in the
    /// order the steps happened, and makes each build that succeeded its project's current
    /// release.
    pub fn settle(&mut self, now: Timestamp) {
        let mut steps: Vec<(Timestamp, String, DeploymentStatus)> = Vec::new();
        for d in self.deployments.values().filter(|d| !d.status.is_final()) {
            let target = d.status_at(now);
            if d.status == DeploymentStatus::Queued && target != DeploymentStatus::Queued {
                steps.push((d.started_at(), d.id.clone(), DeploymentStatus::Building));
            }
            if target.is_final() {
                steps.push((d.finished_at(), d.id.clone(), target));
            }
        }
        steps.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        for (at, id, status) in steps {
            let Some(d) = self.deployments.get_mut(&id) else {
                continue;
            };
            d.status = status;
            let (project, commit, failure) =
                (d.project_id.clone(), d.commit.clone(), d.failure.clone());
            let dep = Some(id.as_str());
            match status {
                DeploymentStatus::Building => {
                    self.log(
                        at,
                        Level::Info,
                        &project,
                        dep,
                        format!("build started for commit {commit}"),
                    );
                    self.log(
                        at,
                        Level::Debug,
                        &project,
                        dep,
                        "installing dependencies".into(),
                    );
                }
                DeploymentStatus::Succeeded => {
                    self.log(
                        at,
                        Level::Info,
                        &project,
                        dep,
                        format!("build succeeded for commit {commit}"),
                    );
                    self.log(
                        at,
                        Level::Info,
                        &project,
                        dep,
                        format!("deployment {id} is live"),
                    );
                    if let Some(p) = self.projects.get_mut(&project) {
                        p.current = Some(id.clone());
                    }
                }
                DeploymentStatus::Failed => {
                    let cause = failure.unwrap_or_default();
                    self.log(
                        at,
                        Level::Error,
                        &project,
                        dep,
                        format!("build failed for commit {commit}: {cause}"),
                    );
                }
                DeploymentStatus::Queued => {}
            }
        }
    }

    /// Starts a build of `commit` for `project_id` (already checked to be the caller's).
    /// `fail_reason`: why the sandbox fails this build, if it does.
    pub fn create_deployment(
        &mut self,
        project_id: &str,
        commit: String,
        build: Duration,
        failure: Option<String>,
        now: Timestamp,
    ) -> Deployment {
        let id = self.new_id("dep_", 6);
        let seq = self.next_seq();
        self.creates.deployments += 1;
        self.builds += 1;
        let rec = DeploymentRec {
            id: id.clone(),
            seq,
            project_id: project_id.to_string(),
            commit: commit.clone(),
            created_at: now,
            build_ms: u64::try_from(build.as_millis()).unwrap_or(u64::MAX),
            failure,
            status: DeploymentStatus::Queued,
        };
        let view = rec.view(None);
        self.deployments.insert(id.clone(), rec);
        self.log(
            now,
            Level::Info,
            project_id,
            Some(&id),
            format!("deployment {id} queued for commit {commit}"),
        );
        self.settle(now);
        view
    }

    /// Deployments of the projects `visible` accepts that pass `f`, newest first, each with its
    /// sequence number.
    pub fn deployments_where(
        &self,
        visible: impl Fn(&str) -> bool,
        f: &DeploymentFilter,
    ) -> Vec<(u64, Deployment)> {
        let mut all: Vec<_> = self
            .deployments
            .values()
            .filter(|d| visible(&d.project_id))
            .filter(|d| f.project_id.as_ref().is_none_or(|p| *p == d.project_id))
            .filter(|d| f.status.is_none_or(|s| s == d.status))
            .filter(|d| f.created_after.is_none_or(|t| d.created_at > t))
            .collect();
        all.sort_by_key(|d| std::cmp::Reverse(d.seq));
        all.into_iter()
            .map(|d| {
                let current = self
                    .projects
                    .get(&d.project_id)
                    .and_then(|p| p.current.as_deref());
                (d.seq, d.view(current))
            })
            .collect()
    }

    /// Makes the release before `id` (the project's last succeeded deployment created before
    /// it) current again. No build. Answers the deployment now current.
    pub fn rollback(&mut self, id: &str, now: Timestamp) -> Result<Deployment, ApiError> {
        let d = self
            .deployments
            .get(id)
            .ok_or_else(|| ApiError::not_found("deployment", id))?;
        if d.status != DeploymentStatus::Succeeded {
            return Err(ApiError::conflict(
                codes::CONFLICT,
                format!(
                    "deployment {id} is {}: only a release (a succeeded deployment) can be rolled back",
                    d.status.name()
                ),
            ));
        }
        let (project, seq) = (d.project_id.clone(), d.seq);
        let previous = self
            .deployments
            .values()
            .filter(|o| {
                o.project_id == project && o.seq < seq && o.status == DeploymentStatus::Succeeded
            })
            .max_by_key(|o| o.seq)
            .cloned()
            .ok_or_else(|| {
                ApiError::conflict(
                    codes::CONFLICT,
                    format!("deployment {id} has no earlier release to roll back to"),
                )
            })?;
        if let Some(p) = self.projects.get_mut(&project) {
            p.current = Some(previous.id.clone());
        }
        self.log(
            now,
            Level::Info,
            &project,
            Some(&previous.id),
            format!(
                "rolled back from {id} to {} (commit {}), no rebuild",
                previous.id, previous.commit
            ),
        );
        Ok(previous.view(Some(&previous.id)))
    }

    /// Log lines of the projects `visible` accepts that pass `f`, oldest first, with their
    /// sequence numbers.
    pub fn logs_where(&self, visible: impl Fn(&str) -> bool, f: &LogFilter) -> Vec<(u64, LogLine)> {
        self.logs
            .iter()
            .filter(|l| visible(&l.project_id) && f.matches(l))
            .map(|l| (l.seq, l.view()))
            .collect()
    }

    /// Lines after sequence number `after` that pass (for the live tail).
    pub fn logs_after(
        &self,
        after: u64,
        visible: impl Fn(&str) -> bool,
        f: &LogFilter,
    ) -> Vec<(u64, LogLine)> {
        self.logs
            .iter()
            .filter(|l| l.seq > after && visible(&l.project_id) && f.matches(l))
            .map(|l| (l.seq, l.view()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::wire::Dialect;
    use super::*;

    fn t(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_790_000_000_000 + ms).unwrap()
    }

    fn project(st: &mut State) -> String {
        st.create_project(Dialect::Cloudapi, "default", "p".into(), None, t(0))
            .id
            .clone()
    }

    #[test]
    fn a_build_is_queued_then_building_then_succeeded_and_current() {
        let mut st = State::default();
        let p = project(&mut st);
        let d = st.create_deployment(&p, "a1".into(), Duration::from_millis(400), None, t(0));
        assert_eq!(d.status, DeploymentStatus::Queued);
        st.settle(t(99));
        assert_eq!(st.deployments[&d.id].status, DeploymentStatus::Queued);
        st.settle(t(100));
        assert_eq!(st.deployments[&d.id].status, DeploymentStatus::Building);
        assert_eq!(st.projects[&p].current, None);
        st.settle(t(400));
        assert_eq!(st.deployments[&d.id].status, DeploymentStatus::Succeeded);
        assert_eq!(st.projects[&p].current.as_deref(), Some(d.id.as_str()));
        let lines: Vec<_> = st.logs.iter().map(|l| l.message.clone()).collect();
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert!(st.logs.iter().all(|l| l.level != Level::Error));
    }

    #[test]
    fn a_failing_build_logs_its_cause_and_never_becomes_current() {
        let mut st = State::default();
        let p = project(&mut st);
        let d = st.create_deployment(
            &p,
            "fail-x".into(),
            Duration::from_millis(40),
            Some("the build step exited with status 1".into()),
            t(0),
        );
        st.settle(t(1000));
        assert_eq!(st.deployments[&d.id].status, DeploymentStatus::Failed);
        assert_eq!(st.projects[&p].current, None);
        let err = st.logs.iter().find(|l| l.level == Level::Error).unwrap();
        assert!(
            err.message.contains("exited with status 1"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_rollback_makes_the_previous_release_current_without_a_build() {
        let mut st = State::default();
        let p = project(&mut st);
        let b = Duration::from_millis(10);
        let d1 = st.create_deployment(&p, "c1".into(), b, None, t(0));
        let bad = st.create_deployment(&p, "fail-c".into(), b, Some("x".into()), t(1));
        let d2 = st.create_deployment(&p, "c2".into(), b, None, t(2));
        st.settle(t(100));
        assert_eq!(st.projects[&p].current.as_deref(), Some(d2.id.as_str()));
        let builds = st.builds;
        let now = st.rollback(&d2.id, t(200)).unwrap();
        assert_eq!((now.id.as_str(), now.current), (d1.id.as_str(), true));
        assert_eq!(st.builds, builds, "no rebuild");
        assert_eq!(st.projects[&p].current.as_deref(), Some(d1.id.as_str()));
        assert_eq!(st.rollback(&d1.id, t(300)).unwrap_err().status, 409);
        assert_eq!(st.rollback(&bad.id, t(300)).unwrap_err().status, 409);
        assert_eq!(st.rollback("dep_nope", t(300)).unwrap_err().status, 404);
    }
}
