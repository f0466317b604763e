//! CloudAPI's side of `stratus import` (both dialects): projects (`GET /v1/projects`) and, for
//! each project with a live deployment, a Release of that deployment's commit (one walk of
//! `GET /v1/deployments`) — the listings the operator observes with. API keys and tokens are
//! not imported: the API never shows a credential's value again, so an adopted one could
//! never fill its connection Secret.

use super::api::project::ProjectParameters;
use super::api::release::ReleaseParameters;
use super::api::{Project, Release};
use super::cloud::{CloudApiCloud, ProjectDeployments};
use super::model;
use super::release::ObservedRelease;
use crate::api::provider_config::Provider;
use crate::cloud::throttle::Priority;
use crate::engine::Connect;
use crate::import::{
    Connection, Found, ImportError, ImportKind, Importer, ListOptions, Listing, Reference, wants,
};

/// A user waits for the answer: the listings go ahead of the routine refreshes.
const PRIORITY: Priority = Priority::Urgent;

const NO_CREDENTIALS: &str = "CloudAPI shows a credential's value only when it is issued, so an adopted ApiKey or Token could never write its connection Secret; issue a new one with an ApiKey or Token object and revoke the old one in the console";

pub struct CloudApiImporter;

#[async_trait::async_trait]
impl Importer for CloudApiImporter {
    fn provider(&self) -> Provider {
        Provider::CloudApi
    }

    fn kinds(&self) -> Vec<ImportKind> {
        vec![
            ImportKind::of::<Project>(true),
            ImportKind::of::<Release>(true),
        ]
    }

    fn not_importable(&self) -> Vec<(&'static str, &'static str)> {
        vec![("ApiKey", NO_CREDENTIALS), ("Token", NO_CREDENTIALS)]
    }

    async fn list(
        &self,
        connection: Connection,
        want: &[ImportKind],
        _options: ListOptions,
    ) -> Result<Listing, ImportError> {
        let cloud =
            CloudApiCloud::connect(&connection.config_name, &connection.spec, connection.key)?;
        let client = &cloud.client;
        let mut listing = Listing::default();
        let projects = client
            .list_projects(PRIORITY)
            .await
            .map_err(ImportError::cloud("projects"))?;
        if wants(want, "Project") {
            listing.found.extend(projects.iter().map(project));
        }
        if wants(want, "Release") {
            let all = client
                .list_deployments(None, PRIORITY)
                .await
                .map_err(ImportError::cloud("deployments"))?;
            let groups = ProjectDeployments::group(all);
            for p in &projects {
                let deployments = groups
                    .iter()
                    .find(|g| g.project_id == p.id)
                    .map(|g| g.deployments.clone())
                    .unwrap_or_default();
                match release(p, deployments) {
                    Some(f) => listing.found.push(f),
                    None => listing.warnings.push(format!(
                        "project {} ({}) has no live deployment: no Release is written for it (create one with the commit to deploy)",
                        p.name, p.id
                    )),
                }
            }
        }
        Ok(listing)
    }
}

pub fn project(p: &model::Project) -> Found {
    let mut f = Found::new(
        "Project",
        &p.id,
        &p.name,
        ProjectParameters {
            name: p.name.clone(),
            region: p.region.clone(),
        },
    );
    f.region = p.region.clone();
    f
}

