//! cargo bench --bench suite
//!
//! oxbeam's side of the benchmark suite: the workloads of `../shared/bench/README.md`,
//! with the same parameters and the same `name value unit` lines (the median of the
//! repetitions) as the BEAM harness, so the two compare line by line. All samples go to
//! a JSON file (`OXBEAM_BENCH_JSON`, default `target/oxbeam-bench.json`).
//! `OXBEAM_BENCH_ONLY=spawn_rate,ring` runs a subset (the BEAM harness's group names).
//! The group `scaling` (ours only, after the BEAM's workloads) is issue #6's scaling
//! run: a million idle processes on one node (spawn time, bytes each) and a 10-node
//! mesh on this machine (connect time, CPU of the idle cluster). The group `physics`
//! (ours only) measures the machine itself: plain loopback TCP round trips and
//! throughput with no runtime at all (see `suite_physics.rs`).
//!
//! Memory per process is measured in a fresh child process (this binary re-run), as the
//! growth of its resident set while it spawns N idle processes: freed memory reused
//! across repetitions would otherwise hide the cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use oxbeam::rt::{Attached, Behaviour, Config, Ctx, Flow, Node, Reactive, Task};

/// As the `oxbeam` binary (see `crates/cli/src/main.rs`).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "suite_apps.rs"]
mod apps;
#[path = "../harness/mod.rs"]
mod harness;
#[path = "suite_physics.rs"]
mod physics;
#[path = "suite_remote.rs"]
mod remote;
use oxbeam::term::{Atom, Pid, Term, term};

struct Metric {
    name: &'static str,
    unit: &'static str,
    samples: Vec<f64>,
    params: String,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        f64::NAN
    } else if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    }
}

fn node() -> Node {
    Node::start(Config {
        name: "bench@localhost".into(),
        ..Config::default()
    })
}

/// Runs `rep` `warmup + reps` times, keeping the last `reps` values.
fn repeat(name: &str, warmup: usize, reps: usize, mut rep: impl FnMut() -> f64) -> Vec<f64> {
    let mut out = Vec::new();
    for i in 0..warmup + reps {
        let v = rep();
        eprintln!(
            "  {name} rep {i}{}: {v:.3}",
            if i < warmup { " (warm-up)" } else { "" }
        );
        if i >= warmup {
            out.push(v);
        }
    }
    out
}

/// Runs `f` in a fresh process of `node` and waits for the value it reports.
fn in_process(node: &Node, f: impl FnOnce(&mut Ctx) -> f64 + Send + 'static) -> f64 {
    let mut me = node.attach();
    let me_pid = me.pid();
    me.spawn(Task::new(move |ctx: &mut Ctx| {
        let v = f(ctx);
        ctx.send(me_pid, Term::Float(v));
    }));
    me.receive_timeout(Duration::from_secs(600))
        .and_then(|t| t.as_float())
        .unwrap_or(f64::NAN)
}

fn spawn_rate(node: &Node) -> Metric {
    const N: usize = 200_000;
    let samples = repeat("spawn_rate_per_s", 1, 7, || {
        in_process(node, |ctx| {
            let start = Instant::now();
            for _ in 0..N {
                ctx.spawn_monitor(Task::new(|_: &mut Ctx| {}));
            }
            for _ in 0..N {
                ctx.receive();
            }
            N as f64 / start.elapsed().as_secs_f64()
        })
    });
    Metric {
        name: "spawn_rate_per_s",
        unit: "procs/s",
        samples,
        params: format!("{{\"n\":{N}}}"),
    }
}

const MEMORY_N: usize = 100_000;

fn resident_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    pages * 4096.0
}

/// In the child: RSS growth per idle process.
/// An idle process: it waits for a message, then stops.
fn idle(_: &mut Ctx, _: Term) -> Flow {
    Flow::stop_normal()
}

/// Returns once every process spawned so far has run its first slice (is idle,
/// waiting): a probe spawned after them answers only when the scheduler got to it.
fn await_spawned(node: &Node, me: &mut Attached, timeout: Duration) {
    let probe = node.spawn(|ctx: &mut Ctx, m: Term| {
        if let Some(p) = m.as_pid() {
            ctx.send(p, Term::ok());
        }
        Flow::Continue
    });
    me.send(probe, me.pid());
    let _ = me.receive_timeout(timeout);
}

