// cargo run --release --example drill5_links_monitors
//! Drill 5: links and monitors across nodes. node2 runs as its own OS process (this
//! binary again, in child mode). node1's shell traps exits, links to and monitors a
//! process on node2:
//! - the remote process exits with a reason: `{:EXIT, pid, reason}` for the link,
//!   `{:DOWN, ref, :process, pid, reason}` for the monitor;
//! - node2 is SIGKILLed: `{:DOWN, ref, :process, pid, :noconnection}`, `{:nodedown,
//!   :node2@localhost}` (`Node.monitor`) and `{:EXIT, pid, :noconnection}`; a process
//!   linked to it that does not trap exits dies with `:noconnection`.
//!
//! ```elixir
//! iex(node2@localhost)> ref = Process.monitor(pid)
//! iex(node1@localhost)> send(pid, :stop)
//! iex(node2@localhost)> flush()
//! {:DOWN, #Reference<...>, :process, #PID<7954.123.0>, :normal}
//! Node.monitor(:node2@localhost, true)
//! flush()   # after the node is gone
//! {:DOWN, #Reference<...>, :process, #PID<...>, :noconnection}
//! ```
//!
//! The worker's messages are a Rust enum ([`ToWorker`]); what the runtime sends back
//! (`{:EXIT, ...}`, `{:DOWN, ...}`, `{:nodedown, ...}`) decodes as a `common::Notice`.

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use common::{ChildNode, Notice, SOON, Transcript};
use oxbeam::prelude::*;
use oxbeam::term::from_term;
use serde::{Deserialize, Serialize};

fn main() -> ExitCode {
    common::run_child_if_asked(register_functions);
    common::init_logging();
    let mut t = Transcript::new(
        "drill5_links_monitors",
        "exits and node loss, seen from afar",
    );
    let outcome = run(&mut t);
    t.finish(outcome)
}

/// What the worker takes: `{:ping, from}` (answered `:pong`), `{:exit, reason}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ToWorker {
    Ping(Pid),
    Exit(Term),
}

/// The worker's answer to a ping: `:pong`; and the bystander's `{:linked, true}`.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Pong,
    Linked(bool),
}
common::message!(ToWorker, Answer);

/// `Drill.worker/0`: `{:ping, from}` -> `:pong`; `{:exit, reason}` exits with `reason`.
fn register_functions(node: &Node) {
    node.functions().register(
        Atom::new("Drill"),
        Atom::new("worker"),
        0,
        |ctx: &mut Ctx, _| loop {
            match from_term::<ToWorker>(&ctx.receive()) {
                Ok(ToWorker::Ping(from)) => ctx.send(from, Answer::Pong),
                Ok(ToWorker::Exit(reason)) => ctx.exit(reason),
                Err(_) => {}
            }
        },
    );
}

/// A worker on `node`, linked to and monitored by `me` (the link and monitor are in
/// place on node2 once the `:pong` to a ping sent after them comes back).
fn linked_worker(
    t: &mut Transcript,
    net: &oxbeam::node::Net,
    me: &mut Ctx,
    node: Atom,
) -> Result<(Pid, Ref), String> {
    let mfa = (Atom::new("Drill"), Atom::new("worker"), vec![]);
    let (pid, _) = net
        .spawn(me, node, mfa, oxbeam::node::SpawnRequest::default())
        .map_err(|e| format!("Node.spawn on node2: {e}"))?;
    t.iex(
        "node1@localhost",
        "pid = Node.spawn(:node2@localhost, Drill, :worker, [])",
        pid,
    );
    me.link(pid).map_err(|e| format!("link: {e}"))?;
    t.iex("node1@localhost", "Process.link(pid)", term!(true));
    let r = me.monitor(pid);
    t.iex("node1@localhost", "ref = Process.monitor(pid)", r);
    me.send(pid, ToWorker::Ping(me.pid()));
    common::receive_where(me, SOON, |a: &Answer| *a == Answer::Pong)
        .ok_or("the worker did not answer a ping")?;
    Ok((pid, r))
}

