// cargo run --release --example drill2_remote_messages
//! Drill 2: remote messages. A process registered as `:echo` on node2; node1 sends to
//! `{:echo, :node2@localhost}` and to its pid and gets replies; the same pid prints as
//! `#PID<0.x.y>` on its own node and `#PID<N.x.y>` on the other; a remote spawn by MFA
//! (`Node.spawn(:node2@localhost, Drill, :greet, [self()])`, a registered function)
//! and the reply from the spawned process.

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use common::{SOON, Transcript};
use oxbeam::rt::{Ctx, Dest, Flow, SpawnOpts};
use oxbeam::term::{Atom, Pid, Term};

fn main() -> ExitCode {
    common::init_logging();
    let mut t = Transcript::new("drill2_remote_messages", "send to {name, node} and to pids");
    let outcome = run(&mut t);
    t.finish(outcome)
}

/// The echo server: `{from, msg}` -> `{:echo, node(), self(), msg}`; `{:inspect, from,
/// term}` -> `{:inspected, "term as node2 prints it"}`.
fn echo(ctx: &mut Ctx, m: Term) -> Flow {
    if let Some([Term::Pid(from), msg]) = m.as_tuple() {
        let here = Term::Atom(ctx.node().name());
        ctx.send(*from, (Term::atom("echo"), here, ctx.pid(), msg.clone()));
        Flow::Continue
    } else if let Some([Term::Pid(from), term]) = m.tagged("inspect") {
        // Formatted on node2's thread: node2's pids print as #PID<0.x.y>.
        ctx.send(*from, (Term::atom("inspected"), term.to_string()));
        Flow::Continue
    } else {
        Flow::stop_normal()
    }
}

/// The echo's reply to `msg`, if it came within `SOON`.
fn echo_reply(me: &mut Ctx, msg: &Term) -> Result<Term, String> {
    me.receive_match(
        |m| matches!(m.tagged("echo"), Some([.., x]) if x == msg),
        Some(SOON),
    )
    .ok_or_else(|| format!("no echo of {msg} within {SOON:?}"))
}

/// How node2 (the echo's node) prints `term`.
fn inspect_on_node2(me: &mut Ctx, echo: Pid, term: Term) -> Result<String, String> {
    me.send(echo, (Term::atom("inspect"), me.pid(), term));
    let m = me
        .receive_match(|m| m.tagged("inspected").is_some(), Some(SOON))
        .ok_or("no answer to :inspect")?;
    Ok(m.tagged("inspected")
        .and_then(|r| r[0].as_str())
        .unwrap_or("")
        .to_owned())
}

