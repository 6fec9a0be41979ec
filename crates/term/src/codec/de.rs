//! `Deserialize` for terms and their parts: the decoding half of the wire form described
//! in the [parent module](super), with the nesting limit carried by the seeds.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, EnumAccess, SeqAccess, VariantAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::{ATOM_MARKER, CodecError, Ctx, ErrorSlot, MAX_PREALLOC, PID_MARKER, REF_MARKER};
use super::{TERM_ENUM, TERM_MARKER, TermSeed, VARIANTS, report, tag};
use crate::{Atom, Binary, Pid, Ref, Term};

impl<'de> DeserializeSeed<'de> for TermSeed {
    type Value = Term;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Term, D::Error> {
        Ctx::new(self.max_depth, None).deserialize(d)
    }
}

/// Deserializes with [`TermSeed::default`](super::TermSeed::default) (at most [`DEFAULT_MAX_DEPTH`](super::DEFAULT_MAX_DEPTH) deep).
impl<'de> Deserialize<'de> for Term {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Term, D::Error> {
        TermSeed::default().deserialize(d)
    }
}

impl<'de> DeserializeSeed<'de> for Ctx<'_> {
    type Value = Term;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Term, D::Error> {
        d.deserialize_newtype_struct(TERM_MARKER, self)
    }
}

impl<'de> Visitor<'de> for Ctx<'_> {
    type Value = Term;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a term")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Term, D::Error> {
        d.deserialize_enum(TERM_ENUM, VARIANTS, self)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Term, A::Error> {
        let (Tag(t), v) = data.variant::<Tag>()?;
        match t {
            tag::TUPLE | tag::LIST | tag::MAP => self.container(t, v),
            _ => scalar(t, v, self.slot),
        }
    }
}

impl Ctx<'_> {
    /// A tuple, list or map: the frames of this function are on the recursion path (one
    /// set per level of nesting), so it holds as little as possible.
    fn container<'de, V: VariantAccess<'de>>(self, t: u32, v: V) -> Result<Term, V::Error> {
        let inner = Nested(self.enter().map_err(de::Error::custom)?);
        if t == tag::MAP {
            return Ok(Term::Map(Arc::new(
                v.newtype_variant_seed(PairsSeed(inner))?,
            )));
        }
        let elems = v.newtype_variant_seed(ElemsSeed(inner))?;
        Ok(if t == tag::TUPLE {
            Term::Tuple(elems)
        } else {
            Term::List(elems)
        })
    }
}

/// Any term that is not a container (kept out of the recursion path's frames).
#[inline(never)]
fn scalar<'de, V: VariantAccess<'de>>(
    t: u32,
    v: V,
    slot: Option<&ErrorSlot>,
) -> Result<Term, V::Error> {
    Ok(match t {
        tag::ATOM => Term::Atom(v.newtype_variant_seed(AtomSeed(slot))?),
        tag::INT => Term::Int(v.newtype_variant()?),
        tag::FLOAT => Term::Float(v.newtype_variant()?),
        tag::BINARY => Term::Binary(v.newtype_variant_seed(BytesSeed)?),
        tag::STR => Term::Str(v.newtype_variant_seed(StrSeed)?),
        tag::PID => {
            let (node, creation, id) = v.tuple_variant(3, NodeIdParts(slot))?;
            Term::Pid(Pid::from_parts(node, creation, id))
        }
        tag::REF => {
            let (node, creation, id) = v.tuple_variant(3, NodeIdParts(slot))?;
            Term::Ref(Ref::from_parts(node, creation, id))
        }
        other => {
            let why = format!("unknown term variant {other} (known: 0 to {})", tag::MAP);
            return Err(de::Error::custom(report(slot, CodecError::Malformed(why))));
        }
    })
}

/// A term inside a container: only the outermost term carries the `$oxbeam::Term`
/// newtype, so nested ones are read straight as the enum.
#[derive(Clone, Copy)]
struct Nested<'s>(Ctx<'s>);

