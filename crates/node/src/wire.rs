//! What connected nodes say to each other once the handshake is done: the frames and
//! the messages of the node protocol, byte by byte.
//!
//! # Frames
//!
//! Every frame is a 4-byte big-endian length, then that many bytes (see
//! [`frame`](super::frame)). The first frames of a connection are the handshake's, one
//! [`HandshakeMsg`](super::handshake::HandshakeMsg) each (their bytes are tabled in
//! [`handshake`](super::handshake)). After the handshake a frame's first byte, its
//! kind, says what the rest is:
//!
//! | kind | constant | the rest of the frame |
//! |---|---|---|
//! | 0 | [`KIND_WHOLE`] | one whole message |
//! | 1 | [`KIND_FIRST`] | the first fragment of a message: message id (u64, little-endian), the message's total length (u64, little-endian), its first bytes |
//! | 2 | [`KIND_MORE`] | a further fragment: message id (u64, little-endian), the next bytes |
//!
//! A message larger than [`FRAGMENT`] bytes goes out in fragments, interleaved with the
//! messages of other senders (see [`outbound`](super::outbound)), so a 64 MiB message
//! does not hold up small ones behind it. The receiver reassembles fragments by message
//! id (bounded: see [`Reassembly`]) and decodes the whole.
//!
//! # Messages
//!
//! A message is one tag byte ([`Tag`]), then the fields of its kind in the order shown,
//! each encoded as below; nothing follows the last field. A signal to a process names
//! its destination first, as `to`: it always goes to a process of the node that
//! receives it, so the node's name is left out ([`ToPid`]).
//!
//! | tag | kind | fields, in order | in memory |
//! |---|---|---|---|
//! | 0 | `Tick` | none | [`Wire::Tick`] |
//! | 1 | `Send` | to, message: term | [`Signal::Message`] |
//! | 2 | `Exit` | to, from: pid, reason: term | [`Signal::Exit`], `linked: false` (`exit(pid, reason)`) |
//! | 3 | `LinkExit` | to, from: pid, reason: term | [`Signal::Exit`], `linked: true` (a linked process exited) |
//! | 4 | `Link` | to, from: pid | [`Signal::Link`] |
//! | 5 | `Unlink` | to, from: pid | [`Signal::Unlink`] |
//! | 6 | `Monitor` | to, from: pid, reference: ref | [`Signal::Monitor`] |
//! | 7 | `Demonitor` | to, from: pid, reference: ref | [`Signal::Demonitor`] |
//! | 8 | `Down` | to, from: pid, reference: ref, reason: term | [`Signal::Down`] |
//! | 9 | `Info` | to, from: pid, reference: ref | [`Signal::Info`] |
//! | 10 | `RegSend` | from: pid, name: atom, message: term | [`Wire::RegSend`] |
//! | 11 | `SpawnRequest` | reference: ref, from: pid, module: atom, function: atom, link: flag, monitor: flag, group leader: flag (has one), then, if 1, a pid, args: count, then that many terms | [`Wire::SpawnRequest`] |
//! | 12 | `SpawnReply` | to, reference: ref, result: byte 0 then pid (the new process), or byte 1 then term (the error) | [`Wire::SpawnReply`] |
//! | 13 | `Peers` | count, then that many texts (node names) | [`Wire::Peers`] |
//! | 14 | `MonitorName` | to (`00 00`: the node itself), from: pid, name: atom, reference: ref | [`Signal::MonitorName`] |
//! | 15 | `DemonitorName` | to (`00 00`), from: pid, name: atom, reference: ref | [`Signal::DemonitorName`] |
//!
//! A `SpawnRequest` carries the spawner's group leader (OTP's `spawn_request` does
//! too): the new process takes it as its own, so what it prints goes back to where the
//! spawner's output goes (see `rt::io`), a pid of the spawner's node or any other;
//! flag 0 (the spawner has none) gives it the receiving node's default instead.
//!
//! `MonitorName` is `erlang:monitor(process, {name, node})` for a name on the node
//! that receives it (OTP's `MONITOR_P` with an atom for its target). It is addressed to
//! that node, not to a process: its `to` is creation 0, number 0 (`signal::node_pid`),
//! which no process has, and the receiver ignores it. The receiver looks `name`
//! up: a process registered there gets a `Monitor` from `from` (its exit later comes
//! back as a `Down` from its pid); no process, and a `Down` with reason `noproc` goes
//! back at once, from the receiver's system pid (creation, number 0). Either way the
//! watcher names the `DOWN` `{name, node}` by the reference. `DemonitorName` undoes it
//! (the receiver passes a `Demonitor` to whoever holds the name now). Both travel on
//! the stream of a `RegSend` to the same name, so a monitor set up before a call by
//! name reaches the server before the call does.
//!
//! The fields:
//! - **varint**: unsigned LEB128 (7 bits a byte, least significant first, the high bit
//!   set on every byte but the last), in its shortest form: at most 5 bytes for a
//!   32-bit value, 10 for a 64-bit one. A longer form, or a value too large for its
//!   field, is malformed. A **count** is a varint.
//! - **flag**: one byte, 0 (false) or 1 (true).
//! - **text**: its length in bytes (varint), then that many bytes of UTF-8. An **atom**
//!   is its text.
//! - **to** ([`ToPid`]): creation (varint, 32 bits), process number (varint, 64 bits).
//! - **pid**, **ref**: node name (text), creation (varint, 32 bits), number (varint, 64
//!   bits): the payload the term codec writes for a pid or a reference.
//! - **term**: as the term codec writes a term inside a message, without the version
//!   byte (its own table is in [`term::codec`](crate::term::codec)). A term that is
//!   the last field takes the rest of the message.
//!
//! For example `{msg, 42}` sent to the process numbered 300 of creation 3, as a frame:
//!
//! ```text
//! 00 00 00 0e      frame length: 14
//! 00               KIND_WHOLE
//! 01               Send
//! 03 ac 02         to: creation 3, number 300
//! 07 02            term: a tuple of 2 elements
//! 00 03 6d 73 67     the atom "msg"
//! 01 54              the integer 42 (zigzag: 84)
//! ```
//!
//! The encoding is written by hand (`codec`), so the order of the variants of [`Wire`]
//! or of [`Signal`] is not part of the protocol. Any change to these bytes is a new
//! protocol version, negotiated in the handshake
//! ([`MAX_VERSION`](super::handshake::MAX_VERSION)); `tests/node_wire_golden.rs` pins
//! the bytes of every frame and message kind, so no change goes unnoticed.
//!
//! # Decoding without decoding
//!
//! The I/O thread does not always decode a whole message at once: [`split_message`]
//! reads only the destination of a plain message (its term comes last), so small
//! ones can go to their process undecoded (see `node::delivery`); and a
//! large one is decoded from a buffer whose binaries share it instead of copying
//! ([`Reassembly::on_frame`]). The bytes on the wire are the same either way.

