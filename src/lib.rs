//! stratus: a Kubernetes operator that manages cloud resources declared as custom resources.

pub mod cloud;
pub mod metrics;
pub mod strettch;
