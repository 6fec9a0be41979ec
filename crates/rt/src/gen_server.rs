//! GenServer: OTP's client-server behaviour.
//!
//! A server is a process running a [`GenServer`]; clients [`call`] it (request and
//! reply), [`cast`] to it (fire and forget), or send it plain messages (`handle_info`).
//! The wire shapes are Erlang's, so servers can be reached across nodes unchanged:
//! a call is `{:"$gen_call", {caller, tag}, request}` answered by `{tag, reply}`, a cast
//! `{:"$gen_cast", msg}`.
//!
//! [`call`] is monitor-based, like `gen:call`: the caller monitors the server for the
//! call's duration (the monitor reference is the tag), so a server that is not there or
//! dies mid-call gives an error at once (`noproc`, or its exit reason), not a timeout.
//! A server called as `{name, node}` on another node is monitored by that name
//! ([`Ctx::monitor_name`]): the node answers `noproc` for a name not registered there.
//! A call that times out remembers its tag, so a late reply is dropped instead of
//! lingering in the caller's mailbox (what OTP does with process aliases).
//!
//! [`start`] and [`start_link`] wait for `init` to finish, like `proc_lib`: an `init`
//! error is returned to the starter (and the server exits with it), a name already
//! taken gives `{:already_started, pid}`.

use std::time::Duration;

use super::{Behaviour, Ctx, Dest, Flow, Node, SpawnOpts, StartError};
use crate::term::{Atom, Pid, Ref, Term};

/// Who is waiting for a call's reply (pass it to [`reply`] to answer later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyTo {
    /// The caller.
    pub pid: Pid,
    /// The call's tag.
    pub tag: Ref,
}

/// What `handle_call` decides.
#[derive(Debug)]
pub enum CallReply {
    /// Reply now and keep running.
    Reply(Term),
    /// Don't reply now (reply later with [`reply`]) and keep running.
    NoReply,
    /// Stop with `reason`, replying first if `reply` is given.
    Stop {
        /// The exit reason.
        reason: Term,
        /// The reply to send before stopping.
        reply: Option<Term>,
    },
}

/// The callbacks of a server.
pub trait GenServer: Send + 'static {
    /// Runs in the new process before [`start`] returns; an error stops the server and
    /// is returned to the starter.
    fn init(&mut self, _ctx: &mut Ctx) -> Result<(), Term> {
        Ok(())
    }
    /// A call: reply now, later, or stop.
    fn handle_call(&mut self, ctx: &mut Ctx, request: Term, from: ReplyTo) -> CallReply;
    /// A cast.
    fn handle_cast(&mut self, _ctx: &mut Ctx, _msg: Term) -> Flow {
        Flow::Continue
    }
    /// Any other message.
    fn handle_info(&mut self, ctx: &mut Ctx, msg: Term) -> Flow {
        log::debug!("{}: unexpected message {msg}", ctx.pid());
        Flow::Continue
    }
    /// Runs as the server exits (for any reason but `killed`).
    fn terminate(&mut self, _ctx: &mut Ctx, _reason: &Term) {}
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CallError {
    /// The server was not running (or the name not registered).
    NoProc,
    /// The server's node is unreachable.
    NoConnection,
    /// No reply within the timeout (the request may or may not have been handled).
    Timeout,
    /// The server exited with this reason before replying.
    Exit(Term),
    /// A process called itself.
    CallingSelf,
    /// The request never reached the server's code: it could not be converted to a term
    /// (a typed client, [`ServerRef::call`](crate::ServerRef::call)), or the typed
    /// server did not decode it into its `Call` type (it answered
    /// `{:error, {:bad_request, why}}`, see [`Server`](crate::Server)). The message says why.
    BadRequest(String),
    /// The server replied, but the reply did not decode into the typed client's `Reply`
    /// type (or the server could not convert its reply to a term). The message says why.
    BadReply(String),
}

impl CallError {
    /// The Erlang exit reason this error stands for (`noproc`, `timeout`, ...).
    pub fn reason(&self) -> Term {
        match self {
            CallError::NoProc => Term::Atom(Atom::NOPROC),
            CallError::NoConnection => Term::Atom(Atom::NOCONNECTION),
            CallError::Timeout => Term::Atom(Atom::TIMEOUT),
            CallError::Exit(r) => r.clone(),
            CallError::CallingSelf => Term::Atom(Atom::CALLING_SELF),
            CallError::BadRequest(why) => (Term::atom("bad_request"), Term::str(why)).into(),
            CallError::BadReply(why) => (Term::atom("bad_reply"), Term::str(why)).into(),
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::NoProc => f.write_str("call failed: no such process"),
            CallError::NoConnection => f.write_str("call failed: the server's node is unreachable"),
            CallError::Timeout => {
                f.write_str("call timed out (the request may or may not have been handled)")
            }
            CallError::Exit(r) => write!(f, "call failed: the server exited with reason {r}"),
            CallError::CallingSelf => f.write_str("call failed: a process called itself"),
            CallError::BadRequest(why) => write!(f, "call failed: bad request: {why}"),
            CallError::BadReply(why) => write!(f, "call failed: bad reply: {why}"),
        }
    }
}

