//! The console's parser: a subset of Elixir's expression syntax, enough for the drills.
//!
//! Grammar, loosest binding first (each level is left-associative unless noted):
//!
//! ```text
//! body     := expr ((";" | newline) expr)*
//! expr     := or ("=" expr)?                   -- match, right-associative
//! or       := and (("or" | "||") and)*
//! and      := pipe (("and" | "&&") pipe)*
//! pipe     := compare ("|>" call-ish)*          -- `a |> f(b)` is `f(a, b)`
//! compare  := range (("==" | "!=" | "===" | "!==" | "<" | ">" | "<=" | ">=" | "in") range)?
//! range    := concat (".." concat)?
//! concat   := additive (("++" | "--" | "<>") concat)?   -- right-associative
//! additive := product (("+" | "-") product)*
//! product  := unary (("*" | "/") unary)*
//! unary    := ("-" | "^" | "not" | "!") unary | postfix
//! postfix  := primary ("." name args? | "." "(" args ")")*   -- remote calls, `f.(x)`
//! primary  := literal | "string #{interpolated}" | var | local-call | Alias | tuple
//!           | list | map | "(" expr ")" | "&" remote "/" arity
//!           | block                             -- see `parse/blocks.rs`
//! block    := "fn" clauses "end" | "case" expr "do" clauses "end"
//!           | "receive" "do" clauses ("after" expr "->" body)? "end"
//!           | "cond" "do" clauses "end" | ("if" | "unless") expr "do" body ("else" body)? "end"
//!           | "for" (pattern "<-" expr | filter) ("," ...)* "do" body "end"
//! clauses  := (patterns ("when" expr)? "->" body)*   -- a clause ends where a line has `->`
//! ```
//!
//! Calls may omit parentheses when the arguments follow on the same line
//! (`IO.puts "hi"`, `Node.connect :a@localhost`), as in iex; `if`/`for` also take the
//! keyword form (`if x, do: a, else: b`). `with`, `try`, module definitions and the like
//! are refused with an error that says so. An input that ends inside a block is
//! incomplete (the console asks for more lines), never an error.

mod blocks;

pub use blocks::{Clause, FnDef, ForStep, StrPiece};

use super::lex::{LexError, Tok, Token, tokenize};

/// An expression of the console's language.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// An atom (`true`, `false` and `nil` are atoms too).
    Atom(String),
    /// A string.
    Str(String),
    /// A charlist (a list of code points).
    Charlist(String),
    /// A variable.
    Var(String),
    /// A module alias used as a value (`Kernel` is the atom `Elixir.Kernel`).
    Alias(String),
    /// `{a, b}`.
    Tuple(Vec<Expr>),
    /// `[a, b | tail]`.
    List(Vec<Expr>, Option<Box<Expr>>),
    /// `%{k => v}`.
    Map(Vec<(Expr, Expr)>),
    /// `first..last`.
    Range(Box<Expr>, Box<Expr>),
    /// `pattern = expr`.
    Match(Box<Expr>, Box<Expr>),
    /// `^var` in a pattern.
    Pin(String),
    /// `-x`.
    Neg(Box<Expr>),
    /// `not x`, `!x`.
    Not(Box<Expr>),
    /// `a op b`.
    BinOp(&'static str, Box<Expr>, Box<Expr>),
    /// `name(args)`.
    Local(String, Vec<Expr>),
    /// `Module.fun(args)` or `:module.fun(args)`; the module as an expression.
    Remote(Box<Expr>, String, Vec<Expr>),
    /// `&Module.fun/arity`.
    Capture(Box<Expr>, String, usize),
    /// `"text #{expr}"`.
    Interp(Vec<StrPiece>),
    /// `fn clauses end`: a closure.
    Fn(FnDef),
    /// `f.(args)`: a closure applied.
    Apply(Box<Expr>, Vec<Expr>),
    /// `case subject do clauses end`.
    Case(Box<Expr>, Vec<Clause>),
    /// `receive do clauses after timeout -> body end`.
    Receive(Vec<Clause>, Option<Box<(Expr, Vec<Expr>)>>),
    /// `cond do condition -> body ... end` (each clause's one pattern is its condition).
    Cond(Vec<Clause>),
    /// `if c do a else b end` (`unless` swaps the branches).
    If(Box<Expr>, Vec<Expr>, Vec<Expr>),
    /// `for generators and filters do body end`: a list.
    For(Vec<ForStep>, Vec<Expr>),
}

/// A parse error; `incomplete` when more lines could complete the input.
#[derive(Clone, Debug, PartialEq)]
pub struct ParseError {
    /// What is wrong.
    pub message: String,
    /// Whether more input could complete it.
    pub incomplete: bool,
}

