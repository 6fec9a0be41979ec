//! Terms: the Erlang data model as a Rust value.
//!
//! A [`Term`] is what processes send each other: atoms (interned), 64-bit integers,
//! floats, binaries (shared, sliced without copying), strings, pids, references, tuples,
//! lists and maps. Cloning a term is cheap (reference counts, never a deep copy), so a local
//! send never serialises or copies.
//!
//! - [`atom`]: the atom table; [`pid`]: pids, refs and how they print.
//! - [`display`]: Elixir's `inspect` format (`{:hello, :node1@localhost}`).
//! - [`codec`]: the wire form (postcard, with a version byte, a size limit and a nesting
//!   limit) used between nodes.
//! - [`serde_term`]: any `serde` type to and from a term ([`to_term`], [`from_term`]).
//! - the [`term!`](crate::term!) macro builds terms from a short literal syntax.
//!
//! Terms are totally ordered by Erlang's term order (number < atom < reference < pid <
//! tuple < map < list < binary), with `==` being exact equality (`=:=`: `1` and `1.0`
//! differ), so they key `BTreeMap`s, `HashMap`s and tables.
//!
//! `term` is the bottom layer: it sees no other oxbeam crate (`tests/workspace_layers.rs` checks the whole graph):
//! ```compile_fail
//! use oxbeam_rt::Node;
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod atom;
pub mod codec;
pub mod display;
mod macros;
pub mod pid;
pub mod serde_term;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

pub use atom::Atom;
pub use codec::CodecError;
pub use pid::{Pid, Ref};
pub use serde_term::{TermConvError, from_term, to_term};

/// A binary: shared bytes, sliced without copying.
///
/// Sixteen bytes (one thin pointer and two 32-bit offsets), so that a [`Term`] is 24
/// bytes: every tuple element, list element and queued message is a `Term`, and their
/// size is most of the memory a message costs. A binary holds at most `u32::MAX` bytes
/// (4 GiB; a distribution frame is far smaller).
#[derive(Clone)]
pub struct Binary {
    data: Arc<BinBytes>,
    start: u32,
    end: u32,
}

/// The bytes binaries share, and where they go when the last binary using them is
/// dropped: a connection's I/O thread reads large messages into buffers that come
/// back to it this way (see `node::wire::Reassembly`), so a stream of large messages
/// allocates and frees nothing per message.
pub struct BinBytes {
    bytes: Vec<u8>,
    home: Option<crossbeam_channel::Sender<Vec<u8>>>,
}

impl BinBytes {
    /// `bytes`, handed to `home` (if it has room) instead of freed when dropped.
    pub fn new(bytes: Vec<u8>, home: Option<crossbeam_channel::Sender<Vec<u8>>>) -> BinBytes {
        BinBytes { bytes, home }
    }
}

impl std::ops::Deref for BinBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for BinBytes {
    fn drop(&mut self) {
        if let Some(home) = &self.home {
            let _ = home.try_send(std::mem::take(&mut self.bytes));
        }
    }
}

impl Binary {
    /// The most bytes one binary holds.
    pub const MAX_LEN: usize = u32::MAX as usize;

    /// A binary holding a copy of `bytes`.
    ///
    /// # Panics
    /// If `bytes` is longer than [`Binary::MAX_LEN`].
    pub fn from_slice(bytes: &[u8]) -> Binary {
        Binary::from(bytes.to_vec())
    }

    /// A binary of `range` of `data`, sharing it (no copy); `None` if out of bounds.
    pub fn shared(data: &Arc<BinBytes>, range: std::ops::Range<usize>) -> Option<Binary> {
        if range.start > range.end || range.end > data.len() {
            return None;
        }
        Some(Binary {
            data: data.clone(),
            start: u32::try_from(range.start).ok()?,
            end: u32::try_from(range.end).ok()?,
        })
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.data[self.start as usize..self.end as usize]
    }

