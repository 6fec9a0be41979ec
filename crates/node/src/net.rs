//! `Net`: a named node on the network.
//!
//! [`Net::start`] binds a listening socket on the host's loopback address, registers the
//! node's name with the port mapper (hosting one when none answers), starts the runtime
//! node with the creation the mapper gave, and starts the node's I/O thread
//! (`io`); a step that fails undoes the ones before it (`start`). It installs itself
//! as the runtime's [`Router`](crate::rt::Router), so every
//! primitive of `rt` (send, link, monitor, exit) reaches pids of other nodes unchanged,
//! and as a node extension, so code holding a `Node` finds it ([`Net::of`]).
//!
//! Connections: see [`conn`](super::conn). The mesh is transitive: when a connection
//! comes up, both sides send the visible nodes they know ([`Wire::Peers`](crate::wire::Wire::Peers)), and each
//! connects to those it does not know yet. Hidden nodes are left out of both.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use parking_lot::{Mutex, RwLock};

use super::conn::{Conn, Phase};
use super::cookie::CookieError;
use super::epmd::Mapper;
use crate::rt::IdBuild;
use crate::rt::{self, Node, Signal};
use crate::term::{Atom, Pid, Term};

mod connect_error;
mod node_name;
mod spawn;
mod start;
mod start_error;

pub use connect_error::ConnectError;
pub use node_name::{NodeAddr, NodeNameError, parse_node};
pub use spawn::{PendingSpawn, RemoteSpawnError, SpawnRequest, Spawned};
pub use start_error::NetStartError;

/// How a named node is set up.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// `name@host` (host: `localhost` or `127.0.0.1`).
    pub name: String,
    /// The cookie; `None`: `OXBEAM_COOKIE`, else `~/.oxbeam.cookie`.
    pub cookie: Option<String>,
    /// The port mapper's port; `None`: `OXBEAM_EPMD_PORT`, `ERL_EPMD_PORT`, else 4369.
    /// `Some(0)` (with `use_mapper`): host a private mapper on a port the system picks
    /// ([`Net::epmd_port`] says which, for other nodes to use).
    pub epmd_port: Option<u16>,
    /// Register with (or host) the port mapper. Without it, peers need `name@host:port`.
    pub use_mapper: bool,
    /// The port to listen on (0: any free port).
    pub port: u16,
    /// A hidden node: it connects, but does not join the mesh or show in `nodes()`.
    pub hidden: bool,
    /// A peer silent this long is declared down (ticks are sent at a quarter of it).
    pub tick_time: Duration,
    /// How long a handshake may take.
    pub handshake_timeout: Duration,
    /// How long `connect` waits in all (address lookup and handshake).
    pub connect_timeout: Duration,
    /// Largest frame accepted (fragments are smaller; handshake messages tiny).
    pub max_frame: usize,
    /// Largest message accepted, reassembled.
    pub max_message: usize,
    /// Bytes queued per connection before senders wait.
    pub busy_limit: usize,
    /// The runtime's settings (its name and creation are set from the above).
    pub runtime: rt::Config,
    /// OTP 25's `prevent_overlapping_partitions` (on by default, as there): when a
    /// node loses its connection to another, the cluster's `global` servers cut their
    /// own connections to keep every partition fully connected (see `dist::global`).
    /// Off, a lost connection leaves a partial mesh (OTP's `false`, before OTP 25).
    pub prevent_overlapping_partitions: bool,
}

impl NetConfig {
    /// Defaults for a node called `name`.
    pub fn named(name: &str) -> NetConfig {
        NetConfig {
            name: name.to_owned(),
            cookie: None,
            epmd_port: None,
            use_mapper: true,
            port: 0,
            hidden: false,
            tick_time: Duration::from_secs(15),
            handshake_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(7),
            max_frame: super::wire::FRAGMENT + 1024,
            max_message: 256 << 20,
            busy_limit: 64 << 20,
            runtime: rt::Config::default(),
            prevent_overlapping_partitions: true,
        }
    }
}

/// What [`Net::monitor_nodes`] subscribes a process to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeMonitor {
    /// No node events (unsubscribes).
    Off,
    /// `{:nodeup, node}` and `{:nodedown, node}`.
    On,
    /// OTP's `[:nodedown_reason]`: `{:nodeup, node, []}`, `{:nodedown, node, [nodedown_reason: r]}`.
    WithReasons,
}

