//! The shared state of one peer connection, as every thread sees it.
//!
//! A [`Conn`] exists per peer node name from the moment anyone wants to talk to it: a
//! `connect`, or a send to one of its pids (auto-connect, as Erlang does). Its phase goes
//! `Connecting -> Up -> Down`; messages queued while connecting go out once it is up.
//!
//! Writing: the thread that queues a message also writes (under the state lock) until
//! the socket is full; the I/O thread writes the rest when the socket becomes writable
//! again (it is registered edge-triggered for writability). So a send normally costs
//! one `write` on the sender's own thread, with no hand-off. A burst of sends from a
//! process on a worker is held and written once, when the process waits or its slice
//! ends ([`crate::rt::flush`]; at most 1 MiB held; a remote monitor or demonitor waits
//! for that point even when it is the first send). A small message (judged under 1 KiB)
//! is encoded straight into the write buffer, under the lock, when nothing else is
//! queued; others are encoded into a per-thread scratch buffer first, then copied
//! (or, from 8 KiB, handed over whole), so a message costs no allocation of its own. A
//! message over `max_message` is refused here (the peer would close the connection on
//! it). A process keeps the connection of its last remote send (`rt::PeerLink`), so
//! its next send there skips the router and the connection table.
//!
//! Backpressure: a sender that finds more than `busy_limit` bytes queued waits (its
//! worker handed to another thread) until the queue drains below the limit or the
//! connection goes down. Nothing is dropped while the connection is up. The I/O thread
//! itself never waits.
//!
//! Bookkeeping for node loss: the links and monitors that cross this connection, and
//! the spawn requests awaiting a reply, are recorded as they pass; when the connection
//! goes, each local party gets `noconnection`.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use mio::net::TcpStream;
use parking_lot::{Condvar, Mutex};

use super::outbound::{HAND_OVER, Outbound};
use super::wire::{FRAGMENT, ToPid, Wire, likely_small};
use crate::rt::{Node, PeerLink, Signal, flush};
use crate::term::{Atom, Pid, Ref, Term};

/// Where a connection stands.
#[derive(Clone, Debug)]
pub enum Phase {
    /// Resolving the peer's address or shaking hands.
    Connecting,
    /// Up with this incarnation of the peer.
    Up {
        /// The peer's creation.
        creation: u32,
        /// Whether the peer is hidden.
        hidden: bool,
    },
    /// Gone, with the reason.
    Down(String),
}

/// A spawn request waiting for its reply.
#[derive(Clone, Copy, Debug)]
pub struct SpawnWait {
    /// The requesting process.
    pub requester: Pid,
    /// Whether the new process links to it.
    pub link: bool,
    /// Whether the requester monitors the new process.
    pub monitor: bool,
}

pub(crate) struct ConnState {
    pub(crate) phase: Phase,
    /// The first typed failure met while connecting, for `Net::connect` to return.
    pub(crate) failure: Option<crate::ConnectError>,
    pub(crate) out: Outbound,
    pub(crate) socket: Option<Arc<TcpStream>>,
    /// Links crossing this connection: (local pid, remote pid).
    pub(crate) links: HashSet<(Pid, Pid)>,
    /// Monitors held by local processes on remote ones: ref -> (watcher, target).
    pub(crate) monitors: HashMap<Ref, (Pid, Pid)>,
    pub(crate) spawns: HashMap<Ref, SpawnWait>,
    /// When the connection was asked for (connecting too long is a failure).
    pub(crate) since: Instant,
    /// Messages and encoded bytes sent, for the console's `stats`.
    pub(crate) sent: (u64, u64),
    /// It was started after one with the same peer had been up and gone down: a
    /// refusal as a duplicate means the peer still holds that one, and is worth
    /// dialling again.
    pub(crate) follows_up: bool,
}

/// One peer connection (see the module docs).
pub struct Conn {
    /// This connection, for handing to [`flush`](crate::rt::flush) when a burst is held.
    me: std::sync::Weak<Conn>,
    pub(crate) peer: Atom,
    node: Node,
    pub(crate) state: Mutex<ConnState>,
    pub(crate) changed: Condvar,
    pub(crate) busy_limit: usize,
    /// The largest message the peer accepts (its reassembly limit, assumed the same as
    /// ours): a larger one is refused here, so it cannot take the connection down.
    max_message: usize,
    /// When this side last wrote something to the socket (ms since `epoch`), for ticks.
    pub(crate) last_sent: AtomicU64,
    /// Set (under the state lock) when the phase becomes `Down`: lets a sender pass
    /// over a dead connection without taking the lock (see [`Conn::is_down`]).
    down: AtomicBool,
    pub(crate) epoch: Instant,
    /// Messages and encoded bytes each way, for the console's `stats`.
    pub(crate) counters: Counters,
}

