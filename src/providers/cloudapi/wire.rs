//! CloudAPI's wire conventions for the shared transport, in both dialects: bare objects for one
//! resource, `{"data": [...], ...}` for lists (cursor-paged in `cloudapi`, whole in
//! `cloudplatform`), the error bodies of each, bearer auth, `Idempotency-Key` on POSTs (both
//! dialects honour it), and `cloudapi`'s per-minute `X-RateLimit-*` headers.

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::PROVIDER;
use super::model::{ErrorBody, codes};
use crate::api::provider_config::CloudApiDialect;
use crate::cloud::ErrorClass;
use crate::cloud::transport::wire::shape_problem;
use crate::cloud::transport::{
    ApiErrorBody, BodyProblem, LimitedScope, PageInfo, Pagination, RateHeaders, RateLimitHint,
    Success, Wire, wire::x_ratelimit,
};

/// The largest page `cloudapi` serves (`?limit=` 1–100).
pub const MAX_PAGE_SIZE: u64 = 100;

const MINUTE: Duration = Duration::from_secs(60);
/// The longest hint a 429 may ask for that is believed (the longest documented window).
const MAX_HINT: Duration = Duration::from_secs(600);

/// `cloudapi`: 1,000 requests per minute per key, told on every answer.
const CLOUDAPI_HEADERS: [RateHeaders; 1] = [x_ratelimit(MINUTE)];

/// The longest message kept from an error body.
const MAX_MESSAGE: usize = 500;

/// CloudAPI's [`Wire`], in one of its two dialects.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloudApiWire {
    pub dialect: CloudApiDialect,
}

impl CloudApiWire {
    pub fn new(dialect: CloudApiDialect) -> Self {
        Self { dialect }
    }
}

impl Wire for CloudApiWire {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn idempotency_header(&self) -> Option<&'static str> {
        Some("idempotency-key")
    }

    fn rate_headers(&self) -> &'static [RateHeaders] {
        match self.dialect {
            CloudApiDialect::CloudApi => &CLOUDAPI_HEADERS,
            // None documented; the throttle keeps to the published limits on its own.
            CloudApiDialect::CloudPlatform => &[],
        }
    }

    fn pagination(&self) -> Pagination {
        match self.dialect {
            CloudApiDialect::CloudApi => Pagination::Cursor {
                cursor: "cursor",
                limit: "limit",
                max_limit: MAX_PAGE_SIZE,
            },
            CloudApiDialect::CloudPlatform => Pagination::None,
        }
    }

    fn success<T: DeserializeOwned>(
        &self,
        status: u16,
        body: &[u8],
    ) -> Result<Success<T>, BodyProblem> {
        let what = "a CloudAPI object or list {data: [...]}";
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| shape_problem(what, body, &e))?;
        let (data, page, request_id) = match value {
            // A list: no resource of the API has a `data` array of its own.
            serde_json::Value::Object(mut o)
                if o.get("data").is_some_and(serde_json::Value::is_array) =>
            {
                let data = o.remove("data").unwrap_or_default();
                let next_cursor = o
                    .get("next_cursor")
                    .and_then(|c| c.as_str())
                    .filter(|c| !c.is_empty())
                    .map(str::to_string);
                let has_more = o.get("has_more").and_then(serde_json::Value::as_bool);
                let request_id = o
                    .get("meta")
                    .and_then(|m| m.get("requestId"))
                    .and_then(|r| r.as_str())
                    .map(str::to_string);
                let page = (next_cursor.is_some() || has_more.is_some()).then_some(PageInfo {
                    total: None,
                    next_cursor,
                    has_more,
                });
                (data, page, request_id)
            }
            serde_json::Value::Object(o) => (serde_json::Value::Object(o), None, None),
            _ => {
                return Err(BodyProblem(format!(
                    "an HTTP {status} answer that is neither an object nor a list"
                )));
            }
        };
        let data = T::deserialize(data)
            .map_err(|e| BodyProblem(format!("the answer does not match {what}: {e}")))?;
        Ok(Success {
            data,
            page,
            request_id,
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
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| format!("HTTP {status}"));
        if let Some(field) = &details.field {
            message.push_str(&format!(
                " (field {})",
                field.chars().take(100).collect::<String>()
            ));
        }
        let message: String = message.chars().take(MAX_MESSAGE).collect();
        Ok(ApiErrorBody {
            rate_limit: rate_limit_hint(&err),
            code: err.code,
            message,
            request_id: err.request_id,
        })
    }

    fn classify(&self, status: u16, code: &str) -> ErrorClass {
        codes::classify(status, code)
    }
}

