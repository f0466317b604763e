//! Strettch Cloud: its CRD types, the wire model, the typed client, the adapters and the local
//! sandbox.

pub mod api;
pub mod client;
pub mod cloud;
pub mod compute;
pub mod dns_record;
pub mod domain;
pub mod import;
pub mod model;
pub mod sim;
pub mod wire;

use crate::engine::registry::{Kind, ManagedKind};

/// The provider's name in ProviderConfigs, controller names and metrics.
pub const PROVIDER: &str = "strettch";

/// Strettch's kinds, in the order their CRDs are installed.
pub fn kinds() -> Vec<Box<dyn ManagedKind>> {
    vec![
        Box::new(Kind::new(|_| compute::ComputeAdapter)),
        Box::new(Kind::new(|rt| {
            domain::DomainAdapter::new(rt.client.clone(), rt.namespaces.clone())
        })),
        Box::new(
            Kind::new(|rt| {
                dns_record::DnsRecordAdapter::new(rt.client.clone(), rt.namespaces.clone())
            })
            .with_watches(dns_record::watch_dependencies),
        ),
    ]
}
