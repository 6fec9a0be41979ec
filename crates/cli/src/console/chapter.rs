//! The chapter's own modules, written in Rust on the typed API and built into every
//! console, so the Test blocks of Drills 3 and 4 give the chapter's answers when typed
//! as printed (`DistributedCounter.get() # => 2` from any node).
//!
//! Like Elixir module functions, they run in the calling process: `PubSub.subscribe`
//! joins the console's own process (or a closure's, when one calls it).
//!
//! - `DistributedCounter`: `start_link/0` starts a typed server registered globally as
//!   `{:global, DistributedCounter}` and linked to the caller (`{:ok, pid}`, or
//!   `{:error, {:already_started, pid}}`); `increment/0` casts `:increment`; `get/0`
//!   calls `:get`. The messages are the chapter's atoms, so a BEAM-style
//!   `GenServer.call({:global, DistributedCounter}, :get)` would be answered alike.
//! - `PubSub`: `subscribe/1` (`:pg.join(topic, self())`), `publish/2` (sends
//!   `{:message, topic, message}` to every member; the list of messages sent, as the
//!   chapter's `for` gives), `unsubscribe/1`.

use serde::{Deserialize, Serialize};

use super::eval::{EvalError, Interp};
use crate::dist::{global, pg};
use crate::rt::server::{Reply, ReplyTo, Server};
use crate::rt::{Ctx, Flow, ServerRef, Timeout};
use crate::term::{Atom, Term};

/// `DistributedCounter`'s global name: the module, `Elixir.DistributedCounter`.
const COUNTER: &str = "Elixir.DistributedCounter";

/// The chapter's counter (Drill 3).
struct DistributedCounter(i64);

#[derive(Serialize, Deserialize)]
enum CounterCall {
    #[serde(rename = "get")]
    Get,
}

#[derive(Serialize, Deserialize)]
enum CounterCast {
    #[serde(rename = "increment")]
    Increment,
}

impl Server for DistributedCounter {
    type Call = CounterCall;
    type Reply = i64;
    type Cast = CounterCast;

    fn handle_call(&mut self, _: &mut Ctx, request: CounterCall, _: ReplyTo) -> Reply<i64> {
        match request {
            CounterCall::Get => Reply::Now(self.0),
        }
    }

    fn handle_cast(&mut self, _: &mut Ctx, msg: CounterCast) -> Flow {
        match msg {
            CounterCast::Increment => self.0 += 1,
        }
        Flow::Continue
    }
}

fn counter() -> ServerRef<DistributedCounter> {
    ServerRef::global(Atom::new(COUNTER))
}

/// How an exit from a `GenServer.call` shows: `** (exit) {reason, {GenServer, :call, ...}}`.
fn call_exit(reason: Term, request: &str) -> EvalError {
    EvalError::new(
        "exit",
        format!(
            "{} (GenServer.call({{:global, DistributedCounter}}, {request}, 5000))",
            reason
        ),
    )
}

/// `DistributedCounter.f(args)`; `None` for a function it doesn't have.
pub(crate) fn distributed_counter(
    s: &mut Interp<'_>,
    f: &str,
    args: &[Term],
) -> Result<Option<Term>, EvalError> {
    Ok(Some(match (f, args) {
        ("start_link" | "start", []) => {
            match global::start_typed(s.me, DistributedCounter(0), Atom::new(COUNTER)) {
                Ok(server) => {
                    let pid = server.whereis(s.me.node()).ok_or_else(|| {
                        EvalError::new("exit", "the counter exited as it started")
                    })?;
                    if f == "start_link" {
                        let _ = s.me.link(pid);
                    }
                    Term::tuple(vec![Term::atom("ok"), Term::Pid(pid)])
                }
                // `{:error, {:already_started, pid}}` when the name is taken.
                Err(e) => Term::tuple(vec![Term::atom("error"), Term::from(e)]),
            }
        }
        ("increment", []) => {
            counter().cast(s.me.node(), CounterCast::Increment);
            Term::atom("ok")
        }
        ("get", []) => match counter().call(s.me, CounterCall::Get, Timeout::default()) {
            Ok(n) => Term::Int(n),
            Err(e) => return Err(call_exit(e.reason(), ":get")),
        },
        _ => return Ok(None),
    }))
}

/// `PubSub.f(args)`; `None` for a function it doesn't have.
pub(crate) fn pubsub(
    s: &mut Interp<'_>,
    f: &str,
    args: &[Term],
) -> Result<Option<Term>, EvalError> {
    let scope = pg::default_scope();
    let me = s.me.pid();
    let pg_failed = |e: crate::dist::PgError| EvalError::new("exit", e.reason().to_string());
    Ok(Some(match (f, args) {
        ("subscribe", [topic]) => {
            // The chapter's `:pg.start_link()` first: the default scope runs already.
            let _ = pg::start_scope(s.me.node(), scope);
            pg::join(s.me, scope, topic.clone(), &[me]).map_err(pg_failed)?;
            Term::atom("ok")
        }
        ("publish", [topic, message]) => {
            let members = pg::get_members(s.me.node(), scope, topic);
            let sent: Vec<Term> = members
                .into_iter()
                .map(|pid| {
                    let msg =
                        Term::tuple(vec![Term::atom("message"), topic.clone(), message.clone()]);
                    s.me.send(pid, msg.clone());
                    msg
                })
                .collect();
            Term::list(sent)
        }
        ("unsubscribe", [topic]) => match pg::leave(s.me, scope, topic.clone(), &[me]) {
            Ok(true) => Term::atom("ok"),
            Ok(false) => Term::atom("not_joined"),
            Err(e) => return Err(pg_failed(e)),
        },
        _ => return Ok(None),
    }))
}
