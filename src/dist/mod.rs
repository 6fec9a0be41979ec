//! `dist`: cluster services on top of named nodes (being built): [`rpc`], and the
//! [`builtins`] every distributed node registers.
pub mod builtins;
pub mod rpc;
