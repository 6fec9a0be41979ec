//! Helpers of the `fault_*` tests: [`raw`] sockets that speak (and abuse) the node
//! protocol and the port mapper's, [`watched`] nodes whose log and `/proc` figures a test
//! reads, and [`cluster`] calls into OS-process nodes.
pub mod cluster;
pub mod raw;
pub mod watched;
