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
//! Only registered functions run (unlike Erlang, where any loaded function may be
//! called).

use std::time::Duration;

use crate::node::{Net, RemoteSpawnError, SpawnRequest};
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
    let tag = ctx.make_ref();
    let spawn_args = vec![
        Term::Ref(tag),
        Term::Pid(ctx.pid()),
        Term::tuple(vec![Term::Atom(module), Term::Atom(function)]),
        Term::list(args),
    ];
    let mfa = (Atom::new("erpc"), Atom::new("execute_call"), spawn_args);
    // Monitored (DOWN is matched by pid): an exit before the result is the error.
    let pid = if node == ctx.node().name() {
        let prepared = ctx
            .node()
            .prepare_mfa(mfa.0, mfa.1, mfa.2, None, None)
            .map_err(|e| RpcError::Exit(e.reason()))?;
        let pid = prepared.pid();
        ctx.monitor(pid);
        prepared.start();
        pid
    } else {
        let net = net_of(ctx)?;
        let spawned = match timeout {
            Some(t) => net.spawn_within(ctx, node, mfa, SpawnRequest::MONITOR, t),
            None => net.spawn(ctx, node, mfa, SpawnRequest::MONITOR),
        };
        match spawned {
            Ok((pid, _)) => pid,
            Err(RemoteSpawnError::NoConnection) => return Err(RpcError::NodeDown),
            Err(RemoteSpawnError::Timeout) => {
                // The spawn may still happen (the node kills the process when its late
                // reply comes), and a result may be on its way: drop it if it comes.
                ctx.abandon_tag(tag);
                return Err(RpcError::Timeout);
            }
            Err(e) => return Err(RpcError::Exit(e.reason())),
        }
    };
    Ok(RequestId { tag, pid })
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
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    let mut reqs = Vec::new();
    let mut bad = Vec::new();
    for &node in nodes {
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        match send_request_within(ctx, node, module, function, args.clone(), left) {
            Ok(r) => reqs.push((node, r)),
            Err(_) => bad.push(node),
        }
    }
    let mut results = Vec::new();
    for (node, req) in reqs {
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        match receive_response(ctx, req, left) {
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
