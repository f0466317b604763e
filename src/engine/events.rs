//! Kubernetes Events for the engine: kube's `Recorder`, one for Normal events and one for
//! Warnings, each replaced by an empty one once it has published [`CACHE_PUBLISHES`] events, so
//! its cache cannot hold a burst.
//!
//! kube's Recorder remembers every event it published, to fold a repeat into the first one's
//! series, scans that cache on every publish, and forgets an entry only when a later publish
//! finds it unseen for six minutes. A first pass over 100,000 adopted objects publishes one
//! `Adopted` event each, about 2.8 KB of heap apiece (measured by `benches/operator/memory.rs`):
//! kept, that is hundreds of MiB, and a scan of every one of them on each publish. Counting
//! publishes bounds both (a few MiB, a scan of at most that many entries) while leaving a quiet
//! operator's series alone: a resource that keeps failing, or keeps being `Updated`, counts
//! into one Event for as long as fewer than [`CACHE_PUBLISHES`] events of its type are
//! published in between. Normal events and Warnings are counted apart, so a first pass's
//! thousands of `Adopted` events do not cut a Warning's series short.

use kube::runtime::events::{EventType, Recorder, Reporter};
use parking_lot::Mutex;

/// Publishes after which a recorder's cache is dropped for an empty one.
pub const CACHE_PUBLISHES: u64 = 1_000;

/// The process's event recorders, shared by every controller.
pub struct Events {
    client: kube::Client,
    reporter: Reporter,
    /// Publishes per cache (a test makes it small).
    cap: u64,
    normal: Mutex<Slot>,
    warning: Mutex<Slot>,
}

/// One type's recorder and the publishes it was handed out for.
struct Slot {
    recorder: Recorder,
    published: u64,
}

impl Events {
    pub fn new(client: kube::Client, reporter: Reporter) -> Self {
        Self::with_cap(client, reporter, CACHE_PUBLISHES)
    }

    /// Recorders whose caches are dropped after `cap` publishes each.
    pub fn with_cap(client: kube::Client, reporter: Reporter, cap: u64) -> Self {
        let fresh = || {
            Mutex::new(Slot {
                recorder: Recorder::new(client.clone(), reporter.clone()),
                published: 0,
            })
        };
        Self {
            normal: fresh(),
            warning: fresh(),
            client,
            reporter,
            cap: cap.max(1),
        }
    }

    fn slot(&self, type_: EventType) -> &Mutex<Slot> {
        match type_ {
            EventType::Normal => &self.normal,
            EventType::Warning => &self.warning,
        }
    }

    /// The recorder to publish one event of `type_` with (a clone shares its cache): counts
    /// the publish, and starts an empty cache first once the current one has had its share.
    /// Publishes in flight finish on the old cache, which is freed when they do.
    pub fn recorder(&self, type_: EventType) -> Recorder {
        let mut slot = self.slot(type_).lock();
        let old = (slot.published >= self.cap).then(|| {
            slot.published = 0;
            std::mem::replace(
                &mut slot.recorder,
                Recorder::new(self.client.clone(), self.reporter.clone()),
            )
        });
        slot.published += 1;
        let recorder = slot.recorder.clone();
        drop(slot);
        // The old cache may be large: freed outside the lock.
        drop(old);
        recorder
    }
}
