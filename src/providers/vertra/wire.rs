//! Vertra Cloud's wire conventions for the shared transport: `{"response": T}` answers,
//! `{"code", "message"?, "details"?}` errors, bearer auth, no idempotency keys, no pagination
//! (lists come whole: `/v1/users/me`, the `/status` arrays), the per-minute `X-RateLimit-*` and
//! per-day `X-Quota-*` headers, and 429 bodies that say which budget was hit
//! (`details.scope`, `details.limit`, `details.retry_after`).

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::PROVIDER;
use super::model::{ErrorBody, codes};
use crate::cloud::ErrorClass;
use crate::cloud::transport::wire::shape_problem;
use crate::cloud::transport::{
    ApiErrorBody, BodyProblem, LimitedScope, Pagination, RateHeaders, RateLimitHint, Success, Wire,
    wire::x_ratelimit,
};

/// Operation class of requests counted against the per-hour deploy limit.
pub const DEPLOY: &str = "deploy";
/// Operation class of app lifecycle calls (start, stop, restart, publish), limited per app.
pub const LIFECYCLE: &str = "lifecycle";
/// Operation class of manual snapshots.
pub const SNAPSHOT: &str = "snapshot";

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

const RATE_HEADERS: [RateHeaders; 2] = [
    x_ratelimit(MINUTE),
    // The daily quota is a budget to stop at, not a pace: its limit is not passed on (paced
    // evenly, 20,000 a day would be one request every 4.3 s); a spent quota holds the key.
    RateHeaders {
        limit: &[],
        remaining: &["x-quota-remaining"],
        reset: &["x-quota-reset"],
        window: DAY,
    },
];

/// The longest message kept from an error body.
const MAX_MESSAGE: usize = 500;

/// Vertra Cloud's [`Wire`].
#[derive(Debug, Clone, Copy, Default)]
pub struct VertraWire;

impl Wire for VertraWire {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn rate_headers(&self) -> &'static [RateHeaders] {
        &RATE_HEADERS
    }

    fn pagination(&self) -> Pagination {
        Pagination::None
    }

    fn success<T: DeserializeOwned>(
        &self,
        status: u16,
        body: &[u8],
    ) -> Result<Success<T>, BodyProblem> {
        let what = "the answer {response}";
        let value: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
            // 204, or an older generation's empty answer.
            serde_json::Value::Null
        } else {
            serde_json::from_slice(body).map_err(|e| shape_problem(what, body, &e))?
        };
        let data = match value {
            serde_json::Value::Object(mut o) if o.contains_key("response") => {
                o.remove("response").unwrap_or_default()
            }
            // Older generations answer some writes with `{}` or nothing.
            serde_json::Value::Object(o) if o.is_empty() => serde_json::Value::Null,
            serde_json::Value::Null => serde_json::Value::Null,
            _ => {
                return Err(BodyProblem(format!(
                    "an HTTP {status} answer without `response`"
                )));
            }
        };
        let data = T::deserialize(data)
            .map_err(|e| BodyProblem(format!("`response` does not match {what}: {e}")))?;
        Ok(Success {
            data,
            page: None,
            request_id: None,
        })
    }

    fn error(&self, status: u16, body: &[u8]) -> Result<ApiErrorBody, BodyProblem> {
        let err: ErrorBody = serde_json::from_slice(body)
            .map_err(|e| shape_problem("the error body {code, message}", body, &e))?;
        if err.code.trim().is_empty() {
            return Err(BodyProblem("an error body without a code".into()));
        }
        let details = err.details.clone().unwrap_or_default();
        let mut message = err
            .message
            .clone()
            .unwrap_or_else(|| format!("HTTP {status}"));
        if let Some(required) = &details.required {
            message.push_str(&format!(
                "; the API key lacks the scope {}: add it to the key in the Vertra dashboard",
                plain(required)
            ));
        }
        if let Some(path) = &details.path {
            message.push_str(&format!(" (field {})", plain(path)));
        }
        if let Some(until) = &details.until {
            message.push_str(&format!(" (until {})", plain(until)));
        }
        let message: String = message.chars().take(MAX_MESSAGE).collect();
        Ok(ApiErrorBody {
            rate_limit: rate_limit_hint(&err),
            code: err.code,
            message,
            request_id: None,
        })
    }

    fn classify(&self, status: u16, code: &str) -> ErrorClass {
        codes::classify(status, code)
    }
}

