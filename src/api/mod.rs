//! The provider-neutral custom resource parts: the managed spec and status fields every kind
//! shares (`common`), and ProviderConfig. Each provider's kinds live with the provider
//! (`crate::providers::<cloud>::api`).

pub mod common;
pub mod provider_config;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::{Message, Rule};

pub use provider_config::ProviderConfig;

/// CRDs as one multi-document YAML stream (what `stratus crds` prints and `crds/` holds).
pub fn crds_yaml(crds: &[CustomResourceDefinition]) -> String {
    crds.iter()
        .map(|crd| {
            format!(
                "---\n{}",
                serde_yaml::to_string(crd).expect("CRDs serialise")
            )
        })
        .collect()
}

/// A root-level CEL transition rule: `same` (an expression over `self` and `oldSelf`, the whole
/// object) must hold once the cloud resource exists, i.e. once the old object's
/// `status.atProvider.id` is set. Before that nothing was created from the field, so a typo
/// that left the object Stalled (NotOffered, InvalidSpec, ...) can still be corrected in place.
/// It sits at the root because a rule on `spec` cannot see `status`.
pub fn immutable_once_created(same: &str, message: &str) -> Rule {
    Rule::new(format!(
        "!has(oldSelf.status) || !has(oldSelf.status.atProvider) || !has(oldSelf.status.atProvider.id) || ({same})"
    ))
    .message(Message::Message(message.into()))
}

/// [`immutable_once_created`] for `spec.forProvider.<field>`.
pub fn field_immutable_once_created(field: &str, message: &str) -> Rule {
    immutable_once_created(
        &format!("self.spec.forProvider.{field} == oldSelf.spec.forProvider.{field}"),
        message,
    )
}
