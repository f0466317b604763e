//! Limits of one class of operation (Vertra: deploys per account per hour, lifecycle calls per
//! app per minute), taken only by requests of that class, and holds after a class's 429.
//!
//! A request names its class (and subject: the app, the database) in an [`Op`]. It first waits
//! for a *class permit*, in a queue of its class alone, then queues for the key's limits like any
//! other request. A deploy waiting an hour for its class therefore never stands at the head of
//! the key's queue: observation and other classes keep flowing, and a per-subject limit of one
//! app never delays another app.
//!
//! * **Class queue**: waiters are served in the key queue's order (priority, then namespaces
//!   round-robin, then arrival), skipping a waiter whose own subject has no budget yet: a later
//!   request for another subject may go first, never one of lower priority for the same budget.
//! * **Counted when sent**: a class cell is taken when the key's permit is granted, not when the
//!   class permit is, since a request may wait in the key's queue for a while after it. So that
//!   a window never holds more than N of its class, a budget (the class, or one subject) has at
//!   most one request between its class permit and the key's permit at a time.
//! * **Holds**: a 429 for a class holds that class, or only one subject of it
//!   ([`KeyThrottle::rate_limited`]); a request that got its class permit before the hold goes
//!   back to the class queue once the key lets it out (its key permit is spent unused).
//! * **Memory**: subjects that have been idle for their longest window, with no hold and no
//!   waiter, are forgotten (and come back in exactly the state they left).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::adaptive::Learned;
use super::pace::{self, Gcra, LimitSpec, PermitLog};
use super::queue::{FairQueue, Ticket};
use super::{
    AdaptiveLimit, CLASS_PATIENCE, Deferred, KeyThrottle, NEXT_TICKET, Priority, ROUTINE_PATIENCE,
    Step,
};

/// A limit only requests of one class take: at most `requests` per `per`, for the whole class or,
/// with `per_subject`, for each subject (an app) apart. An `adaptive` class limit starts at
/// `requests` and learns within `1..=max` as an [`AdaptiveLimit`] does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassLimit {
    pub class: String,
    pub requests: u32,
    pub per: Duration,
    pub per_subject: bool,
    pub adaptive: bool,
    /// The most an adaptive limit may learn (ignored unless `adaptive`).
    pub max: u32,
}

impl ClassLimit {
    /// `requests` per `per` for every request of `class` together, not adaptive.
    pub fn new(class: &str, requests: u32, per: Duration) -> Self {
        ClassLimit {
            class: class.to_string(),
            requests,
            per,
            per_subject: false,
            adaptive: false,
            max: requests,
        }
        .normalized()
    }

    /// Counted for each subject apart.
    pub fn per_subject(self) -> Self {
        ClassLimit {
            per_subject: true,
            ..self
        }
    }

    /// Learned from the server, starting at `requests`, up to `max`.
    pub fn adaptive(self, max: u32) -> Self {
        ClassLimit {
            adaptive: true,
            max,
            ..self
        }
        .normalized()
    }

    fn normalized(self) -> Self {
        let requests = self.requests.max(1);
        ClassLimit {
            requests,
            per: self.per.clamp(super::MIN_PER, super::MAX_PER),
            max: if self.adaptive {
                self.max.max(requests)
            } else {
                requests
            },
            ..self
        }
    }

    /// Limits of two users for the same class, window and scope: the lowest figures win, and the
    /// result learns if either does.
    pub(crate) fn merge(&self, other: &ClassLimit) -> ClassLimit {
        ClassLimit {
            requests: self.requests.min(other.requests),
            adaptive: self.adaptive || other.adaptive,
            max: self.max.min(other.max),
            ..self.clone()
        }
        .normalized()
    }

    /// Whether `other` is the same limit of the same class (perhaps with other figures).
    pub(crate) fn same_rule(&self, other: &ClassLimit) -> bool {
        self.class == other.class && self.per == other.per && self.per_subject == other.per_subject
    }

    fn bounds(&self) -> AdaptiveLimit {
        AdaptiveLimit::new(self.per, self.requests, 1, self.max)
    }
}

impl std::fmt::Display for ClassLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} per {}",
            self.class,
            self.requests,
            pace::format_duration(self.per)
        )?;
        if self.per_subject {
            f.write_str(" per subject")?;
        }
        if self.adaptive {
            write!(f, " (adaptive up to {})", self.max)?;
        }
        Ok(())
    }
}

