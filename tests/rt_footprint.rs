//! Footprint: memory of idle processes, and an idle node's CPU. Its own test binary
//! (one test at a time, `--test-threads=1` is not needed: the tests measure only
//! their own threads and their own growth, and run serially under a lock).
mod support;

use std::sync::Mutex;
use std::time::Duration;

use oxbeam::rt::{Config, Ctx, Flow, Node};
use oxbeam::term::Term;
use support::harness::procfs::own_thread_cpu_ticks;

static SERIAL: Mutex<()> = Mutex::new(());

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 4096
}

#[test]
fn idle_processes_cost_well_under_a_kilobyte() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let node = support::node(2);
    let mut me = node.attach();
    const N: usize = 100_000;
    let before = resident_bytes();
    let pids: Vec<_> = (0..N)
        .map(|_| node.spawn(|_: &mut Ctx, _: Term| Flow::stop_normal()))
        .collect();
    // A round trip through a process spawned last: the scheduler has been through the
    // queue (FIFO) so the others have run their first slice and are idle.
    let probe = node.spawn(|ctx: &mut Ctx, m: Term| {
        if let Some(p) = m.as_pid() {
            ctx.send(p, Term::ok());
        }
        Flow::Continue
    });
    me.send(probe, me.pid());
    me.receive_timeout(support::SOON).unwrap();
    let per_process = (resident_bytes() - before) as f64 / N as f64;
    println!("resident growth per idle process: {per_process:.0} bytes");
    assert!(per_process < 1024.0, "{per_process} bytes per idle process");
    assert_eq!(node.process_count(), N + 2);
    for p in pids {
        node.send(p, Term::ok());
    }
    support::wait_for("processes gone", support::SOON, || {
        (node.process_count() == 2, node.process_count())
    });
    drop(me);
    node.shutdown();
}

#[test]
fn an_idle_node_uses_no_cpu() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let node = Node::start(Config {
        name: "idler@localhost".into(),
        workers: 2,
        ..Config::default()
    });
    // Some work first, then idle: workers must park, not spin.
    let mut me = node.attach();
    let echo = node.spawn(|ctx: &mut Ctx, m: Term| {
        if let Some(p) = m.as_pid() {
            ctx.send(p, Term::ok());
        }
        Flow::Continue
    });
    for _ in 0..1000 {
        me.send(echo, me.pid());
        me.receive_timeout(support::SOON).unwrap();
    }
    let before = own_thread_cpu_ticks("idler-");
    // The measurement window (not a wait for a condition): one second of idleness.
    std::thread::sleep(Duration::from_secs(1));
    let used = own_thread_cpu_ticks("idler-") - before;
    // Ticks are 10 ms; an idle node should use none. Allow 2 for a wake-up landing in
    // the window on a loaded machine.
    assert!(
        used <= 2,
        "idle node threads used {used} ticks of CPU in 1 s"
    );
    drop(me);
    node.shutdown();
}
