//! One throttle per API key, shared by everything that uses the key; budgets shared by groups of
//! keys.
//!
//! The cloud limits requests per key (Strettch: 2 requests/second, counted in fixed windows of one
//! unix second as the server sees them), and may limit a group of keys together (a workspace's
//! budget). A [`KeyThrottle`] paces every request of one key:
//!
//! * **Limits**: a list of [`LimitSpec`]s, "N requests per W, burst b", each scoped to the key
//!   ([`Scope::Key`]) or to a budget group ([`Scope::BudgetGroup`], shared by every key of the
//!   ProviderConfigs naming the group). Every request takes one cell of *every* limit on its
//!   path — all Key limits of its key and all limits of its groups — at once, only when all of
//!   them allow it. Each limit is a GCRA whose cell interval is derived from N, W and b so that
//!   **no window of length W ever holds more than N** requests, rolling or fixed
//!   ([`pace`] has the math and its proof sketch), with room for the network:
//!   `T = max(W / ((N - b + 1) × 0.97), (W + 50 ms) / (N - b + 1))`, so `N + 1` consecutive
//!   requests span at least `W + 50 ms` ([`NETWORK_JITTER`]) and `W / 0.97`
//!   ([`PACING_FACTOR`]). The single-rate form `rateLimit.requestsPerSecond: r` is one Key limit
//!   `r per 1s`, burst 1, paced the same way (Strettch's 2/s: one permit every 525 ms). A
//!   ProviderConfig's burst is at most half its requests ([`LimitSpec::validate`]).
//! * **No budget in hand at start**: a new limit's whole burst is spent when it is made; its
//!   first permit comes one interval after it was made. A process that replaces another (crash,
//!   rollout, failover) cannot know what its predecessor spent in the server's current window; a
//!   predecessor that paced the same way left the limit no fuller than that, so the two
//!   processes' requests together keep every window within N. The first answers' rate-limit
//!   headers then tell the real state (a remaining budget of 0 holds the key until the reset).
//! * **Limits that change keep the promise**: the key, each group and each class budget keep a
//!   bounded log of when they let requests out ([`pace::PermitLog`]); a limit added or changed at
//!   run time (an edited ProviderConfig, a second one with a lower limit, a limit the server
//!   reports, an adaptive limit that learns) starts from that log, so the window holding the
//!   change holds no more than the new N, and the first request goes as soon as it has room.
//! * **Who sets the limits**: every ProviderConfig using the key reports its limits and budget
//!   group ([`ThrottleRegistry::throttle_for`]); the key's path is the union of the *current*
//!   ones (the lowest rate wins; for adaptive and class limits of the same window, the lowest
//!   figures), so relaxing a limit again or deleting a ProviderConfig
//!   ([`ThrottleRegistry::release_user`]) restores the pace without a restart. A registry entry
//!   and its metric series go away once no ProviderConfig uses the key and no client holds its
//!   throttle; a group goes away with its last key.
//! * **Adaptive limits** ([`adaptive`]), for clouds that do not publish their limits (Vertra's
//!   per-minute and per-day budgets depend on the plan): a provider's [`Policy`] may list
//!   [`AdaptiveLimit`]s, Key limits whose N starts conservative, takes the limit a 429 body or
//!   the headers report for their window, halves on a 429 that reports none, and grows back by
//!   10% per clean window. Their N is exported as `stratus_cloud_adaptive_limit`.
//! * **Operation classes** ([`class`]): a [`ClassLimit`] is taken only by requests of its class
//!   (deploys per hour; lifecycle calls per app per minute, with `per_subject`).
//!   [`KeyThrottle::acquire_op`] first waits for the class permit in the class's own queue, then
//!   queues for the key like any request, so a deploy waiting an hour never stands at the head
//!   of the key's queue. A 429 for a class ([`KeyThrottle::rate_limited`] with a class) holds
//!   that class (or one subject of it), never the key.
//! * **Priority**: a small queue in front of the limits. When a permit is available it goes to
//!   the highest-priority waiter ([`Priority::Write`] > [`Priority::Create`] >
//!   [`Priority::Urgent`] > [`Priority::Routine`]). There is no background task: the waiter at the head of the queue is
//!   the one that waits for the limits, everyone else waits for the head to change. A waiter
//!   whose future is dropped leaves the queue in its destructor, so cancellation never consumes
//!   a permit or blocks the queue. A budget group serves the heads of its keys' queues the same
//!   way (best priority, then arrival), so priorities hold across every key of a group: a head
//!   registers with its groups once its own key's limits allow it, and takes the group's cells
//!   only when no better head of another key is waiting for them. A class queue serves in the
//!   same order, skipping only waiters whose own subject has no budget yet.
//! * **Fairness between namespaces**: within one priority, requests are served round-robin by
//!   *flow*, the namespace of the object being reconciled ([`in_flow`], set by the reconciler;
//!   [`queue`] has the details), at the key and in every class queue. One team applying 500
//!   objects delays another team's single change by one request, not 500.
//! * **Server feedback** ([`feedback`]): rate-limit headers of every answer go to
//!   [`KeyThrottle::observe_headers`], with the window their limit counts (per second unless
//!   [`RateLimitHeaders::window`] says otherwise); a remaining budget of 0 holds every request
//!   of the key until the window resets; a 429 goes to [`KeyThrottle::rate_limited`] (or, as
//!   before, [`KeyThrottle::hold_for`]). A limit the server reports that is lower than the
//!   configured rate lowers the pace to it. Reset times are read against the answer's `Date`
//!   header ([`until_reset`]), so a skewed local clock never turns an exhausted window into a
//!   long hold; an implausible reset falls back to one window. Every hold is capped at
//!   [`KeyThrottle::max_hold`], the longest window on the key's path (1 min to 24 h): a daily
//!   quota's 429 asking for 5 hours holds 5 hours.
//! * **Routine reads do not wait long**: [`KeyThrottle::acquire_or_defer`] (and
//!   [`KeyThrottle::acquire_op_or_defer`]) gives a [`Priority::Routine`] request up (without
//!   spending a permit) when no permit can be had within [`ROUTINE_PATIENCE`], so a routine
//!   refresh never holds a bounded reconcile worker while the key is busy with writes; the
//!   caller tries again later.
//! * **Creates wait for their turn off the workers** ([`waitlist`]): a create asks
//!   [`KeyThrottle::admit_create`] before it records an attempt; when the key cannot send it
//!   within [`CREATE_PATIENCE`], it keeps a place in the key's line of creates and its
//!   reconcile gives the worker back until its turn, so a burst of creates never keeps a
//!   user's change from being reconciled.
//!
//! Time is `tokio::time`, so tests can run the throttle under `tokio::time::pause`.

