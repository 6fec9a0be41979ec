//! global: cluster-wide names and locks (OTP's `global`, simplified; see the notes).
//!
//! Every node runs a name server, registered locally as `:global_name_server`. The
//! servers find each other like pg scopes (`{:discover, pid}` on start and on every
//! `nodeup`, answered with `{:sync, pid, names}`), so each knows its peers' server pids
//! and holds a full copy of the name table: [`whereis_name`] is a local read.
//!
//! **Locks.** A lock id is OTP's `{ResourceId, LockRequesterId}` ([`LockId`]): a
//! resource held under one requester id refuses every other, and is shared by the
//! processes that ask with the same one. [`set_lock`] asks the servers of every node
//! connected now ([`set_lock_on`]: of the nodes given) at once, with the call
//! `{:lock, resource, requester, pid}`; a server grants it (`true`) if the resource is
//! free or held under the same requester, adding `pid` to its holders. If any refuses,
//! the granted ones are given back (`{:unlock, resource, requester, pid}`, a message)
//! and the whole attempt is retried after a random back-off, as [`LockWait`] allows, so
//! two requesters can't deadlock and never both hold it. A server monitors each holder:
//! a holder that dies (or whose node goes) lets go of its locks there; the last holder
//! to go frees the resource.
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
//! **Names** are any term, as in OTP (`:counter`, `{:user, "alice"}`: [`GlobalName`]).
//! [`register_name`] takes the lock `{{:global, name}, pid}` on every known node,
//! checks the name is free everywhere (its own copy is current: every registration
//! happens under that same lock), and tells every server, which releases the lock as
//! it registers (`{:then_unlock, resource, requester, pid, update}` with the update
//! `{:register, name, pid, resolver}`, `{:reregister, …}` or `{:unregister, name}`: two
//! rounds in all); so under
//! concurrent registration from any number of nodes exactly one gets `yes`, and every
//! node has the name when `yes` returns. Servers
//! monitor registered pids: a name goes when its process dies or its node goes.
//!
//! **Overlapping partitions** are prevented as in OTP 25 (on by default;
//! `NetConfig::prevent_overlapping_partitions`): a node that loses a connection tells
//! the others, which cut their own links to the lost node, so each partition stays
//! fully connected and a name has one holder in it (`global/partitions.rs`).
//!
//! **Partitions.** When two servers sync and both have a name for different pids, both
//! apply the same deterministic rule: the registration of the smaller pid (in term
//! order, i.e. on the node with the smaller name) stays and, with the default resolver,
//! the other process is killed (as OTP's `random_exit_name`); with `notify_all_name`
//! both lose the name and get `{:global_name_conflict, name, other_pid}`; with a user
//! resolver (a registered `module:function/3`) its answer stands. The resolver of the
//! smaller pid's registration decides.

mod locks;
mod partitions;
mod server;

use std::time::Duration;

use crate::errors::{GlobalRegisterError, SyncError};
use crate::node::Net;
use crate::rt::gen_server::{self, GenServer};
use crate::rt::{self, Ctx, Node, SendError, ServerRef, StartError};
use crate::term::{Atom, Pid, Term};

pub use crate::rt::GlobalName;
pub use locks::{
    LockId, LockNodes, LockWait, del_lock, del_lock_on, set_lock, set_lock_on, trans, with_lock,
};
pub use server::{Names, Resolver};

