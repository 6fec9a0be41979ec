//! Liveness: no process may freeze another, on one worker as on many.
//!
//! Each case runs hundreds of rounds against a deadline, on a node with 1 worker and on
//! one with 2, with processes written as handlers and as tasks. Before this suite, a
//! process about to wait (a receive, every 7th local send, `yield_now`) ran the process
//! in its worker's next slot inside its own frame; a process run there that waited in
//! turn for the one beneath it froze both (forever, or until a timeout much later than
//! the one asked for). Each case says how it failed on that code (commit ea5fef9).
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use oxbeam::rt::gen_server::{self, CallError, CallReply, GenServer, ReplyTo};
use oxbeam::rt::supervisor::{self, ChildSpec, Strategy, SupervisorSpec};
use oxbeam::rt::{Ctx, Flow, Node, Reactive, Task};
use oxbeam::term::{Pid, Term, term};
use support::SOON;

const ROUNDS: usize = 300;

/// How late a deadline may fire. Generous for a shared 2-core machine running other
/// tests at once; the frozen runs this suite guards against were late by a second or
/// more, or forever.
const LATE: Duration = Duration::from_millis(300);

/// Runs `case` on a fresh node with 1 worker, then with 2, and shuts each down within
/// a bounded time (a frozen process would keep shutdown waiting).
fn on_each_worker_count(case: impl Fn(&Node)) {
    for workers in [1, 2] {
        let node = support::node(workers);
        case(&node);
        let start = Instant::now();
        node.shutdown();
        assert!(start.elapsed() < SOON, "shutdown with {workers} workers");
    }
}

fn expect(me: &mut Ctx, what: &str, round: usize) -> Term {
    me.receive_timeout(SOON)
        .unwrap_or_else(|| panic!("round {round}: no {what} within {SOON:?}"))
}

/// The case: a parent spawns a child that says "ready" and then waits for "go".
/// Old code: the child ran on the parent's stack at the parent's receive and blocked
/// there; 20 of 20 runs stuck on 1 and on 2 workers.
#[test]
fn spawn_then_wait_handshake_tasks() {
    on_each_worker_count(|node| {
        let mut me = node.attach();
        let main = me.pid();
        for round in 0..ROUNDS {
            node.spawn_task(move |ctx: &mut Ctx| {
                let parent = ctx.pid();
                let child = ctx.spawn(Task::new(move |c: &mut Ctx| {
                    c.send(parent, "ready");
                    let m = c.receive();
                    c.send(main, m);
                }));
                assert!(ctx.receive().as_str() == Some("ready"));
                ctx.send(child, "go");
            });
            assert!(expect(&mut me, "go", round).as_str() == Some("go"));
        }
    });
}

/// The same handshake from a handler: the parent handles "begin" by spawning a child
/// handler that says "ready" in `init`, then waits for the child inside its handler.
/// Old code: the parent's wait ran the child's `init` inline; harmless alone, but the
/// child task variant below froze the same way as the task case.
#[test]
fn spawn_then_wait_handshake_handlers() {
    on_each_worker_count(|node| {
        let mut me = node.attach();
        let main = me.pid();
        let parent = node.spawn(move |ctx: &mut Ctx, msg: Term| {
            if !msg.is_atom("begin") {
                return Flow::Continue;
            }
            let parent = ctx.pid();
            let child = ctx.spawn(Task::new(move |c: &mut Ctx| {
                c.send(parent, "ready");
                let m = c.receive();
                c.send(main, m);
            }));
            let ready = ctx.receive_match(|m| m.as_str() == Some("ready"), Some(SOON));
            assert!(ready.is_some(), "the child said ready");
            ctx.send(child, "go");
            Flow::Continue
        });
        for round in 0..ROUNDS {
            me.send(parent, term!(:begin));
            assert!(expect(&mut me, "go", round).as_str() == Some("go"));
        }
    });
}

/// A server answering `ping` that, cast `{kick, b, main}`, sends `b` a plain message
/// `{call_me, self, main}`.
struct Kicker;

