//! A line for creates, off the reconcile workers.
//!
//! A create's reconcile that waits in the key's queue holds one of the controller's bounded
//! workers for as long as it waits. A burst of creates (500 objects applied at once under
//! 2 requests/second) would hold every worker for minutes, and a user's change to another
//! object would wait for a worker behind all of them: the throttle's priorities never get to
//! serve it (the latency benchmark saw 90 s). So a create first asks for its turn
//! ([`KeyThrottle::admit_create`](super::KeyThrottle::admit_create)): it is let through when the
//! key can send it within [`CREATE_PATIENCE`] (counting the writes queued at the key and the
//! creates let through just before it), else it keeps its place in this line and is told when
//! its turn should come; its reconcile gives the worker back and comes again then.
//!
//! The line is first come, first served by subject (the object's UID): a create that comes
//! back before its turn keeps its place, one that does not come back within [`LATE`] of its
//! turn stops holding the others up (an object deleted meanwhile), and is forgotten after
//! [`FORGET`]. Nothing here spends or reserves a permit: the key's own queue still decides who
//! goes when; the line only keeps the creates that would wait long out of it.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// How long a create may expect to wait at the key once let through.
pub const CREATE_PATIENCE: Duration = Duration::from_secs(2);
/// A place whose turn passed this long ago no longer holds the places behind it.
pub const LATE: Duration = Duration::from_secs(2);
/// A place whose turn passed this long ago is dropped.
pub const FORGET: Duration = Duration::from_secs(60);
/// How long a create let through counts as queued at the key: the time between the answer and
/// its request reaching the key's queue (recording the attempt on the object) is short.
pub const PROMISE: Duration = Duration::from_secs(1);
/// The shortest wait a deferred create is told.
const MIN_RETRY: Duration = Duration::from_millis(200);

/// What the key is doing now, as the line needs it.
#[derive(Debug, Clone, Copy)]
pub struct KeyLoad {
    /// Until when no request of the key goes out.
    pub hold: Duration,
    /// One permit of the key's slowest limit.
    pub interval: Duration,
    /// Writes waiting at the key (served before a new write).
    pub queued_writes: usize,
}

#[derive(Debug)]
struct Place {
    subject: String,
    /// When it was told to come back.
    due: Instant,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Waitlist {
    line: VecDeque<Place>,
    /// When the creates let through recently were let through.
    promised: VecDeque<Instant>,
}

impl Waitlist {
    /// Let `subject`'s create through now, or keep its place and say when to ask again.
    pub fn ask(&mut self, subject: &str, key: KeyLoad, now: Instant) -> Result<(), Duration> {
        self.line.retain(|p| p.due + FORGET > now);
        while self.promised.front().is_some_and(|t| *t + PROMISE <= now) {
            self.promised.pop_front();
        }
        let ahead_at_key =
            u32::try_from(key.queued_writes + self.promised.len()).unwrap_or(u32::MAX);
        let backlog = key
            .hold
            .saturating_add(key.interval.saturating_mul(ahead_at_key));
        // How many creates may join the key's queue now and still go within the patience.
        let free = if key.interval.is_zero() {
            usize::MAX
        } else if backlog > CREATE_PATIENCE {
            0
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
                    due: now,
                });
                self.line.len() - 1
            }
        };
        let ahead = self
            .line
            .iter()
            .take(index)
            .filter(|p| p.due + LATE > now)
            .count();
        if ahead < free {
            self.line.remove(index);
            self.promised.push_back(now);
            return Ok(());
        }
        let turns = u32::try_from(ahead + 1 - free).unwrap_or(u32::MAX);
        let retry = backlog
            .saturating_sub(CREATE_PATIENCE)
            .saturating_add(key.interval.saturating_mul(turns))
            .max(MIN_RETRY);
        self.line[index].due = now + retry;
        Err(retry)
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

    #[test]
    fn a_create_on_an_idle_key_goes_at_once_and_leaves_no_place() {
        let mut w = Waitlist::default();
        assert_eq!(w.ask("a", idle(), Instant::now()), Ok(()));
        assert!(w.is_empty());
    }

    #[test]
    fn creates_go_while_the_key_can_send_them_within_the_patience_then_wait_in_line() {
        let mut w = Waitlist::default();
        let now = Instant::now();
        // 2 s of patience at 500 ms a permit: the first five are sent within it.
        for s in ["a", "b", "c", "d", "e"] {
            assert_eq!(w.ask(s, idle(), now), Ok(()), "{s}");
        }
        let f = w.ask("f", idle(), now).unwrap_err();
        let g = w.ask("g", idle(), now).unwrap_err();
        assert_eq!(w.subjects(), vec!["f", "g"]);
        assert!(f >= INTERVAL && g > f, "{f:?} {g:?}");
    }

    #[test]
    fn writes_queued_at_the_key_count_as_ahead() {
        let mut w = Waitlist::default();
        let now = Instant::now();
        // Eight writes queued: 4 s of backlog, over the patience.
        let retry = w.ask("a", queued(8), now).unwrap_err();
        assert_eq!(retry, Duration::from_secs(2) + INTERVAL);
        // A hold counts the same way.
        let held = KeyLoad {
            hold: Duration::from_secs(10),
            ..idle()
        };
        assert!(w.ask("a", held, now).unwrap_err() >= Duration::from_secs(8));
    }

    #[test]
    fn a_create_that_comes_back_keeps_its_place_and_goes_before_later_ones() {
        let mut w = Waitlist::default();
        let now = Instant::now();
        assert!(w.ask("first", queued(8), now).is_err());
        assert!(w.ask("second", queued(8), now).is_err());
        // The key drained to one free slot: the second asks first, but the first is ahead.
        let later = now + Duration::from_millis(100);
        assert!(w.ask("second", queued(4), later).is_err());
        assert_eq!(w.ask("first", queued(4), later), Ok(()));
        assert_eq!(w.subjects(), vec!["second"]);
    }

    #[test]
    fn a_place_whose_turn_passed_long_ago_stops_holding_the_line() {
        let mut w = Waitlist::default();
        let now = Instant::now();
        let retry = w.ask("deleted", queued(8), now).unwrap_err();
        assert!(w.ask("next", queued(4), now).is_err());
        // "deleted" never comes back: after its turn and LATE, it holds no one up.
        let after = now + retry + LATE + Duration::from_millis(1);
        assert_eq!(w.ask("next", queued(4), after), Ok(()));
        // ...and it is dropped after FORGET.
        assert!(w.ask("x", queued(8), now + retry + FORGET).is_err());
        assert_eq!(w.subjects(), vec!["x"]);
    }

    #[test]
    fn creates_let_through_count_at_the_key_until_their_requests_are_queued() {
        let mut w = Waitlist::default();
        let now = Instant::now();
        for s in ["a", "b", "c", "d", "e"] {
            assert_eq!(w.ask(s, idle(), now), Ok(()));
        }
        // Their requests are not at the key yet; a sixth still waits.
        assert!(
            w.ask("f", idle(), now + Duration::from_millis(500))
                .is_err()
        );
        // Once the promises lapse, the key's own queue is what counts.
        assert_eq!(w.ask("f", idle(), now + PROMISE), Ok(()));
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
            assert_eq!(w.ask(&i.to_string(), unlimited, Instant::now()), Ok(()));
        }
    }
}