impl<'de> DeserializeSeed<'de> for Nested<'_> {
    type Value = Term;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Term, D::Error> {
        d.deserialize_enum(TERM_ENUM, VARIANTS, self.0)
    }
}

/// A variant index; self-describing formats may give the variant's name instead.
struct Tag(u32);

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tag, D::Error> {
        d.deserialize_identifier(TagVisitor)
    }
}

struct TagVisitor;

impl Visitor<'_> for TagVisitor {
    type Value = Tag;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a term variant")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Tag, E> {
        Ok(Tag(u32::try_from(v).unwrap_or(u32::MAX)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Tag, E> {
        match VARIANTS.iter().position(|&name| name == v) {
            Some(i) => Ok(Tag(i as u32)),
            None => Err(E::unknown_variant(v, VARIANTS)),
        }
    }
}

/// Elements of a tuple or list, one level deeper.
struct ElemsSeed<'s>(Nested<'s>);

impl<'de> DeserializeSeed<'de> for ElemsSeed<'_> {
    type Value = Arc<[Term]>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Arc<[Term]>, D::Error> {
        d.deserialize_seq(self)
    }
}

/// Containers of up to this many elements are gathered on the stack and moved into
/// their `Arc` in one allocation (most messages are small tuples); larger ones go
/// through a `Vec` (two allocations and a move).
const STACK_ELEMS: usize = 8;

impl<'de> Visitor<'de> for ElemsSeed<'_> {
    type Value = Arc<[Term]>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of terms")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Arc<[Term]>, A::Error> {
        let hint = seq.size_hint();
        if hint.is_some_and(|n| n <= STACK_ELEMS) {
            let mut buf: [Term; STACK_ELEMS] = std::array::from_fn(|_| Term::Int(0));
            let mut n = 0;
            while let Some(t) = seq.next_element_seed(self.0)? {
                if n == STACK_ELEMS {
                    // More than announced: finish the slow way.
                    let mut elems: Vec<Term> = buf.into_iter().collect();
                    elems.push(t);
                    while let Some(t) = seq.next_element_seed(self.0)? {
                        elems.push(t);
                    }
                    return Ok(elems.into());
                }
                buf[n] = t;
                n += 1;
            }
            // An exact-size iterator: the Arc is allocated once, the terms moved in.
            return Ok(buf[..n]
                .iter_mut()
                .map(|t| std::mem::replace(t, Term::Int(0)))
                .collect());
        }
        let mut elems = Vec::with_capacity(hint.unwrap_or(0).min(MAX_PREALLOC));
        while let Some(t) = seq.next_element_seed(self.0)? {
            elems.push(t);
        }
        Ok(elems.into())
    }
}

/// The (key, value) pairs of a map, one level deeper.
struct PairsSeed<'s>(Nested<'s>);

impl<'de> DeserializeSeed<'de> for PairsSeed<'_> {
    type Value = BTreeMap<Term, Term>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PairsSeed<'_> {
    type Value = BTreeMap<Term, Term>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of (key, value) pairs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut map = BTreeMap::new();
        // A repeated key keeps its last value, as a map literal does.
        while let Some((k, v)) = seq.next_element_seed(PairSeed(self.0))? {
            map.insert(k, v);
        }
        Ok(map)
    }
}

struct PairSeed<'s>(Nested<'s>);

impl<'de> DeserializeSeed<'de> for PairSeed<'_> {
    type Value = (Term, Term);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(Term, Term), D::Error> {
        d.deserialize_tuple(2, self)
    }
}

impl<'de> Visitor<'de> for PairSeed<'_> {
    type Value = (Term, Term);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a (key, value) pair")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(Term, Term), A::Error> {
        let k = seq
            .next_element_seed(self.0)?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let v = seq
            .next_element_seed(self.0)?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        Ok((k, v))
    }
}

