//! Vertra Cloud: hosted applications and managed databases (seed `004`, API reference
//! `../shared/reference/vertra/api-current.md`). Its wire model, wire description and typed
//! client; the adapters and sandbox follow.

pub mod api;
pub mod client;
pub mod cloud;
pub mod code;
pub mod database;
pub mod model;
pub mod sim;
pub mod wire;
pub mod workspace;

/// The provider's name in ProviderConfigs, controller names and metrics.
pub const PROVIDER: &str = "vertra";