impl GenServer for Kicker {
    fn handle_call(&mut self, _: &mut Ctx, request: Term, _: ReplyTo) -> CallReply {
        CallReply::Reply(request)
    }
    fn handle_cast(&mut self, ctx: &mut Ctx, msg: Term) -> Flow {
        if let Some([Term::Pid(b), Term::Pid(main)]) = msg.tagged("kick") {
            let me = ctx.pid();
            ctx.send(*b, term!({:call_me, me, (*main)}));
        }
        Flow::Continue
    }
}

/// A server that, sent `{call_me, a, main}`, calls `a` and reports the answer to main.
struct CallsBack;

impl GenServer for CallsBack {
    fn handle_call(&mut self, _: &mut Ctx, request: Term, _: ReplyTo) -> CallReply {
        CallReply::Reply(request)
    }
    fn handle_info(&mut self, ctx: &mut Ctx, msg: Term) -> Flow {
        if let Some([Term::Pid(a), Term::Pid(main)]) = msg.tagged("call_me") {
            let answer = gen_server::call(ctx, *a, term!(:ping), Some(SOON));
            let report = answer.unwrap_or_else(|e| e.reason());
            ctx.send(*main, report);
        }
        Flow::Continue
    }
}

/// A sends to B; B's handler calls A (as OTP allows: A is not waiting). Old code: every
/// 7th send of A ran B on A's stack; B's call to A then waited for its whole timeout
/// (from the 6th round on: no answer within 10 s).
#[test]
fn cast_then_callback() {
    on_each_worker_count(|node| {
        let mut me = node.attach();
        let a = gen_server::start(node, Kicker, None).unwrap();
        let b = gen_server::start(node, CallsBack, None).unwrap();
        for round in 0..ROUNDS {
            let start = Instant::now();
            gen_server::cast(node, a, term!({:kick, b, (me.pid())}));
            let answer = expect(&mut me, "B's answer", round);
            assert!(answer.is_atom("ping"), "round {round}: {answer}");
            assert!(
                start.elapsed() < LATE,
                "round {round}: {:?}",
                start.elapsed()
            );
        }
    });
}

/// One link of a call chain: `chain` calls `next` with `timeout` and replies with the
/// outcome and the time it took; `ping` is answered at once.
struct Link {
    next: Option<Pid>,
    timeout: Duration,
}

impl GenServer for Link {
    fn handle_call(&mut self, ctx: &mut Ctx, request: Term, _: ReplyTo) -> CallReply {
        if request.is_atom("ping") {
            return CallReply::Reply(term!(:pong));
        }
        if let Some([Term::Pid(next)]) = request.tagged("set_next") {
            self.next = Some(*next);
            return CallReply::Reply(Term::ok());
        }
        let next = self.next.expect("the chain is closed before use");
        let start = Instant::now();
        // `{chain, 0}` ends the chain with a ping; `{chain, n}` passes `{chain, n - 1}` on.
        let target = match request.tagged("chain") {
            Some([Term::Int(0)]) => term!(:ping),
            Some([Term::Int(n)]) => term!({:chain, (n - 1)}),
            _ => return CallReply::Reply(term!(:bad_request)),
        };
        let outcome = gen_server::call(ctx, next, target, Some(self.timeout));
        let us = start.elapsed().as_micros() as i64;
        let outcome = match outcome {
            Ok(v) => v,
            Err(CallError::Timeout) => term!(:timeout),
            Err(e) => e.reason(),
        };
        CallReply::Reply(term!({outcome, us}))
    }
}

