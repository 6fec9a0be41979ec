//! Group leaders on one node: inherited on every spawn path, set from outside, and
//! `io::put_chars` through a capturing I/O server (or standard output, bounded, when
//! there is none or it is gone).
mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use oxbeam::rt::io::{self, Fallback, Written};
use oxbeam::rt::{Ctx, GroupLeaderError, SpawnOpts, Task};
use oxbeam::term::{Pid, Term};
use support::SOON;

/// An I/O server on `node` whose output comes out of the receiver.
fn capture(node: &oxbeam::rt::Node) -> (Pid, mpsc::Receiver<String>) {
    let (tx, rx) = mpsc::channel();
    let server = io::start_server(
        node,
        Box::new(move |text: &str| {
            let _ = tx.send(text.to_owned());
        }),
    );
    (server, rx)
}

/// Spawns (from `me`) a task that reports its group leader to `me`.
fn leader_seen_by(me: &mut Ctx, opts: SpawnOpts) -> Term {
    let me_pid = me.pid();
    me.spawn_opts(
        Task::new(move |ctx: &mut Ctx| {
            let gl = ctx.group_leader().map_or(Term::atom("none"), Term::Pid);
            ctx.send(me_pid, (Term::atom("gl"), gl));
        }),
        opts,
    );
    me.receive_with(|m| m.tagged("gl").map(|r| r[0].clone()), Some(SOON))
        .expect("the task reports")
}

#[test]
fn a_spawned_process_inherits_its_spawners_group_leader() {
    let node = support::node(2);
    let (server, _rx) = capture(&node);
    let mut me = node.attach();
    assert_eq!(me.group_leader(), None, "no default yet");
    me.set_group_leader(server);
    assert_eq!(me.group_leader(), Some(server));
    for opts in [
        SpawnOpts::default(),
        SpawnOpts {
            link: true,
            ..SpawnOpts::default()
        },
        SpawnOpts {
            monitor: true,
            ..SpawnOpts::default()
        },
    ] {
        assert_eq!(
            leader_seen_by(&mut me, opts.clone()),
            Term::Pid(server),
            "{opts:?}"
        );
    }
    // Two generations down: a child's child has it too.
    let me_pid = me.pid();
    me.spawn(Task::new(move |ctx: &mut Ctx| {
        ctx.spawn(Task::new(move |ctx: &mut Ctx| {
            let gl = ctx.group_leader().map_or(Term::atom("none"), Term::Pid);
            ctx.send(me_pid, (Term::atom("gl"), gl));
        }));
    }));
    let got = me.receive_with(|m| m.tagged("gl").map(|r| r[0].clone()), Some(SOON));
    assert_eq!(got, Some(Term::Pid(server)));
    drop(me);
    node.shutdown();
}

#[test]
fn processes_from_outside_any_process_get_the_nodes_default() {
    let node = support::node(2);
    let (server, _rx) = capture(&node);
    assert_eq!(node.default_group_leader(), None);
    let idle = node.spawn(|_: &mut Ctx, _| oxbeam::rt::Flow::Continue);
    assert_eq!(node.group_leader(idle), Ok(None));
    node.set_default_group_leader(Some(server));
    let later = node.spawn(|_: &mut Ctx, _| oxbeam::rt::Flow::Continue);
    assert_eq!(node.group_leader(later), Ok(Some(server)));
    assert_eq!(
        node.group_leader(idle),
        Ok(None),
        "running processes keep theirs"
    );
    let me = node.attach();
    assert_eq!(me.group_leader(), Some(server), "an attached thread too");
    let prepared = node
        .prepare_mfa(
            oxbeam::term::Atom::new("erpc"),
            oxbeam::term::Atom::new("execute_call"),
            vec![Term::atom("x"); 4],
            None,
            None,
        )
        .expect("a built-in");
    assert_eq!(node.group_leader(prepared.pid()), Ok(Some(server)));
    prepared.set_group_leader(Some(me.pid()));
    assert_eq!(node.group_leader(prepared.pid()), Ok(Some(me.pid())));
    prepared.start();
    drop(me);
    node.shutdown();
}

