// cargo run --release --example drill2_remote_messages
//! Drill 2: remote messages. A process registered as `:echo` on node2; node1 sends to
//! `{:echo, :node2@localhost}` and to its pid and gets replies; the same pid prints as
//! `#PID<0.x.y>` on its own node and `#PID<N.x.y>` on the other; a remote spawn by MFA
//! (`Node.spawn(:node2@localhost, Drill, :greet, [self()])`, a registered function)
//! and the reply from the spawned process.
//!
//! ```elixir
//! iex(node1@localhost)> caller = self()
//! iex(node1@localhost)> Node.spawn(:node2@localhost, fn -> send(caller, {:hello, node()}) end)
//! iex(node1@localhost)> flush()
//! {:hello, :node2@localhost}
//! ```
//!
//! A closure is no term, so it does not cross nodes: the remote spawn names a function
//! registered on node2 (`Drill.greet/1`). The messages are Rust enums ([`ToEcho`],
//! [`Reply`]) converted by `oxbeam::term::to_term`/`from_term`; the ones the drill types
//! at the prompt are `term!` literals.

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use common::{SOON, Transcript};
use oxbeam::prelude::*;
use oxbeam::term::from_term;
use serde::{Deserialize, Serialize};

fn main() -> ExitCode {
    common::init_logging();
    let mut t = Transcript::new("drill2_remote_messages", "send to {name, node} and to pids");
    let outcome = run(&mut t);
    t.finish(outcome)
}

/// What the echo process takes besides `{from, msg}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ToEcho {
    /// `{:inspect, from, term}`: answer with `term` as this node prints it.
    Inspect(Pid, Term),
    /// `:stop`.
    Stop,
}

/// What comes back to node1.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Reply {
    /// `{:echo, node(), self(), msg}`: the echo of `msg`.
    Echo(Atom, Pid, Term),
    /// `{:inspected, "..."}`: a term as the echo's node prints it.
    Inspected(String),
    /// `{:greetings_from, node(), self()}`: from a process running `Drill.greet/1`.
    GreetingsFrom(Atom, Pid),
}
common::message!(ToEcho, Reply);

/// The echo process: `{from, msg}` -> `{:echo, node(), self(), msg}`; `{:inspect,
/// from, term}` -> `{:inspected, "term as node2 prints it"}`; anything else stops it.
fn echo(ctx: &mut Ctx, m: Term) -> Flow {
    if let Ok((from, msg)) = from_term::<(Pid, Term)>(&m) {
        ctx.send(from, Reply::Echo(ctx.node().name(), ctx.pid(), msg));
        return Flow::Continue;
    }
    match from_term::<ToEcho>(&m) {
        Ok(ToEcho::Inspect(from, term)) => {
            // Formatted on node2's thread: node2's pids print as #PID<0.x.y>.
            ctx.send(from, Reply::Inspected(term.to_string()));
            Flow::Continue
        }
        Ok(ToEcho::Stop) | Err(_) => Flow::stop_normal(),
    }
}

/// The echo's reply to `msg`, if it came within `SOON`.
fn echo_reply(me: &mut Ctx, msg: &Term) -> Result<Reply, String> {
    common::receive_where(me, SOON, |r| matches!(r, Reply::Echo(.., x) if x == msg))
        .ok_or_else(|| format!("no echo of {msg} within {SOON:?}"))
}

/// How node2 (the echo's node) prints `term`.
fn inspect_on_node2(me: &mut Ctx, echo: Pid, term: Term) -> Result<String, String> {
    me.send(echo, ToEcho::Inspect(me.pid(), term));
    match common::receive_where(me, SOON, |r| matches!(r, Reply::Inspected(_))) {
        Some(Reply::Inspected(text)) => Ok(text),
        _ => Err("no answer to :inspect".into()),
    }
}