/// A calls B calls C calls A, A's call with a short timeout: A's timeout must fire on
/// time, and the rest must unwind (C's call to A is answered once A is free). Old code:
/// B ran on A's stack, so A's 20 ms timeout fired only when C's call to A gave up, 2 s
/// later.
#[test]
fn call_chain_with_timeouts_fires_on_time() {
    on_each_worker_count(|node| {
        let mut me = node.attach();
        let short = Duration::from_millis(20);
        let long = Duration::from_secs(2);
        let a = gen_server::start(
            node,
            Link {
                next: None,
                timeout: short,
            },
            None,
        )
        .unwrap();
        let b = gen_server::start(
            node,
            Link {
                next: None,
                timeout: long,
            },
            None,
        )
        .unwrap();
        let c = gen_server::start(
            node,
            Link {
                next: None,
                timeout: long,
            },
            None,
        )
        .unwrap();
        for (from, to) in [(a, b), (b, c), (c, a)] {
            let set = gen_server::call(&mut me, from, term!({:set_next, to}), Some(SOON));
            assert_eq!(set, Ok(Term::ok()));
        }
        let mut worst = Duration::ZERO;
        for round in 0..ROUNDS / 3 {
            // A -> B (20 ms) -> C (2 s) -> A: `{chain, 1}` at B, `{chain, 0}` at C, a
            // ping from C.
            let chain = term!({:chain, 2});
            let reply = gen_server::call(&mut me, a, chain, Some(SOON));
            let reply = reply.unwrap_or_else(|e| panic!("round {round}: {e}"));
            let Some([outcome, Term::Int(us)]) = reply.as_tuple() else {
                panic!("round {round}: {reply}");
            };
            let took = Duration::from_micros(*us as u64);
            worst = worst.max(took);
            assert!(outcome.is_atom("timeout"), "round {round}: {reply}");
            assert!(
                took < short + LATE,
                "round {round}: A's timeout fired after {took:?}"
            );
            // B answers once C has (C's call to A is served now that A is free).
            let b_free = gen_server::call(&mut me, b, term!(:ping), Some(SOON));
            assert_eq!(b_free, Ok(term!(:pong)), "round {round}");
        }
        eprintln!("call chain: A's 20 ms timeout fired after at most {worst:?}");
    });
}

/// A task that blocks in its very first receive, spawned by a process that then waits
/// with a timeout: the spawner's timeout fires, then it releases the child. Old code:
/// the child ran on the spawner's stack and blocked there; the spawner never came back.
#[test]
fn a_task_that_blocks_at_once_leaves_its_spawner_running() {
    on_each_worker_count(|node| {
        let mut me = node.attach();
        let main = me.pid();
        for round in 0..ROUNDS {
            node.spawn_task(move |ctx: &mut Ctx| {
                let child = ctx.spawn(Task::new(move |c: &mut Ctx| {
                    let m = c.receive();
                    c.send(main, m);
                }));
                let start = Instant::now();
                let nothing = ctx.receive_timeout(Duration::from_millis(2));
                ctx.send(main, term!({:waited, (start.elapsed().as_micros() as i64)}));
                assert!(nothing.is_none());
                ctx.send(child, "released");
            });
            let waited = expect(&mut me, "the spawner's report", round);
            let Some([Term::Int(us)]) = waited.tagged("waited") else {
                panic!("round {round}: {waited}");
            };
            let took = Duration::from_micros(*us as u64);
            assert!(took < LATE, "round {round}: a 2 ms timeout after {took:?}");
            assert!(expect(&mut me, "the child", round).as_str() == Some("released"));
        }
    });
}

/// A server that, called with `{spawn_caller, main}`, spawns a process, sends it `go`,
/// and replies; the new process calls the server when it gets `go` and reports the
/// answer to main.
struct Spawner;

impl GenServer for Spawner {
    fn handle_call(&mut self, ctx: &mut Ctx, request: Term, _: ReplyTo) -> CallReply {
        if let Some([Term::Pid(main)]) = request.tagged("spawn_caller") {
            let server = ctx.pid();
            let main = *main;
            let caller = ctx.spawn(Task::new(move |c: &mut Ctx| {
                let _go = c.receive();
                let answer = gen_server::call(c, server, term!(:ping), Some(SOON));
                c.send(main, answer.unwrap_or_else(|e| e.reason()));
            }));
            ctx.send(caller, term!(:go));
            return CallReply::Reply(Term::ok());
        }
        CallReply::Reply(request)
    }
}

