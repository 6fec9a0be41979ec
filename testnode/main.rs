//! `oxbeam-testnode node ...`: the test node. `oxbeam node`'s options (the same parser,
//! [`oxbeam::node::cmdline`]) and output, plus the functions the tests and benchmarks
//! spawn and call there: `oxbeam_test:*` ([`fixtures`], and the KV table's in
//! [`kv_fns`]) and `oxbeam_bench:*` ([`bench_fns`]). Unlike `oxbeam node` it has no
//! signal handler (the tests stop it by closing its stdin with `--stop-on-eof`, or kill
//! it) and a logger of its own ([`log`]).
//!
//! Those functions are test fixtures (`halt/1` ends the node, `sleep/1` blocks a worker
//! thread), so the product binary `oxbeam` never has them (`tests/node_product.rs`
//! checks it). The tests and benches find this binary by
//! `env!("CARGO_BIN_EXE_oxbeam-testnode")`; cargo builds it with them. The subcommand
//! `node` is kept so that `OXBEAM_BENCH_NODE_EXE` can name either this binary or an
//! older `oxbeam` build that still carried the fixtures (an A/B of two builds).
#![forbid(unsafe_code)]

use std::process::ExitCode;

/// As in `oxbeam` (`--features mimalloc`), so the remote benchmarks measure the same
/// allocator on both sides.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench_apps;
mod bench_fns;
mod fixtures;
mod kv_disk_fns;
mod kv_fns;
mod locks_fns;
mod log;
mod queue_fns;
mod services;

use oxbeam::node::cmdline;

const USAGE: &str = "usage: oxbeam-testnode node [the options of `oxbeam node`]
a test node: `oxbeam node` plus the oxbeam_test and oxbeam_bench functions";

/// Runs the node until `oxbeam_bench:stop/0`, or stdin closes (with `--stop-on-eof`),
/// or it is killed.
fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let args = cmdline::parse(args)?;
    let node = oxbeam::Node::builder()
        .config(args.config.clone())
        .start()?;
    let net = node.net().expect("a named node").clone();
    let (stop, stop_requested) = std::sync::mpsc::channel();
    fixtures::register(net.node());
    kv_disk_fns::register(net.node());
    kv_fns::register(net.node());
    kv_fns::peer_ports_from_env(&net);
    bench_fns::register(net.node(), stop.clone());
    bench_apps::register(net.node());
    queue_fns::register(net.node());
    locks_fns::register(net.node());
    cmdline::announce_and_connect(&net, &args);
    if args.stop_on_eof {
        // Whoever started us holds our stdin: when it goes away (even killed), so do we.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
            ::log::info!("stdin closed: stopping");
            let _ = stop.send(());
        });
    } else {
        drop(stop);
    }
    // Without --stop-on-eof and with no stop() call, this waits until the node is killed.
    let _ = stop_requested.recv();
    net.shutdown();
    println!("node {} stopped", net.name().as_str());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    log::init();
    match args.first().map(String::as_str) {
        Some("node") => match run(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
