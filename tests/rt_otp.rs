//! Registry, GenServer and Supervisor.
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use oxbeam::rt::gen_server::{self, CallError, CallReply, GenServer, ReplyTo, StartOpts};
use oxbeam::rt::supervisor::{self, ChildSpec, Restart, Strategy, SupervisorSpec};
use oxbeam::rt::{
    Attached, ChildError, Ctx, Flow, Node, RegisterError, SendError, StartError, Task,
};
use oxbeam::term::{Atom, Pid, Term, term};
use support::SOON;

#[test]
fn registry_names_are_unique_and_released_on_exit() {
    let node = support::node(2);
    let mut me = node.attach();
    let name = Atom::new("the_one");
    let (p, _) = me.spawn_monitor(Task::new(|ctx: &mut Ctx| {
        let _ = ctx.receive();
    }));
    node.register(name, p).unwrap();
    assert_eq!(node.whereis(name), Some(p));
    assert_eq!(node.registered_name(p), Some(name));
    // A taken name, or a second name for the same process, is refused.
    assert_eq!(
        node.register(name, me.pid()),
        Err(RegisterError::NameTaken { name, holder: p })
    );
    assert_eq!(
        node.register(Atom::new("other"), p),
        Err(RegisterError::AlreadyNamed { pid: p, name })
    );
    me.send_to(name, "bye").unwrap();
    me.receive_match(|m| m.tagged("DOWN").is_some(), Some(SOON))
        .unwrap();
    assert_eq!(node.whereis(name), None);
    assert_eq!(
        me.send_to(name, "anyone?"),
        Err(SendError::NotRegistered(name))
    );
    // unregister frees the name for another process.
    me.register(name).unwrap();
    assert!(node.unregister(name));
    assert!(!node.unregister(name));
    me.register(Atom::new("again")).unwrap();
    assert!(node.registered().contains(&Atom::new("again")));
    drop(me);
    node.shutdown();
}

/// A key-value server with a deferred reply: `{:wait, key}` answers once `key` is put.
#[derive(Default)]
struct Store {
    data: std::collections::BTreeMap<Term, Term>,
    waiting: Vec<(Term, ReplyTo)>,
    infos: i64,
}

impl GenServer for Store {
    fn handle_call(&mut self, ctx: &mut Ctx, request: Term, from: ReplyTo) -> CallReply {
        match request.as_tuple() {
            Some([op, k]) if op.is_atom("get") => {
                CallReply::Reply(self.data.get(k).cloned().unwrap_or(Term::nil()))
            }
            Some([op, k]) if op.is_atom("wait") => match self.data.get(k) {
                Some(v) => CallReply::Reply(v.clone()),
                None => {
                    self.waiting.push((k.clone(), from));
                    CallReply::NoReply
                }
            },
            Some([op, ms]) if op.is_atom("sleep") => {
                std::thread::sleep(Duration::from_millis(ms.as_int().unwrap() as u64));
                CallReply::Reply(Term::ok())
            }
            _ if request.is_atom("infos") => CallReply::Reply(Term::Int(self.infos)),
            _ if request.is_atom("waiters") => CallReply::Reply(Term::from(self.waiting.len())),
            _ if request.is_atom("crash") => panic!("asked to crash"),
            _ if request.is_atom("stop") => CallReply::Stop {
                reason: term!(:normal),
                reply: Some(term!(:stopping)),
            },
            _ => {
                let _ = ctx;
                CallReply::Reply(term!(:unknown))
            }
        }
    }

    fn handle_cast(&mut self, ctx: &mut Ctx, msg: Term) -> Flow {
        if let Some([k, v]) = msg.tagged("put") {
            self.data.insert(k.clone(), v.clone());
            let (ready, rest): (Vec<_>, Vec<_>) = self.waiting.drain(..).partition(|(w, _)| w == k);
            self.waiting = rest;
            for (_, from) in ready {
                gen_server::reply(ctx.node(), from, v.clone());
            }
        }
        Flow::Continue
    }

