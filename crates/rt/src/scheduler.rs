//! The work-stealing scheduler that runs processes as jobs.
//!
//! Each worker thread owns a FIFO run queue (crossbeam-deque) plus a one-process "next"
//! slot; a global injector takes work from threads that are not workers. A process sits
//! in at most one queue (see the `scheduled` flag in `process`).
//!
//! ## Finding work (in this order, in `WorkerLocal::find_work`)
//! 1. the next slot: the process this worker woke last (a ping-pong pair stays on one
//!    thread and in cache); after `MAX_NEXT_STREAK` runs in a row it goes behind the
//!    local queue so that queue is not starved;
//! 2. every `INJECTOR_INTERVAL` picks, the injector first, so it is not starved either;
//! 3. the local queue; 4. the injector (a batch moves to the local queue);
//! 5. stealing from other workers, starting at a varying victim.
//!
//! ## Permits, parking and blocking
//! At most `target` threads (one per core by default) run processes at once: `active`
//! counts threads that hold a run permit. A thread with no work spins briefly (and, when
//! work came from outside the workers in the last millisecond, keeps looking for 200 us,
//! yielding the CPU between looks, or turning the node's I/O loop where the node has one
//! and no other thread is at it: what it reads lands in its own next slot), then gives
//! its permit back and parks in the idle
//! list. Pushing work wakes one idle thread if a permit is free and no worker is still
//! looking (`spinning`: the looker finds the work, and passes a wake-up on if it sees
//! more). The two sides order themselves with SeqCst fences: the parker registers as
//! idle *then* looks for work; the pusher publishes work *then* looks for spinners and
//! idle threads; one of them sees the other, so no wake-up is lost.
//!
//! A process may block its thread (a GenServer call, a receive). Before blocking, the
//! thread hands its queued work to the injector, gives its permit back and makes sure a
//! spare thread exists (waking an idle one or starting a new one, up to `max_threads`),
//! so nested calls never deadlock the runtime even with one worker. When the blocking
//! ends the thread takes a permit back unconditionally (briefly exceeding `target`) and
//! parks at its next pick if it is over the limit.
//!
//! ## Only reactors run on another's stack
//! A process's code runs on its worker's stack until its slice ends or it blocks. A
//! process that could wait never runs inside another's frame: it could wait there for
//! the process beneath it, which could not run (a freeze; `tests/rt_liveness.rs` holds
//! the cases that froze when an earlier version ran any next-slot process inline).
//! A [`Reactor`](super::Reactor) cannot wait, so it may: a process that sends (every
//! 7th local send) or is about to wait runs the reactor it just made runnable inline,
//! one slice and one level deep (`run_reactor_inline`), as a BEAM scheduler runs the
//! next process. Otherwise a waiting process makes the work it woke stealable
//! (`share_local_work`) and, when no other thread would take that work
//! (`local_work_stranded`: it holds the only permit), hands its worker over at once
//! instead of spinning.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use crossbeam_utils::sync::{Parker, Unparker};
use parking_lot::{Mutex, RwLock};

use super::process::ProcessCell;

type Task = Arc<ProcessCell>;

const MAX_NEXT_STREAK: u32 = 32;
const INJECTOR_INTERVAL: u32 = 61;
/// Rounds of pure spinning (32 `pause`s and a look for work each, ~0.3 us here) an
/// idle worker does before it yields or parks. Few on purpose: a spinner that does not
/// yield keeps a thread with work off its CPU, and on a small machine with more busy
/// threads than CPUs that cost more than any wake-up it saved. 64 rounds (~20 us of
/// spinning) against 4, A/B in one sitting: global_register 93-112 -> 54-70 us,
/// rpc_call 30-36 -> 17-21 us, pg propagation 16-34 -> 11-13 us; local rows even;
/// 1 round is no better than 4.
const SPIN_ROUNDS: u32 = 4;
/// After the spin, an idle worker of a node that is in a conversation with the outside
/// (work came from a non-worker thread, such as a connection's I/O thread, within
/// `CONVERSATION`) keeps looking for work this long, yielding the CPU between looks,
/// before it parks: the next request (the next round of a lock protocol, the next call
/// of a remote client) then finds it awake instead of paying a thread wake-up (25 us
/// or more on a small VM). Yielding, so a thread with work on the same CPU runs first.
/// Purely local work does not do this: there the yielding thread only slowed the busy
/// one on the other CPU (local fan-out -11 %).
const YIELD_SPIN: Duration = Duration::from_micros(200);
const CONVERSATION: Duration = Duration::from_millis(1);

