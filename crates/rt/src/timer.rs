//! Timers: `send_after` and `cancel_timer`, one timer thread per node.
//!
//! Pending timers live in a map by id plus a min-heap of (deadline, id). Cancelling
//! removes the map entry; the heap entry is skipped when it comes up, and the heap is
//! rebuilt when skipped entries outnumber live ones, so memory stays proportional to
//! the live timers. The thread sleeps on a condvar until the earliest deadline or until
//! an earlier timer is added.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Dest;
use super::node::{Node, NodeInner};
use super::process::IdBuild;
use crate::term::Term;

/// Identifies a pending timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerRef(u64);

struct Pending {
    deadline: Instant,
    dest: Dest,
    msg: Term,
}

#[derive(Default)]
struct TimerState {
    pending: HashMap<u64, Pending, IdBuild>,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    next_id: u64,
    stopped: bool,
}

struct Shared {
    state: Mutex<TimerState>,
    wakeup: Condvar,
}

pub(crate) struct Timers {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Timers {
    pub(crate) fn start(name: &str, node: Weak<NodeInner>) -> Timers {
        let shared = Arc::new(Shared {
            state: Mutex::new(TimerState::default()),
            wakeup: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-timers"))
            .spawn(move || timer_main(s, node))
            .map_err(|e| log::error!("cannot start timer thread: {e}"))
            .ok();
        Timers {
            shared,
            thread: Mutex::new(thread),
        }
    }

    pub(crate) fn add(&self, dest: Dest, msg: Term, delay: Duration) -> TimerRef {
        let deadline = Instant::now() + delay;
        let mut st = self.shared.state.lock();
        st.next_id += 1;
        let id = st.next_id;
        let earliest = st.heap.peek().is_none_or(|Reverse((d, _))| deadline < *d);
        st.pending.insert(
            id,
            Pending {
                deadline,
                dest,
                msg,
            },
        );
        st.heap.push(Reverse((deadline, id)));
        if earliest {
            self.shared.wakeup.notify_one();
        }
        TimerRef(id)
    }

    pub(crate) fn cancel(&self, timer: TimerRef) -> Option<Duration> {
        let mut st = self.shared.state.lock();
        let p = st.pending.remove(&timer.0)?;
        if st.heap.len() > 2 * st.pending.len() + 64 {
            let live: Vec<_> = st
                .pending
                .iter()
                .map(|(id, p)| Reverse((p.deadline, *id)))
                .collect();
            st.heap = BinaryHeap::from(live);
        }
        Some(p.deadline.saturating_duration_since(Instant::now()))
    }

    pub(crate) fn stop(&self) {
        self.shared.state.lock().stopped = true;
        self.shared.wakeup.notify_one();
        if let Some(t) = self.thread.lock().take()
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        self.shared.state.lock().stopped = true;
        self.shared.wakeup.notify_one();
    }
}

fn timer_main(shared: Arc<Shared>, node: Weak<NodeInner>) {
    let mut st = shared.state.lock();
    loop {
        if st.stopped {
            return;
        }
        let now = Instant::now();
        let mut due = Vec::new();
        while let Some(Reverse((deadline, id))) = st.heap.peek().copied() {
            if deadline > now {
                break;
            }
            st.heap.pop();
            if let Some(p) = st.pending.remove(&id) {
                due.push(p);
            }
        }
        if !due.is_empty() {
            drop(st);
            let Some(inner) = node.upgrade() else { return };
            let node = Node::from_inner(inner);
            for p in due {
                // A timer to a name that is no longer registered is dropped, as on the BEAM.
                let _ = node.send_to(p.dest, p.msg);
            }
            drop(node);
            st = shared.state.lock();
            continue;
        }
        match st.heap.peek() {
            Some(Reverse((deadline, _))) => {
                let d = *deadline;
                shared.wakeup.wait_until(&mut st, d);
            }
            None => shared.wakeup.wait(&mut st),
        }
    }
}
