//! Logging a misbehaving peer once, not once per attempt.
//!
//! A client that sends garbage, a wrong cookie or half a handshake a thousand times must
//! not write a thousand log lines. [`LogLimiter`] lets the first occurrence of each kind
//! of trouble from each peer through, counts the repeats for a minute, and then lets
//! one line through that says how many were left out. Peers are keyed by what is known
//! of them: the node name once the handshake has named it, else the IP address (not the
//! port, which changes with every connection). Memory is bounded: at most
//! [`MAX_KEYS`] peers and kinds are remembered.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long repeats of one kind from one peer are counted instead of logged.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The most (peer, kind) pairs remembered at once.
pub const MAX_KEYS: usize = 1024;

struct Seen {
    since: Instant,
    suppressed: u64,
}

/// Decides which log lines about peers get written (pure: the caller passes the time).
#[derive(Default)]
pub struct LogLimiter {
    seen: HashMap<(String, &'static str), Seen>,
}

impl LogLimiter {
    /// An empty limiter.
    pub fn new() -> LogLimiter {
        LogLimiter::default()
    }

    /// Whether a line of `kind` about `peer` should be logged at `now`: `Some(n)` to
    /// log it, mentioning `n` earlier ones that were left out; `None` to leave it out.
    pub fn check(&mut self, peer: &str, kind: &'static str, now: Instant) -> Option<u64> {
        let key = (peer.to_owned(), kind);
        if let Some(s) = self.seen.get_mut(&key) {
            if now.duration_since(s.since) < WINDOW {
                s.suppressed += 1;
                return None;
            }
            let left_out = s.suppressed;
            s.since = now;
            s.suppressed = 0;
            return Some(left_out);
        }
        if self.seen.len() >= MAX_KEYS {
            self.seen
                .retain(|_, s| now.duration_since(s.since) < WINDOW);
            if self.seen.len() >= MAX_KEYS {
                // Too many distinct peers misbehaving at once: forget them all rather
                // than grow; the worst case is a line per peer per flood.
                self.seen.clear();
            }
        }
        self.seen.insert(
            key,
            Seen {
                since: now,
                suppressed: 0,
            },
        );
        Some(0)
    }
}

/// The suffix for a line that follows left-out repeats.
pub fn left_out(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} more like this in the last minute were not logged)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_peer_and_kind_per_window_then_a_count() {
        let mut l = LogLimiter::new();
        let t0 = Instant::now();
        assert_eq!(l.check("127.0.0.1", "bad frame", t0), Some(0));
        for i in 1..1000 {
            assert_eq!(
                l.check("127.0.0.1", "bad frame", t0 + Duration::from_millis(i)),
                None
            );
        }
        // Another kind, another peer: logged.
        assert_eq!(l.check("127.0.0.1", "bad cookie", t0), Some(0));
        assert_eq!(l.check("a@localhost", "bad frame", t0), Some(0));
        // After the window: one line, with the count.
        assert_eq!(l.check("127.0.0.1", "bad frame", t0 + WINDOW), Some(999));
        assert_eq!(
            left_out(999),
            " (999 more like this in the last minute were not logged)"
        );
        assert_eq!(left_out(0), "");
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_peers() {
        let mut l = LogLimiter::new();
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS * 5) {
            l.check(&format!("10.0.{}.{}", i / 256, i % 256), "bad frame", t0);
            assert!(l.seen.len() <= MAX_KEYS);
        }
    }
}
