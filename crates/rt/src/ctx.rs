//! `Ctx`: what a process sees of itself and the world.
//!
//! Every process, scheduler-run or an attached OS thread, has exactly one `Ctx`, and only
//! the thread currently running the process touches it: its links, the monitors it holds
//! and the monitors on it, its trap_exit flag, and the messages a selective receive has
//! skipped (`saved`, kept in arrival order and looked at first by the next receive).
//!
//! Control signals (links, monitors, exits) are acted on whenever the process looks at
//! its queue: between handler calls, and inside any receive. An exit signal that ends the
//! process while it is inside a receive unwinds its stack: a scheduler-run process ends
//! with that reason (its `terminate` runs); an attached thread panics with a message
//! naming the reason, after its links and monitors have been told.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::errors::{RegisterError, SendError};
use super::few::{Few, FewSet};
use super::node::Node;
use super::process::{IdBuild, ProcessCell};
use super::signal::{ExitAction, Signal, down_message, down_message_named, exit_action};
use super::{Dest, PeerLink};
use crate::term::{Atom, Pid, Ref, Term};

mod by_name;
mod finish;
mod links;

/// The payload a process unwinds with when it exits from inside its code
/// ([`Ctx::exit`], or a fatal exit signal during a receive).
pub(crate) struct ProcessExit(pub(crate) Term);

/// Times a process looks for a message (between looks, turning its node's I/O loop
/// if no other thread is at it, else yielding) before a receive hands its worker's
/// queue over and blocks.
const RECEIVE_SPINS: u32 = 50;

/// ... and for no longer than this: on a CPU shared with busy threads one yield can cost
/// a whole time slice (4 ms), and 50 of them made each blocking call cost 200 ms.
const RECEIVE_SPIN_TIME: Duration = Duration::from_micros(200);

/// Every this-many-th local send of a process on a worker runs the process the worker
/// woke last (usually the receiver) inline, if that is a reactor (see
/// `Scheduler::run_reactor_inline`), as the BEAM charges reductions for a send and
/// switches the sender out: a producer then stays a few messages ahead of a reactor
/// consumer, both in one CPU's cache. 7 is the size of glibc's per-thread cache of a
/// block size: the consumer frees each message while that cache still holds the ones
/// the producer took (measured in session 8: 12.9M -> 13.3M msgs/s against 6).
const SENDS_PER_INLINE_RUN: u32 = 7;

/// Slices of reactors a waiting process runs inline before it spins.
const INLINE_RUNS: u32 = 4;

/// Every this-many-th local send of a process, the process its worker woke last (in the
/// worker's private next slot, usually the one being sent to) is made stealable and an
/// idle worker is told: a producer in a loop then has its consumer running beside it on
/// another thread instead of finding, when its slice ends, its whole output queued.
const SENDS_PER_SHARE: u32 = 64;

/// A process on a worker that finds its receiver this many messages behind (checked
/// every [`SENDS_PER_SHARE`]th send) waits for it to catch up, up to [`SEND_WAIT`],
/// handing its worker's work to another thread if none other could run it (see
/// `Ctx::let_receiver_run`), as the BEAM switches out a process that sends a lot: so a
/// producer cannot bury a consumer, whether they share a worker or not. The wait is
/// bounded, so a receiver that does not catch up slows the sender down, never stops
/// it; messages a receiver holds aside (a selective receive's) are not counted.
/// Attached threads, which take no worker from anyone, are not held back, nor waited
/// for (they read their mailbox when they choose to).
const SEND_BACKLOG: usize = 1024;

/// The longest a sender waits for a receiver that is [`SEND_BACKLOG`] behind.
const SEND_WAIT: Duration = Duration::from_millis(10);

/// The most call tags remembered after a timed-out call, to drop a late reply.
const MAX_ABANDONED_TAGS: usize = 1024;

