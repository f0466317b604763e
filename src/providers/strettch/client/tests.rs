use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use serde::de::{DeserializeOwned, IgnoredAny};

use super::*;
use crate::cloud::ErrorClass;
use crate::cloud::throttle::{DEFAULT_WINDOW, RESET_MARGIN, RateLimitHeaders};
use crate::cloud::transport::{self, Answer, PageInfo, Wire};
use crate::providers::strettch::model::{
    Compute, ComputeCreate, ComputeState, DomainCreate, RecordWrite,
};

/// An answer read the way the transport reads it, through Strettch's wire.
fn decode<T: DeserializeOwned>(
    operation: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Answer<T>, CloudError> {
    transport::decode_answer(&StrettchWire, operation, status, headers, body)
}

fn retry_after(status: u16, headers: &HeaderMap) -> Option<Duration> {
    transport::retry_after(status, headers, StrettchWire.rate_headers())
}

fn rate_headers(headers: &HeaderMap) -> RateLimitHeaders {
    transport::rate_headers(headers, &StrettchWire.rate_headers()[0]).unwrap_or_default()
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

const COMPUTE: &str = r#"{"id":"325","hostName":"web-1","state":"RUNNING","image":"UBUNTU-24.04",
    "specification":"S-1C-1G","region":"KGL-1","ipv4":"195.15.0.73","tags":["a"]}"#;

#[test]
fn decodes_the_success_envelope() {
    let body = format!(
        r#"{{"success":true,"message":"ok","data":{COMPUTE},"requestId":"r-1","timestamp":"t"}}"#
    );
    let a = decode::<Compute>("computes.get", 200, &HeaderMap::new(), body.as_bytes()).unwrap();
    assert_eq!(a.data.id, "325");
    assert_eq!(a.data.state, ComputeState::Running);
    assert_eq!(a.request_id.as_deref(), Some("r-1"));

    let body = format!(
        r#"{{"success":true,"data":[{COMPUTE}],"meta":{{"total":1,"page":1,"limit":100}}}}"#
    );
    let a =
        decode::<Vec<Compute>>("computes.list", 200, &HeaderMap::new(), body.as_bytes()).unwrap();
    assert_eq!(a.data.len(), 1);
    assert_eq!(
        a.page,
        Some(PageInfo {
            total: Some(1),
            ..Default::default()
        })
    );
}

#[test]
fn odd_success_bodies_are_protocol_errors() {
    let h = headers(&[("content-type", "text/html")]);
    let cases: &[(&str, &str)] = &[
        ("", "empty body"),
        ("   ", "empty body"),
        ("<html>502 Bad Gateway</html>", "not JSON"),
        ("{\"success\":true,", "not JSON"),
        ("null", "does not match"),
        ("[]", "does not match"),
        ("{\"success\":true}", "missing field `data`"),
        ("{\"success\":true,\"data\":\"325\"}", "does not match"),
        ("{\"success\":true,\"data\":{\"id\":325}}", "does not match"),
        ("{\"success\":\"yes\",\"data\":{}}", "does not match"),
        ("{\"success\":false,\"data\":null}", "does not match"),
        ("\u{0}\u{1}\u{ff}", "not JSON"),
    ];
    for (body, expect) in cases {
        let e = decode::<Compute>("computes.get", 200, &h, body.as_bytes()).unwrap_err();
        match &e {
            CloudError::Protocol {
                operation,
                status,
                message,
            } => {
                assert_eq!(operation, "computes.get");
                assert_eq!(*status, 200);
                assert!(message.contains(expect), "{body:?}: {message}");
            }
            other => panic!("{body:?}: {other:?}"),
        }
        assert!(e.is_retryable(), "a garbled 2xx may be a hiccup: {e}");
    }
    let e = decode::<Compute>(
        "computes.get",
        200,
        &h,
        format!(r#"{{"success":false,"data":{COMPUTE}}}"#).as_bytes(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("success=false"), "{e}");
    // Invalid UTF-8 inside a string.
    let bytes = b"{\"success\":true,\"data\":{\"id\":\"\xff\"}}";
    assert!(matches!(
        decode::<Compute>("x", 200, &h, bytes),
        Err(CloudError::Protocol { .. })
    ));
    // Deletes accept any data, or none.
    for body in [
        "{\"success\":true}",
        "{\"success\":true,\"data\":null}",
        "{\"success\":true,\"data\":{\"id\":\"1\"}}",
    ] {
        decode::<Option<IgnoredAny>>("computes.delete", 202, &h, body.as_bytes()).unwrap();
    }
    assert!(decode::<Option<IgnoredAny>>("computes.delete", 202, &h, b"").is_err());
}

#[test]
fn error_envelopes_become_api_errors() {
    let body = br#"{"success":false,"code":"VALIDATION_ERROR","message":"hostName is required","requestId":"r-9"}"#;
    let e = decode::<Compute>("computes.create", 400, &HeaderMap::new(), body).unwrap_err();
    match &e {
        CloudError::Api {
            status,
            code,
            message,
            request_id,
            retry_after,
            ..
        } => {
            assert_eq!(*status, 400);
            assert_eq!(code, "VALIDATION_ERROR");
            assert_eq!(message, "hostName is required");
            assert_eq!(request_id.as_deref(), Some("r-9"));
            assert_eq!(*retry_after, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.class(), ErrorClass::Terminal);

    let body = br#"{"success":false,"code":"COMPUTE_NOT_FOUND","message":"no"}"#;
    let e = decode::<Compute>(
        "computes.get",
        404,
        &headers(&[("x-request-id", "hdr-1")]),
        body,
    )
    .unwrap_err();
    assert!(e.is_not_found());
    assert_eq!(e.request_id(), Some("hdr-1"));

    for (status, code, class) in [
        (401, "UNAUTHORIZED", ErrorClass::NeedsHuman),
        (409, "CONFLICT", ErrorClass::Terminal),
        (422, "UNPROCESSABLE_ENTITY", ErrorClass::Terminal),
        (500, "INTERNAL_SERVER_ERROR", ErrorClass::Retryable),
        (503, "SERVICE_UNAVAILABLE", ErrorClass::Retryable),
    ] {
        let body = format!(r#"{{"success":false,"code":"{code}","message":"m"}}"#);
        let e = decode::<Compute>("op", status, &HeaderMap::new(), body.as_bytes()).unwrap_err();
        assert_eq!(e.class(), class, "{e}");
        assert_eq!(e.code(), code);
    }
}

#[test]
fn odd_error_bodies_are_protocol_errors_classified_by_status() {
    let h = headers(&[("content-type", "text/html")]);
    for (status, retryable) in [
        (502, true),
        (503, true),
        (429, true),
        (404, false),
        (400, false),
    ] {
        for body in [
            "",
            "<html>oops</html>",
            "{\"error\":\"x\"}",
            "{\"success\":true,\"code\":\"X\"}",
            "[1,2]",
        ] {
            let e = decode::<Compute>("op", status, &h, body.as_bytes()).unwrap_err();
            assert!(
                matches!(e, CloudError::Protocol { .. }),
                "{status} {body:?}: {e:?}"
            );
            assert_eq!(e.is_retryable(), retryable, "{status} {body:?}: {e}");
            assert!(
                !e.is_not_found(),
                "a bare 404 is not proof the resource is gone"
            );
        }
    }
}

#[test]
fn retry_after_from_header_or_reset() {
    let body = br#"{"success":false,"code":"TOO_MANY_REQUESTS","message":"slow down"}"#;
    let e = decode::<Compute>("op", 429, &headers(&[("retry-after", "3")]), body).unwrap_err();
    assert!(e.is_retryable());
    match e {
        CloudError::Api { retry_after, .. } => {
            assert_eq!(retry_after, Some(Duration::from_secs(3)))
        }
        other => panic!("{other:?}"),
    }
    let now = jiff::Timestamp::now().as_second() as u64;
    let h = headers(&[
        ("x-ratelimit-limit", "2"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", &(now + 2).to_string()),
    ]);
    match decode::<Compute>("op", 429, &h, body).unwrap_err() {
        CloudError::Api {
            retry_after: Some(d),
            ..
        } => {
            assert!(
                d > Duration::from_millis(900) && d <= Duration::from_secs(2),
                "{d:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    let date = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(5))
        .unwrap()
        .strftime("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let d = retry_after(503, &headers(&[("retry-after", &date)])).unwrap();
    assert!(
        d > Duration::from_secs(3) && d <= Duration::from_secs(5),
        "{date} {d:?}"
    );
    assert_eq!(retry_after(503, &headers(&[("retry-after", "soon")])), None);
    assert_eq!(
        retry_after(500, &h),
        None,
        "the reset only stands in on a 429"
    );
}

#[test]
fn both_header_variants_are_read_most_conservative_wins() {
    let h = headers(&[
        ("x-ratelimit-limit", "2"),
        ("x-ratelimit-remaining", "1"),
        ("x-ratelimit-reset", "1776410380"),
        ("x-ratelimit-limit-second", "30"),
        ("x-ratelimit-remaining-second", "0"),
        ("x-ratelimit-reset-second", "1776410381"),
    ]);
    assert_eq!(
        rate_headers(&h),
        RateLimitHeaders {
            limit: Some(2),
            remaining: Some(0),
            reset: Some(1776410381),
            date: None,
            window: Some(Duration::from_secs(1)),
        }
    );
    let h = headers(&[
        ("x-ratelimit-remaining-second", "7"),
        ("x-ratelimit-limit", "junk"),
    ]);
    assert_eq!(
        rate_headers(&h),
        RateLimitHeaders {
            limit: None,
            remaining: Some(7),
            reset: None,
            date: None,
            window: Some(Duration::from_secs(1)),
        }
    );
    assert_eq!(rate_headers(&HeaderMap::new()), RateLimitHeaders::default());
}

#[test]
fn construction_validates_and_never_shows_the_key() {
    let secret = "sk-live-unit-test-secret-1234";
    let c = StrettchClient::new("http://127.0.0.1:9/api/v1/", ApiKey::new(secret), None).unwrap();
    assert_eq!(c.endpoint(), "http://127.0.0.1:9/api/v1");
    let shown = format!("{c:?} {:?}", c.throttle());
    assert!(
        !shown.contains(secret) && !shown.contains("unit-test-secret"),
        "{shown}"
    );
    assert!(
        shown.contains(&ApiKey::new(secret).fingerprint()),
        "{shown}"
    );
    assert_eq!(
        c.throttle().requests_per_second(),
        DEFAULT_REQUESTS_PER_SECOND
    );

    let url = c.transport.url(
        &Request::get("x", &["domains", "a/b c", "records"], Priority::Routine).query("page", 2),
    );
    assert_eq!(
        url.as_str(),
        "http://127.0.0.1:9/api/v1/domains/a%2Fb%20c/records?page=2"
    );

    for (endpoint, rps) in [
        ("not a url", None),
        ("ftp://x/api/v1", None),
        ("https://user:pw@api.example/api/v1", None),
        ("http://127.0.0.1:9", Some(0.0)),
        ("http://127.0.0.1:9", Some(f64::NAN)),
    ] {
        let e = StrettchClient::new(endpoint, ApiKey::new(secret), rps).unwrap_err();
        assert!(matches!(e, CloudError::Config(_)), "{endpoint}: {e:?}");
        assert!(!format!("{e:?} {e}").contains(secret));
        assert!(!format!("{e}").contains("pw"), "{e}");
    }
    assert!(StrettchClient::new("http://x", ApiKey::new("  "), None).is_err());
    let e = StrettchClient::new("http://x", ApiKey::new("bad\nkey-secret"), None).unwrap_err();
    assert!(!format!("{e:?}").contains("key-secret"), "{e:?}");
}

// ---- against a scripted local server --------------------------------------------------------

use axum::extract::State;
use axum::http::{HeaderMap as AxumHeaders, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;

/// Status, headers, body.
type Canned = (u16, Vec<(&'static str, String)>, String);

#[derive(Clone, Default)]
struct Script {
    /// Answers to give, in order; the last one repeats.
    answers: Arc<Mutex<Vec<Canned>>>,
    seen: Arc<Mutex<Vec<AxumHeaders>>>,
}

async fn scripted(State(s): State<Script>, headers: AxumHeaders) -> Response {
    s.seen.lock().push(headers);
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
    (format!("http://{addr}/api/v1"), script)
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
    }
}

fn ok_compute(status: u16) -> (u16, Vec<(&'static str, String)>, String) {
    (
        status,
        vec![],
        format!(r#"{{"success":true,"data":{COMPUTE}}}"#),
    )
}

fn err(status: u16, code: &str) -> (u16, Vec<(&'static str, String)>, String) {
    (
        status,
        vec![],
        format!(r#"{{"success":false,"code":"{code}","message":"m","requestId":"rq"}}"#),
    )
}

fn compute_create() -> ComputeCreate {
    ComputeCreate {
        host_name: "web-1".into(),
        image: "UBUNTU-24.04".into(),
        region: "KGL-1".into(),
        specification: "S-1C-1G".into(),
        public_keys: vec!["ssh-ed25519 AAAA".into()],
        with_public_ip: true,
        tags: vec![],
    }
}

#[tokio::test]
async fn a_create_is_sent_once_even_on_a_503_with_its_idempotency_key_and_bearer_auth() {
    let (url, script) = serve(vec![err(503, "INTERNAL_SERVER_ERROR"), ok_compute(202)]).await;
    let secret = "sk-unit-create-once-secret";
    let c = StrettchClient::new(&url, ApiKey::new(secret), Some(50.0))
        .unwrap()
        .with_retry(fast_retry());
    let key = crate::cloud::idempotency::idempotency_key("uid", "create", 0);
    let e = c.create_compute(&compute_create(), key).await.unwrap_err();
    assert_eq!(e.status(), Some(503));
    assert!(e.is_retryable(), "the outcome is unknown: {e}");
    assert_eq!(script.seen.lock().len(), 1, "one logical attempt");
    // The caller decides to send it again, with the same key.
    let got = c.create_compute(&compute_create(), key).await.unwrap();
    assert_eq!(got.id, "325");
    let seen = script.seen.lock();
    assert_eq!(seen.len(), 2);
    for h in seen.iter() {
        assert_eq!(h["idempotency-key"], key.to_string().as_str());
        assert_eq!(h["authorization"], format!("Bearer {secret}").as_str());
        assert_eq!(h["content-type"], "application/json");
    }
}

#[tokio::test]
async fn no_create_is_retried_inside_the_client() {
    let domain = DomainCreate {
        domain: "example.com".into(),
    };
    let record = RecordWrite {
        name: "www".into(),
        record_type: crate::providers::strettch::model::RecordType::A,
        value: "192.0.2.1".into(),
        ttl: Some(300),
        priority: None,
        weight: None,
        port: None,
        comment: None,
    };
    for n in 0..3 {
        let (url, script) = serve(vec![err(503, "INTERNAL_SERVER_ERROR")]).await;
        let c = StrettchClient::new(&url, ApiKey::new(format!("sk-unit-once-{n}")), Some(50.0))
            .unwrap()
            .with_retry(fast_retry());
        let key = crate::cloud::idempotency::idempotency_key("uid", "create", n);
        let e = match n {
            0 => c.create_compute(&compute_create(), key).await.err(),
            1 => c.create_domain(&domain, key).await.err(),
            _ => c.create_record("7", &record, key).await.err(),
        };
        assert!(e.expect("503").is_retryable());
        assert_eq!(script.seen.lock().len(), 1, "create {n} was sent once");
        // Reads and idempotent writes still retry.
        let before = script.seen.lock().len();
        c.get_compute("325", Priority::Urgent).await.unwrap_err();
        c.delete_compute("325").await.unwrap_err();
        assert_eq!(script.seen.lock().len() - before, 8, "4 attempts each");
    }
}

#[tokio::test]
async fn a_request_that_cannot_be_built_is_terminal_and_spends_no_permit() {
    let (url, script) = serve(vec![ok_compute(200)]).await;
    let c = StrettchClient::new(&url, ApiKey::new("sk-unit-invalid-id"), Some(50.0))
        .unwrap()
        .with_retry(fast_retry());
    let long = "7".repeat(MAX_ID_BYTES + 1);
    let huge = "x".repeat(100_000);
    for id in [
        long.as_str(),
        huge.as_str(),
        "a\nb",
        "tab\there",
        "\u{7f}",
        "",
        ".",
        "..",
    ] {
        let errors = [
            c.get_compute(id, Priority::Urgent).await.unwrap_err(),
            c.delete_compute(id).await.unwrap_err(),
            c.start_compute(id).await.unwrap_err(),
            c.upsize_compute(id, "S-2C-4G").await.unwrap_err(),
            c.get_record(id, "1", Priority::Routine).await.unwrap_err(),
            c.list_records(id, Priority::Routine).await.unwrap_err(),
        ];
        for e in errors {
            assert!(
                matches!(e, CloudError::InvalidRequest { .. }),
                "{id:.20?}: {e:?}"
            );
            assert_eq!(e.class(), ErrorClass::Terminal);
            assert_eq!(e.code(), "INVALID_REQUEST");
            assert!(e.to_string().len() < 400, "the message quotes no huge id");
        }
    }
    // Ids that fit but make too long a URL together.
    let half = "9".repeat(MAX_ID_BYTES);
    let mut segments = vec!["domains"];
    segments.extend(std::iter::repeat_n(
        half.as_str(),
        MAX_URL_BYTES / MAX_ID_BYTES + 1,
    ));
    let e = c
        .transport
        .data::<Compute>(Request::get("x", &segments, Priority::Urgent))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_REQUEST", "{e}");
    assert_eq!(script.seen.lock().len(), 0, "nothing reached the server");
    assert_eq!(c.throttle().permits_granted(), 0, "no permit was spent");
    // A plausible id still goes out.
    c.get_compute(&"7".repeat(MAX_ID_BYTES), Priority::Urgent)
        .await
        .unwrap();
    assert_eq!(script.seen.lock().len(), 1);
}

#[tokio::test]
async fn a_429_without_a_usable_retry_after_holds_the_key_for_one_window() {
    let now = jiff::Timestamp::now();
    let past = now
        .checked_sub(jiff::SignedDuration::from_secs(30))
        .unwrap()
        .strftime("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let date = now.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let cases: [&[(&'static str, &str)]; 7] = [
        &[],
        &[("retry-after", "soon")],
        &[("retry-after", "0")],
        &[("retry-after", "-3")],
        &[("retry-after", &past)],
        &[("retry-after", &past), ("date", &date)],
        // A reset in milliseconds is not believed either.
        &[
            ("x-ratelimit-reset", "1776410380000"),
            ("x-ratelimit-remaining", "0"),
        ],
    ];
    for (n, case) in cases.into_iter().enumerate() {
        let h = headers(case);
        // Nothing usable is read as "one window" by the throttle, not made up here.
        assert!(
            retry_after(429, &h).is_none_or(|d| d == DEFAULT_WINDOW),
            "{case:?}"
        );
        let mut answer = err(429, "TOO_MANY_REQUESTS");
        answer.1 = case.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let (url, _) = serve(vec![answer]).await;
        let c = StrettchClient::new(
            &url,
            ApiKey::new(format!("sk-unit-429-hold-{n}")),
            Some(50.0),
        )
        .unwrap()
        .with_retry(RetryPolicy::no_retries());
        c.get_compute("325", Priority::Urgent).await.unwrap_err();
        let held = c.throttle().held_until().expect("held") - tokio::time::Instant::now();
        assert!(
            held > DEFAULT_WINDOW - Duration::from_millis(100)
                && held <= DEFAULT_WINDOW + RESET_MARGIN,
            "{case:?}: {held:?}"
        );
    }
}

#[test]
fn retry_after_dates_are_read_against_the_answers_date() {
    // The server's clock is an hour ahead of ours: its Retry-After date is 3 s after its Date.
    let server_now = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(3600))
        .unwrap();
    let fmt = |t: jiff::Timestamp| t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let later = fmt(server_now
        .checked_add(jiff::SignedDuration::from_secs(3))
        .unwrap());
    let h = headers(&[("retry-after", &later), ("date", &fmt(server_now))]);
    assert_eq!(retry_after(503, &h), Some(Duration::from_secs(3)));
    // The reset of a 429, likewise.
    let date = server_now.as_second() as u64;
    let h = headers(&[
        ("date", &fmt(server_now)),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset", &(date + 1).to_string()),
    ]);
    assert_eq!(rate_headers(&h).date, Some(date));
    assert_eq!(retry_after(429, &h), Some(Duration::from_secs(1)));
}

#[tokio::test]
async fn a_routine_read_on_a_busy_key_is_deferred_without_being_sent() {
    let (url, script) = serve(vec![ok_compute(200)]).await;
    let c = StrettchClient::new(&url, ApiKey::new("sk-unit-deferred"), Some(50.0)).unwrap();
    c.throttle()
        .hold_for(crate::cloud::throttle::ROUTINE_PATIENCE * 3);
    let e = c.get_compute("325", Priority::Routine).await.unwrap_err();
    match &e {
        CloudError::Deferred {
            operation,
            retry_in,
        } => {
            assert_eq!(operation, "computes.get");
            assert!(*retry_in >= crate::cloud::throttle::ROUTINE_PATIENCE * 2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.class(), ErrorClass::Deferred);
    assert_eq!(script.seen.lock().len(), 0, "nothing was sent");
    assert_eq!(c.throttle().waiting(), 0, "it left the queue");
    // An urgent read (and a write) waits for the budget instead.
    c.get_compute("325", Priority::Urgent).await.unwrap();
    assert_eq!(script.seen.lock().len(), 1);
}

#[tokio::test]
async fn terminal_errors_are_not_retried() {
    for (status, code) in [
        (400, "VALIDATION_ERROR"),
        (401, "UNAUTHORIZED"),
        (404, "COMPUTE_NOT_FOUND"),
        (409, "CONFLICT"),
        (422, "UNPROCESSABLE_ENTITY"),
    ] {
        let (url, script) = serve(vec![err(status, code)]).await;
        let key = format!("sk-unit-terminal-{status}");
        let c = StrettchClient::new(&url, ApiKey::new(&key), Some(50.0))
            .unwrap()
            .with_retry(fast_retry());
        let e = c.start_compute("325").await.unwrap_err();
        assert_eq!(e.status(), Some(status));
        assert_eq!(e.code(), code);
        assert_eq!(e.request_id(), Some("rq"));
        assert_eq!(script.seen.lock().len(), 1, "{code} must not be retried");
        assert!(!format!("{e:?} {e}").contains(&key));
    }
}

#[tokio::test]
async fn a_429_holds_the_key_and_is_retried_once_after_retry_after() {
    let (url, script) = serve(vec![
        (
            429,
            vec![("retry-after", "1".into())],
            r#"{"success":false,"code":"TOO_MANY_REQUESTS","message":"m"}"#.into(),
        ),
        ok_compute(200),
    ])
    .await;
    let c = StrettchClient::new(&url, ApiKey::new("sk-unit-429"), Some(50.0))
        .unwrap()
        .with_retry(fast_retry());
    let start = std::time::Instant::now();
    c.get_compute("325", Priority::Routine).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(script.seen.lock().len(), 2);
}

#[tokio::test]
async fn lists_walk_every_page() {
    let item = |i: u64| COMPUTE.replace("\"325\"", &format!("\"{i}\""));
    let page = |from: u64, n: u64, total: u64, page: u64| {
        let items: Vec<_> = (from..from + n).map(item).collect();
        (
            200,
            vec![],
            format!(
                r#"{{"success":true,"data":[{}],"meta":{{"total":{total},"page":{page},"limit":100}}}}"#,
                items.join(",")
            ),
        )
    };
    let (url, script) = serve(vec![
        page(0, 100, 250, 1),
        page(100, 100, 250, 2),
        page(200, 50, 250, 3),
    ])
    .await;
    let c = StrettchClient::new(&url, ApiKey::new("sk-unit-pages"), Some(50.0)).unwrap();
    let all = c.list_all_computes(Priority::Routine).await.unwrap();
    assert_eq!(all.len(), 250);
    assert_eq!(script.seen.lock().len(), 3);

    // Exactly a multiple of the page size: stop at meta.total without asking for an empty page.
    let (url, script) = serve(vec![page(0, 100, 100, 1), page(0, 0, 100, 2)]).await;
    let c = StrettchClient::new(&url, ApiKey::new("sk-unit-pages-2"), Some(50.0)).unwrap();
    assert_eq!(
        c.list_all_computes(Priority::Routine).await.unwrap().len(),
        100
    );
    assert_eq!(script.seen.lock().len(), 1);

    // A server that answers the same full page again and again, whatever meta.total says:
    // the walk stops at the first page that adds nothing, not after MAX_PAGES requests.
    let (url, script) = serve(vec![page(0, 100, 1_000_000, 1)]).await;
    let c = StrettchClient::new(&url, ApiKey::new("sk-unit-pages-4"), Some(50.0)).unwrap();
    let e = c.list_all_computes(Priority::Routine).await.unwrap_err();
    assert!(matches!(e, CloudError::Protocol { .. }), "{e:?}");
    assert!(e.to_string().contains("does not advance"), "{e}");
    assert_eq!(script.seen.lock().len(), 2);
    // Items that moved between pages are fine as long as each page adds something.
    let (url, script) = serve(vec![
        page(0, 100, 150, 1),
        page(50, 100, 150, 2),
        page(150, 0, 150, 3),
    ])
    .await;
    let c = StrettchClient::new(&url, ApiKey::new("sk-unit-pages-5"), Some(50.0)).unwrap();
    assert_eq!(
        c.list_all_computes(Priority::Routine).await.unwrap().len(),
        150
    );
    assert_eq!(script.seen.lock().len(), 2);

    // A full list answer without meta cannot say whether the list goes on: a protocol error.
    let items: Vec<_> = (0..100).map(item).collect();
    let (url, _) = serve(vec![(
        200,
        vec![],
        format!(r#"{{"success":true,"data":[{}]}}"#, items.join(",")),
    )])
    .await;
    let c = StrettchClient::new(&url, ApiKey::new("sk-unit-pages-3"), Some(50.0))
        .unwrap()
        .with_retry(RetryPolicy::no_retries());
    let e = c.list_all_computes(Priority::Routine).await.unwrap_err();
    assert!(matches!(e, CloudError::Protocol { .. }), "{e:?}");
    // One page asked for by number carries the page parameters.
    let (url, script) = serve(vec![page(0, 20, 20, 1)]).await;
    let c = StrettchClient::new(&url, ApiKey::new("sk-unit-pages-6"), Some(50.0)).unwrap();
    let answer = c
        .list_computes_page(1, 20, Priority::Routine)
        .await
        .unwrap();
    assert_eq!(answer.data.len(), 20);
    assert_eq!(answer.page.and_then(|p| p.total), Some(20));
    assert_eq!(script.seen.lock().len(), 1);
}

#[tokio::test]
async fn connection_errors_are_transport_errors_after_retries() {
    // Nothing listens on the port: connect fails fast.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let c = StrettchClient::new(
        &format!("http://127.0.0.1:{port}/api/v1"),
        ApiKey::new("sk-unit-refused"),
        Some(50.0),
    )
    .unwrap()
    .with_retry(fast_retry());
    let e = c.get_compute("1", Priority::Routine).await.unwrap_err();
    assert!(matches!(e, CloudError::Transport { .. }), "{e:?}");
    assert!(e.is_retryable());
    assert!(!format!("{e:?}").contains("sk-unit-refused"));
}
