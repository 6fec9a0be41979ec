//! `Enum` at the console: the functions a reader of the chapter reaches for, taking
//! closures (`Enum.map(Node.list(), fn n -> ... end)`) over lists, ranges and maps. A
//! function not here falls through to the node's registered functions (`Enum.sum/1`
//! is a built-in every node has, so rpc can call it too).

use super::eval::{EvalError, Interp, range_bounds, truthy};
use crate::term::Term;

/// The most elements taken from one range (a runaway `1..1_000_000_000` is an error,
/// not a node out of memory).
const MAX_RANGE: i64 = 10_000_000;

/// The elements of an enumerable: a list's, a range's, a map's `{key, value}` pairs.
pub(crate) fn elements(t: &Term) -> Result<Vec<Term>, EvalError> {
    if let Some(items) = t.as_list() {
        return Ok(items.to_vec());
    }
    if let Some(m) = t.as_map() {
        if let Some((first, last)) = range_bounds(m) {
            if (last - first).abs() >= MAX_RANGE {
                return Err(EvalError::arg(format!(
                    "ranges of more than {MAX_RANGE} elements are not enumerated here"
                )));
            }
            let step = if last >= first { 1 } else { -1 };
            let n = (last - first).abs() + 1;
            return Ok((0..n).map(|i| Term::Int(first + i * step)).collect());
        }
        return Ok(m
            .iter()
            .map(|(k, v)| Term::tuple(vec![k.clone(), v.clone()]))
            .collect());
    }
    Err(EvalError::new(
        "Protocol.UndefinedError",
        format!("protocol Enumerable not implemented for {t}"),
    ))
}

/// `Enum.f(args)`; `None` for a function not here.
pub(crate) fn call(s: &mut Interp<'_>, f: &str, args: &[Term]) -> Result<Option<Term>, EvalError> {
    Ok(Some(match (f, args) {
        ("map", [e, fun]) => {
            let mut out = Vec::new();
            for x in elements(e)? {
                out.push(s.apply(fun, vec![x])?);
            }
            Term::list(out)
        }
        ("each", [e, fun]) => {
            for x in elements(e)? {
                s.apply(fun, vec![x])?;
            }
            Term::atom("ok")
        }
        ("filter" | "reject", [e, fun]) => {
            let keep = f == "filter";
            let mut out = Vec::new();
            for x in elements(e)? {
                if truthy(&s.apply(fun, vec![x.clone()])?) == keep {
                    out.push(x);
                }
            }
            Term::list(out)
        }
        ("reduce", [e, acc, fun]) => {
            let mut acc = acc.clone();
            for x in elements(e)? {
                acc = s.apply(fun, vec![x, acc])?;
            }
            acc
        }
        ("find", [e, fun]) => {
            for x in elements(e)? {
                if truthy(&s.apply(fun, vec![x.clone()])?) {
                    return Ok(Some(x));
                }
            }
            Term::nil()
        }
        ("any?" | "all?", [e, fun]) => {
            let any = f == "any?";
            for x in elements(e)? {
                if truthy(&s.apply(fun, vec![x])?) == any {
                    return Ok(Some(Term::from(any)));
                }
            }
            Term::from(!any)
        }
        ("to_list", [e]) => Term::list(elements(e)?),
        ("count", [e]) => Term::from(elements(e)?.len()),
        ("member?", [e, x]) => Term::from(elements(e)?.contains(x)),
        ("reverse", [e]) => {
            let mut v = elements(e)?;
            v.reverse();
            Term::list(v)
        }
        ("sort", [e]) => {
            let mut v = elements(e)?;
            v.sort();
            Term::list(v)
        }
        ("max" | "min", [e]) => {
            let v = elements(e)?;
            let pick = if f == "max" {
                v.into_iter().max()
            } else {
                v.into_iter().min()
            };
            pick.ok_or_else(|| EvalError::new("Enum.EmptyError", "empty error"))?
        }
        ("with_index", [e]) => Term::list(
            elements(e)?
                .into_iter()
                .enumerate()
                .map(|(i, x)| Term::tuple(vec![x, Term::from(i)]))
                .collect::<Vec<_>>(),
        ),
        ("join", [e, sep]) => {
            let sep = sep
                .as_str()
                .ok_or_else(|| EvalError::arg(format!("a separator string, got {sep}")))?;
            let parts = elements(e)?
                .iter()
                .map(super::eval::to_chars)
                .collect::<Result<Vec<_>, _>>()?;
            Term::str(&parts.join(sep))
        }
        _ => return Ok(None),
    }))
}
