//! The lock manager on three nodes in this process over loopback: first-come-first-
//! served grants with strictly increasing fencing tokens, real millisecond timeouts,
//! release when the holder exits or its node goes, `lock_lost` before the lease can
//! move on, read-write locks and semaphores, and a counter in the KV incremented under
//! `with_lock` with fencing. The OS-process faults (kill -9, SIGSTOP past the lease)
//! are in `fault_locks_*.rs`.
mod support;

use std::time::{Duration, Instant};

use oxbeam::kv::{KvError, Table};
use oxbeam::locks::{Fence, LockError, Locks, Mode};
use oxbeam::node::Net;
use oxbeam::rt::Ctx;
use oxbeam::term::Term;
use support::{SOON, wait_for};

use support::Trio as Cluster;

fn cluster(prefix: &str) -> Cluster {
    support::trio(prefix)
}

impl Cluster {
    fn locks(&self, name: &str) -> Vec<Locks> {
        let locks: Vec<Locks> = self
            .nets
            .iter()
            .map(|n| Locks::start(n.node(), name, &self.names).expect("the lock service starts"))
            .collect();
        for (l, n) in locks.iter().zip(&self.nets) {
            let mut me = n.node().attach();
            l.group().wait_for_leader(&mut me, SOON).expect("a leader");
        }
        locks
    }
}

/// A process on `net` that takes `resource` and reports `{:granted, token}` (or
/// `{:failed, why}`) to `to`, then waits for `:release` (releasing) or `:exit`.
fn holder(
    net: &Net,
    locks: &Locks,
    resource: &'static str,
    mode: Mode,
    to: oxbeam::Pid,
) -> oxbeam::Pid {
    let locks = locks.clone();
    net.node().spawn_task(
        move |ctx: &mut Ctx| match locks.acquire_as(ctx, resource, mode, SOON) {
            Ok(lease) => {
                ctx.send(
                    to,
                    Term::tuple(vec![
                        Term::atom("granted"),
                        Term::Int(lease.token as i64),
                        Term::Pid(ctx.pid()),
                    ]),
                );
                let m = ctx.receive_match(|m| m.is_atom("release") || m.is_atom("exit"), None);
                if m.is_some_and(|m| m.is_atom("release")) {
                    let _ = locks.release(ctx, &lease);
                }
            }
            Err(e) => ctx.send(
                to,
                Term::tuple(vec![Term::atom("failed"), Term::str(&e.to_string())]),
            ),
        },
    )
}

