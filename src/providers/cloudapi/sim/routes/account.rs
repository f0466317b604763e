//! `/v1/users` (read-only, seeded) and `/v1/usage` (requests served to the caller's account
//! this UTC month, in the dialect's shape).

use jiff::Timestamp;

use super::super::page::{PageRequest, paginate};
use super::super::reply::list as list_reply;
use super::super::state::{month_bounds, month_of};
use super::super::wire::{CloudapiUsage, CloudplatformUsage, Dialect};
use super::{Answer, Ctx, Q, object};

pub async fn users(ctx: Ctx, q: Q) -> Answer {
    let page = PageRequest::from_query(ctx.dialect, &q.0)?;
    ctx.account()?;
    let items = ctx
        .sim
        .state()
        .users
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, u)| (i as u64 + 1, u))
        .collect();
    Ok(list_reply(ctx.dialect, paginate(items, false, page)))
}

/// This request included. `overage` is always 0 (*assumed*: no plan's allowance is
/// documented).
pub async fn usage(ctx: Ctx) -> Answer {
    let account = ctx.account()?;
    let now = Timestamp::now();
    let st = ctx.sim.state();
    let requests = st.requests_in_month(account, now);
    match ctx.dialect {
        Dialect::Cloudapi => {
            let (period_start, period_end) = month_bounds(now);
            object(CloudapiUsage {
                period_start,
                period_end,
                requests,
                overage: 0,
            })
        }
        Dialect::Cloudplatform => object(CloudplatformUsage {
            month: month_of(now),
            requests,
            projects: st.projects_of(account).len() as u64,
        }),
    }
}
