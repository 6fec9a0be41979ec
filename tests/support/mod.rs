//! Shared test harness: nodes, bounded waits. The parts the examples and benches use
//! too are in [`harness`] (the repository's `harness/`).
#![allow(dead_code, unused_imports)] // each test crate uses a part of it

use std::time::Duration;

use oxbeam::rt::{Config, Node};

pub mod console;
pub mod fault;
#[path = "../../harness/mod.rs"]
pub mod harness;
pub mod proxy;

use harness::ChildProc;
pub use harness::child::send_signal;
use harness::child::{Listening, node_args};
pub use harness::ports::{PortMapper, private_mapper, refused_port};

/// Polls `cond` until it holds or `timeout` passes; panics with `what` and the last
/// value seen otherwise.
pub fn wait_for<T: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> (bool, T),
) -> T {
    let got = harness::poll(timeout, || match cond() {
        (true, seen) => Ok(seen),
        (false, seen) => Err(seen),
    });
    got.unwrap_or_else(|seen| panic!("timed out waiting for {what}; last seen: {seen:?}"))
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

/// The test node binary: `oxbeam node` plus the `oxbeam_test` and `oxbeam_bench`
/// functions (`testnode/`). Cargo builds it for the integration tests of the root
/// package (this harness is shared with `crates/cli/tests`, which have the product
/// instead: there this is empty and starting a test node fails, saying so).
pub const TESTNODE: &str = match option_env!("CARGO_BIN_EXE_oxbeam-testnode") {
    Some(path) => path,
    None => "",
};

/// The product binary, `oxbeam` (only the built-ins): built for the tests of
/// `crates/cli`; empty in the root package's tests.
pub const PRODUCT: &str = match option_env!("CARGO_BIN_EXE_oxbeam") {
    Some(path) => path,
    None => "",
};

/// A node running as its own OS process (`oxbeam-testnode node`), killed when dropped.
pub struct NodeProc {
    proc: ChildProc,
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
        assert!(
            !exe.is_empty(),
            "no such binary in this package's tests (the test node is the root package's, \
             the product is crates/cli's)"
        );
        let mut cmd = std::process::Command::new(exe);
        cmd.args(node_args(short, cookie, epmd_port))
            .args(["--tick-ms", &TICK.as_millis().to_string()])
            .args(extra);
        let proc =
            ChildProc::spawn(&mut cmd, None).unwrap_or_else(|e| panic!("start {exe} node: {e}"));
        let first = proc
            .next_line(SOON)
            .unwrap_or_else(|| panic!("node {short} did not start"));
        let up = Listening::parse(&first);
        assert_eq!(
            up.map(|l| l.name),
            Some(format!("{short}@localhost")),
            "{first}"
        );
        NodeProc {
            name: format!("{short}@localhost"),
            lines: proc.lines.clone(),
            proc,
        }
    }

    /// The OS pid.
    pub fn os_pid(&self) -> u32 {
        self.proc.os_pid()
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// SIGSTOP: the node freezes (its sockets stay open).
    pub fn freeze(&self) {
        self.proc.freeze();
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        self.proc.thaw();
    }

    /// Waits (bounded) for the process to exit by itself; its exit code, if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        self.proc.wait_exit(timeout).and_then(|s| s.code())
    }

    /// SIGTERM, and wait (bounded) for a clean exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        self.proc.terminate(SOON)
    }
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
    net_configured(short, epmd_port, cookie, |c| c.runtime.workers = workers)
}

/// [`net`] with its configuration changed by `change` first.
pub fn net_configured(
    short: &str,
    epmd_port: u16,
    cookie: &str,
    change: impl FnOnce(&mut oxbeam::node::NetConfig),
) -> oxbeam::node::Net {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut config = oxbeam::node::NetConfig::named(&format!("{short}@localhost"));
    config.cookie = Some(cookie.to_owned());
    config.epmd_port = Some(epmd_port);
    config.tick_time = TICK;
    config.runtime.workers = 2;
    change(&mut config);
    oxbeam::node::Net::start(config).unwrap_or_else(|e| panic!("start {short}: {e}"))
}

/// A directory under the system's temp dir for this test run only, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// `oxbeam-<what>-<pid>`, emptied first.
    pub fn new(what: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("oxbeam-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    /// Its subdirectory for node `i`.
    pub fn node(&self, i: usize) -> std::path::PathBuf {
        self.0.join(format!("node{i}"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Three named nodes in this process, `{prefix}1@localhost` to `{prefix}3@localhost`,
/// on a private port mapper: the services' in-process tests' cluster.
pub struct Trio {
    /// The nodes.
    pub nets: Vec<oxbeam::node::Net>,
    /// Their names, in order (the services' member list).
    pub names: Vec<oxbeam::term::Atom>,
    _mapper: PortMapper,
}

/// Starts a [`Trio`].
pub fn trio(prefix: &str) -> Trio {
    let (mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let nets: Vec<_> = (1..=3)
        .map(|i| net(&format!("{prefix}{i}"), epmd, &cookie))
        .collect();
    let names = nets.iter().map(|n| n.node().name()).collect();
    Trio {
        nets,
        names,
        _mapper: mapper,
    }
}
