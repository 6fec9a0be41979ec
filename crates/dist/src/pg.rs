//! pg: process groups, eventually consistent across the cluster (OTP's `pg`).
//!
//! A *scope* is a process registered under the scope's name on every node that uses it
//! (the default scope `:pg` starts with [`dist::start`](super::start)). Each scope
//! process owns its node's local memberships and keeps a copy of every peer scope's:
//! - on start and on every `nodeup`, it sends `{:discover, self}` to the same scope
//!   on the other nodes; a scope that hears from an unknown peer monitors it, answers
//!   with `{:sync, self, local groups}` and discovers it back, so both sides sync;
//! - `join`/`leave` change the local groups and are broadcast (`{:join, self, group,
//!   pids}`); a peer applies them to its copy;
//! - local members are monitored: a member that dies leaves every group;
//! - a peer scope that goes (`DOWN`, e.g. `noconnection` when its node goes) takes its
//!   members with it;
//! - everything a scope sends to its peers goes `noconnect` (as OTP's pg does): a
//!   broadcast or sync prompted by something that arrived just before a `disconnect`
//!   never dials the node again.
//!
//! Races absorbed: a join broadcast that reaches a peer before its sync is overwritten
//! by the sync (which carries the full state, joins included); a peer seen twice (two
//! discovers crossing) is monitored once. No global lock: reads are local and may lag
//! behind a remote change by one message delay.
//!
//! Reads (`get_members`, `which_groups`) don't go through the scope process: it
//! publishes its view in a shared map that readers copy from.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::errors::PgError;
use crate::node::{Net, NodeMonitor};
use crate::rt::gen_server::{self, CallReply, GenServer, ReplyTo};
use crate::rt::{Ctx, Dest, Flow, Node, StartError};
use crate::term::{Atom, Pid, Ref, Term};

/// Memberships as readers see them, per scope.
#[derive(Default)]
pub struct ScopeView {
    /// group -> members on every node (a pid that joined twice appears twice).
    all: RwLock<BTreeMap<Term, Vec<Pid>>>,
    /// group -> members on this node.
    local: RwLock<BTreeMap<Term, Vec<Pid>>>,
}

/// The scopes of one node (a node extension).
#[derive(Default)]
pub struct Scopes(RwLock<HashMap<Atom, Arc<ScopeView>>>);

fn view(node: &Node, scope: Atom) -> Option<Arc<ScopeView>> {
    node.extension::<Scopes>()?.0.read().get(&scope).cloned()
}

struct Scope {
    name: Atom,
    view: Arc<ScopeView>,
    local: BTreeMap<Term, Vec<Pid>>,
    /// Monitors on local members: pid -> monitor ref.
    member_monitors: HashMap<Pid, Ref>,
    /// Peer scope processes and their groups.
    peers: HashMap<Pid, BTreeMap<Term, Vec<Pid>>>,
    /// Subscribers: ref -> (pid, group or None for the whole scope).
    subscribers: HashMap<Ref, (Pid, Option<Term>)>,
}

fn pids_term(pids: &[Pid]) -> Term {
    Term::list(pids.iter().map(|p| Term::Pid(*p)).collect::<Vec<_>>())
}

fn pids_of(t: &Term) -> Vec<Pid> {
    t.as_list()
        .unwrap_or(&[])
        .iter()
        .filter_map(|p| p.as_pid())
        .collect()
}

fn groups_term(groups: &BTreeMap<Term, Vec<Pid>>) -> Term {
    Term::map(groups.iter().map(|(g, ps)| (g.clone(), pids_term(ps))))
}

fn remove_each(from: &mut Vec<Pid>, pids: &[Pid]) {
    for p in pids {
        if let Some(i) = from.iter().position(|x| x == p) {
            from.remove(i);
        }
    }
}

impl Scope {
    /// Brings the readers' view of `group` in line (after a change to that group
    /// alone): a join or leave costs O(peers), not a copy of every group.
    fn publish_group(&self, group: &Term) {
        let local = self.local.get(group);
        let mut all: Vec<Pid> = local.cloned().unwrap_or_default();
        for groups in self.peers.values() {
            if let Some(ps) = groups.get(group) {
                all.extend(ps.iter().copied());
            }
        }
        {
            let mut view = self.view.all.write();
            if all.is_empty() {
                view.remove(group);
            } else {
                view.insert(group.clone(), all);
            }
        }
        let mut view = self.view.local.write();
        match local {
            Some(ms) => {
                view.insert(group.clone(), ms.clone());
            }
            None => {
                view.remove(group);
            }
        }
    }

