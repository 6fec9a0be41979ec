//! rpc against nodes running as OS processes: results and every error kind.
mod support;

use std::time::Duration;

use oxbeam::dist::rpc::{self, RpcError};
use oxbeam::term::{Atom, Term, term};
use support::{NodeProc, SOON, net, private_mapper, test_cookie};

fn a(s: &str) -> Atom {
    Atom::new(s)
}

#[test]
fn rpc_results_and_every_error_kind() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let n1 = NodeProc::start("r1n1", &cookie, epmd, &[]);
    let mut n2 = NodeProc::start("r1n2", &cookie, epmd, &["--connect", "r1n1@localhost"]);
    let ctl = net("r1ctl", epmd, &cookie);
    oxbeam::dist::builtins::register(&ctl);
    assert!(ctl.connect(&n1.name).is_ok());
    let mut me = ctl.node().attach();
    let (n1a, n2a) = (a(&n1.name), a(&n2.name));
    let t = Some(SOON);
    assert_eq!(
        rpc::call(&mut me, n1a, a("Kernel"), a("node"), vec![], t),
        Ok(Term::Atom(n1a))
    );
    // Names as `&str` where an atom is meant.
    assert_eq!(
        rpc::call(&mut me, n1.name.as_str(), "Kernel", "node", vec![], t),
        Ok(Term::Atom(n1a))
    );
    let range = term!(%{:first => 1, :last => 1000});
    assert_eq!(
        rpc::call(&mut me, n1a, a("Enum"), a("sum"), vec![range], t),
        Ok(Term::Int(500_500))
    );
    // A local call takes the same path.
    assert_eq!(
        rpc::call(&mut me, ctl.name(), a("Kernel"), a("node"), vec![], t),
        Ok(Term::Atom(ctl.name()))
    );
    // Undefined function, a panic, a timeout.
    let undef = rpc::call(&mut me, n1a, a("NonExistent"), a("foo"), vec![], t).unwrap_err();
    assert_eq!(
        undef.badrpc().to_string(),
        "{:badrpc, {:EXIT, {:undef, {:NonExistent, :foo, 0}}}}"
    );
    let crash = rpc::call(&mut me, n1a, a("oxbeam_test"), a("crash"), vec![], t).unwrap_err();
    assert_eq!(crash, RpcError::Exit(term!({:panic, "crashed on purpose"})));
    let slow = rpc::call(
        &mut me,
        n1a,
        a("oxbeam_test"),
        a("sleep"),
        vec![Term::Int(300)],
        Some(Duration::from_millis(20)),
    );
    assert_eq!(slow, Err(RpcError::Timeout));
    // multicall with every node up, then with one down.
    support::wait_for("the mesh", SOON, || (ctl.nodes().len() == 2, ctl.nodes()));
    let all = [ctl.name(), n1a, n2a];
    let (results, bad) = rpc::multicall(&mut me, &all, a("Kernel"), a("node"), vec![], t);
    assert_eq!(
        results,
        all.iter().map(|n| Term::Atom(*n)).collect::<Vec<_>>()
    );
    assert!(bad.is_empty());
    n2.kill();
    support::wait_for("n2 down", SOON, || (ctl.nodes().len() == 1, ctl.nodes()));
    assert_eq!(
        rpc::call(&mut me, n2a, a("Kernel"), a("node"), vec![], t),
        Err(RpcError::NodeDown)
    );
    let (results, bad) = rpc::multicall(&mut me, &all, a("Kernel"), a("node"), vec![], t);
    assert_eq!(results, vec![Term::Atom(ctl.name()), Term::Atom(n1a)]);
    assert_eq!(bad, vec![n2a]);
    // Nothing stray was left behind by any of it (late replies, DOWNs).
    // The timed-out sleep(300) ends within this window; its reply must not show up.
    assert_eq!(me.receive_timeout(Duration::from_millis(400)), None);
    drop(me);
    ctl.shutdown();
}

#[test]
fn ten_thousand_calls_with_timeouts_leave_an_empty_mailbox() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let n1 = NodeProc::start("r2n1", &cookie, epmd, &[]);
    let ctl = net("r2ctl", epmd, &cookie);
    assert!(ctl.connect(&n1.name).is_ok());
    let mut me = ctl.node().attach();
    let n1a = a(&n1.name);
    let mut ok = 0;
    let mut timeouts = 0;
    for i in 0..10_000 {
        // Every 100th call is made to time out.
        let (f, args, t) = if i % 100 == 0 {
            ("sleep", vec![Term::Int(20)], Duration::from_millis(1))
        } else {
            ("sleep", vec![Term::Int(0)], SOON)
        };
        match rpc::call(&mut me, n1a, a("oxbeam_test"), a(f), args, Some(t)) {
            Ok(_) => ok += 1,
            Err(RpcError::Timeout) => timeouts += 1,
            Err(e) => panic!("call {i}: {e}"),
        }
    }
    assert_eq!(ok + timeouts, 10_000);
    assert!(timeouts >= 90, "{timeouts}");
    // Late replies of the timed-out calls would land within their 20 ms sleep.
    assert_eq!(me.receive_timeout(Duration::from_millis(100)), None);
    drop(me);
    ctl.shutdown();
}