/// A process's own view: its pid, mailbox, links and monitors.
pub struct Ctx {
    node: Node,
    pub(crate) cell: Arc<ProcessCell>,
    pub(crate) links: FewSet<Pid>,
    /// Monitors this process holds, by reference: the watched pid.
    pub(crate) monitors: HashMap<Ref, Pid, IdBuild>,
    /// Of `monitors`, those set up by name (`monitor_name`): `{name, node}`, which
    /// their `DOWN` names instead of the pid.
    pub(crate) named: by_name::NameMonitors,
    /// Monitors on this process, by reference: the watcher.
    pub(crate) watchers: Few<Ref, Pid>,
    pub(crate) saved: VecDeque<Term>,
    /// Signals taken from the shared queue in one batch, not yet acted on (so the
    /// process locks its mailbox once per batch, not once per signal).
    inbox: VecDeque<Signal>,
    /// Messages in `inbox` beyond one per entry (see `MailboxState::batched_extra`).
    inbox_extra: usize,
    /// Whether `inbox` may hold runs of encoded messages (see `pop_decoding`).
    inbox_encoded: bool,
    /// The run of encoded messages being taken, one by one (see `pop_decoding`).
    run: Option<Box<super::EncodedMessages>>,
    pub(crate) trap_exit: bool,
    pub(crate) parent: Option<Pid>,
    /// Set once the process has exited (attached threads outlive their process).
    pub(crate) exited: Option<Term>,
    /// Tags of calls that timed out: a late `{tag, reply}` is dropped, not delivered.
    abandoned: VecDeque<Ref>,
    /// The local process this one last sent a message to: a process that sends to the
    /// same one again and again (a producer, a ring, a ping-pong, a client of one
    /// server) skips the process table's lock on each send. It may outlive that
    /// process until the next send (at most one cell per process).
    last_dest: Cell<Option<Arc<ProcessCell>>>,
    /// Local sends in this turn (a handler's call, or a task's body) since the last one
    /// that let receivers run (see `Ctx::send`).
    local_sends: Cell<u32>,
    /// Local sends since the last one that ran a reactor inline (across turns).
    sends_since_inline: Cell<u8>,
    /// The connection this process last sent a message to another node on: a process
    /// that sends to one node again and again skips the router and the connection
    /// table. Let go at the first send that finds it down (it then holds no buffers).
    last_peer: Cell<Option<Arc<dyn PeerLink>>>,
}

impl Ctx {
    pub(crate) fn new(node: Node, cell: Arc<ProcessCell>, parent: Option<Pid>) -> Ctx {
        Ctx {
            node,
            cell,
            links: FewSet::default(),
            monitors: HashMap::default(),
            named: by_name::NameMonitors::default(),
            watchers: Few::default(),
            saved: VecDeque::new(),
            inbox: VecDeque::new(),
            inbox_extra: 0,
            inbox_encoded: false,
            run: None,
            trap_exit: false,
            parent,
            exited: None,
            abandoned: VecDeque::new(),
            last_dest: Cell::new(None),
            local_sends: Cell::new(0),
            sends_since_inline: Cell::new(0),
            last_peer: Cell::new(None),
        }
    }

    /// This process's pid (`self()`).
    pub fn pid(&self) -> Pid {
        self.cell.pid
    }

    /// The node this process runs on.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The process that spawned this one, if it was spawned by a process.
    pub fn parent(&self) -> Option<Pid> {
        self.parent
    }

    /// A fresh reference (`make_ref()`).
    pub fn make_ref(&self) -> Ref {
        self.node.make_ref()
    }

    /// Sends `msg` to `to` (local or remote). Never fails: a message to a dead process
    /// is dropped, as in Erlang.
    ///
    /// Like the BEAM, which charges a send reductions and switches a sender out, a
    /// process that sends in a loop lets the receiver run meanwhile: every 7th local
    /// send runs the reactor it woke, if it woke one, on this thread (see
    /// [`Reactor`](super::Reactor)); every 64th local send of a turn makes what this
    /// worker woke stealable by idle workers, and waits a moment for a receiver that
    /// is far behind (more than 1,024 messages). No process that can wait ever runs on the
    /// sender's stack; do not hold a lock across a send that a reactor takes.
    pub fn send(&self, to: Pid, msg: impl Into<Term>) {
        let signal = Signal::Message(msg.into());
        let cached = self.last_dest.take().filter(|c| c.pid == to);
        match cached.or_else(|| self.node.local_cell(to)) {
            // A cell whose process has exited is let go, so a cache never keeps a
            // dead process's memory beyond the first send that finds it gone.
            Some(cell) => {
                let n = self.local_sends.get() + 1;
                if n < SENDS_PER_SHARE {
                    self.local_sends.set(n);
                } else {
                    self.local_sends.set(0);
                    self.let_receiver_run(&cell);
                }
                let pushed = self.node.push_to(&cell, signal);
                let k = self.sends_since_inline.get() + 1;
                if u32::from(k) < SENDS_PER_INLINE_RUN {
                    self.sends_since_inline.set(k);
                } else {
                    self.sends_since_inline.set(0);
                    self.node.scheduler().run_reactor_inline();
                }
                if pushed {
                    self.last_dest.set(Some(cell));
                }
            }
            None => self.send_elsewhere(to, signal),
        }
    }

