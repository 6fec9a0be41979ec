//! Terms print in Elixir's `inspect` format: `{:hello, :node1@localhost}`, `[1, 2]`,
//! `%{a: 1}`, `"text"`, `<<1, 2>>`, `#PID<0.90.0>`, `#Reference<0.1.0.7>`; `true`, `false`
//! and `nil` print bare, and a list of `{atom, value}` pairs prints as a keyword list
//! (`[a: 1, b: 2]`), as iex shows them. [`Term::inspect`] also cuts long values as
//! iex does (`limit: 50` items per collection, `printable_limit: 4096` bytes of text:
//! `[1, 2, ...]`, `"xxx" <> ...`), for showing a value of any size.

use std::fmt::{self, Display, Formatter, Write};

use super::Term;
use super::atom::{Atom, needs_quotes};

fn write_atom(f: &mut Formatter<'_>, a: Atom) -> fmt::Result {
    match a.as_str() {
        "true" | "false" | "nil" => f.write_str(a.as_str()),
        _ => Display::fmt(&a, f),
    }
}

/// How much of a value to show (`None`: all of it).
#[derive(Clone, Copy, Debug, Default)]
struct Limits {
    items: Option<usize>,
    printable: Option<usize>,
}

fn write_string(f: &mut Formatter<'_>, s: &str, lim: &Limits) -> fmt::Result {
    let (s, cut) = match lim.printable {
        Some(n) if s.len() > n => {
            let mut end = n;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            (&s[..end], true)
        }
        _ => (s, false),
    };
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
    f.write_char('"')?;
    if cut {
        f.write_str(" <> ...")?;
    }
    Ok(())
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

/// The items to show of `n` under `lim`, and whether some are left out.
fn shown(n: usize, lim: &Limits) -> (usize, bool) {
    match lim.items {
        Some(max) if n > max => (max, true),
        _ => (n, false),
    }
}

fn write_seq(f: &mut Formatter<'_>, items: &[Term], lim: &Limits) -> fmt::Result {
    let (n, cut) = shown(items.len(), lim);
    for (i, t) in items[..n].iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_term(f, t, lim)?;
    }
    if cut {
        f.write_str(", ...")?;
    }
    Ok(())
}

impl Display for Term {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_term(f, self, &Limits::default())
    }
}

/// A term shown as iex shows a value: see [`Term::inspect`].
pub struct Inspect<'a> {
    term: &'a Term,
    limits: Limits,
}

impl Display for Inspect<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_term(f, self.term, &self.limits)
    }
}

impl Term {
    /// This term in inspect format with iex's limits: at most `limit` items of each
    /// list, tuple, map or binary (then `...`), and `printable_limit` bytes of each
    /// string (then `" <> ..."`); so a 10 MB binary shows as a line, not 10 MB.
    pub fn inspect(&self, limit: usize, printable_limit: usize) -> Inspect<'_> {
        Inspect {
            term: self,
            limits: Limits {
                items: Some(limit),
                printable: Some(printable_limit),
            },
        }
    }
}

fn write_term(f: &mut Formatter<'_>, term: &Term, lim: &Limits) -> fmt::Result {
    match term {
        Term::Atom(a) => write_atom(f, *a),
        Term::Int(i) => write!(f, "{i}"),
        Term::Float(x) => write_float(f, *x),
        Term::Str(s) => write_string(f, s, lim),
        Term::Binary(b) => match std::str::from_utf8(b) {
            Ok(s) if s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') => {
                write_string(f, s, lim)
            }
            _ => {
                f.write_str("<<")?;
                let (n, cut) = shown(b.len(), lim);
                for (i, byte) in b[..n].iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{byte}")?;
                }
                if cut {
                    f.write_str(", ...")?;
                }
                f.write_str(">>")
            }
        },
        Term::Pid(p) => Display::fmt(p, f),
        Term::Ref(r) => Display::fmt(r, f),
        Term::Tuple(t) => {
            f.write_char('{')?;
            write_seq(f, t, lim)?;
            f.write_char('}')
        }
        Term::List(l) => {
            f.write_char('[')?;
            if !l.is_empty() && l.iter().all(|t| keyword_key(t).is_some()) {
                let (n, cut) = shown(l.len(), lim);
                for (i, t) in l[..n].iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    let k = keyword_key(t).map(|a| a.as_str()).unwrap_or_default();
                    write!(f, "{k}: ")?;
                    write_term(f, &t.as_tuple().unwrap_or(&[])[1], lim)?;
                }
                if cut {
                    f.write_str(", ...")?;
                }
            } else {
                write_seq(f, l, lim)?;
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
            let (n, cut) = shown(m.len(), lim);
            for (i, (k, v)) in m.iter().take(n).enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                match k {
                    Term::Atom(a) if keyword => write!(f, "{}: ", a.as_str())?,
                    _ => {
                        write_term(f, k, lim)?;
                        f.write_str(" => ")?;
                    }
                }
                write_term(f, v, lim)?;
            }
            if cut {
                f.write_str(", ...")?;
            }
            f.write_char('}')
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
    fn inspect_cuts_long_values_as_iex_does() {
        let big = Term::str(&"x".repeat(10_000));
        let shown = big.inspect(50, 4096).to_string();
        assert_eq!(shown, format!("\"{}\" <> ...", "x".repeat(4096)));
        let list = Term::list((1..=100).map(Term::Int).collect::<Vec<_>>());
        let shown = list.inspect(50, 4096).to_string();
        assert!(shown.starts_with("[1, 2, 3, "), "{shown}");
        assert!(shown.ends_with(", 49, 50, ...]"), "{shown}");
        // Small values are untouched; a cut falls on a character boundary.
        let t = Term::tuple(vec![Term::atom("ok"), Term::str("é")]);
        assert_eq!(t.inspect(50, 4096).to_string(), t.to_string());
        assert_eq!(Term::str("éé").inspect(50, 3).to_string(), "\"é\" <> ...");
        assert_eq!(
            Term::Binary(vec![0u8; 60].into())
                .inspect(2, 10)
                .to_string(),
            "<<0, 0, ...>>"
        );
    }

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
