//! global's locks (OTP's `global:set_lock/1,2,3`, `del_lock`, `trans`): see the module
//! docs of [`global`](super) for the protocol.

use std::time::{Duration, Instant};

use crate::errors::LockError;
use crate::node::Net;
use crate::rt::Ctx;
use crate::rt::gen_server;
use crate::term::{Atom, Pid, Term};

use super::server::{Peers, SERVER};

/// A lock's id, OTP's `{ResourceId, LockRequesterId}`: the lock is on `resource`;
/// processes that ask with the same `requester` share it (each holds it until it
/// releases it or dies), and every other requester is refused until the last of them
/// has let go. The chapter's `LockManager` uses `{resource, self()}`: one holder each.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LockId {
    /// What is locked.
    pub resource: Term,
    /// Who holds it: processes using the same requester id share the lock.
    pub requester: Term,
}

impl LockId {
    /// `{resource, requester}`.
    pub fn new(resource: impl Into<Term>, requester: impl Into<Term>) -> LockId {
        LockId {
            resource: resource.into(),
            requester: requester.into(),
        }
    }

    /// `{resource, self()}`: the calling process alone holds it.
    pub fn own(ctx: &Ctx, resource: impl Into<Term>) -> LockId {
        LockId::new(resource, ctx.pid())
    }

    /// The id from its term `{resource, requester}` (what `:global.set_lock/1` takes);
    /// `None` for anything but a 2-tuple, which OTP refuses with a `function_clause`.
    pub fn from_term(t: &Term) -> Option<LockId> {
        match t.as_tuple() {
            Some([resource, requester]) => Some(LockId::new(resource.clone(), requester.clone())),
            _ => None,
        }
    }
}

impl<R: Into<Term>, Q: Into<Term>> From<(R, Q)> for LockId {
    fn from((resource, requester): (R, Q)) -> LockId {
        LockId::new(resource, requester)
    }
}

impl From<LockId> for Term {
    fn from(id: LockId) -> Term {
        Term::tuple(vec![id.resource, id.requester])
    }
}

/// How long [`set_lock`] keeps trying while the lock is held by another requester.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockWait {
    /// OTP's `Retries`: this many more attempts after the first, each after a random
    /// sleep (`Retries(0)`: one attempt).
    Retries(u32),
    /// OTP's `infinity` (its default): until the lock is had.
    Infinity,
    /// Until this much time has passed (the sleeps between attempts are cut to what is
    /// left, so the answer comes within a few milliseconds of it).
    Timeout(Duration),
}

impl From<u32> for LockWait {
    fn from(retries: u32) -> LockWait {
        LockWait::Retries(retries)
    }
}

impl From<Duration> for LockWait {
    fn from(timeout: Duration) -> LockWait {
        LockWait::Timeout(timeout)
    }
}

/// The nodes a lock is taken on: every connected node at each attempt (OTP's default,
/// `[node() | nodes()]`), or just these (OTP's `Nodes` argument: two requesters whose
/// node sets don't overlap both get it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LockNodes {
    /// This node and every node connected now.
    #[default]
    All,
    /// These nodes (those without a name server, or not connected, are skipped).
    Only(Vec<Atom>),
}

impl From<Vec<Atom>> for LockNodes {
    fn from(nodes: Vec<Atom>) -> LockNodes {
        LockNodes::Only(nodes)
    }
}

impl From<&[Atom]> for LockNodes {
    fn from(nodes: &[Atom]) -> LockNodes {
        LockNodes::Only(nodes.to_vec())
    }
}

/// The name servers on `nodes` that this node knows and is connected to now, sorted.
pub(super) fn servers_on(ctx: &Ctx, nodes: &LockNodes) -> Vec<Pid> {
    let me = ctx.node().name();
    let wanted = |node: Atom| match nodes {
        LockNodes::All => true,
        LockNodes::Only(list) => list.contains(&node),
    };
    let mut all = Vec::new();
    if wanted(me)
        && let Some(ours) = ctx.node().whereis(Atom::new(SERVER))
    {
        all.push(ours);
    }
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
                .filter(|p| connected.contains(&p.node()) && wanted(p.node())),
        );
    }
    all.sort();
    all
}

/// Asks every server for the lock at once (each answers at once: granted or not); any
/// refusal gives back what was granted, so two requesters never both hold it, and the
/// loser retries after a random backoff.
fn try_lock(ctx: &mut Ctx, servers: &[Pid], id: &LockId, holder: Pid) -> bool {
    let req = Term::tuple(vec![
        Term::atom("lock"),
        id.resource.clone(),
        id.requester.clone(),
        Term::Pid(holder),
    ]);
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
        send_unlock(ctx, g, id, holder);
    }
    false
}

