//! Bulk observation: one shared, paged list of a cloud collection per (credentials, kind), so
//! the steady-state cost of observing N resources is ⌈N/page⌉ requests per resync, not N.
//!
//! - refreshed on demand when older than the caller's tolerance, single-flight; a caller that
//!   needs a listing newer than the moment it asked (tolerance zero) is served by the first one
//!   that *started* after it asked, so N such callers at once cost at most two listings, not N;
//! - a listing that fails answers every caller that waited for it, and every caller for
//!   [`FAILURE_HOLD`] after, with the same error instead of another request;
//! - write-through: create/update/delete answers update entries, so acting never forces a re-read,
//!   and a refresh that started before a write never overwrites it;
//! - a missing entry in a fresh snapshot means the resource is gone;
//! - news about transitional resources is bought with whichever costs fewer requests (one GET
//!   each, or the pages of a listing) and paced so that it spends at most [`URGENT_READ_SHARE`]
//!   of the key's budget: during a burst of creates, relisting 5 pages every 2 s would otherwise
//!   take more requests than the creates themselves.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Freshness;
use crate::cloud::CloudError;
use crate::cloud::throttle::{KeyThrottle, Priority, ROUTINE_PATIENCE};

/// The largest share of a key's budget that polling transitional resources may take, so
/// creates and updates (and their users) keep the rest.
pub const URGENT_READ_SHARE: f64 = 0.25;

/// The longest pacing of urgent rounds, so a very low rate still gives transitional resources
/// news more often than a resync.
const MAX_URGENT_INTERVAL: Duration = Duration::from_secs(120);

/// A resource that asked for urgent news within this window counts toward the cost of a round.
const ASKER_WINDOW: Duration = Duration::from_secs(60);

/// How long a failed listing stands for the collection: callers asking within this time get
/// its error without a request of their own. A listing fails mostly because the key is out of
/// budget (429) or the API is down; N reconciles that each relisted at once would spend N
/// requests to learn the same thing, and make a short budget shorter.
pub const FAILURE_HOLD: Duration = Duration::from_secs(1);

/// What the snapshot needs to know about an item.
pub trait Item: Clone + Send + Sync + 'static {
    fn id(&self) -> &str;
    /// The cloud moves the item on by itself soon (creating, rebooting, ...).
    fn is_transitional(&self) -> bool;
}

struct Entry<T> {
    item: Option<T>,
    written: Instant,
}

/// The last listing that failed, with when it failed.
struct Failure<E> {
    at: Instant,
    error: E,
}

struct State<T, E> {
    entries: HashMap<String, Entry<T>>,
    /// When the last complete listing started.
    refreshed: Option<Instant>,
    /// A failed listing not yet followed by a complete one.
    failed: Option<Failure<E>>,
    /// When each resource last asked for urgent news (transitional, fast poll, deleting, ...).
    askers: HashMap<String, Instant>,
    /// The cost of a round of urgent news, counted at most once a second (counting scans
    /// every entry): (resources wanting news, pages of a listing).
    round_counted: Option<(Instant, usize, usize)>,
    /// When each resource last read for a user's change ([`Priority::Write`]).
    changers: HashMap<String, Instant>,
    /// When the listing in flight started.
    listing_since: Option<Instant>,
    /// How long the last complete listing took: its items were seen anywhere between its start
    /// and its end.
    last_listing: Option<Duration>,
    /// When `changers` was last pruned (at most once a second: every read for a user's change
    /// counts itself, and a first pass makes thousands a second).
    changers_pruned: Option<Instant>,
    /// Until a listing completes, the resources that asked: the only measure of the
    /// collection's size (and a listing's pages) before one does. Emptied by the first.
    unlisted: HashSet<String>,
}

/// A shared view of one cloud collection; `E` is the error of its listings, shared by the
/// callers of a failed one.
pub struct Snapshot<T: Item, E = CloudError> {
    state: Mutex<State<T, E>>,
    refresh: tokio::sync::Mutex<()>,
    page_size: usize,
    /// The key's throttle, whose rate paces polling of transitional items (none: unpaced).
    budget: Option<Arc<KeyThrottle>>,
}

impl<T: Item, E: Clone> Snapshot<T, E> {
    pub fn new(page_size: usize) -> Self {
        Self {
            state: Mutex::new(State {
                entries: HashMap::new(),
                refreshed: None,
                failed: None,
                askers: HashMap::new(),
                round_counted: None,
                changers: HashMap::new(),
                listing_since: None,
                last_listing: None,
                changers_pruned: None,
                unlisted: HashSet::new(),
            }),
            refresh: tokio::sync::Mutex::new(()),
            page_size: page_size.max(1),
            budget: None,
        }
    }

    /// A snapshot whose polling of transitional items is paced by the rate of `budget`.
    pub fn paced(page_size: usize, budget: Arc<KeyThrottle>) -> Self {
        Self {
            budget: Some(budget),
            ..Self::new(page_size)
        }
    }

