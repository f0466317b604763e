//! `/v1/databases`: create, read, update, lifecycle, delete (after a safety snapshot),
//! credentials.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use jiff::Timestamp;
use serde_json::{Map, Value};

use super::super::Sim;
use super::super::reply::{ApiError, created, ok, success};
use super::super::state::databases::{
    DatabaseUpdate, ENGINES, NewDatabase, min_ram, not_found_or_forbidden,
};
use super::super::validate::{self as v, DESCRIPTION_MAX, NAME_MAX};
use super::super::wire::{Password, codes};
use super::{Answer, P, Q};

/// `POST /v1/databases {name, ram, type, description?, workspace_id?, snapshot_id?}` → `201`,
/// running.
pub async fn create(State(sim): State<Arc<Sim>>, body: Result<Bytes, BytesRejection>) -> Answer {
    let cloud = sim.cloud();
    let plan = cloud.plan();
    if !plan.can_create() {
        return Err(ApiError::forbidden(
            codes::FREE_PLAN_SUSPENDED,
            "the Free plan makes no new databases; upgrade the plan",
        ));
    }
    if !plan.has_databases() {
        return Err(ApiError::plan(
            "databases need 512 MB of plan memory: the Pro plan or above",
        ));
    }
    let o = v::json_object(body)?;
    let name = v::required("name", v::string(&o, "name", 1, NAME_MAX)?)?;
    let description = v::string(&o, "description", 0, DESCRIPTION_MAX)?.filter(|d| !d.is_empty());
    let workspace_id = v::string(&o, "workspace_id", 0, 100)?.filter(|w| !w.is_empty());
    let snapshot = v::string(&o, "snapshot_id", 0, 100)?.filter(|s| !s.is_empty());
    let kind = v::integer(&o, "type")?;
    let ram = v::integer(&o, "ram")?;
    if let Some(id) = snapshot {
        return Err(ApiError::not_found(
            codes::SNAPSHOT_NOT_FOUND,
            format!("snapshot {id:?} does not exist (the sandbox keeps no snapshots)"),
        ));
    }
    let kind = v::required("type", kind)?;
    if !(1..=4).contains(&kind) {
        return Err(ApiError::validation(
            &["type"],
            "type must be 1 (PostgreSQL), 2 (MongoDB), 3 (Redis) or 4 (MySQL)",
        ));
    }
    let kind = kind as u8;
    let ram = v::required("ram", ram)?;
    if ram < min_ram(kind) {
        return Err(ApiError::validation(
            &["ram"],
            format!(
                "a {} database needs at least {} MB; got {ram}",
                ENGINES[usize::from(kind - 1)],
                min_ram(kind)
            ),
        ));
    }
    let new = NewDatabase {
        name,
        ram,
        kind,
        description,
        workspace_id,
    };
    let mut st = sim.state();
    let id = st.insert_database(new, plan, Timestamp::now())?;
    let db = st.databases[&id].view(&st.user.id, plan);
    drop(st);
    sim.mutated();
    Ok(created(db))
}

pub async fn get(State(sim): State<Arc<Sim>>, P(id): P<String>, q: Q) -> Answer {
    let plan = sim.cloud().plan();
    let mut st = sim.state();
    let owner = st.user.id.clone();
    Ok(ok(st.database(&id, q.ws())?.view(&owner, plan)))
}

/// `PUT /v1/databases/:id {name?, description?, ram?}` (or the older `{updates: {…}}`) →
/// `{status: "success"}`. Other keys are dropped.
pub async fn update(
    State(sim): State<Arc<Sim>>,
    P(id): P<String>,
    q: Q,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let mut o = v::json_object(body)?;
    if let Some(Value::Object(inner)) = o.get("updates") {
        o = inner.clone();
    }
    let o: Map<String, Value> = o;
    let u = DatabaseUpdate {
        name: v::string(&o, "name", 1, NAME_MAX)?,
        description: v::nullable_string(&o, "description", DESCRIPTION_MAX, true)?,
        ram: v::integer(&o, "ram")?,
    };
    if u == DatabaseUpdate::default() {
        return Err(ApiError::validation(
            &[],
            "send at least one of name, description, ram",
        ));
    }
    let now = Timestamp::now();
    sim.state().database(&id, q.ws())?.update(u, now)?;
    sim.mutated();
    Ok(success())
}

/// `DELETE /v1/databases/:id`: a safety snapshot, then the delete → the deleted id. A failed
/// snapshot deletes nothing (500 `SNAPSHOT_FAILED`).
pub async fn delete(State(sim): State<Arc<Sim>>, P(id): P<String>, q: Q) -> Answer {
    let mut st = sim.state();
    st.database(&id, q.ws())?;
    let fails = sim.cloud().snapshot_fails();
    st.delete_database(&id, q.ws(), fails)?;
    drop(st);
    sim.mutated();
    Ok(ok(id))
}

pub async fn start(State(sim): State<Arc<Sim>>, P(id): P<String>, q: Q) -> Answer {
    sim.state().database(&id, q.ws())?.start(Timestamp::now())?;
    sim.mutated();
    Ok(success())
}

/// Idempotent.
pub async fn stop(State(sim): State<Arc<Sim>>, P(id): P<String>, q: Q) -> Answer {
    sim.state().database(&id, q.ws())?.stop(Timestamp::now());
    sim.mutated();
    Ok(success())
}

pub async fn status(State(sim): State<Arc<Sim>>, P(id): P<String>, q: Q) -> Answer {
    Ok(ok(sim
        .state()
        .database(&id, q.ws())?
        .status(Timestamp::now())))
}

pub async fn list_status(State(sim): State<Arc<Sim>>) -> Answer {
    let st = sim.state();
    let usage: Vec<_> = st
        .databases_in_order()
        .into_iter()
        .map(|d| d.usage())
        .collect();
    Ok(ok(usage))
}

/// `POST …/credentials/reset` → `{password}`: a new one each time.
pub async fn reset_password(State(sim): State<Arc<Sim>>, P(id): P<String>, q: Q) -> Answer {
    let password = sim
        .state()
        .database_or(&id, q.ws(), not_found_or_forbidden)?
        .reset_password(Timestamp::now());
    sim.mutated();
    Ok(ok(Password { password }))
}

/// `GET …/credentials/certificate` → `{crt, key, pem}`.
pub async fn certificate(State(sim): State<Arc<Sim>>, P(id): P<String>, q: Q) -> Answer {
    Ok(ok(sim
        .state()
        .database_or(&id, q.ws(), not_found_or_forbidden)?
        .certificate()))
}

/// `POST …/credentials/certificate/reset` → a new `{crt, key, pem}`.
pub async fn reset_certificate(State(sim): State<Arc<Sim>>, P(id): P<String>, q: Q) -> Answer {
    let mut st = sim.state();
    let db = st.database_or(&id, q.ws(), not_found_or_forbidden)?;
    db.certificate_serial += 1;
    db.updated_at = Timestamp::now();
    let cert = db.certificate();
    drop(st);
    sim.mutated();
    Ok(ok(cert))
}
