//! The Release's pure parts: what a project's deployments say (the live release, a build in
//! progress, a failed build), what to do to reach the spec, readiness and `atProvider`.

use uuid::Uuid;

use super::super::api::release::{DeploymentSummary, ReleaseObservation};
use super::super::model::Deployment;
use crate::cloud::idempotency::idempotency_key;
use crate::engine::{Invalid, Plan, Readiness};

/// How many deployments `status.atProvider.recent` shows.
pub const RECENT: usize = 5;

/// A project's deployments as a Release sees them.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedRelease {
    pub project_id: String,
    /// Every deployment of the project, newest first.
    pub deployments: Vec<Deployment>,
    /// The redeployNonce the newest deployment this object made answers (from its status:
    /// the cloud does not keep it).
    pub nonce: Option<String>,
    /// The last error line of the newest deployment's build, when it failed.
    pub build_error: Option<String>,
}

impl ObservedRelease {
    /// The live deployment: the one the API marks `current`, or (an API without the field)
    /// the newest that succeeded.
    pub fn live(&self) -> Option<&Deployment> {
        self.deployments
            .iter()
            .find(|d| d.current == Some(true))
            .or_else(|| {
                let marked = self.deployments.iter().any(|d| d.current.is_some());
                (!marked)
                    .then(|| self.deployments.iter().find(|d| d.succeeded()))
                    .flatten()
            })
    }

    pub fn newest(&self) -> Option<&Deployment> {
        self.deployments.first()
    }

    /// The release before the live one: what `POST /v1/deployments/{live}/rollback` makes live
    /// again (the newest succeeded deployment created before it).
    pub fn previous(&self) -> Option<&Deployment> {
        let live = self.live()?;
        let at = self.deployments.iter().position(|d| d.id == live.id)?;
        self.deployments[at + 1..].iter().find(|d| d.succeeded())
    }

    /// The newest deployment, if its build failed after the live release was made.
    pub fn failed_build(&self) -> Option<&Deployment> {
        let newest = self.newest().filter(|d| d.failed())?;
        match self.live() {
            Some(live) if live.created_at > newest.created_at => None,
            _ => Some(newest),
        }
    }
}

/// What the Release wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRelease {
    pub project_id: String,
    pub commit: String,
    pub nonce: Option<String>,
    /// The object's UID: part of every deploy's Idempotency-Key.
    pub uid: String,
}

/// One change the API can make. `Debug` is what events and the Synced message say.
#[derive(Clone, PartialEq, Eq)]
pub enum ReleaseAction {
    /// `POST /v1/deployments` of `commit`, under `key`: derived from the object, the commit,
    /// the nonce and the deployment live when it was planned, so a deploy repeated after a
    /// crash (before the status recorded it) is answered with the first one, never built
    /// twice, while a later deploy of the same commit gets a key of its own.
    Deploy {
        commit: String,
        nonce: Option<String>,
        key: Uuid,
        live: Option<String>,
    },
    /// `POST /v1/deployments/{live}/rollback`: the release before `live` goes live again,
    /// without a build.
    Rollback {
        live_id: String,
        live_commit: String,
        to_commit: String,
    },
}

impl std::fmt::Debug for ReleaseAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReleaseAction::Deploy { commit, live, .. } => {
                write!(f, "deploy commit {commit}")?;
                match live {
                    Some(live) if live == commit => write!(f, " again (live: {live})"),
                    Some(live) => write!(f, " (live: {live})"),
                    None => write!(f, " (nothing live)"),
                }
            }
            ReleaseAction::Rollback {
                live_commit,
                to_commit,
                ..
            } => write!(
                f,
                "roll back to commit {to_commit} without a build (live: {live_commit})"
            ),
        }
    }
}