fn run(t: &mut Transcript) -> Result<(), Box<dyn std::error::Error>> {
    let cookie = common::fresh_cookie();
    // node1 hosts a private port mapper (port 0: on a port it picks); node2 is given
    // its port.
    let start =
        |name: &str, port_mapper: u16| common::drill_node(name, &cookie, port_mapper).start();
    let node1 = start("node1@localhost", 0)?;
    let node2 = start("node2@localhost", common::epmd_port(&node1))?;
    // What node2 lets other nodes spawn: Drill.greet(to) sends
    // {:greetings_from, node(), self()} to `to`.
    node2.functions().register(
        Atom::new("Drill"),
        Atom::new("greet"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| {
            if let Ok((to,)) = from_term::<(Pid,)>(&Term::from(args)) {
                ctx.send(to, Reply::GreetingsFrom(ctx.node().name(), ctx.pid()));
            }
            term!(:ok)
        },
    );
    let name2 = node2.name();

    t.step("on node2: a process registered as :echo");
    let echo_pid = node2.spawn(echo);
    node2
        .register(Atom::new("echo"), echo_pid)
        .map_err(|e| format!("Process.register(pid, :echo): {e}"))?;
    t.iex(
        "node2@localhost",
        "Process.register(spawn(&echo_loop/0), :echo); Process.whereis(:echo)",
        common::shown_on(&node2, &Term::Pid(echo_pid)),
    );
    t.check(
        node2.whereis(Atom::new("echo")) == Some(echo_pid),
        "registered as :echo",
    );

    t.step("on node1: send to {:echo, :node2@localhost} (connects on first use)");
    let mut me = node1.attach();
    let msg = term!(:hello);
    me.send_to(
        Dest::NameAt(Atom::new("echo"), name2),
        (me.pid(), msg.clone()),
    )
    .map_err(|e| format!("send to {{:echo, node2}}: {e}"))?;
    t.iex(
        "node1@localhost",
        "send({:echo, :node2@localhost}, {self(), :hello})",
        term!({(me.pid()), (msg.clone())}),
    );
    let reply = echo_reply(&mut me, &msg)?;
    t.iex("node1@localhost", "flush()", &reply);
    let Reply::Echo(from_node, pid, _) = reply else {
        return Err("the echo's reply has another shape".into());
    };
    t.check(from_node == name2, "the reply came back from node2");
    t.check(
        node1.nodes() == vec![name2],
        "sending to {name, node} connected node1 to node2 (Node.list() == [:node2@localhost])",
    );
    t.check(pid == echo_pid, "the pid in the reply is the :echo process");

    t.step("pids: the same process printed on its node and on the other");
    let here = pid.to_string();
    t.iex("node1@localhost", "pid  # from the reply", &here);
    let there = inspect_on_node2(&mut me, echo_pid, Term::Pid(pid))?;
    t.iex("node2@localhost", "Process.whereis(:echo)", &there);
    t.check(
        there.starts_with("#PID<0.") && here.starts_with("#PID<") && !here.starts_with("#PID<0."),
        format!("node2 prints its own process as {there}, node1 prints it as {here}"),
    );
    let numbers = |s: &str| s.split('.').skip(1).map(str::to_owned).collect::<Vec<_>>();
    t.check(
        numbers(&here) == numbers(&there),
        "only the node part differs: the process's numbers are the same on both",
    );
    t.iex("node1@localhost", "node(pid)", pid.node());
    t.check(pid.node() == name2, "node(pid) is :node2@localhost");
    let me_here = me.pid().to_string();
    t.iex("node1@localhost", "self()", &me_here);
    let my_pid = Term::Pid(me.pid());
    let me_there = inspect_on_node2(&mut me, echo_pid, my_pid)?;
    t.say(format!("node2 prints node1's self() as {me_there}"));
    t.check(
        me_here.starts_with("#PID<0.") && !me_there.starts_with("#PID<0."),
        "node1's own pid is #PID<0.x.y> at home and #PID<N.x.y> on node2",
    );

    t.step("send to the pid directly");
    let msg = term!({:by_pid, 42});
    me.send(pid, (me.pid(), msg.clone()));
    t.iex(
        "node1@localhost",
        "send(pid, {self(), {:by_pid, 42}})",
        term!({(me.pid()), (msg.clone())}),
    );
    let reply = echo_reply(&mut me, &msg)?;
    t.iex("node1@localhost", "flush()", &reply);
    t.check(
        matches!(&reply, Reply::Echo(.., x) if *x == msg),
        "the reply carries {:by_pid, 42}",
    );

    t.step("remote spawn by MFA: a registered function, run on node2");
    let mfa = (
        Atom::new("Drill"),
        Atom::new("greet"),
        vec![me.pid().into()],
    );
    let (spawned, _) = common::net(&node1)
        .spawn(&mut me, name2, mfa, oxbeam::node::SpawnRequest::default())
        .map_err(|e| format!("Node.spawn: {e}"))?;
    t.iex(
        "node1@localhost",
        "Node.spawn(:node2@localhost, Drill, :greet, [self()])",
        spawned,
    );
    t.check(spawned.node() == name2, "the new process lives on node2");
    let greeting = common::receive_where(&mut me, SOON, |r| matches!(r, Reply::GreetingsFrom(..)))
        .ok_or("no greeting from the spawned process")?;
    t.iex("node1@localhost", "flush()", &greeting);
    t.check(
        greeting == Reply::GreetingsFrom(name2, spawned),
        "{:greetings_from, :node2@localhost, pid}: it ran on node2, as the pid Node.spawn returned",
    );

    me.send(echo_pid, ToEcho::Stop);
    drop(me);
    node1.shutdown();
    node2.shutdown();
    Ok(())
}
