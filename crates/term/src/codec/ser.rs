//! `Serialize` for terms and their parts: the encoding half of the wire form described in
//! the [parent module](super).

use std::collections::BTreeMap;

use serde::ser::{self, SerializeSeq, SerializeTupleVariant};
use serde::{Serialize, Serializer};

use super::{ATOM_MARKER, Ctx, DEFAULT_MAX_DEPTH, DepthLimited, PID_MARKER, REF_MARKER};
use super::{TERM_ENUM, TERM_MARKER, VARIANTS, tag_of};
use crate::{Atom, Binary, Pid, Ref, Term};

/// A term to serialize, under a depth limit.
#[derive(Clone, Copy)]
pub(super) struct Enc<'a, 's> {
    pub(super) term: &'a Term,
    pub(super) ctx: Ctx<'s>,
}

impl Serialize for Enc<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(TERM_MARKER, &EncBody(*self))
    }
}

/// The enum inside the `$oxbeam::Term` newtype; terms inside containers are written as
/// just the enum.
struct EncBody<'a, 's>(Enc<'a, 's>);

impl Serialize for EncBody<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Enc { term, ctx } = self.0;
        let t = tag_of(term);
        let name = VARIANTS[t as usize];
        let enter = || ctx.enter().map_err(ser::Error::custom);
        match term {
            Term::Atom(a) => s.serialize_newtype_variant(TERM_ENUM, t, name, a.as_str()),
            Term::Int(i) => s.serialize_newtype_variant(TERM_ENUM, t, name, i),
            Term::Float(x) => s.serialize_newtype_variant(TERM_ENUM, t, name, x),
            Term::Binary(b) => s.serialize_newtype_variant(TERM_ENUM, t, name, b),
            Term::Str(x) => s.serialize_newtype_variant(TERM_ENUM, t, name, &**x),
            Term::Pid(p) => node_id_variant(s, t, name, (p.node(), p.creation(), p.id())),
            Term::Ref(r) => node_id_variant(s, t, name, (r.node(), r.creation(), r.id())),
            Term::Tuple(xs) | Term::List(xs) => {
                s.serialize_newtype_variant(TERM_ENUM, t, name, &EncElems(xs, enter()?))
            }
            Term::Map(m) => s.serialize_newtype_variant(TERM_ENUM, t, name, &EncPairs(m, enter()?)),
        }
    }
}

fn node_id_variant<S: Serializer>(
    s: S,
    t: u32,
    name: &'static str,
    (node, creation, id): (Atom, u32, u64),
) -> Result<S::Ok, S::Error> {
    let mut v = s.serialize_tuple_variant(TERM_ENUM, t, name, 3)?;
    v.serialize_field(node.as_str())?;
    v.serialize_field(&creation)?;
    v.serialize_field(&id)?;
    v.end()
}

struct EncElems<'a, 's>(&'a [Term], Ctx<'s>);

impl Serialize for EncElems<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for term in self.0 {
            seq.serialize_element(&EncBody(Enc { term, ctx: self.1 }))?;
        }
        seq.end()
    }
}

struct EncPairs<'a, 's>(&'a BTreeMap<Term, Term>, Ctx<'s>);

impl Serialize for EncPairs<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ctx = self.1;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (k, v) in self.0 {
            seq.serialize_element(&(EncBody(Enc { term: k, ctx }), EncBody(Enc { term: v, ctx })))?;
        }
        seq.end()
    }
}

/// Serializes like [`Term`]'s own impl but refuses terms nested deeper than
/// [`DEFAULT_MAX_DEPTH`]; a term inside another serializable value nesting deeper than
/// that needs [`DepthLimited`].
impl Serialize for Term {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Enc {
            term: self,
            ctx: Ctx::new(DEFAULT_MAX_DEPTH, None),
        }
        .serialize(s)
    }
}

impl Serialize for DepthLimited<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Enc {
            term: self.term,
            ctx: Ctx::new(self.max_depth, None),
        }
        .serialize(s)
    }
}

/// As a byte string.
impl Serialize for Binary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.as_slice())
    }
}

/// As its text, in a newtype struct that [`to_term`](crate::to_term) turns into an atom.
impl Serialize for Atom {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(ATOM_MARKER, self.as_str())
    }
}

/// As `(node text, creation, id)`, in a newtype struct that
/// [`to_term`](crate::to_term) turns back into a pid.
impl Serialize for Pid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(
            PID_MARKER,
            &(self.node().as_str(), self.creation(), self.id()),
        )
    }
}

/// As `(node text, creation, id)`, like [`Pid`].
impl Serialize for Ref {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(
            REF_MARKER,
            &(self.node().as_str(), self.creation(), self.id()),
        )
    }
}
