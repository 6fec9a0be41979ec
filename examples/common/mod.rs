//! Shared by the drill examples (not an example itself: cargo only builds
//! `examples/*.rs` and `examples/*/main.rs`).
//!
//! - [`Transcript`]: prints the drill as an iex session (`iex(node1@localhost)> ...`
//!   then the result, printed with the term's Display, which is Elixir's inspect format)
//!   and records every check, so `main` exits non-zero if any expected behaviour was
//!   missing.
//! - [`message!`]: a serde type becomes a message: `ctx.send(pid, Msg::Ping(me))`
//!   converts it with `oxbeam::term::to_term`, and it prints as iex prints that term;
//!   [`receive`] and [`receive_where`] are the typed selective receive.
//! - [`Notice`]: the runtime's own messages (`{:DOWN, ...}`, `{:EXIT, ...}`,
//!   `{:nodedown, node}`), typed.
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

use oxbeam::node::Net;
use oxbeam::{Atom, Ctx, Node, NodeBuilder, Pid, Ref, Term};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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
    pub fn finish<E: Display>(self, outcome: Result<(), E>) -> ExitCode {
        let mut failures = self.failures;
        if let Err(e) = outcome {
            println!("   [FAILED] {e}");
            failures.push(e.to_string());
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

/// A drill node's settings: `name`, the run's cookie, the port mapper at
/// `port_mapper` (0: host a private one on a port it picks), two workers. The caller
/// adds what its drill needs and starts it.
pub fn drill_node(name: &str, cookie: &str, port_mapper: u16) -> NodeBuilder {
    Node::builder()
        .name(name)
        .cookie(cookie)
        .port_mapper(port_mapper)
        .workers(2)
}

/// The port of the port mapper `node` registered with (with `.port_mapper(0)`, the
/// private one it hosts): what the other nodes of the drill are given.
pub fn epmd_port(node: &Node) -> u16 {
    net(node).epmd_port()
}

/// The distribution layer of a named node: where remote spawn by MFA
/// ([`Net::spawn`]), `Node.monitor` ([`Net::monitor_node`]) and `Node.list([:this,
/// :visible])` ([`Net::nodes_and_this`]) are, which the facade's [`Node`] does not offer
/// itself.
pub fn net(node: &Node) -> &Net {
    node.net().expect("the drills' nodes are named")
}

/// Makes each listed serde type a message: `Term::from(value)` (so `send` and
/// `send_to` take it as it is) through the serde conversion
/// ([`oxbeam::term::to_term`]), and `Display` as iex prints that term.
macro_rules! message {
    ($($t:ty),+ $(,)?) => {$(
        impl From<$t> for oxbeam::Term {
            fn from(m: $t) -> oxbeam::Term {
                oxbeam::term::to_term(&m)
                    .expect(concat!("a ", stringify!($t), " converts to a term"))
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match oxbeam::term::to_term(self) {
                    Ok(t) => t.fmt(f),
                    Err(e) => write!(f, "<{e}>"),
                }
            }
        }
    )+};
}
#[allow(unused_imports)] // not every drill sends a type of its own
pub(crate) use message;

/// An error's reason as a term: what a `Result<_, Term>` of the library gives as it is,
/// and a typed error that converts `Into<Term>` gives converted.
pub fn reason(e: impl Into<Term>) -> Term {
    e.into()
}

/// Typed selective receive: the first message (oldest first) that decodes as a `T`
/// ([`oxbeam::term::from_term`]), waiting at most `timeout`; the others stay queued.
pub fn receive<T: DeserializeOwned>(ctx: &mut Ctx, timeout: Duration) -> Option<T> {
    ctx.receive_as(Some(timeout))
}

/// [`receive`] of the first `T` for which `pred` holds.
pub fn receive_where<T: DeserializeOwned>(
    ctx: &mut Ctx,
    timeout: Duration,
    pred: impl FnMut(&T) -> bool,
) -> Option<T> {
    ctx.receive_as_where(Some(timeout), pred)
}

/// What the runtime itself sends a process, typed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Notice {
    /// `{:DOWN, ref, :process, pid, reason}`: a monitored process is gone.
    #[serde(rename = "DOWN")]
    Down(Ref, Atom, Pid, Term),
    /// `{:EXIT, pid, reason}`: a linked process exited (to a process trapping exits).
    #[serde(rename = "EXIT")]
    Exit(Pid, Term),
    /// `{:nodedown, node}`: a node watched with `Node.monitor(node, true)` is gone.
    #[serde(rename = "nodedown")]
    NodeDown(Atom),
}
message!(Notice);

impl Notice {
    /// `{:DOWN, reference, :process, pid, reason}`.
    pub fn down(reference: Ref, pid: Pid, reason: impl Into<Term>) -> Notice {
        Notice::Down(reference, Atom::new("process"), pid, reason.into())
    }
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
pub fn shown_on(node: &oxbeam::rt::Node, term: &Term) -> String {
    let prev = oxbeam::term::pid::set_display_context(None);
    node.set_thread_display();
    let text = term.to_string();
    oxbeam::term::pid::set_display_context(prev);
    text
}

/// A list of atoms as a term (`[:a, :b]`).
pub fn atoms(list: &[Atom]) -> Term {
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
    let started = Node::builder()
        .name(&format!("{short}@localhost"))
        .cookie(&cookie)
        .port_mapper(port)
        .workers(2)
        .start();
    let node = match started {
        Ok(n) => n,
        Err(e) => {
            eprintln!("start {short}@localhost: {e}");
            std::process::exit(1);
        }
    };
    register(&node);
    println!("ready {}", node.name().as_str());
    // The parent holds our stdin: when it drops it (or dies, even killed), we stop.
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    node.shutdown();
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
