//! The shared half of a process: its pid, its inbound signal queue, and the table of
//! live processes.
//!
//! A process is an `Arc<ProcessCell>`. Other threads only ever push signals into its
//! [`Mailbox`]; the process's own bookkeeping (links, monitors, trap_exit, the messages a
//! selective receive skipped) lives in its [`Ctx`](super::Ctx), which only the thread
//! running the process touches.
//!
//! ## The mailbox lock
//! One mutex guards the queue and three flags, which is what makes the scheduling and
//! exit races simple to argue about:
//! - `scheduled`: the process is in a run queue or running. Whoever flips it from false
//!   to true (a sender, under the lock) enqueues the process, so it sits in at most one
//!   run queue. The worker that ran it clears it only when it finds the queue empty,
//!   under the same lock, so a signal pushed at any moment either sees `scheduled` (the
//!   worker will look again) or schedules the process itself. No wake-up is lost.
//! - `waiting`: a thread is blocked in a receive on the condvar; a push notifies it.
//! - `closed`: the process has exited. A push fails and hands the signal back, so the
//!   sender can answer it (a link or monitor on a dead process gets `noproc`).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};

use super::signal::Signal;
use crate::term::{Atom, Pid};

/// A hasher for keys that are numbers handed out in sequence (pid, ref and timer
/// numbers; atom indices).
///
/// The low bits of the hash, which pick the bucket, are the number's own: keys made
/// one after another land in neighbouring buckets, so a table that grows and shrinks
/// with them (the process table, a spawner's monitors) is walked through memory in
/// order instead of at random (a cache miss per insert and per removal). The top 7
/// bits, which SwissTable compares before the key, are mixed from all of it
/// (splitmix64), so neighbours in a group do not match each other. Keys made to share
/// their low bits would share a bucket chain: this is not a defence against chosen
/// keys (neither was the finaliser used before).
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        let x = self.0;
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (x & (u64::MAX >> 7)) | (z & !(u64::MAX >> 7))
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8)) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = self.0.rotate_left(32) ^ u64::from(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.0 ^= n as u64;
    }
}

/// `HashMap`/`HashSet` hasher for pids, refs and ids.
pub type IdBuild = BuildHasherDefault<IdHasher>;

pub(crate) struct MailboxState {
    pub(crate) queue: VecDeque<Signal>,
    /// Messages in the queue beyond one per entry: a `Signal::Encoded` of n messages
    /// adds n - 1 (so the queue's length in messages is `queue.len()` plus this). Such
    /// a run holds two messages or more, so this is not zero exactly when the queue
    /// holds runs for the receiver to decode when it takes the queue.
    pub(crate) batched_extra: usize,
    pub(crate) scheduled: bool,
    pub(crate) waiting: bool,
    pub(crate) closed: bool,
    /// The locally registered name, if any (released when the process exits).
    pub(crate) name: Option<Atom>,
}

impl MailboxState {
    /// Messages and other signals in the queue, each message of a run counted.
    pub(crate) fn len(&self) -> usize {
        self.queue.len() + self.batched_extra
    }
}

/// What a successful push asks the sender to do next.
pub(crate) enum Pushed {
    /// Nothing: the process is already scheduled or is a thread.
    Nothing,
    /// The process was idle: enqueue it on the scheduler.
    Schedule,
}

/// The inbound queue of a process.
pub(crate) struct Mailbox {
    state: Mutex<MailboxState>,
    wakeup: Condvar,
}

impl Mailbox {
    fn new(is_job: bool) -> Mailbox {
        Mailbox {
            state: Mutex::new(MailboxState {
                queue: VecDeque::new(),
                batched_extra: 0,
                // A new job counts as scheduled until its spawner first enqueues it, so
                // a signal that reaches it before then can't enqueue it a second time.
                scheduled: is_job,
                waiting: false,
                closed: false,
                name: None,
            }),
            wakeup: Condvar::new(),
        }
    }

    pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, MailboxState> {
        self.state.lock()
    }

    /// Blocks on the condvar until notified or `deadline`; returns false on timeout.
    pub(crate) fn wait(
        &self,
        guard: &mut parking_lot::MutexGuard<'_, MailboxState>,
        deadline: Option<Instant>,
    ) -> bool {
        guard.waiting = true;
        let timed_out = match deadline {
            Some(d) => self.wakeup.wait_until(guard, d).timed_out(),
            None => {
                self.wakeup.wait(guard);
                false
            }
        };
        guard.waiting = false;
        !timed_out
    }
}

