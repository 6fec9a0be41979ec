//! `oxbeam-testnode node ...`: the test node. Exactly `oxbeam node` (same code, same
//! options, same output), plus the functions the tests and benchmarks spawn and call
//! there: `oxbeam_test:*` ([`fixtures`]) and `oxbeam_bench:*` ([`bench_fns`]).
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

mod bench_fns;
mod fixtures;
#[path = "../src/node_cmd.rs"]
mod node_cmd;

const USAGE: &str = "usage: oxbeam-testnode node [the options of `oxbeam node`]
a test node: `oxbeam node` plus the oxbeam_test and oxbeam_bench functions";

/// The fixtures, registered after the built-ins.
fn register_fixtures(net: &oxbeam::node::Net) {
    fixtures::register(net.node());
    bench_fns::register(net.node());
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    node_cmd::init_process("warn");
    match args.first().map(String::as_str) {
        Some("node") => match node_cmd::run(&args[1..], register_fixtures) {
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
