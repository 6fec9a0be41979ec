// cargo run --release --example drill3_global_counter
//! Drill 3: a global counter. node1 runs as its own OS process (this binary again, in
//! child mode); node2 and node3 run here. node2 has node1 start the counter, a typed
//! server registered `{:global, :counter}`; node2 and node3 find it with
//! `:global.whereis_name(:counter)`; processes on all three nodes increment it at once
//! and no update is lost (every increment gets its own number, 1..=3k); a second
//! registration of the name gives `:no`. Then node1 is SIGKILLed and the name is gone
//! everywhere.
//!
//! ```elixir
//! iex(node1@localhost)> :global.register_name(:counter, self())
//! :yes
//! iex(node2@localhost)> :global.register_name(:counter, self())
//! :no
//! iex(node2@localhost)> pid = :global.whereis_name(:counter)
//! GenServer.start_link(__MODULE__, 0, name: {:global, __MODULE__})
//! GenServer.call({:global, __MODULE__}, :get)
//! ```
//!
//! The counter is an `impl Server` ([`Counter`]) reached through
//! `ServerRef::<Counter>::global("counter")`; a `:incr` call answers the new count.

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::process::ExitCode;

use common::{ChildNode, Notice, SOON, Transcript, wait_for};
use oxbeam::prelude::*;
use oxbeam::term::from_term;
use serde::{Deserialize, Serialize};

/// Increments per node.
const K: i64 = 1000;

fn main() -> ExitCode {
    common::run_child_if_asked(register_functions);
    common::init_logging();
    let mut t = Transcript::new("drill3_global_counter", "one counter, three nodes");
    let outcome = run(&mut t);
    t.finish(outcome)
}

/// The counter: one request at a time, so no update is lost.
#[derive(Default)]
struct Counter(i64);

/// Its calls: `:incr` (answered with the new count) and `:get`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    Incr,
    Get,
}

impl Server for Counter {
    type Call = Call;
    type Reply = i64;
    type Cast = ();

    fn handle_call(&mut self, _: &mut Ctx, request: Call, _: ReplyTo) -> Reply<i64> {
        if let Call::Incr = request {
            self.0 += 1;
        }
        Reply::Now(self.0)
    }
}

/// `:yes` or `:no`, as `:global.register_name` answers.
fn yes_no(yes: bool) -> Term {
    if yes { term!(:yes) } else { term!(:no) }
}

/// The handle every node uses: `{:global, :counter}`, looked up at each call.
fn counter() -> ServerRef<Counter> {
    ServerRef::global("counter")
}

/// What the drill's functions report to the process that started them.
#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "snake_case")]
enum Report {
    /// `{:registered, node(), true | false}`: whether `Counter.start/1` got the name.
    Registered(Atom, bool),
    /// `{:bumped, node(), [n, ...]}`: the numbers `Counter.bump/2`'s increments got.
    Bumped(Atom, Vec<i64>),
}

/// `:go`: the bumpers start together, so their increments interleave at the counter.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Go {
    Go,
}
common::message!(Report, Go);

