//! The deserializer behind [`from_term`](super::from_term).
//!
//! [`TermDeserializer`] reads a term in the user-facing mapping. When asked for one of the
//! marker newtypes (`$oxbeam::Term`, `$oxbeam::Pid`, `$oxbeam::Ref`), it switches to
//! [`CodecForm`], which presents the term in the shape the codec's `Deserialize` impls
//! expect (an enum of variant index and payload), so those impls rebuild it unchanged.

use serde::de::value::{StrDeserializer, U32Deserializer, U64Deserializer};
use serde::de::{
    self, DeserializeSeed, EnumAccess, Error as _, Expected, IntoDeserializer, MapAccess,
    SeqAccess, Unexpected, VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;

use super::TermConvError;
use crate::codec::{PID_MARKER, REF_MARKER, TERM_MARKER, tag_of};
use crate::{Atom, Term};

/// "invalid type: <what `t` is>, expected <exp>".
fn invalid_type(t: &Term, exp: &dyn Expected) -> TermConvError {
    let what = match t {
        Term::Atom(a) => format!("atom {a}"),
        Term::Int(i) => format!("integer {i}"),
        Term::Float(x) => format!("float {x}"),
        Term::Binary(b) => format!("binary of {} bytes", b.len()),
        Term::Str(s) => format!("string of {} bytes", s.len()),
        Term::Pid(p) => format!("pid {p}"),
        Term::Ref(r) => format!("reference {r}"),
        Term::Tuple(xs) => format!("tuple of {} elements", xs.len()),
        Term::List(xs) => format!("list of {} elements", xs.len()),
        Term::Map(m) => format!("map of {} entries", m.len()),
    };
    TermConvError::invalid_type(Unexpected::Other(&what), exp)
}

/// Deserializer methods that behave as another one does.
macro_rules! forward_to {
    ($de:lifetime; $($method:ident)* => $target:ident) => {$(
        fn $method<V: Visitor<$de>>(self, v: V) -> Result<V::Value, TermConvError> {
            self.$target(v)
        }
    )*};
}

/// Reads a term in the mapping of the [module docs](super#mapping).
pub(super) struct TermDeserializer<'a>(pub(super) &'a Term);

impl TermDeserializer<'_> {
    fn text(&self) -> Option<&str> {
        match self.0 {
            Term::Atom(a) => Some(a.as_str()),
            t => t.as_str(),
        }
    }
}

/// Visits `elems` as a sequence, then checks that the visitor took them all.
fn visit_elems<'de, V: Visitor<'de>>(elems: &[Term], v: V) -> Result<V::Value, TermConvError> {
    let mut seq = Elems(elems.iter());
    let value = v.visit_seq(&mut seq)?;
    match seq.0.len() {
        0 => Ok(value),
        left => Err(TermConvError::invalid_length(
            elems.len(),
            &format!("{} elements", elems.len() - left).as_str(),
        )),
    }
}

