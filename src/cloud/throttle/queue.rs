//! The waiters of one key: by priority, and round-robin between flows within a priority.
//!
//! A *flow* is who the request is for: the namespace of the object being reconciled (see
//! [`in_flow`](super::in_flow)). Within one priority each flow keeps its arrivals in order, and
//! the flows take turns: the head is the first waiter of the flow whose turn it is, and a flow
//! that was served goes to the back of the line. One namespace applying 500 objects therefore
//! delays another namespace's single change by at most one of its requests per priority level,
//! not by 500 (the spirit of Kubernetes' API Priority and Fairness). Priorities stay strict:
//! a waiting [`Priority::Write`] is always served before any [`Priority::Urgent`] read.
//!
//! [`Order::Fifo`] turns both off (one level, one flow: first come, first served). It exists so
//! the benchmark can measure what the priorities buy (`stratus run --throttle-order fifo`);
//! nothing else should use it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Priority;

/// How a key's waiters are ordered. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Order {
    /// By priority, namespaces taking turns within one (the operator's order).
    #[default]
    Priority,
    /// First come, first served (benchmark baseline only).
    Fifo,
}

static FIFO: AtomicBool = AtomicBool::new(false);

impl Order {
    /// The order of queues made from now on in this process (set once, at startup).
    pub fn set_process_default(order: Order) {
        FIFO.store(order == Order::Fifo, Ordering::Relaxed);
    }

    fn process_default() -> Order {
        if FIFO.load(Ordering::Relaxed) {
            Order::Fifo
        } else {
            Order::Priority
        }
    }
}

/// A waiter's number: unique in the process, increasing with arrival.
pub type Ticket = u64;

#[derive(Debug, Default)]
struct Level {
    flows: HashMap<Arc<str>, VecDeque<Ticket>>,
    /// Flows with waiters, in turn order.
    turns: VecDeque<Arc<str>>,
}

/// See the module docs.
#[derive(Debug)]
pub struct FairQueue {
    levels: BTreeMap<Priority, Level>,
    where_: HashMap<Ticket, (Priority, Arc<str>)>,
    order: Order,
}

impl Default for FairQueue {
    /// A queue in the process's order ([`Order::set_process_default`]).
    fn default() -> Self {
        Self::new(Order::process_default())
    }
}

impl FairQueue {
    pub fn new(order: Order) -> Self {
        FairQueue {
            levels: BTreeMap::new(),
            where_: HashMap::new(),
            order,
        }
    }

    pub fn push(&mut self, priority: Priority, flow: Arc<str>, ticket: Ticket) {
        // FIFO: everyone in one line; tickets increase with arrival.
        let (priority, flow) = match self.order {
            Order::Priority => (priority, flow),
            Order::Fifo => (Priority::Write, Arc::from("")),
        };
        let level = self.levels.entry(priority).or_default();
        let waiters = level.flows.entry(flow.clone()).or_default();
        if waiters.is_empty() {
            level.turns.push_back(flow.clone());
        }
        waiters.push_back(ticket);
        self.where_.insert(ticket, (priority, flow));
    }

    /// The waiter served next, with its priority.
    pub fn head(&self) -> Option<(Priority, Ticket)> {
        let (priority, level) = self.levels.iter().find(|(_, l)| !l.turns.is_empty())?;
        let flow = level.turns.front()?;
        level.flows.get(flow)?.front().map(|t| (*priority, *t))
    }

    /// Every waiter, in the order they would be served if none came and none left: by
    /// priority, then the flows taking turns (each flow's first waiter, then each one's second,
    /// ...), FIFO within a flow.
    pub fn in_order(&self) -> Vec<(Priority, Ticket)> {
        let mut out = Vec::with_capacity(self.where_.len());
        for (priority, level) in &self.levels {
            let flows: Vec<&VecDeque<Ticket>> = level
                .turns
                .iter()
                .filter_map(|f| level.flows.get(f))
                .collect();
            let deepest = flows.iter().map(|w| w.len()).max().unwrap_or(0);
            for round in 0..deepest {
                for waiters in &flows {
                    if let Some(t) = waiters.get(round) {
                        out.push((*priority, *t));
                    }
                }
            }
        }
        out
    }

    /// A waiter was served (the head, or one the head let pass): it leaves, and its flow goes to
    /// the back of the line.
    pub fn served(&mut self, ticket: Ticket) {
        let Some((priority, flow)) = self.where_.remove(&ticket) else {
            return;
        };
        let Some(level) = self.levels.get_mut(&priority) else {
            return;
        };
        if let Some(waiters) = level.flows.get_mut(&flow) {
            waiters.retain(|t| *t != ticket);
            level.turns.retain(|f| *f != flow);
            if waiters.is_empty() {
                level.flows.remove(&flow);
            } else {
                level.turns.push_back(flow);
            }
        }
    }

