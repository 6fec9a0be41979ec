//! A node run as an OS process whose log (stderr) the test reads, and what `/proc` says
//! about a process: resident memory, threads, open file descriptors.
//!
//! [`NodeProc`](crate::support::NodeProc) leaves the child's stderr on the terminal; the fault
//! tests count log lines per case, so [`LoggedNode`] pipes it and keeps every line.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::support::SOON;

/// A node running as its own OS process (`oxbeam-testnode node`), its stderr captured; killed
/// when dropped.
pub struct LoggedNode {
    child: Child,
    /// `name@localhost`.
    pub name: String,
    /// The port it listens on for distribution.
    pub port: u16,
    /// Its creation.
    pub creation: u32,
    log: Arc<Mutex<Vec<String>>>,
}

impl LoggedNode {
    /// Starts `oxbeam-testnode node --sname short` (cookie, port mapper port, `extra` options) with
    /// `RUST_LOG=level`; waits for its "listening" line.
    pub fn start(short: &str, cookie: &str, epmd: u16, extra: &[&str], level: &str) -> LoggedNode {
        let mut child = Command::new(crate::support::TESTNODE)
            .args(["node", "--sname", short, "--cookie", cookie])
            .args(["--epmd-port", &epmd.to_string()])
            .args(extra)
            .arg("--stop-on-eof")
            .env("RUST_LOG", level)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start oxbeam node");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stderr, sink) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                sink.lock().push(line);
            }
        });
        // The first stdout line: `node NAME listening on 127.0.0.1:PORT creation C`.
        let (tx, rx) = crossbeam_channel::bounded(1);
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok);
            if let Some(first) = lines.next() {
                let _ = tx.send(first);
            }
            for _ in lines {}
        });
        let first = rx.recv_timeout(SOON).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("node {short} did not start; log: {:?}", log.lock())
        });
        let words: Vec<&str> = first.split_whitespace().collect();
        assert!(
            words.len() == 7 && words[1] == format!("{short}@localhost"),
            "{first}"
        );
        let port = words[4].rsplit(':').next().unwrap().parse().unwrap();
        LoggedNode {
            child,
            name: format!("{short}@localhost"),
            port,
            creation: words[6].parse().unwrap(),
            log,
        }
    }

    /// The OS pid.
    pub fn os_pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

impl Drop for LoggedNode {
    fn drop(&mut self) {
        self.kill();
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

fn status_field(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Resident memory of process `pid`, in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

/// Threads of process `pid`.
pub fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count())
}

/// Open file descriptors of process `pid`.
pub fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// The soft limit on open files of this process (`/proc/self/limits`).
pub fn open_files_limit() -> u64 {
    let text = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(1024)
}

/// Threads of process `pid` whose name starts with `prefix` (a node's threads are named
/// after it: `NAME-net`, `NAME-w3`, ...; the kernel keeps 15 bytes of a name).
pub fn threads_named(pid: u32, prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.starts_with(prefix))
        .count()
}
