//! Links, monitors and exit signals: every case of Erlang's rules.
mod support;

use std::time::Duration;

use oxbeam::rt::{Ctx, Flow, LinkError, Node, Task};
use oxbeam::term::{Atom, Pid, Term, term};
use support::SOON;

/// A process that waits for `{:exit, reason}` and exits with it, or `:crash` to panic.
fn waiter(node: &Node) -> Pid {
    node.spawn(|_ctx: &mut Ctx, msg: Term| {
        if let Some([reason]) = msg.tagged("exit") {
            return Flow::Stop(reason.clone());
        }
        if msg.is_atom("crash") {
            panic!("deliberate crash");
        }
        Flow::Continue
    })
}

fn down_reason(me: &mut oxbeam::rt::Attached, pid: Pid) -> Term {
    let msg = me
        .receive_match(
            |m| matches!(m.tagged("DOWN"), Some([_, _, Term::Pid(p), _]) if *p == pid),
            Some(SOON),
        )
        .unwrap_or_else(|| panic!("no DOWN from {pid}; mailbox: {:?}", me.flush()));
    msg.as_tuple().unwrap()[4].clone()
}

#[test]
fn monitor_reports_normal_reason_and_noproc() {
    let node = support::node(2);
    let mut me = node.attach();
    let p = waiter(&node);
    let r = me.monitor(p);
    me.send(p, term!({:exit, :normal}));
    let msg = me.receive_timeout(SOON).unwrap();
    assert_eq!(
        msg.to_string(),
        format!("{{:DOWN, {r}, :process, {p}, :normal}}")
    );
    // Monitoring a process that is already gone gives DOWN noproc at once.
    me.monitor(p);
    assert_eq!(down_reason(&mut me, p), term!(:noproc));
    let q = waiter(&node);
    me.monitor(q);
    me.send(q, term!({:exit, :boom}));
    assert_eq!(down_reason(&mut me, q), term!(:boom));
    drop(me);
    node.shutdown();
}

#[test]
fn panic_ends_only_its_process_with_the_message_in_the_reason() {
    let node = support::node(1);
    let mut me = node.attach();
    let victim = waiter(&node);
    let bystander = waiter(&node);
    me.monitor(victim);
    me.send(victim, term!(:crash));
    let reason = down_reason(&mut me, victim);
    assert_eq!(reason.to_string(), "{:panic, \"deliberate crash\"}");
    assert!(node.is_alive(bystander));
    // The single worker survived the panic: it still runs processes.
    me.monitor(bystander);
    me.send(bystander, term!({:exit, :done}));
    assert_eq!(down_reason(&mut me, bystander), term!(:done));
    drop(me);
    node.shutdown();
}

#[test]
fn abnormal_exit_propagates_over_links_normal_does_not() {
    let node = support::node(2);
    let mut me = node.attach();
    let me_pid = me.pid();
    // a <- linker -> b: b's death with :boom kills the linker, whose death kills a.
    let a = waiter(&node);
    let b = waiter(&node);
    me.monitor(a);
    me.monitor(b);
    let (linker, _) = me.spawn_monitor(Task::new(move |ctx: &mut Ctx| {
        ctx.link(a).unwrap();
        ctx.link(b).unwrap();
        ctx.send(me_pid, term!(:linked));
        let _ = ctx.receive();
    }));
    assert_eq!(me.receive_timeout(SOON), Some(term!(:linked)));
    me.send(b, term!({:exit, :boom}));
    assert_eq!(down_reason(&mut me, b), term!(:boom));
    assert_eq!(down_reason(&mut me, linker), term!(:boom));
    assert_eq!(down_reason(&mut me, a), term!(:boom));

    // A normal exit over a link leaves the other side running.
    let c = waiter(&node);
    me.monitor(c);
    let (survivor, _) = me.spawn_monitor(Task::new(move |ctx: &mut Ctx| {
        ctx.link(c).unwrap();
        ctx.send(me_pid, term!(:linked));
        let m = ctx.receive();
        assert!(m.is_atom("stop"));
    }));
    assert_eq!(me.receive_timeout(SOON), Some(term!(:linked)));
    me.send(c, term!({:exit, :normal}));
    assert_eq!(down_reason(&mut me, c), term!(:normal));
    assert!(node.is_alive(survivor));
    me.send(survivor, term!(:stop));
    assert_eq!(down_reason(&mut me, survivor), term!(:normal));
    drop(me);
    node.shutdown();
}