    /// A handler is called with the next message: the count of sends that decides when
    /// receivers run starts again, so a process that sends once per message (a ping-
    /// pong, a ring) keeps its receiver in its worker's next slot, on its thread.
    #[inline]
    pub(crate) fn new_turn(&self) {
        self.local_sends.set(0);
    }

    /// Every [`SENDS_PER_SHARE`]th local send of a turn, before it (see [`Ctx::send`]): what
    /// this worker woke becomes stealable; and a sender on a worker whose receiver is
    /// more than [`SEND_BACKLOG`] messages behind waits, up to [`SEND_WAIT`], for it to
    /// work its backlog down to half that, this worker's work handed to another thread
    /// meanwhile if no other could take it.
    #[cold]
    #[inline(never)]
    fn let_receiver_run(&self, receiver: &ProcessCell) {
        let sched = self.node.scheduler();
        if !sched.on_worker() {
            return;
        }
        // A reactor stays in the next slot: it runs inline at the sends to come.
        sched.share_local_work_but(true);
        if !receiver.is_job || receiver.pid == self.pid() || receiver.backlog_len() <= SEND_BACKLOG
        {
            return;
        }
        super::flush::flush_all();
        let _handed_over = sched
            .local_work_stranded()
            .then(|| BlockGuard::begin(&self.node));
        let deadline = Instant::now() + SEND_WAIT;
        while receiver.backlog_len() > SEND_BACKLOG / 2 && Instant::now() < deadline {
            std::thread::yield_now();
        }
    }

    /// A message for a pid not in this node's table: another node's (through the
    /// connection kept from the last such send when it leads there), or a dead one.
    fn send_elsewhere(&self, to: Pid, signal: Signal) {
        let signal = match self.last_peer.take() {
            Some(link) if link.peer() == to.node() => match link.try_send(to, signal) {
                Ok(()) => {
                    self.last_peer.set(Some(link));
                    return;
                }
                Err(signal) => signal,
            },
            other => {
                self.last_peer.set(other);
                signal
            }
        };
        if let Some(link) = self.node.deliver_keep(to, signal) {
            self.last_peer.set(Some(link));
        }
    }

    /// Sends to a pid or a registered name; an unregistered name is an error (`badarg`).
    pub fn send_to(&self, to: impl Into<Dest>, msg: impl Into<Term>) -> Result<(), SendError> {
        self.node.send_to(to, msg)
    }

    /// [`Ctx::send_to`] that never starts a connection (`erlang:send(D, M, [noconnect])`):
    /// a message for a node not connected now is dropped. See [`Node::send_noconnect`].
    pub fn send_noconnect(
        &self,
        to: impl Into<Dest>,
        msg: impl Into<Term>,
    ) -> Result<(), SendError> {
        self.node.send_noconnect(to, msg)
    }

    /// The number of messages waiting (saved ones plus queued signals).
    pub fn message_queue_len(&self) -> usize {
        self.taken_len() + self.cell.queue_len()
    }

    /// Messages already taken from the shared queue: saved ones and the inbox.
    pub(crate) fn taken_len(&self) -> usize {
        self.saved.len()
            + self.inbox.len()
            + self.inbox_extra
            + self.run.as_ref().map_or(0, |r| r.remaining())
    }

    /// Ends this process with `reason` (Erlang's `exit/1`). Never returns.
    pub fn exit(&mut self, reason: impl Into<Term>) -> ! {
        self.die(reason.into())
    }

