// cargo run --release --example drill4_pg_pubsub
//! Drill 4: pub/sub over pg. A subscriber on each of three nodes joins the group
//! `:news`; node1 watches the group (`:pg.monitor(:news)`) and sees each join; the
//! publisher sends to every pid of `:pg.get_members(:news)` and each subscriber gets the
//! message exactly once; then one subscriber leaves and another is killed: node1 sees
//! each `:leave`, and they stop receiving.
//!
//! ```elixir
//! iex(node1@localhost)> :pg.join(:news, self())
//! iex(node1@localhost)> :pg.get_members(:news)
//! [#PID<8531.90.0>, #PID<0.90.0>]
//! for pid <- :pg.get_members(topic), do: send(pid, {:message, topic, message})
//! :pg.leave(topic, self())
//! ```
//!
//! A subscriber is an `impl Server` ([`Subscriber`]): it joins in `init`, takes the
//! published `{:news, n}` as plain messages, answers a `:tally` call with what it got and
//! leaves on a `:leave` cast. pg's own notifications decode as a [`PgNote`].

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use common::{Notice, SOON, Transcript, wait_for};
use oxbeam::prelude::*;
use oxbeam::term::{from_term, to_term};
use serde::{Deserialize, Serialize};

fn main() -> ExitCode {
    common::init_logging();
    let mut t = Transcript::new("drill4_pg_pubsub", "publish to a process group");
    let outcome = run(&mut t);
    t.finish(outcome)
}

/// The group.
fn news() -> Term {
    term!(:news)
}

/// What is published: `{:news, n}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Published {
    News(i64),
}

/// What a subscriber tells the publisher: `{:got, node(), self(), n}` for each
/// message, `{:left, self(), true}` once it left.
#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "snake_case")]
enum Receipt {
    Got(Atom, Pid, i64),
    Left(Pid, bool),
}

/// pg's `{ref, :join | :leave, group, [pid, ...]}` to a process monitoring a group.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct PgNote(Ref, PgEvent, Atom, Vec<Pid>);

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum PgEvent {
    Join,
    Leave,
}
common::message!(Published, Receipt, PgNote);

/// A subscriber to `:news`, reporting what it gets to `report`.
struct Subscriber {
    report: Pid,
    got: Vec<i64>,
}

/// `:tally`: what it has received so far.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Tally {
    Tally,
}

/// `:leave`: leave the group (and say so).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Leave {
    Leave,
}

impl Server for Subscriber {
    type Call = Tally;
    type Reply = Vec<i64>;
    type Cast = Leave;

    fn init(&mut self, ctx: &mut Ctx) -> Result<(), Term> {
        let me = ctx.pid();
        pg::join(ctx, pg::default_scope(), news(), &[me]).map_err(common::reason)
    }

    fn handle_call(&mut self, _: &mut Ctx, _: Tally, _: ReplyTo) -> Reply<Vec<i64>> {
        Reply::Now(self.got.clone())
    }

    fn handle_cast(&mut self, ctx: &mut Ctx, _: Leave) -> Flow {
        let me = ctx.pid();
        let left = pg::leave(ctx, pg::default_scope(), news(), &[me]);
        ctx.send(self.report, Receipt::Left(me, left.is_ok_and(|was| was)));
        Flow::Continue
    }

    fn handle_info(&mut self, ctx: &mut Ctx, msg: Term) -> Flow {
        if let Ok(Published::News(n)) = from_term(&msg) {
            self.got.push(n);
            ctx.send(self.report, Receipt::Got(ctx.node().name(), ctx.pid(), n));
        }
        Flow::Continue
    }
}

/// Waits for pg's notification of `event` for `pid`, and prints it.
fn notification(t: &mut Transcript, me: &mut Ctx, r: Ref, event: PgEvent, pid: Pid) {
    let want = PgNote(r, event, Atom::new("news"), vec![pid]);
    let note = common::receive_where(me, SOON, |n: &PgNote| *n == want);
    if let Some(n) = &note {
        t.iex("node1@localhost", "flush()", n);
    }
    t.check(note.is_some(), format!("node1 was told: {want}"));
}

/// Publishes `{:news, n}` to every member as node1 sees them; then waits for `expect`
/// receipts and asks every subscriber in `all` what it got so far (the call follows
/// the news from the same sender, so the tally includes it).
fn publish(
    t: &mut Transcript,
    me: &mut Ctx,
    n: i64,
    expect: usize,
    all: &[(Pid, Vec<i64>)],
) -> Result<(), Box<dyn std::error::Error>> {
    let members = pg::get_members(me.node(), pg::default_scope(), &news());
    for p in &members {
        me.send(*p, Published::News(n));
    }
    let sent: Vec<Published> = members.iter().map(|_| Published::News(n)).collect();
    t.iex(
        "node1@localhost",
        &format!("for pid <- :pg.get_members(:news), do: send(pid, {{:news, {n}}})"),
        to_term(&sent)?,
    );
    for _ in 0..expect {
        let got = common::receive_where(me, SOON, |r| matches!(r, Receipt::Got(.., x) if *x == n))
            .ok_or(format!("a subscriber did not get {{:news, {n}}}"))?;
        if let Receipt::Got(node, pid, _) = got {
            t.say(format!("{pid} on {node} got {{:news, {n}}}"));
        }
    }
    for (pid, want) in all {
        let got = ServerRef::<Subscriber>::new(*pid).call(me, Tally::Tally, SOON)?;
        t.check(
            got == *want,
            format!("{pid} has received exactly {}", to_term(want)?),
        );
    }
    Ok(())
}