/// The Release of project `p` holding its live commit (the deployment the Release adapter
/// takes as live), or `None` when nothing is live. Named after the project; adopted by the
/// project's id, which is what a Release observes by.
pub fn release(p: &model::Project, deployments: Vec<model::Deployment>) -> Option<Found> {
    let observed = ObservedRelease {
        project_id: p.id.clone(),
        deployments,
        nonce: None,
        build_error: None,
    };
    let live = observed.live()?;
    let mut f = Found::new(
        "Release",
        &p.id,
        &p.name,
        ReleaseParameters {
            project_ref: None,
            project_id: Some(p.id.clone()),
            commit: live.commit.clone(),
            redeploy_nonce: None,
        },
    );
    if let Some(building) = observed
        .newest()
        .filter(|d| d.in_progress() && d.id != live.id)
    {
        f.notes.push(format!(
            "commit {} is being built: the manifest holds the commit live now ({}); once the build succeeds, an object allowed to update would roll the project back to it. Import again after the build, or set the commit before applying",
            building.commit, live.commit
        ));
    }
    f.region = p.region.clone();
    f.references.push(Reference {
        kind: "Project".into(),
        id: p.id.clone(),
        ref_field: "projectRef",
        id_field: "projectId",
    });
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::provider_config::CloudApiDialect;
    use crate::engine::Plan;
    use crate::providers::cloudapi::project::{self as adapter, DesiredProject};
    use crate::providers::cloudapi::release::DesiredRelease;
    use crate::providers::cloudapi::release::plan as release_plan;

    fn cloud_project() -> model::Project {
        model::Project {
            id: "prj-1".into(),
            name: "Shop".into(),
            region: Some("eu-west".into()),
            created_at: None,
            status: None,
        }
    }

    fn deployment(id: &str, commit: &str, status: &str, at: &str) -> model::Deployment {
        model::Deployment {
            id: id.into(),
            project_id: "prj-1".into(),
            status: status.into(),
            commit: commit.into(),
            created_at: Some(at.into()),
            current: None,
        }
    }

    #[test]
    fn an_imported_project_is_in_sync_in_either_dialect() {
        let p = cloud_project();
        let f = project(&p);
        assert_eq!(f.region.as_deref(), Some("eu-west"));
        let params: ProjectParameters = serde_json::from_value(f.for_provider).unwrap();
        for dialect in [CloudApiDialect::CloudApi, CloudApiDialect::CloudPlatform] {
            let d = DesiredProject {
                params: params.clone(),
                dialect,
            };
            assert_eq!(adapter::plan(&d, &p), Plan::UpToDate);
        }
    }

    #[test]
    fn an_imported_release_holds_the_live_commit_and_is_in_sync() {
        // Newest first: a failed build after the live one, and an older release.
        let deployments = vec![
            deployment("d3", "c3", "failed", "2026-01-03T00:00:00Z"),
            deployment("d2", "c2", "succeeded", "2026-01-02T00:00:00Z"),
            deployment("d1", "c1", "succeeded", "2026-01-01T00:00:00Z"),
        ];
        let p = cloud_project();
        let f = release(&p, deployments.clone()).unwrap();
        assert_eq!(f.external_id, "prj-1");
        assert_eq!(f.for_provider["commit"], "c2");
        assert_eq!(f.references[0].ref_field, "projectRef");
        let params: ReleaseParameters = serde_json::from_value(f.for_provider).unwrap();
        let d = DesiredRelease {
            project_id: params.project_id.unwrap(),
            commit: params.commit,
            nonce: params.redeploy_nonce,
            uid: "u".into(),
        };
        let o = ObservedRelease {
            project_id: "prj-1".into(),
            deployments,
            nonce: None,
            build_error: None,
        };
        assert_eq!(release_plan::plan(&d, &o), Plan::UpToDate);
    }

    #[test]
    fn a_project_with_nothing_live_has_no_release() {
        let failed = vec![deployment("d1", "c1", "failed", "2026-01-01T00:00:00Z")];
        assert!(release(&cloud_project(), failed).is_none());
        assert!(release(&cloud_project(), Vec::new()).is_none());
    }

    #[test]
    fn a_release_imported_while_a_build_runs_says_what_an_update_would_do() {
        let deployments = vec![
            deployment("d2", "c2", "building", "2026-01-02T00:00:00Z"),
            deployment("d1", "c1", "succeeded", "2026-01-01T00:00:00Z"),
        ];
        let f = release(&cloud_project(), deployments).unwrap();
        assert_eq!(f.for_provider["commit"], "c1");
        assert_eq!(f.notes.len(), 1);
        assert!(
            f.notes[0].starts_with("commit c2 is being built"),
            "{:?}",
            f.notes
        );
        let settled = vec![deployment("d1", "c1", "succeeded", "2026-01-01T00:00:00Z")];
        assert!(release(&cloud_project(), settled).unwrap().notes.is_empty());
    }
}
