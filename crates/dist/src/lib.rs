//! `dist`: cluster services on top of named nodes: [`rpc`], [`pg`] (process groups),
//! and the [`builtins`] every distributed node registers. [`start`] sets them up on a
//! node: the built-ins, the default pg scope and the [`global`] name server.
//!
//! `dist` sees only `node`, `rt` and `term`: the facade above it is not in scope (`tests/workspace_layers.rs` checks the whole graph):
//! ```compile_fail
//! use oxbeam::Node;
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use oxbeam_node as node;
use oxbeam_rt as rt;
use oxbeam_term as term;
pub mod builtins;
pub mod errors;
pub mod global;
pub mod pg;
pub mod rpc;

use crate::node::{ConnectError, Net};
use crate::rt::StartError;

pub use errors::{GlobalRegisterError, LockError, PgError, SyncError};

/// Sets up the cluster services on `net`: the built-in functions, the default pg
/// scope and the global name server.
pub fn start(net: &Net) -> Result<(), ServicesError> {
    builtins::register(net);
    pg::start_scope(net.node(), pg::default_scope()).map_err(ServicesError::Pg)?;
    global::start(net.node()).map_err(ServicesError::Global)?;
    Ok(())
}

/// Why [`start`] could not set up a cluster service: that server's start failed
/// ([`StartError::AlreadyStarted`] when the services run on the node already).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServicesError {
    /// The default pg scope's server.
    Pg(StartError),
    /// The global name server.
    Global(StartError),
}

impl std::fmt::Display for ServicesError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServicesError::Pg(r) => write!(f, "the pg scope server did not start: {r}"),
            ServicesError::Global(r) => write!(f, "the global name server did not start: {r}"),
        }
    }
}

impl std::error::Error for ServicesError {}

/// Connects to `node` and returns once this node's global name server has synced with
/// the whole cluster it joined (OTP's `connect` with `global` running), within
/// `timeout` for the sync ([`ConnectError::Timeout`] past it). (Nodes still joining the
/// mesh transitively at that moment are synced as they connect.)
pub fn connect(
    ctx: &mut crate::rt::Ctx,
    net: &Net,
    node: &str,
    timeout: std::time::Duration,
) -> Result<(), ConnectError> {
    net.connect(node)?;
    // The mesh forms transitively; sync waits until global knows every connected node.
    global::sync(ctx, timeout).map_err(|_| ConnectError::Timeout)
}
