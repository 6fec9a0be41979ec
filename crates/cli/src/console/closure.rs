//! Closures as data: a `fn ... end` typed at the console is a term that any node running
//! the console's evaluator can apply, as an iex shell fun is erl_eval's data.
//!
//! **Format.** `{:"$oxbeam_fun", arity, source, bindings}`: the closure's source text
//! (`fn x -> x + n end`), and a map from the name of each variable it uses that was
//! bound where it was made to that variable's value (`%{"n" => 2}`). Nothing else: a
//! closure carries no code, only text that the applying node parses again, so it can
//! do nothing there but what the console itself can (built-ins and registered
//! functions: what a cookie holder's rpc can already do).
//!
//! **Applying it elsewhere.** `oxbeam_eval:apply/2` (`apply(fun, args)`) is registered on
//! every node the `oxbeam` command starts (`console` and `node`); `spawn(fn)` and
//! `Node.spawn(node, fn)` spawn that function with the closure, on this node or there.
//! A node without it answers as for any unknown function: `{:undef, {:oxbeam_eval,
//! :apply, 2}}`. A closure that raises prints the error (as a crash report) through its
//! group leader, so on the console that spawned it, and its process exits with the
//! error as reason.

use std::collections::{HashMap, HashSet};

use super::eval::{EvalError, Interp, atom_term};
use super::parse::{Clause, Expr, FnDef, ForStep, StrPiece, parse};
use crate::rt::Ctx;
use crate::rt::functions::Functions;
use crate::term::{Atom, Term};

const TAG: &str = "$oxbeam_fun";

/// The module and function that apply a closure on any node that has them.
pub const APPLY: (&str, &str) = ("oxbeam_eval", "apply");

/// A closure taken apart.
pub(crate) struct Fun {
    source: String,
    pub(crate) bindings: HashMap<String, Term>,
}

impl Fun {
    /// Its definition, parsed again from its source.
    pub(crate) fn definition(&self) -> Result<FnDef, EvalError> {
        match parse(&self.source) {
            Ok(mut exprs) if exprs.len() == 1 => match exprs.remove(0) {
                Expr::Fn(def) => Ok(def),
                _ => Err(malformed()),
            },
            _ => Err(malformed()),
        }
    }
}

fn malformed() -> EvalError {
    EvalError::new(
        "BadFunctionError",
        "a malformed closure (its source does not parse)",
    )
}

/// The closure `def` made where `vars` are bound: it keeps those it uses.
pub(crate) fn make(def: &FnDef, vars: &HashMap<String, Term>) -> Term {
    let mut used = HashSet::new();
    for c in &def.clauses {
        clause_names(c, &mut used);
    }
    let captured: Vec<(Term, Term)> = used
        .into_iter()
        .filter_map(|n| Some((Term::str(&n), vars.get(&n)?.clone())))
        .collect();
    Term::tuple(vec![
        Term::atom(TAG),
        Term::from(def.arity()),
        Term::str(&def.source),
        Term::map(captured),
    ])
}

/// The closure `t` is, if it is one.
pub(crate) fn decode(t: &Term) -> Option<Fun> {
    let [Term::Int(_), Term::Str(source), bindings] = t.tagged(TAG)? else {
        return None;
    };
    let bindings = bindings
        .as_map()?
        .iter()
        .map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone())))
        .collect::<Option<HashMap<_, _>>>()?;
    Some(Fun {
        source: source.to_string(),
        bindings,
    })
}

/// Whether `t` is a closure or a capture.
pub(crate) fn is_fun(t: &Term) -> bool {
    t.tagged(TAG).is_some() || t.tagged("&").is_some_and(|a| a.len() == 3)
}

/// How iex shows a value: a closure as `#Function<hash/arity in :oxbeam_eval>`, a
/// capture as `&Module.fun/arity`, anything else in inspect format with iex's limits
/// (50 items per collection, 4096 bytes of text: a 10 MB binary is one short line).
pub fn show(t: &Term) -> String {
    if let Some([Term::Int(arity), Term::Str(source), _]) = t.tagged(TAG) {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        source.hash(&mut h);
        return format!(
            "#Function<{}/{arity} in :oxbeam_eval>",
            h.finish() % 100_000_000
        );
    }
    if let Some([Term::Atom(m), Term::Atom(f), Term::Int(arity)]) = t.tagged("&") {
        return format!("&{}.{f}/{arity}", super::eval::module_display(*m));
    }
    t.inspect(50, 4096).to_string()
}

