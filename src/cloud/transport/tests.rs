//! The transport against a scripted local HTTP server, with a small wire of its own (cursor
//! pagination, `{"data": …}` envelope, `{"error": {"code", "message"}}` errors, no idempotency
//! header unless asked): what every provider gets without writing it again.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap as AxumHeaders, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::*;
use crate::cloud::ErrorClass;
use crate::cloud::error::classify_status;
use crate::cloud::throttle::{Policy, Priority};
use reqwest::Method;

#[derive(Clone)]
struct TestWire {
    pagination: Pagination,
    idempotency: Option<&'static str>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
    #[serde(default)]
    next_cursor: Option<String>,
    #[serde(default)]
    has_more: Option<bool>,
    #[serde(default)]
    total: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    retry_after: Option<f64>,
}

impl Wire for TestWire {
    fn provider(&self) -> &'static str {
        "transport-test"
    }
    fn idempotency_header(&self) -> Option<&'static str> {
        self.idempotency
    }
    fn rate_headers(&self) -> &'static [RateHeaders] {
        const SETS: [RateHeaders; 1] = [wire::x_ratelimit(Duration::from_secs(60))];
        &SETS
    }
    fn pagination(&self) -> Pagination {
        self.pagination
    }
    fn success<T: DeserializeOwned>(&self, _: u16, body: &[u8]) -> Result<Success<T>, BodyProblem> {
        let e: Envelope<T> =
            serde_json::from_slice(body).map_err(|e| wire::shape_problem("{data}", body, &e))?;
        Ok(Success {
            data: e.data,
            page: Some(PageInfo {
                total: e.total,
                next_cursor: e.next_cursor,
                has_more: e.has_more,
            }),
            request_id: None,
        })
    }
    fn error(&self, _: u16, body: &[u8]) -> Result<ApiErrorBody, BodyProblem> {
        let e: ErrorEnvelope =
            serde_json::from_slice(body).map_err(|e| wire::shape_problem("{error}", body, &e))?;
        Ok(ApiErrorBody {
            code: e.error.code.clone(),
            message: e.error.message,
            request_id: None,
            rate_limit: RateLimitHint {
                scope: match e.error.code.as_str() {
                    "DEPLOYS_LIMITED" => LimitedScope::Class("deploy"),
                    "ROUTE_LIMITED" => LimitedScope::RequestClass,
                    _ => LimitedScope::Key,
                },
                retry_after: e
                    .error
                    .retry_after
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(Duration::from_secs_f64),
                ..Default::default()
            },
        })
    }
    fn classify(&self, status: u16, code: &str) -> ErrorClass {
        match code {
            "GONE" => ErrorClass::NotFound,
            _ => classify_status(status),
        }
    }
}

fn cursor_wire() -> TestWire {
    TestWire {
        pagination: Pagination::Cursor {
            cursor: "cursor",
            limit: "limit",
            max_limit: 2,
        },
        idempotency: None,
    }
}

type Canned = (u16, Vec<(&'static str, String)>, String);
/// The headers and query of each request the server saw.
type Seen = Arc<Mutex<Vec<(AxumHeaders, Option<String>)>>>;

#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<Vec<Canned>>>,
    seen: Seen,
}

async fn scripted(
    State(s): State<Script>,
    RawQuery(query): RawQuery,
    headers: AxumHeaders,
) -> Response {
    s.seen.lock().push((headers, query));
    let (status, hs, body) = {
        let mut a = s.answers.lock();
        if a.len() > 1 {
            a.remove(0)
        } else {
            a[0].clone()
        }
    };
    let mut resp = (StatusCode::from_u16(status).unwrap(), body).into_response();
    for (k, v) in hs {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

async fn serve(answers: Vec<Canned>) -> (String, Script) {
    let script = Script {
        answers: Arc::new(Mutex::new(answers)),
        ..Default::default()
    };
    let app = axum::Router::new()
        .fallback(scripted)
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), script)
}

fn ok(body: &str) -> Canned {
    (200, vec![], body.to_string())
}

fn transport(wire: TestWire, url: &str, key: &str) -> Transport<TestWire> {
    Transport::new(wire, url, &ApiKey::new(key), Policy::from(1000.0), None)
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 3,
            initial: Duration::from_millis(5),
            max: Duration::from_millis(20),
        })
}

fn list() -> Request {
    Request::get("things.list", &["things"], Priority::Urgent)
}

#[derive(Debug, Deserialize, PartialEq)]
struct Thing {
    id: String,
}

fn ids(things: &[Thing]) -> Vec<&str> {
    things.iter().map(|t| t.id.as_str()).collect()
}