/// Which budget a 429 names, and what it says about it.
fn rate_limit_hint(err: &ErrorBody) -> RateLimitHint {
    let details = err.details.clone().unwrap_or_default();
    let retry_after = details
        .retry_after
        .filter(|s| *s > 0.0)
        .map(|s| Duration::from_secs_f64(s.min(DAY.as_secs_f64())));
    let window = match details.scope.as_deref() {
        Some("minute") => Some(MINUTE),
        Some("day") => Some(DAY),
        _ => details
            .window_seconds
            .filter(|s| *s >= 1.0)
            .map(|s| Duration::from_secs_f64(s.min(DAY.as_secs_f64()))),
    };
    let scope = match (err.code.as_str(), details.scope.as_deref()) {
        (codes::DEPLOY_RATE_LIMITED, _) => LimitedScope::Class(DEPLOY),
        (codes::SNAPSHOT_RATE_LIMITED, _) => LimitedScope::Class(SNAPSHOT),
        (codes::DAILY_QUOTA_EXCEEDED, _) | (_, Some("minute" | "day")) => LimitedScope::Key,
        // A per-route limit (lifecycle calls per app, subdomain changes): the request's own.
        (codes::RATE_LIMIT_EXCEEDED | codes::SUBDOMAIN_CHANGE_RATE_LIMITED, _) => {
            LimitedScope::RequestClass
        }
        _ => LimitedScope::Key,
    };
    RateLimitHint {
        scope,
        retry_after,
        limit: details.limit,
        window,
    }
}

/// A details value as plain text: a string as it is, a list joined, anything else as JSON.
fn plain(value: &serde_json::Value) -> String {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    };
    text.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::transport::decode_answer;
    use crate::providers::vertra::model::App;
    use reqwest::header::HeaderMap;

    #[test]
    fn answers_are_unwrapped_from_response_and_empty_answers_are_null() {
        let w = VertraWire;
        let body = br#"{"response":{"id":"a1","name":"web","ram":512}}"#;
        let app: App = w.success(200, body).unwrap().data;
        assert_eq!(app.id, "a1");
        let old = br#"{"status":"success","response":{"id":"a1","name":"web"}}"#;
        assert_eq!(w.success::<App>(200, old).unwrap().data.name, "web");
        for empty in [&b""[..], b"{}", b"{\"response\":null}"] {
            w.success::<Option<serde_json::Value>>(200, empty).unwrap();
        }
        assert!(w.success::<App>(200, b"{\"id\":\"a1\"}").is_err());
        assert!(w.success::<App>(200, b"<html>").is_err());
    }

    #[test]
    fn errors_fold_the_details_a_user_needs_into_the_message() {
        let w = VertraWire;
        let e = w
            .error(
                403,
                br#"{"code":"API_KEY_SCOPE_DENIED","message":"Forbidden","details":{"required":"apps:write"}}"#,
            )
            .unwrap();
        assert_eq!(e.code, "API_KEY_SCOPE_DENIED");
        assert!(e.message.contains("apps:write"), "{}", e.message);
        assert_eq!(w.classify(403, &e.code), ErrorClass::NeedsHuman);
        let e = w
            .error(
                400,
                br#"{"code":"VALIDATION_ERROR","details":{"path":["name"]}}"#,
            )
            .unwrap();
        assert!(e.message.contains("field name"), "{}", e.message);
        assert!(w.error(500, b"<html>oops</html>").is_err());
        assert!(w.error(500, br#"{"code":""}"#).is_err());
    }

    #[test]
    fn a_429_names_the_budget_it_hit() {
        let hint = |body: &[u8]| VertraWire.error(429, body).unwrap().rate_limit;
        let minute = hint(
            br#"{"code":"RATE_LIMIT_EXCEEDED","details":{"scope":"minute","limit":120,"used":120,"retry_after":12.5}}"#,
        );
        assert_eq!(minute.scope, LimitedScope::Key);
        assert_eq!(minute.limit, Some(120));
        assert_eq!(minute.window, Some(MINUTE));
        assert_eq!(minute.retry_after, Some(Duration::from_millis(12_500)));
        let day = hint(
            br#"{"code":"DAILY_QUOTA_EXCEEDED","details":{"scope":"day","retry_after":3600}}"#,
        );
        assert_eq!((day.scope, day.window), (LimitedScope::Key, Some(DAY)));
        let deploy = hint(
            br#"{"code":"DEPLOY_RATE_LIMITED","details":{"limit":20,"window_seconds":3600,"retry_after":900}}"#,
        );
        assert_eq!(deploy.scope, LimitedScope::Class(DEPLOY));
        assert_eq!(deploy.window, Some(Duration::from_secs(3600)));
        let route = hint(br#"{"code":"RATE_LIMIT_EXCEEDED"}"#);
        assert_eq!(route.scope, LimitedScope::RequestClass);
        let absurd = hint(br#"{"code":"DEPLOY_RATE_LIMITED","details":{"retry_after":1e300}}"#);
        assert_eq!(absurd.retry_after, Some(DAY));
    }

    #[test]
    fn the_body_retry_hint_wins_over_the_header() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "60".parse().unwrap());
        let e = decode_answer::<_, App>(
            &VertraWire,
            "apps.get",
            429,
            &h,
            br#"{"code":"RATE_LIMIT_EXCEEDED","details":{"scope":"minute","retry_after":2}}"#,
        )
        .unwrap_err();
        match e {
            crate::cloud::CloudError::Api { retry_after, .. } => {
                assert_eq!(retry_after, Some(Duration::from_secs(2)))
            }
            other => panic!("{other}"),
        }
    }
}
