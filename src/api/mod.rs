//! The custom resources stratus serves, one file per kind.

pub mod common;
pub mod compute;
pub mod dns_record;
pub mod domain;
pub mod provider_config;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use compute::Compute;
pub use dns_record::DnsRecord;
pub use domain::Domain;
pub use provider_config::ProviderConfig;

/// Every CRD, in the order they should be installed.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        ProviderConfig::crd(),
        Compute::crd(),
        Domain::crd(),
        DnsRecord::crd(),
    ]
}

/// The CRDs as one multi-document YAML stream (what `stratus crds` prints and `crds/` holds).
pub fn crds_yaml() -> String {
    crds()
        .iter()
        .map(|crd| {
            format!(
                "---\n{}",
                serde_yaml::to_string(crd).expect("CRDs serialise")
            )
        })
        .collect()
}
