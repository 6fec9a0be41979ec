//! The `oxbeam` command: `oxbeam demo` (the README's first command), the node console
//! and the headless node.
#![forbid(unsafe_code)]

use std::process::ExitCode;

/// glibc's malloc serialises threads that free what another thread allocated (every
/// process's memory is freed by whichever worker runs its exit); mimalloc does not.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use oxbeam_cli::node_cmd;

const USAGE: &str = "usage: oxbeam <command>

commands:
  console    an interactive node prompt (iex for oxbeam):
             oxbeam console --sname NAME [--cookie C] [--connect NODE]... [node options]
  node       a headless named node (see `oxbeam node --help`)
  demo       a guided tour of one node: supervised GenServer, crash and restart,
             links and monitors, a table, a timer (exits non-zero if a step fails)
  version    print the version";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // At the console's prompt, warnings (a peer that cannot be reached...) would land in
    // the middle of the transcript; the results already say what went wrong.
    let level = if args.first().map(String::as_str) == Some("console") {
        "error"
    } else {
        "warn"
    };
    node_cmd::init_process(level);
    match args.first().map(String::as_str) {
        Some("demo") => match oxbeam_cli::demo::run() {
            Ok(()) => {
                println!("\ndemo: all steps passed");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Some("console") => match run_console(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        // The product registers nothing beyond the built-ins: test and bench functions
        // live in the test node (`testnode/`), never here.
        Some("node") => match node_cmd::run(&args[1..], |_| {}) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Some("version") => {
            println!("oxbeam {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("help") | Some("--help") | Some("-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => {
            if let Some(cmd) = other {
                eprintln!("unknown command: {cmd}");
            }
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Runs `oxbeam console ...`: a node (with the same options and functions as `oxbeam
/// node`) driven by the interactive prompt; stops at end of input.
fn run_console(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let args = node_cmd::parse(args)?;
    let node = node_cmd::start(&args, |_| {})?;
    let net = node.net().expect("a named node").clone();
    for peer in &args.connect {
        if let Err(e) = net.connect(peer) {
            eprintln!("could not connect to {peer}: {e}");
        }
    }
    oxbeam_cli::console::run(net.clone());
    net.shutdown();
    Ok(())
}