/// Commands for the I/O thread.
pub(crate) enum Command {
    /// Connect to `addr` for the connection `conn`.
    Dial { conn: Arc<Conn>, addr: SocketAddr },
    /// Close the connection to a node.
    Disconnect(Atom),
    /// A process could not decode a message that came on `conn`: close it.
    BadMessage {
        /// The connection the message came on (not a newer one to the same node).
        conn: Arc<Conn>,
        /// What was wrong with it.
        why: String,
    },
    /// Stop the loop.
    Stop,
}

/// Who watches which nodes.
#[derive(Default)]
struct NodeWatchers {
    /// `monitor_node`: node -> watchers (a watcher twice gets two messages, as in Erlang).
    per_node: HashMap<Atom, Vec<Pid>>,
    /// `monitor_nodes`: watcher -> whether it wants the reason.
    all: Vec<(Pid, bool)>,
}

pub(crate) struct NetInner {
    pub(crate) node: Node,
    pub(crate) name: Atom,
    pub(crate) creation: u32,
    pub(crate) hidden: bool,
    pub(crate) cookies: RwLock<Cookies>,
    pub(crate) addr: SocketAddr,
    /// The port mapper's port (the one picked when the config said 0).
    epmd_port: u16,
    pub(crate) config: NetConfig,
    pub(crate) epoch: Instant,
    pub(crate) conns: RwLock<HashMap<Atom, Arc<Conn>, IdBuild>>,
    watchers: Mutex<NodeWatchers>,
    pub(crate) commands: Sender<Command>,
    pub(crate) waker: Arc<mio::Waker>,
    resolver: Sender<Option<Arc<Conn>>>,
    /// Ports given in `name@host:port` connects, used instead of the mapper.
    explicit_ports: Mutex<HashMap<Atom, u16>>,
    /// Ports set with [`Net::set_peer_port`], used for every connection to that peer.
    peer_ports: Mutex<HashMap<Atom, u16>>,
    /// Peers this node has been connected to (one name per peer: bounded like atoms).
    ever_up: Mutex<std::collections::HashSet<Atom>>,
    mapper: Mutex<Option<Mapper>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// The cookie this node proves and expects: one default, and any set per peer.
pub(crate) struct Cookies {
    pub(crate) default: Vec<u8>,
    pub(crate) per_peer: HashMap<String, Vec<u8>>,
}

impl NetInner {
    /// The cookie used with `peer` (its own if one was set, else the default).
    pub(crate) fn cookie_for(&self, peer: &str) -> Vec<u8> {
        let c = self.cookies.read();
        c.per_peer.get(peer).unwrap_or(&c.default).clone()
    }
}

/// A named node on the network (a cheap handle).
#[derive(Clone)]
pub struct Net(pub(crate) Arc<NetInner>);

impl Net {
    /// The network side of `node`, if it is a named node.
    pub fn of(node: &Node) -> Option<Net> {
        node.extension::<NetInner>().map(Net)
    }

    /// The runtime node.
    pub fn node(&self) -> &Node {
        &self.0.node
    }

    /// This node's name.
    pub fn name(&self) -> Atom {
        self.0.name
    }

    /// The address this node listens on.
    pub fn address(&self) -> SocketAddr {
        self.0.addr
    }

    /// How long [`Net::connect`] waits in all (address lookup and handshake).
    pub fn connect_timeout(&self) -> Duration {
        self.0.config.connect_timeout
    }

    /// How long a peer may be silent before it is declared down (`net_ticktime`).
    pub fn tick_time(&self) -> Duration {
        self.0.config.tick_time
    }

    /// Whether the cluster services keep partitions fully connected
    /// ([`NetConfig::prevent_overlapping_partitions`]).
    pub fn prevents_overlapping_partitions(&self) -> bool {
        self.0.config.prevent_overlapping_partitions
    }

    /// The port of the port mapper this node registers with and looks peers up in (with
    /// `epmd_port: Some(0)`, the private one it hosts).
    pub fn epmd_port(&self) -> u16 {
        self.0.epmd_port
    }

    /// This node's creation.
    pub fn creation(&self) -> u32 {
        self.0.creation
    }

    /// The default cookie (`Node.get_cookie()`).
    pub fn cookie(&self) -> String {
        String::from_utf8_lossy(&self.0.cookies.read().default).into_owned()
    }

    /// The cookie used with `peer`: its own if [`Net::set_peer_cookie`] set one.
    pub fn cookie_for(&self, peer: Atom) -> String {
        String::from_utf8_lossy(&self.0.cookie_for(peer.as_str())).into_owned()
    }

