//! A node frozen (SIGSTOP) until it is declared down, its global name taken meanwhile on
//! the other side, then thawed (SIGCONT) and reconnected: the conflict is resolved alike
//! on both nodes (one process keeps the name, the other is killed) and pg merges back,
//! as OTP does in `../shared/beam-semantics.md` scenario 14.

mod support;

use std::time::Duration;

use oxbeam::dist::{self, global, pg};
use oxbeam::rt::{Ctx, Flow};
use oxbeam::term::{Pid, Term, term};
use support::fault::cluster::{a, expect, os_node, rpc_on, spawn_on, test_fn};
use support::{SOON, net, private_mapper, send_signal, test_cookie, wait_for};

const TICK: Duration = Duration::from_secs(2);

#[test]
fn a_thawed_node_rejoins_with_global_conflicts_resolved_and_pg_merged() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let ctl = net("fza", epmd, &cookie);
    dist::start(&ctl).unwrap();
    let n1 = os_node("fzb", &cookie, epmd, &ctl, "warn");
    wait_for("connected", SOON, || (ctl.nodes().len() == 1, ctl.nodes()));
    let mut me = ctl.node().attach();
    assert!(global::sync(&mut me, SOON).is_ok());
    let (gb, group) = (a("fz_gb"), term!(:fz_group));

    // On the node to be frozen: a process registered globally, and a pg member.
    let my = me.pid();
    spawn_on(
        &ctl,
        &mut me,
        &n1.name,
        test_fn("global_register", vec![Term::Atom(gb), Term::Pid(my)]),
    );
    expect(&mut me, "the registration", |m| {
        m.tagged("registered")
            .and_then(|r| r[1].is_atom("yes").then_some(()))
    });
    let pb = wait_for("the name seen here", SOON, || {
        let p = global::whereis_name(ctl.node(), gb);
        (p.is_some(), p)
    })
    .unwrap();
    let member = spawn_on(
        &ctl,
        &mut me,
        &n1.name,
        test_fn("pg_join", vec![group.clone()]),
    );
    wait_for("the member seen here", SOON, || {
        let m = pg::get_members(ctl.node(), pg::default_scope(), &group);
        (m == vec![member], m)
    });
    let watch_pb = me.monitor(pb);

    // Freeze it: declared down within the tick time; its name and member go here.
    send_signal(n1.os_pid(), "-STOP");
    wait_for("the frozen node declared down", TICK * 3, || {
        (ctl.nodes().is_empty(), ctl.nodes())
    });
    wait_for("its name and member gone here", SOON, || {
        let name = global::whereis_name(ctl.node(), gb);
        let members = pg::get_members(ctl.node(), pg::default_scope(), &group);
        (name.is_none() && members.is_empty(), (name, members))
    });
    // The name is free here: another process takes it during the partition.
    let pa2 = ctl.node().spawn(|_: &mut Ctx, _: Term| Flow::Continue);
    assert!(global::register_name(&mut me, gb, pa2).is_ok());
    // The monitor on pb fired with noconnection when the node went.
    let down = expect(&mut me, "DOWN of pb", |m| {
        m.tagged("DOWN")
            .and_then(|d| (d[0] == Term::Ref(watch_pb)).then(|| d[3].clone()))
    });
    assert_eq!(down, term!(:noconnection));

    // Thaw and reconnect: one process keeps the name on both nodes, the other is killed.
    send_signal(n1.os_pid(), "-CONT");
    wait_for("reconnected", SOON * 2, || {
        let up = ctl.connect(&n1.name).is_ok();
        (up && ctl.nodes().len() == 1, ctl.nodes())
    });
    assert!(global::sync(&mut me, SOON).is_ok());
    let (here, there) = wait_for("both nodes agree on the name", SOON, || {
        let here = global::whereis_name(ctl.node(), gb);
        let there = rpc_on(
            &mut me,
            &n1.name,
            "global",
            "whereis_name",
            vec![Term::Atom(gb)],
        );
        let agree = here.map(Term::Pid) == Some(there.clone());
        (agree, (here, there))
    });
    let winner = here.expect("the name survives");
    let loser: Pid = if winner == pa2 { pb } else { pa2 };
    assert!(winner == pa2 || winner == pb, "{here:?} / {there}");
    println!(
        "fault-report name kept by {} ({}); killed: {}",
        Term::Pid(winner),
        if winner == pa2 {
            "the side that stayed up"
        } else {
            "the thawed node"
        },
        Term::Pid(loser)
    );
    // The loser is gone: on this node by is_alive, on the other by a fresh monitor.
    wait_for("the loser killed", SOON, || {
        let gone = if loser == pa2 {
            !ctl.node().is_alive(pa2)
        } else {
            let r = me.monitor(pb);
            let m = me.receive_timeout(SOON);
            m.as_ref()
                .and_then(|m| m.tagged("DOWN"))
                .is_some_and(|d| d[0] == Term::Ref(r))
        };
        (gone, loser)
    });
    // pg merges: the member on the thawed node is seen here again.
    wait_for("the member back", SOON, || {
        let m = pg::get_members(ctl.node(), pg::default_scope(), &group);
        (m == vec![member], m)
    });
    drop(me);
    ctl.shutdown();
}