pub mod adaptive;
pub mod class;
pub mod feedback;
pub mod pace;
pub mod queue;
mod registry;
pub mod waitlist;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use tokio::time::Instant;

pub use adaptive::AdaptiveLimit;
pub use class::{ClassLimit, Op};
pub use feedback::{
    DEFAULT_WINDOW, Deferred, MAX_HEADER_HOLD, RESET_MARGIN, RateLimitHeaders, RateLimited,
    until_reset, until_reset_within,
};
pub use pace::{
    LimitSpec, MAX_LIMITS, MAX_PER, MIN_PER, MIN_REQUESTS_PER_SECOND, NETWORK_JITTER,
    PACING_FACTOR, Scope, Window, format_duration, max_in_any_window, pacing_period,
};
pub use registry::{ThrottleRegistry, registry};

use adaptive::Learned;
use class::Classes;
use pace::{Gcra, PermitLog};
pub use queue::Order;
use queue::{FairQueue, Ticket};
pub use waitlist::CREATE_PATIENCE;
use waitlist::{KeyLoad, Waitlist};

/// How long a [`Priority::Routine`] request may wait for a permit in
/// [`KeyThrottle::acquire_or_defer`] before it gives its place up.
pub const ROUTINE_PATIENCE: Duration = Duration::from_secs(1);
/// How long a write of an operation class waits for the class's own limit before it gives its
/// place up ([`KeyThrottle::acquire_op_or_defer`]): long enough for a lifecycle call's next
/// slot, short against an hourly deploy budget.
pub const CLASS_PATIENCE: Duration = Duration::from_secs(10);

/// Which waiter gets the next permit. Ordered: `Write < Create < Urgent < Routine`, served in
/// that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// A write caused by a user's change to a resource that exists (an update, a power
    /// action, a delete), and the reads that change needs.
    Write,
    /// A create: a user's change too, but one that comes in bulk (a manifest of 500 objects
    /// applied at once), so a change to an existing resource goes before a burst of creates.
    Create,
    /// A read about a resource in a transitional state.
    Urgent,
    /// A routine refresh.
    Routine,
}

impl Priority {
    pub fn as_str(&self) -> &'static str {
        match self {
            Priority::Write => "write",
            Priority::Create => "create",
            Priority::Urgent => "urgent",
            Priority::Routine => "routine",
        }
    }
}

