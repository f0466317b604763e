//! stratus: a Kubernetes operator that manages cloud resources declared as custom resources.

pub mod api;
pub mod cli;
pub mod cloud;
pub mod engine;
pub mod import;
pub mod leader_election;
pub mod metrics;
pub mod operator;
pub mod providers;
pub mod sim;
pub mod telemetry;
pub mod tree;
