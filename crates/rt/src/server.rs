//! Typed servers: a [`GenServer`] whose requests, replies
//! and casts are Rust types, reached through a typed handle, [`ServerRef`].
//!
//! A [`Server`] is run by an adapter over the untyped [`gen_server`],
//! so nothing changes on the wire: a call is still `{:"$gen_call", {caller, tag},
//! request}` answered by `{tag, reply}`, a cast `{:"$gen_cast", msg}`, with the request,
//! reply and cast converted by [`to_term`] and [`from_term`]. A typed server is therefore
//! reachable from an untyped [`gen_server::call`], from another
//! node and from the console, with the equivalent term (see [`Server`] for the shapes).

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::gen_server::{self, CallError, CallReply, GenServer, StartOpts};
use crate::term::{Atom, Pid, Term, TermConvError, from_term, to_term};
use crate::{Ctx, Dest, Flow, Node, Timeout};

pub use crate::gen_server::ReplyTo;

/// A server with typed messages: what a Rust program writes instead of matching terms.
///
/// `Call` is what clients ask (each answered with a `Reply`), `Cast` what they tell it
/// without waiting; any other message reaches [`Server::handle_info`] as a [`Term`]. A
/// type with no messages of a kind can use `()` (the atom `nil` on the wire).
///
/// # The terms on the wire
///
/// Requests, replies and casts are converted with [`to_term`] / [`from_term`] (the full
/// table is in [`oxbeam_term::serde_term`]). For an enum, which
/// is what `Call` and `Cast` usually are:
///
/// | Rust                                   | term                   |
/// |----------------------------------------|------------------------|
/// | unit variant `Get`                     | atom `:Get`            |
/// | newtype variant `Increment(5)`         | `{:Increment, 5}`      |
/// | tuple variant `Move(1, 2)`             | `{:Move, 1, 2}`        |
/// | struct variant `Put { key: "a".into() }` | `{:Put, %{key: "a"}}` |
///
/// Variant names are used as written, so `#[serde(rename_all = "snake_case")]` on the
/// enum gives Erlang-looking atoms: `:get`, `{:increment, 5}`. Those are the terms an
/// untyped client (another language's node, the console) sends:
/// `GenServer.call(:counter, {:increment, 5})` reaches `handle_call` as
/// `Increment(5)`.
///
/// A request that does not decode into `Call` never reaches [`Server::handle_call`]: the
/// server answers `{:error, {:bad_request, why}}` (`why` a string saying what was found
/// and what was expected), logs it at debug level and carries on; a typed client sees
/// [`CallError::BadRequest`]. A cast that does not decode is dropped (logged at debug).
///
/// # Example
///
/// ```
/// use oxbeam_rt::{Ctx, Flow, Node, Reply, ReplyTo, Server, ServerRef, StartOpts, Timeout};
/// use oxbeam_rt::gen_server;
/// use oxbeam_term::Term;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default)]
/// struct Counter(i64);
///
/// #[derive(Serialize, Deserialize)]
/// #[serde(rename_all = "snake_case")]
/// enum CounterCall { Get, Add(i64) }
///
/// #[derive(Serialize, Deserialize)]
/// #[serde(rename_all = "snake_case")]
/// enum CounterCast { Increment, Reset }
///
/// impl Server for Counter {
///     type Call = CounterCall;
///     type Reply = i64;
///     type Cast = CounterCast;
///
///     fn handle_call(&mut self, _: &mut Ctx, req: CounterCall, _: ReplyTo) -> Reply<i64> {
///         match req {
///             CounterCall::Get => Reply::Now(self.0),
///             CounterCall::Add(n) => {
///                 self.0 += n;
///                 Reply::Now(self.0)
///             }
///         }
///     }
///
///     fn handle_cast(&mut self, _: &mut Ctx, msg: CounterCast) -> Flow {
///         match msg {
///             CounterCast::Increment => self.0 += 1,
///             CounterCast::Reset => self.0 = 0,
///         }
///         Flow::Continue
///     }
/// }
///
/// let node = Node::local();
/// let mut me = node.attach();
/// oxbeam_rt::server::start(&node, Counter::default(), StartOpts::named("counter")).unwrap();
/// let counter = ServerRef::<Counter>::named("counter");
/// counter.cast(&node, CounterCast::Increment);
/// assert_eq!(counter.call(&mut me, CounterCall::Add(2), Timeout::default()), Ok(3));
/// // The same request untyped, as the console would send it: `{:add, 2}`.
/// let untyped = gen_server::call(&mut me, "counter", (Term::atom("add"), 2), None);
/// assert_eq!(untyped, Ok(Term::Int(5)));
/// drop(me);
/// node.shutdown();
/// ```
pub trait Server: Send + 'static {
    /// The requests answered with a [`Server::Reply`].
    type Call: Serialize + DeserializeOwned;
    /// The replies to calls.
    type Reply: Serialize + DeserializeOwned;
    /// The fire-and-forget messages (`()` when there are none).
    type Cast: Serialize + DeserializeOwned;

    /// Runs in the new process before [`start`] returns; an error stops the server and
    /// is returned to the starter as [`StartError::InitFailed`].
    fn init(&mut self, _ctx: &mut Ctx) -> Result<(), Term> {
        Ok(())
    }

    /// A call: reply now, later (with [`reply`], keeping `from`), or stop.
    fn handle_call(
        &mut self,
        ctx: &mut Ctx,
        request: Self::Call,
        from: ReplyTo,
    ) -> Reply<Self::Reply>;

    /// A cast.
    fn handle_cast(&mut self, _ctx: &mut Ctx, _msg: Self::Cast) -> Flow {
        Flow::Continue
    }

    /// Any other message (a timer's, a monitor's `{:DOWN, ...}`, a plain send).
    fn handle_info(&mut self, ctx: &mut Ctx, msg: Term) -> Flow {
        log::debug!("{}: unexpected message {msg}", ctx.pid());
        Flow::Continue
    }

    /// Runs as the server exits (for any reason but `killed`).
    fn terminate(&mut self, _ctx: &mut Ctx, _reason: &Term) {}
}

