//! The console's evaluator: expressions, `=` with patterns, operators, calls, and the
//! blocks and closures (`eval/blocks.rs`).
//!
//! An [`Interp`] evaluates in one process: the console's own (an attached thread, so
//! `self()`, `send(self(), :x)` and `flush()` behave as in iex), or one that applies a
//! closure (spawned here or on another node: see [`super::closure`]). Calls go to
//! [`super::api`] (the node, process, `:global`, `:pg` and `:rpc` APIs under their
//! Erlang/Elixir names), and otherwise to the node's function registry, run in a fresh
//! process as rpc would.

mod blocks;
mod patterns;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use super::parse::{Expr, parse};
use crate::dist::rpc;
use crate::node::Net;
use crate::rt::{Attached, Ctx};
use crate::term::{Atom, Term};

pub(crate) use blocks::to_chars;
pub(crate) use patterns::{guard_call, is_guard_fn, match_pattern, truthy};

/// An error shown as `** (Kind) message`, as iex shows exceptions.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalError {
    /// The exception's name (`MatchError`, `ArgumentError`...).
    pub kind: &'static str,
    /// What went wrong.
    pub message: String,
}

impl EvalError {
    /// An error of `kind`.
    pub fn new(kind: &'static str, message: impl Into<String>) -> EvalError {
        EvalError {
            kind,
            message: message.into(),
        }
    }

    /// An `ArgumentError`.
    pub fn arg(message: impl Into<String>) -> EvalError {
        EvalError::new("ArgumentError", message)
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "** ({}) {}", self.kind, self.message)
    }
}

/// What evaluating an input gave.
#[derive(Debug)]
pub enum Outcome {
    /// The value of the last expression.
    Value(Term),
    /// Nothing (an empty line).
    Nothing,
    /// More lines are needed (an open bracket or string).
    Incomplete,
}

/// One console session: its process, its node and its variables.
pub struct Session {
    me: Attached,
    net: Net,
    vars: HashMap<String, Term>,
    /// Lines printed by the evaluation (`flush()`, `IO.puts`, `processes`...), in order,
    /// before the value.
    output: Vec<String>,
    /// Set by `System.halt()` and friends.
    quit: bool,
}

/// Where an evaluation's printed lines go.
pub(crate) enum Output<'a> {
    /// Collected, to be printed before the value (the console's own lines).
    Lines(&'a mut Vec<String>),
    /// Printed at once, through [`super::closure::print`] (a closure's process).
    Print,
}

/// An evaluation in one process: its context, its node, its variables and where what
/// it prints goes.
pub struct Interp<'a> {
    pub(crate) me: &'a mut Ctx,
    pub(crate) net: Net,
    pub(crate) vars: HashMap<String, Term>,
    output: Output<'a>,
    /// Set by `System.halt()` and friends.
    pub(crate) quit: bool,
    /// How deep the evaluation is now (at most [`MAX_DEPTH`]).
    pub(crate) depth: usize,
}

/// How deep an evaluation may recurse: the parser bounds an expression's nesting, and
/// this bounds closures applying closures (`f.(f)` forever is an error, not a stack
/// overflow that takes the node down; a closure's process runs on a scheduler thread,
/// whose stack is smaller than the console's). A debug build's frames are several
/// times larger, so it allows less.
pub(crate) const MAX_DEPTH: usize = if cfg!(debug_assertions) { 100 } else { 300 };

impl Session {
    /// A session whose process is a new attached process on `net`'s node. Its group
    /// leader is the node's default (the console's I/O server: see `console::run`); a
    /// node without one gets an I/O server printing on standard output as its default
    /// first, so what the session's processes print, here or on other nodes, comes
    /// here.
    pub fn new(net: Net) -> Session {
        let node = net.node();
        node.set_thread_display();
        if node.default_group_leader().is_none() {
            let server = crate::rt::io::start_server(
                node,
                Box::new(|text: &str| {
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(text.as_bytes());
                    let _ = out.flush();
                }),
            );
            node.set_default_group_leader(Some(server));
        }
        let me = node.attach();
        Session {
            me,
            net,
            vars: HashMap::new(),
            output: Vec::new(),
            quit: false,
        }
    }

