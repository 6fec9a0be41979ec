// cargo run --release --example exercise1_kv
//! Exercise 1: the replicated KV. node1 runs as its own OS process (this binary again,
//! in child mode); node2 and node3 run here. Each node starts its replica of the table,
//! as the chapter's `DistributedKV.start_link()` on every node; the chapter's test block
//! then runs as printed:
//!
//! ```elixir
//! DistributedKV.start_link()              # on all nodes
//! DistributedKV.put(:user_1, "Alice")     # write from node1
//! DistributedKV.get_local(:user_1)        # read from node2 (local)
//! # => {:ok, "Alice"}
//! ```
//!
//! and then what the chapter's version cannot do: node1 is SIGKILLed mid-writes, the
//! survivors choose a new writer and take writes again, every acknowledged write is
//! still there, and node1, restarted with nothing, catches up and answers its local
//! read again.

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::time::Instant;

use common::{ChildNode, SOON, Transcript, wait_for};
use oxbeam::dist::rpc;
use oxbeam::kv::{Table, TableConfig};
use oxbeam::prelude::*;
use oxbeam::term::from_term;

/// The table: keys are atoms (`:user_1`), values strings, as in the chapter.
type Kv = Table<Term, Term>;

fn main() -> ExitCode {
    common::run_child_if_asked(register_functions);
    common::init_logging();
    let mut t = Transcript::new("exercise1_kv", "a replicated KV on three nodes");
    let outcome = run(&mut t);
    t.finish(outcome)
}

/// `{:ok, value}` or `:not_found`, as the chapter's `get_local` answers.
fn found(value: Option<Term>) -> Term {
    match value {
        Some(v) => term!({:ok, v}),
        None => term!(:not_found),
    }
}