fn spawn_memory_child() {
    let node = node();
    let mut me = node.attach();
    // Warm the allocator and the process table with a first batch that stays alive.
    let mut keep: Vec<Pid> = (0..1000).map(|_| node.spawn(idle)).collect();
    let before = resident_bytes();
    for _ in 0..MEMORY_N {
        keep.push(node.spawn(idle));
    }
    await_spawned(&node, &mut me, Duration::from_secs(60));
    let after = resident_bytes();
    println!("{}", (after - before) / MEMORY_N as f64);
    for p in keep {
        node.send(p, Term::ok());
    }
    drop(me);
    node.shutdown();
}

/// The scaling run's node half, in a fresh process: spawns a million idle processes
/// and prints the milliseconds that took (until all have run their first slice) and
/// the resident bytes per process (the pid list kept meanwhile included: 16 B each).
fn scale_child() {
    const N: usize = 1_000_000;
    let node = node();
    let mut me = node.attach();
    let before = resident_bytes();
    let start = Instant::now();
    let mut keep: Vec<Pid> = Vec::with_capacity(N);
    for _ in 0..N {
        keep.push(node.spawn(idle));
    }
    await_spawned(&node, &mut me, Duration::from_secs(120));
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let per_proc = (resident_bytes() - before) / N as f64;
    println!("{ms} {per_proc}");
    for p in keep {
        node.send(p, Term::ok());
    }
    drop(me);
    node.shutdown();
}

/// The scaling run's local half: a million idle processes (3 fresh processes).
fn scaling_local() -> Vec<Metric> {
    let exe = std::env::current_exe().expect("own path");
    let (mut ms, mut bytes) = (Vec::new(), Vec::new());
    for rep in 0..3 {
        let out = std::process::Command::new(&exe)
            .env("OXBEAM_BENCH_CHILD", "scale_1m")
            .output();
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let mut v = text
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(f64::NAN));
        let (m, b) = (v.next().unwrap_or(f64::NAN), v.next().unwrap_or(f64::NAN));
        eprintln!("  scaling rep {rep}: 1M idle processes in {m:.0} ms, {b:.0} B each");
        ms.push(m);
        bytes.push(b);
    }
    vec![
        Metric {
            name: "scale_1m_idle_spawn_ms",
            unit: "ms",
            samples: ms,
            params: "{\"n\":1000000}".into(),
        },
        Metric {
            name: "scale_1m_idle_bytes_per_proc",
            unit: "bytes",
            samples: bytes,
            params: "{\"n\":1000000}".into(),
        },
    ]
}

fn spawn_memory() -> Metric {
    let exe = std::env::current_exe().expect("own path");
    let samples = repeat("spawn_memory_bytes_per_proc", 1, 5, || {
        let out = std::process::Command::new(&exe)
            .env("OXBEAM_BENCH_CHILD", "spawn_memory")
            .output();
        out.ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(f64::NAN)
    });
    Metric {
        name: "spawn_memory_bytes_per_proc",
        unit: "bytes",
        samples,
        params: format!("{{\"n\":{MEMORY_N}}}"),
    }
}

/// Pings a ponger `left` more times, then reports the elapsed time to `report`.
struct Pinger {
    ponger: Pid,
    left: u64,
    rounds: u64,
    start: Instant,
    report: Pid,
    /// The `:ping` atom, interned once (as a literal atom costs nothing on the BEAM).
    ping: Term,
}

impl Behaviour for Pinger {
    fn init(&mut self, ctx: &mut Ctx) -> Flow {
        self.start = Instant::now();
        ctx.send(self.ponger, (self.ping.clone(), ctx.pid()));
        Flow::Continue
    }
    fn handle(&mut self, ctx: &mut Ctx, _pong: Term) -> Flow {
        self.left -= 1;
        if self.left == 0 {
            let ns = self.start.elapsed().as_nanos() as f64 / self.rounds as f64;
            ctx.send(self.report, Term::Float(ns));
            return Flow::stop_normal();
        }
        ctx.send(self.ponger, (self.ping.clone(), ctx.pid()));
        Flow::Continue
    }
}

fn pong(ctx: &mut Ctx, msg: Term) -> Flow {
    match msg.as_tuple() {
        Some([_, Term::Pid(from)]) => ctx.send(*from, Term::Atom(Atom::OK)),
        _ => return Flow::stop_normal(),
    }
    Flow::Continue
}

