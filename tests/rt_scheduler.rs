//! The scheduler: many processes, fairness, blocking, panics, shutdown.
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use oxbeam::rt::gen_server::{self, CallReply, GenServer, ReplyTo};
use oxbeam::rt::{Behaviour, Ctx, Flow, Task};
use oxbeam::term::{Atom, Pid, Term, term};
use support::SOON;

#[test]
fn one_million_processes_spawn_and_exit() {
    let node = support::node(2);
    let mut me = node.attach();
    const TOTAL: usize = 1_000_000;
    const BATCH: usize = 20_000;
    let mut downs = 0;
    for _ in 0..TOTAL / BATCH {
        for _ in 0..BATCH {
            me.spawn_monitor(Task::new(|_ctx: &mut Ctx| {}));
        }
        for _ in 0..BATCH {
            let m = me.receive_timeout(SOON).expect("a DOWN for every process");
            assert_eq!(m.as_tuple().map(|t| t[4].clone()), Some(term!(:normal)));
            downs += 1;
        }
    }
    assert_eq!(downs, TOTAL);
    // Only this thread's process is left.
    support::wait_for("all processes gone", SOON, || {
        (node.process_count() == 1, node.process_count())
    });
    drop(me);
    node.shutdown();
}

/// A process with state, written as a behaviour.
struct Counter {
    n: i64,
}

impl Behaviour for Counter {
    fn handle(&mut self, ctx: &mut Ctx, msg: Term) -> Flow {
        match msg.as_tuple() {
            Some([tag, Term::Pid(from)]) if tag.is_atom("get") => ctx.send(*from, self.n),
            _ if msg.is_atom("incr") => self.n += 1,
            _ => return Flow::stop_normal(),
        }
        Flow::Continue
    }
}

#[test]
fn behaviour_and_closure_keep_state_between_messages() {
    let node = support::node(2);
    let mut me = node.attach();
    let counter = node.spawn(Counter { n: 0 });
    let mut total = 0i64;
    let summer = node.spawn(move |ctx: &mut Ctx, msg: Term| {
        match msg.as_tuple() {
            Some([Term::Int(i), Term::Pid(from)]) => {
                total += i;
                ctx.send(*from, total);
            }
            _ => return Flow::stop_normal(),
        }
        Flow::Continue
    });
    for _ in 0..500 {
        me.send(counter, term!(:incr));
    }
    me.send(counter, term!({:get, (me.pid())}));
    assert_eq!(me.receive_timeout(SOON), Some(Term::Int(500)));
    for i in 1..=10 {
        me.send(summer, (i, me.pid()));
        assert_eq!(me.receive_timeout(SOON), Some(Term::Int(i * (i + 1) / 2)));
    }
    drop(me);
    node.shutdown();
}

#[test]
fn a_flooded_process_does_not_starve_another() {
    // One worker: the flooded process and the other one share it.
    let node = support::node(1);
    let mut me = node.attach();
    let handled = Arc::new(AtomicUsize::new(0));
    let seen = handled.clone();
    let flooded = node.spawn(move |_ctx: &mut Ctx, _msg: Term| {
        seen.fetch_add(1, Ordering::Relaxed);
        // Some work per message, so the flood takes a while to drain.
        let mut x = 0u64;
        for i in 0..2000 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        Flow::Continue
    });
    let echo = node.spawn(|ctx: &mut Ctx, msg: Term| {
        if let Some(p) = msg.as_pid() {
            ctx.send(p, term!(:pong));
        }
        Flow::Continue
    });
    const FLOOD: usize = 500_000;
    for i in 0..FLOOD {
        me.send(flooded, i);
    }
    me.send(echo, me.pid());
    assert_eq!(me.receive_timeout(SOON), Some(term!(:pong)));
    let when_answered = handled.load(Ordering::Relaxed);
    assert!(
        when_answered < FLOOD,
        "the echo answered only after the whole flood ({when_answered})"
    );
    support::wait_for("the flood to drain", SOON * 6, || {
        (
            handled.load(Ordering::Relaxed) == FLOOD,
            handled.load(Ordering::Relaxed),
        )
    });
    drop(me);
    node.shutdown();
}

