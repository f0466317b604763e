//! `/v1/projects`: list (paged in `cloudapi`), create, get, patch (name; `region` is fixed),
//! delete (with the project's deployments and logs; its keys are revoked).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use jiff::Timestamp;

use super::super::page::{PageRequest, paginate};
use super::super::reply::list as list_reply;
use super::super::state::projects::{check_name, check_region};
use super::super::wire::{Deleted, Dialect};
use super::{
    Answer, Ctx, Idempotency, P, Q, json_object, object, optional_str, required_str, to_value,
};

pub async fn list(ctx: Ctx, q: Q) -> Answer {
    let page = PageRequest::from_query(ctx.dialect, &q.0)?;
    let account = ctx.account()?;
    let items = {
        let st = ctx.sim.state();
        st.projects_of(account)
            .into_iter()
            .map(|p| (p.seq, p.view(ctx.dialect)))
            .collect::<Vec<_>>()
    };
    Ok(list_reply(ctx.dialect, paginate(items, false, page)))
}

pub async fn create(
    ctx: Ctx,
    Idempotency(idem): Idempotency,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    ctx.post(idem, body, |ctx, o| {
        let account = ctx.account()?;
        let name = check_name(&required_str(&o, "name")?)?;
        let region = match ctx.dialect {
            Dialect::Cloudapi => Some(check_region(&required_str(&o, "region")?)?),
            Dialect::Cloudplatform => None,
        };
        let view = {
            let mut st = ctx.sim.state();
            st.create_project(ctx.dialect, account, name, region, Timestamp::now())
                .view(ctx.dialect)
        };
        ctx.sim.mutated();
        Ok((StatusCode::CREATED, to_value(&view)?))
    })
}

pub async fn get(ctx: Ctx, P(id): P<String>) -> Answer {
    let account = ctx.account()?;
    let view = ctx.sim.state().project(account, &id)?.view(ctx.dialect);
    object(view)
}

pub async fn patch(ctx: Ctx, P(id): P<String>, body: Result<Bytes, BytesRejection>) -> Answer {
    let account = ctx.account()?;
    let bytes = body.map_err(|e| {
        super::super::reply::ApiError::bad_request(format!(
            "could not read the body: {}",
            e.body_text()
        ))
    })?;
    let o = json_object(&bytes)?;
    let name = optional_str(&o, "name")?
        .map(|n| check_name(&n))
        .transpose()?;
    let region = optional_str(&o, "region")?;
    let view = {
        let mut st = ctx.sim.state();
        st.patch_project(account, &id, name, region)?
            .view(ctx.dialect)
    };
    ctx.sim.mutated();
    object(view)
}

pub async fn delete(ctx: Ctx, P(id): P<String>) -> Answer {
    let account = ctx.account()?;
    let p = ctx
        .sim
        .state()
        .delete_project(account, &id, Timestamp::now())?;
    ctx.sim.mutated();
    object(Deleted {
        deleted: true,
        id: p.id,
    })
}
