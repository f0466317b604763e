//! The clouds stratus manages. Each provider owns its CRD types (`api/`), wire model, typed
//! client, adapters and sandbox, and lists its kinds once; nothing in the engine,
//! `src/cloud/`, `src/sim/` or `src/import/` imports a provider — this module is where the
//! operator (and `stratus sim`, in [`sim`], and `stratus import`, in [`importers`]) meets them.

pub mod cloudapi;
pub mod sim;
pub mod strettch;
pub mod vertra;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::api::ProviderConfig;
use crate::engine::registry::ManagedKind;

/// Every kind of every provider, in the order their CRDs are installed.
pub fn kinds() -> Vec<Box<dyn ManagedKind>> {
    let mut kinds = strettch::kinds();
    kinds.extend(vertra::kinds());
    kinds.extend(cloudapi::kinds());
    kinds
}

/// Every provider's side of `stratus import`, one per provider.
pub fn importers() -> Vec<Box<dyn crate::import::Importer>> {
    vec![
        Box::new(strettch::import::StrettchImporter),
        Box::new(vertra::import::VertraImporter),
        Box::new(cloudapi::import::CloudApiImporter),
    ]
}

/// Every CRD the operator serves, in install order: ProviderConfig, then each kind.
pub fn crds() -> Vec<CustomResourceDefinition> {
    std::iter::once(ProviderConfig::crd())
        .chain(kinds().iter().map(|k| k.crd()))
        .collect()
}

/// [`crds`] as one multi-document YAML stream (what `stratus crds` prints).
pub fn crds_yaml() -> String {
    crate::api::crds_yaml(&crds())
}
