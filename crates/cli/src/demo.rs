//! `oxbeam demo`: a guided tour of one node (the distributed chat demo replaces it once
//! the cluster layers exist). Every step checks its outcome; a failed step is an error.

use std::time::Duration;

use oxbeam::prelude::*;
use oxbeam::rt::Task;
use oxbeam::rt::table::{TableKind, TableOptions};
use serde::{Deserialize, Serialize};

/// A counter server, typed: its requests are a Rust enum (terms `:incr`, `:get`,
/// `:crash` on the wire, so `GenServer.call(:counter, :incr)` reaches it too).
#[derive(Default)]
struct Counter(i64);

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CounterCall {
    Incr,
    Get,
    Crash,
}

impl Server for Counter {
    type Call = CounterCall;
    type Reply = i64;
    type Cast = ();

    fn handle_call(&mut self, _: &mut Ctx, request: CounterCall, _: ReplyTo) -> Reply<i64> {
        match request {
            CounterCall::Incr => {
                self.0 += 1;
                Reply::Now(self.0)
            }
            CounterCall::Get => Reply::Now(self.0),
            CounterCall::Crash => panic!("counter asked to crash"),
        }
    }
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("demo step failed: {what}"))
    }
}

/// Runs the tour, printing a transcript; `Err` names the step that failed.
pub fn run() -> Result<(), String> {
    // A local node: the same `Node` a named one is, without distribution.
    let node = Node::builder().start().map_err(|e| e.to_string())?;
    let result = tour(&node);
    node.shutdown();
    println!("node stopped: every process ended and every thread joined");
    result
}

fn tour(node: &Node) -> Result<(), String> {
    let mut me = node.attach();
    println!(
        "iex({})> self()\n{}",
        node.name().as_str(),
        Term::Pid(me.pid())
    );

    println!("\n# a supervised counter, registered as :counter");
    let sup = Supervisor::builder()
        .strategy(Strategy::OneForOne)
        .child(ChildSpec::server("counter", Counter::default))
        .start(node)
        .map_err(|e| e.to_string())?;
    let counter = ServerRef::<Counter>::named("counter");
    for _ in 0..3 {
        let n = counter
            .call(&mut me, CounterCall::Incr, Timeout::default())
            .map_err(|e| e.to_string())?;
        println!("GenServer.call(:counter, :incr) -> {n}");
    }
    let first = counter.whereis(node).ok_or("counter not registered")?;

    println!("\n# crash it: the caller gets the exit reason, the supervisor restarts it");
    let err = counter
        .call(&mut me, CounterCall::Crash, Timeout::default())
        .expect_err("a crash");
    println!("GenServer.call(:counter, :crash) -> exit {}", err.reason());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let second = loop {
        match counter.whereis(node) {
            Some(p) if p != first => break p,
            _ if std::time::Instant::now() > deadline => {
                return Err("counter was not restarted".into());
            }
            _ => std::thread::yield_now(),
        }
    };
    println!(
        ":counter was {} and is now {} (fresh state)",
        Term::Pid(first),
        Term::Pid(second)
    );
    let n = counter
        .call(&mut me, CounterCall::Get, Timeout::default())
        .map_err(|e| e.to_string())?;
    check(n == 0, "restarted counter starts from 0")?;
    println!("GenServer.call(:counter, :get) -> {n}");

    println!("\n# links and monitors");
    let (worker, mref) = me.spawn_monitor(Task::new(|ctx: &mut Ctx| {
        let m = ctx.receive();
        ctx.exit(m);
    }));
    me.send(worker, Term::atom("goodbye"));
    let down = me
        .receive_timeout(Duration::from_secs(5))
        .ok_or("no DOWN")?;
    check(
        down.as_tuple().is_some_and(|t| t[1] == Term::Ref(mref)),
        "DOWN carries the monitor ref",
    )?;
    println!("flush() -> {down}");
    me.trap_exit(true);
    let linked = me.spawn_link(|_: &mut Ctx, msg: Term| Flow::Stop(msg));
    me.send(linked, Term::atom("boom"));
    let exit = me
        .receive_timeout(Duration::from_secs(5))
        .ok_or("no EXIT")?;
    println!("flush() -> {exit}");

    println!("\n# a table");
    let t = node
        .tables()
        .create(
            Atom::new("users"),
            TableOptions {
                kind: TableKind::Set,
                key_pos: 0,
            },
            Some(me.pid()),
        )
        .map_err(|e| e.to_string())?;
    t.insert(Term::from((Term::atom("ann"), "room1", 3)))
        .map_err(|e| e.to_string())?;
    t.insert(Term::from((Term::atom("bob"), "room1", 5)))
        .map_err(|e| e.to_string())?;
    let pattern = Term::from((Term::atom("_"), "room1", Term::atom("_")));
    let in_room = t.match_object(&pattern);
    check(in_room.len() == 2, "two users in room1")?;
    println!(
        ":ets.match_object(:users, {pattern}) -> {}",
        Term::list(in_room)
    );

    println!("\n# a timer");
    node.send_after(me.pid(), Term::atom("tick"), Duration::from_millis(50));
    let tick = me
        .receive_timeout(Duration::from_secs(5))
        .ok_or("no tick")?;
    println!("Process.send_after(self(), :tick, 50); receive -> {tick}");

    drop(me);
    let _ = sup;
    Ok(())
}