/// What [`Server::handle_call`] decides.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reply<R> {
    /// Reply with this now and keep running.
    Now(R),
    /// Don't reply now (answer later with [`reply`]) and keep running.
    Later,
    /// Stop with `reason`, replying first if `reply` is given.
    Stop {
        /// The exit reason (`Term::atom("normal")` for a clean stop).
        reason: Term,
        /// The reply to send before stopping.
        reply: Option<R>,
    },
}

impl<R> Reply<R> {
    /// Reply with `reply`, then stop with reason `normal`.
    pub fn stop_normal(reply: R) -> Reply<R> {
        Reply::Stop {
            reason: Term::Atom(Atom::NORMAL),
            reply: Some(reply),
        }
    }
}

/// Why a server (or a supervisor) did not start.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StartError {
    /// The name asked for is registered to this process (`{:already_started, pid}`).
    AlreadyStarted(Pid),
    /// `init` returned this error, or the process exited with it while starting.
    InitFailed(Term),
    /// `init` took longer than the start timeout (the server was killed).
    Timeout,
    /// A supervisor could not start one of its children (`{:shutdown,
    /// {:failed_to_start_child, id, reason}}`).
    ChildFailed {
        /// The child's id.
        id: Term,
        /// Why its start failed.
        reason: Term,
    },
}

impl StartError {
    /// The error an untyped start's reason stands for (the `Err` of
    /// [`gen_server::start_opts`]).
    pub fn from_reason(reason: Term) -> StartError {
        if let Some([Term::Pid(p)]) = reason.tagged("already_started") {
            return StartError::AlreadyStarted(*p);
        }
        if reason.as_atom() == Some(Atom::TIMEOUT) {
            return StartError::Timeout;
        }
        if let Some([why]) = reason.tagged("shutdown")
            && let Some([id, child_reason]) = why.tagged("failed_to_start_child")
        {
            return StartError::ChildFailed {
                id: id.clone(),
                reason: child_reason.clone(),
            };
        }
        StartError::InitFailed(reason)
    }

