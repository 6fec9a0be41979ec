// cargo run --release --example drill7_gotchas
//! Drill 7: the gotchas of distribution, each shown and checked.
//! - MFA vs closures: a closure is not a term, so it can't be sent or spawned on another
//!   node; remote spawn names a function registered on the *target* node.
//! - Pid representation: one process, `#PID<0.x.y>` on its node and `#PID<N.x.y>`
//!   elsewhere; a pid sent to another node and back compares equal.
//! - A 10 MB message crosses intact (length and checksum) while small round trips to
//!   another process on that node keep flowing.
//! - A node with another cookie can't connect: `Node.connect` is `false`, the nodes stay
//!   apart.

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{SOON, Transcript, wait_for};
use oxbeam::rt::{Ctx, Flow};
use oxbeam::term::{Atom, Binary, Pid, Term};

/// The big message's size.
const BIG: usize = 10 << 20;

fn main() -> ExitCode {
    common::init_logging();
    let mut t = Transcript::new("drill7_gotchas", "closures, pids, big messages, cookies");
    let outcome = run(&mut t);
    t.finish(outcome)
}

/// FNV-1a, 64 bits.
fn checksum(bytes: &[u8]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// `BIG` pseudo-random bytes (xorshift), so a misplaced fragment changes the checksum.
fn big_payload() -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..BIG)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Echo: `{from, x}` -> `x`; `{:inspect, from, x}` -> x as this node prints it.
fn echo(ctx: &mut Ctx, m: Term) -> Flow {
    if let Some([Term::Pid(from), term]) = m.tagged("inspect") {
        ctx.send(*from, (Term::atom("inspected"), term.to_string()));
    } else if let Some([Term::Pid(from), x]) = m.as_tuple() {
        ctx.send(*from, x.clone());
    }
    Flow::Continue
}

/// Sink: `{from, binary}` -> `{:received, byte_size, checksum}`.
fn sink(ctx: &mut Ctx, m: Term) -> Flow {
    if let Some([Term::Pid(from), bin]) = m.as_tuple() {
        let bytes = bin.as_bytes().unwrap_or(&[]);
        ctx.send(
            *from,
            (Term::atom("received"), bytes.len(), checksum(bytes)),
        );
    }
    Flow::Continue
}

