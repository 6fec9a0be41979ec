//! Attached threads as processes: blocking, timed and selective receive, flush.
mod support;

use std::time::Duration;

use oxbeam::rt::{Ctx, Flow, Task, gen_server};
use oxbeam::term::{Atom, Term, term};
use support::SOON;

#[test]
fn selective_receive_keeps_the_others_in_order() {
    let node = support::node(2);
    let mut me = node.attach();
    for i in 1..=10 {
        me.send(me.pid(), i);
    }
    // Take the even ones first; the odd ones stay queued in their order.
    for want in [2, 4, 6, 8, 10] {
        let got = me.receive_match(|m| m.as_int().is_some_and(|i| i % 2 == 0), Some(SOON));
        assert_eq!(got, Some(Term::Int(want)));
    }
    assert_eq!(
        me.receive_match(|m| m.as_int() == Some(42), Some(Duration::ZERO)),
        None
    );
    let rest: Vec<Term> = me.flush();
    assert_eq!(rest, [1, 3, 5, 7, 9].map(Term::Int).to_vec());
    assert!(me.flush().is_empty());
    drop(me);
    node.shutdown();
}

#[test]
fn receive_timeout_waits_and_wakes() {
    let node = support::node(2);
    let mut me = node.attach();
    let start = std::time::Instant::now();
    assert_eq!(me.receive_timeout(Duration::from_millis(30)), None);
    assert!(start.elapsed() >= Duration::from_millis(30));
    // A message sent later wakes a blocked receive.
    let me_pid = me.pid();
    node.send_after(me_pid, "late", Duration::from_millis(20));
    assert_eq!(me.receive(), Term::str("late"));
    drop(me);
    node.shutdown();
}

#[test]
fn a_process_receives_selectively_inside_a_task() {
    let node = support::node(1);
    let mut me = node.attach();
    let me_pid = me.pid();
    let (worker, _) = me.spawn_monitor(Task::new(move |ctx: &mut Ctx| {
        // Wait for :go while other messages pile up, then report them in order.
        ctx.receive_match(|m| m.is_atom("go"), None);
        let rest = ctx.flush();
        ctx.send(me_pid, Term::list(rest));
    }));
    for i in 0..5 {
        me.send(worker, i);
    }
    me.send(worker, term!(:go));
    me.send(worker, 5);
    let report = me.receive_timeout(SOON).unwrap();
    // 5 may or may not have arrived before the flush; 0..5 are there in order.
    let got: Vec<i64> = report
        .as_list()
        .unwrap()
        .iter()
        .map(|t| t.as_int().unwrap())
        .collect();
    assert!(got.starts_with(&[0, 1, 2, 3, 4]), "{got:?}");
    drop(me);
    node.shutdown();
}

/// A handler process takes what reaches its mailbox in the order it came: plain
/// messages (its fast path), an exit signal it traps (a message made from a signal), a
/// monitor (a signal it only acts on), messages a selective receive skipped, and late
/// replies to a call it gave up on (dropped); in batches and one at a time.
#[test]
fn a_handler_takes_messages_and_signals_in_order() {
    let node = support::node(2);
    let mut me = node.attach();
    let me_pid = me.pid();
    let mut seen: Vec<Term> = Vec::new();
    let p = me.spawn(move |ctx: &mut Ctx, msg: Term| {
        if msg.is_atom("hold") {
            ctx.trap_exit(true);
            // What comes meanwhile waits in the mailbox, behind `go` or not.
            assert!(ctx.receive_match(|m| m.is_atom("go"), Some(SOON)).is_some());
        } else if msg.is_atom("late") {
            // A call that times out: its reply, when it comes, is never seen.
            let r = gen_server::call(ctx, me_pid, term!(:req), Some(Duration::ZERO));
            assert_eq!(r, Err(gen_server::CallError::Timeout));
            ctx.send(me_pid, term!(:gave_up));
        } else if msg.is_atom("stop") {
            return Flow::stop_normal();
        } else if msg.is_atom("report") {
            ctx.send(me_pid, Term::list(std::mem::take(&mut seen)));
        } else {
            seen.push(msg);
        }
        Flow::Continue
    });
    let exit_msg = |reason: &str| term!({:EXIT, me_pid, (Term::atom(reason))});
    me.send(p, term!(:hold));
    me.send(p, 1);
    me.send(p, 2);
    me.exit_pid(p, term!(:why));
    me.monitor(p);
    me.send(p, 3);
    me.send(p, term!(:go));
    me.send(p, 4);
    me.send(p, term!(:report));
    let report = me.receive_timeout(SOON).unwrap();
    let want = vec![
        Term::Int(1),
        Term::Int(2),
        exit_msg("why"),
        Term::Int(3),
        Term::Int(4),
    ];
    assert_eq!(report, Term::list(want));
    me.send(p, term!(:late));
    // {'$gen_call', {From, Tag}, req}, then gave_up: the reply comes after the timeout.
    let call = me.receive_timeout(SOON).unwrap();
    let from = call.as_tuple().unwrap()[1].clone();
    let tag = from.as_tuple().unwrap()[1].clone();
    assert_eq!(me.receive_timeout(SOON), Some(term!(:gave_up)));
    // The late reply among other messages and signals, one at a time and in a burst.
    for round in 0..2 {
        me.send(p, 5);
        me.send(p, term!({(tag.clone()), :late_reply}));
        me.exit_pid(p, term!(:again));
        for i in 0..20 {
            me.send(p, 6 + i);
        }
        me.send(p, term!(:report));
        let report = me.receive_timeout(SOON).unwrap();
        let mut want = vec![Term::Int(5)];
        if round == 1 {
            // The reply was dropped once; a second copy is an ordinary message.
            want.push(term!({(tag.clone()), :late_reply}));
        }
        want.push(exit_msg("again"));
        want.extend((0..20).map(|i| Term::Int(6 + i)));
        assert_eq!(report, Term::list(want), "round {round}");
    }
    me.send(p, term!(:stop));
    drop(me);
    node.shutdown();
}

