//! Patterns and guards: pure functions of a value and the variables in scope, so a
//! `receive` can test them against each message while its process waits.
//!
//! Guards are Elixir's guard expressions: literals, variables, operators, `and`/`or`/
//! `not`, `in`, and the guard-safe functions (`is_integer/1`, `length/1`, `elem/2`...).
//! A guard that raises is false, as in Elixir.

use std::collections::HashMap;

use super::{EvalError, binop, range};
use crate::console::parse::Expr;
use crate::term::{Atom, Term};

type Vars = HashMap<String, Term>;

/// Whether a value counts as true (anything but `false` and `nil`).
pub(crate) fn truthy(t: &Term) -> bool {
    !(t.is_atom("false") || t.is_atom("nil"))
}

/// `left op right` for `and`, `or`, `&&`, `||`: `right` is evaluated only when needed.
pub(crate) fn short_circuit(
    op: &str,
    left: Term,
    right: impl FnOnce() -> Result<Term, EvalError>,
) -> Result<Term, EvalError> {
    let strict = matches!(op, "and" | "or");
    if strict && !(left.is_atom("true") || left.is_atom("false")) {
        return Err(EvalError::new(
            "BadBooleanError",
            format!("expected a boolean on left-side of \"{op}\", got: {left}"),
        ));
    }
    let take_right = match op {
        "and" | "&&" => truthy(&left),
        _ => !truthy(&left),
    };
    if take_right { right() } else { Ok(left) }
}

/// A literal's value (`None` for anything that isn't one).
fn literal(e: &Expr) -> Option<Term> {
    Some(match e {
        Expr::Int(i) => Term::Int(*i),
        Expr::Float(x) => Term::Float(*x),
        Expr::Atom(a) => Term::Atom(Atom::try_new(a).ok()?),
        Expr::Str(s) => Term::str(s),
        Expr::Charlist(s) => Term::list(s.chars().map(|c| Term::Int(c as i64)).collect::<Vec<_>>()),
        Expr::Alias(a) => Term::Atom(Atom::try_new(&format!("Elixir.{a}")).ok()?),
        Expr::Neg(x) => match literal(x)? {
            Term::Int(i) => Term::Int(i.wrapping_neg()),
            Term::Float(f) => Term::Float(-f),
            _ => return None,
        },
        _ => return None,
    })
}

/// Matches `value` against the pattern `pat`, collecting bindings in `binds`; pins
/// read `vars`.
pub(crate) fn match_pattern(
    pat: &Expr,
    value: &Term,
    vars: &Vars,
    binds: &mut Vars,
) -> Result<bool, EvalError> {
    Ok(match pat {
        Expr::Var(v) if v.starts_with('_') => true,
        Expr::Var(v) => match binds.get(v) {
            Some(bound) => bound == value,
            None => {
                binds.insert(v.clone(), value.clone());
                true
            }
        },
        Expr::Pin(v) => match vars.get(v) {
            Some(bound) => bound == value,
            None => {
                return Err(EvalError::new(
                    "CompileError",
                    format!("undefined variable ^{v}"),
                ));
            }
        },
        Expr::Tuple(ps) => match value.as_tuple() {
            Some(vs) if vs.len() == ps.len() => {
                for (p, v) in ps.iter().zip(vs) {
                    if !match_pattern(p, v, vars, binds)? {
                        return Ok(false);
                    }
                }
                true
            }
            _ => false,
        },
        Expr::List(ps, tail) => {
            let Some(vs) = value.as_list() else {
                return Ok(false);
            };
            let fits = match tail {
                None => vs.len() == ps.len(),
                Some(_) => vs.len() >= ps.len(),
            };
            if !fits {
                return Ok(false);
            }
            for (p, v) in ps.iter().zip(vs) {
                if !match_pattern(p, v, vars, binds)? {
                    return Ok(false);
                }
            }
            match tail {
                Some(t) => match_pattern(t, &Term::list(vs[ps.len()..].to_vec()), vars, binds)?,
                None => true,
            }
        }
        Expr::Map(pairs) => {
            let Some(m) = value.as_map() else {
                return Ok(false);
            };
            for (k, p) in pairs {
                let key = guard(k, vars)?;
                match m.get(&key) {
                    Some(v) if match_pattern(p, v, vars, binds)? => {}
                    _ => return Ok(false),
                }
            }
            true
        }
        Expr::Match(a, b) => {
            match_pattern(a, value, vars, binds)? && match_pattern(b, value, vars, binds)?
        }
        other => match literal(other) {
            Some(t) => &t == value,
            None => {
                return Err(EvalError::new(
                    "CompileError",
                    format!("cannot use {other:?} in a pattern"),
                ));
            }
        },
    })
}

/// Whether the guard holds with `binds` over `vars` (a raising guard is false).
pub(crate) fn guard_holds(g: Option<&Expr>, vars: &Vars, binds: &Vars) -> bool {
    let Some(g) = g else {
        return true;
    };
    if binds.is_empty() {
        return guard(g, vars).is_ok_and(|t| t.is_atom("true"));
    }
    let mut scope = vars.clone();
    scope.extend(binds.iter().map(|(k, v)| (k.clone(), v.clone())));
    guard(g, &scope).is_ok_and(|t| t.is_atom("true"))
}

