//! `/v1/logs`: the build (and rollback) lines of the caller's projects, oldest first, filtered
//! by project, deployment, time and level; and `/v1/logs/stream`, the same as server-sent
//! events, a live tail.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use jiff::Timestamp;

use super::super::Sim;
use super::super::page::{PageRequest, paginate};
use super::super::reply::{ApiError, list as list_reply};
use super::super::state::deployments::LogFilter;
use super::super::wire::{Level, LogLine};
use super::{Answer, Ctx, Q};

/// How often the live tail looks for new lines.
pub const STREAM_POLL: Duration = Duration::from_millis(100);

fn filter(q: &Q) -> Result<LogFilter, ApiError> {
    let level = match q.get("level") {
        None => None,
        Some(s) => Some(Level::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "level",
                format!("level must be debug, info, warn or error; got {s:?}"),
            )
        })?),
    };
    Ok(LogFilter {
        project_id: q.get("project_id").map(str::to_string),
        deployment_id: q.get("deployment_id").map(str::to_string),
        since: q.time("since")?,
        until: q.time("until")?,
        level,
    })
}

pub async fn list(ctx: Ctx, q: Q) -> Answer {
    let page = PageRequest::from_query(ctx.dialect, &q.0)?;
    let account = ctx.account()?.to_string();
    let f = filter(&q)?;
    let items = {
        let mut st = ctx.sim.state();
        st.settle(Timestamp::now());
        let owned = |p: &str| st.projects.get(p).is_some_and(|p| p.workspace == account);
        st.logs_where(owned, &f)
    };
    Ok(list_reply(ctx.dialect, paginate(items, false, page)))
}

/// The sequence number in a line id (`log_1f`), for `Last-Event-ID`.
fn seq_of(id: &str) -> Option<u64> {
    u64::from_str_radix(id.trim().strip_prefix("log_")?, 16).ok()
}

struct Tail {
    sim: Arc<Sim>,
    account: String,
    filter: LogFilter,
    after: u64,
    pending: VecDeque<LogLine>,
}

impl Tail {
    fn fetch(&mut self) {
        let mut st = self.sim.state();
        st.settle(Timestamp::now());
        let account = &self.account;
        let owned = |p: &str| st.projects.get(p).is_some_and(|p| p.workspace == *account);
        for (seq, line) in st.logs_after(self.after, owned, &self.filter) {
            self.after = seq;
            self.pending.push_back(line);
        }
        // Lines that did not pass the filter are skipped for good.
        self.after = self.after.max(st.seq);
    }
}

fn events(tail: Tail) -> impl Stream<Item = Result<Event, Infallible>> {
    // The stream never ends on its own (a live tail): the client hangs up.
    futures::stream::unfold(tail, |mut tail| async move {
        loop {
            if let Some(line) = tail.pending.pop_front() {
                let data = serde_json::to_string(&line).unwrap_or_default();
                let ev = Event::default().event("log").id(line.id).data(data);
                return Some((Ok(ev), tail));
            }
            tokio::time::sleep(STREAM_POLL).await;
            tail.fetch();
        }
    })
}

/// A live tail: lines written from now on (or from `?since=`, or after the `Last-Event-ID`
/// a reconnecting client sends), as `event: log` with the line as JSON data and its id.
pub async fn stream(ctx: Ctx, q: Q, headers: HeaderMap) -> Answer {
    let account = ctx.account()?.to_string();
    let f = filter(&q)?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(seq_of);
    let after = match (resume, f.since) {
        (Some(seq), _) => seq,
        (None, Some(_)) => 0,
        (None, None) => ctx.sim.state().seq,
    };
    let mut tail = Tail {
        sim: ctx.sim.clone(),
        account,
        filter: f,
        after,
        pending: VecDeque::new(),
    };
    tail.fetch();
    Ok(Sse::new(events(tail))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
