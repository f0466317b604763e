//! Every object of a kind the operator watches, looked up by the cloud id they name or report:
//! before adopting or deleting an id, a reconcile asks which other objects claim it.
//!
//! Scanning the reflector's store for that made each adopting reconcile O(N), so a first pass
//! over N objects was quadratic (at 100,000 objects, 21 ms of CPU per reconcile). The index
//! answers with the few objects that may claim an id; the caller then judges each on the
//! store's current copy, so an index entry that is out of date can only cost a lookup, never
//! a wrong answer. It is fed by the same watch stream *before* the store, so it is never behind
//! it: every object whose latest version the watch delivered names or reports an id is listed
//! under that id by the time the store holds that version.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use parking_lot::Mutex;

/// The cloud ids an object claims (named by annotation, reported in status); a pure function
/// of the object, given by the adapter.
pub type IdsOf<K> = fn(&K) -> Vec<String>;

/// Cloud id → the objects of one watch (one namespace, or all) that name or report it.
pub struct IdIndex<K: Resource<DynamicType = ()>> {
    ids_of: IdsOf<K>,
    inner: Mutex<Inner<K>>,
}

struct Inner<K: Resource<DynamicType = ()>> {
    by_id: HashMap<String, HashSet<ObjectRef<K>>>,
    by_object: HashMap<ObjectRef<K>, Vec<String>>,
    /// During a relist: the objects it has shown so far. Those it does not show by its end
    /// are gone (their deletion happened while the watch was down).
    relisted: Option<HashSet<ObjectRef<K>>>,
}

impl<K: Resource<DynamicType = ()>> IdIndex<K> {
    pub fn new(ids_of: IdsOf<K>) -> Self {
        Self {
            ids_of,
            inner: Mutex::new(Inner {
                by_id: HashMap::new(),
                by_object: HashMap::new(),
                relisted: None,
            }),
        }
    }

    /// Take in one event of the watch; call it before the store sees the event.
    pub fn observe(&self, event: &watcher::Event<K>) {
        let mut inner = self.inner.lock();
        match event {
            watcher::Event::Apply(obj) => {
                inner.put(obj, (self.ids_of)(obj));
            }
            watcher::Event::InitApply(obj) => {
                let key = inner.put(obj, (self.ids_of)(obj));
                if let Some(seen) = inner.relisted.as_mut() {
                    seen.insert(key);
                }
            }
            watcher::Event::Delete(obj) => inner.forget(&reference(obj)),
            watcher::Event::Init => inner.relisted = Some(HashSet::new()),
            watcher::Event::InitDone => {
                if let Some(seen) = inner.relisted.take() {
                    let gone: Vec<_> = inner
                        .by_object
                        .keys()
                        .filter(|k| !seen.contains(*k))
                        .cloned()
                        .collect();
                    for key in gone {
                        inner.forget(&key);
                    }
                }
            }
        }
    }

