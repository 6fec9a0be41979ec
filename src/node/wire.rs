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
//!
//! A signal or spawn reply names its destination as a [`ToPid`] (creation and
//! number): it always goes to a process of the node that receives it, so the node's
//! name is left out.
//!
//! The I/O thread does not always decode a whole message at once: [`split_message`]
//! reads only the destination of a plain message (its term comes last), so small
//! ones can go to their process undecoded (see `node::delivery`); and a
//! large one is decoded from a buffer whose binaries share it instead of copying
//! ([`Reassembly::on_frame`]). The bytes on the wire are the same either way.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::rt::Signal;
use crate::term::codec::{SHARE_MIN, decode_sharing};
use crate::term::{Atom, BinBytes, Pid, Ref, Term};

/// Largest piece of a message sent in one frame.
pub const FRAGMENT: usize = 128 * 1024;

/// Frame kind: a whole message.
pub const KIND_WHOLE: u8 = 0;
/// Frame kind: the first fragment of a message.
pub const KIND_FIRST: u8 = 1;
/// Frame kind: a further fragment.
pub const KIND_MORE: u8 = 2;

/// A process of the receiving node, as a message addresses it: its creation and
/// number, the node being implied (a message only ever goes to the node it is sent
/// to). Written as two varints, so a small message carries no node name and the
/// receiver interns none: 13 of the 37 bytes of a `{msg, 42}` to `tb@localhost`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// A message between connected nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    encode_framed_onto(msg, &mut buf)?;
    Ok(buf)
}

