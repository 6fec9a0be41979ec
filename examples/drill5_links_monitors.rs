// cargo run --release --example drill5_links_monitors
//! Drill 5: links and monitors across nodes. node2 runs as its own OS process (this
//! binary again, in child mode). node1's shell traps exits, links to and monitors a
//! process on node2:
//! - the remote process exits with a reason: `{:EXIT, pid, reason}` for the link,
//!   `{:DOWN, ref, :process, pid, reason}` for the monitor;
//! - node2 is SIGKILLed: `{:DOWN, ref, :process, pid, :noconnection}`, `{:nodedown,
//!   :node2@localhost}` (`Node.monitor`) and `{:EXIT, pid, :noconnection}`; a process
//!   linked to it that does not trap exits dies with `:noconnection`.

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use common::{ChildNode, SOON, Transcript};
use oxbeam::node::Net;
use oxbeam::rt::{Attached, Ctx, Node};
use oxbeam::term::{Atom, Pid, Term};

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

/// `Drill.worker/0`: `{:ping, from}` -> `:pong`; `{:exit, reason}` exits with `reason`.
fn register_functions(node: &Node) {
    node.functions().register(
        Atom::new("Drill"),
        Atom::new("worker"),
        0,
        |ctx: &mut Ctx, _| loop {
            let m = ctx.receive();
            if let Some([Term::Pid(from)]) = m.tagged("ping") {
                ctx.send(*from, Term::atom("pong"));
            } else if let Some([reason]) = m.tagged("exit") {
                ctx.exit(reason.clone());
            }
        },
    );
}

/// A worker on `node`, linked to and monitored by `me` (the link and monitor are in
/// place on node2 once the `:pong` to a ping sent after them comes back).
fn linked_worker(
    t: &mut Transcript,
    net: &Net,
    me: &mut Attached,
    node: Atom,
) -> Result<(Pid, oxbeam::term::Ref), String> {
    let mfa = (Atom::new("Drill"), Atom::new("worker"), vec![]);
    let (pid, _) = net
        .spawn(me, node, mfa, oxbeam::node::SpawnRequest::default())
        .map_err(|e| format!("Node.spawn on node2: {e}"))?;
    t.iex(
        "node1@localhost",
        "pid = Node.spawn(:node2@localhost, Drill, :worker, [])",
        Term::Pid(pid),
    );
    me.link(pid).map_err(|e| format!("link: {e}"))?;
    t.iex("node1@localhost", "Process.link(pid)", Term::from(true));
    let r = me.monitor(pid);
    t.iex(
        "node1@localhost",
        "ref = Process.monitor(pid)",
        Term::Ref(r),
    );
    me.send(pid, (Term::atom("ping"), me.pid()));
    me.receive_match(|m| m.is_atom("pong"), Some(SOON))
        .ok_or("the worker did not answer a ping")?;
    Ok((pid, r))
}

/// Waits (at most `SOON`) for the message `want`, printed as `flush()` shows it; on a
/// miss, the check fails and shows what the mailbox held instead.
fn expect(t: &mut Transcript, me: &mut Attached, want: Term, what: &str) {
    let got = me.receive_match(|m| *m == want, Some(SOON));
    match got {
        Some(m) => {
            t.iex("node1@localhost", "flush()", &m);
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

fn run(t: &mut Transcript) -> Result<(), String> {
    let cookie = common::fresh_cookie();
    // node1 first: it hosts a private port mapper (port 0: on a port it picks) and
    // outlives node2.
    let n1 = common::start_net("node1", 0, &cookie)?;
    let epmd = n1.epmd_port();
    let mut child = ChildNode::start("node2", epmd, &cookie)?;
    let node2 = Atom::new(&child.name);
    t.say(format!(
        "node2 runs as OS process {} (this example in child mode)",
        child.os_pid()
    ));
    let up = n1.connect(&child.name).is_ok();
    t.iex(
        "node1@localhost",
        "Node.connect(:node2@localhost)",
        Term::from(up),
    );
    t.check(up, "node1 connected to node2");
    let mut me = n1.node().attach();
    let was = me.trap_exit(true);
    t.iex(
        "node1@localhost",
        "Process.flag(:trap_exit, true)",
        Term::from(was),
    );

    t.step("the remote process exits with a reason");
    let (pid, r) = linked_worker(t, &n1, &mut me, node2)?;
    let reason = Term::tuple(vec![Term::atom("shutdown"), Term::atom("tired")]);
    me.send(pid, (Term::atom("exit"), reason.clone()));
    t.iex(
        "node1@localhost",
        "send(pid, {:exit, {:shutdown, :tired}})  # the worker calls exit(reason)",
        Term::from((Term::atom("exit"), reason.clone())),
    );
    let exit = Term::from((Term::atom("EXIT"), pid, reason.clone()));
    expect(t, &mut me, exit, "the link: {:EXIT, pid, reason}");
    let down = Term::from((
        Term::atom("DOWN"),
        r,
        Term::atom("process"),
        pid,
        reason.clone(),
    ));
    expect(
        t,
        &mut me,
        down,
        "the monitor: {:DOWN, ref, :process, pid, reason}",
    );
    t.check(
        n1.nodes() == vec![node2],
        "node2 is still up: only the process is gone",
    );

    t.step("node2 is killed");
    let (pid, r) = linked_worker(t, &n1, &mut me, node2)?;
    n1.monitor_node(me.pid(), node2, true);
    t.iex(
        "node1@localhost",
        "Node.monitor(:node2@localhost, true)",
        Term::from(true),
    );
    // A bystander on node1, linked to the worker without trapping exits.
    let report = me.pid();
    let bystander = n1.node().spawn_task(move |ctx: &mut Ctx| {
        let linked = ctx.link(pid).is_ok();
        ctx.send(report, (Term::atom("linked"), linked));
        loop {
            ctx.receive();
        }
    });
    let watch = me.monitor(bystander);
    let linked = me.receive_match(|m| m.tagged("linked").is_some(), Some(SOON));
    t.say(format!(
        "{bystander} on node1 links to the worker too, without trapping exits"
    ));
    t.check(
        linked == Some(Term::from((Term::atom("linked"), true))),
        "the bystander is linked",
    );
    child.kill();
    t.say(format!("kill -9 {} (node2)", child.os_pid()));
    let down = Term::from((
        Term::atom("DOWN"),
        r,
        Term::atom("process"),
        pid,
        Term::atom("noconnection"),
    ));
    expect(
        t,
        &mut me,
        down,
        "the monitor: {:DOWN, ref, :process, pid, :noconnection}",
    );
    let nodedown = Term::from((Term::atom("nodedown"), node2));
    expect(
        t,
        &mut me,
        nodedown,
        "Node.monitor: {:nodedown, :node2@localhost}",
    );
    let exit = Term::from((Term::atom("EXIT"), pid, Term::atom("noconnection")));
    expect(t, &mut me, exit, "the link: {:EXIT, pid, :noconnection}");
    let gone = Term::from((
        Term::atom("DOWN"),
        watch,
        Term::atom("process"),
        bystander,
        Term::atom("noconnection"),
    ));
    expect(
        t,
        &mut me,
        gone,
        "the bystander (not trapping) died with :noconnection",
    );
    t.iex("node1@localhost", "Node.list()", common::atoms(&n1.nodes()));
    t.check(n1.nodes().is_empty(), "node2 is gone from Node.list()");

    drop(me);
    n1.shutdown();
    Ok(())
}