#[test]
fn trap_exit_turns_signals_into_messages() {
    let node = support::node(2);
    let mut me = node.attach();
    me.trap_exit(true);
    let p = waiter(&node);
    me.link(p).unwrap();
    me.send(p, term!({:exit, :boom}));
    let msg = me.receive_timeout(SOON).unwrap();
    assert_eq!(msg, term!({:EXIT, p, :boom}));
    // A normal exit of a linked process also arrives as a message when trapping.
    let q = waiter(&node);
    me.link(q).unwrap();
    me.send(q, term!({:exit, :normal}));
    let msg = me.receive_timeout(SOON).unwrap();
    assert_eq!(msg, term!({:EXIT, q, :normal}));
    // exit(pid, reason) from another process arrives as a message too.
    let me_pid = me.pid();
    node.spawn_task(move |ctx: &mut Ctx| ctx.exit_pid(me_pid, term!(:hello)));
    let msg = me
        .receive_match(|m| m.tagged("EXIT").is_some(), Some(SOON))
        .unwrap();
    assert_eq!(msg.as_tuple().unwrap()[2], term!(:hello));
    drop(me);
    node.shutdown();
}

#[test]
fn kill_is_untrappable_and_becomes_killed() {
    let node = support::node(2);
    let mut me = node.attach();
    me.trap_exit(true);
    let trapper = node.spawn_task(|ctx: &mut Ctx| {
        ctx.trap_exit(true);
        loop {
            let _ = ctx.receive();
        }
    });
    // A process linked to the trapper sees `killed` (trappable) when it dies of kill.
    me.link(trapper).unwrap();
    me.monitor(trapper);
    me.exit_pid(trapper, term!(:kill));
    assert_eq!(down_reason(&mut me, trapper), term!(:killed));
    let exit = me
        .receive_match(|m| m.tagged("EXIT").is_some(), Some(SOON))
        .unwrap();
    assert_eq!(exit.as_tuple().unwrap()[2], term!(:killed));
    drop(me);
    node.shutdown();
}

#[test]
fn exit_signal_normal_is_ignored_by_others_but_ends_self() {
    let node = support::node(2);
    let mut me = node.attach();
    let p = waiter(&node);
    me.monitor(p);
    me.exit_pid(p, term!(:normal));
    // Ordering: the probe after the exit signal is handled after it, so if p ignored
    // the signal it is still alive and handles the probe.
    me.send(p, term!({:exit, :after_probe}));
    assert_eq!(down_reason(&mut me, p), term!(:after_probe));
    let (q, _) = me.spawn_monitor(Task::new(|ctx: &mut Ctx| {
        let me = ctx.pid();
        ctx.exit_pid(me, term!(:normal));
        unreachable!("exit(self(), normal) ends the caller");
    }));
    assert_eq!(down_reason(&mut me, q), term!(:normal));
    drop(me);
    node.shutdown();
}

#[test]
fn link_to_dead_process_gives_noproc() {
    let node = support::node(2);
    let mut me = node.attach();
    let p = waiter(&node);
    me.monitor(p);
    me.send(p, term!({:exit, :normal}));
    down_reason(&mut me, p);
    assert_eq!(me.link(p), Err(LinkError::NoProc(p)));
    me.trap_exit(true);
    me.link(p).unwrap();
    let msg = me.receive_timeout(SOON).unwrap();
    assert_eq!(msg, term!({:EXIT, p, :noproc}));
    drop(me);
    node.shutdown();
}

#[test]
fn unlink_and_demonitor_stop_notifications() {
    let node = support::node(2);
    let mut me = node.attach();
    me.trap_exit(true);
    let p = waiter(&node);
    me.link(p).unwrap();
    me.unlink(p);
    let r = me.monitor(p);
    assert!(me.demonitor(r));
    assert!(!me.demonitor(r));
    let watch = me.monitor(p);
    me.send(p, term!({:exit, :boom}));
    // The only thing that arrives is the DOWN of the monitor still in place.
    let msg = me.receive_timeout(SOON).unwrap();
    assert_eq!(msg.as_tuple().unwrap()[1], Term::Ref(watch));
    assert_eq!(me.receive_timeout(Duration::from_millis(100)), None);
    drop(me);
    node.shutdown();
}

