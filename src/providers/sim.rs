//! `stratus sim`: which cloud's sandbox to run (`--cloud`, `--dialect`) and the flags of all of
//! them. The framework (`crate::sim`) knows no cloud; this is where the sandboxes meet it.
//!
//! A new cloud's sandbox adds its value to [`SimCloud`], its flags (a `clap::Args` struct with
//! its own help heading) to [`SimArgs`], and its arm to [`run`].

use clap::{Args, ValueEnum};

use super::{strettch, vertra};
use crate::sim::CommonArgs;

/// The clouds `stratus sim` knows.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimCloud {
    /// Strettch Cloud (`/api/v1`).
    Strettch,
    /// Vertra Cloud (`/v1`).
    Vertra,
    /// CloudAPI, in one of its dialects (`--dialect`).
    Cloudapi,
}

/// CloudAPI's dialects.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Cloudapi,
    Cloudplatform,
}

/// `stratus sim` flags. Every flag also reads a `STRATUS_SIM_*` environment variable.
#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// The cloud whose API the sandbox imitates.
    #[arg(long, env = "STRATUS_SIM_CLOUD", value_enum, default_value_t = SimCloud::Strettch)]
    pub cloud: SimCloud,

    /// The dialect of CloudAPI to speak; required with `--cloud cloudapi`, refused with any
    /// other cloud.
    #[arg(
        long,
        env = "STRATUS_SIM_DIALECT",
        value_enum,
        required_if_eq("cloud", "cloudapi")
    )]
    pub dialect: Option<Dialect>,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub strettch: strettch::sim::StrettchArgs,

    #[command(flatten)]
    pub vertra: vertra::sim::VertraArgs,
}

impl SimArgs {
    /// The rule clap cannot express: a dialect only with the cloud that has dialects. The
    /// message is a usage error's.
    pub fn check(&self) -> Result<(), String> {
        match (self.cloud, self.dialect) {
            (SimCloud::Cloudapi, _) | (_, None) => Ok(()),
            (cloud, Some(_)) => Err(format!(
                "--dialect (STRATUS_SIM_DIALECT) is only for --cloud cloudapi, not --cloud {}; \
                 drop it or pass --cloud cloudapi",
                name(cloud)
            )),
        }
    }

    /// Why this build cannot run the sandbox asked for, if it cannot: one line for the user.
    pub fn unavailable(&self) -> Option<String> {
        let (cloud, what) = match self.cloud {
            SimCloud::Strettch | SimCloud::Vertra => return None,
            SimCloud::Cloudapi => (
                "CloudAPI",
                match self.dialect {
                    Some(d) => format!("--cloud cloudapi --dialect {}", name(d)),
                    None => "--cloud cloudapi".to_string(),
                },
            ),
        };
        Some(format!(
            "this build of stratus has no {cloud} sandbox yet ({what}); \
             only --cloud strettch and --cloud vertra are available"
        ))
    }
}

/// A value as it is written on the command line.
fn name(v: impl ValueEnum) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// Runs the sandbox `args` ask for until Ctrl-C or SIGTERM. Check [`SimArgs::unavailable`]
/// first to exit with a usage status; here it is an error.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    match args.cloud {
        SimCloud::Strettch => strettch::sim::run(&args.common, &args.strettch).await,
        SimCloud::Vertra => vertra::sim::run(&args.common, &args.vertra).await,
        SimCloud::Cloudapi => {
            anyhow::bail!("{}", args.unavailable().unwrap_or_default())
        }
    }
}
