//! Strettch Cloud's wire conventions for the shared transport: the `{success, data, meta,
//! requestId}` envelope, the `{success: false, code, message, requestId}` error body, the
//! codes' classes, bearer auth, `Idempotency-Key` on creates, page/limit lists of at most 100,
//! and the per-second rate-limit headers in both documented spellings (the seed's plain
//! `X-RateLimit-*` and api-notes' `X-RateLimit-*-Second`).

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::PROVIDER;
use super::model::{Envelope, ErrorBody, codes};
use crate::cloud::ErrorClass;
use crate::cloud::transport::wire::shape_problem;
use crate::cloud::transport::{
    ApiErrorBody, BodyProblem, PageInfo, Pagination, RateHeaders, RateLimitHint, Success, Wire,
};

/// The largest page the API serves.
pub const MAX_PAGE_SIZE: u64 = 100;

/// Both spellings of the per-second rate-limit headers; the most conservative value wins.
const RATE_HEADERS: [RateHeaders; 1] = [RateHeaders {
    limit: &["x-ratelimit-limit", "x-ratelimit-limit-second"],
    remaining: &["x-ratelimit-remaining", "x-ratelimit-remaining-second"],
    reset: &["x-ratelimit-reset", "x-ratelimit-reset-second"],
    window: Duration::from_secs(1),
}];

/// Strettch Cloud's [`Wire`].
#[derive(Debug, Clone, Copy, Default)]
pub struct StrettchWire;

impl Wire for StrettchWire {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn idempotency_header(&self) -> Option<&'static str> {
        Some("idempotency-key")
    }

    fn rate_headers(&self) -> &'static [RateHeaders] {
        &RATE_HEADERS
    }

    fn pagination(&self) -> Pagination {
        Pagination::PageLimit {
            page: "page",
            limit: "limit",
            max_limit: MAX_PAGE_SIZE,
        }
    }

    fn success<T: DeserializeOwned>(
        &self,
        status: u16,
        body: &[u8],
    ) -> Result<Success<T>, BodyProblem> {
        let envelope: Envelope<T> = serde_json::from_slice(body)
            .map_err(|e| shape_problem("the success envelope {success, data, ...}", body, &e))?;
        if !envelope.success {
            return Err(BodyProblem(format!(
                "an HTTP {status} answer that says success=false{}",
                envelope
                    .message
                    .map(|m| format!(": {}", m.chars().take(200).collect::<String>()))
                    .unwrap_or_default()
            )));
        }
        Ok(Success {
            data: envelope.data,
            page: envelope.meta.map(|m| PageInfo {
                total: Some(m.total),
                ..Default::default()
            }),
            request_id: envelope.request_id,
        })
    }

    fn error(&self, _status: u16, body: &[u8]) -> Result<ApiErrorBody, BodyProblem> {
        let err: ErrorBody = serde_json::from_slice(body).map_err(|e| {
            shape_problem(
                "the error envelope {success: false, code, message}",
                body,
                &e,
            )
        })?;
        if err.success || err.code.is_empty() {
            return Err(BodyProblem(
                "not an error envelope (success or code missing)".into(),
            ));
        }
        Ok(ApiErrorBody {
            code: err.code,
            message: err.message,
            request_id: err.request_id,
            // Strettch has one limit, told by headers only.
            rate_limit: RateLimitHint::default(),
        })
    }

    fn classify(&self, status: u16, code: &str) -> ErrorClass {
        codes::classify(status, code)
    }
}
