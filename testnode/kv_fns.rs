//! `oxbeam_test:kv_*`: a replicated KV table ([`oxbeam::kv`]) on the test node, driven by
//! rpc from a test (`tests/fault_kv_linearizable.rs`): start this node's replica, put,
//! get, compare-and-set, and the replica's status (to find the writer by asking).
//!
//! Answers are plain terms, so a test can tell what may have run: `{:ok, ...}`,
//! `{:conflict, current}`, or `{:error, why}` with `why` one of `:no_quorum` and
//! `:not_committed` (not written), `:unknown` (may or may not have been) or
//! `{:other, text}`.
//!
//! Also [`peer_ports_from_env`]: `OXBEAM_TEST_PEER_PORTS=name@host=port,...` dials those
//! peers at those ports (a fault proxy in front of each) instead of asking the port
//! mapper, set before the node connects anywhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxbeam::kv::{Expect, KvError, Table, TableConfig};
use oxbeam::rt::{Ctx, Node};
use oxbeam::term::{Atom, Term};

/// The tables started here, by name (a node extension).
#[derive(Default)]
struct Tables(Mutex<HashMap<Atom, Table>>);

fn table(node: &Node, name: &Term) -> Result<Table, Term> {
    let tables = node.extension_or_insert_with(|| Arc::new(Tables::default()));
    let found = name
        .as_atom()
        .and_then(|n| tables.0.lock().ok()?.get(&n).cloned());
    found.ok_or_else(|| error(Term::atom("no_table")))
}

fn error(why: Term) -> Term {
    Term::tuple(vec![Term::atom("error"), why])
}

fn kv_error(e: KvError) -> Term {
    error(match e {
        KvError::NoQuorum => Term::atom("no_quorum"),
        KvError::NotCommitted => Term::atom("not_committed"),
        KvError::Unknown => Term::atom("unknown"),
        other => Term::tuple(vec![Term::atom("other"), Term::from(other.to_string())]),
    })
}

fn ok(t: Term) -> Term {
    Term::tuple(vec![Term::atom("ok"), t])
}

/// `{value, revision}`, or `:none`.
fn row(r: Option<(Term, u64)>) -> Term {
    r.map_or(Term::atom("none"), |(v, rev)| {
        Term::tuple(vec![v, Term::Int(rev as i64)])
    })
}

/// Registers the `oxbeam_test:kv_*` functions on `node`.
pub fn register(node: &Node) {
    let f = node.functions();
    let test = Atom::new("oxbeam_test");
    // kv_start(table, nodes, opts): starts this node's replica of `table` on `nodes`;
    // opts: :joining (rejoin after losing state), :broken (commit without a majority,
    // for a checker's control run). Operations time out after 2 s.
    f.register(
        test,
        Atom::new("kv_start"),
        3,
        |ctx: &mut Ctx, args: Vec<Term>| {
            let (Some(name), Some(nodes)) = (args[0].as_atom(), args[1].as_list()) else {
                return error(Term::atom("badarg"));
            };
            let nodes: Vec<Atom> = nodes.iter().filter_map(Term::as_atom).collect();
            let opts = args[2].as_list().unwrap_or(&[]);
            let mut config = TableConfig::new(name.as_str(), &nodes);
            config.timeout = Duration::from_secs(2);
            if opts.iter().any(|o| o.is_atom("joining")) {
                config = config.joining();
            }
            if opts.iter().any(|o| o.is_atom("broken")) {
                config.group.faults.commit_without_majority = true;
            }
            match Table::start_with(ctx.node(), config) {
                Ok(t) => {
                    let tables = ctx
                        .node()
                        .extension_or_insert_with(|| Arc::new(Tables::default()));
                    if let Ok(mut map) = tables.0.lock() {
                        map.insert(name, t);
                    }
                    Term::ok()
                }
                Err(e) => kv_error(e),
            }
        },
    );
    // kv_put(table, key, value) -> {:ok, revision} | {:error, why}.
    f.register(
        test,
        Atom::new("kv_put"),
        3,
        |ctx: &mut Ctx, args: Vec<Term>| match table(ctx.node(), &args[0]) {
            Ok(t) => match t.put(ctx, &args[1], &args[2]) {
                Ok(w) => ok(Term::Int(w.revision as i64)),
                Err(e) => kv_error(e),
            },
            Err(e) => e,
        },
    );
    // kv_get(table, key) -> {:ok, {value, revision} | :none} | {:error, why}
    // (linearizable).
    f.register(
        test,
        Atom::new("kv_get"),
        2,
        |ctx: &mut Ctx, args: Vec<Term>| match table(ctx.node(), &args[0]) {
            Ok(t) => match t.get(ctx, &args[1]) {
                Ok(r) => ok(row(r)),
                Err(e) => kv_error(e),
            },
            Err(e) => e,
        },
    );
    // kv_cas(table, key, expect, value), expect :absent or the key's last-write
    // revision -> {:ok, revision} | {:conflict, {value, revision} | :none} |
    // {:error, why}.
    f.register(
        test,
        Atom::new("kv_cas"),
        4,
        |ctx: &mut Ctx, args: Vec<Term>| {
            let expect = match &args[2] {
                Term::Int(r) => Expect::Modified(*r as u64),
                _ => Expect::Absent,
            };
            match table(ctx.node(), &args[0]) {
                Ok(t) => match t.compare_and_set(ctx, &args[1], expect, &args[3]) {
                    Ok(Ok(w)) => ok(Term::Int(w.revision as i64)),
                    Ok(Err(c)) => Term::tuple(vec![Term::atom("conflict"), row(c.current)]),
                    Err(e) => kv_error(e),
                },
                Err(e) => e,
            }
        },
    );
    // kv_status(table) -> {:status, leads, term, applied, known_leader | :none}.
    f.register(
        test,
        Atom::new("kv_status"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| match table(ctx.node(), &args[0]) {
            Ok(t) => {
                let g = t.group();
                let s = g.shared();
                let known = s
                    .known_leader()
                    .map_or(Term::atom("none"), |i| Term::Atom(g.config().nodes[i]));
                Term::tuple(vec![
                    Term::atom("status"),
                    Term::atom(if s.is_leader() { "true" } else { "false" }),
                    Term::Int(s.term() as i64),
                    Term::Int(s.applied() as i64),
                    known,
                ])
            }
            Err(e) => e,
        },
    );
}

/// Applies `OXBEAM_TEST_PEER_PORTS` (`name@host=port,...`) to `net`: each peer named is
/// dialled at its port (a proxy, say) rather than where the port mapper says.
pub fn peer_ports_from_env(net: &oxbeam::node::Net) {
    let Ok(spec) = std::env::var("OXBEAM_TEST_PEER_PORTS") else {
        return;
    };
    for pair in spec.split(',').filter(|p| !p.is_empty()) {
        match pair.split_once('=').map(|(n, p)| (n, p.parse::<u16>())) {
            Some((name, Ok(port))) => net.set_peer_port(Atom::new(name), Some(port)),
            _ => ::log::warn!("OXBEAM_TEST_PEER_PORTS: {pair:?} is not name=port"),
        }
    }
}