    /// The Erlang reason this error stands for (`{:already_started, pid}`, `timeout`,
    /// ...): what a [`ChildSpec`](crate::supervisor::ChildSpec)'s start function returns.
    pub fn reason(&self) -> Term {
        match self {
            StartError::AlreadyStarted(p) => (Term::atom("already_started"), *p).into(),
            StartError::InitFailed(r) => r.clone(),
            StartError::Timeout => Term::Atom(Atom::TIMEOUT),
            StartError::ChildFailed { id, reason } => (
                Term::Atom(Atom::SHUTDOWN),
                Term::tuple(vec![
                    Term::atom("failed_to_start_child"),
                    id.clone(),
                    reason.clone(),
                ]),
            )
                .into(),
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::AlreadyStarted(p) => {
                write!(f, "start failed: the name is already registered to {p}")
            }
            StartError::InitFailed(r) => write!(f, "start failed: init failed with {r}"),
            StartError::Timeout => f.write_str("start failed: init timed out"),
            StartError::ChildFailed { id, reason } => {
                write!(f, "start failed: child {id} failed to start with {reason}")
            }
        }
    }
}

impl std::error::Error for StartError {}

impl From<StartError> for Term {
    fn from(e: StartError) -> Term {
        e.reason()
    }
}

/// The untyped [`GenServer`] that runs a [`Server`].
struct Typed<S>(S);

fn bad(what: &str, why: &TermConvError) -> Term {
    (
        Term::Atom(Atom::ERROR),
        (Term::atom(what), Term::str(why.message())),
    )
        .into()
}

/// The term for a reply, or `{:error, {:bad_reply, why}}` if it has none.
fn reply_term<R: Serialize + ?Sized>(reply: &R) -> Term {
    to_term(reply).unwrap_or_else(|e| {
        log::error!("a server's reply does not convert to a term: {e}");
        bad("bad_reply", &e)
    })
}

impl<S: Server> GenServer for Typed<S> {
    fn init(&mut self, ctx: &mut Ctx) -> Result<(), Term> {
        self.0.init(ctx)
    }

    fn handle_call(&mut self, ctx: &mut Ctx, request: Term, from: ReplyTo) -> CallReply {
        let request = match from_term::<S::Call>(&request) {
            Ok(r) => r,
            Err(e) => {
                log::debug!(
                    "{}: bad request {request} from {}: {e}",
                    ctx.pid(),
                    from.pid
                );
                return CallReply::Reply(bad("bad_request", &e));
            }
        };
        match self.0.handle_call(ctx, request, from) {
            Reply::Now(r) => CallReply::Reply(reply_term(&r)),
            Reply::Later => CallReply::NoReply,
            Reply::Stop { reason, reply } => CallReply::Stop {
                reason,
                reply: reply.as_ref().map(reply_term),
            },
        }
    }

    fn handle_cast(&mut self, ctx: &mut Ctx, msg: Term) -> Flow {
        match from_term::<S::Cast>(&msg) {
            Ok(m) => self.0.handle_cast(ctx, m),
            Err(e) => {
                log::debug!("{}: bad cast {msg} dropped: {e}", ctx.pid());
                Flow::Continue
            }
        }
    }

    fn handle_info(&mut self, ctx: &mut Ctx, msg: Term) -> Flow {
        self.0.handle_info(ctx, msg)
    }

    fn terminate(&mut self, ctx: &mut Ctx, reason: &Term) {
        self.0.terminate(ctx, reason);
    }
}

/// Starts an unlinked server from outside any process and waits for its `init`
/// (`opts.link` is ignored: there is no process to link to).
///
/// The handle is the new server's pid; to follow a named server across restarts, use
/// [`ServerRef::named`].
pub fn start<S: Server>(
    node: &Node,
    server: S,
    opts: StartOpts,
) -> Result<ServerRef<S>, StartError> {
    let mut starter = node.attach();
    let opts = StartOpts {
        link: false,
        ..opts
    };
    start_pid(&mut starter, server, opts).map(ServerRef::new)
}

/// Starts a server linked to the calling process and waits for its `init`
/// (`opts.link` is ignored: it is linked).
pub fn start_link<S: Server>(
    ctx: &mut Ctx,
    server: S,
    opts: StartOpts,
) -> Result<ServerRef<S>, StartError> {
    let opts = StartOpts { link: true, ..opts };
    start_pid(ctx, server, opts).map(ServerRef::new)
}

/// Starts a server from a process with `opts` as they are (`link` included) and
/// waits for its `init`; the new server's pid.
pub fn start_pid<S: Server>(ctx: &mut Ctx, server: S, opts: StartOpts) -> Result<Pid, StartError> {
    gen_server::start_opts(ctx, Typed(server), opts)
}

