//! `stratus sim`: which cloud's sandbox to run (`--cloud`, `--dialect`) and the flags of all of
//! them. The framework (`crate::sim`) knows no cloud; this is where the sandboxes meet it.
//!
//! A new cloud's sandbox adds its value to [`SimCloud`], its flags (a `clap::Args` struct with
//! its own help heading) to [`SimArgs`], and its arm to [`run`].

use clap::{Args, ValueEnum};

use super::{cloudapi, strettch, vertra};
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

    #[command(flatten)]
    pub cloudapi: cloudapi::sim::CloudApiArgs,
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
}

/// A value as it is written on the command line.
fn name(v: impl ValueEnum) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

impl From<Dialect> for cloudapi::sim::Dialect {
    fn from(d: Dialect) -> Self {
        match d {
            Dialect::Cloudapi => cloudapi::sim::Dialect::Cloudapi,
            Dialect::Cloudplatform => cloudapi::sim::Dialect::Cloudplatform,
        }
    }
}

/// Runs the sandbox `args` ask for until Ctrl-C or SIGTERM.
pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    match args.cloud {
        SimCloud::Strettch => strettch::sim::run(&args.common, &args.strettch).await,
        SimCloud::Vertra => vertra::sim::run(&args.common, &args.vertra).await,
        SimCloud::Cloudapi => {
            // clap requires --dialect with --cloud cloudapi.
            let dialect = args.dialect.unwrap_or(Dialect::Cloudapi).into();
            cloudapi::sim::run(&args.common, &args.cloudapi, dialect).await
        }
    }
}
