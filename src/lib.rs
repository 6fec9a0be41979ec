//! oxbeam (being built)
#![forbid(unsafe_code)]

pub mod rt;
pub mod term;

pub use term::{Atom, Pid, Ref, Term};