/// Answers a call that [`Server::handle_call`] left for later ([`Reply::Later`]), from
/// any process. A reply that does not convert to a term is sent as
/// `{:error, {:bad_reply, why}}` (and logged).
pub fn reply<R: Serialize + ?Sized>(node: &Node, to: ReplyTo, reply: &R) {
    gen_server::reply(node, to, reply_term(reply));
}

/// A typed handle to a [`Server`]: a pid, a local name or `{name, node}` ([`Dest`]), and
/// the server's type, which gives [`call`](ServerRef::call) and
/// [`cast`](ServerRef::cast) their message types. It is `Copy`, and it holds no
/// resource: a handle by name stays valid while the server restarts (under a
/// supervisor, say), one by pid names one incarnation.
///
/// Global names (`{:global, name}`) live in the distribution layer, above this crate:
/// resolve one there (`oxbeam::dist::global::whereis_name`) and wrap the pid with
/// [`ServerRef::new`]; that layer is where a handle by global name belongs.
///
/// ```
/// use oxbeam_rt::{CallError, Ctx, Node, Reply, ReplyTo, Server, ServerRef, StartOpts};
///
/// /// Echoes strings back, upper-cased.
/// struct Upper;
///
/// impl Server for Upper {
///     type Call = String;
///     type Reply = String;
///     type Cast = ();
///
///     fn handle_call(&mut self, _: &mut Ctx, s: String, _: ReplyTo) -> Reply<String> {
///         Reply::Now(s.to_uppercase())
///     }
/// }
///
/// let node = Node::local();
/// let mut me = node.attach();
/// let by_pid = oxbeam_rt::server::start(&node, Upper, StartOpts::named("upper")).unwrap();
/// let by_name = ServerRef::<Upper>::named("upper");
/// assert_eq!(by_name.whereis(&node), by_pid.pid());
/// assert_eq!(by_name.call(&mut me, "hi".to_string(), None), Ok("HI".to_string()));
/// let missing = ServerRef::<Upper>::named("nobody");
/// assert_eq!(missing.call(&mut me, "hi".into(), None), Err(CallError::NoProc));
/// by_name.stop(&mut me, None).unwrap();
/// drop(me);
/// node.shutdown();
/// ```
pub struct ServerRef<S> {
    dest: Dest,
    server: PhantomData<fn() -> S>,
}

impl<S: Server> ServerRef<S> {
    /// A handle to the server at `dest` (a pid, a local name, `{name, node}`).
    pub fn new(dest: impl Into<Dest>) -> ServerRef<S> {
        ServerRef {
            dest: dest.into(),
            server: PhantomData,
        }
    }

    /// A handle to the server registered as `name` on this node.
    pub fn named(name: impl Into<Atom>) -> ServerRef<S> {
        ServerRef::new(Dest::Name(name.into()))
    }

    /// A handle to the server registered cluster-wide as `name` (`{:global, name}`),
    /// resolved at each call through the node's global registry (`dist::global`).
    pub fn global(name: impl Into<crate::GlobalName>) -> ServerRef<S> {
        ServerRef::new(Dest::global(name))
    }

    /// A handle to the server registered as `name` on `node` (`{name, node}`).
    pub fn at(name: impl Into<Atom>, node: impl Into<Atom>) -> ServerRef<S> {
        ServerRef::new(Dest::NameAt(name.into(), node.into()))
    }

    /// Where the handle points.
    pub fn dest(&self) -> &Dest {
        &self.dest
    }

    /// The pid, for a handle by pid (`None` for one by name: see
    /// [`whereis`](ServerRef::whereis)).
    pub fn pid(&self) -> Option<Pid> {
        self.dest.pid()
    }

    /// The pid the handle stands for now, as far as `node` knows: the pid itself, or
    /// the process registered under the name (on `node` itself; `None` for a name on
    /// another node).
    pub fn whereis(&self, node: &Node) -> Option<Pid> {
        node.resolve(&self.dest)
    }

    /// Calls the server and waits up to `timeout` for its reply (`None` or
    /// [`Timeout::Infinity`]: forever; see [`gen_server::call`] for how a call fails).
    /// A reply that does not decode into `S::Reply` gives [`CallError::BadReply`].
    pub fn call(
        &self,
        ctx: &mut Ctx,
        request: S::Call,
        timeout: impl Into<Timeout>,
    ) -> Result<S::Reply, CallError> {
        let request = to_term(&request).map_err(|e| {
            CallError::BadRequest(format!("the request does not convert to a term: {e}"))
        })?;
        let reply = gen_server::call(ctx, &self.dest, request, timeout.into().as_duration())?;
        decode_reply(&reply)
    }

