//! The Project adapter (both dialects). Observed in bulk: one walk of `/v1/projects` per resync
//! serves every Project of a ProviderConfig. Creates go out once under the engine's
//! Idempotency-Key (both dialects honour it), so an ambiguous attempt is replayed and answered
//! with the project it made, never a second one.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::api::project::{Project, ProjectObservation, ProjectParameters};
use super::cloud::CloudApiCloud;
use super::model::{self, ProjectCreate, ProjectPatch};
use crate::api::provider_config::CloudApiDialect;
use crate::cloud::CloudError;
use crate::engine::{Adapter, Blocked, Created, Found, Freshness, Invalid, Plan, Readiness};

#[derive(Clone)]
pub struct ProjectAdapter;

/// The desired project and the dialect it is created in (known once the ProviderConfig is).
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredProject {
    pub params: ProjectParameters,
    pub dialect: CloudApiDialect,
}

/// One change the API can make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProjectAction {
    /// `PATCH /v1/projects/{id}` with the new name.
    Rename(String),
}

/// Pure checks the schema cannot make.
pub fn validate_params(p: &ProjectParameters) -> Result<(), Invalid> {
    let invalid = |m: String| Err(Invalid::new("InvalidSpec", m));
    let name = p.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name != p.name {
        return invalid(format!(
            "spec.forProvider.name {:?} must be 1-100 characters without surrounding spaces",
            p.name
        ));
    }
    if p.name.chars().any(char::is_control) {
        return invalid("spec.forProvider.name must not contain control characters".into());
    }
    if let Some(r) = &p.region
        && (r.trim().is_empty() || r.trim() != r || r.chars().any(char::is_whitespace))
    {
        return invalid(format!(
            "spec.forProvider.region {r:?} must be a region name such as us-east-1"
        ));
    }
    Ok(())
}

/// What the dialect accepts: `cloudapi` needs a region, `cloudplatform` has none.
pub fn check_dialect(p: &ProjectParameters, dialect: CloudApiDialect) -> Result<(), Invalid> {
    match (dialect, &p.region) {
        (CloudApiDialect::CloudApi, None) => Err(Invalid::new(
            "InvalidSpec",
            "spec.forProvider.region is required by the cloudapi dialect: set it (e.g. us-east-1)",
        )),
        (CloudApiDialect::CloudPlatform, Some(r)) => Err(Invalid::new(
            "InvalidSpec",
            format!(
                "spec.forProvider.region {r:?} is not accepted: the ProviderConfig's dialect is cloudplatform, whose projects have no region; remove spec.forProvider.region"
            ),
        )),
        _ => Ok(()),
    }
}

/// What to change to match the spec.
pub fn plan(d: &DesiredProject, o: &model::Project) -> Plan<ProjectAction> {
    if let (Some(want), Some(have)) = (&d.params.region, &o.region)
        && want != have
    {
        return Plan::Impossible(Invalid::new(
            "RegionImmutable",
            format!(
                "project {} is in region {have}, the spec asks for {want}: a project's region is fixed at creation; set spec.forProvider.region back to {have}, or create a new Project",
                o.id
            ),
        ));
    }
    if o.name == d.params.name {
        return Plan::UpToDate;
    }
    if d.dialect == CloudApiDialect::CloudPlatform {
        return Plan::Impossible(Invalid::new(
            "NotUpdatable",
            format!(
                "project {} is named {:?}, the spec asks for {:?}: the cloudplatform dialect documents no project update; set spec.forProvider.name back, or rename the project in the console",
                o.id, o.name, d.params.name
            ),
        ));
    }
    Plan::Update(vec![ProjectAction::Rename(d.params.name.clone())])
}

pub fn observation(o: &model::Project) -> ProjectObservation {
    ProjectObservation {
        id: o.id.clone(),
        name: o.name.clone(),
        region: o.region.clone(),
        state: o.status.clone(),
        created_at: o.created_at.clone(),
    }
}