    /// The node's name.
    pub fn node_name(&self) -> Atom {
        self.net.name()
    }

    /// Whether the session asked to end.
    pub fn wants_quit(&self) -> bool {
        self.quit
    }

    /// Takes the lines printed so far.
    pub fn take_output(&mut self) -> Vec<String> {
        std::mem::take(&mut self.output)
    }

    /// Parses and evaluates `src`. If the console's process was killed meanwhile (an
    /// exit signal from a link, say), a new one takes its place, as iex restarts its
    /// shell, and the error says so.
    pub fn eval_source(&mut self, src: &str) -> Result<Outcome, EvalError> {
        let exprs = match parse(src) {
            Ok(e) => e,
            Err(e) if e.incomplete => return Ok(Outcome::Incomplete),
            Err(e) => return Err(EvalError::new("SyntaxError", e.message)),
        };
        let mut last = Outcome::Nothing;
        for e in &exprs {
            let mut interp = Interp {
                me: &mut self.me,
                net: self.net.clone(),
                vars: std::mem::take(&mut self.vars),
                output: Output::Lines(&mut self.output),
                quit: false,
                depth: 0,
            };
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| interp.eval(e)));
            self.vars = std::mem::take(&mut interp.vars);
            self.quit |= interp.quit;
            if let Some(reason) = self.me.exit_reason().cloned() {
                let old = self.me.pid();
                self.me = self.net.node().attach();
                return Err(EvalError::new(
                    "EXIT",
                    format!(
                        "shell process {} exited with reason: {reason}; new shell process {}",
                        Term::Pid(old),
                        Term::Pid(self.me.pid())
                    ),
                ));
            }
            last = match r {
                Ok(v) => Outcome::Value(v?),
                Err(_) => {
                    return Err(EvalError::new(
                        "RuntimeError",
                        "internal error while evaluating (see the log)",
                    ));
                }
            };
        }
        Ok(last)
    }
}

