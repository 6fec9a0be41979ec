//! The remote workloads: nodes as separate OS processes (`oxbeam-testnode node`, which
//! is `oxbeam node` plus the `oxbeam_test` and `oxbeam_bench` functions), driven from a
//! hidden controller node in the bench process (so it never joins their mesh), with a
//! private port mapper, as the BEAM harness does. The measuring process runs on node A
//! (registered `oxbeam_bench` functions), against node B.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use oxbeam::dist::rpc;
use oxbeam::node::{Net, NetConfig};
use oxbeam::rt::Attached;
use oxbeam::term::{Atom, Pid, Term, term};

use super::harness::ChildProc;
use super::harness::child::{Listening, node_args};
use super::harness::procfs;
use super::{Metric, repeat};

const COOKIE: &str = "oxbench_cookie";

/// A node in its own OS process (`oxbeam-testnode node`); killed when dropped.
pub struct Peer {
    proc: ChildProc,
    pub name: String,
}

impl Peer {
    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        self.proc.kill();
    }
}

/// Starts `oxbeam-testnode node` (under `taskset -c cpu` if given) and waits for its
/// first line. `OXBEAM_BENCH_NODE_EXE` names another binary to run the nodes with (an A/B
/// comparison of two builds in one sitting): an `oxbeam-testnode`, or an `oxbeam` from
/// before the fixtures left it (both take `node` and the same options).
pub fn peer(short: &str, epmd: u16, cpu: Option<usize>) -> Peer {
    let exe = std::env::var("OXBEAM_BENCH_NODE_EXE")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_oxbeam-testnode").to_owned());
    let exe = exe.as_str();
    let mut cmd = match cpu {
        Some(c) => {
            let mut t = Command::new("taskset");
            t.args(["-c", &c.to_string(), exe]);
            t
        }
        None => Command::new(exe),
    };
    cmd.args(node_args(short, COOKIE, epmd));
    // Its output after the first line is read and dropped, so it never blocks on a pipe.
    let proc = ChildProc::spawn(&mut cmd, None).unwrap_or_else(|e| panic!("start {exe} node: {e}"));
    let first = proc.next_line(Duration::from_secs(60));
    assert!(
        first.as_deref().and_then(Listening::parse).is_some(),
        "node {short} did not start: {first:?}"
    );
    proc.echo_from_now();
    Peer {
        proc,
        name: format!("{short}@localhost"),
    }
}

pub struct Ctl {
    pub net: Net,
    pub epmd: u16,
}

/// The controller hosts the nodes' private port mapper (port 0: on a port it picks).
pub fn controller() -> Ctl {
    let mut c = NetConfig::named("oxbench_ctl@localhost");
    c.cookie = Some(COOKIE.into());
    c.epmd_port = Some(0);
    c.hidden = true;
    let net = Net::start(c).expect("controller node");
    let epmd = net.epmd_port();
    Ctl { net, epmd }
}

fn spawn(
    ctl: &Ctl,
    me: &mut Attached,
    node: &str,
    module: &str,
    fun: &str,
    args: Vec<Term>,
) -> Pid {
    assert!(ctl.net.connect(node).is_ok(), "connect to {node}");
    ctl.net
        .spawn(
            me,
            Atom::new(node),
            (Atom::new(module), Atom::new(fun), args),
            oxbeam::node::SpawnRequest::default(),
        )
        .unwrap_or_else(|e| panic!("spawn {module}:{fun} on {node}: {e}"))
        .0
}

fn result(me: &mut Attached) -> Term {
    let m = me
        .receive_match(
            |m| m.tagged("result").is_some(),
            Some(Duration::from_secs(300)),
        )
        .expect("a result");
    m.tagged("result")
        .map(|r| r[0].clone())
        .unwrap_or(Term::nil())
}

/// Round trips from A to an echo on B; `cpus` pins A and B.
fn pingpong(ctl: &Ctl, tag: &str, cpus: (Option<usize>, Option<usize>), warm: i64, n: i64) -> f64 {
    let a = peer(&format!("pa{tag}"), ctl.epmd, cpus.0);
    let b = peer(&format!("pb{tag}"), ctl.epmd, cpus.1);
    let mut me = ctl.net.node().attach();
    let echo = spawn(ctl, &mut me, &b.name, "oxbeam_test", "echo", vec![]);
    let me_pid = me.pid();
    spawn(
        ctl,
        &mut me,
        &a.name,
        "oxbeam_bench",
        "ping",
        vec![
            Term::Pid(echo),
            Term::Int(warm),
            Term::Int(n),
            Term::Pid(me_pid),
        ],
    );
    result(&mut me).as_float().unwrap_or(f64::NAN)
}

