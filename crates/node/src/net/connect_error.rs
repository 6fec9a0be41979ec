//! [`ConnectError`]: why [`Net::connect`](crate::Net::connect) failed.
//!
//! A connection being set up records the first typed failure it meets
//! (`ConnState::failure`, set through `Conn::note_failure` where the failure happens:
//! the port mapper look-up, the TCP dial, the handshake, the connect timeout);
//! `connect` returns it. A connection that went down with no such record (closed by
//! the peer during the handshake, the node stopping) gives [`ConnectError::Closed`]
//! with the reason as logged.

use super::NodeNameError;
use crate::handshake::{HandshakeError, RefuseReason};

/// Why a connection to another node could not be made.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// Not `name@host` with a loopback host (the text says what is wrong).
    BadName(NodeNameError),
    /// This node has no distribution (a local node): it cannot connect.
    NotDistributed,
    /// The cookies differ: the peer refused our proof, or its proof did not match our
    /// cookie. (An Erlang peer closes the connection instead of saying so: that shows
    /// as [`ConnectError::Closed`].)
    BadCookie,
    /// The port mapper of the peer's host knows no node of that name: it is not
    /// running, or runs under another name, or registered with another port mapper.
    NotRegistered {
        /// The name asked for (the part before `@`).
        name: String,
    },
    /// The port mapper of the peer's host could not be reached or answered nonsense.
    MapperUnreachable(String),
    /// The peer's address did not accept a TCP connection (nothing listens there).
    Unreachable(String),
    /// The peer refused the handshake for another reason (not allowed, ...).
    Refused(RefuseReason),
    /// The handshake failed otherwise (a malformed message, the wrong node answered).
    Handshake(HandshakeError),
    /// Not up within the connect timeout (a frozen or overloaded peer, a lost packet).
    Timeout,
    /// The connection closed before it was up, with this reason (the peer closed it
    /// during the handshake, or this node is stopping).
    Closed(String),
}

impl ConnectError {
    /// The error a failed handshake stands for.
    pub fn from_handshake(e: &HandshakeError) -> ConnectError {
        match e {
            HandshakeError::BadCookie | HandshakeError::Refused(RefuseReason::BadCookie) => {
                ConnectError::BadCookie
            }
            HandshakeError::Refused(reason) => ConnectError::Refused(reason.clone()),
            other => ConnectError::Handshake(other.clone()),
        }
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::BadName(why) => write!(f, "not a node name: {why}"),
            ConnectError::NotDistributed => {
                f.write_str("this node is not distributed (start it with a name)")
            }
            ConnectError::BadCookie => f.write_str(
                "the cookies differ: give both nodes the same cookie (--cookie, or \
                 ~/.erlang.cookie)",
            ),
            ConnectError::NotRegistered { name } => write!(
                f,
                "no node named {name:?} is registered with the port mapper (is it running, \
                 under that name, with the same port mapper?)"
            ),
            ConnectError::MapperUnreachable(why) => {
                write!(f, "the port mapper could not be reached: {why}")
            }
            ConnectError::Unreachable(why) => write!(f, "the node could not be reached: {why}"),
            ConnectError::Refused(reason) => write!(f, "the node refused: {reason}"),
            ConnectError::Handshake(e) => write!(f, "the handshake failed: {e}"),
            ConnectError::Timeout => f.write_str("not connected within the connect timeout"),
            ConnectError::Closed(why) => write!(f, "the connection closed before it was up: {why}"),
        }
    }
}

impl std::error::Error for ConnectError {}
