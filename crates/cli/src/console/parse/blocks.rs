//! The console parser's blocks: `fn`, `case`, `receive`, `cond`, `if`/`unless`, `for`,
//! and interpolated strings.
//!
//! A block's body is a sequence of expressions separated by newlines or `;`. A clause
//! (`pattern when guard -> body`) runs until a line that holds a `->` of its own (at
//! the top level of that line: not inside brackets or a nested block) or until the
//! word that ends the block. Running out of input inside a block is `incomplete`, so
//! the console asks for the next line, as iex does.

use super::{Expr, ParseError, Parser, Tok, parse_nested};
use crate::console::lex::StrPart;

/// Words that continue an expression or a block, so they never start a call's
/// argument (`case x do`) nor stand alone.
pub const CONTINUES: [&str; 10] = [
    "do", "end", "after", "else", "when", "and", "or", "in", "rescue", "catch",
];

/// One clause: `patterns when guard -> body`.
#[derive(Clone, Debug, PartialEq)]
pub struct Clause {
    /// The patterns (a closure's arguments; one for `case`, `receive`; a `cond`'s
    /// condition).
    pub patterns: Vec<Expr>,
    /// The guard after `when`.
    pub guard: Option<Expr>,
    /// The body (empty: `nil`).
    pub body: Vec<Expr>,
}

/// A closure's definition, and its source: the closure is data that any node running
/// the console's evaluator can apply (it parses the source again there).
#[derive(Clone, Debug, PartialEq)]
pub struct FnDef {
    /// Its clauses, all of one arity.
    pub clauses: Vec<Clause>,
    /// `fn ... end` as written.
    pub source: String,
}

impl FnDef {
    /// How many arguments it takes.
    pub fn arity(&self) -> usize {
        self.clauses.first().map_or(0, |c| c.patterns.len())
    }
}

/// A step of a `for`: a generator `pattern <- list`, or a filter.
#[derive(Clone, Debug, PartialEq)]
pub enum ForStep {
    /// `pattern <- enumerable`.
    Gen(Expr, Expr),
    /// A condition: elements for which it is false or nil are skipped.
    Filter(Expr),
}

/// A piece of an interpolated string.
#[derive(Clone, Debug, PartialEq)]
pub enum StrPiece {
    /// Text.
    Lit(String),
    /// `#{...}`: its expressions (the value of the last one is shown, as `to_string`).
    Code(Vec<Expr>),
}