/// [`encode_framed`] behind what `buf` already holds (a write buffer), which is left
/// as it was on error; the payload's length.
pub fn encode_framed_onto(msg: &Wire, buf: &mut Vec<u8>) -> Result<usize, String> {
    let start = buf.len();
    buf.extend_from_slice(&[0, 0, 0, 0, KIND_WHOLE]);
    if let Err(e) = postcard::serialize_with_flavor(msg, Append(buf)) {
        buf.truncate(start);
        return Err(format!("cannot encode: {e}"));
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

/// Postcard output appended to a `Vec` a slice at a time (`postcard::to_extend` goes
/// byte by byte: a 64 KiB binary cost more than its copy).
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
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

/// The destination and the term's bytes of a whole message that is a plain message to
/// a process (`Wire::Signal` with `Signal::Message`), without decoding the term: the
/// term comes last, so it is the rest of the message (`term::codec::decode_embedded`
/// reads it). `None` for any other message, or one whose head does not parse.
pub fn split_message(body: &[u8]) -> Option<(ToPid, &[u8])> {
    // Postcard writes an enum's variant as a varint, as it writes a u32.
    const WIRE_SIGNAL: u32 = 1;
    const SIGNAL_MESSAGE: u32 = 0;
    let (variant, rest) = postcard::take_from_bytes::<u32>(body).ok()?;
    if variant != WIRE_SIGNAL {
        return None;
    }
    let (to, rest) = postcard::take_from_bytes::<ToPid>(rest).ok()?;
    let (variant, term) = postcard::take_from_bytes::<u32>(rest).ok()?;
    (variant == SIGNAL_MESSAGE).then_some((to, term))
}

fn read_u64(bytes: &[u8], at: usize) -> Result<u64, WireError> {
    bytes
        .get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
        .ok_or_else(|| WireError::Malformed("fragment header truncated".into()))
}

/// Buffers of large whole messages that come back to a connection for reuse, at most
/// (64 KiB to 128 KiB each; let go when the connection is quiet).
const RETURNED_MAX: usize = 64;

/// Reassembles fragmented messages of one connection.
#[derive(Debug)]
pub struct Reassembly {
    partial: HashMap<u64, (usize, Vec<u8>)>,
    max_message: usize,
    max_partial: usize,
    /// Large whole messages are copied into a buffer of their own to be decoded:
    /// their binaries share it (no second copy), and it comes back here when the
    /// last of them is dropped, so a stream of 64 KiB messages allocates nothing per
    /// message. (Allocated here and freed by the receiving process's thread, 64 KiB
    /// blocks made glibc trim and page-fault this thread's heap over and over.)
    home: crossbeam_channel::Sender<Vec<u8>>,
    returned: crossbeam_channel::Receiver<Vec<u8>>,
}

impl Reassembly {
    /// Accepts messages up to `max_message` bytes, at most `max_partial` at once.
    pub fn new(max_message: usize, max_partial: usize) -> Reassembly {
        let (home, returned) = crossbeam_channel::bounded(RETURNED_MAX);
        Reassembly {
            partial: HashMap::new(),
            max_message,
            max_partial,
            home,
            returned,
        }
    }

    /// Takes one frame's payload; returns a complete message when there is one.
    pub fn on_frame(&mut self, frame: &[u8]) -> Result<Option<Wire>, WireError> {
        let Some((&kind, body)) = frame.split_first() else {
            return Err(WireError::Malformed("empty frame".into()));
        };
        match kind {
            KIND_WHOLE if body.len() >= SHARE_MIN => {
                let buf = self.pooled(body);
                decode_sharing(&buf, decode).map(Some)
            }
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
        decode_sharing(&Arc::new(BinBytes::new(buf, None)), decode).map(Some)
    }

    /// `bytes` in a buffer that comes back here when the last binary using it is
    /// dropped (one that came back, or a new one).
    fn pooled(&mut self, bytes: &[u8]) -> Arc<BinBytes> {
        let mut buf = self.returned.try_recv().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(bytes);
        Arc::new(BinBytes::new(buf, Some(self.home.clone())))
    }

    /// Lets the buffers that came back go (the connection has been quiet).
    pub fn trim(&mut self) {
        while self.returned.try_recv().is_ok() {}
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
            to: ToPid::of(pid(1)),
            signal: Signal::Message(Term::binary(&vec![7u8; 300_000])),
        };
        let small = Wire::Signal {
            to: ToPid::of(pid(2)),
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
    fn a_plain_message_splits_into_destination_and_term() {
        let term = Term::tuple(vec![Term::atom("msg"), Term::Int(-7), Term::Pid(pid(9))]);
        let msg = Wire::Signal {
            to: ToPid::of(pid(3)),
            signal: Signal::Message(term.clone()),
        };
        let bytes = encode(&msg).unwrap();
        let (to, rest) = split_message(&bytes).expect("a plain message");
        assert_eq!(to, ToPid::of(pid(3)));
        assert_eq!(to.on(Atom::new("w@localhost")), pid(3));
        assert_eq!(crate::term::codec::decode_embedded(rest), Ok(term));
        // Anything else is decoded whole.
        let others = [
            Wire::Tick,
            Wire::Signal {
                to: ToPid::of(pid(3)),
                signal: Signal::Link { from: pid(4) },
            },
            Wire::RegSend {
                from: pid(4),
                name: Atom::new("x"),
                msg: Term::Int(1),
            },
            Wire::Peers { nodes: vec![] },
        ];
        for other in others {
            assert_eq!(split_message(&encode(&other).unwrap()), None, "{other:?}");
        }
        assert_eq!(split_message(&[]), None);
        assert_eq!(split_message(&[1, 0xff]), None);
    }

    #[test]
    fn large_binaries_share_a_pooled_buffer_used_again_once_free() {
        let bin = |fill: u8| Term::binary(&vec![fill; 64 * 1024]);
        let frame = |fill: u8| {
            let msg = Wire::Signal {
                to: ToPid::of(pid(1)),
                signal: Signal::Message(Term::tuple(vec![Term::atom("msg"), bin(fill)])),
            };
            let mut f = vec![KIND_WHOLE];
            f.extend(encode(&msg).unwrap());
            f
        };
        let payload = |w: Wire| match w {
            Wire::Signal {
                signal: Signal::Message(Term::Tuple(t)),
                ..
            } => match &t[1] {
                Term::Binary(b) => b.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        let mut re = Reassembly::new(1 << 20, 4);
        let first = payload(re.on_frame(&frame(1)).unwrap().unwrap());
        assert_eq!(first.as_slice(), &vec![1u8; 64 * 1024][..]);
        let at = first.as_slice().as_ptr();
        // Still held: the next message gets another buffer, and both stay right.
        let second = payload(re.on_frame(&frame(2)).unwrap().unwrap());
        assert_ne!(second.as_slice().as_ptr(), at);
        assert_eq!(first.as_slice(), &vec![1u8; 64 * 1024][..]);
        assert_eq!(second.as_slice(), &vec![2u8; 64 * 1024][..]);
        // Let go: its buffer is used again, without a copy being made of it elsewhere.
        drop(first);
        let third = payload(re.on_frame(&frame(3)).unwrap().unwrap());
        assert_eq!(third.as_slice().as_ptr(), at);
        assert_eq!(third.as_slice(), &vec![3u8; 64 * 1024][..]);
        assert_eq!(second.as_slice(), &vec![2u8; 64 * 1024][..]);
        // A small binary is a copy of its own (it would pin the whole frame).
        let small = Wire::Signal {
            to: ToPid::of(pid(1)),
            signal: Signal::Message(Term::tuple(vec![
                Term::binary(&[5u8; 100]),
                Term::binary(&vec![6u8; 4000]),
            ])),
        };
        let mut f = vec![KIND_WHOLE];
        f.extend(encode(&small).unwrap());
        assert_eq!(re.on_frame(&f).unwrap(), Some(small));
    }

    #[test]
    fn a_small_message_is_judged_small_and_a_large_one_not() {
        let msg = |t: Term| Wire::Signal {
            to: ToPid::of(pid(1)),
            signal: Signal::Message(t),
        };
        let small = msg((Term::atom("msg"), 42).into());
        assert!(likely_small(&small, 1024));
        assert!(encode(&small).unwrap().len() <= 1024);
        assert!(!likely_small(&msg(Term::binary(&[0; 2000])), 1024));
        let many = Term::list(vec![Term::Int(1); 2000]);
        assert!(!likely_small(&msg(many), 1024));
        assert!(!likely_small(&msg(Term::list(vec![])), 1));
        assert!(likely_small(&Wire::Tick, 1024));
        assert!(!likely_small(&Wire::Peers { nodes: vec![] }, 1024));
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