#[test]
fn another_processs_group_leader_is_set_from_outside() {
    let node = support::node(2);
    let (server, _rx) = capture(&node);
    let target = node.spawn(|_: &mut Ctx, _| oxbeam::rt::Flow::Continue);
    assert_eq!(node.set_group_leader(server, target), Ok(()));
    assert_eq!(node.group_leader(target), Ok(Some(server)));
    let foreign = Pid::from_parts(oxbeam::term::Atom::new("other@host"), 1, 90);
    assert_eq!(
        node.set_group_leader(server, foreign),
        Err(GroupLeaderError::NotLocal(foreign))
    );
    let mut me = node.attach();
    let (gone, _) = me.spawn_monitor(Task::new(|_: &mut Ctx| {}));
    me.receive_match(|m| m.tagged("DOWN").is_some(), Some(SOON))
        .expect("it exits");
    assert_eq!(
        node.set_group_leader(server, gone),
        Err(GroupLeaderError::NotAlive(gone))
    );
    assert_eq!(
        GroupLeaderError::NotAlive(gone).reason(),
        Term::atom("badarg")
    );
    drop(me);
    node.shutdown();
}

#[test]
fn put_chars_goes_to_the_group_leader_and_waits_for_its_reply() {
    let node = support::node(2);
    let (server, rx) = capture(&node);
    let mut me = node.attach();
    me.set_group_leader(server);
    assert_eq!(
        io::put_chars(&mut me, "hello\n"),
        Ok(Written::Leader(server))
    );
    // The reply came back, so the sink has it already: no wait needed.
    assert_eq!(rx.try_recv().as_deref(), Ok("hello\n"));
    // A spawned process prints through the same server.
    let me_pid = me.pid();
    me.spawn(Task::new(move |ctx: &mut Ctx| {
        let w = io::put_chars(ctx, "from a child\n");
        ctx.send(me_pid, (Term::atom("done"), Term::str(&format!("{w:?}"))));
    }));
    let done = me.receive_with(|m| m.tagged("done").map(|r| r[0].clone()), Some(SOON));
    assert_eq!(
        done,
        Some(Term::str(&format!(
            "{:?}",
            Ok::<_, ()>(Written::Leader(server))
        )))
    );
    assert_eq!(rx.try_recv().as_deref(), Ok("from a child\n"));
    // Text longer than one request goes as several, in order, none lost.
    let long = "é".repeat(io::MAX_CHARS); // twice MAX_CHARS bytes
    assert_eq!(io::put_chars(&mut me, &long), Ok(Written::Leader(server)));
    let parts: Vec<String> = rx.try_iter().collect();
    assert!(parts.len() >= 2 && parts.iter().all(|p| p.len() <= io::MAX_CHARS));
    assert_eq!(parts.concat(), long);
    assert_eq!(me.message_queue_len(), 0, "no reply or DOWN left behind");
    drop(me);
    node.shutdown();
}

#[test]
fn the_server_answers_what_it_does_not_know_and_survives_garbage() {
    let node = support::node(2);
    let (server, rx) = capture(&node);
    let mut me = node.attach();
    // Not I/O requests: dropped.
    me.send(server, Term::atom("garbage"));
    me.send(server, (Term::atom("io_request"), Term::Int(1)));
    me.send(
        server,
        (
            Term::atom("io_request"),
            Term::atom("not_a_pid"),
            Term::Int(1),
            Term::atom("x"),
        ),
    );
    let ask = |me: &mut oxbeam::rt::Attached, req: Term| {
        let tag = me.make_ref();
        me.send(
            server,
            (
                Term::atom("io_request"),
                Term::Pid(me.pid()),
                Term::Ref(tag),
                req,
            ),
        );
        me.receive_with(
            |m| match m.tagged("io_reply") {
                Some([Term::Ref(t), reply]) if *t == tag => Some(reply.clone()),
                _ => None,
            },
            Some(SOON),
        )
        .expect("the server replies")
    };
    let error = |r: Term| Term::tuple(vec![Term::atom("error"), r]);
    assert_eq!(
        ask(&mut me, (Term::atom("get_line"), Term::str("> ")).into()),
        error(Term::atom("request"))
    );
    assert_eq!(
        ask(
            &mut me,
            (
                Term::atom("put_chars"),
                Term::atom("unicode"),
                Term::atom("x")
            )
                .into()
        ),
        error(Term::atom("badarg"))
    );
    let huge = Term::str(&"x".repeat(io::MAX_CHARS + 1));
    assert_eq!(
        ask(
            &mut me,
            (Term::atom("put_chars"), Term::atom("unicode"), huge).into()
        ),
        error((Term::atom("too_large"), Term::from(io::MAX_CHARS)).into())
    );
    assert!(rx.try_recv().is_err(), "nothing refused was written");
    let ok = ask(
        &mut me,
        (
            Term::atom("put_chars"),
            Term::atom("unicode"),
            Term::str("still here"),
        )
            .into(),
    );
    assert_eq!(ok, Term::atom("ok"));
    assert_eq!(rx.try_recv().as_deref(), Ok("still here"));
    drop(me);
    node.shutdown();
}