    /// A sub-binary of `range` sharing the same bytes; `None` if out of bounds.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Option<Binary> {
        if range.start > range.end || range.end > self.len() {
            return None;
        }
        // In bounds of a binary whose offsets fit in u32, so these do too.
        Some(Binary {
            data: self.data.clone(),
            start: self.start + range.start as u32,
            end: self.start + range.end as u32,
        })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// Whether the binary is empty.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

impl std::ops::Deref for Binary {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Binary {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}
impl Eq for Binary {}

impl From<Vec<u8>> for Binary {
    /// Takes the bytes over without copying them.
    ///
    /// # Panics
    /// If `v` is longer than [`Binary::MAX_LEN`].
    fn from(v: Vec<u8>) -> Binary {
        let end = u32::try_from(v.len()).unwrap_or_else(|_| {
            panic!(
                "a binary of {} bytes: at most {} are allowed",
                v.len(),
                Binary::MAX_LEN
            )
        });
        Binary {
            data: Arc::new(BinBytes::new(v, None)),
            start: 0,
            end,
        }
    }
}

/// An Erlang term.
#[derive(Clone)]
pub enum Term {
    /// `:ok`
    Atom(Atom),
    /// A 64-bit integer (bignums are not supported).
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// `<<1, 2, 3>>`
    Binary(Binary),
    /// `"text"` (an Elixir string: a UTF-8 binary that prints as text).
    Str(Arc<str>),
    /// `#PID<0.90.0>`
    Pid(Pid),
    /// `#Reference<...>`
    Ref(Ref),
    /// `{a, b}`
    Tuple(Arc<[Term]>),
    /// `[a, b]` (proper lists only).
    List(Arc<[Term]>),
    /// `%{k => v}`
    Map(Arc<BTreeMap<Term, Term>>),
}

impl Term {
    /// The atom `name`.
    pub fn atom(name: &str) -> Term {
        Term::Atom(Atom::new(name))
    }

    /// `:ok`
    pub fn ok() -> Term {
        Term::Atom(Atom::OK)
    }

    /// `nil`
    pub fn nil() -> Term {
        Term::Atom(Atom::NIL)
    }

    /// A tuple of `elems`.
    pub fn tuple(elems: impl Into<Vec<Term>>) -> Term {
        Term::Tuple(Arc::from(elems.into()))
    }

    /// A list of `elems`.
    pub fn list(elems: impl Into<Vec<Term>>) -> Term {
        Term::List(Arc::from(elems.into()))
    }

    /// A map of `pairs`.
    pub fn map(pairs: impl IntoIterator<Item = (Term, Term)>) -> Term {
        Term::Map(Arc::new(pairs.into_iter().collect()))
    }

    /// A string.
    pub fn str(s: &str) -> Term {
        Term::Str(Arc::from(s))
    }

    /// A binary holding a copy of `bytes`.
    pub fn binary(bytes: &[u8]) -> Term {
        Term::Binary(Binary::from_slice(bytes))
    }

    /// The atom, if this is one.
    pub fn as_atom(&self) -> Option<Atom> {
        match self {
            Term::Atom(a) => Some(*a),
            _ => None,
        }
    }

