//! Deferred flushes: output that a process produces in a burst goes out in one write.
//!
//! Layers above the runtime (a network connection, say) can hold back output produced
//! by a process running on a scheduler worker, and be told when to write it: at the end
//! of the process's slice, and whenever the process is about to wait (a receive finding
//! no message, a blocking section). So a process that sends 1,000 messages to one node
//! in a loop causes a handful of `write` calls instead of 1,000, and a process that
//! sends and then waits for the answer still has its request on the wire before it
//! waits.
//!
//! The rule [`note_send`] applies: the first send to a destination in a slice is written
//! at once (a lone message is never delayed), and later ones are held back while they
//! follow each other within [`BURST_GAP`]: a process that sends, computes for a long
//! time, then sends again, has each message written when sent (unless a dense burst
//! came just before the pause: see below). The exception is a lazy
//! signal (a monitor or demonitor, which the receiver needs only before it next runs):
//! it is held even as the first, so a call's monitor and request leave in one write.
//!
//! Reading the clock costs about 17 ns here, a tenth of a small remote send, so a
//! dense burst (sends less than [`DENSE_GAP`] apart) times only every
//! `DENSE_SKIP + 1`th send, and takes the ones between as part of it. The cost: when a
//! dense burst stops for a long pause, up to `DENSE_SKIP` sends after the pause are
//! held like the burst before them (which is held across the pause in any case) until
//! the next timed send or flush point. A sparse sender is timed at every send.
//! On threads that are not running a process slice (attached threads, I/O threads),
//! nothing is held back.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Something with held-back output (a connection).
pub trait Deferred: Send + Sync {
    /// Writes the held-back output now.
    fn flush_deferred(&self);
}

/// Sends closer together than this count as one burst.
pub const BURST_GAP: Duration = Duration::from_micros(100);

/// Timed sends closer together than this make a burst dense: the next [`DENSE_SKIP`]
/// sends are not timed (see the module docs).
pub const DENSE_GAP: Duration = Duration::from_micros(2);

/// Sends taken into a dense burst without reading the clock.
pub const DENSE_SKIP: u8 = 7;

struct Entry {
    key: *const (),
    target: Arc<dyn Deferred>,
    last: Instant,
    /// Sends still to be taken into the burst untimed.
    untimed: u8,
    dirty: bool,
}

