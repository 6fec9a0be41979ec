//! The task queue on three nodes in this process over loopback: tasks enqueued on one
//! node run on all and are awaited from another, never more than the per-node bound at
//! once, crashes retried with backoff into the dead letters (and requeued), a task whose
//! node goes run again elsewhere, uniqueness keys, unknown functions refused. The
//! 10,000-task run with a node SIGKILLed is `fault_queue_*.rs`.
mod support;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use oxbeam::queue::{Queue, QueueError, TaskError, TaskState};
use oxbeam::rt::Ctx;
use oxbeam::term::{Atom, Term};
use support::{SOON, net, private_mapper, test_cookie, wait_for};

use support::Trio as Cluster;

/// Per node: how many run now, and the most seen at once.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
    ran: AtomicUsize,
}

/// The node where `hang_once` first ran (and hangs there, each time it runs there).
type FirstNode = Arc<Mutex<Option<Atom>>>;

fn cluster(prefix: &str, gauges: &[Arc<Gauge>], first: FirstNode) -> Cluster {
    let c = support::trio(prefix);
    for (net, gauge) in c.nets.iter().zip(gauges) {
        let f = net.node().functions();
        f.register(
            Atom::new("t"),
            Atom::new("double"),
            1,
            |_: &mut Ctx, args| match &args[0] {
                Term::Int(n) => Term::Int(n * 2),
                other => panic!("not a number: {other}"),
            },
        );
        let g = gauge.clone();
        f.register(
            Atom::new("t"),
            Atom::new("slow"),
            1,
            move |ctx: &mut Ctx, args| {
                let now = g.now.fetch_add(1, Ordering::SeqCst) + 1;
                g.max.fetch_max(now, Ordering::SeqCst);
                g.ran.fetch_add(1, Ordering::SeqCst);
                ctx.receive_match(|_| false, Some(Duration::from_millis(10)));
                g.now.fetch_sub(1, Ordering::SeqCst);
                args[0].clone()
            },
        );
        f.register(Atom::new("t"), Atom::new("crash"), 0, |_: &mut Ctx, _| {
            panic!("boom")
        });
        let first = first.clone();
        f.register(
            Atom::new("t"),
            Atom::new("hang_once"),
            0,
            move |ctx: &mut Ctx, _| {
                let here = ctx.node().name();
                let hangs = *first.lock().unwrap().get_or_insert(here) == here;
                if hangs {
                    ctx.receive_match(|_| false, Some(Duration::from_secs(60)));
                }
                Term::atom("done")
            },
        );
    }
    c
}

impl Cluster {
    fn queues(&self, name: &str) -> Vec<Queue> {
        let qs: Vec<Queue> = self
            .nets
            .iter()
            .map(|n| Queue::start(n.node(), name, &self.names).expect("the queue starts"))
            .collect();
        for (q, n) in qs.iter().zip(&self.nets) {
            q.group()
                .wait_for_leader(&mut n.node().attach(), SOON)
                .expect("a leader");
        }
        qs
    }
}

fn gauges() -> Vec<Arc<Gauge>> {
    (0..3).map(|_| Arc::new(Gauge::default())).collect()
}

#[test]
fn tasks_enqueued_anywhere_run_everywhere_within_the_bound_and_are_awaited_anywhere() {
    let g = gauges();
    let c = cluster("qa", &g, FirstNode::default());
    let q = c.queues("work");
    let mut me: Vec<_> = c.nets.iter().map(|n| n.node().attach()).collect();
    let id = q[0]
        .enqueue(&mut me[0], "t", "double", vec![Term::Int(21)])
        .unwrap();
    assert_eq!(q[2].await_result(&mut me[2], id, SOON), Ok(Term::Int(42)));
    // 90 slow tasks: every node takes some, none runs more than 5 at once.
    let ids: Vec<u64> = (0..90)
        .map(|i| {
            q[i % 3]
                .enqueue(&mut me[i % 3], "t", "slow", vec![Term::Int(i as i64)])
                .unwrap()
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            q[1].await_result(&mut me[1], *id, SOON),
            Ok(Term::Int(i as i64))
        );
    }
    let ran: Vec<usize> = g.iter().map(|g| g.ran.load(Ordering::SeqCst)).collect();
    let max: Vec<usize> = g.iter().map(|g| g.max.load(Ordering::SeqCst)).collect();
    eprintln!("ran per node {ran:?}, most at once {max:?}");
    assert_eq!(ran.iter().sum::<usize>(), 90, "each once: no node was lost");
    assert!(
        ran.iter().filter(|r| **r > 0).count() >= 2,
        "more than one node worked"
    );
    assert!(max.iter().all(|m| *m <= 5), "the per-node bound: {max:?}");
    // An unknown function is refused at once, and nothing is enqueued.
    let unknown = q[0].enqueue(&mut me[0], "t", "nope", vec![]);
    assert!(
        matches!(unknown, Err(QueueError::UnknownFunction(_))),
        "{unknown:?}"
    );
}

