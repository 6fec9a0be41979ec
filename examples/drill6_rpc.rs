// cargo run --release --example drill6_rpc
//! Drill 6: rpc. From node1 to node2 and node3 (all in this OS process):
//! `:rpc.call(:node2@localhost, Kernel, :node, [])`, `Enum.sum(1..1000)` run remotely,
//! `:rpc.multicall` of `System.schedulers_online` over every node, and the error
//! taxonomy: `{:badrpc, :nodedown}` for a node that is not running, `{:badrpc, {:EXIT,
//! {:undef, ...}}}` for a function nobody registered, `{:badrpc, :timeout}` for a call
//! that takes too long (the remote call is killed and no late reply is left behind).

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::{SOON, Transcript, wait_for};
use oxbeam::dist::rpc::{self, RpcError};
use oxbeam::rt::{Attached, Ctx};
use oxbeam::term::{Atom, Term};

fn main() -> ExitCode {
    common::init_logging();
    let mut t = Transcript::new("drill6_rpc", "remote calls and their errors");
    let outcome = run(&mut t);
    t.finish(outcome)
}

/// What iex shows for an rpc result: the value, or `{:badrpc, reason}`.
fn shown(r: &Result<Term, RpcError>) -> Term {
    match r {
        Ok(v) => v.clone(),
        Err(e) => e.badrpc(),
    }
}

/// `:rpc.call(node, m, f, args)` from `me`, printed.
fn call(
    t: &Transcript,
    me: &mut Attached,
    node: Atom,
    (m, f, args): (&str, &str, Vec<Term>),
    timeout: Option<Duration>,
    input: &str,
) -> Result<Term, RpcError> {
    let r = rpc::call(me, node, Atom::new(m), Atom::new(f), args, timeout);
    t.iex("node1@localhost", input, shown(&r));
    r
}

fn run(t: &mut Transcript) -> Result<(), String> {
    let cookie = common::fresh_cookie();
    // node1 hosts a private port mapper (port 0: on a port it picks); the others are
    // given its port.
    let n1 = common::start_net("node1", 0, &cookie)?;
    let epmd = n1.epmd_port();
    let n2 = common::start_net("node2", epmd, &cookie)?;
    let n3 = common::start_net("node3", epmd, &cookie)?;
    // Drill.slow(ms): takes `ms` milliseconds (waiting in a receive), then :done.
    n2.node().functions().register(
        Atom::new("Drill"),
        Atom::new("slow"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| {
            let ms = args[0].as_int().unwrap_or(0).max(0) as u64;
            let _ = ctx.receive_match(|_| false, Some(Duration::from_millis(ms)));
            Term::atom("done")
        },
    );
    for n in [&n2, &n3] {
        if n.connect("node1@localhost").is_err() {
            return Err(format!("{} could not connect to node1", n.name()));
        }
    }
    wait_for("a mesh of three", SOON, || {
        let seen = [n1.nodes().len(), n2.nodes().len(), n3.nodes().len()];
        if seen == [2, 2, 2] { Ok(()) } else { Err(seen) }
    })?;
    t.say("node1, node2, node3 connected");
    let (node2, node3) = (n2.name(), n3.name());
    let mut me = n1.node().attach();

    t.step("calls that work");
    let r = call(
        t,
        &mut me,
        node2,
        ("Kernel", "node", vec![]),
        None,
        ":rpc.call(:node2@localhost, Kernel, :node, [])",
    );
    t.check(r == Ok(Term::Atom(node2)), "Kernel.node() ran on node2");
    // An Elixir range is the map %Range{first: 1, last: 1000, step: 1}.
    let range = Term::map(vec![
        (Term::atom("first"), Term::Int(1)),
        (Term::atom("last"), Term::Int(1000)),
        (Term::atom("step"), Term::Int(1)),
    ]);
    let r = call(
        t,
        &mut me,
        node3,
        ("Enum", "sum", vec![range]),
        None,
        ":rpc.call(:node3@localhost, Enum, :sum, [1..1000])",
    );
    t.check(r == Ok(Term::Int(500_500)), "Enum.sum(1..1000) is 500500");
    let all = n1.nodes_and_this();
    let (results, bad) = rpc::multicall(
        &mut me,
        &all,
        Atom::new("System"),
        Atom::new("schedulers_online"),
        vec![],
        Some(SOON),
    );
    let shown_bad = common::atoms(&bad);
    t.iex(
        "node1@localhost",
        ":rpc.multicall([node() | Node.list()], System, :schedulers_online, [])",
        Term::from((Term::list(results.clone()), shown_bad)),
    );
    t.check(
        results.len() == 3
            && results.iter().all(|r| r.as_int().is_some_and(|n| n >= 1))
            && bad.is_empty(),
        "three answers, one per node, no bad nodes",
    );

    t.step("errors, in Erlang's taxonomy");
    let start = Instant::now();
    let r = call(
        t,
        &mut me,
        Atom::new("nosuchnode@localhost"),
        ("Kernel", "node", vec![]),
        Some(SOON),
        ":rpc.call(:nosuchnode@localhost, Kernel, :node, [])",
    );
    t.check(
        r == Err(RpcError::NodeDown),
        format!(
            "a node that is not running: {{:badrpc, :nodedown}} (in {:?})",
            start.elapsed()
        ),
    );
    let r = call(
        t,
        &mut me,
        node2,
        ("Elixir.NonExistent", "foo", vec![]),
        None,
        ":rpc.call(:node2@localhost, NonExistent, :foo, [])",
    );
    let undef = Term::tuple(vec![
        Term::atom("undef"),
        Term::tuple(vec![
            Term::atom("Elixir.NonExistent"),
            Term::atom("foo"),
            Term::Int(0),
        ]),
    ]);
    t.check(
        r == Err(RpcError::Exit(undef.clone())),
        format!("an unknown function: {}", RpcError::Exit(undef).badrpc()),
    );
    t.say("(Erlang adds a stack trace: {:undef, [{NonExistent, :foo, [], []}]}; oxbeam gives {m, f, arity})");
    let before = n2.node().process_count();
    let start = Instant::now();
    let r = call(
        t,
        &mut me,
        node2,
        ("Drill", "slow", vec![Term::Int(2000)]),
        Some(Duration::from_millis(100)),
        ":rpc.call(:node2@localhost, Drill, :slow, [2000], 100)",
    );
    let took = start.elapsed();
    t.check(
        r == Err(RpcError::Timeout),
        format!("a call slower than its timeout: {{:badrpc, :timeout}} after {took:?}"),
    );
    t.check(
        took < Duration::from_millis(1500),
        "the timeout did not wait for the call",
    );
    // The call's process on node2 is killed at the timeout, long before its 2 s are up.
    let killed = wait_for(
        "the timed-out call's process to go",
        Duration::from_secs(1),
        || {
            let now = n2.node().process_count();
            if now <= before { Ok(now) } else { Err(now) }
        },
    );
    t.check(
        killed.is_ok(),
        "the timed-out call was killed on node2 (its process count is back where it was)",
    );
    let r = call(
        t,
        &mut me,
        node2,
        ("Drill", "slow", vec![Term::Int(10)]),
        Some(SOON),
        ":rpc.call(:node2@localhost, Drill, :slow, [10])",
    );
    t.check(
        r == Ok(Term::atom("done")),
        "the same function in time: :done",
    );
    let left = me.flush();
    t.iex("node1@localhost", "flush()", Term::list(left.clone()));
    t.check(
        left.is_empty(),
        "no stray reply or DOWN is left in the mailbox",
    );

    drop(me);
    for n in [n1, n2, n3] {
        n.shutdown();
    }
    Ok(())
}
