//! The chapter's exercise modules at the console, over the services (issue #19), so
//! their Test blocks give the chapter's answers when typed as printed
//! (`DistributedKV.get_local(:user_1) # => {:ok, "Alice"}` on another node):
//!
//! - `DistributedKV`: `start_link/0` starts the table `DistributedKV` on this node and
//!   every connected one (`[node() | Node.list()]`, as the chapter: connect first),
//!   waits for its writer and answers `{:ok, pid}`; `start_link/1` takes the nodes.
//!   `put/2` (`:ok` once a majority holds it), `get/1` (linearizable) and
//!   `get_local/1` (this node's copy, no message): `{:ok, value}` or `:not_found`.
//! - `DistributedQueue`: `start_link/0` starts the queue on the same nodes;
//!   `enqueue(task)` enqueues the chapter's `execute_task(task)` (a second's work,
//!   `{:ok, "Processed: task"}`) and answers `{:ok, id}` once two nodes hold it;
//!   `await(id)` waits for its result; `start_worker/0` answers `:ok` (every node of
//!   the queue runs a pool of 5 workers already).
//! - `LockManager`: `acquire(resource, timeout \\ 5000)` answers `{:ok, lock_id}` (the
//!   lock id is `{resource, token}`, the fencing token) or `{:error, :timeout}`;
//!   `release(lock_id)`; `with_lock(resource, fun, timeout \\ 5000)` runs `fun` holding
//!   the lock and answers what it gave. The lock service starts on first use, on
//!   `[node() | Node.list()]`.
//!
//! Errors are `{:error, reason}`: `:no_quorum` (this side of a partition has no
//! majority), `:unknown` (no answer in time), or the service's message.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use oxbeam::everywhere::{self, Service};
use oxbeam::kv::{KvError, Table};
use oxbeam::locks::{Lease, LockError, Locks};
use oxbeam::queue::{Queue, QueueError, TaskError};
use parking_lot::Mutex;

use super::closure;
use super::eval::{EvalError, Interp};
use crate::rt::Ctx;
use crate::term::{Atom, Term};

const KV: &str = "DistributedKV";
const QUEUE: &str = "DistributedQueue";
const LOCKS: &str = "LockManager";
const START_WAIT: Duration = Duration::from_secs(10);

fn error(reason: impl Into<Term>) -> Term {
    Term::tuple(vec![Term::atom("error"), reason.into()])
}

fn kv_error(e: KvError) -> Term {
    error(match e {
        KvError::NoQuorum => Term::atom("no_quorum"),
        KvError::Unknown => Term::atom("unknown"),
        KvError::NotRunning(_) => Term::atom("not_started"),
        e => Term::str(&e.to_string()),
    })
}

fn found(row: Option<Term>) -> Term {
    match row {
        Some(v) => Term::tuple(vec![Term::atom("ok"), v]),
        None => Term::atom("not_found"),
    }
}

/// The service's nodes: the ones given, or this one and every connected one; sorted,
/// so that every node that starts it from the same cluster gets the same list.
fn members(s: &Interp<'_>, given: Option<&Term>) -> Result<Vec<Atom>, EvalError> {
    let mut nodes = match given {
        Some(t) => super::api::nodes_arg(t)?,
        None => s.net.nodes_and_this(),
    };
    nodes.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    nodes.dedup();
    Ok(nodes)
}

/// Starts `service` on every member; `{:ok, pid}` of this node's replica.
fn start(s: &mut Interp<'_>, service: Service, name: &str, nodes: &[Atom]) -> Term {
    let failed = everywhere::start_everywhere(s.me, service, name, nodes, START_WAIT);
    if !failed.is_empty() {
        let why: Vec<Term> = failed
            .into_iter()
            .map(|(n, why)| Term::tuple(vec![Term::Atom(n), Term::str(&why)]))
            .collect();
        return error(Term::tuple(vec![
            Term::atom("not_started"),
            Term::list(why),
        ]));
    }
    let group = service.group_name(name);
    match s.me.node().whereis(group) {
        Some(pid) => Term::tuple(vec![Term::atom("ok"), Term::Pid(pid)]),
        None => error(Term::atom("not_started")),
    }
}