/// What a request is, for the throttle: its priority and, if it has one, its class and subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op<'a> {
    pub priority: Priority,
    /// The operation class (e.g. `"deploy"`), whose limits and holds the request takes.
    pub class: Option<&'a str>,
    /// What the class is counted for (e.g. an app id), for per-subject class limits and holds.
    pub subject: Option<&'a str>,
}

impl<'a> Op<'a> {
    /// A request without a class: only the key's limits.
    pub fn new(priority: Priority) -> Self {
        Op {
            priority,
            class: None,
            subject: None,
        }
    }

    /// The request is of `class`, for `subject` if the class counts per subject.
    pub fn class(self, class: &'a str, subject: Option<&'a str>) -> Self {
        Op {
            class: Some(class),
            subject,
            ..self
        }
    }
}

/// One class limit and, if it learns, what it learned.
#[derive(Debug)]
struct Rule {
    limit: ClassLimit,
    learned: Option<Learned>,
}

impl Rule {
    fn new(limit: ClassLimit, now: Instant) -> Self {
        let learned = limit.adaptive.then(|| Learned::new(limit.bounds(), now));
        Rule { limit, learned }
    }

    fn spec(&self) -> LimitSpec {
        let n = self.learned.as_ref().map_or(self.limit.requests, |l| l.n);
        LimitSpec::key(n, self.limit.per)
    }

    /// The most N this rule may come to have.
    fn most(&self) -> u32 {
        self.limit.max.max(self.limit.requests)
    }
}

/// The budget of a class, or of one subject of it.
#[derive(Debug)]
struct Slot {
    limits: Vec<Gcra>,
    log: PermitLog,
    hold: Option<Instant>,
    /// A request has its class permit and waits for the key's.
    reserved: bool,
    last: Option<Instant>,
}

enum Ready {
    Now,
    At(Instant),
    /// Reserved: wait for the reservation to end.
    Blocked,
}

fn combine(a: Ready, b: Ready) -> Ready {
    match (a, b) {
        (Ready::Blocked, _) | (_, Ready::Blocked) => Ready::Blocked,
        (Ready::At(x), Ready::At(y)) => Ready::At(x.max(y)),
        (Ready::At(x), Ready::Now) | (Ready::Now, Ready::At(x)) => Ready::At(x),
        (Ready::Now, Ready::Now) => Ready::Now,
    }
}

impl Slot {
    /// A budget as it would be had it existed since `began` without a request.
    fn new(specs: &[LimitSpec], most: u32, began: Instant, now: Instant) -> Self {
        let mut log = PermitLog::new(began);
        let mut limits = Vec::new();
        pace::respec(&mut limits, specs, now, &log);
        log.set_bounds_for(specs, most, now);
        Slot {
            limits,
            log,
            hold: None,
            reserved: false,
            last: None,
        }
    }

    fn respec(&mut self, specs: &[LimitSpec], most: u32, now: Instant) {
        pace::respec(&mut self.limits, specs, now, &self.log);
        self.log.set_bounds_for(specs, most, now);
    }

    fn ready(&self, now: Instant) -> Ready {
        if self.reserved {
            return Ready::Blocked;
        }
        let at = self
            .limits
            .iter()
            .map(Gcra::earliest)
            .chain(self.hold)
            .max()
            .unwrap_or(now);
        if at > now { Ready::At(at) } else { Ready::Now }
    }

    fn held(&self, now: Instant) -> bool {
        self.hold.is_some_and(|h| h > now)
    }

    fn reserve(&mut self) {
        // A budget without limits counts nothing: nothing to keep in order.
        self.reserved = !self.limits.is_empty();
    }

    fn take(&mut self, now: Instant) {
        for l in &mut self.limits {
            l.consume(now);
        }
        if !self.limits.is_empty() {
            self.log.record(now);
        }
        self.last = Some(now);
    }

    /// Nothing here that a new slot would not have.
    fn idle(&self, now: Instant, longest: Duration) -> bool {
        !self.reserved
            && !self.held(now)
            && self
                .last
                .is_none_or(|t| now.saturating_duration_since(t) >= longest)
            && self.limits.iter().all(|l| l.earliest() <= now)
    }
}

