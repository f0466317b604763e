//! Strettch Cloud: the wire model, the typed client and the local sandbox.

pub mod client;
pub mod cloud;
pub mod compute;
pub mod dns_record;
pub mod domain;
pub mod model;
pub mod sim;
