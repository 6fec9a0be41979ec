//! Evaluating blocks (`case`, `receive`, `cond`, `for`, `if`), interpolation, and the
//! application of closures and captures.
//!
//! Variables bound inside a clause, a branch or a comprehension are scoped to it, as in
//! Elixir: after the block the variables are those from before it.

use std::collections::HashMap;
use std::time::Duration;

use super::patterns::{guard_holds, match_pattern, truthy};
use super::{EvalError, Interp};
use crate::console::closure;
use crate::console::parse::{Clause, Expr, ForStep, StrPiece};
use crate::term::Term;

/// How many levels of [`super::MAX_DEPTH`] a closure's application takes.
const APPLY_COST: usize = 5;

/// A clause that matched, and the bindings its patterns made.
type Chosen<'c> = Option<(&'c Clause, HashMap<String, Term>)>;

impl Interp<'_> {
    /// Runs `f` with `binds` added to the variables, and puts the variables back as
    /// they were after it.
    pub(super) fn scoped<T>(
        &mut self,
        binds: impl IntoIterator<Item = (String, Term)>,
        f: impl FnOnce(&mut Self) -> Result<T, EvalError>,
    ) -> Result<T, EvalError> {
        let saved = self.vars.clone();
        self.vars.extend(binds);
        let r = f(self);
        self.vars = saved;
        r
    }

    /// A body's value: its last expression's (`nil` when empty).
    pub(super) fn body(&mut self, exprs: &[Expr]) -> Result<Term, EvalError> {
        let mut last = Term::nil();
        for e in exprs {
            last = self.eval(e)?;
        }
        Ok(last)
    }

    /// The first clause whose patterns match `values` and whose guard holds, with its
    /// bindings.
    fn clause_for<'c>(
        &self,
        clauses: &'c [Clause],
        values: &[Term],
    ) -> Result<Chosen<'c>, EvalError> {
        'clauses: for c in clauses {
            if c.patterns.len() != values.len() {
                continue;
            }
            let mut binds = HashMap::new();
            for (p, v) in c.patterns.iter().zip(values) {
                if !match_pattern(p, v, &self.vars, &mut binds)? {
                    continue 'clauses;
                }
            }
            if guard_holds(c.guard.as_ref(), &self.vars, &binds) {
                return Ok(Some((c, binds)));
            }
        }
        Ok(None)
    }

    pub(super) fn case(&mut self, value: &Term, clauses: &[Clause]) -> Result<Term, EvalError> {
        match self.clause_for(clauses, std::slice::from_ref(value))? {
            Some((c, binds)) => self.scoped(binds, |s| s.body(&c.body)),
            None => Err(EvalError::new(
                "CaseClauseError",
                format!("no case clause matching: {value}"),
            )),
        }
    }

    pub(super) fn cond(&mut self, clauses: &[Clause]) -> Result<Term, EvalError> {
        for c in clauses {
            if truthy(&self.eval(&c.patterns[0])?) {
                return self.scoped(Vec::new(), |s| s.body(&c.body));
            }
        }
        Err(EvalError::new(
            "CondClauseError",
            "no cond clause evaluated to a truthy value",
        ))
    }

    /// `receive`: the first message (oldest first) that a clause matches is taken;
    /// with `after`, its body runs if none came in time.
    pub(super) fn receive(
        &mut self,
        clauses: &[Clause],
        after: Option<&(Expr, Vec<Expr>)>,
    ) -> Result<Term, EvalError> {
        let timeout = match after {
            None => None,
            Some((ms, _)) => match self.eval(ms)? {
                Term::Int(ms) if ms >= 0 => Some(Duration::from_millis(ms as u64)),
                t if t.is_atom("infinity") => None,
                t => {
                    return Err(EvalError::arg(format!(
                        "the after timeout must be a non-negative integer or :infinity, got {t}"
                    )));
                }
            },
        };
        let vars = &self.vars;
        let got = self.me.receive_with(
            |m| {
                clauses.iter().find_map(|c| {
                    let mut binds = HashMap::new();
                    let fits = match_pattern(&c.patterns[0], m, vars, &mut binds).unwrap_or(false)
                        && guard_holds(c.guard.as_ref(), vars, &binds);
                    fits.then_some((c, binds))
                })
            },
            timeout,
        );
        match (got, after) {
            (Some((c, binds)), _) => self.scoped(binds, |s| s.body(&c.body)),
            (None, Some((_, body))) => self.scoped(Vec::new(), |s| s.body(body)),
            (None, None) => Ok(Term::nil()),
        }
    }

    /// `for`: the body's value for each combination the generators give and the
    /// filters keep, in order; elements a generator's pattern doesn't match are skipped.
    pub(super) fn comprehend(
        &mut self,
        steps: &[ForStep],
        body: &[Expr],
        out: &mut Vec<Term>,
    ) -> Result<(), EvalError> {
        match steps.split_first() {
            None => {
                out.push(self.body(body)?);
                Ok(())
            }
            Some((ForStep::Filter(cond), rest)) => {
                if truthy(&self.eval(cond)?) {
                    self.comprehend(rest, body, out)?;
                }
                Ok(())
            }
            Some((ForStep::Gen(pat, source), rest)) => {
                let items = crate::console::enumerable::elements(&self.eval(source)?)?;
                for item in items {
                    let mut binds = HashMap::new();
                    if self.matches(pat, &item, &mut binds)? {
                        self.scoped(binds, |s| s.comprehend(rest, body, out))?;
                    }
                }
                Ok(())
            }
        }
    }

    /// `"text #{expr}"`: each expression's value as `to_string` gives it.
    pub(super) fn interpolate(&mut self, pieces: &[StrPiece]) -> Result<Term, EvalError> {
        let mut s = String::new();
        for p in pieces {
            match p {
                StrPiece::Lit(t) => s.push_str(t),
                StrPiece::Code(exprs) => {
                    let v = self.body(exprs)?;
                    s.push_str(&to_chars(&v)?);
                }
            }
        }
        Ok(Term::str(&s))
    }

    /// Applies `f` (a closure, or a capture `&Module.fun/arity`) to `args`.
    pub(crate) fn apply(&mut self, f: &Term, args: Vec<Term>) -> Result<Term, EvalError> {
        if let Some([m, fun, Term::Int(arity)]) = f.tagged("&") {
            let (Some(m), Some(fun)) = (m.as_atom(), fun.as_atom()) else {
                return Err(bad_function(f));
            };
            if *arity as usize != args.len() {
                return Err(bad_arity(f, &args));
            }
            return self.call_remote(m, fun.as_str(), args);
        }
        let Some(fun) = closure::decode(f) else {
            return Err(bad_function(f));
        };
        let def = fun.definition()?;
        if def.arity() != args.len() {
            return Err(bad_arity(f, &args));
        }
        // An application holds more of the stack than a plain level (the closure's
        // parsed definition, its clause's bindings), so it counts as several.
        if self.depth + APPLY_COST >= super::MAX_DEPTH {
            return Err(EvalError::new(
                "SystemLimitError",
                "closures applied inside each other too deeply (a runaway recursion?)",
            ));
        }
        self.depth += APPLY_COST;
        // The closure sees what it captured, not the caller's variables.
        let caller = std::mem::replace(&mut self.vars, fun.bindings);
        let r = match self.clause_for(&def.clauses, &args) {
            Ok(Some((c, binds))) => {
                self.vars.extend(binds);
                self.body(&c.body)
            }
            Ok(None) => Err(EvalError::new(
                "FunctionClauseError",
                format!(
                    "no function clause matching in anonymous fn/{}: {}",
                    args.len(),
                    Term::list(args.clone())
                ),
            )),
            Err(e) => Err(e),
        };
        self.vars = caller;
        self.depth -= APPLY_COST;
        r
    }
}