thread_local! {
    /// Whether this thread is running a process slice on a worker (a flush point is
    /// certain to come).
    static IN_SLICE: Cell<bool> = const { Cell::new(false) };
    static ENTRIES: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Marks the start and end of a process slice on a worker thread; the end flushes.
pub(crate) fn slice_begin() {
    IN_SLICE.with(|s| s.set(true));
}

/// Whether this thread is inside a slice (for a nested one to restore it).
pub(crate) fn in_slice() -> bool {
    IN_SLICE.with(Cell::get)
}

/// Ends a slice: writes everything held back.
pub(crate) fn slice_end() {
    IN_SLICE.with(|s| s.set(false));
    flush_all();
}

/// Called for each send to `target` (identified by `key`): `true` to hold the output
/// back (a flush point will come), `false` to write it now. `target` is asked for the
/// thing to flush only when the key is first seen; `None` means write now.
///
/// A `lazy` send (a signal the receiver only needs before it next runs, such as a
/// monitor: see `Signal::is_lazy`) is always held, even as the first of a slice, and
/// what follows it soon is held with it: a call's monitor and request go out in one
/// write when the caller waits, not in two.
pub fn note_send(
    key: *const (),
    lazy: bool,
    target: impl FnOnce() -> Option<Arc<dyn Deferred>>,
) -> bool {
    if !IN_SLICE.with(Cell::get) {
        return false;
    }
    ENTRIES.with(|e| {
        let mut entries = e.borrow_mut();
        match entries.iter_mut().find(|x| x.key == key) {
            Some(x) if x.untimed > 0 => {
                x.untimed -= 1;
                x.dirty = true;
                true
            }
            Some(x) => {
                let now = Instant::now();
                let gap = now.saturating_duration_since(x.last);
                x.last = now;
                if gap < DENSE_GAP {
                    x.untimed = DENSE_SKIP;
                }
                if lazy || gap < BURST_GAP {
                    x.dirty = true;
                    true
                } else {
                    false
                }
            }
            None => match target() {
                Some(target) => {
                    entries.push(Entry {
                        key,
                        target,
                        last: Instant::now(),
                        untimed: 0,
                        dirty: lazy,
                    });
                    lazy
                }
                None => false,
            },
        }
    })
}

/// Writes everything this thread held back (before a process waits, and at the end of
/// its slice).
pub fn flush_all() {
    let entries = ENTRIES.with(|e| {
        let mut e = e.borrow_mut();
        if e.is_empty() {
            return Vec::new();
        }
        std::mem::take(&mut *e)
    });
    for x in entries {
        if x.dirty {
            x.target.flush_deferred();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counter(AtomicUsize);
    impl Deferred for Counter {
        fn flush_deferred(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn bursts_are_held_until_the_flush_point_and_lone_sends_are_not() {
        let c = Arc::new(Counter(AtomicUsize::new(0)));
        let key = Arc::as_ptr(&c) as *const ();
        let make = || Some(c.clone() as Arc<dyn Deferred>);
        // Outside a slice: never held.
        assert!(!note_send(key, false, make));
        slice_begin();
        assert!(!note_send(key, false, make), "the first send goes at once");
        assert!(
            note_send(key, false, make),
            "a second one right after is held"
        );
        assert!(note_send(key, false, make));
        flush_all();
        assert_eq!(c.0.load(Ordering::SeqCst), 1);
        assert!(
            !note_send(key, false, make),
            "after a flush point, the first goes at once"
        );
        std::thread::sleep(BURST_GAP * 2);
        assert!(
            !note_send(key, false, make),
            "a send after a pause goes at once"
        );
        slice_end();
        assert_eq!(c.0.load(Ordering::SeqCst), 1, "nothing was held");
    }

    #[test]
    fn a_dense_burst_times_few_sends_and_a_pause_after_it_is_seen_soon() {
        let c = Arc::new(Counter(AtomicUsize::new(0)));
        let key = Arc::as_ptr(&c) as *const ();
        let make = || Some(c.clone() as Arc<dyn Deferred>);
        slice_begin();
        assert!(!note_send(key, false, make), "the first send goes at once");
        // Back to back: dense (unless this thread is descheduled between two sends,
        // which only makes a send go at once).
        let held = (0..100).filter(|_| note_send(key, false, make)).count();
        assert!(held >= 90, "{held} of 100 held");
        std::thread::sleep(BURST_GAP * 2);
        // Within the untimed sends left, a timed one sees the pause and goes at once.
        let first_written = (0..=DENSE_SKIP).position(|_| !note_send(key, false, make));
        assert!(first_written.is_some(), "the pause was never seen");
        slice_end();
        assert_eq!(c.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_lazy_send_is_held_even_first_and_what_follows_soon_with_it() {
        let c = Arc::new(Counter(AtomicUsize::new(0)));
        let key = Arc::as_ptr(&c) as *const ();
        let make = || Some(c.clone() as Arc<dyn Deferred>);
        assert!(!note_send(key, true, make), "outside a slice: never held");
        slice_begin();
        // "Right after" means within BURST_GAP: a thread descheduled between the two
        // sends makes the second go at once, as it should, so only a pair that took
        // less than that decides; a few tries find one even on a loaded machine.
        let mut decided = false;
        for attempt in 0..100 {
            let began = Instant::now();
            assert!(note_send(key, true, make), "a lazy first send is held");
            let held = note_send(key, false, make);
            let quick = began.elapsed() < BURST_GAP;
            flush_all();
            assert_eq!(
                c.0.load(Ordering::SeqCst),
                attempt + 1,
                "one flush per pair"
            );
            if quick {
                assert!(held, "the request right after it too");
                decided = true;
                break;
            }
        }
        assert!(
            decided,
            "no pair of sends within {BURST_GAP:?} in 100 tries"
        );
        c.0.store(1, Ordering::SeqCst);
        assert!(
            !note_send(key, false, make),
            "a plain first send goes at once"
        );
        assert!(note_send(key, true, make), "a lazy one after it is held");
        slice_end();
        assert_eq!(c.0.load(Ordering::SeqCst), 2);
    }
}
