//! Projects: created in the caller's workspace (`cloudplatform`) or the one account
//! (`cloudapi`), renamed, deleted with everything that hangs off them.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::super::reply::{ApiError, rfc3339};
use super::super::wire::{Dialect, Project};
use super::State;

/// The longest project name (*assumed*).
pub const MAX_NAME: usize = 100;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectRec {
    pub id: String,
    pub seq: u64,
    /// The workspace (account) the project belongs to; only its keys see it.
    pub workspace: String,
    pub name: String,
    /// Fixed at create (`cloudapi` only).
    #[serde(default)]
    pub region: Option<String>,
    pub created_at: Timestamp,
    /// The deployment that is live now: the last to succeed, or the one a rollback chose.
    #[serde(default)]
    pub current: Option<String>,
}

impl ProjectRec {
    pub fn view(&self, dialect: Dialect) -> Project {
        match dialect {
            Dialect::Cloudapi => Project {
                id: self.id.clone(),
                name: self.name.clone(),
                region: self.region.clone(),
                created_at: rfc3339(self.created_at),
                status: Some("active".into()),
            },
            Dialect::Cloudplatform => Project {
                id: self.id.clone(),
                name: self.name.clone(),
                region: None,
                created_at: rfc3339(self.created_at),
                status: None,
            },
        }
    }
}

/// A name: 1 to [`MAX_NAME`] characters, not blank.
pub fn check_name(name: &str) -> Result<String, ApiError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > MAX_NAME {
        return Err(ApiError::invalid(
            "name",
            format!("name must be 1 to {MAX_NAME} characters"),
        ));
    }
    Ok(n.to_string())
}

/// A region: lowercase letters, digits and dashes (`us-east-1`); any such region exists.
pub fn check_region(region: &str) -> Result<String, ApiError> {
    let ok = !region.is_empty()
        && region.len() <= 32
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(ApiError::invalid(
            "region",
            format!("region {region:?} is not a region name like us-east-1"),
        ));
    }
    Ok(region.to_string())
}

pub fn not_found(id: &str) -> ApiError {
    ApiError::not_found("project", id)
}

impl State {
    /// The project `id` if `workspace` may see it.
    pub fn project(&self, workspace: &str, id: &str) -> Result<&ProjectRec, ApiError> {
        self.projects
            .get(id)
            .filter(|p| p.workspace == workspace)
            .ok_or_else(|| not_found(id))
    }

    /// `workspace`'s projects, oldest first.
    pub fn projects_of(&self, workspace: &str) -> Vec<&ProjectRec> {
        let mut all: Vec<_> = self
            .projects
            .values()
            .filter(|p| p.workspace == workspace)
            .collect();
        all.sort_by_key(|p| p.seq);
        all
    }

    pub fn create_project(
        &mut self,
        dialect: Dialect,
        workspace: &str,
        name: String,
        region: Option<String>,
        now: Timestamp,
    ) -> &ProjectRec {
        let id = self.new_id(dialect.project_prefix(), 6);
        let seq = self.next_seq();
        self.creates.projects += 1;
        let rec = ProjectRec {
            id: id.clone(),
            seq,
            workspace: workspace.to_string(),
            name,
            region,
            created_at: now,
            current: None,
        };
        self.projects.entry(id).or_insert(rec)
    }

    /// Renames; `region` may only repeat the one the project has (it is fixed at create).
    pub fn patch_project(
        &mut self,
        workspace: &str,
        id: &str,
        name: Option<String>,
        region: Option<String>,
    ) -> Result<&ProjectRec, ApiError> {
        self.project(workspace, id)?;
        let p = self.projects.get_mut(id).ok_or_else(|| not_found(id))?;
        if let Some(r) = region
            && p.region.as_deref() != Some(r.as_str())
        {
            return Err(ApiError::invalid(
                "region",
                format!(
                    "region is fixed at create ({}); create a new project for another region",
                    p.region.as_deref().unwrap_or("none")
                ),
            ));
        }
        if let Some(n) = name {
            p.name = n;
        }
        Ok(p)
    }

    /// Deletes the project, its deployments and its log lines, and revokes its keys.
    pub fn delete_project(
        &mut self,
        workspace: &str,
        id: &str,
        now: Timestamp,
    ) -> Result<ProjectRec, ApiError> {
        self.project(workspace, id)?;
        let p = self.projects.remove(id).ok_or_else(|| not_found(id))?;
        self.deployments.retain(|_, d| d.project_id != id);
        self.logs.retain(|l| l.project_id != id);
        for k in self.keys.values_mut().filter(|k| k.project_id == id) {
            k.project_deleted = true;
            k.revoked_at.get_or_insert(now);
        }
        Ok(p)
    }
}
