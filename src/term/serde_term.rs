//! (stub: being written)
use super::Term;
/// stub
pub fn to_term<T: serde::Serialize>(_v: &T) -> Result<Term, String> { unimplemented!() }
/// stub
pub fn from_term<T: serde::de::DeserializeOwned>(_t: &Term) -> Result<T, String> { unimplemented!() }
