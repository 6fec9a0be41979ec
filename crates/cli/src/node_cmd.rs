//! `oxbeam node`: a headless named node (the test node, `testnode/main.rs` at the
//! workspace root, runs the same options with its fixtures added and no terminal crates).
//!
//! The node registers the [`dist::builtins`](crate::dist::builtins) and whatever the
//! hook adds (the product adds nothing). It prints one line when up (`node NAME
//! listening on ADDR creation C`; with `--epmd-port 0` a second one, `port mapper on
//! 127.0.0.1:P`, for the private port mapper it hosts), connects to the nodes given with
//! `--connect`, and stops cleanly on SIGTERM or SIGINT (its processes' exit signals go
//! out, peers see nodedown, the port mapper registration is released).

use std::error::Error;

use crate::node::Net;
pub use crate::node::cmdline::{NodeArgs, USAGE, UsageError, parse};

/// Logging through `RUST_LOG` (default `level`), and a process's panic reported as one
/// log line, like a BEAM crash report, not a backtrace (the panic ends that process
/// only; its exit reason carries the message).
pub fn init_process(level: &str) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    crate::node::cmdline::log_panics();
}

/// Starts the node `args` describe with its cluster services, then `register` adds
/// functions of its own (before any peer can reach it through `--connect`).
pub fn start(args: &NodeArgs, register: fn(&Net)) -> Result<oxbeam::Node, oxbeam::NodeError> {
    let node = oxbeam::Node::builder()
        .config(args.config.clone())
        .start()?;
    if let Some(net) = node.net() {
        // Closures typed at a console anywhere in the cluster run here too.
        crate::console::closure::register(net.node().functions());
        // The exercises' services can be started here from any console.
        crate::console::exercises::register(net.node().functions());
        register(net);
    }
    Ok(node)
}

/// Runs `oxbeam node ...` until SIGTERM, SIGINT or (with `--stop-on-eof`) the end of
/// stdin; `register` adds the functions beyond the built-ins (see the module docs).
pub fn run(args: &[String], register: fn(&Net)) -> Result<(), Box<dyn Error>> {
    let args = parse(args)?;
    let node = start(&args, register)?;
    let net = node.net().expect("a named node").clone();
    crate::node::cmdline::announce_and_connect(&net, &args);
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| format!("cannot handle signals: {e}"))?;
    if args.stop_on_eof {
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
