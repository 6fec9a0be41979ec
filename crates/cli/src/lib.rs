//! The `oxbeam` command's library: the [`console`] (iex for oxbeam), the [`demo`] and
//! the headless node ([`node_cmd`]). It is the only crate with terminal dependencies
//! (rustyline, signal-hook, env_logger); a program that links `oxbeam` compiles none.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod console;
pub mod demo;
pub mod node_cmd;

use oxbeam::{dist, node, rt, term};
