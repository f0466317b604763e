//! Kubernetes Events for the engine: kube's `Recorder`, replaced by an empty one every few
//! minutes so its cache cannot hold a burst for the rest of the process's life.
//!
//! kube's Recorder remembers every event it published, to fold a repeat into the first one's
//! series, and forgets an entry only when a later publish finds it older than six minutes. After
//! a burst — one `Adopted` event per object when 100,000 objects are first reconciled, about
//! 3.4 KB of heap each (measured by `benches/operator/memory.rs`) — with nothing published
//! since, it would keep the whole burst for as long as the operator runs. [`Events`] hands out
//! one recorder, and [`Events::forget_every`] swaps it for a fresh one, so at most two intervals
//! of events are held. A repeat that straddles a swap starts a new Event instead of counting
//! into the old one's series; `kubectl get events` shows both.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::{Recorder, Reporter};
use parking_lot::Mutex;

/// How often the cache is dropped: kube's own time to live for a cached event.
pub const FORGET_EVERY: Duration = Duration::from_secs(6 * 60);

/// The process's event recorder, shared by every controller.
pub struct Events {
    client: kube::Client,
    reporter: Reporter,
    current: Mutex<Recorder>,
}

impl Events {
    pub fn new(client: kube::Client, reporter: Reporter) -> Self {
        let current = Mutex::new(Recorder::new(client.clone(), reporter.clone()));
        Self {
            client,
            reporter,
            current,
        }
    }

    /// The recorder to publish with now (a clone shares its cache until the next swap).
    pub fn recorder(&self) -> Recorder {
        self.current.lock().clone()
    }

    /// Start over with an empty cache; publishes in flight finish on the old one, which is
    /// freed when they do.
    pub fn forget(&self) {
        let fresh = Recorder::new(self.client.clone(), self.reporter.clone());
        *self.current.lock() = fresh;
    }

    /// [`forget`](Self::forget) every `every`, until the process stops.
    pub async fn forget_every(self: Arc<Self>, every: Duration) {
        loop {
            tokio::time::sleep(every).await;
            self.forget();
        }
    }
}
