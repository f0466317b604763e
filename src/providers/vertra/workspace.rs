//! The Workspace adapter. Workspaces need the Enterprise plan (`PLAN_RESTRICTED_FEATURE` needs
//! a human: `Stalled`); a frozen workspace (its owner lost the plan) is reported, never written
//! to. A workspace's name is unique among its owner's, so an ambiguous create is found again by
//! name, and adopted only if the cloud made it after the attempt started (`Proof::NaturalKey`).

use kube::ResourceExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::api::workspace::{Workspace, WorkspaceObservation, WorkspaceParameters};
use super::cloud::VertraCloud;
use super::model::{self, WorkspaceWrite};
use crate::cloud::CloudError;
use crate::engine::{
    Adapter, Blocked, CreateGuard, Created, Found, Freshness, Invalid, Plan, Proof, Readiness,
};

#[derive(Clone)]
pub struct WorkspaceAdapter;

/// What a workspace create sends (recorded on the object before it is sent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceCreate {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One change the API can make: name and description together (`PUT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    pub name: Option<String>,
    pub description: Option<String>,
}

/// Pure checks the schema cannot make.
pub fn validate_params(p: &WorkspaceParameters) -> Result<(), Invalid> {
    let invalid = |m: String| Err(Invalid::new("InvalidSpec", m));
    let name = p.name.trim();
    if name.is_empty() || name.chars().count() > 50 || name != p.name {
        return invalid(format!(
            "spec.forProvider.name {:?} must be 1-50 characters without surrounding spaces",
            p.name
        ));
    }
    if p.name.chars().any(char::is_control) {
        return invalid("spec.forProvider.name must not contain control characters".into());
    }
    if let Some(d) = &p.description
        && d.chars().count() > 200
    {
        return invalid(format!(
            "spec.forProvider.description is {} characters long; at most 200 are allowed",
            d.chars().count()
        ));
    }
    Ok(())
}

/// What to change to match the spec. A frozen workspace is never written to.
pub fn plan(p: &WorkspaceParameters, o: &model::Workspace) -> Plan<Rename> {
    let name = (o.name != p.name).then(|| p.name.clone());
    let description = match (&p.description, &o.description) {
        (Some(want), have) if have.as_deref() != Some(want.as_str()) => Some(want.clone()),
        _ => None,
    };
    if name.is_none() && description.is_none() {
        return Plan::UpToDate;
    }
    if o.frozen {
        return Plan::Impossible(Invalid::new(
            "Frozen",
            format!(
                "workspace {} is frozen (its owner no longer has the Enterprise plan): it cannot be changed until the plan is back",
                o.id
            ),
        ));
    }
    Plan::Update(vec![Rename { name, description }])
}

pub fn observation(o: &model::Workspace) -> WorkspaceObservation {
    WorkspaceObservation {
        id: o.id.clone(),
        frozen: o.frozen,
        created_at: o.created_at.clone(),
    }
}

#[async_trait::async_trait]
impl Adapter for WorkspaceAdapter {
    type Kind = Workspace;
    type Cloud = VertraCloud;
    type Observed = model::Workspace;
    type Desired = WorkspaceParameters;
    type Action = Rename;
    type CreateRequest = WorkspaceCreate;

    const PROVIDER: &'static str = super::PROVIDER;
    const CONTROLLER: &'static str = "workspace";

    crate::managed_kind_accessors!(observation);

    fn validate(obj: &Workspace) -> Result<(), Invalid> {
        validate_params(&obj.spec.for_provider)
    }

    async fn desired(
        &self,
        _kube: &kube::Client,
        obj: &Workspace,
    ) -> Result<WorkspaceParameters, Blocked> {
        Ok(obj.spec.for_provider.clone())
    }

    async fn observe(
        &self,
        cloud: &VertraCloud,
        _obj: &Workspace,
        id: &str,
        fresh: Freshness,
    ) -> Result<Option<model::Workspace>, CloudError> {
        let found = cloud
            .workspaces
            .observe(
                id,
                fresh,
                |p| async move { Ok(cloud.client.get_workspace(id, p).await?.workspace) },
                |p| cloud.client.list_workspaces(p),
            )
            .await?;
        // A soft-deleted workspace is gone.
        Ok(found.filter(|w| w.deleted_at.is_none()))
    }

    fn create_guard(&self) -> CreateGuard {
        CreateGuard::FindOnly
    }

    fn create_request(_obj: &Workspace, d: &WorkspaceParameters) -> WorkspaceCreate {
        WorkspaceCreate {
            name: d.name.clone(),
            description: d.description.clone(),
        }
    }

    async fn find_created(
        &self,
        cloud: &VertraCloud,
        _obj: &Workspace,
        request: &WorkspaceCreate,
    ) -> Result<Option<Found<model::Workspace>>, CloudError> {
        cloud.relist_workspaces().await?;
        let mut candidates = cloud
            .workspaces
            .filter(|w| w.name == request.name && w.deleted_at.is_none());
        if candidates.len() > 1 {
            return Err(super::database::ambiguous(
                "workspaces.find",
                "workspaces",
                &request.name,
                candidates.len(),
            ));
        }
        Ok(candidates.pop().map(|observed| Found {
            observed,
            proof: Proof::NaturalKey,
        }))
    }

