//! Parts of the cloud sandboxes that do not depend on any one cloud (Strettch's is
//! `crate::providers::strettch::sim`).

pub mod rate_limit;