    /// A waiter gave up: it leaves; its flow keeps its turn if it has others waiting.
    pub fn remove(&mut self, ticket: Ticket) {
        let Some((priority, flow)) = self.where_.remove(&ticket) else {
            return;
        };
        let Some(level) = self.levels.get_mut(&priority) else {
            return;
        };
        if let Some(waiters) = level.flows.get_mut(&flow) {
            waiters.retain(|t| *t != ticket);
            if waiters.is_empty() {
                level.flows.remove(&flow);
                level.turns.retain(|f| *f != flow);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.where_.len()
    }

    /// How many waiters a new arrival at `priority` has ahead of it (every waiter at the same
    /// priority or a better one; in FIFO order, everyone).
    pub fn ahead_of(&self, priority: Priority) -> usize {
        match self.order {
            Order::Fifo => self.len(),
            Order::Priority => self
                .levels
                .range(..=priority)
                .flat_map(|(_, level)| level.flows.values())
                .map(VecDeque::len)
                .sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.where_.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &mut FairQueue) -> Vec<Ticket> {
        let mut out = Vec::new();
        while let Some((_, t)) = q.head() {
            q.served(t);
            out.push(t);
        }
        out
    }

    #[test]
    fn flows_take_turns_within_a_priority() {
        let mut q = FairQueue::default();
        let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) =
            ("team-a".into(), "team-b".into(), "c".into());
        for t in 0..500 {
            q.push(Priority::Write, a.clone(), t);
        }
        q.push(Priority::Write, b.clone(), 1000);
        q.push(Priority::Write, c.clone(), 1001);
        q.push(Priority::Write, b.clone(), 1002);
        let order = drain(&mut q);
        // team-b's first change waits behind one of team-a's 500, not all of them.
        assert_eq!(&order[..6], &[0, 1000, 1001, 1, 1002, 2]);
        assert_eq!(order.len(), 503);
        assert!(q.is_empty());
    }

    #[test]
    fn priorities_stay_strict_and_fifo_within_a_flow() {
        let mut q = FairQueue::default();
        q.push(Priority::Routine, "a".into(), 1);
        q.push(Priority::Routine, "b".into(), 2);
        q.push(Priority::Urgent, "a".into(), 3);
        q.push(Priority::Write, "b".into(), 4);
        q.push(Priority::Write, "b".into(), 5);
        assert_eq!(drain(&mut q), [4, 5, 3, 1, 2]);
    }

    #[test]
    fn the_order_is_the_order_of_service() {
        let mut q = FairQueue::default();
        q.push(Priority::Routine, "a".into(), 1);
        q.push(Priority::Write, "a".into(), 2);
        q.push(Priority::Write, "a".into(), 3);
        q.push(Priority::Write, "b".into(), 4);
        q.push(Priority::Urgent, "c".into(), 5);
        let order: Vec<Ticket> = q.in_order().into_iter().map(|(_, t)| t).collect();
        assert_eq!(order, [2, 4, 3, 5, 1]);
        assert_eq!(drain(&mut q), order);
    }

    #[test]
    fn fifo_serves_in_arrival_order_whatever_the_priority_and_namespace() {
        let mut q = FairQueue::new(Order::Fifo);
        q.push(Priority::Routine, "a".into(), 1);
        q.push(Priority::Routine, "a".into(), 2);
        q.push(Priority::Urgent, "b".into(), 3);
        q.push(Priority::Write, "c".into(), 4);
        q.remove(2);
        let order: Vec<Ticket> = q.in_order().into_iter().map(|(_, t)| t).collect();
        assert_eq!(order, [1, 3, 4]);
        assert_eq!(drain(&mut q), order);
        // The same arrivals in the operator's order: the write first.
        let mut q = FairQueue::new(Order::Priority);
        q.push(Priority::Routine, "a".into(), 1);
        q.push(Priority::Urgent, "b".into(), 3);
        q.push(Priority::Write, "c".into(), 4);
        assert_eq!(drain(&mut q), [4, 3, 1]);
    }

    #[test]
    fn a_new_write_has_only_writes_ahead_of_it_unless_the_order_is_fifo() {
        let mut q = FairQueue::new(Order::Priority);
        q.push(Priority::Routine, Arc::from("a"), 1);
        q.push(Priority::Write, Arc::from("a"), 2);
        q.push(Priority::Write, Arc::from("b"), 3);
        q.push(Priority::Urgent, Arc::from("b"), 4);
        assert_eq!(q.ahead_of(Priority::Write), 2);
        assert_eq!(q.ahead_of(Priority::Urgent), 3);
        assert_eq!(q.ahead_of(Priority::Routine), 4);
        let mut fifo = FairQueue::new(Order::Fifo);
        fifo.push(Priority::Routine, Arc::from("a"), 1);
        fifo.push(Priority::Write, Arc::from("b"), 2);
        assert_eq!(fifo.ahead_of(Priority::Write), 2);
    }

    #[test]
    fn a_waiter_that_gives_up_leaves_no_trace() {
        let mut q = FairQueue::default();
        q.push(Priority::Write, "a".into(), 1);
        q.push(Priority::Write, "b".into(), 2);
        q.push(Priority::Write, "a".into(), 3);
        q.remove(1);
        // a keeps its turn (it has another waiter), b is next after it.
        assert_eq!(q.head(), Some((Priority::Write, 3)));
        q.remove(3);
        q.remove(3);
        assert_eq!(q.head(), Some((Priority::Write, 2)));
        assert_eq!(q.len(), 1);
        q.remove(2);
        assert!(q.is_empty() && q.head().is_none());
    }
}
