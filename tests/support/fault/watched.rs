//! A node run as an OS process whose log (stderr) the test reads, and what `/proc` says
//! about a process: resident memory, threads, open file descriptors.
//!
//! [`NodeProc`](crate::support::NodeProc) leaves the child's stderr on the terminal; the fault
//! tests count log lines per case, so [`LoggedNode`] pipes it and keeps every line.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::support::harness::ChildProc;
use crate::support::harness::child::{Listening, node_args};
pub use crate::support::harness::procfs::{fds, open_files_limit, rss_kib, threads, threads_named};
use crate::support::{SOON, TESTNODE};

/// A node running as its own OS process (`oxbeam-testnode node`), its stderr captured; killed
/// when dropped.
pub struct LoggedNode {
    proc: ChildProc,
    /// `name@localhost`.
    pub name: String,
    /// The port it listens on for distribution.
    pub port: u16,
    /// Its creation.
    pub creation: u32,
    /// The port mapper's port (the one it picked and hosts, when started with 0).
    pub epmd: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl LoggedNode {
    /// Starts `oxbeam-testnode node --sname short` (cookie, port mapper port, `extra`
    /// options) with `RUST_LOG=level`; waits for its "listening" line. With `epmd` 0 the
    /// node hosts a private port mapper, on the port it then prints ([`LoggedNode::epmd`]).
    pub fn start(short: &str, cookie: &str, epmd: u16, extra: &[&str], level: &str) -> LoggedNode {
        LoggedNode::start_with_env(short, cookie, epmd, extra, level, &[])
    }

    /// [`LoggedNode::start`] with these environment variables set too.
    pub fn start_with_env(
        short: &str,
        cookie: &str,
        epmd: u16,
        extra: &[&str],
        level: &str,
        env: &[(&str, &str)],
    ) -> LoggedNode {
        let mut cmd = Command::new(TESTNODE);
        cmd.args(node_args(short, cookie, epmd))
            .args(extra)
            .env("RUST_LOG", level)
            .envs(env.iter().copied())
            .stderr(Stdio::piped());
        let mut proc = ChildProc::spawn(&mut cmd, None).expect("start oxbeam-testnode node");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stderr, sink) = (proc.take_stderr().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().push(line);
            }
        });
        // The first stdout line: `node NAME listening on 127.0.0.1:PORT creation C`.
        let Some(first) = proc.next_line(SOON) else {
            panic!("node {short} did not start; log: {:?}", log.lock())
        };
        let up = Listening::parse(&first).unwrap_or_else(|| panic!("{first}"));
        assert_eq!(up.name, format!("{short}@localhost"), "{first}");
        let epmd = if epmd != 0 {
            epmd
        } else {
            let line = proc.next_line(SOON).unwrap_or_default();
            let port = line.strip_prefix("port mapper on 127.0.0.1:");
            port.and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("node {short}: no port mapper line: {line:?}"))
        };
        // Later lines are not read: let them be dropped rather than queued.
        proc.echo_from_now();
        LoggedNode {
            proc,
            name: up.name,
            port: up.port,
            creation: up.creation,
            epmd,
            log,
        }
    }

    /// The OS pid.
    pub fn os_pid(&self) -> u32 {
        self.proc.os_pid()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.proc.alive()
    }

    /// SIGSTOP.
    pub fn freeze(&self) {
        self.proc.freeze();
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        self.proc.thaw();
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// How many log lines so far.
    pub fn log_len(&self) -> usize {
        self.log.lock().len()
    }

    /// Log lines `from..` (up to the end).
    pub fn log_since(&self, from: usize) -> Vec<String> {
        let log = self.log.lock();
        log.get(from..).map(<[String]>::to_vec).unwrap_or_default()
    }

    /// Waits until the log holds at least `n` lines containing `needle`; returns the
    /// index just past the `n`th.
    pub fn wait_log(&self, needle: &str, n: usize, timeout: Duration) -> usize {
        crate::support::wait_for(&format!("{n} log lines with {needle:?}"), timeout, || {
            let log = self.log.lock();
            let mut seen = 0;
            for (i, l) in log.iter().enumerate() {
                if l.contains(needle) {
                    seen += 1;
                    if seen == n {
                        return (true, i + 1);
                    }
                }
            }
            (false, seen)
        })
    }
}

/// Log lines grouped by level and message shape (digits, addresses and quoted names
/// blurred), most frequent first: what a reader of the log would see repeated.
pub fn summarize(lines: &[String]) -> Vec<(usize, String)> {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for l in lines {
        // env_logger: `[TIMESTAMP LEVEL target] message`.
        let body = l.split_once(' ').map_or(l.as_str(), |(_, rest)| rest);
        let mut shape = String::new();
        let mut last_digit = false;
        for c in body.chars().take(140) {
            if c.is_ascii_digit() {
                if !last_digit {
                    shape.push('N');
                }
                last_digit = true;
            } else {
                shape.push(c);
                last_digit = false;
            }
        }
        *counts.entry(shape).or_default() += 1;
    }
    let mut v: Vec<(usize, String)> = counts.into_iter().map(|(s, n)| (n, s)).collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    v
}

/// Prints [`summarize`]'s lines, indented under a `fault-report` heading.
pub fn print_summary(lines: &[String]) {
    for (n, shape) in summarize(lines) {
        println!("fault-report     {n:>5} x {shape}");
    }
}