    /// Rebuilds the readers' view of every group (after a change to many).
    fn publish(&self) {
        let mut all = self.local.clone();
        for groups in self.peers.values() {
            for (g, ps) in groups {
                all.entry(g.clone()).or_default().extend(ps.iter().copied());
            }
        }
        *self.view.all.write() = all;
        *self.view.local.write() = self.local.clone();
    }

    fn notify(&self, ctx: &Ctx, kind: &str, group: &Term, pids: &[Pid]) {
        if pids.is_empty() {
            return;
        }
        for (r, (pid, only)) in &self.subscribers {
            if only.as_ref().is_none_or(|g| g == group) {
                let msg = Term::tuple(vec![
                    Term::Ref(*r),
                    Term::atom(kind),
                    group.clone(),
                    pids_term(pids),
                ]);
                ctx.send(*pid, msg);
            }
        }
    }

    fn broadcast(&self, ctx: &Ctx, msg: Term) {
        for peer in self.peers.keys() {
            let _ = ctx.send_noconnect(*peer, msg.clone());
        }
    }

    fn discover_all(&self, ctx: &Ctx) {
        let Some(net) = Net::of(ctx.node()) else {
            return;
        };
        for node in net.nodes() {
            let _ = ctx.send_noconnect(
                Dest::NameAt(self.name, node),
                (Term::atom("discover"), ctx.pid()),
            );
        }
    }

    fn join(&mut self, ctx: &mut Ctx, group: Term, pids: Vec<Pid>) {
        for p in &pids {
            if !self.member_monitors.contains_key(p) {
                let r = ctx.monitor(*p);
                self.member_monitors.insert(*p, r);
            }
        }
        self.local
            .entry(group.clone())
            .or_default()
            .extend(pids.iter().copied());
        self.broadcast(
            ctx,
            Term::tuple(vec![
                Term::atom("join"),
                Term::Pid(ctx.pid()),
                group.clone(),
                pids_term(&pids),
            ]),
        );
        self.notify(ctx, "join", &group, &pids);
        self.publish_group(&group);
    }

    fn leave(&mut self, ctx: &mut Ctx, group: &Term, pids: &[Pid]) -> bool {
        let Some(members) = self.local.get_mut(group) else {
            return false;
        };
        let before = members.len();
        remove_each(members, pids);
        let left = before != members.len();
        if members.is_empty() {
            self.local.remove(group);
        }
        if left {
            for p in pids {
                if !self.local.values().any(|ms| ms.contains(p))
                    && let Some(r) = self.member_monitors.remove(p)
                {
                    ctx.demonitor_flush(r);
                }
            }
            self.broadcast(
                ctx,
                Term::tuple(vec![
                    Term::atom("leave"),
                    Term::Pid(ctx.pid()),
                    group.clone(),
                    pids_term(pids),
                ]),
            );
            self.notify(ctx, "leave", group, pids);
            self.publish_group(group);
        }
        left
    }
}

impl GenServer for Scope {
    fn init(&mut self, ctx: &mut Ctx) -> Result<(), Term> {
        if let Some(net) = Net::of(ctx.node()) {
            net.monitor_nodes(ctx.pid(), NodeMonitor::On);
        }
        self.discover_all(ctx);
        self.publish();
        Ok(())
    }

    fn handle_call(&mut self, ctx: &mut Ctx, request: Term, _from: ReplyTo) -> CallReply {
        let reply = match request.as_tuple() {
            Some([op, group, pids]) if op.is_atom("join") => {
                let pids = pids_of(pids);
                if pids.iter().any(|p| !ctx.node().is_local(*p)) {
                    Term::tuple(vec![Term::atom("error"), Term::atom("not_local")])
                } else {
                    self.join(ctx, group.clone(), pids);
                    Term::ok()
                }
            }
            Some([op, group, pids]) if op.is_atom("leave") => {
                if self.leave(ctx, group, &pids_of(pids)) {
                    Term::ok()
                } else {
                    Term::atom("not_joined")
                }
            }
            Some([op, Term::Pid(who), group]) if op.is_atom("monitor") => {
                let r = ctx.make_ref();
                let only = (!group.is_atom("$all")).then(|| group.clone());
                self.subscribers.insert(r, (*who, only.clone()));
                ctx.monitor(*who);
                let current = match &only {
                    Some(g) => pids_term(
                        self.view
                            .all
                            .read()
                            .get(g)
                            .map(|v| v.as_slice())
                            .unwrap_or(&[]),
                    ),
                    None => groups_term(&self.view.all.read()),
                };
                Term::tuple(vec![Term::Ref(r), current])
            }
            Some([op, Term::Ref(r)]) if op.is_atom("demonitor") => {
                Term::from(self.subscribers.remove(r).is_some())
            }
            _ => Term::tuple(vec![Term::atom("error"), Term::atom("badarg")]),
        };
        CallReply::Reply(reply)
    }

