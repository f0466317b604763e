//! A line for creates, off the reconcile workers.
//!
//! A create's reconcile that waits in the key's queue holds one of the controller's bounded
//! workers for as long as it waits. A burst of creates (500 objects applied at once under
//! 2 requests/second) would hold every worker for minutes, and a user's change to another
//! object would wait for a worker behind all of them: the throttle's priorities never get to
//! serve it (the latency benchmark saw 90 s). So a new create first asks for its turn
//! ([`KeyThrottle::admit_create`](super::KeyThrottle::admit_create)): it is let through when the
//! key can send it within [`CREATE_PATIENCE`] (counting the writes queued at the key and the
//! creates let through just before it), else it keeps its place in this line and is told when
//! to ask again; its reconcile gives the worker back meanwhile.
//!
//! - **Order**: first come, first served within a flow (the namespace, as at the key), the flows
//!   taking turns, so one team's 500 creates delay another team's one create by one turn.
//! - **Always moving**: the first in line goes even when the key is busy with other writes,
//!   one at a time (the next after the wait the key promised the previous one), so creates are
//!   never starved by a steady stream of updates; at most one worker waits at the key for it.
//! - **Asking again**: at most every [`MAX_RETRY`], so a key that turns out faster (a limit
//!   learned or raised, a hold lifted, places left by deleted objects) is used at once.
//! - **Places that go**: one whose create does not ask again within [`LATE`] after the moment
//!   it was told (an object deleted meanwhile) stops holding the others up, and is
//!   forgotten after [`FORGET`].
//!
//! Nothing here spends or reserves a permit: the key's own queue still decides who goes when;
//! the line only keeps the creates that would wait long out of it. Budget groups and operation
//! classes (deploys per hour) are not counted: a create they hold back is deferred by them
//! as before.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// How long a create may expect to wait at the key once let through.
pub const CREATE_PATIENCE: Duration = Duration::from_secs(2);
/// The longest a create in line is told to wait before it asks again.
pub const MAX_RETRY: Duration = Duration::from_secs(15);
/// A place whose create has not asked again this long after the moment it was told no longer
/// holds the places behind it.
pub const LATE: Duration = Duration::from_secs(2);
/// A place whose create has not asked again this long after it was told is dropped.
pub const FORGET: Duration = Duration::from_secs(60);
/// How long a create let through counts as queued at the key: the time between the answer and
/// its request reaching the key's queue (recording the attempt on the object) is short.
pub const PROMISE: Duration = Duration::from_secs(1);
/// The shortest wait a deferred create is told.
const MIN_RETRY: Duration = Duration::from_millis(200);

/// What the key is doing now, as the line needs it.
#[derive(Debug, Clone, Copy)]
pub struct KeyLoad {
    /// How long until the key's hold (after a 429 or an exhausted window) ends.
    pub hold: Duration,
    /// One permit of the key's slowest limit.
    pub interval: Duration,
    /// Writes waiting at the key (served before a new write).
    pub queued_writes: usize,
}

impl KeyLoad {
    /// How long a write joining the key now waits, at least.
    fn backlog(&self, promised: usize) -> Duration {
        let ahead = u32::try_from(self.queued_writes.saturating_add(promised)).unwrap_or(u32::MAX);
        self.hold
            .saturating_add(self.interval.saturating_mul(ahead))
    }
}

#[derive(Debug)]
struct Place {
    subject: String,
    flow: Arc<str>,
    /// When it was told to ask again.
    due: Instant,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Waitlist {
    line: VecDeque<Place>,
    /// When the creates let through recently were let through.
    promised: VecDeque<Instant>,
    /// Until when the first in line waits before it goes whatever the key's backlog.
    head_after: Option<Instant>,
}

impl Waitlist {
    /// Let `subject`'s create (in `flow`) through now, or keep its place and say when to ask
    /// again.
    pub fn ask(
        &mut self,
        subject: &str,
        flow: &Arc<str>,
        key: KeyLoad,
        now: Instant,
    ) -> Result<(), Duration> {
        self.line.retain(|p| p.due + FORGET > now);
        while self.promised.front().is_some_and(|t| *t + PROMISE <= now) {
            self.promised.pop_front();
        }
        let backlog = key.backlog(self.promised.len());
        // How many creates may join the key's queue now and still go within the patience.
        let free = if backlog > CREATE_PATIENCE {
            0
        } else if key.interval.is_zero() {
            usize::MAX
        } else {
            usize::try_from((CREATE_PATIENCE - backlog).as_nanos() / key.interval.as_nanos())
                .unwrap_or(usize::MAX)
                .saturating_add(1)
        };
        let index = match self.line.iter().position(|p| p.subject == subject) {
            Some(i) => i,
            None => {
                self.line.push_back(Place {
                    subject: subject.to_string(),
                    flow: flow.clone(),
                    due: now,
                });
                self.line.len() - 1
            }
        };
        let ahead = self.ahead(index, now);
        let first_may_go = self.head_after.is_none_or(|t| now >= t);
        if ahead < free || (ahead == 0 && first_may_go) {
            self.line.remove(index);
            self.promised.push_back(now);
            if ahead >= free {
                // Went ahead of a busy key: the next first in line waits as long as this one will.
                self.head_after = Some(now + backlog);
            }
            return Ok(());
        }
        let turns = u32::try_from(ahead + 1 - free.min(ahead + 1)).unwrap_or(u32::MAX);
        let retry = backlog
            .saturating_sub(CREATE_PATIENCE)
            .saturating_add(key.interval.saturating_mul(turns))
            .clamp(MIN_RETRY, MAX_RETRY);
        self.line[index].due = now + retry;
        Err(retry)
    }