#[test]
fn many_threads_attach_and_exchange() {
    let node = support::node(2);
    let mut threads = Vec::new();
    let mut root = node.attach();
    let root_pid = root.pid();
    for t in 0..8 {
        let node = node.clone();
        threads.push(std::thread::spawn(move || {
            let mut me = node.attach();
            me.send(root_pid, (t, me.pid()));
            me.receive_timeout(SOON).unwrap()
        }));
    }
    for _ in 0..8 {
        let m = root.receive_timeout(SOON).unwrap();
        let t = m.as_tuple().unwrap();
        root.send(t[1].as_pid().unwrap(), t[0].clone());
    }
    let mut got: Vec<i64> = threads
        .into_iter()
        .map(|h| h.join().unwrap().as_int().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, (0..8).collect::<Vec<_>>());
    drop(root);
    node.shutdown();
}

#[test]
fn dropping_an_attached_process_ends_it_normally() {
    let node = support::node(2);
    let mut watcher = node.attach();
    let (tx, rx) = std::sync::mpsc::channel();
    let n2 = node.clone();
    let h = std::thread::spawn(move || {
        let me = n2.attach();
        tx.send(me.pid()).unwrap();
        // The process ends when `me` drops at the end of this thread.
    });
    let pid = rx.recv().unwrap();
    h.join().unwrap();
    watcher.monitor(pid);
    let down = watcher.receive_timeout(SOON).unwrap();
    // Either it was already gone (noproc) or ended normal.
    let reason = down.as_tuple().unwrap()[4].clone();
    assert!(
        reason.is_atom("noproc") || reason.is_atom("normal"),
        "{reason}"
    );
    assert!(!node.is_alive(pid));
    drop(watcher);
    node.shutdown();
}

#[test]
fn notices_and_typed_messages_are_received_typed() {
    use oxbeam::rt::{Notice, Watched};
    #[derive(serde::Deserialize, Debug, PartialEq)]
    enum Job {
        Run(i64),
        Stop,
    }
    let node = support::node(2);
    let mut me = node.attach();
    // A typed receive skips what doesn't decode (and leaves it queued).
    me.send(me.pid(), term!(:noise));
    me.send(me.pid(), term!({:Run, 7}));
    me.send(me.pid(), term!(:Stop));
    assert_eq!(me.receive_as::<Job>(Some(SOON)), Some(Job::Run(7)));
    assert_eq!(
        me.receive_as_where::<Job>(Some(SOON), |j| *j == Job::Stop),
        Some(Job::Stop)
    );
    assert_eq!(me.receive_as::<Job>(Some(std::time::Duration::ZERO)), None);
    assert_eq!(me.receive_timeout(SOON), Some(term!(:noise)));
    // A DOWN, typed.
    let p = node.spawn_task(|_| {});
    let r = me.monitor(p);
    let down = me.receive_notice(Some(SOON), |n| matches!(n, Notice::Down { .. }));
    let Some(Notice::Down {
        reference,
        object,
        reason,
    }) = down
    else {
        panic!("{down:?}")
    };
    assert_eq!(
        (reference, object, reason),
        (r, Watched::Pid(p), term!(:normal))
    );
    // A monitor by name on a name nobody has: noproc at once, about {name, node}.
    let r = me.monitor_name(Atom::new("nobody_here"), node.name());
    let down = me.receive_notice(Some(SOON), |_| true).unwrap();
    assert_eq!(
        down,
        Notice::Down {
            reference: r,
            object: Watched::Name(Atom::new("nobody_here"), node.name()),
            reason: term!(:noproc),
        }
    );
    // An EXIT to a process trapping exits; and the round trip to a term.
    me.trap_exit(true);
    let q = me.spawn_link(|_: &mut oxbeam::rt::Ctx, _: Term| oxbeam::rt::Flow::Stop(term!(:bye)));
    me.send(q, term!(:go));
    let exit = me
        .receive_notice(Some(SOON), |n| matches!(n, Notice::Exit { .. }))
        .unwrap();
    assert_eq!(
        exit,
        Notice::Exit {
            from: q,
            reason: term!(:bye)
        }
    );
    assert_eq!(Term::from(exit.clone()), term!({:EXIT, q, :bye}));
    assert_eq!(Notice::from_term(&Term::from(exit.clone())), Some(exit));
    let nodedown = term!({:nodedown, :"x@localhost", [{:nodedown_reason, :connection_closed}]});
    assert_eq!(
        Notice::from_term(&nodedown),
        Some(Notice::NodeDown {
            node: Atom::new("x@localhost"),
            reason: Some(term!(:connection_closed))
        })
    );
    assert_eq!(Notice::from_term(&term!({:DOWN, 1, 2})), None);
    drop(me);
    node.shutdown();
}