    fn handle_info(&mut self, ctx: &mut Ctx, msg: Term) -> Flow {
        if let Some([Term::Pid(peer)]) = msg.tagged("discover") {
            let peer = *peer;
            let _ = ctx.send_noconnect(
                peer,
                Term::tuple(vec![
                    Term::atom("sync"),
                    Term::Pid(ctx.pid()),
                    groups_term(&self.local),
                ]),
            );
            if let std::collections::hash_map::Entry::Vacant(e) = self.peers.entry(peer) {
                e.insert(BTreeMap::new());
                ctx.monitor_noconnect(peer);
                let _ = ctx.send_noconnect(peer, (Term::atom("discover"), ctx.pid()));
            }
        } else if let Some([Term::Pid(peer), Term::Map(groups)]) = msg.tagged("sync") {
            let new: BTreeMap<Term, Vec<Pid>> = groups
                .iter()
                .map(|(g, ps)| (g.clone(), pids_of(ps)))
                .collect();
            if !self.peers.contains_key(peer) {
                ctx.monitor_noconnect(*peer);
            }
            let old = self.peers.insert(*peer, new.clone()).unwrap_or_default();
            for (g, ps) in &old {
                let mut gone = ps.clone();
                remove_each(&mut gone, new.get(g).map(|v| v.as_slice()).unwrap_or(&[]));
                self.notify(ctx, "leave", g, &gone);
            }
            for (g, ps) in &new {
                let mut added = ps.clone();
                remove_each(&mut added, old.get(g).map(|v| v.as_slice()).unwrap_or(&[]));
                self.notify(ctx, "join", g, &added);
            }
            self.publish();
        } else if let Some([Term::Pid(peer), group, pids]) = msg.tagged("join") {
            if let Some(groups) = self.peers.get_mut(peer) {
                let pids = pids_of(pids);
                groups
                    .entry(group.clone())
                    .or_default()
                    .extend(pids.iter().copied());
                self.notify(ctx, "join", group, &pids);
                self.publish_group(group);
            }
        } else if let Some([Term::Pid(peer), group, pids]) = msg.tagged("leave") {
            if let Some(groups) = self.peers.get_mut(peer) {
                let pids = pids_of(pids);
                if let Some(ms) = groups.get_mut(group) {
                    remove_each(ms, &pids);
                    if ms.is_empty() {
                        groups.remove(group);
                    }
                }
                self.notify(ctx, "leave", group, &pids);
                self.publish_group(group);
            }
        } else if let Some([_, _, Term::Pid(pid), _]) = msg.tagged("DOWN") {
            let pid = *pid;
            if let Some(groups) = self.peers.remove(&pid) {
                for (g, ps) in &groups {
                    self.notify(ctx, "leave", g, ps);
                }
                self.publish();
            } else if self.member_monitors.remove(&pid).is_some() {
                let groups: Vec<Term> = self
                    .local
                    .iter()
                    .filter(|(_, ms)| ms.contains(&pid))
                    .map(|(g, _)| g.clone())
                    .collect();
                for g in groups {
                    let n = self
                        .local
                        .get(&g)
                        .map(|ms| ms.iter().filter(|p| **p == pid).count())
                        .unwrap_or(0);
                    self.leave(ctx, &g, &vec![pid; n]);
                }
            } else {
                self.subscribers.retain(|_, (p, _)| *p != pid);
            }
        } else if let Some([Term::Atom(node)]) = msg.tagged("nodeup") {
            let _ = ctx.send_noconnect(
                Dest::NameAt(self.name, *node),
                (Term::atom("discover"), ctx.pid()),
            );
        }
        Flow::Continue
    }

    fn terminate(&mut self, ctx: &mut Ctx, _reason: &Term) {
        if let Some(scopes) = ctx.node().extension::<Scopes>() {
            scopes.0.write().remove(&self.name);
        }
    }
}

/// The default scope.
pub fn default_scope() -> Atom {
    Atom::new("pg")
}

