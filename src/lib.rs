//! # oxbeam: Erlang/BEAM-style processes for synchronous Rust
//!
//! A Rust program links `oxbeam` and gets what a BEAM node has: cheap isolated
//! processes with mailboxes, links, monitors and exit signals, a local registry,
//! GenServer and Supervisor, ETS-like tables and timers, with no async runtime: processes
//! are jobs on a work-stealing scheduler, and any OS thread can be a process too.
//!
//! ```
//! use oxbeam::rt::{Ctx, Flow, Node};
//! use oxbeam::term::Term;
//!
//! let node = Node::local();
//! let mut me = node.attach(); // this thread is now a process
//! let echo = node.spawn(|ctx: &mut Ctx, msg: Term| {
//!     if let Some([Term::Pid(from), x]) = msg.as_tuple() {
//!         ctx.send(*from, x.clone());
//!     }
//!     Flow::Continue
//! });
//! me.send(echo, (me.pid(), "hello"));
//! assert_eq!(me.receive().as_str(), Some("hello"));
//! drop(me);
//! node.shutdown();
//! ```
//!
//! ## Layers (each sees only the ones below)
//! - [`term`](mod@term): the Erlang data model ([`Term`], atoms, pids, refs) and its wire codec.
//! - [`rt`]: one node without sockets: [`rt::Node`], processes ([`rt::Ctx`],
//!   [`Behaviour`](rt::Behaviour)), the scheduler, links/monitors/exits, registry,
//!   timers, [`gen_server`](rt::gen_server), [`supervisor`](rt::supervisor),
//!   [`table`](rt::table).
//! - [`node`]: named nodes ([`Net`](node::Net)): the EPMD-protocol port mapper, the
//!   cookie handshake, mio connections, remote signals and spawn by registered name.
//! - [`dist`]: cluster services: [`rpc`](dist::rpc), [`global`](dist::global) names and
//!   locks, [`pg`](dist::pg) process groups.
//! - Applications: [`console`] (the interactive node prompt), [`demo`]; kv and chat to
//!   come.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod console;
pub mod demo;
pub mod dist;
pub mod node;
pub mod rt;
pub mod term;

pub use rt::{Ctx, Node};
pub use term::{Atom, Pid, Ref, Term};
