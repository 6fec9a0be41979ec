//! Driving OS-process nodes from a node in the test process: remote spawn of their
//! registered functions, rpc, expected messages.

use oxbeam::dist::rpc;
use oxbeam::node::Net;
use oxbeam::rt::Attached;
use oxbeam::term::{Atom, Pid, Term};

use super::watched::{self, LoggedNode};
use crate::support::SOON;

/// Short for `Atom::new`.
pub fn a(s: &str) -> Atom {
    Atom::new(s)
}

/// Spawns `module:fun(args)` on `node`.
pub fn spawn_on(ctl: &Net, me: &mut Attached, node: &str, mfa: (&str, &str, Vec<Term>)) -> Pid {
    let (m, f, args) = mfa;
    ctl.spawn(
        me,
        a(node),
        (a(m), a(f), args),
        oxbeam::node::SpawnRequest::default(),
    )
    .unwrap_or_else(|e| panic!("spawn {m}:{f} on {node}: {e}"))
    .0
}

/// `oxbeam_test:fun(args)` (see `testnode/fixtures.rs`).
pub fn test_fn(fun: &str, args: Vec<Term>) -> (&'static str, &str, Vec<Term>) {
    ("oxbeam_test", fun, args)
}

/// The next message `pick` accepts, within [`SOON`]; panics with the mailbox otherwise.
pub fn expect<T>(me: &mut Attached, what: &str, pick: impl FnMut(&Term) -> Option<T>) -> T {
    me.receive_with(pick, Some(SOON))
        .unwrap_or_else(|| panic!("no {what}; mailbox {:?}", me.flush()))
}

/// `module:fun(args)` on `node` by rpc; panics on an rpc error.
pub fn rpc_on(me: &mut Attached, node: &str, m: &str, f: &str, args: Vec<Term>) -> Term {
    rpc::call(me, a(node), a(m), a(f), args, Some(SOON))
        .unwrap_or_else(|e| panic!("rpc {m}:{f} on {node}: {e:?}"))
}

/// Whether `node` lists `peer` among its nodes (asked by rpc).
pub fn lists(me: &mut Attached, node: &str, peer: &str) -> bool {
    let l = rpc_on(me, node, "Node", "list", vec![]);
    l.as_list().is_some_and(|l| l.contains(&Term::atom(peer)))
}

/// An OS-process node that connects to `ctl`'s node, ticking as `support::net` does
/// (2 s: with `oxbeam node`'s default of 15 s it would tick every 3.75 s, and `ctl`
/// would declare an idle connection down after 2 s).
pub fn os_node(short: &str, cookie: &str, epmd: u16, ctl: &Net, level: &str) -> LoggedNode {
    let extra = ["--tick-ms", "2000", "--connect", ctl.name().as_str()];
    LoggedNode::start(short, cookie, epmd, &extra, level)
}

/// Prints `who`'s log lines from `from` on, summarized.
pub fn report_log(who: &LoggedNode, from: usize) {
    let lines = who.log_since(from);
    println!("fault-report {}: {} log lines", who.name, lines.len());
    watched::print_summary(&lines);
}

/// {:count, n, in_order} from an `oxbeam_test:sink`.
pub fn sink_count(me: &mut Attached, sink: Pid) -> (i64, bool) {
    me.send(sink, (Term::atom("count"), me.pid()));
    expect(me, "a sink's count", |m| match m.tagged("count") {
        Some([Term::Int(n), ok]) => Some((*n, ok.is_atom("true"))),
        _ => None,
    })
}

/// The members of pg group `group` as `node` sees them (by `oxbeam_bench:pg_members`).
pub fn pg_count_on(ctl: &Net, me: &mut Attached, node: &str, group: &str) -> i64 {
    let my = me.pid();
    let args = vec![Term::atom(group), Term::Int(1), Term::Pid(my)];
    spawn_on(ctl, me, node, ("oxbeam_bench", "pg_members", args));
    expect(me, "pg_members", |m| match m.tagged("result") {
        Some([_, Term::Int(n)]) => Some(*n),
        _ => None,
    })
}

/// Three test nodes as OS processes (`{prefix}1..3`, connected to `ctl`), each having
/// run `module:start(members)` (all at once: each waits for a leader, which needs the
/// others); their names, in order.
pub fn services_trio(
    prefix: &str,
    cookie: &str,
    epmd: u16,
    ctl: &Net,
    module: &str,
) -> (Vec<LoggedNode>, Vec<String>) {
    let nodes: Vec<_> = (1..=3)
        .map(|i| os_node(&format!("{prefix}{i}"), cookie, epmd, ctl, "warn"))
        .collect();
    crate::support::wait_for("three nodes connected", crate::support::SOON, || {
        (ctl.nodes().len() == 3, ctl.nodes())
    });
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let members = Term::list(names.iter().map(|n| Term::atom(n)).collect::<Vec<_>>());
    let starts: Vec<_> = names
        .iter()
        .map(|n| {
            let (node, n, members) = (ctl.node().clone(), n.clone(), members.clone());
            let module = module.to_owned();
            std::thread::spawn(move || {
                let mut me = node.attach();
                let soon = Some(crate::support::SOON);
                oxbeam::dist::rpc::call(&mut me, a(&n), a(&module), a("start"), vec![members], soon)
            })
        })
        .collect();
    for s in starts {
        let r = s.join().expect("a start thread");
        assert!(
            matches!(&r, Ok(t) if t.is_atom("ok")),
            "{module}:start: {r:?}"
        );
    }
    (nodes, names)
}
