//! CloudAPI's own `/_sim` control endpoints (the framework serves stats, faults and save): look
//! at the projects, deployments, keys and tokens (never a secret), the build and create counts
//! and usage, and play the platform — build time, failing commits, limits, forgetting
//! idempotency keys. No auth, no rate limit, no faults; plain JSON answers (errors in the
//! dialect's body).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::sim::args::{parse_seconds, secs};

use super::Sim;
use super::config::Settings;
use super::reply::{ApiError, render_errors};
use super::routes::{Q, json_object, required_str};
use super::wire::Dialect;

type Answer = Result<Response, ApiError>;

pub fn router(dialect: Dialect) -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/projects", get(projects))
        .route("/_sim/deployments", get(deployments))
        .route("/_sim/keys", get(keys))
        .route("/_sim/tokens", get(tokens))
        .route("/_sim/builds", get(builds))
        .route("/_sim/creates", get(creates))
        .route("/_sim/usage", get(usage))
        .route("/_sim/settings", get(settings).post(set_settings))
        .route("/_sim/fail-commit", post(fail_commit))
        .route("/_sim/idempotency/forget", post(forget_idempotency))
        .layer(from_fn_with_state(dialect, render_errors))
}

async fn projects(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.projects()).into_response()
}

/// `?project_id=` (optional): that project's deployments, newest first.
async fn deployments(State(sim): State<Arc<Sim>>, q: Q) -> Response {
    Json(sim.deployments(q.get("project_id"))).into_response()
}

async fn keys(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.key_infos()).into_response()
}

async fn tokens(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.token_infos()).into_response()
}

async fn builds(State(sim): State<Arc<Sim>>) -> Response {
    Json(json!({ "builds": sim.state().builds })).into_response()
}

async fn creates(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.state().creates).into_response()
}

/// Account → month → requests served.
async fn usage(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.state().usage.clone()).into_response()
}

fn settings_json(s: &Settings, dialect: Dialect) -> Value {
    json!({
        "dialect": dialect,
        "buildSeconds": s.build_time.as_secs_f64(),
        "failCommits": s.fail_commits,
        "perKeyPerMinute": s.per_key_per_minute,
        "perWorkspacePerTenMinutes": s.per_workspace_per_ten_minutes,
        "budgets": s.budgets(dialect),
    })
}

async fn settings(State(sim): State<Arc<Sim>>) -> Response {
    Json(settings_json(
        &sim.cloud().settings(),
        sim.cloud().dialect(),
    ))
    .into_response()
}

/// An override: absent = unchanged, null = the dialect's number, N (0 = unlimited).
fn override_field(o: &Map<String, Value>, field: &str) -> Result<Option<Option<u32>>, ApiError> {
    match o.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(|n| Some(Some(n)))
            .ok_or_else(|| {
                ApiError::invalid(field, format!("{field} must be a whole number or null"))
            }),
    }
}

fn body_object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, ApiError> {
    let bytes = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    json_object(&bytes)
}

/// `{buildSeconds?, perKeyPerMinute?, perWorkspacePerTenMinutes?}`; absent fields are
/// unchanged, a null limit returns to the dialect's number. Changed limits start with empty
/// windows.
async fn set_settings(State(sim): State<Arc<Sim>>, body: Result<Bytes, BytesRejection>) -> Answer {
    let o = body_object(body)?;
    let build = match o.get("buildSeconds") {
        None => None,
        Some(v) => Some(secs(
            parse_seconds(&v.to_string()).map_err(|e| ApiError::invalid("buildSeconds", e))?,
        )),
    };
    let per_key = override_field(&o, "perKeyPerMinute")?;
    let per_ws = override_field(&o, "perWorkspacePerTenMinutes")?;
    let s = sim.cloud().update_settings(|s| {
        if let Some(b) = build {
            s.build_time = b;
        }
        if let Some(v) = per_key {
            s.per_key_per_minute = v;
        }
        if let Some(v) = per_ws {
            s.per_workspace_per_ten_minutes = v;
        }
    });
    Ok(Json(settings_json(&s, sim.cloud().dialect())).into_response())
}

/// `{commit, fail?: bool}` (default true): builds of `commit` created from now on fail (or
/// succeed again).
async fn fail_commit(State(sim): State<Arc<Sim>>, body: Result<Bytes, BytesRejection>) -> Answer {
    let o = body_object(body)?;
    let commit = required_str(&o, "commit")?;
    let fail = match o.get("fail") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid("fail", "fail must be true or false")),
    };
    let s = sim.set_commit_failing(&commit, fail);
    Ok(Json(json!({ "failCommits": s.fail_commits })).into_response())
}

/// Forgets every remembered `Idempotency-Key`: `{"forgotten": N}`.
async fn forget_idempotency(State(sim): State<Arc<Sim>>) -> Response {
    let n = sim.state().forget_idempotency();
    sim.mutated();
    Json(json!({ "forgotten": n })).into_response()
}
