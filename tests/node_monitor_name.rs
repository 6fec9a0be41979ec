//! Monitors by registered name, `erlang:monitor(process, {name, node})`, on this node
//! and across nodes over loopback TCP (both nodes in this test process): the `DOWN`
//! names `{name, node}`, a missing name is `noproc` at once, a lost node
//! `noconnection`; and a GenServer call to a missing `{name, node}` fails with `noproc`
//! at once instead of timing out, as OTP's does.
mod support;

use std::time::{Duration, Instant};

use oxbeam::node::Net;
use oxbeam::rt::gen_server::{self, CallReply, GenServer};
use oxbeam::rt::{Attached, CallError, Ctx, Dest, Flow, ReplyTo, Signal, SpawnOpts};
use oxbeam::term::{Atom, Pid, Ref, Term};
use support::{SOON, net, private_mapper, test_cookie};

/// Two connected nodes in this process, on a private port mapper.
struct Pair {
    _mapper: support::PortMapper,
    a: Net,
    b: Net,
}

impl Pair {
    fn start(prefix: &str) -> Pair {
        let (mapper, epmd) = private_mapper();
        let cookie = test_cookie();
        let a = net(&format!("{prefix}a"), epmd, &cookie);
        let b = net(&format!("{prefix}b"), epmd, &cookie);
        a.connect(b.name().as_str()).expect("a connects to b");
        Pair {
            _mapper: mapper,
            a,
            b,
        }
    }

    fn shutdown(self) {
        self.a.shutdown();
        self.b.shutdown();
    }
}

/// A process on `net`'s node registered as `name`: it exits with the reason it is sent
/// as `{:exit, reason}`.
fn registered(net: &Net, name: &str) -> Pid {
    let pid = net.node().spawn_opts(
        |_: &mut Ctx, msg: Term| match msg.tagged("exit") {
            Some([reason]) => Flow::Stop(reason.clone()),
            _ => Flow::Continue,
        },
        SpawnOpts {
            register: Some(Atom::new(name)),
            ..SpawnOpts::default()
        },
    );
    assert_eq!(net.node().whereis(Atom::new(name)), Some(pid));
    pid
}

/// The `DOWN` of monitor `mref`: its object and reason.
fn down_of(me: &mut Attached, mref: Ref, within: Duration) -> (Term, Term) {
    let m = me
        .receive_match(
            |m| matches!(m.tagged("DOWN"), Some([Term::Ref(r), ..]) if *r == mref),
            Some(within),
        )
        .unwrap_or_else(|| panic!("no DOWN for {mref:?}; mailbox {:?}", me.flush()));
    let t = m.as_tuple().expect("a tuple");
    assert!(t[2].is_atom("process"), "{m}");
    (t[3].clone(), t[4].clone())
}

fn name_at(name: &str, node: Atom) -> Term {
    Term::tuple(vec![Term::atom(name), Term::Atom(node)])
}

/// The watchers of the local process `pid` (`Process.info`'s `monitored_by`).
fn monitored_by(me: &mut Attached, pid: Pid) -> Vec<Term> {
    let reference = me.make_ref();
    me.node().deliver(
        pid,
        Signal::Info {
            from: me.pid(),
            reference,
        },
    );
    let reply = me
        .receive_match(
            |m| matches!(m.as_tuple(), Some([Term::Ref(r), _]) if *r == reference),
            Some(SOON),
        )
        .expect("an info reply");
    let info = reply.as_tuple().expect("a pair")[1].clone();
    info.as_map()
        .and_then(|m| m.get(&Term::atom("monitored_by")))
        .and_then(|l| l.as_list().map(<[Term]>::to_vec))
        .unwrap_or_else(|| panic!("no monitored_by in {info}"))
}

#[test]
fn a_remote_name_monitor_gets_the_exit_reason_named_name_and_node() {
    let pair = Pair::start("mnrx");
    let srv = registered(&pair.b, "srv");
    let b = pair.b.name();
    let mut me = pair.a.node().attach();
    let mref = me.monitor_name("srv", b);
    // The exit request goes after the monitor, to the same name: the monitor is
    // acted on first (see `node::wire`).
    me.send_to(
        Dest::NameAt(Atom::new("srv"), b),
        (Term::atom("exit"), Term::atom("boom")),
    )
    .unwrap();
    let (object, reason) = down_of(&mut me, mref, SOON);
    assert_eq!(
        object,
        name_at("srv", b),
        "the DOWN names {{name, node}}, not {srv:?}"
    );
    assert_eq!(reason, Term::atom("boom"));
    drop(me);
    pair.shutdown();
}

