// cargo run --release --example exercise2_queue
//! Exercise 2: the task queue. node1 runs as its own OS process (this binary again, in
//! child mode); node2 and node3 run here. Each node starts its replica of the queue and
//! its pool of workers (the chapter's `DistributedQueue.start_link()` on every node);
//! tasks enqueued on node2 run on all three, never more than 5 at once per node (the
//! chapter's bound), and their results are awaited on node3. Then node1 is SIGKILLed
//! with tasks running there: they run again on the survivors, every task finishes, and
//! the repeats (the price of at-least-once) are counted.
//!
//! ```elixir
//! DistributedQueue.start_link()
//! DistributedQueue.enqueue("task")       # => {:ok, "Processed: task"} when it ran
//! ```
//!
//! The chapter's `execute_task` sleeps a second; here it sleeps 100 ms, so the example
//! stays short.

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{ChildNode, SOON, Transcript};
use oxbeam::dist::rpc;
use oxbeam::prelude::*;
use oxbeam::queue::{Queue, TaskState};
use oxbeam::term::from_term;

const TASKS: i64 = 60;

fn main() -> ExitCode {
    common::run_child_if_asked(register_functions);
    common::init_logging();
    let mut t = Transcript::new("exercise2_queue", "a replicated task queue on three nodes");
    let outcome = run(&mut t);
    t.finish(outcome)
}

/// How many tasks run on this node now, and the most at once (a node extension).
#[derive(Default)]
struct Running {
    now: AtomicUsize,
    most: AtomicUsize,
}

/// `DistributedQueue.start_link/1`, `execute_task/1` and `most/0` on every node.
fn register_functions(node: &Node) {
    let f = node.functions();
    let m = Atom::new("DistributedQueue");
    f.register(m, Atom::new("start_link"), 1, |ctx: &mut Ctx, args| {
        let Ok((nodes,)) = from_term::<(Vec<Atom>,)>(&Term::from(args)) else {
            return term!(:badarg);
        };
        match Queue::start(ctx.node(), "tasks", &nodes) {
            Ok(_) => term!(:ok),
            Err(e) => term!({:error, (e.to_string())}),
        }
    });
    // The chapter's execute_task: some work, then {:ok, "Processed: task"}; it also
    // says where it ran.
    f.register(m, Atom::new("execute_task"), 1, |ctx: &mut Ctx, args| {
        let running = ctx
            .node()
            .extension_or_insert_with(|| Arc::new(Running::default()));
        let now = running.now.fetch_add(1, Ordering::SeqCst) + 1;
        running.most.fetch_max(now, Ordering::SeqCst);
        ctx.receive_match(|_| false, Some(Duration::from_millis(100)));
        running.now.fetch_sub(1, Ordering::SeqCst);
        let task = args[0].as_str().unwrap_or_default().to_owned();
        term!({:ok, (format!("Processed: {task}")), (ctx.node().name())})
    });
    f.register(m, Atom::new("most"), 0, |ctx: &mut Ctx, _| {
        let running = ctx
            .node()
            .extension_or_insert_with(|| Arc::new(Running::default()));
        Term::Int(running.most.load(Ordering::SeqCst) as i64)
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
    let mut me3 = node3.attach();

    t.step("DistributedQueue.start_link() on all nodes");
    let started = rpc::call(
        &mut me2,
        name1,
        "DistributedQueue",
        "start_link",
        vec![common::atoms(&nodes)],
        Some(SOON),
    )?;
    let q2 = Queue::start(node2.rt(), "tasks", &nodes)?;
    let q3 = Queue::start(node3.rt(), "tasks", &nodes)?;
    t.check(started == term!(:ok), "node1's replica and pool started");
    q2.group().wait_for_leader(&mut me2, SOON)?;

    t.step(&format!(
        "{TASKS} tasks enqueued on node2, awaited on node3"
    ));
    let mut ids = Vec::new();
    for i in 0..TASKS {
        ids.push(q2.enqueue(
            &mut me2,
            "DistributedQueue",
            "execute_task",
            vec![Term::str(&format!("task{i}"))],
        )?);
    }
    t.iex(
        "node2@localhost",
        "DistributedQueue.enqueue(\"task0\")",
        term!({:ok, (ids[0] as i64)}),
    );
    // Half way through, node1 is SIGKILLed with tasks running there.
    let mut ran_on = std::collections::BTreeMap::<String, usize>::new();
    let mut failures = 0;
    for (i, id) in ids.iter().enumerate() {
        if i == ids.len() / 2 {
            let most1 = rpc::call(
                &mut me2,
                name1,
                "DistributedQueue",
                "most",
                vec![],
                Some(SOON),
            )?;
            t.say(format!("node1 ran at most {most1} tasks at once"));
            child.kill();
            t.say("node1 SIGKILLed");
        }
        match q3.await_result(&mut me3, *id, SOON) {
            Ok(r) => {
                if i == 0 {
                    t.iex("node3@localhost", "(the result of task0)", &r);
                }
                let node = r
                    .as_tuple()
                    .and_then(|t| t.get(2))
                    .map(|n| n.to_string())
                    .unwrap_or_default();
                *ran_on.entry(node).or_default() += 1;
            }
            Err(e) => {
                failures += 1;
                t.say(format!("task {id}: {e}"));
            }
        }
    }
    t.check(
        failures == 0,
        format!("every one of {TASKS} tasks finished ({failures} did not)"),
    );
    t.say(format!("results by node: {ran_on:?}"));
    t.check(ran_on.len() >= 2, "the work was spread over the nodes");
    let mut again = 0;
    for id in &ids {
        if let Some(task) = q3.task(&mut me3, *id)? {
            again += (task.dispatches > 1) as usize;
            if !matches!(task.state, TaskState::Done(_)) {
                t.say(format!("task {id} is {:?}", task.state));
            }
        }
    }
    t.say(format!(
        "{again} task(s) ran again after node1's loss (at least once, counted)"
    ));
    for (n, name) in [(&node2, "node2"), (&node3, "node3")] {
        let most = n
            .rt()
            .extension::<Running>()
            .map_or(0, |r| r.most.load(Ordering::SeqCst));
        t.check(
            most <= 5,
            format!("{name} ran at most {most} at once (the bound is 5)"),
        );
    }
    Ok(())
}