mod codec;
mod reassembly;

pub use reassembly::Reassembly;

use crate::rt::Signal;
use crate::term::{Atom, Pid, Ref, Term};

/// Largest piece of a message sent in one frame.
pub const FRAGMENT: usize = 128 * 1024;

/// Frame kind: a whole message.
pub const KIND_WHOLE: u8 = 0;
/// Frame kind: the first fragment of a message.
pub const KIND_FIRST: u8 = 1;
/// Frame kind: a further fragment.
pub const KIND_MORE: u8 = 2;

/// The first byte of a message: its kind (the table in the [module docs](self)).
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tag {
    /// [`Wire::Tick`].
    Tick = 0,
    /// [`Signal::Message`]: a plain message.
    Send = 1,
    /// [`Signal::Exit`] sent explicitly (`linked: false`).
    Exit = 2,
    /// [`Signal::Exit`] from a link (`linked: true`).
    LinkExit = 3,
    /// [`Signal::Link`].
    Link = 4,
    /// [`Signal::Unlink`].
    Unlink = 5,
    /// [`Signal::Monitor`].
    Monitor = 6,
    /// [`Signal::Demonitor`].
    Demonitor = 7,
    /// [`Signal::Down`].
    Down = 8,
    /// [`Signal::Info`].
    Info = 9,
    /// [`Wire::RegSend`].
    RegSend = 10,
    /// [`Wire::SpawnRequest`].
    SpawnRequest = 11,
    /// [`Wire::SpawnReply`].
    SpawnReply = 12,
    /// [`Wire::Peers`].
    Peers = 13,
    /// [`Signal::MonitorName`].
    MonitorName = 14,
    /// [`Signal::DemonitorName`].
    DemonitorName = 15,
}