#[test]
fn a_missing_remote_name_is_noproc_at_once() {
    let pair = Pair::start("mnmiss");
    let b = pair.b.name();
    let mut me = pair.a.node().attach();
    let start = Instant::now();
    let mref = me.monitor_name("nobody", b);
    let (object, reason) = down_of(&mut me, mref, SOON);
    assert_eq!(object, name_at("nobody", b));
    assert_eq!(reason, Term::atom("noproc"));
    assert!(start.elapsed() < SOON, "took {:?}", start.elapsed());
    drop(me);
    pair.shutdown();
}

#[test]
fn a_remote_name_monitor_gets_noconnection_when_the_node_goes() {
    let pair = Pair::start("mnconn");
    registered(&pair.b, "srv");
    let b = pair.b.name();
    let mut me = pair.a.node().attach();
    let mref = me.monitor_name("srv", b);
    // Set up on b (so the loss below is of a live monitor, not of a request in flight).
    let srv = pair.b.node().whereis(Atom::new("srv")).unwrap();
    let mut watcher = pair.b.node().attach();
    support::wait_for("the monitor on b", SOON, || {
        let by = monitored_by(&mut watcher, srv);
        (by == vec![Term::Pid(me.pid())], by)
    });
    drop(watcher);
    assert!(pair.a.disconnect(b), "a was connected to b");
    let (object, reason) = down_of(&mut me, mref, SOON);
    assert_eq!(object, name_at("srv", b));
    assert_eq!(reason, Term::atom("noconnection"));
    drop(me);
    pair.shutdown();
}

#[test]
fn a_name_on_a_node_that_cannot_be_reached_is_noconnection() {
    let pair = Pair::start("mnnone");
    let mut me = pair.a.node().attach();
    let nowhere = Atom::new("mnnone_nowhere@localhost");
    let mref = me.monitor_name("srv", nowhere);
    let (object, reason) = down_of(&mut me, mref, SOON);
    assert_eq!(object, name_at("srv", nowhere));
    assert_eq!(reason, Term::atom("noconnection"));
    drop(me);
    pair.shutdown();
}

#[test]
fn a_remote_name_demonitor_removes_the_monitor_there() {
    let pair = Pair::start("mndemon");
    let srv = registered(&pair.b, "srv");
    let b = pair.b.name();
    let mut me = pair.a.node().attach();
    let mut watcher = pair.b.node().attach();
    let mref = me.monitor_name("srv", b);
    support::wait_for("the monitor on b", SOON, || {
        let by = monitored_by(&mut watcher, srv);
        (by == vec![Term::Pid(me.pid())], by)
    });
    assert!(me.demonitor(mref));
    assert!(!me.demonitor(mref), "already gone");
    support::wait_for("the demonitor on b", SOON, || {
        let by = monitored_by(&mut watcher, srv);
        (by.is_empty(), by)
    });
    drop((me, watcher));
    pair.shutdown();
}

#[test]
fn local_name_monitors_name_their_down_and_a_missing_name_is_noproc() {
    let pair = Pair::start("mnlocal");
    let a = pair.a.name();
    let srv = registered(&pair.a, "here");
    let mut me = pair.a.node().attach();
    // A registered name here: monitored as its pid, named in the DOWN.
    let mref = me.monitor_name("here", a);
    me.send(srv, (Term::atom("exit"), Term::atom("bye")));
    assert_eq!(
        down_of(&mut me, mref, SOON),
        (name_at("here", a), Term::atom("bye"))
    );
    // A missing one: noproc at once, already in the mailbox.
    let mref = me.monitor_name("nothere", a);
    assert_eq!(
        down_of(&mut me, mref, Duration::ZERO),
        (name_at("nothere", a), Term::atom("noproc"))
    );
    // A demonitored name monitor leaves no DOWN and no watcher.
    let srv = registered(&pair.a, "again");
    let mref = me.monitor_name("again", a);
    assert!(me.demonitor_flush(mref));
    assert_eq!(monitored_by(&mut me, srv), Vec::<Term>::new());
    drop(me);
    pair.shutdown();
}

/// Answers every call with `{:pong, request}`; `:die` ends it with `:crashed` before
/// it replies.
struct Pong;

impl GenServer for Pong {
    fn handle_call(&mut self, _: &mut Ctx, request: Term, _: ReplyTo) -> CallReply {
        if request.is_atom("die") {
            return CallReply::Stop {
                reason: Term::atom("crashed"),
                reply: None,
            };
        }
        CallReply::Reply((Term::atom("pong"), request).into())
    }
}

