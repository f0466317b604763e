//! `/v1/workspaces` (Enterprise): list, create, read, update, soft delete.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use jiff::Timestamp;

use super::super::Sim;
use super::super::reply::{ApiError, created, ok};
use super::super::validate::{self as v, NAME_MAX, WORKSPACE_DESCRIPTION_MAX};
use super::{Answer, P, null};

/// Live workspaces (frozen ones too: reads stay open without the plan).
pub async fn list(State(sim): State<Arc<Sim>>) -> Answer {
    let plan = sim.cloud().plan();
    Ok(ok(sim.state().workspace_views(plan)))
}

pub async fn create(State(sim): State<Arc<Sim>>, body: Result<Bytes, BytesRejection>) -> Answer {
    let plan = sim.cloud().plan();
    let o = v::json_object(body)?;
    let name = v::required("name", v::string(&o, "name", 1, NAME_MAX)?)?;
    let description = v::string(&o, "description", 0, WORKSPACE_DESCRIPTION_MAX)?;
    let w = sim
        .state()
        .create_workspace(name, description, plan, Timestamp::now())?;
    sim.mutated();
    Ok(created(w))
}

pub async fn get(State(sim): State<Arc<Sim>>, P(id): P<String>) -> Answer {
    let plan = sim.cloud().plan();
    Ok(ok(sim.state().workspace_info(
        &id,
        plan,
        Timestamp::now(),
    )?))
}

/// `PUT /v1/workspaces/:id {name?, description?}` (at least one) → the workspace.
pub async fn update(
    State(sim): State<Arc<Sim>>,
    P(id): P<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let plan = sim.cloud().plan();
    let o = v::json_object(body)?;
    let name = v::string(&o, "name", 1, NAME_MAX)?;
    let description = v::nullable_string(&o, "description", WORKSPACE_DESCRIPTION_MAX, true)?;
    if name.is_none() && description.is_none() {
        return Err(ApiError::validation(&[], "send name, description or both"));
    }
    let w = sim
        .state()
        .update_workspace(&id, name, description, plan, Timestamp::now())?;
    sim.mutated();
    Ok(ok(w))
}

/// Soft delete; the workspace's apps and databases go back to the owner.
pub async fn delete(State(sim): State<Arc<Sim>>, P(id): P<String>) -> Answer {
    let plan = sim.cloud().plan();
    sim.state().delete_workspace(&id, plan, Timestamp::now())?;
    sim.mutated();
    Ok(null())
}