impl From<LexError> for ParseError {
    fn from(e: LexError) -> ParseError {
        ParseError {
            message: e.message,
            incomplete: e.incomplete,
        }
    }
}

/// Binary operators' precedence, loosest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Prec {
    Or,
    And,
    Pipe,
    Compare,
    Range,
    Concat,
    Additive,
    Product,
}

impl Prec {
    /// The next tighter level (the right operand of a left-associative operator).
    fn tighter(self) -> Prec {
        match self {
            Prec::Or => Prec::And,
            Prec::And => Prec::Pipe,
            Prec::Pipe => Prec::Compare,
            Prec::Compare => Prec::Range,
            Prec::Range => Prec::Concat,
            Prec::Concat => Prec::Additive,
            Prec::Additive | Prec::Product => Prec::Product,
        }
    }
}

/// `left |> right`: `right` must be a call, which gets `left` as its first argument.
fn piped(left: Expr, right: Expr) -> Result<Expr, &'static str> {
    Ok(match right {
        Expr::Local(f, mut args) => {
            args.insert(0, left);
            Expr::Local(f, args)
        }
        Expr::Remote(m, f, mut args) => {
            args.insert(0, left);
            Expr::Remote(m, f, args)
        }
        Expr::Var(f) => Expr::Local(f, vec![left]),
        _ => return Err("the right side of |> must be a call"),
    })
}

/// How deep an expression may nest. Brackets, calls, unary operators and each link of a
/// chain of operators (`1 + 2 + ...`, `x |> f |> ...`, `a.b.c`) are a level: the parser,
/// the evaluator and dropping an [`Expr`] each recurse once per level, so a pasted
/// `[[[[...` or a million `+1`s would overflow the stack and kill the node. A closure is
/// parsed again by the process that applies it, on a scheduler thread's stack (2 MiB),
/// and a debug build's frames are several times larger: there it is less.
pub const MAX_NESTING: usize = if cfg!(debug_assertions) { 64 } else { 256 };

/// Parses a whole input (one or more expressions).
pub fn parse(src: &str) -> Result<Vec<Expr>, ParseError> {
    parse_nested(src, 0)
}

/// [`parse`] of a fragment met at nesting level `depth` (an interpolated expression).
fn parse_nested(src: &str, depth: usize) -> Result<Vec<Expr>, ParseError> {
    let tokens = tokenize(src)?;
    let mut p = Parser {
        src,
        tokens,
        pos: 0,
        depth,
    };
    let mut out = Vec::new();
    loop {
        p.skip_separators();
        if p.at_end() {
            return Ok(out);
        }
        out.push(p.expr()?);
        match p.peek() {
            None | Some(Tok::Newline) | Some(Tok::Punct(";")) => {}
            Some(t) => return Err(p.error(format!("unexpected {t} after an expression"))),
        }
    }
}