    /// The shortest interval between two rounds of news about transitional items that keeps
    /// their cost (`requests` per round) within [`URGENT_READ_SHARE`] of the key's rate.
    pub fn urgent_interval(&self, requests: usize) -> Duration {
        let Some(budget) = &self.budget else {
            return Duration::ZERO;
        };
        let rps = budget.effective_requests_per_second();
        if !(rps.is_finite() && rps > 0.0) {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(requests as f64 / (URGENT_READ_SHARE * rps))
            .min(MAX_URGENT_INTERVAL)
    }

    /// Note that `id` asks for urgent news; returns (resources wanting news: transitional
    /// ones or recent askers, whichever are more; pages of a listing).
    fn note_urgent(&self, id: &str) -> (usize, usize) {
        let mut st = self.state.lock();
        let now = Instant::now();
        st.askers.insert(id.to_string(), now);
        if let Some((at, wanted, pages)) = st.round_counted
            && now.duration_since(at) < Duration::from_secs(1)
        {
            return (wanted.max(1), pages);
        }
        st.askers
            .retain(|_, t| now.duration_since(*t) <= ASKER_WINDOW);
        let (mut items, mut transitional) = (0usize, 0usize);
        for item in st.entries.values().filter_map(|e| e.item.as_ref()) {
            items += 1;
            transitional += usize::from(item.is_transitional());
        }
        let wanted = transitional.max(st.askers.len());
        let pages = items.max(st.unlisted.len()).div_ceil(self.page_size).max(1);
        st.round_counted = Some((now, wanted, pages));
        (wanted, pages)
    }

    /// About how long the listing in flight still takes at the key's rate, one permit per
    /// page (at least the throttle's routine patience, at most a minute).
    fn listing_left(&self) -> Duration {
        let (pages, since) = {
            let st = self.state.lock();
            (
                Self::known_items(&st).div_ceil(self.page_size).max(1),
                st.listing_since,
            )
        };
        let rps = self
            .budget
            .as_ref()
            .map_or(f64::INFINITY, |b| b.effective_requests_per_second());
        let whole = if rps.is_finite() && rps > 0.0 {
            Duration::from_secs_f64(pages as f64 / rps)
        } else {
            Duration::ZERO
        };
        let elapsed = since.map_or(Duration::ZERO, |t| t.elapsed());
        whole
            .saturating_sub(elapsed)
            .clamp(ROUTINE_PATIENCE, Duration::from_secs(60))
    }

    /// Note that `id` reads for a user's change; returns (resources that did within
    /// [`ASKER_WINDOW`], pages of a listing).
    fn note_user_change(&self, id: &str) -> (usize, usize) {
        let mut st = self.state.lock();
        let now = Instant::now();
        if st
            .changers_pruned
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            st.changers
                .retain(|_, t| now.duration_since(*t) <= ASKER_WINDOW);
            st.changers_pruned = Some(now);
        }
        st.changers.insert(id.to_string(), now);
        let pages = Self::known_items(&st).div_ceil(self.page_size).max(1);
        (st.changers.len(), pages)
    }

    /// The oldest news a read that tolerates `max_age` takes while a listing is in flight: an
    /// item of a listing is up to the listing's own duration older than its end, so a listing
    /// that takes longer than half the tolerance (1,000 pages at 2 requests/s take 500 s) can
    /// never produce news that young. Counted from the end of the last listing instead, the
    /// news in hand lasts until the next one (started when the news passed `max_age`) is done.
    /// At most twice `max_age`, however long a listing once took (an outage, a budget spent
    /// elsewhere).
    fn tolerated(&self, max_age: Duration) -> Duration {
        max_age
            + self
                .state
                .lock()
                .last_listing
                .unwrap_or_default()
                .min(max_age)
    }

    /// A listing is being made (by another reader) right now.
    fn listing_in_flight(&self) -> bool {
        self.refresh.try_lock().is_err()
    }

    /// About how many items the collection holds: those listed, or before any listing
    /// completed, the resources that asked about it.
    fn known_items(st: &State<T, E>) -> usize {
        st.entries.len().max(st.unlisted.len())
    }

    /// Counts `id` toward the collection's size while no listing has completed.
    fn note_asked(&self, id: &str) {
        let mut st = self.state.lock();
        if st.refreshed.is_none() && !st.unlisted.contains(id) {
            st.unlisted.insert(id.to_string());
        }
    }

    /// The item with `id` from a listing that started no more than `max_age` before this call,
    /// listing again (once, shared by every concurrent caller) when there is none. With
    /// `max_age` zero only a listing that started after the call counts: one already in flight
    /// may have missed what the caller just did, but every caller waiting behind it shares the
    /// next. `Ok(None)`: not in the cloud. A listing that fails answers the callers waiting for
    /// it, and those arriving within [`FAILURE_HOLD`], with its error.
    pub async fn get<F, Fut>(&self, id: &str, max_age: Duration, list: F) -> Result<Option<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<T>, E>>,
    {
        let asked = Instant::now();
        let since = asked.checked_sub(max_age);
        if let Some(answer) = self.answer(id, since, asked) {
            return answer;
        }
        let _guard = self.refresh.lock().await;
        // Someone else may have listed, or failed to, while we waited.
        if let Some(answer) = self.answer(id, since, asked) {
            return answer;
        }
        let started = Instant::now();
        self.state.lock().listing_since = Some(started);
        let listed = list().await;
        self.state.lock().listing_since = None;
        match listed {
            Ok(items) => {
                self.replace(items, started);
                self.state.lock().last_listing = Some(started.elapsed());
                Ok(self.lookup(id))
            }
            Err(error) => {
                self.state.lock().failed = Some(Failure {
                    at: Instant::now(),
                    error: error.clone(),
                });
                Err(error)
            }
        }
    }

    /// What a caller that asked at `asked` for news from `since` on can be told without a
    /// listing: the entry, or its absence, when a listing or a write that recent exists; else
    /// the error of a listing that failed while it waited or less than [`FAILURE_HOLD`] ago.
    fn answer(
        &self,
        id: &str,
        since: Option<Instant>,
        asked: Instant,
    ) -> Option<Result<Option<T>, E>> {
        let state = self.state.lock();
        if let Some(found) = Self::fresh_entry(&state, id, since) {
            return Some(Ok(found));
        }
        state
            .failed
            .as_ref()
            .filter(|f| f.at >= asked || f.at.elapsed() < FAILURE_HOLD)
            .map(|f| Err(f.error.clone()))
    }

