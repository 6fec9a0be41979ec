//! Registered functions: what remote spawn and rpc may run.
//!
//! Closures never cross nodes. A node instead registers functions under
//! `module:function/arity`, and a spawn request (local or from another node) names one
//! with term arguments (an MFA). Only registered functions run: unlike Erlang, where a
//! connected node may call any function, a peer can do no more than what was registered.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::Ctx;
use crate::term::{Atom, Term};

/// A registered function: runs in its own process with the call's arguments and
/// returns a result (rpc sends it back; a spawned process just ends `normal`).
pub type RegisteredFn = Arc<dyn Fn(&mut Ctx, Vec<Term>) -> Term + Send + Sync>;

/// `{:undef, {module, function, arity}}`: the error for a function that isn't there.
pub fn undef(module: Atom, function: Atom, arity: usize) -> Term {
    Term::tuple(vec![
        Term::atom("undef"),
        Term::tuple(vec![
            Term::Atom(module),
            Term::Atom(function),
            Term::from(arity),
        ]),
    ])
}

/// The registered functions of one node.
#[derive(Default)]
pub struct Functions {
    by_key: RwLock<HashMap<(Atom, Atom, usize), RegisteredFn>>,
}

impl Functions {
    /// Registers (or replaces) `module:function/arity`.
    pub fn register(
        &self,
        module: Atom,
        function: Atom,
        arity: usize,
        f: impl Fn(&mut Ctx, Vec<Term>) -> Term + Send + Sync + 'static,
    ) {
        self.by_key
            .write()
            .insert((module, function, arity), Arc::new(f));
    }

    /// The function registered as `module:function/arity`.
    pub fn lookup(&self, module: Atom, function: Atom, arity: usize) -> Option<RegisteredFn> {
        self.by_key.read().get(&(module, function, arity)).cloned()
    }

    /// Every registered `(module, function, arity)`, sorted.
    pub fn list(&self) -> Vec<(Atom, Atom, usize)> {
        let mut all: Vec<_> = self.by_key.read().keys().copied().collect();
        all.sort();
        all
    }
}
