//! The flags every sandbox takes, whatever the cloud, and the value parsers clouds use for their
//! own flags. Each flag also reads a `STRATUS_SIM_*` environment variable.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::faults::Faults;
use super::keys::{cleaned, redacted};

/// The longest delay or TTL the flags accept (ten years), so durations never overflow.
pub const MAX_SECONDS: f64 = 315_360_000.0;

/// Parses a number of seconds from 0 to [`MAX_SECONDS`], fractions allowed (`0.2`).
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !v.is_finite() || !(0.0..=MAX_SECONDS).contains(&v) {
        return Err(format!("seconds must be from 0 to {MAX_SECONDS}; got {s}"));
    }
    Ok(v)
}

/// Parses a fraction from 0.0 to 1.0.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if !v.is_finite() || !(0.0..=1.0).contains(&v) {
        return Err(format!("a rate must be from 0.0 to 1.0; got {s}"));
    }
    Ok(v)
}

/// Seconds (as [`parse_seconds`] accepts them) as a duration.
pub fn secs(v: f64) -> Duration {
    Duration::try_from_secs_f64(v.clamp(0.0, MAX_SECONDS)).unwrap_or(Duration::ZERO)
}

/// The flags of `stratus sim` that every cloud's sandbox takes.
#[derive(clap::Args, Clone)]
#[command(next_help_heading = "Every sandbox")]
pub struct CommonArgs {
    /// Address to listen on.
    #[arg(long, env = "STRATUS_SIM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// An API key the sandbox accepts (repeatable; the env variable takes a comma-separated
    /// list). All keys belong to one account and see the same resources.
    #[arg(
        long = "api-key",
        value_name = "KEY",
        env = "STRATUS_SIM_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// Keep the sandbox's resources in this JSON file across restarts.
    #[arg(long, env = "STRATUS_SIM_STATE_FILE", value_name = "PATH")]
    pub state_file: Option<PathBuf>,

    /// Fraction (0..1) of authenticated requests answered 500 without applying anything.
    #[arg(long, env = "STRATUS_SIM_ERROR_RATE", default_value = "0", value_parser = parse_rate)]
    pub error_rate: f64,

    /// Milliseconds added to every API request.
    #[arg(long, env = "STRATUS_SIM_LATENCY_MS", default_value_t = 0)]
    pub latency_ms: u64,

    /// Fraction (0..1) of GET requests answered 200 with a body that is not JSON.
    #[arg(long, env = "STRATUS_SIM_MALFORMED_RATE", default_value = "0", value_parser = parse_rate)]
    pub malformed_rate: f64,

    /// Fraction (0..1) of POST/PUT/PATCH/DELETE requests applied and then answered by closing
    /// the connection without a response.
    #[arg(
        long,
        env = "STRATUS_SIM_DROP_AFTER_WRITE_RATE",
        default_value = "0",
        value_parser = parse_rate
    )]
    pub drop_after_write_rate: f64,
}

impl CommonArgs {
    /// The keys given, trimmed, empty ones dropped.
    pub fn api_keys(&self) -> Vec<String> {
        cleaned(&self.api_keys)
    }

    /// The faults the flags ask for.
    pub fn faults(&self) -> Faults {
        Faults {
            error_rate: self.error_rate,
            latency_ms: self.latency_ms,
            malformed_rate: self.malformed_rate,
            drop_after_write_rate: self.drop_after_write_rate,
        }
    }
}

impl fmt::Debug for CommonArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommonArgs")
            .field("listen", &self.listen)
            .field("api_keys", &redacted(&self.api_keys))
            .field("state_file", &self.state_file)
            .field("error_rate", &self.error_rate)
            .field("latency_ms", &self.latency_ms)
            .field("malformed_rate", &self.malformed_rate)
            .field("drop_after_write_rate", &self.drop_after_write_rate)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    #[test]
    fn common_flags_parse_with_defaults() {
        let cli = Cli::try_parse_from(["x", "--api-key", " a ", "--api-key", "b"]).unwrap();
        let c = &cli.common;
        assert_eq!(c.api_keys(), vec!["a", "b"]);
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.faults(), Faults::default());
        assert_eq!(c.state_file, None);

        let cli = Cli::try_parse_from([
            "x",
            "--error-rate",
            "0.5",
            "--latency-ms",
            "7",
            "--malformed-rate",
            "0.25",
            "--drop-after-write-rate",
            "1",
            "--state-file",
            "/tmp/s.json",
        ])
        .unwrap();
        let f = cli.common.faults();
        assert_eq!(
            (
                f.error_rate,
                f.latency_ms,
                f.malformed_rate,
                f.drop_after_write_rate
            ),
            (0.5, 7, 0.25, 1.0)
        );
        assert_eq!(cli.common.state_file, Some(PathBuf::from("/tmp/s.json")));
    }

    #[test]
    fn rates_outside_zero_to_one_are_refused() {
        for bad in ["1.5", "-0.1", "NaN", "x"] {
            assert!(
                Cli::try_parse_from(["x", "--error-rate", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn seconds_are_finite_and_within_ten_years() {
        assert_eq!(
            parse_seconds("0.25").map(secs),
            Ok(Duration::from_millis(250))
        );
        for bad in ["-1", "inf", "NaN", "315360001", "soon"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_keys() {
        let cli = Cli::try_parse_from(["x", "--api-key", "super-secret-key"]).unwrap();
        let shown = format!("{:?}", cli.common);
        assert!(!shown.contains("super-secret"), "{shown}");
    }
}