/// One class: its rules, the budget of the whole class and of each subject, and its queue.
#[derive(Debug)]
struct Class {
    rules: Vec<Rule>,
    wide: Slot,
    subjects: HashMap<String, Slot>,
    queue: FairQueue,
    /// The subject each waiter is for (`""` for none).
    waiting: HashMap<Ticket, String>,
    /// Forget idle subjects when there are this many, or a window after the last time.
    prune_at: usize,
    pruned: Instant,
}

const PRUNE_FROM: usize = 64;

impl Class {
    fn new(rules: Vec<Rule>, began: Instant, now: Instant) -> Self {
        let mut c = Class {
            rules,
            wide: Slot::new(&[], 0, began, now),
            subjects: HashMap::new(),
            queue: FairQueue::default(),
            waiting: HashMap::new(),
            prune_at: PRUNE_FROM,
            pruned: now,
        };
        c.retune(now);
        c
    }

    fn specs(&self, per_subject: bool) -> (Vec<LimitSpec>, u32) {
        let rules = self
            .rules
            .iter()
            .filter(|r| r.limit.per_subject == per_subject);
        let most = rules.clone().map(Rule::most).max().unwrap_or(0);
        (rules.map(Rule::spec).collect(), most)
    }

    fn has_subject_rules(&self) -> bool {
        self.rules.iter().any(|r| r.limit.per_subject)
    }

    fn longest(&self) -> Duration {
        self.rules
            .iter()
            .map(|r| r.limit.per)
            .max()
            .unwrap_or_default()
    }

    /// The rules' figures changed: every budget follows, replaying what it sent.
    fn retune(&mut self, now: Instant) {
        let (wide, most) = self.specs(false);
        self.wide.respec(&wide, most, now);
        let (subject, most) = self.specs(true);
        for s in self.subjects.values_mut() {
            s.respec(&subject, most, now);
        }
    }

    fn subject(&mut self, key: &str, began: Instant, now: Instant) -> &mut Slot {
        if !self.subjects.contains_key(key) {
            let (specs, most) = self.specs(true);
            self.subjects
                .insert(key.to_string(), Slot::new(&specs, most, began, now));
        }
        self.subjects.get_mut(key).expect("just inserted")
    }

    fn subject_ready(&self, key: &str, now: Instant) -> Ready {
        self.subjects.get(key).map_or(Ready::Now, |s| s.ready(now))
    }

    fn prune(&mut self, now: Instant) {
        let longest = self.longest();
        let due = now.saturating_duration_since(self.pruned) >= longest;
        if self.subjects.len() < self.prune_at && !due {
            return;
        }
        self.pruned = now;
        let waiting: std::collections::HashSet<&String> = self.waiting.values().collect();
        self.subjects
            .retain(|k, s| waiting.contains(k) || !s.idle(now, longest));
        self.prune_at = (self.subjects.len() * 2).max(PRUNE_FROM);
    }

    fn idle(&self, now: Instant) -> bool {
        let longest = self.longest();
        self.queue.is_empty()
            && self.wide.idle(now, longest)
            && self.subjects.values().all(|s| s.idle(now, longest))
    }
}

/// Every class of one key.
#[derive(Debug)]
pub(crate) struct Classes {
    by_name: HashMap<String, Class>,
    /// When the key's throttle was made: a new budget is as if it existed since then.
    began: Instant,
}

impl Classes {
    pub fn new(now: Instant) -> Self {
        Classes {
            by_name: HashMap::new(),
            began: now,
        }
    }

    /// The class limits are these now (merged: one per class, window and scope). What was
    /// learned and sent stays for the rules that stay.
    pub fn set_rules(&mut self, limits: &[ClassLimit], now: Instant) -> bool {
        let mut changed = false;
        let mut names: Vec<&str> = limits.iter().map(|l| l.class.as_str()).collect();
        names.sort();
        names.dedup();
        for name in &names {
            let wanted: Vec<&ClassLimit> = limits.iter().filter(|l| l.class == *name).collect();
            let began = self.began;
            let class = self
                .by_name
                .entry(name.to_string())
                .or_insert_with(|| Class::new(Vec::new(), began, now));
            let mut old = std::mem::take(&mut class.rules);
            for w in wanted {
                let rule = match old.iter().position(|r| r.limit.same_rule(w)) {
                    Some(i) => {
                        let mut r = old.swap_remove(i);
                        if r.limit != *w {
                            changed = true;
                        }
                        r.learned = match (r.learned.take(), w.adaptive) {
                            (Some(mut l), true) => {
                                l.rebound(w.bounds());
                                Some(l)
                            }
                            (None, true) => Some(Learned::new(w.bounds(), now)),
                            (_, false) => None,
                        };
                        r.limit = w.clone();
                        r
                    }
                    None => {
                        changed = true;
                        Rule::new(w.clone(), now)
                    }
                };
                class.rules.push(rule);
            }
            changed |= !old.is_empty();
            class.retune(now);
        }
        // Classes no longer configured keep their holds and waiters until they are idle.
        for (name, class) in self.by_name.iter_mut() {
            if !names.contains(&name.as_str()) && !class.rules.is_empty() {
                class.rules.clear();
                class.retune(now);
                changed = true;
            }
        }
        self.forget_idle(now);
        changed
    }