/// A guard expression's value.
pub(crate) fn guard(e: &Expr, vars: &Vars) -> Result<Term, EvalError> {
    if let Some(t) = literal(e) {
        return Ok(t);
    }
    let all = |items: &[Expr]| -> Result<Vec<Term>, EvalError> {
        items.iter().map(|i| guard(i, vars)).collect()
    };
    Ok(match e {
        Expr::Var(v) | Expr::Pin(v) => vars
            .get(v)
            .cloned()
            .ok_or_else(|| EvalError::new("CompileError", format!("undefined variable \"{v}\"")))?,
        Expr::Tuple(items) => Term::tuple(all(items)?),
        Expr::List(items, None) => Term::list(all(items)?),
        Expr::Map(pairs) => {
            let mut v = Vec::with_capacity(pairs.len());
            for (k, val) in pairs {
                v.push((guard(k, vars)?, guard(val, vars)?));
            }
            Term::map(v)
        }
        Expr::Range(a, b) => match (guard(a, vars)?, guard(b, vars)?) {
            (Term::Int(a), Term::Int(b)) => range(a, b),
            _ => return Err(EvalError::arg("ranges need integers")),
        },
        Expr::Neg(x) => binop("-", Term::Int(0), guard(x, vars)?)?,
        Expr::Not(x) => Term::from(!truthy(&guard(x, vars)?)),
        Expr::BinOp(op @ ("and" | "or" | "&&" | "||"), a, b) => {
            short_circuit(op, guard(a, vars)?, || guard(b, vars))?
        }
        Expr::BinOp(op, a, b) => binop(op, guard(a, vars)?, guard(b, vars)?)?,
        Expr::Local(f, args) => guard_call(f, &all(args)?)?,
        other => {
            return Err(EvalError::new(
                "CompileError",
                format!("cannot use {other:?} in a guard"),
            ));
        }
    })
}

/// Whether `f` is one of the guard-safe functions [`guard_call`] knows (which also
/// work outside guards: `rem(7, 2)` at the prompt).
pub(crate) fn is_guard_fn(f: &str) -> bool {
    f.starts_with("is_")
        || matches!(
            f,
            "length" | "tuple_size" | "map_size" | "hd" | "elem" | "abs" | "rem" | "div" | "node"
        )
}

/// The guard-safe functions of Kernel.
pub(crate) fn guard_call(f: &str, args: &[Term]) -> Result<Term, EvalError> {
    let bad = || EvalError::arg(format!("bad argument in guard {f}/{}", args.len()));
    Ok(match (f, args) {
        ("is_atom", [t]) => Term::from(t.as_atom().is_some()),
        ("is_boolean", [t]) => Term::from(t.is_atom("true") || t.is_atom("false")),
        ("is_nil", [t]) => Term::from(t.is_atom("nil")),
        ("is_integer", [t]) => Term::from(matches!(t, Term::Int(_))),
        ("is_float", [t]) => Term::from(matches!(t, Term::Float(_))),
        ("is_number", [t]) => Term::from(matches!(t, Term::Int(_) | Term::Float(_))),
        ("is_binary" | "is_bitstring", [t]) => {
            Term::from(matches!(t, Term::Str(_) | Term::Binary(_)))
        }
        ("is_list", [t]) => Term::from(t.as_list().is_some()),
        ("is_tuple", [t]) => Term::from(t.as_tuple().is_some()),
        ("is_map", [t]) => Term::from(t.as_map().is_some()),
        ("is_pid", [t]) => Term::from(t.as_pid().is_some()),
        ("is_reference", [t]) => Term::from(matches!(t, Term::Ref(_))),
        ("is_function", [t]) => Term::from(crate::console::closure::is_fun(t)),
        ("length", [t]) => Term::from(t.as_list().ok_or_else(bad)?.len()),
        ("tuple_size", [t]) => Term::from(t.as_tuple().ok_or_else(bad)?.len()),
        ("map_size", [t]) => Term::from(t.as_map().ok_or_else(bad)?.len()),
        ("hd", [t]) => t
            .as_list()
            .and_then(|l| l.first())
            .cloned()
            .ok_or_else(bad)?,
        ("elem", [t, Term::Int(i)]) => usize::try_from(*i)
            .ok()
            .and_then(|i| t.as_tuple()?.get(i).cloned())
            .ok_or_else(bad)?,
        ("abs", [Term::Int(i)]) => Term::Int(i.checked_abs().ok_or_else(bad)?),
        ("abs", [Term::Float(x)]) => Term::Float(x.abs()),
        ("rem", [Term::Int(a), Term::Int(b)]) if *b != 0 => Term::Int(a.wrapping_rem(*b)),
        ("div", [Term::Int(a), Term::Int(b)]) if *b != 0 => Term::Int(a.wrapping_div(*b)),
        ("node", [Term::Pid(p)]) => Term::Atom(p.node()),
        _ => {
            return Err(EvalError::new(
                "CompileError",
                format!("cannot invoke {f}/{} inside a guard", args.len()),
            ));
        }
    })
}
