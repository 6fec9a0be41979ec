//! `rt`: one node's processes, with no sockets.
//!
//! - [`Node`]: owns the scheduler, the process table, the registry, timers and tables.
//! - Processes are jobs: a [`Behaviour`] (or a closure `FnMut(&mut Ctx, Term) -> Flow`)
//!   that the work-stealing [`scheduler`] runs for a bounded slice whenever messages
//!   arrive; [`Node::spawn_task`] runs straight-line code once. Any OS thread can be a
//!   process too ([`Node::attach`]).
//! - [`Ctx`]: a process's view of itself: send, spawn, link, monitor, exit, trap_exit,
//!   and (blocking, selective) receive.
//! - [`signal`]: links, monitors and exits follow Erlang's rules exactly.
//! - [`io`]: OTP's I/O protocol: a process's output goes to its group leader (an I/O
//!   server), inherited on spawn, so what a process prints shows where its spawner's does.
//! - [`gen_server`] and [`supervisor`]: OTP's behaviours on top; [`table`]: ETS-like
//!   named tables; [`timer`]: `send_after`.
//! - [`Server`], [`ServerRef`] and [`Supervisor::builder`]: the same behaviours typed
//!   (requests, replies and casts as Rust types, converted to terms by serde), with
//!   [`Timeout`] for how long to wait.
//!
//! `rt` sees only `term`: the node layer above it is not in scope (`tests/workspace_layers.rs` checks the whole graph):
//! ```compile_fail
//! use oxbeam_node::Net;
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use oxbeam_term as term;

mod attached;
mod ctx;
pub mod errors;
mod few;
pub mod flush;
pub mod functions;
pub mod gen_server;
mod group_leader;
pub mod io;
mod job;
mod node;
mod notice;
mod process;
pub mod reactor;
pub mod scheduler;
pub mod server;
pub mod signal;
pub mod supervisor;
pub mod table;
mod timeout;
pub mod timer;

pub use attached::Attached;
pub use ctx::Ctx;
pub use errors::{GroupLeaderError, LinkError, RegisterError, SendError, UndefinedFunction};
#[doc(hidden)] // plumbing for the node layer, not for programs
pub use job::unwind_reason;
pub use node::{Config, Node, Prepared, ProcessSummary};
pub use notice::{Notice, Watched};
#[doc(hidden)] // plumbing for the node layer, not for programs
pub use process::IdBuild;
pub use reactor::{Reactive, Reactor, Reacts};
#[doc(hidden)] // plumbing for the node layer, not for programs
pub use signal::MessageSource;
#[doc(hidden)] // plumbing for the node layer, not for programs
pub use signal::{EncodedMessages, Signal};
pub use timer::TimerRef;

// The typed API: what a Rust program needs to write and run servers.
pub use gen_server::{CallError, ReplyTo, StartOpts};
pub use server::{Reply, Server, ServerRef, StartError};
pub use supervisor::{
    ChildError, ChildSpec, Restart, Shutdown, Strategy, Supervisor, SupervisorBuilder,
};
pub use timeout::Timeout;

use std::sync::Arc;

use crate::term::{Atom, Pid, Term};

/// What a handler tells the runtime after each message.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum Flow {
    /// Keep running.
    Continue,
    /// Exit with this reason (`normal` for a clean stop).
    Stop(Term),
}

impl Flow {
    /// `Stop(normal)`.
    pub fn stop_normal() -> Flow {
        Flow::Stop(Term::Atom(Atom::NORMAL))
    }
}

/// A process's code, run by the scheduler: `init` on the first slice, `handle` once per
/// message, `terminate` when it exits for any reason but `killed`.
pub trait Behaviour: Send + 'static {
    /// Runs first, in the new process.
    fn init(&mut self, _ctx: &mut Ctx) -> Flow {
        Flow::Continue
    }
    /// Handles one message.
    fn handle(&mut self, ctx: &mut Ctx, msg: Term) -> Flow;
    /// Runs as the process exits (not after `kill`).
    fn terminate(&mut self, _ctx: &mut Ctx, _reason: &Term) {}
    /// Whether this process can never wait: true only for a [`Reactor`] (through
    /// [`Reacts`]), which the scheduler may then run on the thread of the process that
    /// made it runnable. A body that says true and blocks anyway is ended with a panic.
    #[doc(hidden)]
    fn never_blocks(&self) -> bool {
        false
    }
}

/// A closure with state is a behaviour: it handles each message.
impl<F> Behaviour for F
where
    F: FnMut(&mut Ctx, Term) -> Flow + Send + 'static,
{
    fn handle(&mut self, ctx: &mut Ctx, msg: Term) -> Flow {
        self(ctx, msg)
    }
}

/// A process that runs a closure once and exits `normal` when it returns.
pub struct Task<F>(Option<F>);

impl<F: FnOnce(&mut Ctx) + Send + 'static> Task<F> {
    /// Wraps `f`.
    pub fn new(f: F) -> Task<F> {
        Task(Some(f))
    }
}

impl<F: FnOnce(&mut Ctx) + Send + 'static> Behaviour for Task<F> {
    fn init(&mut self, ctx: &mut Ctx) -> Flow {
        if let Some(f) = self.0.take() {
            f(ctx);
        }
        Flow::stop_normal()
    }
    fn handle(&mut self, _ctx: &mut Ctx, _msg: Term) -> Flow {
        Flow::stop_normal()
    }
}

