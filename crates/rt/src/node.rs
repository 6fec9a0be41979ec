//! `Node`: one runtime node, owning its processes, scheduler, registry, timers and tables.
//!
//! All node state hangs off this value (no process-wide statics), so several nodes live
//! side by side in one OS process, each with its own threads. `Node` is a cheap handle
//! (an `Arc`); [`Node::shutdown`] stops every process (their `terminate` callbacks run)
//! and joins every thread the node started.
//!
//! Signals to pids of another node go through the [`Router`] that the distribution
//! layer installs; without one they are answered as if that node were unreachable
//! (`noconnection` for links and monitors, dropped messages).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

mod deliver;
mod names;

use super::attached::Attached;
use super::ctx::Ctx;
use super::errors::{SendError, UndefinedFunction};
use super::functions::Functions;
use super::job::Job;
use super::process::{ProcessCell, ProcessTable};
use super::scheduler::{Scheduler, SliceRunner};
use super::signal::Signal;
use super::table::Tables;
use super::timer::{TimerRef, Timers};
use super::{Behaviour, Dest, Router, SpawnOpts};
use crate::term::pid::{DisplayContext, set_display_context};
use crate::term::{Atom, Pid, Ref, Term};

/// How a node is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// The node's name (`name@host`); a node that is not distributed is `nonode@nohost`.
    pub name: String,
    /// The node's creation; `None` picks one from the clock (differs per start).
    pub creation: Option<u32>,
    /// Worker threads running processes at once (default: one per core).
    pub workers: usize,
    /// Most OS threads the scheduler starts, counting spares for blocked processes.
    pub max_threads: usize,
    /// Messages a process handles per slice before others get a turn.
    pub reductions: usize,
    /// How long [`Node::shutdown`] waits for processes to end after `shutdown` before
    /// killing them.
    pub shutdown_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            name: "nonode@nohost".to_owned(),
            creation: None,
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            max_threads: 1024,
            reductions: 100,
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

pub(crate) struct NodeInner {
    name: Atom,
    creation: u32,
    config: Config,
    processes: ProcessTable,
    scheduler: OnceLock<Scheduler>,
    registry: Mutex<HashMap<Atom, Pid>>,
    timers: OnceLock<Timers>,
    tables: Tables,
    next_pid: AtomicU64,
    next_ref: AtomicU64,
    router: RwLock<Option<Arc<dyn Router>>>,
    handoff: Mutex<HashMap<Ref, Box<dyn Any + Send>>>,
    functions: Functions,
    extensions: RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    stopped: AtomicBool,
    /// The group leader of processes started from outside any process (see
    /// [`Node::set_default_group_leader`]).
    pub(crate) default_group_leader: RwLock<Option<Pid>>,
}

/// What [`Node::process_summaries`] tells of one process.
#[derive(Clone, Debug)]
pub struct ProcessSummary {
    /// The process.
    pub pid: Pid,
    /// Its locally registered name.
    pub name: Option<Atom>,
    /// `waiting` (in a receive), `runnable` (queued or running on a worker), `running`
    /// (an attached thread doing something else), or `exiting`.
    pub status: &'static str,
    /// Signals queued and not yet taken by the process.
    pub queue_len: usize,
    /// Whether it is an attached OS thread.
    pub thread: bool,
}

/// A runtime node (a cheap, clonable handle).
#[derive(Clone)]
pub struct Node(Arc<NodeInner>);

struct Runner {
    node: Weak<NodeInner>,
    budget: usize,
}

impl SliceRunner for Runner {
    fn run_slice(&self, cell: Arc<ProcessCell>) -> bool {
        super::job::run_slice(&cell, self.budget)
    }

    fn poll_io(&self) -> bool {
        self.node.upgrade().is_some_and(|n| Node(n).poll_io())
    }

    fn stop_polling_io(&self) {
        if let Some(n) = self.node.upgrade() {
            Node(n).stop_polling_io();
        }
    }

    fn on_thread_start(&self) {
        if let Some(n) = self.node.upgrade() {
            Node(n).set_thread_display();
        }
    }
}

