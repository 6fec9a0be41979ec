//! pg across nodes running as OS processes: joins, leaves, member death, node death,
//! and scope monitoring.
mod support;

use oxbeam::dist::pg;
use oxbeam::term::{Atom, Pid, Term, term};
use support::{NodeProc, SOON, net, private_mapper, test_cookie};

#[test]
fn membership_follows_joins_leaves_deaths_and_node_loss() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let n1 = NodeProc::start("g1n1", &cookie, epmd, &[]);
    let mut n2 = NodeProc::start("g1n2", &cookie, epmd, &["--connect", "g1n1@localhost"]);
    let ctl = net("g1ctl", epmd, &cookie);
    oxbeam::dist::start(&ctl).unwrap();
    let node = ctl.node().clone();
    let scope = pg::default_scope();
    let workers = term!(:workers);
    let mut me = node.attach();
    let (watch, current) = pg::monitor_scope(&mut me, scope).unwrap();
    assert_eq!(current, term!(%{}));
    assert!(ctl.connect(&n1.name).is_ok());
    support::wait_for("the mesh", SOON, || (ctl.nodes().len() == 2, ctl.nodes()));
    let join_on = |me: &mut oxbeam::rt::Attached, n: &str| -> Pid {
        let mfa = (
            Atom::new("oxbeam_test"),
            Atom::new("pg_join"),
            vec![term!(:workers)],
        );
        ctl.spawn(me, Atom::new(n), mfa, oxbeam::node::SpawnRequest::default())
            .unwrap()
            .0
    };
    let a = join_on(&mut me, &n1.name);
    let b = join_on(&mut me, &n1.name);
    let c = join_on(&mut me, &n2.name);
    let my = me.pid();
    pg::join(&mut me, scope, workers.clone(), &[my, my]).unwrap();
    let members = |want: usize| {
        support::wait_for("members", SOON, || {
            let m = pg::get_members(&node, scope, &workers);
            (m.len() == want, m)
        })
    };
    let m = members(5);
    for p in [a, b, c] {
        assert!(m.contains(&p));
    }
    assert_eq!(pg::get_local_members(&node, scope, &workers), vec![my, my]);
    assert_eq!(pg::which_groups(&node, scope), vec![workers.clone()]);
    // Notifications: one join per change we saw, each naming the group.
    let join = me.receive_match(
        |m| matches!(m.as_tuple(), Some([Term::Ref(r), k, ..]) if *r == watch && k.is_atom("join")),
        Some(SOON),
    );
    assert!(join.is_some());
    // A member that exits leaves.
    me.send(a, term!(:stop));
    let m = members(4);
    assert!(!m.contains(&a));
    // A node that dies takes its members along.
    n2.kill();
    let m = members(3);
    assert!(!m.contains(&c));
    let left = me.receive_match(
        |m| matches!(m.as_tuple(), Some([Term::Ref(r), k, _, ps]) if *r == watch && k.is_atom("leave") && ps.as_list().is_some_and(|l| l.contains(&Term::Pid(c)))),
        Some(SOON),
    );
    assert!(
        left.is_some(),
        "a leave notification for the lost node's member"
    );
    // Joining twice counts twice; leaving once leaves one.
    assert!(pg::leave(&mut me, scope, workers.clone(), &[my]).unwrap());
    assert_eq!(pg::get_local_members(&node, scope, &workers), vec![my]);
    members(2);
    // Only local pids may join.
    assert!(pg::join(&mut me, scope, workers.clone(), &[b]).is_err());
    drop(me);
    ctl.shutdown();
}

/// Joins and leaves update the readers' view of their group only (not a copy of every
/// group): after a mix of them over many groups, every reader agrees with what was done.
#[test]
fn the_view_follows_joins_and_leaves_group_by_group() {
    let node = support::node(2);
    let scope = Atom::new("view_scope");
    pg::start_scope(&node, scope).expect("scope starts");
    let mut me = node.attach();
    let (a, b) = (
        me.pid(),
        node.spawn(|_: &mut oxbeam::rt::Ctx, _: Term| oxbeam::rt::Flow::Continue),
    );
    let g = |i: i64| term!({:g, i});
    for i in 0..200 {
        pg::join(&mut me, scope, g(i), &[a]).unwrap();
        if i % 2 == 0 {
            pg::join(&mut me, scope, g(i), &[b, b]).unwrap();
        }
    }
    for i in (0..200).step_by(4) {
        pg::leave(&mut me, scope, g(i), &[a]).unwrap();
    }
    for i in (0..200).step_by(8) {
        pg::leave(&mut me, scope, g(i), &[b, b]).unwrap();
    }
    let mut groups = pg::which_groups(&node, scope);
    groups.sort();
    let mut expect = Vec::new();
    for i in 0..200 {
        let mut members = Vec::new();
        if i % 4 != 0 {
            members.push(a);
        }
        if i % 2 == 0 && i % 8 != 0 {
            members.extend([b, b]);
        }
        let mut got = pg::get_members(&node, scope, &g(i));
        got.sort();
        members.sort();
        assert_eq!(got, members, "group {i}");
        assert_eq!(
            pg::get_local_members(&node, scope, &g(i)).len(),
            members.len()
        );
        if !members.is_empty() {
            expect.push(g(i));
        }
    }
    expect.sort();
    assert_eq!(
        groups, expect,
        "which_groups lists exactly the groups with members"
    );
    drop(me);
    node.shutdown();
}
