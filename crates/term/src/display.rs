//! Terms print in Elixir's `inspect` format: `{:hello, :node1@localhost}`, `[1, 2]`,
//! `%{a: 1}`, `"text"`, `<<1, 2>>`, `#PID<0.90.0>`, `#Reference<0.1.0.7>`; `true`, `false`
//! and `nil` print bare, and a list of `{atom, value}` pairs prints as a keyword list
//! (`[a: 1, b: 2]`), as iex shows them.

use std::fmt::{self, Display, Formatter, Write};

use super::Term;
use super::atom::{Atom, needs_quotes};

fn write_atom(f: &mut Formatter<'_>, a: Atom) -> fmt::Result {
    match a.as_str() {
        "true" | "false" | "nil" => f.write_str(a.as_str()),
        _ => Display::fmt(&a, f),
    }
}

fn write_string(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            '#' => f.write_str("#")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

fn write_float(f: &mut Formatter<'_>, x: f64) -> fmt::Result {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e16 {
        write!(f, "{x:.1}")
    } else if x.is_finite() && (x.abs() >= 1e16 || (x != 0.0 && x.abs() < 1e-4)) {
        // Elixir writes 1.0e20 and 1.0e-5.
        let s = format!("{x:e}");
        match s.split_once('e') {
            Some((m, e)) if !m.contains('.') => write!(f, "{m}.0e{e}"),
            _ => f.write_str(&s),
        }
    } else {
        write!(f, "{x}")
    }
}

/// A range (`%{__struct__: Range, first: 1, last: 10, step: 1}`) prints as `1..10`.
fn as_range(m: &std::collections::BTreeMap<Term, Term>) -> Option<(i64, i64, i64)> {
    if m.len() != 4 || m.get(&Term::atom("__struct__")) != Some(&Term::atom("Elixir.Range")) {
        return None;
    }
    let get = |k: &str| m.get(&Term::atom(k)).and_then(Term::as_int);
    Some((get("first")?, get("last")?, get("step")?))
}

fn keyword_key(t: &Term) -> Option<Atom> {
    match t.as_tuple() {
        Some([Term::Atom(k), _]) if !needs_quotes(k.as_str()) => Some(*k),
        _ => None,
    }
}

fn write_seq(f: &mut Formatter<'_>, items: &[Term]) -> fmt::Result {
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        Display::fmt(t, f)?;
    }
    Ok(())
}

impl Display for Term {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Term::Atom(a) => write_atom(f, *a),
            Term::Int(i) => write!(f, "{i}"),
            Term::Float(x) => write_float(f, *x),
            Term::Str(s) => write_string(f, s),
            Term::Binary(b) => match std::str::from_utf8(b) {
                Ok(s) if s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') => {
                    write_string(f, s)
                }
                _ => {
                    f.write_str("<<")?;
                    for (i, byte) in b.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{byte}")?;
                    }
                    f.write_str(">>")
                }
            },
            Term::Pid(p) => Display::fmt(p, f),
            Term::Ref(r) => Display::fmt(r, f),
            Term::Tuple(t) => {
                f.write_char('{')?;
                write_seq(f, t)?;
                f.write_char('}')
            }
            Term::List(l) => {
                f.write_char('[')?;
                if !l.is_empty() && l.iter().all(|t| keyword_key(t).is_some()) {
                    for (i, t) in l.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        let k = keyword_key(t).map(|a| a.as_str()).unwrap_or_default();
                        write!(f, "{k}: ")?;
                        Display::fmt(&t.as_tuple().unwrap_or(&[])[1], f)?;
                    }
                } else {
                    write_seq(f, l)?;
                }
                f.write_char(']')
            }
            Term::Map(m) => {
                if let Some((first, last, step)) = as_range(m) {
                    return match step {
                        1 => write!(f, "{first}..{last}"),
                        _ => write!(f, "{first}..{last}//{step}"),
                    };
                }
                f.write_str("%{")?;
                let keyword = m
                    .keys()
                    .all(|k| matches!(k, Term::Atom(a) if !needs_quotes(a.as_str())));
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match k {
                        Term::Atom(a) if keyword => write!(f, "{}: ", a.as_str())?,
                        _ => write!(f, "{k} => ")?,
                    }
                    Display::fmt(v, f)?;
                }
                f.write_char('}')
            }
        }
    }
}

impl fmt::Debug for Term {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Atom, Pid};

    #[test]
    fn prints_like_iex() {
        let t = Term::tuple(vec![Term::atom("hello"), Term::atom("node1@localhost")]);
        assert_eq!(t.to_string(), "{:hello, :node1@localhost}");
        assert_eq!(
            Term::list(vec![Term::Int(2), Term::Int(2)]).to_string(),
            "[2, 2]"
        );
        assert_eq!(Term::from(true).to_string(), "true");
        assert_eq!(Term::nil().to_string(), "nil");
        assert_eq!(Term::str("a\"b").to_string(), "\"a\\\"b\"");
        assert_eq!(Term::binary(&[1, 2, 255]).to_string(), "<<1, 2, 255>>");
        assert_eq!(Term::Float(1.0).to_string(), "1.0");
        assert_eq!(Term::Float(2.5).to_string(), "2.5");
        assert_eq!(Term::Float(1e20).to_string(), "1.0e20");
        assert_eq!(Term::atom("Elixir.Kernel").to_string(), "Kernel");
        assert_eq!(Term::atom("Elixir.").to_string(), ":\"Elixir.\"");
        let range = Term::map(vec![
            (Term::atom("__struct__"), Term::atom("Elixir.Range")),
            (Term::atom("first"), Term::Int(1)),
            (Term::atom("last"), Term::Int(1000)),
            (Term::atom("step"), Term::Int(1)),
        ]);
        assert_eq!(range.to_string(), "1..1000");
        let kw = Term::list(vec![
            Term::from((Term::atom("a"), 1)),
            Term::from((Term::atom("b"), 2)),
        ]);
        assert_eq!(kw.to_string(), "[a: 1, b: 2]");
        let m = Term::map(vec![(Term::atom("a"), Term::Int(1))]);
        assert_eq!(m.to_string(), "%{a: 1}");
        let m = Term::map(vec![(Term::str("k"), Term::Int(1))]);
        assert_eq!(m.to_string(), "%{\"k\" => 1}");
        let pid = Pid::from_parts(Atom::new("n@h"), 1, 90);
        let br = Term::from((Term::list(vec![]), Term::list(vec![Term::Pid(pid)])));
        assert_eq!(br.to_string(), "{[], [#PID<0.90.0>]}");
    }
}