fn granted(ctx: &mut Ctx, within: Duration) -> Option<(u64, oxbeam::Pid)> {
    let m = ctx.receive_match(
        |m| {
            m.as_tuple()
                .is_some_and(|t| t[0].is_atom("granted") || t[0].is_atom("failed"))
        },
        Some(within),
    )?;
    match m.as_tuple()? {
        [_, Term::Int(t), Term::Pid(p)] => Some((*t as u64, *p)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn grants_come_in_request_order_with_increasing_tokens_and_timeouts_are_real() {
    let c = cluster("lka");
    let l = c.locks("first");
    let mut me = c.nets[0].node().attach();
    let first = l[0].acquire(&mut me, "res", SOON).unwrap();
    // Three waiters on three nodes, queued in this order.
    let mut waiters = Vec::new();
    for i in [1, 2, 0] {
        waiters.push(holder(&c.nets[i], &l[i], "res", Mode::Exclusive, me.pid()));
        wait_for("the waiter queued", SOON, || {
            let (_, waiting) = l[0].holders(&mut me, "res").unwrap();
            (waiting == waiters.len(), waiting)
        });
    }
    // A fourth with a 100 ms timeout gives up at its deadline, holding nothing.
    let start = Instant::now();
    let r = l[2].acquire(&mut me, "res", Duration::from_millis(100));
    let took = start.elapsed();
    eprintln!("a 100 ms acquire timed out after {took:?}");
    assert_eq!(r, Err(LockError::Timeout));
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(1),
        "{took:?}"
    );
    assert_eq!(l[1].holders(&mut me, "res").unwrap().1, 3);
    l[0].release(&mut me, &first).unwrap();
    let mut tokens = vec![first.token];
    for w in &waiters {
        let (token, pid) = granted(&mut me, SOON).expect("granted in turn");
        assert_eq!(pid, *w, "first come, first served");
        tokens.push(token);
        me.send(pid, Term::atom("release"));
    }
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
    assert_eq!(l[0].release(&mut me, &first), Err(LockError::NotHolder));
}

#[test]
fn a_holder_that_exits_releases_at_once_and_its_node_going_releases_at_the_lease() {
    let c = cluster("lkb");
    let l = c.locks("deaths");
    let mut me = c.nets[0].node().attach();
    let h = holder(&c.nets[1], &l[1], "r", Mode::Exclusive, me.pid());
    let (t1, _) = granted(&mut me, SOON).unwrap();
    let start = Instant::now();
    me.exit_pid(h, Term::atom("kill"));
    let next = l[0].acquire(&mut me, "r", SOON).unwrap();
    let took = start.elapsed();
    eprintln!("released {took:?} after its holder was killed");
    assert!(next.token > t1);
    assert!(
        took < l[0].config().lease,
        "at once, not at the lease: {took:?}"
    );
    l[0].release(&mut me, &next).unwrap();
    // A holder on node 3, which then shuts down: the lease runs out, then a grant.
    holder(&c.nets[2], &l[2], "r", Mode::Exclusive, me.pid());
    granted(&mut me, SOON).unwrap();
    let start = Instant::now();
    c.nets[2].shutdown();
    let _after = l[0].acquire(&mut me, "r", SOON).unwrap();
    let took = start.elapsed();
    eprintln!(
        "granted {took:?} after the holder's node went (lease {:?})",
        l[0].config().lease
    );
    assert!(
        took < l[0].config().lease + Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn a_holder_cut_off_hears_lock_lost_before_its_lease_ends() {
    let c = cluster("lkc");
    let l = c.locks("lost");
    let mut me = c.nets[0].node().attach();
    let lease = l[0].acquire(&mut me, "cut", SOON).unwrap();
    let start = Instant::now();
    // The other two nodes go: no majority, no renewal.
    c.nets[1].shutdown();
    c.nets[2].shutdown();
    let lost = me
        .receive_match(
            |m| m.as_tuple().is_some_and(|t| t[0].is_atom("lock_lost")),
            Some(SOON),
        )
        .expect("lock_lost");
    let took = start.elapsed();
    eprintln!("lock_lost after {took:?}: {lost}");
    assert_eq!(
        lost,
        Term::tuple(vec![
            Term::atom("lock_lost"),
            Term::str("cut"),
            Term::Int(lease.token as i64)
        ])
    );
    assert!(
        took < l[0].config().lease,
        "before the lease ends: {took:?}"
    );
}

#[test]
fn readers_share_writers_exclude_and_a_semaphore_counts_permits() {
    let c = cluster("lkd");
    let l = c.locks("modes");
    let mut me = c.nets[0].node().attach();
    let r1 = l[0].acquire_as(&mut me, "rw", Mode::Shared, SOON).unwrap();
    holder(&c.nets[1], &l[1], "rw", Mode::Shared, me.pid());
    let (_, reader2) = granted(&mut me, SOON).expect("a second reader shares");
    let writer = holder(&c.nets[2], &l[2], "rw", Mode::Exclusive, me.pid());
    assert_eq!(
        granted(&mut me, Duration::from_millis(300)),
        None,
        "the writer waits"
    );
    l[0].release(&mut me, &r1).unwrap();
    me.send(reader2, Term::atom("release"));
    let (_, w) = granted(&mut me, SOON).expect("then the writer");
    assert_eq!(w, writer);
    me.send(writer, Term::atom("release"));
    // Two permits: two holders, the third waits.
    for (net, locks) in c.nets.iter().zip(&l).take(2) {
        holder(net, locks, "sem", Mode::Permit(2), me.pid());
        granted(&mut me, SOON).expect("a permit");
    }
    let third = holder(&c.nets[2], &l[2], "sem", Mode::Permit(2), me.pid());
    assert_eq!(granted(&mut me, Duration::from_millis(300)), None);
    let wrong = l[0].acquire_as(&mut me, "sem", Mode::Permit(3), Duration::from_millis(100));
    assert!(matches!(wrong, Err(LockError::Refused(_))), "{wrong:?}");
    let _ = third;
}

#[test]
fn a_counter_in_the_kv_under_with_lock_with_fencing_loses_no_update() {
    let c = cluster("lke");
    let l = c.locks("ctr");
    let kv: Vec<Table<String, u64>> = c
        .nets
        .iter()
        .map(|n| Table::start(n.node(), "ctr", &c.names).unwrap())
        .collect();
    for (t, n) in kv.iter().zip(&c.nets) {
        t.wait_for_writer(&mut n.node().attach(), SOON).unwrap();
    }
    let per_node = 20u64;
    let done: Vec<_> = (0..3)
        .map(|i| {
            let (locks, table) = (l[i].clone(), kv[i].clone());
            let node = c.nets[i].node().clone();
            std::thread::spawn(move || {
                let mut me = node.attach();
                for _ in 0..per_node {
                    locks
                        .with_lock(&mut me, "counter", SOON, |ctx, lease| {
                            let key = "n".to_string();
                            // Read linearizably under the lock (a local copy may lag).
                            let n = table.get(ctx, &key).unwrap().map_or(0, |(v, _)| v);
                            table
                                .put_fenced(ctx, &key, &(n + 1), &lease.fence())
                                .unwrap();
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for d in done {
        d.join().unwrap();
    }
    let mut me = c.nets[0].node().attach();
    assert_eq!(
        kv[0].get(&mut me, &"n".into()).unwrap().map(|(v, _)| v),
        Some(3 * per_node)
    );
    // A stale token is refused once a newer one wrote.
    let old = Fence {
        resource: Term::str("counter"),
        token: 1,
    };
    let refused = kv[1].put_fenced(&mut me, &"n".into(), &0, &old);
    assert!(
        matches!(refused, Err(KvError::StaleToken { token: 1, .. })),
        "{refused:?}"
    );
}