#[test]
fn a_call_to_a_missing_remote_name_is_noproc_well_before_its_timeout() {
    let pair = Pair::start("mncall");
    let b = pair.b.name();
    let mut me = pair.a.node().attach();
    let timeout = Duration::from_secs(30);
    let start = Instant::now();
    let got = gen_server::call(
        &mut me,
        Dest::NameAt(Atom::new("nobody"), b),
        Term::atom("hi"),
        Some(timeout),
    );
    assert_eq!(got, Err(CallError::NoProc));
    assert!(start.elapsed() < timeout / 3, "took {:?}", start.elapsed());
    // The monitor's DOWN was taken by the call, nothing is left behind.
    assert_eq!(me.flush(), Vec::<Term>::new());
    drop(me);
    pair.shutdown();
}

#[test]
fn a_call_to_a_remote_name_answers_leaves_no_monitor_and_a_crash_is_its_reason() {
    let pair = Pair::start("mncall2");
    let b = pair.b.name();
    let server = gen_server::start(pair.b.node(), Pong, Some(Atom::new("pong"))).unwrap();
    let dest = || Dest::NameAt(Atom::new("pong"), b);
    let mut me = pair.a.node().attach();
    for i in 0..20 {
        assert_eq!(
            gen_server::call(&mut me, dest(), i, Some(SOON)),
            Ok((Term::atom("pong"), Term::Int(i)).into())
        );
    }
    let mut watcher = pair.b.node().attach();
    support::wait_for("every call's monitor gone", SOON, || {
        let by = monitored_by(&mut watcher, server);
        (by.is_empty(), by)
    });
    assert_eq!(
        gen_server::call(&mut me, dest(), Term::atom("die"), Some(SOON)),
        Err(CallError::Exit(Term::atom("crashed")))
    );
    assert_eq!(
        gen_server::call(&mut me, dest(), Term::atom("hi"), Some(SOON)),
        Err(CallError::NoProc),
        "gone now"
    );
    drop((me, watcher));
    pair.shutdown();
}

#[test]
fn a_call_to_an_unreachable_node_is_noconnection_and_stop_by_remote_name_works() {
    let pair = Pair::start("mncall3");
    let b = pair.b.name();
    let mut me = pair.a.node().attach();
    let nowhere = Atom::new("mncall3_nowhere@localhost");
    assert_eq!(
        gen_server::call(
            &mut me,
            Dest::NameAt(Atom::new("pong"), nowhere),
            1,
            Some(SOON)
        ),
        Err(CallError::NoConnection)
    );
    // Stopping by remote name: noproc for a missing one, and a running one stops.
    assert_eq!(
        gen_server::stop(
            &mut me,
            Dest::NameAt(Atom::new("pong"), b),
            Term::atom("normal"),
            Some(SOON)
        ),
        Err(CallError::NoProc)
    );
    let server = gen_server::start(pair.b.node(), Pong, Some(Atom::new("pong"))).unwrap();
    assert_eq!(
        gen_server::stop(
            &mut me,
            Dest::NameAt(Atom::new("pong"), b),
            Term::atom("normal"),
            Some(SOON)
        ),
        Ok(())
    );
    assert!(!pair.b.node().is_alive(server));
    drop(me);
    pair.shutdown();
}

/// A typed server that answers a number with its double.
struct Double;

impl oxbeam::rt::Server for Double {
    type Call = u32;
    type Reply = u32;
    type Cast = ();

    fn handle_call(&mut self, _: &mut Ctx, n: u32, _: ReplyTo) -> oxbeam::rt::Reply<u32> {
        oxbeam::rt::Reply::Now(2 * n)
    }
}

#[test]
fn a_typed_call_to_a_remote_name_goes_the_same_way() {
    use oxbeam::rt::{ServerRef, StartOpts, server};
    let pair = Pair::start("mntyped");
    let b = pair.b.name();
    server::start(pair.b.node(), Double, StartOpts::named("double")).unwrap();
    let mut me = pair.a.node().attach();
    assert_eq!(
        ServerRef::<Double>::at("double", b).call(&mut me, 21, SOON),
        Ok(42)
    );
    let start = Instant::now();
    let missing = ServerRef::<Double>::at("nobody", b).call(&mut me, 1, Duration::from_secs(30));
    assert_eq!(missing, Err(CallError::NoProc));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    drop(me);
    pair.shutdown();
}