    /// Sets the default cookie (`Node.set_cookie(cookie)`) for connections made from
    /// now on; connections already up stay up, as in Erlang.
    pub fn set_cookie(&self, cookie: &str) -> Result<(), CookieError> {
        super::cookie::check(cookie)?;
        self.0.cookies.write().default = cookie.as_bytes().to_vec();
        Ok(())
    }

    /// Sets the cookie used with one peer (`Node.set_cookie(node, cookie)`), both when
    /// this node connects to it and when it connects here. Setting it to the default
    /// cookie forgets the override.
    pub fn set_peer_cookie(&self, peer: Atom, cookie: &str) -> Result<(), CookieError> {
        super::cookie::check(cookie)?;
        let mut c = self.0.cookies.write();
        if c.default == cookie.as_bytes() {
            c.per_peer.remove(peer.as_str());
        } else {
            c.per_peer
                .insert(peer.as_str().to_owned(), cookie.as_bytes().to_vec());
        }
        Ok(())
    }

    /// Reaches `peer` at `port` on loopback from now on, every time this node connects
    /// to it, instead of asking the port mapper (`None`: back to the mapper). For
    /// routing a peer through something in between, e.g. a fault-injecting proxy in
    /// tests. Connections it accepts are not affected.
    pub fn set_peer_port(&self, peer: Atom, port: Option<u16>) {
        let mut ports = self.0.peer_ports.lock();
        match port {
            Some(p) => ports.insert(peer, p),
            None => ports.remove(&peer),
        };
    }

    /// Traffic counters of each live connection, by peer (the console's `stats`).
    pub fn conn_stats(&self) -> Vec<(Atom, super::conn::ConnStats)> {
        let mut v: Vec<_> = self
            .0
            .conns
            .read()
            .iter()
            .filter(|(_, c)| c.is_up())
            .map(|(peer, c)| (*peer, c.stats()))
            .collect();
        v.sort_by_key(|(peer, _)| *peer);
        v
    }

    /// Connects to `node` (`name@host` or `name@host:port`) and waits until the
    /// connection is up or failed, as `Node.connect/1` (connecting to itself is `Ok`).
    pub fn connect(&self, node: &str) -> Result<(), ConnectError> {
        let addr = parse_node(node).map_err(ConnectError::BadName)?;
        let name = Atom::new(&addr.node);
        if name == self.0.name {
            return Ok(());
        }
        let conn = self.0.conn_for(name, addr.port);
        let deadline = Instant::now() + self.0.config.connect_timeout;
        self.0.node.block_in_place(|| {
            let mut st = conn.state.lock();
            loop {
                match &st.phase {
                    Phase::Up { .. } => return Ok(()),
                    Phase::Down(reason) => {
                        return Err(st
                            .failure
                            .clone()
                            .unwrap_or_else(|| ConnectError::Closed(reason.clone())));
                    }
                    Phase::Connecting => {
                        if conn.changed.wait_until(&mut st, deadline).timed_out() {
                            return match st.phase {
                                Phase::Up { .. } => Ok(()),
                                _ => Err(ConnectError::Timeout),
                            };
                        }
                    }
                }
            }
        })
    }

    /// Closes the connection to `node`; both sides see it go down. False if there was none.
    pub fn disconnect(&self, node: Atom) -> bool {
        let known = self.0.conns.read().get(&node).is_some_and(|c| c.is_up());
        if known {
            let _ = self.0.commands.send(Command::Disconnect(node));
            let _ = self.0.waker.wake();
        }
        known
    }

    /// The visible nodes this node is connected to (`Node.list()`).
    pub fn nodes(&self) -> Vec<Atom> {
        self.nodes_where(|hidden| !hidden)
    }

    /// This node and the visible nodes (`Node.list([:this, :visible])`).
    pub fn nodes_and_this(&self) -> Vec<Atom> {
        let mut v = vec![self.0.name];
        v.extend(self.nodes());
        v
    }

    /// The hidden nodes this node is connected to.
    pub fn hidden_nodes(&self) -> Vec<Atom> {
        self.nodes_where(|hidden| hidden)
    }

    fn nodes_where(&self, keep: impl Fn(bool) -> bool) -> Vec<Atom> {
        let mut v: Vec<Atom> = self
            .0
            .conns
            .read()
            .values()
            .filter(|c| matches!(c.phase(), Phase::Up { hidden, .. } if keep(hidden)))
            .map(|c| c.peer)
            .collect();
        v.sort();
        v
    }