fn local_pingpong(node: &Node) -> Metric {
    const N: u64 = 1_000_000;
    let samples = repeat("local_pingpong_rtt_ns", 1, 5, || {
        let mut me = node.attach();
        let ponger = node.spawn(pong);
        // 1 000 untimed round trips first, then the timed run.
        for rounds in [1000, N] {
            node.spawn(Pinger {
                ponger,
                left: rounds,
                rounds,
                start: Instant::now(),
                report: me.pid(),
                ping: term!(:ping),
            });
            let v = me.receive().as_float().unwrap_or(f64::NAN);
            if rounds == N {
                node.send(ponger, term!(:stop));
                return v;
            }
        }
        f64::NAN
    });
    Metric {
        name: "local_pingpong_rtt_ns",
        unit: "ns",
        samples,
        params: format!("{{\"round_trips\":{N}}}"),
    }
}

fn ring(node: &Node) -> Metric {
    const PROCS: usize = 10_000;
    const HOPS: i64 = 1_000_000;
    let setup_ms = Arc::new(AtomicU64::new(0));
    let samples = repeat("ring_hops_per_s", 1, 7, || {
        let mut me = node.attach();
        let me_pid = me.pid();
        let t0 = Instant::now();
        let members: Vec<Pid> = (0..PROCS)
            .map(|_| {
                let mut next: Option<Pid> = None;
                node.spawn(move |ctx: &mut Ctx, msg: Term| {
                    match msg.as_tuple() {
                        Some([_, Term::Int(0)]) => ctx.send(me_pid, Term::atom("done")),
                        Some([tag, Term::Int(k)]) => {
                            if let Some(n) = next {
                                ctx.send(n, (tag.clone(), *k - 1));
                            }
                        }
                        Some([_, Term::Pid(p)]) => next = Some(*p),
                        _ => return Flow::stop_normal(),
                    }
                    Flow::Continue
                })
            })
            .collect();
        for (i, p) in members.iter().enumerate() {
            me.send(*p, (Term::atom("next"), members[(i + 1) % PROCS]));
        }
        setup_ms.store(t0.elapsed().as_millis() as u64, Ordering::Relaxed);
        let start = Instant::now();
        me.send(members[0], (Term::atom("token"), HOPS));
        let _ = me.receive_match(|m| m.is_atom("done"), Some(Duration::from_secs(600)));
        let v = HOPS as f64 / start.elapsed().as_secs_f64();
        for p in members {
            me.send(p, term!(:stop));
        }
        v
    });
    Metric {
        name: "ring_hops_per_s",
        unit: "hops/s",
        samples,
        params: format!(
            "{{\"procs\":{PROCS},\"hops\":{HOPS},\"setup_ms\":{}}}",
            setup_ms.load(Ordering::Relaxed)
        ),
    }
}

/// One sender sends `{msg, I}` N times, then `{done, self()}`; the receiver counts and
/// answers `{ack, Count}`. The receiver is a reactor (it only counts: it never waits),
/// which lets the sender's worker run it inline every 7th send, both in one cache, as
/// on a BEAM scheduler; `local_fanout_handler_msgs_per_s` (ours only) is the same with
/// a plain handler, which runs on another thread.
fn fanout(ctx: &mut Ctx, n: i64, reactor: bool) -> f64 {
    let mut count = 0i64;
    let receiver = if reactor {
        ctx.spawn_reactor(move |ctx: &mut Reactive<'_>, msg: Term| {
            if let Some([Term::Pid(from)]) = msg.tagged("done") {
                ctx.send(*from, (Term::atom("ack"), count));
                return Flow::stop_normal();
            }
            count += 1;
            Flow::Continue
        })
    } else {
        ctx.spawn(move |ctx: &mut Ctx, msg: Term| {
            if let Some([Term::Pid(from)]) = msg.tagged("done") {
                ctx.send(*from, (Term::atom("ack"), count));
                return Flow::stop_normal();
            }
            count += 1;
            Flow::Continue
        })
    };
    let start = Instant::now();
    let tag = Term::atom("msg");
    for i in 0..n {
        ctx.send(receiver, (tag.clone(), i));
    }
    ctx.send(receiver, (Term::atom("done"), ctx.pid()));
    let ack = ctx.receive();
    assert_eq!(ack.as_tuple().map(|t| t[1].clone()), Some(Term::Int(n)));
    n as f64 / start.elapsed().as_secs_f64()
}

fn fanout_metric(node: &Node, name: &'static str, reactor: bool) -> Metric {
    const N: i64 = 2_000_000;
    let samples = repeat(name, 1, 7, || {
        in_process(node, move |ctx| fanout(ctx, N, reactor))
    });
    let receiver = if reactor { "reactor" } else { "handler" };
    Metric {
        name,
        unit: "msgs/s",
        samples,
        params: format!("{{\"messages\":{N},\"receiver\":\"{receiver}\"}}"),
    }
}

fn local_fanout(node: &Node) -> Metric {
    fanout_metric(node, "local_fanout_msgs_per_s", true)
}

