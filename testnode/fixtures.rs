//! `oxbeam_test`: the functions the tests spawn and call on a test node.
//!
//! `echo/0`, `echo_named/1`, `sink/0`, `pg_join/1`, `global_register/2`,
//! `locked_increments/3`, `hold_lock/2`, `crash/0`, `sleep/1` (blocks a worker thread),
//! `exit_with/1`, `link_to/1`; each documented where it is registered.

use std::time::Duration;

use oxbeam::rt::{Ctx, Node};
use oxbeam::term::{Atom, Term, term};

/// Registers the `oxbeam_test` functions on `node`.
pub fn register(node: &Node) {
    let f = node.functions();
    let test = Atom::new("oxbeam_test");
    // Echo: {from, x} -> x back to from; :stop ends it.
    fn echo_loop(ctx: &mut Ctx) {
        loop {
            let m = ctx.receive();
            match m.as_tuple() {
                Some([Term::Pid(from), x]) => ctx.send(*from, x.clone()),
                _ if m.is_atom("stop") => return,
                _ => {}
            }
        }
    }
    f.register(test, Atom::new("echo"), 0, |ctx: &mut Ctx, _| {
        echo_loop(ctx);
        Term::ok()
    });
    f.register(
        test,
        Atom::new("echo_named"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| {
            if let Some(name) = args[0].as_atom() {
                let _ = ctx.register(name);
            }
            echo_loop(ctx);
            Term::ok()
        },
    );
    // Sink: counts {:seq, n} messages and checks they arrive in order;
    // {:count, from} -> {:count, n, in_order} to from.
    f.register(test, Atom::new("sink"), 0, |ctx: &mut Ctx, _| {
        let (mut n, mut in_order) = (0i64, true);
        loop {
            let m = ctx.receive();
            if let Some([Term::Int(k), ..]) = m.tagged("seq") {
                in_order &= *k == n + 1;
                n += 1;
            } else if let Some([Term::Pid(from)]) = m.tagged("count") {
                ctx.send(*from, term!({:count, n, in_order}));
            } else if m.is_atom("stop") {
                return Term::ok();
            }
        }
    });
    // pg_join(group): joins the default pg scope's `group`, then waits for :stop.
    f.register(
        test,
        Atom::new("pg_join"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| {
            let me = ctx.pid();
            if let Err(e) = oxbeam::dist::pg::join(
                ctx,
                oxbeam::dist::pg::default_scope(),
                args[0].clone(),
                &[me],
            ) {
                return e.into();
            }
            while !ctx.receive().is_atom("stop") {}
            Term::ok()
        },
    );
    // global_register(name, report): registers itself globally as `name` (after a
    // global sync), reports {:registered, node, :yes | :no}, then waits for :stop.
    f.register(
        test,
        Atom::new("global_register"),
        2,
        |ctx: &mut Ctx, args: Vec<Term>| {
            use oxbeam::dist::global;
            let (Some(name), Some(report)) = (args[0].as_atom(), args[1].as_pid()) else {
                return term!(:badarg);
            };
            let _ = global::sync(ctx, Duration::from_secs(10));
            let me = ctx.pid();
            let yes = global::register_name(ctx, name, me).is_ok();
            let node = Term::Atom(ctx.node().name());
            ctx.send(
                report,
                term!({:registered, node, (Term::atom(if yes { "yes" } else { "no" }))}),
            );
            while !ctx.receive().is_atom("stop") {}
            Term::ok()
        },
    );
    // locked_increments(counter, k, report): k read-modify-write increments of a counter
    // process ({:get, from} -> value; {:set, v, from} -> :ok), each under the global
    // lock :counter_lock; then {:done, node} to report.
    f.register(
        test,
        Atom::new("locked_increments"),
        3,
        |ctx: &mut Ctx, args: Vec<Term>| {
            use oxbeam::dist::global;
            let (Some(counter), Some(k), Some(report)) =
                (args[0].as_pid(), args[1].as_int(), args[2].as_pid())
            else {
                return term!(:badarg);
            };
            let _ = global::sync(ctx, Duration::from_secs(10));
            for _ in 0..k {
                let id = global::LockId::own(ctx, term!(:counter_lock));
                let _ = global::trans(ctx, id, global::LockWait::Infinity, |ctx| {
                    let me = ctx.pid();
                    ctx.send(counter, term!({:get, me}));
                    let v = ctx
                        .receive_match(|m| m.as_int().is_some(), None)
                        .and_then(|m| m.as_int())
                        .unwrap_or(0);
                    ctx.send(counter, term!({:set, (v + 1), me}));
                    ctx.receive_match(|m| m.is_atom("ok"), None);
                });
            }
            ctx.send(report, term!({:done, (ctx.node().name())}));
            Term::ok()
        },
    );
    // hold_lock(id, report): takes global lock `id`, reports {:locked, id}, holds it.
    f.register(
        test,
        Atom::new("hold_lock"),
        2,
        |ctx: &mut Ctx, args: Vec<Term>| {
            use oxbeam::dist::global;
            let Some(report) = args[1].as_pid() else {
                return term!(:badarg);
            };
            let _ = global::sync(ctx, Duration::from_secs(10));
            let id = global::LockId::own(ctx, args[0].clone());
            if global::set_lock(ctx, id, global::LockWait::Infinity).is_ok() {
                ctx.send(report, term!({:locked, (args[0].clone())}));
            }
            while !ctx.receive().is_atom("stop") {}
            Term::ok()
        },
    );
    f.register(test, Atom::new("crash"), 0, |_: &mut Ctx, _| {
        panic!("crashed on purpose")
    });
    f.register(
        test,
        Atom::new("sleep"),
        1,
        |_: &mut Ctx, args: Vec<Term>| {
            std::thread::sleep(Duration::from_millis(
                args[0].as_int().unwrap_or(0).max(0) as u64
            ));
            term!(:slept)
        },
    );
    f.register(
        test,
        Atom::new("exit_with"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| ctx.exit(args[0].clone()),
    );
    // Links to the given pid, then waits for messages (:stop ends it normally).
    f.register(
        test,
        Atom::new("link_to"),
        1,
        |ctx: &mut Ctx, args: Vec<Term>| {
            if let Some(p) = args[0].as_pid() {
                let _ = ctx.link(p);
            }
            loop {
                if ctx.receive().is_atom("stop") {
                    return Term::ok();
                }
            }
        },
    );
}
