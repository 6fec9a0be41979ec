//! global across nodes running as OS processes: concurrent registration, names freed on
//! exit and on node death, locks.
mod support;

use oxbeam::dist::global::LockWait;
use oxbeam::dist::{global, rpc};
use oxbeam::rt::StartError;
use oxbeam::term::{Atom, Term, term};
use support::{NodeProc, SOON, net, private_mapper, test_cookie};

#[test]
fn concurrent_registration_has_exactly_one_winner_every_round() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let n1 = NodeProc::start("gl1n1", &cookie, epmd, &[]);
    let n2 = NodeProc::start("gl1n2", &cookie, epmd, &["--connect", "gl1n1@localhost"]);
    let mut n3 = NodeProc::start("gl1n3", &cookie, epmd, &["--connect", "gl1n1@localhost"]);
    let ctl = net("gl1ctl", epmd, &cookie);
    oxbeam::dist::start(&ctl).unwrap();
    assert!(ctl.connect(&n1.name).is_ok());
    support::wait_for("the mesh", SOON, || (ctl.nodes().len() == 3, ctl.nodes()));
    let mut me = ctl.node().attach();
    assert!(global::sync(&mut me, SOON).is_ok());
    let nodes: Vec<Atom> = [&n1, &n2, &n3].iter().map(|n| Atom::new(&n.name)).collect();
    let my = me.pid();
    const ROUNDS: usize = 100;
    for round in 0..ROUNDS {
        let name = Atom::new(&format!("contested_{round}"));
        let mut pids = Vec::new();
        for n in &nodes {
            let mfa = (
                Atom::new("oxbeam_test"),
                Atom::new("global_register"),
                vec![Term::Atom(name), Term::Pid(my)],
            );
            pids.push(
                ctl.spawn(&mut me, *n, mfa, oxbeam::node::SpawnRequest::default())
                    .unwrap()
                    .0,
            );
        }
        let mut yes = Vec::new();
        for _ in 0..3 {
            let m = me
                .receive_match(|m| m.tagged("registered").is_some(), Some(SOON))
                .expect("every registrant reports");
            let r = m.tagged("registered").unwrap().to_vec();
            if r[1].is_atom("yes") {
                yes.push(r[0].clone());
            }
        }
        assert_eq!(yes.len(), 1, "round {round}: winners {yes:?}");
        // Every node agrees on the holder.
        let holder = global::whereis_name(ctl.node(), name).expect("registered");
        for n in &nodes {
            let seen = rpc::call(
                &mut me,
                *n,
                Atom::new("global"),
                Atom::new("whereis_name"),
                vec![Term::Atom(name)],
                Some(SOON),
            );
            assert_eq!(seen, Ok(Term::Pid(holder)), "round {round} on {n}");
        }
        for p in pids {
            me.send(p, term!(:stop));
        }
        // The name goes with its process.
        support::wait_for("name freed", SOON, || {
            (global::whereis_name(ctl.node(), name).is_none(), name)
        });
    }
    // A name whose node is killed goes too.
    let name = Atom::new("on_n3");
    let mfa = (
        Atom::new("oxbeam_test"),
        Atom::new("global_register"),
        vec![Term::Atom(name), Term::Pid(my)],
    );
    ctl.spawn(
        &mut me,
        Atom::new(&n3.name),
        mfa,
        oxbeam::node::SpawnRequest::default(),
    )
    .unwrap();
    me.receive_match(|m| m.tagged("registered").is_some(), Some(SOON))
        .unwrap();
    assert!(global::whereis_name(ctl.node(), name).is_some());
    n3.kill();
    support::wait_for("name freed on node death", SOON, || {
        (global::whereis_name(ctl.node(), name).is_none(), name)
    });
    drop(me);
    ctl.shutdown();
}

