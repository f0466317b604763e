//! What the cluster already manages: objects of the imported kinds, of the same
//! ProviderConfig, whose `stratus.dev/external-name` names a cloud id are skipped (importing
//! them again would make two objects fight over one resource), and the names in use in the
//! target namespace are not written over. An id is unique only within its account, so an
//! object of another ProviderConfig naming the same id does not skip the resource: it is
//! pointed out instead (an operator watching both refuses the second object of one kind
//! naming one id). A resource an object created but has not recorded yet is left to it: one
//! whose owner mark (Strettch's `stratus-uid:` tag) names a live object is skipped, and while
//! an object of a kind and of the same ProviderConfig has a create in flight
//! (`stratus.dev/create-pending`, no id yet) the kind is not imported at all.

use std::collections::{HashMap, HashSet};

use kube::Api;
use kube::api::{DynamicObject, ListParams};

use super::error::ImportError;
use super::found::ImportKind;
use crate::api::common::{CREATE_PENDING, EXTERNAL_NAME};

/// One object of an imported kind, as far as the import cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub external_name: Option<String>,
    /// `spec.providerConfigRef.name` (`default` when unset, as the CRDs default it).
    pub provider_config: String,
    pub uid: String,
    /// A create was sent (or is about to be) whose resource the object has not recorded.
    pub create_pending: bool,
}

/// The objects of the imported kinds, indexed.
#[derive(Debug, Default)]
pub struct Managed {
    by_id: HashMap<(String, String), String>,
    elsewhere: HashMap<(String, String), String>,
    taken: HashMap<String, HashSet<String>>,
    owners: HashMap<(String, String), String>,
    pending: HashMap<String, Vec<String>>,
}

impl Managed {
    /// Index `objects`; `namespace` is where the manifests go, `provider_config` the
    /// ProviderConfig imported from.
    pub fn new(objects: &[Existing], namespace: &str, provider_config: &str) -> Self {
        let mut m = Managed::default();
        for o in objects {
            let at = format!("{}/{}", o.namespace, o.name);
            if !o.uid.is_empty() {
                m.owners.insert((o.kind.clone(), o.uid.clone()), at.clone());
            }
            let named = o.external_name.as_ref().is_some_and(|id| !id.is_empty());
            // Another ProviderConfig's create lands in its own account.
            if o.create_pending && !named && o.provider_config == provider_config {
                m.pending.entry(o.kind.clone()).or_default().push(at);
            }
            if let Some(id) = o.external_name.as_ref().filter(|id| !id.is_empty()) {
                let index = if o.provider_config == provider_config {
                    &mut m.by_id
                } else {
                    &mut m.elsewhere
                };
                index
                    .entry((o.kind.clone(), id.clone()))
                    .or_insert_with(|| format!("{}/{}", o.namespace, o.name));
            }
            if o.namespace == namespace {
                m.taken
                    .entry(o.kind.clone())
                    .or_default()
                    .insert(o.name.clone());
            }
        }
        m
    }

    /// `namespace/name` of the object of `kind` that manages cloud id `id`, if any.
    pub fn manager(&self, kind: &str, id: &str) -> Option<&str> {
        self.by_id
            .get(&(kind.to_string(), id.to_string()))
            .map(String::as_str)
    }

    /// `namespace/name` of an object of `kind` of another ProviderConfig naming id `id`.
    pub fn named_elsewhere(&self, kind: &str, id: &str) -> Option<&str> {
        self.elsewhere
            .get(&(kind.to_string(), id.to_string()))
            .map(String::as_str)
    }

    /// `namespace/name` of the object of `kind` whose UID is `uid` (a resource's owner mark).
    pub fn owner(&self, kind: &str, uid: &str) -> Option<&str> {
        self.owners
            .get(&(kind.to_string(), uid.to_string()))
            .map(String::as_str)
    }

    /// `namespace/name` of the objects of `kind` whose create is in flight.
    pub fn pending(&self, kind: &str) -> &[String] {
        self.pending.get(kind).map_or(&[], Vec::as_slice)
    }

    /// Names of `kind` in use in the target namespace.
    pub fn taken(&self, kind: &str) -> HashSet<String> {
        self.taken.get(kind).cloned().unwrap_or_default()
    }
}