    /// Whether this is the atom `name`.
    pub fn is_atom(&self, name: &str) -> bool {
        matches!(self, Term::Atom(a) if a.as_str() == name)
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Term::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The float, if this is one.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Term::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The pid, if this is one.
    pub fn as_pid(&self) -> Option<Pid> {
        match self {
            Term::Pid(p) => Some(*p),
            _ => None,
        }
    }

    /// The reference, if this is one.
    pub fn as_ref(&self) -> Option<Ref> {
        match self {
            Term::Ref(r) => Some(*r),
            _ => None,
        }
    }

    /// The text of a string (or of a binary that is valid UTF-8).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Term::Str(s) => Some(s),
            Term::Binary(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The bytes of a binary or string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Term::Binary(b) => Some(b),
            Term::Str(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The elements of a tuple.
    pub fn as_tuple(&self) -> Option<&[Term]> {
        match self {
            Term::Tuple(t) => Some(t),
            _ => None,
        }
    }

    /// The elements of a list.
    pub fn as_list(&self) -> Option<&[Term]> {
        match self {
            Term::List(l) => Some(l),
            _ => None,
        }
    }

    /// The map, if this is one.
    pub fn as_map(&self) -> Option<&BTreeMap<Term, Term>> {
        match self {
            Term::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The elements of a tuple whose first element is the atom `tag`.
    pub fn tagged(&self, tag: &str) -> Option<&[Term]> {
        match self.as_tuple() {
            Some([Term::Atom(a), rest @ ..]) if a.as_str() == tag => Some(rest),
            _ => None,
        }
    }

    /// Whether this term matches `pattern`, where the atom `:_` in the pattern matches
    /// anything (the key patterns of table selects).
    pub fn matches(&self, pattern: &Term) -> bool {
        match (self, pattern) {
            (_, Term::Atom(a)) if *a == Atom::WILDCARD => true,
            (Term::Tuple(x), Term::Tuple(p)) | (Term::List(x), Term::List(p)) => {
                x.len() == p.len() && x.iter().zip(p.iter()).all(|(x, p)| x.matches(p))
            }
            (Term::Map(x), Term::Map(p)) => p
                .iter()
                .all(|(k, pv)| x.get(k).is_some_and(|xv| xv.matches(pv))),
            _ => self == pattern,
        }
    }

    fn order_class(&self) -> u8 {
        match self {
            Term::Int(_) | Term::Float(_) => 0,
            Term::Atom(_) => 1,
            Term::Ref(_) => 2,
            Term::Pid(_) => 3,
            Term::Tuple(_) => 4,
            Term::Map(_) => 5,
            Term::List(_) => 6,
            Term::Binary(_) | Term::Str(_) => 7,
        }
    }
}

/// Exact equality (Erlang's `=:=`): `1` and `1.0` differ; floats compare by bits.
impl PartialEq for Term {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Term {}

impl PartialOrd for Term {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn cmp_int_float(i: i64, f: f64) -> Ordering {
    // Compare by value; an integer equal in value to a float sorts first so that the
    // order stays consistent with exact equality.
    match (i as f64).total_cmp(&f) {
        Ordering::Equal => {
            if f >= i64::MAX as f64 {
                Ordering::Less
            } else {
                i.cmp(&(f as i64)).then(Ordering::Less)
            }
        }
        o => o,
    }
}

/// Erlang's term order: number < atom < reference < pid < tuple < map < list < binary.
impl Ord for Term {
    fn cmp(&self, other: &Self) -> Ordering {
        use Term::*;
        match (self, other) {
            (Int(a), Int(b)) => a.cmp(b),
            (Float(a), Float(b)) => a.total_cmp(b),
            (Int(a), Float(b)) => cmp_int_float(*a, *b),
            (Float(a), Int(b)) => cmp_int_float(*b, *a).reverse(),
            (Atom(a), Atom(b)) => a.cmp(b),
            (Ref(a), Ref(b)) => a.cmp(b),
            (Pid(a), Pid(b)) => a.cmp(b),
            (Tuple(a), Tuple(b)) => a.len().cmp(&b.len()).then_with(|| a.iter().cmp(b.iter())),
            (Map(a), Map(b)) => a.len().cmp(&b.len()).then_with(|| a.iter().cmp(b.iter())),
            (List(a), List(b)) => a.iter().cmp(b.iter()),
            (Binary(_) | Str(_), Binary(_) | Str(_)) => {
                let (x, y) = (
                    self.as_bytes().unwrap_or(&[]),
                    other.as_bytes().unwrap_or(&[]),
                );
                x.cmp(y)
                    .then_with(|| matches!(self, Str(_)).cmp(&matches!(other, Str(_))))
            }
            _ => self.order_class().cmp(&other.order_class()),
        }
    }
}

impl Hash for Term {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.order_class().hash(h);
        match self {
            Term::Atom(a) => a.hash(h),
            Term::Int(i) => i.hash(h),
            Term::Float(f) => f.to_bits().hash(h),
            Term::Binary(b) => b.as_slice().hash(h),
            Term::Str(s) => s.as_bytes().hash(h),
            Term::Pid(p) => p.hash(h),
            Term::Ref(r) => r.hash(h),
            Term::Tuple(t) | Term::List(t) => {
                t.len().hash(h);
                t.iter().for_each(|x| x.hash(h));
            }
            Term::Map(m) => {
                m.len().hash(h);
                m.iter().for_each(|(k, v)| {
                    k.hash(h);
                    v.hash(h);
                });
            }
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Term {
            fn from(v: $t) -> Term { Term::Int(v as i64) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32, isize);

impl From<u64> for Term {
    /// Values above `i64::MAX` saturate (terms hold 64-bit signed integers).
    fn from(v: u64) -> Term {
        Term::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Term {
    /// Values above `i64::MAX` saturate.
    fn from(v: usize) -> Term {
        Term::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Term {
    fn from(v: f64) -> Term {
        Term::Float(v)
    }
}

impl From<bool> for Term {
    fn from(v: bool) -> Term {
        Term::Atom(if v { Atom::TRUE } else { Atom::FALSE })
    }
}

impl From<&str> for Term {
    fn from(v: &str) -> Term {
        Term::str(v)
    }
}

impl From<String> for Term {
    fn from(v: String) -> Term {
        Term::Str(Arc::from(v))
    }
}

impl From<Atom> for Term {
    fn from(v: Atom) -> Term {
        Term::Atom(v)
    }
}

impl From<Pid> for Term {
    fn from(v: Pid) -> Term {
        Term::Pid(v)
    }
}

impl From<Ref> for Term {
    fn from(v: Ref) -> Term {
        Term::Ref(v)
    }
}

impl From<Binary> for Term {
    fn from(v: Binary) -> Term {
        Term::Binary(v)
    }
}

impl From<Vec<Term>> for Term {
    fn from(v: Vec<Term>) -> Term {
        Term::list(v)
    }
}

impl From<&Term> for Term {
    fn from(v: &Term) -> Term {
        v.clone()
    }
}

impl From<()> for Term {
    /// The empty tuple `{}`.
    fn from(_: ()) -> Term {
        Term::tuple(Vec::new())
    }
}

macro_rules! from_tuple {
    ($($name:ident),+) => {
        impl<$($name: Into<Term>),+> From<($($name,)+)> for Term {
            #[allow(non_snake_case)]
            fn from(($($name,)+): ($($name,)+)) -> Term {
                // From an array: one allocation (a Vec would be a second, and a copy).
                Term::Tuple(Arc::from([$($name.into()),+]))
            }
        }
    };
}
from_tuple!(A);
from_tuple!(A, B);
from_tuple!(A, B, C);
from_tuple!(A, B, C, D);
from_tuple!(A, B, C, D, E);
from_tuple!(A, B, C, D, E, F);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_order_follows_erlang() {
        let r = Ref::from_parts(Atom::new("n@h"), 1, 1);
        let p = Pid::from_parts(Atom::new("n@h"), 1, 1);
        let order = vec![
            Term::Int(-5),
            Term::Float(1.5),
            Term::Int(2),
            Term::atom("a"),
            Term::atom("b"),
            Term::Ref(r),
            Term::Pid(p),
            Term::tuple(vec![Term::Int(9)]),
            Term::tuple(vec![Term::Int(1), Term::Int(1)]),
            Term::map(vec![]),
            Term::list(vec![]),
            Term::list(vec![Term::Int(1)]),
            Term::binary(b"a"),
        ];
        for w in order.windows(2) {
            assert!(w[0] < w[1], "{:?} < {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn equality_is_exact() {
        assert_ne!(Term::Int(1), Term::Float(1.0));
        assert!(Term::Int(1) < Term::Float(1.0));
        assert_eq!(Term::Float(0.5), Term::Float(0.5));
        assert_eq!(
            Term::from((1, "x")),
            Term::tuple(vec![Term::Int(1), Term::str("x")])
        );
    }

    #[test]
    fn binaries_slice_without_copying() {
        let b = Binary::from_slice(b"hello world");
        let s = b.slice(6..11).unwrap();
        assert_eq!(&*s, b"world");
        assert!(Arc::ptr_eq(&b.data, &s.data));
        assert!(b.slice(5..20).is_none());
    }

    #[test]
    fn a_term_is_three_words() {
        // Every tuple element, list element and queued message is a Term: its size is
        // most of what a message costs in memory (see `Binary`).
        assert_eq!(std::mem::size_of::<Binary>(), 16);
        assert_eq!(std::mem::size_of::<Term>(), 24);
    }

    #[test]
    fn patterns_match_with_wildcards() {
        let t = Term::from((Term::atom("user"), 1, "ann"));
        assert!(t.matches(&Term::from((Term::atom("user"), Term::atom("_"), "ann"))));
        assert!(!t.matches(&Term::from((Term::atom("room"), Term::atom("_"), "ann"))));
    }
}