    /// `monitor_node(node, on)` for `watcher`: `{:nodedown, node}` when the connection
    /// goes (at once if there is none).
    pub fn monitor_node(&self, watcher: Pid, node: Atom, on: bool) {
        let up = self.0.conns.read().get(&node).is_some_and(|c| c.is_up());
        let mut w = self.0.watchers.lock();
        if on {
            if up || node == self.0.name {
                w.per_node.entry(node).or_default().push(watcher);
            } else {
                drop(w);
                self.0
                    .node
                    .send(watcher, (Term::atom("nodedown"), Term::Atom(node)));
            }
        } else if let Some(list) = w.per_node.get_mut(&node)
            && let Some(i) = list.iter().position(|p| *p == watcher)
        {
            list.remove(i);
        }
    }

    /// `net_kernel:monitor_nodes/2` for `watcher`: with [`NodeMonitor::On`],
    /// `{:nodeup, node}` and `{:nodedown, node}` for every visible node; with
    /// [`NodeMonitor::WithReasons`], `{:nodeup, node, []}` and
    /// `{:nodedown, node, [nodedown_reason: r]}`, as OTP's option list gives;
    /// [`NodeMonitor::Off`] stops them.
    pub fn monitor_nodes(&self, watcher: Pid, mode: NodeMonitor) {
        let mut w = self.0.watchers.lock();
        w.all.retain(|(p, _)| *p != watcher);
        match mode {
            NodeMonitor::Off => {}
            NodeMonitor::On => w.all.push((watcher, false)),
            NodeMonitor::WithReasons => w.all.push((watcher, true)),
        }
    }

    /// Stops the node: its processes (their exit signals still go out), then the
    /// connections (peers see nodedown), the port mapper registration, every thread.
    pub fn shutdown(&self) {
        self.0.node.shutdown();
        let _ = self.0.commands.send(Command::Stop);
        let _ = self.0.waker.wake();
        let _ = self.0.resolver.send(None);
        let threads: Vec<_> = std::mem::take(&mut *self.0.threads.lock());
        for t in threads {
            let _ = t.join();
        }
        if let Some(m) = self.0.mapper.lock().take() {
            m.stop();
        }
        self.0.node.remove_extension::<NetInner>();
    }
}

impl NetInner {
    /// The connection to `peer`, starting one if there is none (auto-connect).
    pub(crate) fn conn_for(self: &Arc<Self>, peer: Atom, port: Option<u16>) -> Arc<Conn> {
        self.conn_entry(peer, port, true)
    }

    /// The connection to `peer`: with `connect`, as [`NetInner::conn_for`]; without, only
    /// one that exists and is not down (Erlang's `[noconnect]`).
    fn conn_to(self: &Arc<Self>, peer: Atom, connect: bool) -> Option<Arc<Conn>> {
        if connect {
            return Some(self.conn_for(peer, None));
        }
        self.conns
            .read()
            .get(&peer)
            .filter(|c| !c.is_down())
            .cloned()
    }

    /// The connection to `peer`, creating it if needed; `dial` starts connecting.
    pub(crate) fn conn_entry(
        self: &Arc<Self>,
        peer: Atom,
        port: Option<u16>,
        dial: bool,
    ) -> Arc<Conn> {
        if let Some(c) = self.conns.read().get(&peer)
            && !c.is_down()
        {
            return c.clone();
        }
        let conn = match self.claim(peer) {
            Ok(new) => new,
            Err(existing) => return existing,
        };
        if dial {
            if let Some(p) = port {
                self.explicit_ports.lock().insert(peer, p);
            }
            let _ = self.resolver.send(Some(conn.clone()));
        }
        conn
    }

    /// A new connection to `peer` in the table, if none is there (one that is down
    /// does not count); else the one there. The new one is connecting, and nothing
    /// dials it: whoever claimed it brings it up (or down).
    pub(crate) fn claim(&self, peer: Atom) -> Result<Arc<Conn>, Arc<Conn>> {
        let mut conns = self.conns.write();
        if let Some(c) = conns.get(&peer)
            && !c.is_down()
        {
            return Err(c.clone());
        }
        let conn = Conn::new(
            self.node.clone(),
            peer,
            self.config.busy_limit,
            self.config.max_message,
            self.epoch,
        );
        if self.ever_up.lock().contains(&peer) {
            conn.state.lock().follows_up = true;
        }
        conns.insert(peer, conn.clone());
        Ok(conn)
    }