/// Starts scope `scope` on this node (registered under that name).
pub fn start_scope(node: &Node, scope: impl Into<Atom>) -> Result<Pid, StartError> {
    let scope = scope.into();
    // Already running: leave its view alone (readers use it).
    if let Some(pid) = node.whereis(scope) {
        return Err(StartError::AlreadyStarted(pid));
    }
    let scopes = match node.extension::<Scopes>() {
        Some(s) => s,
        None => {
            let s = Arc::new(Scopes::default());
            node.set_extension(s.clone());
            s
        }
    };
    let v = Arc::new(ScopeView::default());
    scopes.0.write().insert(scope, v.clone());
    let server = Scope {
        name: scope,
        view: v,
        local: BTreeMap::new(),
        member_monitors: HashMap::new(),
        peers: HashMap::new(),
        subscribers: HashMap::new(),
    };
    // The scope server never waits (it answers, casts and monitors), so it may run
    // on the thread of the process that calls it (see `StartOpts::never_blocks`).
    gen_server::start_from(
        node,
        server,
        gen_server::StartOpts {
            name: Some(scope),
            never_blocks: true,
            ..gen_server::StartOpts::default()
        },
    )
}

fn call(ctx: &mut Ctx, scope: Atom, req: Term) -> Result<Term, PgError> {
    Ok(gen_server::call(
        ctx,
        scope,
        req,
        Some(Duration::from_secs(10)),
    )?)
}

/// Joins local `pids` to `group` (joining twice counts twice).
pub fn join(
    ctx: &mut Ctx,
    scope: impl Into<Atom>,
    group: impl Into<Term>,
    pids: &[Pid],
) -> Result<(), PgError> {
    let scope = scope.into();
    if let Some(&remote) = pids.iter().find(|p| !ctx.node().is_local(**p)) {
        return Err(PgError::NotLocal(remote));
    }
    let r = call(
        ctx,
        scope,
        Term::tuple(vec![Term::atom("join"), group.into(), pids_term(pids)]),
    )?;
    if r == Term::ok() {
        Ok(())
    } else {
        Err(PgError::BadReply(r))
    }
}

/// Removes `pids` from `group`; `Ok(false)` if none of them was a member.
pub fn leave(
    ctx: &mut Ctx,
    scope: impl Into<Atom>,
    group: impl Into<Term>,
    pids: &[Pid],
) -> Result<bool, PgError> {
    let scope = scope.into();
    let r = call(
        ctx,
        scope,
        Term::tuple(vec![Term::atom("leave"), group.into(), pids_term(pids)]),
    )?;
    Ok(r == Term::ok())
}

/// Members of `group` on every node (a local read).
pub fn get_members(node: &Node, scope: impl Into<Atom>, group: &Term) -> Vec<Pid> {
    let scope = scope.into();
    view(node, scope)
        .and_then(|v| v.all.read().get(group).cloned())
        .unwrap_or_default()
}

/// Members of `group` on this node.
pub fn get_local_members(node: &Node, scope: impl Into<Atom>, group: &Term) -> Vec<Pid> {
    let scope = scope.into();
    view(node, scope)
        .and_then(|v| v.local.read().get(group).cloned())
        .unwrap_or_default()
}

/// Every group with members.
pub fn which_groups(node: &Node, scope: impl Into<Atom>) -> Vec<Term> {
    let scope = scope.into();
    view(node, scope)
        .map(|v| v.all.read().keys().cloned().collect())
        .unwrap_or_default()
}

/// Subscribes to every join and leave in the scope: returns the reference the
/// notifications carry (`{ref, :join | :leave, group, pids}`) and the current groups.
pub fn monitor_scope(ctx: &mut Ctx, scope: impl Into<Atom>) -> Result<(Ref, Term), PgError> {
    let scope = scope.into();
    let me = ctx.pid();
    let r = call(
        ctx,
        scope,
        Term::tuple(vec![
            Term::atom("monitor"),
            Term::Pid(me),
            Term::atom("$all"),
        ]),
    )?;
    match r.as_tuple() {
        Some([Term::Ref(r), current]) => Ok((*r, current.clone())),
        _ => Err(PgError::BadReply(r)),
    }
}

/// Subscribes to joins and leaves of one group: the reference and the current members.
pub fn monitor(
    ctx: &mut Ctx,
    scope: impl Into<Atom>,
    group: impl Into<Term>,
) -> Result<(Ref, Vec<Pid>), PgError> {
    let scope = scope.into();
    let me = ctx.pid();
    let r = call(
        ctx,
        scope,
        Term::tuple(vec![Term::atom("monitor"), Term::Pid(me), group.into()]),
    )?;
    match r.as_tuple() {
        Some([Term::Ref(r), current]) => Ok((*r, pids_of(current))),
        _ => Err(PgError::BadReply(r)),
    }
}

/// Ends a subscription.
pub fn demonitor(ctx: &mut Ctx, scope: impl Into<Atom>, reference: Ref) -> Result<bool, PgError> {
    let scope = scope.into();
    Ok(call(
        ctx,
        scope,
        Term::tuple(vec![Term::atom("demonitor"), Term::Ref(reference)]),
    )? == Term::from(true))
}