impl<'a> Interp<'a> {
    /// An evaluation in the process `me` (one applying a closure), printing at once.
    pub(crate) fn in_process(me: &'a mut Ctx) -> Option<Interp<'a>> {
        let net = Net::of(me.node())?;
        Some(Interp {
            me,
            net,
            vars: HashMap::new(),
            output: Output::Print,
            quit: false,
            depth: 0,
        })
    }

    /// Prints `line` (see [`Output`]).
    pub(crate) fn say(&mut self, line: impl Into<String>) {
        let line = line.into();
        match &mut self.output {
            Output::Lines(lines) => lines.push(line),
            Output::Print => super::closure::print(self.me, &line),
        }
    }

    /// Prints each of `lines`.
    pub(crate) fn say_all(&mut self, lines: impl IntoIterator<Item = String>) {
        for l in lines {
            self.say(l);
        }
    }

    pub(crate) fn eval(&mut self, e: &Expr) -> Result<Term, EvalError> {
        if self.depth >= MAX_DEPTH {
            return Err(EvalError::new(
                "SystemLimitError",
                format!("evaluation nested deeper than {MAX_DEPTH} levels (a runaway recursion?)"),
            ));
        }
        self.depth += 1;
        let r = self.eval_expr(e);
        self.depth -= 1;
        r
    }

    fn eval_expr(&mut self, e: &Expr) -> Result<Term, EvalError> {
        Ok(match e {
            Expr::Int(i) => Term::Int(*i),
            Expr::Float(x) => Term::Float(*x),
            Expr::Atom(a) => atom_term(a)?,
            Expr::Str(s) => Term::str(s),
            Expr::Charlist(s) => {
                Term::list(s.chars().map(|c| Term::Int(c as i64)).collect::<Vec<_>>())
            }
            Expr::Alias(a) => atom_term(&format!("Elixir.{a}"))?,
            Expr::Var(v) => match self.vars.get(v) {
                Some(t) => t.clone(),
                None if super::api::is_bare_helper(v) => self.call_local(v, Vec::new())?,
                None => {
                    return Err(EvalError::new(
                        "CompileError",
                        format!("undefined variable \"{v}\""),
                    ));
                }
            },
            Expr::Pin(v) => {
                return Err(EvalError::new(
                    "CompileError",
                    format!("^{v} can only be used in a pattern (left of =)"),
                ));
            }
            Expr::Tuple(items) => Term::tuple(self.eval_all(items)?),
            Expr::List(items, tail) => {
                let mut v = self.eval_all(items)?;
                if let Some(t) = tail {
                    match self.eval(t)? {
                        Term::List(rest) => v.extend(rest.iter().cloned()),
                        other => {
                            return Err(EvalError::arg(format!(
                                "improper lists are not supported (tail {other} is not a list)"
                            )));
                        }
                    }
                }
                Term::list(v)
            }
            Expr::Map(pairs) => {
                let mut v = Vec::with_capacity(pairs.len());
                for (k, val) in pairs {
                    v.push((self.eval(k)?, self.eval(val)?));
                }
                Term::map(v)
            }
            Expr::Range(a, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                let (Some(first), Some(last)) = (a.as_int(), b.as_int()) else {
                    return Err(EvalError::arg(format!(
                        "ranges need integers, got {a}..{b}"
                    )));
                };
                range(first, last)
            }
            Expr::Match(pat, rhs) => {
                let value = self.eval(rhs)?;
                let mut binds = HashMap::new();
                if !self.matches(pat, &value, &mut binds)? {
                    return Err(EvalError::new(
                        "MatchError",
                        format!("no match of right hand side value: {value}"),
                    ));
                }
                self.vars.extend(binds);
                value
            }
            Expr::Neg(x) => match self.eval(x)? {
                Term::Int(i) => Term::Int(i.wrapping_neg()),
                Term::Float(f) => Term::Float(-f),
                other => return Err(badarith(&format!("-{other}"))),
            },
            Expr::Not(x) => match self.eval(x)?.as_atom().map(|a| a.as_str().to_owned()) {
                Some(b) if b == "true" => Term::from(false),
                Some(b) if b == "false" || b == "nil" => Term::from(true),
                _ => Term::from(false),
            },
            Expr::BinOp(op @ ("and" | "or" | "&&" | "||"), a, b) => {
                let left = self.eval(a)?;
                patterns::short_circuit(op, left, || self.eval(b))?
            }
            Expr::BinOp(op, a, b) => {
                let (a, b) = (self.eval(a)?, self.eval(b)?);
                binop(op, a, b)?
            }
            Expr::Local(f, args) => {
                let args = self.eval_all(args)?;
                self.call_local(f, args)?
            }
            Expr::Remote(m, f, args) => {
                let module = self.module_of(m)?;
                let args = self.eval_all(args)?;
                self.call_remote(module, f, args)?
            }
            Expr::Capture(m, f, arity) => {
                let module = self.module_of(m)?;
                Term::tuple(vec![
                    Term::atom("&"),
                    Term::Atom(module),
                    atom_term(f)?,
                    Term::from(*arity),
                ])
            }
            Expr::Interp(pieces) => self.interpolate(pieces)?,
            Expr::Fn(def) => super::closure::make(def, &self.vars),
            Expr::Apply(f, args) => {
                let f = self.eval(f)?;
                let args = self.eval_all(args)?;
                self.apply(&f, args)?
            }
            Expr::Case(subject, clauses) => {
                let value = self.eval(subject)?;
                self.case(&value, clauses)?
            }
            Expr::Receive(clauses, after) => self.receive(clauses, after.as_deref())?,
            Expr::Cond(clauses) => self.cond(clauses)?,
            Expr::If(c, then, otherwise) => {
                let branch = if patterns::truthy(&self.eval(c)?) {
                    then
                } else {
                    otherwise
                };
                self.scoped(Vec::new(), |s| s.body(branch))?
            }
            Expr::For(steps, body) => {
                let mut out = Vec::new();
                self.comprehend(steps, body, &mut out)?;
                Term::list(out)
            }
        })
    }

    fn eval_all(&mut self, items: &[Expr]) -> Result<Vec<Term>, EvalError> {
        items.iter().map(|e| self.eval(e)).collect()
    }

    /// The module atom a call names: `Node` is `Elixir.Node`, `:global` is `global`, and a
    /// variable may hold either.
    fn module_of(&mut self, m: &Expr) -> Result<Atom, EvalError> {
        match self.eval(m)? {
            Term::Atom(a) => Ok(a),
            other => Err(EvalError::arg(format!(
                "a module must be an atom or an alias, got {other}"
            ))),
        }
    }

    fn call_local(&mut self, f: &str, args: Vec<Term>) -> Result<Term, EvalError> {
        let arity = args.len();
        match super::api::call_local(self, f, args)? {
            Some(t) => Ok(t),
            None => Err(EvalError::new(
                "CompileError",
                format!("undefined function {f}/{arity} (type h for what the console supports)"),
            )),
        }
    }

    fn call_remote(&mut self, module: Atom, f: &str, args: Vec<Term>) -> Result<Term, EvalError> {
        let display = module_display(module);
        if let Some(t) = super::api::call(self, &display, f, args.clone())? {
            return Ok(t);
        }
        // Anything else: a function registered on this node, run in its own process.
        let fun = atom_term(f)?.as_atom().expect("atom_term gives an atom");
        let arity = args.len();
        if self
            .net
            .node()
            .functions()
            .lookup(module, fun, arity)
            .is_none()
        {
            return Err(EvalError::new(
                "UndefinedFunctionError",
                format!(
                    "function {display}.{f}/{arity} is undefined (not built into the console \
                     and not registered on this node; type h for what is supported)"
                ),
            ));
        }
        let me = self.net.name();
        match rpc::call(self.me, me, module, fun, args, None) {
            Ok(t) => Ok(t),
            Err(rpc::RpcError::Exit(reason)) => Err(EvalError::new("exit", reason.to_string())),
            Err(e) => Err(EvalError::new("ErlangError", e.to_string())),
        }
    }

    /// Matches `value` against the pattern `pat`, collecting bindings (pins and
    /// literals are read from this evaluation's variables).
    fn matches(
        &mut self,
        pat: &Expr,
        value: &Term,
        binds: &mut HashMap<String, Term>,
    ) -> Result<bool, EvalError> {
        match_pattern(pat, value, &self.vars, binds)
    }

    /// Waits for a message matching `pred` for up to `timeout`.
    pub(crate) fn receive_match(
        &mut self,
        pred: impl FnMut(&Term) -> bool,
        timeout: Duration,
    ) -> Option<Term> {
        self.me.receive_match(pred, Some(timeout))
    }
}

/// An atom from console text (bounded by the atom table: a full table is an error, not a
/// crash).
pub(crate) fn atom_term(name: &str) -> Result<Term, EvalError> {
    Atom::try_new(name)
        .map(Term::Atom)
        .map_err(|e| EvalError::new("SystemLimitError", format!("cannot make atom: {e}")))
}

/// How a module is written in calls and messages: `Node` for `Elixir.Node`, `:global` for
/// `global`.
pub(crate) fn module_display(module: Atom) -> String {
    match module.as_str().strip_prefix("Elixir.") {
        Some(alias) => alias.to_owned(),
        None => format!(":{}", module.as_str()),
    }
}

/// `first..last`, as Elixir's `%Range{}` (step -1 when counting down).
pub(crate) fn range(first: i64, last: i64) -> Term {
    Term::map(vec![
        (Term::atom("__struct__"), Term::atom("Elixir.Range")),
        (Term::atom("first"), Term::Int(first)),
        (Term::atom("last"), Term::Int(last)),
        (
            Term::atom("step"),
            Term::Int(if last >= first { 1 } else { -1 }),
        ),
    ])
}

/// The bounds of a range (`first..last`, as [`range`] builds it).
pub(crate) fn range_bounds(m: &std::collections::BTreeMap<Term, Term>) -> Option<(i64, i64)> {
    if m.get(&Term::atom("__struct__"))? != &Term::atom("Elixir.Range") {
        return None;
    }
    let first = m.get(&Term::atom("first"))?.as_int()?;
    let last = m.get(&Term::atom("last"))?.as_int()?;
    Some((first, last))
}

fn badarith(expr: &str) -> EvalError {
    EvalError::new(
        "ArithmeticError",
        format!("bad argument in arithmetic expression: {expr}"),
    )
}

fn number(t: &Term) -> Option<f64> {
    match t {
        Term::Int(i) => Some(*i as f64),
        Term::Float(f) => Some(*f),
        _ => None,
    }
}

fn binop(op: &str, a: Term, b: Term) -> Result<Term, EvalError> {
    let text = || format!("{a} {op} {b}");
    Ok(match op {
        "+" | "-" | "*" => match (&a, &b) {
            (Term::Int(x), Term::Int(y)) => {
                let r = match op {
                    "+" => x.checked_add(*y),
                    "-" => x.checked_sub(*y),
                    _ => x.checked_mul(*y),
                };
                Term::Int(r.ok_or_else(|| {
                    EvalError::new(
                        "ArithmeticError",
                        format!("{} overflows 64-bit integers", text()),
                    )
                })?)
            }
            _ => match (number(&a), number(&b)) {
                (Some(x), Some(y)) => Term::Float(match op {
                    "+" => x + y,
                    "-" => x - y,
                    _ => x * y,
                }),
                _ => return Err(badarith(&text())),
            },
        },
        "/" => match (number(&a), number(&b)) {
            (Some(_), Some(0.0)) => return Err(badarith(&text())),
            (Some(x), Some(y)) => Term::Float(x / y),
            _ => return Err(badarith(&text())),
        },
        "==" | "!=" => {
            let eq = match (number(&a), number(&b)) {
                (Some(x), Some(y)) => x == y,
                _ => a == b,
            };
            Term::from(eq == (op == "=="))
        }
        "in" => Term::from(match (&b, b.as_list()) {
            (_, Some(items)) => items.iter().any(|t| t == &a),
            (Term::Map(m), None) => match (range_bounds(m), a.as_int()) {
                (Some((lo, hi)), Some(x)) => (lo.min(hi)..=lo.max(hi)).contains(&x),
                (Some(_), None) => false,
                (None, _) => m.keys().any(|k| k == &a),
            },
            _ => {
                return Err(EvalError::new(
                    "Protocol.UndefinedError",
                    format!("protocol Enumerable not implemented for {b}"),
                ));
            }
        }),
        "===" => Term::from(a == b),
        "!==" => Term::from(a != b),
        "<" => Term::from(a < b),
        ">" => Term::from(a > b),
        "<=" => Term::from(a <= b),
        ">=" => Term::from(a >= b),
        "++" => match (a.as_list(), b.as_list()) {
            (Some(x), Some(y)) => Term::list([x, y].concat()),
            _ => return Err(EvalError::arg(format!("++ needs two lists: {}", text()))),
        },
        "--" => match (a.as_list(), b.as_list()) {
            (Some(x), Some(y)) => {
                let mut left = x.to_vec();
                for t in y {
                    if let Some(i) = left.iter().position(|l| l == t) {
                        left.remove(i);
                    }
                }
                Term::list(left)
            }
            _ => return Err(EvalError::arg(format!("-- needs two lists: {}", text()))),
        },
        "<>" => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => Term::str(&format!("{x}{y}")),
            _ => return Err(EvalError::arg(format!("<> needs two strings: {}", text()))),
        },
        _ => {
            return Err(EvalError::new(
                "CompileError",
                format!("unsupported operator {op}"),
            ));
        }
    })
}
