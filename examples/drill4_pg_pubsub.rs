// cargo run --release --example drill4_pg_pubsub
//! Drill 4: pub/sub over pg. A subscriber on each of three nodes joins the group
//! `:news`; node1 watches the group (`:pg.monitor(:news)`) and sees each join; the
//! publisher sends to every pid of `:pg.get_members(:news)` and each subscriber gets the
//! message exactly once; then one subscriber leaves and another is killed: node1 sees
//! each `:leave`, and they stop receiving.

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use common::{SOON, Transcript, wait_for};
use oxbeam::dist::pg;
use oxbeam::rt::{Attached, Ctx, Node};
use oxbeam::term::{Pid, Ref, Term};

fn main() -> ExitCode {
    common::init_logging();
    let mut t = Transcript::new("drill4_pg_pubsub", "publish to a process group");
    let outcome = run(&mut t);
    t.finish(outcome)
}

fn news() -> Term {
    Term::atom("news")
}

/// A subscriber on `node`: joins `:news`, reports `{:got, node(), self(), n}` to `report`
/// for each `{:news, n}`; `{:tally, from}` -> `{:tally, self(), [n...]}`; `:leave` leaves
/// the group and reports `{:left, self()}`.
fn subscriber(node: &Node, report: Pid) -> Pid {
    node.spawn_task(move |ctx: &mut Ctx| {
        let me = ctx.pid();
        if pg::join(ctx, pg::default_scope(), news(), &[me]).is_err() {
            return;
        }
        let mut got = Vec::new();
        loop {
            let m = ctx.receive();
            if let Some([n]) = m.tagged("news") {
                got.push(n.clone());
                let here = Term::Atom(ctx.node().name());
                ctx.send(report, (Term::atom("got"), here, me, n.clone()));
            } else if let Some([Term::Pid(from)]) = m.tagged("tally") {
                ctx.send(*from, (Term::atom("tally"), me, got.clone()));
            } else if m.is_atom("leave") {
                let left = pg::leave(ctx, pg::default_scope(), news(), &[me]);
                ctx.send(report, (Term::atom("left"), me, left.is_ok()));
            }
        }
    })
}

/// Waits for the pg notification `{ref, kind, :news, [pid]}`.
fn notification(me: &mut Attached, r: Ref, kind: &str, pid: Pid) -> Option<Term> {
    let want = Term::tuple(vec![
        Term::Ref(r),
        Term::atom(kind),
        news(),
        Term::list(vec![Term::Pid(pid)]),
    ]);
    me.receive_match(|m| *m == want, Some(SOON))
}

/// Publishes `{:news, n}` to every member as node1 sees them; then waits for `expect`
/// receipts and asks every subscriber in `all` what it got so far (the probe follows
/// the news from the same sender, so the tally includes it).
fn publish(
    t: &mut Transcript,
    me: &mut Attached,
    n: i64,
    expect: usize,
    all: &[(Pid, Vec<i64>)],
) -> Result<(), String> {
    let members = pg::get_members(me.node(), pg::default_scope(), &news());
    for p in &members {
        me.send(*p, (Term::atom("news"), n));
    }
    t.iex(
        "node1@localhost",
        &format!("for pid <- :pg.get_members(:news), do: send(pid, {{:news, {n}}})"),
        Term::list(
            members
                .iter()
                .map(|_| Term::from((Term::atom("news"), n)))
                .collect::<Vec<_>>(),
        ),
    );
    for _ in 0..expect {
        let got = me
            .receive_match(
                |m| matches!(m.tagged("got"), Some([_, _, x]) if *x == Term::Int(n)),
                Some(SOON),
            )
            .ok_or(format!("a subscriber did not get {{:news, {n}}}"))?;
        if let Some([node, pid, _]) = got.tagged("got") {
            t.say(format!("{pid} on {node} got {{:news, {n}}}"));
        }
    }
    for (pid, want) in all {
        me.send(*pid, (Term::atom("tally"), me.pid()));
        let p = *pid;
        let tally = me
            .receive_match(
                |m| matches!(m.tagged("tally"), Some([Term::Pid(x), _]) if *x == p),
                Some(SOON),
            )
            .ok_or(format!("{pid} did not answer its tally"))?;
        let got = tally.tagged("tally").map_or(Term::nil(), |r| r[1].clone());
        let want_t = Term::list(want.iter().map(|x| Term::Int(*x)).collect::<Vec<_>>());
        t.check(
            got == want_t,
            format!("{pid} has received exactly {want_t}"),
        );
    }
    Ok(())
}