    /// Sends an exit signal to `pid` (Erlang's `exit/2`): `kill` ends it untrappably;
    /// `normal` is ignored unless it is this process; other reasons end it unless it
    /// traps exits.
    pub fn exit_pid(&mut self, pid: Pid, reason: impl Into<Term>) {
        let reason = reason.into();
        if pid == self.pid() {
            match exit_action(pid, self.trap_exit, pid, &reason, false, false) {
                ExitAction::Die(r) => self.die(r),
                ExitAction::Message(m) => self.saved.push_back(m),
                ExitAction::Ignore => {}
            }
            return;
        }
        self.node.deliver(
            pid,
            Signal::Exit {
                from: self.pid(),
                reason,
                linked: false,
            },
        );
    }

    /// Registers this process under `name` on its node.
    pub fn register(&self, name: Atom) -> Result<(), RegisterError> {
        self.node.register(name, self.pid())
    }

    /// Waits for the next message.
    pub fn receive(&mut self) -> Term {
        self.receive_any(None)
            .expect("a receive without timeout returns a message")
    }

    /// Waits up to `timeout` for the next message.
    pub fn receive_timeout(&mut self, timeout: Duration) -> Option<Term> {
        self.receive_any(Some(timeout))
    }

    /// The next message, whatever it is: handed over as it is, not cloned.
    fn receive_any(&mut self, timeout: Option<Duration>) -> Option<Term> {
        self.ensure_alive();
        if let Some(m) = self.saved.pop_front() {
            return Some(m);
        }
        self.receive_loop(Ok, timeout)
    }

    /// Lets other processes run (`erlang:yield/0`): a process that polls in a loop
    /// calls this between polls. On a scheduler worker it first runs a reactor that is
    /// waiting (one it woke, or work a connection delivered; see
    /// [`Reactor`](super::Reactor)), or reads what the node's sockets hold and runs
    /// the reactor that is for; else what it woke becomes stealable by other workers,
    /// and where no other thread would take it (a node with one worker) it hands its
    /// worker over for the moment of an OS yield, so it runs. With nothing runnable,
    /// or on other threads, it yields the CPU to the operating system. Output held back
    /// in a burst goes out first.
    pub fn yield_now(&mut self) {
        self.ensure_alive();
        super::flush::flush_all();
        let sched = self.node.scheduler();
        if sched.run_any_reactor_inline() {
            return;
        }
        // What a poller waits for may be in a socket: read it here (it lands in this
        // worker's next slot), and run it if it is a reactor.
        if self.node.poll_io() && sched.run_reactor_inline() {
            return;
        }
        // What this worker woke becomes stealable; if no other thread would take it
        // (this one holds the only permit), the worker is handed over for the yield.
        sched.share_local_work();
        let _handed_over = sched
            .local_work_stranded()
            .then(|| BlockGuard::begin(&self.node));
        std::thread::yield_now();
    }

    /// Selective receive: the first message (oldest first) for which `pred` holds,
    /// waiting up to `timeout` (`None`: forever). Other messages stay queued, in order.
    pub fn receive_match(
        &mut self,
        mut pred: impl FnMut(&Term) -> bool,
        timeout: Option<Duration>,
    ) -> Option<Term> {
        self.receive_with(|m| pred(m).then(|| m.clone()), timeout)
    }

    /// Selective receive with extraction: the first message for which `f` gives `Some`.
    pub fn receive_with<T>(
        &mut self,
        mut f: impl FnMut(&Term) -> Option<T>,
        timeout: Option<Duration>,
    ) -> Option<T> {
        self.ensure_alive();
        if let Some(i) = self.saved.iter().position(|m| f(m).is_some()) {
            let m = self.saved.remove(i).expect("index from position");
            return f(&m);
        }
        self.receive_loop(|m| f(&m).ok_or(m), timeout)
    }

