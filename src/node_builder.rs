//! [`Node`]: the one handle on a node, local or named, and [`NodeBuilder`], which
//! starts it.
//!
//! A local node (no name) is a runtime alone: processes, registry, timers, tables. A
//! named node adds distribution (the port mapper, the cookie handshake, connections)
//! and, unless [`NodeBuilder::without_services`] says otherwise, the cluster services
//! (global names and locks, pg's default scope, rpc's built-ins), so
//! `global::whereis_name` never answers `None` for want of a forgotten start call.

use std::ops::Deref;
use std::time::Duration;

use crate::dist::{self, ServicesError};
use crate::node::{
    ConnectError, Net, NetConfig, NetStartError, NodeMonitor, RemoteSpawnError, SpawnRequest,
};
use crate::rt::{self, Ctx};
use crate::term::{Atom, Pid, Ref, Term};

/// Which nodes [`Node::list`] gives (`Node.list/1`'s argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeList {
    /// This node.
    This,
    /// The visible nodes connected (`Node.list()`).
    Visible,
    /// The hidden nodes connected.
    Hidden,
    /// Visible and hidden.
    Connected,
}

/// A node: what a process reaches through `ctx.node()` (with [`NodeExt`](crate::NodeExt)
/// in scope) and what a program starts with [`Node::builder`]. Cheap to clone (handles
/// on shared state). It derefs to the runtime's [`rt::Node`]: `spawn`, `attach`,
/// `register`, `whereis`, `send` work on it directly.
#[derive(Clone)]
pub struct Node {
    rt: rt::Node,
    net: Option<Net>,
}

impl Node {
    /// A builder with the defaults: a local node (no name), one scheduler worker per
    /// core, cluster services on when a name is given.
    pub fn builder() -> NodeBuilder {
        NodeBuilder {
            config: NetConfig::named(""),
            services: true,
        }
    }

    /// A local node with the defaults (no distribution).
    pub fn local() -> Node {
        Node {
            rt: rt::Node::local(),
            net: None,
        }
    }

    /// The node a runtime handle belongs to (a process's `ctx.node()`), with its
    /// distribution if it has one.
    pub fn of(rt: &rt::Node) -> Node {
        Node {
            rt: rt.clone(),
            net: Net::of(rt),
        }
    }

    /// The runtime: processes, registry, timers, tables.
    pub fn rt(&self) -> &rt::Node {
        &self.rt
    }

    /// The distribution layer, for a named node.
    pub fn net(&self) -> Option<&Net> {
        self.net.as_ref()
    }

    /// This node's name (`nonode@nohost` for a local node, as in Erlang).
    pub fn name(&self) -> Atom {
        self.rt.name()
    }

    /// Whether this node is named (can connect to others).
    pub fn is_distributed(&self) -> bool {
        self.net.is_some()
    }

    /// Connects to `node` (`name@host`) and waits until the connection is up, as
    /// `Node.connect/1`; with the cluster services on, also until this node's global
    /// name server has synced with the cluster it joined (OTP's `connect` with `global`
    /// running), within the connect timeout.
    ///
    /// The sync's wait is a short-lived process of its own (the calling thread attached
    /// for it), so this may be called from any thread. Inside a process, call
    /// [`dist::connect`] with the process's own `Ctx` instead: the same steps, waited for
    /// by that process.
    pub fn connect(&self, node: &str) -> Result<(), ConnectError> {
        let Some(net) = &self.net else {
            return Err(ConnectError::NotDistributed);
        };
        net.connect(node)?;
        if dist::global::is_running(&self.rt) {
            let mut me = self.rt.attach();
            if dist::global::sync(&mut me, net.connect_timeout()).is_err() {
                return Err(ConnectError::Timeout);
            }
        }
        Ok(())
    }

    /// Closes the connection to `node`; false if there was none.
    pub fn disconnect(&self, node: impl Into<Atom>) -> bool {
        self.net.as_ref().is_some_and(|n| n.disconnect(node.into()))
    }