fn run(t: &mut Transcript) -> Result<(), String> {
    let cookie = common::fresh_cookie();
    // node1 hosts a private port mapper (port 0: on a port it picks); the others are
    // given its port.
    let n1 = common::start_net("node1", 0, &cookie)?;
    let epmd = n1.epmd_port();
    let n2 = common::start_net("node2", epmd, &cookie)?;
    let node2 = n2.name();
    // Registered on node2 only: Drill.hello(to) sends {:hello_from, node()} to `to`.
    n2.node().functions().register(
        Atom::new("Drill"),
        Atom::new("hello"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| {
            if let Some(to) = args[0].as_pid() {
                ctx.send(to, (Term::atom("hello_from"), ctx.node().name()));
            }
            Term::ok()
        },
    );
    // Registered on node1 only, as a closure defined in node1's code would be.
    n1.node().functions().register(
        Atom::new("Drill"),
        Atom::new("only_on_node1"),
        0,
        |_: &mut Ctx, _| Term::ok(),
    );
    if n1.connect("node2@localhost").is_err() {
        return Err("node1 could not connect to node2".into());
    }
    let mut me = n1.node().attach();

    t.step("MFA vs closures");
    t.say("Node.spawn(:node2@localhost, fn -> ... end) has no oxbeam form: a closure is no Term,");
    t.say(
        "so it can be neither sent (send(pid, fn -> end) does not compile) nor spawned remotely;",
    );
    t.say("Net::spawn takes (module, function, args) and the target looks the name up.");
    let local = n1.node().spawn(|_: &mut Ctx, _: Term| Flow::stop_normal());
    t.iex("node1@localhost", "spawn(fn -> ... end)", Term::Pid(local));
    t.check(
        local.node() == n1.name(),
        "a closure spawns only here, on node1",
    );
    let mfa = (
        Atom::new("Drill"),
        Atom::new("hello"),
        vec![Term::Pid(me.pid())],
    );
    let r = n1.spawn(&mut me, node2, mfa, oxbeam::node::SpawnRequest::default());
    let shown = r
        .as_ref()
        .map_or_else(|e| e.reason(), |(p, _)| Term::Pid(*p));
    t.iex(
        "node1@localhost",
        "Node.spawn(:node2@localhost, Drill, :hello, [self()])",
        &shown,
    );
    let hello = me.receive_match(|m| m.tagged("hello_from").is_some(), Some(SOON));
    if let Some(h) = &hello {
        t.iex("node1@localhost", "flush()", h);
    }
    t.check(
        r.is_ok() && hello == Some(Term::from((Term::atom("hello_from"), node2))),
        "the MFA form runs on node2 and answers",
    );
    let mfa = (Atom::new("Drill"), Atom::new("only_on_node1"), vec![]);
    let r = n1.spawn(&mut me, node2, mfa, oxbeam::node::SpawnRequest::default());
    let shown = r
        .as_ref()
        .map_or_else(|e| e.reason(), |(p, _)| Term::Pid(*p));
    t.iex(
        "node1@localhost",
        "Node.spawn(:node2@localhost, Drill, :only_on_node1, [])",
        &shown,
    );
    t.check(
        matches!(r, Err(oxbeam::node::RemoteSpawnError::Undefined(_))),
        "code that exists only on node1 can't run on node2: {:undef, {m, f, arity}}",
    );

    t.step("pid representation");
    let echo_pid = n2.node().spawn(echo);
    let inspect_on_node2 = |me: &mut oxbeam::rt::Attached, x: Term| -> Result<String, String> {
        me.send(echo_pid, (Term::atom("inspect"), me.pid(), x));
        let m = me
            .receive_match(|m| m.tagged("inspected").is_some(), Some(SOON))
            .ok_or("no :inspected reply")?;
        Ok(m.tagged("inspected")
            .and_then(|r| r[0].as_str())
            .unwrap_or("")
            .to_owned())
    };
    let there = inspect_on_node2(&mut me, Term::Pid(echo_pid))?;
    let here = Term::Pid(echo_pid).to_string();
    t.iex("node2@localhost", "self()  # in the echo process", &there);
    t.iex("node1@localhost", "echo_pid", &here);
    t.check(
        there.starts_with("#PID<0.") && !here.starts_with("#PID<0."),
        "the same pid: #PID<0.x.y> on its own node, #PID<N.x.y> on another",
    );
    let my_pid = me.pid();
    me.send(echo_pid, (me.pid(), (Term::atom("pid"), my_pid)));
    t.iex(
        "node1@localhost",
        "send(echo_pid, {self(), {:pid, self()}})",
        Term::from((my_pid, (Term::atom("pid"), my_pid))),
    );
    let back = me.receive_match(|m| m.tagged("pid").is_some(), Some(SOON));
    let back_pid: Option<Pid> = back
        .as_ref()
        .and_then(|m| m.tagged("pid"))
        .and_then(|r| r[0].as_pid());
    t.iex(
        "node1@localhost",
        "receive do {:pid, p} -> p == self() end",
        Term::from(back_pid == Some(my_pid)),
    );
    t.check(
        back_pid == Some(my_pid),
        "a pid sent to node2 and back compares equal to self()",
    );

    t.step("a 10 MB message while small round trips go on");
    let sink_pid = n2.node().spawn(sink);
    // A second process of node1 pings node2's echo, timing each round trip.
    let (done, rounds) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let pinger = {
        let (node, done, rounds) = (n1.node().clone(), done.clone(), rounds.clone());
        std::thread::spawn(move || {
            let mut p = node.attach();
            let mut log: Vec<(Instant, Duration)> = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let sent = Instant::now();
                p.send(echo_pid, (p.pid(), Term::atom("ping")));
                if p.receive_match(|m| m.is_atom("ping"), Some(SOON)).is_none() {
                    return Err(format!("a small round trip got no answer in {SOON:?}"));
                }
                log.push((sent, sent.elapsed()));
                rounds.fetch_add(1, Ordering::Relaxed);
            }
            Ok(log)
        })
    };
    wait_for("the pinger to get going", SOON, || {
        let n = rounds.load(Ordering::Relaxed);
        if n >= 20 { Ok(n) } else { Err(n) }
    })?;
    let payload = big_payload();
    let want = (payload.len(), checksum(&payload));
    let bin = Term::Binary(Binary::from(payload));
    let start = Instant::now();
    me.send(sink_pid, (me.pid(), bin));
    t.iex(
        "node1@localhost",
        "send(sink, {self(), :crypto.strong_rand_bytes(10 * 1024 * 1024)})",
        format!("{{{}, <<... {BIG} bytes ...>>}}", Term::Pid(me.pid())),
    );
    let got = me.receive_match(|m| m.tagged("received").is_some(), Some(SOON));
    let end = Instant::now();
    done.store(true, Ordering::Relaxed);
    let log = pinger.join().map_err(|_| "the pinger panicked")??;
    if let Some(g) = &got {
        t.iex("node1@localhost", "flush()", g);
    }
    t.check(
        got == Some(Term::from((Term::atom("received"), want.0, want.1))),
        format!(
            "node2 got all {} bytes with the same checksum ({:?} end to end)",
            want.0,
            end - start
        ),
    );
    // Round trips that started and came back while the big message was on its way.
    let during = log
        .iter()
        .filter(|(s, d)| *s >= start && *s + *d <= end)
        .count();
    let max_rtt = log.iter().map(|(_, d)| *d).max().unwrap_or_default();
    t.say(format!(
        "{} small round trips in all, {during} of them while the 10 MB was in flight; slowest {max_rtt:?}",
        log.len(),
    ));
    t.check(
        during > 0 && max_rtt < Duration::from_secs(1),
        "small round trips kept completing during the transfer, none held up for long",
    );

    t.step("a cookie mismatch");
    let n4 = common::start_bare_net("node4", epmd, "not-the-same-cookie")?;
    let start = Instant::now();
    let up = n4.connect("node1@localhost").is_ok();
    t.iex(
        "node4@localhost",
        "Node.connect(:node1@localhost)  # another cookie",
        Term::from(up),
    );
    t.check(
        !up,
        format!(
            "refused: Node.connect is false (after {:?})",
            start.elapsed()
        ),
    );
    let up = n1.connect("node4@localhost").is_ok();
    t.iex(
        "node1@localhost",
        "Node.connect(:node4@localhost)",
        Term::from(up),
    );
    t.check(!up, "refused the other way too");
    t.iex("node1@localhost", "Node.list()", common::atoms(&n1.nodes()));
    t.iex("node4@localhost", "Node.list()", common::atoms(&n4.nodes()));
    t.check(
        n1.nodes() == vec![node2] && n4.nodes().is_empty(),
        "the nodes stay apart: node1 sees only node2, node4 sees nobody",
    );
    me.send(echo_pid, (me.pid(), Term::atom("still_here")));
    t.check(
        me.receive_match(|m| m.is_atom("still_here"), Some(SOON))
            .is_some(),
        "node1 <-> node2 traffic is unaffected",
    );

    drop(me);
    for n in [n1, n2, n4] {
        n.shutdown();
    }
    Ok(())
}
