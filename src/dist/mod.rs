//! `dist`: cluster services on top of named nodes: [`rpc`], [`pg`] (process groups),
//! and the [`builtins`] every distributed node registers. [`start`] sets them up on a
//! node: the built-ins, the default pg scope and the [`global`] name server.
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