fn local_fanout_handler(node: &Node) -> Metric {
    fanout_metric(node, "local_fanout_handler_msgs_per_s", false)
}

/// A remote workload group: runs against nodes started by the controller.
type RemoteWorkload = fn(&remote::Ctl) -> Vec<Metric>;

/// One workload group: runs on the bench node, returns its metric.
type Workload = dyn Fn(&Node) -> Metric;

fn json(metrics: &[Metric]) -> String {
    let results: Vec<String> = metrics
        .iter()
        .map(|m| {
            let samples: Vec<String> = m.samples.iter().map(|s| format!("{s}")).collect();
            let (min, max) = m.samples.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &s| (a.min(s), b.max(s)));
            format!(
                "{{\"name\":\"{}\",\"unit\":\"{}\",\"value\":{},\"median\":{},\"min\":{},\"max\":{},\"samples\":[{}],\"params\":{}}}",
                m.name,
                m.unit,
                median(&m.samples),
                median(&m.samples),
                min,
                max,
                samples.join(","),
                m.params
            )
        })
        .collect();
    format!(
        "{{\"harness\":\"oxbeam\",\"format_version\":1,\"results\":[{}]}}\n",
        results.join(",")
    )
}

fn main() {
    let child = std::env::var("OXBEAM_BENCH_CHILD").unwrap_or_default();
    let parts: Vec<&str> = child.split(':').collect();
    match parts.as_slice() {
        ["spawn_memory"] => return spawn_memory_child(),
        ["scale_1m"] => return scale_child(),
        ["tcp_echo", mode] => return physics::echo_child(mode),
        ["tcp_client", mode, port] => {
            return physics::client_child(mode, port.parse().unwrap_or(0));
        }
        _ => {}
    }
    // `cargo bench` passes `--bench`; a filter argument is not supported (use ONLY).
    let only: Option<Vec<String>> = std::env::var("OXBEAM_BENCH_ONLY")
        .ok()
        .map(|s| s.split(',').map(|g| g.trim().to_owned()).collect());
    let wanted = |group: &str| only.as_ref().is_none_or(|o| o.iter().any(|g| g == group));
    let node = node();
    let mut metrics = Vec::new();
    let groups: [(&str, &Workload); 6] = [
        ("spawn_rate", &spawn_rate),
        ("spawn_memory", &|_: &Node| spawn_memory()),
        ("local_pingpong", &local_pingpong),
        ("ring", &ring),
        ("local_fanout", &local_fanout),
        ("local_fanout_handler", &local_fanout_handler),
    ];
    for (group, run) in groups {
        if !wanted(group) {
            continue;
        }
        let m = run(&node);
        println!("{} {} {}", m.name, fmt_value(median(&m.samples)), m.unit);
        metrics.push(m);
    }
    let remote_groups: [(&str, RemoteWorkload); 10] = [
        ("remote_pingpong", remote::remote_pingpong),
        ("remote_small", remote::remote_throughput),
        ("rpc_call", remote::rpc_call),
        ("global", remote::global),
        ("pg_propagation", remote::pg_propagation),
        ("pg_members", remote::pg_members),
        ("node_down", remote::node_down),
        ("mesh_connect", remote::mesh_connect),
        ("scaling", remote::scaling_mesh),
        ("apps", apps::apps),
    ];
    if wanted("physics") {
        for m in physics::physics() {
            println!("{} {} {}", m.name, fmt_value(median(&m.samples)), m.unit);
            metrics.push(m);
        }
    }
    if wanted("scaling") {
        for m in scaling_local() {
            println!("{} {} {}", m.name, fmt_value(median(&m.samples)), m.unit);
            metrics.push(m);
        }
    }
    let mut ctl = None;
    for (group, run) in remote_groups {
        // remote_small also runs the large-message workload (one pair of nodes).
        if !(wanted(group) || (group == "remote_small" && wanted("remote_large"))) {
            continue;
        }
        let ctl = ctl.get_or_insert_with(remote::controller);
        for m in run(ctl) {
            println!("{} {} {}", m.name, fmt_value(median(&m.samples)), m.unit);
            metrics.push(m);
        }
    }
    if let Some(ctl) = ctl {
        ctl.net.shutdown();
    }
    node.shutdown();
    let path =
        std::env::var("OXBEAM_BENCH_JSON").unwrap_or_else(|_| "target/oxbeam-bench.json".into());
    if let Err(e) = std::fs::write(&path, json(&metrics)) {
        eprintln!("cannot write {path}: {e}");
    }
}

fn fmt_value(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}