pub fn remote_pingpong(ctl: &Ctl) -> Vec<Metric> {
    let mut i = 0;
    let mut next = || {
        i += 1;
        i
    };
    let unpinned = repeat("remote_pingpong_rtt_us", 0, 5, || {
        pingpong(ctl, &format!("u{}", next()), (None, None), 2000, 100_000)
    });
    let same = repeat("remote_pingpong_rtt_same_cpu_us", 0, 3, || {
        pingpong(
            ctl,
            &format!("s{}", next()),
            (Some(0), Some(0)),
            2000,
            20_000,
        )
    });
    let cross = repeat("remote_pingpong_rtt_cross_cpu_us", 0, 3, || {
        pingpong(
            ctl,
            &format!("c{}", next()),
            (Some(0), Some(1)),
            2000,
            20_000,
        )
    });
    vec![
        Metric {
            name: "remote_pingpong_rtt_us",
            unit: "us",
            samples: unpinned,
            params: "{\"round_trips\":100000}".into(),
        },
        Metric {
            name: "remote_pingpong_rtt_same_cpu_us",
            unit: "us",
            samples: same,
            params: "{\"round_trips\":20000}".into(),
        },
        Metric {
            name: "remote_pingpong_rtt_cross_cpu_us",
            unit: "us",
            samples: cross,
            params: "{\"round_trips\":20000}".into(),
        },
    ]
}

/// A blasts `n` copies of `{:msg, payload}` at a counter on B; seconds for the timed run.
fn blast(ctl: &Ctl, a: &Peer, b: &Peer, payload: Term, warm: i64, n: i64) -> f64 {
    let mut me = ctl.net.node().attach();
    let counter = spawn(ctl, &mut me, &b.name, "oxbeam_bench", "counter", vec![]);
    let me_pid = me.pid();
    let args = |k: i64| {
        vec![
            Term::Pid(counter),
            Term::Int(k),
            payload.clone(),
            Term::Pid(me_pid),
        ]
    };
    spawn(ctl, &mut me, &a.name, "oxbeam_bench", "blast", args(warm));
    result(&mut me);
    spawn(ctl, &mut me, &a.name, "oxbeam_bench", "blast", args(n));
    let secs = result(&mut me).as_float().unwrap_or(f64::NAN);
    me.send(counter, term!(:stop));
    secs
}

pub fn remote_throughput(ctl: &Ctl) -> Vec<Metric> {
    let a = peer("ta", ctl.epmd, None);
    let b = peer("tb", ctl.epmd, None);
    const SMALL: i64 = 1_000_000;
    let small = repeat("remote_throughput_small_msgs_per_s", 0, 5, || {
        SMALL as f64 / blast(ctl, &a, &b, Term::Int(42), 20_000, SMALL)
    });
    const LARGE: i64 = 10_000;
    let bin: Vec<u8> = (0..65_536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let payload = Term::binary(&bin);
    let large = repeat("remote_throughput_large_mb_per_s", 0, 5, || {
        let secs = blast(ctl, &a, &b, payload.clone(), 200, LARGE);
        LARGE as f64 * 65_536.0 / 1e6 / secs
    });
    vec![
        Metric {
            name: "remote_throughput_small_msgs_per_s",
            unit: "msgs/s",
            samples: small,
            params: format!("{{\"messages\":{SMALL}}}"),
        },
        Metric {
            name: "remote_throughput_large_mb_per_s",
            unit: "MB/s",
            samples: large,
            params: format!("{{\"messages\":{LARGE},\"bytes\":65536}}"),
        },
    ]
}

pub fn node_down(ctl: &Ctl) -> Vec<Metric> {
    let mut i = 0;
    let mut down_after = |how: &str, reps: usize| {
        repeat(&format!("node_down_{how}_ms"), 0, reps, || {
            i += 1;
            let mut victim = peer(&format!("victim{i}"), ctl.epmd, None);
            let mut me = ctl.net.node().attach();
            let p = spawn(ctl, &mut me, &victim.name, "oxbeam_test", "echo", vec![]);
            me.monitor(p);
            let v = Atom::new(&victim.name);
            ctl.net.monitor_node(me.pid(), v, true);
            // Settle: a round trip through the victim.
            me.send(p, (me.pid(), 1));
            me.receive_timeout(Duration::from_secs(10));
            let t0 = Instant::now();
            match how {
                "sigkill" => {
                    victim.proc.sigkill();
                }
                // As `erpc:cast(V, erlang, halt, [0])` resp. `init:stop()`.
                "halt" => rpc::cast(&mut me, v, bench_mod(), Atom::new("halt"), vec![0.into()]),
                _ => rpc::cast(&mut me, v, bench_mod(), Atom::new("stop"), vec![]),
            }
            let down = me.receive_match(
                |m| m.tagged("DOWN").is_some(),
                Some(Duration::from_secs(60)),
            );
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            let _ = victim.proc.wait_exit(Duration::from_secs(60));
            if down.is_some() { ms } else { f64::NAN }
        })
    };
    let metric = |name: &'static str, samples| Metric {
        name,
        unit: "ms",
        samples,
        params: "{}".into(),
    };
    let sigkill = down_after("sigkill", 5);
    let halt = down_after("halt", 5);
    let stop = down_after("init_stop", 3);
    vec![
        metric("node_down_sigkill_ms", sigkill),
        metric("node_down_halt_ms", halt),
        metric("node_down_init_stop_ms", stop),
    ]
}

