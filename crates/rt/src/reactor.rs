//! Reactors: processes that cannot block.
//!
//! A [`Reactor`] handles each message and returns; its handler sees a [`Reactive`]
//! context, which can send, spawn, link, monitor and exit, but has no receive and no
//! call: nothing in it waits. That is what lets the runtime run a reactor's slice on
//! the thread of the process that made it runnable, inside that process's own frame,
//! as the BEAM runs the next process on the scheduler where the current one sends or
//! waits: a sender in a loop and its reactor consumer then share one thread and one
//! CPU cache (`Scheduler::run_reactor_inline`).
//!
//! Only a process that cannot wait may run that way: one that waited there could be
//! waiting for the process beneath it on the stack, which could not run (the freeze
//! `tests/rt_liveness.rs` guards against). The type keeps the waiting operations out of
//! reach; a reactor that blocks anyway, through its node (attaching a thread to it and
//! receiving, or `Node::block_in_place`), is ended with a panic that says so
//! (`{:panic, "a Reactor may not block: ..."}`), never left to freeze its sender.
//! The caveat every process has applies here too: do not hold a lock across a send
//! that a reactor takes.

use std::cell::Cell;

use super::errors::{LinkError, RegisterError, SendError};
use super::{Behaviour, Ctx, Dest, Flow, Node, SpawnOpts};
use crate::term::{Atom, Pid, Ref, Term};

/// A process that handles messages and never waits (see the module docs).
pub trait Reactor: Send + 'static {
    /// Runs first, in the new process.
    fn init(&mut self, _ctx: &mut Reactive<'_>) -> Flow {
        Flow::Continue
    }
    /// Handles one message.
    fn handle(&mut self, ctx: &mut Reactive<'_>, msg: Term) -> Flow;
    /// Runs as the process exits (not after `kill`).
    fn terminate(&mut self, _ctx: &mut Reactive<'_>, _reason: &Term) {}
}

/// A closure with state is a reactor: it handles each message.
impl<F> Reactor for F
where
    F: FnMut(&mut Reactive<'_>, Term) -> Flow + Send + 'static,
{
    fn handle(&mut self, ctx: &mut Reactive<'_>, msg: Term) -> Flow {
        self(ctx, msg)
    }
}

/// What a reactor sees of itself: a process context without the operations that wait.
pub struct Reactive<'a> {
    ctx: &'a mut Ctx,
}

impl Reactive<'_> {
    /// This process's pid (`self()`).
    pub fn pid(&self) -> Pid {
        self.ctx.pid()
    }
    /// The node this process runs on (a reactor that blocks through it is ended: see
    /// the module docs).
    pub fn node(&self) -> &Node {
        self.ctx.node()
    }
    /// The process that spawned this one, if it was spawned by a process.
    pub fn parent(&self) -> Option<Pid> {
        self.ctx.parent()
    }
    /// A fresh reference.
    pub fn make_ref(&self) -> Ref {
        self.ctx.make_ref()
    }
    /// [`Ctx::send`].
    pub fn send(&self, to: Pid, msg: impl Into<Term>) {
        self.ctx.send(to, msg);
    }
    /// [`Ctx::send_to`].
    pub fn send_to(&self, to: impl Into<Dest>, msg: impl Into<Term>) -> Result<(), SendError> {
        self.ctx.send_to(to, msg)
    }
    /// [`Ctx::spawn`].
    pub fn spawn(&mut self, body: impl Behaviour) -> Pid {
        self.ctx.spawn(body)
    }
    /// [`Ctx::spawn_opts`].
    pub fn spawn_opts(&mut self, body: impl Behaviour, opts: SpawnOpts) -> (Pid, Option<Ref>) {
        self.ctx.spawn_opts(body, opts)
    }
    /// Spawns another reactor.
    pub fn spawn_reactor(&mut self, body: impl Reactor) -> Pid {
        self.ctx.spawn_reactor(body)
    }
    /// [`Ctx::trap_exit`].
    pub fn trap_exit(&mut self, on: bool) -> bool {
        self.ctx.trap_exit(on)
    }
    /// [`Ctx::link`].
    pub fn link(&mut self, pid: Pid) -> Result<(), LinkError> {
        self.ctx.link(pid)
    }
    /// [`Ctx::unlink`].
    pub fn unlink(&mut self, pid: Pid) {
        self.ctx.unlink(pid);
    }
    /// [`Ctx::monitor`].
    pub fn monitor(&mut self, pid: Pid) -> Ref {
        self.ctx.monitor(pid)
    }
    /// [`Ctx::monitor_name`].
    pub fn monitor_name(&mut self, name: impl Into<Atom>, node: impl Into<Atom>) -> Ref {
        self.ctx.monitor_name(name, node)
    }
    /// [`Ctx::demonitor`].
    pub fn demonitor(&mut self, reference: Ref) -> bool {
        self.ctx.demonitor(reference)
    }
    /// [`Ctx::exit_pid`].
    pub fn exit_pid(&mut self, pid: Pid, reason: impl Into<Term>) {
        self.ctx.exit_pid(pid, reason);
    }
    /// [`Ctx::exit`].
    pub fn exit(&mut self, reason: impl Into<Term>) -> ! {
        self.ctx.exit(reason)
    }
    /// [`Ctx::register`].
    pub fn register(&self, name: Atom) -> Result<(), RegisterError> {
        self.ctx.register(name)
    }
}

/// A [`Reactor`] as a process body: what `spawn_reactor` spawns. Processes spawned
/// from it are marked as never blocking, which lets the scheduler run them inline.
pub struct Reacts<R>(pub R);

impl<R: Reactor> Behaviour for Reacts<R> {
    fn init(&mut self, ctx: &mut Ctx) -> Flow {
        self.0.init(&mut Reactive { ctx })
    }
    fn handle(&mut self, ctx: &mut Ctx, msg: Term) -> Flow {
        self.0.handle(&mut Reactive { ctx }, msg)
    }
    fn terminate(&mut self, ctx: &mut Ctx, reason: &Term) {
        self.0.terminate(&mut Reactive { ctx }, reason);
    }
    fn never_blocks(&self) -> bool {
        true
    }
}

thread_local! {
    /// Whether this thread is running a reactor's slice now.
    static IN_REACTOR: Cell<bool> = const { Cell::new(false) };
}

/// This thread runs a reactor's slice while this lives (restoring the mark it had
/// when dropped: a reactor may run inline inside another process's slice). A guard,
/// not a closure around the slice, which kept `Job::slice` from being inlined.
pub(crate) struct ReactorSlice(bool);

impl ReactorSlice {
    pub(crate) fn enter() -> ReactorSlice {
        ReactorSlice(IN_REACTOR.with(|r| r.replace(true)))
    }
}

impl Drop for ReactorSlice {
    fn drop(&mut self) {
        IN_REACTOR.with(|r| r.set(self.0));
    }
}

/// Whether this thread is running a reactor's slice now (which may not wait).
pub(crate) fn in_reactor() -> bool {
    IN_REACTOR.with(Cell::get)
}

/// Called where a thread is about to wait: a reactor may not (see the module docs).
pub(crate) fn forbid_blocking(what: &str) {
    if IN_REACTOR.with(Cell::get) {
        panic!(
            "a Reactor may not block: {what} (it can run on its sender's stack, which \
             would freeze both); use a process with a Ctx for code that waits"
        );
    }
}