#[async_trait::async_trait]
impl Adapter for ProjectAdapter {
    type Kind = Project;
    type Cloud = CloudApiCloud;
    type Observed = model::Project;
    type Desired = DesiredProject;
    type Action = ProjectAction;
    type CreateRequest = ProjectCreate;

    const PROVIDER: &'static str = super::PROVIDER;
    const CONTROLLER: &'static str = "project";

    crate::managed_kind_accessors!(observation);

    fn validate(obj: &Project) -> Result<(), Invalid> {
        validate_params(&obj.spec.for_provider)
    }

    async fn desired(
        &self,
        _kube: &kube::Client,
        obj: &Project,
    ) -> Result<DesiredProject, Blocked> {
        Ok(DesiredProject {
            params: obj.spec.for_provider.clone(),
            dialect: CloudApiDialect::default(),
        })
    }

    async fn check_offer(
        &self,
        cloud: &CloudApiCloud,
        desired: &mut DesiredProject,
    ) -> Result<Result<(), Blocked>, CloudError> {
        desired.dialect = cloud.dialect();
        Ok(check_dialect(&desired.params, desired.dialect).map_err(Blocked::Invalid))
    }

    async fn observe(
        &self,
        cloud: &CloudApiCloud,
        _obj: &Project,
        id: &str,
        fresh: Freshness,
    ) -> Result<Option<model::Project>, CloudError> {
        cloud
            .projects
            .observe(
                id,
                fresh,
                |p| cloud.client.get_project(id, p),
                |p| cloud.client.list_projects(p),
            )
            .await
    }

    fn create_request(_obj: &Project, d: &DesiredProject) -> ProjectCreate {
        ProjectCreate {
            name: d.params.name.clone(),
            region: d.params.region.clone(),
        }
    }

    /// Nothing is looked for: both dialects honour the Idempotency-Key, so the engine replays
    /// the recorded request under the same key and the API answers with the project the first
    /// attempt made, if it made one. (Names are not unique: a lookup by name could take a
    /// project made elsewhere for ours.)
    async fn find_created(
        &self,
        _cloud: &CloudApiCloud,
        _obj: &Project,
        _request: &ProjectCreate,
    ) -> Result<Option<Found<model::Project>>, CloudError> {
        Ok(None)
    }

    async fn create(
        &self,
        cloud: &CloudApiCloud,
        _obj: &Project,
        request: &ProjectCreate,
        key: Uuid,
    ) -> Result<Created<model::Project>, CloudError> {
        let made = cloud.client.create_project(request, key).await?;
        cloud.projects.put(made.clone());
        Ok(made.into())
    }

    fn plan(d: &DesiredProject, o: &model::Project, _digest: Option<&str>) -> Plan<ProjectAction> {
        plan(d, o)
    }

    async fn act(
        &self,
        cloud: &CloudApiCloud,
        o: &model::Project,
        action: &ProjectAction,
    ) -> Result<model::Project, CloudError> {
        let ProjectAction::Rename(name) = action;
        let next = cloud
            .client
            .update_project(
                &o.id,
                &ProjectPatch {
                    name: Some(name.clone()),
                },
            )
            .await?;
        cloud.projects.put(next.clone());
        Ok(next)
    }

    async fn delete(&self, cloud: &CloudApiCloud, o: &model::Project) -> Result<(), CloudError> {
        match cloud.client.delete_project(&o.id).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        cloud.projects.remove(&o.id);
        cloud.deployments.remove(&o.id);
        Ok(())
    }

    fn external_id(o: &model::Project) -> String {
        o.id.clone()
    }

    fn is_deleting(_o: &model::Project) -> bool {
        false
    }

    fn is_transitional(_o: &model::Project) -> bool {
        false
    }

    fn readiness(o: &model::Project) -> Readiness {
        match o.status.as_deref() {
            None | Some("active") => Readiness::Available(format!("project {} is active", o.id)),
            Some(other) => Readiness::Unavailable(format!("project {} is {other}", o.id)),
        }
    }
}