/// What a 429 body says (`cloudplatform`'s `details`): which limit, its window and the retry
/// hint. Either limit holds every request of the key: the workspace's is shared with the key's
/// other users, and this key cannot spend from it either until it has room.
fn rate_limit_hint(err: &ErrorBody) -> RateLimitHint {
    let details = err.details.clone().unwrap_or_default();
    let secs = |s: f64| Duration::from_secs_f64(s.min(MAX_HINT.as_secs_f64()));
    RateLimitHint {
        scope: LimitedScope::Key,
        retry_after: details.retry_after.filter(|s| *s > 0.0).map(secs),
        limit: details.limit,
        window: details.window_seconds.filter(|s| *s >= 1.0).map(secs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::CloudError;
    use crate::cloud::transport::decode_answer;
    use crate::providers::cloudapi::model::{Deployment, IssuedKey, Project};
    use reqwest::header::HeaderMap;

    const API: CloudApiWire = CloudApiWire {
        dialect: CloudApiDialect::CloudApi,
    };
    const PLATFORM: CloudApiWire = CloudApiWire {
        dialect: CloudApiDialect::CloudPlatform,
    };

    #[test]
    fn a_cloudapi_list_carries_its_cursor_and_one_object_is_the_object_itself() {
        let body = br#"{"data":[{"id":"proj_1","name":"a","region":"us-east-1","created_at":"2026-04-28T14:02:11Z","status":"active"}],"next_cursor":"cur_9","has_more":true}"#;
        let page = API.success::<Vec<Project>>(200, body).unwrap();
        assert_eq!(page.data[0].region.as_deref(), Some("us-east-1"));
        let info = page.page.unwrap();
        assert_eq!(info.next_cursor.as_deref(), Some("cur_9"));
        assert_eq!(info.has_more, Some(true));
        let last = API
            .success::<Vec<Project>>(200, br#"{"data":[],"next_cursor":null,"has_more":false}"#)
            .unwrap();
        assert_eq!(last.page.unwrap().has_more, Some(false));
        let one = br#"{"id":"dep_19af","project_id":"proj_1","status":"queued","commit":"a1b2c3d","created_at":"2026-04-28T14:02:11Z","current":false}"#;
        let d: Deployment = API.success(201, one).unwrap().data;
        assert!(d.in_progress() && d.current == Some(false));
    }

    #[test]
    fn a_cloudplatform_list_is_whole_and_names_its_request() {
        let body = br#"{"data":[{"id":"prj_77f2","name":"gamma","created_at":"2026-04-28T14:02:11Z"}],"meta":{"requestId":"req_1"}}"#;
        let page = PLATFORM.success::<Vec<Project>>(200, body).unwrap();
        assert_eq!(page.data[0].id, "prj_77f2");
        assert_eq!(page.data[0].region, None);
        assert_eq!(page.page, None);
        assert_eq!(page.request_id.as_deref(), Some("req_1"));
        assert_eq!(PLATFORM.pagination(), Pagination::None);
        assert!(PLATFORM.rate_headers().is_empty());
        assert!(PLATFORM.success::<Project>(200, b"[1]").is_err());
        assert!(PLATFORM.success::<Project>(200, b"<html>").is_err());
    }

    #[test]
    fn errors_of_both_dialects_parse_and_classify() {
        let e = API
            .error(
                404,
                br#"{"status":404,"code":"NOT_FOUND","message":"no project proj_x","request_id":"req_7"}"#,
            )
            .unwrap();
        assert_eq!(e.request_id.as_deref(), Some("req_7"));
        assert_eq!(API.classify(404, &e.code), ErrorClass::NotFound);
        let e = PLATFORM
            .error(
                422,
                br#"{"code":"VALIDATION_ERROR","message":"region is not accepted","details":{"field":"region"}}"#,
            )
            .unwrap();
        assert!(e.message.contains("field region"), "{}", e.message);
        assert_eq!(PLATFORM.classify(422, &e.code), ErrorClass::Terminal);
        assert_eq!(API.classify(409, "CONFLICT"), ErrorClass::Terminal);
        assert_eq!(API.classify(401, "UNAUTHORIZED"), ErrorClass::NeedsHuman);
        assert_eq!(API.classify(403, "FORBIDDEN"), ErrorClass::NeedsHuman);
        assert_eq!(API.classify(429, "RATE_LIMITED"), ErrorClass::RateLimited);
        assert_eq!(
            API.classify(409, "IDEMPOTENCY_KEY_IN_USE"),
            ErrorClass::Retryable
        );
        assert_eq!(API.classify(503, "X"), ErrorClass::Retryable);
        assert!(API.error(500, b"<html>").is_err());
        assert!(API.error(500, br#"{"code":" "}"#).is_err());
    }

    #[test]
    fn a_429_says_which_limit_and_when_to_come_back() {
        let hint = PLATFORM
            .error(
                429,
                br#"{"code":"RATE_LIMITED","message":"slow down","details":{"scope":"workspace","limit":600,"window_seconds":600,"retry_after":12}}"#,
            )
            .unwrap()
            .rate_limit;
        assert_eq!(hint.limit, Some(600));
        assert_eq!(hint.window, Some(Duration::from_secs(600)));
        assert_eq!(hint.retry_after, Some(Duration::from_secs(12)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        let e = decode_answer::<_, Project>(
            &API,
            "projects.list",
            429,
            &h,
            br#"{"status":429,"code":"RATE_LIMITED","message":"too many"}"#,
        )
        .unwrap_err();
        match e {
            CloudError::Api {
                retry_after, class, ..
            } => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
                assert_eq!(class, ErrorClass::RateLimited);
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_created_key_never_shows_its_value_in_debug() {
        let k: IssuedKey = API
            .success(
                201,
                br#"{"id":"key_1","key":"sk_live_0123456789abcdef","project_id":"proj_1","created_at":"2026-04-28T14:02:11Z"}"#,
            )
            .unwrap()
            .data;
        assert_eq!(k.key.expose(), "sk_live_0123456789abcdef");
        assert!(!format!("{k:?}").contains("sk_live"));
    }
}