fn bench_mod() -> Atom {
    Atom::new("oxbeam_bench")
}

pub fn mesh_connect(ctl: &Ctl) -> Vec<Metric> {
    let mut round = 0;
    let samples = repeat("mesh_connect_8_ms", 0, 3, || {
        round += 1;
        let peers: Vec<Peer> = (1..=8)
            .map(|k| peer(&format!("m{round}n{k}"), ctl.epmd, None))
            .collect();
        let mut me = ctl.net.node().attach();
        let me_pid = me.pid();
        for p in &peers {
            spawn(
                ctl,
                &mut me,
                &p.name,
                "oxbeam_bench",
                "await_nodes",
                vec![Term::Int(7), Term::Pid(me_pid)],
            );
        }
        let t0 = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as i64;
        for p in &peers[1..] {
            spawn(
                ctl,
                &mut me,
                &p.name,
                "oxbeam_bench",
                "connect",
                vec![Term::atom(&peers[0].name)],
            );
        }
        let mut last = t0;
        for _ in 0..8 {
            let m = me.receive_match(
                |m| m.tagged("meshed").is_some(),
                Some(Duration::from_secs(60)),
            );
            match m
                .as_ref()
                .and_then(|m| m.tagged("meshed"))
                .and_then(|r| r[0].as_int())
            {
                Some(t) => last = last.max(t),
                None => return f64::NAN,
            }
        }
        (last - t0) as f64 / 1e3
    });
    vec![Metric {
        name: "mesh_connect_8_ms",
        unit: "ms",
        samples,
        params: "{\"nodes\":8}".into(),
    }]
}

/// The scaling run's cluster half: 10 nodes on this machine form a mesh from one
/// connect each (time until all see 9 peers), then sit idle for 5 s: the CPU time
/// all ten use meanwhile (ticks, timers), as a percentage of one CPU.
pub fn scaling_mesh(ctl: &Ctl) -> Vec<Metric> {
    const NODES: usize = 10;
    let peers: Vec<Peer> = (1..=NODES)
        .map(|k| peer(&format!("scale{k}"), ctl.epmd, None))
        .collect();
    let mut me = ctl.net.node().attach();
    let me_pid = me.pid();
    for p in &peers {
        let args = vec![Term::Int(NODES as i64 - 1), Term::Pid(me_pid)];
        spawn(ctl, &mut me, &p.name, "oxbeam_bench", "await_nodes", args);
    }
    let t0 = Instant::now();
    for p in &peers[1..] {
        let args = vec![Term::atom(&peers[0].name)];
        spawn(ctl, &mut me, &p.name, "oxbeam_bench", "connect", args);
    }
    let mut meshed = 0;
    while meshed < NODES
        && me
            .receive_match(
                |m| m.tagged("meshed").is_some(),
                Some(Duration::from_secs(60)),
            )
            .is_some()
    {
        meshed += 1;
    }
    let connect_ms = if meshed == NODES {
        t0.elapsed().as_secs_f64() * 1e3
    } else {
        f64::NAN
    };
    drop(me);
    // The measurement window: the cluster does nothing for 5 s.
    let window = Duration::from_secs(5);
    let cpu_ticks = |p: &Peer| procfs::cpu_ticks(p.proc.os_pid());
    let before: u64 = peers.iter().map(cpu_ticks).sum();
    std::thread::sleep(window);
    let after: u64 = peers.iter().map(cpu_ticks).sum();
    let pct = (after - before) as f64 / procfs::clock_ticks_per_s() / window.as_secs_f64() * 100.0;
    eprintln!(
        "  scaling: {NODES}-node mesh in {connect_ms:.1} ms; idle cluster {pct:.2}% of a CPU"
    );
    vec![
        Metric {
            name: "scale_mesh_10_connect_ms",
            unit: "ms",
            samples: vec![connect_ms],
            params: "{\"nodes\":10}".into(),
        },
        Metric {
            name: "scale_mesh_10_idle_cpu_pct",
            unit: "%",
            samples: vec![pct],
            params: "{\"nodes\":10,\"window_s\":5}".into(),
        },
    ]
}

