//! The wire form of terms between nodes.
//!
//! # Frame
//!
//! A frame is one version byte ([`CODEC_VERSION`]) followed by the term's postcard
//! encoding. [`decode`] checks, in this order: the frame's size against
//! [`Limits::max_size`], that there is a version byte, that it is one this node speaks, the
//! body (never nesting deeper than [`Limits::max_depth`]), and that no bytes are left over.
//!
//! # Body
//!
//! A term is a serde enum: the variant index (a postcard varint), then its payload.
//!
//! | index | variant  | payload                                                        |
//! |-------|----------|----------------------------------------------------------------|
//! | 0     | `Atom`   | the atom's text (table indices differ between OS processes)     |
//! | 1     | `Int`    | `i64` (zigzag varint)                                           |
//! | 2     | `Float`  | `f64` (8 bytes, little-endian bits: NaN payloads and `-0.0` survive) |
//! | 3     | `Binary` | bytes (length, then the bytes)                                  |
//! | 4     | `Str`    | UTF-8 text (length, then the bytes)                             |
//! | 5     | `Pid`    | node text, creation `u32`, id `u64`                             |
//! | 6     | `Ref`    | node text, creation `u32`, id `u64`                             |
//! | 7     | `Tuple`  | a sequence of terms                                             |
//! | 8     | `List`   | a sequence of terms                                             |
//! | 9     | `Map`    | a sequence of (key, value) pairs                                |
//!
//! The outermost term is also wrapped in a newtype struct named `$oxbeam::Term`, which
//! postcard writes as nothing; [`to_term`](super::to_term) recognises the name so that a
//! `Term` inside a user's struct converts to itself rather than to its enum form. Terms
//! inside containers are written as the bare enum (one fewer stack frame per level).
//!
//! # Untrusted input
//!
//! Postcard has no nesting limit, so a frame of 100 000 nested tuple headers would
//! overflow the stack of a recursive decoder. The decoder is a [`DeserializeSeed`]
//! ([`TermSeed`]) carrying the depth still allowed; a tuple, list or map deeper than that is
//! [`CodecError::TooDeep`], before anything below it is read. Atoms are interned with
//! [`Atom::try_new`], so an overlong atom or a full atom table is an error. Length prefixes
//! are never trusted for allocation: postcard checks a byte string's length against the
//! input before borrowing it, and sequences grow as elements actually arrive.
//!
//! Postcard keeps no message for errors raised by `Serialize`/`Deserialize` impls, so
//! [`encode`] and [`decode`] record the first such error in a slot beside the seed and
//! return it in place of postcard's generic one.

mod de;
mod fast;
mod ser;

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeSeed;
use serde::{Deserialize, Serialize};

use super::atom::Atom;
use super::pid::{Pid, Ref};
use super::{BinBytes, Binary, Term};
use ser::Enc;

/// The version byte that starts every frame.
pub const CODEC_VERSION: u8 = 1;
/// How many tuples, lists and maps may nest, by default.
pub const DEFAULT_MAX_DEPTH: usize = 256;
/// The largest frame, in bytes (version byte included), by default.
pub const DEFAULT_MAX_SIZE: usize = 64 << 20;

/// Newtype-struct name wrapped around every encoded term (see the module docs).
pub(crate) const TERM_MARKER: &str = "$oxbeam::Term";
/// Newtype-struct name of a serialized [`Pid`].
pub(crate) const PID_MARKER: &str = "$oxbeam::Pid";
/// Newtype-struct name of a serialized [`Ref`].
pub(crate) const REF_MARKER: &str = "$oxbeam::Ref";
/// Newtype-struct name of a serialized [`Atom`].
pub(crate) const ATOM_MARKER: &str = "$oxbeam::Atom";

const TERM_ENUM: &str = "Term";
const VARIANTS: &[&str] = &[
    "Atom", "Int", "Float", "Binary", "Str", "Pid", "Ref", "Tuple", "List", "Map",
];
/// At most this many elements are reserved ahead of a sequence's elements arriving.
const MAX_PREALLOC: usize = 4096;