impl std::error::Error for CallError {}

/// Options for starting a server.
#[derive(Clone, Debug)]
pub struct StartOpts {
    /// Register the server locally under this name.
    pub name: Option<Atom>,
    /// Link it to the starter.
    pub link: bool,
    /// How long `init` may take (then the server is killed and `timeout` returned).
    pub timeout: Option<Duration>,
    /// The server promises never to wait (no call, no receive, no `block_in_place` in
    /// its callbacks): it is then a [`Reactor`](super::Reactor) as far as the
    /// scheduler is concerned, which may run it on the thread of a process that calls
    /// it or sends to it (no thread hand-over per call). A server that waits anyway is
    /// ended with a panic saying so, never left to freeze its caller. The cluster's
    /// name and group servers (`dist::global`, `dist::pg`) run this way.
    pub never_blocks: bool,
}

impl StartOpts {
    /// The default options with the server registered locally as `name`.
    pub fn named(name: impl Into<Atom>) -> StartOpts {
        StartOpts {
            name: Some(name.into()),
            ..StartOpts::default()
        }
    }

    /// The same options with another `init` timeout.
    pub fn init_timeout(mut self, timeout: impl Into<crate::Timeout>) -> StartOpts {
        self.timeout = timeout.into().as_duration();
        self
    }
}

impl Default for StartOpts {
    fn default() -> StartOpts {
        StartOpts {
            name: None,
            link: false,
            timeout: Some(Duration::from_secs(5)),
            never_blocks: false,
        }
    }
}

struct ServerProcess<S> {
    server: S,
    ack: Option<(Pid, Ref)>,
    name: Option<Atom>,
    never_blocks: bool,
}

const GEN_STOP: &str = "$gen_stop";

impl<S: GenServer> Behaviour for ServerProcess<S> {
    fn init(&mut self, ctx: &mut Ctx) -> Flow {
        let ack = self.ack.take();
        let send_ack = |ctx: &Ctx, result: Term| {
            if let Some((to, tag)) = ack {
                ctx.send(to, (tag, result));
            }
        };
        if let Some(name) = self.name
            && ctx.register(name).is_err()
        {
            let holder = ctx
                .node()
                .whereis(name)
                .map(Term::Pid)
                .unwrap_or(Term::Atom(Atom::UNDEFINED));
            send_ack(
                ctx,
                Term::tuple(vec![
                    Term::Atom(Atom::ERROR),
                    (Term::atom("already_started"), holder).into(),
                ]),
            );
            return Flow::stop_normal();
        }
        match self.server.init(ctx) {
            Ok(()) => {
                send_ack(ctx, Term::ok());
                Flow::Continue
            }
            Err(reason) => {
                send_ack(ctx, (Term::Atom(Atom::ERROR), reason.clone()).into());
                Flow::Stop(reason)
            }
        }
    }

    fn handle(&mut self, ctx: &mut Ctx, msg: Term) -> Flow {
        if let Some([Term::Tuple(from), request]) = msg.tagged("$gen_call")
            && let [Term::Pid(pid), Term::Ref(tag)] = &from[..]
        {
            let from = ReplyTo {
                pid: *pid,
                tag: *tag,
            };
            return match self.server.handle_call(ctx, request.clone(), from) {
                CallReply::Reply(r) => {
                    reply(ctx.node(), from, r);
                    Flow::Continue
                }
                CallReply::NoReply => Flow::Continue,
                CallReply::Stop { reason, reply: r } => {
                    if let Some(r) = r {
                        reply(ctx.node(), from, r);
                    }
                    Flow::Stop(reason)
                }
            };
        }
        if let Some([m]) = msg.tagged("$gen_cast") {
            return self.server.handle_cast(ctx, m.clone());
        }
        if let Some([reason]) = msg.tagged(GEN_STOP) {
            return Flow::Stop(reason.clone());
        }
        // A trapped exit from the parent ends the server with the parent's reason.
        if let Some([Term::Pid(from), reason]) = msg.tagged("EXIT")
            && Some(*from) == ctx.parent()
            && ctx.traps_exit()
        {
            return Flow::Stop(reason.clone());
        }
        self.server.handle_info(ctx, msg)
    }

