//! Strettch Cloud: the wire model, the typed client and the local sandbox.

pub mod client;
pub mod cloud;
pub mod compute;
pub mod model;
pub mod sim;