/// The variant index of each kind of term on the wire.
pub(crate) mod tag {
    pub const ATOM: u32 = 0;
    pub const INT: u32 = 1;
    pub const FLOAT: u32 = 2;
    pub const BINARY: u32 = 3;
    pub const STR: u32 = 4;
    pub const PID: u32 = 5;
    pub const REF: u32 = 6;
    pub const TUPLE: u32 = 7;
    pub const LIST: u32 = 8;
    pub const MAP: u32 = 9;
}

/// The wire variant index of `t`.
pub(crate) fn tag_of(t: &Term) -> u32 {
    match t {
        Term::Atom(_) => tag::ATOM,
        Term::Int(_) => tag::INT,
        Term::Float(_) => tag::FLOAT,
        Term::Binary(_) => tag::BINARY,
        Term::Str(_) => tag::STR,
        Term::Pid(_) => tag::PID,
        Term::Ref(_) => tag::REF,
        Term::Tuple(_) => tag::TUPLE,
        Term::List(_) => tag::LIST,
        Term::Map(_) => tag::MAP,
    }
}

/// Limits applied to one frame.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest frame in bytes, version byte included.
    pub max_size: usize,
    /// How many tuples, lists and maps may nest (`0`: scalars only).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_size: DEFAULT_MAX_SIZE,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// Why a term could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum CodecError {
    /// The frame has no bytes at all (not even the version byte).
    Empty,
    /// The frame starts with a version byte this node does not speak.
    BadVersion(u8),
    /// The frame is (or would be) `size` bytes, over the `max` allowed.
    TooLarge {
        /// The frame's size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Tuples, lists and maps nest deeper than `max`.
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// The bytes are not a term (truncated, unknown variant, invalid UTF-8, ...).
    Malformed(String),
    /// A whole term was decoded but this many bytes followed it.
    TrailingBytes(usize),
    /// An atom could not be interned (too long, or the atom table is full).
    Atom(String),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Empty => f.write_str("empty frame: no version byte"),
            CodecError::BadVersion(v) => {
                write!(
                    f,
                    "frame has codec version {v}; this node speaks version {CODEC_VERSION}"
                )
            }
            CodecError::TooLarge { size, max } => {
                write!(f, "frame of {size} bytes exceeds the limit of {max} bytes")
            }
            CodecError::TooDeep { max } => {
                write!(
                    f,
                    "term nests tuples, lists or maps deeper than the limit of {max}"
                )
            }
            CodecError::Malformed(why) => write!(f, "malformed term: {why}"),
            CodecError::TrailingBytes(n) => write!(f, "{n} bytes left over after the term"),
            CodecError::Atom(why) => write!(f, "cannot intern atom: {why}"),
        }
    }
}

impl std::error::Error for CodecError {}

/// Where a seed records the first error it raised (postcard would drop the message).
type ErrorSlot = Cell<Option<CodecError>>;

/// Records `err` in `slot` unless an earlier error is there, and returns it.
fn report(slot: Option<&ErrorSlot>, err: CodecError) -> CodecError {
    if let Some(slot) = slot {
        let first = slot.take();
        slot.set(Some(first.unwrap_or_else(|| err.clone())));
    }
    err
}

/// The state threaded through encoding and decoding: how much deeper terms may nest.
#[derive(Clone, Copy)]
struct Ctx<'s> {
    /// Containers that may still nest below this point.
    remaining: usize,
    /// The limit as configured, for the error message.
    max: usize,
    slot: Option<&'s ErrorSlot>,
}

impl<'s> Ctx<'s> {
    fn new(max: usize, slot: Option<&'s ErrorSlot>) -> Ctx<'s> {
        Ctx {
            remaining: max,
            max,
            slot,
        }
    }

    /// The context for the elements of a container at this point.
    fn enter(self) -> Result<Ctx<'s>, CodecError> {
        match self.remaining.checked_sub(1) {
            Some(remaining) => Ok(Ctx { remaining, ..self }),
            None => Err(report(self.slot, CodecError::TooDeep { max: self.max })),
        }
    }
}

/// A term serialized with a nesting limit other than [`DEFAULT_MAX_DEPTH`]: the
/// encoding-side counterpart of [`TermSeed`], for terms inside the node layer's messages.
#[derive(Debug, Clone, Copy)]
pub struct DepthLimited<'a> {
    /// The term.
    pub term: &'a Term,
    /// How many tuples, lists and maps may nest; deeper is a serialization error.
    pub max_depth: usize,
}