impl Tag {
    /// Every tag, in the order of its byte.
    pub const ALL: [Tag; 16] = [
        Tag::Tick,
        Tag::Send,
        Tag::Exit,
        Tag::LinkExit,
        Tag::Link,
        Tag::Unlink,
        Tag::Monitor,
        Tag::Demonitor,
        Tag::Down,
        Tag::Info,
        Tag::RegSend,
        Tag::SpawnRequest,
        Tag::SpawnReply,
        Tag::Peers,
        Tag::MonitorName,
        Tag::DemonitorName,
    ];

    /// The tag whose byte is `byte`.
    pub fn from_byte(byte: u8) -> Option<Tag> {
        Tag::ALL.get(usize::from(byte)).copied()
    }

    /// The tag `msg` is sent with; an error for a [`Signal::Encoded`] batch, which
    /// exists only inside a node.
    #[doc(hidden)] // the encoder's; a program has no batch to ask about
    pub fn of(msg: &Wire) -> Result<Tag, String> {
        Ok(match msg {
            Wire::Tick => Tag::Tick,
            Wire::Signal { signal, .. } => match signal {
                Signal::Message(_) => Tag::Send,
                Signal::Exit { linked: false, .. } => Tag::Exit,
                Signal::Exit { linked: true, .. } => Tag::LinkExit,
                Signal::Link { .. } => Tag::Link,
                Signal::Unlink { .. } => Tag::Unlink,
                Signal::Monitor { .. } => Tag::Monitor,
                Signal::Demonitor { .. } => Tag::Demonitor,
                Signal::Down { .. } => Tag::Down,
                Signal::Info { .. } => Tag::Info,
                Signal::MonitorName { .. } => Tag::MonitorName,
                Signal::DemonitorName { .. } => Tag::DemonitorName,
                Signal::Encoded(_) => {
                    return Err("cannot encode: undecoded messages are never sent on".into());
                }
            },
            Wire::RegSend { .. } => Tag::RegSend,
            Wire::SpawnRequest { .. } => Tag::SpawnRequest,
            Wire::SpawnReply { .. } => Tag::SpawnReply,
            Wire::Peers { .. } => Tag::Peers,
        })
    }
}

/// A process of the receiving node, as a message addresses it: its creation and
/// number, the node being implied (a message only ever goes to the node it is sent
/// to). Written as two varints, so a small message carries no node name and the
/// receiver interns none: 3 of the 14 bytes of a `{msg, 42}` to process 300.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ToPid {
    /// The creation (incarnation) of the node the pid was made by.
    pub creation: u32,
    /// The process number.
    pub id: u64,
}

impl ToPid {
    /// How a message to `pid` (a process of the peer) names it.
    pub fn of(pid: Pid) -> ToPid {
        ToPid {
            creation: pid.creation(),
            id: pid.id(),
        }
    }

    /// The pid on the receiving node, `node`.
    pub fn on(self, node: Atom) -> Pid {
        Pid::from_parts(node, self.creation, self.id)
    }
}

/// A message between connected nodes, as the node layer handles it (its bytes: the
/// [module docs](self)).
#[derive(Clone, Debug, PartialEq)]
pub enum Wire {
    /// Keeps a quiet connection alive (failure detection).
    Tick,
    /// A signal to a process of the receiving node.
    Signal {
        /// The receiving process.
        to: ToPid,
        /// What it gets.
        signal: Signal,
    },
    /// A message to a name registered on the receiving node.
    RegSend {
        /// The sender.
        from: Pid,
        /// The registered name.
        name: Atom,
        /// The message.
        msg: Term,
    },
    /// Spawn a registered function on the receiving node.
    SpawnRequest {
        /// Tags the reply.
        reference: Ref,
        /// The requesting process.
        from: Pid,
        /// Module.
        module: Atom,
        /// Function.
        function: Atom,
        /// Arguments.
        args: Vec<Term>,
        /// Link the new process to `from`.
        link: bool,
        /// Monitor the new process from `from` (under `reference`).
        monitor: bool,
        /// The new process's group leader: the spawner's (`None`: the receiving
        /// node's default).
        group_leader: Option<Pid>,
    },
    /// The answer to a spawn request: the new pid or why there is none.
    SpawnReply {
        /// The request's tag.
        reference: Ref,
        /// The requesting process.
        to: ToPid,
        /// The new process, or the error.
        result: Result<Pid, Term>,
    },
    /// The visible nodes the sender is connected to (for the transitive mesh).
    Peers {
        /// Their names.
        nodes: Vec<String>,
    },
}