    async fn create(
        &self,
        cloud: &VertraCloud,
        _obj: &Workspace,
        request: &WorkspaceCreate,
        _key: Uuid,
    ) -> Result<Created<model::Workspace>, CloudError> {
        let made = cloud
            .client
            .create_workspace(&WorkspaceWrite {
                name: Some(request.name.clone()),
                description: request.description.clone(),
            })
            .await?;
        cloud.workspaces.put(made.clone());
        Ok(made.into())
    }

    fn created_at(o: &model::Workspace) -> Option<jiff::Timestamp> {
        o.created_at.as_deref().and_then(|t| t.parse().ok())
    }

    fn plan(d: &WorkspaceParameters, o: &model::Workspace, _digest: Option<&str>) -> Plan<Rename> {
        plan(d, o)
    }

    async fn act(
        &self,
        cloud: &VertraCloud,
        o: &model::Workspace,
        action: &Rename,
    ) -> Result<model::Workspace, CloudError> {
        let next = cloud
            .client
            .update_workspace(
                &o.id,
                &WorkspaceWrite {
                    name: action.name.clone(),
                    description: action.description.clone(),
                },
            )
            .await?;
        cloud.workspaces.put(next.clone());
        Ok(next)
    }

    async fn delete(&self, cloud: &VertraCloud, o: &model::Workspace) -> Result<(), CloudError> {
        match cloud.client.delete_workspace(&o.id).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
        cloud.workspaces.remove(&o.id);
        Ok(())
    }

    fn external_id(o: &model::Workspace) -> String {
        o.id.clone()
    }

    fn is_deleting(o: &model::Workspace) -> bool {
        o.deleted_at.is_some()
    }

    fn is_transitional(_o: &model::Workspace) -> bool {
        false
    }

    fn readiness(o: &model::Workspace) -> Readiness {
        if o.frozen {
            Readiness::Unavailable(format!(
                "workspace {} is frozen: its owner no longer has the Enterprise plan",
                o.id
            ))
        } else {
            Readiness::Available(format!("workspace {} is active", o.id))
        }
    }
}

/// The workspace id an Application or Database names: its `workspaceId`, or the id a Workspace
/// object reports. A referenced Workspace that has no id yet is waited for.
pub async fn resolve_workspace(
    kube: &kube::Client,
    namespace: &str,
    reference: Option<&super::api::WorkspaceReference>,
    id: Option<&str>,
) -> Result<Option<String>, Blocked> {
    if let Some(id) = id {
        return Ok(Some(id.to_string()));
    }
    let Some(reference) = reference else {
        return Ok(None);
    };
    let api: kube::Api<Workspace> = kube::Api::namespaced(kube.clone(), namespace);
    let waiting = |message: String| Blocked::Waiting(Invalid::new("WaitingForWorkspace", message));
    match api.get_opt(&reference.name).await {
        Ok(Some(w)) => match WorkspaceAdapter::reported_id(&w) {
            Some(id) if w.metadata.deletion_timestamp.is_none() => Ok(Some(id.to_string())),
            _ => Err(waiting(format!(
                "Workspace {} has no id yet (or is being deleted)",
                w.name_any()
            ))),
        },
        Ok(None) => Err(waiting(format!(
            "Workspace {} does not exist in namespace {namespace}",
            reference.name
        ))),
        Err(e) => Err(waiting(format!(
            "Workspace {} cannot be read: {e}",
            reference.name
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(name: &str, description: Option<&str>) -> WorkspaceParameters {
        WorkspaceParameters {
            name: name.into(),
            description: description.map(str::to_string),
        }
    }

    fn observed(name: &str, description: Option<&str>, frozen: bool) -> model::Workspace {
        serde_json::from_value(json!({
            "id": "ws-1", "name": name, "description": description, "frozen": frozen
        }))
        .unwrap()
    }

    #[test]
    fn names_that_the_api_would_refuse_are_spec_errors_before_any_call() {
        for bad in ["", " lead", "x".repeat(51).as_str(), "tab\there"] {
            assert!(validate_params(&params(bad, None)).is_err(), "{bad:?}");
        }
        assert!(validate_params(&params("team", Some(&"d".repeat(201)))).is_err());
        assert!(validate_params(&params("team", Some("ok"))).is_ok());
    }

    #[test]
    fn a_rename_is_one_update_and_a_frozen_workspace_is_not_written_to() {
        assert_eq!(
            plan(&params("team", None), &observed("team", Some("x"), false)),
            Plan::UpToDate,
            "an omitted description is left as it is"
        );
        assert_eq!(
            plan(&params("team-2", Some("d")), &observed("team", None, false)),
            Plan::Update(vec![Rename {
                name: Some("team-2".into()),
                description: Some("d".into())
            }])
        );
        match plan(&params("team-2", None), &observed("team", None, true)) {
            Plan::Impossible(i) => assert_eq!(i.reason, "Frozen"),
            other => panic!("{other:?}"),
        }
    }
}