fn run(t: &mut Transcript) -> Result<(), String> {
    let cookie = common::fresh_cookie();
    // node1 hosts a private port mapper (port 0: on a port it picks); the others are
    // given its port.
    let n1 = common::start_net("node1", 0, &cookie)?;
    let epmd = n1.epmd_port();
    let n2 = common::start_net("node2", epmd, &cookie)?;
    // What node2 lets other nodes spawn: Drill.greet/1 sends
    // {:greetings_from, node(), self()} to its argument.
    n2.node().functions().register(
        Atom::new("Drill"),
        Atom::new("greet"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| {
            if let Some(to) = args.first().and_then(|a| a.as_pid()) {
                let here = Term::Atom(ctx.node().name());
                ctx.send(to, (Term::atom("greetings_from"), here, ctx.pid()));
            }
            Term::ok()
        },
    );
    let node2 = n2.name();

    t.step("on node2: a process registered as :echo");
    let echo_pid = n2.node().spawn_opts(
        echo,
        SpawnOpts {
            register: Some(Atom::new("echo")),
            ..SpawnOpts::default()
        },
    );
    t.iex(
        "node2@localhost",
        "Process.register(spawn(&echo_loop/0), :echo); Process.whereis(:echo)",
        common::shown_on(n2.node(), &Term::Pid(echo_pid)),
    );
    t.check(
        n2.node().whereis(Atom::new("echo")) == Some(echo_pid),
        "registered as :echo",
    );

    t.step("on node1: send to {:echo, :node2@localhost} (connects on first use)");
    let mut me = n1.node().attach();
    let msg = Term::atom("hello");
    me.send_to(
        Dest::NameAt(Atom::new("echo"), node2),
        (me.pid(), msg.clone()),
    )
    .map_err(|e| format!("send to {{:echo, node2}}: {e}"))?;
    t.iex(
        "node1@localhost",
        "send({:echo, :node2@localhost}, {self(), :hello})",
        Term::from((me.pid(), msg.clone())),
    );
    let reply = echo_reply(&mut me, &msg)?;
    t.iex("node1@localhost", "flush()", &reply);
    let parts = reply.as_tuple().unwrap_or(&[]).to_vec();
    t.check(
        parts.get(1) == Some(&Term::Atom(node2)),
        "the reply came back from node2",
    );
    t.check(
        n1.nodes() == vec![node2],
        "sending to {name, node} connected node1 to node2 (Node.list() == [:node2@localhost])",
    );
    let pid = parts
        .get(2)
        .and_then(|p| p.as_pid())
        .ok_or("the reply carries no pid")?;
    t.check(pid == echo_pid, "the pid in the reply is the :echo process");

    t.step("pids: the same process printed on its node and on the other");
    let here = Term::Pid(pid).to_string();
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
    t.iex("node1@localhost", "node(pid)", Term::Atom(pid.node()));
    t.check(pid.node() == node2, "node(pid) is :node2@localhost");
    let me_here = Term::Pid(me.pid()).to_string();
    t.iex("node1@localhost", "self()", &me_here);
    let my_pid = Term::Pid(me.pid());
    let me_there = inspect_on_node2(&mut me, echo_pid, my_pid)?;
    t.say(format!("node2 prints node1's self() as {me_there}"));
    t.check(
        me_here.starts_with("#PID<0.") && !me_there.starts_with("#PID<0."),
        "node1's own pid is #PID<0.x.y> at home and #PID<N.x.y> on node2",
    );

    t.step("send to the pid directly");
    let msg = Term::tuple(vec![Term::atom("by_pid"), Term::Int(42)]);
    me.send(pid, (me.pid(), msg.clone()));
    t.iex(
        "node1@localhost",
        "send(pid, {self(), {:by_pid, 42}})",
        Term::from((me.pid(), msg.clone())),
    );
    let reply = echo_reply(&mut me, &msg)?;
    t.iex("node1@localhost", "flush()", &reply);
    t.check(
        reply.as_tuple().and_then(|r| r.last()) == Some(&msg),
        "the reply carries {:by_pid, 42}",
    );

    t.step("remote spawn by MFA: a registered function, run on node2");
    let mfa = (
        Atom::new("Drill"),
        Atom::new("greet"),
        vec![Term::Pid(me.pid())],
    );
    let spawned = n1
        .spawn(&mut me, node2, mfa, oxbeam::node::SpawnRequest::default())
        .map_err(|e| format!("Node.spawn: {e}"))?
        .0;
    t.iex(
        "node1@localhost",
        "Node.spawn(:node2@localhost, Drill, :greet, [self()])",
        Term::Pid(spawned),
    );
    t.check(spawned.node() == node2, "the new process lives on node2");
    let greeting = me
        .receive_match(|m| m.tagged("greetings_from").is_some(), Some(SOON))
        .ok_or("no greeting from the spawned process")?;
    t.iex("node1@localhost", "flush()", &greeting);
    t.check(
        greeting == Term::from((Term::atom("greetings_from"), node2, spawned)),
        "{:greetings_from, :node2@localhost, pid}: it ran on node2, as the pid Node.spawn returned",
    );

    me.send(echo_pid, Term::atom("stop"));
    drop(me);
    n1.shutdown();
    n2.shutdown();
    Ok(())
}
