//! Where the operator's memory goes at N objects: the structures it keeps per object, rebuilt in
//! the bench process from the same objects with the same types, and weighed by the heap bytes
//! that dropping them frees.
//!
//! The operator is a separate process, so it cannot be weighed from inside without changing it.
//! Instead, each structure is built here the way the operator builds it (a kube reflector store
//! of the Compute objects as the apiserver returns them, managedFields stripped; the engine's
//! snapshot of every compute as the Strettch client lists it; a kube event `Recorder` that has
//! published one `Adopted` event per object; kube's predicate cache), then dropped while a
//! counting allocator records what the drop freed on this thread. The remainder of the
//! operator's resident memory is everything else: the runtime, TLS, the scheduler's queue, the
//! throttle's maps, the allocator's own overhead and fragmentation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;
use std::time::Instant;

use futures::StreamExt;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use stratus::api::common::EXTERNAL_NAME;
use stratus::cloud::ApiKey;
use stratus::cloud::throttle::Priority;
use stratus::engine::controller::claimed_ids;
use stratus::engine::peers::IdIndex;
use stratus::engine::snapshot::Snapshot;
use stratus::providers::strettch::api::Compute;
use stratus::providers::strettch::client::{MAX_PAGE_SIZE, StrettchClient};
use stratus::providers::strettch::compute::ComputeAdapter;

/// kube's private predicate cache key: name, namespace, uid.
type PredicateKey = (String, Option<String>, Option<String>);

/// `System`, counting what each thread frees, so a drop can be weighed.
pub struct Counting;

thread_local! {
    static FREED: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // try_with: a thread being torn down has no counter left, and its frees do not matter.
        let _ = FREED.try_with(|f| {
            let (bytes, blocks) = f.get();
            f.set((bytes + layout.size() as u64, blocks + 1));
        });
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Heap bytes and blocks freed by dropping `value` (on this thread; a drop runs synchronously,
/// so nothing else runs on it meanwhile).
pub fn weigh<T>(value: T) -> Weight {
    let (b0, n0) = FREED.with(Cell::get);
    drop(value);
    let (b1, n1) = FREED.with(Cell::get);
    Weight {
        bytes: b1 - b0,
        blocks: n1 - n0,
    }
}

#[derive(Clone, Copy, Default)]
pub struct Weight {
    pub bytes: u64,
    pub blocks: u64,
}

impl Weight {
    pub fn mib(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0)
    }
}

/// What each structure weighs for `objects` objects.
pub struct Breakdown {
    pub objects: usize,
    pub store: Weight,
    pub predicate_cache: Weight,
    /// The engine's index of the objects by the cloud ids they claim.
    pub claim_index: Weight,
    pub snapshot: Weight,
    /// kube's event cache after `events` events (one per object, at most the cap).
    pub event_cache: Weight,
    pub events: usize,
}

impl Breakdown {
    /// Heap bytes per object of the structures that grow with the objects; the event cache's
    /// per event.
    pub fn per_object(&self, w: Weight) -> f64 {
        w.bytes as f64 / self.objects.max(1) as f64
    }
    pub fn per_event(&self) -> f64 {
        self.event_cache.bytes as f64 / self.events.max(1) as f64
    }
}

/// Build and weigh each structure for the Compute objects in `objects` (as the bench's watch
/// holds them) and the computes the sandbox at `endpoint` lists for `key`; events are published
/// for the first `max_events` objects.
pub async fn breakdown(
    client: &Client,
    objects: Vec<std::sync::Arc<Compute>>,
    endpoint: &str,
    key: &str,
    max_events: usize,
) -> Breakdown {
    let n = objects.len();

    // The controller's reflector store: what the watcher yields, managedFields stripped.
    let (store, mut writer) = reflector::store::<Compute>();
    for o in &objects {
        let mut c = Compute::clone(o);
        c.meta_mut().managed_fields = None;
        writer.apply_watcher_event(&watcher::Event::Apply(c));
    }
    assert_eq!(
        store.state().len(),
        n,
        "the rebuilt store holds every object"
    );
    let store = weigh((store, writer));

    // The engine's claim index, fed the same objects the way the watch feeds it.
    let index = IdIndex::new(claimed_ids::<ComputeAdapter>);
    for o in &objects {
        index.observe(&watcher::Event::Apply(Compute::clone(o)));
    }
    assert_eq!(index.len(), n, "the index holds every object naming an id");
    let claim_index = weigh(index);

    // kube's predicate_filter cache: name, namespace and uid to a hash and when it was seen.
    let cache: HashMap<PredicateKey, (u64, Instant)> = objects
        .iter()
        .map(|o| {
            (
                (o.name_any(), o.namespace(), o.uid()),
                (0u64, Instant::now()),
            )
        })
        .collect();
    let predicate_cache = weigh(cache);

    // The engine's snapshot of the collection, filled by one listing the way the operator's is.
    let cloud = StrettchClient::new(endpoint, ApiKey::new(key), Some(1000.0))
        .expect("a client for the sandbox");
    let items = cloud
        .list_all_computes(Priority::Routine)
        .await
        .expect("the sandbox lists its computes");
    let listed = items.len();
    let snapshot = Snapshot::<_>::new(MAX_PAGE_SIZE as usize);
    snapshot.replace(items, Instant::now());
    assert_eq!(snapshot.len(), listed, "the snapshot holds every compute");
    let snapshot = weigh(snapshot);

    // kube's event Recorder after one `Adopted` event per object, published for real.
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "stratus".into(),
            instance: Some("stratus-bench-0123456789-abcde".into()),
        },
    );
    let started = Instant::now();
    let events = n.min(max_events);
    let refs: Vec<_> = objects[..events]
        .iter()
        .map(|o| o.object_ref(&()))
        .collect();
    let failed = futures::stream::iter(refs.iter().zip(&objects))
        .map(|(r, o)| {
            let recorder = &recorder;
            let id = o
                .annotations()
                .get(EXTERNAL_NAME)
                .cloned()
                .unwrap_or_default();
            async move {
                let ev = Event {
                    type_: EventType::Normal,
                    reason: "Adopted".into(),
                    note: Some(format!(
                        "Adopted {id}, named by the stratus.dev/external-name annotation"
                    )),
                    action: "Observe".into(),
                    secondary: None,
                };
                recorder.publish(&ev, r).await.is_err()
            }
        })
        .buffer_unordered(32)
        .filter(|failed| futures::future::ready(*failed))
        .count()
        .await;
    assert_eq!(failed, 0, "every event was published");
    eprintln!(
        "bench: memory: {events} events published in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let event_cache = weigh(recorder);

    Breakdown {
        objects: n,
        store,
        predicate_cache,
        claim_index,
        snapshot,
        event_cache,
        events,
    }
}