    fn terminate(&mut self, ctx: &mut Ctx, reason: &Term) {
        self.server.terminate(ctx, reason);
    }

    fn never_blocks(&self) -> bool {
        self.never_blocks
    }
}

/// Starts an unlinked server from outside any process.
pub fn start(node: &Node, server: impl GenServer, name: Option<Atom>) -> Result<Pid, StartError> {
    start_from(
        node,
        server,
        StartOpts {
            name,
            ..StartOpts::default()
        },
    )
}

/// [`start_opts`] from outside any process.
pub fn start_from(node: &Node, server: impl GenServer, opts: StartOpts) -> Result<Pid, StartError> {
    let mut starter = node.attach();
    start_opts(&mut starter, server, opts)
}

/// Starts a server linked to the calling process.
pub fn start_link(
    ctx: &mut Ctx,
    server: impl GenServer,
    name: Option<Atom>,
) -> Result<Pid, StartError> {
    start_opts(
        ctx,
        server,
        StartOpts {
            name,
            link: true,
            ..StartOpts::default()
        },
    )
}

/// Starts a server with options, waiting for its `init`.
pub fn start_opts(
    ctx: &mut Ctx,
    server: impl GenServer,
    opts: StartOpts,
) -> Result<Pid, StartError> {
    let tag = ctx.make_ref();
    let body = ServerProcess {
        server,
        ack: Some((ctx.pid(), tag)),
        name: opts.name,
        never_blocks: opts.never_blocks,
    };
    let (pid, mref) = ctx.spawn_opts(
        body,
        SpawnOpts {
            link: opts.link,
            monitor: true,
            ..SpawnOpts::default()
        },
    );
    let mref = mref.expect("monitor requested");
    let outcome = ctx.receive_with(
        |m| match m.as_tuple() {
            Some([Term::Ref(t), result]) if *t == tag => Some(Ok(result.clone())),
            _ => match m.tagged("DOWN") {
                Some([Term::Ref(r), _, _, reason]) if *r == mref => Some(Err(reason.clone())),
                _ => None,
            },
        },
        opts.timeout,
    );
    if outcome.is_none() {
        // Given up before the flush below, which could otherwise save a late ack.
        ctx.abandon_tag(tag);
    }
    ctx.demonitor_flush(mref);
    match outcome {
        Some(Ok(result)) if result == Term::ok() => Ok(pid),
        Some(Ok(result)) => Err(StartError::from_reason(
            result
                .tagged("error")
                .and_then(|r| r.first().cloned())
                .unwrap_or(result),
        )),
        Some(Err(reason)) => Err(StartError::from_reason(reason)),
        None => {
            ctx.unlink(pid);
            ctx.exit_pid(pid, Term::Atom(Atom::KILL));
            Err(StartError::Timeout)
        }
    }
}

/// Calls a server and waits up to `timeout` (`None`: forever) for its reply.
pub fn call(
    ctx: &mut Ctx,
    server: impl Into<Dest>,
    request: impl Into<Term>,
    timeout: Option<Duration>,
) -> Result<Term, CallError> {
    let id = send_request(ctx, server, request)?;
    receive_response(ctx, id, timeout)
}

/// A call sent and not yet answered (`gen_server:send_request/2`'s request id): the
/// caller goes on, and takes the reply later with [`receive_response`]; the server is
/// monitored meanwhile, so its exit ends the wait.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a request's reply waits in the mailbox until receive_response takes it"]
pub struct RequestId(Ref);