/// `DistributedKV.f(args)`; `None` for a function it doesn't have.
pub(crate) fn distributed_kv(
    s: &mut Interp<'_>,
    f: &str,
    args: &[Term],
) -> Result<Option<Term>, EvalError> {
    if let ("start_link" | "start", [] | [_]) = (f, args) {
        let nodes = members(s, args.first())?;
        let started = start(s, Service::Kv, KV, &nodes);
        if let Ok(kv) = Table::<Term, Term>::open(s.me.node(), KV) {
            let _ = kv.wait_for_writer(s.me, START_WAIT);
        }
        return Ok(Some(started));
    }
    let kv = match Table::<Term, Term>::open(s.me.node(), KV) {
        Ok(kv) => kv,
        Err(e) => return Ok(Some(kv_error(e))),
    };
    Ok(Some(match (f, args) {
        ("put", [k, v]) => match kv.put(s.me, k, v) {
            Ok(_) => Term::atom("ok"),
            Err(e) => kv_error(e),
        },
        ("delete", [k]) => match kv.delete(s.me, k) {
            Ok(_) => Term::atom("ok"),
            Err(e) => kv_error(e),
        },
        ("get", [k]) => match kv.get(s.me, k) {
            Ok(row) => found(row.map(|(v, _)| v)),
            Err(e) => kv_error(e),
        },
        ("get_local", [k]) => match kv.get_local(k) {
            Ok(local) => found(local.value),
            Err(e) => kv_error(e),
        },
        _ => return Ok(None),
    }))
}

/// The chapter's `execute_task/1`, registered on every console and `oxbeam node`: a
/// second's work, then `{:ok, "Processed: task"}`.
pub fn register(functions: &crate::rt::functions::Functions) {
    functions.register(
        Atom::new(QUEUE),
        Atom::new("execute_task"),
        1,
        |ctx: &mut Ctx, args| {
            ctx.receive_match(|_| false, Some(Duration::from_secs(1)));
            let shown = match &args[0] {
                t if t.as_str().is_some() => t.as_str().unwrap_or_default().to_owned(),
                t => t.to_string(),
            };
            Term::tuple(vec![
                Term::atom("ok"),
                Term::str(&format!("Processed: {shown}")),
            ])
        },
    );
    everywhere::register(functions);
}

fn queue_error(e: QueueError) -> Term {
    error(match e {
        QueueError::NoQuorum => Term::atom("no_quorum"),
        QueueError::Unknown => Term::atom("unknown"),
        e => Term::str(&e.to_string()),
    })
}

/// `DistributedQueue.f(args)`; `None` for a function it doesn't have.
pub(crate) fn distributed_queue(
    s: &mut Interp<'_>,
    f: &str,
    args: &[Term],
) -> Result<Option<Term>, EvalError> {
    if let ("start_link" | "start", [] | [_]) = (f, args) {
        let nodes = members(s, args.first())?;
        let started = start(s, Service::Queue, QUEUE, &nodes);
        if let Ok(q) = Queue::open(s.me.node(), QUEUE) {
            let _ = q.group().wait_for_leader(s.me, START_WAIT);
        }
        return Ok(Some(started));
    }
    let Ok(queue) = Queue::open(s.me.node(), QUEUE) else {
        return Ok(Some(error(Term::atom("not_started"))));
    };
    Ok(Some(match (f, args) {
        ("enqueue", [task]) => match queue.enqueue(s.me, QUEUE, "execute_task", vec![task.clone()])
        {
            Ok(id) => Term::tuple(vec![Term::atom("ok"), Term::Int(id as i64)]),
            Err(e) => queue_error(e),
        },
        ("await", [Term::Int(id)]) => {
            match queue.await_result(s.me, *id as u64, Duration::from_secs(30)) {
                Ok(r) => r,
                Err(TaskError::DeadLetter(why)) => {
                    error(Term::tuple(vec![Term::atom("dead_letter"), why]))
                }
                Err(TaskError::Timeout) => error(Term::atom("timeout")),
                Err(TaskError::Queue(e)) => queue_error(e),
            }
        }
        ("start_worker", []) => Term::atom("ok"),
        _ => return Ok(None),
    }))
}

