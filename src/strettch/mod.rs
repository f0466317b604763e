//! Strettch Cloud: the wire model, the typed client and the local sandbox.

pub mod model;