/// Sends `request` to the server as a call, without waiting (OTP's `send_request`):
/// several calls to several servers can be in flight at once. A local name not
/// registered is [`CallError::NoProc`] at once; everything else is answered by
/// [`receive_response`].
pub fn send_request(
    ctx: &mut Ctx,
    server: impl Into<Dest>,
    request: impl Into<Term>,
) -> Result<RequestId, CallError> {
    let pid = match server.into() {
        Dest::Pid(p) => p,
        Dest::Name(n) => ctx.node().whereis(n).ok_or(CallError::NoProc)?,
        Dest::Global(n) => ctx.node().whereis_global(&n).ok_or(CallError::NoProc)?,
        Dest::NameAt(n, node) if node == ctx.node().name() => {
            ctx.node().whereis(n).ok_or(CallError::NoProc)?
        }
        Dest::NameAt(name, node) => {
            // By name on another node: a monitor of the name, so a name not registered
            // there answers `noproc` at once.
            let tag = ctx.monitor_name(name, node);
            let from = Term::tuple(vec![Term::Pid(ctx.pid()), Term::Ref(tag)]);
            let msg = Term::tuple(vec![Term::Atom(Atom::GEN_CALL), from, request.into()]);
            // The send itself cannot fail (the monitor answers for a name or node that
            // is not there).
            let _ = ctx.send_to(Dest::NameAt(name, node), msg);
            return Ok(RequestId(tag));
        }
    };
    if pid == ctx.pid() {
        return Err(CallError::CallingSelf);
    }
    let tag = ctx.monitor(pid);
    let from = Term::tuple(vec![Term::Pid(ctx.pid()), Term::Ref(tag)]);
    ctx.send(
        pid,
        Term::tuple(vec![Term::Atom(Atom::GEN_CALL), from, request.into()]),
    );
    Ok(RequestId(tag))
}

/// Waits up to `timeout` (`None`: forever) for the reply to `id` (OTP's
/// `receive_response`): the reply, or how the call failed, as [`call`] gives it. On a
/// timeout the request is abandoned: a late reply is dropped, never left queued.
pub fn receive_response(
    ctx: &mut Ctx,
    id: RequestId,
    timeout: Option<Duration>,
) -> Result<Term, CallError> {
    await_reply(ctx, id.0, timeout)
}

/// Waits for the reply to the call tagged `tag`, which is also the reference of the
/// monitor of the server: its `DOWN` ends the call with the server's exit reason.
fn await_reply(ctx: &mut Ctx, tag: Ref, timeout: Option<Duration>) -> Result<Term, CallError> {
    let outcome = ctx.receive_with(
        |m| match m.as_tuple() {
            Some([Term::Ref(t), reply]) if *t == tag => Some(Ok(reply.clone())),
            _ => match m.tagged("DOWN") {
                Some([Term::Ref(r), _, _, reason]) if *r == tag => Some(Err(reason.clone())),
                _ => None,
            },
        },
        timeout,
    );
    match outcome {
        Some(Ok(reply)) => {
            ctx.demonitor_flush(tag);
            Ok(reply)
        }
        Some(Err(reason)) => Err(match reason.as_atom() {
            Some(Atom::NOPROC) => CallError::NoProc,
            Some(Atom::NOCONNECTION) => CallError::NoConnection,
            _ => CallError::Exit(reason),
        }),
        None => {
            // Given up first: a reply that comes while the flush below takes the
            // mailbox is dropped, not saved for later.
            ctx.abandon_tag(tag);
            ctx.demonitor_flush(tag);
            Err(CallError::Timeout)
        }
    }
}

/// Calls several servers at once with the same request and waits for every answer (up
/// to `timeout` in all): one round trip for all of them instead of one each. Results
/// come in the order of `servers`, each as [`call`] would give it.
pub fn multi_call(
    ctx: &mut Ctx,
    servers: &[Pid],
    request: &Term,
    timeout: Option<Duration>,
) -> Vec<Result<Term, CallError>> {
    multi_call_with(ctx, servers, request, timeout, true)
}

/// [`multi_call`] that never starts a connection: a server on a node not connected now
/// gives [`CallError::NoConnection`] at once (its monitor and request go `noconnect`),
/// so calling the servers of a cluster does not dial a node that just left it.
pub fn multi_call_noconnect(
    ctx: &mut Ctx,
    servers: &[Pid],
    request: &Term,
    timeout: Option<Duration>,
) -> Vec<Result<Term, CallError>> {
    multi_call_with(ctx, servers, request, timeout, false)
}