/// The shared part of one process.
pub(crate) struct ProcessCell {
    pub(crate) pid: Pid,
    /// True for scheduler-run processes, false for attached OS threads.
    pub(crate) is_job: bool,
    /// A [`Reactor`](super::Reactor): it never waits, so it may run inline (see
    /// `Scheduler::run_reactor_inline`).
    pub(crate) never_blocks: bool,
    /// Messages a scheduler-run process had taken from its mailbox but not yet handled
    /// when its last slice ended (saturating; kept by the worker that runs it, read by
    /// senders that wait for it to catch up: see `Ctx::let_receiver_run`).
    backlog: AtomicU32,
    pub(crate) mailbox: Mailbox,
    /// The job's behaviour and context while it is not running (taken by the worker
    /// that runs it; `None` for attached threads and after exit).
    pub(crate) job: Mutex<Option<super::job::Job>>,
    /// Where the process's I/O goes (`group_leader()`): set at spawn from the
    /// spawner's, changed by `group_leader(leader, pid)` from any thread (see
    /// [`io`](crate::io)). `None`: this node's standard output.
    pub(crate) group_leader: Mutex<Option<Pid>>,
}

impl ProcessCell {
    pub(crate) fn new(pid: Pid, is_job: bool) -> Arc<ProcessCell> {
        ProcessCell::with_kind(pid, is_job, false)
    }

    /// A scheduler-run process; `never_blocks` for a reactor.
    pub(crate) fn new_job(pid: Pid, never_blocks: bool) -> Arc<ProcessCell> {
        ProcessCell::with_kind(pid, true, never_blocks)
    }

    fn with_kind(pid: Pid, is_job: bool, never_blocks: bool) -> Arc<ProcessCell> {
        Arc::new(ProcessCell {
            pid,
            is_job,
            never_blocks,
            backlog: AtomicU32::new(0),
            mailbox: Mailbox::new(is_job),
            job: Mutex::new(None),
            group_leader: Mutex::new(None),
        })
    }

    /// Pushes a signal; hands it back if the process has exited.
    pub(crate) fn push(&self, signal: Signal) -> Result<Pushed, Signal> {
        let mut st = self.mailbox.lock();
        if st.closed {
            return Err(signal);
        }
        let wake = !signal.is_lazy();
        // Runs of encoded messages come only through `push_batch` (which counts them).
        debug_assert!(!matches!(signal, Signal::Encoded(_)));
        st.queue.push_back(signal);
        Ok(self.pushed(&mut st, wake))
    }

    /// Pushes every signal of `signals` (drained, in order) under one lock, with at
    /// most one wake-up; `Err` (nothing taken) if the process has exited.
    pub(crate) fn push_batch(&self, signals: &mut Vec<Signal>) -> Result<Pushed, ()> {
        let mut st = self.mailbox.lock();
        if st.closed {
            return Err(());
        }
        let wake = signals.iter().any(|s| !s.is_lazy());
        st.batched_extra += signals.iter().map(Signal::extra_messages).sum::<usize>();
        st.queue.extend(signals.drain(..));
        Ok(self.pushed(&mut st, wake))
    }

    /// After a push (the lock held): unless only lazy signals came (`wake` false),
    /// wakes a thread waiting in a receive, and claims the scheduling of an idle job.
    fn pushed(&self, st: &mut MailboxState, wake: bool) -> Pushed {
        if !wake {
            return Pushed::Nothing;
        }
        if st.waiting {
            self.mailbox.wakeup.notify_one();
        }
        if self.is_job && !st.scheduled {
            st.scheduled = true;
            return Pushed::Schedule;
        }
        Pushed::Nothing
    }

    /// Marks the process exited; returns the signals it never handled and its
    /// registered name.
    pub(crate) fn close(&self) -> (VecDeque<Signal>, Option<Atom>) {
        let mut st = self.mailbox.lock();
        st.closed = true;
        st.batched_extra = 0;
        (std::mem::take(&mut st.queue), st.name.take())
    }

    /// Notes, at the end of a slice, how many messages the process has taken from its
    /// mailbox and not yet handled.
    pub(crate) fn set_backlog(&self, taken: usize) {
        let taken = u32::try_from(taken).unwrap_or(u32::MAX);
        if self.backlog.load(Ordering::Relaxed) != taken {
            self.backlog.store(taken, Ordering::Relaxed);
        }
    }

    /// Messages waiting for the process, as a sender can see them: those in its mailbox
    /// and those it had taken but not handled when its last slice ended.
    pub(crate) fn backlog_len(&self) -> usize {
        self.queue_len() + self.backlog.load(Ordering::Relaxed) as usize
    }

    /// Number of messages and other signals waiting (for introspection).
    pub(crate) fn queue_len(&self) -> usize {
        self.mailbox.lock().len()
    }
}