/// A `Vec` flavor that stops storing bytes past the limit but keeps counting them, so an
/// oversized term is reported with its exact size without being buffered.
struct Capped<'a> {
    out: &'a mut Vec<u8>,
    size: usize,
    max: usize,
}

impl postcard::ser_flavors::Flavor for Capped<'_> {
    type Output = usize;

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.try_extend(&[byte])
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let size = self.size.saturating_add(data.len());
        if size <= self.max {
            self.out.extend_from_slice(data);
        }
        self.size = size;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.size)
    }
}

/// Encodes `term` as a frame: the version byte, then the postcard body.
///
/// Fails with [`CodecError::TooDeep`] if tuples, lists and maps nest deeper than
/// `limits.max_depth` (checked while encoding), and with [`CodecError::TooLarge`] (giving
/// the exact size) if the frame would exceed `limits.max_size`.
pub fn encode(term: &Term, limits: &Limits) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    encode_into(term, &mut out, limits)?;
    Ok(out)
}

/// Appends the frame for `term` to `out`, as [`encode`]; on error `out` is left as it was.
pub fn encode_into(term: &Term, out: &mut Vec<u8>, limits: &Limits) -> Result<(), CodecError> {
    let start = out.len();
    let slot = ErrorSlot::default();
    let enc = Enc {
        term,
        ctx: Ctx::new(limits.max_depth, Some(&slot)),
    };
    let mut flavor = Capped {
        out,
        size: 0,
        max: limits.max_size,
    };
    let result = postcard::ser_flavors::Flavor::try_push(&mut flavor, CODEC_VERSION)
        .and_then(|()| postcard::serialize_with_flavor(&enc, flavor));
    let err = match result {
        Ok(size) if size <= limits.max_size => return Ok(()),
        Ok(size) => CodecError::TooLarge {
            size,
            max: limits.max_size,
        },
        Err(e) => slot
            .take()
            .unwrap_or_else(|| CodecError::Malformed(format!("cannot encode term: {e}"))),
    };
    out.truncate(start);
    Err(err)
}

/// Binaries at least this long decoded by [`decode_sharing`] share its input.
pub const SHARE_MIN: usize = 1024;