/// Waits (at most `SOON`) for the notice `want`, printed as `flush()` shows it; on a
/// miss, the check fails and shows what the mailbox held instead.
fn expect(t: &mut Transcript, me: &mut Ctx, want: Notice, what: &str) {
    match common::receive_where(me, SOON, |n: &Notice| *n == want) {
        Some(n) => {
            t.iex("node1@localhost", "flush()", &n);
            t.check(true, what);
        }
        None => {
            let other = me.flush();
            t.check(
                false,
                format!("{what}: wanted {want}, mailbox {}", Term::list(other)),
            );
        }
    }
}

fn run(t: &mut Transcript) -> Result<(), Box<dyn std::error::Error>> {
    let cookie = common::fresh_cookie();
    // node1 first: it hosts a private port mapper (port 0: on a port it picks) and
    // outlives node2.
    let node1 = common::drill_node("node1@localhost", &cookie, 0).start()?;
    let net1 = common::net(&node1);
    let mut child = ChildNode::start("node2", net1.epmd_port(), &cookie)?;
    let node2 = Atom::new(&child.name);
    t.say(format!(
        "node2 runs as OS process {} (this example in child mode)",
        child.os_pid()
    ));
    let up = node1.connect(&child.name);
    t.iex(
        "node1@localhost",
        "Node.connect(:node2@localhost)",
        term!(up.is_ok()),
    );
    t.check(up.is_ok(), "node1 connected to node2");
    let mut me = node1.attach();
    let was = me.trap_exit(true);
    t.iex(
        "node1@localhost",
        "Process.flag(:trap_exit, true)",
        term!(was),
    );

    t.step("the remote process exits with a reason");
    let (pid, r) = linked_worker(t, net1, &mut me, node2)?;
    let reason = term!({:shutdown, :tired});
    me.send(pid, ToWorker::Exit(reason.clone()));
    t.iex(
        "node1@localhost",
        "send(pid, {:exit, {:shutdown, :tired}})  # the worker calls exit(reason)",
        ToWorker::Exit(reason.clone()),
    );
    let exit = Notice::Exit(pid, reason.clone());
    expect(t, &mut me, exit, "the link: {:EXIT, pid, reason}");
    let down = Notice::down(r, pid, reason);
    let what = "the monitor: {:DOWN, ref, :process, pid, reason}";
    expect(t, &mut me, down, what);
    t.check(
        node1.nodes() == vec![node2],
        "node2 is still up: only the process is gone",
    );

    t.step("node2 is killed");
    let (pid, r) = linked_worker(t, net1, &mut me, node2)?;
    net1.monitor_node(me.pid(), node2, true);
    t.iex(
        "node1@localhost",
        "Node.monitor(:node2@localhost, true)",
        term!(true),
    );
    // A bystander on node1, linked to the worker without trapping exits.
    let report = me.pid();
    let bystander = node1.spawn_task(move |ctx: &mut Ctx| {
        let linked = ctx.link(pid).is_ok();
        ctx.send(report, Answer::Linked(linked));
        loop {
            ctx.receive();
        }
    });
    let watch = me.monitor(bystander);
    let linked = common::receive_where(&mut me, SOON, |a| matches!(a, Answer::Linked(_)));
    t.say(format!(
        "{bystander} on node1 links to the worker too, without trapping exits"
    ));
    t.check(
        linked == Some(Answer::Linked(true)),
        "the bystander is linked",
    );
    child.kill();
    t.say(format!("kill -9 {} (node2)", child.os_pid()));
    let noconnection = term!(:noconnection);
    let down = Notice::down(r, pid, noconnection.clone());
    let what = "the monitor: {:DOWN, ref, :process, pid, :noconnection}";
    expect(t, &mut me, down, what);
    let nodedown = Notice::NodeDown(node2);
    let what = "Node.monitor: {:nodedown, :node2@localhost}";
    expect(t, &mut me, nodedown, what);
    let exit = Notice::Exit(pid, noconnection.clone());
    expect(t, &mut me, exit, "the link: {:EXIT, pid, :noconnection}");
    let gone = Notice::down(watch, bystander, noconnection);
    let what = "the bystander (not trapping) died with :noconnection";
    expect(t, &mut me, gone, what);
    t.iex(
        "node1@localhost",
        "Node.list()",
        common::atoms(&node1.nodes()),
    );
    t.check(node1.nodes().is_empty(), "node2 is gone from Node.list()");

    drop(me);
    node1.shutdown();
    Ok(())
}