    fn handle_info(&mut self, _ctx: &mut Ctx, _msg: Term) -> Flow {
        self.infos += 1;
        Flow::Continue
    }
}

fn put(node: &Node, server: Pid, k: &str, v: i64) {
    gen_server::cast(node, server, term!({:put, (Term::atom(k)), v}));
}

#[test]
fn genserver_call_cast_info_and_deferred_reply() {
    let node = support::node(2);
    let mut me = node.attach();
    let s = gen_server::start(&node, Store::default(), Some(Atom::new("store"))).unwrap();
    put(&node, s, "a", 1);
    let get = |me: &mut Attached, k: &str| {
        gen_server::call(
            me,
            Atom::new("store"),
            term!({:get, (Term::atom(k))}),
            Some(SOON),
        )
    };
    assert_eq!(get(&mut me, "a"), Ok(Term::Int(1)));
    me.send(s, "an info");
    me.send(s, "another");
    assert_eq!(
        gen_server::call(&mut me, s, term!(:infos), Some(SOON)),
        Ok(Term::Int(2))
    );
    // A deferred reply: another process waits for :b, then we put it.
    let me_pid = me.pid();
    me.spawn(Task::new(move |ctx: &mut Ctx| {
        let v = gen_server::call(ctx, s, term!({:wait, :b}), Some(SOON)).unwrap();
        ctx.send(me_pid, term!({:waited, v}));
    }));
    // Poll the server (each poll a round trip) until it holds the waiting caller.
    support::wait_for("the waiter to be parked", SOON, || {
        let n = gen_server::call(&mut me, s, term!(:waiters), Some(SOON)).unwrap();
        (n == Term::Int(1), n)
    });
    put(&node, s, "b", 2);
    assert_eq!(me.receive_timeout(SOON), Some(term!({:waited, 2})));
    // Starting a second server under the same name is refused with the holder's pid.
    let err = gen_server::start(&node, Store::default(), Some(Atom::new("store"))).unwrap_err();
    assert_eq!(err, StartError::AlreadyStarted(s));
    assert_eq!(Term::from(err), term!({:already_started, s}));
    // Stopping from a call: the reply arrives, then the server is gone.
    assert_eq!(
        gen_server::call(&mut me, s, term!(:stop), Some(SOON)),
        Ok(term!(:stopping))
    );
    support::wait_for("server gone", SOON, || (!node.is_alive(s), ()));
    assert_eq!(get(&mut me, "a"), Err(CallError::NoProc));
    drop(me);
    node.shutdown();
}

#[test]
fn call_fails_at_once_when_the_server_is_gone_or_dies() {
    let node = support::node(2);
    let mut me = node.attach();
    let s = gen_server::start(&node, Store::default(), None).unwrap();
    let r = gen_server::call(&mut me, s, term!(:crash), Some(Duration::from_secs(60)));
    match r {
        Err(CallError::Exit(reason)) => {
            assert_eq!(reason.to_string(), "{:panic, \"asked to crash\"}")
        }
        other => panic!("expected an exit error, got {other:?}"),
    }
    let start = std::time::Instant::now();
    assert_eq!(
        gen_server::call(&mut me, s, term!(:infos), Some(Duration::from_secs(60))),
        Err(CallError::NoProc)
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "noproc must not wait for the timeout"
    );
    assert_eq!(
        gen_server::call(&mut me, Atom::new("nobody"), term!(:x), None),
        Err(CallError::NoProc)
    );
    let my_pid = me.pid();
    assert_eq!(
        gen_server::call(&mut me, my_pid, term!(:x), None),
        Err(CallError::CallingSelf)
    );
    drop(me);
    node.shutdown();
}