/// What one user of a key (a ProviderConfig) asks for: its limits, its budget group, and the
/// provider's adaptive and class limits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    pub limits: Vec<LimitSpec>,
    /// The budget group whose [`Scope::BudgetGroup`] limits this key shares.
    pub budget_group: Option<String>,
    /// Key limits whose N is learned from the server ([`adaptive`]).
    pub adaptive: Vec<AdaptiveLimit>,
    /// Limits only requests of one operation class take ([`class`]).
    pub classes: Vec<ClassLimit>,
}

impl Policy {
    pub fn new(limits: Vec<LimitSpec>, budget_group: Option<String>) -> Self {
        Policy {
            limits,
            budget_group: budget_group.filter(|g| !g.is_empty()),
            adaptive: Vec::new(),
            classes: Vec::new(),
        }
    }

    /// One more adaptive Key limit.
    pub fn with_adaptive(mut self, limit: AdaptiveLimit) -> Self {
        self.adaptive.push(limit.normalized());
        self
    }

    /// One more class limit.
    pub fn with_class(mut self, limit: ClassLimit) -> Self {
        self.classes.push(limit);
        self
    }

    /// The key's part of the policy: its Key limits, adaptive and class limits, no group.
    pub fn key_part(&self) -> Policy {
        Policy {
            limits: self.key_limits(),
            budget_group: None,
            adaptive: self.adaptive.clone(),
            classes: self.classes.clone(),
        }
    }

    /// The limits of the key itself. A group limit without a group (refused in a
    /// ProviderConfig) counts for the key alone, which is never looser.
    pub fn key_limits(&self) -> Vec<LimitSpec> {
        self.limits
            .iter()
            .filter(|l| l.scope == Scope::Key || self.budget_group.is_none())
            .copied()
            .collect()
    }

    /// The limits shared by the budget group.
    pub fn group_limits(&self) -> Vec<LimitSpec> {
        if self.budget_group.is_none() {
            return Vec::new();
        }
        self.limits
            .iter()
            .filter(|l| l.scope == Scope::BudgetGroup)
            .copied()
            .collect()
    }
}

/// The single-rate form: one Key limit of `requests_per_second` per second.
impl From<f64> for Policy {
    fn from(requests_per_second: f64) -> Self {
        Policy::new(vec![LimitSpec::per_second(requests_per_second)], None)
    }
}

impl From<Vec<LimitSpec>> for Policy {
    fn from(limits: Vec<LimitSpec>) -> Self {
        Policy::new(limits, None)
    }
}

tokio::task_local! {
    static FLOW: Arc<str>;
}

/// Run `fut` with `flow` (a namespace) as the flow of every throttle permit it asks for: within a
/// priority, flows are served round-robin. The reconciler wraps each reconcile in the object's
/// namespace.
pub fn in_flow<F: Future>(flow: &str, fut: F) -> impl Future<Output = F::Output> + use<F> {
    FLOW.scope(Arc::from(flow), fut)
}

/// The flow of the current task ([`in_flow`]); `""` outside of one.
pub fn current_flow() -> Arc<str> {
    FLOW.try_with(Arc::clone).unwrap_or_else(|_| Arc::from(""))
}

static NEXT_TICKET: AtomicU64 = AtomicU64::new(0);
static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

/// The shared budget of a budget group: its limits, and the heads of its keys' queues waiting
/// for them. Keys of the group hold it; the registry finds it by name.
pub struct Group {
    name: String,
    state: Mutex<GroupState>,
    /// Woken whenever the best waiter or the limits may have changed, and on every grant.
    changed: Notify,
}

struct GroupState {
    limits: Vec<Gcra>,
    /// When the group let requests out, for limits made later.
    log: PermitLog,
    /// key id → the (priority, ticket) of its queue's head, for heads whose own key's limits
    /// allow them now.
    waiting: BTreeMap<u64, (Priority, Ticket)>,
}

impl GroupState {
    fn best(&self) -> Option<(Priority, Ticket, u64)> {
        self.waiting.iter().map(|(k, (p, t))| (*p, *t, *k)).min()
    }

    fn earliest(&self, now: Instant) -> Instant {
        self.limits
            .iter()
            .map(Gcra::earliest)
            .max()
            .unwrap_or(now)
            .max(now)
    }

    /// Removes `key`'s registration (if `ticket`, only that one); whether the best changed.
    fn leave(&mut self, key: u64, ticket: Option<Ticket>) -> bool {
        match self.waiting.get(&key) {
            Some((_, t)) if ticket.is_none_or(|x| x == *t) => {
                let before = self.best();
                self.waiting.remove(&key);
                before != self.best()
            }
            _ => false,
        }
    }
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Group")
            .field("name", &self.name)
            .field(
                "limits",
                &st.limits
                    .iter()
                    .map(|l| l.spec().to_string())
                    .collect::<Vec<_>>(),
            )
            .field("waiting", &st.waiting.len())
            .finish()
    }
}