#[test]
fn locks_exclude_and_are_freed_when_the_holder_dies() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let a = net("gl2a", epmd, &cookie);
    let b = net("gl2b", epmd, &cookie);
    for n in [&a, &b] {
        oxbeam::dist::start(n).unwrap();
    }
    let mut ma = a.node().attach();
    let mut mb = b.node().attach();
    let (pa, pb) = (ma.pid(), mb.pid());
    // connect returns once global has synced with the peer.
    assert!(oxbeam::dist::connect(&mut ma, &a, "gl2b@localhost", SOON).is_ok());
    assert!(global::sync(&mut mb, SOON).is_ok());
    assert!(global::set_lock(&mut ma, (term!(:res), pa), 0).is_ok());
    assert_eq!(
        global::set_lock(&mut mb, (term!(:res), pb), 3),
        Err(oxbeam::dist::LockError::Busy { attempts: 4 }),
        "b can't take a's lock (the first attempt and 3 retries)"
    );
    global::del_lock(&mut ma, (term!(:res), pa));
    assert!(global::set_lock(&mut mb, (term!(:res), pb), LockWait::Infinity).is_ok());
    // A holder that dies releases its locks.
    let node_b = b.node().clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut holder = node_b.attach();
        let id = global::LockId::own(&holder, term!(:res2));
        tx.send(global::set_lock(&mut holder, id, LockWait::Infinity).is_ok())
            .unwrap();
        // `holder` is dropped here: the process exits.
    })
    .join()
    .unwrap();
    assert!(rx.recv().unwrap());
    support::wait_for("lock freed", SOON, || {
        (global::set_lock(&mut ma, (term!(:res2), pa), 0).is_ok(), ())
    });
    // A shared counter under trans from two nodes: no lost update.
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let mut handles = Vec::new();
    for node in [a.node().clone(), b.node().clone()] {
        let counter = counter.clone();
        handles.push(std::thread::spawn(move || {
            let mut me = node.attach();
            let id = global::LockId::own(&me, term!(:counter));
            for _ in 0..200 {
                global::trans(&mut me, id.clone(), LockWait::Infinity, |_| {
                    let v = counter.load(std::sync::atomic::Ordering::SeqCst);
                    std::thread::yield_now();
                    counter.store(v + 1, std::sync::atomic::Ordering::SeqCst);
                })
                .unwrap();
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(counter.load(std::sync::atomic::Ordering::SeqCst), 400);
    drop((ma, mb));
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_healed_partition_resolves_conflicting_names_the_same_way_everywhere() {
    use oxbeam::rt::{Ctx, Flow};
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let a = net("gl3a", epmd, &cookie);
    let b = net("gl3b", epmd, &cookie);
    for n in [&a, &b] {
        oxbeam::dist::start(n).unwrap();
    }
    assert!(a.connect("gl3b@localhost").is_ok());
    let mut ma = a.node().attach();
    let mut mb = b.node().attach();
    assert!(global::sync(&mut ma, SOON).is_ok() && global::sync(&mut mb, SOON).is_ok());
    // Partition.
    assert!(a.disconnect(Atom::new("gl3b@localhost")));
    support::wait_for("partition", SOON, || {
        (a.nodes().is_empty() && b.nodes().is_empty(), ())
    });
    support::wait_for("servers forget each other", SOON, || {
        (
            global::sync(&mut ma, SOON).is_ok() && global::sync(&mut mb, SOON).is_ok(),
            (),
        )
    });
    let idle = |_: &mut Ctx, m: Term| {
        if m.is_atom("stop") {
            Flow::stop_normal()
        } else {
            Flow::Continue
        }
    };
    let (pa, pb) = (a.node().spawn(idle), b.node().spawn(idle));
    let (dup, dup2) = (Atom::new("dup"), Atom::new("dup_notify"));
    assert!(global::register_name(&mut ma, dup, pa).is_ok());
    assert!(global::register_name(&mut mb, dup, pb).is_ok());
    let (ma_pid, mb_pid) = (ma.pid(), mb.pid());
    assert!(global::register_name_with(&mut ma, dup2, ma_pid, global::Resolver::NotifyAll).is_ok());
    assert!(global::register_name_with(&mut mb, dup2, mb_pid, global::Resolver::NotifyAll).is_ok());
    // A user resolver (registered on both nodes): keep the larger pid.
    let dup3 = Atom::new("dup_fun");
    let resolver = global::Resolver::Function(Atom::new("res"), Atom::new("keep_larger"));
    for n in [&a, &b] {
        n.node().functions().register(
            Atom::new("res"),
            Atom::new("keep_larger"),
            3,
            |_: &mut Ctx, args: Vec<Term>| args[2].clone(),
        );
    }
    let (ra, rb) = (a.node().spawn(idle), b.node().spawn(idle));
    assert!(global::register_name_with(&mut ma, dup3, ra, resolver).is_ok());
    assert!(global::register_name_with(&mut mb, dup3, rb, resolver).is_ok());
    // Heal.
    assert!(a.connect("gl3b@localhost").is_ok());
    support::wait_for("the resolver's choice everywhere", SOON, || {
        let (x, y) = (
            global::whereis_name(a.node(), dup3),
            global::whereis_name(b.node(), dup3),
        );
        (x == Some(ra.max(rb)) && y == Some(ra.max(rb)), (x, y))
    });
    assert!(
        a.node().is_alive(ra) && b.node().is_alive(rb),
        "a user resolver kills no one itself"
    );
    let keep = pa.min(pb);
    let lose = pa.max(pb);
    support::wait_for("one holder everywhere", SOON, || {
        let (x, y) = (
            global::whereis_name(a.node(), dup),
            global::whereis_name(b.node(), dup),
        );
        (x == Some(keep) && y == Some(keep), (x, y))
    });
    let lose_node = if a.node().is_local(lose) {
        a.node()
    } else {
        b.node()
    };
    support::wait_for("the other one killed", SOON, || {
        (!lose_node.is_alive(lose), lose)
    });
    // notify_all_name: the name is gone on both sides and both holders are told.
    support::wait_for("notify resolved", SOON, || {
        let gone = global::whereis_name(a.node(), dup2).is_none()
            && global::whereis_name(b.node(), dup2).is_none();
        (gone, ())
    });
    for m in [&mut ma, &mut mb] {
        let note = m
            .receive_match(|t| t.tagged("global_name_conflict").is_some(), Some(SOON))
            .expect("conflict notice");
        assert_eq!(note.as_tuple().unwrap()[1], Term::Atom(dup2));
    }
    drop((ma, mb));
    a.shutdown();
    b.shutdown();
}

#[test]
fn global_genservers_re_registration_and_with_lock() {
    use oxbeam::rt::Ctx;
    use oxbeam::rt::gen_server::{CallReply, GenServer, ReplyTo};
    struct Answer(i64);
    impl GenServer for Answer {
        fn handle_call(&mut self, _: &mut Ctx, _: Term, _: ReplyTo) -> CallReply {
            CallReply::Reply(Term::Int(self.0))
        }
    }
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let a = net("gl4a", epmd, &cookie);
    let b = net("gl4b", epmd, &cookie);
    for n in [&a, &b] {
        oxbeam::dist::start(n).unwrap();
    }
    assert!(a.connect("gl4b@localhost").is_ok());
    let mut ma = a.node().attach();
    let pa = ma.pid();
    let mut mb = b.node().attach();
    assert!(global::sync(&mut ma, SOON).is_ok() && global::sync(&mut mb, SOON).is_ok());
    let name = Atom::new("answer");
    let first = global::start_server(&mut ma, Answer(42), name).unwrap();
    // From the other node, by global name.
    assert_eq!(
        global::call(&mut mb, name, term!(:q), Some(SOON)),
        Ok(Term::Int(42))
    );
    let dup = global::start_server(&mut mb, Answer(7), name).unwrap_err();
    assert_eq!(dup, StartError::AlreadyStarted(first));
    // One name per pid, as in OTP.
    assert_eq!(
        global::register_name(&mut ma, Atom::new("second_name"), first),
        Err(oxbeam::dist::GlobalRegisterError::AlreadyNamed)
    );
    // re_register moves the name.
    let second = oxbeam::rt::gen_server::start(b.node(), Answer(7), None).unwrap();
    global::re_register_name(&mut mb, name, second);
    support::wait_for("moved everywhere", SOON, || {
        (global::whereis_name(a.node(), name) == Some(second), ())
    });
    assert_eq!(
        global::call(&mut ma, name, term!(:q), Some(SOON)),
        Ok(Term::Int(7))
    );
    // A locally registered server on another node, called as {name, node}.
    oxbeam::rt::gen_server::start(b.node(), Answer(9), Some(Atom::new("local_answer"))).unwrap();
    let at = oxbeam::rt::Dest::NameAt(Atom::new("local_answer"), b.name());
    assert_eq!(
        oxbeam::rt::gen_server::call(&mut ma, at, term!(:q), Some(SOON)),
        Ok(Term::Int(9))
    );
    // with_lock: held by a, b times out; released after.
    assert!(global::set_lock(&mut ma, (term!(:r), pa), 0).is_ok());
    assert_eq!(
        global::with_lock(
            &mut mb,
            term!(:r),
            std::time::Duration::from_millis(200),
            |_| 1
        ),
        Err(oxbeam::dist::LockError::Timeout)
    );
    global::del_lock(&mut ma, (term!(:r), pa));
    assert_eq!(global::with_lock(&mut mb, term!(:r), SOON, |_| 1), Ok(1));
    drop((ma, mb));
    a.shutdown();
    b.shutdown();
}

#[test]
fn lock_contention_from_three_nodes_loses_no_update_and_a_killed_holder_frees_it() {
    use oxbeam::rt::{Ctx, Flow};
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let nodes: Vec<NodeProc> = (1..=3)
        .map(|i| {
            let extra: &[&str] = if i == 1 {
                &[]
            } else {
                &["--connect", "gl5n1@localhost"]
            };
            NodeProc::start(&format!("gl5n{i}"), &cookie, epmd, extra)
        })
        .collect();
    let ctl = net("gl5ctl", epmd, &cookie);
    oxbeam::dist::start(&ctl).unwrap();
    assert!(ctl.connect(&nodes[0].name).is_ok());
    support::wait_for("the mesh", SOON, || (ctl.nodes().len() == 3, ctl.nodes()));
    let mut me = ctl.node().attach();
    assert!(global::sync(&mut me, SOON).is_ok());
    // The counter lives here; it answers gets and sets, knowing nothing of locks.
    let mut value = 0i64;
    let counter = ctl.node().spawn(move |ctx: &mut Ctx, m: Term| {
        if let Some([Term::Pid(from)]) = m.tagged("get") {
            ctx.send(*from, value);
        } else if let Some([Term::Int(v), Term::Pid(from)]) = m.tagged("set") {
            value = *v;
            ctx.send(*from, term!(:ok));
        } else if let Some([Term::Pid(from)]) = m.tagged("read") {
            ctx.send(*from, term!({:value, value}));
        }
        Flow::Continue
    });
    const K: i64 = 50;
    let my = me.pid();
    for n in &nodes {
        let mfa = (
            Atom::new("oxbeam_test"),
            Atom::new("locked_increments"),
            vec![Term::Pid(counter), Term::Int(K), Term::Pid(my)],
        );
        ctl.spawn(
            &mut me,
            Atom::new(&n.name),
            mfa,
            oxbeam::node::SpawnRequest::default(),
        )
        .unwrap();
    }
    for _ in 0..3 {
        me.receive_match(|m| m.tagged("done").is_some(), Some(SOON * 6))
            .expect("every node finishes");
    }
    me.send(counter, term!({:read, my}));
    let v = me
        .receive_match(|m| m.tagged("value").is_some(), Some(SOON))
        .unwrap();
    assert_eq!(v, term!({:value, (3 * K)}), "no lost update");
    // A lock held by a process on a node that is then killed is freed.
    let mut victim = NodeProc::start(
        "gl5victim",
        &cookie,
        epmd,
        &["--connect", "gl5n1@localhost"],
    );
    support::wait_for("victim in the mesh", SOON, || {
        (ctl.nodes().len() == 4, ctl.nodes())
    });
    assert!(global::sync(&mut me, SOON).is_ok());
    let mfa = (
        Atom::new("oxbeam_test"),
        Atom::new("hold_lock"),
        vec![term!(:held), Term::Pid(my)],
    );
    ctl.spawn(
        &mut me,
        Atom::new(&victim.name),
        mfa,
        oxbeam::node::SpawnRequest::default(),
    )
    .unwrap();
    me.receive_match(|m| m.tagged("locked").is_some(), Some(SOON))
        .expect("the victim holds the lock");
    assert!(global::set_lock(&mut me, (term!(:held), my), 2).is_err());
    victim.kill();
    support::wait_for("lock freed", SOON, || {
        (global::set_lock(&mut me, (term!(:held), my), 0).is_ok(), ())
    });
    drop(me);
    ctl.shutdown();
}

/// `sync` is a round trip to the servers, not a poll of this node's view: when it
/// returns true, each side already holds the other's names (registered before the
/// nodes met), with nothing more to wait for.
#[test]
fn sync_returns_with_both_sides_holding_each_others_names() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    for round in 0..20 {
        let a = net(&format!("gls{round}a"), epmd, &cookie);
        let b = net(&format!("gls{round}b"), epmd, &cookie);
        for n in [&a, &b] {
            oxbeam::dist::start(n).unwrap();
        }
        let mut ma = a.node().attach();
        let mut mb = b.node().attach();
        let (on_a, on_b) = (Atom::new("sync_on_a"), Atom::new("sync_on_b"));
        let (pa, pb) = (ma.pid(), mb.pid());
        assert!(global::register_name(&mut ma, on_a, pa).is_ok());
        assert!(global::register_name(&mut mb, on_b, pb).is_ok());
        assert!(a.connect(b.name().as_str()).is_ok());
        assert!(global::sync(&mut ma, SOON).is_ok(), "round {round}");
        assert_eq!(global::whereis_name(a.node(), on_b), Some(pb));
        assert_eq!(global::whereis_name(b.node(), on_a), Some(pa));
        // Nothing left behind in the caller's mailbox.
        assert_eq!(ma.flush(), vec![]);
        drop((ma, mb));
        a.shutdown();
        b.shutdown();
    }
}

/// A connected node without a name server holds `sync` up for exactly its timeout
/// (false, and no late reply left in the mailbox); a node that goes away while a sync
/// waits for it does not hold it up.
#[test]
fn sync_is_bounded_by_its_timeout_and_not_held_up_by_a_node_that_goes() {
    use std::time::{Duration, Instant};
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let a = net("glsta", epmd, &cookie);
    oxbeam::dist::start(&a).unwrap();
    // No name server on this one.
    let bare = net("glstbare", epmd, &cookie);
    assert!(a.connect("glstbare@localhost").is_ok());
    let mut me = a.node().attach();
    let timeout = Duration::from_millis(300);
    let t0 = Instant::now();
    assert_eq!(
        global::sync(&mut me, timeout),
        Err(oxbeam::dist::SyncError::Timeout)
    );
    let took = t0.elapsed();
    assert!(
        took >= timeout && took < timeout + SOON,
        "took {took:?} for a {timeout:?} timeout"
    );
    assert_eq!(me.flush(), vec![]);

    let (tx, rx) = std::sync::mpsc::channel();
    let node = a.node().clone();
    let waiter = std::thread::spawn(move || {
        let mut w = node.attach();
        tx.send(w.pid()).unwrap();
        let t0 = Instant::now();
        (
            global::sync(&mut w, Duration::from_secs(120)).is_ok(),
            t0.elapsed(),
        )
    });
    let pid = rx.recv().unwrap();
    support::wait_for("the sync to wait", SOON, || {
        let status = a
            .node()
            .process_summaries()
            .into_iter()
            .find(|p| p.pid == pid)
            .map(|p| p.status);
        (status == Some("waiting"), status)
    });
    bare.shutdown();
    let (synced, took) = waiter.join().unwrap();
    assert!(
        synced,
        "once the node has gone, nothing is left to wait for"
    );
    assert!(took < Duration::from_secs(60), "took {took:?}");
    drop(me);
    a.shutdown();
}