/// A process spawned from inside a handler calls its spawner at once. Old code: the
/// server's every 7th send ran the new process on the server's stack; its call to the
/// server then waited out its timeout (from the 6th round on: no answer within 10 s).
#[test]
fn a_process_spawned_by_a_handler_calls_its_spawner() {
    on_each_worker_count(|node| {
        let mut me = node.attach();
        let server = gen_server::start(node, Spawner, None).unwrap();
        let main = me.pid();
        for round in 0..ROUNDS {
            let start = Instant::now();
            let r = gen_server::call(&mut me, server, term!({:spawn_caller, main}), Some(SOON));
            assert_eq!(r, Ok(Term::ok()), "round {round}");
            let answer = expect(&mut me, "the new process's answer", round);
            assert!(answer.is_atom("ping"), "round {round}: {answer}");
            assert!(
                start.elapsed() < LATE,
                "round {round}: {:?}",
                start.elapsed()
            );
        }
    });
}

/// A timer the spawner set fires while a child it spawned blocks. Old code: the child
/// ran on the spawner's stack at its receive, blocked, and the timer's message was
/// never taken.
#[test]
fn timers_fire_while_the_spawner_waits() {
    on_each_worker_count(|node| {
        let mut me = node.attach();
        let main = me.pid();
        let delay = Duration::from_millis(3);
        for round in 0..ROUNDS {
            node.spawn_task(move |ctx: &mut Ctx| {
                let start = Instant::now();
                ctx.node().send_after(ctx.pid(), term!(:tick), delay);
                let child = ctx.spawn(Task::new(|c: &mut Ctx| {
                    let _ = c.receive();
                }));
                let tick = ctx.receive_timeout(SOON);
                let us = start.elapsed().as_micros() as i64;
                ctx.send(main, term!({:tick, (tick.is_some()), us}));
                ctx.send(child, "done");
            });
            let report = expect(&mut me, "the spawner's report", round);
            let Some([got, Term::Int(us)]) = report.tagged("tick") else {
                panic!("round {round}: {report}");
            };
            assert_eq!(got, &Term::from(true), "round {round}");
            let took = Duration::from_micros(*us as u64);
            assert!(
                took < delay + LATE,
                "round {round}: the timer fired after {took:?}"
            );
        }
    });
}

/// A supervisor's owner: counts the restarted children that call it.
struct Owner {
    main: Pid,
}

impl GenServer for Owner {
    fn handle_call(&mut self, ctx: &mut Ctx, request: Term, _: ReplyTo) -> CallReply {
        ctx.send(self.main, request.clone());
        CallReply::Reply(Term::ok())
    }
}

/// A child that calls the owner from its `init` on every start but the first.
struct Worker {
    owner: Pid,
    start: usize,
}

impl GenServer for Worker {
    fn init(&mut self, ctx: &mut Ctx) -> Result<(), Term> {
        if self.start > 0 {
            let r = gen_server::call(
                ctx,
                self.owner,
                term!({:restarted, (self.start as i64)}),
                Some(SOON),
            );
            r.map_err(|e| e.reason())?;
        }
        Ok(())
    }
    fn handle_call(&mut self, _: &mut Ctx, request: Term, _: ReplyTo) -> CallReply {
        CallReply::Reply(request)
    }
}

