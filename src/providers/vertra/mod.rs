//! Vertra Cloud: hosted applications and managed databases (seed `004`, API reference
//! `../shared/reference/vertra/api-current.md`). Its wire model and wire description; the
//! typed client, adapters and sandbox follow.

pub mod model;
pub mod wire;

/// The provider's name in ProviderConfigs, controller names and metrics.
pub const PROVIDER: &str = "vertra";
