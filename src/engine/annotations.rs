//! The `stratus.dev/*` annotations the engine reads, parsed as the untrusted input they are:
//! anyone who can edit an object can write any string into them, so every number is parsed with
//! checked conversions and bounded, and a bad value is a clear `InvalidSpec` for that object
//! alone — never a panic that would stop the controller for every object of the kind.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use super::Invalid;
use crate::api::common::{CREATE_ATTEMPT, CREATE_PENDING, POLL_INTERVAL};

/// The shortest `stratus.dev/poll-interval`: faster polling of one object would spend the
/// key's budget that every other object shares.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// The longest `stratus.dev/poll-interval`: a day; drift older than that is not worth a knob.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// The highest `stratus.dev/create-attempt` the engine accepts: far more definitive rejections
/// than any object will see, and far from overflowing when the engine adds one.
pub const MAX_CREATE_ATTEMPT: u32 = 1_000_000;

/// Annotation with the create request recorded before it was sent (JSON).
pub const CREATE_REQUEST: &str = "stratus.dev/create-request";

/// The largest create request the engine records in [`CREATE_REQUEST`]. All of an object's
/// annotations share 256 KiB, and `kubectl apply` keeps a copy of the whole object in one of
/// them: half is the most a request may take and still leave room for that copy.
pub const MAX_RECORDED_REQUEST: usize = 128 * 1024;

/// The create request as recorded in [`CREATE_REQUEST`], or why it cannot be.
pub fn record_request<R: serde::Serialize>(request: &R) -> Result<String, Invalid> {
    let recorded = serde_json::to_string(request).map_err(|e| {
        Invalid::new(
            "InvalidSpec",
            format!("the create request cannot be recorded: {e}"),
        )
    })?;
    if recorded.len() > MAX_RECORDED_REQUEST {
        return Err(Invalid::new(
            "InvalidSpec",
            format!(
                "the create request is {} bytes; the operator records it in the {CREATE_REQUEST} annotation before sending it (so a crash can never duplicate it), which holds at most {MAX_RECORDED_REQUEST} bytes: make the spec smaller (user data, keys, tags)",
                recorded.len()
            ),
        ));
    }
    Ok(recorded)
}

/// Parse a duration such as `30s`, `5m`, `1h`, `1500ms` or `90` (seconds). Never panics: values
/// that do not fit a `Duration` are an error.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 30s, 10m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?}: use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration {s:?}: out of range"))
}

/// What the engine's annotations say, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// `stratus.dev/poll-interval`, within [`MIN_POLL_INTERVAL`]..=[`MAX_POLL_INTERVAL`].
    pub poll_interval: Option<Duration>,
    /// `stratus.dev/create-attempt`: definitive create rejections so far.
    pub create_attempt: u32,
    /// `stratus.dev/create-pending`: when the pending create started.
    pub create_pending: Option<Timestamp>,
}

fn get<'a>(annotations: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    annotations
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// Check the annotations of one object.
pub fn parse(annotations: &BTreeMap<String, String>) -> Result<Parsed, Invalid> {
    let invalid = |message: String| Invalid::new("InvalidSpec", message);
    let poll_interval = match get(annotations, POLL_INTERVAL) {
        None => None,
        Some(v) => {
            let d = parse_duration(v).map_err(|e| {
                invalid(format!(
                    "annotation {POLL_INTERVAL}: {e}; use a duration between 5s and 24h, such as 30s or 10m"
                ))
            })?;
            if !(MIN_POLL_INTERVAL..=MAX_POLL_INTERVAL).contains(&d) {
                return Err(invalid(format!(
                    "annotation {POLL_INTERVAL}: {v:?} is outside the allowed range of 5s to 24h; pick a value in it, or remove the annotation to use the operator's resync interval"
                )));
            }
            Some(d)
        }
    };
    let create_attempt = match get(annotations, CREATE_ATTEMPT) {
        None => 0,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= MAX_CREATE_ATTEMPT)
            .ok_or_else(|| {
                invalid(format!(
                    "annotation {CREATE_ATTEMPT}: {v:?} is not a count the operator wrote (0 to {MAX_CREATE_ATTEMPT}); it is the operator's own bookkeeping: remove it"
                ))
            })?,
    };
    let create_pending = match get(annotations, CREATE_PENDING) {
        None => None,
        Some(v) => Some(v.parse::<Timestamp>().map_err(|_| {
            invalid(format!(
                "annotation {CREATE_PENDING}: {v:?} is not a timestamp the operator wrote; it marks a create that may be in flight: restore it, or remove it only if you are sure no cloud resource was created"
            ))
        })?),
    };
    Ok(Parsed {
        poll_interval,
        create_attempt,
        create_pending,
    })
}