    /// The rules now, for the throttle's Debug and policy checks.
    pub fn rules(&self) -> Vec<ClassLimit> {
        let mut out: Vec<ClassLimit> = self
            .by_name
            .values()
            .flat_map(|c| c.rules.iter().map(|r| r.limit.clone()))
            .collect();
        out.sort();
        out
    }

    /// The learned N of each adaptive class limit: (class, per, N).
    pub fn learned(&self) -> Vec<(String, Duration, u32)> {
        let mut out: Vec<_> = self
            .by_name
            .iter()
            .flat_map(|(name, c)| {
                c.rules
                    .iter()
                    .filter_map(|r| r.learned.as_ref().map(|l| (name.clone(), l.per(), l.n)))
            })
            .collect();
        out.sort();
        out
    }

    /// The longest window of any class limit.
    pub fn longest(&self) -> Duration {
        self.by_name
            .values()
            .map(Class::longest)
            .max()
            .unwrap_or_default()
    }

    /// The shortest window of `class`'s limits, if it has any.
    pub fn shortest(&self, class: &str) -> Option<Duration> {
        self.by_name
            .get(class)?
            .rules
            .iter()
            .map(|r| r.limit.per)
            .min()
    }

    fn forget_idle(&mut self, now: Instant) {
        self.by_name
            .retain(|_, c| !c.rules.is_empty() || !c.idle(now));
    }

    /// A waiter for `class`: false when the class has neither limits nor holds (nothing to wait
    /// for).
    fn enqueue(
        &mut self,
        class: &str,
        subject: Option<&str>,
        priority: Priority,
        flow: Arc<str>,
        ticket: Ticket,
        now: Instant,
    ) -> bool {
        let began = self.began;
        let Some(c) = self.by_name.get_mut(class) else {
            return false;
        };
        let key = subject.unwrap_or("");
        if c.has_subject_rules() {
            c.subject(key, began, now);
        }
        c.queue.push(priority, flow, ticket);
        c.waiting.insert(ticket, key.to_string());
        c.prune(now);
        true
    }

    /// `ticket` gave up before its class permit.
    fn leave(&mut self, class: &str, ticket: Ticket) {
        if let Some(c) = self.by_name.get_mut(class) {
            c.queue.remove(ticket);
            c.waiting.remove(&ticket);
        }
    }

    /// The class permit for `ticket`, if it is its turn and its budgets allow it now.
    fn try_admit(&mut self, class: &str, ticket: Ticket, now: Instant) -> Step {
        let Some(c) = self.by_name.get_mut(class) else {
            return Step::Granted;
        };
        for (_, t) in c.queue.in_order() {
            let Some(subject) = c.waiting.get(&t) else {
                continue;
            };
            let ready = combine(c.wide.ready(now), c.subject_ready(subject, now));
            if t == ticket {
                return match ready {
                    Ready::Now => {
                        let subject = c.waiting.remove(&t).unwrap_or_default();
                        c.queue.served(t);
                        c.wide.reserve();
                        if let Some(s) = c.subjects.get_mut(&subject) {
                            s.reserve();
                        }
                        Step::Granted
                    }
                    Ready::At(at) => Step::Until(at),
                    Ready::Blocked => Step::Wait,
                };
            }
            if matches!(ready, Ready::Now) {
                // A waiter ahead takes this permit.
                return Step::Wait;
            }
        }
        Step::Granted
    }