    /// The entry of `id` (or its absence) if a listing or a write at most `max_age` old tells
    /// it; `None` when nothing that recent does.
    pub fn lookup_if_fresh(&self, id: &str, max_age: Duration) -> Option<Option<T>> {
        Self::fresh_entry(&self.state.lock(), id, Instant::now().checked_sub(max_age))
    }

    /// The entry of `id` if a listing started at or after `since` (`None`: any listing), or a
    /// write made since then, tells it.
    fn fresh_entry(state: &State<T, E>, id: &str, since: Option<Instant>) -> Option<Option<T>> {
        let recent = |t: Instant| since.is_none_or(|s| t >= s);
        let fresh = state.refreshed.is_some_and(recent);
        // A write newer than the tolerance is as good as a fresh list.
        match state.entries.get(id) {
            Some(e) if fresh || recent(e.written) => Some(e.item.clone()),
            None if fresh => Some(None),
            _ => None,
        }
    }

    fn lookup(&self, id: &str) -> Option<T> {
        self.state
            .lock()
            .entries
            .get(id)
            .and_then(|e| e.item.clone())
    }

    /// Install a complete listing that was started at `started`.
    pub fn replace(&self, items: Vec<T>, started: Instant) {
        let mut state = self.state.lock();
        let mut fresh: HashMap<String, Entry<T>> = items
            .into_iter()
            .map(|i| {
                (
                    i.id().to_string(),
                    Entry {
                        item: Some(i),
                        written: started,
                    },
                )
            })
            .collect();
        // Writes that landed after the listing began win over what the listing saw.
        for (id, e) in state.entries.drain() {
            if e.written > started {
                fresh.insert(id, e);
            }
        }
        state.entries = fresh;
        state.refreshed = Some(started);
        state.unlisted = HashSet::new();
        // A failure that came after this listing began is newer news; keep it.
        if state.failed.as_ref().is_some_and(|f| f.at <= started) {
            state.failed = None;
        }
    }
}

/// Observation, whose GETs and listings are the cloud client's.
impl<T: Item> Snapshot<T, CloudError> {
    /// Observe one item as `fresh` asks: with a GET when that is asked for, or cheaper than a
    /// listing for a resource that needs fresh news; otherwise from the shared listing. Answers
    /// are written through; a 404 from the GET, or from the listing (the collection itself is
    /// gone), is an absence.
    pub async fn observe<G, GF, L, LF>(
        &self,
        id: &str,
        fresh: Freshness,
        get: G,
        list: L,
    ) -> Result<Option<T>, CloudError>
    where
        G: FnOnce(Priority) -> GF,
        GF: Future<Output = Result<T, CloudError>>,
        L: FnOnce(Priority) -> LF,
        LF: Future<Output = Result<Vec<T>, CloudError>>,
    {
        let priority = fresh.priority;
        if fresh.direct {
            return self.get_one(id, get(priority)).await;
        }
        self.note_asked(id);
        if priority == Priority::Write && !fresh.urgent {
            // A user's change to a steady resource: from the snapshot when it is recent enough;
            // else one GET while user changes are fewer than a listing's pages (before the
            // first listing completes, counted from the resources that asked about it). Never a wait
            // for a listing, which at N resources takes ⌈N/100⌉ permits (25 s for 5,000 at
            // 2 requests/s) and may have been started by routine observation, whose pages
            // wait behind every write.
            let (changes, pages) = self.note_user_change(id);
            if let Some(found) = self.lookup_if_fresh(id, fresh.max_age) {
                return Ok(found);
            }
            if changes < pages {
                return self.get_one(id, get(priority)).await;
            }
            // More changes than pages (a first pass over many new objects, each never observed
            // and so a user's change): the listing is cheaper. While one is in flight, the news
            // in hand will do if it is as fresh as a listing can make it; otherwise this read
            // makes the next listing, or waits for it.
            if self.listing_in_flight()
                && let Some(found) = self.lookup_if_fresh(id, self.tolerated(fresh.max_age))
            {
                return Ok(found);
            }
        }
        let mut max_age = fresh.max_age;
        if fresh.urgent {
            // One round of news costs min(a GET for each resource that needs it, the pages of a
            // list); rounds are paced so they never take more than their share of the budget.
            let (wanted, pages) = self.note_urgent(id);
            max_age = max_age.max(self.urgent_interval(wanted.min(pages).max(1)));
            if let Some(found) = self.lookup_if_fresh(id, max_age) {
                return Ok(found);
            }
            if wanted < pages {
                return self.get_one(id, get(priority)).await;
            }
        }
        if priority != Priority::Write {
            // A routine or urgent read never waits for a listing in flight: at N resources that
            // takes ⌈N/100⌉ permits, and a resync's wave of reconciles waiting for it would hold
            // every worker meanwhile, so a user's change would wait for a worker as long (the
            // latency benchmark saw 27 s). It comes back when the listing should be done.
            let asked = Instant::now();
            if let Some(answer) = self.answer(id, asked.checked_sub(max_age), asked) {
                return match answer {
                    Err(e) if e.is_not_found() => Ok(None),
                    other => other,
                };
            }
            if self.listing_in_flight() {
                // Routine news as fresh as a listing can make it will do; a transitional
                // resource wants the listing's news, which comes back when it is done.
                if !fresh.urgent
                    && let Some(answer) =
                        self.answer(id, asked.checked_sub(self.tolerated(max_age)), asked)
                {
                    return match answer {
                        Err(e) if e.is_not_found() => Ok(None),
                        other => other,
                    };
                }
                return Err(CloudError::Deferred {
                    operation: "a read of the shared listing (in flight)".into(),
                    retry_in: self.listing_left(),
                });
            }
        }
        match self.get(id, max_age, || list(priority)).await {
            Err(e) if e.is_not_found() => Ok(None),
            other => other,
        }
    }

