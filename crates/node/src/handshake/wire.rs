//! The handshake's wire messages: what each carries, how it is encoded, and what makes
//! one invalid. Re-exported by [`handshake`](super).
//!
//! # Bytes
//!
//! Each message is one frame (see [`frame`](crate::frame)), encoded by postcard
//! from the derives below: the variant's index (a varint), then its fields in the
//! order declared. Integers (`u16`, `u32`) are LEB128 varints, a flag is one byte (0
//! or 1), a text its length (varint) then its UTF-8 bytes, a nonce or a MAC its 32 raw
//! bytes.
//!
//! | index | message | fields, in order |
//! |---|---|---|
//! | 0 | `Hello` | min_version, max_version, name, creation, hidden, nonce_i |
//! | 1 | `Challenge` | version, name, creation, hidden, nonce_a |
//! | 2 | `Proof` | mac |
//! | 3 | `Accept` | mac |
//! | 4 | `Refuse` | reason: 0 `Version`, 1 `BadCookie`, 2 `Duplicate`, 3 `Simultaneous`, 4 `NotAllowed` then its text |
//!
//! Here the order of the variants and fields *is* the protocol: `tests/node_wire_golden.rs`
//! pins every message's bytes, so a reordering fails there first. The Hello's layout
//! must stay as it is in every version: it carries the version range, so a node can
//! refuse one of another version cleanly instead of failing to read its Hello (see
//! [`MIN_VERSION`](super::MIN_VERSION)).
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Nonce;
use crate::net::NodeNameError;

/// The longest node name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// The longest [`RefuseReason::NotAllowed`] text accepted, in bytes.
pub const MAX_REASON_LEN: usize = 255;

/// Who a node says it is in the handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The node's full name, `name@host` (see [`check_node_name`]).
    pub name: String,
    /// The node's incarnation: a node restarted under the same name has a new creation.
    pub creation: u32,
    /// A hidden node does not join the full mesh.
    pub hidden: bool,
}

/// Why an acceptor refused a handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefuseReason {
    /// The two nodes' protocol version ranges do not meet.
    Version,
    /// The initiator's proof does not match the acceptor's cookie.
    BadCookie,
    /// The acceptor is already connected to that name (same creation).
    Duplicate,
    /// Both sides are connecting at once and the acceptor's own outgoing attempt wins.
    Simultaneous,
    /// The acceptor does not admit this peer; the text says why.
    NotAllowed(String),
}

impl fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefuseReason::Version => f.write_str("no protocol version in common"),
            RefuseReason::BadCookie => {
                f.write_str("the initiator's proof does not match the acceptor's cookie")
            }
            RefuseReason::Duplicate => {
                f.write_str("the acceptor is already connected to this node")
            }
            RefuseReason::Simultaneous => {
                f.write_str("simultaneous connect: the acceptor's own connection attempt wins")
            }
            RefuseReason::NotAllowed(why) => write!(f, "not allowed: {why}"),
        }
    }
}

/// One handshake message; each is one frame on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HandshakeMsg {
    /// Initiator -> acceptor, first: who I am, which versions I speak, my nonce.
    Hello {
        /// Oldest version the initiator speaks.
        min_version: u16,
        /// Newest version the initiator speaks.
        max_version: u16,
        /// The initiator's node name.
        name: String,
        /// The initiator's creation.
        creation: u32,
        /// Whether the initiator is a hidden node.
        hidden: bool,
        /// The initiator's fresh nonce, covered by the acceptor's MAC.
        nonce_i: Nonce,
    },
    /// Acceptor -> initiator after admission: the chosen version, who I am, my nonce.
    Challenge {
        /// The highest version both sides speak.
        version: u16,
        /// The acceptor's node name.
        name: String,
        /// The acceptor's creation.
        creation: u32,
        /// Whether the acceptor is a hidden node.
        hidden: bool,
        /// The acceptor's fresh nonce, covered by the initiator's MAC.
        nonce_a: Nonce,
    },
    /// Initiator -> acceptor: the initiator's MAC over the transcript.
    Proof {
        /// `mac_i` (see the module docs).
        mac: [u8; 32],
    },
    /// Acceptor -> initiator: the acceptor's MAC over the transcript; the handshake is done.
    Accept {
        /// `mac_a` (see the module docs).
        mac: [u8; 32],
    },
    /// Acceptor -> initiator: the handshake is refused; the connection will close.
    Refuse {
        /// Why.
        reason: RefuseReason,
    },
}