    /// The request with a class permit for `subject` was let out by the key at `now`: it takes
    /// its class cells, unless the class (or subject) was held meanwhile (then false: it must
    /// ask for a class permit again).
    fn finish(&mut self, class: &str, subject: &str, now: Instant) -> bool {
        let Some(c) = self.by_name.get_mut(class) else {
            return true;
        };
        c.wide.reserved = false;
        if let Some(s) = c.subjects.get_mut(subject) {
            s.reserved = false;
        }
        if c.wide.held(now) || c.subjects.get(subject).is_some_and(|s| s.held(now)) {
            return false;
        }
        c.wide.take(now);
        if let Some(s) = c.subjects.get_mut(subject) {
            s.take(now);
        }
        let mut retune = false;
        for r in &mut c.rules {
            if let Some(l) = &mut r.learned {
                retune |= l.recover(now);
            }
        }
        if retune {
            c.retune(now);
        }
        true
    }

    /// The request with a class permit gave up before the key let it out.
    fn release(&mut self, class: &str, subject: &str) {
        if let Some(c) = self.by_name.get_mut(class) {
            c.wide.reserved = false;
            if let Some(s) = c.subjects.get_mut(subject) {
                s.reserved = false;
            }
        }
    }

    /// A 429 for `class` (one `subject` of it when the class counts per subject, or has no
    /// limits): held until `until`; an adaptive limit of `window` (else the class's shortest)
    /// learns `limit` or halves.
    pub fn limited(
        &mut self,
        class: &str,
        subject: Option<&str>,
        until: Instant,
        limit: Option<u32>,
        window: Option<Duration>,
        now: Instant,
    ) {
        let began = self.began;
        let c = self
            .by_name
            .entry(class.to_string())
            .or_insert_with(|| Class::new(Vec::new(), began, now));
        let per_subject = c.has_subject_rules() || c.rules.is_empty();
        let slot = match subject {
            Some(s) if per_subject => c.subject(s, began, now),
            _ => &mut c.wide,
        };
        slot.hold = Some(slot.hold.map_or(until, |h| h.max(until)));
        let window = window.or_else(|| {
            c.rules
                .iter()
                .filter(|r| r.learned.is_some())
                .map(|r| r.limit.per)
                .min()
        });
        let mut retune = false;
        for r in &mut c.rules {
            if let Some(l) = &mut r.learned
                && Some(l.per()) == window
            {
                retune |= l.limited(limit, now);
            }
        }
        if retune {
            c.retune(now);
        }
        self.forget_idle(now);
    }

    /// When `class` (for `subject`) could give a permit at the earliest, and how many wait for
    /// it: a lower bound of a newcomer's wait.
    fn backlog(&self, class: &str, subject: Option<&str>, now: Instant) -> Duration {
        let Some(c) = self.by_name.get(class) else {
            return Duration::ZERO;
        };
        let slots = [Some(&c.wide), c.subjects.get(subject.unwrap_or(""))];
        let ready = slots
            .iter()
            .flatten()
            .flat_map(|s| s.limits.iter().map(Gcra::earliest).chain(s.hold))
            .max()
            .map(|t| t.saturating_duration_since(now))
            .unwrap_or_default();
        let slowest = slots
            .iter()
            .flatten()
            .flat_map(|s| s.limits.iter().map(Gcra::interval))
            .max()
            .unwrap_or_default();
        let waiters = u32::try_from(c.queue.len()).unwrap_or(u32::MAX);
        ready.saturating_add(slowest.saturating_mul(waiters))
    }

    /// How many subjects `class` remembers (tests: memory stays bounded).
    #[cfg(test)]
    pub fn subjects(&self, class: &str) -> usize {
        self.by_name.get(class).map_or(0, |c| c.subjects.len())
    }

    /// How many requests wait for a permit of `class`.
    #[cfg(test)]
    pub fn waiting(&self, class: &str) -> usize {
        self.by_name.get(class).map_or(0, |c| c.queue.len())
    }
}

impl KeyThrottle {
    /// Returns when this request may be sent: after its class permit ([`Op::class`], if the key
    /// has limits or holds for the class), then the key's permit, as
    /// [`acquire`](Self::acquire) gives it. Cancel-safe at every step.
    pub async fn acquire_op(&self, op: &Op<'_>) {
        let flow = super::current_flow();
        loop {
            let reservation = match op.class {
                Some(class) => {
                    self.class_permit(class, op.subject, &flow, op.priority)
                        .await
                }
                None => None,
            };
            self.acquire_in(&flow, op.priority).await;
            match reservation {
                None => return,
                Some(mut r) => {
                    if r.take() {
                        return;
                    }
                    tracing::debug!(key = %self.fingerprint, class = op.class, "class held while the request waited for the key; asking the class again");
                }
            }
        }
    }