    /// Takes queued signals until `take` accepts a message (one it gives back is
    /// saved, in order), waiting up to `timeout`.
    fn receive_loop<T>(
        &mut self,
        mut take: impl FnMut(Term) -> Result<T, Term>,
        timeout: Option<Duration>,
    ) -> Option<T> {
        let deadline = timeout.map(|d| Instant::now() + d);
        let mut blocking: Option<BlockGuard> = None;
        let mut spins = 0;
        let mut inline_runs = 0;
        let mut spin_until: Option<Instant> = None;
        loop {
            let Some(signal) = self.pop_signal(false) else {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return None;
                }
                // Any process about to block a worker thread hands the worker over: a
                // scheduler-run one, or an attached one created on a worker (a
                // node-level call made from inside a process). On other threads
                // `block_begin` does nothing.
                if blocking.is_none() {
                    if spins == 0 {
                        super::reactor::forbid_blocking("a receive that waits");
                        // Output held back in a burst goes out before we wait.
                        super::flush::flush_all();
                        let sched = self.node.scheduler();
                        // A reactor we just made runnable runs here and now, a few
                        // times at most: it cannot wait, so it cannot wait for us.
                        if inline_runs < INLINE_RUNS && sched.run_reactor_inline() {
                            inline_runs += 1;
                            continue;
                        }
                        // The process we just made runnable (the server we called)
                        // becomes stealable. If no other thread would take it (this one
                        // holds the only permit), spinning would only keep it waiting:
                        // hand the worker over at once.
                        sched.share_local_work();
                        if sched.local_work_stranded() {
                            blocking = Some(BlockGuard::begin(&self.node));
                            continue;
                        }
                    }
                    // A reply often comes within microseconds: look again a few times,
                    // yielding the CPU (the peer may need it), before paying for the
                    // hand-off of this worker's queue to a spare thread.
                    let now = Instant::now();
                    let spin_end = *spin_until.get_or_insert(now + RECEIVE_SPIN_TIME);
                    if spins < RECEIVE_SPINS && now < spin_end && deadline.is_none_or(|d| now < d) {
                        spins += 1;
                        // The reply may be in a socket: read it here rather than wait
                        // for the I/O thread to run (on a shared CPU, one more switch).
                        if self.node.poll_io() {
                            // What came for others went to this worker's next slot.
                            self.node.scheduler().share_local_work();
                        } else {
                            std::thread::yield_now();
                        }
                        continue;
                    }
                    if spins > 0 {
                        self.node.stop_polling_io();
                    }
                    blocking = Some(BlockGuard::begin(&self.node));
                    continue;
                }
                let mut st = self.cell.mailbox.lock();
                if st.queue.is_empty() {
                    self.cell.mailbox.wait(&mut st, deadline);
                }
                continue;
            };
            match self.handle_signal(signal) {
                Ok(Some(msg)) => match take(msg) {
                    Ok(v) => return Some(v),
                    Err(msg) => self.saved.push_back(msg),
                },
                Ok(None) => {}
                Err(reason) => {
                    drop(blocking);
                    self.die(reason)
                }
            }
        }
    }

    /// Takes every message now waiting (saved and queued), oldest first.
    pub fn flush(&mut self) -> Vec<Term> {
        self.ensure_alive();
        self.drain_into_saved();
        self.saved.drain(..).collect()
    }

    /// Acts on the signals queued now, without waiting, moving messages to `saved`.
    /// Not on those that come meanwhile: senders that keep the mailbox full would keep
    /// it going (and `saved` growing) for as long as they send.
    fn drain_into_saved(&mut self) {
        let mut left = self.message_queue_len() - self.saved.len();
        while left > 0 {
            let Some(signal) = self.pop_signal(false) else {
                return;
            };
            left -= 1;
            match self.handle_signal(signal) {
                Ok(Some(msg)) => self.saved.push_back(msg),
                Ok(None) => {}
                Err(reason) => self.die(reason),
            }
        }
    }

    /// The next message for a handler, without waiting: saved ones first.
    /// `Ok(None)`: nothing left, and the process is no longer marked scheduled (the
    /// caller must end the slice and not touch the process again). `Err(reason)` means
    /// the process must exit.
    #[inline]
    pub(crate) fn next_message(&mut self) -> Result<Option<Term>, Term> {
        if let Some(m) = self.saved.pop_front() {
            return Ok(Some(m));
        }
        // The common case, plain messages, without the general path's moves of a
        // whole `Signal` through `pop_signal` and `handle_signal`.
        loop {
            if self.inbox_encoded {
                return self.next_message_general();
            }
            match self.inbox.pop_front() {
                Some(Signal::Message(m)) => {
                    if self.drop_abandoned_reply(&m) {
                        continue;
                    }
                    return Ok(Some(m));
                }
                Some(signal) => {
                    if let Some(m) = self.handle_signal(signal)? {
                        return Ok(Some(m));
                    }
                }
                None => {
                    if !self.take_mailbox(true) {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// [`Ctx::next_message`] from the mailbox, or after a control signal.
    fn next_message_general(&mut self) -> Result<Option<Term>, Term> {
        loop {
            let Some(signal) = self.pop_signal(true) else {
                return Ok(None);
            };
            if let Some(m) = self.handle_signal(signal)? {
                return Ok(Some(m));
            }
        }
    }

    /// The next signal: from the private batch, or else the whole shared queue becomes
    /// the next batch. With `end_slice`, finding both empty also clears `scheduled` in
    /// the same critical section (see the mailbox lock notes in `process`).
    fn pop_signal(&mut self, end_slice: bool) -> Option<Signal> {
        if self.inbox_encoded {
            return self.pop_decoding(end_slice);
        }
        if let Some(s) = self.inbox.pop_front() {
            return Some(s);
        }
        if !self.take_mailbox(end_slice) {
            return None;
        }
        if self.inbox_encoded {
            return self.pop_decoding(end_slice);
        }
        self.inbox.pop_front()
    }

    /// With the private batch empty: the whole shared queue becomes the next batch
    /// (true), or, the queue being empty too, false (and with `end_slice` the process
    /// is no longer marked scheduled, in the same critical section).
    fn take_mailbox(&mut self, end_slice: bool) -> bool {
        debug_assert!(self.inbox.is_empty());
        let mut st = self.cell.mailbox.lock();
        if st.queue.is_empty() {
            if end_slice && self.saved.is_empty() {
                st.scheduled = false;
            }
            return false;
        }
        std::mem::swap(&mut st.queue, &mut self.inbox);
        self.inbox_extra = std::mem::take(&mut st.batched_extra);
        drop(st);
        self.inbox_encoded = self.inbox_extra > 0;
        true
    }

    /// `pop_signal` while the inbox holds runs of messages from another node
    /// (`Signal::Encoded`): a run's messages are decoded here, on the receiver's
    /// thread, one at a time as the process comes to them. One that does not decode
    /// is reported to its source (which closes its connection) when the process comes
    /// to it: after it has taken every message before it; the rest of its run is
    /// dropped, as the connection they came on is.
    #[cold]
    #[inline(never)]
    fn pop_decoding(&mut self, end_slice: bool) -> Option<Signal> {
        loop {
            if let Some(run) = &mut self.run {
                match run.take_next() {
                    Some(Ok(m)) => return Some(Signal::Message(m)),
                    Some(Err(why)) => run.malformed(why),
                    None => {}
                }
                self.run = None;
            }
            let Some(signal) = self.inbox.pop_front() else {
                self.inbox_encoded = false;
                return self.pop_signal(end_slice);
            };
            let Signal::Encoded(run) = signal else {
                return Some(signal);
            };
            self.inbox_extra -= run.len().saturating_sub(1);
            self.run = Some(run);
        }
    }

    /// Whether `m` is the late reply to a call given up on (`{tag, _}`, or an I/O
    /// request's `{:io_reply, tag, _}`, with an abandoned tag): then the tag is
    /// forgotten and the reply is to be dropped.
    #[inline]
    fn drop_abandoned_reply(&mut self, m: &Term) -> bool {
        if self.abandoned.is_empty() {
            return false;
        }
        let tag = match m.as_tuple() {
            Some([Term::Ref(tag), _]) => tag,
            Some([Term::Atom(a), Term::Ref(tag), _]) if a.as_str() == "io_reply" => tag,
            _ => return false,
        };
        match self.abandoned.iter().position(|t| t == tag) {
            Some(i) => {
                self.abandoned.remove(i);
                true
            }
            None => false,
        }
    }

    /// Acts on one signal: `Ok(Some(msg))` for a message to deliver, `Ok(None)` when it
    /// was a control signal, `Err(reason)` when the process must exit.
    fn handle_signal(&mut self, signal: Signal) -> Result<Option<Term>, Term> {
        match signal {
            // A run that came without its count (the I/O loop hands over none such):
            // taken apart by `pop_decoding` all the same.
            Signal::Encoded(run) => {
                self.inbox_extra += run.len().saturating_sub(1);
                self.inbox.push_front(Signal::Encoded(run));
                self.inbox_encoded = true;
                Ok(None)
            }
            Signal::Message(m) => {
                if self.drop_abandoned_reply(&m) {
                    return Ok(None);
                }
                Ok(Some(m))
            }
            Signal::Exit {
                from,
                reason,
                linked,
            } => {
                let link_existed = linked && self.links.remove(&from);
                match exit_action(
                    self.pid(),
                    self.trap_exit,
                    from,
                    &reason,
                    linked,
                    link_existed,
                ) {
                    ExitAction::Ignore => Ok(None),
                    ExitAction::Message(m) => Ok(Some(m)),
                    ExitAction::Die(r) => Err(r),
                }
            }
            Signal::Link { from } => {
                self.links.insert(from);
                Ok(None)
            }
            Signal::Unlink { from } => {
                self.links.remove(&from);
                Ok(None)
            }
            // A monitor by name is turned into a monitor of the pid by the node it is
            // sent to; one that reaches a process all the same is a monitor of it.
            Signal::Monitor { from, reference }
            | Signal::MonitorName {
                from, reference, ..
            } => {
                self.watchers.insert(reference, from);
                Ok(None)
            }
            Signal::Demonitor { reference, .. } | Signal::DemonitorName { reference, .. } => {
                self.watchers.remove(&reference);
                Ok(None)
            }
            Signal::Down {
                from,
                reference,
                reason,
            } => {
                if self.monitors.remove(&reference).is_some() {
                    Ok(Some(match self.named.remove(&reference) {
                        Some((name, node)) => down_message_named(reference, name, node, reason),
                        None => down_message(reference, from, reason),
                    }))
                } else {
                    Ok(None)
                }
            }
            Signal::Info { from, reference } => {
                let info = self.info();
                self.node.deliver(
                    from,
                    Signal::Message(Term::tuple(vec![Term::Ref(reference), info])),
                );
                Ok(None)
            }
        }
    }

    /// What `Process.info` shows of this process: links, monitors both ways, trap_exit,
    /// and messages received but not yet taken.
    fn info(&self) -> Term {
        let pids = |v: Vec<Pid>| {
            let mut v = v;
            v.sort();
            Term::list(v.into_iter().map(Term::Pid).collect::<Vec<_>>())
        };
        Term::map(vec![
            (
                Term::atom("links"),
                pids(self.links.iter().copied().collect()),
            ),
            (Term::atom("monitors"), self.monitors_info()),
            (
                Term::atom("monitored_by"),
                pids(self.watchers.values().copied().collect()),
            ),
            (Term::atom("trap_exit"), Term::from(self.trap_exit)),
            (Term::atom("saved_messages"), Term::from(self.taken_len())),
        ])
    }

    /// Remembers the tag of a call that timed out so that a late reply is dropped.
    pub fn abandon_tag(&mut self, tag: Ref) {
        if self.abandoned.len() >= MAX_ABANDONED_TAGS {
            self.abandoned.pop_front();
        }
        self.abandoned.push_back(tag);
    }

    fn ensure_alive(&self) {
        if let Some(reason) = &self.exited {
            panic!("process {} has exited with reason {reason}", self.pid());
        }
    }

    /// Exits: unwinds a scheduler-run process; an attached thread's process is finished
    /// here (links and monitors told) and the thread panics.
    fn die(&mut self, reason: Term) -> ! {
        if self.cell.is_job {
            std::panic::resume_unwind(Box::new(ProcessExit(reason)));
        }
        self.finish(reason.clone());
        panic!("process {} exited with reason {reason}", self.pid());
    }
}

/// A blocking section of a worker thread; ends when dropped (also when unwinding).
struct BlockGuard {
    node: Option<Node>,
}

impl BlockGuard {
    fn begin(node: &Node) -> BlockGuard {
        BlockGuard {
            node: node.scheduler().block_begin().then(|| node.clone()),
        }
    }
}

impl Drop for BlockGuard {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            node.scheduler().block_end();
        }
    }
}
