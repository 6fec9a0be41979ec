//! global: cluster-wide names and locks (OTP's `global`, simplified; see the notes).
//!
//! Every node runs a name server, registered locally as `:global_name_server`. The
//! servers find each other like pg scopes (`{:discover, pid}` on start and on every
//! `nodeup`, answered with `{:sync, pid, names}`), so each knows its peers' server pids
//! and holds a full copy of the name table: [`whereis_name`] is a local read.
//!
//! **Locks.** A lock `id` is held by a pid on a set of nodes. [`set_lock`] asks the
//! servers of every node connected now at once (`{:lock, id, holder}`); a server grants
//! it if free or already held by the same holder. If any refuses, the granted ones are
//! released and the whole attempt is retried after a random back-off, so two requesters
//! can't deadlock and never both hold it. A server monitors each holder: a holder that
//! dies (or whose node goes) releases its locks there.
//!
//! **Sync.** [`sync`] (OTP's `global:sync()`) is one round trip, not a poll: it calls
//! this node's server with `{:sync, nodes, timeout_ms}` for the connected nodes,
//! answered (with their servers) once it holds the names of a server on each (that
//! server's `{:sync, pid, names}` has arrived) or that node has gone (a `nodedown`);
//! then, all at once, every one of those servers with `{:sync, [this node], ms}`, each
//! answered once it holds this node's names. A server keeps the
//! requests it cannot answer yet and looks at them again after every message that can
//! change the answer (a sync, a `DOWN`, a `nodedown`); one unanswered when its caller's
//! timeout passes is dropped (`{:sync_expired, tag}`, a timer), so a node without a
//! name server costs a caller its timeout and the server nothing.
//!
//! **No reconnecting behind the user's back.** Everything a server sends to its peers
//! (`discover`, `sync`, `unlock`, and its monitors of them) goes `noconnect`: a message
//! prompted by something that arrived just before a `disconnect` is dropped instead of
//! dialling the node again and undoing the partition. pg does the same.
//!
//! **Names.** [`register_name`] takes the lock `{:global, name}` on every known node,
//! checks the name is free everywhere (its own copy is current: every registration
//! happens under that same lock), and tells every server, which releases the lock as
//! it registers (`{:then_unlock, id, holder, update}`: two rounds in all); so under
//! concurrent registration from any number of nodes exactly one gets `yes`, and every
//! node has the name when `yes` returns. Servers
//! monitor registered pids: a name goes when its process dies or its node goes.
//!
//! **Partitions.** When two servers sync and both have a name for different pids, both
//! apply the same deterministic rule: the registration of the smaller pid (in term
//! order, i.e. on the node with the smaller name) stays and, with the default resolver,
//! the other process is killed (as OTP's `random_exit_name`); with `notify_all_name`
//! both lose the name and get `{:global_name_conflict, name, other_pid}`; with a user
//! resolver (a registered `module:function/3`) its answer stands. The resolver of the
//! smaller pid's registration decides.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::errors::{GlobalRegisterError, LockError, SyncError};
use crate::node::{Net, NodeMonitor};
use crate::rt::gen_server::{self, CallReply, GenServer, ReplyTo};
use crate::rt::{self, Ctx, Dest, Flow, Node, SendError, ServerRef, StartError, TimerRef};
use crate::term::{Atom, Pid, Ref, Term};

const SERVER: &str = "global_name_server";

/// What happens to a name registered on both sides of a healed partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolver {
    /// Keep one (the smaller pid) and kill the other.
    ExitOne,
    /// Unregister both; each gets `{:global_name_conflict, name, other}`.
    NotifyAll,
    /// Ask the registered function `module:function/3`, called on every node with
    /// `(name, smaller pid, larger pid)` (so every node asks alike; it must be registered
    /// on every node and decide the same way): it returns the pid to keep, or anything
    /// else to keep neither. The other process is left alone (OTP's user resolver).
    Function(Atom, Atom),
}