/// What the scheduler asks of whoever runs a process's slice.
pub(crate) trait SliceRunner: Send + Sync {
    /// Runs one slice; returns true if the process must be queued again.
    fn run_slice(&self, cell: Task) -> bool;
    /// Turns the node's I/O loop once without waiting, if no other thread is at it
    /// (see `Router::poll_io`); true if there was something to do.
    fn poll_io(&self) -> bool;
    /// This thread stops calling `poll_io` (it is about to park).
    fn stop_polling_io(&self);
    /// Called once on each worker thread when it starts (per-thread setup).
    fn on_thread_start(&self);
}

struct ThreadSlot {
    unparker: Unparker,
    in_idle: AtomicBool,
}

struct Shared {
    injector: Injector<Task>,
    stealers: RwLock<Vec<Stealer<Task>>>,
    idle: Mutex<Vec<Arc<ThreadSlot>>>,
    idle_count: AtomicUsize,
    /// Threads holding a run permit (not parked, not blocked).
    active: AtomicUsize,
    target: usize,
    threads: AtomicUsize,
    max_threads: usize,
    handles: Mutex<Vec<JoinHandle<()>>>,
    shutdown: AtomicBool,
    runner: Arc<dyn SliceRunner>,
    name: String,
    /// When work last came from a thread that is not a worker (ns since `epoch`).
    last_external: AtomicU64,
    /// Workers looking for work without sleeping (see `notify_work`).
    spinning: AtomicUsize,
    epoch: Instant,
}

/// A node's scheduler.
pub(crate) struct Scheduler {
    shared: Arc<Shared>,
}

struct WorkerLocal {
    shared: Arc<Shared>,
    queue: Worker<Task>,
    next: Cell<Option<Task>>,
    streak: Cell<u32>,
    ticks: Cell<u32>,
    blocked: Cell<bool>,
    slot: Arc<ThreadSlot>,
    parker: Parker,
}

thread_local! {
    static WORKER: RefCell<Option<Rc<WorkerLocal>>> = const { RefCell::new(None) };
    /// Whether this thread is running a reactor's slice inline, inside the frame of
    /// another process (see [`Scheduler::run_reactor_inline`]).
    static INLINE: Cell<bool> = const { Cell::new(false) };
}

fn current_worker(shared: &Arc<Shared>) -> Option<Rc<WorkerLocal>> {
    WORKER.with(|w| {
        w.borrow()
            .as_ref()
            .filter(|w| Arc::ptr_eq(&w.shared, shared))
            .cloned()
    })
}

impl Scheduler {
    pub(crate) fn start(
        name: &str,
        workers: usize,
        max_threads: usize,
        runner: Arc<dyn SliceRunner>,
    ) -> Scheduler {
        let target = workers.max(1);
        let shared = Arc::new(Shared {
            injector: Injector::new(),
            stealers: RwLock::new(Vec::new()),
            idle: Mutex::new(Vec::new()),
            idle_count: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            target,
            threads: AtomicUsize::new(0),
            max_threads: max_threads.max(target),
            handles: Mutex::new(Vec::new()),
            shutdown: AtomicBool::new(false),
            runner,
            name: name.to_owned(),
            last_external: AtomicU64::new(0),
            spinning: AtomicUsize::new(0),
            epoch: Instant::now(),
        });
        for _ in 0..target {
            shared.active.fetch_add(1, Ordering::SeqCst);
            Shared::spawn_thread(&shared);
        }
        Scheduler { shared }
    }

