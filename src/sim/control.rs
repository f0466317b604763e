//! The `/_sim` control endpoints every sandbox has, for tests and demos: no auth, no rate limit,
//! no faults, plain JSON answers (errors in the cloud's envelope). A cloud adds its own
//! (`Cloud::control_routes`).
//!
//! | Method | Path | Answer |
//! |---|---|---|
//! | GET | `/_sim/stats` | the cloud's stats (`Cloud::Stats`) |
//! | POST | `/_sim/stats/reset` | zeroes the request counters; the fresh stats |
//! | GET | `/_sim/faults` | the current [`Faults`] |
//! | POST | `/_sim/faults` | sets them (absent fields = 0); the new faults |
//! | POST | `/_sim/save` | writes the state file now; `204` |

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::faults::Faults;
use super::reply::{ErrorKind, ErrorReply, json_body};
use super::server::method_not_allowed;
use super::{Cloud, Sim};

/// Where the control endpoints live.
pub const CONTROL_PREFIX: &str = "/_sim";

/// The framework's control routes with the cloud's merged in.
pub fn router<C: Cloud>(cloud_routes: Router<Arc<Sim<C>>>) -> Router<Arc<Sim<C>>> {
    Router::new()
        .route("/_sim/stats", get(stats::<C>))
        .route("/_sim/stats/reset", post(reset_stats::<C>))
        .route("/_sim/faults", get(get_faults::<C>).post(set_faults::<C>))
        .route("/_sim/save", post(save::<C>))
        .merge(cloud_routes)
        .method_not_allowed_fallback(method_not_allowed::<C>)
}

async fn stats<C: Cloud>(State(sim): State<Arc<Sim<C>>>) -> Response {
    Json(sim.stats()).into_response()
}

async fn reset_stats<C: Cloud>(State(sim): State<Arc<Sim<C>>>) -> Response {
    sim.reset_stats();
    Json(sim.stats()).into_response()
}

async fn get_faults<C: Cloud>(State(sim): State<Arc<Sim<C>>>) -> Response {
    Json(sim.faults()).into_response()
}

async fn set_faults<C: Cloud>(
    State(sim): State<Arc<Sim<C>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let parsed = json_body(body).and_then(|v| {
        let f: Faults = serde_json::from_value(v)
            .map_err(|e| ErrorReply::new(ErrorKind::Invalid, e.to_string()))?;
        f.validate()
            .map_err(|e| ErrorReply::new(ErrorKind::Invalid, e))?;
        Ok(f)
    });
    match parsed {
        Ok(f) => {
            sim.set_faults(f.clone());
            Json(f).into_response()
        }
        Err(e) => sim.cloud().error_response(e),
    }
}

async fn save<C: Cloud>(State(sim): State<Arc<Sim<C>>>) -> Response {
    match sim.save().await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => sim.cloud().error_response(ErrorReply::new(
            ErrorKind::Internal,
            format!("could not save: {e:#}"),
        )),
    }
}
