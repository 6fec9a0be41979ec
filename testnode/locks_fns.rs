//! `oxbeam_test_locks`: the lock service and a KV table on test nodes, for
//! `tests/fault_locks_fencing.rs`: `start(nodes)`, and `incr_loop(n, collector)`: `n`
//! times, under `with_lock(:counter)`, reads the counter linearizably, works 20 ms, and
//! writes counter + 1 fenced with its token; it tells the collector
//! `{:acquired, node(), token}`, then `{:incr, node(), token, value}` or
//! `{:fenced, node(), token}` (the write was refused: a newer token wrote first) or
//! `{:refused, node(), token, why}` (it failed otherwise: not applied, or unknown).

use std::time::Duration;

use oxbeam::everywhere::Service;
use oxbeam::kv::{KvError, Table};
use oxbeam::locks::Locks;
use oxbeam::rt::{Ctx, Node};
use oxbeam::term::{Atom, Term, term};

const NAME: &str = "fl";
const KEY: &str = "counter";

/// Registers the `oxbeam_test_locks` functions on `node`.
pub fn register(node: &Node) {
    let f = node.functions();
    let m = Atom::new("oxbeam_test_locks");
    f.register(m, Atom::new("start"), 1, |ctx: &mut Ctx, args| {
        crate::services::start(ctx, &[Service::Locks, Service::Kv], NAME, &args[0])
    });
    f.register(m, Atom::new("read"), 0, |ctx: &mut Ctx, _| {
        match Table::<String, i64>::open(ctx.node(), NAME).map(|kv| kv.get(ctx, &KEY.to_string())) {
            Ok(Ok(v)) => Term::Int(v.map_or(0, |(v, _)| v)),
            _ => term!(:error),
        }
    });
    f.register(m, Atom::new("incr_loop"), 2, |ctx: &mut Ctx, args| {
        let (Some(n), Some(collector)) = (args[0].as_int(), args[1].as_pid()) else {
            return term!(:badarg);
        };
        let (Ok(locks), Ok(kv)) = (
            Locks::open(ctx.node(), NAME),
            Table::<String, i64>::open(ctx.node(), NAME),
        ) else {
            return term!(:not_started);
        };
        let here = ctx.node().name();
        let key = KEY.to_string();
        for _ in 0..n {
            let _ = locks.with_lock(ctx, "counter", Duration::from_secs(30), |ctx, lease| {
                let token = lease.token as i64;
                ctx.send(collector, term!({:acquired, here, token}));
                let value = match kv.get(ctx, &key) {
                    Ok(v) => v.map_or(0, |(v, _)| v),
                    Err(e) => {
                        let why = format!("the read failed: {e}");
                        ctx.send(collector, term!({:refused, here, token, why}));
                        return;
                    }
                };
                ctx.receive_match(|_| false, Some(Duration::from_millis(20)));
                match kv.put_fenced(ctx, &key, &(value + 1), &lease.fence()) {
                    Ok(_) => ctx.send(collector, term!({:incr, here, token, (value + 1)})),
                    Err(KvError::StaleToken { .. }) => {
                        ctx.send(collector, term!({:fenced, here, token}))
                    }
                    // Not applied either (a stale leader's entry replaced, say).
                    Err(e) => ctx.send(collector, term!({:refused, here, token, (e.to_string())})),
                }
            });
        }
        ctx.send(collector, term!({:loop_done, here}));
        term!(:ok)
    });
}