#[test]
fn demonitor_flush_removes_a_delivered_down() {
    let node = support::node(2);
    let mut me = node.attach();
    let p = waiter(&node);
    let r = me.monitor(p);
    let r2 = me.monitor(p);
    me.send(p, term!({:exit, :bye}));
    // Wait until both DOWNs are in; then flush one of them.
    let first = me
        .receive_match(|m| m.tagged("DOWN").is_some(), Some(SOON))
        .unwrap();
    let other = if first.as_tuple().unwrap()[1] == Term::Ref(r) {
        r2
    } else {
        r
    };
    support::wait_for("second DOWN queued", SOON, || {
        (me.message_queue_len() > 0, me.message_queue_len())
    });
    me.demonitor_flush(other);
    assert!(me.flush().is_empty());
    drop(me);
    node.shutdown();
}

#[test]
fn messages_and_exit_signals_keep_their_order() {
    let node = support::node(2);
    let mut me = node.attach();
    me.trap_exit(true);
    let me_pid = me.pid();
    // The sender sends 1..=1000 then exits abnormally while linked: the EXIT comes last.
    let sender = node.spawn_task(move |ctx: &mut Ctx| {
        ctx.link(me_pid).unwrap();
        for i in 1..=1000 {
            ctx.send(me_pid, i);
        }
        ctx.exit(term!(:done_sending));
    });
    for i in 1..=1000 {
        assert_eq!(me.receive_timeout(SOON), Some(Term::Int(i)));
    }
    let exit = me.receive_timeout(SOON).unwrap();
    assert_eq!(exit, term!({:EXIT, sender, :done_sending}));
    drop(me);
    node.shutdown();
}

#[test]
fn attached_process_dies_of_a_linked_crash_when_not_trapping() {
    let node = support::node(2);
    let p = waiter(&node);
    let handle = {
        let node = node.clone();
        std::thread::spawn(move || {
            let mut me = node.attach();
            me.link(p).unwrap();
            me.send(p, term!({:exit, :boom}));
            me.receive()
        })
    };
    let err = handle.join().expect_err("the thread's process dies");
    let text = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("exited with reason :boom"), "{text}");
    // Its pid is gone: nothing is left in the table but `p` is dead too.
    support::wait_for("no processes left", SOON, || {
        (node.process_count() == 0, node.process_count())
    });
    let _ = Atom::new("x");
    node.shutdown();
}

/// A sender keeps the process it last sent to at hand (no table lookup per send): once
/// that process has exited, further sends to it are dropped like sends to any dead pid,
/// and the sender goes on sending to others.
#[test]
fn sends_to_a_process_that_exited_after_earlier_sends_are_dropped() {
    let node = support::node(2);
    let mut me = node.attach();
    let echo = |ctx: &mut Ctx, msg: Term| {
        if let Some([Term::Pid(from), n]) = msg.tagged("echo") {
            ctx.send(*from, n.clone());
        }
        if msg.is_atom("stop") {
            return Flow::stop_normal();
        }
        Flow::Continue
    };
    let first = node.spawn(echo);
    let me_pid = me.pid();
    for i in 0..3 {
        me.send(first, term!({:echo, me_pid, i}));
        assert_eq!(me.receive_timeout(SOON), Some(Term::Int(i)));
    }
    let r = me.monitor(first);
    me.send(first, term!(:stop));
    assert_eq!(
        me.receive_timeout(SOON)
            .and_then(|m| m.as_tuple().map(|t| t[1].clone())),
        Some(Term::Ref(r))
    );
    for i in 0..3 {
        me.send(first, term!({:echo, me_pid, i}));
    }
    let second = node.spawn(echo);
    me.send(second, term!({:echo, me_pid, 7}));
    assert_eq!(
        me.receive_timeout(SOON),
        Some(Term::Int(7)),
        "only the live one answers"
    );
    assert_eq!(me.receive_timeout(Duration::from_millis(50)), None);
    assert!(!node.is_alive(first));
    me.send(second, term!(:stop));
    drop(me);
    node.shutdown();
}

#[test]
fn a_short_attach_to_another_node_gives_the_thread_back_its_pid_printing() {
    let (a, b) = (support::node(1), support::node(1));
    let me = a.attach();
    let mine = format!("{}", me.pid());
    assert!(mine.starts_with("#PID<0."), "{mine}");
    {
        let other = b.attach();
        let theirs = format!("{}", other.pid());
        assert!(theirs.starts_with("#PID<0."), "{theirs}");
        // While attached to b, a's pids print as another node's.
        assert_ne!(format!("{}", me.pid()), mine);
    }
    assert_eq!(format!("{}", me.pid()), mine);
    drop(me);
    a.shutdown();
    b.shutdown();
}
