//! `oxbeam_test_queue`: a task queue on test nodes, for `tests/fault_queue_kill.rs`:
//! `start(nodes)`, `enqueue_many(n, enqueuers, collector, report)` (reports
//! `{:enqueued, [ids]}`: the acknowledged ones) and the task `work(collector, i)`, which
//! tells the collector `{:start, node(), i}` and `{:finish, node(), i}` around a few
//! milliseconds of work.

use std::time::Duration;

use oxbeam::everywhere::Service;
use oxbeam::queue::Queue;
use oxbeam::rt::{Ctx, Node};
use oxbeam::term::{Atom, Term, term};

const NAME: &str = "fq";

/// Registers the `oxbeam_test_queue` functions on `node`.
pub fn register(node: &Node) {
    let f = node.functions();
    let m = Atom::new("oxbeam_test_queue");
    f.register(m, Atom::new("start"), 1, |ctx: &mut Ctx, args| {
        crate::services::start(ctx, &[Service::Queue], NAME, &args[0])
    });
    f.register(m, Atom::new("work"), 2, |ctx: &mut Ctx, args| {
        let (Some(collector), i) = (args[0].as_pid(), args[1].clone()) else {
            return term!(:badarg);
        };
        let here = ctx.node().name();
        ctx.send(collector, term!({:start, here, (i.clone())}));
        ctx.receive_match(|_| false, Some(Duration::from_millis(3)));
        ctx.send(collector, term!({:finish, here, (i.clone())}));
        i
    });
    f.register(m, Atom::new("enqueue_many"), 4, |ctx: &mut Ctx, args| {
        let (Some(n), Some(k), Some(collector), Some(report)) = (
            args[0].as_int(),
            args[1].as_int(),
            args[2].as_pid(),
            args[3].as_pid(),
        ) else {
            return term!(:badarg);
        };
        let Ok(queue) = Queue::open(ctx.node(), NAME) else {
            return term!(:not_started);
        };
        let me = ctx.pid();
        for e in 0..k {
            let q = queue.clone();
            ctx.node().spawn_task(move |c: &mut Ctx| {
                let mut acked = Vec::new();
                for i in (e..n).step_by(k as usize) {
                    let args = vec![Term::Pid(collector), Term::Int(i)];
                    if q.enqueue(c, "oxbeam_test_queue", "work", args).is_ok() {
                        acked.push(Term::Int(i));
                    }
                }
                c.send(me, term!({:acked, (Term::list(acked))}));
            });
        }
        let mut all = Vec::new();
        for _ in 0..k {
            let got = ctx.receive_match(
                |m| m.tagged("acked").is_some(),
                Some(Duration::from_secs(120)),
            );
            if let Some(list) = got
                .as_ref()
                .and_then(|m| m.tagged("acked"))
                .and_then(|t| t[0].as_list().map(<[Term]>::to_vec))
            {
                all.extend(list);
            }
        }
        ctx.send(report, term!({:enqueued, (Term::list(all))}));
        term!(:ok)
    });
}