impl Group {
    /// A group budget of its own (tests, tools); the registry shares one per name.
    pub fn new(name: &str, limits: &[LimitSpec]) -> Arc<Self> {
        let now = Instant::now();
        let mut gcras = Vec::new();
        let mut log = PermitLog::new(now);
        pace::respec(&mut gcras, limits, now, &log);
        log.set_bounds_for(limits, 0, now);
        Arc::new(Group {
            name: name.to_string(),
            state: Mutex::new(GroupState {
                limits: gcras,
                log,
                waiting: BTreeMap::new(),
            }),
            changed: Notify::new(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The group's limits now.
    pub fn limits(&self) -> Vec<LimitSpec> {
        self.state.lock().limits.iter().map(|l| *l.spec()).collect()
    }

    /// Replace the limits; those that stay keep their state, a new one counts what the group
    /// let out in its window ([`pace`]).
    pub fn set_limits(&self, limits: &[LimitSpec]) {
        let now = Instant::now();
        let mut st = self.state.lock();
        let st = &mut *st;
        let changed = pace::respec(&mut st.limits, limits, now, &st.log);
        st.log.set_bounds_for(limits, 0, now);
        if changed {
            self.changed.notify_waiters();
        }
    }
}

struct State {
    /// The Key limits the key's users set.
    configured: Vec<LimitSpec>,
    /// The limits the server reported, by the window they are over (headers, 429 bodies).
    server_limits: BTreeMap<Duration, u32>,
    /// Key limits whose N is learned.
    adaptive: Vec<Learned>,
    /// Every Key limit on the path as a limiter: the configured ones, the server's that bind
    /// (below the configured rate, no adaptive limit of their window) and the adaptive ones.
    limits: Vec<Gcra>,
    /// When the key let requests out, for limits made later.
    log: PermitLog,
    /// The budget groups on the key's path, ordered by name (the order their locks are taken).
    groups: Vec<Arc<Group>>,
    queue: FairQueue,
    /// No request of the key is released before this instant.
    hold: Option<Instant>,
    classes: Classes,
    /// Creates waiting for their turn off the workers.
    line: Waitlist,
}

impl State {
    /// How long the hold has still to run.
    fn hold_left(&self) -> Duration {
        self.hold
            .map(|h| h.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    }

    /// One permit of the slowest limit on the key's path.
    fn slowest_interval(&self) -> Duration {
        self.limits
            .iter()
            .map(Gcra::interval)
            .chain(self.groups.iter().flat_map(|g| {
                g.state
                    .lock()
                    .limits
                    .iter()
                    .map(Gcra::interval)
                    .collect::<Vec<_>>()
            }))
            .max()
            .unwrap_or_default()
    }

    fn configured_rps(&self) -> f64 {
        self.configured
            .iter()
            .map(LimitSpec::rate)
            .reduce(f64::min)
            .unwrap_or(f64::INFINITY)
    }

    /// A limit the server reported, as a limit: per second as the single-rate form has it.
    fn server_spec(per: Duration, limit: u32) -> LimitSpec {
        if per == DEFAULT_WINDOW {
            LimitSpec::per_second(f64::from(limit))
        } else {
            LimitSpec::key(limit, per)
        }
    }

    /// The server's limits that bind: below the configured rate, and not learned by an adaptive
    /// limit of the same window.
    fn binding_server_specs(&self) -> Vec<LimitSpec> {
        let configured = self.configured_rps();
        self.server_limits
            .iter()
            .filter(|(per, _)| !self.adaptive.iter().any(|a| a.per() == **per))
            .map(|(per, l)| Self::server_spec(*per, *l))
            .filter(|spec| spec.rate() < configured)
            .collect()
    }

    /// Bring the limiters in line with the configured, server and adaptive limits; a new
    /// limiter replays the log, so no change lets a window hold more than its N. Whether
    /// anything changed.
    fn retune(&mut self, now: Instant) -> bool {
        let mut specs = self.configured.clone();
        specs.extend(self.binding_server_specs());
        specs.extend(self.adaptive.iter().map(Learned::spec));
        let changed = pace::respec(&mut self.limits, &specs, now, &self.log);
        let most = self
            .adaptive
            .iter()
            .map(|a| a.bounds.max)
            .max()
            .unwrap_or(0);
        self.log.set_bounds_for(&specs, most, now);
        changed
    }

    /// The longest window on the key's path: its limits, the windows the server reported, its
    /// groups' limits and its class limits.
    fn longest_window(&self) -> Duration {
        let key = self
            .limits
            .iter()
            .map(|l| l.spec().per)
            .chain(self.server_limits.keys().copied())
            .chain(self.adaptive.iter().map(Learned::per))
            .max()
            .unwrap_or_default();
        let groups = self
            .groups
            .iter()
            .flat_map(|g| {
                g.state
                    .lock()
                    .limits
                    .iter()
                    .map(|l| l.spec().per)
                    .collect::<Vec<_>>()
            })
            .max()
            .unwrap_or_default();
        key.max(groups).max(self.classes.longest())
    }

    /// This key no longer waits at its groups (`ticket`: only if that is what it registered).
    fn leave_groups(&self, key: u64, ticket: Option<Ticket>) {
        for g in &self.groups {
            if g.state.lock().leave(key, ticket) {
                g.changed.notify_waiters();
            }
        }
    }
}

enum Step {
    Granted,
    /// Not at the head of the queue, or behind a better waiter of a group: wait for a change.
    Wait,
    /// At the head: wait until then (or until something changes).
    Until(Instant),
}

/// The throttle of one API key. Obtain it from [`registry()`]; see the module docs.
pub struct KeyThrottle {
    id: u64,
    provider: String,
    fingerprint: String,
    state: Mutex<State>,
    /// Woken whenever the head of the queue, the hold or the limits may have changed.
    changed: Notify,
    /// Woken whenever a class queue, budget or hold may have changed.
    class_changed: Notify,
    /// Permits handed out so far.
    granted: AtomicU64,
}

impl Drop for KeyThrottle {
    /// The key is gone from this process: so are its metric series.
    fn drop(&mut self) {
        let metrics = crate::metrics::global();
        metrics.forget_key(&self.provider, &self.fingerprint);
        for a in &self.state.get_mut().adaptive {
            metrics.forget_adaptive_limit(&self.provider, &self.fingerprint, a.per());
        }
    }
}

impl std::fmt::Debug for KeyThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock();
        f.debug_struct("KeyThrottle")
            .field("provider", &self.provider)
            .field("key", &self.fingerprint)
            .field("requests_per_second", &st.configured_rps())
            .field(
                "limits",
                &st.limits
                    .iter()
                    .map(|l| l.spec().to_string())
                    .collect::<Vec<_>>(),
            )
            .field(
                "adaptive",
                &st.adaptive
                    .iter()
                    .map(|a| format!("{} per {}", a.n, format_duration(a.per())))
                    .collect::<Vec<_>>(),
            )
            .field(
                "classes",
                &st.classes
                    .rules()
                    .iter()
                    .map(ClassLimit::to_string)
                    .collect::<Vec<_>>(),
            )
            .field(
                "groups",
                &st.groups.iter().map(|g| g.name()).collect::<Vec<_>>(),
            )
            .field("waiting", &st.queue.len())
            .finish()
    }
}

/// Waits for any of `groups` to change; forever if there are none.
async fn any_changed(notified: &mut [Pin<Box<Notified<'_>>>]) {
    if notified.is_empty() {
        std::future::pending::<()>().await;
    } else {
        futures::future::select_all(notified.iter_mut()).await;
    }
}

impl KeyThrottle {
    /// A throttle of its own, not shared through the registry (its budget group, if any, is its
    /// own too). Production code wants [`ThrottleRegistry::throttle_for`]; this exists for tests
    /// and tools. `policy`: a rate in requests per second, or a [`Policy`].
    pub fn new(provider: &str, fingerprint: &str, policy: impl Into<Policy>) -> Arc<Self> {
        let policy = policy.into();
        let groups = match &policy.budget_group {
            Some(name) => vec![Group::new(name, &policy.group_limits())],
            None => Vec::new(),
        };
        Self::with_path(provider, fingerprint, &policy.key_part(), groups)
    }

    /// A throttle with this key policy ([`Policy::key_part`]) and groups (the registry's
    /// constructor).
    pub(crate) fn with_path(
        provider: &str,
        fingerprint: &str,
        key: &Policy,
        groups: Vec<Arc<Group>>,
    ) -> Arc<Self> {
        let now = Instant::now();
        let t = Arc::new(KeyThrottle {
            id: NEXT_KEY.fetch_add(1, Ordering::Relaxed),
            provider: provider.to_string(),
            fingerprint: fingerprint.to_string(),
            state: Mutex::new(State {
                configured: Vec::new(),
                server_limits: BTreeMap::new(),
                adaptive: Vec::new(),
                limits: Vec::new(),
                log: PermitLog::new(now),
                groups: Vec::new(),
                queue: FairQueue::default(),
                hold: None,
                classes: Classes::new(now),
                line: Waitlist::default(),
            }),
            changed: Notify::new(),
            class_changed: Notify::new(),
            granted: AtomicU64::new(0),
        });
        t.set_path(key, groups);
        t
    }

    /// Replace the key's policy ([`Policy::key_part`]: Key, adaptive and class limits) and
    /// groups (the registry calls it as the ProviderConfigs using the key change). Limits that
    /// stay keep their state, adaptive ones what they learned; a new one counts what the key
    /// let out in its window ([`pace`]).
    pub(crate) fn set_path(&self, key: &Policy, mut groups: Vec<Arc<Group>>) {
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        let mut st = self.state.lock();
        let now = Instant::now();
        let mut configured = key.key_limits();
        configured.sort();
        configured.dedup();
        st.configured = configured;
        let adaptive = merge_adaptive(&key.adaptive);
        let mut learned = std::mem::take(&mut st.adaptive);
        let metrics = crate::metrics::global();
        for gone in learned
            .iter()
            .filter(|l| !adaptive.iter().any(|a| a.per == l.per()))
        {
            metrics.forget_adaptive_limit(&self.provider, &self.fingerprint, gone.per());
        }
        st.adaptive = adaptive
            .into_iter()
            .map(|a| match learned.iter().position(|l| l.per() == a.per) {
                Some(i) => {
                    let mut l = learned.swap_remove(i);
                    l.rebound(a);
                    l
                }
                None => Learned::new(a, now),
            })
            .collect();
        let mut changed = st.retune(now);
        changed |= st.classes.set_rules(&merge_classes(&key.classes), now);
        let same_groups = st.groups.len() == groups.len()
            && st
                .groups
                .iter()
                .zip(&groups)
                .all(|(a, b)| Arc::ptr_eq(a, b));
        if !same_groups {
            for old in &st.groups {
                if !groups.iter().any(|g| Arc::ptr_eq(g, old))
                    && old.state.lock().leave(self.id, None)
                {
                    old.changed.notify_waiters();
                }
            }
            st.groups = groups;
            changed = true;
        }
        self.report_adaptive(&st);
        drop(st);
        if changed {
            self.changed.notify_waiters();
            self.class_changed.notify_waiters();
        }
    }

    /// Replace only the key's configured limits.
    fn set_key_limits(&self, limits: &[LimitSpec]) {
        let (mut key, groups) = {
            let st = self.state.lock();
            (
                Policy {
                    adaptive: st.adaptive.iter().map(|a| a.bounds).collect(),
                    classes: st.classes.rules(),
                    ..Policy::default()
                },
                st.groups.clone(),
            )
        };
        key.limits = limits.to_vec();
        self.set_path(&key, groups);
    }

    /// The adaptive limits' N, to the metrics.
    fn report_adaptive(&self, st: &State) {
        let metrics = crate::metrics::global();
        for a in &st.adaptive {
            metrics.adaptive_limit(&self.provider, &self.fingerprint, a.per(), a.n);
        }
    }

    /// Like [`acquire`](Self::acquire), except that a [`Priority::Routine`] request gives its place
    /// up when it cannot have a permit within [`ROUTINE_PATIENCE`]: at once when the hold and the
    /// queue ahead already promise a longer wait, else when the patience runs out. A deferred
    /// request spent no permit; try it again after [`Deferred::retry_in`]. Writes and urgent
    /// reads always wait, as with `acquire`.
    pub async fn acquire_or_defer(&self, priority: Priority) -> Result<(), Deferred> {
        if priority != Priority::Routine {
            self.acquire(priority).await;
            return Ok(());
        }
        let backlog = self.backlog();
        if backlog > ROUTINE_PATIENCE {
            return Err(self.defer(backlog));
        }
        match tokio::time::timeout(ROUTINE_PATIENCE, self.acquire(priority)).await {
            Ok(()) => Ok(()),
            Err(_) => Err(self.defer(self.backlog())),
        }
    }

    /// A lower bound of how long a request arriving now at the back of the queue waits: the
    /// hold, then one interval of the slowest limit on the path per waiter ahead.
    pub(crate) fn backlog(&self) -> Duration {
        let st = self.state.lock();
        let waiters = u32::try_from(st.queue.len()).unwrap_or(u32::MAX);
        st.hold_left()
            .saturating_add(st.slowest_interval().saturating_mul(waiters))
    }

    /// Let `subject`'s create go on to send its request now, when the key can send it within
    /// [`CREATE_PATIENCE`], or keep its place in the key's line of creates ([`waitlist`]) and
    /// say when to ask again: the caller gives its worker back meanwhile, so a burst of creates
    /// never keeps a user's change from being reconciled. Spends no permit.
    pub fn admit_create(&self, subject: &str) -> Result<(), Deferred> {
        let mut st = self.state.lock();
        let load = KeyLoad {
            hold: st.hold_left(),
            interval: st.slowest_interval(),
            queued_writes: st.queue.ahead_of(Priority::Create),
        };
        let answer = st.line.ask(subject, &current_flow(), load, Instant::now());
        let waiting = st.line.len();
        drop(st);
        answer.map_err(|retry_in| {
            tracing::debug!(key = %self.fingerprint, retry_in_ms = retry_in.as_millis() as u64, waiting, "create waits for its turn at the key");
            Deferred { retry_in }
        })
    }

    pub(crate) fn defer(&self, backlog: Duration) -> Deferred {
        let retry_in = backlog.max(ROUTINE_PATIENCE);
        tracing::trace!(key = %self.fingerprint, retry_in_ms = retry_in.as_millis() as u64, "routine read deferred: no budget now");
        Deferred { retry_in }
    }

    /// Returns when this request may be sent, in the current task's flow ([`in_flow`]). Waiters
    /// are served by priority, flows round-robin within one, FIFO within a flow. Cancel-safe:
    /// dropping the future leaves the queue without using a permit.
    pub async fn acquire(&self, priority: Priority) {
        self.acquire_in(&current_flow(), priority).await
    }

    /// [`acquire`](Self::acquire) in flow `flow` (a namespace).
    pub async fn acquire_in(&self, flow: &str, priority: Priority) {
        let started = Instant::now();
        let ticket = NEXT_TICKET.fetch_add(1, Ordering::Relaxed);
        self.state
            .lock()
            .queue
            .push(priority, Arc::from(flow), ticket);
        crate::metrics::global().throttle_queued(&self.provider, priority.as_str(), 1);
        let mut guard = QueueSlot {
            throttle: self,
            ticket,
            priority,
            granted: false,
        };
        // The newcomer may have become the head: let the previous head step back.
        self.changed.notify_waiters();
        loop {
            let groups = self.state.lock().groups.clone();
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut group_changed: Vec<_> = groups
                .iter()
                .map(|g| {
                    let mut n = Box::pin(g.changed.notified());
                    n.as_mut().enable();
                    n
                })
                .collect();
            match self.try_grant(ticket) {
                Step::Granted => break,
                Step::Wait => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = any_changed(&mut group_changed) => {}
                    }
                }
                Step::Until(t) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t) => {}
                        _ = &mut notified => {}
                        _ = any_changed(&mut group_changed) => {}
                    }
                }
            }
        }
        guard.granted = true;
        drop(guard);
        self.granted.fetch_add(1, Ordering::Relaxed);
        // The next waiter is the new head.
        self.changed.notify_waiters();
        let waited = started.elapsed().as_secs_f64();
        crate::metrics::global().throttle_wait(
            &self.provider,
            &self.fingerprint,
            priority.as_str(),
            waited,
        );
        tracing::trace!(key = %self.fingerprint, priority = priority.as_str(), flow, waited, "throttle permit");
    }

    fn try_grant(&self, ticket: Ticket) -> Step {
        let mut st = self.state.lock();
        let Some((priority, head)) = st.queue.head() else {
            return Step::Wait;
        };
        if head != ticket {
            return Step::Wait;
        }
        let now = Instant::now();
        if let Some(hold) = st.hold {
            if hold > now {
                st.leave_groups(self.id, None);
                return Step::Until(hold);
            }
            st.hold = None;
        }
        let key_ready = st.limits.iter().map(Gcra::earliest).max().unwrap_or(now);
        if key_ready > now {
            // Not waiting at the groups while the key itself is not ready: a head of another
            // key that is ready may have the group's cells meanwhile.
            st.leave_groups(self.id, None);
            return Step::Until(key_ready);
        }
        let mut guards: Vec<_> = st.groups.iter().map(|g| (g, g.state.lock())).collect();
        let mut behind = false;
        let mut ready = now;
        for (g, gs) in guards.iter_mut() {
            let before = gs.best();
            gs.waiting.insert(self.id, (priority, ticket));
            let best = gs.best();
            if best != before {
                g.changed.notify_waiters();
            }
            if best == Some((priority, ticket, self.id)) {
                ready = ready.max(gs.earliest(now));
            } else {
                behind = true;
            }
        }
        if behind {
            return Step::Wait;
        }
        if ready > now {
            return Step::Until(ready);
        }
        for (g, gs) in guards.iter_mut() {
            for l in gs.limits.iter_mut() {
                l.consume(now);
            }
            gs.log.record(now);
            gs.waiting.remove(&self.id);
            g.changed.notify_waiters();
        }
        drop(guards);
        let st = &mut *st;
        for l in st.limits.iter_mut() {
            l.consume(now);
        }
        st.log.record(now);
        st.queue.served(ticket);
        let mut recovered = false;
        for a in st.adaptive.iter_mut() {
            recovered |= a.recover(now);
        }
        if recovered {
            st.retune(now);
            self.report_adaptive(st);
        }
        Step::Granted
    }

    /// Lower the configured rate to `requests_per_second` if that is lower (never raises it):
    /// the key's limits become that one rate.
    pub fn restrict_rate(&self, requests_per_second: f64) {
        if LimitSpec::per_second(requests_per_second).rate() < self.requests_per_second() {
            self.set_rate(requests_per_second);
        }
    }

    /// Make the key's limits one rate, up or down. The registry sets the limits when the
    /// ProviderConfigs using the key change; use [`ThrottleRegistry::throttle_for`] rather than
    /// calling it directly.
    pub fn set_rate(&self, requests_per_second: f64) {
        self.set_key_limits(&[LimitSpec::per_second(requests_per_second)]);
    }

    /// How many permits were handed out so far (every request sent through the key).
    pub fn permits_granted(&self) -> u64 {
        self.granted.load(Ordering::Relaxed)
    }

    /// How many requests are waiting for a permit.
    pub fn waiting(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// The key's fingerprint (never the key).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The key's own limits now, as its users configured them.
    pub fn key_limits(&self) -> Vec<LimitSpec> {
        self.state.lock().configured.clone()
    }

    /// The adaptive limits as they stand: (window, N now).
    pub fn adaptive_limits(&self) -> Vec<(Duration, u32)> {
        self.state
            .lock()
            .adaptive
            .iter()
            .map(|a| (a.per(), a.n))
            .collect()
    }

    /// The class limits (merged), and what the adaptive ones learned: (class, window, N now).
    pub fn class_limits(&self) -> (Vec<ClassLimit>, Vec<(String, Duration, u32)>) {
        let st = self.state.lock();
        (st.classes.rules(), st.classes.learned())
    }

    /// The budget groups on the key's path.
    pub fn groups(&self) -> Vec<Arc<Group>> {
        self.state.lock().groups.clone()
    }

    /// The configured rate: the lowest long-run rate (`N / W`) of the key's own limits.
    pub fn requests_per_second(&self) -> f64 {
        self.state.lock().configured_rps()
    }

    /// The long-run rate actually allowed: the lowest of the key's limits (configured, reported
    /// by the server, adaptive) and its groups' limits.
    pub fn effective_requests_per_second(&self) -> f64 {
        let st = self.state.lock();
        let mut rps = st.configured_rps();
        for (per, l) in &st.server_limits {
            rps = rps.min(State::server_spec(*per, *l).rate());
        }
        for a in &st.adaptive {
            rps = rps.min(a.spec().rate());
        }
        for g in &st.groups {
            for l in &g.state.lock().limits {
                rps = rps.min(l.spec().rate());
            }
        }
        rps
    }
}

