//! oxbeam's services layer: the replicated KV, the task queue and the lock manager of
//! the chapter's exercises (issue #19), above `dist` and below the applications.
//!
//! So far: [`raft`], the consensus core the KV chooses its writer and commits its writes
//! with, a pure state machine (no I/O, no clock: the process that runs it turns timers
//! and messages into its inputs), model-checked with stateright (`tests/raft_model.rs`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use oxbeam_dist as dist;
use oxbeam_node as node;
use oxbeam_rt as rt;
use oxbeam_term as term;

pub mod everywhere;
pub mod group;
pub mod kv;
pub mod kv_store;
pub mod locks;
pub mod queue;
pub mod raft;