    /// Like [`acquire_op`](Self::acquire_op), except that a [`Priority::Routine`] request gives
    /// its place up when it cannot have both permits within [`ROUTINE_PATIENCE`] (see
    /// [`acquire_or_defer`](Self::acquire_or_defer)).
    ///
    /// A write of an operation class gives its place up too when the class's own limit holds
    /// it longer than [`CLASS_PATIENCE`] (a deploy waiting for the hour's budget): nothing is
    /// spent, and its reconcile worker goes on with other objects instead of waiting an hour.
    pub async fn acquire_op_or_defer(&self, op: &Op<'_>) -> Result<(), Deferred> {
        if op.priority != Priority::Routine {
            if let Some(class) = op.class {
                let held = self
                    .state
                    .lock()
                    .classes
                    .backlog(class, op.subject, Instant::now());
                if held > CLASS_PATIENCE {
                    return Err(self.defer(held));
                }
            }
            self.acquire_op(op).await;
            return Ok(());
        }
        let backlog = self.op_backlog(op);
        if backlog > ROUTINE_PATIENCE {
            return Err(self.defer(backlog));
        }
        match tokio::time::timeout(ROUTINE_PATIENCE, self.acquire_op(op)).await {
            Ok(()) => Ok(()),
            Err(_) => Err(self.defer(self.op_backlog(op))),
        }
    }

    fn op_backlog(&self, op: &Op<'_>) -> Duration {
        let class = match op.class {
            Some(class) => self
                .state
                .lock()
                .classes
                .backlog(class, op.subject, Instant::now()),
            None => Duration::ZERO,
        };
        class.saturating_add(self.backlog())
    }

    async fn class_permit(
        &self,
        class: &str,
        subject: Option<&str>,
        flow: &Arc<str>,
        priority: Priority,
    ) -> Option<Reservation<'_>> {
        let ticket = NEXT_TICKET.fetch_add(1, Ordering::Relaxed);
        let queued = self.state.lock().classes.enqueue(
            class,
            subject,
            priority,
            flow.clone(),
            ticket,
            Instant::now(),
        );
        if !queued {
            return None;
        }
        let mut place = ClassPlace {
            throttle: self,
            class,
            ticket,
            admitted: false,
        };
        self.class_changed.notify_waiters();
        loop {
            let notified = self.class_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let step = self
                .state
                .lock()
                .classes
                .try_admit(class, ticket, Instant::now());
            match step {
                Step::Granted => break,
                Step::Wait => notified.await,
                Step::Until(t) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t) => {}
                        _ = &mut notified => {}
                    }
                }
            }
        }
        place.admitted = true;
        self.class_changed.notify_waiters();
        Some(Reservation {
            throttle: self,
            class: class.to_string(),
            subject: subject.unwrap_or("").to_string(),
            done: false,
        })
    }
}

/// A waiter's place in a class queue; dropping it (cancellation) leaves the queue.
struct ClassPlace<'a> {
    throttle: &'a KeyThrottle,
    class: &'a str,
    ticket: Ticket,
    admitted: bool,
}

impl Drop for ClassPlace<'_> {
    fn drop(&mut self) {
        if !self.admitted {
            self.throttle
                .state
                .lock()
                .classes
                .leave(self.class, self.ticket);
            self.throttle.class_changed.notify_waiters();
        }
    }
}

/// A class permit held while the request waits for the key's; dropped unused, it frees the
/// class for the next waiter.
struct Reservation<'a> {
    throttle: &'a KeyThrottle,
    class: String,
    subject: String,
    done: bool,
}

impl Reservation<'_> {
    /// The key let the request out: take the class cells now. False when the class was held
    /// meanwhile (the request must not be sent).
    fn take(&mut self) -> bool {
        self.done = true;
        let taken =
            self.throttle
                .state
                .lock()
                .classes
                .finish(&self.class, &self.subject, Instant::now());
        self.throttle.class_changed.notify_waiters();
        taken
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.throttle
                .state
                .lock()
                .classes
                .release(&self.class, &self.subject);
            self.throttle.class_changed.notify_waiters();
        }
    }
}
