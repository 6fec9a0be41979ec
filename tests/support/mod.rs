//! Shared test harness: nodes, bounded waits.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use oxbeam::rt::{Config, Node};

pub mod console;
pub mod fault;
pub mod proxy;

/// Polls `cond` until it holds or `timeout` passes; panics with `what` and the last
/// value seen otherwise.
pub fn wait_for<T: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> (bool, T),
) -> T {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(50);
    loop {
        let (ok, seen) = cond();
        if ok {
            return seen;
        }
        if Instant::now() >= deadline {
            panic!("timed out waiting for {what}; last seen: {seen:?}");
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// A local node with `workers` worker threads.
pub fn node(workers: usize) -> Node {
    Node::start(Config {
        workers,
        ..Config::default()
    })
}

/// The standard timeout for anything that should happen "at once".
pub const SOON: Duration = Duration::from_secs(10);

/// The tick time of every test node, in this process ([`net`]) or not ([`NodeProc`]).
/// Both ends must agree: a node ticks a quiet connection every quarter of its own tick
/// time and declares the peer down after a whole one without traffic, so an `oxbeam
/// node` left at its default (15 s, a tick every 3.75 s) is declared down by a 2 s peer
/// whenever it has nothing to send for 2 s (a sink being flooded, say).
pub const TICK: Duration = Duration::from_secs(2);

/// A free TCP port on loopback (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The test node binary: `oxbeam node` plus the `oxbeam_test` and `oxbeam_bench`
/// functions (`testnode/`). Cargo builds it for the integration tests.
pub const TESTNODE: &str = env!("CARGO_BIN_EXE_oxbeam-testnode");

/// The product binary, `oxbeam`: only the built-ins.
pub const PRODUCT: &str = env!("CARGO_BIN_EXE_oxbeam");

/// A node running as its own OS process (`oxbeam-testnode node`), killed when dropped.
pub struct NodeProc {
    child: std::process::Child,
    /// `name@localhost`.
    pub name: String,
    /// Lines the node printed after its first.
    pub lines: crossbeam_channel::Receiver<String>,
}

impl NodeProc {
    /// Starts `oxbeam-testnode node --sname short` with the cookie `cookie`, the port
    /// mapper on `epmd_port`, the tick time [`TICK`] (a `--tick-ms` in `extra` overrides
    /// it), and `extra` options; waits for its "listening" line.
    pub fn start(short: &str, cookie: &str, epmd_port: u16, extra: &[&str]) -> NodeProc {
        NodeProc::start_exe(TESTNODE, short, cookie, epmd_port, extra)
    }

    /// [`NodeProc::start`] with another binary that takes `node` and its options
    /// ([`PRODUCT`], say).
    pub fn start_exe(
        exe: &str,
        short: &str,
        cookie: &str,
        epmd_port: u16,
        extra: &[&str],
    ) -> NodeProc {
        use std::io::BufRead;
        let mut child = std::process::Command::new(exe)
            .args([
                "node",
                "--sname",
                short,
                "--cookie",
                cookie,
                "--epmd-port",
                &epmd_port.to_string(),
                "--tick-ms",
                &TICK.as_millis().to_string(),
            ])
            .args(extra)
            .arg("--stop-on-eof")
            .stdout(std::process::Stdio::piped())
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {exe} node: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let first = rx
            .recv_timeout(SOON)
            .unwrap_or_else(|_| panic!("node {short} did not start"));
        assert!(
            first.starts_with(&format!("node {short}@localhost listening")),
            "{first}"
        );
        NodeProc {
            child,
            name: format!("{short}@localhost"),
            lines: rx,
        }
    }

    /// The OS pid.
    pub fn os_pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) {
        send_signal(self.child.id(), sig);
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGSTOP: the node freezes (its sockets stay open).
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// Waits (bounded) for the process to exit by itself; its exit code, if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, and wait (bounded) for a clean exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        self.signal("-TERM");
        let deadline = Instant::now() + SOON;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                self.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        // A frozen child must be thawed to die promptly on some kernels; SIGKILL works
        // on stopped processes on Linux, so kill is enough.
        self.kill();
    }
}

/// Sends `sig` (`-STOP`, `-CONT`, `-TERM`...) to OS process `pid`, with `kill`.
pub fn send_signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

/// A cookie unique to this test run.
pub fn test_cookie() -> String {
    format!("TESTCOOKIE{}", std::process::id())
}

/// A named node in this test process, on the port mapper at `epmd_port`.
pub fn net(short: &str, epmd_port: u16, cookie: &str) -> oxbeam::node::Net {
    net_with_workers(short, epmd_port, cookie, 2)
}

/// [`net`] with `workers` scheduler workers.
pub fn net_with_workers(
    short: &str,
    epmd_port: u16,
    cookie: &str,
    workers: usize,
) -> oxbeam::node::Net {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut config = oxbeam::node::NetConfig::named(&format!("{short}@localhost"));
    config.cookie = Some(cookie.to_owned());
    config.epmd_port = Some(epmd_port);
    config.tick_time = TICK;
    config.runtime.workers = workers;
    oxbeam::node::Net::start(config).unwrap_or_else(|e| panic!("start {short}: {e}"))
}