fn bad_function(f: &Term) -> EvalError {
    EvalError::new("BadFunctionError", format!("expected a function, got: {f}"))
}

fn bad_arity(f: &Term, args: &[Term]) -> EvalError {
    EvalError::new(
        "BadArityError",
        format!("{} called with {} arguments", closure::show(f), args.len()),
    )
}

/// `to_string` of an interpolated value: text as is, atoms without their colon
/// (`nil` as nothing), numbers, and lists of text or code points.
pub(crate) fn to_chars(t: &Term) -> Result<String, EvalError> {
    Ok(match t {
        Term::Str(s) => s.to_string(),
        Term::Atom(a) if a.as_str() == "nil" => String::new(),
        Term::Atom(a) => a.as_str().to_owned(),
        Term::Int(i) => i.to_string(),
        Term::Float(_) => t.to_string(),
        Term::Binary(b) => String::from_utf8_lossy(b.as_ref()).into_owned(),
        Term::List(items) => {
            let mut s = String::new();
            for i in items.iter() {
                match i {
                    Term::Int(c) => s.push(
                        u32::try_from(*c)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| EvalError::arg(format!("invalid code point {c}")))?,
                    ),
                    other => s.push_str(&to_chars(other)?),
                }
            }
            s
        }
        other => {
            return Err(EvalError::new(
                "Protocol.UndefinedError",
                format!("protocol String.Chars not implemented for {other}"),
            ));
        }
    })
}