    /// Puts a process that has just become runnable in a run queue.
    pub(crate) fn schedule(&self, cell: Task) {
        if let Some(w) = current_worker(&self.shared)
            && !w.blocked.get()
        {
            if let Some(prev) = w.next.replace(Some(cell)) {
                w.queue.push(prev);
                self.shared.notify_work();
            }
            return;
        }
        self.shared.injector.push(cell);
        self.shared.note_external();
        self.shared.notify_work();
    }

    /// Called by a process about to block its thread; returns whether the thread was a
    /// worker of this scheduler (then [`Scheduler::block_end`] must follow).
    pub(crate) fn block_begin(&self) -> bool {
        let Some(w) = current_worker(&self.shared) else {
            return false;
        };
        if w.blocked.get() {
            return false;
        }
        w.blocked.set(true);
        if let Some(c) = w.next.take() {
            self.shared.injector.push(c);
        }
        while let Some(c) = w.queue.pop() {
            self.shared.injector.push(c);
        }
        self.shared.active.fetch_sub(1, Ordering::SeqCst);
        self.shared.ensure_spare();
        true
    }

    /// Called by a process on a worker that is about to wait for a message without
    /// giving its thread up yet (a short spin): work in this worker's private next slot
    /// (typically the process it just sent a request to) moves to its stealable queue,
    /// and an idle worker is woken to take it, so the answer can come during the spin.
    pub(crate) fn share_local_work(&self) {
        self.share_local_work_but(false);
    }

    /// [`Scheduler::share_local_work`], except that with `keep_reactor` a reactor in
    /// the next slot stays there (the caller is about to run it inline).
    pub(crate) fn share_local_work_but(&self, keep_reactor: bool) {
        let Some(w) = current_worker(&self.shared) else {
            return;
        };
        if let Some(c) = w.next.take() {
            if keep_reactor && c.never_blocks {
                w.next.set(Some(c));
            } else {
                w.queue.push(c);
            }
        }
        if !w.queue.is_empty() {
            self.shared.notify_work();
        }
    }

    /// Whether runnable processes wait that no other thread will take: work sits in
    /// this worker's next slot or queue, or in the injector, while this thread holds
    /// the only permit (no other thread runs slices or looks for work, and no permit is
    /// free for one to be woken). A process about to wait on such a worker hands it over at
    /// once (`block_begin`) instead of spinning: a spin holds the permit that work
    /// needs.
    pub(crate) fn local_work_stranded(&self) -> bool {
        let Some(w) = current_worker(&self.shared) else {
            return false;
        };
        if w.blocked.get() {
            return false;
        }
        let has_work = !w.queue.is_empty() || !self.shared.injector.is_empty() || {
            let next = w.next.take();
            let some = next.is_some();
            w.next.set(next);
            some
        };
        // Another thread holding a permit takes the work when its slice ends, and with
        // a permit free `notify_work` has woken one: only a node of one worker, this
        // thread holding its permit, strands work.
        has_work
            && self.shared.target == 1
            && self.shared.active.load(Ordering::SeqCst) == 1
            && self.shared.spinning.load(Ordering::SeqCst) == 0
    }

    /// Whether this thread is a worker of this scheduler.
    pub(crate) fn on_worker(&self) -> bool {
        current_worker(&self.shared).is_some()
    }

    /// Runs, on this thread and inside the caller's frame, one slice of the process in
    /// this worker's next slot (the one the caller made runnable last) if it is a
    /// reactor, which cannot wait (see `rt::reactor`): so a process that sends in a
    /// loop, or waits for an answer, and the reactor it feeds share one thread and one
    /// CPU cache, as on a BEAM scheduler. One level deep (a reactor run this way runs
    /// none), never on a worker that has blocked. True when it ran one.
    pub(crate) fn run_reactor_inline(&self) -> bool {
        self.run_inline_from(false)
    }

    /// [`Scheduler::run_reactor_inline`], or else, with the next slot holding no
    /// reactor, the first process waiting in the injector (work from outside the
    /// workers: a message a connection delivered) if it is a reactor; one that is not
    /// goes to this worker's queue. For a process that polls (`Ctx::yield_now`).
    pub(crate) fn run_any_reactor_inline(&self) -> bool {
        self.run_inline_from(true)
    }

