//! The framework with a cloud that is not Strettch: a tiny notes API under `/v2` that
//! authenticates with `X-Api-Key`, answers errors as `{error, message}` and sends one
//! rate-limit header. What a new cloud's sandbox gets for free, seen over HTTP.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::rate_limit::{Limit, Scope, Window};
use super::*;

#[derive(Debug)]
struct Notes;

#[derive(Default, Serialize, Deserialize)]
struct NotesState {
    notes: Vec<String>,
    /// How often the stats were reset (`Cloud::reset_stats`); not kept.
    #[serde(skip)]
    stats_resets: u32,
}

#[derive(Serialize)]
struct NotesStats {
    #[serde(flatten)]
    requests: RequestStats,
    notes: usize,
    stats_resets: u32,
}

type NotesSim = Arc<Sim<Notes>>;

async fn list(State(sim): State<NotesSim>) -> Json<Vec<String>> {
    Json(sim.state().notes.clone())
}

async fn add(State(sim): State<NotesSim>, body: String) -> StatusCode {
    sim.state().notes.push(body);
    sim.mutated();
    StatusCode::CREATED
}

impl Cloud for Notes {
    type State = NotesState;
    type Stats = NotesStats;

    fn name(&self) -> &'static str {
        "Notes"
    }

    fn api_prefix(&self) -> &'static str {
        "/v2"
    }

    fn is_public(&self, path: &str) -> bool {
        path == "/v2/ping"
    }

    fn api_key<'r>(&self, headers: &'r HeaderMap) -> Option<&'r str> {
        headers.get("x-api-key")?.to_str().ok()
    }

    /// A note `key:K` makes `K` a key (as a cloud that issues keys would).
    fn accepts_key(sim: &Sim<Self>, key: &str) -> bool {
        sim.state()
            .notes
            .iter()
            .any(|n| n.strip_prefix("key:") == Some(key))
    }

    fn how_to_authenticate(&self) -> &'static str {
        "send the header X-Api-Key: <api key>"
    }

    fn error_response(&self, e: ErrorReply) -> Response {
        let status = match e.kind {
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::InjectedFault | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::UnreadableBody | ErrorKind::MalformedJson | ErrorKind::Invalid => {
                StatusCode::BAD_REQUEST
            }
            ErrorKind::NoSuchRoute => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        };
        let body = json!({"error": format!("{:?}", e.kind), "message": e.message});
        (status, Json(body)).into_response()
    }

    fn rate_limit_headers(&self, d: &Decision, h: &mut HeaderMap) {
        h.insert("ratelimit-remaining", HeaderValue::from(d.remaining));
    }

    fn malformed_response(&self) -> Response {
        (StatusCode::OK, "{\"notes\":[").into_response()
    }

    fn initial_state(&self, saved: Option<NotesState>) -> NotesState {
        saved.unwrap_or_default()
    }

    /// Scratch notes are not worth keeping.
    fn before_save(&self, state: &mut NotesState) {
        state.notes.retain(|n| !n.starts_with("tmp-"));
    }

    fn stats(&self, requests: RequestStats, state: &mut NotesState) -> NotesStats {
        NotesStats {
            requests,
            notes: state.notes.len(),
            stats_resets: state.stats_resets,
        }
    }

    fn reset_stats(&self, state: &mut NotesState) {
        state.stats_resets += 1;
    }

    /// A missing key and an unknown one are told apart.
    fn unauthorized_response(&self, headers: &HeaderMap, e: ErrorReply) -> Response {
        if headers.contains_key("x-api-key") {
            self.error_response(e)
        } else {
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "MissingKey"})),
            )
                .into_response()
        }
    }

    fn api_routes(&self) -> Router<NotesSim> {
        Router::new()
            .route("/v2/ping", get(|| async { "pong" }))
            .route("/v2/notes", get(list).post(add))
    }

    fn control_routes(&self) -> Router<NotesSim> {
        Router::new().route("/_sim/notes", get(list))
    }
}

const KEY: &str = "notes-key";

fn config() -> Config {
    Config {
        api_keys: vec![KEY.into()],
        ..Default::default()
    }
}

struct Client {
    http: reqwest::Client,
    root: String,
}

impl Client {
    fn new(sim: &SimHandle<Notes>) -> Self {
        Client {
            http: reqwest::Client::new(),
            root: sim.root_url(),
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: &str,
    ) -> reqwest::Result<(StatusCode, HeaderMap, String)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.root))
            .body(body.to_string());
        if let Some(k) = key {
            req = req.header("x-api-key", k);
        }
        let resp = req.send().await?;
        let (status, headers) = (resp.status(), resp.headers().clone());
        Ok((status, headers, resp.text().await?))
    }

    async fn get(&self, path: &str, key: Option<&str>) -> (StatusCode, HeaderMap, String) {
        self.send(reqwest::Method::GET, path, key, "")
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, key: Option<&str>, body: &str) -> (StatusCode, String) {
        let (status, _, text) = self
            .send(reqwest::Method::POST, path, key, body)
            .await
            .unwrap();
        (status, text)
    }

    async fn notes(&self) -> Vec<String> {
        serde_json::from_str(&self.get("/_sim/notes", None).await.2).unwrap()
    }
}

