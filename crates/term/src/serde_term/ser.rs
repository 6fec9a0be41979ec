//! The serializer behind [`to_term`](super::to_term).

use std::collections::BTreeMap;

use serde::ser::{self, Error as _, Serialize};

use super::TermConvError;
use crate::codec::rebuild_marked;
use crate::{Atom, Binary, Term};

/// At most this many elements are reserved from a length hint.
const MAX_PREALLOC: usize = 4096;

fn atom(name: &str) -> Result<Term, TermConvError> {
    Atom::try_new(name)
        .map(Term::Atom)
        .map_err(|e| TermConvError::custom(format!("cannot make atom {name:?}: {e}")))
}

fn int<T: TryInto<i64> + std::fmt::Display + Copy>(v: T) -> Result<Term, TermConvError> {
    v.try_into().map(Term::Int).map_err(|_| {
        TermConvError::custom(format!(
            "integer {v} does not fit in a term (64-bit signed)"
        ))
    })
}

/// Serializes any value into a [`Term`].
pub(super) struct TermSerializer;

impl ser::Serializer for TermSerializer {
    type Ok = Term;
    type Error = TermConvError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = SeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = StructBuilder;
    type SerializeStructVariant = StructBuilder;

    fn serialize_bool(self, v: bool) -> Result<Term, TermConvError> {
        Ok(Term::from(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Term, TermConvError> {
        Ok(Term::from(v))
    }

    fn serialize_i16(self, v: i16) -> Result<Term, TermConvError> {
        Ok(Term::from(v))
    }

    fn serialize_i32(self, v: i32) -> Result<Term, TermConvError> {
        Ok(Term::from(v))
    }

    fn serialize_i64(self, v: i64) -> Result<Term, TermConvError> {
        Ok(Term::Int(v))
    }

    fn serialize_i128(self, v: i128) -> Result<Term, TermConvError> {
        int(v)
    }

    fn serialize_u8(self, v: u8) -> Result<Term, TermConvError> {
        Ok(Term::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<Term, TermConvError> {
        Ok(Term::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<Term, TermConvError> {
        Ok(Term::from(v))
    }

    fn serialize_u64(self, v: u64) -> Result<Term, TermConvError> {
        int(v)
    }

    fn serialize_u128(self, v: u128) -> Result<Term, TermConvError> {
        int(v)
    }

    fn serialize_f32(self, v: f32) -> Result<Term, TermConvError> {
        Ok(Term::Float(f64::from(v)))
    }

    fn serialize_f64(self, v: f64) -> Result<Term, TermConvError> {
        Ok(Term::Float(v))
    }

    fn serialize_char(self, v: char) -> Result<Term, TermConvError> {
        Ok(Term::str(v.encode_utf8(&mut [0; 4])))
    }

    fn serialize_str(self, v: &str) -> Result<Term, TermConvError> {
        Ok(Term::str(v))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Term, TermConvError> {
        Ok(Term::Binary(Binary::from_slice(v)))
    }

    fn serialize_none(self) -> Result<Term, TermConvError> {
        Ok(Term::nil())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Term, TermConvError> {
        v.serialize(self)
    }

    fn serialize_unit(self) -> Result<Term, TermConvError> {
        Ok(Term::nil())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Term, TermConvError> {
        Ok(Term::nil())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Term, TermConvError> {
        atom(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<Term, TermConvError> {
        // Term, Pid, Ref and Atom mark themselves so that they convert to themselves.
        match rebuild_marked(name, v) {
            Some(rebuilt) => rebuilt.map_err(TermConvError::custom),
            None => v.serialize(self),
        }
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Term, TermConvError> {
        Ok(Term::tuple(vec![
            atom(variant)?,
            v.serialize(TermSerializer)?,
        ]))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, TermConvError> {
        Ok(SeqBuilder::new(len.unwrap_or(0), true))
    }

    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, TermConvError> {
        Ok(SeqBuilder::new(len, false))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, TermConvError> {
        Ok(SeqBuilder::new(len, false))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, TermConvError> {
        let mut seq = SeqBuilder::new(len.saturating_add(1), false);
        seq.items.push(atom(variant)?);
        Ok(seq)
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<MapBuilder, TermConvError> {
        Ok(MapBuilder {
            map: BTreeMap::new(),
            key: None,
        })
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<StructBuilder, TermConvError> {
        Ok(StructBuilder {
            fields: BTreeMap::new(),
            variant: None,
        })
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<StructBuilder, TermConvError> {
        Ok(StructBuilder {
            fields: BTreeMap::new(),
            variant: Some(atom(variant)?),
        })
    }
}

/// Elements of a list, a tuple, or a tuple variant (whose tag is the first element).
pub(super) struct SeqBuilder {
    items: Vec<Term>,
    list: bool,
}

impl SeqBuilder {
    fn new(len: usize, list: bool) -> SeqBuilder {
        SeqBuilder {
            items: Vec::with_capacity(len.min(MAX_PREALLOC)),
            list,
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TermConvError> {
        self.items.push(v.serialize(TermSerializer)?);
        Ok(())
    }

    fn finish(self) -> Result<Term, TermConvError> {
        Ok(if self.list {
            Term::list(self.items)
        } else {
            Term::tuple(self.items)
        })
    }
}

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Term;
    type Error = TermConvError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TermConvError> {
        self.push(v)
    }

    fn end(self) -> Result<Term, TermConvError> {
        self.finish()
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Term;
    type Error = TermConvError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TermConvError> {
        self.push(v)
    }

    fn end(self) -> Result<Term, TermConvError> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Term;
    type Error = TermConvError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TermConvError> {
        self.push(v)
    }

    fn end(self) -> Result<Term, TermConvError> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for SeqBuilder {
    type Ok = Term;
    type Error = TermConvError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TermConvError> {
        self.push(v)
    }

    fn end(self) -> Result<Term, TermConvError> {
        self.finish()
    }
}

/// Entries of a map; a repeated key keeps its last value.
pub(super) struct MapBuilder {
    map: BTreeMap<Term, Term>,
    key: Option<Term>,
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Term;
    type Error = TermConvError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), TermConvError> {
        self.key = Some(k.serialize(TermSerializer)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TermConvError> {
        let k = self
            .key
            .take()
            .ok_or_else(|| TermConvError::custom("map value serialized before its key"))?;
        self.map.insert(k, v.serialize(TermSerializer)?);
        Ok(())
    }

    fn end(self) -> Result<Term, TermConvError> {
        match self.key {
            Some(_) => Err(TermConvError::custom("map key serialized without a value")),
            None => Ok(Term::Map(self.map.into())),
        }
    }
}

/// Fields of a struct (a map with atom keys), or of a struct variant (`{tag, %{...}}`).
pub(super) struct StructBuilder {
    fields: BTreeMap<Term, Term>,
    variant: Option<Term>,
}

impl StructBuilder {
    fn field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        v: &T,
    ) -> Result<(), TermConvError> {
        self.fields
            .insert(atom(name)?, v.serialize(TermSerializer)?);
        Ok(())
    }

    fn finish(self) -> Result<Term, TermConvError> {
        let fields = Term::Map(self.fields.into());
        Ok(match self.variant {
            Some(tag) => Term::tuple(vec![tag, fields]),
            None => fields,
        })
    }
}

impl ser::SerializeStruct for StructBuilder {
    type Ok = Term;
    type Error = TermConvError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        v: &T,
    ) -> Result<(), TermConvError> {
        self.field(name, v)
    }

    fn end(self) -> Result<Term, TermConvError> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for StructBuilder {
    type Ok = Term;
    type Error = TermConvError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        v: &T,
    ) -> Result<(), TermConvError> {
        self.field(name, v)
    }

    fn end(self) -> Result<Term, TermConvError> {
        self.finish()
    }
}