    fn run_inline_from(&self, injector: bool) -> bool {
        if INLINE.with(Cell::get) {
            return false;
        }
        let Some(w) = current_worker(&self.shared) else {
            return false;
        };
        if w.blocked.get() {
            return false;
        }
        let cell = match w.next.take() {
            Some(c) if c.never_blocks => c,
            other => {
                w.next.set(other);
                let stolen = if injector {
                    loop {
                        match self.shared.injector.steal() {
                            Steal::Success(c) => break Some(c),
                            Steal::Empty => break None,
                            Steal::Retry => continue,
                        }
                    }
                } else {
                    None
                };
                match stolen {
                    Some(c) if c.never_blocks => c,
                    Some(c) => {
                        w.queue.push(c);
                        self.shared.notify_work();
                        return false;
                    }
                    None => return false,
                }
            }
        };
        INLINE.with(|i| i.set(true));
        let outer = super::flush::in_slice();
        super::flush::slice_begin();
        let again = self.shared.runner.run_slice(cell.clone());
        super::flush::slice_end();
        if outer {
            super::flush::slice_begin();
        }
        INLINE.with(|i| i.set(false));
        if again {
            w.queue.push(cell);
            self.shared.notify_work();
        }
        true
    }

    /// Ends a blocking section begun with [`Scheduler::block_begin`].
    pub(crate) fn block_end(&self) {
        if let Some(w) = current_worker(&self.shared) {
            w.blocked.set(false);
            self.shared.active.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Number of OS threads started so far (workers and spares).
    pub(crate) fn thread_count(&self) -> usize {
        self.shared.threads.load(Ordering::SeqCst)
    }

    /// Stops every thread and joins them (all processes must have exited first).
    pub(crate) fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        let me = std::thread::current().id();
        loop {
            for slot in self.shared.idle.lock().iter() {
                slot.unparker.unpark();
            }
            let handles: Vec<_> = std::mem::take(&mut *self.shared.handles.lock());
            if handles.is_empty() {
                break;
            }
            for h in handles {
                if h.thread().id() != me {
                    let _ = h.join();
                }
            }
        }
    }
}

impl Drop for Scheduler {
    /// A node dropped without `shutdown` (and with no process left to hold it) still
    /// lets its threads go: they see the flag and exit on their own (not joined here,
    /// since the last handle may be dropped on one of them).
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        for slot in self.shared.idle.lock().iter() {
            slot.unparker.unpark();
        }
    }
}

