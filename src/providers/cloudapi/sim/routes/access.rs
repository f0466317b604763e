//! `/v1/keys` (create with a session token; revoke) and `/v1/tokens` (create with scopes;
//! *assumed* list and delete).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use jiff::Timestamp;
use serde_json::Value;

use super::super::page::{PageRequest, paginate};
use super::super::reply::{ApiError, list as list_reply};
use super::super::state::access::check_scopes;
use super::super::state::projects::check_name;
use super::{Answer, Ctx, Idempotency, P, Q, object, required_str, to_value};

/// `POST /v1/keys {project_id}` with a session token: any project of any workspace; the key
/// belongs to the project's workspace.
pub async fn create_key(
    ctx: Ctx,
    Idempotency(idem): Idempotency,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    ctx.post(idem, body, |ctx, o| {
        let project_id = required_str(&o, "project_id")?;
        let created = {
            let mut st = ctx.sim.state();
            let workspace = st
                .projects
                .get(&project_id)
                .map(|p| p.workspace.clone())
                .ok_or_else(|| {
                    ApiError::invalid(
                        "project_id",
                        format!("project {project_id:?} does not exist"),
                    )
                })?;
            st.create_key(&project_id, &workspace, Timestamp::now())
        };
        ctx.sim.mutated();
        Ok((StatusCode::CREATED, to_value(&created)?))
    })
}

pub async fn revoke_key(ctx: Ctx, P(id): P<String>) -> Answer {
    let account = ctx.account()?;
    let revoked = ctx.sim.state().revoke_key(account, &id, Timestamp::now())?;
    ctx.sim.mutated();
    object(revoked)
}

/// `POST /v1/tokens {name, scopes}`.
pub async fn create_token(
    ctx: Ctx,
    Idempotency(idem): Idempotency,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    ctx.post(idem, body, |ctx, o| {
        let account = ctx.account()?;
        let name = check_name(&required_str(&o, "name")?)?;
        let scopes = match o.get("scopes") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(|s| s.trim().to_string()))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ApiError::invalid("scopes", "scopes must be strings"))?,
            _ => {
                return Err(ApiError::invalid(
                    "scopes",
                    "scopes (a list of scope names) is required",
                ));
            }
        };
        let scopes = check_scopes(&scopes)?;
        let created = ctx
            .sim
            .state()
            .create_token(account, name, scopes, Timestamp::now());
        ctx.sim.mutated();
        Ok((StatusCode::CREATED, to_value(&created)?))
    })
}

pub async fn list_tokens(ctx: Ctx, q: Q) -> Answer {
    let page = PageRequest::from_query(ctx.dialect, &q.0)?;
    let account = ctx.account()?;
    let items = ctx.sim.state().tokens_of(account);
    Ok(list_reply(ctx.dialect, paginate(items, false, page)))
}

pub async fn delete_token(ctx: Ctx, P(id): P<String>) -> Answer {
    let account = ctx.account()?;
    let gone = ctx.sim.state().delete_token(account, &id)?;
    ctx.sim.mutated();
    object(gone)
}
