//! `oxbeam_bench_apps`: the services' side of the bench suite (`benches/suite_apps.rs`),
//! on the shapes of `../shared/bench/beam-apps/`: each function runs on a test node,
//! times its own work there and reports `{:result, value}` to `report`.

use std::time::{Duration, Instant};

use oxbeam::everywhere::Service;
use oxbeam::kv::Table;
use oxbeam::locks::Locks;
use oxbeam::queue::{Queue, TaskError};
use oxbeam::rt::{Ctx, Node};
use oxbeam::term::{Atom, Pid, Term, term};

const NAME: &str = "bench";
const WAIT: Duration = Duration::from_secs(30);

fn kv(ctx: &Ctx) -> Option<Table<Term, Term>> {
    Table::open(ctx.node(), NAME).ok()
}

fn report(ctx: &mut Ctx, to: Option<Pid>, value: Term) -> Term {
    if let Some(to) = to {
        ctx.send(to, term!({:result, value}));
    }
    term!(:ok)
}

fn quantile(mut us: Vec<f64>, q: f64) -> f64 {
    if us.is_empty() {
        return f64::NAN;
    }
    us.sort_by(f64::total_cmp);
    us[((us.len() - 1) as f64 * q).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Registers the `oxbeam_bench_apps` functions on `node`.
pub fn register(node: &Node) {
    let f = node.functions();
    let m = Atom::new("oxbeam_bench_apps");
    f.register(m, Atom::new("noop"), 0, |_: &mut Ctx, _| term!(:ok));
    // start(nodes): this node's replicas of the KV table, the locks and the queue.
    f.register(m, Atom::new("start"), 1, |ctx: &mut Ctx, args| {
        crate::services::start(
            ctx,
            &[Service::Kv, Service::Locks, Service::Queue],
            NAME,
            &args[0],
        )
    });
    // kv_leader(): the KV writer's node, as this node knows it.
    f.register(m, Atom::new("kv_leader"), 0, |ctx: &mut Ctx, _| {
        match kv(ctx).and_then(|t| {
            t.group()
                .shared()
                .known_leader()
                .map(|i| t.group().config().nodes[i])
        }) {
            Some(n) => Term::Atom(n),
            None => term!(:nil),
        }
    });
    // kv_put(key, value): one put; :ok or {:error, why}.
    f.register(m, Atom::new("kv_put"), 2, |ctx: &mut Ctx, args| {
        match kv(ctx) {
            Some(t) => match t.put(ctx, &args[0], &args[1]) {
                Ok(_) => term!(:ok),
                Err(e) => term!({:error, (e.to_string())}),
            },
            None => term!({:error, :not_started}),
        }
    });
    // kv_puts(n, report): n sequential puts; reports [median_us, p99_us].
    f.register(m, Atom::new("kv_puts"), 2, |ctx: &mut Ctx, args| {
        let (Some(n), to) = (args[0].as_int(), args[1].as_pid()) else {
            return term!(:badarg);
        };
        let Some(t) = kv(ctx) else {
            return term!(:not_started);
        };
        let mut us = Vec::with_capacity(n as usize);
        for i in 0..n {
            let start = Instant::now();
            if t.put(ctx, &term!({:k, (i % 1000)}), &Term::Int(i)).is_ok() {
                us.push(micros(start.elapsed()));
            }
        }
        let v = Term::list(vec![
            Term::Float(quantile(us.clone(), 0.5)),
            Term::Float(quantile(us, 0.99)),
        ]);
        report(ctx, to, v)
    });
    // kv_get_local(n, report): once the 1,000 keys of kv_puts are here, n local reads
    // of them; reports ns per read.
    f.register(m, Atom::new("kv_get_local"), 2, |ctx: &mut Ctx, args| {
        let (Some(n), to) = (args[0].as_int(), args[1].as_pid()) else {
            return term!(:badarg);
        };
        let Some(t) = kv(ctx) else {
            return term!(:not_started);
        };
        let keys: Vec<Term> = (0..1000).map(|i| term!({:k, i})).collect();
        let deadline = Instant::now() + WAIT;
        while keys
            .iter()
            .any(|k| t.get_local(k).map_or(true, |l| l.value.is_none()))
            && Instant::now() < deadline
        {
            ctx.receive_match(|_| false, Some(Duration::from_millis(5)));
        }
        let start = Instant::now();
        let mut found = 0u64;
        for i in 0..n as usize {
            if let Ok(l) = t.get_local(&keys[i % keys.len()]) {
                found += l.value.is_some() as u64;
            }
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        std::hint::black_box(found);
        report(ctx, to, Term::Float(ns))
    });
    // lock_uncontended(n, report): n with_lock of fresh resources; reports median us.
    f.register(
        m,
        Atom::new("lock_uncontended"),
        2,
        |ctx: &mut Ctx, args| {
            let (Some(n), to) = (args[0].as_int(), args[1].as_pid()) else {
                return term!(:badarg);
            };
            let Ok(locks) = Locks::open(ctx.node(), NAME) else {
                return term!(:not_started);
            };
            let mut us = Vec::new();
            let me = ctx.node().name();
            for i in 0..n {
                let start = Instant::now();
                if locks
                    .with_lock(ctx, (me.as_str(), i), WAIT, |_, _| ())
                    .is_ok()
                {
                    us.push(micros(start.elapsed()));
                }
            }
            report(ctx, to, Term::Float(quantile(us, 0.5)))
        },
    );
    // lock_contended(ms, report): with_lock(:shared) in a loop for ms; reports the
    // count, and [median, p99] of the hand-off (release to next grant) is not timed here.
    f.register(m, Atom::new("lock_contended"), 2, |ctx: &mut Ctx, args| {
        let (Some(ms), to) = (args[0].as_int(), args[1].as_pid()) else {
            return term!(:badarg);
        };
        let Ok(locks) = Locks::open(ctx.node(), NAME) else {
            return term!(:not_started);
        };
        let end = Instant::now() + Duration::from_millis(ms as u64);
        let mut count = 0i64;
        while Instant::now() < end {
            if locks.with_lock(ctx, "shared", WAIT, |_, _| ()).is_ok() {
                count += 1;
            }
        }
        report(ctx, to, Term::Int(count))
    });
    // lock_handoff(n, report): n times, a holder on this node releases while a waiter
    // here is queued behind it; reports [median_us, p99_us] from the release call to the
    // waiter's grant.
    f.register(m, Atom::new("lock_handoff"), 2, |ctx: &mut Ctx, args| {
        let (Some(n), to) = (args[0].as_int(), args[1].as_pid()) else {
            return term!(:badarg);
        };
        let Ok(locks) = Locks::open(ctx.node(), NAME) else {
            return term!(:not_started);
        };
        let mut us = Vec::new();
        let me = ctx.pid();
        for i in 0..n {
            let resource = ("handoff", i);
            let Ok(held) = locks.acquire(ctx, resource, WAIT) else {
                continue;
            };
            let l = locks.clone();
            let waiter = ctx.node().spawn_task(move |c: &mut Ctx| {
                if let Ok(lease) = l.acquire(c, resource, WAIT) {
                    c.send(me, term!({:granted, (Term::Pid(c.pid()))}));
                    let _ = l.release(c, &lease);
                }
            });
            // Released once the waiter is queued.
            let deadline = Instant::now() + WAIT;
            while locks.holders(ctx, resource).map_or(0, |(_, w)| w) == 0
                && Instant::now() < deadline
            {
                ctx.receive_match(|_| false, Some(Duration::from_millis(1)));
            }
            let start = Instant::now();
            let _ = locks.release(ctx, &held);
            let got = ctx.receive_match(
                |m| {
                    m.tagged("granted")
                        .is_some_and(|g| g[0] == Term::Pid(waiter))
                },
                Some(WAIT),
            );
            if got.is_some() {
                us.push(micros(start.elapsed()));
            }
        }
        let v = Term::list(vec![
            Term::Float(quantile(us.clone(), 0.5)),
            Term::Float(quantile(us, 0.99)),
        ]);
        report(ctx, to, v)
    });
    // hang(collector): tells the collector {:started, node()} and waits a minute (a
    // task for the redispatch measure: it runs again when its node dies).
    f.register(m, Atom::new("hang"), 1, |ctx: &mut Ctx, args| {
        if let Some(c) = args[0].as_pid() {
            ctx.send(c, term!({:started, (ctx.node().name())}));
        }
        ctx.receive_match(|_| false, Some(Duration::from_secs(60)));
        term!(:ok)
    });
    // enqueue_hang(collector): enqueues one hang(collector) task.
    f.register(m, Atom::new("enqueue_hang"), 1, |ctx: &mut Ctx, args| {
        let Ok(queue) = Queue::open(ctx.node(), NAME) else {
            return term!(:not_started);
        };
        match queue.enqueue(ctx, "oxbeam_bench_apps", "hang", vec![args[0].clone()]) {
            Ok(id) => Term::Int(id as i64),
            Err(e) => term!({:error, (e.to_string())}),
        }
    });
    // queue_tasks(n, enqueuers, report): n no-op tasks enqueued by `enqueuers`
    // processes of this node, until every one has run; reports tasks per second.
    f.register(m, Atom::new("queue_tasks"), 3, |ctx: &mut Ctx, args| {
        let (Some(n), Some(k), to) = (args[0].as_int(), args[1].as_int(), args[2].as_pid()) else {
            return term!(:badarg);
        };
        let Ok(queue) = Queue::open(ctx.node(), NAME) else {
            return term!(:not_started);
        };
        let start = Instant::now();
        let me = ctx.pid();
        for e in 0..k {
            let q = queue.clone();
            ctx.node().spawn_task(move |c: &mut Ctx| {
                let mut last = 0;
                let mut ids = Vec::new();
                for _ in (e..n).step_by(k as usize) {
                    if let Ok(id) = q.enqueue(c, "oxbeam_bench_apps", "noop", vec![]) {
                        ids.push(id);
                    }
                }
                for id in ids {
                    match q.await_result(c, id, WAIT) {
                        Ok(_) | Err(TaskError::Queue(_)) => last += 1,
                        Err(_) => {}
                    }
                }
                c.send(me, term!({:done, last}));
            });
        }
        let mut done = 0;
        for _ in 0..k {
            if let Some(m) = ctx.receive_match(|m| m.tagged("done").is_some(), Some(WAIT * 4)) {
                done += m.tagged("done").and_then(|d| d[0].as_int()).unwrap_or(0);
            }
        }
        let per_s = done as f64 / start.elapsed().as_secs_f64();
        report(ctx, to, Term::Float(per_s))
    });
}