    /// The places served before the one at `index`: the flows take turns, so from each other
    /// flow as many as its own flow has ahead of it (or all that flow has); places whose create
    /// is late do not count.
    fn ahead(&self, index: usize, now: Instant) -> usize {
        let flow = &self.line[index].flow;
        let live = |p: &&Place| p.due + LATE > now;
        let own = self
            .line
            .iter()
            .take(index)
            .filter(live)
            .filter(|p| p.flow == *flow)
            .count();
        let mut others: HashMap<&str, usize> = HashMap::new();
        for p in self.line.iter().filter(live).filter(|p| p.flow != *flow) {
            *others.entry(&p.flow).or_default() += 1;
        }
        own + others.values().map(|n| (*n).min(own)).sum::<usize>()
    }

    /// Creates waiting for their turn.
    pub fn len(&self) -> usize {
        self.line.len()
    }

    pub fn is_empty(&self) -> bool {
        self.line.is_empty()
    }

    /// The subjects in line, first first (tests).
    #[cfg(test)]
    fn subjects(&self) -> Vec<&str> {
        self.line.iter().map(|p| p.subject.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(500);

    fn idle() -> KeyLoad {
        KeyLoad {
            hold: Duration::ZERO,
            interval: INTERVAL,
            queued_writes: 0,
        }
    }

    fn queued(n: usize) -> KeyLoad {
        KeyLoad {
            queued_writes: n,
            ..idle()
        }
    }

    fn ns(name: &str) -> Arc<str> {
        Arc::from(name)
    }

    /// A line whose first place went ahead of a busy key a moment ago, so the next first in
    /// line waits for its turn like everyone else.
    fn line_after_a_head(now: Instant) -> Waitlist {
        let mut w = Waitlist::default();
        assert_eq!(w.ask("head", &ns("a"), queued(8), now), Ok(()));
        w.promised.clear();
        w
    }

    #[test]
    fn a_create_on_an_idle_key_goes_at_once_and_leaves_no_place() {
        let mut w = Waitlist::default();
        assert_eq!(w.ask("a", &ns("a"), idle(), Instant::now()), Ok(()));
        assert!(w.is_empty());
    }

    #[test]
    fn creates_go_while_the_key_can_send_them_within_the_patience_then_wait_in_line() {
        let now = Instant::now();
        let mut w = line_after_a_head(now);
        // 2 s of patience at 500 ms a permit: the first five are sent within it.
        for s in ["a", "b", "c", "d", "e"] {
            assert_eq!(w.ask(s, &ns("a"), idle(), now), Ok(()), "{s}");
        }
        let f = w.ask("f", &ns("a"), idle(), now).unwrap_err();
        let g = w.ask("g", &ns("a"), idle(), now).unwrap_err();
        assert_eq!(w.subjects(), vec!["f", "g"]);
        assert!(f >= INTERVAL && g > f, "{f:?} {g:?}");
    }

    #[test]
    fn writes_queued_at_the_key_count_as_ahead_and_so_does_a_hold() {
        let now = Instant::now();
        let mut w = line_after_a_head(now);
        // Eight writes queued: 4 s of backlog, over the patience.
        let retry = w.ask("a", &ns("a"), queued(8), now).unwrap_err();
        assert_eq!(retry, Duration::from_secs(2) + INTERVAL);
        let held = KeyLoad {
            hold: Duration::from_secs(10),
            ..idle()
        };
        assert!(w.ask("a", &ns("a"), held, now).unwrap_err() >= Duration::from_secs(8));
        // Even on a key without a limit.
        let unlimited_but_held = KeyLoad {
            interval: Duration::ZERO,
            ..held
        };
        assert!(w.ask("a", &ns("a"), unlimited_but_held, now).is_err());
    }

    #[test]
    fn the_first_in_line_goes_once_per_promised_wait_even_when_other_writes_keep_the_key_busy() {
        let now = Instant::now();
        let mut w = Waitlist::default();
        // A steady backlog of other writes: 4 s. The first in line goes anyway ...
        assert_eq!(w.ask("a", &ns("a"), queued(8), now), Ok(()));
        // ... and the next one waits as long as the key promised the first.
        assert!(w.ask("b", &ns("a"), queued(8), now).is_err());
        let later = now + Duration::from_secs(4);
        assert_eq!(w.ask("b", &ns("a"), queued(8), later), Ok(()));
        assert!(w.ask("c", &ns("a"), queued(8), later).is_err());
    }

    #[test]
    fn nobody_is_told_to_wait_longer_than_the_cap() {
        let now = Instant::now();
        let mut w = line_after_a_head(now);
        let held = KeyLoad {
            hold: Duration::from_secs(600),
            ..idle()
        };
        assert_eq!(w.ask("a", &ns("a"), held, now), Err(MAX_RETRY));
    }

    #[test]
    fn a_create_that_comes_back_keeps_its_place_and_goes_before_later_ones() {
        let now = Instant::now();
        let mut w = line_after_a_head(now);
        assert!(w.ask("first", &ns("a"), queued(8), now).is_err());
        assert!(w.ask("second", &ns("a"), queued(8), now).is_err());
        // The key drained to one free slot: the second asks first, but the first is ahead.
        let later = now + Duration::from_millis(100);
        assert!(w.ask("second", &ns("a"), queued(4), later).is_err());
        assert_eq!(w.ask("first", &ns("a"), queued(4), later), Ok(()));
        assert_eq!(w.subjects(), vec!["second"]);
    }

    #[test]
    fn namespaces_take_turns_so_one_team_s_burst_delays_another_s_create_by_one_turn() {
        let now = Instant::now();
        let mut w = line_after_a_head(now);
        for i in 0..100 {
            assert!(
                w.ask(&format!("a{i}"), &ns("team-a"), queued(8), now)
                    .is_err()
            );
        }
        // Team B's one create has only team A's first ahead of it, not all 100.
        let later = now + Duration::from_millis(100);
        // One free slot: A's first goes, B's is next.
        assert_eq!(w.ask("a0", &ns("team-a"), queued(4), later), Ok(()));
        let b = w.ask("b0", &ns("team-b"), queued(4), later).unwrap_err();
        assert!(b <= INTERVAL * 2, "{b:?}");
        assert_eq!(w.ask("b0", &ns("team-b"), queued(3), later), Ok(()));
    }

    #[test]
    fn a_place_whose_turn_passed_long_ago_stops_holding_the_line() {
        let now = Instant::now();
        let mut w = line_after_a_head(now);
        let retry = w.ask("deleted", &ns("a"), queued(8), now).unwrap_err();
        assert!(w.ask("next", &ns("a"), queued(4), now).is_err());
        // "deleted" never comes back: after its turn and LATE, it holds no one up.
        let after = now + retry + LATE + Duration::from_millis(1);
        assert_eq!(w.ask("next", &ns("a"), queued(4), after), Ok(()));
        // ...and it is dropped after FORGET.
        let _ = w.ask("x", &ns("a"), queued(8), now + retry + FORGET);
        assert!(!w.subjects().contains(&"deleted"));
    }

    #[test]
    fn creates_let_through_count_at_the_key_until_their_requests_are_queued() {
        let now = Instant::now();
        let mut w = line_after_a_head(now);
        for s in ["a", "b", "c", "d", "e"] {
            assert_eq!(w.ask(s, &ns("a"), idle(), now), Ok(()));
        }
        // Their requests are not at the key yet; a sixth still waits.
        let soon = now + Duration::from_millis(500);
        assert!(w.ask("f", &ns("a"), idle(), soon).is_err());
        // Once the promises lapse, the key's own queue is what counts.
        assert_eq!(w.ask("f", &ns("a"), idle(), now + PROMISE), Ok(()));
    }

    #[test]
    fn an_unlimited_key_lets_everyone_through() {
        let mut w = Waitlist::default();
        let unlimited = KeyLoad {
            hold: Duration::ZERO,
            interval: Duration::ZERO,
            queued_writes: 1000,
        };
        for i in 0..100 {
            assert_eq!(
                w.ask(&i.to_string(), &ns("a"), unlimited, Instant::now()),
                Ok(())
            );
        }
    }
}