#[test]
fn a_timed_out_call_leaves_no_stray_reply() {
    let node = support::node(2);
    let mut me = node.attach();
    let s = gen_server::start(&node, Store::default(), None).unwrap();
    let r = gen_server::call(
        &mut me,
        s,
        term!({:sleep, 100}),
        Some(Duration::from_millis(10)),
    );
    assert_eq!(r, Err(CallError::Timeout));
    // The late reply arrives after the server wakes; the next call's reply comes first
    // in our mailbox only if the stray one was dropped.
    assert_eq!(
        gen_server::call(&mut me, s, term!(:infos), Some(SOON)),
        Ok(Term::Int(0))
    );
    assert!(me.flush().is_empty(), "no stray reply or DOWN left behind");
    drop(me);
    node.shutdown();
}

/// Calls that time out while other processes keep the caller's mailbox busy: a late
/// reply may arrive while the call is flushing its monitor, and must be dropped all
/// the same (the call gives its tag up before it flushes). Timing-dependent by nature:
/// before the fix, runs of this test delivered a stray reply now and then.
#[test]
fn late_replies_that_come_during_the_flush_are_dropped() {
    const CALLS: usize = 300;
    let node = support::node(2);
    let mut me = node.attach();
    let me_pid = me.pid();
    // Answers each call after ~30 us of work, so most answers come just too late.
    let server = node.spawn(Task::new(move |ctx: &mut Ctx| {
        let mut answered = 0;
        loop {
            let m = ctx.receive();
            let Some([_, from, _]) = m.as_tuple() else {
                continue;
            };
            let from = from.as_tuple().expect("{pid, tag}").to_vec();
            let until = std::time::Instant::now() + Duration::from_micros(30);
            while std::time::Instant::now() < until {
                std::hint::spin_loop();
            }
            let to = from[0].as_pid().expect("pid");
            ctx.send(to, term!({(from[1].clone()), :late}));
            answered += 1;
            if answered == CALLS {
                ctx.send(me_pid, term!(:all_answered));
                return;
            }
        }
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let flooders: Vec<_> = (0..2)
        .map(|_| {
            let (node, stop) = (node.clone(), stop.clone());
            std::thread::spawn(move || {
                let me = node.attach();
                for _ in 0..200_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    me.send(me_pid, term!(:noise));
                }
            })
        })
        .collect();
    // The flood is on before the calls start.
    assert!(
        me.receive_match(|m| m.is_atom("noise"), Some(SOON))
            .is_some()
    );
    let mut answered_in_time = 0;
    for _ in 0..CALLS {
        match gen_server::call(&mut me, server, term!(:req), Some(Duration::ZERO)) {
            Ok(_) => answered_in_time += 1,
            Err(e) => assert_eq!(e, CallError::Timeout),
        }
    }
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.join().unwrap();
    }
    let done = me.receive_match(|m| m.is_atom("all_answered"), Some(SOON));
    assert!(done.is_some(), "the server answered every call");
    let stray: Vec<Term> = me
        .flush()
        .into_iter()
        .filter(|m| !m.is_atom("noise"))
        .collect();
    assert!(
        stray.is_empty(),
        "{} late replies delivered ({answered_in_time} of {CALLS} calls answered in time): {:?}",
        stray.len(),
        &stray[..stray.len().min(3)]
    );
    drop(me);
    node.shutdown();
}

struct FailingInit;
impl GenServer for FailingInit {
    fn init(&mut self, _ctx: &mut Ctx) -> Result<(), Term> {
        Err(term!(:no_config))
    }
    fn handle_call(&mut self, _: &mut Ctx, _: Term, _: ReplyTo) -> CallReply {
        CallReply::NoReply
    }
}

#[test]
fn init_failure_is_returned_to_the_starter() {
    let node = support::node(2);
    assert_eq!(
        gen_server::start(&node, FailingInit, None),
        Err(StartError::InitFailed(term!(:no_config)))
    );
    // Linked start: the starter traps exits, so it gets the error and an EXIT message.
    let mut me = node.attach();
    me.trap_exit(true);
    let r = gen_server::start_opts(
        &mut me,
        FailingInit,
        StartOpts {
            link: true,
            ..StartOpts::default()
        },
    );
    assert_eq!(r, Err(StartError::InitFailed(term!(:no_config))));
    let exit = me.receive_timeout(SOON).unwrap();
    assert_eq!(exit.as_tuple().unwrap()[2], term!(:no_config));
    drop(me);
    node.shutdown();
}

/// A child that reports its start to a counter and stops on demand.
fn worker_spec(id: &str, starts: Arc<AtomicUsize>) -> ChildSpec {
    ChildSpec::new(Term::atom(id), move |ctx: &mut Ctx| {
        starts.fetch_add(1, Ordering::SeqCst);
        Ok(
            ctx.spawn_link(|_ctx: &mut Ctx, msg: Term| match msg.tagged("die") {
                Some([r]) => Flow::Stop(r.clone()),
                _ => Flow::Continue,
            }),
        )
    })
}

fn children(me: &mut Attached, sup: Pid) -> Vec<Option<Pid>> {
    supervisor::which_children(me, sup)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

fn kill_child(me: &mut Attached, pid: Pid, reason: &str) {
    me.monitor(pid);
    me.send(pid, term!({:die, (Term::atom(reason))}));
    me.receive_match(
        |m| matches!(m.tagged("DOWN"), Some([_, _, Term::Pid(p), _]) if *p == pid),
        Some(SOON),
    )
    .unwrap();
}

/// Waits until the supervisor shows all children running and different from `old`.
fn restarted(
    me: &mut Attached,
    sup: Pid,
    old: &[Option<Pid>],
    changed: &[bool],
) -> Vec<Option<Pid>> {
    let deadline = std::time::Instant::now() + SOON;
    loop {
        let now = children(me, sup);
        let ok = now
            .iter()
            .zip(old)
            .zip(changed)
            .all(|((n, o), c)| n.is_some() && (n != o) == *c);
        if ok {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "children {now:?} vs {old:?}"
        );
    }
}

#[test]
fn supervisor_strategies_restart_the_right_children() {
    let node = support::node(2);
    let mut me = node.attach();
    for (strategy, expect) in [
        (Strategy::OneForOne, [false, true, false]),
        (Strategy::OneForAll, [true, true, true]),
        (Strategy::RestForOne, [false, true, true]),
    ] {
        let starts = Arc::new(AtomicUsize::new(0));
        let specs = ["a", "b", "c"]
            .iter()
            .map(|id| worker_spec(id, starts.clone()))
            .collect();
        let sup = supervisor::start(&node, SupervisorSpec::new(strategy, specs), None).unwrap();
        let before = children(&mut me, sup);
        kill_child(&mut me, before[1].unwrap(), "crashed");
        let after = restarted(&mut me, sup, &before, &expect);
        assert_eq!(after.len(), 3);
        gen_server::stop(&mut me, sup, term!(:shutdown), Some(SOON)).unwrap();
        for p in after.into_iter().flatten() {
            assert!(
                !node.is_alive(p),
                "{strategy:?}: children stop with their supervisor"
            );
        }
    }
    drop(me);
    node.shutdown();
}

#[test]
fn restart_types_and_intensity() {
    let node = support::node(2);
    let mut me = node.attach();
    let starts = Arc::new(AtomicUsize::new(0));
    let spec = SupervisorSpec {
        intensity: 2,
        period: Duration::from_secs(60),
        ..SupervisorSpec::new(
            Strategy::OneForOne,
            vec![
                worker_spec("perm", starts.clone()),
                worker_spec("trans", starts.clone()).restart(Restart::Transient),
                worker_spec("temp", starts.clone()).restart(Restart::Temporary),
            ],
        )
    };
    let sup = supervisor::start(&node, spec, None).unwrap();
    me.monitor(sup);
    let c = children(&mut me, sup);
    // A transient child that exits normally stays down; a temporary one is removed.
    kill_child(&mut me, c[1].unwrap(), "normal");
    kill_child(&mut me, c[2].unwrap(), "crashed");
    support::wait_for("temp removed", SOON, || {
        let now = supervisor::which_children(&mut me, sup).unwrap();
        (now.len() == 2 && now[1].1.is_none(), now)
    });
    // The permanent one is restarted twice within the intensity...
    let mut perm = c[0].unwrap();
    for _ in 0..2 {
        kill_child(&mut me, perm, "crashed");
        let now = restarted(&mut me, sup, &[Some(perm)], &[true]);
        perm = now[0].unwrap();
    }
    // ...and the third crash in the period takes the supervisor down with `shutdown`.
    kill_child(&mut me, perm, "crashed");
    let down = me
        .receive_match(
            |m| matches!(m.tagged("DOWN"), Some([_, _, Term::Pid(p), _]) if *p == sup),
            Some(SOON),
        )
        .unwrap();
    assert_eq!(down.as_tuple().unwrap()[4], term!(:shutdown));
    assert_eq!(starts.load(Ordering::SeqCst), 5);
    drop(me);
    node.shutdown();
}

#[test]
fn dynamic_children_and_shutdown_order() {
    let node = support::node(2);
    let mut me = node.attach();
    let me_pid = me.pid();
    let sup = supervisor::start(
        &node,
        SupervisorSpec::new(Strategy::OneForOne, vec![]),
        Some(Atom::new("dyn_sup")),
    )
    .unwrap();
    // Children that report their own termination to us, in order.
    for id in ["first", "second", "third"] {
        let spec = ChildSpec::new(Term::atom(id), move |ctx: &mut Ctx| {
            Ok(ctx.spawn_link(Reporter { id, to: me_pid }))
        });
        supervisor::start_child(&mut me, Atom::new("dyn_sup"), spec).unwrap();
    }
    let dup = ChildSpec::new(term!(:first), |ctx: &mut Ctx| {
        Ok(ctx.spawn_link(|_: &mut Ctx, _: Term| Flow::Continue))
    });
    assert_eq!(
        supervisor::start_child(&mut me, sup, dup),
        Err(ChildError::AlreadyPresent)
    );
    assert_eq!(children(&mut me, sup).len(), 3);
    // terminate + restart + delete one child by id.
    supervisor::terminate_child(&mut me, sup, term!(:second)).unwrap();
    assert_eq!(me.receive_timeout(SOON), Some(term!(:second)));
    assert_eq!(children(&mut me, sup)[1], None);
    supervisor::restart_child(&mut me, sup, term!(:second)).unwrap();
    assert_eq!(
        supervisor::delete_child(&mut me, sup, term!(:second)),
        Err(ChildError::Running)
    );
    assert_eq!(
        supervisor::terminate_child(&mut me, sup, term!(:nope)),
        Err(ChildError::NotFound)
    );
    // Stopping the supervisor stops children in reverse start order.
    gen_server::stop(&mut me, sup, term!(:shutdown), Some(SOON)).unwrap();
    let order: Vec<Term> = (0..3).map(|_| me.receive_timeout(SOON).unwrap()).collect();
    assert_eq!(order, vec![term!(:third), term!(:second), term!(:first)]);
    drop(me);
    node.shutdown();
}

struct Reporter {
    id: &'static str,
    to: Pid,
}

impl oxbeam::rt::Behaviour for Reporter {
    fn init(&mut self, ctx: &mut Ctx) -> Flow {
        ctx.trap_exit(true);
        Flow::Continue
    }
    fn handle(&mut self, _ctx: &mut Ctx, msg: Term) -> Flow {
        match msg.tagged("EXIT") {
            Some([_, reason]) => Flow::Stop(reason.clone()),
            _ => Flow::Continue,
        }
    }
    fn terminate(&mut self, ctx: &mut Ctx, _reason: &Term) {
        ctx.send(self.to, Term::atom(self.id));
    }
}
