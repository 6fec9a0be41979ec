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

/// The built-in every node has: `erpc:execute_call(tag, reply_to, {module, function},
/// args)` runs the registered function and sends `{tag, {:return, result}}` to
/// `reply_to`; an unregistered function ends the process with `{:undef, ...}`, a panic
/// with its reason, as for any process. It is what rpc spawns on the target node.
pub fn register_builtins(functions: &Functions) {
    functions.register(Atom::new("erpc"), Atom::new("execute_call"), 4, |ctx: &mut Ctx, args: Vec<Term>| {
        let (Some(tag), Some(reply_to), Some([Term::Atom(m), Term::Atom(f)]), Some(call_args)) =
            (args[0].as_ref(), args[1].as_pid(), args[2].as_tuple(), args[3].as_list())
        else {
            ctx.exit(Term::atom("badarg"));
        };
        let (m, f, call_args) = (*m, *f, call_args.to_vec());
        let Some(fun) = ctx.node().functions().lookup(m, f, call_args.len()) else {
            ctx.exit(undef(m, f, call_args.len()));
        };
        let result = fun(ctx, call_args);
        ctx.send(reply_to, (Term::Ref(tag), (Term::atom("return"), result)));
        Term::ok()
    });
}
