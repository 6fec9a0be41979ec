//! `oxbeam_bench`: the functions the benchmark suite (`benches/suite_remote.rs`) and a
//! few fault tests drive on a test node, each timed where it runs. `halt/1` ends the OS
//! process at once and `stop/0` stops the node as SIGTERM does: never in a product node.

use std::time::Duration;

use oxbeam::node::Net;
use oxbeam::rt::{Ctx, Node};
use oxbeam::term::{Atom, Term, term};

/// Registers the `oxbeam_bench` functions on `node`; `stop()` asks the node's main
/// thread to stop it through `stop`.
pub fn register(node: &Node, stop: std::sync::mpsc::Sender<()>) {
    let f = node.functions();
    let bench = Atom::new("oxbeam_bench");
    // ping(echo, warmup, n, report): round trips through an `oxbeam_test:echo`;
    // reports {:result, microseconds per round trip}.
    f.register(
        bench,
        Atom::new("ping"),
        4,
        |ctx: &mut Ctx, args: Vec<Term>| {
            let (Some(echo), Some(warm), Some(n), Some(report)) = (
                args[0].as_pid(),
                args[1].as_int(),
                args[2].as_int(),
                args[3].as_pid(),
            ) else {
                return term!(:badarg);
            };
            let ping = term!({(ctx.pid()), :ping});
            for _ in 0..warm {
                ctx.send(echo, ping.clone());
                ctx.receive();
            }
            let start = std::time::Instant::now();
            for _ in 0..n {
                ctx.send(echo, ping.clone());
                ctx.receive();
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
            ctx.send(report, term!({:result, us}));
            Term::ok()
        },
    );
    // counter(): counts messages until {:done, from}, then {:ack, count} to from.
    f.register(bench, Atom::new("counter"), 0, |ctx: &mut Ctx, _| {
        let mut n = 0i64;
        loop {
            let m = ctx.receive();
            if let Some([Term::Pid(from)]) = m.tagged("done") {
                ctx.send(*from, (Term::atom("ack"), n));
                n = 0;
            } else if m.is_atom("stop") {
                return Term::ok();
            } else {
                n += 1;
            }
        }
    });
    // blast(counter, n, payload, report): sends {:msg, payload} n times, then waits
    // for the counter's ack; reports {:result, seconds}.
    f.register(
        bench,
        Atom::new("blast"),
        4,
        |ctx: &mut Ctx, args: Vec<Term>| {
            let (Some(counter), Some(n), Some(report)) =
                (args[0].as_pid(), args[1].as_int(), args[3].as_pid())
            else {
                return term!(:badarg);
            };
            let msg: Term = term!({:msg, (args[2].clone())});
            let start = std::time::Instant::now();
            for _ in 0..n {
                ctx.send(counter, msg.clone());
            }
            ctx.send(counter, (Term::atom("done"), ctx.pid()));
            let ack = ctx.receive();
            let secs = start.elapsed().as_secs_f64();
            ctx.send(report, term!({:result, secs, ack}));
            Term::ok()
        },
    );
    // await_nodes(count, report): when this node sees `count` visible nodes, sends
    // {:meshed, unix time in microseconds} to report.
    f.register(
        bench,
        Atom::new("await_nodes"),
        2,
        |ctx: &mut Ctx, args: Vec<Term>| {
            let (Some(count), Some(report)) = (args[0].as_int(), args[1].as_pid()) else {
                return term!(:badarg);
            };
            let Some(net) = Net::of(ctx.node()) else {
                return term!(:not_distributed);
            };
            net.monitor_nodes(ctx.pid(), oxbeam::node::NodeMonitor::On);
            while (net.nodes().len() as i64) < count {
                // Each nodeup wakes us; give up after a minute without one.
                if ctx.receive_timeout(Duration::from_secs(60)).is_none() {
                    break;
                }
            }
            net.monitor_nodes(ctx.pid(), oxbeam::node::NodeMonitor::Off);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            ctx.send(report, term!({:meshed, (now.as_micros() as i64)}));
            Term::ok()
        },
    );
    // rpc_calls(node, n, report): n sequential rpc calls of erlang:node/0 on `node`
    // (100 untimed first); reports {:result, microseconds per call}.
    f.register(
        bench,
        Atom::new("rpc_calls"),
        3,
        |ctx: &mut Ctx, args: Vec<Term>| {
            use oxbeam::dist::rpc;
            let (Some(node), Some(n), Some(report)) =
                (args[0].as_atom(), args[1].as_int(), args[2].as_pid())
            else {
                return term!(:badarg);
            };
            let (m, f) = (Atom::new("erlang"), Atom::new("node"));
            for _ in 0..100 {
                let _ = rpc::call(ctx, node, m, f, vec![], Some(Duration::from_secs(10)));
            }
            let start = std::time::Instant::now();
            for _ in 0..n {
                let _ = rpc::call(ctx, node, m, f, vec![], Some(Duration::from_secs(10)));
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
            ctx.send(report, term!({:result, us}));
            Term::ok()
        },
    );
    // global_names(n, report): registers n idle processes of this node as gname_I,
    // reports {:result, us per register}; then on :unregister unregisters them all and
    // reports {:result, us per unregister}.
    f.register(
        bench,
        Atom::new("global_names"),
        2,
        |ctx: &mut Ctx, args: Vec<Term>| {
            use oxbeam::dist::global;
            use oxbeam::rt::Flow;
            let (Some(n), Some(report)) = (args[0].as_int(), args[1].as_pid()) else {
                return term!(:badarg);
            };
            let idle = |_: &mut Ctx, m: Term| {
                if m.is_atom("stop") {
                    Flow::stop_normal()
                } else {
                    Flow::Continue
                }
            };
            let pids: Vec<_> = (0..n).map(|_| ctx.node().spawn(idle)).collect();
            let names: Vec<Atom> = (0..n).map(|i| Atom::new(&format!("gname_{i}"))).collect();
            let start = std::time::Instant::now();
            for (name, pid) in names.iter().zip(&pids) {
                let _ = global::register_name(ctx, *name, *pid);
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
            ctx.send(report, term!({:result, us}));
            ctx.receive_match(|m| m.is_atom("unregister"), None);
            let start = std::time::Instant::now();
            for name in &names {
                global::unregister_name(ctx, *name);
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
            ctx.send(report, term!({:result, us}));
            for p in pids {
                ctx.send(p, term!(:stop));
            }
            Term::ok()
        },
    );
    // whereis_loop(n, passes, report): passes x n global whereis lookups of gname_I;
    // reports {:result, us per lookup}.
    f.register(
        bench,
        Atom::new("whereis_loop"),
        3,
        |ctx: &mut Ctx, args: Vec<Term>| {
            use oxbeam::dist::global;
            let (Some(n), Some(passes), Some(report)) =
                (args[0].as_int(), args[1].as_int(), args[2].as_pid())
            else {
                return term!(:badarg);
            };
            let names: Vec<Atom> = (0..n).map(|i| Atom::new(&format!("gname_{i}"))).collect();
            let start = std::time::Instant::now();
            let mut found = 0;
            for _ in 0..passes {
                for name in &names {
                    found += usize::from(global::whereis_name(ctx.node(), *name).is_some());
                }
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / (n * passes) as f64;
            ctx.send(report, term!({:result, us, found}));
            Term::ok()
        },
    );
    // pg_members(group, n, report): get_members n times; reports {:result, us per call}.
    f.register(
        bench,
        Atom::new("pg_members"),
        3,
        |ctx: &mut Ctx, args: Vec<Term>| {
            use oxbeam::dist::pg;
            let (Some(n), Some(report)) = (args[1].as_int(), args[2].as_pid()) else {
                return term!(:badarg);
            };
            let start = std::time::Instant::now();
            let mut total = 0;
            for _ in 0..n {
                total += pg::get_members(ctx.node(), pg::default_scope(), &args[0]).len();
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
            ctx.send(report, term!({:result, us, (total as i64 / n.max(1))}));
            Term::ok()
        },
    );
    // pg_join_many(group, n): n idle processes of this node join `group`; waits for :stop.
    f.register(
        bench,
        Atom::new("pg_join_many"),
        2,
        |ctx: &mut Ctx, args: Vec<Term>| {
            use oxbeam::dist::pg;
            use oxbeam::rt::Flow;
            let Some(n) = args[1].as_int() else {
                return term!(:badarg);
            };
            let idle = |_: &mut Ctx, m: Term| {
                if m.is_atom("stop") {
                    Flow::stop_normal()
                } else {
                    Flow::Continue
                }
            };
            let pids: Vec<_> = (0..n).map(|_| ctx.node().spawn(idle)).collect();
            let _ = pg::join(ctx, pg::default_scope(), args[0].clone(), &pids);
            while !ctx.receive().is_atom("stop") {}
            for p in pids {
                ctx.send(p, term!(:stop));
            }
            Term::ok()
        },
    );
    // pg_watch(): on {:watch, group, from}: acks {:watching}, busy-polls get_members
    // (yielding between polls) until the group has a member, sends {:seen, unix us}.
    f.register(bench, Atom::new("pg_watch"), 0, |ctx: &mut Ctx, _| {
        use oxbeam::dist::pg;
        loop {
            let m = ctx.receive();
            let Some([group, Term::Pid(from)]) = m.tagged("watch") else {
                return Term::ok();
            };
            ctx.send(*from, term!(:watching));
            while pg::get_members(ctx.node(), pg::default_scope(), group).is_empty() {
                ctx.yield_now();
            }
            ctx.send(*from, (Term::atom("seen"), unix_us()));
        }
    });
    // pg_watch_monitor(): as pg_watch, but blocks on a pg monitor of the group until
    // its join notification comes.
    f.register(bench, Atom::new("pg_watch_monitor"), 0, |ctx: &mut Ctx, _| {
        use oxbeam::dist::pg;
        loop {
            let m = ctx.receive();
            // A notification that crossed our demonitor is dropped.
            let Some([group, Term::Pid(from)]) = m.tagged("watch") else {
                if m.is_atom("stop") {
                    return Term::ok();
                }
                continue;
            };
            let Ok((r, _)) = pg::monitor(ctx, pg::default_scope(), group.clone()) else {
                return term!(:no_scope);
            };
            ctx.send(*from, term!(:watching));
            ctx.receive_match(
                |m| matches!(m.as_tuple(), Some([Term::Ref(x), k, ..]) if *x == r && k.is_atom("join")),
                None,
            );
            ctx.send(*from, (Term::atom("seen"), unix_us()));
            let _ = pg::demonitor(ctx, pg::default_scope(), r);
        }
    });
    // halt(code): ends this OS process at once (`erlang:halt/1`).
    f.register(
        bench,
        Atom::new("halt"),
        1,
        |_: &mut Ctx, args: Vec<Term>| {
            let code = args[0].as_int().unwrap_or(0);
            std::process::exit(i32::try_from(code).unwrap_or(1))
        },
    );
    // stop(): stops this node cleanly, as SIGTERM stops `oxbeam node` (`init:stop/0`).
    f.register(
        bench,
        Atom::new("stop"),
        0,
        move |_: &mut Ctx, _| match stop.send(()) {
            Ok(()) => Term::ok(),
            Err(_) => term!(:already_stopping),
        },
    );
    // pg_join_prop(watcher, n, report): n joins to fresh groups, each timed from just
    // before the join to the watcher seeing it; reports {:result, median us}.
    f.register(
        bench,
        Atom::new("pg_join_prop"),
        3,
        |ctx: &mut Ctx, args: Vec<Term>| {
            use oxbeam::dist::pg;
            let (Some(watcher), Some(n), Some(report)) =
                (args[0].as_pid(), args[1].as_int(), args[2].as_pid())
            else {
                return term!(:badarg);
            };
            let me = ctx.pid();
            let mut deltas = Vec::new();
            for i in 0..n {
                let group = term!({:prop, i, (unix_us())});
                ctx.send(watcher, term!({:watch, (group.clone()), me}));
                ctx.receive_match(|m| m.is_atom("watching"), Some(Duration::from_secs(10)));
                let t0 = unix_us();
                let _ = pg::join(ctx, pg::default_scope(), group.clone(), &[me]);
                let seen = ctx.receive_match(
                    |m| m.tagged("seen").is_some(),
                    Some(Duration::from_secs(10)),
                );
                if let Some(t1) = seen.and_then(|m| m.tagged("seen").and_then(|r| r[0].as_int())) {
                    deltas.push((t1 - t0) as f64);
                }
                let _ = pg::leave(ctx, pg::default_scope(), group, &[me]);
            }
            deltas.sort_by(|a, b| a.total_cmp(b));
            let median = deltas.get(deltas.len() / 2).copied().unwrap_or(f64::NAN);
            ctx.send(report, term!({:result, median}));
            Term::ok()
        },
    );
    // connect(node): Node.connect from here.
    f.register(
        bench,
        Atom::new("connect"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| {
            let (Some(net), Some(node)) = (Net::of(ctx.node()), args[0].as_atom()) else {
                return term!(:badarg);
            };
            Term::from(net.connect(node.as_str()).is_ok())
        },
    );
}

fn unix_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