impl Resolver {
    fn to_term(self) -> Term {
        match self {
            Resolver::ExitOne => Term::atom("exit"),
            Resolver::NotifyAll => Term::atom("notify"),
            Resolver::Function(m, f) => {
                Term::tuple(vec![Term::atom("fun"), Term::Atom(m), Term::Atom(f)])
            }
        }
    }
    fn from_term(t: &Term) -> Resolver {
        match t.tagged("fun") {
            Some([Term::Atom(m), Term::Atom(f)]) => Resolver::Function(*m, *f),
            _ if t.is_atom("notify") => Resolver::NotifyAll,
            _ => Resolver::ExitOne,
        }
    }
}

/// The name table as readers see it (a node extension).
#[derive(Default)]
pub struct Names(RwLock<HashMap<Atom, Pid>>);

impl rt::GlobalNames for Names {
    fn whereis(&self, name: Atom) -> Option<Pid> {
        self.0.read().get(&name).copied()
    }
}

/// The peer servers this node's server knows (a node extension, so a registering
/// process reads it without a call to the server).
#[derive(Default)]
struct Peers(RwLock<Vec<Pid>>);

struct Server {
    view: Arc<Names>,
    peer_view: Arc<Peers>,
    names: HashMap<Atom, (Pid, Resolver)>,
    watched: HashMap<Pid, Ref>,
    locks: HashMap<Term, Pid>,
    peers: HashMap<Pid, Atom>,
    /// The peers whose names this server holds: their `{:sync, pid, names}` came.
    synced: HashSet<Pid>,
    /// `{:sync, nodes, timeout_ms}` requests not answered yet (see the module docs).
    syncs: Vec<PendingSync>,
}

/// A sync request waiting for a synced server on each of `nodes` (or for the node to
/// go).
struct PendingSync {
    from: ReplyTo,
    nodes: Vec<Atom>,
    /// Drops the request when its caller has given up.
    expiry: TimerRef,
}

fn names_term(names: &HashMap<Atom, (Pid, Resolver)>) -> Term {
    Term::list(
        names
            .iter()
            .map(|(n, (p, r))| Term::tuple(vec![Term::Atom(*n), Term::Pid(*p), r.to_term()]))
            .collect::<Vec<_>>(),
    )
}

impl Server {
    /// Rebuilds the readers' view of every name (after a change to many).
    fn publish(&self) {
        *self.view.0.write() = self.names.iter().map(|(n, (p, _))| (*n, *p)).collect();
    }

    /// Brings the readers' view of `name` in line with the table (after a change to
    /// that name alone: a registration costs O(1), not a copy of every name).
    fn publish_name(&self, name: Atom) {
        let mut view = self.view.0.write();
        match self.names.get(&name) {
            Some((p, _)) => {
                view.insert(name, *p);
            }
            None => {
                view.remove(&name);
            }
        }
    }

    fn publish_peers(&self) {
        *self.peer_view.0.write() = self.peers.keys().copied().collect();
    }