/// Atom text, interned with [`Atom::try_new`].
#[derive(Clone, Copy)]
struct AtomSeed<'s>(Option<&'s ErrorSlot>);

impl<'de> DeserializeSeed<'de> for AtomSeed<'_> {
    type Value = Atom;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Atom, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for AtomSeed<'_> {
    type Value = Atom;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("atom text")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Atom, E> {
        Atom::try_new(v).map_err(|e| E::custom(report(self.0, CodecError::Atom(e.to_string()))))
    }
}

/// The payload of a binary.
struct BytesSeed;

impl<'de> DeserializeSeed<'de> for BytesSeed {
    type Value = Binary;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Binary, D::Error> {
        d.deserialize_byte_buf(self)
    }
}

impl<'de> Visitor<'de> for BytesSeed {
    type Value = Binary;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Binary, E> {
        Ok(super::shared_binary(v).unwrap_or_else(|| Binary::from_slice(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Binary, E> {
        Ok(Binary::from(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Binary, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_PREALLOC));
        while let Some(b) = seq.next_element::<u8>()? {
            bytes.push(b);
        }
        Ok(Binary::from(bytes))
    }
}

/// As a byte string.
impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Binary, D::Error> {
        BytesSeed.deserialize(d)
    }
}

/// The payload of a string.
struct StrSeed;

impl<'de> DeserializeSeed<'de> for StrSeed {
    type Value = Arc<str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Arc<str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for StrSeed {
    type Value = Arc<str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Arc<str>, E> {
        Ok(Arc::from(v))
    }
}

/// `(node text, creation, id)` of a pid or reference.
struct NodeIdParts<'s>(Option<&'s ErrorSlot>);

impl<'de> Visitor<'de> for NodeIdParts<'_> {
    type Value = (Atom, u32, u64);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(node, creation, id)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let missing = |i| de::Error::invalid_length(i, &"(node, creation, id)");
        let node = seq
            .next_element_seed(AtomSeed(self.0))?
            .ok_or_else(|| missing(0))?;
        let creation = seq.next_element()?.ok_or_else(|| missing(1))?;
        let id = seq.next_element()?.ok_or_else(|| missing(2))?;
        Ok((node, creation, id))
    }
}

/// Builds a pid or reference from the `$oxbeam::Pid` / `$oxbeam::Ref` newtype.
struct NodeIdVisitor<T> {
    build: fn(Atom, u32, u64) -> T,
    what: &'static str,
}

impl<'de, T> Visitor<'de> for NodeIdVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} as (node, creation, id)", self.what)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        let (node, creation, id) = d.deserialize_tuple(3, NodeIdParts(None))?;
        Ok((self.build)(node, creation, id))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        let (node, creation, id) = NodeIdParts(None).visit_seq(seq)?;
        Ok((self.build)(node, creation, id))
    }
}

impl<'de> Deserialize<'de> for Pid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Pid, D::Error> {
        d.deserialize_newtype_struct(
            PID_MARKER,
            NodeIdVisitor {
                build: Pid::from_parts,
                what: "pid",
            },
        )
    }
}

impl<'de> Deserialize<'de> for Ref {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ref, D::Error> {
        d.deserialize_newtype_struct(
            REF_MARKER,
            NodeIdVisitor {
                build: Ref::from_parts,
                what: "reference",
            },
        )
    }
}

struct AtomVisitor;

impl<'de> Visitor<'de> for AtomVisitor {
    type Value = Atom;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("atom text")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Atom, D::Error> {
        AtomSeed(None).deserialize(d)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Atom, E> {
        AtomSeed(None).visit_str(v)
    }
}

/// From its text, interned with [`Atom::try_new`] (an error, not a panic, if it cannot be).
impl<'de> Deserialize<'de> for Atom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Atom, D::Error> {
        d.deserialize_newtype_struct(ATOM_MARKER, AtomVisitor)
    }
}