/// A supervisor restarts a child whose `init` calls the supervisor's owner: every
/// restart completes and reaches the owner. (On the old code this case passed: it
/// guards the restart path, where the child ran on the supervisor's stack and a
/// blocking call from it depended on the spare-thread hand-over alone.)
#[test]
fn a_restarted_child_calls_the_supervisors_owner() {
    on_each_worker_count(|node| {
        let mut me = node.attach();
        let owner = gen_server::start(node, Owner { main: me.pid() }, None).unwrap();
        let starts = Arc::new(AtomicUsize::new(0));
        let spec = ChildSpec::new("worker", move |ctx: &mut Ctx| {
            let start = starts.fetch_add(1, Ordering::SeqCst);
            Ok(gen_server::start_link(ctx, Worker { owner, start }, None)?)
        });
        let mut sup_spec = SupervisorSpec::new(Strategy::OneForOne, vec![spec]);
        // Every restart of the test within one period (at shutdown the node ends the
        // child first, so the supervisor gives up after this many more).
        sup_spec.intensity = ROUNDS as u32;
        let sup = supervisor::start(node, sup_spec, None).unwrap();
        for round in 1..=ROUNDS / 3 {
            let child = supervisor::which_children(&mut me, sup).unwrap()[0]
                .1
                .expect("a running child");
            me.exit_pid(child, term!(:crash));
            let m = expect(&mut me, "the restarted child's call", round);
            assert_eq!(
                m.tagged("restarted"),
                Some(&[Term::from(round as i64)][..]),
                "{m}"
            );
        }
    });
}

/// A process polling with `yield_now` lets the process it waits for run, on one worker
/// as on two. (On the old code `yield_now` ran that process on the poller's stack; this
/// guards the hand-over that replaced it.)
#[test]
fn a_polling_process_lets_others_run() {
    on_each_worker_count(|node| {
        let mut me = node.attach();
        let main = me.pid();
        for round in 0..ROUNDS {
            node.spawn_task(move |ctx: &mut Ctx| {
                let flag = Arc::new(AtomicUsize::new(0));
                let f = flag.clone();
                let parent = ctx.pid();
                ctx.spawn(Task::new(move |c: &mut Ctx| {
                    f.store(1, Ordering::SeqCst);
                    c.send(parent, "set");
                }));
                let deadline = Instant::now() + SOON;
                while flag.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
                    ctx.yield_now();
                }
                ctx.send(main, flag.load(Ordering::SeqCst) as i64);
            });
            assert_eq!(
                expect(&mut me, "the poller", round),
                Term::Int(1),
                "round {round}"
            );
        }
    });
}

/// A reactor fed by a task in a loop runs inline at the task's sends (on the task's own
/// thread, on one worker as on two) and keeps up: its backlog stays small, and order
/// is kept. (Guards the inline run that reactors keep: only they may run on a sender's
/// stack. Seen on the producer's thread while the producer is mid-loop, the reactor
/// can only have run inline.)
#[test]
fn a_reactor_consumer_keeps_up_with_its_producer() {
    on_each_worker_count(|node| {
        let mut me = node.attach();
        let main = me.pid();
        for round in 0..ROUNDS / 30 {
            node.spawn_task(move |ctx: &mut Ctx| {
                let mut next = 0i64;
                let producer_thread = std::thread::current().id();
                let mut inline = 0i64;
                let consumer = ctx.spawn_reactor(move |r: &mut Reactive<'_>, msg: Term| {
                    if let Some([Term::Pid(to)]) = msg.tagged("done") {
                        r.send(*to, term!({:count, next, inline}));
                        return Flow::stop_normal();
                    }
                    assert_eq!(msg.as_int(), Some(next), "in order");
                    next += 1;
                    inline += i64::from(std::thread::current().id() == producer_thread);
                    Flow::Continue
                });
                let mut longest = 0;
                for i in 0..20_000i64 {
                    ctx.send(consumer, i);
                    if i % 500 == 499 {
                        longest = longest.max(ctx.node().message_queue_len(consumer).unwrap_or(0));
                    }
                }
                ctx.send(consumer, term!({:done, (ctx.pid())}));
                let count = ctx.receive();
                ctx.send(main, (count, longest as i64));
            });
            let report = expect(&mut me, "the producer's report", round);
            let Some([count, Term::Int(longest)]) = report.as_tuple() else {
                panic!("round {round}: {report}");
            };
            let Some([Term::Int(handled), Term::Int(inline)]) = count.tagged("count") else {
                panic!("round {round}: {count}");
            };
            assert_eq!(*handled, 20_000, "round {round}");
            assert!(*inline > 0, "round {round}: the reactor never ran inline");
            assert!(
                *longest <= 4096,
                "round {round}: the reactor fell {longest} behind"
            );
        }
    });
}