    fn watch(&mut self, ctx: &mut Ctx, pid: Pid) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.watched.entry(pid) {
            e.insert(ctx.monitor(pid));
        }
    }

    fn add(&mut self, ctx: &mut Ctx, name: Atom, pid: Pid, resolver: Resolver) {
        if let Some((other, other_resolver)) = self.names.get(&name).copied() {
            if other == pid {
                return;
            }
            // A conflict (only after a partition): the same rule on every node.
            let (keep, lose) = if pid < other {
                (pid, other)
            } else {
                (other, pid)
            };
            // Both sides registered with their own resolver; the smaller pid's rules.
            let rule = if pid < other {
                resolver
            } else {
                other_resolver
            };
            match rule {
                Resolver::Function(m, f) => {
                    let chosen = match ctx.node().functions().lookup(m, f, 3) {
                        // A resolver runs in this server, which never waits: one that
                        // panics (or tries to wait) keeps neither, as one that answers
                        // something else.
                        Some(fun) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            fun(
                                ctx,
                                vec![Term::Atom(name), Term::Pid(keep), Term::Pid(lose)],
                            )
                        }))
                        .unwrap_or_else(|p| {
                            log::warn!(
                                "global: resolver {m}:{f}/3 failed for {name}: {}",
                                crate::rt::unwind_reason(p)
                            );
                            Term::atom("none")
                        })
                        .as_pid(),
                        None => {
                            log::warn!(
                                "global: resolver {m}:{f}/3 is not registered; keeping neither for {name}"
                            );
                            None
                        }
                    };
                    match chosen {
                        Some(p) if p == keep || p == lose => {
                            self.names.insert(name, (p, rule));
                        }
                        _ => {
                            self.names.remove(&name);
                        }
                    }
                }
                Resolver::NotifyAll => {
                    self.names.remove(&name);
                    for (p, o) in [(pid, other), (other, pid)] {
                        if ctx.node().is_local(p) {
                            ctx.send(
                                p,
                                Term::tuple(vec![
                                    Term::atom("global_name_conflict"),
                                    Term::Atom(name),
                                    Term::Pid(o),
                                ]),
                            );
                        }
                    }
                }
                Resolver::ExitOne => {
                    self.names.insert(name, (keep, resolver));
                    if ctx.node().is_local(lose) {
                        log::info!(
                            "global: name {name} registered twice; keeping {keep:?}, killing {lose:?}"
                        );
                        ctx.exit_pid(lose, Term::atom("kill"));
                    }
                }
            }
        } else {
            self.names.insert(name, (pid, resolver));
        }
        self.watch(ctx, pid);
        self.publish_name(name);
    }

    /// The synced servers on `nodes`, if every one of `nodes` has one or is no longer
    /// connected (judged now: a node that goes after this sends a `nodedown` later).
    fn synced_on(&self, ctx: &Ctx, nodes: &[Atom]) -> Option<Vec<Pid>> {
        let connected = Net::of(ctx.node()).map(|n| n.nodes()).unwrap_or_default();
        let mut servers = Vec::new();
        for node in nodes {
            let server = self.synced.iter().find(|p| self.peers.get(p) == Some(node));
            match server {
                Some(p) => servers.push(*p),
                None if connected.contains(node) => return None,
                None => {}
            }
        }
        Some(servers)
    }

    /// `{:sync, nodes, timeout_ms}`: answered now if it can be, else kept.
    fn sync_request(
        &mut self,
        ctx: &mut Ctx,
        nodes: &[Term],
        timeout: &Term,
        from: ReplyTo,
    ) -> CallReply {
        let nodes: Vec<Atom> = nodes.iter().filter_map(Term::as_atom).collect();
        if let Some(servers) = self.synced_on(ctx, &nodes) {
            return CallReply::Reply(Term::list(
                servers.into_iter().map(Term::Pid).collect::<Vec<_>>(),
            ));
        }
        let ms = timeout.as_int().unwrap_or(0).max(0) as u64;
        let expiry = ctx.node().send_after(
            ctx.pid(),
            (Term::atom("sync_expired"), Term::Ref(from.tag)),
            Duration::from_millis(ms),
        );
        self.syncs.push(PendingSync {
            from,
            nodes,
            expiry,
        });
        CallReply::NoReply
    }

    /// Answers the kept sync requests that can be answered now.
    fn answer_syncs(&mut self, ctx: &mut Ctx) {
        let mut i = 0;
        while i < self.syncs.len() {
            match self.synced_on(ctx, &self.syncs[i].nodes) {
                Some(servers) => {
                    let done = self.syncs.swap_remove(i);
                    ctx.node().cancel_timer(done.expiry);
                    let reply = Term::list(servers.into_iter().map(Term::Pid).collect::<Vec<_>>());
                    gen_server::reply(ctx.node(), done.from, reply);
                }
                None => i += 1,
            }
        }
    }

    /// A request to this server (a lock or a name update), answered.
    fn apply(&mut self, ctx: &mut Ctx, request: &Term) -> Term {
        match request.as_tuple() {
            Some([op, id, Term::Pid(holder)]) if op.is_atom("lock") => match self.locks.get(id) {
                Some(h) if h != holder => Term::from(false),
                _ => {
                    self.locks.insert(id.clone(), *holder);
                    self.watch(ctx, *holder);
                    Term::from(true)
                }
            },
            Some([op, Term::Atom(name), Term::Pid(pid), resolver]) if op.is_atom("register") => {
                self.add(ctx, *name, *pid, Resolver::from_term(resolver));
                Term::ok()
            }
            Some([op, Term::Atom(name), Term::Pid(pid), resolver]) if op.is_atom("reregister") => {
                self.names
                    .insert(*name, (*pid, Resolver::from_term(resolver)));
                self.watch(ctx, *pid);
                self.publish_name(*name);
                Term::ok()
            }
            Some([op, Term::Atom(name)]) if op.is_atom("unregister") => {
                self.names.remove(name);
                self.publish_name(*name);
                Term::ok()
            }
            // An update made under a lock, which it then releases (one round instead
            // of an update round and an unlock round).
            Some([op, id, Term::Pid(holder), update]) if op.is_atom("then_unlock") => {
                let reply = self.apply(ctx, update);
                if self.locks.get(id) == Some(holder) {
                    self.locks.remove(id);
                }
                reply
            }
            _ => Term::atom("badarg"),
        }
    }
}

