//! Typed servers (`Server`, `ServerRef`), `Timeout`, and the supervisor builder: a
//! GenServer written and called with Rust types, on Erlang's wire shapes.
mod support;

use std::time::Duration;

use oxbeam::rt::gen_server;
use oxbeam::rt::server::{self, Reply, ReplyTo, Server, ServerRef, StartError};
use oxbeam::rt::{CallError, ChildSpec, Ctx, Flow, StartOpts, Strategy, Supervisor, Timeout};
use oxbeam::term::{Atom, Term, from_term, term, to_term};
use serde::{Deserialize, Serialize};
use support::SOON;

/// The seed chapter's `DistributedCounter`, typed.
#[derive(Default)]
struct Counter {
    count: i64,
    waiting: Vec<(i64, ReplyTo)>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
enum CounterCall {
    Get,
    IncrementBy(i64),
    /// Answered once the count reaches this (a deferred reply).
    WaitFor(i64),
    /// How many `WaitFor`s are waiting.
    Waiters,
    /// Replies with the count, then stops `normal`.
    Stop,
    Crash,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
enum CounterCast {
    Increment,
    Reset,
}

impl Server for Counter {
    type Call = CounterCall;
    type Reply = i64;
    type Cast = CounterCast;

    fn handle_call(&mut self, ctx: &mut Ctx, req: CounterCall, from: ReplyTo) -> Reply<i64> {
        match req {
            CounterCall::Get => Reply::Now(self.count),
            CounterCall::IncrementBy(n) => {
                self.count += n;
                self.wake(ctx);
                Reply::Now(self.count)
            }
            CounterCall::WaitFor(n) if self.count >= n => Reply::Now(self.count),
            CounterCall::WaitFor(n) => {
                self.waiting.push((n, from));
                Reply::Later
            }
            CounterCall::Waiters => Reply::Now(self.waiting.len() as i64),
            CounterCall::Stop => Reply::stop_normal(self.count),
            CounterCall::Crash => panic!("asked to crash"),
        }
    }

    fn handle_cast(&mut self, ctx: &mut Ctx, msg: CounterCast) -> Flow {
        match msg {
            CounterCast::Increment => self.count += 1,
            CounterCast::Reset => self.count = 0,
        }
        self.wake(ctx);
        Flow::Continue
    }
}

impl Counter {
    /// Answers the deferred `WaitFor`s the count has reached.
    fn wake(&mut self, ctx: &mut Ctx) {
        let count = self.count;
        self.waiting.retain(|&(n, from)| {
            let ready = count >= n;
            if ready {
                server::reply(ctx.node(), from, &count);
            }
            !ready
        });
    }
}

#[test]
fn typed_counter_called_and_cast_by_name() {
    let node = support::node(2);
    let mut me = node.attach();
    let started = server::start(&node, Counter::default(), StartOpts::named("counter")).unwrap();
    let counter = ServerRef::<Counter>::named("counter");
    assert_eq!(counter.whereis(&node), started.pid());
    assert_eq!(
        counter.dest(),
        &oxbeam::rt::Dest::Name(Atom::new("counter"))
    );
    counter.cast(&node, CounterCast::Increment);
    counter.cast(&node, CounterCast::Increment);
    assert_eq!(
        counter.call(&mut me, CounterCall::Get, Timeout::default()),
        Ok(2)
    );
    assert_eq!(
        counter.call(&mut me, CounterCall::IncrementBy(3), SOON),
        Ok(5)
    );
    // The handle by pid reaches the same server.
    assert_eq!(started.call(&mut me, CounterCall::Get, None), Ok(5));
    counter.cast(&node, CounterCast::Reset);
    assert_eq!(
        counter.call(&mut me, CounterCall::Get, Timeout::Infinity),
        Ok(0)
    );
    // Stop replies first, then the server is gone.
    assert_eq!(counter.call(&mut me, CounterCall::Stop, SOON), Ok(0));
    support::wait_for("the counter to exit", SOON, || {
        let w = node.whereis(Atom::new("counter"));
        (w.is_none(), w)
    });
    assert_eq!(
        counter.call(&mut me, CounterCall::Get, SOON),
        Err(CallError::NoProc)
    );
    drop(me);
    node.shutdown();
}

#[test]
fn the_wire_shapes_are_erlangs() {
    // What a console user types for each request (the trait's documented mapping).
    assert_eq!(to_term(&CounterCall::Get).unwrap(), term!(:get));
    assert_eq!(
        to_term(&CounterCall::IncrementBy(5)).unwrap(),
        term!({:increment_by, 5})
    );
    assert_eq!(to_term(&CounterCast::Reset).unwrap(), term!(:reset));
    assert_eq!(
        from_term::<CounterCall>(&term!({:wait_for, 7})).unwrap(),
        CounterCall::WaitFor(7)
    );

    let node = support::node(2);
    let mut me = node.attach();
    server::start(&node, Counter::default(), StartOpts::named("wired")).unwrap();
    // An untyped client, with the equivalent terms.
    gen_server::cast(&node, "wired", term!(:increment));
    let by_term = gen_server::call(&mut me, "wired", term!({:increment_by, 10}), Some(SOON));
    assert_eq!(by_term, Ok(Term::Int(11)));
    assert_eq!(
        gen_server::call(&mut me, "wired", term!(:get), Some(SOON)),
        Ok(Term::Int(11))
    );
    // And the raw messages: `{:"$gen_call", {pid, tag}, request}` answered `{tag, reply}`.
    let tag = me.make_ref();
    let pid = node.whereis(Atom::new("wired")).unwrap();
    me.send(pid, term!({:"$gen_call", {(me.pid()), tag}, :get}));
    let reply = me
        .receive_match(
            |m| matches!(m.as_tuple(), Some([Term::Ref(t), _]) if *t == tag),
            Some(SOON),
        )
        .unwrap();
    assert_eq!(reply, term!({tag, 11}));
    drop(me);
    node.shutdown();
}

/// A server that takes the counter's requests but answers with strings.
struct Liar;

impl Server for Liar {
    type Call = CounterCall;
    type Reply = String;
    type Cast = ();

