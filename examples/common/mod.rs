//! Shared by the drill examples (not an example itself: cargo only builds
//! `examples/*.rs` and `examples/*/main.rs`).
//!
//! - [`Transcript`]: prints the drill as an iex session (`iex(node1@localhost)> ...`
//!   then the result, printed with the term's Display, which is Elixir's inspect format)
//!   and records every check, so `main` exits non-zero if any expected behaviour was
//!   missing.
//! - [`start_net`]: a named node on a private port mapper with an explicit cookie, and
//!   its cluster services (rpc built-ins, pg, global).
//! - [`ChildNode`]: a node in its own OS process (the example's own binary run again in
//!   child mode, see [`run_child_if_asked`]), so a drill can SIGKILL it.
//! - [`wait_for`]: poll with a deadline; every wait in the drills is bounded.
//!
//! What the tests and benches need too (polling, child processes) is in [`harness`], the
//! repository's `harness/`.
#![allow(dead_code)]

#[path = "../../harness/mod.rs"]
pub mod harness;

use std::fmt::Display;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use oxbeam::node::{Net, NetConfig};
use oxbeam::rt::Node;
use oxbeam::term::Term;

/// How long anything that should happen "at once" may take before a drill fails.
pub const SOON: Duration = Duration::from_secs(10);

/// The argument that makes an example's binary run as a child node.
const CHILD_FLAG: &str = "--drill-child-node";

/// The drill as printed lines, and the checks that failed.
pub struct Transcript {
    name: &'static str,
    failures: Vec<String>,
    start: Instant,
}

impl Transcript {
    /// Starts a transcript for example `name`, printing `title`.
    pub fn new(name: &'static str, title: &str) -> Transcript {
        println!("== {name}: {title}");
        Transcript {
            name,
            failures: Vec::new(),
            start: Instant::now(),
        }
    }

    /// A section heading.
    pub fn step(&self, text: &str) {
        println!("\n-- {text}");
    }

    /// `iex(node)> input` followed by the result line.
    pub fn iex(&self, node: impl Display, input: &str, result: impl Display) {
        println!("iex({node})> {input}");
        println!("{result}");
    }

    /// A line of narration.
    pub fn say(&self, text: impl Display) {
        println!("   {text}");
    }

    /// Records an expectation; prints `[ok]` or `[FAILED]`.
    pub fn check(&mut self, ok: bool, what: impl Display) -> bool {
        if ok {
            println!("   [ok] {what}");
        } else {
            println!("   [FAILED] {what}");
            self.failures.push(what.to_string());
        }
        ok
    }