/// `DistributedKV.start_link/1,2`, `put/2`, `get_local/1` on every node of the
/// exercise (node1 runs them when the others call it by rpc).
fn register_functions(node: &Node) {
    let f = node.functions();
    let m = Atom::new("DistributedKV");
    // start_link(nodes, joining): this node's replica of the table `kv` on `nodes`.
    f.register(m, Atom::new("start_link"), 2, |ctx: &mut Ctx, args| {
        let Ok((nodes, joining)) = from_term::<(Vec<Atom>, bool)>(&Term::from(args)) else {
            return term!(:badarg);
        };
        let mut config = TableConfig::new("kv", &nodes);
        if joining {
            config = config.joining();
        }
        match Kv::start_with(ctx.node(), config) {
            Ok(_) => term!(:ok),
            Err(e) => term!({:error, (e.to_string())}),
        }
    });
    f.register(m, Atom::new("put"), 2, |ctx: &mut Ctx, args| {
        let Ok(kv) = Kv::open(ctx.node(), "kv") else {
            return term!({:error, :not_started});
        };
        match kv.put(ctx, &args[0], &args[1]) {
            Ok(_) => term!(:ok),
            Err(e) => term!({:error, (e.to_string())}),
        }
    });
    f.register(
        m,
        Atom::new("get_local"),
        1,
        |ctx: &mut Ctx, args| match Kv::open(ctx.node(), "kv").and_then(|kv| kv.get_local(&args[0]))
        {
            Ok(local) => found(local.value),
            Err(e) => term!({:error, (e.to_string())}),
        },
    );
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
        "node1 runs as OS process {} (this example in child mode); node2, node3 run here",
        child.os_pid()
    ));
    for n in [&node2, &node3] {
        n.connect(&child.name)?;
    }
    let nodes = vec![name1, node2.name(), node3.name()];
    let mut me2 = node2.attach();
    let mut me3 = node3.attach();

    t.step("DistributedKV.start_link() on all nodes");
    let on1 = |me: &mut Ctx, f: &str, args: Vec<Term>| {
        rpc::call(me, name1, "DistributedKV", f, args, Some(SOON))
            .unwrap_or_else(|e| term!({:error, (e.to_string())}))
    };
    let started = on1(
        &mut me2,
        "start_link",
        vec![common::atoms(&nodes), term!(false)],
    );
    t.iex("node1@localhost", "DistributedKV.start_link()", &started);
    let kv2 = Kv::start(node2.rt(), "kv", &nodes)?;
    let kv3 = Kv::start(node3.rt(), "kv", &nodes)?;
    t.check(started == term!(:ok), "node1's replica started");
    let writer = kv2.wait_for_writer(&mut me2, SOON)?;
    t.say(format!(
        "the replicas chose {writer} as the writer (term {})",
        kv2.group().shared().term()
    ));
    // The kill below is to hit the writer, the case that matters: it moves to node1.
    let moved = kv2.transfer_writer(&mut me2, name1, SOON);
    t.check(
        moved.is_ok(),
        format!("the writer moved to node1 (leadership transfer): {moved:?}"),
    );

    t.step("the chapter's test block");
    let put = on1(&mut me2, "put", vec![term!(:user_1), term!("Alice")]);
    t.iex(
        "node1@localhost",
        "DistributedKV.put(:user_1, \"Alice\")",
        &put,
    );
    t.check(
        put == term!(:ok),
        "the write from node1 is acknowledged (a majority holds it)",
    );
    let local = wait_for("node2's copy", SOON, || {
        let v = match kv2.get_local(&term!(:user_1)) {
            Ok(local) => found(local.value),
            Err(e) => term!({:error, (e.to_string())}),
        };
        if v == term!({:ok, "Alice"}) {
            Ok(v)
        } else {
            Err(v)
        }
    });
    t.iex(
        "node2@localhost",
        "DistributedKV.get_local(:user_1)",
        local.as_ref().map_or(term!(:timeout), |v| v.clone()),
    );
    t.check(
        local.is_ok(),
        "node2 reads {:ok, \"Alice\"} from its own copy (no message)",
    );

    t.step("writes go on while node1 is SIGKILLed");
    let mut acked = Vec::new();
    for i in 0..100i64 {
        let (kv, me) = if i % 2 == 0 {
            (&kv2, &mut me2)
        } else {
            (&kv3, &mut me3)
        };
        if kv.put(me, &term!({:item, i}), &term!(i)).is_ok() {
            acked.push(i);
        }
    }
    child.kill();
    let killed = Instant::now();
    t.say(format!(
        "node1, the writer, SIGKILLed after {} acknowledged writes",
        acked.len()
    ));
    let mut failover = None;
    while killed.elapsed() < SOON {
        if kv3.put(&mut me3, &term!(:after_kill), &term!(1)).is_ok() {
            failover = Some(killed.elapsed());
            break;
        }
    }
    t.check(
        failover.is_some(),
        format!("writes accepted again {failover:?} after the kill"),
    );
    let mut lost = 0;
    for &i in &acked {
        if kv2.get(&mut me2, &term!({:item, i}))?.map(|(v, _)| v) != Some(term!(i)) {
            lost += 1;
        }
    }
    t.check(
        lost == 0,
        format!(
            "all {} acknowledged writes read back linearizably ({lost} lost)",
            acked.len()
        ),
    );

    t.step("node1 restarts with nothing and catches up");
    let child2 = ChildNode::start("node1", epmd, &cookie)?;
    node2.connect(&child2.name)?;
    let rejoined = on1(
        &mut me2,
        "start_link",
        vec![common::atoms(&nodes), term!(true)],
    );
    t.check(
        rejoined == term!(:ok),
        "node1's replica rejoined (a joiner: no vote until caught up)",
    );
    let caught = wait_for("node1's copy", SOON, || {
        let v = on1(&mut me2, "get_local", vec![term!(:user_1)]);
        if v == term!({:ok, "Alice"}) {
            Ok(v)
        } else {
            Err(v)
        }
    });
    t.iex(
        "node1@localhost",
        "DistributedKV.get_local(:user_1)",
        caught.as_ref().map_or(term!(:timeout), |v| v.clone()),
    );
    t.check(caught.is_ok(), "the restarted node1 caught up");
    drop(child2);
    Ok(())
}