#[test]
fn a_task_that_crashes_three_times_is_a_dead_letter_and_can_be_requeued() {
    let c = cluster("qb", &gauges(), FirstNode::default());
    let q = c.queues("crashy");
    let mut me = c.nets[0].node().attach();
    let start = Instant::now();
    let id = q[0].enqueue(&mut me, "t", "crash", vec![]).unwrap();
    let r = q[0].await_result(&mut me, id, SOON);
    let took = start.elapsed();
    assert!(matches!(r, Err(TaskError::DeadLetter(_))), "{r:?}");
    // Backoff: 100 ms then 200 ms (±50 %) between the three attempts.
    assert!(took >= Duration::from_millis(150), "{took:?}");
    let dead = q[1].dead_letters(&mut me).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        dead.iter()
            .map(|t| (t.id, t.dispatches, t.failures))
            .collect::<Vec<_>>(),
        [(id, 3, 3)]
    );
    assert!(q[2].requeue(&mut me, id).unwrap());
    assert!(
        !q[2].requeue(&mut me, id).unwrap(),
        "not a dead letter any more"
    );
    let again = q[0].await_result(&mut me, id, SOON);
    assert!(matches!(again, Err(TaskError::DeadLetter(_))), "{again:?}");
    let t = q[0].task(&mut me, id).unwrap().unwrap();
    assert_eq!(t.dispatches, 6);
}

#[test]
fn a_task_whose_node_goes_runs_again_elsewhere() {
    let first = FirstNode::default();
    let c = cluster("qc", &gauges(), first.clone());
    let q = c.queues("moving");
    let mut me: Vec<_> = c.nets.iter().map(|n| n.node().attach()).collect();
    let id = q[0].enqueue(&mut me[0], "t", "hang_once", vec![]).unwrap();
    let running_on = wait_for("the task running", SOON, || {
        let ran = *first.lock().unwrap();
        (ran.is_some(), ran)
    })
    .unwrap();
    let t = q[0].task(&mut me[0], id).unwrap().unwrap();
    assert!(matches!(t.state, TaskState::Running { node, .. } if node == running_on));
    let gone = c.names.iter().position(|n| *n == running_on).unwrap();
    let start = Instant::now();
    drop(me.remove(gone));
    c.nets[gone].shutdown();
    let other = if gone == 0 { 1 } else { 0 };
    let r = q[other].await_result(&mut me[0], id, SOON);
    let took = start.elapsed();
    eprintln!("redispatched and done {took:?} after its node went");
    assert_eq!(r, Ok(Term::atom("done")));
    let t = q[other].task(&mut me[0], id).unwrap().unwrap();
    assert_eq!(
        t.dispatches, 2,
        "run twice: the price of at-least-once, counted"
    );
}

#[test]
fn a_unique_key_names_one_unfinished_task() {
    let c = cluster("qd", &gauges(), FirstNode::default());
    let q = c.queues("unique");
    let mut me = c.nets[0].node().attach();
    let key = Term::str("report-2026-12-08");
    let a = q[0]
        .enqueue_unique(&mut me, key.clone(), "t", "slow", vec![Term::Int(1)])
        .unwrap();
    let b = q[1]
        .enqueue_unique(&mut me, key.clone(), "t", "slow", vec![Term::Int(2)])
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(q[0].await_result(&mut me, a, SOON), Ok(Term::Int(1)));
    let c2 = q[1]
        .enqueue_unique(&mut me, key, "t", "slow", vec![Term::Int(3)])
        .unwrap();
    assert_ne!(c2, a, "the key is free once the task is done");
}

#[test]
fn a_durable_queue_keeps_its_results_and_dead_letters_across_a_restart_of_every_node() {
    use oxbeam::queue::QueueConfig;
    let dirs = support::TempDir::new("queue-durable");
    let (mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let names: Vec<Atom> = (1..=3)
        .map(|i| Atom::new(&format!("qe{i}@localhost")))
        .collect();
    let boot = |i: usize| {
        let n = net(&format!("qe{}", i + 1), epmd, &cookie);
        let f = n.node().functions();
        f.register(
            Atom::new("t"),
            Atom::new("double"),
            1,
            |_: &mut Ctx, args| match &args[0] {
                Term::Int(n) => Term::Int(n * 2),
                other => other.clone(),
            },
        );
        f.register(Atom::new("t"), Atom::new("crash"), 0, |_: &mut Ctx, _| {
            panic!("boom")
        });
        let config = QueueConfig::new("kept", &names).durable(dirs.node(i));
        let q = Queue::start_with(n.node(), config).expect("the queue starts");
        (n, q)
    };
    let (nets, qs): (Vec<_>, Vec<_>) = (0..3).map(boot).unzip();
    let mut me = nets[0].node().attach();
    qs[0].group().wait_for_leader(&mut me, SOON).unwrap();
    let done = qs[0]
        .enqueue(&mut me, "t", "double", vec![Term::Int(21)])
        .unwrap();
    assert_eq!(qs[0].await_result(&mut me, done, SOON), Ok(Term::Int(42)));
    let dead = qs[1].enqueue(&mut me, "t", "crash", vec![]).unwrap();
    assert!(matches!(
        qs[1].await_result(&mut me, dead, SOON),
        Err(TaskError::DeadLetter(_))
    ));
    drop(me);
    for n in &nets {
        n.shutdown();
    }
    drop(qs);
    // Every node back on its directory: the result and the dead letter are there.
    let (nets, qs): (Vec<_>, Vec<_>) = (0..3).map(boot).unzip();
    let mut me = nets[2].node().attach();
    let task = wait_for("the queue back", SOON, || {
        let t = qs[2].task(&mut me, done);
        (t.is_ok(), t)
    });
    assert_eq!(
        task.unwrap().map(|t| t.state),
        Some(TaskState::Done(Term::Int(42)))
    );
    let letters = qs[2].dead_letters(&mut me).unwrap();
    assert_eq!(letters.iter().map(|t| t.id).collect::<Vec<_>>(), [dead]);
    drop(me);
    for n in &nets {
        n.shutdown();
    }
    drop(mapper);
}
