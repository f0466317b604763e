//! Strettch's own `/_sim` control endpoints (the framework serves stats, faults and save):
//! inspect and shape computes, domains and records. No auth, no rate limit, no faults, plain
//! JSON answers (errors use the API's error envelope).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::reply::SimError;
use super::routes::{P, json_body};
use super::wire::DomainStatus;
use super::{Sim, validate};

/// The most computes one seed request may create.
const MAX_SEED: usize = 100_000;

type Answer = Result<Response, SimError>;

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/computes", get(computes))
        .route("/_sim/computes/{id}/address", post(set_address))
        .route("/_sim/seed", post(seed))
        .route("/_sim/domains", get(domains))
        .route("/_sim/domains/{id}/status", post(set_domain_status))
        .route("/_sim/records", get(record_groups))
}

fn parse<T: for<'de> Deserialize<'de>>(body: Result<Bytes, BytesRejection>) -> Result<T, SimError> {
    let v = json_body(body)?;
    serde_json::from_value(v).map_err(|e| SimError::validation(e.to_string()))
}

async fn computes(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.computes()).into_response()
}

/// `{ipv4?, privateIpv4?}`: an absent field is left alone; `null` or `""` clears it.
async fn set_address(
    State(sim): State<Arc<Sim>>,
    P(id): P<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let body = json_body(body)?;
    let Some(obj) = body.as_object() else {
        return Err(SimError::validation(
            "the body must be a JSON object {ipv4?, privateIpv4?}",
        ));
    };
    let field = |name: &str| -> Result<Option<Option<String>>, SimError> {
        match obj.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => validate::optional_ipv4(s)
                .map(Some)
                .map_err(|e| SimError::validation(format!("{name}: {e}"))),
            Some(_) => Err(SimError::validation(format!(
                "{name} must be an IPv4 address string, \"\" or null"
            ))),
        }
    };
    let (ipv4, private) = (field("ipv4")?, field("privateIpv4")?);
    let c = sim
        .state()
        .set_address(&id, ipv4, private, Timestamp::now())?;
    sim.mutated();
    Ok(Json(c).into_response())
}

#[derive(Deserialize)]
struct SeedRequest {
    computes: usize,
    #[serde(default)]
    tags: Vec<String>,
}

async fn seed(State(sim): State<Arc<Sim>>, body: Result<Bytes, BytesRejection>) -> Answer {
    let req: SeedRequest = parse(body)?;
    if req.computes > MAX_SEED {
        return Err(SimError::validation(format!(
            "computes must be at most {MAX_SEED}"
        )));
    }
    let ids = sim.seed(req.computes, &req.tags);
    Ok((StatusCode::CREATED, Json(json!({ "ids": ids }))).into_response())
}

async fn domains(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.domains()).into_response()
}

/// Every zone's records grouped by (name, type, value), so a test can count duplicates.
async fn record_groups(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.record_groups()).into_response()
}

#[derive(Deserialize)]
struct StatusRequest {
    status: Option<DomainStatus>,
}

/// `{status: "ACTIVATING"|"ACTIVE"|"INACTIVE"|null}`; null hands the status back to the clock.
async fn set_domain_status(
    State(sim): State<Arc<Sim>>,
    P(id): P<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let req: StatusRequest = parse(body)?;
    let d = sim
        .state()
        .set_domain_status(&id, req.status, Timestamp::now())?;
    sim.mutated();
    Ok(Json(d).into_response())
}