impl GenServer for Server {
    fn init(&mut self, ctx: &mut Ctx) -> Result<(), Term> {
        if let Some(net) = Net::of(ctx.node()) {
            net.monitor_nodes(ctx.pid(), NodeMonitor::On);
            for node in net.nodes() {
                let _ = ctx.send_noconnect(
                    Dest::NameAt(Atom::new(SERVER), node),
                    (Term::atom("discover"), ctx.pid()),
                );
            }
        }
        Ok(())
    }

    fn handle_call(&mut self, ctx: &mut Ctx, request: Term, from: ReplyTo) -> CallReply {
        if let Some([Term::List(nodes), timeout]) = request.tagged("sync") {
            return self.sync_request(ctx, nodes, timeout, from);
        }
        CallReply::Reply(self.apply(ctx, &request))
    }

    fn handle_info(&mut self, ctx: &mut Ctx, msg: Term) -> Flow {
        if let Some([id, Term::Pid(holder)]) = msg.tagged("unlock") {
            if self.locks.get(id) == Some(holder) {
                self.locks.remove(id);
            }
        } else if let Some([Term::Pid(peer)]) = msg.tagged("discover") {
            let peer = *peer;
            let _ = ctx.send_noconnect(
                peer,
                Term::tuple(vec![
                    Term::atom("sync"),
                    Term::Pid(ctx.pid()),
                    names_term(&self.names),
                ]),
            );
            if let std::collections::hash_map::Entry::Vacant(e) = self.peers.entry(peer) {
                e.insert(peer.node());
                self.publish_peers();
                ctx.monitor_noconnect(peer);
                let _ = ctx.send_noconnect(peer, (Term::atom("discover"), ctx.pid()));
            }
        } else if let Some([Term::Pid(peer), names]) = msg.tagged("sync") {
            if !self.peers.contains_key(peer) {
                self.peers.insert(*peer, peer.node());
                self.publish_peers();
                ctx.monitor_noconnect(*peer);
            }
            for entry in names.as_list().unwrap_or(&[]) {
                if let Some([Term::Atom(n), Term::Pid(p), r]) = entry.as_tuple() {
                    self.add(ctx, *n, *p, Resolver::from_term(r));
                }
            }
            self.synced.insert(*peer);
        } else if let Some([Term::Ref(tag)]) = msg.tagged("sync_expired") {
            // Its caller has given up: no reply (it would be dropped anyway).
            self.syncs.retain(|s| s.from.tag != *tag);
        } else if let Some([_, _, Term::Pid(pid), _]) = msg.tagged("DOWN") {
            let pid = *pid;
            self.synced.remove(&pid);
            if self.peers.remove(&pid).is_some() {
                self.publish_peers();
            }
            self.watched.remove(&pid);
            let before = self.names.len();
            self.names.retain(|_, (p, _)| *p != pid);
            self.locks.retain(|_, h| *h != pid);
            if self.names.len() != before {
                self.publish();
            }
        } else if let Some([Term::Atom(node)]) = msg.tagged("nodeup") {
            let _ = ctx.send_noconnect(
                Dest::NameAt(Atom::new(SERVER), *node),
                (Term::atom("discover"), ctx.pid()),
            );
        }
        // A sync, a DOWN or a nodedown may answer a kept sync request.
        if !self.syncs.is_empty() {
            self.answer_syncs(ctx);
        }
        Flow::Continue
    }
}