    /// A connection went down (or never came up): everyone who must know, knows.
    pub(crate) fn conn_down(&self, conn: &Arc<Conn>, reason: &str) {
        self.conn_down_when(conn, reason, |_| true);
    }

    /// [`NetInner::conn_down`] if `when` holds for the phase, judged under the same lock
    /// that takes the connection down.
    pub(crate) fn conn_down_when(
        &self,
        conn: &Arc<Conn>,
        reason: &str,
        when: impl FnOnce(&Phase) -> bool,
    ) {
        let (was_up, links, monitors, spawns) = {
            let mut st = conn.state.lock();
            if matches!(st.phase, Phase::Down(_)) || !when(&st.phase) {
                return;
            }
            let was_up = match st.phase {
                Phase::Up { hidden, .. } => Some(hidden),
                _ => None,
            };
            st.phase = Phase::Down(reason.to_owned());
            conn.mark_down();
            st.socket = None;
            st.out = super::outbound::Outbound::new();
            (
                was_up,
                std::mem::take(&mut st.links),
                std::mem::take(&mut st.monitors),
                std::mem::take(&mut st.spawns),
            )
        };
        conn.changed.notify_all();
        {
            let mut conns = self.conns.write();
            if conns.get(&conn.peer).is_some_and(|c| Arc::ptr_eq(c, conn)) {
                conns.remove(&conn.peer);
            }
        }
        if let Some(hidden) = was_up {
            self.ever_up.lock().insert(conn.peer);
            log::info!("node {} down: {reason}", conn.peer);
            self.notify_watchers(conn.peer, false, hidden, reason);
        }
        let noconnection = Term::Atom(Atom::NOCONNECTION);
        for (local, remote) in links {
            self.node.deliver_local(
                local,
                Signal::Exit {
                    from: remote,
                    reason: noconnection.clone(),
                    linked: true,
                },
            );
        }
        for (reference, (watcher, target)) in monitors {
            self.node.deliver_local(
                watcher,
                Signal::Down {
                    from: target,
                    reference,
                    reason: noconnection.clone(),
                },
            );
        }
        for (reference, wait) in spawns {
            let reply = Term::tuple(vec![
                Term::atom("$spawn_reply"),
                Term::Ref(reference),
                (Term::Atom(Atom::ERROR), noconnection.clone()).into(),
            ]);
            self.node
                .deliver_local(wait.requester, Signal::Message(reply));
        }
    }

    /// Tells node watchers about a node going up or down.
    pub(crate) fn notify_watchers(&self, peer: Atom, up: bool, hidden: bool, reason: &str) {
        let mut w = self.watchers.lock();
        let node = &self.node;
        w.all.retain(|(p, _)| node.is_alive(*p));
        let mut sends = Vec::new();
        if !hidden {
            for (pid, with_reason) in &w.all {
                let msg = if up && *with_reason {
                    // OTP: with an option list, `{:nodeup, node, info}` (info `[]` for
                    // a visible node with only `nodedown_reason` asked).
                    Term::tuple(vec![
                        Term::atom("nodeup"),
                        Term::Atom(peer),
                        Term::list(vec![]),
                    ])
                } else if up {
                    Term::tuple(vec![Term::atom("nodeup"), Term::Atom(peer)])
                } else if *with_reason {
                    let info = Term::list(vec![
                        (Term::atom("nodedown_reason"), Term::atom(reason)).into(),
                    ]);
                    Term::tuple(vec![Term::atom("nodedown"), Term::Atom(peer), info])
                } else {
                    Term::tuple(vec![Term::atom("nodedown"), Term::Atom(peer)])
                };
                sends.push((*pid, msg));
            }
        }
        if !up && let Some(list) = w.per_node.remove(&peer) {
            for pid in list {
                sends.push((
                    pid,
                    Term::tuple(vec![Term::atom("nodedown"), Term::Atom(peer)]),
                ));
            }
        }
        drop(w);
        for (pid, msg) in sends {
            self.node.send(pid, msg);
        }
    }

    /// The visible nodes to tell a new peer about.
    pub(crate) fn visible_peers(&self) -> Vec<String> {
        self.conns
            .read()
            .values()
            .filter(|c| matches!(c.phase(), Phase::Up { hidden: false, .. }))
            .map(|c| c.peer.as_str().to_owned())
            .collect()
    }
}
