//! `/v1/deployments`: create from a commit (a build starts), the filtered list (newest first),
//! and rollback (no build). There is no `GET /v1/deployments/{id}` and no `DELETE` (001).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use jiff::Timestamp;

use super::super::page::{PageRequest, paginate};
use super::super::reply::{ApiError, list as list_reply};
use super::super::state::deployments::DeploymentFilter;
use super::super::wire::DeploymentStatus;
use super::{Answer, Ctx, Idempotency, P, Q, required_str, to_value};

/// The longest commit name (*assumed*).
pub const MAX_COMMIT: usize = 200;

pub async fn create(
    ctx: Ctx,
    Idempotency(idem): Idempotency,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    ctx.post(idem, body, |ctx, o| {
        let account = ctx.account()?;
        let project_id = required_str(&o, "project_id")?;
        let commit = required_str(&o, "commit")?;
        if commit.chars().count() > MAX_COMMIT || commit.chars().any(char::is_whitespace) {
            return Err(ApiError::invalid(
                "commit",
                format!("commit must be 1 to {MAX_COMMIT} characters without spaces"),
            ));
        }
        let failure = ctx.cloud().failure_of(&commit);
        let build = ctx.cloud().settings().build_time;
        let now = Timestamp::now();
        let view = {
            let mut st = ctx.sim.state();
            st.settle(now);
            st.project(account, &project_id).map_err(|_| {
                ApiError::invalid(
                    "project_id",
                    format!("project {project_id:?} does not exist"),
                )
            })?;
            st.create_deployment(&project_id, commit, build, failure, now)
        };
        ctx.sim.mutated();
        Ok((StatusCode::CREATED, to_value(&view)?))
    })
}

pub async fn list(ctx: Ctx, q: Q) -> Answer {
    let page = PageRequest::from_query(ctx.dialect, &q.0)?;
    let account = ctx.account()?.to_string();
    let status = match q.get("status") {
        None => None,
        Some(s) => Some(DeploymentStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "status",
                format!("status must be queued, building, succeeded or failed; got {s:?}"),
            )
        })?),
    };
    let filter = DeploymentFilter {
        project_id: q.get("project_id").map(str::to_string),
        status,
        created_after: q.time("created_after")?,
    };
    let items = {
        let mut st = ctx.sim.state();
        st.settle(Timestamp::now());
        let owned = |p: &str| st.projects.get(p).is_some_and(|p| p.workspace == account);
        st.deployments_where(owned, &filter)
    };
    Ok(list_reply(ctx.dialect, paginate(items, true, page)))
}

pub async fn rollback(
    ctx: Ctx,
    Idempotency(idem): Idempotency,
    P(id): P<String>,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    // The body is optional here: an empty one counts as `{}`.
    let body = body.map(|b| {
        if b.iter().all(u8::is_ascii_whitespace) {
            Bytes::from_static(b"{}")
        } else {
            b
        }
    });
    ctx.post(idem, body, |ctx, _| {
        let account = ctx.account()?;
        let now = Timestamp::now();
        let view = {
            let mut st = ctx.sim.state();
            st.settle(now);
            let visible = st
                .deployments
                .get(&id)
                .and_then(|d| st.projects.get(&d.project_id))
                .is_some_and(|p| p.workspace == account);
            if !visible {
                return Err(ApiError::not_found("deployment", &id));
            }
            st.rollback(&id, now)?
        };
        ctx.sim.mutated();
        Ok((StatusCode::OK, to_value(&view)?))
    })
}