struct Parser<'a> {
    /// The text parsed (a closure keeps its own source, to be parsed again wherever it
    /// is applied).
    src: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    /// Levels of nesting of the expression being parsed (at most [`MAX_NESTING`]).
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    fn peek_token(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.tokens.get(self.pos).map(|t| t.kind.clone());
        self.pos += 1;
        t
    }

    fn is(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }

    fn eat(&mut self, p: &str) -> bool {
        if self.is(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(Tok::Newline) | Some(Tok::Punct(";"))) {
            self.pos += 1;
        }
    }

    fn skip_newlines(&mut self) {
        while matches!(self.peek(), Some(Tok::Newline)) {
            self.pos += 1;
        }
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            message: message.into(),
            incomplete: false,
        }
    }

    fn incomplete(&self, what: &str) -> ParseError {
        ParseError {
            message: format!("unexpected end of input, expected {what}"),
            incomplete: true,
        }
    }

    fn expect(&mut self, p: &'static str) -> Result<(), ParseError> {
        self.skip_newlines();
        match self.peek() {
            Some(Tok::Punct(q)) if *q == p => {
                self.pos += 1;
                Ok(())
            }
            None => Err(self.incomplete(p)),
            Some(t) => Err(self.error(format!("expected {p}, found {t}"))),
        }
    }

    /// One level deeper; an error past [`MAX_NESTING`].
    fn deeper(&mut self) -> Result<(), ParseError> {
        if self.depth >= MAX_NESTING {
            return Err(self.error(format!("expression nests deeper than {MAX_NESTING} levels")));
        }
        self.depth += 1;
        Ok(())
    }

    /// `parse` one level deeper.
    fn nested(
        &mut self,
        parse: fn(&mut Self) -> Result<Expr, ParseError>,
    ) -> Result<Expr, ParseError> {
        let base = self.depth;
        self.deeper()?;
        let e = parse(self);
        self.depth = base;
        e
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        let left = self.operators()?;
        if self.eat("=") {
            self.skip_newlines();
            let right = self.nested(Self::expr)?;
            return Ok(Expr::Match(Box::new(left), Box::new(right)));
        }
        Ok(left)
    }

    /// An expression of binary operators (everything but `=`).
    fn operators(&mut self) -> Result<Expr, ParseError> {
        self.binary(Prec::Or)
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(x)) if x == w)
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.is_word(w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// The binary operator at the cursor, if any, with its precedence.
    fn peek_operator(&self) -> Option<(&'static str, Prec)> {
        let op = match self.peek()? {
            Tok::Punct(p) => *p,
            Tok::Ident(w) => match w.as_str() {
                "or" => "or",
                "and" => "and",
                "in" => "in",
                _ => return None,
            },
            _ => return None,
        };
        let prec = match op {
            "||" | "or" => Prec::Or,
            "&&" | "and" => Prec::And,
            "|>" => Prec::Pipe,
            "===" | "!==" | "==" | "!=" | "<=" | ">=" | "<" | ">" | "in" => Prec::Compare,
            ".." => Prec::Range,
            "++" | "--" | "<>" => Prec::Concat,
            "+" | "-" => Prec::Additive,
            "*" => Prec::Product,
            // `a..b//step`: not a division (see `binary`).
            "/" if !matches!(
                self.tokens.get(self.pos + 1).map(|t| &t.kind),
                Some(Tok::Punct("/"))
            ) =>
            {
                Prec::Product
            }
            _ => return None,
        };
        Some((op, prec))
    }

    /// Operators of precedence `min` and tighter, by precedence climbing: one frame
    /// per operator, not one per precedence level, so a nested expression costs the
    /// stack little. `++ -- <>` are right-associative, the others left; each link of a
    /// chain counts as a nesting level.
    fn binary(&mut self, min: Prec) -> Result<Expr, ParseError> {
        let base = self.depth;
        let mut left = self.unary()?;
        while let Some((op, prec)) = self.peek_operator() {
            if prec < min {
                break;
            }
            self.deeper()?;
            self.pos += 1;
            self.skip_newlines();
            let next = if prec == Prec::Concat {
                prec
            } else {
                prec.tighter()
            };
            let right = self.binary(next)?;
            left = match op {
                "|>" => piped(left, right).map_err(|m| self.error(m))?,
                ".." => {
                    if self.is("/") {
                        return Err(self.error("ranges with a step (a..b//s) are not supported"));
                    }
                    Expr::Range(Box::new(left), Box::new(right))
                }
                _ => Expr::BinOp(op, Box::new(left), Box::new(right)),
            };
        }
        self.depth = base;
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.nested(Self::unary_op)
    }

    fn unary_op(&mut self) -> Result<Expr, ParseError> {
        if self.eat("-") {
            return Ok(match self.unary()? {
                Expr::Int(i) => Expr::Int(-i),
                Expr::Float(x) => Expr::Float(-x),
                e => Expr::Neg(Box::new(e)),
            });
        }
        if self.eat("+") {
            return self.unary();
        }
        if self.eat("^") {
            return match self.next() {
                Some(Tok::Ident(v)) => Ok(Expr::Pin(v)),
                _ => Err(self.error("^ must be followed by a variable name")),
            };
        }
        if self.eat("!") || matches!(self.peek(), Some(Tok::Ident(w)) if w == "not") {
            if matches!(self.peek(), Some(Tok::Ident(_))) {
                self.pos += 1;
            }
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let base = self.depth;
        let mut e = self.primary()?;
        while self.is(".") {
            self.deeper()?;
            self.pos += 1;
            // `Node.` at the end of a line is incomplete: the name may follow on the next.
            self.skip_newlines();
            match self.next() {
                Some(Tok::Ident(f)) => {
                    let args = self.call_args(true)?;
                    e = Expr::Remote(Box::new(e), f, args);
                }
                Some(Tok::Alias(seg)) => {
                    // Nested aliases: `Foo.Bar`.
                    e = match e {
                        Expr::Alias(base) => Expr::Alias(format!("{base}.{seg}")),
                        _ => return Err(self.error(format!("unexpected alias {seg}"))),
                    };
                }
                Some(Tok::Punct("(")) => {
                    let args = self.sequence(")")?;
                    e = Expr::Apply(Box::new(e), args);
                }
                Some(t) => return Err(self.error(format!("unexpected {t} after '.'"))),
                None => return Err(self.incomplete("a function name")),
            }
        }
        self.depth = base;
        Ok(e)
    }

    /// Arguments after a function name: `(a, b)`, or without parentheses on the same
    /// line (`IO.puts "hi"`); none when neither follows.
    fn call_args(&mut self, optional: bool) -> Result<Vec<Expr>, ParseError> {
        let attached_paren = self
            .peek_token()
            .is_some_and(|t| t.kind == Tok::Punct("(") && !t.space_before);
        if attached_paren {
            self.pos += 1;
            return self.sequence(")");
        }
        if self.starts_bare_argument() {
            let mut args = vec![self.expr_no_match()?];
            while self.eat(",") {
                self.skip_newlines();
                args.push(self.expr_no_match()?);
            }
            return Ok(args);
        }
        if optional {
            Ok(Vec::new())
        } else {
            Err(self.error("expected arguments"))
        }
    }

    /// Whether the next token (after a space, on the same line) begins an argument of a
    /// call written without parentheses.
    fn starts_bare_argument(&self) -> bool {
        let Some(t) = self.peek_token() else {
            return false;
        };
        t.space_before
            && match &t.kind {
                Tok::Int(_)
                | Tok::Float(_)
                | Tok::Atom(_)
                | Tok::Str(_)
                | Tok::Interp(_)
                | Tok::Charlist(_)
                | Tok::Alias(_)
                | Tok::KwKey(_) => true,
                // Not the words that continue an expression or a block: `case x do`.
                Tok::Ident(w) => !blocks::CONTINUES.contains(&w.as_str()),
                Tok::Punct(p) => matches!(*p, "[" | "{" | "%{" | "(" | "^" | "&"),
                Tok::Newline => false,
            }
    }

    fn expr_no_match(&mut self) -> Result<Expr, ParseError> {
        self.operators()
    }

    /// Comma-separated expressions up to `close`; a trailing `key: value` run becomes a
    /// keyword list, as Elixir does.
    fn sequence(&mut self, close: &'static str) -> Result<Vec<Expr>, ParseError> {
        let mut items = Vec::new();
        self.skip_newlines();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            self.skip_newlines();
            if matches!(self.peek(), Some(Tok::KwKey(_))) {
                items.push(Expr::List(self.keywords()?, None));
            } else {
                items.push(self.expr()?);
            }
            self.skip_newlines();
            if self.eat(",") {
                continue;
            }
            self.expect(close)?;
            return Ok(items);
        }
    }

    fn keywords(&mut self) -> Result<Vec<Expr>, ParseError> {
        let mut pairs = Vec::new();
        while let Some(Tok::KwKey(k)) = self.peek().cloned() {
            self.pos += 1;
            self.skip_newlines();
            let v = self.expr()?;
            pairs.push(Expr::Tuple(vec![Expr::Atom(k), v]));
            // A newline ends the statement unless a `,` follows (`f a: 1\ng()` is two).
            let end = self.pos;
            self.skip_newlines();
            if !(self.is(",")
                && matches!(
                    self.tokens.get(self.pos + 1).map(|t| &t.kind),
                    Some(Tok::KwKey(_)) | Some(Tok::Newline) | None
                ))
            {
                self.pos = end;
                break;
            }
            self.pos += 1;
            self.skip_newlines();
            if self.at_end() {
                return Err(self.incomplete("a keyword"));
            }
        }
        Ok(pairs)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let Some(tok) = self.next() else {
            return Err(self.incomplete("an expression"));
        };
        Ok(match tok {
            Tok::Int(i) => Expr::Int(i),
            Tok::Float(x) => Expr::Float(x),
            Tok::Atom(a) => Expr::Atom(a),
            Tok::Str(s) => Expr::Str(s),
            Tok::Interp(parts) => self.interpolation(parts)?,
            Tok::Charlist(s) => Expr::Charlist(s),
            Tok::Alias(a) => Expr::Alias(a),
            Tok::KwKey(k) => {
                // A bare keyword list as the only argument: `f a: 1`.
                self.pos -= 1;
                let _ = k;
                Expr::List(self.keywords()?, None)
            }
            Tok::Ident(w) => return self.identifier(w),
            Tok::Punct("(") => {
                self.skip_newlines();
                let e = self.expr()?;
                self.expect(")")?;
                e
            }
            Tok::Punct("{") => Expr::Tuple(self.sequence("}")?),
            Tok::Punct("[") => self.list()?,
            Tok::Punct("%{") => self.map()?,
            Tok::Punct("&") => self.capture()?,
            Tok::Punct("@") => return Err(self.error("module attributes (@x) are not supported")),
            Tok::Newline => return Err(self.incomplete("an expression")),
            t => return Err(self.error(format!("unexpected {t}"))),
        })
    }

    fn identifier(&mut self, w: String) -> Result<Expr, ParseError> {
        match w.as_str() {
            "true" | "false" | "nil" => return Ok(Expr::Atom(w)),
            "fn" | "case" | "receive" | "cond" | "if" | "unless" | "for" => {
                return self.nested_block(&w);
            }
            "with" | "try" | "defmodule" | "def" | "defp" | "quote" | "import" | "alias"
            | "require" => {
                return Err(self.error(format!(
                    "`{w}` is not supported by the console (fn, case, receive, cond, if, \
                     unless and for are; modules can't be defined here)"
                )));
            }
            w if blocks::CONTINUES.contains(&w) => {
                return Err(self.error(format!("unexpected keyword `{w}`")));
            }
            _ => {}
        }
        let attached_paren = self
            .peek_token()
            .is_some_and(|t| t.kind == Tok::Punct("(") && !t.space_before);
        if attached_paren || self.starts_bare_argument_for_local() {
            let args = self.call_args(false)?;
            return Ok(Expr::Local(w, args));
        }
        Ok(Expr::Var(w))
    }

    /// A local call without parentheses (`i pid`, `send pid, :hi`) is accepted only for
    /// names that can't be variables being used in an expression: the next token must
    /// start an argument and not be an identifier (`x y` is more likely a typo).
    fn starts_bare_argument_for_local(&self) -> bool {
        self.starts_bare_argument()
            && !matches!(self.peek(), Some(Tok::Punct("(")) | Some(Tok::Punct("^")))
    }

    fn list(&mut self) -> Result<Expr, ParseError> {
        let mut items = Vec::new();
        self.skip_newlines();
        if self.eat("]") {
            return Ok(Expr::List(items, None));
        }
        loop {
            self.skip_newlines();
            if matches!(self.peek(), Some(Tok::KwKey(_))) {
                items.extend(self.keywords()?);
                self.expect("]")?;
                return Ok(Expr::List(items, None));
            }
            items.push(self.expr()?);
            self.skip_newlines();
            if self.eat("|") {
                self.skip_newlines();
                let tail = self.expr()?;
                self.expect("]")?;
                return Ok(Expr::List(items, Some(Box::new(tail))));
            }
            if self.eat(",") {
                continue;
            }
            self.expect("]")?;
            return Ok(Expr::List(items, None));
        }
    }

    fn map(&mut self) -> Result<Expr, ParseError> {
        let mut pairs = Vec::new();
        self.skip_newlines();
        if self.eat("}") {
            return Ok(Expr::Map(pairs));
        }
        loop {
            self.skip_newlines();
            if let Some(Tok::KwKey(k)) = self.peek().cloned() {
                self.pos += 1;
                self.skip_newlines();
                pairs.push((Expr::Atom(k), self.expr()?));
            } else {
                let k = self.expr_no_match()?;
                if self.is("|") {
                    return Err(self.error("map update syntax (%{m | k: v}) is not supported"));
                }
                self.expect("=>")?;
                self.skip_newlines();
                pairs.push((k, self.expr()?));
            }
            self.skip_newlines();
            if self.eat(",") {
                continue;
            }
            self.expect("}")?;
            return Ok(Expr::Map(pairs));
        }
    }

    fn capture(&mut self) -> Result<Expr, ParseError> {
        let module = match self.next() {
            Some(Tok::Atom(a)) => Expr::Atom(a),
            Some(Tok::Alias(a)) => Expr::Alias(a),
            Some(Tok::Punct("(")) => {
                return Err(self.error(
                    "the capture shorthand &(...) is not supported: write fn args -> body end",
                ));
            }
            _ => {
                return Err(self
                    .error("only captures of a named function are supported: &Module.fun/arity"));
            }
        };
        let mut module = module;
        while self.eat(".") {
            match self.next() {
                Some(Tok::Alias(seg)) => {
                    if let Expr::Alias(base) = module {
                        module = Expr::Alias(format!("{base}.{seg}"));
                    }
                }
                Some(Tok::Ident(f)) => {
                    if !self.eat("/") {
                        return Err(self.error("expected /arity after the captured function"));
                    }
                    return match self.next() {
                        Some(Tok::Int(n)) if n >= 0 => {
                            Ok(Expr::Capture(Box::new(module), f, n as usize))
                        }
                        _ => Err(self.error("expected an arity after /")),
                    };
                }
                _ => break,
            }
        }
        Err(self.error("only captures of a named function are supported: &Module.fun/arity"))
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