    /// The visible nodes this one is connected to (`Node.list()`); empty for a local node.
    pub fn nodes(&self) -> Vec<Atom> {
        self.net.as_ref().map(Net::nodes).unwrap_or_default()
    }

    /// `Node.list(which)`: [`NodeList::Visible`] is [`nodes`](Node::nodes),
    /// `Hidden` the hidden nodes, `Connected` both, `This` this node alone (as OTP:
    /// also for a local node, which is `nonode@nohost`).
    pub fn list(&self, which: NodeList) -> Vec<Atom> {
        let hidden = || self.net.as_ref().map(Net::hidden_nodes).unwrap_or_default();
        match which {
            NodeList::This => vec![self.name()],
            NodeList::Visible => self.nodes(),
            NodeList::Hidden => hidden(),
            NodeList::Connected => {
                let mut all = self.nodes();
                all.extend(hidden());
                all.sort();
                all
            }
        }
    }

    /// `Node.monitor(node, on)`: `watcher` gets `{:nodedown, node}` when the
    /// connection to `node` goes (at once if there is none); a no-op on a local node.
    pub fn monitor_node(&self, watcher: Pid, node: impl Into<Atom>, on: bool) {
        if let Some(net) = &self.net {
            net.monitor_node(watcher, node.into(), on);
        }
    }

    /// `:net_kernel.monitor_nodes(mode)`: `watcher` gets `{:nodeup, n}` and
    /// `{:nodedown, n}` for every visible node (see [`NodeMonitor`]); a no-op on a local
    /// node.
    pub fn monitor_nodes(&self, watcher: Pid, mode: NodeMonitor) {
        if let Some(net) = &self.net {
            net.monitor_nodes(watcher, mode);
        }
    }

    /// `Node.spawn(node, m, f, args)` (and `spawn_link`/`spawn_monitor` by `opts`):
    /// spawns the function registered as `module:function/arity` on `node`, which may be
    /// this one, linked to or monitored by `ctx`'s process; waits for the pid (see
    /// [`Net::spawn`]). A local node can only spawn here: another node is
    /// [`RemoteSpawnError::NoConnection`].
    pub fn spawn_on(
        &self,
        ctx: &mut Ctx,
        node: impl Into<Atom>,
        mfa: (impl Into<Atom>, impl Into<Atom>, Vec<Term>),
        opts: SpawnRequest,
    ) -> Result<(Pid, Option<Ref>), RemoteSpawnError> {
        let (node, mfa) = (node.into(), (mfa.0.into(), mfa.1.into(), mfa.2));
        match &self.net {
            Some(net) => net.spawn(ctx, node, mfa, opts),
            None if node == self.name() => {
                // Linked and monitored before it runs, as spawn_link/spawn_monitor are.
                let (m, f, args) = mfa;
                let me = ctx.pid();
                let reference = opts.monitor.then(|| ctx.make_ref());
                let prepared = ctx
                    .node()
                    .prepare_mfa(
                        m,
                        f,
                        args,
                        opts.link.then_some(me),
                        reference.map(|r| (me, r)),
                    )
                    .map_err(RemoteSpawnError::Undefined)?;
                let pid = prepared.pid();
                if opts.link {
                    ctx.adopt_link(pid);
                }
                if let Some(r) = reference {
                    ctx.adopt_monitor(r, pid);
                }
                prepared.start();
                Ok((pid, reference))
            }
            None => Err(RemoteSpawnError::NoConnection),
        }
    }

    /// The port of the port mapper this node registered with (the private one it
    /// hosts, with `port_mapper(0)`); `None` for a local node.
    pub fn port_mapper(&self) -> Option<u16> {
        self.net.as_ref().map(Net::epmd_port)
    }

    /// Stops the node: its processes (their exit signals still go out), then, for a
    /// named node, its connections (peers see nodedown), its port mapper registration,
    /// every thread.
    pub fn shutdown(&self) {
        match &self.net {
            Some(net) => net.shutdown(),
            None => self.rt.shutdown(),
        }
    }
}

