//! The test node (`oxbeam-testnode node`, what the other tests start) has the fixtures
//! the product lacks (`crates/cli/tests/cli_product.rs` checks the product refuses
//! them).
mod support;

use oxbeam::dist::rpc::{self, RpcError};
use oxbeam::term::{Atom, Term, term};
use support::{NodeProc, SOON, net, private_mapper, test_cookie};

fn a(s: &str) -> Atom {
    Atom::new(s)
}

#[test]
fn the_test_node_has_the_fixtures() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let ctl = net("tfctl", epmd, &cookie);
    let mut me = ctl.node().attach();
    let mut testnode = NodeProc::start("tfnode", &cookie, epmd, &[]);
    let n = a(&testnode.name);
    let t = Some(SOON);
    // The same built-ins as the product...
    assert_eq!(
        rpc::call(&mut me, n, a("erlang"), a("node"), vec![], t),
        Ok(Term::Atom(n))
    );
    // ...and the fixtures: each of these answers in its own way, none with undef.
    let sleep = rpc::call(&mut me, n, a("oxbeam_test"), a("sleep"), vec![0.into()], t);
    assert_eq!(sleep, Ok(term!(:slept)));
    let exit = rpc::call(
        &mut me,
        n,
        a("oxbeam_test"),
        a("exit_with"),
        vec![1.into()],
        t,
    );
    assert_eq!(exit, Err(RpcError::Exit(Term::Int(1))));
    let mfa = (a("oxbeam_test"), a("echo"), vec![]);
    let (echo, _) = ctl
        .spawn(&mut me, n, mfa, oxbeam::node::SpawnRequest::default())
        .expect("spawn echo");
    me.send(echo, (me.pid(), "hi"));
    assert_eq!(
        me.receive_timeout(SOON)
            .and_then(|m| m.as_str().map(str::to_owned))
            .as_deref(),
        Some("hi")
    );
    me.send(echo, term!(:stop));
    // What makes it a fixture: oxbeam_bench:halt(3) ends the OS process with status 3.
    ctl.monitor_node(me.pid(), n, true);
    rpc::cast(&mut me, n, a("oxbeam_bench"), a("halt"), vec![3.into()]);
    let down = me.receive_match(|m| m.tagged("nodedown").is_some(), t);
    assert!(down.is_some(), "the test node halted");
    assert_eq!(testnode.wait_exit(SOON), Some(3));
    drop(me);
    ctl.shutdown();
}