/// What to do to make `d.commit` live.
///
/// - a build in progress (ours or anyone's) is waited for: a second one would race it;
/// - the commit is live: nothing, unless `redeployNonce` changed (then the same commit again);
/// - the newest build is of this commit and failed under the current nonce: `Impossible`
///   (never a retry loop: a new commit or nonce retries);
/// - the commit is the release before the live one: a rollback, without a build;
/// - otherwise: a deploy.
pub fn plan(d: &DesiredRelease, o: &ObservedRelease) -> Plan<ReleaseAction> {
    if o.newest().is_some_and(Deployment::in_progress) {
        return Plan::UpToDate;
    }
    if d.project_id != o.project_id {
        return Plan::Impossible(Invalid::new(
            "ProjectImmutable",
            format!(
                "this Release manages project {}, the spec names {}: a Release cannot move to another project; set the project back, or create another Release",
                o.project_id, d.project_id
            ),
        ));
    }
    let live = o.live();
    let nonce_changed = d.nonce != o.nonce;
    let deploy = |key: Uuid| ReleaseAction::Deploy {
        commit: d.commit.clone(),
        nonce: d.nonce.clone(),
        key,
        live: live.map(|l| l.commit.clone()),
    };
    if let Some(live) = live
        && live.commit == d.commit
    {
        return if nonce_changed {
            Plan::Update(vec![deploy(redeploy_key(d))])
        } else {
            Plan::UpToDate
        };
    }
    if let Some(failed) = o.failed_build()
        && failed.commit == d.commit
        && !nonce_changed
    {
        return Plan::Impossible(Invalid::new(
            "BuildFailed",
            format!(
                "the build of commit {} ({}) failed{}; {}: push a fix and set spec.forProvider.commit to it, or change spec.forProvider.redeployNonce to build it again",
                failed.commit,
                failed.id,
                o.build_error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default(),
                live.map(|l| format!("commit {} stays live", l.commit))
                    .unwrap_or_else(|| "nothing is live".into()),
            ),
        ));
    }
    if let (Some(live), Some(previous)) = (live, o.previous())
        && previous.commit == d.commit
        && !nonce_changed
    {
        return Plan::Update(vec![ReleaseAction::Rollback {
            live_id: live.id.clone(),
            live_commit: live.commit.clone(),
            to_commit: previous.commit.clone(),
        }]);
    }
    Plan::Update(vec![deploy(deploy_key(d, live.map(|l| l.id.as_str())))])
}

/// The Idempotency-Key of a deploy of a new commit (see [`ReleaseAction::Deploy`]): after a
/// lost answer the deployment it made is in progress (waited for) or live (nothing to do), and
/// until then the same plan gives the same key.
pub fn deploy_key(d: &DesiredRelease, live: Option<&str>) -> Uuid {
    let purpose = serde_json::json!(["release.deploy", d.commit, d.nonce, live]).to_string();
    idempotency_key(&d.uid, &purpose, 0)
}

/// The Idempotency-Key of a redeploy for a changed nonce: the object, the commit and the
/// nonce only. A redeploy whose answer was lost is live once built, yet the nonce it answers
/// was never recorded: planned again, it gets the same key and the API answers with the
/// deployment it made instead of building a third time. (So a nonce set back to a value it
/// had, for the same commit, within the API's idempotency window, builds nothing: use new
/// values.)
pub fn redeploy_key(d: &DesiredRelease) -> Uuid {
    let purpose = serde_json::json!(["release.redeploy", d.commit, d.nonce]).to_string();
    idempotency_key(&d.uid, &purpose, 0)
}

pub fn readiness(o: &ObservedRelease) -> Readiness {
    let live = o.live();
    if let Some(newest) = o.newest().filter(|d| d.in_progress()) {
        return Readiness::Creating(format!(
            "commit {} is {} ({}){}",
            newest.commit,
            newest.status,
            newest.id,
            live.map(|l| format!("; commit {} is live", l.commit))
                .unwrap_or_default()
        ));
    }
    if let Some(failed) = o.failed_build() {
        return Readiness::Unavailable(format!(
            "the build of commit {} ({}) failed{}; {}",
            failed.commit,
            failed.id,
            o.build_error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default(),
            live.map(|l| format!("commit {} stays live", l.commit))
                .unwrap_or_else(|| "nothing is live".into())
        ));
    }
    match live {
        Some(l) => Readiness::Available(format!("commit {} is live ({})", l.commit, l.id)),
        None => Readiness::Unavailable(format!("project {} has no live deployment", o.project_id)),
    }
}

fn summary(d: &Deployment) -> DeploymentSummary {
    DeploymentSummary {
        id: d.id.clone(),
        commit: d.commit.clone(),
        status: d.status.clone(),
        created_at: d.created_at.clone(),
    }
}

