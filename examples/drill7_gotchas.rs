// cargo run --release --example drill7_gotchas
//! Drill 7: the gotchas of distribution, each shown and checked: a closure is not a
//! term, so remote spawn names a function registered on the *target* node (MFA); one
//! pid prints `#PID<0.x.y>` on its node and `#PID<N.x.y>` elsewhere, and comes back
//! equal; a 10 MB message crosses intact (length and checksum) while small round trips
//! keep flowing; a node with another cookie can't connect (`Node.connect` is `false`:
//! `ConnectError::BadCookie`), the nodes stay apart.
//!
//! ```elixir
//! Node.spawn(:node2@localhost, fn -> IO.puts("Works in shell") end)   # BAD
//! Node.spawn(:node2@localhost, IO, :puts, ["Always works"])          # GOOD: MFA
//! Kernel.node(remote_pid)  # => :node2@localhost
//! big_data = :binary.copy("x", 10_000_000); send(remote_pid, big_data)
//! Node.set_cookie(:node2@localhost, :different_cookie)
//! Node.connect(:node2@localhost)  # => false
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{SOON, Transcript, wait_for};
use oxbeam::node::ConnectError;
use oxbeam::prelude::*;
use oxbeam::term::{Binary, from_term};
use serde::{Deserialize, Serialize};

/// The big message's size.
const BIG: usize = 10 << 20;

fn main() -> ExitCode {
    common::init_logging();
    let mut t = Transcript::new("drill7_gotchas", "closures, pids, big messages, cookies");
    let outcome = run(&mut t);
    t.finish(outcome)
}

/// The drill's messages: `{:inspect, from, x}` asks the echo how node2 prints `x`
/// (answered `{:inspected, "..."}`), `{:hello_from, node()}` comes from `Drill.hello/1`,
/// `{:received, byte_size, checksum}` from the sink; the echo sends back the others.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Inspect(Pid, Term),
    Inspected(String),
    HelloFrom(Atom),
    Received(usize, i64),
    Pid(Pid),
    Ping,
    StillHere,
}
common::message!(Reply);

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
    if let Ok(Reply::Inspect(from, x)) = from_term(&m) {
        ctx.send(from, Reply::Inspected(x.to_string()));
    } else if let Ok((from, x)) = from_term::<(Pid, Term)>(&m) {
        ctx.send(from, x);
    }
    Flow::Continue
}

/// Sink: `{from, binary}` -> `{:received, byte_size, checksum}`.
fn sink(ctx: &mut Ctx, m: Term) -> Flow {
    if let Ok((from, bin)) = from_term::<(Pid, Binary)>(&m) {
        ctx.send(from, Reply::Received(bin.len(), checksum(&bin)));
    }
    Flow::Continue
}

/// `input`, a `Node.spawn(:node2@localhost, Drill, f, args)` from `me`, printed: the
/// pid, or the error's reason.
fn spawn_on_node2(
    t: &Transcript,
    me: &mut Ctx,
    f: &str,
    args: Vec<Term>,
    input: &str,
) -> Result<Pid, Term> {
    let node1 = Node::of(me.node());
    let mfa = (Atom::new("Drill"), Atom::new(f), args);
    let r = common::net(&node1).spawn(
        me,
        Atom::new("node2@localhost"),
        mfa,
        oxbeam::node::SpawnRequest::default(),
    );
    let r = r.map(|(p, _)| p).map_err(common::reason);
    t.iex(
        "node1@localhost",
        input,
        r.as_ref().map_or_else(Term::clone, |p| Term::Pid(*p)),
    );
    r
}

