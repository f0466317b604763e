//! `/v1/users/me` (and the older `/v1/users/@me`): the account, its plan, and every app and
//! database it has — the API's only listing of them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use jiff::Timestamp;

use super::super::Sim;
use super::super::plan::Plan;
use super::super::reply::{ApiError, ok, rfc3339};
use super::super::state::State as SimState;
use super::super::validate::{self as v, NAME_MAX};
use super::super::wire::{Me, Memory, PlanInfo};
use super::Answer;

fn me_view(st: &mut SimState, plan: Plan, now: Timestamp) -> Me {
    let applications = st.app_views(plan, now);
    let databases = st.database_views(plan);
    let u = &st.user;
    Me {
        id: u.id.clone(),
        name: u.name.clone(),
        email: u.email.clone(),
        plan_id: plan.id(),
        language: u.language.clone(),
        workspace_invites_enabled: u.workspace_invites_enabled,
        created_at: rfc3339(u.created_at),
        updated_at: rfc3339(u.updated_at.unwrap_or(u.created_at)),
        plan: PlanInfo {
            id: plan.id(),
            name: plan.display_name().into(),
            expires_at: None,
            duration: None,
            memory: Memory {
                limit: plan.memory_mb(),
                used: st.memory_used(),
            },
        },
        applications,
        databases,
        connections: Vec::new(),
        resource_organization: None,
    }
}

pub async fn me(State(sim): State<Arc<Sim>>) -> Answer {
    let plan = sim.cloud().plan();
    Ok(ok(me_view(&mut sim.state(), plan, Timestamp::now())))
}

/// `PATCH /v1/users/me {name?, language?, workspace_invites_enabled?}` → the user.
pub async fn update_me(State(sim): State<Arc<Sim>>, body: Result<Bytes, BytesRejection>) -> Answer {
    let o = v::json_object(body)?;
    let name = v::string(&o, "name", 1, NAME_MAX)?;
    let language = v::string(&o, "language", 2, 10)?;
    let invites = v::boolean(&o, "workspace_invites_enabled")?;
    if name.is_none() && language.is_none() && invites.is_none() {
        return Err(ApiError::validation(
            &[],
            "send name, language or workspace_invites_enabled",
        ));
    }
    let plan = sim.cloud().plan();
    let now = Timestamp::now();
    let mut st = sim.state();
    if let Some(n) = name {
        st.user.name = n;
    }
    if let Some(l) = language {
        st.user.language = l;
    }
    if let Some(i) = invites {
        st.user.workspace_invites_enabled = i;
    }
    st.user.updated_at = Some(now);
    let me = me_view(&mut st, plan, now);
    drop(st);
    sim.mutated();
    Ok(ok(me))
}
