//! The name server each node runs (`:global_name_server`): its state, and the messages
//! of the protocol in the module docs of [`global`](super). Every request is answered
//! at once (a lock granted or refused, an update applied), so the server never waits.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::node::{Net, NodeMonitor};
use crate::rt::gen_server::{self, CallReply, GenServer, ReplyTo};
use crate::rt::{self, Ctx, Dest, Flow, TimerRef};
use crate::term::{Atom, Pid, Ref, Term};

use super::partitions::Partitions;

/// The name the server is registered under on every node.
pub(super) const SERVER: &str = "global_name_server";

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
    pub(super) fn to_term(self) -> Term {
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

/// The name table as readers see it (a node extension): each name's pid, and how many
/// names each pid has (so "this pid has a name already" is one lookup, not a scan).
#[derive(Default)]
pub struct Names(RwLock<NameView>);

#[derive(Default)]
struct NameView {
    pids: HashMap<Term, Pid>,
    names_of: HashMap<Pid, u32>,
}

impl NameView {
    fn set(&mut self, name: &Term, pid: Option<Pid>) {
        let old = match pid {
            Some(p) => self.pids.insert(name.clone(), p),
            None => self.pids.remove(name),
        };
        if old == pid {
            return;
        }
        if let Some(old) = old
            && let Entry::Occupied(mut e) = self.names_of.entry(old)
        {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
        if let Some(p) = pid {
            *self.names_of.entry(p).or_default() += 1;
        }
    }
}

impl Names {
    pub(super) fn whereis(&self, name: &Term) -> Option<Pid> {
        self.0.read().pids.get(name).copied()
    }
    /// Whether `name` is taken, or else whether `pid` has a global name already.
    pub(super) fn taken(&self, name: &Term, pid: Pid) -> (bool, bool) {
        let view = self.0.read();
        (
            view.pids.contains_key(name),
            view.names_of.contains_key(&pid),
        )
    }
    pub(super) fn all(&self) -> Vec<Term> {
        self.0.read().pids.keys().cloned().collect()
    }
}

impl rt::GlobalNames for Names {
    fn whereis(&self, name: &Term) -> Option<Pid> {
        Names::whereis(self, name)
    }
}

/// The peer servers this node's server knows (a node extension, so a registering
/// process reads it without a call to the server).
#[derive(Default)]
pub(super) struct Peers(pub(super) RwLock<Vec<Pid>>);

/// A lock on one resource: its requester id and the processes holding it under that
/// id (OTP's `{ResourceId, LockRequesterId}`: processes with the same requester id
/// share the lock; any other requester is refused until the last holder releases it).
struct Lock {
    requester: Term,
    holders: Vec<Pid>,
}

pub(super) struct Server {
    view: Arc<Names>,
    peer_view: Arc<Peers>,
    names: HashMap<Term, (Pid, Resolver)>,
    watched: HashMap<Pid, Ref>,
    locks: HashMap<Term, Lock>,
    peers: HashMap<Pid, Atom>,
    /// The peers whose names this server holds: their `{:sync, pid, names}` came.
    synced: HashSet<Pid>,
    /// `{:sync, nodes, timeout_ms}` requests not answered yet (see the module docs).
    syncs: Vec<PendingSync>,
    /// Keeping partitions fully connected (`partitions.rs`).
    partitions: Partitions,
}

/// A sync request waiting for a synced server on each of `nodes` (or for the node to
/// go).
struct PendingSync {
    from: ReplyTo,
    nodes: Vec<Atom>,
    /// Drops the request when its caller has given up.
    expiry: TimerRef,
}

fn names_term(names: &HashMap<Term, (Pid, Resolver)>) -> Term {
    Term::list(
        names
            .iter()
            .map(|(n, (p, r))| Term::tuple(vec![n.clone(), Term::Pid(*p), r.to_term()]))
            .collect::<Vec<_>>(),
    )
}

impl Server {
    pub(super) fn new(view: Arc<Names>, peer_view: Arc<Peers>) -> Server {
        Server {
            view,
            peer_view,
            names: HashMap::new(),
            watched: HashMap::new(),
            locks: HashMap::new(),
            peers: HashMap::new(),
            synced: HashSet::new(),
            syncs: Vec::new(),
            partitions: Partitions::default(),
        }
    }

    /// The peer servers, for a multicast.
    fn peer_servers(&self) -> Vec<Pid> {
        self.peers.keys().copied().collect()
    }

    /// Brings the readers' view of `name` in line with the table (after a change to
    /// that name alone: a registration costs O(1), not a copy of every name).
    fn publish_name(&self, name: &Term) {
        let pid = self.names.get(name).map(|(p, _)| *p);
        self.view.0.write().set(name, pid);
    }

    fn publish_peers(&self) {
        *self.peer_view.0.write() = self.peers.keys().copied().collect();
    }

    fn watch(&mut self, ctx: &mut Ctx, pid: Pid) {
        if let Entry::Vacant(e) = self.watched.entry(pid) {
            e.insert(ctx.monitor(pid));
        }
    }

    fn add(&mut self, ctx: &mut Ctx, name: Term, pid: Pid, resolver: Resolver) {
        if let Some((other, other_resolver)) = self.names.get(&name).copied() {
            if other == pid {
                return;
            }
            self.resolve_conflict(ctx, &name, (pid, resolver), (other, other_resolver));
        } else {
            self.names.insert(name.clone(), (pid, resolver));
        }
        self.watch(ctx, pid);
        self.publish_name(&name);
    }

    /// `name` held by `theirs` here and by `ours` on a peer (only after a partition):
    /// the same rule on every node, the smaller pid's registration's resolver deciding.
    fn resolve_conflict(
        &mut self,
        ctx: &mut Ctx,
        name: &Term,
        (pid, resolver): (Pid, Resolver),
        (other, other_resolver): (Pid, Resolver),
    ) {
        let (keep, lose) = if pid < other {
            (pid, other)
        } else {
            (other, pid)
        };
        let rule = if pid < other {
            resolver
        } else {
            other_resolver
        };
        match rule {
            Resolver::Function(m, f) => match run_resolver(ctx, m, f, name, keep, lose) {
                Some(p) if p == keep || p == lose => {
                    self.names.insert(name.clone(), (p, rule));
                }
                _ => {
                    self.names.remove(name);
                }
            },
            Resolver::NotifyAll => {
                self.names.remove(name);
                for (p, o) in [(pid, other), (other, pid)] {
                    if ctx.node().is_local(p) {
                        ctx.send(
                            p,
                            Term::tuple(vec![
                                Term::atom("global_name_conflict"),
                                name.clone(),
                                Term::Pid(o),
                            ]),
                        );
                    }
                }
            }
            Resolver::ExitOne => {
                self.names.insert(name.clone(), (keep, resolver));
                if ctx.node().is_local(lose) {
                    log::info!(
                        "global: name {name} registered twice; keeping {keep:?}, killing {lose:?}"
                    );
                    ctx.exit_pid(lose, Term::atom("kill"));
                }
            }
        }
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
            return CallReply::Reply(pids_term(servers));
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
                    gen_server::reply(ctx.node(), done.from, pids_term(servers));
                }
                None => i += 1,
            }
        }
    }

    /// `{:lock, resource, requester, pid}`: granted if the resource is free or held
    /// under the same requester id (the pid joins its holders).
    fn lock(&mut self, ctx: &mut Ctx, resource: &Term, requester: &Term, pid: Pid) -> bool {
        match self.locks.get_mut(resource) {
            Some(lock) if lock.requester != *requester => return false,
            Some(lock) => {
                if !lock.holders.contains(&pid) {
                    lock.holders.push(pid);
                }
            }
            None => {
                self.locks.insert(
                    resource.clone(),
                    Lock {
                        requester: requester.clone(),
                        holders: vec![pid],
                    },
                );
            }
        }
        self.watch(ctx, pid);
        true
    }

    /// `{:unlock, resource, requester, pid}`: `pid` stops holding the lock; the last
    /// holder to go frees the resource.
    fn unlock(&mut self, resource: &Term, requester: &Term, pid: Pid) {
        if let Entry::Occupied(mut e) = self.locks.entry(resource.clone())
            && e.get().requester == *requester
        {
            e.get_mut().holders.retain(|h| *h != pid);
            if e.get().holders.is_empty() {
                e.remove();
            }
        }
    }

    /// A request to this server (a lock or a name update), answered.
    fn apply(&mut self, ctx: &mut Ctx, request: &Term) -> Term {
        match request.as_tuple() {
            Some([op, res, req, Term::Pid(pid)]) if op.is_atom("lock") => {
                Term::from(self.lock(ctx, res, req, *pid))
            }
            Some([op, name, Term::Pid(pid), resolver]) if op.is_atom("register") => {
                self.add(ctx, name.clone(), *pid, Resolver::from_term(resolver));
                Term::ok()
            }
            Some([op, name, Term::Pid(pid), resolver]) if op.is_atom("reregister") => {
                self.names
                    .insert(name.clone(), (*pid, Resolver::from_term(resolver)));
                self.watch(ctx, *pid);
                self.publish_name(name);
                Term::ok()
            }
            Some([op, name]) if op.is_atom("unregister") => {
                self.names.remove(name);
                self.publish_name(name);
                Term::ok()
            }
            // An update made under a lock, which it then releases (one round instead
            // of an update round and an unlock round).
            Some([op, res, req, Term::Pid(pid), update]) if op.is_atom("then_unlock") => {
                let reply = self.apply(ctx, update);
                self.unlock(res, req, *pid);
                reply
            }
            _ => Term::atom("badarg"),
        }
    }

    /// A process this server watched is gone: its names and its share of locks go.
    fn down(&mut self, pid: Pid) {
        self.synced.remove(&pid);
        if self.peers.remove(&pid).is_some() {
            self.publish_peers();
        }
        self.watched.remove(&pid);
        let gone: Vec<Term> = self
            .names
            .iter()
            .filter(|(_, (p, _))| *p == pid)
            .map(|(n, _)| n.clone())
            .collect();
        for name in gone {
            self.names.remove(&name);
            self.publish_name(&name);
        }
        self.locks.retain(|_, lock| {
            lock.holders.retain(|h| *h != pid);
            !lock.holders.is_empty()
        });
    }

    fn discovered(&mut self, ctx: &mut Ctx, peer: Pid) {
        let _ = ctx.send_noconnect(
            peer,
            Term::tuple(vec![
                Term::atom("sync"),
                Term::Pid(ctx.pid()),
                names_term(&self.names),
            ]),
        );
        if let Entry::Vacant(e) = self.peers.entry(peer) {
            e.insert(peer.node());
            self.publish_peers();
            ctx.monitor_noconnect(peer);
            let _ = ctx.send_noconnect(peer, (Term::atom("discover"), ctx.pid()));
        }
    }

    fn synced_with(&mut self, ctx: &mut Ctx, peer: Pid, names: &Term) {
        if let Entry::Vacant(e) = self.peers.entry(peer) {
            e.insert(peer.node());
            self.publish_peers();
            ctx.monitor_noconnect(peer);
        }
        for entry in names.as_list().unwrap_or(&[]) {
            if let Some([n, Term::Pid(p), r]) = entry.as_tuple() {
                self.add(ctx, n.clone(), *p, Resolver::from_term(r));
            }
        }
        self.synced.insert(peer);
    }
}

