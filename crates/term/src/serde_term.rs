//! Any `serde` type to and from a [`Term`], as `serde_json::to_value` / `from_value` do
//! for JSON: a process can send a Rust struct as a term another process (or an Elixir-style
//! pattern) can take apart.
//!
//! # Mapping
//!
//! | Rust (serde data model)             | Term                                   |
//! |-------------------------------------|----------------------------------------|
//! | `bool`                              | atom `true` / `false`                  |
//! | integers                            | `Int` (a `u64`/`i128` beyond `i64` is an error) |
//! | `f32`, `f64`                        | `Float`                                |
//! | `char`, `str`, `String`             | `Str`                                  |
//! | bytes (`serialize_bytes`)           | `Binary`                               |
//! | `None`, `()`, unit struct           | atom `nil`                             |
//! | `Some(x)`, newtype struct `N(x)`    | `x`                                    |
//! | tuple, tuple struct                 | `Tuple`                                |
//! | sequence (`Vec`, slices, sets)      | `List`                                 |
//! | map                                 | `Map`                                  |
//! | struct                              | `Map` with atom keys (the field names)  |
//! | unit variant `E::A`                 | atom `A`                               |
//! | newtype variant `E::B(x)`           | `{B, x}` (`B` an atom)                 |
//! | tuple variant `E::C(x, y)`          | `{C, x, y}`                            |
//! | struct variant `E::D { f }`         | `{D, %{f: ...}}`                       |
//! | [`Term`], [`Pid`], [`Ref`], [`Atom`] | themselves                            |
//!
//! [`from_term`] accepts these forms back, and is lenient where no information is lost: a
//! string may come from a `Str`, a UTF-8 `Binary` or an atom (so atom-keyed maps decode
//! into `HashMap<String, _>`); bytes from a `Binary` or a `Str`; an `f64` from an `Int`;
//! a sequence or tuple from either a `List` or a `Tuple`; a unit from `nil` or `{}`; an
//! enum variant's name from an atom or a string.
//!
//! Two Rust values can map to the same term, and then the reverse picks one: `Some(())`
//! and `Some(None)` become `nil`, which reads back as `None`.
//!
//! [`Term`], [`Pid`], [`Ref`] and [`Atom`] serialize as newtype structs with reserved
//! names (`$oxbeam::Term`, ...), which postcard writes as nothing and which this module
//! recognises, so a struct holding a `Term` field converts with the term unchanged. A term
//! embedded this way is limited to [`DEFAULT_MAX_DEPTH`](super::codec::DEFAULT_MAX_DEPTH)
//! levels of nesting, like any term serialized through its `Serialize` impl.
//!
//! ```
//! use oxbeam_term::{Term, from_term, to_term};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! enum Msg {
//!     Join { room: String },
//!     Say(String, u32),
//! }
//!
//! let t = to_term(&Msg::Say("hi".into(), 3)).unwrap();
//! assert_eq!(t, Term::tuple(vec![Term::atom("Say"), Term::str("hi"), Term::Int(3)]));
//! assert_eq!(from_term::<Msg>(&t).unwrap(), Msg::Say("hi".into(), 3));
//! assert!(from_term::<Msg>(&Term::atom("Leave")).is_err());
//! ```

mod de;
mod ser;

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Term;
#[cfg(doc)]
use super::{Atom, Pid, Ref};

/// Why a value could not be converted to or from a term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermConvError(String);

impl TermConvError {
    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TermConvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TermConvError {}

impl serde::ser::Error for TermConvError {
    fn custom<T: fmt::Display>(msg: T) -> TermConvError {
        TermConvError(msg.to_string())
    }
}

impl serde::de::Error for TermConvError {
    fn custom<T: fmt::Display>(msg: T) -> TermConvError {
        TermConvError(msg.to_string())
    }
}

/// Converts `v` to a term (see the [mapping](self#mapping)).
pub fn to_term<T: Serialize + ?Sized>(v: &T) -> Result<Term, TermConvError> {
    v.serialize(ser::TermSerializer)
}

/// Converts a term to a `T` (see the [mapping](self#mapping)); fails with a message naming
/// what was found and what was expected.
pub fn from_term<T: DeserializeOwned>(t: &Term) -> Result<T, TermConvError> {
    T::deserialize(de::TermDeserializer(t))
}

#[cfg(test)]
mod tests;
