//! Injected faults: random 500s, added latency, non-JSON bodies, and connections dropped after a
//! write was applied. The gate ([`super::gate`]) applies them to every cloud's API alike; the
//! connection drop itself is [`super::kill_switch`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Injected faults; can be changed while running (`SimHandle::set_faults`, `POST /_sim/faults`).
/// Missing JSON fields default to 0.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Faults {
    /// Fraction of authenticated requests answered 500 INTERNAL_SERVER_ERROR, nothing applied.
    pub error_rate: f64,
    /// Milliseconds added to every API request.
    pub latency_ms: u64,
    /// Fraction of GET requests answered 200 with a body that is not JSON.
    pub malformed_rate: f64,
    /// Fraction of POST/PUT/PATCH/DELETE requests applied, then dropped without an answer.
    pub drop_after_write_rate: f64,
}

impl Faults {
    /// Checks that the rates are within 0..=1.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("errorRate", self.error_rate),
            ("malformedRate", self.malformed_rate),
            ("dropAfterWriteRate", self.drop_after_write_rate),
        ] {
            if !v.is_finite() || !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be from 0.0 to 1.0; got {v}"));
            }
        }
        Ok(())
    }

    /// These faults with every rate forced into 0..=1 (NaN and infinities become 0).
    pub fn clamped(mut self) -> Self {
        for v in [
            &mut self.error_rate,
            &mut self.malformed_rate,
            &mut self.drop_after_write_rate,
        ] {
            *v = if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                0.0
            };
        }
        self
    }

    /// The latency before the request is handled and after. It is split like a network's two
    /// directions: half of it passes after a write was applied, the window in which a lost
    /// answer or a crash hurts most.
    pub fn latency_halves(&self) -> (Duration, Duration) {
        let before = self.latency_ms / 2;
        (
            Duration::from_millis(before),
            Duration::from_millis(self.latency_ms - before),
        )
    }
}

/// True with probability `p` (`p` ≥ 1 always, `p` ≤ 0 or NaN never).
pub fn roll(p: f64) -> bool {
    if p.is_nan() || p <= 0.0 {
        return false;
    }
    p >= 1.0 || rand::random::<f64>() < p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roll_never_fires_at_zero_or_nan_and_always_at_one_or_more() {
        assert!(!roll(0.0));
        assert!(!roll(-1.0));
        assert!(!roll(f64::NAN));
        assert!(roll(1.0));
        assert!(roll(2.0));
    }

    #[test]
    fn faults_json_is_camel_case_and_partial() {
        let f: Faults = serde_json::from_str(r#"{"errorRate": 0.5}"#).unwrap();
        assert_eq!(f.error_rate, 0.5);
        assert_eq!(f.latency_ms, 0);
        let v = serde_json::to_value(Faults::default()).unwrap();
        assert!(v.get("dropAfterWriteRate").is_some());
        assert!(
            Faults {
                error_rate: 2.0,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn clamping_forces_rates_into_range() {
        let f = Faults {
            error_rate: 2.0,
            malformed_rate: f64::NAN,
            drop_after_write_rate: -1.0,
            latency_ms: 5,
        }
        .clamped();
        assert_eq!(
            (f.error_rate, f.malformed_rate, f.drop_after_write_rate),
            (1.0, 0.0, 0.0)
        );
        assert!(f.validate().is_ok());
    }

    #[test]
    fn an_odd_latency_puts_the_larger_half_after_the_handler() {
        let f = Faults {
            latency_ms: 7,
            ..Default::default()
        };
        assert_eq!(
            f.latency_halves(),
            (Duration::from_millis(3), Duration::from_millis(4))
        );
    }
}
