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
pub mod global;
pub mod pg;
pub mod rpc;

use crate::node::Net;

/// Sets up the cluster services on `net`: the built-in functions and the default pg
/// scope.
pub fn start(net: &Net) -> Result<(), String> {
    builtins::register(net);
    pg::start_scope(net.node(), pg::default_scope()).map_err(|e| format!("pg: {e}"))?;
    global::start(net.node()).map_err(|e| format!("global: {e}"))?;
    Ok(())
}

/// Connects to `node` and returns once this node's global name server has synced with
/// the whole cluster it joined (OTP's `connect` with `global` running): true when both
/// happened within `timeout`. (Nodes still joining the mesh transitively at that
/// moment are synced as they connect.)
pub fn connect(
    ctx: &mut crate::rt::Ctx,
    net: &Net,
    node: &str,
    timeout: std::time::Duration,
) -> bool {
    if !net.connect(node) {
        return false;
    }
    // The mesh forms transitively; sync waits until global knows every connected node.
    global::sync(ctx, timeout)
}
