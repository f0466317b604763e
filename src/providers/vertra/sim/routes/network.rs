//! `/v1/apps/:id/network`: publishing, the subdomain, the custom domain and its DNS records.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use jiff::Timestamp;
use serde_json::json;

use super::super::Sim;
use super::super::cloud::unix_now;
use super::super::limits::RouteBudget;
use super::super::reply::{ApiError, ok};
use super::super::state::network::{SubdomainWish, no_custom_domain};
use super::super::validate as v;
use super::super::wire::codes;
use super::{Answer, Caller, P, Q, app_limited, null};

/// Looks app `id` up (404 first) and counts the call against its `budget`.
fn budgeted(
    sim: &Sim,
    fp: &str,
    id: &str,
    ws: Option<&str>,
    budget: RouteBudget,
) -> Result<(), ApiError> {
    sim.state().app(id, ws, Timestamp::now())?;
    let limited = |()| match budget {
        RouteBudget::Subdomain => ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            codes::SUBDOMAIN_CHANGE_RATE_LIMITED,
            "too many subdomain changes for this app; slow down",
        ),
        RouteBudget::Lifecycle => app_limited("lifecycle")(()),
        RouteBudget::CustomDomain => app_limited("custom-domain")(()),
        RouteBudget::Dns => app_limited("DNS")(()),
    };
    sim.cloud()
        .meter()
        .route(budget, id, fp, unix_now())
        .map_err(limited)
}

/// `POST …/network/publish {subdomain?}`: owner only (no workspace scope); a lifecycle call.
pub async fn publish(
    State(sim): State<Arc<Sim>>,
    Caller(fp): Caller,
    P(id): P<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let o = v::optional_object(body)?;
    let wish = match v::string(&o, "subdomain", 1, 50)? {
        None => SubdomainWish::Random,
        Some(s) => v::subdomain_wish("subdomain", &s)?,
    };
    budgeted(&sim, &fp, &id, None, RouteBudget::Lifecycle)?;
    let plan = sim.cloud().plan();
    let p = sim.state().publish(&id, wish, plan, Timestamp::now())?;
    sim.mutated();
    Ok(ok(p))
}

/// `DELETE …/network/publish`: the subdomain and custom domain are released.
pub async fn unpublish(
    State(sim): State<Arc<Sim>>,
    Caller(fp): Caller,
    P(id): P<String>,
) -> Answer {
    budgeted(&sim, &fp, &id, None, RouteBudget::Lifecycle)?;
    let p = sim.state().unpublish(&id, Timestamp::now())?;
    sim.mutated();
    Ok(ok(p))
}

/// `PATCH …/network/subdomain {subdomain}` → `{subdomain: "<label>.vertraweb.app"}`.
pub async fn subdomain(
    State(sim): State<Arc<Sim>>,
    Caller(fp): Caller,
    P(id): P<String>,
    q: Q,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let o = v::json_object(body)?;
    let label = v::required("subdomain", v::string(&o, "subdomain", 1, 50)?)?;
    let label = v::subdomain_label("subdomain", &label)?;
    let now = Timestamp::now();
    sim.state().check_subdomain(&id, q.ws(), now)?;
    budgeted(&sim, &fp, &id, q.ws(), RouteBudget::Subdomain)?;
    let plan = sim.cloud().plan();
    let host = sim.state().set_subdomain(&id, q.ws(), label, plan, now)?;
    sim.mutated();
    Ok(ok(json!({ "subdomain": host })))
}

pub async fn get_custom(
    State(sim): State<Arc<Sim>>,
    Caller(fp): Caller,
    P(id): P<String>,
    q: Q,
) -> Answer {
    budgeted(&sim, &fp, &id, q.ws(), RouteBudget::CustomDomain)?;
    let mut st = sim.state();
    let app = st.app(&id, q.ws(), Timestamp::now())?;
    let c = app.custom_domain.as_ref().ok_or_else(no_custom_domain)?;
    Ok(ok(json!({ "domain": c.domain })))
}

/// `POST …/network/custom {domain}`: replaces the app's custom domain; its records start
/// `pending_validation`.
pub async fn set_custom(
    State(sim): State<Arc<Sim>>,
    Caller(fp): Caller,
    P(id): P<String>,
    q: Q,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let o = v::json_object(body)?;
    let domain = v::required("domain", v::string(&o, "domain", 1, 253)?)?;
    let domain = v::custom_domain(&domain)?;
    budgeted(&sim, &fp, &id, q.ws(), RouteBudget::CustomDomain)?;
    let plan = sim.cloud().plan();
    sim.state()
        .set_custom_domain(&id, q.ws(), domain.clone(), plan, Timestamp::now())?;
    sim.mutated();
    Ok(ok(json!({ "domain": domain })))
}

pub async fn delete_custom(
    State(sim): State<Arc<Sim>>,
    Caller(fp): Caller,
    P(id): P<String>,
    q: Q,
) -> Answer {
    budgeted(&sim, &fp, &id, q.ws(), RouteBudget::CustomDomain)?;
    let now = Timestamp::now();
    let mut st = sim.state();
    let app = st.app(&id, q.ws(), now)?;
    if app.custom_domain.take().is_none() {
        return Err(no_custom_domain());
    }
    app.updated_at = now;
    drop(st);
    sim.mutated();
    Ok(null())
}

/// `GET …/network/dns`: the CNAME and TXT records the custom domain needs.
pub async fn dns(
    State(sim): State<Arc<Sim>>,
    Caller(fp): Caller,
    P(id): P<String>,
    q: Q,
) -> Answer {
    budgeted(&sim, &fp, &id, q.ws(), RouteBudget::Dns)?;
    let records = sim
        .state()
        .app(&id, q.ws(), Timestamp::now())?
        .dns_records()?;
    Ok(ok(records))
}
