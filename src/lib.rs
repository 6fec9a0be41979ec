//! # oxbeam: Erlang/BEAM-style processes for synchronous Rust
//!
//! A Rust program links `oxbeam` and gets what a BEAM node has: cheap isolated
//! processes with mailboxes, links, monitors and exit signals, a local registry,
//! GenServer and Supervisor, ETS-like tables and timers, with no async runtime: processes
//! are jobs on a work-stealing scheduler, and any OS thread can be a process too.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use oxbeam::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! enum Call { Get, Add(i64) }               // on the wire: :Get, {:Add, n}
//!
//! struct Counter(i64);
//!
//! impl Server for Counter {
//!     type Call = Call;
//!     type Reply = i64;
//!     type Cast = ();
//!     fn handle_call(&mut self, _: &mut Ctx, call: Call, _: ReplyTo) -> Reply<i64> {
//!         if let Call::Add(n) = call { self.0 += n }
//!         Reply::Now(self.0)
//!     }
//! }
//!
//! let node = Node::builder().start()?;      // .name("a@localhost").cookie("…") to distribute
//! let counter = Supervisor::builder()
//!     .child(ChildSpec::server("counter", || Counter(0)))
//!     .start(&node)
//!     .map(|_| ServerRef::<Counter>::named("counter"))?;
//! let mut me = node.attach();               // this thread is now a process
//! assert_eq!(counter.call(&mut me, Call::Add(2), Timeout::default())?, 2);
//! drop(me);
//! node.shutdown();
//! # Ok(())
//! # }
//! ```
//!
//! ## The workspace: layers that see only downward
//! This package is the facade a program depends on; each layer is a crate of its own, so
//! an upward reach does not compile (`crates/*/Cargo.toml` list only the layers below):
//! - [`term`](mod@term) (`oxbeam-term`): the Erlang data model ([`Term`], atoms, pids,
//!   refs), its wire codec and the serde conversion.
//! - [`rt`] (`oxbeam-rt`): one node without sockets: [`rt::Node`], processes
//!   ([`rt::Ctx`], [`Behaviour`](rt::Behaviour)), the scheduler, links/monitors/exits,
//!   registry, timers, [`gen_server`](rt::gen_server), [`supervisor`](rt::supervisor),
//!   [`table`](rt::table).
//! - [`node`] (`oxbeam-node`): named nodes ([`Net`](node::Net)): the EPMD-protocol port
//!   mapper, the cookie handshake, mio connections, remote signals and spawn by
//!   registered name.
//! - [`dist`] (`oxbeam-dist`): cluster services: [`rpc`](dist::rpc),
//!   [`global`](dist::global) names and locks, [`pg`](dist::pg) process groups.
//! - Services (`oxbeam-services`): [`kv`] (replicated tables), next `queue` and
//!   `locks`, built on [`group`] (a replicated state machine over the [`raft`] core),
//!   above `dist` and re-exported here.
//! - Applications (`crates/cli`, package `oxbeam-cli`, the `oxbeam` command): the
//!   console, the demo, the headless node and, next, the chat. Only they depend on
//!   terminal crates; a program that links `oxbeam` compiles none of them.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[doc(inline)]
pub use oxbeam_dist as dist;
#[doc(inline)]
pub use oxbeam_node as node;
#[doc(inline)]
pub use oxbeam_rt as rt;
#[doc(inline)]
pub use oxbeam_services::{everywhere, group, kv, locks, queue, raft};
#[doc(inline)]
pub use oxbeam_term as term;

mod node_builder;
pub mod prelude;

pub use node_builder::{Node, NodeBuilder, NodeError, NodeList};
pub use oxbeam_term::term;
pub use rt::Ctx;
pub use term::{Atom, Pid, Ref, Term};

/// What a process reaches through `ctx.node()`: the whole [`Node`], with its
/// distribution and cluster services (`ctx.node().cluster().nodes()`).
pub trait NodeExt {
    /// The node, as [`Node::of`] gives it.
    fn cluster(&self) -> Node;
}

impl NodeExt for rt::Node {
    fn cluster(&self) -> Node {
        Node::of(self)
    }
}
