//! Kubernetes Events for the engine: kube's `Recorder`, one for Normal events and one for
//! Warnings, each replaced by an empty one on a timer so its cache cannot hold a burst.
//!
//! kube's Recorder remembers every event it published, to fold a repeat into the first one's
//! series, scans that cache on every publish, and forgets an entry only when a later publish
//! finds it older than six minutes. A first pass over 100,000 adopted objects publishes one
//! `Adopted` event each, about 2.8 KB of heap apiece (measured by `benches/operator/memory.rs`):
//! kept, that is hundreds of MiB held for as long as nothing else is published, and a scan of
//! every one of them on each publish. Normal events (Created, Adopted, Updated, Deleted) mostly
//! happen once per change, so their recorder forgets every [`FORGET_NORMAL_EVERY`]; Warnings
//! repeat (a failing reconcile retried with backoff) and are what a series is for, so theirs is
//! forgotten every [`FORGET_WARNINGS_EVERY`]. Both are on a fixed clock: a repeat just after a
//! swap starts a new Event instead of counting into the old one's series (`kubectl get events`
//! shows both), so a resource that keeps failing gets one Event per six minutes rather than one
//! for its whole life, and one that keeps being `Updated` one per minute.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::{EventType, Recorder, Reporter};
use parking_lot::Mutex;

/// How often Normal events are forgotten (a publish in flight at that moment finishes on the
/// old cache).
pub const FORGET_NORMAL_EVERY: Duration = Duration::from_secs(60);
/// How often Warnings are forgotten: kube's own time to live for a cached event.
pub const FORGET_WARNINGS_EVERY: Duration = Duration::from_secs(6 * 60);

/// The process's event recorders, shared by every controller.
pub struct Events {
    client: kube::Client,
    reporter: Reporter,
    normal: Mutex<Recorder>,
    warning: Mutex<Recorder>,
}

impl Events {
    pub fn new(client: kube::Client, reporter: Reporter) -> Self {
        let fresh = || Mutex::new(Recorder::new(client.clone(), reporter.clone()));
        Self {
            normal: fresh(),
            warning: fresh(),
            client,
            reporter,
        }
    }

    fn slot(&self, type_: EventType) -> &Mutex<Recorder> {
        match type_ {
            EventType::Normal => &self.normal,
            EventType::Warning => &self.warning,
        }
    }

    /// The recorder to publish an event of `type_` with now (a clone shares its cache until
    /// the next swap).
    pub fn recorder(&self, type_: EventType) -> Recorder {
        self.slot(type_).lock().clone()
    }

    /// Start over with an empty cache for `type_`; publishes in flight finish on the old one,
    /// which is freed when they do.
    pub fn forget(&self, type_: EventType) {
        let fresh = Recorder::new(self.client.clone(), self.reporter.clone());
        *self.slot(type_).lock() = fresh;
    }

    /// Forget Normal events every [`FORGET_NORMAL_EVERY`] and Warnings every
    /// [`FORGET_WARNINGS_EVERY`], until the process stops.
    pub async fn forget_on_schedule(self: Arc<Self>) {
        let mut tick = 0u64;
        loop {
            tokio::time::sleep(FORGET_NORMAL_EVERY).await;
            tick += 1;
            for type_ in forgotten_at(tick) {
                self.forget(type_);
            }
        }
    }
}

/// The caches forgotten at the `tick`-th [`FORGET_NORMAL_EVERY`].
fn forgotten_at(tick: u64) -> Vec<EventType> {
    let warnings_every = (FORGET_WARNINGS_EVERY.as_secs() / FORGET_NORMAL_EVERY.as_secs()).max(1);
    let mut types = vec![EventType::Normal];
    if tick.is_multiple_of(warnings_every) {
        types.push(EventType::Warning);
    }
    types
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_events_are_forgotten_every_minute_and_warnings_every_sixth() {
        let warnings: Vec<u64> = (1..=13)
            .filter(|&t| forgotten_at(t).contains(&EventType::Warning))
            .collect();
        assert_eq!(warnings, vec![6, 12]);
        assert!((1..=13).all(|t| forgotten_at(t).contains(&EventType::Normal)));
    }
}