    /// Sends the call without waiting (OTP's `send_request`): the reply is taken later
    /// with [`PendingReply::wait`], so a process can have calls to several servers in
    /// flight at once.
    pub fn send_request(
        &self,
        ctx: &mut Ctx,
        request: S::Call,
    ) -> Result<PendingReply<S>, CallError> {
        let request = to_term(&request).map_err(|e| {
            CallError::BadRequest(format!("the request does not convert to a term: {e}"))
        })?;
        Ok(PendingReply {
            id: gen_server::send_request(ctx, &self.dest, request)?,
            server: PhantomData,
        })
    }

    /// Casts `msg` to the server (never fails, as in OTP: an unknown name is ignored; a
    /// message that does not convert to a term is dropped, logged as an error).
    pub fn cast(&self, node: &Node, msg: S::Cast) {
        match to_term(&msg) {
            Ok(t) => gen_server::cast(node, &self.dest, t),
            Err(e) => log::error!(
                "cast to {:?} dropped: it does not convert to a term: {e}",
                self.dest
            ),
        }
    }

    /// Stops the server with reason `normal` (its `terminate` runs) and waits up to
    /// `timeout` for it to exit (a server on another node: [`CallError::NoConnection`],
    /// as [`gen_server::stop`]).
    pub fn stop(&self, ctx: &mut Ctx, timeout: impl Into<Timeout>) -> Result<(), CallError> {
        gen_server::stop(
            ctx,
            &self.dest,
            Term::Atom(Atom::NORMAL),
            timeout.into().as_duration(),
        )
    }
}

/// A typed call in flight ([`ServerRef::send_request`]).
#[must_use = "the reply waits in the mailbox until wait takes it"]
pub struct PendingReply<S: Server> {
    id: gen_server::RequestId,
    server: PhantomData<fn() -> S>,
}

impl<S: Server> PendingReply<S> {
    /// Waits up to `timeout` for the reply (OTP's `receive_response`), as
    /// [`ServerRef::call`] would give it.
    pub fn wait(self, ctx: &mut Ctx, timeout: impl Into<Timeout>) -> Result<S::Reply, CallError> {
        let reply = gen_server::receive_response(ctx, self.id, timeout.into().as_duration())?;
        decode_reply(&reply)
    }
}

/// Decodes a typed call's reply; the typed server's `{:error, {:bad_request, why}}` (when
/// `R` does not take it) becomes [`CallError::BadRequest`].
fn decode_reply<R: DeserializeOwned>(reply: &Term) -> Result<R, CallError> {
    let e = match from_term::<R>(reply) {
        Ok(r) => return Ok(r),
        Err(e) => e,
    };
    if let Some([inner]) = reply.tagged("error") {
        if let Some([why]) = inner.tagged("bad_request") {
            return Err(CallError::BadRequest(why.as_str().map_or_else(
                || why.to_string(),
                |s| format!("the server could not decode it: {s}"),
            )));
        }
        if let Some([why]) = inner.tagged("bad_reply") {
            return Err(CallError::BadReply(why.as_str().map_or_else(
                || why.to_string(),
                |s| format!("the server could not convert it to a term: {s}"),
            )));
        }
    }
    let mut shown = reply.to_string();
    if shown.len() > 200 {
        let cut = (0..=200)
            .rev()
            .find(|&i| shown.is_char_boundary(i))
            .unwrap_or(0);
        shown.truncate(cut);
        shown.push_str("...");
    }
    Err(CallError::BadReply(format!("{e} (the reply was {shown})")))
}

impl<S> Clone for ServerRef<S> {
    fn clone(&self) -> ServerRef<S> {
        ServerRef {
            dest: self.dest.clone(),
            server: PhantomData,
        }
    }
}

impl<S> PartialEq for ServerRef<S> {
    fn eq(&self, other: &ServerRef<S>) -> bool {
        self.dest == other.dest
    }
}

impl<S> Eq for ServerRef<S> {}

impl<S> fmt::Debug for ServerRef<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ServerRef")
            .field(&std::any::type_name::<S>())
            .field(&self.dest)
            .finish()
    }
}

impl<S> From<ServerRef<S>> for Dest {
    fn from(r: ServerRef<S>) -> Dest {
        r.dest
    }
}
