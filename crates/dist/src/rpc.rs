//! rpc: run a registered function on another node and get its result.
//!
//! A call spawns, on the target node, a process running the built-in
//! `erpc:execute_call/4` (see [`rt::functions`](crate::rt::functions)), monitored by the
//! caller under the call's tag: it runs `module:function(args)` and sends
//! `{tag, {:return, result}}` before it exits, so the result always arrives before the
//! monitor's `DOWN`. That gives Erlang's error taxonomy without a server in the way:
//! - the node is unreachable: [`RpcError::NodeDown`] (`{:badrpc, :nodedown}`);
//! - no answer in time: [`RpcError::Timeout`]; the remote process is killed and a late
//!   reply is dropped, so nothing stray is left in the caller's mailbox (the function
//!   may or may not have run, as `erpc` says of its timeouts);
//! - the function is not registered: [`RpcError::Exit`] with `{:undef, {m, f, arity}}`;
//! - it panicked or exited: [`RpcError::Exit`] with that reason
//!   (`{:badrpc, {:EXIT, reason}}`).
//!
//! The call's process has the caller's group leader (as OTP's `rpc` and `erpc`
//! give it; the remote spawn carries it), so what the function prints (`IO.puts`, see
//! `rt::io`) comes out where the caller's output goes, on the caller's node.
//!
//! Only registered functions run (unlike Erlang, where any loaded function may be
//! called).

use std::time::Duration;

use crate::node::net::Spawned;
use crate::node::{Net, PendingSpawn, RemoteSpawnError, SpawnRequest};
use crate::rt::{Ctx, Dest, Task};
use crate::term::{Atom, Pid, Ref, Term};

/// Why a call gave no result.
#[derive(Clone, Debug, PartialEq)]
pub enum RpcError {
    /// The node could not be reached (or went down during the call).
    NodeDown,
    /// No result within the timeout (the function may or may not have run).
    Timeout,
    /// The call's process exited with this reason (a panic, an exit, `undef`).
    Exit(Term),
}

impl RpcError {
    /// Erlang's `{:badrpc, reason}` for this error.
    pub fn badrpc(&self) -> Term {
        let reason = match self {
            RpcError::NodeDown => Term::atom("nodedown"),
            RpcError::Timeout => Term::atom("timeout"),
            RpcError::Exit(r) => Term::tuple(vec![Term::atom("EXIT"), r.clone()]),
        };
        Term::tuple(vec![Term::atom("badrpc"), reason])
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcError::NodeDown => f.write_str("rpc failed: node down"),
            RpcError::Timeout => {
                f.write_str("rpc timed out (the function may or may not have run)")
            }
            RpcError::Exit(r) => write!(f, "rpc failed: the call exited with {r}"),
        }
    }
}

impl std::error::Error for RpcError {}

/// An rpc in flight (from [`send_request`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestId {
    tag: Ref,
    pid: Pid,
}

fn net_of(ctx: &Ctx) -> Result<Net, RpcError> {
    Net::of(ctx.node()).ok_or(RpcError::NodeDown)
}

/// Starts `module:function(args)` on `node`; collect the result with
/// [`receive_response`].
pub fn send_request(
    ctx: &mut Ctx,
    node: impl Into<Atom>,
    module: impl Into<Atom>,
    function: impl Into<Atom>,
    args: Vec<Term>,
) -> Result<RequestId, RpcError> {
    let node = node.into();
    let module = module.into();
    let function = function.into();
    send_request_within(ctx, node, module, function, args, None)
}

/// [`send_request`], giving up on an unresponsive node after `timeout`.
fn send_request_within(
    ctx: &mut Ctx,
    node: Atom,
    module: Atom,
    function: Atom,
    args: Vec<Term>,
    timeout: Option<Duration>,
) -> Result<RequestId, RpcError> {
    let started = start_request(ctx, node, module, function, args)?;
    spawned(ctx, started, timeout)
}

/// A request whose remote spawn may not be answered yet.
struct Started {
    tag: Ref,
    spawn: Result<Pid, PendingSpawn>,
}