/// The project id a Release or ApiKey names: its `projectId`, or the id a Project object
/// reports. A referenced Project that has no id yet is waited for.
pub async fn resolve_project(
    kube: &kube::Client,
    namespace: &str,
    reference: Option<&super::api::ProjectReference>,
    id: Option<&str>,
) -> Result<String, Blocked> {
    if let Some(id) = id {
        return Ok(id.to_string());
    }
    let Some(reference) = reference else {
        return Err(Blocked::Invalid(Invalid::new(
            "InvalidSpec",
            "set spec.forProvider.projectRef (a Project object) or spec.forProvider.projectId",
        )));
    };
    let api: kube::Api<Project> = kube::Api::namespaced(kube.clone(), namespace);
    let waiting = |message: String| Blocked::Waiting(Invalid::new("WaitingForProject", message));
    match api.get_opt(&reference.name).await {
        Ok(Some(p)) => match ProjectAdapter::reported_id(&p) {
            Some(id) if p.metadata.deletion_timestamp.is_none() => Ok(id.to_string()),
            _ => Err(waiting(format!(
                "Project {} has no id yet (or is being deleted)",
                reference.name
            ))),
        },
        Ok(None) => Err(waiting(format!(
            "Project {} does not exist in namespace {namespace}",
            reference.name
        ))),
        Err(e) => Err(waiting(format!(
            "Project {} cannot be read: {e}",
            reference.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(name: &str, region: Option<&str>) -> ProjectParameters {
        ProjectParameters {
            name: name.into(),
            region: region.map(str::to_string),
        }
    }

    fn observed(name: &str, region: Option<&str>) -> model::Project {
        model::Project {
            id: "proj_1".into(),
            name: name.into(),
            region: region.map(str::to_string),
            created_at: None,
            status: Some("active".into()),
        }
    }

    fn desired(name: &str, region: Option<&str>, dialect: CloudApiDialect) -> DesiredProject {
        DesiredProject {
            params: params(name, region),
            dialect,
        }
    }

    #[test]
    fn names_and_regions_the_api_would_refuse_are_spec_errors_before_any_call() {
        for bad in ["", " lead", &"x".repeat(101), "tab\there"] {
            assert!(validate_params(&params(bad, None)).is_err(), "{bad:?}");
        }
        assert!(validate_params(&params("acme", Some("us east"))).is_err());
        assert!(validate_params(&params("acme", Some("us-east-1"))).is_ok());
    }

    #[test]
    fn a_region_is_required_by_cloudapi_and_refused_by_cloudplatform() {
        let api = CloudApiDialect::CloudApi;
        let platform = CloudApiDialect::CloudPlatform;
        assert!(check_dialect(&params("a", None), api).is_err());
        assert!(check_dialect(&params("a", Some("us-east-1")), api).is_ok());
        let e = check_dialect(&params("a", Some("us-east-1")), platform).unwrap_err();
        assert!(e.message.contains("cloudplatform"), "{}", e.message);
        assert!(check_dialect(&params("a", None), platform).is_ok());
    }

    #[test]
    fn a_rename_is_a_patch_in_cloudapi_and_a_region_change_is_impossible() {
        let api = CloudApiDialect::CloudApi;
        assert_eq!(
            plan(&desired("a", Some("r1"), api), &observed("a", Some("r1"))),
            Plan::UpToDate
        );
        assert_eq!(
            plan(&desired("b", Some("r1"), api), &observed("a", Some("r1"))),
            Plan::Update(vec![ProjectAction::Rename("b".into())])
        );
        match plan(&desired("a", Some("r2"), api), &observed("a", Some("r1"))) {
            Plan::Impossible(i) => assert_eq!(i.reason, "RegionImmutable"),
            other => panic!("{other:?}"),
        }
        match plan(
            &desired("b", None, CloudApiDialect::CloudPlatform),
            &observed("a", None),
        ) {
            Plan::Impossible(i) => assert_eq!(i.reason, "NotUpdatable"),
            other => panic!("{other:?}"),
        }
    }
}
