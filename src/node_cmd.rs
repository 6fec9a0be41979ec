//! `oxbeam node`: a headless named node (tests and the demo start these as OS processes).
//!
//! It registers the [`dist::builtins`](oxbeam::dist::builtins). It prints one line when up (`node NAME listening on ADDR creation C`), connects to
//! the nodes given with `--connect`, and stops cleanly on SIGTERM or SIGINT (its
//! processes' exit signals go out, peers see nodedown, the port mapper registration is
//! released). It registers a few functions that remote spawn and tests use:
//! under `oxbeam_test`: `echo/0`, `echo_named/1`, `sink/0`, `crash/0`, `sleep/1`,
//! `exit_with/1`, `link_to/1`; and the `oxbeam_bench` functions the benchmarks drive.

use std::time::Duration;

use oxbeam::node::{Net, NetConfig};
use oxbeam::rt::{Ctx, Node};
use oxbeam::term::{Atom, Term};

const USAGE: &str =
    "usage: oxbeam node --sname NAME | --name NAME@HOST [--cookie C] [--connect NODE]...
                   [--port P] [--epmd-port P] [--no-mapper] [--hidden] [--tick-ms N] [--workers N]
                   [--stop-on-eof]   (stop when stdin closes: a parent that dies takes the node along)";

fn parse(args: &[String]) -> Result<(NetConfig, Vec<String>, bool), String> {
    let mut config = NetConfig::named("");
    let mut connect = Vec::new();
    let mut stop_on_eof = false;
    let mut it = args.iter();
    let value = |flag: &str, it: &mut std::slice::Iter<'_, String>| {
        it.next()
            .cloned()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--sname" => config.name = format!("{}@localhost", value(arg, &mut it)?),
            "--name" => config.name = value(arg, &mut it)?,
            "--cookie" => config.cookie = Some(value(arg, &mut it)?),
            "--connect" => connect.push(value(arg, &mut it)?),
            "--port" => {
                config.port = value(arg, &mut it)?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--epmd-port" => {
                config.epmd_port = Some(
                    value(arg, &mut it)?
                        .parse()
                        .map_err(|e| format!("--epmd-port: {e}"))?,
                )
            }
            "--no-mapper" => config.use_mapper = false,
            "--hidden" => config.hidden = true,
            "--stop-on-eof" => stop_on_eof = true,
            "--tick-ms" => {
                let ms: u64 = value(arg, &mut it)?
                    .parse()
                    .map_err(|e| format!("--tick-ms: {e}"))?;
                config.tick_time = Duration::from_millis(ms);
            }
            "--workers" => {
                config.runtime.workers = value(arg, &mut it)?
                    .parse()
                    .map_err(|e| format!("--workers: {e}"))?
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    if config.name.is_empty() {
        return Err(format!("a node needs a name\n{USAGE}"));
    }
    Ok((config, connect, stop_on_eof))
}

/// Functions other nodes may spawn here.
pub fn register_functions(node: &Node) {
    let f = node.functions();
    f.register(
        Atom::new("IO"),
        Atom::new("puts"),
        1,
        |_ctx: &mut Ctx, args: Vec<Term>| {
            match args[0].as_str() {
                Some(s) => println!("{s}"),
                None => println!("{}", args[0]),
            }
            Term::ok()
        },
    );
    let test = Atom::new("oxbeam_test");
    // Echo: {from, x} -> x back to from; :stop ends it.
    fn echo_loop(ctx: &mut Ctx) {
        loop {
            let m = ctx.receive();
            match m.as_tuple() {
                Some([Term::Pid(from), x]) => ctx.send(*from, x.clone()),
                _ if m.is_atom("stop") => return,
                _ => {}
            }
        }
    }
    f.register(test, Atom::new("echo"), 0, |ctx: &mut Ctx, _| {
        echo_loop(ctx);
        Term::ok()
    });
    f.register(
        test,
        Atom::new("echo_named"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| {
            if let Some(name) = args[0].as_atom() {
                let _ = ctx.register(name);
            }
            echo_loop(ctx);
            Term::ok()
        },
    );
    // Sink: counts {:seq, n} messages and checks they arrive in order;
    // {:count, from} -> {:count, n, in_order} to from.
    f.register(test, Atom::new("sink"), 0, |ctx: &mut Ctx, _| {
        let (mut n, mut in_order) = (0i64, true);
        loop {
            let m = ctx.receive();
            if let Some([Term::Int(k), ..]) = m.tagged("seq") {
                in_order &= *k == n + 1;
                n += 1;
            } else if let Some([Term::Pid(from)]) = m.tagged("count") {
                ctx.send(*from, (Term::atom("count"), n, in_order));
            } else if m.is_atom("stop") {
                return Term::ok();
            }
        }
    });
    // pg_join(group): joins the default pg scope's `group`, then waits for :stop.
    f.register(
        test,
        Atom::new("pg_join"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| {
            let me = ctx.pid();
            if let Err(e) = oxbeam::dist::pg::join(
                ctx,
                oxbeam::dist::pg::default_scope(),
                args[0].clone(),
                &[me],
            ) {
                return e;
            }
            while !ctx.receive().is_atom("stop") {}
            Term::ok()
        },
    );
    // global_register(name, report): registers itself globally as `name` (after a
    // global sync), reports {:registered, node, :yes | :no}, then waits for :stop.
    f.register(
        test,
        Atom::new("global_register"),
        2,
        |ctx: &mut Ctx, args: Vec<Term>| {
            use oxbeam::dist::global;
            let (Some(name), Some(report)) = (args[0].as_atom(), args[1].as_pid()) else {
                return Term::atom("badarg");
            };
            global::sync(ctx, Duration::from_secs(10));
            let me = ctx.pid();
            let yes = global::register_name(ctx, name, me);
            let node = Term::Atom(ctx.node().name());
            ctx.send(
                report,
                (
                    Term::atom("registered"),
                    node,
                    Term::atom(if yes { "yes" } else { "no" }),
                ),
            );
            while !ctx.receive().is_atom("stop") {}
            Term::ok()
        },
    );
    // locked_increments(counter, k, report): k read-modify-write increments of a counter
    // process ({:get, from} -> value; {:set, v, from} -> :ok), each under the global
    // lock :counter_lock; then {:done, node} to report.
    f.register(
        test,
        Atom::new("locked_increments"),
        3,
        |ctx: &mut Ctx, args: Vec<Term>| {
            use oxbeam::dist::global;
            let (Some(counter), Some(k), Some(report)) =
                (args[0].as_pid(), args[1].as_int(), args[2].as_pid())
            else {
                return Term::atom("badarg");
            };
            global::sync(ctx, Duration::from_secs(10));
            for _ in 0..k {
                global::trans(ctx, Term::atom("counter_lock"), None, |ctx| {
                    let me = ctx.pid();
                    ctx.send(counter, (Term::atom("get"), me));
                    let v = ctx
                        .receive_match(|m| m.as_int().is_some(), None)
                        .and_then(|m| m.as_int())
                        .unwrap_or(0);
                    ctx.send(counter, (Term::atom("set"), v + 1, me));
                    ctx.receive_match(|m| m.is_atom("ok"), None);
                });
            }
            ctx.send(report, (Term::atom("done"), Term::Atom(ctx.node().name())));
            Term::ok()
        },
    );
    // hold_lock(id, report): takes global lock `id`, reports {:locked, id}, holds it.
    f.register(
        test,
        Atom::new("hold_lock"),
        2,
        |ctx: &mut Ctx, args: Vec<Term>| {
            use oxbeam::dist::global;
            let Some(report) = args[1].as_pid() else {
                return Term::atom("badarg");
            };
            global::sync(ctx, Duration::from_secs(10));
            if global::set_lock(ctx, args[0].clone(), None) {
                ctx.send(report, (Term::atom("locked"), args[0].clone()));
            }
            while !ctx.receive().is_atom("stop") {}
            Term::ok()
        },
    );
    f.register(test, Atom::new("crash"), 0, |_: &mut Ctx, _| {
        panic!("crashed on purpose")
    });
    f.register(
        test,
        Atom::new("sleep"),
        1,
        |_: &mut Ctx, args: Vec<Term>| {
            std::thread::sleep(Duration::from_millis(
                args[0].as_int().unwrap_or(0).max(0) as u64
            ));
            Term::atom("slept")
        },
    );
    f.register(
        test,
        Atom::new("exit_with"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| ctx.exit(args[0].clone()),
    );
    // Links to the given pid, then waits for messages (:stop ends it normally).
    f.register(
        test,
        Atom::new("link_to"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| {
            if let Some(p) = args[0].as_pid() {
                let _ = ctx.link(p);
            }
            loop {
                if ctx.receive().is_atom("stop") {
                    return Term::ok();
                }
            }
        },
    );
}

/// Functions the benchmark suite drives (`oxbeam_bench`), timed on this node.
pub fn register_bench_functions(node: &Node) {
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
                return Term::atom("badarg");
            };
            let ping = (Term::Pid(ctx.pid()), Term::atom("ping"));
            let ping: Term = ping.into();
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
            ctx.send(report, (Term::atom("result"), us));
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
                return Term::atom("badarg");
            };
            let msg: Term = (Term::atom("msg"), args[2].clone()).into();
            let start = std::time::Instant::now();
            for _ in 0..n {
                ctx.send(counter, msg.clone());
            }
            ctx.send(counter, (Term::atom("done"), ctx.pid()));
            let ack = ctx.receive();
            let secs = start.elapsed().as_secs_f64();
            ctx.send(report, (Term::atom("result"), secs, ack));
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
                return Term::atom("badarg");
            };
            let Some(net) = Net::of(ctx.node()) else {
                return Term::atom("not_distributed");
            };
            net.monitor_nodes(ctx.pid(), true, false);
            while (net.nodes().len() as i64) < count {
                // Each nodeup wakes us; give up after a minute without one.
                if ctx.receive_timeout(Duration::from_secs(60)).is_none() {
                    break;
                }
            }
            net.monitor_nodes(ctx.pid(), false, false);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            ctx.send(report, (Term::atom("meshed"), now.as_micros() as i64));
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
                return Term::atom("badarg");
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
            ctx.send(report, (Term::atom("result"), us));
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
                return Term::atom("badarg");
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
                global::register_name(ctx, *name, *pid);
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
            ctx.send(report, (Term::atom("result"), us));
            ctx.receive_match(|m| m.is_atom("unregister"), None);
            let start = std::time::Instant::now();
            for name in &names {
                global::unregister_name(ctx, *name);
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
            ctx.send(report, (Term::atom("result"), us));
            for p in pids {
                ctx.send(p, Term::atom("stop"));
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
                return Term::atom("badarg");
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
            ctx.send(report, (Term::atom("result"), us, found));
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
                return Term::atom("badarg");
            };
            let start = std::time::Instant::now();
            let mut total = 0;
            for _ in 0..n {
                total += pg::get_members(ctx.node(), pg::default_scope(), &args[0]).len();
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
            ctx.send(report, (Term::atom("result"), us, total as i64 / n.max(1)));
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
                return Term::atom("badarg");
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
                ctx.send(p, Term::atom("stop"));
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
            ctx.send(*from, Term::atom("watching"));
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
                return Term::atom("no_scope");
            };
            ctx.send(*from, Term::atom("watching"));
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
    // stop(): stops this node cleanly, as SIGTERM does (`init:stop/0`).
    f.register(
        bench,
        Atom::new("stop"),
        0,
        |_: &mut Ctx, _| match signal_hook::low_level::raise(signal_hook::consts::SIGTERM) {
            Ok(()) => Term::ok(),
            Err(e) => Term::str(&e.to_string()),
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
                return Term::atom("badarg");
            };
            let me = ctx.pid();
            let mut deltas = Vec::new();
            for i in 0..n {
                let group =
                    Term::tuple(vec![Term::atom("prop"), Term::Int(i), Term::Int(unix_us())]);
                ctx.send(watcher, (Term::atom("watch"), group.clone(), me));
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
            ctx.send(report, (Term::atom("result"), median));
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
                return Term::atom("badarg");
            };
            Term::from(net.connect(node.as_str()))
        },
    );
}

/// Runs `oxbeam console ...`: a node (with the same options and functions as `oxbeam
/// node`) driven by the interactive prompt; stops at end of input.
pub fn run_console(args: &[String]) -> Result<(), String> {
    let (config, connect, _) = parse(args)?;
    let net = Net::start(config)?;
    oxbeam::dist::start(&net)?;
    register_functions(net.node());
    for peer in &connect {
        if !net.connect(peer) {
            eprintln!("could not connect to {peer}");
        }
    }
    oxbeam::console::run(net.clone());
    net.shutdown();
    Ok(())
}

/// Runs `oxbeam node ...`.
pub fn run(args: &[String]) -> Result<(), String> {
    let (config, connect, stop_on_eof) = parse(args)?;
    let net = Net::start(config)?;
    oxbeam::dist::start(&net)?;
    register_functions(net.node());
    register_bench_functions(net.node());
    println!(
        "node {} listening on {} creation {}",
        net.name().as_str(),
        net.address(),
        net.creation()
    );
    for peer in &connect {
        if net.connect(peer) {
            println!("connected to {peer}");
        } else {
            println!("could not connect to {peer}");
        }
    }
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| format!("cannot handle signals: {e}"))?;
    if stop_on_eof {
        // Whoever started us holds our stdin: when it goes away (even killed), so do we.
        let handle = signals.handle();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
            log::info!("stdin closed: stopping");
            handle.close();
        });
    }
    let got = signals.forever().next();
    log::info!("stopping (signal {got:?})");
    net.shutdown();
    println!("node {} stopped", net.name().as_str());
    Ok(())
}

fn unix_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