fn run(t: &mut Transcript) -> Result<(), String> {
    let cookie = common::fresh_cookie();
    // node1 hosts a private port mapper (port 0: on a port it picks); the others are
    // given its port.
    let n1 = common::start_net("node1", 0, &cookie)?;
    let epmd = n1.epmd_port();
    let n2 = common::start_net("node2", epmd, &cookie)?;
    let n3 = common::start_net("node3", epmd, &cookie)?;
    for n in [&n2, &n3] {
        if n.connect("node1@localhost").is_err() {
            return Err(format!("{} could not connect to node1", n.name()));
        }
    }
    wait_for("a mesh of three", SOON, || {
        let seen = [n1.nodes().len(), n2.nodes().len(), n3.nodes().len()];
        if seen == [2, 2, 2] { Ok(()) } else { Err(seen) }
    })?;
    t.say("node1, node2, node3 connected; each runs the default pg scope");
    let mut me = n1.node().attach();

    t.step("node1 watches the group");
    let (r, current) = pg::monitor(&mut me, pg::default_scope(), news())
        .map_err(|e| format!(":pg.monitor: {e}"))?;
    let current_t = Term::list(current.iter().map(|p| Term::Pid(*p)).collect::<Vec<_>>());
    t.iex(
        "node1@localhost",
        ":pg.monitor(:news)",
        Term::from((r, current_t)),
    );
    t.check(current.is_empty(), "nobody in :news yet");

    t.step("a subscriber on each node joins :news");
    let subs: Vec<Pid> = [&n1, &n2, &n3]
        .iter()
        .map(|n| subscriber(n.node(), me.pid()))
        .collect();
    for (n, pid) in [&n1, &n2, &n3].iter().zip(&subs) {
        let note = notification(&mut me, r, "join", *pid);
        t.iex(
            n.name().as_str(),
            &format!(":pg.join(:news, self())   # {pid}"),
            Term::ok(),
        );
        match note {
            Some(m) => {
                t.iex("node1@localhost", "flush()", &m);
                t.check(true, format!("node1 was told of {pid} joining"));
            }
            None => {
                t.check(false, format!("node1 was told of {pid} joining"));
            }
        }
    }
    let mut want_members = subs.clone();
    want_members.sort();
    let members = wait_for("three members seen from node1", SOON, || {
        let mut m = pg::get_members(n1.node(), pg::default_scope(), &news());
        m.sort();
        if m == want_members { Ok(m) } else { Err(m) }
    })?;
    t.iex(
        "node1@localhost",
        ":pg.get_members(:news)",
        Term::list(members.iter().map(|p| Term::Pid(*p)).collect::<Vec<_>>()),
    );
    t.check(true, "get_members lists the three subscribers");

    t.step("publish: each subscriber receives exactly once");
    let mut tallies: Vec<(Pid, Vec<i64>)> = subs.iter().map(|p| (*p, vec![1])).collect();
    publish(t, &mut me, 1, 3, &tallies)?;

    t.step("node2's subscriber leaves");
    me.send(subs[1], Term::atom("leave"));
    let left = me.receive_match(|m| m.tagged("left").is_some(), Some(SOON));
    t.iex(
        "node2@localhost",
        &format!(":pg.leave(:news, self())   # {}", subs[1]),
        Term::ok(),
    );
    t.check(
        left.is_some_and(|m| m.tagged("left").is_some_and(|r| r[1] == Term::from(true))),
        "the leave succeeded",
    );
    match notification(&mut me, r, "leave", subs[1]) {
        Some(m) => {
            t.iex("node1@localhost", "flush()", &m);
            t.check(true, "node1 was told of the leave");
        }
        None => {
            t.check(false, "node1 was told of the leave");
        }
    }
    wait_for("two members seen from node1", SOON, || {
        let m = pg::get_members(n1.node(), pg::default_scope(), &news());
        if m.len() == 2 && !m.contains(&subs[1]) {
            Ok(())
        } else {
            Err(m)
        }
    })?;
    tallies[0].1.push(2);
    tallies[2].1.push(2);
    publish(t, &mut me, 2, 2, &tallies)?;
    t.check(true, "node2's subscriber, still alive, got nothing more");

    t.step("node3's subscriber dies");
    let watch = me.monitor(subs[2]);
    me.exit_pid(subs[2], Term::atom("kill"));
    t.iex(
        "node1@localhost",
        &format!("Process.exit({}, :kill)", subs[2]),
        Term::from(true),
    );
    let down = me.receive_match(
        |m| matches!(m.tagged("DOWN"), Some([Term::Ref(x), ..]) if *x == watch),
        Some(SOON),
    );
    t.check(
        down.as_ref()
            .and_then(|d| d.as_tuple())
            .map(|d| d[4].clone())
            == Some(Term::atom("killed")),
        "it is dead (DOWN with :killed)",
    );
    match notification(&mut me, r, "leave", subs[2]) {
        Some(m) => {
            t.iex("node1@localhost", "flush()", &m);
            t.check(
                true,
                "node1 was told it left: a dead member leaves its groups",
            );
        }
        None => {
            t.check(false, "node1 was told the dead member left");
        }
    }
    let members = wait_for("one member seen from node1", SOON, || {
        let m = pg::get_members(n1.node(), pg::default_scope(), &news());
        if m == [subs[0]] { Ok(m) } else { Err(m) }
    })?;
    t.iex(
        "node1@localhost",
        ":pg.get_members(:news)",
        Term::list(members.iter().map(|p| Term::Pid(*p)).collect::<Vec<_>>()),
    );
    tallies[0].1.push(3);
    tallies.remove(2);
    publish(t, &mut me, 3, 1, &tallies)?;
    let stray = me.flush();
    t.check(
        stray.iter().all(|m| m.tagged("got").is_none()),
        "no other receipt arrived (nothing delivered twice, nothing to a leaver)",
    );

    drop(me);
    for n in [n1, n2, n3] {
        n.shutdown();
    }
    Ok(())
}
