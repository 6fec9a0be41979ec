//! The product carries no fixtures: `oxbeam node` and `oxbeam console`, started as OS
//! processes, answer rpc and remote spawn of every `oxbeam_test` and `oxbeam_bench`
//! function (`halt/1` included) with `undef`, and keep running; the built-ins answer.
//! The test node (`oxbeam-testnode node`, what the other tests start) does have them.
#[path = "../../../tests/support/mod.rs"]
mod support;

use oxbeam::dist::rpc::{self, RpcError};
use oxbeam::node::Net;
use oxbeam::rt::Attached;
use oxbeam::rt::functions::undef;
use oxbeam::term::{Atom, Term};
use support::console::ConsoleProc;
use support::{NodeProc, PRODUCT, SOON, net, private_mapper, test_cookie};

/// Every function the test node adds, by module, name and arity (`testnode/`).
const FIXTURES: &[(&str, &str, usize)] = &[
    ("oxbeam_test", "echo", 0),
    ("oxbeam_test", "echo_named", 1),
    ("oxbeam_test", "sink", 0),
    ("oxbeam_test", "pg_join", 1),
    ("oxbeam_test", "global_register", 2),
    ("oxbeam_test", "locked_increments", 3),
    ("oxbeam_test", "hold_lock", 2),
    ("oxbeam_test", "crash", 0),
    ("oxbeam_test", "sleep", 1),
    ("oxbeam_test", "exit_with", 1),
    ("oxbeam_test", "link_to", 1),
    ("oxbeam_bench", "ping", 4),
    ("oxbeam_bench", "counter", 0),
    ("oxbeam_bench", "blast", 4),
    ("oxbeam_bench", "await_nodes", 2),
    ("oxbeam_bench", "rpc_calls", 3),
    ("oxbeam_bench", "global_names", 2),
    ("oxbeam_bench", "whereis_loop", 3),
    ("oxbeam_bench", "pg_members", 3),
    ("oxbeam_bench", "pg_join_many", 2),
    ("oxbeam_bench", "pg_watch", 0),
    ("oxbeam_bench", "pg_watch_monitor", 0),
    ("oxbeam_bench", "halt", 1),
    ("oxbeam_bench", "stop", 0),
    ("oxbeam_bench", "pg_join_prop", 3),
    ("oxbeam_bench", "connect", 1),
];

fn a(s: &str) -> Atom {
    Atom::new(s)
}

/// Checks that `node` (a product node) answers the built-ins, refuses every fixture by
/// rpc and by remote spawn with `undef`, and is still up afterwards.
fn refuses_every_fixture(ctl: &Net, me: &mut Attached, node: &str) {
    let n = a(node);
    let t = Some(SOON);
    let alive = |me: &mut Attached| rpc::call(me, n, a("erlang"), a("node"), vec![], t);
    assert_eq!(alive(me), Ok(Term::Atom(n)), "{node}: a built-in answers");
    for &(m, f, arity) in FIXTURES {
        let args = vec![Term::Int(0); arity];
        let want = undef(a(m), a(f), arity);
        assert_eq!(
            rpc::call(me, n, a(m), a(f), args.clone(), t),
            Err(RpcError::Exit(want.clone())),
            "{node}: rpc {m}:{f}/{arity}"
        );
        let spawned = ctl.spawn(
            me,
            n,
            (a(m), a(f), args),
            oxbeam::node::SpawnRequest::default(),
        );
        assert_eq!(
            spawned.map(|(p, _)| p).map_err(|e| e.reason()),
            Err(want),
            "{node}: spawn {m}:{f}/{arity}"
        );
    }
    // halt/1 and stop/0 were refused, not run: the node still answers.
    assert_eq!(alive(me), Ok(Term::Atom(n)), "{node}: up after it all");
}

#[test]
fn the_product_node_and_console_register_no_test_functions() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let ctl = net("pfctl", epmd, &cookie);
    let mut me = ctl.node().attach();
    let mut product = NodeProc::start_exe(PRODUCT, "pfnode", &cookie, epmd, &[]);
    refuses_every_fixture(&ctl, &mut me, &product.name);
    let console = ConsoleProc::start("pfcons", &cookie, epmd, &[]);
    refuses_every_fixture(&ctl, &mut me, &console.name);
    assert!(product.stop(), "the product node stops cleanly on SIGTERM");
    drop(me);
    ctl.shutdown();
}