    /// The item as it was at most `max_age` before this call, for a check that decides a
    /// write (is the commit a create would deploy already live?): news that recent from the
    /// snapshot; else one GET while such reads (and users' changes) are fewer than a
    /// listing's pages, or else the listing that started within `max_age` of the call, shared
    /// with every check waiting for it (during a burst of 500 creates, a few listings instead
    /// of 500 GETs). A 404 is an absence.
    pub async fn read_before_write<GF, L, LF>(
        &self,
        id: &str,
        max_age: Duration,
        get: GF,
        list: L,
    ) -> Result<Option<T>, CloudError>
    where
        GF: Future<Output = Result<T, CloudError>>,
        L: FnOnce() -> LF,
        LF: Future<Output = Result<Vec<T>, CloudError>>,
    {
        let (reads, pages) = self.note_user_change(id);
        if let Some(found) = self.lookup_if_fresh(id, max_age) {
            return Ok(found);
        }
        if reads < pages {
            return self.get_one(id, get).await;
        }
        match self.get(id, max_age, list).await {
            Err(e) if e.is_not_found() => Ok(None),
            other => other,
        }
    }

    /// A single GET, written through; a 404 is an absence.
    async fn get_one(
        &self,
        id: &str,
        answer: impl Future<Output = Result<T, CloudError>>,
    ) -> Result<Option<T>, CloudError> {
        // Stamped with when it was asked: an answer that took long never replaces news that
        // arrived meanwhile (a write-through, a listing that started later).
        let asked = Instant::now();
        match answer.await {
            Ok(item) => {
                self.write_through(id, Some(item.clone()), asked);
                Ok(Some(item))
            }
            Err(e) if e.is_not_found() => {
                self.write_through(id, None, asked);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

impl<T: Item, E: Clone> Snapshot<T, E> {
    /// Write-through of an answer from the cloud (create, update, single GET).
    pub fn put(&self, item: T) {
        let id = item.id().to_string();
        self.state.lock().entries.insert(
            id,
            Entry {
                item: Some(item),
                written: Instant::now(),
            },
        );
    }

    /// `item` (None: absent) as a read asked at `asked` saw it, unless newer news of it is in.
    fn write_through(&self, id: &str, item: Option<T>, asked: Instant) {
        let mut st = self.state.lock();
        let newer = st.entries.get(id).is_some_and(|e| e.written > asked)
            || st.refreshed.is_some_and(|t| t > asked);
        if !newer {
            st.entries.insert(
                id.to_string(),
                Entry {
                    item,
                    written: asked,
                },
            );
        }
    }

    /// Write-through of a confirmed absence (a 404, or a finished delete).
    pub fn remove(&self, id: &str) {
        self.state.lock().entries.insert(
            id.to_string(),
            Entry {
                item: None,
                written: Instant::now(),
            },
        );
    }

    /// Any item matching `pred` in the current snapshot (however old), for crash recovery
    /// lookups that are confirmed by a fresh read afterwards.
    pub fn find(&self, pred: impl Fn(&T) -> bool) -> Option<T> {
        self.state
            .lock()
            .entries
            .values()
            .filter_map(|e| e.item.as_ref())
            .find(|i| pred(i))
            .cloned()
    }

    /// Every item matching `pred`.
    pub fn filter(&self, pred: impl Fn(&T) -> bool) -> Vec<T> {
        self.state
            .lock()
            .entries
            .values()
            .filter_map(|e| e.item.as_ref())
            .filter(|i| pred(i))
            .cloned()
            .collect()
    }

    /// Age of the last complete listing.
    pub fn age(&self) -> Option<Duration> {
        self.state.lock().refreshed.map(|t| t.elapsed())
    }

    pub fn len(&self) -> usize {
        self.state
            .lock()
            .entries
            .values()
            .filter(|e| e.item.is_some())
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Clone, Debug, PartialEq)]
    struct It(String, bool);
    impl Item for It {
        fn id(&self) -> &str {
            &self.0
        }
        fn is_transitional(&self) -> bool {
            self.1
        }
    }

    #[tokio::test]
    async fn concurrent_readers_share_one_listing() {
        let snap = Arc::new(Snapshot::<It, ()>::new(100));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..50 {
            let snap = snap.clone();
            let calls = calls.clone();
            tasks.push(tokio::spawn(async move {
                snap.get(&format!("{}", i % 10), Duration::from_secs(60), || async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok::<_, ()>((0..10).map(|n| It(n.to_string(), false)).collect())
                })
                .await
                .unwrap()
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap().is_some());
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn missing_from_a_fresh_listing_means_gone_and_stale_means_relist() {
        let snap = Snapshot::<It, ()>::new(100);
        let got = snap
            .get("x", Duration::from_secs(60), || async {
                Ok::<_, ()>(vec![It("a".into(), false)])
            })
            .await
            .unwrap();
        assert_eq!(got, None);
        // Tolerance zero forces a new listing.
        let got = snap
            .get("x", Duration::ZERO, || async {
                Ok::<_, ()>(vec![It("x".into(), false)])
            })
            .await
            .unwrap();
        assert_eq!(got, Some(It("x".into(), false)));
    }

    #[tokio::test]
    async fn a_write_during_a_listing_survives_it() {
        let snap = Snapshot::<It, &str>::new(100);
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(5)).await;
        snap.put(It("new".into(), true));
        // The listing began before the create answered, so it does not contain it.
        snap.replace(vec![It("old".into(), false)], started);
        let got = snap
            .get("new", Duration::from_secs(60), || async {
                Err::<Vec<It>, _>("must not list")
            })
            .await
            .unwrap();
        assert_eq!(got, Some(It("new".into(), true)));
        snap.remove("old");
        assert_eq!(
            snap.get("old", Duration::from_secs(60), || async {
                Err::<Vec<It>, _>("no")
            })
            .await
            .unwrap(),
            None
        );
    }

    /// An item that says which listing it came from.
    #[derive(Clone, Debug)]
    struct Stamped {
        id: String,
        listing: usize,
    }
    impl Item for Stamped {
        fn id(&self) -> &str {
            &self.id
        }
        fn is_transitional(&self) -> bool {
            false
        }
    }

    #[tokio::test]
    async fn callers_demanding_a_fresh_listing_share_one_that_started_after_they_asked() {
        // When each listing started (by the listing's own clock), by number.
        let starts = Arc::new(Mutex::new(Vec::<Instant>::new()));
        let snap = Arc::new(Snapshot::<Stamped, ()>::new(100));
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (snap, starts) = (snap.clone(), starts.clone());
            tasks.push(tokio::spawn(async move {
                let asked = Instant::now();
                let got = snap
                    .get("x", Duration::ZERO, || async move {
                        let listing = {
                            let mut s = starts.lock();
                            s.push(Instant::now());
                            s.len() - 1
                        };
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(vec![Stamped {
                            id: "x".into(),
                            listing,
                        }])
                    })
                    .await
                    .unwrap()
                    .expect("x is listed");
                (asked, got.listing)
            }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        let starts = starts.lock().clone();
        // The first caller's listing was in flight when the others asked, so it cannot answer
        // them; the next one can answer all of them.
        assert!(
            starts.len() <= 2,
            "{} listings for 100 callers",
            starts.len()
        );
        for (n, (asked, listing)) in answers.into_iter().enumerate() {
            assert!(
                starts[listing] >= asked,
                "caller {n} was answered by listing {listing}, which started {:?} before it asked",
                asked - starts[listing]
            );
        }
    }

    #[tokio::test]
    async fn a_failed_listing_answers_its_waiters_and_callers_within_the_hold_without_relisting() {
        let snap = Arc::new(Snapshot::<It, String>::new(100));
        let calls = Arc::new(AtomicUsize::new(0));
        let failing = |calls: Arc<AtomicUsize>| {
            move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                Err::<Vec<It>, _>("429 TOO_MANY_REQUESTS".to_string())
            }
        };
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (snap, list) = (snap.clone(), failing(calls.clone()));
            tasks.push(tokio::spawn(async move {
                snap.get("x", Duration::ZERO, list).await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Err("429 TOO_MANY_REQUESTS".to_string()));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "waiters relisted");

        // A caller arriving just after gets the same answer without a request.
        let again = snap.get("x", Duration::ZERO, failing(calls.clone())).await;
        assert_eq!(again, Err("429 TOO_MANY_REQUESTS".to_string()));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "a caller within the hold relisted"
        );

        // Once the hold has passed, a caller lists again, and a success ends the failure.
        tokio::time::sleep(FAILURE_HOLD + Duration::from_millis(100)).await;
        let listed = |calls: Arc<AtomicUsize>| {
            move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok(vec![It("x".into(), false)])
            }
        };
        let got = snap.get("x", Duration::ZERO, listed(calls.clone())).await;
        assert_eq!(got, Ok(Some(It("x".into(), false))));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let got = snap
            .get("x", Duration::from_secs(60), listed(calls.clone()))
            .await;
        assert_eq!(got, Ok(Some(It("x".into(), false))));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    fn urgent() -> Freshness {
        Freshness {
            max_age: Duration::from_secs(2),
            urgent: true,
            direct: false,
            priority: Priority::Urgent,
        }
    }

    /// Observes `id` urgently; returns (GETs, list calls) it made.
    async fn count_calls(snap: &Snapshot<It>, id: &str, items: &[It]) -> (usize, usize) {
        count_calls_as(snap, id, items, urgent(), true).await
    }

    /// Observes `id` as `fresh` asks (a GET answers it with `transitional`); returns (GETs,
    /// list calls) it made.
    async fn count_calls_as(
        snap: &Snapshot<It>,
        id: &str,
        items: &[It],
        fresh: Freshness,
        transitional: bool,
    ) -> (usize, usize) {
        let gets = AtomicUsize::new(0);
        let lists = AtomicUsize::new(0);
        snap.observe(
            id,
            fresh,
            |_| async {
                gets.fetch_add(1, Ordering::SeqCst);
                Ok(It(id.to_string(), transitional))
            },
            |_| async {
                lists.fetch_add(1, Ordering::SeqCst);
                Ok(items.to_vec())
            },
        )
        .await
        .unwrap();
        (gets.into_inner(), lists.into_inner())
    }

    #[tokio::test]
    async fn polling_transitional_items_takes_at_most_its_share_of_the_budget() {
        // 500 items, all transitional (a burst of creates): a round of news is a 5-page listing.
        let items: Vec<It> = (0..500).map(|n| It(n.to_string(), true)).collect();
        let two_per_second = KeyThrottle::new("test", "fp", 2.0);
        let paced = Snapshot::paced(100, two_per_second.clone());
        let interval = paced.urgent_interval(5);
        // 5 requests within a quarter of ~1.94 requests/second: a listing every ~10 s, not every 2 s.
        assert!(
            interval > Duration::from_secs(9) && interval < Duration::from_secs(12),
            "{interval:?}"
        );
        paced.replace(items.clone(), Instant::now() - Duration::from_secs(3));
        // The listing is 3 s old: older than the 2 s poll, but younger than the paced interval.
        assert_eq!(count_calls(&paced, "7", &items).await, (0, 0));

        // Unpaced (or with the rate lifted) the same observation lists again.
        let unpaced = Snapshot::new(100);
        unpaced.replace(items.clone(), Instant::now() - Duration::from_secs(3));
        assert_eq!(count_calls(&unpaced, "7", &items).await, (0, 1));
        let lifted = Snapshot::paced(100, KeyThrottle::new("test", "fp2", 10_000.0));
        lifted.replace(items.clone(), Instant::now() - Duration::from_secs(3));
        assert_eq!(count_calls(&lifted, "7", &items).await, (0, 1));

        // Once the paced interval has passed, it lists again.
        let later = Snapshot::paced(100, two_per_second);
        later.replace(
            items.clone(),
            Instant::now() - interval - Duration::from_secs(1),
        );
        assert_eq!(count_calls(&later, "7", &items).await, (0, 1));
    }

    #[tokio::test]
    async fn a_few_transitional_items_get_a_get_each_paced_by_their_number() {
        let mut items: Vec<It> = (0..500).map(|n| It(n.to_string(), false)).collect();
        items[0].1 = true;
        let snap = Snapshot::paced(100, KeyThrottle::new("test", "fp3", 2.0));
        snap.replace(items.clone(), Instant::now() - Duration::from_secs(3));
        // One transitional item among 5 pages: one GET (every ~2 s) beats a listing.
        assert_eq!(count_calls(&snap, "0", &items).await, (1, 0));
        // The GET was written through: asked again at once, no call.
        assert_eq!(count_calls(&snap, "0", &items).await, (0, 0));
        // Four transitional items: each is polled at most every 4 / (0.25 × 1.94) ≈ 8 s.
        for it in items.iter_mut().take(4) {
            it.1 = true;
        }
        let budget = KeyThrottle::new("test", "fp4", 2.0);
        let five_s_old = Snapshot::paced(100, budget.clone());
        five_s_old.replace(items.clone(), Instant::now() - Duration::from_secs(5));
        assert_eq!(count_calls(&five_s_old, "1", &items).await, (0, 0));
        let nine_s_old = Snapshot::paced(100, budget);
        nine_s_old.replace(items.clone(), Instant::now() - Duration::from_secs(9));
        assert_eq!(count_calls(&nine_s_old, "1", &items).await, (1, 0));
    }

    #[tokio::test]
    async fn resources_asking_for_news_count_even_when_not_transitional() {
        // 250 steady items (3 pages); resources asking urgently (a fast poll annotation, a
        // deletion) count toward a round's cost just as transitional ones do.
        let items: Vec<It> = (0..250).map(|n| It(n.to_string(), false)).collect();
        let snap = Snapshot::paced(100, KeyThrottle::new("test", "fp5", 1000.0));
        snap.replace(items.clone(), Instant::now() - Duration::from_secs(30));
        // Few askers: a GET each is cheaper than 3 pages.
        for id in ["1", "2", "3"] {
            let (gets, lists) = count_calls(&snap, id, &items).await;
            assert_eq!((gets, lists), (1, 0), "{id}");
        }
        // Once the count is refreshed, 4 askers outnumber the 3 pages: one listing serves them.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        snap.replace(items.clone(), Instant::now() - Duration::from_secs(30));
        assert_eq!(count_calls(&snap, "4", &items).await, (0, 1));
    }

    fn user_change() -> Freshness {
        Freshness {
            max_age: Duration::from_secs(60),
            urgent: false,
            direct: false,
            priority: Priority::Write,
        }
    }

    /// Observes `id` for a user's change; returns (GETs, list calls) it made.
    async fn count_user_change_calls(
        snap: &Snapshot<It>,
        id: &str,
        items: &[It],
    ) -> (usize, usize) {
        count_calls_as(snap, id, items, user_change(), false).await
    }

    #[tokio::test]
    async fn a_users_change_reads_one_get_rather_than_a_whole_listing_when_the_snapshot_is_old() {
        // 500 steady items: a listing is 5 pages.
        let items: Vec<It> = (0..500).map(|n| It(n.to_string(), false)).collect();
        let snap = Snapshot::<It>::new(100);
        snap.replace(items.clone(), Instant::now() - Duration::from_secs(30));
        // Recent enough: no call.
        assert_eq!(count_user_change_calls(&snap, "1", &items).await, (0, 0));
        let snap = Snapshot::<It>::new(100);
        snap.replace(items.clone(), Instant::now() - Duration::from_secs(90));
        // Older than the resync: one GET each while the changes are fewer than the pages
        // (the GET is written through, so the same resource asked again costs nothing) ...
        for id in ["1", "2", "3", "4"] {
            assert_eq!(
                count_user_change_calls(&snap, id, &items).await,
                (1, 0),
                "{id}"
            );
            assert_eq!(
                count_user_change_calls(&snap, id, &items).await,
                (0, 0),
                "{id}"
            );
        }
        // ... and one shared listing once as many resources changed as there are pages.
        assert_eq!(count_user_change_calls(&snap, "5", &items).await, (0, 1));
    }

    /// A listing of `snap` started by another reader, whose pages never come (still waiting for
    /// the budget); abort the task to end it.
    async fn listing_in_flight(
        snap: &Arc<Snapshot<It>>,
    ) -> tokio::task::JoinHandle<Result<Option<It>, CloudError>> {
        let snap = snap.clone();
        let lister = tokio::spawn(async move {
            snap.get(
                "9",
                Duration::ZERO,
                std::future::pending::<Result<Vec<It>, CloudError>>,
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        lister
    }

    #[tokio::test]
    async fn a_users_change_does_not_wait_for_a_listing_in_flight() {
        let items: Vec<It> = (0..500).map(|n| It(n.to_string(), false)).collect();
        let snap = Arc::new(Snapshot::<It>::new(100));
        snap.replace(items.clone(), Instant::now() - Duration::from_secs(90));
        // Routine observation started a listing whose pages are still waiting for the budget.
        let routine = listing_in_flight(&snap).await;
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            count_user_change_calls(&snap, "1", &items),
        )
        .await;
        assert_eq!(
            read.expect("the user's change waited for the listing"),
            (1, 0)
        );
        routine.abort();
    }

    #[tokio::test]
    async fn a_users_change_before_the_first_listing_completes_reads_its_resource_alone() {
        // A restarted operator: nothing listed yet, the first listing (started by routine
        // observation, its pages behind every create at the key) in flight, and 500 resources
        // asked about it meanwhile (deferred). The collection is about 5 pages, not the one an
        // empty snapshot would suggest, so a user's change reads its resource with a GET.
        let items: Vec<It> = (0..500).map(|n| It(n.to_string(), false)).collect();
        let snap = Arc::new(Snapshot::<It>::paced(
            100,
            KeyThrottle::new("test", "fp-first", 2.0),
        ));
        let routine = Freshness {
            max_age: Duration::from_secs(60),
            urgent: false,
            direct: false,
            priority: Priority::Routine,
        };
        let lister = listing_in_flight(&snap).await;
        for it in &items {
            let read = snap
                .observe(
                    &it.0,
                    routine,
                    |_| async { panic!("no GET for a routine read") },
                    |_| async { panic!("no second listing") },
                )
                .await;
            assert!(matches!(read, Err(CloudError::Deferred { .. })), "{read:?}");
        }
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            count_user_change_calls(&snap, "1", &items),
        )
        .await;
        assert_eq!(
            read.expect("the user's change waited for the first listing"),
            (1, 0)
        );
        // Before anyone asked, one user's change of an unknown collection joins the listing.
        lister.abort();
        let fresh = Arc::new(Snapshot::<It>::new(100));
        assert_eq!(count_user_change_calls(&fresh, "1", &items).await, (0, 1));
    }

    #[tokio::test]
    async fn checks_before_writes_read_alone_until_they_outnumber_the_pages_then_share_listings() {
        // 500 items (5 pages), last listed a minute ago; checks accept news 5 s old.
        let items: Vec<It> = (0..500).map(|n| It(n.to_string(), false)).collect();
        let snap = Arc::new(Snapshot::<It>::new(100));
        snap.replace(items.clone(), Instant::now() - Duration::from_secs(60));
        let gets = Arc::new(AtomicUsize::new(0));
        let lists = Arc::new(AtomicUsize::new(0));
        let check = |id: String| {
            let (snap, gets, lists, items) =
                (snap.clone(), gets.clone(), lists.clone(), items.clone());
            async move {
                let got = snap
                    .read_before_write(
                        &id,
                        Duration::from_secs(5),
                        async {
                            gets.fetch_add(1, Ordering::SeqCst);
                            Ok(It(id.clone(), false))
                        },
                        || async {
                            lists.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(items)
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(got.map(|i| i.0), Some(id));
            }
        };
        for n in 0..4 {
            check(n.to_string()).await;
        }
        assert_eq!(
            (gets.load(Ordering::SeqCst), lists.load(Ordering::SeqCst)),
            (4, 0)
        );
        // From the fifth on, 100 checks at once share a listing (at most two: one may have
        // started just before some of them asked).
        let burst: Vec<_> = (4..104)
            .map(|n| tokio::spawn(check(n.to_string())))
            .collect();
        for t in burst {
            t.await.unwrap();
        }
        assert_eq!(gets.load(Ordering::SeqCst), 4);
        assert!(
            (1..=2).contains(&lists.load(Ordering::SeqCst)),
            "{} listings",
            lists.load(Ordering::SeqCst)
        );
        // An item absent from the listing is absent, not an error.
        let gone = snap
            .read_before_write(
                "nope",
                Duration::from_secs(5),
                async { panic!("no GET: a fresh listing tells") },
                || async { panic!("no listing: the last one is fresh") },
            )
            .await
            .unwrap();
        assert_eq!(gone, None);
    }

    /// A snapshot of 500 steady items whose one listing took `took` (the list call sleeps).
    async fn listed_slowly(took: Duration) -> (Arc<Snapshot<It>>, Vec<It>) {
        let items: Vec<It> = (0..500).map(|n| It(n.to_string(), false)).collect();
        let snap = Arc::new(Snapshot::<It>::new(100));
        let listed = items.clone();
        snap.get("0", Duration::ZERO, || async move {
            tokio::time::sleep(took).await;
            Ok::<_, CloudError>(listed)
        })
        .await
        .unwrap();
        (snap, items)
    }

    #[tokio::test]
    async fn news_from_a_listing_that_took_long_serves_routine_reads_until_the_next_one_is_done() {
        // Reads tolerate 0.5 s; the listing took 0.4 s (as 1,000 pages at 2 requests/s take
        // 500 s of a 10-minute resync), so it is soon older than the tolerance.
        let (snap, items) = listed_slowly(Duration::from_millis(400)).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        let routine = Freshness {
            max_age: Duration::from_millis(500),
            urgent: false,
            direct: false,
            priority: Priority::Routine,
        };
        // A routine read started the next listing; the others are answered from the one in
        // hand, whose items were seen less than 0.5 s before it ended ...
        let lister = listing_in_flight(&snap).await;
        assert!(snap.age().unwrap() > Duration::from_millis(500));
        assert_eq!(
            count_calls_as(&snap, "1", &items, routine, false).await,
            (0, 0)
        );
        // ... until they are older than that: then they wait for the listing in flight.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let read = snap
            .observe(
                "1",
                routine,
                |_| async { panic!("no GET for a routine read") },
                |_| async { panic!("no second listing") },
            )
            .await;
        assert!(matches!(read, Err(CloudError::Deferred { .. })), "{read:?}");
        lister.abort();
    }

    #[tokio::test]
    async fn a_first_pass_of_more_new_objects_than_pages_reads_the_listing_not_one_get_each() {
        // Objects never observed count as users' changes. Once they outnumber the pages, and
        // a listing is in flight, news as fresh as a listing can make it answers them.
        let (snap, items) = listed_slowly(Duration::from_millis(400)).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        let first = Freshness {
            max_age: Duration::from_millis(500),
            ..user_change()
        };
        let lister = listing_in_flight(&snap).await;
        assert!(snap.age().unwrap() > Duration::from_millis(500));
        let mut calls = Vec::new();
        for id in ["1", "2", "3", "4", "5", "6", "7"] {
            let read = tokio::time::timeout(
                Duration::from_secs(5),
                count_calls_as(&snap, id, &items, first, false),
            )
            .await;
            calls.push(read.expect("a read waited for the listing in flight"));
        }
        // One GET each while fewer than the 5 pages, then none.
        assert_eq!(
            calls,
            [(1, 0), (1, 0), (1, 0), (1, 0), (0, 0), (0, 0), (0, 0)]
        );
        lister.abort();
    }

    #[tokio::test]
    async fn routine_and_urgent_reads_are_deferred_rather_than_wait_for_a_listing_in_flight() {
        // 5,000 transitional items (a burst of creates): urgent news is bought by listing.
        let items: Vec<It> = (0..5000).map(|n| It(n.to_string(), true)).collect();
        let snap = Arc::new(Snapshot::<It>::paced(
            100,
            KeyThrottle::new("test", "fp-routine", 2.0),
        ));
        snap.replace(items.clone(), Instant::now() - Duration::from_secs(200));
        let routine = Freshness {
            max_age: Duration::from_secs(60),
            urgent: false,
            direct: false,
            priority: Priority::Routine,
        };
        // A listing of 50 pages is in flight (started by another routine read).
        let lister = listing_in_flight(&snap).await;
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            snap.observe(
                "1",
                routine,
                |_| async { panic!("no GET for a routine read") },
                |_| async { panic!("no second listing") },
            ),
        )
        .await
        .expect("the routine read waited for the listing");
        match read {
            // 50 pages at 2 requests/s: back in about 25 s.
            Err(CloudError::Deferred { retry_in, .. }) => assert!(
                retry_in > Duration::from_secs(20) && retry_in < Duration::from_secs(30),
                "{retry_in:?}"
            ),
            other => panic!("not deferred: {other:?}"),
        }
        // An urgent read (a transitional resource) is deferred the same way.
        let urgent_read = snap
            .observe(
                "2",
                urgent(),
                |_| async { panic!("no GET: 50 pages cost less than 5,000 GETs") },
                |_| async { panic!("no second listing") },
            )
            .await;
        assert!(
            matches!(urgent_read, Err(CloudError::Deferred { .. })),
            "{urgent_read:?}"
        );
        lister.abort();
        assert!(lister.await.unwrap_err().is_cancelled());
        // With no listing in flight, it lists (and a fresh snapshot answers without a call).
        assert_eq!(
            count_calls_as(&snap, "1", &items, routine, false).await,
            (0, 1)
        );
        assert_eq!(
            count_calls_as(&snap, "2", &items, routine, false).await,
            (0, 0)
        );
    }

    #[tokio::test]
    async fn a_slow_get_never_replaces_news_that_arrived_while_it_was_asked() {
        let snap = Snapshot::<It>::new(100);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let slow = snap.get_one("a", async {
            let _ = rx.await;
            Ok(It("a".into(), true))
        });
        let write = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            snap.put(It("a".into(), false));
            let _ = tx.send(());
        };
        let (got, ()) = tokio::join!(slow, write);
        // The reader gets its answer; the snapshot keeps the write that came after it asked.
        assert_eq!(got.unwrap(), Some(It("a".into(), true)));
        assert_eq!(snap.lookup("a"), Some(It("a".into(), false)));
        // An answer asked after the write does replace it.
        let fresh = snap.get_one("a", async { Ok(It("a".into(), true)) }).await;
        assert_eq!(fresh.unwrap(), Some(It("a".into(), true)));
        assert_eq!(snap.lookup("a"), Some(It("a".into(), true)));
    }

    #[test]
    fn pacing_never_waits_longer_than_its_cap() {
        let slow = Snapshot::<It>::paced(100, KeyThrottle::new("test", "fp6", 0.01));
        assert_eq!(slow.urgent_interval(50), MAX_URGENT_INTERVAL);
    }
}
