// cargo run --release --example exercise3_locks
//! Exercise 3: the lock manager. node1 runs as its own OS process (this binary again,
//! in child mode); node2 and node3 run here. The chapter's usage first:
//!
//! ```elixir
//! LockManager.with_lock(:database, fn ->
//!   IO.puts("I have exclusive access")
//! end)
//! ```
//!
//! then what the chapter's version cannot give: a counter in the replicated KV
//! incremented under `with_lock` from node2 and node3 with fencing tokens (no update
//! lost); node1 takes the lock and is SIGKILLed holding it: its lease runs out and the
//! lock moves on with a greater token, and a write with node1's old token is refused.

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use common::{ChildNode, SOON, Transcript};
use oxbeam::dist::rpc;
use oxbeam::everywhere::{self, Service};
use oxbeam::kv::{KvError, Table};
use oxbeam::locks::{Fence, Locks};
use oxbeam::prelude::*;
use oxbeam::term::from_term;

const PER_NODE: u64 = 25;

fn main() -> ExitCode {
    common::run_child_if_asked(register_functions);
    common::init_logging();
    let mut t = Transcript::new("exercise3_locks", "locks with fencing on three nodes");
    let outcome = run(&mut t);
    t.finish(outcome)
}

/// `LockManager.start/1` (the lock service and the KV table on this node) and
/// `LockManager.take_and_hang/1` (takes `:database`, reports its token, holds on).
fn register_functions(node: &Node) {
    let f = node.functions();
    let m = Atom::new("LockManager");
    f.register(m, Atom::new("start"), 1, |ctx: &mut Ctx, args| {
        let Ok((nodes,)) = from_term::<(Vec<Atom>,)>(&Term::from(args)) else {
            return term!(:badarg);
        };
        for s in [Service::Locks, Service::Kv] {
            if let Err(why) = everywhere::start_here(ctx.node(), s, "ex3", &nodes) {
                return term!({:error, (why)});
            }
        }
        term!(:ok)
    });
    f.register(m, Atom::new("take_and_hang"), 1, |ctx: &mut Ctx, args| {
        let Some(report) = args[0].as_pid() else {
            return term!(:badarg);
        };
        let Ok(locks) = Locks::open(ctx.node(), "ex3") else {
            return term!(:not_started);
        };
        if let Ok(lease) = locks.acquire(ctx, "database", SOON) {
            ctx.send(report, term!({:token, (lease.token as i64)}));
            ctx.receive_match(|_| false, None);
        }
        term!(:ok)
    });
}

fn run(t: &mut Transcript) -> Result<(), Box<dyn std::error::Error>> {
    let cookie = common::fresh_cookie();
    let start =
        |name: &str, port_mapper: u16| common::drill_node(name, &cookie, port_mapper).start();
    let node2 = start("node2@localhost", 0)?;
    let epmd = common::epmd_port(&node2);
    let node3 = start("node3@localhost", epmd)?;
    for n in [&node2, &node3] {
        register_functions(n);
    }
    let mut child = ChildNode::start("node1", epmd, &cookie)?;
    let name1 = Atom::new(&child.name);
    t.say(format!(
        "node1 runs as OS process {}; node2, node3 run here",
        child.os_pid()
    ));
    for n in [&node2, &node3] {
        n.connect(&child.name)?;
    }
    let nodes = vec![name1, node2.name(), node3.name()];
    let mut me2 = node2.attach();
    let started = rpc::call(
        &mut me2,
        name1,
        "LockManager",
        "start",
        vec![common::atoms(&nodes)],
        Some(SOON),
    )?;
    t.check(
        started == term!(:ok),
        "node1's lock service and KV replica started",
    );
    let locks2 = Locks::start(node2.rt(), "ex3", &nodes)?;
    let locks3 = Locks::start(node3.rt(), "ex3", &nodes)?;
    let kv2: Table<String, u64> = Table::start(node2.rt(), "ex3", &nodes)?;
    let kv3: Table<String, u64> =
        Table::open(node3.rt(), "ex3").or_else(|_| Table::start(node3.rt(), "ex3", &nodes))?;
    locks2.group().wait_for_leader(&mut me2, SOON)?;
    kv2.wait_for_writer(&mut me2, SOON)?;

    t.step("the chapter's usage, from node2");
    let said = locks2.with_lock(&mut me2, "database", SOON, |_, lease| {
        t.say(format!("I have exclusive access (token {})", lease.token));
        lease.token
    });
    t.check(said.is_ok(), "with_lock ran the function holding the lock");

    t.step(&format!(
        "a counter in the KV: {PER_NODE} fenced increments each from node2 and node3"
    ));
    let workers: Vec<_> = [
        (node2.rt().clone(), locks2.clone(), kv2.clone()),
        (node3.rt().clone(), locks3.clone(), kv3.clone()),
    ]
    .into_iter()
    .map(|(node, locks, kv)| {
        std::thread::spawn(move || {
            let mut me = node.attach();
            let key = "counter".to_string();
            let mut done = 0;
            for _ in 0..PER_NODE {
                let r = locks.with_lock(&mut me, "database", SOON, |ctx, lease| {
                    let n = kv.get(ctx, &key)?.map_or(0, |(v, _)| v);
                    kv.put_fenced(ctx, &key, &(n + 1), &lease.fence())
                        .map(|_| ())
                });
                done += matches!(r, Ok(Ok(()))) as u64;
            }
            done
        })
    })
    .collect();
    let done: u64 = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    let counter = kv2
        .get(&mut me2, &"counter".to_string())?
        .map_or(0, |(v, _)| v);
    t.check(
        done == 2 * PER_NODE && counter == 2 * PER_NODE,
        format!("{done} increments done, the counter is {counter}: none lost"),
    );

    t.step("node1 takes the lock and is SIGKILLed holding it");
    let me_pid = me2.pid();
    common::net(&node2).spawn(
        &mut me2,
        name1,
        (
            Atom::new("LockManager"),
            Atom::new("take_and_hang"),
            vec![Term::Pid(me_pid)],
        ),
        oxbeam::node::SpawnRequest::default(),
    )?;
    let old = me2
        .receive_match(|m| m.tagged("token").is_some(), Some(SOON))
        .and_then(|m| m.tagged("token").and_then(|t| t[0].as_int()))
        .ok_or("node1 did not report its token")? as u64;
    t.say(format!("node1 holds the lock with token {old}"));
    child.kill();
    let killed = Instant::now();
    let lease = locks3.acquire(&mut node3.attach(), "database", Duration::from_secs(10))?;
    let took = killed.elapsed();
    t.check(
        lease.token > old,
        format!(
            "node3 got the lock {took:?} after the kill (the lease ran out), token {} > {old}",
            lease.token
        ),
    );
    let mut me3 = node3.attach();
    kv3.put_fenced(&mut me3, &"counter".to_string(), &1000, &lease.fence())?;
    let stale = Fence {
        resource: lease.resource.clone(),
        token: old,
    };
    let refused = kv3.put_fenced(&mut me3, &"counter".to_string(), &0, &stale);
    t.check(
        matches!(refused, Err(KvError::StaleToken { .. })),
        format!("a write with node1's old token is refused: {refused:?}"),
    );
    drop(me3);
    Ok(())
}