    fn handle_call(&mut self, _: &mut Ctx, _: CounterCall, _: ReplyTo) -> Reply<String> {
        Reply::Now("not a number".into())
    }
}

/// A client's view of the counter with the wrong request type.
struct WrongCalls;

impl Server for WrongCalls {
    type Call = (String, String);
    type Reply = i64;
    type Cast = String;

    fn handle_call(&mut self, _: &mut Ctx, _: (String, String), _: ReplyTo) -> Reply<i64> {
        Reply::Now(0)
    }
}

#[test]
fn bad_requests_are_answered_and_bad_replies_are_typed_errors() {
    let node = support::node(2);
    let mut me = node.attach();
    let counter = server::start(&node, Counter::default(), StartOpts::named("strict")).unwrap();
    let pid = counter.pid().unwrap();
    // An untyped request that is no `CounterCall`: an error reply, not a crash.
    let r = gen_server::call(&mut me, pid, term!(:bogus), Some(SOON)).unwrap();
    let Some([inner]) = r.tagged("error") else {
        panic!("expected {{:error, _}}, got {r}")
    };
    let Some([why]) = inner.tagged("bad_request") else {
        panic!("expected {{:error, {{:bad_request, _}}}}, got {r}")
    };
    assert!(why.as_str().unwrap().contains("bogus"), "{why}");
    // A typed client whose requests the server does not take.
    let wrong = ServerRef::<WrongCalls>::new(pid);
    match wrong.call(&mut me, ("a".into(), "b".into()), SOON) {
        Err(CallError::BadRequest(why)) => {
            assert!(why.starts_with("the server could not decode it"), "{why}")
        }
        other => panic!("expected a bad request, got {other:?}"),
    }
    // A cast that does not decode is dropped.
    wrong.cast(&node, "nonsense".into());
    gen_server::cast(&node, pid, term!({:increment, 1, 2}));
    // The server is still there, with its state.
    assert_eq!(
        counter.call(&mut me, CounterCall::IncrementBy(2), SOON),
        Ok(2)
    );
    assert_eq!(node.whereis(Atom::new("strict")), Some(pid));

    // A reply that does not decode into the client's `Reply`.
    let liar = server::start(&node, Liar, StartOpts::default()).unwrap();
    let as_counter = ServerRef::<Counter>::new(liar.pid().unwrap());
    match as_counter.call(&mut me, CounterCall::Get, SOON) {
        Err(e @ CallError::BadReply(_)) => {
            let shown = e.to_string();
            assert!(shown.starts_with("call failed: bad reply: "), "{shown}");
            assert!(shown.contains("not a number"), "{shown}");
            assert_eq!(e.reason().tagged("bad_reply").map(|r| r.len()), Some(1));
        }
        other => panic!("expected a bad reply, got {other:?}"),
    }
    assert_eq!(
        liar.call(&mut me, CounterCall::Get, SOON),
        Ok("not a number".to_string())
    );
    drop(me);
    node.shutdown();
}

#[test]
fn deferred_replies_and_crashes() {
    let node = support::node(2);
    let mut me = node.attach();
    let counter = server::start(&node, Counter::default(), StartOpts::default()).unwrap();
    let waiter = {
        let (node, counter) = (node.clone(), counter.clone());
        std::thread::spawn(move || {
            let mut w = node.attach();
            counter.call(&mut w, CounterCall::WaitFor(3), SOON)
        })
    };
    // `Later`: the waiter is answered when a cast brings the count to 3.
    let waiters = support::wait_for("the waiter to wait", SOON, || {
        let n = counter.call(&mut me, CounterCall::Waiters, SOON);
        (n == Ok(1), n)
    });
    assert_eq!(waiters, Ok(1));
    counter
        .call(&mut me, CounterCall::IncrementBy(2), SOON)
        .unwrap();
    counter.cast(&node, CounterCast::Increment);
    assert_eq!(waiter.join().unwrap(), Ok(3));
    // A panic in a callback is an exit, as with untyped servers.
    match counter.call(&mut me, CounterCall::Crash, SOON) {
        Err(CallError::Exit(reason)) => {
            assert_eq!(reason.to_string(), "{:panic, \"asked to crash\"}")
        }
        other => panic!("expected an exit, got {other:?}"),
    }
    assert_eq!(
        counter.call(&mut me, CounterCall::Get, SOON),
        Err(CallError::NoProc)
    );
    drop(me);
    node.shutdown();
}

/// Fails its `init` when asked to.
struct Picky(bool);

impl Server for Picky {
    type Call = ();
    type Reply = ();
    type Cast = ();

