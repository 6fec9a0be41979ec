//! What connected nodes say to each other once the handshake is done.
//!
//! Each frame's first byte says what the rest is:
//! - `0`: one [`Wire`] message, postcard-encoded;
//! - `1`: the first fragment of a large message: message id (u64 LE), total length
//!   (u64 LE), then bytes;
//! - `2`: a further fragment: message id (u64 LE), then bytes.
//!
//! A message larger than [`FRAGMENT`] bytes goes out in fragments, interleaved with the
//! messages of other senders (see [`outbound`](super::outbound)), so a 64 MiB message
//! does not hold up small ones behind it. The receiver reassembles fragments by message
//! id (bounded: see [`Reassembly`]) and decodes the whole.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

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

/// A message between connected nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Wire {
    /// Keeps a quiet connection alive (failure detection).
    Tick,
    /// A signal to a process of the receiving node.
    Signal {
        /// The receiving process.
        to: Pid,
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
    },
    /// The answer to a spawn request: the new pid or why there is none.
    SpawnReply {
        /// The request's tag.
        reference: Ref,
        /// The requesting process.
        to: Pid,
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
    postcard::to_stdvec(msg).map_err(|e| format!("cannot encode: {e}"))
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
    buf.extend_from_slice(&[0, 0, 0, 0, KIND_WHOLE]);
    let mut out = postcard::to_extend(msg, buf).map_err(|e| format!("cannot encode: {e}"))?;
    let len = (out.len() - super::frame::HEADER) as u32;
    out[..super::frame::HEADER].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

/// Decodes a whole message.
pub fn decode(bytes: &[u8]) -> Result<Wire, WireError> {
    let (msg, rest) = postcard::take_from_bytes::<Wire>(bytes)
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    Ok(msg)
}

fn read_u64(bytes: &[u8], at: usize) -> Result<u64, WireError> {
    bytes
        .get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
        .ok_or_else(|| WireError::Malformed("fragment header truncated".into()))
}

/// Reassembles fragmented messages of one connection.
#[derive(Debug)]
pub struct Reassembly {
    partial: HashMap<u64, (usize, Vec<u8>)>,
    max_message: usize,
    max_partial: usize,
}

impl Reassembly {
    /// Accepts messages up to `max_message` bytes, at most `max_partial` at once.
    pub fn new(max_message: usize, max_partial: usize) -> Reassembly {
        Reassembly {
            partial: HashMap::new(),
            max_message,
            max_partial,
        }
    }

    /// Takes one frame's payload; returns a complete message when there is one.
    pub fn on_frame(&mut self, frame: &[u8]) -> Result<Option<Wire>, WireError> {
        let Some((&kind, body)) = frame.split_first() else {
            return Err(WireError::Malformed("empty frame".into()));
        };
        match kind {
            KIND_WHOLE => decode(body).map(Some),
            KIND_FIRST => {
                let id = read_u64(body, 0)?;
                let total = read_u64(body, 8)?;
                if total > self.max_message as u64 {
                    return Err(WireError::TooLarge {
                        size: total,
                        max: self.max_message,
                    });
                }
                if self.partial.len() >= self.max_partial {
                    return Err(WireError::TooManyFragmented(self.max_partial));
                }
                let total = total as usize;
                // Grow with the data actually received, not the announced size.
                let mut buf = Vec::with_capacity(total.min(4 * FRAGMENT));
                buf.extend_from_slice(&body[16..]);
                self.partial.insert(id, (total, buf));
                self.complete(id)
            }
            KIND_MORE => {
                let id = read_u64(body, 0)?;
                let Some((_, buf)) = self.partial.get_mut(&id) else {
                    return Err(WireError::Malformed(format!(
                        "fragment of unknown message {id}"
                    )));
                };
                buf.extend_from_slice(&body[8..]);
                self.complete(id)
            }
            other => Err(WireError::Malformed(format!("unknown frame kind {other}"))),
        }
    }

    fn complete(&mut self, id: u64) -> Result<Option<Wire>, WireError> {
        let (total, len) = match self.partial.get(&id) {
            Some((total, buf)) => (*total, buf.len()),
            None => return Ok(None),
        };
        if len > total {
            return Err(WireError::Malformed(format!(
                "message {id} longer than announced ({len} > {total})"
            )));
        }
        if len < total {
            return Ok(None);
        }
        let (_, buf) = self.partial.remove(&id).unwrap_or_default();
        decode(&buf).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::frame::{FrameDecoder, write_frame};
    use crate::node::outbound::Outbound;

    fn pid(n: u64) -> Pid {
        Pid::from_parts(Atom::new("w@localhost"), 1, n)
    }

    #[test]
    fn large_and_small_messages_survive_fragmentation() {
        let big = Wire::Signal {
            to: pid(1),
            signal: Signal::Message(Term::binary(&vec![7u8; 300_000])),
        };
        let small = Wire::Signal {
            to: pid(2),
            signal: Signal::Message(Term::Int(5)),
        };
        let mut out = Outbound::new();
        out.push(10, encode(&big).unwrap());
        out.push(11, encode(&small).unwrap());
        let mut wire = Vec::new();
        assert!(out.flush(&mut wire).unwrap());
        let mut dec = FrameDecoder::new(FRAGMENT + 64);
        dec.push(&wire);
        let mut re = Reassembly::new(1 << 20, 4);
        let mut got = Vec::new();
        while let Some(frame) = dec.next_frame().unwrap() {
            if let Some(m) = re.on_frame(frame).unwrap() {
                got.push(m);
            }
        }
        // The small message (another sender) overtakes the fragmented one.
        assert_eq!(got, vec![small, big]);
    }

    #[test]
    fn bad_frames_are_errors() {
        let mut re = Reassembly::new(1000, 1);
        assert!(re.on_frame(&[]).is_err());
        assert!(re.on_frame(&[9]).is_err());
        assert!(re.on_frame(&[KIND_WHOLE, 200, 200]).is_err());
        let mut first = vec![KIND_FIRST];
        first.extend_from_slice(&1u64.to_le_bytes());
        first.extend_from_slice(&5000u64.to_le_bytes());
        assert_eq!(
            re.on_frame(&first),
            Err(WireError::TooLarge {
                size: 5000,
                max: 1000
            })
        );
        let mut more = vec![KIND_MORE];
        more.extend_from_slice(&9u64.to_le_bytes());
        assert!(re.on_frame(&more).is_err());
        let mut frame = Vec::new();
        write_frame(&mut frame, b"x");
        assert_eq!(frame.len(), 5);
    }
}
