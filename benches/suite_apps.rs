//! The services on the shapes of `../shared/bench/beam-apps/` (three nodes as separate
//! OS processes, the same counts), printing the same names so the two compare line by
//! line: `kv_put_latency_us`, `kv_get_local_ns`, `lock_acquire_release_us`,
//! `lock_contended_acquires_per_s`, `queue_tasks_per_s`; and beyond the BEAM harness,
//! `kv_put_p99_us`, `kv_failover_ms` (the writer's node SIGKILLed until a put is
//! accepted again), `lock_handoff_us` (+ p99: a release to the next waiter's grant)
//! and `queue_redispatch_ms` (a task's node SIGKILLed until it starts elsewhere). The
//! work is timed on the nodes (`testnode/bench_apps.rs`).
//! Unlike the chapter's code, every write here waits for a majority of the replicas.

use std::time::{Duration, Instant};

use oxbeam::dist::rpc;
use oxbeam::node::Net;
use oxbeam::rt::Attached;
use oxbeam::term::{Atom, Term};

use super::Metric;
use super::remote::{Ctl, Peer, peer};

const M: &str = "oxbeam_bench_apps";
const WAIT: Duration = Duration::from_secs(120);

fn run_on(net: &Net, me: &mut Attached, node: &str, fun: &str, mut args: Vec<Term>) -> Term {
    args.push(Term::Pid(me.pid()));
    let mfa = (Atom::new(M), Atom::new(fun), args);
    net.spawn(
        me,
        Atom::new(node),
        mfa,
        oxbeam::node::SpawnRequest::default(),
    )
    .unwrap_or_else(|e| panic!("spawn {fun} on {node}: {e}"));
    let m = me
        .receive_match(|m| m.tagged("result").is_some(), Some(WAIT))
        .unwrap_or_else(|| panic!("{fun} on {node}: no result"));
    m.tagged("result")
        .map(|r| r[0].clone())
        .unwrap_or(Term::nil())
}

/// Adds `m` unless it was not run (no samples).
fn push(out: &mut Vec<Metric>, m: Metric) {
    if !m.samples.is_empty() {
        out.push(m);
    }
}

fn metric(name: &'static str, unit: &'static str, samples: Vec<f64>, params: &str) -> Metric {
    eprintln!("  {name} {samples:?}");
    Metric {
        name,
        unit,
        samples,
        params: params.into(),
    }
}

/// Three test nodes `{prefix}1..3`, each with its replicas of the services started.
fn trio(ctl: &Ctl, prefix: &str) -> (Vec<Peer>, Vec<String>) {
    let peers: Vec<Peer> = (1..=3)
        .map(|i| peer(&format!("{prefix}{i}"), ctl.epmd, None))
        .collect();
    let names: Vec<String> = peers.iter().map(|p| p.name.clone()).collect();
    let nodes = Term::list(names.iter().map(|n| Term::atom(n)).collect::<Vec<_>>());
    for n in &names {
        assert!(ctl.net.connect(n).is_ok(), "connect to {n}");
    }
    // Each node starts its replicas (they find each other: the mesh forms from them).
    let starts: Vec<_> = names
        .iter()
        .map(|n| {
            let node = ctl.net.node().clone();
            let (n, nodes) = (n.clone(), nodes.clone());
            std::thread::spawn(move || {
                let mut me = node.attach();
                rpc::call(&mut me, Atom::new(&n), M, "start", vec![nodes], Some(WAIT))
            })
        })
        .collect();
    for s in starts {
        let r = s.join().expect("start thread");
        assert!(matches!(&r, Ok(t) if t.is_atom("ok")), "start: {r:?}");
    }
    (peers, names)
}

/// `queue_redispatch_ms`: a task running on a node that is SIGKILLed, until it starts
/// on another (three fresh nodes: the measure kills one).
fn redispatch(ctl: &Ctl) -> Vec<f64> {
    let (mut peers, names) = trio(ctl, "apr");
    let mut me = ctl.net.node().attach();
    let me_pid = me.pid();
    let enqueued = rpc::call(
        &mut me,
        Atom::new(&names[0]),
        M,
        "enqueue_hang",
        vec![Term::Pid(me_pid)],
        Some(WAIT),
    );
    assert!(
        matches!(&enqueued, Ok(Term::Int(_))),
        "enqueue: {enqueued:?}"
    );
    let started = |me: &mut Attached| {
        me.receive_match(|m| m.tagged("started").is_some(), Some(WAIT))
            .and_then(|m| m.tagged("started").and_then(|s| s[0].as_atom()))
    };
    let Some(first) = started(&mut me) else {
        return vec![f64::NAN];
    };
    let Some(i) = names.iter().position(|n| n.as_str() == first.as_str()) else {
        return vec![f64::NAN];
    };
    let t0 = Instant::now();
    peers[i].kill();
    let again = started(&mut me);
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    drop(peers);
    vec![if again.is_some_and(|n| n != first) {
        ms
    } else {
        f64::NAN
    }]
}

