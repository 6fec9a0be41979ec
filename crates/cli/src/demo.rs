//! `oxbeam demo`: a guided tour of one node (the distributed chat demo replaces it once
//! the cluster layers exist). Every step checks its outcome; a failed step is an error.

use std::time::Duration;

use crate::rt::gen_server::{self, CallReply, GenServer, ReplyTo};
use crate::rt::supervisor::{self, ChildSpec, Strategy, SupervisorSpec};
use crate::rt::table::{TableKind, TableOptions};
use crate::rt::{Config, Ctx, Flow, Node, Task};
use crate::term::{Atom, Term};

/// A counter server: `:incr`, `:get`, `:crash`.
struct Counter(i64);

impl GenServer for Counter {
    fn handle_call(&mut self, _ctx: &mut Ctx, request: Term, _from: ReplyTo) -> CallReply {
        match request.as_atom().map(|a| a.as_str()) {
            Some("incr") => {
                self.0 += 1;
                CallReply::Reply(Term::Int(self.0))
            }
            Some("get") => CallReply::Reply(Term::Int(self.0)),
            Some("crash") => panic!("counter asked to crash"),
            _ => CallReply::Reply(Term::atom("unknown")),
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
    let node = Node::start(Config {
        name: "demo@localhost".into(),
        ..Config::default()
    });
    let result = tour(&node);
    node.shutdown();
    println!("node stopped: every process ended and every thread joined");
    result
}

fn tour(node: &Node) -> Result<(), String> {
    let mut me = node.attach();
    let timeout = Some(Duration::from_secs(5));
    println!(
        "iex({})> self()\n{}",
        node.name().as_str(),
        Term::Pid(me.pid())
    );

    println!("\n# a supervised counter, registered as :counter");
    let counter = Atom::new("counter");
    let spec = ChildSpec::new(Term::atom("counter"), move |ctx: &mut Ctx| {
        gen_server::start_link(ctx, Counter(0), Some(counter))
    });
    let sup = supervisor::start(
        node,
        SupervisorSpec::new(Strategy::OneForOne, vec![spec]),
        None,
    )
    .map_err(|e| e.to_string())?;
    for _ in 0..3 {
        let n = gen_server::call(&mut me, counter, Term::atom("incr"), timeout)
            .map_err(|e| e.to_string())?;
        println!("GenServer.call(:counter, :incr) -> {n}");
    }
    let first = node.whereis(counter).ok_or("counter not registered")?;

    println!("\n# crash it: the caller gets the exit reason, the supervisor restarts it");
    let err =
        gen_server::call(&mut me, counter, Term::atom("crash"), timeout).expect_err("a crash");
    println!("GenServer.call(:counter, :crash) -> exit {}", err.reason());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let second = loop {
        match node.whereis(counter) {
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
    let n = gen_server::call(&mut me, counter, Term::atom("get"), timeout)
        .map_err(|e| e.to_string())?;
    check(n == Term::Int(0), "restarted counter starts from 0")?;
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
