//! The Vertra client against a scripted local server: what goes on the wire.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method as HttpMethod, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

use super::*;
use crate::cloud::ErrorClass;
use crate::cloud::throttle::Priority;
use crate::providers::vertra::model::{DatabaseCreate, EnvWrite};

/// A request the server saw: method, path and query, headers, body.
type Seen = (HttpMethod, String, HeaderMap, Bytes);

#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<Vec<(u16, String)>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn scripted(
    State(s): State<Script>,
    method: HttpMethod,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.seen.lock().push((method, uri.to_string(), headers, body));
    let (status, body) = {
        let mut a = s.answers.lock();
        if a.len() > 1 {
            a.remove(0)
        } else {
            a[0].clone()
        }
    };
    (StatusCode::from_u16(status).unwrap(), body).into_response()
}

async fn serve(answers: Vec<(u16, &str)>) -> (String, Script) {
    let script = Script {
        answers: Arc::new(Mutex::new(
            answers
                .into_iter()
                .map(|(s, b)| (s, b.to_string()))
                .collect(),
        )),
        ..Default::default()
    };
    let app = axum::Router::new()
        .fallback(scripted)
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), script)
}

fn client(url: &str, key: &str, workspace: Option<&str>) -> VertraClient {
    VertraClient::for_provider_config(
        &format!("pc-{key}"),
        url,
        ApiKey::new(key),
        Policy::from(1000.0),
        workspace.map(str::to_string),
    )
    .unwrap()
    .with_retry(RetryPolicy {
        max_attempts: 3,
        initial: Duration::from_millis(5),
        max: Duration::from_millis(20),
    })
}

const APP: &str = r#"{"response":{"id":"a1","name":"web","ram":512,"status":"up"}}"#;

#[tokio::test]
async fn an_app_is_created_by_one_multipart_request_with_the_create_routes_names() {
    let (url, script) = serve(vec![(503, r#"{"code":"INTERNAL_SERVER_ERROR"}"#)]).await;
    let c = client(&url, "vc_live_create", None);
    let app = AppCreate {
        name: "web".into(),
        source: AppSource::Zip(vec![b'P', b'K', 3, 4].into()),
        memory_mb: 512,
        main_file: Some("index.js".into()),
        version: Some("recommended".into()),
        start_command: None,
        build_command: None,
        description: None,
        workspace_id: Some("ws-1".into()),
        subdomain: None,
        envs: vec![EnvWrite {
            key: "TOKEN".into(),
            value: "t-secret".into(),
            note: None,
        }],
    };
    let e = c.create_app(&app).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    let seen = script.seen.lock().clone();
    assert_eq!(
        seen.len(),
        1,
        "a create without idempotency key is never repeated blindly"
    );
    let (method, path, headers, body) = &seen[0];
    assert_eq!((method.as_str(), path.as_str()), ("POST", "/v1/apps"));
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("multipart/form-data")
    );
    assert_eq!(headers["authorization"], "Bearer vc_live_create");
    assert!(headers.get("idempotency-key").is_none());
    let body = String::from_utf8_lossy(body);
    for field in [
        "name=\"name\"",
        "name=\"memory\"",
        "name=\"main\"",
        "name=\"file\"",
        "name=\"workspace_id\"",
        "name=\"envs\"",
    ] {
        assert!(body.contains(field), "{field} missing");
    }
    assert!(
        !body.contains("name=\"ram\""),
        "the update route's name is not the create's"
    );
}

#[tokio::test]
async fn app_and_database_routes_carry_the_workspace_and_publish_does_not() {
    let (url, script) = serve(vec![(200, APP)]).await;
    let c = client(&url, "vc_live_scoped", Some("ws-9"));
    c.get_app("a1", Priority::Urgent).await.unwrap();
    c.stop_app("a1").await.unwrap();
    c.publish("a1", None).await.unwrap();
    let paths: Vec<String> = script.seen.lock().iter().map(|s| s.1.clone()).collect();
    assert_eq!(
        paths,
        [
            "/v1/apps/a1?workspace_id=ws-9",
            "/v1/apps/a1/stop?workspace_id=ws-9",
            "/v1/apps/a1/network/publish"
        ]
    );
}

#[tokio::test]
async fn a_password_reset_is_sent_once_and_its_answer_never_shows() {
    let (url, script) = serve(vec![(502, "<html>bad gateway</html>")]).await;
    let c = client(&url, "vc_live_reset", None);
    c.reset_password("d1").await.unwrap_err();
    assert_eq!(
        script.seen.lock().len(),
        1,
        "a repeat would replace the password again"
    );

    let (url, _) = serve(vec![(200, r#"{"response":{"password":"pw-secret"}}"#)]).await;
    let c = client(&url, "vc_live_reset2", None);
    let p = c.reset_password("d1").await.unwrap();
    assert_eq!(p.0.expose(), b"pw-secret");
    assert!(!format!("{p:?}").contains("pw-secret"));
}

#[tokio::test]
async fn a_database_create_sends_the_engine_as_its_type_number() {
    let (url, script) = serve(vec![(
        200,
        r#"{"response":{"id":"d1","name":"db","type":1,"host":"d1.db","port":30001}}"#,
    )])
    .await;
    let c = client(&url, "vc_live_db", None);
    let db = c
        .create_database(&DatabaseCreate {
            name: "db".into(),
            ram: 1024,
            engine: 1,
            description: None,
            workspace_id: None,
            snapshot_id: None,
        })
        .await
        .unwrap();
    assert_eq!(db.port, Some(30001));
    let body: serde_json::Value = serde_json::from_slice(&script.seen.lock()[0].3).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"name": "db", "ram": 1024, "type": 1})
    );
}

#[tokio::test]
async fn a_scope_the_key_lacks_needs_a_human_and_says_which() {
    let (url, _) = serve(vec![(
        403,
        r#"{"code":"API_KEY_SCOPE_DENIED","message":"Forbidden","details":{"required":"databases:credentials"}}"#,
    )])
    .await;
    let c = client(&url, "vc_live_scope", None);
    let e = c.certificate("d1", Priority::Urgent).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::NeedsHuman);
    assert!(e.to_string().contains("databases:credentials"), "{e}");
}