    /// Records that the drill could not go on (`err`) if there was an error; then the
    /// verdict: exit code 0 only if every check passed.
    pub fn finish(self, outcome: Result<(), String>) -> ExitCode {
        let mut failures = self.failures;
        if let Err(e) = outcome {
            println!("   [FAILED] {e}");
            failures.push(e);
        }
        let ms = self.start.elapsed().as_secs_f64() * 1e3;
        if failures.is_empty() {
            println!(
                "\n{}: every expected behaviour observed ({ms:.1} ms)",
                self.name
            );
            ExitCode::SUCCESS
        } else {
            eprintln!("\n{}: {} check(s) FAILED:", self.name, failures.len());
            for f in &failures {
                eprintln!("  - {f}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Logging goes through `RUST_LOG` (off by default, so the transcript stays readable).
pub fn init_logging() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("off"))
        .try_init();
}

/// A cookie for this run only.
pub fn fresh_cookie() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("drill-{}-{nanos}", std::process::id())
}

/// Starts `short@localhost` on the port mapper at `epmd_port` with `cookie`, without
/// the cluster services. Port 0: the node hosts a private port mapper on a port the
/// system picks ([`Net::epmd_port`] says which; give it to the other nodes).
pub fn start_bare_net(short: &str, epmd_port: u16, cookie: &str) -> Result<Net, String> {
    let mut config = NetConfig::named(&format!("{short}@localhost"));
    config.cookie = Some(cookie.to_owned());
    config.epmd_port = Some(epmd_port);
    config.runtime.workers = 2;
    Net::start(config).map_err(|e| format!("start {short}@localhost: {e}"))
}

/// [`start_bare_net`] plus the cluster services (built-ins for rpc, pg, global), as an
/// Elixir node has them.
pub fn start_net(short: &str, epmd_port: u16, cookie: &str) -> Result<Net, String> {
    let net = start_bare_net(short, epmd_port, cookie)?;
    oxbeam::dist::start(&net).map_err(|e| e.to_string())?;
    Ok(net)
}

/// Polls `cond` until it gives `Some`, for at most `timeout`; the error names `what`
/// and the last value seen.
pub fn wait_for<T, S: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    cond: impl FnMut() -> Result<T, S>,
) -> Result<T, String> {
    harness::poll(timeout, cond)
        .map_err(|seen| format!("timed out waiting for {what}; last seen: {seen:?}"))
}

/// `term` as a process of `node` prints it (its own pids as `#PID<0.x.y>`).
pub fn shown_on(node: &Node, term: &Term) -> String {
    let prev = oxbeam::term::pid::set_display_context(None);
    node.set_thread_display();
    let text = term.to_string();
    oxbeam::term::pid::set_display_context(prev);
    text
}

/// A list of atoms as a term (`[:a, :b]`).
pub fn atoms(list: &[oxbeam::term::Atom]) -> Term {
    Term::list(list.iter().map(|a| Term::Atom(*a)).collect::<Vec<_>>())
}

/// If this process was started as a child node ([`ChildNode::start`]), runs that node
/// until its stdin closes, then exits; otherwise returns at once. `register` adds the
/// drill's functions (what other nodes may spawn or call there).
pub fn run_child_if_asked(register: fn(&Node)) {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some(CHILD_FLAG) {
        return;
    }
    init_logging();
    let (Some(short), Some(port)) = (args.get(2), args.get(3).and_then(|p| p.parse().ok())) else {
        eprintln!("usage: {CHILD_FLAG} SHORT_NAME EPMD_PORT (cookie in DRILL_COOKIE)");
        std::process::exit(2);
    };
    let cookie = std::env::var("DRILL_COOKIE").unwrap_or_default();
    let net = match start_net(short, port, &cookie) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    register(net.node());
    println!("ready {}", net.name().as_str());
    // The parent holds our stdin: when it drops it (or dies, even killed), we stop.
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    net.shutdown();
    std::process::exit(0);
}

/// A node running in its own OS process; SIGKILLed when dropped.
pub struct ChildNode {
    proc: harness::ChildProc,
    /// `short@localhost`.
    pub name: String,
}

impl ChildNode {
    /// Runs this example's binary again as node `short@localhost` (see
    /// [`run_child_if_asked`]) and waits for it to be up; what it prints afterwards
    /// (`IO.puts` run there) is echoed as `   (child) ...`.
    pub fn start(short: &str, epmd_port: u16, cookie: &str) -> Result<ChildNode, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.args([CHILD_FLAG, short, &epmd_port.to_string()])
            .env("DRILL_COOKIE", cookie);
        let proc = harness::ChildProc::spawn(&mut cmd, Some("   (child) "))
            .map_err(|e| format!("start child node {short}: {e}"))?;
        let name = format!("{short}@localhost");
        match proc.next_line(SOON) {
            Some(line) if line == format!("ready {name}") => {
                proc.echo_from_now();
                Ok(ChildNode { proc, name })
            }
            // Dropping `proc` kills it.
            other => Err(format!("child node {short} did not start: {other:?}")),
        }
    }

    /// The OS process id.
    pub fn os_pid(&self) -> u32 {
        self.proc.os_pid()
    }

    /// SIGKILL (`Child::kill`), and reap.
    pub fn kill(&mut self) {
        self.proc.kill();
    }
}