thread_local! {
    /// The input [`decode_sharing`] is decoding, if any.
    static SHARED_INPUT: std::cell::RefCell<Option<Arc<BinBytes>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `decode` on `input` so that every binary of at least [`SHARE_MIN`] bytes that
/// it decodes is a slice of `input` instead of a copy (a distribution frame read into
/// a buffer of its own: its 64 KiB payload is not copied again, and not allocated on
/// the reading thread to be freed on another).
#[doc(hidden)] // the node layer's read path
pub fn decode_sharing<T>(input: &Arc<BinBytes>, decode: impl FnOnce(&[u8]) -> T) -> T {
    let previous = SHARED_INPUT.with(|s| s.replace(Some(input.clone())));
    let out = decode(input);
    SHARED_INPUT.with(|s| *s.borrow_mut() = previous);
    out
}

/// `bytes` as a slice of the input of the [`decode_sharing`] running on this thread,
/// if they lie in it and are long enough to be worth it.
pub(crate) fn shared_binary(bytes: &[u8]) -> Option<Binary> {
    if bytes.len() < SHARE_MIN {
        return None;
    }
    SHARED_INPUT.with(|s| {
        let input = s.borrow();
        let input = input.as_ref()?;
        // Where `bytes` starts in `input`, by address (no unsafe: only compared).
        let start = (bytes.as_ptr() as usize).checked_sub(input.as_ptr() as usize)?;
        Binary::shared(input, start..start + bytes.len())
            .filter(|b| b.as_slice().as_ptr() == bytes.as_ptr())
    })
}

/// Decodes a term as it lies inside a node-to-node message (postcard, no version
/// byte, at most [`DEFAULT_MAX_DEPTH`] deep), with nothing after it.
/// The common small terms are read by a direct decoder (`fast`), the rest (and every
/// error) by the general one.
#[doc(hidden)] // the node layer's read path; programs use `decode`
pub fn decode_embedded(bytes: &[u8]) -> Result<Term, String> {
    match fast::decode(bytes) {
        Some(term) => Ok(term),
        None => decode_embedded_general(bytes),
    }
}

/// [`decode_embedded`] through serde alone.
fn decode_embedded_general(bytes: &[u8]) -> Result<Term, String> {
    match postcard::take_from_bytes::<Term>(bytes) {
        Ok((term, [])) => Ok(term),
        Ok((_, rest)) => Err(format!("{} trailing bytes", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

/// Decodes one frame made by [`encode`]: checks its size, version byte, nesting depth,
/// and that nothing follows the term.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Term, CodecError> {
    if bytes.len() > limits.max_size {
        return Err(CodecError::TooLarge {
            size: bytes.len(),
            max: limits.max_size,
        });
    }
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version != CODEC_VERSION {
        return Err(CodecError::BadVersion(version));
    }
    let slot = ErrorSlot::default();
    let mut de = postcard::Deserializer::from_bytes(body);
    let malformed = |e: postcard::Error, slot: &ErrorSlot| {
        slot.take()
            .unwrap_or_else(|| CodecError::Malformed(e.to_string()))
    };
    let term = Ctx::new(limits.max_depth, Some(&slot))
        .deserialize(&mut de)
        .map_err(|e| malformed(e, &slot))?;
    let rest = de.finalize().map_err(|e| malformed(e, &slot))?;
    if !rest.is_empty() {
        return Err(CodecError::TrailingBytes(rest.len()));
    }
    Ok(term)
}

/// Deserializes a [`Term`] nested at most `max_depth` tuples, lists and maps deep, so the
/// node layer can embed terms inside its own postcard messages:
///
/// ```
/// use oxbeam_term::codec::TermSeed;
/// use oxbeam_term::Term;
/// use serde::de::{Deserialize, DeserializeSeed};
///
/// let bytes = postcard::to_allocvec(&(7u32, Term::atom("hello"))).unwrap();
/// let mut de = postcard::Deserializer::from_bytes(&bytes);
/// let seq = u32::deserialize(&mut de).unwrap();
/// let term = TermSeed { max_depth: 16 }.deserialize(&mut de).unwrap();
/// assert_eq!((seq, term), (7, Term::atom("hello")));
/// ```
///
/// Exceeding the depth is a deserialization error, never a stack overflow. (Postcard
/// drops the error's message; [`decode`] keeps it.) Each level still costs stack while
/// decoding: measured, about 2 KB per tuple or list and 4 KB per map in a debug build,
/// under 1.5 KB in a release build, so [`DEFAULT_MAX_DEPTH`] fits in a 2 MB thread stack
/// with room to spare; size a larger limit against the decoding thread's stack.
#[derive(Debug, Clone, Copy)]
pub struct TermSeed {
    /// How many tuples, lists and maps may nest (`0`: scalars only).
    pub max_depth: usize,
}

impl Default for TermSeed {
    fn default() -> TermSeed {
        TermSeed {
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// For [`to_term`](crate::to_term): if `name` is one of the marker newtypes above, the
/// term `value` stands for. `value` is the newtype's content, whose exact serde shape is
/// private to this module, so it is rebuilt by a round trip through postcard.
pub(crate) fn rebuild_marked<T: Serialize + ?Sized>(
    name: &str,
    value: &T,
) -> Option<Result<Term, String>> {
    fn run<T: Serialize + ?Sized, V: for<'de> Deserialize<'de>>(
        value: &T,
        what: &str,
    ) -> Result<V, String> {
        let bytes = postcard::to_allocvec(value).map_err(|e| {
            let hint = if what == "term" {
                format!(" (terms nested deeper than {DEFAULT_MAX_DEPTH} cannot be converted)")
            } else {
                String::new()
            };
            format!("cannot convert embedded {what}: {e}{hint}")
        })?;
        postcard::from_bytes(&bytes).map_err(|e| format!("cannot convert embedded {what}: {e}"))
    }
    Some(match name {
        TERM_MARKER => run::<T, Term>(value, "term"),
        PID_MARKER => run::<T, Pid>(value, "pid").map(Term::Pid),
        REF_MARKER => run::<T, Ref>(value, "reference").map(Term::Ref),
        ATOM_MARKER => run::<T, Atom>(value, "atom").map(Term::Atom),
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