fn send_unlock(ctx: &Ctx, server: Pid, id: &LockId, holder: Pid) {
    let _ = ctx.send_noconnect(
        server,
        Term::tuple(vec![
            Term::atom("unlock"),
            id.resource.clone(),
            id.requester.clone(),
            Term::Pid(holder),
        ]),
    );
}

/// The sleep before attempt `attempt + 1`: random, up to 2^attempt ms (at most 256).
/// OTP's starts at 250 ms and grows to 8 s; a lock is usually free again long before.
fn backoff(attempt: u32) -> Duration {
    let max_ms = 1u64 << attempt.min(8);
    Duration::from_millis(rand::random::<u64>() % (max_ms + 1))
}

/// Takes the lock `id` for the calling process on this node and every connected one
/// (`:global.set_lock(id, [node() | Node.list()], retries)`), trying as `wait` says.
/// `Ok` when held (OTP's `true`); [`LockError::Busy`] when every attempt found it held
/// by another requester, [`LockError::Timeout`] when `LockWait::Timeout` ran out
/// (OTP's `false`).
pub fn set_lock(
    ctx: &mut Ctx,
    id: impl Into<LockId>,
    wait: impl Into<LockWait>,
) -> Result<(), LockError> {
    set_lock_on(ctx, id, LockNodes::All, wait)
}

/// [`set_lock`] on the given nodes only (OTP's `set_lock(id, nodes, retries)`).
pub fn set_lock_on(
    ctx: &mut Ctx,
    id: impl Into<LockId>,
    nodes: impl Into<LockNodes>,
    wait: impl Into<LockWait>,
) -> Result<(), LockError> {
    let (id, nodes, wait) = (id.into(), nodes.into(), wait.into());
    let me = ctx.pid();
    let deadline = match wait {
        LockWait::Timeout(t) => Some(Instant::now() + t),
        _ => None,
    };
    let mut attempt = 0;
    loop {
        let servers = servers_on(ctx, &nodes);
        if try_lock(ctx, &servers, &id, me) {
            return Ok(());
        }
        let mut pause = backoff(attempt + 1);
        match wait {
            LockWait::Retries(r) if attempt >= r => {
                return Err(LockError::Busy {
                    attempts: attempt + 1,
                });
            }
            LockWait::Timeout(_) => {
                let left = deadline.map_or(Duration::ZERO, |d| {
                    d.saturating_duration_since(Instant::now())
                });
                if left.is_zero() {
                    return Err(LockError::Timeout);
                }
                pause = pause.min(left);
            }
            _ => {}
        }
        attempt += 1;
        let node = ctx.node().clone();
        node.block_in_place(|| std::thread::sleep(pause));
    }
}

/// Releases the lock `id` held by the calling process on this node and every
/// connected one (OTP's `del_lock/1`, which always answers `true`); the lock is free
/// once every process sharing its requester id has released it.
pub fn del_lock(ctx: &mut Ctx, id: impl Into<LockId>) {
    del_lock_on(ctx, id, LockNodes::All);
}

/// [`del_lock`] on the given nodes only (OTP's `del_lock(id, nodes)`).
pub fn del_lock_on(ctx: &mut Ctx, id: impl Into<LockId>, nodes: impl Into<LockNodes>) {
    let (id, nodes) = (id.into(), nodes.into());
    let me = ctx.pid();
    for s in servers_on(ctx, &nodes) {
        send_unlock(ctx, s, &id, me);
    }
}

/// Runs `f` holding the lock `id` on every connected node (`:global.trans`); the
/// lock's error if it could not be had, and then `f` did not run.
pub fn trans<T>(
    ctx: &mut Ctx,
    id: impl Into<LockId>,
    wait: impl Into<LockWait>,
    f: impl FnOnce(&mut Ctx) -> T,
) -> Result<T, LockError> {
    let id = id.into();
    set_lock(ctx, id.clone(), wait)?;
    let r = f(ctx);
    del_lock(ctx, id);
    Ok(r)
}

/// Runs `f` holding the lock on `resource` for the calling process alone (the lock
/// `{resource, self()}`, as the chapter's `LockManager`), trying for up to `timeout`;
/// [`LockError::Timeout`] if it could not be had in time, and then `f` did not run.
pub fn with_lock<T>(
    ctx: &mut Ctx,
    resource: impl Into<Term>,
    timeout: Duration,
    f: impl FnOnce(&mut Ctx) -> T,
) -> Result<T, LockError> {
    let id = LockId::own(ctx, resource);
    trans(ctx, id, LockWait::Timeout(timeout), f)
}