const SHARDS: usize = 64;

/// One shard of the process table: shard-local key (see `ProcessTable::shard`) to cell.
type Shard = RwLock<HashMap<u64, Arc<ProcessCell>, IdBuild>>;

/// The live processes of one node, by pid number.
pub(crate) struct ProcessTable {
    shards: Vec<Shard>,
    /// Signalled when a process leaves the table while someone waits (shutdown).
    emptied: (Mutex<()>, Condvar),
    waiters: AtomicUsize,
}

impl ProcessTable {
    pub(crate) fn new() -> ProcessTable {
        ProcessTable {
            shards: (0..SHARDS)
                .map(|_| RwLock::new(HashMap::default()))
                .collect(),
            emptied: (Mutex::new(()), Condvar::new()),
            waiters: AtomicUsize::new(0),
        }
    }

    /// The shard of process `id`, and its key there: consecutive ids go to consecutive
    /// shards, and within a shard the keys are consecutive too (see `IdHasher`).
    fn shard(&self, id: u64) -> (&Shard, u64) {
        (&self.shards[(id as usize) % SHARDS], id / SHARDS as u64)
    }

    pub(crate) fn insert(&self, cell: Arc<ProcessCell>) {
        let (shard, key) = self.shard(cell.pid.id());
        shard.write().insert(key, cell);
    }

    pub(crate) fn get(&self, id: u64) -> Option<Arc<ProcessCell>> {
        let (shard, key) = self.shard(id);
        shard.read().get(&key).cloned()
    }

    /// Runs `f` on process `id` (or `None`) under the shard's read lock.
    pub(crate) fn with<T>(&self, id: u64, f: impl FnOnce(Option<&Arc<ProcessCell>>) -> T) -> T {
        let (shard, key) = self.shard(id);
        f(shard.read().get(&key))
    }

    pub(crate) fn remove(&self, id: u64) {
        let (shard, key) = self.shard(id);
        shard.write().remove(&key);
        // SeqCst pairs with the increment in `wait_until`: either the waiter's check
        // sees this removal, or this load sees the waiter and notifies it.
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.emptied.0.lock();
            self.emptied.1.notify_all();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    /// Every live process (a snapshot).
    pub(crate) fn all(&self) -> Vec<Arc<ProcessCell>> {
        self.shards
            .iter()
            .flat_map(|s| s.read().values().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Waits until `done(self)` holds or `deadline` passes; returns whether it held.
    pub(crate) fn wait_until(
        &self,
        deadline: Instant,
        done: impl Fn(&ProcessTable) -> bool,
    ) -> bool {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let held = self.wait_inner(deadline, done);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        held
    }

    fn wait_inner(&self, deadline: Instant, done: impl Fn(&ProcessTable) -> bool) -> bool {
        let mut guard = self.emptied.0.lock();
        loop {
            if done(self) {
                return true;
            }
            if self.emptied.1.wait_until(&mut guard, deadline).timed_out() {
                return done(self);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn consecutive_ids_hash_to_consecutive_buckets_with_mixed_tags() {
        let build = IdBuild::default();
        let node = Atom::new("hash@test");
        let h = |id: u64| build.hash_one(Pid::from_parts(node, 1, id));
        let mask = (1u64 << 16) - 1;
        // The bucket bits follow the number...
        for id in 1000..1100u64 {
            assert_eq!((h(id + 1) & mask).wrapping_sub(h(id) & mask), 1);
        }
        // ...the top 7 bits (SwissTable's tag) do not.
        let tags: std::collections::HashSet<u64> = (0..1000u64).map(|id| h(id) >> 57).collect();
        assert!(tags.len() > 100, "only {} distinct tags", tags.len());
        // Equal pids hash equally; a ref with the same parts is a different type but
        // hashes the same way.
        assert_eq!(h(7), build.hash_one(Pid::from_parts(node, 1, 7)));
        assert_eq!(
            h(7),
            build.hash_one(crate::term::Ref::from_parts(node, 1, 7))
        );
    }

    #[test]
    fn the_process_table_finds_what_it_holds_across_shards() {
        let table = ProcessTable::new();
        let node = Atom::new("table@test");
        for id in 0..1000u64 {
            table.insert(ProcessCell::new(Pid::from_parts(node, 1, id), true));
        }
        assert_eq!(table.len(), 1000);
        for id in (0..1000u64).step_by(3) {
            table.remove(id);
        }
        for id in 0..1000u64 {
            assert_eq!(table.get(id).is_some(), id % 3 != 0, "id {id}");
            assert_eq!(table.get(id).map(|c| c.pid.id()).unwrap_or(id), id);
        }
    }
}