impl<'de> de::Deserializer<'de> for TermDeserializer<'_> {
    type Error = TermConvError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TermConvError> {
        match self.0 {
            Term::Atom(a) if *a == Atom::TRUE => v.visit_bool(true),
            Term::Atom(a) if *a == Atom::FALSE => v.visit_bool(false),
            Term::Atom(a) if *a == Atom::NIL => v.visit_unit(),
            Term::Atom(a) => v.visit_str(a.as_str()),
            Term::Int(i) => v.visit_i64(*i),
            Term::Float(x) => v.visit_f64(*x),
            Term::Binary(b) => v.visit_bytes(b),
            Term::Str(s) => v.visit_str(s),
            Term::Pid(p) => v.visit_seq(NodeIdParts::new(p.node(), p.creation(), p.id())),
            Term::Ref(r) => v.visit_seq(NodeIdParts::new(r.node(), r.creation(), r.id())),
            Term::Tuple(xs) | Term::List(xs) => visit_elems(xs, v),
            Term::Map(_) => self.deserialize_map(v),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TermConvError> {
        match self.0 {
            Term::Atom(a) if a.is_bool() => v.visit_bool(*a == Atom::TRUE),
            t => Err(invalid_type(t, &v)),
        }
    }

    fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TermConvError> {
        // The visitor of each integer type checks the range.
        match self.0 {
            Term::Int(i) => v.visit_i64(*i),
            t => Err(invalid_type(t, &v)),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TermConvError> {
        match self.0 {
            Term::Float(x) => v.visit_f64(*x),
            Term::Int(i) => v.visit_f64(*i as f64),
            t => Err(invalid_type(t, &v)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TermConvError> {
        match self.text() {
            Some(s) => v.visit_str(s),
            None => Err(invalid_type(self.0, &v)),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TermConvError> {
        match self.0 {
            Term::Binary(_) | Term::Str(_) => v.visit_bytes(self.0.as_bytes().unwrap_or(&[])),
            Term::List(xs) => visit_elems(xs, v),
            t => Err(invalid_type(t, &v)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TermConvError> {
        match self.0 {
            Term::Atom(a) if *a == Atom::NIL => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TermConvError> {
        match self.0 {
            Term::Atom(a) if *a == Atom::NIL => v.visit_unit(),
            Term::Tuple(xs) if xs.is_empty() => v.visit_unit(),
            t => Err(invalid_type(t, &v)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, TermConvError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, TermConvError> {
        match (name, self.0) {
            (TERM_MARKER, t) => v.visit_newtype_struct(CodecForm(t)),
            (PID_MARKER, Term::Pid(p)) => {
                v.visit_newtype_struct(NodeIdParts::new(p.node(), p.creation(), p.id()))
            }
            (REF_MARKER, Term::Ref(r)) => {
                v.visit_newtype_struct(NodeIdParts::new(r.node(), r.creation(), r.id()))
            }
            _ => v.visit_newtype_struct(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TermConvError> {
        match self.0 {
            Term::List(xs) | Term::Tuple(xs) => visit_elems(xs, v),
            t => Err(invalid_type(t, &v)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        v: V,
    ) -> Result<V::Value, TermConvError> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, TermConvError> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TermConvError> {
        let Term::Map(m) = self.0 else {
            return Err(invalid_type(self.0, &v));
        };
        let mut entries = Entries {
            iter: m.iter(),
            value: None,
        };
        let value = v.visit_map(&mut entries)?;
        match entries.iter.len() {
            0 => Ok(value),
            left => Err(TermConvError::invalid_length(
                m.len(),
                &format!("{} entries", m.len() - left).as_str(),
            )),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, TermConvError> {
        self.deserialize_map(v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, TermConvError> {
        let (tag, rest) = match self.0 {
            Term::Tuple(xs) => match xs.split_first() {
                Some((tag, rest)) => (tag, Some(rest)),
                None => (self.0, None),
            },
            t => (t, None),
        };
        match TermDeserializer(tag).text() {
            Some(variant) => v.visit_enum(Variant { variant, rest }),
            None => Err(invalid_type(
                self.0,
                &"an atom or a tuple tagged with an atom",
            )),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TermConvError> {
        match self.0 {
            Term::Int(i) => match u64::try_from(*i) {
                Ok(i) => v.visit_u64(i),
                Err(_) => Err(invalid_type(self.0, &v)),
            },
            _ => self.deserialize_str(v),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TermConvError> {
        v.visit_unit()
    }

    forward_to!('de; deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i128 => deserialize_i64);
    forward_to!('de; deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 => deserialize_i64);
    forward_to!('de; deserialize_u128 => deserialize_i64);
    forward_to!('de; deserialize_f32 => deserialize_f64);
    forward_to!('de; deserialize_char deserialize_string => deserialize_str);
    forward_to!('de; deserialize_byte_buf => deserialize_bytes);
}

/// The elements of a tuple or list.
struct Elems<'a>(std::slice::Iter<'a, Term>);

impl<'de> SeqAccess<'de> for Elems<'_> {
    type Error = TermConvError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TermConvError> {
        self.0
            .next()
            .map(|t| seed.deserialize(TermDeserializer(t)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// The entries of a map.
struct Entries<'a> {
    iter: std::collections::btree_map::Iter<'a, Term, Term>,
    value: Option<&'a Term>,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = TermConvError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TermConvError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(TermDeserializer(k)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, TermConvError> {
        match self.value.take() {
            Some(v) => seed.deserialize(TermDeserializer(v)),
            None => Err(TermConvError::custom("map value requested before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// An enum value: the variant's name and, for a tagged tuple, the elements after the tag.
struct Variant<'a> {
    variant: &'a str,
    rest: Option<&'a [Term]>,
}

impl<'de, 'a> EnumAccess<'de> for Variant<'a> {
    type Error = TermConvError;
    type Variant = Self;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self), TermConvError> {
        let name: StrDeserializer<'a, TermConvError> = self.variant.into_deserializer();
        Ok((seed.deserialize(name)?, self))
    }
}

impl<'de> VariantAccess<'de> for Variant<'_> {
    type Error = TermConvError;

    fn unit_variant(self) -> Result<(), TermConvError> {
        match self.rest {
            None | Some([]) => Ok(()),
            Some(rest) => Err(self.wrong_shape("no values", rest.len())),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, TermConvError> {
        match self.rest {
            Some([x]) => seed.deserialize(TermDeserializer(x)),
            rest => Err(self.wrong_shape("{tag, value}", rest.map_or(0, <[Term]>::len))),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, TermConvError> {
        visit_elems(self.rest.unwrap_or(&[]), v)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, TermConvError> {
        match self.rest {
            Some([fields]) => de::Deserializer::deserialize_map(TermDeserializer(fields), v),
            rest => Err(self.wrong_shape("{tag, %{fields}}", rest.map_or(0, <[Term]>::len))),
        }
    }
}

impl Variant<'_> {
    fn wrong_shape(&self, expected: &str, found: usize) -> TermConvError {
        TermConvError::custom(format!(
            "variant {} expects {expected}, found {found} values after the tag",
            self.variant
        ))
    }
}

/// `(node text, creation, id)` of a pid or reference, as a sequence: what the codec's
/// `Deserialize` impls for `Pid` and `Ref` read.
struct NodeIdParts {
    node: Atom,
    creation: u32,
    id: u64,
    next: u8,
}

impl NodeIdParts {
    fn new(node: Atom, creation: u32, id: u64) -> NodeIdParts {
        NodeIdParts {
            node,
            creation,
            id,
            next: 0,
        }
    }
}

impl<'de> SeqAccess<'de> for NodeIdParts {
    type Error = TermConvError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TermConvError> {
        let i = self.next;
        self.next = self.next.saturating_add(1);
        match i {
            0 => seed
                .deserialize(StrDeserializer::new(self.node.as_str()))
                .map(Some),
            1 => seed
                .deserialize(U32Deserializer::new(self.creation))
                .map(Some),
            2 => seed.deserialize(U64Deserializer::new(self.id)).map(Some),
            _ => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(3usize.saturating_sub(usize::from(self.next)))
    }
}

impl<'de> de::Deserializer<'de> for NodeIdParts {
    type Error = TermConvError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TermConvError> {
        v.visit_seq(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// A term in the codec's serde shape: the enum `Term` (variant index, then payload), as
/// the codec's `Deserialize` impl for [`Term`] reads it.
struct CodecForm<'a>(&'a Term);

impl<'de> de::Deserializer<'de> for CodecForm<'_> {
    type Error = TermConvError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TermConvError> {
        v.visit_enum(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, TermConvError> {
        v.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> EnumAccess<'de> for CodecForm<'_> {
    type Error = TermConvError;
    type Variant = Self;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self), TermConvError> {
        Ok((
            seed.deserialize(U32Deserializer::new(tag_of(self.0)))?,
            self,
        ))
    }
}

impl<'de> VariantAccess<'de> for CodecForm<'_> {
    type Error = TermConvError;

    fn unit_variant(self) -> Result<(), TermConvError> {
        Err(TermConvError::custom("no term variant is a unit variant"))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, TermConvError> {
        seed.deserialize(Payload(self.0))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, TermConvError> {
        match self.0 {
            Term::Pid(p) => v.visit_seq(NodeIdParts::new(p.node(), p.creation(), p.id())),
            Term::Ref(r) => v.visit_seq(NodeIdParts::new(r.node(), r.creation(), r.id())),
            t => Err(TermConvError::custom(format!(
                "term variant {} is not a tuple variant",
                tag_of(t)
            ))),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, TermConvError> {
        Err(TermConvError::custom("no term variant is a struct variant"))
    }
}

/// The payload of a term's variant in the codec's serde shape.
struct Payload<'a>(&'a Term);

impl<'de> de::Deserializer<'de> for Payload<'_> {
    type Error = TermConvError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TermConvError> {
        match self.0 {
            Term::Atom(a) => v.visit_str(a.as_str()),
            Term::Int(i) => v.visit_i64(*i),
            Term::Float(x) => v.visit_f64(*x),
            Term::Binary(b) => v.visit_bytes(b),
            Term::Str(s) => v.visit_str(s),
            Term::Pid(p) => v.visit_seq(NodeIdParts::new(p.node(), p.creation(), p.id())),
            Term::Ref(r) => v.visit_seq(NodeIdParts::new(r.node(), r.creation(), r.id())),
            Term::Tuple(xs) | Term::List(xs) => v.visit_seq(CodecElems(xs.iter())),
            Term::Map(m) => v.visit_seq(CodecPairs(m.iter())),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

/// Terms in the codec's serde shape, as a sequence.
struct CodecElems<I>(I);

impl<'de, 'a, I: ExactSizeIterator<Item = &'a Term>> SeqAccess<'de> for CodecElems<I> {
    type Error = TermConvError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TermConvError> {
        self.0
            .next()
            .map(|t| seed.deserialize(CodecForm(t)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// A map's entries in the codec's serde shape: a sequence of (key, value) pairs.
struct CodecPairs<'a>(std::collections::btree_map::Iter<'a, Term, Term>);

impl<'de> SeqAccess<'de> for CodecPairs<'_> {
    type Error = TermConvError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TermConvError> {
        self.0
            .next()
            .map(|(k, v)| seed.deserialize(CodecPair(k, v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct CodecPair<'a>(&'a Term, &'a Term);

impl<'de> de::Deserializer<'de> for CodecPair<'_> {
    type Error = TermConvError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, TermConvError> {
        v.visit_seq(CodecElems([self.0, self.1].into_iter()))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}