pub fn observation(o: &ObservedRelease) -> ReleaseObservation {
    ReleaseObservation {
        id: o.project_id.clone(),
        current: o.live().map(summary),
        recent: o.deployments.iter().take(RECENT).map(summary).collect(),
        redeploy_nonce: o.nonce.clone(),
        build_error: o.failed_build().and(o.build_error.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(id: &str, commit: &str, status: &str, at: u32, current: bool) -> Deployment {
        Deployment {
            id: id.into(),
            project_id: "proj_1".into(),
            status: status.into(),
            commit: commit.into(),
            created_at: Some(format!("2026-04-28T14:00:{at:02}Z")),
            current: Some(current),
        }
    }

    fn observed(mut deployments: Vec<Deployment>, nonce: Option<&str>) -> ObservedRelease {
        crate::providers::cloudapi::cloud::sort_newest_first(&mut deployments);
        ObservedRelease {
            project_id: "proj_1".into(),
            deployments,
            nonce: nonce.map(str::to_string),
            build_error: Some("error: tests failed".into()),
        }
    }

    fn desired(commit: &str, nonce: Option<&str>) -> DesiredRelease {
        DesiredRelease {
            project_id: "proj_1".into(),
            commit: commit.into(),
            nonce: nonce.map(str::to_string),
            uid: "uid-1".into(),
        }
    }

    #[test]
    fn the_live_commit_is_up_to_date_until_the_nonce_changes() {
        let o = observed(vec![dep("d1", "aaa", "succeeded", 1, true)], None);
        assert_eq!(plan(&desired("aaa", None), &o), Plan::UpToDate);
        match plan(&desired("aaa", Some("n2")), &o) {
            Plan::Update(a) => {
                assert_eq!(format!("{a:?}"), "[deploy commit aaa again (live: aaa)]")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(readiness(&o), Readiness::Available(_)));
    }

    #[test]
    fn the_commit_before_the_live_one_is_a_rollback_and_any_other_a_deploy() {
        let o = observed(
            vec![
                dep("d1", "aaa", "succeeded", 1, false),
                dep("d2", "bbb", "failed", 2, false),
                dep("d3", "ccc", "succeeded", 3, true),
            ],
            None,
        );
        assert_eq!(
            o.previous().unwrap().id,
            "d1",
            "a failed build is never a release"
        );
        match plan(&desired("aaa", None), &o) {
            Plan::Update(a) => {
                assert!(matches!(&a[0], ReleaseAction::Rollback { live_id, .. } if live_id == "d3"))
            }
            other => panic!("{other:?}"),
        }
        match plan(&desired("ddd", None), &o) {
            Plan::Update(a) => {
                assert_eq!(format!("{a:?}"), "[deploy commit ddd (live: ccc)]")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_build_in_progress_is_waited_for() {
        let o = observed(
            vec![
                dep("d1", "aaa", "succeeded", 1, true),
                dep("d2", "zzz", "building", 2, false),
            ],
            None,
        );
        assert_eq!(plan(&desired("bbb", None), &o), Plan::UpToDate);
        assert!(matches!(readiness(&o), Readiness::Creating(_)));
    }

    #[test]
    fn a_failed_build_is_reported_with_its_log_line_and_not_retried() {
        let o = observed(
            vec![
                dep("d1", "aaa", "succeeded", 1, true),
                dep("d2", "bbb", "failed", 2, false),
            ],
            None,
        );
        match plan(&desired("bbb", None), &o) {
            Plan::Impossible(i) => {
                assert_eq!(i.reason, "BuildFailed");
                assert!(i.message.contains("tests failed"), "{}", i.message);
            }
            other => panic!("{other:?}"),
        }
        match readiness(&o) {
            Readiness::Unavailable(m) => assert!(m.contains("tests failed") && m.contains("aaa")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            plan(&desired("bbb", Some("retry")), &o),
            Plan::Update(_)
        ));
        assert_eq!(
            observation(&o).build_error.as_deref(),
            Some("error: tests failed")
        );
    }

    #[test]
    fn deploy_keys_repeat_for_the_same_plan_and_differ_for_a_later_deploy() {
        let d = desired("aaa", None);
        assert_eq!(deploy_key(&d, Some("d3")), deploy_key(&d, Some("d3")));
        assert_ne!(deploy_key(&d, Some("d3")), deploy_key(&d, Some("d4")));
        assert_ne!(
            deploy_key(&d, Some("d3")),
            deploy_key(&desired("aaa", Some("n")), Some("d3"))
        );
    }

    #[test]
    fn a_redeploy_planned_again_after_its_answer_was_lost_has_the_same_key() {
        // The redeploy (nonce n2) was made and went live; its answer was lost, so the status
        // still says nonce None.
        let o = observed(
            vec![
                dep("d1", "aaa", "succeeded", 1, false),
                dep("d2", "aaa", "succeeded", 2, true),
            ],
            None,
        );
        let first = observed(vec![dep("d1", "aaa", "succeeded", 1, true)], None);
        let key = |o: &ObservedRelease| match plan(&desired("aaa", Some("n2")), o) {
            Plan::Update(a) => match &a[0] {
                ReleaseAction::Deploy { key, .. } => *key,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        assert_eq!(key(&first), key(&o));
    }

    #[test]
    fn another_project_is_not_taken_over() {
        let o = observed(vec![dep("d1", "aaa", "succeeded", 1, true)], None);
        let mut d = desired("aaa", None);
        d.project_id = "proj_2".into();
        assert!(matches!(plan(&d, &o), Plan::Impossible(i) if i.reason == "ProjectImmutable"));
    }
}