/// Server i forwards each call to server i+1 and replies with its answer + 1.
struct Link {
    next: Option<Pid>,
}

impl GenServer for Link {
    fn handle_call(&mut self, ctx: &mut Ctx, request: Term, _from: ReplyTo) -> CallReply {
        match self.next {
            None => CallReply::Reply(request),
            Some(next) => {
                let r = gen_server::call(ctx, next, request, Some(SOON)).expect("nested call");
                CallReply::Reply(Term::Int(r.as_int().unwrap() + 1))
            }
        }
    }
}

#[test]
fn a_chain_of_100_nested_calls_completes_on_one_worker() {
    let node = support::node(1);
    let mut me = node.attach();
    let mut next = None;
    for _ in 0..100 {
        next = Some(gen_server::start(&node, Link { next }, None).unwrap());
    }
    let head = next.unwrap();
    for round in 0..3 {
        let r = gen_server::call(&mut me, head, Term::Int(round), Some(SOON))
            .unwrap_or_else(|e| panic!("round {round}: {e}; threads {}", node.scheduler_threads()));
        assert_eq!(r, Term::Int(round + 99));
    }
    drop(me);
    node.shutdown();
}

#[test]
fn blocking_tasks_do_not_stop_other_processes() {
    let node = support::node(1);
    let mut me = node.attach();
    let me_pid = me.pid();
    // Ten tasks block in receive on the only worker's thread(s) at once...
    let mut blocked = Vec::new();
    for _ in 0..10 {
        blocked.push(node.spawn_task(move |ctx: &mut Ctx| {
            let m = ctx.receive();
            ctx.send(me_pid, m);
        }));
    }
    // ...and an ordinary process still runs.
    let echo = node.spawn(|ctx: &mut Ctx, msg: Term| {
        if let Some(p) = msg.as_pid() {
            ctx.send(p, term!(:pong));
        }
        Flow::Continue
    });
    me.send(echo, me.pid());
    assert_eq!(me.receive_timeout(SOON), Some(term!(:pong)));
    for (i, p) in blocked.iter().enumerate() {
        me.send(*p, i);
    }
    let mut got: Vec<i64> = (0..10)
        .map(|_| me.receive_timeout(SOON).unwrap().as_int().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    drop(me);
    node.shutdown();
}

struct Noisy {
    terminated: Arc<AtomicUsize>,
}

impl Behaviour for Noisy {
    fn handle(&mut self, _ctx: &mut Ctx, _msg: Term) -> Flow {
        Flow::Continue
    }
    fn terminate(&mut self, _ctx: &mut Ctx, reason: &Term) {
        assert_eq!(reason, &Term::Atom(Atom::SHUTDOWN));
        self.terminated.fetch_add(1, Ordering::SeqCst);
    }
}

fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("comm"))
                        .is_ok_and(|c| c.starts_with(prefix))
                })
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn shutdown_runs_terminate_and_joins_every_thread() {
    let node = oxbeam::rt::Node::start(oxbeam::rt::Config {
        name: "shutme@localhost".into(),
        workers: 2,
        ..Default::default()
    });
    let terminated = Arc::new(AtomicUsize::new(0));
    for _ in 0..1000 {
        node.spawn(Noisy {
            terminated: terminated.clone(),
        });
    }
    // A task blocked in a receive (holding a spare thread) is stopped too.
    node.spawn_task(|ctx: &mut Ctx| {
        let _ = ctx.receive();
    });
    support::wait_for("threads started", SOON, || {
        (threads_named("shutme-") >= 3, threads_named("shutme-"))
    });
    node.shutdown();
    assert_eq!(terminated.load(Ordering::SeqCst), 1000);
    assert_eq!(node.process_count(), 0);
    // Joined, every thread has exited; the kernel may still list one in
    // /proc/self/task for a moment after the join returns (the join wakes when the
    // thread's id is cleared, before the task is reaped), so the count is polled.
    support::wait_for(
        "no threads left after shutdown",
        Duration::from_secs(1),
        || {
            let left = threads_named("shutme-");
            (left == 0, left)
        },
    );
}