fn error_of(text: &str) -> String {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    v["error"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_cloud_gets_the_gate_with_its_own_auth_error_shape_and_headers() {
    let mut config = config();
    config.limits = vec![Limit::new(
        2,
        Duration::from_secs(60),
        Scope::Key,
        Window::Rolling,
    )];
    let sim = start(Notes, config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(sim.base_url(), format!("{}/v2", sim.root_url()));
    let c = Client::new(&sim);

    let (status, _, text) = c.get("/v2/ping", None).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "pong"));
    let (status, headers, text) = c.get("/v2/notes", Some("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&text), "Unauthorized");
    assert!(text.contains("X-Api-Key"), "{text}");
    assert!(headers.get("ratelimit-remaining").is_none());
    let (status, _, text) = c.get("/v2/nowhere", Some("wrong")).await;
    assert_eq!(
        (status, error_of(&text).as_str()),
        (StatusCode::UNAUTHORIZED, "Unauthorized"),
        "an unknown API path needs a key too"
    );
    let (status, _, text) = c.get("/v2/notes", None).await;
    assert_eq!(
        (status, error_of(&text).as_str()),
        (StatusCode::UNAUTHORIZED, "MissingKey"),
        "the cloud's own answer to a request without a key"
    );

    assert_eq!(
        c.post("/v2/notes", Some(KEY), "a").await.0,
        StatusCode::CREATED
    );
    let (status, headers, text) = c.get("/v2/notes", Some(KEY)).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, r#"["a"]"#));
    assert_eq!(headers["ratelimit-remaining"], "0");
    let (status, headers, text) = c.get("/v2/notes", Some(KEY)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_of(&text), "RateLimited");
    assert!(text.contains("rolling window"), "{text}");
    assert_eq!(headers["ratelimit-remaining"], "0");

    let stats: Value = serde_json::from_str(&c.get("/_sim/stats", None).await.2).unwrap();
    assert_eq!(stats["notes"], 1);
    assert_eq!(stats["served429"], 1);
    assert_eq!(stats["keys"][key_fingerprint(KEY)]["requests"], 2);
    assert_eq!(
        stats["requestsByRoute"],
        json!({"GET /ping": 1, "GET /notes": 1, "POST /notes": 1})
    );
    assert_eq!(sim.request_times(KEY).len(), 2);
    assert_eq!(c.notes().await, ["a"], "the cloud's own control route");
    let (status, text) = c.post("/_sim/stats/reset", None, "").await;
    assert_eq!(status, StatusCode::OK);
    let stats: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stats["served429"], 0);
    assert_eq!(stats["stats_resets"], 1, "the cloud reset its own counters");

    let (status, text) = c.post("/_sim/notes", None, "").await;
    assert_eq!(
        (status, error_of(&text).as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed")
    );
    let (status, _, text) = c.get("/_sim/nothing", None).await;
    assert_eq!(
        (status, error_of(&text).as_str()),
        (StatusCode::NOT_FOUND, "NoSuchRoute")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_set_through_sim_apply_to_a_cloud_and_an_injected_error_applies_nothing() {
    let sim = start(Notes, config(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let c = Client::new(&sim);

    let (status, text) = c.post("/_sim/faults", None, r#"{"errorRate": 1}"#).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(sim.faults().error_rate, 1.0);
    let (status, text) = c.post("/v2/notes", Some(KEY), "lost").await;
    assert_eq!(
        (status, error_of(&text).as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "InjectedFault")
    );
    assert!(c.notes().await.is_empty());

    let (status, text) = c.post("/_sim/faults", None, r#"{"errorRate": 2}"#).await;
    assert_eq!(
        (status, error_of(&text).as_str()),
        (StatusCode::BAD_REQUEST, "Invalid")
    );
    let (status, text) = c.post("/_sim/faults", None, "nope").await;
    assert_eq!(
        (status, error_of(&text).as_str()),
        (StatusCode::BAD_REQUEST, "MalformedJson")
    );

    c.post("/_sim/faults", None, r#"{"malformedRate": 1}"#)
        .await;
    let (status, _, text) = c.get("/v2/notes", Some(KEY)).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "{\"notes\":["));
    assert_eq!(
        c.post("/v2/notes", Some(KEY), "kept").await.0,
        StatusCode::CREATED,
        "a malformed answer is for GETs only"
    );

    sim.set_faults(Faults {
        drop_after_write_rate: 1.0,
        ..Default::default()
    });
    let dropped = c
        .send(reqwest::Method::POST, "/v2/notes", Some(KEY), "applied")
        .await;
    assert!(dropped.is_err(), "{dropped:?}");
    assert_eq!(c.notes().await, ["kept", "applied"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_state_file_keeps_the_clouds_state_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config();
    config.state_file = Some(dir.path().join("notes.json"));
    let listen = "127.0.0.1:0".parse().unwrap();

    let sim = start(Notes, config.clone(), listen).await.unwrap();
    let c = Client::new(&sim);
    c.post("/v2/notes", Some(KEY), "keep").await;
    c.post("/v2/notes", Some(KEY), "tmp-scratch").await;
    let (status, _) = c.post("/_sim/save", None, "").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let saved: NotesState =
        serde_json::from_slice(&std::fs::read(dir.path().join("notes.json")).unwrap()).unwrap();
    assert_eq!(saved.notes, ["keep"], "before_save ran");
    c.post("/v2/notes", Some(KEY), "late").await;
    sim.shutdown().await;

    let sim = start(Notes, config, listen).await.unwrap();
    assert_eq!(Client::new(&sim).notes().await, ["keep", "late"]);
    assert_eq!(sim.stats().notes, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_key_the_cloud_issued_while_running_passes_the_gate_under_its_fingerprint() {
    let sim = start(Notes, config(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let c = Client::new(&sim);
    assert_eq!(c.get("/v2/notes", Some("issued")).await.0, 401);
    assert_eq!(c.post("/v2/notes", Some(KEY), "key:issued").await.0, 201);
    assert_eq!(c.get("/v2/notes", Some("issued")).await.0, 200);
    assert_eq!(
        sim.stats().requests.keys[&key_fingerprint("issued")].requests,
        1
    );
    assert_eq!(c.get("/v2/notes", Some("other")).await.0, 401);
}
