// cargo run --release --example drill3_global_counter
//! Drill 3: a global counter. node1 runs as its own OS process (this binary again, in
//! child mode); node2 and node3 run here. A counter process on node1 registers itself
//! with `:global.register_name(:counter, pid)`; node2 and node3 find it with
//! `:global.whereis_name(:counter)`; processes on all three nodes increment it at once
//! and no update is lost (every increment gets its own number, 1..=3k); a second
//! registration of the name gives `:no`. Then node1 is SIGKILLed and the name is gone
//! everywhere.

#[path = "common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::process::ExitCode;

use common::{ChildNode, SOON, Transcript, wait_for};
use oxbeam::dist::global;
use oxbeam::rt::{Ctx, Node};
use oxbeam::term::{Atom, Term};

/// Increments per node.
const K: i64 = 1000;
/// Increments a bumper has in flight at a time.
const WINDOW: i64 = 8;

fn main() -> ExitCode {
    common::run_child_if_asked(register_functions);
    common::init_logging();
    let mut t = Transcript::new("drill3_global_counter", "one counter, three nodes");
    let outcome = run(&mut t);
    t.finish(outcome)
}

/// `Counter.start/1` and `Counter.bump/2`, on every node of the drill.
fn register_functions(node: &Node) {
    let f = node.functions();
    // start(report): registers itself globally as :counter, reports
    // {:registered, node(), :yes | :no}, then serves {:incr, from} -> {:count, n} and
    // {:get, from} -> {:value, n}; one message at a time, so no update is lost.
    f.register(
        Atom::new("Counter"),
        Atom::new("start"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| {
            let Some(report) = args[0].as_pid() else {
                return Term::atom("badarg");
            };
            let _ = global::sync(ctx, SOON);
            let me = ctx.pid();
            let yes = global::register_name(ctx, Atom::new("counter"), me).is_ok();
            let answer = Term::atom(if yes { "yes" } else { "no" });
            let here = Term::Atom(ctx.node().name());
            ctx.send(report, (Term::atom("registered"), here, answer));
            let mut n = 0i64;
            loop {
                let m = ctx.receive();
                if let Some([Term::Pid(from)]) = m.tagged("incr") {
                    n += 1;
                    ctx.send(*from, (Term::atom("count"), n));
                } else if let Some([Term::Pid(from)]) = m.tagged("get") {
                    ctx.send(*from, (Term::atom("value"), n));
                } else if m.is_atom("stop") {
                    return Term::ok();
                }
            }
        },
    );
    // bump(k, report): on :go, k increments of the :counter found with whereis_name on
    // this node, WINDOW of them in flight at a time (the counter answers each with its
    // number); reports {:bumped, node(), [numbers]} once every answer is in.
    f.register(
        Atom::new("Counter"),
        Atom::new("bump"),
        2,
        |ctx: &mut Ctx, args: Vec<Term>| {
            let (Some(k), Some(report)) = (args[0].as_int(), args[1].as_pid()) else {
                return Term::atom("badarg");
            };
            let here = Term::Atom(ctx.node().name());
            let Some(counter) = global::whereis_name(ctx.node(), Atom::new("counter")) else {
                ctx.send(
                    report,
                    (Term::atom("bumped"), here, Term::atom("undefined")),
                );
                return Term::atom("undefined");
            };
            let me = ctx.pid();
            // All three start together, so their increments interleave at the counter.
            ctx.receive_match(|m| m.is_atom("go"), Some(SOON));
            let mut sent = 0;
            while sent < k.min(WINDOW) {
                ctx.send(counter, (Term::atom("incr"), me));
                sent += 1;
            }
            let mut got = Vec::with_capacity(k as usize);
            while (got.len() as i64) < k {
                let Some(m) = ctx.receive_match(|m| m.tagged("count").is_some(), Some(SOON)) else {
                    break;
                };
                got.push(m.tagged("count").map_or(Term::nil(), |c| c[0].clone()));
                if sent < k {
                    ctx.send(counter, (Term::atom("incr"), me));
                    sent += 1;
                }
            }
            ctx.send(report, (Term::atom("bumped"), here, got));
            Term::ok()
        },
    );
}

fn run(t: &mut Transcript) -> Result<(), String> {
    let cookie = common::fresh_cookie();
    // node2 first: it hosts a private port mapper (port 0: on a port it picks), which
    // must outlive node1.
    let n2 = common::start_net("node2", 0, &cookie)?;
    let epmd = n2.epmd_port();
    let n3 = common::start_net("node3", epmd, &cookie)?;
    for n in [&n2, &n3] {
        register_functions(n.node());
    }
    let mut child = ChildNode::start("node1", epmd, &cookie)?;
    let node1 = Atom::new(&child.name);
    t.say(format!(
        "node1 runs as OS process {} (this example in child mode); node2, node3 run here",
        child.os_pid()
    ));
    let mut me2 = n2.node().attach();
    let mut me3 = n3.node().attach();
    for (me, n) in [(&mut me2, &n2), (&mut me3, &n3)] {
        let up = oxbeam::dist::connect(me, n, &child.name, SOON).is_ok();
        t.iex(
            n.name().as_str(),
            "Node.connect(:node1@localhost)",
            Term::from(up),
        );
        t.check(up, format!("{} connected, global synced", n.name()));
    }
    wait_for("a mesh of three", SOON, || {
        let seen = (n2.nodes(), n3.nodes());
        if seen.0.len() == 2 && seen.1.len() == 2 {
            Ok(())
        } else {
            Err(seen)
        }
    })?;
    for me in [&mut me2, &mut me3] {
        let _ = global::sync(me, SOON);
    }

    t.step("on node1: the counter registers itself globally");
    let mfa = (
        Atom::new("Counter"),
        Atom::new("start"),
        vec![Term::Pid(me2.pid())],
    );
    let (counter, _) = n2
        .spawn(&mut me2, node1, mfa, oxbeam::node::SpawnRequest::default())
        .map_err(|e| format!("spawn the counter on node1: {e}"))?;
    let reg = me2
        .receive_match(|m| m.tagged("registered").is_some(), Some(SOON))
        .ok_or("the counter did not report its registration")?;
    let answer = reg
        .tagged("registered")
        .map_or(Term::nil(), |r| r[1].clone());
    t.iex(
        "node1@localhost",
        "pid = spawn(Counter, :loop, [0]); :global.register_name(:counter, pid)",
        &answer,
    );
    t.check(
        answer.is_atom("yes"),
        ":global.register_name(:counter, pid) is :yes",
    );

    t.step("node2 and node3 find it by name (a local read, no network)");
    for (n, me) in [(&n2, &me2), (&n3, &me3)] {
        let found = global::whereis_name(me.node(), Atom::new("counter"));
        let shown = found.map(Term::Pid).unwrap_or(Term::atom("undefined"));
        t.iex(n.name().as_str(), ":global.whereis_name(:counter)", &shown);
        t.check(
            found == Some(counter),
            format!("{} finds the counter on node1", n.name()),
        );
    }

    t.step(&format!("{K} increments from each node, all at once"));
    let report = me2.pid();
    let mut bumpers = Vec::new();
    for node in [node1, n2.name(), n3.name()] {
        let mfa = (
            Atom::new("Counter"),
            Atom::new("bump"),
            vec![Term::Int(K), Term::Pid(report)],
        );
        let (bumper, _) = n2
            .spawn(&mut me2, node, mfa, oxbeam::node::SpawnRequest::default())
            .map_err(|e| format!("spawn a bumper on {node}: {e}"))?;
        bumpers.push(bumper);
    }
    for b in bumpers {
        me2.send(b, Term::atom("go"));
    }
    let mut numbers = Vec::new();
    for _ in 0..3 {
        let m = me2
            .receive_match(|m| m.tagged("bumped").is_some(), Some(SOON))
            .ok_or("a bumper did not finish")?;
        let r = m.tagged("bumped").unwrap_or(&[]).to_vec();
        let got: Vec<i64> = r[1]
            .as_list()
            .unwrap_or(&[])
            .iter()
            .filter_map(|c| c.as_int())
            .collect();
        // Overlapping ranges show the three streams interleaved at the counter.
        let (lo, hi) = (got.iter().min(), got.iter().max());
        t.say(format!(
            "{} did {} increments, numbered between {} and {}",
            r[0],
            got.len(),
            lo.map_or(Term::nil(), |x| Term::Int(*x)),
            hi.map_or(Term::nil(), |x| Term::Int(*x)),
        ));
        numbers.extend(got);
    }
    me3.send(counter, (Term::atom("get"), me3.pid()));
    let value = me3
        .receive_match(|m| m.tagged("value").is_some(), Some(SOON))
        .ok_or("no answer to {:get, self()}")?;
    t.iex(
        "node3@localhost",
        "send(:global.whereis_name(:counter), {:get, self()}); flush()",
        &value,
    );
    let distinct: BTreeSet<i64> = numbers.iter().copied().collect();
    t.check(
        value == Term::from((Term::atom("value"), 3 * K)),
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
        Term::atom(if yes { "yes" } else { "no" }),
    );
    t.check(!yes, "the name is taken: :no");
    t.check(
        global::whereis_name(n3.node(), Atom::new("counter")) == Some(counter),
        "the name still points at node1's counter",
    );

    t.step("SIGKILL node1: the name goes with its node");
    n2.monitor_node(me2.pid(), node1, true);
    t.iex(
        "node2@localhost",
        "Node.monitor(:node1@localhost, true)",
        Term::from(true),
    );
    child.kill();
    t.say(format!("kill -9 {} (node1)", child.os_pid()));
    let down = me2
        .receive_match(|m| m.tagged("nodedown").is_some(), Some(SOON))
        .ok_or("no {:nodedown, :node1@localhost}")?;
    t.iex("node2@localhost", "flush()", &down);
    t.check(
        down == Term::from((Term::atom("nodedown"), node1)),
        "node2 hears {:nodedown, :node1@localhost}",
    );
    for (n, me) in [(&n2, &me2), (&n3, &me3)] {
        let gone = wait_for("the name to vanish", SOON, || {
            match global::whereis_name(me.node(), Atom::new("counter")) {
                None => Ok(()),
                Some(p) => Err(p),
            }
        });
        let now = global::whereis_name(me.node(), Atom::new("counter"));
        let shown = now.map(Term::Pid).unwrap_or(Term::atom("undefined"));
        t.iex(n.name().as_str(), ":global.whereis_name(:counter)", &shown);
        t.check(gone.is_ok(), format!("the name is gone on {}", n.name()));
        let names = global::registered_names(me.node());
        t.iex(
            n.name().as_str(),
            ":global.registered_names()",
            common::atoms(&names),
        );
        t.check(names.is_empty(), "no global names left");
    }

    drop(me2);
    drop(me3);
    n2.shutdown();
    n3.shutdown();
    Ok(())
}