#[test]
fn nodes_in_one_process_share_nothing() {
    let a = oxbeam::rt::Node::start(oxbeam::rt::Config {
        name: "a@localhost".into(),
        workers: 1,
        ..Default::default()
    });
    let b = oxbeam::rt::Node::start(oxbeam::rt::Config {
        name: "b@localhost".into(),
        workers: 1,
        ..Default::default()
    });
    let pa = a.spawn(|_: &mut Ctx, _: Term| Flow::Continue);
    a.register(Atom::new("svc"), pa).unwrap();
    assert_eq!(a.whereis(Atom::new("svc")), Some(pa));
    assert_eq!(b.whereis(Atom::new("svc")), None);
    assert!(!b.is_alive(pa));
    assert_eq!(b.process_count(), 0);
    // b has no route to a: a monitor from b on a's pid reports noconnection.
    let mut me = b.attach();
    me.monitor(pa);
    let down = me.receive_timeout(SOON).unwrap();
    assert_eq!(down.as_tuple().unwrap()[4], term!(:noconnection));
    drop(me);
    a.shutdown();
    b.shutdown();
}

#[test]
fn timers_fire_in_order_and_cancel() {
    let node = support::node(2);
    let mut me = node.attach();
    let t3 = node.send_after(me.pid(), 3, Duration::from_millis(30));
    node.send_after(me.pid(), 2, Duration::from_millis(20));
    node.send_after(me.pid(), 1, Duration::from_millis(10));
    let cancelled = node.send_after(me.pid(), 99, Duration::from_millis(15));
    assert!(node.cancel_timer(cancelled).is_some());
    assert!(node.cancel_timer(cancelled).is_none());
    for i in 1..=3 {
        assert_eq!(me.receive_timeout(SOON), Some(Term::Int(i)));
    }
    assert!(
        node.cancel_timer(t3).is_none(),
        "a fired timer can't be cancelled"
    );
    assert_eq!(me.receive_timeout(Duration::from_millis(50)), None);
    // A timer to a registered name.
    me.register(Atom::new("timer_target")).unwrap();
    node.send_after(Atom::new("timer_target"), "named", Duration::from_millis(1));
    assert_eq!(me.receive_timeout(SOON), Some(Term::str("named")));
    drop(me);
    node.shutdown();
}

#[test]
fn a_node_dropped_without_shutdown_lets_its_threads_go() {
    {
        let node = oxbeam::rt::Node::start(oxbeam::rt::Config {
            name: "dropme@localhost".into(),
            workers: 2,
            ..Default::default()
        });
        let mut me = node.attach();
        let echo = node.spawn(|ctx: &mut Ctx, m: Term| {
            if let Some(p) = m.as_pid() {
                ctx.send(p, Term::ok());
            }
            Flow::stop_normal()
        });
        me.send(echo, me.pid());
        me.receive_timeout(SOON).unwrap();
        support::wait_for("echo gone", SOON, || {
            (node.process_count() == 1, node.process_count())
        });
    }
    support::wait_for("threads gone", SOON, || {
        (threads_named("dropme-") == 0, threads_named("dropme-"))
    });
}

#[test]
fn a_node_level_start_from_inside_a_process_does_not_stall_one_worker() {
    // gen_server::start(&node, ..) attaches a temporary process to the calling thread;
    // called from inside a process, that thread is the only worker, and its wait must
    // hand the worker over like any receive in a process.
    let node = support::node(1);
    let mut me = node.attach();
    let me_pid = me.pid();
    node.spawn_task(move |ctx: &mut Ctx| {
        let started = gen_server::start(ctx.node(), Link { next: None }, None).map_err(Term::from);
        let answer = started.and_then(|s| {
            gen_server::call(ctx, s, Term::Int(7), Some(SOON)).map_err(|e| e.reason())
        });
        ctx.send(me_pid, format!("{answer:?}"));
    });
    assert_eq!(me.receive_timeout(SOON), Some(Term::str("Ok(7)")));
    drop(me);
    node.shutdown();
}

