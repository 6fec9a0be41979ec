//! oxbeam (being built)
#![forbid(unsafe_code)]

pub mod term;
pub mod rt;

pub use term::{Atom, Pid, Ref, Term};
