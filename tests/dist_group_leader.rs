//! Group leaders across nodes, over loopback TCP (both nodes in this test process): a
//! process spawned on another node, and the process an rpc call runs in there, have
//! the caller's group leader, so `IO.puts` there prints through the caller's I/O
//! server, here; a leader that is gone makes the output fall back to the other node's
//! standard output, without hanging.
mod support;

use std::sync::mpsc;
use std::time::Instant;

use oxbeam::dist::rpc;
use oxbeam::node::{Net, SpawnRequest};
use oxbeam::rt::io;
use oxbeam::rt::{Ctx, Task};
use oxbeam::term::{Atom, Pid, Term};
use support::{SOON, net, private_mapper, test_cookie};

/// `caller` and `callee`, connected, both with the built-ins (`IO.puts`...) and
/// `gl_test:leader/0` (the group leader of the process that runs it).
fn pair(prefix: &str) -> (support::PortMapper, Net, Net) {
    let (mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let caller = net(&format!("{prefix}a"), epmd, &cookie);
    let callee = net(&format!("{prefix}b"), epmd, &cookie);
    for n in [&caller, &callee] {
        oxbeam::dist::builtins::register(n);
        n.node().functions().register(
            Atom::new("gl_test"),
            Atom::new("leader"),
            0,
            |ctx: &mut Ctx, _| ctx.group_leader().map_or(Term::atom("none"), Term::Pid),
        );
    }
    caller
        .connect(callee.name().as_str())
        .expect("caller connects to callee");
    (mapper, caller, callee)
}

/// An I/O server on `net`'s node whose output comes out of the receiver.
fn capture(net: &Net) -> (Pid, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let server = io::start_server(
        net.node(),
        Box::new(move |text: &str| {
            let _ = tx.send(text.to_owned());
        }),
    );
    (server, rx)
}

#[test]
fn remote_spawn_and_rpc_print_through_the_callers_group_leader() {
    let (_mapper, caller, callee) = pair("glr");
    let (server, rx) = capture(&caller);
    let mut me = caller.node().attach();
    me.set_group_leader(server);
    let t = Some(SOON);
    // The process an rpc runs in, there, has this process's group leader, a pid here.
    assert_eq!(
        rpc::call(&mut me, callee.name(), "gl_test", "leader", vec![], t),
        Ok(Term::Pid(server))
    );
    // So `IO.puts` there prints here: the call returns after the line was written.
    let puts = |me: &mut Ctx, node: Atom, text: &str| {
        rpc::call(me, node, "IO", "puts", vec![Term::str(text)], t)
    };
    assert_eq!(puts(&mut me, callee.name(), "via rpc"), Ok(Term::ok()));
    assert_eq!(rx.try_recv().as_deref(), Ok("via rpc\n"));
    // A local rpc too.
    assert_eq!(puts(&mut me, caller.name(), "local rpc"), Ok(Term::ok()));
    assert_eq!(rx.try_recv().as_deref(), Ok("local rpc\n"));
    // A remote spawn (Drill 7's `Node.spawn(node2, IO, :puts, ["Always works"])`).
    let mfa = (
        Atom::new("Elixir.IO"),
        Atom::new("puts"),
        vec![Term::str("Always works")],
    );
    let (pid, _) = caller
        .spawn(&mut me, callee.name(), mfa, SpawnRequest::default())
        .expect("spawned there");
    assert_eq!(pid.node(), callee.name());
    assert_eq!(rx.recv_timeout(SOON).as_deref(), Ok("Always works\n"));
    drop(me);
    caller.shutdown();
    callee.shutdown();
}

#[test]
fn a_process_spawned_there_passes_the_leader_on() {
    let (_mapper, caller, callee) = pair("glc");
    callee.node().functions().register(
        Atom::new("gl_test"),
        Atom::new("child_leader"),
        0,
        |ctx: &mut Ctx, _| {
            let me = ctx.pid();
            ctx.spawn(Task::new(move |c: &mut Ctx| {
                let gl = c.group_leader().map_or(Term::atom("none"), Term::Pid);
                c.send(me, (Term::atom("gl"), gl));
            }));
            ctx.receive_with(|m| m.tagged("gl").map(|r| r[0].clone()), Some(SOON))
                .unwrap_or(Term::atom("no_answer"))
        },
    );
    let (server, _rx) = capture(&caller);
    let mut me = caller.node().attach();
    me.set_group_leader(server);
    assert_eq!(
        rpc::call(
            &mut me,
            callee.name(),
            "gl_test",
            "child_leader",
            vec![],
            Some(SOON)
        ),
        Ok(Term::Pid(server))
    );
    drop(me);
    caller.shutdown();
    callee.shutdown();
}

#[test]
fn a_dead_leader_falls_back_to_the_other_nodes_stdout_without_hanging() {
    let (_mapper, caller, callee) = pair("gld");
    let (server, rx) = capture(&caller);
    let mut me = caller.node().attach();
    me.set_group_leader(server);
    // The server goes away; this process still names it as its leader.
    let watch = me.monitor(server);
    caller.node().exit(server, Term::atom("kill"));
    me.receive_match(
        |m| matches!(m.tagged("DOWN"), Some([Term::Ref(r), ..]) if *r == watch),
        Some(SOON),
    )
    .expect("the server is gone");
    let start = Instant::now();
    assert_eq!(
        rpc::call(
            &mut me,
            callee.name(),
            "IO",
            "puts",
            vec![Term::str("fallback (printed on the callee's stdout)")],
            Some(SOON)
        ),
        Ok(Term::ok())
    );
    assert!(
        start.elapsed() < io::REPLY_TIMEOUT,
        "no wait for a reply that cannot come: {:?}",
        start.elapsed()
    );
    assert!(rx.try_recv().is_err());
    drop(me);
    caller.shutdown();
    callee.shutdown();
}

#[test]
fn a_caller_without_a_leader_leaves_the_other_nodes_default() {
    let (_mapper, caller, callee) = pair("gln");
    let (theirs, rx) = capture(&callee);
    callee.node().set_default_group_leader(Some(theirs));
    let mut me = caller.node().attach();
    assert_eq!(me.group_leader(), None);
    assert_eq!(
        rpc::call(
            &mut me,
            callee.name(),
            "gl_test",
            "leader",
            vec![],
            Some(SOON)
        ),
        Ok(Term::Pid(theirs))
    );
    assert_eq!(
        rpc::call(
            &mut me,
            callee.name(),
            "IO",
            "puts",
            vec![Term::str("there")],
            Some(SOON)
        ),
        Ok(Term::ok())
    );
    assert_eq!(rx.try_recv().as_deref(), Ok("there\n"));
    drop(me);
    caller.shutdown();
    callee.shutdown();
}