/// Waits (up to `timeout`) until this node's name server holds the names of a server
/// on every connected node and each of those servers holds this node's names
/// (`global:sync()`; see the module docs): `Ok` when that happened in time. Nodes that
/// go away meanwhile are not waited for; a connected node without a name server makes
/// it [`SyncError::Timeout`] once `timeout` has passed.
pub fn sync(ctx: &mut Ctx, timeout: Duration) -> Result<(), SyncError> {
    if synced(ctx, timeout) {
        return Ok(());
    }
    let connected = Net::of(ctx.node()).is_some_and(|n| !n.nodes().is_empty());
    if connected && !is_running(ctx.node()) {
        Err(SyncError::NotRunning)
    } else {
        Err(SyncError::Timeout)
    }
}

fn synced(ctx: &mut Ctx, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    let nodes = Net::of(ctx.node()).map(|n| n.nodes()).unwrap_or_default();
    let Some(ours) = ctx.node().whereis(Atom::new(SERVER)) else {
        return nodes.is_empty();
    };
    let request = |nodes: Vec<Atom>| {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let nodes = Term::list(nodes.into_iter().map(Term::Atom).collect::<Vec<_>>());
        let ms = Term::from(left.as_millis().min(i64::MAX as u128) as i64);
        (Term::tuple(vec![Term::atom("sync"), nodes, ms]), left)
    };
    // Ours: once it holds every connected node's names.
    let (req, left) = request(nodes);
    let servers = match gen_server::call(ctx, ours, req, Some(left)) {
        Ok(Term::List(servers)) => servers.iter().filter_map(Term::as_pid).collect::<Vec<_>>(),
        _ => return false,
    };
    if servers.is_empty() {
        return true;
    }
    // Theirs, all at once: once each holds ours. One that is gone (its node went, or
    // it exited) has nothing left to sync with; one whose node has just gone is not
    // dialled again (that would undo a partition).
    let (req, left) = request(vec![ctx.node().name()]);
    gen_server::multi_call_noconnect(ctx, &servers, &req, Some(left))
        .iter()
        .all(|answer| {
            matches!(
                answer,
                Ok(_) | Err(gen_server::CallError::NoProc | gen_server::CallError::NoConnection)
            )
        })
}

/// Starts this node's name server.
pub fn start(node: &Node) -> Result<Pid, StartError> {
    // Already running: leave its view alone (readers use it).
    if let Some(pid) = node.whereis(Atom::new(SERVER)) {
        return Err(StartError::AlreadyStarted(pid));
    }
    let view = Arc::new(Names::default());
    node.set_extension(view.clone());
    // `{:global, name}` destinations (sends, calls, typed handles) resolve here.
    node.set_global_names(view.clone());
    let peer_view = Arc::new(Peers::default());
    node.set_extension(peer_view.clone());
    let server = Server {
        view,
        peer_view,
        names: HashMap::new(),
        watched: HashMap::new(),
        locks: HashMap::new(),
        peers: HashMap::new(),
        synced: HashSet::new(),
        syncs: Vec::new(),
    };
    // The name server never waits (a resolver it runs is caught if it tries), so it
    // may run on the thread of the process that calls it (`StartOpts::never_blocks`).
    gen_server::start_from(
        node,
        server,
        gen_server::StartOpts {
            name: Some(Atom::new(SERVER)),
            never_blocks: true,
            ..gen_server::StartOpts::default()
        },
    )
}

