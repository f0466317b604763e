//! Workspaces (Enterprise): names unique among the owner's live ones, soft delete.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::super::plan::Plan;
use super::super::reply::{ApiError, rfc3339};
use super::super::wire::{DisplayName, Member, MemberUser, Role, Workspace, WorkspaceInfo, codes};
use super::{State, frozen};

/// The roles a new workspace is seeded with, and their permissions.
const ROLES: [(&str, &[&str]); 4] = [
    ("Admin", &PERMISSIONS),
    (
        "Developer",
        &[
            "apps:read",
            "apps:lifecycle",
            "apps:deploy",
            "apps:envs",
            "apps:files",
            "databases:read",
            "databases:lifecycle",
        ],
    ),
    ("Viewer", &["apps:read", "databases:read"]),
    ("Billing", &["billing:read"]),
];

/// The workspace permissions (the 18 of TW).
pub const PERMISSIONS: [&str; 18] = [
    "apps:read",
    "apps:lifecycle",
    "apps:deploy",
    "apps:envs",
    "apps:files",
    "apps:network",
    "apps:delete",
    "databases:read",
    "databases:lifecycle",
    "databases:credentials",
    "databases:delete",
    "snapshots:read",
    "snapshots:create",
    "snapshots:restore",
    "members:read",
    "members:manage",
    "roles:manage",
    "billing:read",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkspaceRec {
    pub id: String,
    pub seq: u64,
    pub name: String,
    pub description: Option<String>,
    pub roles: Vec<Role>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

impl WorkspaceRec {
    pub fn view(&self, owner_id: &str, owner_name: &str, plan: Plan) -> Workspace {
        Workspace {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            owner_id: owner_id.to_string(),
            owner: DisplayName {
                display_name: owner_name.to_string(),
            },
            members_count: 1,
            deleted_at: self.deleted_at.map(rfc3339),
            frozen: !plan.has_workspaces(),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
}

impl State {
    fn name_taken(&self, name: &str, except: Option<&str>) -> bool {
        self.workspaces
            .values()
            .any(|w| w.deleted_at.is_none() && w.name == name && Some(w.id.as_str()) != except)
    }

    fn name_conflict(name: &str) -> ApiError {
        ApiError::conflict(
            codes::WORKSPACE_NAME_ALREADY_EXISTS,
            format!("you already have a workspace named {name:?}"),
        )
    }

    pub fn workspace_view(&self, w: &WorkspaceRec, plan: Plan) -> Workspace {
        w.view(&self.user.id, &self.user.name, plan)
    }

    /// Live workspaces in creation order.
    pub fn workspace_views(&self, plan: Plan) -> Vec<Workspace> {
        let mut live: Vec<&WorkspaceRec> = self
            .workspaces
            .values()
            .filter(|w| w.deleted_at.is_none())
            .collect();
        live.sort_by_key(|w| w.seq);
        live.into_iter()
            .map(|w| self.workspace_view(w, plan))
            .collect()
    }

    pub fn create_workspace(
        &mut self,
        name: String,
        description: Option<String>,
        plan: Plan,
        now: Timestamp,
    ) -> Result<Workspace, ApiError> {
        if !plan.has_workspaces() {
            return Err(ApiError::plan("workspaces need the Enterprise plan"));
        }
        if self.name_taken(&name, None) {
            return Err(Self::name_conflict(&name));
        }
        let roles = ROLES
            .iter()
            .enumerate()
            .map(|(i, (n, perms))| Role {
                id: uuid::Uuid::new_v4().to_string(),
                name: n.to_string(),
                permissions: perms.iter().map(|p| p.to_string()).collect(),
                position: i as u32,
            })
            .collect();
        let seq = self.next_seq();
        let w = WorkspaceRec {
            id: uuid::Uuid::new_v4().to_string(),
            seq,
            name,
            description,
            roles,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        let view = self.workspace_view(&w, plan);
        self.workspaces.insert(w.id.clone(), w);
        self.creates.workspaces += 1;
        Ok(view)
    }

    pub fn workspace_info(
        &mut self,
        id: &str,
        plan: Plan,
        now: Timestamp,
    ) -> Result<WorkspaceInfo, ApiError> {
        self.live_workspace(id)?;
        self.settle(now);
        let w = &self.workspaces[id];
        let owner = &self.user;
        let applications = {
            let mut apps: Vec<_> = self
                .apps
                .values()
                .filter(|a| a.workspace_id.as_deref() == Some(id))
                .collect();
            apps.sort_by_key(|a| a.seq);
            apps.into_iter().map(|a| a.view(&owner.id, plan)).collect()
        };
        let databases = self
            .databases_in_order()
            .into_iter()
            .filter(|d| d.workspace_id.as_deref() == Some(id))
            .map(|d| d.view(&owner.id, plan))
            .collect();
        Ok(WorkspaceInfo {
            workspace: self.workspace_view(w, plan),
            members: vec![Member {
                user_id: owner.id.clone(),
                role_id: w.roles.first().map(|r| r.id.clone()).unwrap_or_default(),
                role_name: "Owner".into(),
                joined_at: rfc3339(w.created_at),
                expires_at: None,
                user: MemberUser {
                    display_name: owner.name.clone(),
                    email: owner.email.clone(),
                },
            }],
            roles: w.roles.clone(),
            applications,
            databases,
            permissions: PERMISSIONS.iter().map(|p| p.to_string()).collect(),
            is_owner: true,
            owner_plan_id: plan.id(),
        })
    }

    pub fn update_workspace(
        &mut self,
        id: &str,
        name: Option<String>,
        description: Option<Option<String>>,
        plan: Plan,
        now: Timestamp,
    ) -> Result<Workspace, ApiError> {
        self.live_workspace(id)?;
        if !plan.has_workspaces() {
            return Err(frozen());
        }
        if let Some(n) = &name
            && self.name_taken(n, Some(id))
        {
            return Err(Self::name_conflict(n));
        }
        let w = self
            .workspaces
            .get_mut(id)
            .ok_or_else(|| ApiError::not_found(codes::WORKSPACE_NOT_FOUND, "no such workspace"))?;
        if let Some(n) = name {
            w.name = n;
        }
        if let Some(d) = description {
            w.description = d;
        }
        w.updated_at = now;
        let w = w.clone();
        Ok(self.workspace_view(&w, plan))
    }

    /// Soft delete: the workspace is kept with `deleted_at`; its apps and databases go back to
    /// the owner.
    pub fn delete_workspace(
        &mut self,
        id: &str,
        plan: Plan,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        self.live_workspace(id)?;
        if !plan.has_workspaces() {
            return Err(frozen());
        }
        for a in self.apps.values_mut() {
            if a.workspace_id.as_deref() == Some(id) {
                a.workspace_id = None;
            }
        }
        for d in self.databases.values_mut() {
            if d.workspace_id.as_deref() == Some(id) {
                d.workspace_id = None;
            }
        }
        if let Some(w) = self.workspaces.get_mut(id) {
            w.deleted_at = Some(now);
            w.updated_at = now;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_among_live_workspaces_and_delete_is_soft() {
        let mut st = State::new(Timestamp::now());
        let t = Timestamp::now();
        let e = st
            .create_workspace("team".into(), None, Plan::Intermediary, t)
            .unwrap_err();
        assert_eq!(e.code, codes::PLAN_RESTRICTED_FEATURE);
        let w = st
            .create_workspace("team".into(), None, Plan::Enterprise, t)
            .unwrap();
        assert!(!w.frozen && w.deleted_at.is_none());
        let e = st
            .create_workspace("team".into(), None, Plan::Enterprise, t)
            .unwrap_err();
        assert_eq!(e.code, codes::WORKSPACE_NAME_ALREADY_EXISTS);
        let info = st.workspace_info(&w.id, Plan::Enterprise, t).unwrap();
        assert_eq!(info.roles.len(), 4);
        assert_eq!(
            st.delete_workspace(&w.id, Plan::Scale, t).unwrap_err().code,
            codes::PLAN_RESTRICTED_FEATURE
        );
        st.delete_workspace(&w.id, Plan::Enterprise, t).unwrap();
        assert!(st.workspaces[&w.id].deleted_at.is_some());
        assert!(st.workspace_views(Plan::Enterprise).is_empty());
        assert_eq!(
            st.workspace_info(&w.id, Plan::Enterprise, t)
                .unwrap_err()
                .code,
            codes::WORKSPACE_NOT_FOUND
        );
        st.create_workspace("team".into(), None, Plan::Enterprise, t)
            .unwrap();
        assert_eq!(st.creates.workspaces, 2);
    }
}