/// Waits until node1 sees exactly `want` (sorted) in `:news`.
fn members_become(node: &Node, want: &[Pid]) -> Result<Vec<Pid>, String> {
    let mut want = want.to_vec();
    want.sort();
    wait_for(
        &format!("{} members seen from node1", want.len()),
        SOON,
        || {
            let mut m = pg::get_members(node, pg::default_scope(), &news());
            m.sort();
            if m == want { Ok(m) } else { Err(m) }
        },
    )
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
    for n in [&node2, &node3] {
        n.connect("node1@localhost")
            .map_err(|e| format!("{} could not connect to node1: {e}", n.name()))?;
    }
    let all = [&node1, &node2, &node3];
    wait_for("a mesh of three", SOON, || {
        let seen = all.map(|n| n.nodes().len());
        if seen == [2, 2, 2] { Ok(()) } else { Err(seen) }
    })?;
    t.say("node1, node2, node3 connected; each runs the default pg scope");
    let mut me = node1.attach();

    t.step("node1 watches the group");
    let (r, current) = pg::monitor(&mut me, pg::default_scope(), news())
        .map_err(|e| format!(":pg.monitor: {e}"))?;
    t.iex(
        "node1@localhost",
        ":pg.monitor(:news)",
        to_term(&(r, &current))?,
    );
    t.check(current.is_empty(), "nobody in :news yet");

    t.step("a subscriber on each node joins :news");
    let mut subs = Vec::new();
    for n in all {
        let sub = Subscriber {
            report: me.pid(),
            got: Vec::new(),
        };
        let pid = oxbeam::rt::server::start(n, sub, StartOpts::default())?
            .pid()
            .ok_or("a server started by pid")?;
        // `server::start` attached this thread to `n` for the start: print as node1 again.
        node1.set_thread_display();
        t.iex(
            n.name().as_str(),
            &format!(":pg.join(:news, self())   # {pid}"),
            term!(:ok),
        );
        notification(t, &mut me, r, PgEvent::Join, pid);
        subs.push(pid);
    }
    let members = members_become(&node1, &subs)?;
    t.iex(
        "node1@localhost",
        ":pg.get_members(:news)",
        to_term(&members)?,
    );
    t.check(true, "get_members lists the three subscribers");

    t.step("publish: each subscriber receives exactly once");
    let mut tallies: Vec<(Pid, Vec<i64>)> = subs.iter().map(|p| (*p, vec![1])).collect();
    publish(t, &mut me, 1, 3, &tallies)?;

    t.step("node2's subscriber leaves");
    ServerRef::<Subscriber>::new(subs[1]).cast(&node1, Leave::Leave);
    let left = common::receive_where(&mut me, SOON, |r| matches!(r, Receipt::Left(..)));
    t.iex(
        "node2@localhost",
        &format!(":pg.leave(:news, self())   # {}", subs[1]),
        term!(:ok),
    );
    t.check(
        matches!(left, Some(Receipt::Left(p, true)) if p == subs[1]),
        "the leave succeeded",
    );
    notification(t, &mut me, r, PgEvent::Leave, subs[1]);
    members_become(&node1, &[subs[0], subs[2]])?;
    tallies[0].1.push(2);
    tallies[2].1.push(2);
    publish(t, &mut me, 2, 2, &tallies)?;
    t.check(true, "node2's subscriber, still alive, got nothing more");

    t.step("node3's subscriber dies");
    let watch = me.monitor(subs[2]);
    me.exit_pid(subs[2], term!(:kill));
    t.iex(
        "node1@localhost",
        &format!("Process.exit({}, :kill)", subs[2]),
        term!(true),
    );
    let down = common::receive_where(
        &mut me,
        SOON,
        |n| matches!(n, Notice::Down(x, ..) if *x == watch),
    );
    t.check(
        down == Some(Notice::down(watch, subs[2], term!(:killed))),
        "it is dead (DOWN with :killed)",
    );
    notification(t, &mut me, r, PgEvent::Leave, subs[2]);
    t.say("a dead member leaves its groups");
    let members = members_become(&node1, &[subs[0]])?;
    t.iex(
        "node1@localhost",
        ":pg.get_members(:news)",
        to_term(&members)?,
    );
    tallies[0].1.push(3);
    tallies.remove(2);
    publish(t, &mut me, 3, 1, &tallies)?;
    let stray: Vec<Term> = me.flush();
    t.check(
        stray.iter().all(|m| from_term::<Receipt>(m).is_err()),
        "no other receipt arrived (nothing delivered twice, nothing to a leaver)",
    );

    drop(me);
    for n in all {
        n.shutdown();
    }
    Ok(())
}