/// Prints `line` for a process that is not the console's own (a closure's): through
/// its group leader (`rt::io`), so on the terminal of the console that spawned it,
/// whichever node it runs on (this node's standard output if that can't be reached).
pub(crate) fn print(ctx: &mut Ctx, line: &str) {
    let _ = crate::rt::io::put_chars(ctx, &format!("{line}\n"));
}

/// Registers `oxbeam_eval:apply/2` (see the module docs).
pub fn register(functions: &Functions) {
    functions.register(
        Atom::new(APPLY.0),
        Atom::new(APPLY.1),
        2,
        |ctx: &mut Ctx, args: Vec<Term>| {
            let [fun, Term::List(call_args)] = args.as_slice() else {
                return Term::tuple(vec![Term::atom("error"), Term::atom("badarg")]);
            };
            let outcome = match Interp::in_process(ctx) {
                Some(mut interp) => interp.apply(fun, call_args.to_vec()),
                None => Err(EvalError::new(
                    "RuntimeError",
                    "closures run only on distributed nodes",
                )),
            };
            match outcome {
                Ok(v) => v,
                Err(e) => {
                    let me = ctx.pid();
                    print(
                        ctx,
                        &format!(
                            "[error] Process {} on node {} raised an exception\n{e}",
                            Term::Pid(me),
                            ctx.node().name()
                        ),
                    );
                    let reason = Term::tuple(vec![
                        atom_term(&format!("Elixir.{}", e.kind))
                            .unwrap_or_else(|_| Term::atom("error")),
                        Term::str(&e.message),
                    ]);
                    ctx.exit(reason)
                }
            }
        },
    );
}

/// The mfa that applies `fun` to no arguments (what `spawn(fn)` spawns).
pub(crate) fn spawn_mfa(fun: &Term) -> (Atom, Atom, Vec<Term>) {
    (
        Atom::new(APPLY.0),
        Atom::new(APPLY.1),
        vec![fun.clone(), Term::list(Vec::new())],
    )
}

/// The variable names `c` uses.
fn clause_names(c: &Clause, out: &mut HashSet<String>) {
    for e in c.patterns.iter().chain(&c.guard).chain(&c.body) {
        names(e, out);
    }
}

/// The variable names (and pinned names) `e` uses, at any depth.
fn names(e: &Expr, out: &mut HashSet<String>) {
    let all = |es: &[Expr], out: &mut HashSet<String>| es.iter().for_each(|e| names(e, out));
    match e {
        Expr::Var(v) | Expr::Pin(v) => {
            out.insert(v.clone());
        }
        Expr::Int(_)
        | Expr::Float(_)
        | Expr::Atom(_)
        | Expr::Str(_)
        | Expr::Charlist(_)
        | Expr::Alias(_) => {}
        Expr::Tuple(items) | Expr::Local(_, items) => all(items, out),
        Expr::List(items, tail) => {
            all(items, out);
            if let Some(t) = tail {
                names(t, out);
            }
        }
        Expr::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            names(k, out);
            names(v, out);
        }),
        Expr::Range(a, b) | Expr::Match(a, b) | Expr::BinOp(_, a, b) => {
            names(a, out);
            names(b, out);
        }
        Expr::Neg(x) | Expr::Not(x) | Expr::Capture(x, _, _) => names(x, out),
        Expr::Remote(m, _, args) | Expr::Apply(m, args) => {
            names(m, out);
            all(args, out);
        }
        Expr::Interp(pieces) => pieces.iter().for_each(|p| {
            if let StrPiece::Code(es) = p {
                all(es, out);
            }
        }),
        Expr::Fn(def) => def.clauses.iter().for_each(|c| clause_names(c, out)),
        Expr::Case(subject, clauses) => {
            names(subject, out);
            clauses.iter().for_each(|c| clause_names(c, out));
        }
        Expr::Receive(clauses, after) => {
            clauses.iter().for_each(|c| clause_names(c, out));
            if let Some(a) = after {
                names(&a.0, out);
                all(&a.1, out);
            }
        }
        Expr::Cond(clauses) => clauses.iter().for_each(|c| clause_names(c, out)),
        Expr::If(c, a, b) => {
            names(c, out);
            all(a, out);
            all(b, out);
        }
        Expr::For(steps, body) => {
            for s in steps {
                match s {
                    ForStep::Gen(p, src) => {
                        names(p, out);
                        names(src, out);
                    }
                    ForStep::Filter(f) => names(f, out),
                }
            }
            all(body, out);
        }
    }
}