/// Whether this node's name server runs (started by [`start`]).
pub fn is_running(node: &Node) -> bool {
    node.whereis(Atom::new(SERVER)).is_some()
}

/// The pid registered as `name` anywhere in the cluster (a local read).
pub fn whereis_name(node: &Node, name: Atom) -> Option<Pid> {
    node.extension::<Names>()?.0.read().get(&name).copied()
}

/// Every globally registered name.
pub fn registered_names(node: &Node) -> Vec<Atom> {
    let mut v: Vec<Atom> = node
        .extension::<Names>()
        .map(|n| n.0.read().keys().copied().collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The name servers of this node and its peers (as this node's server knows them).
fn servers(ctx: &mut Ctx) -> Vec<Pid> {
    let Some(me) = ctx.node().whereis(Atom::new(SERVER)) else {
        return Vec::new();
    };
    let mut all = vec![me];
    // Only servers on nodes connected now: the server may not have seen a `nodedown`
    // yet, and asking a server on a node that is gone would dial it again (a send to a
    // pid connects, as in Erlang), undoing a partition.
    let connected = Net::of(ctx.node()).map(|n| n.nodes()).unwrap_or_default();
    if let Some(peers) = ctx.node().extension::<Peers>() {
        all.extend(
            peers
                .0
                .read()
                .iter()
                .filter(|p| connected.contains(&p.node())),
        );
    }
    all.sort();
    all
}

/// Asks every server for lock `id` at once (each answers at once: granted or not); any
/// refusal gives back what was granted, so two requesters never both hold it, and the
/// loser retries after a random backoff.
fn try_lock(ctx: &mut Ctx, servers: &[Pid], id: &Term, holder: Pid) -> bool {
    let req = Term::tuple(vec![Term::atom("lock"), id.clone(), Term::Pid(holder)]);
    let answers = gen_server::multi_call(ctx, servers, &req, Some(Duration::from_secs(10)));
    let granted: Vec<Pid> = servers
        .iter()
        .zip(&answers)
        .filter(|(_, a)| matches!(a, Ok(t) if *t == Term::from(true)))
        .map(|(s, _)| *s)
        .collect();
    if granted.len() == servers.len() {
        return true;
    }
    // Refused, or a server that is gone: give back what we got.
    for g in granted {
        let _ = ctx.send_noconnect(g, (Term::atom("unlock"), id.clone(), holder));
    }
    false
}

fn backoff(attempt: u32) {
    let max_ms = 1u64 << attempt.min(8);
    let jitter = rand::random::<u64>() % (max_ms + 1);
    std::thread::sleep(Duration::from_millis(jitter));
}

/// Takes lock `id` for the calling process on every node of the cluster; `retries`
/// attempts after the first (`None`: until it succeeds). `Ok` when held (OTP's `true`),
/// [`LockError::Busy`] when every attempt found it held (`false`).
pub fn set_lock(ctx: &mut Ctx, id: impl Into<Term>, retries: Option<u32>) -> Result<(), LockError> {
    let id = id.into();
    let me = ctx.pid();
    let mut attempt = 0;
    loop {
        let servers = servers(ctx);
        if try_lock(ctx, &servers, &id, me) {
            return Ok(());
        }
        if retries.is_some_and(|r| attempt >= r) {
            return Err(LockError::Busy {
                attempts: attempt + 1,
            });
        }
        attempt += 1;
        let node = ctx.node().clone();
        node.block_in_place(|| backoff(attempt));
    }
}

/// Releases lock `id` held by the calling process.
pub fn del_lock(ctx: &mut Ctx, id: impl Into<Term>) {
    let id = id.into();
    let me = ctx.pid();
    for s in servers(ctx) {
        let _ = ctx.send_noconnect(s, (Term::atom("unlock"), id.clone(), me));
    }
}

/// Runs `f` holding lock `id` (`:global.trans`); the lock's error if it could not be
/// had, and then `f` did not run.
pub fn trans<T>(
    ctx: &mut Ctx,
    id: impl Into<Term>,
    retries: Option<u32>,
    f: impl FnOnce(&mut Ctx) -> T,
) -> Result<T, LockError> {
    let id = id.into();
    set_lock(ctx, id.clone(), retries)?;
    let r = f(ctx);
    del_lock(ctx, id);
    Ok(r)
}

/// Registers `pid` as `name` cluster-wide (OTP's `yes`), unless the name is taken or
/// the pid has a global name already (`no`).
pub fn register_name(ctx: &mut Ctx, name: Atom, pid: Pid) -> Result<(), GlobalRegisterError> {
    register_name_with(ctx, name, pid, Resolver::ExitOne)
}

/// [`register_name`] with a conflict resolver for partition heals.
pub fn register_name_with(
    ctx: &mut Ctx,
    name: Atom,
    pid: Pid,
    resolver: Resolver,
) -> Result<(), GlobalRegisterError> {
    let mut refused = GlobalRegisterError::NameTaken;
    let done = update_name(ctx, name, |ctx| {
        // As OTP: a name that is taken, or a pid that already has a name, gives `no`.
        let taken = ctx.node().extension::<Names>().and_then(|n| {
            let n = n.0.read();
            if n.contains_key(&name) {
                Some(GlobalRegisterError::NameTaken)
            } else if n.values().any(|p| *p == pid) {
                Some(GlobalRegisterError::AlreadyNamed)
            } else {
                None
            }
        });
        if let Some(why) = taken {
            refused = why;
        }
        taken.is_none().then(|| {
            Term::tuple(vec![
                Term::atom("register"),
                Term::Atom(name),
                Term::Pid(pid),
                resolver.to_term(),
            ])
        })
    });
    if done { Ok(()) } else { Err(refused) }
}

/// Removes `name` cluster-wide.
pub fn unregister_name(ctx: &mut Ctx, name: Atom) {
    update_name(ctx, name, |_| {
        Some(Term::tuple(vec![
            Term::atom("unregister"),
            Term::Atom(name),
        ]))
    });
}

/// Under the lock `{:global, name}` (waiting for it as long as it takes), asks every
/// server for the update `update` gives (`None`: none, say false), each server
/// releasing the lock as it applies it: two rounds in all, the lock and the update.
/// Every server has applied it when this returns true.
fn update_name(ctx: &mut Ctx, name: Atom, update: impl FnOnce(&mut Ctx) -> Option<Term>) -> bool {
    let id = Term::tuple(vec![Term::atom("global"), Term::Atom(name)]);
    if set_lock(ctx, id.clone(), None).is_err() {
        return false;
    }
    let Some(request) = update(ctx) else {
        del_lock(ctx, id);
        return false;
    };
    let request = Term::tuple(vec![
        Term::atom("then_unlock"),
        id,
        Term::Pid(ctx.pid()),
        request,
    ]);
    let all = servers(ctx);
    // A server that does not answer is gone (its lock went with our monitor of it) or
    // stuck (it applies the update and the unlock when it comes to them).
    let _ = gen_server::multi_call(ctx, &all, &request, Some(Duration::from_secs(10)));
    // A server that synced with ours after `all` was taken (a node that had just
    // connected) may have been sent our names before the update reached ours: ours
    // sends them again, now with it (a `discover` on that server's behalf). Without
    // this a name registered right after a connect could stay unknown to that node.
    if let Some(&ours) = all.first() {
        for late in servers(ctx).into_iter().filter(|s| !all.contains(s)) {
            let _ = ctx.send_noconnect(ours, (Term::atom("discover"), late));
        }
    }
    true
}

/// Sends `msg` to the process registered as `name`; an unregistered name is an error.
pub fn send(ctx: &Ctx, name: Atom, msg: impl Into<Term>) -> Result<Pid, SendError> {
    let pid = whereis_name(ctx.node(), name).ok_or(SendError::NotRegisteredGlobally(name))?;
    ctx.send(pid, msg);
    Ok(pid)
}

/// Moves `name` to `pid` (registering it if free), cluster-wide.
pub fn re_register_name(ctx: &mut Ctx, name: Atom, pid: Pid) {
    update_name(ctx, name, |_| {
        Some(Term::tuple(vec![
            Term::atom("reregister"),
            Term::Atom(name),
            Term::Pid(pid),
            Resolver::ExitOne.to_term(),
        ]))
    });
}

/// Runs `f` holding the lock on `resource`, trying for up to `timeout`;
/// [`LockError::Timeout`] if the lock could not be had in time, and then `f` did not
/// run (the lock manager of the seed's drills).
pub fn with_lock<T>(
    ctx: &mut Ctx,
    resource: impl Into<Term>,
    timeout: Duration,
    f: impl FnOnce(&mut Ctx) -> T,
) -> Result<T, LockError> {
    let id = resource.into();
    let deadline = std::time::Instant::now() + timeout;
    let mut attempt = 0;
    while set_lock(ctx, id.clone(), Some(0)).is_err() {
        if std::time::Instant::now() >= deadline {
            return Err(LockError::Timeout);
        }
        attempt += 1;
        let node = ctx.node().clone();
        node.block_in_place(|| backoff(attempt));
    }
    let r = f(ctx);
    del_lock(ctx, id);
    Ok(r)
}

/// Starts a GenServer registered globally as `name` (`{:global, name}`); a name taken
/// elsewhere gives `{:already_started, pid}` and the new server is stopped.
pub fn start_server(ctx: &mut Ctx, server: impl GenServer, name: Atom) -> Result<Pid, StartError> {
    let pid = gen_server::start_opts(ctx, server, gen_server::StartOpts::default())?;
    if register_name(ctx, name, pid).is_ok() {
        return Ok(pid);
    }
    let _ = gen_server::stop(ctx, pid, Term::atom("normal"), Some(Duration::from_secs(5)));
    match whereis_name(ctx.node(), name) {
        Some(holder) => Err(StartError::AlreadyStarted(holder)),
        None => Err(StartError::InitFailed(Term::atom("global_name_lost"))),
    }
}

/// Starts a typed server registered globally as `name` (`{:global, name}`) and
/// returns a handle that finds it by that name at each call. A name taken elsewhere
/// gives [`StartError::AlreadyStarted`] with the holder, and the new server is stopped.
pub fn start_typed<S: rt::Server>(
    ctx: &mut Ctx,
    server: S,
    name: impl Into<Atom>,
) -> Result<ServerRef<S>, StartError> {
    let name = name.into();
    let pid = rt::server::start_pid(ctx, server, gen_server::StartOpts::default())?;
    if register_name(ctx, name, pid).is_ok() {
        return Ok(ServerRef::global(name));
    }
    let _ = gen_server::stop(ctx, pid, Term::atom("normal"), Some(Duration::from_secs(5)));
    match whereis_name(ctx.node(), name) {
        Some(holder) => Err(StartError::AlreadyStarted(holder)),
        None => Err(StartError::InitFailed(Term::atom("global_name_lost"))),
    }
}

/// Calls the GenServer registered globally as `name`.
pub fn call(
    ctx: &mut Ctx,
    name: Atom,
    request: impl Into<Term>,
    timeout: Option<Duration>,
) -> Result<Term, gen_server::CallError> {
    let pid = whereis_name(ctx.node(), name).ok_or(gen_server::CallError::NoProc)?;
    gen_server::call(ctx, pid, request, timeout)
}

/// Casts to the GenServer registered globally as `name` (ignored if there is none).
pub fn cast(ctx: &Ctx, name: Atom, msg: impl Into<Term>) {
    if let Some(pid) = whereis_name(ctx.node(), name) {
        gen_server::cast(ctx.node(), pid, msg);
    }
}