    fn init(&mut self, _: &mut Ctx) -> Result<(), Term> {
        if self.0 {
            Err("not today".into())
        } else {
            Ok(())
        }
    }

    fn handle_call(&mut self, _: &mut Ctx, _: (), _: ReplyTo) -> Reply<()> {
        Reply::Now(())
    }
}

#[test]
fn start_errors_are_typed() {
    let node = support::node(2);
    let mut me = node.attach();
    let first = server::start(&node, Picky(false), StartOpts::named("picky")).unwrap();
    let again = server::start(&node, Picky(false), StartOpts::named("picky"));
    assert_eq!(again, Err(StartError::AlreadyStarted(first.pid().unwrap())));
    let shown = again.unwrap_err().to_string();
    assert!(shown.contains("already registered"), "{shown}");
    let failed = server::start(&node, Picky(true), StartOpts::default());
    assert_eq!(failed, Err(StartError::InitFailed(Term::str("not today"))));
    // Linked, a starter that traps exits gets the same error (and the `EXIT`).
    me.trap_exit(true);
    let failed = server::start_link(&mut me, Picky(true), StartOpts::default());
    assert_eq!(failed, Err(StartError::InitFailed(Term::str("not today"))));
    // The init's answer can come before its exit signal: take the `EXIT` while still
    // trapping, or it would end this process once trapping is off.
    let exit = me.receive_match(|m| m.tagged("EXIT").is_some(), Some(SOON));
    assert_eq!(
        exit.as_ref()
            .and_then(|m| m.tagged("EXIT"))
            .map(|e| e[1].clone()),
        Some(Term::str("not today"))
    );
    me.trap_exit(false);
    assert_eq!(first.call(&mut me, (), SOON), Ok(()));
    assert_eq!(
        StartError::from_reason(term!(:timeout)),
        StartError::Timeout
    );
    drop(me);
    node.shutdown();
}

#[test]
fn a_built_supervisor_restarts_a_crashed_typed_child() {
    let node = support::node(2);
    let mut me = node.attach();
    let sup = Supervisor::builder()
        .strategy(Strategy::OneForOne)
        .intensity(3, Duration::from_secs(5))
        .child(ChildSpec::server("sup_counter", Counter::default))
        .name("counter_sup")
        .start(&node)
        .unwrap();
    assert_eq!(node.whereis(Atom::new("counter_sup")), sup.pid());
    let counter = ServerRef::<Counter>::named("sup_counter");
    assert_eq!(
        counter.call(&mut me, CounterCall::IncrementBy(4), SOON),
        Ok(4)
    );
    let before = counter.whereis(&node).unwrap();
    assert_eq!(
        sup.which_children(&mut me).unwrap(),
        vec![(term!(:sup_counter), Some(before))]
    );
    assert!(matches!(
        counter.call(&mut me, CounterCall::Crash, SOON),
        Err(CallError::Exit(_))
    ));
    // The same handle reaches the new incarnation, which starts from scratch.
    let after = support::wait_for("the counter's restart", SOON, || {
        let now = counter.whereis(&node);
        (now.is_some() && now != Some(before), now)
    });
    assert_eq!(counter.call(&mut me, CounterCall::Get, SOON), Ok(0));
    counter.cast(&node, CounterCast::Increment);
    assert_eq!(counter.call(&mut me, CounterCall::Get, SOON), Ok(1));
    assert_eq!(
        Supervisor::named("counter_sup")
            .which_children(&mut me)
            .unwrap(),
        vec![(term!(:sup_counter), after)]
    );
    // Stopping the supervisor stops the child.
    sup.stop(&mut me, SOON).unwrap();
    assert_eq!(node.whereis(Atom::new("sup_counter")), None);
    assert_eq!(
        counter.call(&mut me, CounterCall::Get, SOON),
        Err(CallError::NoProc)
    );
    drop(me);
    node.shutdown();
}

#[test]
fn a_supervisor_whose_child_fails_to_start_says_which() {
    let node = support::node(2);
    let r = Supervisor::builder()
        .child(ChildSpec::server("picky_child", || Picky(true)))
        .start(&node);
    match r {
        Err(StartError::ChildFailed { id, reason }) => {
            assert_eq!(id, term!(:picky_child));
            assert_eq!(reason, Term::str("not today"));
        }
        other => panic!("expected a child failure, got {other:?}"),
    }
    node.shutdown();
}

#[test]
fn timeout_defaults_to_five_seconds_and_converts() {
    assert_eq!(Timeout::default(), Timeout::After(Duration::from_secs(5)));
    assert_eq!(Timeout::DEFAULT, Timeout::secs(5));
    assert_eq!(Timeout::ms(5000), Timeout::secs(5));
    assert_eq!(Timeout::from(Duration::from_millis(20)), Timeout::ms(20));
    assert_eq!(Option::<Duration>::from(Timeout::Infinity), None);
    assert_eq!(
        Option::<Duration>::from(Timeout::secs(2)),
        Some(Duration::from_secs(2))
    );
    assert_eq!(Timeout::from(None), Timeout::Infinity);
    assert_eq!(Timeout::Infinity.to_string(), "infinity");
    assert_eq!(Timeout::ms(250).to_string(), "250ms");
    // The untyped start options' default is the same 5 s.
    assert_eq!(
        StartOpts::default().timeout,
        Timeout::default().as_duration()
    );
}

#[test]
fn calls_to_missing_servers_and_timeouts() {
    let node = support::node(2);
    let mut me = node.attach();
    let nobody = ServerRef::<Counter>::named("nobody_here");
    assert_eq!(
        nobody.call(&mut me, CounterCall::Get, Timeout::default()),
        Err(CallError::NoProc)
    );
    assert_eq!(nobody.whereis(&node), None);
    nobody.cast(&node, CounterCast::Increment); // ignored, as in OTP
    // A deferred reply that never comes: a typed timeout.
    let counter = server::start(&node, Counter::default(), StartOpts::default()).unwrap();
    assert_eq!(
        counter.call(&mut me, CounterCall::WaitFor(1), Timeout::ms(50)),
        Err(CallError::Timeout)
    );
    assert_eq!(counter.call(&mut me, CounterCall::Get, SOON), Ok(0));
    assert_eq!(
        CallError::BadRequest("x".into()).to_string(),
        "call failed: bad request: x"
    );
    drop(me);
    node.shutdown();
}

#[test]
fn calls_in_flight_to_several_servers_are_answered_in_any_order() {
    let node = support::node(2);
    let mut me = node.attach();
    let a = server::start(&node, Counter::default(), StartOpts::default()).unwrap();
    let b = server::start(&node, Counter::default(), StartOpts::default()).unwrap();
    // Two requests out before either reply is taken: `WaitFor(1)` to a is answered only
    // once a's count reaches 1, which the call to b doesn't do.
    let waiting = a.send_request(&mut me, CounterCall::WaitFor(1)).unwrap();
    let other = b
        .send_request(&mut me, CounterCall::IncrementBy(5))
        .unwrap();
    assert_eq!(other.wait(&mut me, SOON), Ok(5));
    a.cast(&node, CounterCast::Increment);
    assert_eq!(waiting.wait(&mut me, SOON), Ok(1));
    // A request whose server dies is its exit reason; a timed-out one leaves nothing.
    let crash = a.send_request(&mut me, CounterCall::Crash).unwrap();
    assert!(matches!(
        crash.wait(&mut me, SOON),
        Err(oxbeam::rt::CallError::Exit(_))
    ));
    let slow = b.send_request(&mut me, CounterCall::WaitFor(100)).unwrap();
    assert_eq!(
        slow.wait(&mut me, std::time::Duration::from_millis(20)),
        Err(oxbeam::rt::CallError::Timeout)
    );
    assert_eq!(me.message_queue_len(), 0);
    drop(me);
    node.shutdown();
}