impl HandshakeMsg {
    /// The message's kind, for logs and errors: `"Hello"`, `"Challenge"`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            HandshakeMsg::Hello { .. } => "Hello",
            HandshakeMsg::Challenge { .. } => "Challenge",
            HandshakeMsg::Proof { .. } => "Proof",
            HandshakeMsg::Accept { .. } => "Accept",
            HandshakeMsg::Refuse { .. } => "Refuse",
        }
    }

    /// Encodes the message with postcard.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing these types into a Vec cannot fail (no maps, no unsupported types);
        // should it ever, the empty frame decodes as Malformed on the other side.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Decodes one message, checking it: the bytes must be exactly one message, names
    /// must pass [`check_node_name`] and a refusal text must be at most
    /// [`MAX_REASON_LEN`] bytes. Never panics, whatever the input.
    pub fn decode(bytes: &[u8]) -> Result<HandshakeMsg, HandshakeError> {
        let (msg, rest) = postcard::take_from_bytes::<HandshakeMsg>(bytes)
            .map_err(|e| HandshakeError::Malformed(format!("undecodable message: {e}")))?;
        if !rest.is_empty() {
            return Err(HandshakeError::Malformed(format!(
                "{} trailing bytes after a {} message",
                rest.len(),
                msg.kind()
            )));
        }
        msg.check()?;
        Ok(msg)
    }

    /// Checks the fields that a well-formed message must satisfy.
    fn check(&self) -> Result<(), HandshakeError> {
        match self {
            HandshakeMsg::Hello { name, .. } | HandshakeMsg::Challenge { name, .. } => {
                check_node_name(name).map_err(|why| {
                    HandshakeError::Malformed(format!(
                        "{} carries a bad node name: {why}",
                        self.kind()
                    ))
                })
            }
            HandshakeMsg::Refuse {
                reason: RefuseReason::NotAllowed(why),
            } if why.len() > MAX_REASON_LEN => Err(HandshakeError::Malformed(format!(
                "refusal text of {} bytes (at most {MAX_REASON_LEN})",
                why.len()
            ))),
            _ => Ok(()),
        }
    }
}

/// Checks a node name: `name@host`, 1 to [`MAX_NAME_LEN`] bytes, exactly one `@` with
/// something on both sides, no whitespace or control characters. The error says why.
pub fn check_node_name(name: &str) -> Result<(), NodeNameError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(NodeNameError::BadLength(name.to_owned()));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(NodeNameError::Whitespace(name.to_owned()));
    }
    match name.split_once('@') {
        Some((node, host)) if !node.is_empty() && !host.is_empty() && !host.contains('@') => Ok(()),
        _ => Err(NodeNameError::NoHost(name.to_owned())),
    }
}

/// Why a handshake failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// A message could not be decoded or carries invalid fields.
    Malformed(String),
    /// A message (or admission decision) arrived in a state that does not expect it.
    UnexpectedMessage {
        /// The state the machine was in.
        state: &'static str,
        /// The kind of message (or `"admission decision"`) that arrived.
        got: &'static str,
    },
    /// The acceptor refused the handshake (on the acceptor: it refused it itself).
    Refused(RefuseReason),
    /// The peer's MAC does not match our cookie.
    BadCookie,
    /// The initiator reached a node with another name than the one it meant to reach.
    WrongPeer {
        /// The name the initiator meant to reach.
        expected: String,
        /// The name the acceptor gave.
        got: String,
    },
    /// The acceptor chose a version outside the initiator's offer.
    NoCommonVersion,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Malformed(why) => write!(f, "malformed handshake message: {why}"),
            HandshakeError::UnexpectedMessage { state, got } => {
                write!(f, "unexpected {got} in handshake state {state}")
            }
            HandshakeError::Refused(reason) => write!(f, "handshake refused: {reason}"),
            HandshakeError::BadCookie => f.write_str(
                "the peer's proof does not match our cookie (the nodes' cookies differ, \
                 or the peer replayed an old handshake)",
            ),
            HandshakeError::WrongPeer { expected, got } => {
                write!(f, "meant to reach node {expected} but reached {got}")
            }
            HandshakeError::NoCommonVersion => {
                f.write_str("no handshake protocol version in common")
            }
        }
    }
}

impl std::error::Error for HandshakeError {}