/// The adaptive limits of several users, one per window, the lowest figures winning.
fn merge_adaptive(limits: &[AdaptiveLimit]) -> Vec<AdaptiveLimit> {
    let mut out: Vec<AdaptiveLimit> = Vec::new();
    for l in limits {
        let l = l.normalized();
        match out.iter_mut().find(|o| o.per == l.per) {
            Some(o) => *o = o.merge(l),
            None => out.push(l),
        }
    }
    out.sort();
    out
}

/// The class limits of several users, one per class, window and scope, the lowest figures
/// winning.
fn merge_classes(limits: &[ClassLimit]) -> Vec<ClassLimit> {
    let mut out: Vec<ClassLimit> = Vec::new();
    for l in limits {
        match out.iter_mut().find(|o| o.same_rule(l)) {
            Some(o) => *o = o.merge(l),
            None => out.push(l.clone()),
        }
    }
    out.sort();
    out
}

/// A waiter's place in the queue; leaving it (by cancellation) frees the place for the next one.
struct QueueSlot<'a> {
    throttle: &'a KeyThrottle,
    ticket: Ticket,
    priority: Priority,
    granted: bool,
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        // Granted or given up, the request has left the queue: the one place both pass.
        crate::metrics::global().throttle_queued(
            &self.throttle.provider,
            self.priority.as_str(),
            -1,
        );
        if !self.granted {
            let was_head = {
                let mut st = self.throttle.state.lock();
                let was_head = st.queue.head().map(|(_, t)| t) == Some(self.ticket);
                st.queue.remove(self.ticket);
                st.leave_groups(self.throttle.id, Some(self.ticket));
                was_head
            };
            if was_head {
                self.throttle.changed.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_adaptive;