/// Starts the call's process: here, or by a spawn request sent to `node` (not waited
/// for: see [`spawned`]).
fn start_request(
    ctx: &mut Ctx,
    node: Atom,
    module: Atom,
    function: Atom,
    args: Vec<Term>,
) -> Result<Started, RpcError> {
    let tag = ctx.make_ref();
    let spawn_args = vec![
        Term::Ref(tag),
        Term::Pid(ctx.pid()),
        Term::tuple(vec![Term::Atom(module), Term::Atom(function)]),
        Term::list(args),
    ];
    let mfa = (Atom::new("erpc"), Atom::new("execute_call"), spawn_args);
    // Monitored (DOWN is matched by pid): an exit before the result is the error.
    let spawn = if node == ctx.node().name() {
        let prepared = ctx
            .node()
            .prepare_mfa(mfa.0, mfa.1, mfa.2, None, None)
            .map_err(|e| RpcError::Exit(e.reason()))?;
        // The caller's group leader, as a remote spawn gives it (below).
        prepared.set_group_leader(ctx.group_leader());
        let pid = prepared.pid();
        ctx.monitor(pid);
        prepared.start();
        Ok(pid)
    } else {
        Err(net_of(ctx)?.spawn_request(ctx, node, mfa, SpawnRequest::MONITOR))
    };
    Ok(Started { tag, spawn })
}

/// Waits (at most `timeout`; `None`: as long as [`Net::spawn`]) for the call's process
/// to be spawned.
fn spawned(
    ctx: &mut Ctx,
    started: Started,
    timeout: Option<Duration>,
) -> Result<RequestId, RpcError> {
    let Started { tag, spawn } = started;
    match spawn {
        Ok(pid) => Ok(RequestId { tag, pid }),
        Err(pending) => {
            let timeout = spawn_wait(ctx, timeout)?;
            let spawn = pending.wait(ctx, timeout);
            request_of(ctx, tag, spawn)
        }
    }
}

/// `timeout`, or when `None`, [`Net::spawn`]'s wait: the connect timeout plus the tick
/// time.
fn spawn_wait(ctx: &Ctx, timeout: Option<Duration>) -> Result<Duration, RpcError> {
    match timeout {
        Some(t) => Ok(t),
        None => {
            let net = net_of(ctx)?;
            Ok(net.connect_timeout() + net.tick_time())
        }
    }
}

/// The request the spawn of its process made, or why there is none.
fn request_of(ctx: &mut Ctx, tag: Ref, spawn: Spawned) -> Result<RequestId, RpcError> {
    match spawn {
        Ok((pid, _)) => Ok(RequestId { tag, pid }),
        Err(RemoteSpawnError::NoConnection) => Err(RpcError::NodeDown),
        Err(RemoteSpawnError::Timeout) => {
            // The spawn may still happen (the node kills the process when its late
            // reply comes), and a result may be on its way: drop it if it comes.
            ctx.abandon_tag(tag);
            Err(RpcError::Timeout)
        }
        Err(e) => Err(RpcError::Exit(e.reason())),
    }
}

/// Waits up to `timeout` for the result of a request.
pub fn receive_response(
    ctx: &mut Ctx,
    req: RequestId,
    timeout: Option<Duration>,
) -> Result<Term, RpcError> {
    let RequestId { tag, pid } = req;
    let got = ctx.receive_with(
        |m| match m.as_tuple() {
            Some([Term::Ref(t), result]) if *t == tag => Some(Ok(result.clone())),
            _ => match m.tagged("DOWN") {
                Some([Term::Ref(_), _, Term::Pid(p), reason]) if *p == pid => {
                    Some(Err(reason.clone()))
                }
                _ => None,
            },
        },
        timeout,
    );
    match got {
        Some(Ok(result)) => {
            // The DOWN (normal) follows the result; take it too, so nothing is left.
            let _ = ctx.receive_match(
                |m| matches!(m.tagged("DOWN"), Some([_, _, Term::Pid(p), _]) if *p == pid),
                Some(Duration::from_secs(5)),
            );
            match result.tagged("return") {
                Some([v]) => Ok(v.clone()),
                _ => Ok(result),
            }
        }
        Some(Err(reason)) => Err(match reason.as_atom() {
            Some(Atom::NOCONNECTION) => RpcError::NodeDown,
            _ => RpcError::Exit(reason),
        }),
        None => {
            ctx.exit_pid(pid, Term::atom("kill"));
            ctx.abandon_tag(tag);
            // Its DOWN (killed, or normal if it just finished) is dropped when it comes.
            let _ = ctx.receive_match(
                |m| matches!(m.tagged("DOWN"), Some([_, _, Term::Pid(p), _]) if *p == pid),
                Some(Duration::from_secs(5)),
            );
            Err(RpcError::Timeout)
        }
    }
}