/// A reactor that blocks anyway (through its node: an attached process's receive, or
/// `block_in_place`) is ended with a panic that says why, and the process that sent to
/// it (beneath it on the stack, had it run inline) goes on.
#[test]
fn a_reactor_that_blocks_is_ended_not_left_to_freeze_its_sender() {
    on_each_worker_count(|node| {
        let mut me = node.attach();
        let main = me.pid();
        for round in 0..ROUNDS / 10 {
            let by_receive = round % 2 == 0;
            node.spawn_task(move |ctx: &mut Ctx| {
                let (reactor, down) = ctx.spawn_opts(
                    oxbeam::rt::Reacts(move |r: &mut Reactive<'_>, _msg: Term| {
                        if by_receive {
                            let mut inner = r.node().attach();
                            let _ = inner.receive();
                        } else {
                            r.node()
                                .block_in_place(|| std::thread::sleep(Duration::from_millis(1)));
                        }
                        Flow::Continue
                    }),
                    oxbeam::rt::SpawnOpts {
                        monitor: true,
                        ..Default::default()
                    },
                );
                for i in 0..50i64 {
                    ctx.send(reactor, i);
                }
                let down = down.expect("a monitor");
                let reason = ctx.receive_with(
                    |m| match m.tagged("DOWN") {
                        Some([Term::Ref(r), _, _, reason]) if *r == down => Some(reason.clone()),
                        _ => None,
                    },
                    Some(SOON),
                );
                ctx.send(main, reason.unwrap_or(term!(:no_down)));
            });
            let reason = expect(&mut me, "the sender's report", round);
            let text = reason.to_string();
            assert!(
                text.contains("a Reactor may not block"),
                "round {round}: {text}"
            );
        }
    });
}

/// A server that calls another in its `handle_call`.
struct CallsOnward {
    next: Pid,
}

impl GenServer for CallsOnward {
    fn handle_call(&mut self, ctx: &mut Ctx, request: Term, _: ReplyTo) -> CallReply {
        match gen_server::call(ctx, self.next, request, Some(SOON)) {
            Ok(r) => CallReply::Reply(r),
            Err(e) => CallReply::Reply(e.reason()),
        }
    }
}

/// A server started with `never_blocks` may run on its caller's thread; one that
/// waits anyway (here: a call of its own) is ended with a panic that says so, and its
/// caller gets that exit at once, on 1 worker as on 2. The same server without the
/// promise answers.
#[test]
fn a_never_blocking_server_that_waits_is_ended_not_left_to_freeze_its_caller() {
    on_each_worker_count(|node| {
        let mut me = node.attach();
        let echo = gen_server::start(node, Kicker, None).unwrap();
        for round in 0..ROUNDS / 10 {
            let promised = round % 2 == 0;
            let opts = gen_server::StartOpts {
                never_blocks: promised,
                ..gen_server::StartOpts::default()
            };
            let server = gen_server::start_opts(&mut me, CallsOnward { next: echo }, opts).unwrap();
            let start = Instant::now();
            let r = gen_server::call(&mut me, server, term!(:ping), Some(SOON));
            assert!(
                start.elapsed() < LATE,
                "round {round}: {:?}",
                start.elapsed()
            );
            if promised {
                let Err(CallError::Exit(reason)) = r else {
                    panic!("round {round}: {r:?}");
                };
                assert!(
                    reason.to_string().contains("a Reactor may not block"),
                    "{reason}"
                );
            } else {
                assert_eq!(r, Ok(term!(:ping)), "round {round}");
                let _ = gen_server::stop(&mut me, server, term!(:normal), Some(SOON));
            }
        }
    });
}
