//! `oxbeam node`: a headless named node (tests and the demo start these as OS processes).
//!
//! It prints one line when up (`node NAME listening on ADDR creation C`), connects to
//! the nodes given with `--connect`, and stops cleanly on SIGTERM or SIGINT (its
//! processes' exit signals go out, peers see nodedown, the port mapper registration is
//! released). It registers a few functions that remote spawn and tests use:
//! `IO:puts/1`, and under `oxbeam_test`: `echo/0`, `echo_named/1`, `sink/0`,
//! `exit_with/1`, `link_to/1`.

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
            if let Some([Term::Int(k)]) = m.tagged("seq") {
                in_order &= *k == n + 1;
                n += 1;
            } else if let Some([Term::Pid(from)]) = m.tagged("count") {
                ctx.send(*from, (Term::atom("count"), n, in_order));
            } else if m.is_atom("stop") {
                return Term::ok();
            }
        }
    });
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

/// Runs `oxbeam node ...`.
pub fn run(args: &[String]) -> Result<(), String> {
    let (config, connect, stop_on_eof) = parse(args)?;
    let net = Net::start(config)?;
    register_functions(net.node());
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