use locks::servers_on;
use server::{Peers, SERVER};

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
    let view = std::sync::Arc::new(Names::default());
    node.set_extension(view.clone());
    // `{:global, name}` destinations (sends, calls, typed handles) resolve here.
    node.set_global_names(view.clone());
    let peer_view = std::sync::Arc::new(Peers::default());
    node.set_extension(peer_view.clone());
    // The name server never waits (a resolver it runs is caught if it tries), so it
    // may run on the thread of the process that calls it (`StartOpts::never_blocks`).
    gen_server::start_from(
        node,
        server::Server::new(view, peer_view),
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

/// The pid registered as `name` anywhere in the cluster (a local read): an atom
/// (`whereis_name(node, "counter")`) or any term (`term!({:user, "alice"})`).
pub fn whereis_name(node: &Node, name: impl Into<GlobalName>) -> Option<Pid> {
    node.extension::<Names>()?.whereis(&name.into().0)
}

/// Every globally registered name, in term order.
pub fn registered_names(node: &Node) -> Vec<Term> {
    let mut v = node
        .extension::<Names>()
        .map(|n| n.all())
        .unwrap_or_default();
    v.sort();
    v
}

/// Registers `pid` as `name` (any term) cluster-wide (OTP's `yes`), unless the name is
/// taken or the pid has a global name already (`no`).
pub fn register_name(
    ctx: &mut Ctx,
    name: impl Into<GlobalName>,
    pid: Pid,
) -> Result<(), GlobalRegisterError> {
    register_name_with(ctx, name, pid, Resolver::ExitOne)
}

/// [`register_name`] with a conflict resolver for partition heals.
pub fn register_name_with(
    ctx: &mut Ctx,
    name: impl Into<GlobalName>,
    pid: Pid,
    resolver: Resolver,
) -> Result<(), GlobalRegisterError> {
    let name = name.into().0;
    let mut refused = GlobalRegisterError::NameTaken;
    let done = update_name(ctx, &name, |ctx| {
        // As OTP: a name that is taken, or a pid that already has a name, gives `no`.
        let (name_taken, pid_named) = ctx
            .node()
            .extension::<Names>()
            .map_or((false, false), |n| n.taken(&name, pid));
        if name_taken || pid_named {
            if !name_taken {
                refused = GlobalRegisterError::AlreadyNamed;
            }
            return None;
        }
        Some(Term::tuple(vec![
            Term::atom("register"),
            name.clone(),
            Term::Pid(pid),
            resolver.to_term(),
        ]))
    });
    if done { Ok(()) } else { Err(refused) }
}

/// Removes `name` cluster-wide.
pub fn unregister_name(ctx: &mut Ctx, name: impl Into<GlobalName>) {
    let name = name.into().0;
    update_name(ctx, &name, |_| {
        Some(Term::tuple(vec![Term::atom("unregister"), name.clone()]))
    });
}

/// Moves `name` to `pid` (registering it if free), cluster-wide.
pub fn re_register_name(ctx: &mut Ctx, name: impl Into<GlobalName>, pid: Pid) {
    let name = name.into().0;
    update_name(ctx, &name, |_| {
        Some(Term::tuple(vec![
            Term::atom("reregister"),
            name.clone(),
            Term::Pid(pid),
            Resolver::ExitOne.to_term(),
        ]))
    });
}

/// Under the lock `{{:global, name}, self()}` on every known node (waiting for it as
/// long as it takes), asks every server for the update `update` gives (`None`: none,
/// say false), each server releasing the lock as it applies it: two rounds in all, the
/// lock and the update. Every server has applied it when this returns true.
fn update_name(ctx: &mut Ctx, name: &Term, update: impl FnOnce(&mut Ctx) -> Option<Term>) -> bool {
    let id = LockId::own(ctx, Term::tuple(vec![Term::atom("global"), name.clone()]));
    if set_lock(ctx, id.clone(), LockWait::Infinity).is_err() {
        return false;
    }
    let Some(request) = update(ctx) else {
        del_lock(ctx, id);
        return false;
    };
    let request = Term::tuple(vec![
        Term::atom("then_unlock"),
        id.resource,
        id.requester,
        Term::Pid(ctx.pid()),
        request,
    ]);
    let all = servers_on(ctx, &LockNodes::All);
    // A server that does not answer is gone (its lock went with our monitor of it) or
    // stuck (it applies the update and the unlock when it comes to them).
    let _ = gen_server::multi_call(ctx, &all, &request, Some(Duration::from_secs(10)));
    // A server that synced with ours after `all` was taken (a node that had just
    // connected) may have been sent our names before the update reached ours: ours
    // sends them again, now with it (a `discover` on that server's behalf). Without
    // this a name registered right after a connect could stay unknown to that node.
    if let Some(ours) = ctx.node().whereis(Atom::new(SERVER)) {
        let now = servers_on(ctx, &LockNodes::All);
        for late in now.into_iter().filter(|s| !all.contains(s)) {
            let _ = ctx.send_noconnect(ours, (Term::atom("discover"), late));
        }
    }
    true
}

/// Sends `msg` to the process registered as `name`; an unregistered name is an error
/// (OTP exits `{:badarg, {name, msg}}`).
pub fn send(
    ctx: &Ctx,
    name: impl Into<GlobalName>,
    msg: impl Into<Term>,
) -> Result<Pid, SendError> {
    let name = name.into().0;
    let pid = whereis_name(ctx.node(), &name).ok_or(SendError::NotRegisteredGlobally(name))?;
    ctx.send(pid, msg);
    Ok(pid)
}

/// Registers `pid` as `name` for [`start_server`] and [`start_typed`]: the holder when
/// the name is taken, and then `pid` is stopped.
fn claim(ctx: &mut Ctx, name: &Term, pid: Pid) -> Result<(), StartError> {
    if register_name(ctx, name, pid).is_ok() {
        return Ok(());
    }
    let _ = gen_server::stop(ctx, pid, Term::atom("normal"), Some(Duration::from_secs(5)));
    match whereis_name(ctx.node(), name) {
        Some(holder) => Err(StartError::AlreadyStarted(holder)),
        None => Err(StartError::InitFailed(Term::atom("global_name_lost"))),
    }
}

/// Starts a GenServer registered globally as `name` (`{:global, name}`); a name taken
/// elsewhere gives `{:already_started, pid}` and the new server is stopped.
pub fn start_server(
    ctx: &mut Ctx,
    server: impl GenServer,
    name: impl Into<GlobalName>,
) -> Result<Pid, StartError> {
    let name = name.into().0;
    let pid = gen_server::start_opts(ctx, server, gen_server::StartOpts::default())?;
    claim(ctx, &name, pid).map(|()| pid)
}

/// Starts a typed server registered globally as `name` (`{:global, name}`) and
/// returns a handle that finds it by that name at each call. A name taken elsewhere
/// gives [`StartError::AlreadyStarted`] with the holder, and the new server is stopped.
pub fn start_typed<S: rt::Server>(
    ctx: &mut Ctx,
    server: S,
    name: impl Into<GlobalName>,
) -> Result<ServerRef<S>, StartError> {
    let name = name.into().0;
    let pid = rt::server::start_pid(ctx, server, gen_server::StartOpts::default())?;
    claim(ctx, &name, pid).map(|()| ServerRef::global(name))
}

/// Calls the GenServer registered globally as `name`.
pub fn call(
    ctx: &mut Ctx,
    name: impl Into<GlobalName>,
    request: impl Into<Term>,
    timeout: Option<Duration>,
) -> Result<Term, gen_server::CallError> {
    let pid = whereis_name(ctx.node(), name).ok_or(gen_server::CallError::NoProc)?;
    gen_server::call(ctx, pid, request, timeout)
}

/// Casts to the GenServer registered globally as `name` (ignored if there is none).
pub fn cast(ctx: &Ctx, name: impl Into<GlobalName>, msg: impl Into<Term>) {
    if let Some(pid) = whereis_name(ctx.node(), name) {
        gen_server::cast(ctx.node(), pid, msg);
    }
}