/// The leases taken at this node's consoles, by lock id (`release` gives one back).
#[derive(Default)]
struct Leases(Mutex<HashMap<(Term, u64), Lease>>);

fn lock_error(e: LockError) -> Term {
    error(match e {
        LockError::Timeout => Term::atom("timeout"),
        LockError::NoQuorum => Term::atom("no_quorum"),
        LockError::Unknown => Term::atom("unknown"),
        LockError::NotHolder => Term::atom("not_held"),
        e => Term::str(&e.to_string()),
    })
}

fn timeout_arg(t: Option<&Term>) -> Result<Duration, EvalError> {
    match t {
        None => Ok(Duration::from_millis(5000)),
        Some(Term::Int(ms)) if *ms >= 0 => Ok(Duration::from_millis(*ms as u64)),
        Some(t) if t.is_atom("infinity") => Ok(Duration::from_secs(24 * 3600)),
        Some(t) => Err(EvalError::new(
            "ArgumentError",
            format!("not a timeout: {t}"),
        )),
    }
}

/// `LockManager.f(args)`; `None` for a function it doesn't have.
pub(crate) fn lock_manager(
    s: &mut Interp<'_>,
    f: &str,
    args: &[Term],
) -> Result<Option<Term>, EvalError> {
    let leases =
        s.me.node()
            .extension_or_insert_with(|| Arc::new(Leases::default()));
    // Started on first use, on this node and every connected one.
    let locks = match Locks::open(s.me.node(), LOCKS) {
        Ok(l) => l,
        Err(_) => {
            let nodes = members(s, None)?;
            let started = start(s, Service::Locks, LOCKS, &nodes);
            match Locks::open(s.me.node(), LOCKS) {
                Ok(l) => {
                    let _ = l.group().wait_for_leader(s.me, START_WAIT);
                    l
                }
                Err(_) => return Ok(Some(started)),
            }
        }
    };
    Ok(Some(match (f, args) {
        ("acquire", [resource, rest @ ..]) if rest.len() <= 1 => {
            match locks.acquire(s.me, resource, timeout_arg(rest.first())?) {
                Ok(lease) => {
                    let id = Term::tuple(vec![resource.clone(), Term::Int(lease.token as i64)]);
                    leases
                        .0
                        .lock()
                        .insert((resource.clone(), lease.token), lease);
                    Term::tuple(vec![Term::atom("ok"), id])
                }
                Err(e) => lock_error(e),
            }
        }
        ("release", [id]) => {
            let key = match id.as_tuple() {
                Some([res, Term::Int(token)]) => (res.clone(), *token as u64),
                _ => {
                    return Err(EvalError::new(
                        "FunctionClauseError",
                        format!("not a lock id: {id}"),
                    ));
                }
            };
            match leases.0.lock().remove(&key) {
                Some(lease) => match locks.release(s.me, &lease) {
                    Ok(()) => Term::atom("ok"),
                    Err(e) => lock_error(e),
                },
                None => lock_error(LockError::NotHolder),
            }
        }
        ("with_lock", [resource, fun, rest @ ..]) if rest.len() <= 1 => {
            if !closure::is_fun(fun) {
                return Err(EvalError::new(
                    "BadFunctionError",
                    format!("expected a function, got: {fun}"),
                ));
            }
            let lease = match locks.acquire(s.me, resource, timeout_arg(rest.first())?) {
                Ok(lease) => lease,
                Err(e) => return Ok(Some(lock_error(e))),
            };
            let r = s.apply(fun, Vec::new());
            let _ = locks.release(s.me, &lease);
            r?
        }
        _ => return Ok(None),
    }))
}
