//! A child OS process, usually a node: its stdout read line by line on a thread, its
//! stdin held by the parent (a node started with `--stop-on-eof`, or an example's child
//! mode, stops when it closes, so a parent that dies takes its children along), killed
//! and reaped when dropped.
//!
//! A test node is `oxbeam-testnode` (tests and benches know its path from
//! `CARGO_BIN_EXE_oxbeam-testnode`) run with [`node_args`]; it prints
//! `node NAME listening on ADDR creation C` when up ([`Listening::parse`]).

use std::io::BufRead;
use std::process::{Child, ChildStderr, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

/// A child process; SIGKILLed and reaped when dropped.
pub struct ChildProc {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Its stdout, line by line, until it closes (see [`ChildProc::echo_from_now`]).
    pub lines: Receiver<String>,
    echo: Arc<AtomicBool>,
}

impl ChildProc {
    /// Spawns `cmd` with stdin and stdout piped (stderr as `cmd` sets it: inherited by
    /// default). Lines the child prints go to [`ChildProc::lines`]; once
    /// [`echo_from_now`](ChildProc::echo_from_now) is called they are printed instead,
    /// each after `echo_prefix` (or, with `None`, dropped).
    pub fn spawn(cmd: &mut Command, echo_prefix: Option<&str>) -> std::io::Result<ChildProc> {
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = crossbeam_channel::unbounded();
        let echo = Arc::new(AtomicBool::new(false));
        let (echoing, prefix) = (echo.clone(), echo_prefix.map(str::to_owned));
        // Reads to the end whatever happens, so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if echoing.load(Ordering::Relaxed) {
                    if let Some(prefix) = &prefix {
                        println!("{prefix}{line}");
                    }
                } else {
                    let _ = tx.send(line);
                }
            }
        });
        Ok(ChildProc {
            stdin: child.stdin.take(),
            child,
            lines: rx,
            echo,
        })
    }

    /// The next stdout line within `timeout`; `None` if none came (or stdout closed).
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// From now on, lines the child prints are printed here (after the prefix given to
    /// [`spawn`](ChildProc::spawn)) or dropped, not queued; lines already queued stay.
    pub fn echo_from_now(&self) {
        self.echo.store(true, Ordering::Relaxed);
    }

    /// The child's stderr, if `cmd` piped it (once).
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// Its stdin, until [`close_stdin`](ChildProc::close_stdin).
    pub fn stdin(&mut self) -> Option<&mut ChildStdin> {
        self.stdin.as_mut()
    }

    /// Closes its stdin (end of input: a `--stop-on-eof` node stops).
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// The OS pid.
    pub fn os_pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        self.sigkill();
        let _ = self.child.wait();
    }

    /// SIGKILL, without waiting for it to end (to time what follows from the signal
    /// itself; [`kill`](ChildProc::kill), [`wait_exit`](ChildProc::wait_exit) or the
    /// drop reaps it).
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
    }

    /// Sends `sig` (`-STOP`, `-CONT`, `-TERM`...) with `kill`.
    pub fn signal(&self, sig: &str) {
        send_signal(self.child.id(), sig);
    }

    /// SIGSTOP: it freezes (its sockets stay open).
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// Waits, at most `timeout`, for it to exit by itself; how it exited, if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then waits at most `timeout` for it to exit (killing it if it does
    /// not); whether it exited with status 0.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        self.signal("-TERM");
        match self.wait_exit(timeout) {
            Some(status) => status.success(),
            None => {
                self.kill();
                false
            }
        }
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        // SIGKILL works on a stopped (frozen) process on Linux too.
        self.kill();
    }
}

/// Sends `sig` (`-STOP`, `-CONT`, `-TERM`...) to OS process `pid`, with `kill`.
pub fn send_signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

/// `node --sname short --cookie cookie --epmd-port epmd --stop-on-eof`: the arguments
/// of a test node (`oxbeam-testnode`, or `oxbeam`) that stops with its parent; more
/// options may follow.
pub fn node_args(short: &str, cookie: &str, epmd: u16) -> Vec<String> {
    let epmd = epmd.to_string();
    [
        "node",
        "--sname",
        short,
        "--cookie",
        cookie,
        "--epmd-port",
        &epmd,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(["--stop-on-eof".to_owned()])
    .collect()
}

/// A node's first line: `node NAME listening on 127.0.0.1:PORT creation C`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listening {
    /// `name@host`.
    pub name: String,
    /// The port it listens on for distribution.
    pub port: u16,
    /// Its creation.
    pub creation: u32,
}

impl Listening {
    /// Parses a node's first line; `None` if it is not one.
    pub fn parse(line: &str) -> Option<Listening> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let ["node", name, "listening", "on", addr, "creation", creation] = words[..] else {
            return None;
        };
        Some(Listening {
            name: name.to_owned(),
            port: addr.rsplit(':').next()?.parse().ok()?,
            creation: creation.parse().ok()?,
        })
    }
}