/// `Counter.start/1` and `Counter.bump/2`, on every node of the drill.
fn register_functions(node: &Node) {
    let f = node.functions();
    // start(report): starts the counter registered as {:global, :counter} and reports
    // {:registered, node(), true | false}. The server outlives this process (unlinked).
    f.register(
        Atom::new("Counter"),
        Atom::new("start"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| {
            let Ok((report,)) = from_term::<(Pid,)>(&Term::from(args)) else {
                return term!(:badarg);
            };
            let _ = global::sync(ctx, SOON);
            let yes = global::start_typed(ctx, Counter::default(), "counter").is_ok();
            ctx.send(report, Report::Registered(ctx.node().name(), yes));
            term!(:ok)
        },
    );
    // bump(k, report): on :go, k increments of the counter found by name from this
    // node; reports {:bumped, node(), [numbers]} once every answer is in.
    f.register(
        Atom::new("Counter"),
        Atom::new("bump"),
        2,
        |ctx: &mut Ctx, args: Vec<Term>| {
            let Ok((k, report)) = from_term::<(i64, Pid)>(&Term::from(args)) else {
                return term!(:badarg);
            };
            let mut got = Vec::new();
            if counter().whereis(ctx.node()).is_some() {
                common::receive::<Go>(ctx, SOON);
                let mut incr = || counter().call(ctx, Call::Incr, SOON).ok();
                got = (0..k).map_while(|_| incr()).collect();
            }
            ctx.send(report, Report::Bumped(ctx.node().name(), got));
            term!(:ok)
        },
    );
}

fn run(t: &mut Transcript) -> Result<(), Box<dyn std::error::Error>> {
    let cookie = common::fresh_cookie();
    // node2 first: it hosts a private port mapper (port 0: on a port it picks), which
    // must outlive node1.
    let start =
        |name: &str, port_mapper: u16| common::drill_node(name, &cookie, port_mapper).start();
    let node2 = start("node2@localhost", 0)?;
    let epmd = common::epmd_port(&node2);
    let node3 = start("node3@localhost", epmd)?;
    for n in [&node2, &node3] {
        register_functions(n);
    }
    let mut child = ChildNode::start("node1", epmd, &cookie)?;
    let name1 = Atom::new(&child.name);
    t.say(format!(
        "node1 runs as OS process {} (this example in child mode); node2, node3 run here",
        child.os_pid()
    ));
    for n in [&node2, &node3] {
        // With the cluster services on, connect returns once global has synced.
        let up = n.connect(&child.name);
        t.iex(
            n.name().as_str(),
            "Node.connect(:node1@localhost)",
            term!(up.is_ok()),
        );
        t.check(up.is_ok(), format!("{} connected, global synced", n.name()));
    }
    wait_for("a mesh of three", SOON, || {
        let seen = [node2.nodes().len(), node3.nodes().len()];
        if seen == [2, 2] { Ok(()) } else { Err(seen) }
    })?;
    let mut me2 = node2.attach();
    let mut me3 = node3.attach();
    for me in [&mut me2, &mut me3] {
        let _ = global::sync(me, SOON);
    }
    let net2 = common::net(&node2);

    t.step("on node1: the counter starts, registered globally");
    let mfa = (
        Atom::new("Counter"),
        Atom::new("start"),
        vec![me2.pid().into()],
    );
    net2.spawn(&mut me2, name1, mfa, oxbeam::node::SpawnRequest::default())
        .map_err(|e| format!("spawn Counter.start on node1: {e}"))?;
    let answer = match common::receive::<Report>(&mut me2, SOON) {
        Some(Report::Registered(_, answer)) => answer,
        _ => return Err("the counter did not report its registration".into()),
    };
    t.iex(
        "node1@localhost",
        "{:ok, pid} = GenServer.start(Counter, 0); :global.register_name(:counter, pid)",
        yes_no(answer),
    );
    t.check(answer, "the registration is :yes");

    t.step("node2 and node3 find it by name (a local read, no network)");
    let pid = counter().whereis(&node2);
    for n in [&node2, &node3] {
        let found = global::whereis_name(n, Atom::new("counter"));
        let shown = found.map_or(term!(:undefined), Term::Pid);
        t.iex(n.name().as_str(), ":global.whereis_name(:counter)", &shown);
        t.check(
            found.is_some_and(|p| p.node() == name1) && found == pid,
            format!("{} finds the counter on node1", n.name()),
        );
    }

    t.step(&format!("{K} increments from each node, all at once"));
    let mut bumpers = Vec::new();
    for node in [name1, node2.name(), node3.name()] {
        let mfa = (
            Atom::new("Counter"),
            Atom::new("bump"),
            vec![K.into(), me2.pid().into()],
        );
        let (bumper, _) = net2
            .spawn(&mut me2, node, mfa, oxbeam::node::SpawnRequest::default())
            .map_err(|e| format!("spawn a bumper on {node}: {e}"))?;
        bumpers.push(bumper);
    }
    for b in bumpers {
        me2.send(b, Go::Go);
    }
    let mut numbers = Vec::new();
    for _ in 0..3 {
        let Some(Report::Bumped(from, got)) = common::receive::<Report>(&mut me2, SOON * 3) else {
            return Err("a bumper did not finish".into());
        };
        // Overlapping ranges show the three streams interleaved at the counter.
        let range = |x: Option<&i64>| x.map_or(term!(:nil), |x| term!(*x));
        t.say(format!(
            "{from} did {} increments, numbered between {} and {}",
            got.len(),
            range(got.iter().min()),
            range(got.iter().max()),
        ));
        numbers.extend(got);
    }
    let value = counter().call(&mut me3, Call::Get, SOON)?;
    t.iex(
        "node3@localhost",
        "GenServer.call({:global, :counter}, :get)",
        value,
    );
    let distinct: BTreeSet<i64> = numbers.iter().copied().collect();
    t.check(
        value == 3 * K,
        format!("the counter is {} after 3 x {K} increments", 3 * K),
    );
    t.check(
        numbers.len() == (3 * K) as usize && distinct == (1..=3 * K).collect(),
        "no lost update: the increments got the numbers 1..3000, each exactly once",
    );

    t.step("a second registration of the name");
    let other = me3.pid();
    let yes = global::register_name(&mut me3, Atom::new("counter"), other).is_ok();
    t.iex(
        "node3@localhost",
        ":global.register_name(:counter, self())",
        yes_no(yes),
    );
    t.check(!yes, "the name is taken: :no");
    t.check(
        counter().whereis(&node3) == pid,
        "the name still points at node1's counter",
    );

    t.step("SIGKILL node1: the name goes with its node");
    net2.monitor_node(me2.pid(), name1, true);
    t.iex(
        "node2@localhost",
        "Node.monitor(:node1@localhost, true)",
        term!(true),
    );
    child.kill();
    t.say(format!("kill -9 {} (node1)", child.os_pid()));
    let down = common::receive::<Notice>(&mut me2, SOON).ok_or("no {:nodedown, node1}")?;
    t.iex("node2@localhost", "flush()", &down);
    t.check(
        down == Notice::NodeDown(name1),
        "node2 hears {:nodedown, :node1@localhost}",
    );
    for (n, me) in [(&node2, &mut me2), (&node3, &mut me3)] {
        let gone = wait_for("the name to vanish", SOON, || {
            counter().whereis(n).map_or(Ok(()), Err)
        });
        let now = global::whereis_name(n, Atom::new("counter"));
        let shown = now.map_or(term!(:undefined), Term::Pid);
        t.iex(n.name().as_str(), ":global.whereis_name(:counter)", &shown);
        t.check(gone.is_ok(), format!("the name is gone on {}", n.name()));
        let call = counter().call(me, Call::Get, SOON);
        t.check(call == Err(CallError::NoProc), "a call to it is noproc");
        let names = global::registered_names(n);
        t.iex(
            n.name().as_str(),
            ":global.registered_names()",
            Term::list(names.clone()),
        );
        t.check(names.is_empty(), "no global names left");
    }

    drop((me2, me3));
    node2.shutdown();
    node3.shutdown();
    Ok(())
}
