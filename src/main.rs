//! The `oxbeam` command: `oxbeam demo` (the README's first command) and, as later
//! layers land, the node console and cluster tools.
#![forbid(unsafe_code)]

use std::process::ExitCode;

/// glibc's malloc serialises threads that free what another thread allocated (every
/// process's memory is freed by whichever worker runs its exit); mimalloc does not.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod node_cmd;

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
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    // A process's panic ends that process only (its exit reason carries the message);
    // report it as one log line, like a BEAM crash report, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current().name().unwrap_or("?").to_owned();
        log::warn!(
            "panic in thread {thread}{at}: {}",
            info.payload_as_str().unwrap_or("(no message)")
        );
    }));
    match args.first().map(String::as_str) {
        Some("demo") => match oxbeam::demo::run() {
            Ok(()) => {
                println!("\ndemo: all steps passed");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Some("console") => match node_cmd::run_console(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Some("node") => match node_cmd::run(&args[1..]) {
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