/// Options for spawning.
#[derive(Clone, Debug, Default)]
pub struct SpawnOpts {
    /// Link the new process to the spawner.
    pub link: bool,
    /// Monitor the new process from the spawner.
    pub monitor: bool,
    /// Start with trap_exit set.
    pub trap_exit: bool,
    /// Register the new process under this name (if free).
    pub register: Option<Atom>,
}

/// Where a message goes: a pid, a locally registered name, a name on a node, or a
/// cluster-wide name. Cheap to clone (a global name is a [`Term`], whose compound
/// values are shared).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dest {
    /// A process.
    Pid(Pid),
    /// A name registered on this node.
    Name(Atom),
    /// `{name, node}`: a name registered on that node.
    NameAt(Atom, Atom),
    /// `{:global, name}`: a name registered cluster-wide; as in OTP, any term
    /// (`{:user, "alice"}`). `rt` does not keep these names: the layer that does
    /// (`dist::global`) installs a [`GlobalNames`] on the node; without one, every
    /// global name is unregistered.
    Global(Term),
}

impl Dest {
    /// `{:global, name}`: `Dest::global("counter")` (an atom), or any term
    /// (`Dest::global(term!({:user, "alice"}))`).
    pub fn global(name: impl Into<GlobalName>) -> Dest {
        Dest::Global(name.into().0)
    }

    /// The pid, for a destination that is one (`None` for a name: resolving one is
    /// [`Node::resolve`]'s).
    pub fn pid(&self) -> Option<Pid> {
        match *self {
            Dest::Pid(p) => Some(p),
            Dest::Name(_) | Dest::NameAt(..) | Dest::Global(_) => None,
        }
    }
}

/// The seam to a cluster-wide name registry (`dist::global` installs one with
/// [`Node::set_global_names`]): how [`Dest::Global`] resolves.
pub trait GlobalNames: Send + Sync {
    /// The pid registered as `name` in the cluster, if any (a local read).
    fn whereis(&self, name: &Term) -> Option<Pid>;
}

/// A global name: any term, as OTP's (`:counter`, `{:room, "lobby"}`). Built from an
/// atom, a `&str` (taken as an atom, as `ServerRef::named` does), or a [`Term`]; so
/// `Dest::global("counter")` and `global::whereis_name(node, term!({:user, "bo"}))`
/// read as they would in Elixir.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GlobalName(pub Term);

impl From<Atom> for GlobalName {
    fn from(a: Atom) -> GlobalName {
        GlobalName(Term::Atom(a))
    }
}

impl From<&str> for GlobalName {
    fn from(a: &str) -> GlobalName {
        GlobalName(Term::Atom(Atom::new(a)))
    }
}

impl From<Term> for GlobalName {
    fn from(t: Term) -> GlobalName {
        GlobalName(t)
    }
}

impl From<&Term> for GlobalName {
    fn from(t: &Term) -> GlobalName {
        GlobalName(t.clone())
    }
}

impl From<GlobalName> for Term {
    fn from(n: GlobalName) -> Term {
        n.0
    }
}

impl From<Pid> for Dest {
    fn from(p: Pid) -> Dest {
        Dest::Pid(p)
    }
}

impl From<Atom> for Dest {
    fn from(a: Atom) -> Dest {
        Dest::Name(a)
    }
}

impl From<&Dest> for Dest {
    fn from(d: &Dest) -> Dest {
        d.clone()
    }
}

impl From<&str> for Dest {
    fn from(a: &str) -> Dest {
        Dest::Name(Atom::new(a))
    }
}

/// The seam to the distribution layer: carries signals to other nodes.
pub trait Router: Send + Sync {
    /// Delivers `signal` to `to`, a pid on another node. When that node is unreachable,
    /// the router answers like [`Node::answer_dead`] with `noconnection`. With
    /// `connect` false (Erlang's `[noconnect]`), a node not connected (or connecting)
    /// now is unreachable: no connection is started for this signal.
    fn route(&self, to: Pid, signal: Signal, connect: bool);
    /// Sends `msg` to the process registered as `name` on `node` (`connect` as for
    /// [`Router::route`]; a message that cannot go is dropped).
    fn send_named(&self, node: Atom, name: Atom, msg: Term, connect: bool);
    /// [`Router::route`] (connecting if need be), handing back the connection it used
    /// when that connection can take more: a process that sends to that node again
    /// keeps it (`Ctx::send`) and skips the lookups.
    fn route_keep(&self, to: Pid, signal: Signal) -> Option<Arc<dyn PeerLink>> {
        self.route(to, signal, true);
        None
    }
    /// Does on this thread, if no other thread is at it, what the distribution layer's
    /// I/O thread would do next (read what the sockets hold, hand it to its processes),
    /// without waiting: a worker waiting for a reply or for work calls it between its
    /// looks, so a message that has arrived reaches it without a hand-over between
    /// threads. True if there was something to do.
    fn poll_io(&self) -> bool {
        false
    }
    /// This thread, which has been calling [`Router::poll_io`], stops (it is about to
    /// block or park): the distribution layer's own thread must not count on it.
    fn stop_polling_io(&self) {}
}

/// A connection to one node, kept by a process that sends there (see
/// [`Router::route_keep`]).
pub trait PeerLink: Send + Sync {
    /// The node it leads to.
    fn peer(&self) -> Atom;
    /// Sends `signal` to `to` (a pid of that node) as [`Router::route`] would, or
    /// gives it back, unsent, when the connection is down: the caller then routes it
    /// the ordinary way (a new connection, or `noconnection`).
    fn try_send(&self, to: Pid, signal: Signal) -> Result<(), Signal>;
}
