//! Vertra's own `/_sim` control endpoints (the framework serves stats, faults and save): look at
//! the resources and passwords, and play the platform — plan and limits, scopes, stops for lack
//! of credits, shield cooldowns, DNS validation, failing safety snapshots. No auth, no rate
//! limit, no faults; plain JSON answers (errors in Vertra's envelope).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use crate::sim::args::{parse_seconds, secs};
use crate::sim::key_fingerprint;

use super::Sim;
use super::config::{Settings, SnapshotFailures};
use super::plan::Plan;
use super::reply::ApiError;
use super::routes::P;
use super::state::databases::not_found as db_not_found;
use super::validate::json_object;
use super::wire::{Password, codes};

type Answer = Result<Response, ApiError>;

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route(super::archive::SAMPLE_ZIP_PATH, get(sample_zip))
        .route("/_sim/apps", get(apps))
        .route("/_sim/apps/{id}/offline", post(app_offline))
        .route("/_sim/apps/{id}/shield-cooldown", post(shield))
        .route("/_sim/apps/{id}/dns/activate", post(dns_activate))
        .route("/_sim/databases", get(databases))
        .route("/_sim/databases/{id}/password", get(password))
        .route("/_sim/databases/{id}/offline", post(database_offline))
        .route("/_sim/workspaces", get(workspaces))
        .route("/_sim/creates", get(creates))
        .route("/_sim/settings", get(settings).post(set_settings))
        .route("/_sim/keys/scopes", post(key_scopes))
        .route(
            "/_sim/snapshot-failures",
            get(snapshot_failures).post(set_snapshot_failures),
        )
}

fn app_not_found(id: &str) -> ApiError {
    ApiError::not_found(codes::APP_NOT_FOUND, format!("app {id:?} does not exist"))
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::validation(&[field], message)
}

async fn sample_zip() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/zip")],
        super::archive::sample_zip(),
    )
        .into_response()
}

async fn apps(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.apps()).into_response()
}

async fn databases(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.databases()).into_response()
}

async fn workspaces(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.workspaces()).into_response()
}

async fn creates(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.state().creates).into_response()
}

async fn password(State(sim): State<Arc<Sim>>, P(id): P<String>) -> Answer {
    let password = sim
        .database_password(&id)
        .ok_or_else(|| db_not_found(&id))?;
    Ok(Json(Password { password }).into_response())
}

/// `{offline: bool}` (default true).
fn offline_flag(o: &Map<String, Value>) -> Result<bool, ApiError> {
    match o.get("offline") {
        None => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid("offline", "offline must be true or false")),
    }
}

async fn app_offline(
    State(sim): State<Arc<Sim>>,
    P(id): P<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let offline = offline_flag(&super::validate::optional_object(body)?)?;
    let app = sim
        .set_app_offline(&id, offline)
        .ok_or_else(|| app_not_found(&id))?;
    Ok(Json(app).into_response())
}

async fn database_offline(
    State(sim): State<Arc<Sim>>,
    P(id): P<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let offline = offline_flag(&super::validate::optional_object(body)?)?;
    let db = sim
        .set_database_offline(&id, offline)
        .ok_or_else(|| db_not_found(&id))?;
    Ok(Json(db).into_response())
}

/// `{seconds: S|null, reason?: "burst"|"rate_limit", direction?: "in"|"out", strikes?: N}`:
/// a cooldown of S seconds from now; null ends it.
async fn shield(
    State(sim): State<Arc<Sim>>,
    P(id): P<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let o = json_object(body)?;
    let length = match o.get("seconds") {
        Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(secs(
            parse_seconds(&n.to_string()).map_err(|e| invalid("seconds", e))?,
        )),
        _ => {
            return Err(invalid(
                "seconds",
                "seconds (a number, or null to end the cooldown) is required",
            ));
        }
    };
    let text = |field: &str, default: &'static str, allowed: &[&str]| match o.get(field) {
        None => Ok(default.to_string()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(s.clone()),
        _ => Err(invalid(
            field,
            format!("{field} must be one of {allowed:?}"),
        )),
    };
    let reason = text("reason", "burst", &["burst", "rate_limit"])?;
    let direction = text("direction", "in", &["in", "out"])?;
    let strikes = match o.get("strikes") {
        None => 1,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| invalid("strikes", "strikes must be a whole number"))?,
    };
    let app = sim
        .set_shield_cooldown(&id, length, &reason, &direction, strikes)
        .ok_or_else(|| app_not_found(&id))?;
    Ok(Json(app).into_response())
}