fn clock_creation() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mixed = (nanos ^ (u64::from(std::process::id()) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((mixed >> 32) as u32).max(1)
}

impl Node {
    /// Starts a node.
    pub fn start(config: Config) -> Node {
        let name = Atom::new(&config.name);
        let creation = config.creation.unwrap_or_else(clock_creation);
        let inner = Arc::new(NodeInner {
            name,
            creation,
            config: config.clone(),
            processes: ProcessTable::new(),
            scheduler: OnceLock::new(),
            registry: Mutex::new(HashMap::new()),
            timers: OnceLock::new(),
            tables: Tables::new(),
            next_pid: AtomicU64::new(80),
            next_ref: AtomicU64::new(1),
            router: RwLock::new(None),
            handoff: Mutex::new(HashMap::new()),
            functions: Functions::default(),
            extensions: RwLock::new(HashMap::new()),
            stopped: AtomicBool::new(false),
            default_group_leader: RwLock::new(None),
        });
        let short = config.name.split('@').next().unwrap_or("node").to_owned();
        let runner = Arc::new(Runner {
            node: Arc::downgrade(&inner),
            budget: config.reductions.max(1),
        });
        let scheduler = Scheduler::start(&short, config.workers, config.max_threads, runner);
        let _ = inner.scheduler.set(scheduler);
        let _ = inner
            .timers
            .set(Timers::start(&short, Arc::downgrade(&inner)));
        super::functions::register_builtins(&inner.functions);
        Node(inner)
    }

    /// Starts a node with the default configuration, named `nonode@nohost`.
    pub fn local() -> Node {
        Node::start(Config::default())
    }

    /// The node's name.
    pub fn name(&self) -> Atom {
        self.0.name
    }

    /// The node's creation (changes each time a node of this name starts).
    pub fn creation(&self) -> u32 {
        self.0.creation
    }

    /// The configuration the node was started with.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub(crate) fn scheduler(&self) -> &Scheduler {
        self.0.scheduler.get().expect("scheduler is set at start")
    }

    pub(crate) fn timers(&self) -> &Timers {
        self.0.timers.get().expect("timers are set at start")
    }

    /// The node's tables (ETS-like).
    pub fn tables(&self) -> &Tables {
        &self.0.tables
    }

    /// Whether two handles are the same node.
    pub fn same_node(&self, other: &Node) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Makes this thread print this node's pids as `#PID<0.x.y>`.
    pub fn set_thread_display(&self) {
        set_display_context(Some(self.display_context()));
    }

    fn display_context(&self) -> DisplayContext {
        DisplayContext {
            local: (self.0.name, self.0.creation),
            remote_index: None,
        }
    }

    /// A fresh reference.
    pub fn make_ref(&self) -> Ref {
        Ref::from_parts(
            self.0.name,
            self.0.creation,
            self.0.next_ref.fetch_add(1, Ordering::Relaxed),
        )
    }

    /// Whether `pid` belongs to this node incarnation.
    pub fn is_local(&self, pid: Pid) -> bool {
        pid.node() == self.0.name && pid.creation() == self.0.creation
    }

    /// Whether the local process `pid` is alive (false for pids of other nodes).
    pub fn is_alive(&self, pid: Pid) -> bool {
        self.is_local(pid)
            && self
                .0
                .processes
                .get(pid.id())
                .is_some_and(|c| !c.mailbox.lock().closed)
    }

    /// Pids of every live local process.
    pub fn processes(&self) -> Vec<Pid> {
        self.0.processes.all().iter().map(|c| c.pid).collect()
    }

    /// Number of live local processes.
    pub fn process_count(&self) -> usize {
        self.0.processes.len()
    }

    /// Signals waiting in a local process's queue (`None` if it is not alive).
    pub fn message_queue_len(&self, pid: Pid) -> Option<usize> {
        self.is_local(pid)
            .then(|| self.0.processes.get(pid.id()))
            .flatten()
            .map(|c| c.queue_len())
    }

    /// OS threads the scheduler has started (workers and spares for blocked processes).
    pub fn scheduler_threads(&self) -> usize {
        self.scheduler().thread_count()
    }

    fn new_pid(&self) -> Pid {
        Pid::from_parts(
            self.0.name,
            self.0.creation,
            self.0.next_pid.fetch_add(1, Ordering::Relaxed),
        )
    }

    /// The pid that node-level operations (not from any process) act as.
    pub fn system_pid(&self) -> Pid {
        Pid::from_parts(self.0.name, self.0.creation, 0)
    }

    /// Spawns a process running `body`.
    pub fn spawn(&self, body: impl Behaviour) -> Pid {
        self.spawn_from(Box::new(body), SpawnOpts::default(), None)
            .0
    }

    /// Spawns a [`Reactor`](super::Reactor): a process that cannot wait, which the
    /// scheduler may run on the thread of the process that sends to it.
    pub fn spawn_reactor(&self, body: impl super::Reactor) -> Pid {
        self.spawn(super::Reacts(body))
    }

    /// Spawns a process that runs `f` once and exits `normal` when it returns: straight-
    /// line code with blocking receives (it holds a thread while it blocks; the scheduler
    /// starts a spare so others keep running).
    pub fn spawn_task(&self, f: impl FnOnce(&mut Ctx) + Send + 'static) -> Pid {
        self.spawn(super::Task::new(f))
    }

    /// Spawns with options (links and monitors need a parent process: see
    /// [`Ctx::spawn_opts`]; here they are ignored).
    pub fn spawn_opts(&self, body: impl Behaviour, opts: SpawnOpts) -> Pid {
        self.spawn_from(
            Box::new(body),
            SpawnOpts {
                link: false,
                monitor: false,
                ..opts
            },
            None,
        )
        .0
    }

    pub(crate) fn spawn_from(
        &self,
        body: Box<dyn Behaviour>,
        opts: SpawnOpts,
        parent: Option<&mut Ctx>,
    ) -> (Pid, Option<Ref>) {
        let pid = self.new_pid();
        let mut link = None;
        let mut watcher = None;
        if let Some(parent) = &parent {
            // A new process can't have exited yet, so both ends are set up directly.
            link = opts.link.then(|| parent.pid());
            watcher = opts.monitor.then(|| (parent.pid(), self.make_ref()));
        }
        // The new process's I/O goes where its spawner's does (OTP: the group leader
        // is inherited); from outside any process, to the node's default.
        let group_leader = match &parent {
            Some(p) => p.group_leader(),
            None => self.default_group_leader(),
        };
        let cell = self.create_job(
            pid,
            body,
            parent.as_ref().map(|p| p.pid()),
            opts.trap_exit,
            link,
            watcher,
        );
        *cell.group_leader.lock() = group_leader;
        if let Some(parent) = parent {
            if link.is_some() {
                parent.links.insert(pid);
            }
            if let Some((_, r)) = watcher {
                parent.monitors.insert(r, pid);
            }
        }
        if let Some(name) = opts.register
            && let Err(e) = self.register(name, pid)
        {
            log::debug!("spawn: cannot register {name}: {e}");
        }
        self.scheduler().schedule(cell);
        (pid, watcher.map(|(_, r)| r))
    }

    /// A scheduler-run process in the table, not yet in a run queue (its `scheduled`
    /// flag starts set, so only the caller's `schedule` enqueues it), linked to `link`
    /// and monitored by `watcher` (pid, ref) on its side.
    fn create_job(
        &self,
        pid: Pid,
        body: Box<dyn Behaviour>,
        parent: Option<Pid>,
        trap_exit: bool,
        link: Option<Pid>,
        watcher: Option<(Pid, Ref)>,
    ) -> Arc<ProcessCell> {
        let cell = ProcessCell::new_job(pid, body.never_blocks());
        let mut ctx = Ctx::new(self.clone(), cell.clone(), parent);
        ctx.trap_exit = trap_exit;
        if let Some(l) = link {
            ctx.links.insert(l);
        }
        if let Some((w, r)) = watcher {
            ctx.watchers.insert(r, w);
        }
        *cell.job.lock() = Some(Job {
            ctx,
            body,
            started: false,
        });
        self.0.processes.insert(cell.clone());
        cell
    }

    /// Makes the calling OS thread a process of this node, with a pid and a mailbox.
    /// The process exits (`normal`) when the returned handle is dropped. While it lives
    /// the thread prints pids as this node sees them; dropped on the same thread, it
    /// gives the thread back the way of printing it had.
    pub fn attach(&self) -> Attached {
        let pid = self.new_pid();
        let cell = ProcessCell::new(pid, false);
        *cell.group_leader.lock() = self.default_group_leader();
        self.0.processes.insert(cell.clone());
        let previous = set_display_context(Some(self.display_context()));
        Attached::new(Ctx::new(self.clone(), cell, None), previous)
    }

    /// Sends `msg` to `to` from outside any process.
    pub fn send(&self, to: Pid, msg: impl Into<Term>) {
        self.deliver(to, Signal::Message(msg.into()));
    }

    /// Sends to a pid or a name; an unregistered name is an error (`badarg`).
    pub fn send_to(&self, to: impl Into<Dest>, msg: impl Into<Term>) -> Result<(), SendError> {
        self.send_to_with(to.into(), msg.into(), true)
    }

    /// [`Node::send_to`] without starting a connection (Erlang's `[noconnect]`): a
    /// message for a node not connected now is dropped. Services that talk to their
    /// peers on other nodes send this way, so a message sent in reaction to something
    /// that arrived just before a `disconnect` does not undo it.
    pub fn send_noconnect(
        &self,
        to: impl Into<Dest>,
        msg: impl Into<Term>,
    ) -> Result<(), SendError> {
        self.send_to_with(to.into(), msg.into(), false)
    }

    fn send_to_with(&self, to: Dest, msg: Term, connect: bool) -> Result<(), SendError> {
        match to {
            Dest::Pid(pid) => {
                self.deliver_with(pid, Signal::Message(msg), connect);
                Ok(())
            }
            Dest::Name(name) => match self.whereis(name) {
                Some(pid) => {
                    self.send(pid, msg);
                    Ok(())
                }
                None => Err(SendError::NotRegistered(name)),
            },
            Dest::NameAt(name, node) if node == self.0.name => {
                self.send_to_with(Dest::Name(name), msg, connect)
            }
            Dest::Global(name) => match self.whereis_global(&name) {
                Some(pid) => {
                    self.deliver_with(pid, Signal::Message(msg), connect);
                    Ok(())
                }
                None => Err(SendError::NotRegisteredGlobally(name)),
            },
            Dest::NameAt(name, node) => {
                match self.router() {
                    Some(r) => r.send_named(node, name, msg, connect),
                    None => log::debug!("no route to {node}: message to {name} dropped"),
                }
                Ok(())
            }
        }
    }

    /// Sends an exit signal to `pid` from the node itself (as `exit(pid, reason)`).
    pub fn exit(&self, pid: Pid, reason: impl Into<Term>) {
        self.deliver(
            pid,
            Signal::Exit {
                from: self.system_pid(),
                reason: reason.into(),
                linked: false,
            },
        );
    }

    /// Sends `msg` to `dest` after `delay` (`erlang:send_after`).
    pub fn send_after(
        &self,
        dest: impl Into<Dest>,
        msg: impl Into<Term>,
        delay: Duration,
    ) -> TimerRef {
        self.timers().add(dest.into(), msg.into(), delay)
    }

    /// Cancels a timer; returns the time that was left, or `None` if it had already
    /// fired or been cancelled.
    pub fn cancel_timer(&self, timer: TimerRef) -> Option<Duration> {
        self.timers().cancel(timer)
    }

    /// Leaves a Rust value that is not a term (a closure, a channel) for another process
    /// of this node to take with the returned key: how local-only values such as child
    /// specs travel alongside a message. Whoever created the key removes the value if the
    /// receiver never took it, so nothing accumulates.
    pub fn handoff_put(&self, value: Box<dyn Any + Send>) -> Ref {
        let key = self.make_ref();
        self.0.handoff.lock().insert(key, value);
        key
    }

    /// Takes a value left with [`Node::handoff_put`].
    pub fn handoff_take(&self, key: Ref) -> Option<Box<dyn Any + Send>> {
        self.0.handoff.lock().remove(&key)
    }

    /// The functions this node lets others (and itself) spawn by name.
    pub fn functions(&self) -> &Functions {
        &self.0.functions
    }

    /// Spawns a process running the registered `module:function/args` (its result is
    /// dropped; the process ends `normal`). An unregistered function is an error
    /// (`{:undef, {module, function, arity}}`), and no process starts.
    pub fn spawn_mfa(
        &self,
        module: Atom,
        function: Atom,
        args: Vec<Term>,
    ) -> Result<Pid, UndefinedFunction> {
        let prepared = self.prepare_mfa(module, function, args, None, None)?;
        let pid = prepared.pid();
        prepared.start();
        Ok(pid)
    }

    /// Prepares a process for `module:function/args`, linked to and/or monitored by
    /// processes elsewhere (the distribution layer's remote spawn): it exists (its pid is
    /// known, signals to it queue up) but runs only after [`Prepared::start`], so the
    /// spawner can answer before the process can exit.
    pub fn prepare_mfa(
        &self,
        module: Atom,
        function: Atom,
        args: Vec<Term>,
        link: Option<Pid>,
        monitor: Option<(Pid, Ref)>,
    ) -> Result<Prepared, UndefinedFunction> {
        let arity = args.len();
        let f = self
            .functions()
            .lookup(module, function, arity)
            .ok_or(UndefinedFunction {
                module,
                function,
                arity,
            })?;
        let body = super::Task::new(move |ctx: &mut Ctx| {
            let _ = f(ctx, args);
        });
        let pid = self.new_pid();
        let cell = self.create_job(pid, Box::new(body), link, false, link, monitor);
        *cell.group_leader.lock() = self.default_group_leader();
        Ok(Prepared {
            node: self.clone(),
            cell,
        })
    }

    /// Runs `f`, which may block this thread for a while (waiting on a socket, a lock,
    /// another node): on a worker thread, its queued processes are handed to another
    /// thread first, so the node keeps running them.
    pub fn block_in_place<T>(&self, f: impl FnOnce() -> T) -> T {
        super::reactor::forbid_blocking("Node::block_in_place");
        self.wait_on_io(f)
    }

    /// [`Node::block_in_place`] for a wait that no process takes part in (the layers
    /// above use it while their own output drains, a busy connection's): allowed in a
    /// reactor, since it cannot be waiting for the process beneath it.
    pub fn wait_on_io<T>(&self, f: impl FnOnce() -> T) -> T {
        super::flush::flush_all();
        let began = self.scheduler().block_begin();
        struct End<'a>(&'a Node, bool);
        impl Drop for End<'_> {
            fn drop(&mut self) {
                if self.1 {
                    self.0.scheduler().block_end();
                }
            }
        }
        let _end = End(self, began);
        f()
    }

    /// Installs the router for signals to other nodes (the distribution layer).
    pub fn set_router(&self, router: Option<Arc<dyn Router>>) {
        *self.0.router.write() = router;
    }

    fn router(&self) -> Option<Arc<dyn Router>> {
        self.0.router.read().clone()
    }

    /// [`Router::poll_io`] on this thread: what it sends goes out at once, as from an
    /// I/O thread, even inside a process's slice (held-back output is written first).
    pub(crate) fn poll_io(&self) -> bool {
        let Some(router) = self.router() else {
            return false;
        };
        let in_slice = super::flush::in_slice();
        if in_slice {
            super::flush::slice_end();
        }
        let done = router.poll_io();
        if in_slice {
            super::flush::slice_begin();
        }
        done
    }

    /// [`Router::stop_polling_io`]: this thread has called [`Node::poll_io`] and is
    /// about to block or park.
    pub(crate) fn stop_polling_io(&self) {
        if let Some(router) = self.router() {
            router.stop_polling_io();
        }
    }

    /// A snapshot of every live process (the console's `processes`), by pid.
    pub fn process_summaries(&self) -> Vec<ProcessSummary> {
        let mut v: Vec<ProcessSummary> = self
            .0
            .processes
            .all()
            .iter()
            .map(|cell| {
                let st = cell.mailbox.lock();
                let status = match (cell.is_job, st.closed, st.scheduled, st.waiting) {
                    (_, true, _, _) => "exiting",
                    (true, _, true, _) => "runnable",
                    (true, _, false, _) => "waiting",
                    (false, _, _, true) => "waiting",
                    (false, _, _, false) => "running",
                };
                ProcessSummary {
                    pid: cell.pid,
                    name: st.name,
                    status,
                    queue_len: st.len(),
                    thread: !cell.is_job,
                }
            })
            .collect();
        v.sort_by_key(|p| p.pid);
        v
    }

    /// Answers a signal that reached a process that is gone (`dead`), with `reason`.
    pub fn answer_dead(&self, dead: Pid, signal: Signal, reason: Atom) {
        match signal {
            Signal::Link { from } => self.deliver(
                from,
                Signal::Exit {
                    from: dead,
                    reason: Term::Atom(reason),
                    linked: true,
                },
            ),
            Signal::Monitor { from, reference }
            | Signal::MonitorName {
                from, reference, ..
            } => self.deliver(
                from,
                Signal::Down {
                    from: dead,
                    reference,
                    reason: Term::Atom(reason),
                },
            ),
            Signal::Info { from, reference } => self.deliver(
                from,
                Signal::Message(Term::tuple(vec![Term::Ref(reference), Term::nil()])),
            ),
            // Dropped like any message to a process that is gone; but one that does
            // not decode still closes the connection it came on, as it would have had
            // the process been there to take it.
            Signal::Encoded(run) => run.check_rest(),
            _ => {}
        }
    }

    /// Bookkeeping after a process's `finish`.
    pub(crate) fn process_exited(&self, pid: Pid, name: Option<Atom>) {
        if let Some(name) = name {
            let mut reg = self.0.registry.lock();
            if reg.get(&name) == Some(&pid) {
                reg.remove(&name);
            }
        }
        self.0.tables.delete_owned_by(pid);
        self.0.processes.remove(pid.id());
    }

    /// Whether [`Node::shutdown`] has been called.
    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    /// Stops the node: every process gets exit signal `shutdown` (so `terminate` runs),
    /// those still alive after `shutdown_timeout` are killed, then every thread the node
    /// started is joined. Attached threads' processes get the signal too; their threads
    /// are the caller's to join. Idempotent.
    pub fn shutdown(&self) {
        if self.0.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let jobs_gone = |t: &ProcessTable| t.all().iter().all(|c| !c.is_job);
        for reason in [Atom::SHUTDOWN, Atom::KILL] {
            for cell in self.0.processes.all() {
                self.exit(cell.pid, Term::Atom(reason));
            }
            let deadline = Instant::now() + self.0.config.shutdown_timeout;
            if self.0.processes.wait_until(deadline, jobs_gone) {
                break;
            }
        }
        if !jobs_gone(&self.0.processes) {
            log::error!("node {}: processes still running at shutdown", self.0.name);
        }
        self.timers().stop();
        self.scheduler().shutdown();
        self.set_router(None);
        self.0.extensions.write().clear();
    }
}

/// A process created but not yet running (see [`Node::prepare_mfa`]).
pub struct Prepared {
    node: Node,
    cell: Arc<ProcessCell>,
}

impl Prepared {
    /// Its pid.
    pub fn pid(&self) -> Pid {
        self.cell.pid
    }

    /// Sets its group leader (where its I/O goes; see [`io`](crate::io)): a remote
    /// spawn gives it the spawner's. It starts with the node's default.
    pub fn set_group_leader(&self, leader: Option<Pid>) {
        *self.cell.group_leader.lock() = leader;
    }

    /// Lets it run (dropping it does the same: a prepared process never stays stuck).
    pub fn start(self) {}
}

impl Drop for Prepared {
    fn drop(&mut self) {
        self.node.scheduler().schedule(self.cell.clone());
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({})", self.0.name.as_str())
    }
}

impl Node {
    pub(crate) fn from_inner(inner: Arc<NodeInner>) -> Node {
        Node(inner)
    }

    pub(crate) fn inner(&self) -> &NodeInner {
        &self.0
    }
}

/// The node extension holding the installed [`GlobalNames`](super::GlobalNames).
struct GlobalNamesSeam(Arc<dyn super::GlobalNames>);
