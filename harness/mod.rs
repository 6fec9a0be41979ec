//! The harness shared by the tests (`tests/support`), the examples (`examples/common`)
//! and the benchmarks (`benches/suite.rs`): each includes this directory with
//! `#[path = ".../harness/mod.rs"] mod harness;`, so there is one copy of
//!
//! - [`wait`]: polling for a condition with a deadline (never a bare sleep);
//! - [`ports`]: ports that no parallel test can take: a private port mapper bound to a
//!   port the system picked, held for as long as the test lives;
//! - [`child`]: an OS process child (a node) whose stdout lines are read, stopped when its
//!   stdin closes, killed when dropped, and the command line of a test node;
//! - [`procfs`]: what `/proc` says about a process: CPU ticks, memory, threads, files.
//!
//! It uses only the standard library, `crossbeam-channel` and `oxbeam` (all three
//! includers link them), and has no `env!` of its own: the test node's path
//! (`CARGO_BIN_EXE_oxbeam-testnode`) is known to tests and benches only.
#![allow(dead_code, unused_imports)] // each includer uses a part of it

pub mod child;
pub mod ports;
pub mod procfs;
pub mod wait;

pub use child::ChildProc;
pub use ports::PortMapper;
pub use wait::poll;