impl Parser<'_> {
    /// A block that starts with the word `w` (already read), one nesting level deeper.
    pub(super) fn nested_block(&mut self, w: &str) -> Result<Expr, ParseError> {
        let base = self.depth;
        self.deeper()?;
        let start = self.tokens[self.pos - 1].at;
        let e = match w {
            "fn" => self.fn_block(start),
            "case" => self.case_block(),
            "receive" => self.receive_block(),
            "cond" => self.cond_block(),
            "if" => self.if_block(false),
            "unless" => self.if_block(true),
            _ => self.for_block(),
        };
        self.depth = base;
        e
    }

    fn expect_word(&mut self, w: &str) -> Result<(), ParseError> {
        self.skip_newlines();
        match self.peek() {
            Some(Tok::Ident(x)) if x == w => {
                self.pos += 1;
                Ok(())
            }
            None => Err(self.incomplete(w)),
            Some(t) => Err(self.error(format!("expected `{w}`, found {t}"))),
        }
    }

    fn at_stop(&self, stops: &[&str]) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if stops.contains(&w.as_str()))
    }

    /// After an expression inside a block: a separator, a stop word, or an error.
    fn after_item(&mut self, stops: &[&str]) -> Result<(), ParseError> {
        match self.peek() {
            None => Err(self.incomplete("end")),
            Some(Tok::Newline) | Some(Tok::Punct(";")) => Ok(()),
            _ if self.at_stop(stops) => Ok(()),
            Some(t) => Err(self.error(format!("unexpected {t} in a block"))),
        }
    }

    /// Expressions up to one of `stops` (not consumed).
    fn body_until(&mut self, stops: &[&str]) -> Result<Vec<Expr>, ParseError> {
        let mut body = Vec::new();
        loop {
            self.skip_separators();
            if self.at_end() {
                return Err(self.incomplete("end"));
            }
            if self.at_stop(stops) {
                return Ok(body);
            }
            body.push(self.expr()?);
            self.after_item(stops)?;
        }
    }

    /// Whether the tokens from here to the end of the line hold a `->` (or a `when`)
    /// at their top level: the line starts a new clause.
    fn line_starts_clause(&self) -> bool {
        let mut depth = 0i32;
        for t in &self.tokens[self.pos..] {
            match &t.kind {
                Tok::Punct("(" | "[" | "{" | "%{") => depth += 1,
                Tok::Punct(")" | "]" | "}") => depth -= 1,
                Tok::Ident(w) if w == "fn" || w == "do" => depth += 1,
                Tok::Ident(w) if w == "end" => depth -= 1,
                Tok::Punct("->") if depth == 0 => return true,
                Tok::Ident(w) if w == "when" && depth == 0 => return true,
                Tok::Newline | Tok::Punct(";") if depth == 0 => return false,
                _ => {}
            }
            if depth < 0 {
                return false;
            }
        }
        false
    }

    /// `patterns when guard -> body` clauses up to one of `stops` (not consumed).
    /// `no_patterns`: a clause may have none (`fn -> ... end`).
    fn clauses(&mut self, stops: &[&str], no_patterns: bool) -> Result<Vec<Clause>, ParseError> {
        let mut out = Vec::new();
        loop {
            self.skip_separators();
            if self.at_end() {
                return Err(self.incomplete("end"));
            }
            if self.at_stop(stops) {
                return Ok(out);
            }
            let mut patterns = Vec::new();
            if !(no_patterns && self.is("->")) {
                loop {
                    patterns.push(self.expr()?);
                    if !self.eat(",") {
                        break;
                    }
                    self.skip_newlines();
                }
            }
            let guard = if self.eat_word("when") {
                self.skip_newlines();
                Some(self.expr()?)
            } else {
                None
            };
            self.expect("->")?;
            let mut body = Vec::new();
            loop {
                self.skip_separators();
                if self.at_end() {
                    return Err(self.incomplete("end"));
                }
                if self.at_stop(stops) || (!body.is_empty() && self.line_starts_clause()) {
                    break;
                }
                body.push(self.expr()?);
                self.after_item(stops)?;
            }
            out.push(Clause {
                patterns,
                guard,
                body,
            });
        }
    }

    /// `fn clauses end` (the `fn` at byte `start` already read).
    fn fn_block(&mut self, start: usize) -> Result<Expr, ParseError> {
        let clauses = self.clauses(&["end"], true)?;
        let end = &self.tokens[self.pos];
        let source = self.src[start..end.at + "end".len()].to_owned();
        self.pos += 1;
        let Some(arity) = clauses.first().map(|c| c.patterns.len()) else {
            return Err(self.error("a fn needs at least one clause: fn args -> body end"));
        };
        if clauses.iter().any(|c| c.patterns.len() != arity) {
            return Err(self.error("all clauses of a fn must take the same number of arguments"));
        }
        Ok(Expr::Fn(FnDef { clauses, source }))
    }

    fn case_block(&mut self) -> Result<Expr, ParseError> {
        let subject = self.expr()?;
        self.expect_word("do")?;
        let clauses = self.one_pattern_clauses(&["end"])?;
        self.expect_word("end")?;
        Ok(Expr::Case(Box::new(subject), clauses))
    }

    fn one_pattern_clauses(&mut self, stops: &[&str]) -> Result<Vec<Clause>, ParseError> {
        let clauses = self.clauses(stops, false)?;
        if clauses.iter().any(|c| c.patterns.len() != 1) {
            return Err(self.error("each clause here takes one pattern"));
        }
        Ok(clauses)
    }

    fn receive_block(&mut self) -> Result<Expr, ParseError> {
        self.expect_word("do")?;
        let clauses = self.one_pattern_clauses(&["after", "end"])?;
        let after = if self.eat_word("after") {
            let mut timeout = self.clauses(&["end"], false)?;
            if timeout.len() != 1 || timeout[0].patterns.len() != 1 || timeout[0].guard.is_some() {
                return Err(self.error("after takes one clause: after milliseconds -> body"));
            }
            let c = timeout.remove(0);
            let ms = c.patterns.into_iter().next().expect("one pattern");
            Some(Box::new((ms, c.body)))
        } else {
            None
        };
        self.expect_word("end")?;
        Ok(Expr::Receive(clauses, after))
    }

    fn cond_block(&mut self) -> Result<Expr, ParseError> {
        self.expect_word("do")?;
        let clauses = self.one_pattern_clauses(&["end"])?;
        self.expect_word("end")?;
        Ok(Expr::Cond(clauses))
    }

    /// After a condition or a `for`'s steps: `do body end`, or the keyword form
    /// `, do: a` (with `, else: b` when `with_else`). Gives (then, else).
    fn do_body(&mut self, with_else: bool) -> Result<(Vec<Expr>, Vec<Expr>), ParseError> {
        if self.eat(",") {
            self.skip_newlines();
            let keywords = self.keywords()?;
            let mut then = None;
            let mut otherwise = Vec::new();
            for kw in keywords {
                let Expr::Tuple(mut kv) = kw else {
                    unreachable!("keywords are pairs")
                };
                let value = kv.pop().expect("a pair");
                match kv.pop() {
                    Some(Expr::Atom(k)) if k == "do" => then = Some(vec![value]),
                    Some(Expr::Atom(k)) if k == "else" && with_else => otherwise = vec![value],
                    other => {
                        return Err(self.error(format!("unexpected option {other:?} here")));
                    }
                }
            }
            let then = then.ok_or_else(|| self.error("expected do: after the ,"))?;
            return Ok((then, otherwise));
        }
        self.expect_word("do")?;
        let stops: &[&str] = if with_else {
            &["else", "end"]
        } else {
            &["end"]
        };
        let then = self.body_until(stops)?;
        let otherwise = if with_else && self.eat_word("else") {
            self.body_until(&["end"])?
        } else {
            Vec::new()
        };
        self.expect_word("end")?;
        Ok((then, otherwise))
    }

    fn if_block(&mut self, unless: bool) -> Result<Expr, ParseError> {
        let cond = self.expr()?;
        let (then, otherwise) = self.do_body(true)?;
        Ok(if unless {
            Expr::If(Box::new(cond), otherwise, then)
        } else {
            Expr::If(Box::new(cond), then, otherwise)
        })
    }

    fn for_block(&mut self) -> Result<Expr, ParseError> {
        let mut steps = Vec::new();
        loop {
            self.skip_newlines();
            let e = self.operators()?;
            if self.eat("<-") {
                self.skip_newlines();
                steps.push(ForStep::Gen(e, self.operators()?));
            } else {
                steps.push(ForStep::Filter(e));
            }
            // `, do:` ends the steps; any other `,` separates them.
            let keyword_do = self.is(",")
                && matches!(self.tokens.get(self.pos + 1).map(|t| &t.kind),
                            Some(Tok::KwKey(k)) if k == "do");
            if keyword_do || !self.eat(",") {
                break;
            }
        }
        if !matches!(steps.first(), Some(ForStep::Gen(..))) {
            return Err(self.error("a for starts with a generator: for x <- list do ... end"));
        }
        let (body, _) = self.do_body(false)?;
        Ok(Expr::For(steps, body))
    }

    /// An interpolated string's pieces, each code part parsed one level deeper.
    pub(super) fn interpolation(&mut self, parts: Vec<StrPart>) -> Result<Expr, ParseError> {
        let mut pieces = Vec::with_capacity(parts.len());
        for part in parts {
            pieces.push(match part {
                StrPart::Lit(s) => StrPiece::Lit(s),
                StrPart::Code(code) => {
                    let exprs = parse_nested(&code, self.depth + 1).map_err(|e| ParseError {
                        // An unfinished #{...} can't be finished on the next line.
                        incomplete: false,
                        ..e
                    })?;
                    if exprs.is_empty() {
                        return Err(self.error("empty #{} in a string"));
                    }
                    StrPiece::Code(exprs)
                }
            });
        }
        Ok(Expr::Interp(pieces))
    }
}
