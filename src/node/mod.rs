//! `node`: named nodes and the connections between them (being built).
pub mod cookie;
pub mod epmd;
pub mod handshake;
