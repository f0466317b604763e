//! What a provider's importer hands the provider-neutral core: the kinds it can import, and one
//! [`Found`] record per cloud resource, with the manifest's `spec.forProvider` already mapped
//! the way the provider's adapter reads it (so the adopted object is in sync from its first
//! reconcile). The core filters, names, links and renders them without knowing any provider.

use std::borrow::Cow;

use kube::discovery::ApiResource;

use super::error::ImportError;
use crate::api::provider_config::{Provider, ProviderConfigSpec};
use crate::cloud::ApiKey;

/// One kind an importer can write manifests for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportKind {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    /// Whether the kind's resources live in a region (`--region` filters only those).
    pub regional: bool,
}

impl ImportKind {
    /// The kind of CRD type `K`.
    pub fn of<K: kube::Resource<DynamicType = ()>>(regional: bool) -> Self {
        let s = |c: Cow<'_, str>| c.into_owned();
        Self {
            group: s(K::group(&())),
            version: s(K::version(&())),
            kind: s(K::kind(&())),
            plural: s(K::plural(&())),
            regional,
        }
    }

    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// For listing the kind's objects in the cluster.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: self.api_version(),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        }
    }
}

/// A field of the manifest pointing at another imported resource. The provider writes the id
/// form (`id_field: id`); the core replaces it with `ref_field: {name}` when the resource it
/// names is in the same output, so the objects stay linked the way a user would write them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub kind: String,
    pub id: String,
    /// E.g. `domainRef`.
    pub ref_field: &'static str,
    /// E.g. `domainId`.
    pub id_field: &'static str,
}

/// A required field the cloud does not report: the manifest holds a marked placeholder, and
/// the user is told on stderr what to put there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// The field, from `spec.forProvider` (e.g. `publicKeys`).
    pub field: String,
    /// What the user must do about it.
    pub why: String,
}

/// The text every placeholder starts with, so `grep REPLACE-ME` finds them all.
pub const PLACEHOLDER: &str = "REPLACE-ME";

/// One resource the cloud reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub kind: String,
    /// What the `stratus.dev/external-name` annotation gets: the id the adapter observes by.
    pub external_id: String,
    /// The name the cloud shows (what `--name` matches).
    pub cloud_name: String,
    /// What the object's name is derived from (usually the cloud name).
    pub name_hint: String,
    pub region: Option<String>,
    /// `spec.forProvider`, serialized from the kind's typed parameters.
    pub for_provider: serde_json::Value,
    pub references: Vec<Reference>,
    pub placeholders: Vec<Placeholder>,
    /// Other things the user should know about this resource (printed on stderr).
    pub notes: Vec<String>,
    /// The UID of the object that created it, where the cloud keeps such a mark (Strettch's
    /// `stratus-uid:` tag): a live object with that UID owns it, recorded or not.
    pub owner_uid: Option<String>,
}

impl Found {
    /// A record of `kind` whose object name derives from its cloud name.
    pub fn new(
        kind: &str,
        external_id: &str,
        cloud_name: &str,
        for_provider: impl serde::Serialize,
    ) -> Self {
        Self {
            kind: kind.to_string(),
            external_id: external_id.to_string(),
            cloud_name: cloud_name.to_string(),
            name_hint: cloud_name.to_string(),
            region: None,
            // Typed CRD parameters always serialize; a failure would be a bug in the type.
            for_provider: serde_json::to_value(for_provider)
                .expect("CRD parameters serialize to JSON"),
            references: Vec::new(),
            placeholders: Vec::new(),
            notes: Vec::new(),
            owner_uid: None,
        }
    }
}

/// How to reach the account: the ProviderConfig as the operator reads it. The importer builds
/// its cloud handle with the provider's `Connect::connect`, so the same checks, endpoint and
/// throttle `Policy` (limits and budget group) apply as in the operator.
pub struct Connection {
    pub config_name: String,
    pub spec: ProviderConfigSpec,
    pub key: ApiKey,
}

/// What the user asked for that changes what a provider reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListOptions {
    /// `--manage`: the objects will be allowed to change the resources.
    pub manage: bool,
}

/// Everything a provider found, and what it could not list but went on without.
#[derive(Debug, Default)]
pub struct Listing {
    pub found: Vec<Found>,
    pub warnings: Vec<String>,
}

/// A provider's side of `stratus import`: implemented in `src/providers/<p>/import.rs` and
/// registered in `providers::importers()`. It calls list endpoints only, never a write.
#[async_trait::async_trait]
pub trait Importer: Send + Sync {
    /// The provider whose ProviderConfigs it serves.
    fn provider(&self) -> Provider;
    /// The kinds it imports, dependencies first (the output's order).
    fn kinds(&self) -> Vec<ImportKind>;
    /// Kinds of the provider it does not import, and why (for `--kind`'s error message).
    fn not_importable(&self) -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }
    /// What the account holds of `want` (a subset of [`Importer::kinds`]).
    async fn list(
        &self,
        connection: Connection,
        want: &[ImportKind],
        options: ListOptions,
    ) -> Result<Listing, ImportError>;
}

/// Whether `want` holds kind `kind`.
pub fn wants(want: &[ImportKind], kind: &str) -> bool {
    want.iter().any(|k| k.kind == kind)
}