#[tokio::test]
async fn a_cursor_walk_follows_next_cursor_until_has_more_is_false_keeping_each_item_once() {
    let (url, script) = serve(vec![
        ok(r#"{"data":[{"id":"a"},{"id":"b"}],"next_cursor":"c2","has_more":true}"#),
        ok(r#"{"data":[{"id":"b"},{"id":"c"}],"next_cursor":"c3","has_more":true}"#),
        ok(r#"{"data":[{"id":"d"}],"next_cursor":null,"has_more":false}"#),
    ])
    .await;
    let t = transport(cursor_wire(), &url, "sk-cursor-walk");
    let all: Vec<Thing> = t.list_all(list(), |t: &Thing| t.id.clone()).await.unwrap();
    assert_eq!(ids(&all), ["a", "b", "c", "d"]);
    let queries: Vec<_> = script.seen.lock().iter().map(|(_, q)| q.clone()).collect();
    assert_eq!(
        queries,
        [
            Some("limit=2".to_string()),
            Some("limit=2&cursor=c2".to_string()),
            Some("limit=2&cursor=c3".to_string())
        ]
    );
}

#[tokio::test]
async fn a_cursor_walk_that_loops_or_loses_its_cursor_is_an_error_not_a_partial_list() {
    let (url, script) = serve(vec![
        ok(r#"{"data":[{"id":"a"},{"id":"b"}],"next_cursor":"c2","has_more":true}"#),
        ok(r#"{"data":[{"id":"c"},{"id":"d"}],"next_cursor":"c2","has_more":true}"#),
    ])
    .await;
    let t = transport(cursor_wire(), &url, "sk-cursor-loop");
    let e = t
        .list_all(list(), |t: &Thing| t.id.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, CloudError::Protocol { .. }), "{e}");
    assert!(e.to_string().contains("does not advance"), "{e}");
    assert_eq!(script.seen.lock().len(), 2, "stopped at the repeat");

    let (url, _) = serve(vec![ok(r#"{"data":[{"id":"a"}],"has_more":true}"#)]).await;
    let t = transport(cursor_wire(), &url, "sk-cursor-lost");
    let e = t
        .list_all(list(), |t: &Thing| t.id.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no next_cursor"), "{e}");
}

#[tokio::test]
async fn a_page_walk_stops_at_the_total_or_a_short_page_and_refuses_a_full_page_without_total() {
    let pages = TestWire {
        pagination: Pagination::PageLimit {
            page: "page",
            limit: "limit",
            max_limit: 2,
        },
        idempotency: None,
    };
    let (url, script) = serve(vec![
        ok(r#"{"data":[{"id":"a"},{"id":"b"}],"total":3}"#),
        ok(r#"{"data":[{"id":"c"}],"total":3}"#),
    ])
    .await;
    let t = transport(pages.clone(), &url, "sk-page-walk");
    let all: Vec<Thing> = t.list_all(list(), |t: &Thing| t.id.clone()).await.unwrap();
    assert_eq!(ids(&all), ["a", "b", "c"]);
    assert_eq!(script.seen.lock()[1].1.as_deref(), Some("page=2&limit=2"));

    // A short answer without paging facts is the whole list; a full one cannot be trusted.
    let (url, _) = serve(vec![ok(r#"{"data":[{"id":"a"}]}"#)]).await;
    let t = transport(pages.clone(), &url, "sk-page-short");
    let all: Vec<Thing> = t.list_all(list(), |t: &Thing| t.id.clone()).await.unwrap();
    assert_eq!(ids(&all), ["a"]);
    let (url, _) = serve(vec![ok(r#"{"data":[{"id":"a"},{"id":"b"}]}"#)]).await;
    let t = transport(pages.clone(), &url, "sk-page-full");
    let e = t
        .list_all(list(), |t: &Thing| t.id.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no total"), "{e}");

    // A server repeating its first page forever costs one extra page, not MAX_PAGES.
    let (url, script) = serve(vec![ok(r#"{"data":[{"id":"a"},{"id":"b"}],"total":9}"#)]).await;
    let t = transport(pages, &url, "sk-page-repeat");
    let e = t
        .list_all(list(), |t: &Thing| t.id.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not advance"), "{e}");
    assert_eq!(script.seen.lock().len(), 2);
}

#[tokio::test]
async fn a_create_without_an_idempotency_header_is_sent_once_and_carries_no_key() {
    let (url, script) = serve(vec![(
        503,
        vec![],
        r#"{"error":{"code":"UNAVAILABLE"}}"#.into(),
    )])
    .await;
    let t = transport(cursor_wire(), &url, "sk-create-once");
    let key = uuid::Uuid::new_v4();
    let create = Request::create("things.create", &["things"], key)
        .json(&serde_json::json!({"name": "x"}))
        .unwrap();
    let e = t.data::<Thing>(create).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    {
        let seen = script.seen.lock();
        assert_eq!(
            seen.len(),
            1,
            "an ambiguous create is never repeated blindly"
        );
        assert!(seen[0].0.get("idempotency-key").is_none());
        assert_eq!(seen[0].0["authorization"], "Bearer sk-create-once");
    }

    // A wire with an idempotency header sends the key in it.
    let (url, script) = serve(vec![ok(r#"{"data":{"id":"t1"}}"#)]).await;
    let wire = TestWire {
        idempotency: Some("idempotency-key"),
        ..cursor_wire()
    };
    let t = transport(wire, &url, "sk-create-keyed");
    let create = Request::create("things.create", &["things"], key);
    assert_eq!(t.data::<Thing>(create).await.unwrap().id, "t1");
    assert_eq!(
        script.seen.lock()[0].0["idempotency-key"],
        key.to_string().as_str()
    );
}

#[tokio::test]
async fn error_bodies_become_typed_errors_and_the_body_retry_hint_wins_over_retry_after() {
    let (url, _) = serve(vec![(
        404,
        vec![("x-request-id", "rq-9".into())],
        r#"{"error":{"code":"GONE","message":"no such thing"}}"#.into(),
    )])
    .await;
    let t = transport(cursor_wire(), &url, "sk-typed-errors");
    let e = t
        .data::<Thing>(Request::get(
            "things.get",
            &["things", "1"],
            Priority::Urgent,
        ))
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(e.code(), "GONE");
    assert_eq!(e.request_id(), Some("rq-9"));

    let (url, _) = serve(vec![(
        429,
        vec![("retry-after", "30".into())],
        r#"{"error":{"code":"RATE_LIMIT_EXCEEDED","retry_after":0.25}}"#.into(),
    )])
    .await;
    let t = transport(cursor_wire(), &url, "sk-typed-429").with_retry(RetryPolicy::no_retries());
    let e = t.data::<Thing>(list()).await.unwrap_err();
    match e {
        CloudError::Api { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_millis(250)))
        }
        other => panic!("{other}"),
    }
    assert!(t.throttle().held_until().is_some(), "the 429 holds the key");
}

#[tokio::test]
async fn a_429_for_an_operation_class_holds_that_class_only_and_never_the_key() {
    let (url, script) = serve(vec![
        (
            429,
            vec![],
            r#"{"error":{"code":"DEPLOYS_LIMITED","retry_after":30}}"#.into(),
        ),
        ok(r#"{"data":{"id":"t1"}}"#),
    ])
    .await;
    let t = transport(cursor_wire(), &url, "sk-class-429").with_retry(RetryPolicy::no_retries());
    let deploy = Request::write(Method::POST, "things.deploy", &["things", "t1", "deploy"])
        .once()
        .class("deploy", None);
    let e = t.no_data(deploy).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::RateLimited, "{e}");
    assert!(t.throttle().held_until().is_none(), "the key is not held");
    // Another request of the key goes out at once.
    let started = std::time::Instant::now();
    t.data::<Thing>(Request::get(
        "things.get",
        &["things", "t1"],
        Priority::Urgent,
    ))
    .await
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    // The next deploy is not sent within the hold: it gives its place up at once, saying
    // when to try again, instead of holding its caller for the 30 s.
    let deploy = Request::write(Method::POST, "things.deploy", &["things", "t1", "deploy"])
        .once()
        .class("deploy", None);
    match t.no_data(deploy).await.unwrap_err() {
        CloudError::Deferred { retry_in, .. } => {
            assert!(retry_in >= Duration::from_secs(25), "{retry_in:?}")
        }
        other => panic!("not deferred: {other}"),
    }
    assert_eq!(script.seen.lock().len(), 2);
}

#[tokio::test]
async fn garbled_and_oversized_answers_are_protocol_errors_that_never_quote_the_body() {
    let (url, _) = serve(vec![ok("<html>secret-ish page</html>")]).await;
    let t = transport(cursor_wire(), &url, "sk-garbled").with_retry(RetryPolicy::no_retries());
    let e = t.data::<Thing>(list()).await.unwrap_err();
    assert!(matches!(e, CloudError::Protocol { .. }), "{e}");
    assert!(!e.to_string().contains("secret-ish"), "{e}");

    let huge = format!(r#"{{"data":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
    let (url, _) = serve(vec![ok(&huge)]).await;
    let t = transport(cursor_wire(), &url, "sk-huge").with_retry(RetryPolicy::no_retries());
    let e = t.data::<String>(list()).await.unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
}

#[test]
fn the_key_never_shows_in_debug_output_or_construction_errors() {
    let secret = "sk-transport-debug-secret";
    let t = Transport::new(
        cursor_wire(),
        "http://127.0.0.1:9/v1",
        &ApiKey::new(secret),
        Policy::from(2.0),
        None,
    )
    .unwrap();
    let shown = format!("{t:?}");
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains("transport-test"), "{shown}");
    for bad in [
        "ftp://x",
        "http://user:pw@x/v1",
        "http://x/v1?a=1",
        "not a url",
    ] {
        let e = Transport::new(
            cursor_wire(),
            bad,
            &ApiKey::new(secret),
            Policy::from(2.0),
            None,
        )
        .unwrap_err();
        assert!(
            !e.to_string().contains(secret) && !e.to_string().contains("pw"),
            "{e}"
        );
    }
    let e = Transport::new(
        cursor_wire(),
        "http://x/v1",
        &ApiKey::new("bad\nkey-secret"),
        Policy::from(2.0),
        None,
    )
    .unwrap_err();
    assert!(!format!("{e:?}").contains("key-secret"), "{e:?}");
}