impl Shared {
    fn spawn_thread(shared: &Arc<Shared>) {
        let n = shared.threads.fetch_add(1, Ordering::SeqCst);
        let parker = Parker::new();
        let slot = Arc::new(ThreadSlot {
            unparker: parker.unparker().clone(),
            in_idle: AtomicBool::new(false),
        });
        let queue = Worker::new_fifo();
        shared.stealers.write().push(queue.stealer());
        let local = WorkerLocal {
            shared: shared.clone(),
            queue,
            next: Cell::new(None),
            streak: Cell::new(0),
            ticks: Cell::new(0),
            blocked: Cell::new(false),
            slot,
            parker,
        };
        let spawned = std::thread::Builder::new()
            .name(format!("{}-w{n}", shared.name))
            .spawn(move || worker_main(local));
        match spawned {
            Ok(h) => shared.handles.lock().push(h),
            Err(e) => {
                // Out of threads: the blocked process still runs; the queue may stall
                // until a thread frees up. Logged, never a panic.
                log::error!(
                    "scheduler {}: cannot start a worker thread: {e}",
                    shared.name
                );
                shared.threads.fetch_sub(1, Ordering::SeqCst);
                shared.active.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    fn note_external(&self) {
        let now = self.epoch.elapsed().as_nanos() as u64;
        self.last_external.store(now, Ordering::Relaxed);
    }

    /// Whether work came from outside the workers within `CONVERSATION`.
    fn in_conversation(&self) -> bool {
        let last = self.last_external.load(Ordering::Relaxed);
        let now = self.epoch.elapsed().as_nanos() as u64;
        now.saturating_sub(last) < CONVERSATION.as_nanos() as u64
    }

    fn has_work(&self) -> bool {
        !self.injector.is_empty() || self.stealers.read().iter().any(|s| !s.is_empty())
    }

    /// Wakes one idle thread if there is a free permit (after work was published) and
    /// no worker is spinning: a spinner finds the work itself (and passes the wake-up
    /// on if it finds more than it takes), as Go's scheduler does. Either the spinner
    /// is still counted here and looks again before it parks (its `park_idle` checks
    /// for work after a fence), or this load sees it gone and wakes a thread.
    fn notify_work(&self) {
        fence(Ordering::SeqCst);
        if self.idle_count.load(Ordering::SeqCst) == 0 || self.spinning.load(Ordering::SeqCst) > 0 {
            return;
        }
        let mut idle = self.idle.lock();
        if self.active.load(Ordering::SeqCst) >= self.target {
            return;
        }
        if let Some(slot) = idle.pop() {
            slot.in_idle.store(false, Ordering::SeqCst);
            self.idle_count.fetch_sub(1, Ordering::SeqCst);
            self.active.fetch_add(1, Ordering::SeqCst);
            drop(idle);
            slot.unparker.unpark();
        }
    }

    /// After a thread gave up its permit to block: make sure a thread can take it.
    fn ensure_spare(self: &Arc<Self>) {
        // Threads still running slices hold every permit: they are the spares.
        if self.active.load(Ordering::SeqCst) >= self.target {
            return;
        }
        let idle_empty = self.idle.lock().is_empty();
        if idle_empty {
            if self.threads.load(Ordering::SeqCst) < self.max_threads {
                self.active.fetch_add(1, Ordering::SeqCst);
                Shared::spawn_thread(self);
            } else {
                log::warn!(
                    "scheduler {}: {} threads, all busy or blocked",
                    self.name,
                    self.max_threads
                );
            }
        } else {
            self.notify_work();
        }
    }
}

impl WorkerLocal {
    fn find_work(&self) -> Option<Task> {
        let tick = self.ticks.get().wrapping_add(1);
        self.ticks.set(tick);
        if let Some(c) = self.next.take() {
            if self.streak.get() < MAX_NEXT_STREAK {
                self.streak.set(self.streak.get() + 1);
                return Some(c);
            }
            self.queue.push(c);
        }
        self.streak.set(0);
        if tick.is_multiple_of(INJECTOR_INTERVAL)
            && let Some(c) = self.steal_injector()
        {
            return Some(c);
        }
        if let Some(c) = self.queue.pop() {
            return Some(c);
        }
        if let Some(c) = self.steal_injector() {
            return Some(c);
        }
        let stealers = self.shared.stealers.read();
        let n = stealers.len();
        for i in 0..n {
            let s = &stealers[(i + tick as usize) % n];
            loop {
                match s.steal_batch_and_pop(&self.queue) {
                    Steal::Success(c) => return Some(c),
                    Steal::Empty => break,
                    Steal::Retry => continue,
                }
            }
        }
        None
    }

    /// Spins briefly, then (for a node in a conversation) yields for up to
    /// `YIELD_SPIN`, looking for work each time.
    fn idle_search(&self) -> Option<Task> {
        let sh = &self.shared;
        for _ in 0..SPIN_ROUNDS {
            for _ in 0..32 {
                std::hint::spin_loop();
            }
            if let Some(cell) = self.find_work() {
                return Some(cell);
            }
        }
        let idle_since = Instant::now();
        let mut polled = false;
        while sh.in_conversation()
            && idle_since.elapsed() < YIELD_SPIN
            && !sh.shutdown.load(Ordering::Relaxed)
        {
            polled = true;
            // The next request may be in a socket: read here, it lands in this
            // worker's next slot with no thread to wake.
            if sh.runner.poll_io() {
                sh.note_external();
            } else {
                std::thread::yield_now();
            }
            if let Some(cell) = self.find_work() {
                return Some(cell);
            }
        }
        if polled {
            sh.runner.stop_polling_io();
        }
        None
    }

    fn steal_injector(&self) -> Option<Task> {
        loop {
            match self.shared.injector.steal_batch_and_pop(&self.queue) {
                Steal::Success(c) => return Some(c),
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }

    /// Gives the permit back and sleeps until handed a permit again (or shutdown).
    fn park_idle(&self) {
        let sh = &self.shared;
        // The next slot is invisible to other threads: make it stealable first, so the
        // has_work check below sees it.
        if let Some(c) = self.next.take() {
            self.queue.push(c);
        }
        sh.active.fetch_sub(1, Ordering::SeqCst);
        self.register_idle();
        fence(Ordering::SeqCst);
        if sh.has_work() || sh.shutdown.load(Ordering::SeqCst) {
            let mut idle = sh.idle.lock();
            if self.slot.in_idle.load(Ordering::SeqCst) {
                idle.retain(|s| !Arc::ptr_eq(s, &self.slot));
                self.slot.in_idle.store(false, Ordering::SeqCst);
                sh.idle_count.fetch_sub(1, Ordering::SeqCst);
                sh.active.fetch_add(1, Ordering::SeqCst);
                return;
            }
            // Someone already popped us and handed us a permit; its unpark follows.
        }
        self.sleep_until_woken();
    }

    /// After a blocking section a thread may hold a permit over the limit: exactly the
    /// excess threads give theirs back (a CAS, so two threads can't both see "one too
    /// many" and both leave) and park, first handing their queued work to the injector.
    /// That work is published after the permit is given back: the last thread holding
    /// a permit may have looked for work and parked in between (every thread asleep,
    /// the work in the injector), so the hand-over wakes an idle thread as any push
    /// does (`notify_work`, which pairs with the look `park_idle` takes after it
    /// registers as idle).
    fn shed_excess_permit(&self) -> bool {
        let sh = &self.shared;
        let mut cur = sh.active.load(Ordering::SeqCst);
        loop {
            if cur <= sh.target {
                return false;
            }
            match sh
                .active
                .compare_exchange(cur, cur - 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        let mut handed = false;
        if let Some(c) = self.next.take() {
            sh.injector.push(c);
            handed = true;
        }
        while let Some(c) = self.queue.pop() {
            sh.injector.push(c);
            handed = true;
        }
        if handed {
            sh.notify_work();
        }
        self.register_idle();
        self.sleep_until_woken();
        true
    }

    fn register_idle(&self) {
        let sh = &self.shared;
        let mut idle = sh.idle.lock();
        self.slot.in_idle.store(true, Ordering::SeqCst);
        idle.push(self.slot.clone());
        sh.idle_count.fetch_add(1, Ordering::SeqCst);
    }

    fn sleep_until_woken(&self) {
        let sh = &self.shared;
        while self.slot.in_idle.load(Ordering::SeqCst) && !sh.shutdown.load(Ordering::SeqCst) {
            self.parker.park();
        }
    }
}

fn worker_main(local: WorkerLocal) {
    let local = Rc::new(local);
    WORKER.with(|w| *w.borrow_mut() = Some(local.clone()));
    let shared = local.shared.clone();
    shared.runner.on_thread_start();
    while !shared.shutdown.load(Ordering::SeqCst) {
        if shared.active.load(Ordering::SeqCst) > shared.target && local.shed_excess_permit() {
            continue;
        }
        if let Some(cell) = local.find_work() {
            run(&local, cell);
            continue;
        }
        // Looking for work without sleeping: counted in `spinning`, so that a push
        // meanwhile need not wake a parked thread (this one will find the work).
        shared.spinning.fetch_add(1, Ordering::SeqCst);
        if let Some(cell) = local.idle_search() {
            shared.spinning.fetch_sub(1, Ordering::SeqCst);
            // More may have been pushed on the strength of this spinner: pass it on.
            if shared.has_work() {
                shared.notify_work();
            }
            run(&local, cell);
            continue;
        }
        shared.spinning.fetch_sub(1, Ordering::SeqCst);
        local.park_idle();
    }
    WORKER.with(|w| *w.borrow_mut() = None);
}

fn run(local: &WorkerLocal, cell: Task) {
    super::flush::slice_begin();
    let again = local.shared.runner.run_slice(cell.clone());
    super::flush::slice_end();
    if again {
        local.queue.push(cell);
        local.shared.notify_work();
    }
}