impl Deref for Node {
    type Target = rt::Node;
    fn deref(&self) -> &rt::Node {
        &self.rt
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name())
            .field("distributed", &self.is_distributed())
            .finish()
    }
}

/// Starts a [`Node`]: `Node::builder().name("a@localhost").cookie("secret").start()?`.
#[derive(Clone, Debug)]
#[must_use]
pub struct NodeBuilder {
    config: NetConfig,
    services: bool,
}

impl NodeBuilder {
    /// Names the node (`name@localhost`), which makes it distributed.
    pub fn name(mut self, name: &str) -> NodeBuilder {
        self.config.name = name.to_owned();
        self
    }

    /// The cookie peers must share (default: `~/.erlang.cookie`, made if missing).
    pub fn cookie(mut self, cookie: &str) -> NodeBuilder {
        self.config.cookie = Some(cookie.to_owned());
        self
    }

    /// Scheduler worker threads (default: one per core).
    pub fn workers(mut self, workers: usize) -> NodeBuilder {
        self.config.runtime.workers = workers;
        self
    }

    /// The port mapper's port (default: `ERL_EPMD_PORT`, else 4369). Port 0 hosts a
    /// private mapper on a free port ([`Net::epmd_port`] says which).
    pub fn port_mapper(mut self, port: u16) -> NodeBuilder {
        self.config.epmd_port = Some(port);
        self
    }

    /// No port mapper: peers reach this node as `name@host:port` only.
    pub fn without_port_mapper(mut self) -> NodeBuilder {
        self.config.use_mapper = false;
        self
    }

    /// The port to listen on (default: any free port).
    pub fn listen_port(mut self, port: u16) -> NodeBuilder {
        self.config.port = port;
        self
    }

    /// A hidden node: it connects but joins no mesh and shows in no `nodes()`.
    pub fn hidden(mut self) -> NodeBuilder {
        self.config.hidden = true;
        self
    }

    /// A peer silent this long is declared down (default 15 s, OTP's net_ticktime
    /// of 60 s is longer).
    pub fn tick_time(mut self, tick: Duration) -> NodeBuilder {
        self.config.tick_time = tick;
        self
    }

    /// OTP 25's `prevent_overlapping_partitions` (on by default): see
    /// [`NetConfig::prevent_overlapping_partitions`].
    pub fn prevent_overlapping_partitions(mut self, on: bool) -> NodeBuilder {
        self.config.prevent_overlapping_partitions = on;
        self
    }

    /// No cluster services (global, pg, rpc's built-ins): distribution alone.
    pub fn without_services(mut self) -> NodeBuilder {
        self.services = false;
        self
    }

    /// Every setting at once, for what the shortcuts above do not cover (frame and
    /// message limits, timeouts, the runtime's [`rt::Config`]).
    pub fn config(mut self, config: NetConfig) -> NodeBuilder {
        self.config = config;
        self
    }

    /// Starts the node. On an error, nothing it started is left running.
    pub fn start(self) -> Result<Node, NodeError> {
        if self.config.name.is_empty() {
            return Ok(Node {
                rt: rt::Node::start(self.config.runtime),
                net: None,
            });
        }
        let net = Net::start(self.config).map_err(NodeError::Net)?;
        if self.services
            && let Err(e) = dist::start(&net)
        {
            net.shutdown();
            return Err(NodeError::Services(e));
        }
        Ok(Node {
            rt: net.node().clone(),
            net: Some(net),
        })
    }
}

/// Why [`NodeBuilder::start`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum NodeError {
    /// The named node could not start (bad name, port taken, port mapper...).
    Net(NetStartError),
    /// The node started but a cluster service did not (it was stopped again).
    Services(ServicesError),
}

impl std::fmt::Display for NodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeError::Net(e) => write!(f, "the node did not start: {e}"),
            NodeError::Services(e) => write!(f, "the node stopped again: {e}"),
        }
    }
}

impl std::error::Error for NodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NodeError::Net(e) => Some(e),
            NodeError::Services(e) => Some(e),
        }
    }
}