/// Waits until `node` sees `count` visible peers (its mesh is complete).
fn await_mesh(ctl: &Ctl, me: &mut Attached, node: &str, count: i64) {
    let me_pid = me.pid();
    spawn(
        ctl,
        me,
        node,
        "oxbeam_bench",
        "await_nodes",
        vec![Term::Int(count), Term::Pid(me_pid)],
    );
    me.receive_match(
        |m| m.tagged("meshed").is_some(),
        Some(Duration::from_secs(60)),
    );
}

pub fn rpc_call(ctl: &Ctl) -> Vec<Metric> {
    let a = peer("rpa", ctl.epmd, None);
    let b = peer("rpb", ctl.epmd, None);
    let run = |label: &str| {
        let mut me = ctl.net.node().attach();
        let me_pid = me.pid();
        let args = vec![Term::atom(&b.name), Term::Int(20_000), Term::Pid(me_pid)];
        spawn(ctl, &mut me, &a.name, "oxbeam_bench", "rpc_calls", args);
        let us = result(&mut me).as_float().unwrap_or(f64::NAN);
        eprintln!("  {label} {us:.3}");
        us
    };
    // rpc and erpc interleaved per repetition, as the BEAM harness does. Here they
    // are one mechanism (`rpc::call`; `:erpc.call` only raises instead of returning
    // `{:badrpc, _}`), so the two lines measure the same path twice.
    let (mut rpc, mut erpc) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        rpc.push(run("rpc_call_latency_us"));
        erpc.push(run("erpc_call_latency_us"));
    }
    vec![
        Metric {
            name: "rpc_call_latency_us",
            unit: "us",
            samples: rpc,
            params: "{\"calls\":20000}".into(),
        },
        Metric {
            name: "erpc_call_latency_us",
            unit: "us",
            samples: erpc,
            params: "{\"calls\":20000}".into(),
        },
    ]
}

pub fn global(ctl: &Ctl) -> Vec<Metric> {
    let a = peer("gla", ctl.epmd, None);
    let b = peer("glb", ctl.epmd, None);
    let c = peer("glc", ctl.epmd, None);
    const N: i64 = 2000;
    let (mut reg, mut unreg, mut whereis) = (Vec::new(), Vec::new(), Vec::new());
    let mut me = ctl.net.node().attach();
    let me_pid = me.pid();
    // Form the cluster: b and c connect to a.
    for p in [&b, &c] {
        spawn(
            ctl,
            &mut me,
            &p.name,
            "oxbeam_bench",
            "connect",
            vec![Term::atom(&a.name)],
        );
    }
    await_mesh(ctl, &mut me, &a.name, 2);
    for rep in 0..3 {
        let worker = spawn(
            ctl,
            &mut me,
            &a.name,
            "oxbeam_bench",
            "global_names",
            vec![Term::Int(N), Term::Pid(me_pid)],
        );
        reg.push(result(&mut me).as_float().unwrap_or(f64::NAN));
        spawn(
            ctl,
            &mut me,
            &b.name,
            "oxbeam_bench",
            "whereis_loop",
            vec![Term::Int(N), Term::Int(50), Term::Pid(me_pid)],
        );
        whereis.push(result(&mut me).as_float().unwrap_or(f64::NAN));
        me.send(worker, term!(:unregister));
        unreg.push(result(&mut me).as_float().unwrap_or(f64::NAN));
        eprintln!(
            "  global rep {rep}: register {:.1} us, whereis {:.3} us, unregister {:.1} us",
            reg[rep], whereis[rep], unreg[rep]
        );
    }
    vec![
        Metric {
            name: "global_register_latency_us",
            unit: "us",
            samples: reg,
            params: format!("{{\"names\":{N}}}"),
        },
        Metric {
            name: "global_unregister_latency_us",
            unit: "us",
            samples: unreg,
            params: format!("{{\"names\":{N}}}"),
        },
        Metric {
            name: "global_whereis_latency_us",
            unit: "us",
            samples: whereis,
            params: "{\"lookups\":100000}".into(),
        },
    ]
}