/// The attempt after `attempt`, for the Idempotency-Key of the next create (never overflows:
/// [`parse`] bounds the recorded value).
pub fn next_attempt(attempt: u32) -> u32 {
    attempt.saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn durations_that_do_not_fit_are_errors_not_panics() {
        assert!(parse_duration("100000000000000000000s").is_err());
        assert!(parse_duration("1e400").is_err());
        assert!(parse_duration("99999999999999999999999h").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("NaNs").is_err());
        assert!(parse_duration("5x").is_err());
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn a_poll_interval_outside_5s_to_24h_is_an_invalid_spec() {
        for bad in ["100000000000000000000s", "1s", "4999ms", "25h", "0", "soon"] {
            let err = parse(&of(&[(POLL_INTERVAL, bad)])).unwrap_err();
            assert_eq!(err.reason, "InvalidSpec", "{bad}");
            assert!(err.message.contains(POLL_INTERVAL), "{}", err.message);
        }
        for (ok, want) in [("5s", 5), ("30s", 30), ("24h", 86_400)] {
            let p = parse(&of(&[(POLL_INTERVAL, ok)])).unwrap();
            assert_eq!(p.poll_interval, Some(Duration::from_secs(want)));
        }
        assert_eq!(
            parse(&of(&[(POLL_INTERVAL, "")])).unwrap().poll_interval,
            None
        );
    }

    #[test]
    fn a_create_attempt_that_would_overflow_is_refused() {
        assert!(parse(&of(&[(CREATE_ATTEMPT, "4294967295")])).is_err());
        assert!(parse(&of(&[(CREATE_ATTEMPT, "-1")])).is_err());
        assert!(parse(&of(&[(CREATE_ATTEMPT, "two")])).is_err());
        let p = parse(&of(&[(CREATE_ATTEMPT, "3")])).unwrap();
        assert_eq!(p.create_attempt, 3);
        assert_eq!(next_attempt(u32::MAX), u32::MAX);
    }

    #[test]
    fn a_create_pending_marker_is_a_timestamp() {
        let p = parse(&of(&[(CREATE_PENDING, "2026-12-02T10:00:00Z")])).unwrap();
        assert_eq!(
            p.create_pending,
            Some("2026-12-02T10:00:00Z".parse().unwrap())
        );
        assert!(parse(&of(&[(CREATE_PENDING, "yesterday")])).is_err());
    }

    #[test]
    fn a_create_request_too_large_to_record_is_an_invalid_spec_naming_its_size() {
        let small = record_request(&serde_json::json!({"hostName": "web-1"})).unwrap();
        assert_eq!(small, r#"{"hostName":"web-1"}"#);
        let huge = "x".repeat(MAX_RECORDED_REQUEST);
        let err = record_request(&serde_json::json!({ "userData": huge })).unwrap_err();
        assert_eq!(err.reason, "InvalidSpec");
        assert!(err.message.contains(CREATE_REQUEST), "{}", err.message);
        assert!(
            err.message
                .contains(&format!("{} bytes", MAX_RECORDED_REQUEST + 15)),
            "{}",
            err.message
        );
    }
}