pub fn apps(ctl: &Ctl) -> Vec<Metric> {
    let (mut peers, names) = trio(ctl, "app");
    let mut me = ctl.net.node().attach();
    let (n1, n2, n3) = (&names[0], &names[1], &names[2]);
    let mut out = Vec::new();
    // `OXBEAM_BENCH_APPS=kv,locks,queue,redispatch,failover` runs a part (all by default).
    let parts = std::env::var("OXBEAM_BENCH_APPS").unwrap_or_default();
    let part = |p: &str| parts.is_empty() || parts.split(',').any(|x| x.trim() == p);

    let (mut p50, mut p99) = (Vec::new(), Vec::new());
    for _ in (0..3).filter(|_| part("kv")) {
        let r = run_on(&ctl.net, &mut me, n2, "kv_puts", vec![Term::Int(2000)]);
        let v: Vec<f64> = r
            .as_list()
            .map(|l| l.iter().filter_map(Term::as_float).collect())
            .unwrap_or_default();
        p50.push(v.first().copied().unwrap_or(f64::NAN));
        p99.push(v.get(1).copied().unwrap_or(f64::NAN));
    }
    push(
        &mut out,
        metric(
            "kv_put_latency_us",
            "us",
            p50,
            "{\"puts\":2000,\"replicas\":3,\"client\":\"n2\"}",
        ),
    );
    push(
        &mut out,
        metric(
            "kv_put_p99_us",
            "us",
            p99,
            "{\"puts\":2000,\"replicas\":3,\"client\":\"n2\"}",
        ),
    );

    let reads: Vec<f64> = (0..3)
        .filter(|_| part("kv"))
        .map(|_| {
            run_on(
                &ctl.net,
                &mut me,
                n3,
                "kv_get_local",
                vec![Term::Int(1_000_000)],
            )
            .as_float()
            .unwrap_or(f64::NAN)
        })
        .collect();
    push(
        &mut out,
        metric(
            "kv_get_local_ns",
            "ns",
            reads,
            "{\"reads\":1000000,\"keys\":1000}",
        ),
    );

    let locks: Vec<f64> = (0..3)
        .filter(|_| part("locks"))
        .map(|_| {
            run_on(
                &ctl.net,
                &mut me,
                n2,
                "lock_uncontended",
                vec![Term::Int(500)],
            )
            .as_float()
            .unwrap_or(f64::NAN)
        })
        .collect();
    push(
        &mut out,
        metric("lock_acquire_release_us", "us", locks, "{\"acquires\":500}"),
    );

    let mut contended = Vec::new();
    for _ in (0..3).filter(|_| part("locks")) {
        let mut counts = Vec::new();
        let runs: Vec<_> = names
            .iter()
            .map(|n| {
                let node = ctl.net.node().clone();
                let net = ctl.net.clone();
                let n = n.clone();
                std::thread::spawn(move || {
                    let mut me = node.attach();
                    let c = run_on(&net, &mut me, &n, "lock_contended", vec![Term::Int(5000)]);
                    c.as_int().unwrap_or(0)
                })
            })
            .collect();
        for r in runs {
            counts.push(r.join().unwrap_or(0));
        }
        contended.push(counts.iter().sum::<i64>() as f64 / 5.0);
    }
    push(
        &mut out,
        metric(
            "lock_contended_acquires_per_s",
            "acquires/s",
            contended,
            "{\"seconds\":5,\"processes\":3}",
        ),
    );

    let n_tasks: i64 = std::env::var("OXBEAM_BENCH_QUEUE_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let tasks: Vec<f64> = (0..3)
        .filter(|_| part("queue"))
        .map(|_| {
            run_on(
                &ctl.net,
                &mut me,
                n1,
                "queue_tasks",
                vec![Term::Int(n_tasks), Term::Int(16)],
            )
            .as_float()
            .unwrap_or(f64::NAN)
        })
        .collect();
    push(
        &mut out,
        metric(
            "queue_tasks_per_s",
            "tasks/s",
            tasks,
            &format!("{{\"tasks\":{n_tasks},\"enqueuers\":16,\"per_node\":5}}"),
        ),
    );

    let (mut h50, mut h99) = (Vec::new(), Vec::new());
    for _ in (0..3).filter(|_| part("locks")) {
        let r = run_on(&ctl.net, &mut me, n2, "lock_handoff", vec![Term::Int(200)]);
        let v: Vec<f64> = r
            .as_list()
            .map(|l| l.iter().filter_map(Term::as_float).collect())
            .unwrap_or_default();
        h50.push(v.first().copied().unwrap_or(f64::NAN));
        h99.push(v.get(1).copied().unwrap_or(f64::NAN));
    }
    push(
        &mut out,
        metric(
            "lock_handoff_us",
            "us",
            h50,
            "{\"handoffs\":200,\"quantile\":0.5}",
        ),
    );
    push(
        &mut out,
        metric(
            "lock_handoff_p99_us",
            "us",
            h99,
            "{\"handoffs\":200,\"quantile\":0.99}",
        ),
    );
    if part("redispatch") {
        let ms = redispatch(ctl);
        push(
            &mut out,
            metric(
                "queue_redispatch_ms",
                "ms",
                ms,
                "{\"kill\":\"SIGKILL of the node running the task\"}",
            ),
        );
    }

    // Failover last: the writer's node is SIGKILLed; a survivor's puts until one is taken.
    let leader = rpc::call(&mut me, Atom::new(n1), M, "kv_leader", vec![], Some(WAIT))
        .ok()
        .filter(|_| part("failover"));
    let leader = leader
        .and_then(|t| t.as_atom())
        .map(|a| a.as_str().to_owned());
    if let Some(i) = leader.and_then(|l| names.iter().position(|n| *n == l)) {
        let survivor = names[(i + 1) % 3].clone();
        let start = Instant::now();
        peers[i].kill();
        let mut took = f64::NAN;
        while start.elapsed() < Duration::from_secs(30) {
            let r = rpc::call(
                &mut me,
                Atom::new(&survivor),
                M,
                "kv_put",
                vec![Term::atom("after"), Term::Int(1)],
                Some(Duration::from_secs(5)),
            );
            if matches!(&r, Ok(t) if t.is_atom("ok")) {
                took = start.elapsed().as_secs_f64() * 1e3;
                break;
            }
        }
        push(
            &mut out,
            metric(
                "kv_failover_ms",
                "ms",
                vec![took],
                "{\"kill\":\"SIGKILL of the writer's node\"}",
            ),
        );
    }
    drop(peers);
    out
}