#[test]
fn without_a_live_leader_put_chars_falls_back_to_stdout_without_hanging() {
    let node = support::node(2);
    let mut me = node.attach();
    assert_eq!(
        io::put_chars(&mut me, "no leader: stdout\n"),
        Ok(Written::Stdout(Fallback::NoLeader))
    );
    let own = me.pid();
    me.set_group_leader(own);
    assert_eq!(
        io::put_chars(&mut me, "own leader: stdout\n"),
        Ok(Written::Stdout(Fallback::OwnLeader))
    );
    // A leader that is gone: its monitor says so at once.
    let (dead, _) = me.spawn_monitor(Task::new(|_: &mut Ctx| {}));
    me.receive_match(|m| m.tagged("DOWN").is_some(), Some(SOON))
        .expect("it exits");
    me.set_group_leader(dead);
    let start = Instant::now();
    assert_eq!(
        io::put_chars(&mut me, "dead leader: stdout\n"),
        Ok(Written::Stdout(Fallback::LeaderDown(Term::atom("noproc"))))
    );
    assert!(start.elapsed() < io::REPLY_TIMEOUT);
    // A leader that answers only when told to: the wait is bounded, and the late
    // reply dropped when it comes.
    let mut held = None;
    let slow = node.spawn(move |ctx: &mut Ctx, m: Term| {
        if let Some([Term::Pid(from), reply_as, _]) = m.tagged("io_request") {
            held = Some((*from, reply_as.clone()));
        } else if m.is_atom("go")
            && let Some((from, reply_as)) = held.take()
        {
            ctx.send(from, (Term::atom("io_reply"), reply_as, Term::atom("ok")));
            ctx.send(from, Term::atom("after_the_reply"));
        }
        oxbeam::rt::Flow::Continue
    });
    me.set_group_leader(slow);
    assert_eq!(
        io::put_chars_within(&mut me, "slow leader: stdout\n", Duration::from_millis(50)),
        Ok(Written::Stdout(Fallback::Timeout))
    );
    me.send(slow, Term::atom("go"));
    let next = me.receive_timeout(SOON);
    assert_eq!(
        next,
        Some(Term::atom("after_the_reply")),
        "the late reply was dropped"
    );
    assert_eq!(me.message_queue_len(), 0);
    drop(me);
    node.shutdown();
}

#[test]
fn a_leader_that_refuses_is_an_error() {
    let node = support::node(2);
    // A leader that answers every request with an error.
    let refuser = node.spawn(|ctx: &mut Ctx, m: Term| {
        if let Some([Term::Pid(from), reply_as, _]) = m.tagged("io_request") {
            ctx.send(
                *from,
                (
                    Term::atom("io_reply"),
                    reply_as.clone(),
                    (Term::atom("error"), Term::atom("full")),
                ),
            );
        }
        oxbeam::rt::Flow::Continue
    });
    let mut me = node.attach();
    me.set_group_leader(refuser);
    let err = io::put_chars(&mut me, "x").unwrap_err();
    assert_eq!(err.reason, Term::atom("full"));
    assert_eq!(
        Term::from(err),
        Term::tuple(vec![Term::atom("error"), Term::atom("full")])
    );
    drop(me);
    node.shutdown();
}