fn multi_call_with(
    ctx: &mut Ctx,
    servers: &[Pid],
    request: &Term,
    timeout: Option<Duration>,
    connect: bool,
) -> Vec<Result<Term, CallError>> {
    let me = ctx.pid();
    let mut tags = Vec::with_capacity(servers.len());
    for &pid in servers {
        if pid == me {
            tags.push(None);
            continue;
        }
        let tag = if connect {
            ctx.monitor(pid)
        } else {
            ctx.monitor_noconnect(pid)
        };
        let from = Term::tuple(vec![Term::Pid(me), Term::Ref(tag)]);
        let call = Term::tuple(vec![Term::Atom(Atom::GEN_CALL), from, request.clone()]);
        if connect {
            ctx.send(pid, call);
        } else {
            // Not connected: dropped, and the monitor's `DOWN` answers for it.
            let _ = ctx.send_noconnect(pid, call);
        }
        tags.push(Some(tag));
    }
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    let mut results: Vec<Option<Result<Term, CallError>>> = tags
        .iter()
        .map(|t| t.is_none().then_some(Err(CallError::CallingSelf)))
        .collect();
    while results.iter().any(Option::is_none) {
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        let got = ctx.receive_with(
            |m| {
                let (tag, outcome) = match m.as_tuple() {
                    Some([Term::Ref(t), reply]) => (*t, Ok(reply.clone())),
                    _ => match m.tagged("DOWN") {
                        Some([Term::Ref(r), _, _, reason]) => (*r, Err(reason.clone())),
                        _ => return None,
                    },
                };
                let i = tags.iter().position(|t| *t == Some(tag))?;
                results[i].is_none().then_some((i, outcome))
            },
            left,
        );
        let Some((i, outcome)) = got else { break };
        results[i] = Some(match outcome {
            Ok(reply) => {
                ctx.demonitor_flush(tags[i].expect("a tag for a sent call"));
                Ok(reply)
            }
            Err(reason) => Err(match reason.as_atom() {
                Some(Atom::NOPROC) => CallError::NoProc,
                Some(Atom::NOCONNECTION) => CallError::NoConnection,
                _ => CallError::Exit(reason),
            }),
        });
    }
    // Every unanswered call is given up before any monitor is flushed: a reply that
    // comes during a flush is then dropped, whichever call it answers.
    let unanswered: Vec<Ref> = results
        .iter()
        .zip(&tags)
        .filter(|(r, _)| r.is_none())
        .map(|(_, tag)| tag.expect("only sent calls can be unanswered"))
        .collect();
    for &tag in &unanswered {
        ctx.abandon_tag(tag);
    }
    for &tag in &unanswered {
        ctx.demonitor_flush(tag);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(CallError::Timeout)))
        .collect()
}

/// Casts `msg` to a server (never fails; an unknown name is ignored, as in OTP).
pub fn cast(node: &Node, server: impl Into<Dest>, msg: impl Into<Term>) {
    let _ = node.send_to(
        server,
        Term::tuple(vec![Term::Atom(Atom::GEN_CAST), msg.into()]),
    );
}

/// Answers a call (from `handle_call`'s `from`, possibly later and from another process).
pub fn reply(node: &Node, from: ReplyTo, msg: impl Into<Term>) {
    node.send(from.pid, Term::tuple(vec![Term::Ref(from.tag), msg.into()]));
}

/// Stops a server with `reason` (its `terminate` runs) and waits for it to exit.
pub fn stop(
    ctx: &mut Ctx,
    server: impl Into<Dest>,
    reason: impl Into<Term>,
    timeout: Option<Duration>,
) -> Result<(), CallError> {
    let pid = match server.into() {
        Dest::Pid(p) => p,
        Dest::Name(n) => ctx.node().whereis(n).ok_or(CallError::NoProc)?,
        Dest::Global(n) => ctx.node().whereis_global(&n).ok_or(CallError::NoProc)?,
        Dest::NameAt(name, node) => {
            // By name, here or on another node: a monitor of the name, so one not
            // registered gives `noproc` at once (see `call_remote_name`).
            let mref = ctx.monitor_name(name, node);
            let _ = ctx.send_to(
                Dest::NameAt(name, node),
                (Term::atom(GEN_STOP), reason.into()),
            );
            return await_stop(ctx, mref, timeout);
        }
    };
    let mref = ctx.monitor(pid);
    ctx.send(pid, (Term::atom(GEN_STOP), reason.into()));
    await_stop(ctx, mref, timeout)
}

/// Waits for the `DOWN` of the server being stopped, monitored as `mref`.
fn await_stop(ctx: &mut Ctx, mref: Ref, timeout: Option<Duration>) -> Result<(), CallError> {
    let down = ctx.receive_with(
        |m| match m.tagged("DOWN") {
            Some([Term::Ref(r), _, _, reason]) if *r == mref => Some(reason.clone()),
            _ => None,
        },
        timeout,
    );
    match down {
        Some(r) if r.as_atom() == Some(Atom::NOPROC) => Err(CallError::NoProc),
        Some(r) if r.as_atom() == Some(Atom::NOCONNECTION) => Err(CallError::NoConnection),
        Some(_) => Ok(()),
        None => {
            ctx.demonitor_flush(mref);
            Err(CallError::Timeout)
        }
    }
}