    /// The objects that may claim `id`: every object whose latest version names or reports it,
    /// and perhaps some that no longer do.
    pub fn candidates(&self, id: &str) -> Vec<ObjectRef<K>> {
        self.inner
            .lock()
            .by_id
            .get(id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Objects indexed (for tests and the memory benchmark).
    pub fn len(&self) -> usize {
        self.inner.lock().by_object.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: Resource<DynamicType = ()>> Inner<K> {
    fn put(&mut self, obj: &K, mut ids: Vec<String>) -> ObjectRef<K> {
        let key = reference(obj);
        ids.sort_unstable();
        ids.dedup();
        if self.by_object.get(&key) != Some(&ids) {
            self.forget(&key);
            for id in &ids {
                self.by_id
                    .entry(id.clone())
                    .or_default()
                    .insert(key.clone());
            }
            if !ids.is_empty() {
                self.by_object.insert(key.clone(), ids);
            }
        }
        key
    }

    fn forget(&mut self, key: &ObjectRef<K>) {
        for id in self.by_object.remove(key).unwrap_or_default() {
            if let Some(set) = self.by_id.get_mut(&id) {
                set.remove(key);
                if set.is_empty() {
                    self.by_id.remove(&id);
                }
            }
        }
    }
}

/// The name and namespace of `obj`, without the version and uid `ObjectRef::from_obj` keeps
/// (they are not part of its identity, and would cost memory per object).
fn reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectRef<K> {
    let meta = obj.meta();
    let r = ObjectRef::new(meta.name.as_deref().unwrap_or(""));
    match meta.namespace.as_deref() {
        Some(ns) => r.within(ns),
        None => r,
    }
}

/// The objects of one kind across every watched namespace: each watch's store with its index.
pub struct Peers<K: Resource<DynamicType = ()> + 'static> {
    watches: Vec<(Store<K>, Arc<IdIndex<K>>)>,
}

impl<K: Resource<DynamicType = ()> + 'static> Clone for Peers<K> {
    fn clone(&self) -> Self {
        Self {
            watches: self.watches.clone(),
        }
    }
}

impl<K: Resource<DynamicType = ()> + 'static> Default for Peers<K> {
    fn default() -> Self {
        Self {
            watches: Vec::new(),
        }
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Peers<K> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, store: Store<K>, index: Arc<IdIndex<K>>) {
        self.watches.push((store, index));
    }

    /// The current copies of the objects that may claim `id` (check each: see [`IdIndex`]).
    pub fn claiming(&self, id: &str) -> Vec<Arc<K>> {
        self.watches
            .iter()
            .flat_map(|(store, index)| {
                index
                    .candidates(id)
                    .into_iter()
                    .filter_map(|key| store.get(&key))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::reflector;

    fn ids(cm: &ConfigMap) -> Vec<String> {
        cm.data
            .as_ref()
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default()
    }

    fn cm(name: &str, claimed: &[&str]) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            data: Some(
                claimed
                    .iter()
                    .enumerate()
                    .map(|(i, id)| (format!("k{i}"), id.to_string()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn names(index: &IdIndex<ConfigMap>, id: &str) -> Vec<String> {
        let mut n: Vec<_> = index.candidates(id).into_iter().map(|r| r.name).collect();
        n.sort();
        n
    }

    #[test]
    fn an_object_is_found_under_each_id_it_claims_and_no_other() {
        let index = IdIndex::new(ids);
        index.observe(&watcher::Event::Apply(cm("a", &["i-1", "i-2"])));
        index.observe(&watcher::Event::Apply(cm("b", &["i-2"])));
        assert_eq!(names(&index, "i-1"), ["a"]);
        assert_eq!(names(&index, "i-2"), ["a", "b"]);
        assert!(names(&index, "i-3").is_empty());
    }

    #[test]
    fn a_new_version_that_names_another_id_moves_the_object_to_it() {
        let index = IdIndex::new(ids);
        index.observe(&watcher::Event::Apply(cm("a", &["i-1"])));
        index.observe(&watcher::Event::Apply(cm("a", &["i-9"])));
        assert!(names(&index, "i-1").is_empty());
        assert_eq!(names(&index, "i-9"), ["a"]);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn a_deleted_object_claims_nothing_and_an_object_claiming_nothing_is_not_kept() {
        let index = IdIndex::new(ids);
        index.observe(&watcher::Event::Apply(cm("a", &["i-1"])));
        index.observe(&watcher::Event::Apply(cm("quiet", &[])));
        assert_eq!(index.len(), 1);
        index.observe(&watcher::Event::Delete(cm("a", &["i-1"])));
        assert!(names(&index, "i-1").is_empty());
        assert!(index.is_empty());
    }

    #[test]
    fn a_relist_forgets_the_objects_it_no_longer_shows_and_keeps_those_it_does() {
        let index = IdIndex::new(ids);
        index.observe(&watcher::Event::Apply(cm("kept", &["i-1"])));
        index.observe(&watcher::Event::Apply(cm("gone", &["i-2"])));
        index.observe(&watcher::Event::Init);
        index.observe(&watcher::Event::InitApply(cm("kept", &["i-1"])));
        // Until the relist ends, the store still shows the old objects: so does the index.
        assert_eq!(names(&index, "i-2"), ["gone"]);
        index.observe(&watcher::Event::InitDone);
        assert_eq!(names(&index, "i-1"), ["kept"]);
        assert!(names(&index, "i-2").is_empty());
    }

    #[test]
    fn peers_answer_with_the_stores_current_copy_of_each_candidate() {
        let index = Arc::new(IdIndex::new(ids));
        let (store, mut writer) = reflector::store();
        let mut peers = Peers::new();
        peers.add(store, index.clone());
        for event in [
            watcher::Event::Apply(cm("a", &["i-1"])),
            watcher::Event::Apply(cm("b", &["i-1"])),
        ] {
            index.observe(&event);
            writer.apply_watcher_event(&event);
        }
        // The index has seen a's new version, the store not yet: a is a candidate for i-2
        // only (its latest version gave i-1 up), judged by the caller on the store's copy.
        index.observe(&watcher::Event::Apply(cm("a", &["i-2"])));
        let mut found: Vec<_> = peers
            .claiming("i-1")
            .iter()
            .map(|o| o.metadata.name.clone().unwrap())
            .collect();
        found.sort();
        assert_eq!(found, ["b"]);
        assert_eq!(peers.claiming("i-2").len(), 1);
    }
}
