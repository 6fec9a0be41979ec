//! Shared test harness: nodes, bounded waits.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use oxbeam::rt::{Config, Node};

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