/// `:rpc.call(node, module, function, args, timeout)`.
pub fn call(
    ctx: &mut Ctx,
    node: impl Into<Atom>,
    module: impl Into<Atom>,
    function: impl Into<Atom>,
    args: Vec<Term>,
    timeout: Option<Duration>,
) -> Result<Term, RpcError> {
    let node = node.into();
    let module = module.into();
    let function = function.into();
    let start = std::time::Instant::now();
    let req = send_request_within(ctx, node, module, function, args, timeout)?;
    // The timeout covers the whole call, the remote spawn included.
    let left = timeout.map(|t| t.saturating_sub(start.elapsed()));
    receive_response(ctx, req, left)
}

/// `:rpc.cast`: runs the function on `node`, nobody waits for it.
pub fn cast(
    ctx: &mut Ctx,
    node: impl Into<Atom>,
    module: impl Into<Atom>,
    function: impl Into<Atom>,
    args: Vec<Term>,
) {
    let node = node.into();
    let module = module.into();
    let function = function.into();
    ctx.spawn(Task::new(move |ctx: &mut Ctx| {
        let _ = call(ctx, node, module, function, args, None);
    }));
}

/// `:rpc.multicall`: the call on every node at once; the results of the nodes that
/// answered (in `nodes` order; a call that exited gives its `{:badrpc, ...}`), and the
/// nodes that were down or too slow.
pub fn multicall(
    ctx: &mut Ctx,
    nodes: &[Atom],
    module: impl Into<Atom>,
    function: impl Into<Atom>,
    args: Vec<Term>,
    timeout: Option<Duration>,
) -> (Vec<Term>, Vec<Atom>) {
    let module = module.into();
    let function = function.into();
    let now = std::time::Instant::now;
    let deadline = timeout.map(|t| now() + t);
    let left = || deadline.map(|d| d.saturating_duration_since(now()));
    // Every spawn request goes out before any answer is waited for, and the answers
    // are taken as they come: a node that never answers costs the others nothing, and
    // the whole call at most `timeout`.
    let mut reqs: Vec<Result<RequestId, RpcError>> = Vec::new();
    let mut tags = Vec::new();
    let mut pending: Vec<Option<PendingSpawn>> = Vec::new();
    for &node in nodes {
        let mut waiting = None;
        match start_request(ctx, node, module, function, args.clone()) {
            Ok(Started { tag, spawn }) => {
                tags.push(tag);
                match spawn {
                    Ok(pid) => reqs.push(Ok(RequestId { tag, pid })),
                    Err(p) => {
                        // Replaced when the spawn is answered (or not, in time).
                        reqs.push(Err(RpcError::Timeout));
                        waiting = Some(p);
                    }
                }
            }
            Err(e) => {
                tags.push(ctx.make_ref());
                reqs.push(Err(e));
            }
        }
        pending.push(waiting);
    }
    let spawn_deadline = now() + spawn_wait(ctx, timeout).unwrap_or_default();
    while let Some((i, spawn)) = PendingSpawn::wait_any(
        ctx,
        &mut pending,
        spawn_deadline.saturating_duration_since(now()),
    ) {
        reqs[i] = request_of(ctx, tags[i], spawn);
    }
    // Not answered in time (or answered just now: see `PendingSpawn::wait`).
    for (i, p) in pending.iter_mut().enumerate() {
        if let Some(p) = p.take() {
            let spawn = p.wait(ctx, Duration::ZERO);
            reqs[i] = request_of(ctx, tags[i], spawn);
        }
    }
    let mut results = Vec::new();
    let mut bad = Vec::new();
    for (&node, req) in nodes.iter().zip(reqs) {
        let Ok(req) = req else {
            bad.push(node);
            continue;
        };
        match receive_response(ctx, req, left()) {
            Ok(v) => results.push(v),
            Err(RpcError::NodeDown) | Err(RpcError::Timeout) => bad.push(node),
            Err(e) => results.push(e.badrpc()),
        }
    }
    (results, bad)
}

/// `:rpc.abcast`: `msg` to the process registered as `name` on each node.
pub fn abcast(ctx: &Ctx, nodes: &[Atom], name: impl Into<Atom>, msg: Term) {
    let name = name.into();
    for &node in nodes {
        let _ = ctx.send_to(Dest::NameAt(name, node), msg.clone());
    }
}
