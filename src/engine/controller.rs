//! Wiring an adapter into a kube-runtime Controller: a watch filtered to changes that matter
//! (spec generation, stratus annotations, deletion, finalizers — not our own status writes),
//! bounded concurrency, and the generic reconciler.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use kube::Api;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tracing::debug;

use super::Adapter;
use super::peers::IdIndex;
use super::reconciler::{self, Context, relevant_annotations};
use crate::api::common::EXTERNAL_NAME;

/// Hash of what should trigger a reconcile.
pub fn relevant_change<K: Resource>(obj: &K) -> Option<u64> {
    let mut h = DefaultHasher::new();
    obj.meta().generation.hash(&mut h);
    relevant_annotations(obj).hash(&mut h);
    obj.meta()
        .deletion_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .hash(&mut h);
    obj.finalizers().hash(&mut h);
    Some(h.finish())
}

/// The cloud ids an object claims: the one its external-name annotation names, and the one
/// its status reports.
pub fn claimed_ids<A: Adapter>(obj: &A::Kind) -> Vec<String> {
    let named = obj
        .annotations()
        .get(EXTERNAL_NAME)
        .filter(|v| !v.is_empty())
        .map(String::as_str);
    named
        .into_iter()
        .chain(A::reported_id(obj))
        .map(str::to_string)
        .collect()
}

/// A controller ready to run, the store of the objects it watches, and their index by cloud id.
pub struct Built<A: Adapter> {
    pub controller: Controller<A::Kind>,
    pub store: Store<A::Kind>,
    pub index: Arc<IdIndex<A::Kind>>,
}

/// Build the controller for `api`; callers may add `.watches(..)` for dependencies.
pub fn build<A: Adapter>(api: Api<A::Kind>, concurrency: u16) -> Built<A> {
    let (store, writer) = reflector::store();
    let index = Arc::new(IdIndex::new(claimed_ids::<A>));
    let indexing = index.clone();
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        // managedFields are most of an object's size and the engine never reads them: at
        // 10,000 objects, keeping them would cost tens of MiB.
        .modify(|obj: &mut A::Kind| {
            obj.meta_mut().managed_fields = None;
        })
        // Indexed before the store sees it, so the index is never behind the store.
        .inspect_ok(move |event| indexing.observe(event))
        .reflect(writer)
        .applied_objects()
        .predicate_filter(relevant_change::<A::Kind>, PredicateConfig::default());
    let controller = Controller::for_stream(stream, store.clone()).with_config(
        kube::runtime::controller::Config::default()
            .concurrency(concurrency)
            .debounce(std::time::Duration::from_millis(200)),
    );
    Built {
        controller,
        store,
        index,
    }
}

/// Run a built controller until the process stops.
pub async fn run<A: Adapter>(controller: Controller<A::Kind>, ctx: Arc<Context<A>>) {
    controller
        .shutdown_on_signal()
        .run(
            reconciler::reconcile::<A>,
            reconciler::error_policy::<A>,
            ctx,
        )
        .for_each(|res| async move {
            if let Err(e) = res {
                debug!(controller = %super::registry::controller_name::<A>(), error = %e, "controller event");
            }
        })
        .await;
}