/// `yield_now` on a one-worker node lets the process it woke and work that came from
/// another thread run while the caller polls: without it the poll never ends, since the
/// caller holds the only worker.
#[test]
fn a_polling_process_that_yields_lets_others_run_on_one_worker() {
    use std::sync::atomic::AtomicBool;
    let node = support::node(1);
    let mut me = node.attach();
    let me_pid = me.pid();
    let from_spawn = Arc::new(AtomicBool::new(false));
    let from_outside = Arc::new(AtomicBool::new(false));
    let (a, b) = (from_spawn.clone(), from_outside.clone());
    // The setter of the second flag, made runnable later by a message from this thread
    // (a non-worker thread, so it goes through the injector).
    let setter_b = b.clone();
    let setter = node.spawn(move |_: &mut Ctx, _m: Term| {
        setter_b.store(true, Ordering::SeqCst);
        Flow::stop_normal()
    });
    me.spawn(Task::new(move |ctx: &mut Ctx| {
        let setter_a = a.clone();
        ctx.spawn(Task::new(move |_: &mut Ctx| {
            setter_a.store(true, Ordering::SeqCst)
        }));
        let deadline = std::time::Instant::now() + SOON;
        while !a.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
            ctx.yield_now();
        }
        // Whether the flag was seen while polling (not after the slice ended).
        ctx.send(me_pid, term!({:first, (a.load(Ordering::SeqCst))}));
        let deadline = std::time::Instant::now() + SOON;
        while !b.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
            ctx.yield_now();
        }
        ctx.send(me_pid, term!({:second, (b.load(Ordering::SeqCst))}));
    }));
    let seen = |m: Option<Term>, tag: &str| m.and_then(|m| m.tagged(tag).map(|r| r[0].clone()));
    assert_eq!(
        seen(me.receive_timeout(2 * SOON), "first"),
        Some(Term::from(true)),
        "the spawned process ran while the caller polled"
    );
    me.send(setter, term!(:go));
    assert_eq!(
        seen(me.receive_timeout(2 * SOON), "second"),
        Some(Term::from(true)),
        "the process woken from outside ran while the caller polled"
    );
    assert!(from_spawn.load(Ordering::SeqCst) && from_outside.load(Ordering::SeqCst));
    drop(me);
    node.shutdown();
}

/// A process that sends in a loop to a consumer waiting on its worker does not queue its
/// whole output first: a sender that finds its receiver 1,024 messages behind (it looks
/// every 64th send) hands its worker's work to another thread and waits, a moment at
/// most, for the receiver to take its queue (as the BEAM switches out a sender whose
/// reductions are spent). One worker, so without that the consumer could only run once
/// the loop ended. Order is kept.
#[test]
fn a_sending_loop_lets_its_consumer_keep_up_in_order() {
    const N: i64 = 100_000;
    let node = support::node(1);
    let mut me = node.attach();
    let me_pid = me.pid();
    me.spawn(Task::new(move |ctx: &mut Ctx| {
        let mut next = 0i64;
        let consumer = ctx.spawn(move |ctx: &mut Ctx, msg: Term| {
            if let Some([Term::Pid(to)]) = msg.tagged("done") {
                ctx.send(*to, term!({:count, next}));
                return Flow::stop_normal();
            }
            // Messages arrive in the order sent.
            assert_eq!(msg.tagged("n").and_then(|r| r[0].as_int()), Some(next));
            next += 1;
            Flow::Continue
        });
        let mut longest = 0;
        for i in 0..N {
            ctx.send(consumer, term!({:n, i}));
            if i % 1000 == 999 {
                longest = longest.max(ctx.node().message_queue_len(consumer).unwrap_or(0));
            }
        }
        ctx.send(consumer, term!({:done, me_pid}));
        ctx.send(me_pid, term!({:longest, (longest as i64)}));
    }));
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(
            me.receive_timeout(2 * SOON)
                .expect("producer and consumer report"),
        );
    }
    let field = |tag: &str| {
        got.iter()
            .find_map(|m| m.tagged(tag).and_then(|r| r[0].as_int()))
    };
    assert_eq!(field("count"), Some(N), "every message arrived, in order");
    let longest = field("longest").expect("the producer reported");
    assert!(
        longest <= 4 * 1024,
        "the consumer kept up: its queue reached {longest} messages"
    );
    drop(me);
    node.shutdown();
}