/// What a connection received, counted by the thread turning its node's I/O loop (the
/// I/O thread or a waiting worker: one at a time, under the loop's lock, so a count is
/// a load and a store, not a locked add); read for display only. What it sent is counted in
/// [`ConnState::sent`], under the lock every sender takes anyway.
#[derive(Default)]
pub(crate) struct Counters {
    msgs_in: AtomicU64,
    bytes_in: AtomicU64,
}

/// Traffic on one connection since it was set up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Messages (signals, spawn requests, ticks...) sent.
    pub msgs_out: u64,
    /// Encoded bytes sent (before framing).
    pub bytes_out: u64,
    /// Messages received (after reassembly).
    pub msgs_in: u64,
    /// Frame bytes received.
    pub bytes_in: u64,
}

impl Counters {
    /// Counts messages and frame bytes received (by a turn of the I/O loop only).
    pub(crate) fn received(&self, msgs: u64, bytes: u64) {
        let add = |c: &AtomicU64, n: u64| c.store(c.load(Ordering::Relaxed) + n, Ordering::Relaxed);
        add(&self.msgs_in, msgs);
        add(&self.bytes_in, bytes);
    }
}

thread_local! {
    /// Set on a node's I/O thread, and on a worker while it turns the I/O loop: neither
    /// may wait for a queue to drain.
    pub(crate) static ON_IO_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Held-back bytes of a burst beyond this are written at once.
const HOLD_LIMIT: usize = 1024 * 1024;

/// A message judged smaller than this (`wire::likely_small`) is encoded straight into
/// the write buffer when nothing is queued ahead of it; a larger one goes through the
/// scratch buffer (and one of 8 KiB or more is handed over without a copy).
const IN_PLACE_MAX: usize = 1024;

/// The scratch buffer a thread encodes into is kept up to this capacity: room for a
/// whole frame (larger messages go out in fragments), so a stream of 64 KiB messages
/// does not grow a fresh buffer for each (at 64 KiB it did, and each growth copied
/// and page-faulted).
const SCRATCH_KEEP: usize = 2 * super::wire::FRAGMENT;

thread_local! {
    /// Where this thread encodes outgoing messages (see [`Conn::send_checked`]).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl PeerLink for Conn {
    fn peer(&self) -> Atom {
        self.peer
    }

    fn try_send(&self, to: Pid, signal: Signal) -> Result<(), Signal> {
        if self.is_down() {
            return Err(signal);
        }
        self.send_signal(to, signal);
        Ok(())
    }
}

impl flush::Deferred for Conn {
    fn flush_deferred(&self) {
        let mut st = self.state.lock();
        if st.socket.is_some() && !st.out.is_empty() {
            let _ = self.flush_locked(&mut st);
        }
    }
}

/// Whether `msg` is a signal that can wait for the sender's next flush point (see
/// [`flush::note_send`]).
fn is_lazy(msg: &Wire) -> bool {
    matches!(msg, Wire::Signal { signal, .. } if signal.is_lazy())
}

/// The stream a message goes on: messages to one process stay in order.
pub fn stream_of(msg: &Wire) -> u64 {
    match msg {
        // A monitor by name goes with the sends to that name (see `wire`).
        Wire::Signal {
            signal: Signal::MonitorName { name, .. } | Signal::DemonitorName { name, .. },
            ..
        }
        | Wire::RegSend { name, .. } => (u64::from(name.index()) << 40) | 1,
        Wire::Signal { to, .. } | Wire::SpawnReply { to, .. } => to.id + 1,
        Wire::SpawnRequest { from, .. } => from.id() + 1,
        Wire::Tick | Wire::Peers { .. } => 0,
    }
}

impl Conn {
    /// Records why the connection being set up failed (the first failure counts; a
    /// connection already up or down is left alone): what `Net::connect` returns.
    pub(crate) fn note_failure(&self, failure: crate::ConnectError) {
        let mut st = self.state.lock();
        if matches!(st.phase, Phase::Connecting) && st.failure.is_none() {
            st.failure = Some(failure);
        }
    }

    pub(crate) fn new(
        node: Node,
        peer: Atom,
        busy_limit: usize,
        max_message: usize,
        epoch: Instant,
    ) -> Arc<Conn> {
        Arc::new_cyclic(|me| Conn {
            me: me.clone(),
            peer,
            node,
            state: Mutex::new(ConnState {
                phase: Phase::Connecting,
                failure: None,
                out: Outbound::new(),
                socket: None,
                links: HashSet::new(),
                monitors: HashMap::new(),
                spawns: HashMap::new(),
                since: Instant::now(),
                sent: (0, 0),
                follows_up: false,
            }),
            changed: Condvar::new(),
            busy_limit,
            max_message,
            last_sent: AtomicU64::new(0),
            down: AtomicBool::new(false),
            counters: Counters::default(),
            epoch,
        })
    }

    /// Traffic since the connection was set up.
    pub fn stats(&self) -> ConnStats {
        let (msgs_out, bytes_out) = self.state.lock().sent;
        ConnStats {
            msgs_out,
            bytes_out,
            msgs_in: self.counters.msgs_in.load(Ordering::Relaxed),
            bytes_in: self.counters.bytes_in.load(Ordering::Relaxed),
        }
    }

    /// The peer's node name.
    pub fn peer(&self) -> Atom {
        self.peer
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.state.lock().phase.clone()
    }

    /// Whether the phase is `Down` (for good: a connection never comes back up; a
    /// new one replaces it). Without the lock, so it may lag a moment behind: a send
    /// that passes it still finds `Down` under the lock and says `noconnection`.
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// Marks the connection down (with the state lock held, the phase set `Down`).
    pub(crate) fn mark_down(&self) {
        self.down.store(true, Ordering::Release);
    }

    /// Whether the connection is up.
    pub fn is_up(&self) -> bool {
        matches!(self.state.lock().phase, Phase::Up { .. })
    }

    /// Queues `msg` (encoded) and writes what the socket takes; `record` updates the
    /// bookkeeping under the same lock. Returns false if the connection is down (nothing
    /// was queued). A sender over the busy limit first waits, its worker handed off.
    pub(crate) fn send(&self, msg: &Wire, record: impl FnOnce(&mut ConnState)) -> bool {
        self.send_checked(msg, record).is_ok()
    }

    /// [`Conn::send`], saying why a message was not sent: `:noconnection`, or
    /// `{:too_large, bytes, max_message}` for a message the peer would refuse.
    pub(crate) fn send_checked(
        &self,
        msg: &Wire,
        record: impl FnOnce(&mut ConnState),
    ) -> Result<(), Term> {
        // A small message behind nothing queued is encoded straight into the write
        // buffer, under the lock (no scratch buffer, no copy).
        if likely_small(msg, IN_PLACE_MAX) {
            let mut st = self.state.lock();
            if st.socket.is_some()
                && matches!(st.phase, Phase::Up { .. })
                && st.out.bytes() <= self.busy_limit
            {
                match st
                    .out
                    .append_encoded(msg, IN_PLACE_MAX.min(self.max_message))
                {
                    Ok(Some(size)) => {
                        record(&mut st);
                        self.queued(&mut st, msg, size);
                        return Ok(());
                    }
                    Ok(None) => {}
                    Err(e) => return Err(self.unencodable(&e)),
                }
            }
        }
        // Otherwise encoded into this thread's scratch buffer: a small message costs no
        // allocation of its own, only a copy into the connection's write buffer.
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let framed = super::wire::encode_framed(msg, std::mem::take(&mut *scratch));
            let result = match framed {
                Ok(framed) => {
                    let len = framed.len();
                    let (result, keep) = self.send_framed(msg, framed, record);
                    // A message handed over whole takes the buffer along: the next one
                    // likely has the same size, so start there, not from empty.
                    *scratch = keep.unwrap_or_else(|| Vec::with_capacity(len.min(SCRATCH_KEEP)));
                    result
                }
                Err(e) => Err(self.unencodable(&e)),
            };
            if scratch.capacity() > SCRATCH_KEEP {
                *scratch = Vec::new();
            }
            result
        })
    }

    /// Queues `bytes` (`msg` as [`encode_framed`](super::wire::encode_framed) makes
    /// it), and writes unless a burst holds it back. Hands `bytes` back when it was
    /// only copied, for the scratch buffer to keep.
    fn send_framed(
        &self,
        msg: &Wire,
        bytes: Vec<u8>,
        record: impl FnOnce(&mut ConnState),
    ) -> (Result<(), Term>, Option<Vec<u8>>) {
        // The message's size on the wire, without its frame prefix.
        let size = bytes.len() - super::wire::FRAMED_PREFIX;
        if size > self.max_message {
            // The peer would close the connection on it, taking everything else on it
            // down too: refuse it here, with a reason the sender's node logs.
            log::error!(
                "to {}: a message of {} bytes exceeds the {}-byte limit (max_message); not sent",
                self.peer,
                size,
                self.max_message
            );
            let reason = Term::tuple(vec![
                Term::atom("too_large"),
                Term::from(size),
                Term::from(self.max_message),
            ]);
            return (Err(reason), Some(bytes));
        }
        let mut st = self.state.lock();
        if st.out.bytes() > self.busy_limit && !ON_IO_THREAD.with(|f| f.get()) {
            drop(st);
            self.node.wait_on_io(|| {
                let mut st = self.state.lock();
                while st.out.bytes() > self.busy_limit && !matches!(st.phase, Phase::Down(_)) {
                    // Every flush that frees room and every phase change notifies; the
                    // timeout only bounds a missed wake-up.
                    self.changed
                        .wait_for(&mut st, std::time::Duration::from_millis(100));
                }
            });
            st = self.state.lock();
        }
        if matches!(st.phase, Phase::Down(_)) {
            return (Err(Term::Atom(Atom::NOCONNECTION)), Some(bytes));
        }
        record(&mut st);
        let mut keep = None;
        if size <= FRAGMENT && st.socket.is_some() && st.out.is_empty() {
            keep = st.out.frame_whole(bytes);
        } else if size < HAND_OVER && st.out.append_whole(&bytes) {
            keep = Some(bytes);
        } else {
            st.out.push_framed(stream_of(msg), bytes);
        }
        self.queued(&mut st, msg, size);
        (Ok(()), keep)
    }

    /// Logs a message that does not encode (dropped); the reason for its sender.
    fn unencodable(&self, why: &str) -> Term {
        log::error!("to {}: {why}; message dropped", self.peer);
        Term::tuple(vec![Term::atom("badarg"), Term::str(why)])
    }

    /// After `msg` (`size` bytes) joined the queue: counts it, and writes unless a
    /// burst from a process on a worker holds it back until the process waits or its
    /// slice ends (one write for the burst; at most 1 MiB held).
    fn queued(&self, st: &mut ConnState, msg: &Wire, size: usize) {
        st.sent.0 += 1;
        st.sent.1 += size as u64;
        if st.socket.is_none() {
            return;
        }
        let hold = st.out.bytes() < HOLD_LIMIT
            && flush::note_send(self as *const Conn as *const (), is_lazy(msg), || {
                self.me.upgrade().map(|c| c as Arc<dyn flush::Deferred>)
            });
        if !hold {
            let _ = self.flush_locked(st);
        }
    }

    /// Sends `signal` to `to` (a pid of the peer), recording the links and monitors
    /// it makes or ends; one that can't go is answered as for an unreachable node
    /// (`noconnection`).
    pub(crate) fn send_signal(&self, to: Pid, signal: Signal) {
        let local = signal.sender();
        let msg = Wire::Signal {
            to: ToPid::of(to),
            signal,
        };
        let sent = self.send(&msg, |st| {
            if let (Some(local), Wire::Signal { signal, .. }) = (local, &msg) {
                Conn::note_signal(st, local, to, signal, true);
            }
        });
        if !sent && let Wire::Signal { signal, .. } = msg {
            self.node.answer_dead(to, signal, Atom::NOCONNECTION);
        }
    }

    /// Writes queued bytes until done or the socket is full; errors are left for the
    /// I/O thread to notice on the socket.
    pub(crate) fn flush_locked(&self, st: &mut ConnState) -> io::Result<bool> {
        let Some(sock) = st.socket.clone() else {
            return Ok(false);
        };
        let before = st.out.bytes();
        let done = st.out.flush(&mut &*sock);
        if st.out.bytes() < before {
            self.last_sent
                .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
            if before > self.busy_limit / 2 {
                self.changed.notify_all();
            }
        }
        done
    }

    /// Records bookkeeping for a signal crossing this connection (either direction).
    pub(crate) fn note_signal(
        st: &mut ConnState,
        local: Pid,
        remote: Pid,
        signal: &Signal,
        outgoing: bool,
    ) {
        match signal {
            Signal::Link { .. } => {
                st.links.insert((local, remote));
            }
            Signal::Unlink { .. } | Signal::Exit { linked: true, .. } => {
                st.links.remove(&(local, remote));
            }
            // By name, `remote` is the node itself (`signal::node_pid`): a `Down` it
            // is given on node loss is named `{name, node}` by its watcher.
            Signal::Monitor { reference, .. } | Signal::MonitorName { reference, .. }
                if outgoing =>
            {
                st.monitors.insert(*reference, (local, remote));
            }
            Signal::Demonitor { reference, .. } | Signal::DemonitorName { reference, .. }
                if outgoing =>
            {
                st.monitors.remove(reference);
            }
            Signal::Down { reference, .. } if !outgoing => {
                st.monitors.remove(reference);
            }
            _ => {}
        }
    }
}