async fn dns_activate(State(sim): State<Arc<Sim>>, P(id): P<String>) -> Answer {
    let records = sim.mark_dns_active(&id).ok_or_else(|| {
        ApiError::not_found(
            codes::NO_CUSTOM_DOMAIN,
            format!("app {id:?} does not exist or has no custom domain"),
        )
    })?;
    Ok(Json(records).into_response())
}

fn settings_json(s: &Settings) -> Value {
    json!({
        "plan": s.plan,
        "perMinute": s.per_minute,
        "perDay": s.per_day,
        "deploysPerHour": s.deploys_per_hour,
        "lifecyclePerMinute": s.lifecycle_per_minute,
        "installSeconds": s.install_delay.as_secs_f64(),
        "budgets": s.budgets(),
        "restrictedKeys": s.key_scopes,
        "snapshotFailures": s.snapshot_failures,
    })
}

async fn settings(State(sim): State<Arc<Sim>>) -> Response {
    Json(settings_json(&sim.cloud().settings())).into_response()
}

/// An override field: absent = unchanged, null = the plan's number, N (0 = unlimited).
fn override_field(o: &Map<String, Value>, field: &str) -> Result<Option<Option<u32>>, ApiError> {
    match o.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(|n| Some(Some(n)))
            .ok_or_else(|| invalid(field, format!("{field} must be a whole number or null"))),
    }
}

/// `{plan?, perMinute?, perDay?, deploysPerHour?, lifecyclePerMinute?, installSeconds?}`;
/// absent fields are unchanged, a null override returns to the plan's number.
async fn set_settings(State(sim): State<Arc<Sim>>, body: Result<Bytes, BytesRejection>) -> Answer {
    let o = json_object(body)?;
    let plan: Option<Plan> = match o.get("plan") {
        None => None,
        Some(v) => Some(serde_json::from_value(v.clone()).map_err(|_| {
            invalid(
                "plan",
                "plan must be free, economy, pro, scale, intermediary or enterprise",
            )
        })?),
    };
    let per_minute = override_field(&o, "perMinute")?;
    let per_day = override_field(&o, "perDay")?;
    let deploys = override_field(&o, "deploysPerHour")?;
    let lifecycle = match override_field(&o, "lifecyclePerMinute")? {
        Some(None) => return Err(invalid("lifecyclePerMinute", "a number is needed")),
        other => other.flatten(),
    };
    let install = match o.get("installSeconds") {
        None => None,
        Some(v) => Some(secs(
            parse_seconds(&v.to_string()).map_err(|e| invalid("installSeconds", e))?,
        )),
    };
    let s = sim.cloud().update_settings(|s| {
        if let Some(p) = plan {
            s.plan = p;
        }
        if let Some(v) = per_minute {
            s.per_minute = v;
        }
        if let Some(v) = per_day {
            s.per_day = v;
        }
        if let Some(v) = deploys {
            s.deploys_per_hour = v;
        }
        if let Some(v) = lifecycle {
            s.lifecycle_per_minute = v;
        }
        if let Some(d) = install {
            s.install_delay = d;
        }
    });
    Ok(Json(settings_json(&s)).into_response())
}

/// `{key, scopes: "apps:read,apps:write" | ["apps:read", …] | null}`: null gives every scope
/// back. Answers the key's fingerprint and scopes.
async fn key_scopes(State(sim): State<Arc<Sim>>, body: Result<Bytes, BytesRejection>) -> Answer {
    let o = json_object(body)?;
    let key = match o.get("key") {
        Some(Value::String(k)) if !k.trim().is_empty() => k.trim().to_string(),
        _ => return Err(invalid("key", "key (the API key) is required")),
    };
    let list = match o.get("scopes") {
        Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid("scopes", "scopes must be strings"))?
                .join(","),
        ),
        _ => return Err(invalid("scopes", "scopes (a list, or null) is required")),
    };
    sim.set_key_scopes(&key, list.as_deref())
        .map_err(|e| invalid("scopes", e))?;
    let fp = key_fingerprint(&key);
    let scopes = sim.cloud().settings().key_scopes.get(&fp).cloned();
    Ok(Json(json!({ "key": fp, "scopes": scopes })).into_response())
}

async fn snapshot_failures(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.cloud().settings().snapshot_failures).into_response()
}

/// `{next?: N, always?: bool}` (absent = 0 / false): the next N database deletes fail their
/// safety snapshot, or all do.
async fn set_snapshot_failures(
    State(sim): State<Arc<Sim>>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let o = json_object(body)?;
    let f: SnapshotFailures = serde_json::from_value(Value::Object(o))
        .map_err(|e| invalid("next", format!("expected {{next?: N, always?: bool}}: {e}")))?;
    let s = sim.cloud().update_settings(|s| s.snapshot_failures = f);
    Ok((StatusCode::OK, Json(s.snapshot_failures)).into_response())
}