/// The objects of `kinds`: in every namespace when the caller may list them there, else in
/// `namespace` only (then an object elsewhere that manages a resource is not seen, and the
/// caller is warned). A kind whose CRD is not installed has no objects.
pub async fn existing(
    kube: &kube::Client,
    kinds: &[ImportKind],
    namespace: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<Existing>, ImportError> {
    let mut out = Vec::new();
    for kind in kinds {
        let ar = kind.api_resource();
        let all: Api<DynamicObject> = Api::all_with(kube.clone(), &ar);
        let list = match all.list(&ListParams::default()).await {
            Ok(list) => list,
            Err(kube::Error::Api(s)) if s.code == 403 => {
                warnings.push(format!(
                    "you may not list {} in all namespaces: only those in {namespace} are checked for resources already managed",
                    kind.plural
                ));
                let here: Api<DynamicObject> = Api::namespaced_with(kube.clone(), namespace, &ar);
                here.list(&ListParams::default())
                    .await
                    .map_err(|source| ImportError::Kube {
                        what: format!("listing {} in namespace {namespace}", kind.plural),
                        source,
                    })?
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                warnings.push(format!(
                    "the {} CRD is not installed in this cluster: install the CRDs (stratus crds | kubectl apply -f -) before applying the output",
                    kind.kind
                ));
                continue;
            }
            Err(source) => {
                return Err(ImportError::Kube {
                    what: format!("listing {} in the cluster", kind.plural),
                    source,
                });
            }
        };
        out.extend(list.items.into_iter().map(|o| {
            Existing {
                kind: kind.kind.clone(),
                namespace: o.metadata.namespace.clone().unwrap_or_default(),
                name: o.metadata.name.clone().unwrap_or_default(),
                external_name: o
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(EXTERNAL_NAME).cloned()),
                provider_config: o.data["spec"]["providerConfigRef"]["name"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string(),
                uid: o.metadata.uid.clone().unwrap_or_default(),
                create_pending: o
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(CREATE_PENDING)),
            }
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: &str, ns: &str, name: &str, id: Option<&str>) -> Existing {
        Existing {
            kind: kind.into(),
            namespace: ns.into(),
            name: name.into(),
            external_name: id.map(str::to_string),
            provider_config: "prod".into(),
            uid: format!("uid-{name}"),
            create_pending: false,
        }
    }

    #[test]
    fn an_object_with_a_create_in_flight_and_no_id_holds_its_kind_and_owns_by_uid() {
        let mut busy = obj("Compute", "prod", "new", None);
        busy.create_pending = true;
        let mut done = obj("Compute", "prod", "old", Some("c-1"));
        done.create_pending = true;
        let mut elsewhere = obj("Compute", "staging", "other", None);
        elsewhere.create_pending = true;
        elsewhere.provider_config = "staging".into();
        let m = Managed::new(&[busy, done, elsewhere], "imported", "prod");
        assert_eq!(m.pending("Compute"), ["prod/new".to_string()]);
        assert!(m.pending("Domain").is_empty());
        assert_eq!(m.owner("Compute", "uid-new"), Some("prod/new"));
        assert_eq!(m.owner("Domain", "uid-new"), None);
    }

    #[test]
    fn a_resource_is_managed_by_the_object_of_its_kind_naming_its_id() {
        let m = Managed::new(
            &[
                obj("Compute", "prod", "web", Some("c-1")),
                obj("Domain", "prod", "zone", Some("c-2")),
                obj("Compute", "prod", "new", Some("")),
            ],
            "imported",
            "prod",
        );
        assert_eq!(m.manager("Compute", "c-1"), Some("prod/web"));
        assert_eq!(m.manager("Compute", "c-2"), None);
        assert_eq!(m.manager("Compute", ""), None);
    }

    #[test]
    fn an_object_of_another_provider_config_naming_the_id_does_not_manage_it() {
        let mut other = obj("Compute", "staging", "web", Some("1"));
        other.provider_config = "staging".into();
        let m = Managed::new(&[other], "imported", "prod");
        assert_eq!(m.manager("Compute", "1"), None);
        assert_eq!(m.named_elsewhere("Compute", "1"), Some("staging/web"));
    }

    #[test]
    fn names_are_taken_only_in_the_target_namespace() {
        let m = Managed::new(
            &[
                obj("Compute", "prod", "web", None),
                obj("Compute", "imported", "db", None),
            ],
            "imported",
            "prod",
        );
        assert_eq!(m.taken("Compute"), HashSet::from(["db".to_string()]));
        assert!(m.taken("Domain").is_empty());
    }
}