fn run(t: &mut Transcript) -> Result<(), Box<dyn std::error::Error>> {
    let cookie = common::fresh_cookie();
    // node1 hosts a private port mapper (port 0: on a port it picks); the others are
    // given its port.
    let node1 = common::drill_node("node1@localhost", &cookie, 0).start()?;
    let epmd = common::epmd_port(&node1);
    let node2 = common::drill_node("node2@localhost", &cookie, epmd).start()?;
    let name2 = node2.name();
    // Registered on node2 only: Drill.hello(to) sends {:hello_from, node()} to `to`.
    node2.functions().register(
        Atom::new("Drill"),
        Atom::new("hello"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| {
            if let Ok((to,)) = from_term::<(Pid,)>(&Term::from(args)) {
                ctx.send(to, Reply::HelloFrom(ctx.node().name()));
            }
            term!(:ok)
        },
    );
    // Registered on node1 only, as a closure defined in node1's code would be.
    node1.functions().register(
        Atom::new("Drill"),
        Atom::new("only_on_node1"),
        0,
        |_: &mut Ctx, _| term!(:ok),
    );
    node1.connect("node2@localhost")?;
    let mut me = node1.attach();

    t.step("MFA vs closures");
    t.say("Node.spawn(:node2@localhost, fn -> ... end) has no oxbeam form: a closure is no Term,");
    t.say(
        "so it can be neither sent (send(pid, fn -> end) does not compile) nor spawned remotely;",
    );
    t.say("Net::spawn takes (module, function, args) and the target looks the name up.");
    let local = node1.spawn(|_: &mut Ctx, _: Term| Flow::stop_normal());
    t.iex("node1@localhost", "spawn(fn -> ... end)", local);
    t.check(
        local.node() == node1.name(),
        "a closure spawns only here, on node1",
    );
    let input = "Node.spawn(:node2@localhost, Drill, :hello, [self()])";
    let args = vec![me.pid().into()];
    let r = spawn_on_node2(t, &mut me, "hello", args, input);
    let hello = common::receive_where(&mut me, SOON, |r| matches!(r, Reply::HelloFrom(_)));
    if let Some(h) = &hello {
        t.iex("node1@localhost", "flush()", h);
    }
    t.check(
        r.is_ok() && hello == Some(Reply::HelloFrom(name2)),
        "the MFA form runs on node2 and answers",
    );
    let input = "Node.spawn(:node2@localhost, Drill, :only_on_node1, [])";
    let r = spawn_on_node2(t, &mut me, "only_on_node1", vec![], input);
    t.check(
        r.err().is_some_and(|e| e.tagged("undef").is_some()),
        "code that exists only on node1 can't run on node2: {:undef, {m, f, arity}}",
    );

    t.step("pid representation");
    let echo_pid = node2.spawn(echo);
    let inspect_on_node2 = |me: &mut Ctx, x: Term| -> Result<String, String> {
        me.send(echo_pid, Reply::Inspect(me.pid(), x));
        match common::receive_where(me, SOON, |r| matches!(r, Reply::Inspected(_))) {
            Some(Reply::Inspected(text)) => Ok(text),
            _ => Err("no :inspected reply".into()),
        }
    };
    let there = inspect_on_node2(&mut me, Term::Pid(echo_pid))?;
    let here = echo_pid.to_string();
    t.iex("node2@localhost", "self()  # in the echo process", &there);
    t.iex("node1@localhost", "echo_pid", &here);
    t.check(
        there.starts_with("#PID<0.") && !here.starts_with("#PID<0."),
        "the same pid: #PID<0.x.y> on its own node, #PID<N.x.y> on another",
    );
    let my_pid = me.pid();
    me.send(echo_pid, (my_pid, Reply::Pid(my_pid)));
    t.iex(
        "node1@localhost",
        "send(echo_pid, {self(), {:pid, self()}})",
        Term::from((my_pid, Reply::Pid(my_pid))),
    );
    let back = common::receive_where(&mut me, SOON, |r| matches!(r, Reply::Pid(_)));
    let same = back == Some(Reply::Pid(my_pid));
    t.iex(
        "node1@localhost",
        "receive do {:pid, p} -> p == self() end",
        term!(same),
    );
    t.check(same, "a pid sent to node2 and back is == self()");

    t.step("a 10 MB message while small round trips go on");
    let sink_pid = node2.spawn(sink);
    // A second process of node1 pings node2's echo, timing each round trip.
    let (done, rounds) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let pinger = {
        let (node, done, rounds) = (node1.clone(), done.clone(), rounds.clone());
        std::thread::spawn(move || {
            let mut p = node.attach();
            let mut log: Vec<(Instant, Duration)> = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let sent = Instant::now();
                p.send(echo_pid, (p.pid(), Reply::Ping));
                if common::receive_where(&mut p, SOON, |r| matches!(r, Reply::Ping)).is_none() {
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
    let want = Reply::Received(payload.len(), checksum(&payload));
    let upload = (me.pid(), Binary::from(payload));
    let start = Instant::now();
    me.send(sink_pid, upload);
    t.iex(
        "node1@localhost",
        "send(sink, {self(), :crypto.strong_rand_bytes(10 * 1024 * 1024)})",
        format!("{{{}, <<... {BIG} bytes ...>>}}", me.pid()),
    );
    let got = common::receive_where(&mut me, SOON, |r| matches!(r, Reply::Received(..)));
    let end = Instant::now();
    done.store(true, Ordering::Relaxed);
    let log = pinger.join().map_err(|_| "the pinger panicked")??;
    if let Some(g) = &got {
        t.iex("node1@localhost", "flush()", g);
    }
    t.check(
        got.as_ref() == Some(&want),
        format!(
            "node2 got all {BIG} bytes with the same checksum ({:?} end to end)",
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
    let other = "not-the-same-cookie";
    let node4 = common::drill_node("node4@localhost", other, epmd)
        .without_services()
        .start()?;
    for (from, to) in [(&node4, "node1@localhost"), (&node1, "node4@localhost")] {
        let begun = Instant::now();
        let r = from.connect(to);
        t.iex(
            from.name().as_str(),
            &format!("Node.connect(:{to})  # another cookie"),
            term!(r.is_ok()),
        );
        let took = begun.elapsed();
        t.check(
            r == Err(ConnectError::BadCookie),
            format!("refused: Node.connect is false, a bad cookie (after {took:?}): {r:?}"),
        );
    }
    t.iex(
        "node1@localhost",
        "Node.list()",
        common::atoms(&node1.nodes()),
    );
    t.iex(
        "node4@localhost",
        "Node.list()",
        common::atoms(&node4.nodes()),
    );
    t.check(
        node1.nodes() == vec![name2] && node4.nodes().is_empty(),
        "the nodes stay apart: node1 sees only node2, node4 sees nobody",
    );
    me.send(echo_pid, (me.pid(), Reply::StillHere));
    t.check(
        common::receive_where(&mut me, SOON, |r| matches!(r, Reply::StillHere)).is_some(),
        "node1 <-> node2 traffic is unaffected",
    );

    drop(me);
    for n in [node1, node2, node4] {
        n.shutdown();
    }
    Ok(())
}