/// Runs the user resolver `m:f/3` on a conflict; `None` when it is not registered or
/// fails. It runs in this server, which never waits: one that panics (or tries to wait)
/// keeps neither, as one that answers something else.
fn run_resolver(ctx: &mut Ctx, m: Atom, f: Atom, name: &Term, keep: Pid, lose: Pid) -> Option<Pid> {
    let Some(fun) = ctx.node().functions().lookup(m, f, 3) else {
        log::warn!("global: resolver {m}:{f}/3 is not registered; keeping neither for {name}");
        return None;
    };
    let args = vec![name.clone(), Term::Pid(keep), Term::Pid(lose)];
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fun(ctx, args)))
        .unwrap_or_else(|p| {
            log::warn!(
                "global: resolver {m}:{f}/3 failed for {name}: {}",
                crate::rt::unwind_reason(p)
            );
            Term::atom("none")
        })
        .as_pid()
}

fn pids_term(pids: Vec<Pid>) -> Term {
    Term::list(pids.into_iter().map(Term::Pid).collect::<Vec<_>>())
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
        if let Some([res, req, Term::Pid(pid)]) = msg.tagged("unlock") {
            self.unlock(res, req, *pid);
        } else if let Some([Term::Pid(peer)]) = msg.tagged("discover") {
            self.discovered(ctx, *peer);
        } else if let Some([Term::Pid(peer), names]) = msg.tagged("sync") {
            self.synced_with(ctx, *peer, names);
        } else if let Some([Term::Ref(tag)]) = msg.tagged("sync_expired") {
            // Its caller has given up: no reply (it would be dropped anyway).
            self.syncs.retain(|s| s.from.tag != *tag);
        } else if let Some([_, _, Term::Pid(pid), _]) = msg.tagged("DOWN") {
            self.down(*pid);
        } else if let Some([Term::Atom(node)]) = msg.tagged("nodeup") {
            self.partitions.nodeup(*node);
            let _ = ctx.send_noconnect(
                Dest::NameAt(Atom::new(SERVER), *node),
                (Term::atom("discover"), ctx.pid()),
            );
        } else if let Some([Term::Atom(node)]) = msg.tagged("nodedown") {
            let peers = self.peer_servers();
            self.partitions.nodedown(ctx, *node, &peers);
        } else if let Some([Term::Pid(reporter), Term::Int(op), Term::Atom(lost)]) =
            msg.tagged("lost_connection")
        {
            let peers = self.peer_servers();
            self.partitions
                .lost_connection(ctx, *reporter, *op, *lost, &peers);
        } else if let Some([Term::Atom(node)]) = msg.tagged("remove_connection") {
            self.partitions.remove_connection(ctx, *node);
        } else if let Some([Term::Atom(node)]) = msg.tagged("remove_overdue") {
            self.partitions.remove_overdue(ctx, *node);
        }
        // A sync, a DOWN or a nodedown may answer a kept sync request.
        if !self.syncs.is_empty() {
            self.answer_syncs(ctx);
        }
        Flow::Continue
    }
}
