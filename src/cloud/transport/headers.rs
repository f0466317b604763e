//! Reading what an answer's headers say about time and budget: `Date`, `Retry-After` and the
//! rate-limit headers a wire names. Pure functions; nothing here trusts a header to be sane.

use std::time::{Duration, SystemTime};

use reqwest::header::{DATE, HeaderMap, RETRY_AFTER};

use super::wire::RateHeaders;
use crate::cloud::throttle::{RateLimitHeaders, until_reset};

/// The longest wait a `Retry-After` is believed for (a day, the longest window of any limit).
pub const MAX_RETRY_AFTER_HEADER: Duration = Duration::from_secs(86_400);

/// A non-negative number, rounded up; anything else is `None`.
pub fn header_number(headers: &HeaderMap, name: &str) -> Option<u64> {
    let text = headers.get(name)?.to_str().ok()?.trim();
    text.parse::<u64>().ok().or_else(|| {
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.ceil() as u64)
    })
}

/// The answer's `Date`, unix seconds: the server's clock.
pub fn server_date(headers: &HeaderMap) -> Option<u64> {
    let text = headers.get(DATE)?.to_str().ok()?;
    let when = jiff::fmt::rfc2822::parse(text.trim()).ok()?;
    u64::try_from(when.timestamp().as_second()).ok()
}

/// One set of rate-limit headers: the most conservative value of each name present, and the
/// answer's `Date`. `None` when the answer carries none of them.
pub fn rate_headers(headers: &HeaderMap, names: &RateHeaders) -> Option<RateLimitHeaders> {
    let all = |names: &'static [&'static str]| {
        names
            .iter()
            .filter_map(|n| header_number(headers, n))
            .collect::<Vec<_>>()
    };
    let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    let (limit, remaining, reset) = (all(names.limit), all(names.remaining), all(names.reset));
    if limit.is_empty() && remaining.is_empty() && reset.is_empty() {
        return None;
    }
    Some(RateLimitHeaders {
        limit: limit.into_iter().min().map(clamp),
        remaining: remaining.into_iter().min().map(clamp),
        reset: reset.into_iter().max(),
        date: server_date(headers),
        window: Some(names.window),
    })
}

/// A `Retry-After` that asks for a wait: seconds, or an HTTP date read against the answer's
/// `Date` (the local clock only when there is none). Missing, unparseable, zero or negative:
/// `None`; more than [`MAX_RETRY_AFTER_HEADER`]: that.
pub fn usable_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs > 0.0)
            .then(|| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER_HEADER.as_secs_f64())));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let now = match server_date(headers).and_then(|d| i64::try_from(d).ok()) {
        Some(date) => jiff::Timestamp::from_second(date).ok()?,
        None => jiff::Timestamp::now(),
    };
    Duration::try_from(when.duration_since(now))
        .ok()
        .filter(|d| !d.is_zero())
        .map(|d| d.min(MAX_RETRY_AFTER_HEADER))
}

/// How long the API asks to wait: a usable `Retry-After`; on a 429 without one, the time until
/// the reset of a rate-limit set that says its budget is spent (`remaining: 0`; [`until_reset`]:
/// against `Date`, plausible, never zero). `None` when the answer does not say: the throttle
/// then holds for the window of the limit it knows, rather than a made-up second.
pub fn retry_after(status: u16, headers: &HeaderMap, sets: &[RateHeaders]) -> Option<Duration> {
    if let Some(wait) = usable_retry_after(headers) {
        return Some(wait);
    }
    if status != 429 {
        return None;
    }
    sets.iter()
        .filter_map(|names| rate_headers(headers, names))
        .filter(|h| h.remaining == Some(0))
        .filter_map(|h| {
            let reset = h.reset?;
            Some(until_reset(reset, h.date, SystemTime::now()))
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::transport::wire::x_ratelimit;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const PER_SECOND: RateHeaders = RateHeaders {
        limit: &["x-ratelimit-limit", "x-ratelimit-limit-second"],
        remaining: &["x-ratelimit-remaining", "x-ratelimit-remaining-second"],
        reset: &["x-ratelimit-reset", "x-ratelimit-reset-second"],
        window: Duration::from_secs(1),
    };

    #[test]
    fn the_most_conservative_value_of_each_header_variant_wins() {
        let h = headers(&[
            ("x-ratelimit-limit", "5"),
            ("x-ratelimit-limit-second", "2"),
            ("x-ratelimit-remaining", "3"),
            ("x-ratelimit-remaining-second", "0"),
            ("x-ratelimit-reset", "1700000000"),
            ("x-ratelimit-reset-second", "1700000001"),
        ]);
        let r = rate_headers(&h, &PER_SECOND).unwrap();
        assert_eq!(r.limit, Some(2));
        assert_eq!(r.remaining, Some(0));
        assert_eq!(r.reset, Some(1_700_000_001));
        assert_eq!(r.window, Some(Duration::from_secs(1)));
    }

    #[test]
    fn an_answer_without_rate_headers_reports_none_and_garbage_is_ignored() {
        assert_eq!(rate_headers(&headers(&[]), &PER_SECOND), None);
        let h = headers(&[
            ("x-ratelimit-limit", "-3"),
            ("x-ratelimit-remaining", "NaN"),
        ]);
        assert_eq!(rate_headers(&h, &PER_SECOND), None);
        let h = headers(&[("x-ratelimit-limit", "120")]);
        let minute = x_ratelimit(Duration::from_secs(60));
        assert_eq!(
            rate_headers(&h, &minute).unwrap().window,
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn retry_after_is_seconds_or_a_date_read_against_the_answers_date_and_bounded() {
        let h = headers(&[("retry-after", "2.5")]);
        assert_eq!(usable_retry_after(&h), Some(Duration::from_millis(2500)));
        for v in ["0", "-1", "soon", "NaN", "inf"] {
            assert_eq!(
                usable_retry_after(&headers(&[("retry-after", v)])),
                None,
                "{v}"
            );
        }
        let h = headers(&[("retry-after", "99999999")]);
        assert_eq!(usable_retry_after(&h), Some(MAX_RETRY_AFTER_HEADER));
        // A date 30 s after the server's Date, whatever the local clock says.
        let h = headers(&[
            ("date", "Wed, 01 Jan 2020 00:00:00 GMT"),
            ("retry-after", "Wed, 01 Jan 2020 00:00:30 GMT"),
        ]);
        assert_eq!(usable_retry_after(&h), Some(Duration::from_secs(30)));
    }

    #[test]
    fn a_429_without_retry_after_waits_for_the_reset_of_a_spent_budget_or_says_nothing() {
        let h = headers(&[
            ("date", "Wed, 01 Jan 2020 00:00:00 GMT"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1577836803"),
        ]);
        assert_eq!(
            retry_after(429, &h, &[PER_SECOND]),
            Some(Duration::from_secs(3))
        );
        assert_eq!(retry_after(503, &h, &[PER_SECOND]), None);
        assert_eq!(
            retry_after(429, &headers(&[]), &[PER_SECOND]),
            None,
            "nothing made up: the throttle holds for the window it knows"
        );
        let budget_left = headers(&[
            ("x-ratelimit-remaining", "5"),
            ("x-ratelimit-reset", "1577836803"),
        ]);
        assert_eq!(retry_after(429, &budget_left, &[PER_SECOND]), None);
    }
}