/// Why an incoming frame can't be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The frame or message does not parse.
    Malformed(String),
    /// A reassembled message would exceed the limit.
    TooLarge {
        /// Its announced size.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// Too many messages in reassembly at once.
    TooManyFragmented(usize),
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WireError::Malformed(why) => write!(f, "malformed message: {why}"),
            WireError::TooLarge { size, max } => {
                write!(f, "message of {size} bytes exceeds the limit of {max}")
            }
            WireError::TooManyFragmented(n) => {
                write!(f, "more than {n} fragmented messages in flight")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// Encodes a message (without frame or kind byte).
pub fn encode(msg: &Wire) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    codec::encode_onto(msg, &mut buf)?;
    Ok(buf)
}

/// Bytes in front of a message encoded by [`encode_framed`]: the frame length and
/// the kind byte.
pub const FRAMED_PREFIX: usize = super::frame::HEADER + 1;

/// Encodes `msg` into `buf` (cleared first; its capacity is reused) behind room for
/// its frame header, already filled in for a whole message (`KIND_WHOLE`, payload
/// length + 1), so a message that goes out in one frame is written from this very
/// buffer. The payload is `[FRAMED_PREFIX..]`.
pub fn encode_framed(msg: &Wire, mut buf: Vec<u8>) -> Result<Vec<u8>, String> {
    buf.clear();
    encode_framed_onto(msg, &mut buf)?;
    Ok(buf)
}

/// [`encode_framed`] behind what `buf` already holds (a write buffer), which is left
/// as it was on error; the payload's length.
#[doc(hidden)] // the connection's write path
pub fn encode_framed_onto(msg: &Wire, buf: &mut Vec<u8>) -> Result<usize, String> {
    let start = buf.len();
    buf.extend_from_slice(&[0, 0, 0, 0, KIND_WHOLE]);
    if let Err(e) = codec::encode_onto(msg, buf) {
        buf.truncate(start);
        return Err(e);
    }
    let len = (buf.len() - start - super::frame::HEADER) as u32;
    buf[start..start + super::frame::HEADER].copy_from_slice(&len.to_be_bytes());
    Ok(buf.len() - start - FRAMED_PREFIX)
}

/// Whether `msg` is surely small: its encoding is at most about `budget` bytes, by a
/// quick look at its term (a string or binary counts its length, a container its
/// elements; a map or anything long says no). For choosing a path only: a message
/// judged small may still come out larger.
pub fn likely_small(msg: &Wire, budget: usize) -> bool {
    fn term(t: &Term, left: &mut usize) -> bool {
        let cost = match t {
            Term::Atom(a) => a.as_str().len() + 2,
            Term::Int(_) | Term::Float(_) => 10,
            Term::Binary(b) => b.len() + 5,
            Term::Str(s) => s.len() + 5,
            Term::Pid(p) => p.node().as_str().len() + 16,
            Term::Ref(r) => r.node().as_str().len() + 16,
            Term::Tuple(elems) | Term::List(elems) => {
                let Some(l) = left.checked_sub(2 + elems.len()) else {
                    return false;
                };
                *left = l + elems.len();
                return elems.iter().all(|e| term(e, left));
            }
            Term::Map(_) => return false,
        };
        *left = match left.checked_sub(cost) {
            Some(l) => l,
            None => return false,
        };
        true
    }
    let mut left = budget;
    match msg {
        Wire::Tick => true,
        Wire::Signal { signal, .. } => match signal {
            Signal::Message(t)
            | Signal::Exit { reason: t, .. }
            | Signal::Down { reason: t, .. } => term(t, &mut left),
            Signal::Encoded(_) => false,
            _ => true,
        },
        Wire::RegSend { msg, .. } => term(msg, &mut left),
        _ => false,
    }
}

/// Decodes a whole message.
pub fn decode(bytes: &[u8]) -> Result<Wire, WireError> {
    codec::decode(bytes).map_err(WireError::Malformed)
}

/// The destination and the term's bytes of a whole message that is a plain message to
/// a process (a `Send`: `Wire::Signal` with `Signal::Message`), without decoding the
/// term: the term comes last, so it is the rest of the message
/// (`term::codec::decode_embedded` reads it). `None` for any other message, or one
/// whose head does not parse.
pub fn split_message(body: &[u8]) -> Option<(ToPid, &[u8])> {
    codec::split_send(body)
}

#[cfg(test)]
mod tests;