pub fn pg_members(ctl: &Ctl) -> Vec<Metric> {
    let a = peer("pga", ctl.epmd, None);
    let b = peer("pgb", ctl.epmd, None);
    let mut me = ctl.net.node().attach();
    let me_pid = me.pid();
    spawn(
        ctl,
        &mut me,
        &b.name,
        "oxbeam_bench",
        "connect",
        vec![Term::atom(&a.name)],
    );
    await_mesh(ctl, &mut me, &a.name, 1);
    let group = term!(:bench_group);
    spawn(
        ctl,
        &mut me,
        &a.name,
        "oxbeam_bench",
        "pg_join_many",
        vec![group.clone(), Term::Int(1000)],
    );
    let mut run = |node: &str| {
        repeat("pg_get_members_1k_us", 0, 5, || {
            // Wait until the node sees all 1000 (a first pass reports the count).
            loop {
                spawn(
                    ctl,
                    &mut me,
                    node,
                    "oxbeam_bench",
                    "pg_members",
                    vec![group.clone(), Term::Int(1), Term::Pid(me_pid)],
                );
                let m = me.receive_match(
                    |m| m.tagged("result").is_some(),
                    Some(Duration::from_secs(60)),
                );
                if m.and_then(|m| m.tagged("result").map(|r| r[1].clone())) == Some(Term::Int(1000))
                {
                    break;
                }
            }
            spawn(
                ctl,
                &mut me,
                node,
                "oxbeam_bench",
                "pg_members",
                vec![group.clone(), Term::Int(20_000), Term::Pid(me_pid)],
            );
            result(&mut me).as_float().unwrap_or(f64::NAN)
        })
    };
    let remote = run(&b.name);
    let local = run(&a.name);
    vec![
        Metric {
            name: "pg_get_members_1k_us",
            unit: "us",
            samples: remote,
            params: "{\"members\":1000,\"calls\":20000}".into(),
        },
        Metric {
            name: "pg_get_members_1k_local_us",
            unit: "us",
            samples: local,
            params: "{\"members\":1000,\"calls\":20000}".into(),
        },
    ]
}

pub fn pg_propagation(ctl: &Ctl) -> Vec<Metric> {
    let a = peer("ppa", ctl.epmd, None);
    let b = peer("ppb", ctl.epmd, None);
    let c = peer("ppc", ctl.epmd, None);
    let mut me = ctl.net.node().attach();
    let me_pid = me.pid();
    for p in [&b, &c] {
        spawn(
            ctl,
            &mut me,
            &p.name,
            "oxbeam_bench",
            "connect",
            vec![Term::atom(&a.name)],
        );
    }
    await_mesh(ctl, &mut me, &a.name, 2);
    let spinner = spawn(ctl, &mut me, &b.name, "oxbeam_bench", "pg_watch", vec![]);
    let blocker = spawn(
        ctl,
        &mut me,
        &b.name,
        "oxbeam_bench",
        "pg_watch_monitor",
        vec![],
    );
    let (mut spin, mut monitor) = (Vec::new(), Vec::new());
    // The busy-polling watcher and the one blocked on a pg monitor, interleaved.
    for rep in 0..3 {
        for (watcher, samples, label) in [
            (spinner, &mut spin, "pg_join_propagation_us"),
            (blocker, &mut monitor, "pg_join_propagation_monitor_us"),
        ] {
            spawn(
                ctl,
                &mut me,
                &a.name,
                "oxbeam_bench",
                "pg_join_prop",
                vec![Term::Pid(watcher), Term::Int(500), Term::Pid(me_pid)],
            );
            let us = result(&mut me).as_float().unwrap_or(f64::NAN);
            eprintln!("  {label} rep {rep}: {us:.3}");
            samples.push(us);
        }
    }
    vec![
        Metric {
            name: "pg_join_propagation_us",
            unit: "us",
            samples: spin,
            params: "{\"joins\":500}".into(),
        },
        Metric {
            name: "pg_join_propagation_monitor_us",
            unit: "us",
            samples: monitor,
            params: "{\"joins\":500}".into(),
        },
    ]
}
