// cargo run --release --example drill6_rpc
//! Drill 6: rpc. From node1 to node2 and node3 (all in this OS process):
//! `:rpc.call(:node2@localhost, Kernel, :node, [])`, `Enum.sum(1..1000)` run remotely,
//! `:rpc.multicall` of `System.schedulers_online` over every node, and the error
//! taxonomy: `{:badrpc, :nodedown}` for a node that is not running, `{:badrpc, {:EXIT,
//! {:undef, ...}}}` for a function nobody registered, `{:badrpc, :timeout}` for a call
//! that takes too long (the remote call is killed and no late reply is left behind).
//!
//! ```elixir
//! iex(node1@localhost)> :rpc.call(:node2@localhost, Kernel, :node, [])
//! :node2@localhost
//! iex(node1@localhost)> :rpc.call(:node2@localhost, Enum, :sum, [1..1000])
//! 500500
//! iex(node1@localhost)> :rpc.multicall([node() | Node.list()], System, :schedulers_online, [])
//! {[8, 8, 8], []}
//! :rpc.call(:node2@localhost, NonExistent, :foo, [])    # => {:badrpc, {:EXIT, ...}}
//! :rpc.call(:offline_node@localhost, Kernel, :node, []) # => {:badrpc, :nodedown}
//! ```
//!
//! Arguments are Rust values converted with `oxbeam::term::to_term` (the range is a
//! struct, [`Range`]); results are decoded with `from_term`; the errors are the typed
//! `RpcError`, shown as the `{:badrpc, reason}` iex would print.

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::{SOON, Transcript, wait_for};
use oxbeam::dist::rpc::RpcError;
use oxbeam::prelude::*;
use oxbeam::term::{from_term, to_term};
use serde::Serialize;

fn main() -> ExitCode {
    common::init_logging();
    let mut t = Transcript::new("drill6_rpc", "remote calls and their errors");
    let outcome = run(&mut t);
    t.finish(outcome)
}

/// An Elixir range, `1..1000`: the map `%Range{first: 1, last: 1000, step: 1}`.
#[derive(Serialize)]
struct Range {
    first: i64,
    last: i64,
    step: i64,
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
    me: &mut Ctx,
    node: Atom,
    (m, f, args): (&str, &str, Vec<Term>),
    timeout: Option<Duration>,
    input: &str,
) -> Result<Term, RpcError> {
    let r = rpc::call(me, node, Atom::new(m), Atom::new(f), args, timeout);
    t.iex("node1@localhost", input, shown(&r));
    r
}

fn run(t: &mut Transcript) -> Result<(), Box<dyn std::error::Error>> {
    let cookie = common::fresh_cookie();
    // node1 hosts a private port mapper (port 0: on a port it picks); the others are
    // given its port.
    let start =
        |name: &str, port_mapper: u16| common::drill_node(name, &cookie, port_mapper).start();
    let node1 = start("node1@localhost", 0)?;
    let epmd = common::epmd_port(&node1);
    let node2 = start("node2@localhost", epmd)?;
    let node3 = start("node3@localhost", epmd)?;
    // Drill.slow(ms): takes `ms` milliseconds (waiting in a receive), then :done.
    node2.functions().register(
        Atom::new("Drill"),
        Atom::new("slow"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| {
            let (ms,) = from_term::<(u64,)>(&Term::from(args)).unwrap_or((0,));
            let _ = ctx.receive_match(|_| false, Some(Duration::from_millis(ms)));
            term!(:done)
        },
    );
    for n in [&node2, &node3] {
        n.connect("node1@localhost")
            .map_err(|e| format!("{} could not connect to node1: {e}", n.name()))?;
    }
    let all = [&node1, &node2, &node3];
    wait_for("a mesh of three", SOON, || {
        let seen = all.map(|n| n.nodes().len());
        if seen == [2, 2, 2] { Ok(()) } else { Err(seen) }
    })?;
    t.say("node1, node2, node3 connected");
    let (name2, name3) = (node2.name(), node3.name());
    let mut me = node1.attach();

    t.step("calls that work");
    let r = call(
        t,
        &mut me,
        name2,
        ("Kernel", "node", vec![]),
        None,
        ":rpc.call(:node2@localhost, Kernel, :node, [])",
    );
    let ran_on = r.as_ref().ok().and_then(|v| from_term::<Atom>(v).ok());
    t.check(ran_on == Some(name2), "Kernel.node() ran on node2");
    let range = Range {
        first: 1,
        last: 1000,
        step: 1,
    };
    let r = call(
        t,
        &mut me,
        name3,
        ("Enum", "sum", vec![to_term(&range)?]),
        None,
        ":rpc.call(:node3@localhost, Enum, :sum, [1..1000])",
    );
    let sum = r.as_ref().ok().and_then(|v| from_term::<i64>(v).ok());
    t.check(sum == Some(500_500), "Enum.sum(1..1000) is 500500");
    let everyone = common::net(&node1).nodes_and_this();
    let (results, bad) = rpc::multicall(
        &mut me,
        &everyone,
        Atom::new("System"),
        Atom::new("schedulers_online"),
        vec![],
        Some(SOON),
    );
    t.iex(
        "node1@localhost",
        ":rpc.multicall([node() | Node.list()], System, :schedulers_online, [])",
        to_term(&(&results, &bad))?,
    );
    let counts = from_term::<Vec<i64>>(&Term::from(results)).unwrap_or_default();
    t.check(
        counts.len() == 3 && counts.iter().all(|n| *n >= 1) && bad.is_empty(),
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
        name2,
        ("Elixir.NonExistent", "foo", vec![]),
        None,
        ":rpc.call(:node2@localhost, NonExistent, :foo, [])",
    );
    let undef = term!({:undef, {:"Elixir.NonExistent", :foo, 0}});
    t.check(
        r == Err(RpcError::Exit(undef.clone())),
        format!("an unknown function: {}", RpcError::Exit(undef).badrpc()),
    );
    t.say("(Erlang adds a stack trace: {:undef, [{NonExistent, :foo, [], []}]}; oxbeam gives {m, f, arity})");
    let before = node2.process_count();
    let start = Instant::now();
    let r = call(
        t,
        &mut me,
        name2,
        ("Drill", "slow", vec![term!(2000)]),
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
            let now = node2.process_count();
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
        name2,
        ("Drill", "slow", vec![term!(10)]),
        Some(SOON),
        ":rpc.call(:node2@localhost, Drill, :slow, [10])",
    );
    t.check(r == Ok(term!(:done)), "the same function in time: :done");
    let left = me.flush();
    t.iex("node1@localhost", "flush()", Term::list(left.clone()));
    t.check(
        left.is_empty(),
        "no stray reply or DOWN is left in the mailbox",
    );

    drop(me);
    for n in all {
        n.shutdown();
    }
    Ok(())
}
