//! `oxbeam_kv_disk`: durable KV tables on a test node, for `tests/fault_kv_durable.rs`.
//! Every function takes the table's name (an atom) and its nodes (a list of atoms),
//! and answers `{:error, "why"}` when something fails:
//!
//! - `start(table, nodes, dir)`: starts this node's replica of `table`, kept in the
//!   directory `dir` (a string; `TableConfig::durable`), compacting its log every 100
//!   entries (so that a restart recovers a snapshot and a log after it) -> `:ok`;
//! - `writer(table, nodes)`: the writer this node's replica knows, waiting up to 2 s ->
//!   its node, or `:none`;
//! - `put(table, nodes, key, value)`: an acknowledged put -> `{:ok, revision}`;
//! - `select_all(table, nodes)`: every row, read linearizably -> `[{key, value}]`;
//! - `term(table, nodes)`: this replica's current Raft term -> an integer.

use std::time::Duration;

use oxbeam::kv::{Table, TableConfig};
use oxbeam::rt::{Ctx, Node};
use oxbeam::term::{Atom, Term};

fn error(why: impl std::fmt::Display) -> Term {
    Term::tuple(vec![Term::atom("error"), Term::str(&why.to_string())])
}

/// The table's settings from its name and nodes arguments.
fn config(args: &[Term]) -> Result<TableConfig, Term> {
    let name = args[0]
        .as_atom()
        .ok_or_else(|| error("the table is an atom"))?;
    let nodes =
        crate::services::atoms(&args[1]).ok_or_else(|| error("the nodes are a list of atoms"))?;
    Ok(TableConfig::new(name.as_str(), &nodes))
}

fn open(ctx: &Ctx, args: &[Term]) -> Result<Table<Term, Term>, Term> {
    let name = args[0]
        .as_atom()
        .ok_or_else(|| error("the table is an atom"))?;
    Table::open(ctx.node(), name.as_str()).map_err(error)
}

fn answer(result: Result<Term, Term>) -> Term {
    result.unwrap_or_else(|e| e)
}

/// Registers the `oxbeam_kv_disk` functions on `node`.
pub fn register(node: &Node) {
    let f = node.functions();
    let m = Atom::new("oxbeam_kv_disk");
    f.register(
        m,
        Atom::new("start"),
        3,
        |ctx: &mut Ctx, args: Vec<Term>| {
            answer((|| {
                let dir = args[2]
                    .as_str()
                    .ok_or_else(|| error("the dir is a string"))?;
                let mut config = config(&args)?.durable(dir);
                config.group.compact_every = 100;
                Table::<Term, Term>::start_with(ctx.node(), config).map_err(error)?;
                Ok(Term::ok())
            })())
        },
    );
    f.register(
        m,
        Atom::new("writer"),
        2,
        |ctx: &mut Ctx, args: Vec<Term>| {
            answer(
                open(ctx, &args).map(|t| match t.wait_for_writer(ctx, Duration::from_secs(2)) {
                    Ok(node) => Term::Atom(node),
                    Err(_) => Term::atom("none"),
                }),
            )
        },
    );
    f.register(m, Atom::new("put"), 4, |ctx: &mut Ctx, args: Vec<Term>| {
        answer((|| {
            let t = open(ctx, &args)?;
            let w = t.put(ctx, &args[2], &args[3]).map_err(error)?;
            Ok(Term::tuple(vec![Term::ok(), Term::Int(w.revision as i64)]))
        })())
    });
    f.register(
        m,
        Atom::new("select_all"),
        2,
        |ctx: &mut Ctx, args: Vec<Term>| {
            answer((|| {
                let t = open(ctx, &args)?;
                let rows = t.select(ctx, &Term::atom("_")).map_err(error)?;
                let rows = rows.into_iter().map(|(k, v)| Term::tuple(vec![k, v]));
                Ok(Term::list(rows.collect::<Vec<_>>()))
            })())
        },
    );
    f.register(m, Atom::new("term"), 2, |ctx: &mut Ctx, args: Vec<Term>| {
        answer(open(ctx, &args).map(|t| Term::Int(t.group().shared().term() as i64)))
    });
}
