//! CloudAPI: one provider, two dialects (wire profiles) of the same kind of platform —
//! `cloudapi` (api.cloudapi.dev, seeds 001 and 003) and `cloudplatform` (Cloud API Platform,
//! seed 002); the contract is `reference/cloudapi/README.md`.
//!
//! For now only the sandbox is here ([`sim`], `stratus sim --cloud cloudapi`), so the
//! provider's client and adapters can be written and tested against a real HTTP server. The
//! client, its wire model and the adapters (`Project`, `Release`, `ApiKey`, `Token`) come later
//! and must not share the sandbox's types.

pub mod sim;
