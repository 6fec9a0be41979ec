//! `node`: named nodes and the connections between them.
//!
//! - [`net`]: [`Net`], a named node: start, connect, nodes, monitors, remote spawn.
//! - [`epmd`]: the port mapper (EPMD's protocol): client, in-process server, take-over.
//! - [`handshake`]: the cookie handshake, a pure state machine; [`cookie`]: where the
//!   cookie comes from.
//! - [`conn`]: one peer connection's shared state; `io`: the event loop.
//! - [`frame`], [`wire`], [`outbound`]: framing, messages, fragmentation.
//!
//! `node` sees only `rt` and `term`: the cluster services above it are not in scope (`tests/workspace_layers.rs` checks the whole graph):
//! ```compile_fail
//! use oxbeam_dist::rpc;
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use oxbeam_rt as rt;
use oxbeam_term as term;
pub mod cmdline;
pub mod conn;
pub mod cookie;
mod delivery;
pub mod epmd;
pub mod frame;
pub mod handshake;
mod io;
pub mod log_limit;
pub mod net;
pub mod outbound;
pub mod wire;

pub use net::{
    ConnectError, Net, NetConfig, NetStartError, NodeMonitor, NodeNameError, PendingSpawn,
    RemoteSpawnError, SpawnRequest,
};
