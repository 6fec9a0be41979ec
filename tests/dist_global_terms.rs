//! global as OTP 25 has it, between nodes in this process over loopback: names that
//! are any term (the capstone's `{:global, {:user, name}}`), and locks with OTP's id
//! `{ResourceId, LockRequesterId}`, its `Nodes` argument and a millisecond timeout.
mod support;

use std::time::{Duration, Instant};

use oxbeam::dist::global::{self, LockId, LockNodes, LockWait};
use oxbeam::dist::{GlobalRegisterError, LockError};
use oxbeam::rt::server::{Reply, ReplyTo, Server};
use oxbeam::rt::{Ctx, Dest, ServerRef, StartError};
use oxbeam::term::{Atom, Term};
use oxbeam::{Pid, term};
use support::{SOON, net, private_mapper, test_cookie};

/// Two connected nodes, global synced on both.
fn pair(prefix: &str) -> (oxbeam::node::Net, oxbeam::node::Net, support::PortMapper) {
    let (mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let a = net(&format!("{prefix}a"), epmd, &cookie);
    let b = net(&format!("{prefix}b"), epmd, &cookie);
    for n in [&a, &b] {
        oxbeam::dist::start(n).unwrap();
    }
    let mut ma = a.node().attach();
    let peer = format!("{prefix}b@localhost");
    assert!(oxbeam::dist::connect(&mut ma, &a, &peer, SOON).is_ok());
    let mut mb = b.node().attach();
    assert!(global::sync(&mut mb, SOON).is_ok());
    (a, b, mapper)
}

/// A process on `node` that waits for `:stop`.
fn idle(node: &oxbeam::rt::Node) -> Pid {
    node.spawn(|_: &mut Ctx, m: Term| {
        if m.is_atom("stop") {
            oxbeam::rt::Flow::stop_normal()
        } else {
            oxbeam::rt::Flow::Continue
        }
    })
}

#[test]
fn any_term_is_a_global_name() {
    let (a, b, _mapper) = pair("gt1");
    let mut ma = a.node().attach();
    let mut mb = b.node().attach();
    let alice = term!({:user, "alice"});
    let p = idle(a.node());
    assert_eq!(global::register_name(&mut ma, &alice, p), Ok(()));
    // Seen from the other node at once (registration returns once every node has it).
    assert_eq!(global::whereis_name(b.node(), &alice), Some(p));
    assert_eq!(global::registered_names(b.node()), vec![alice.clone()]);
    // Taken: `no` (NameTaken), whoever asks; a pid with a name can't take another.
    let q = idle(b.node());
    assert_eq!(
        global::register_name(&mut mb, &alice, q),
        Err(GlobalRegisterError::NameTaken)
    );
    assert_eq!(
        global::register_name(&mut mb, term!({:user, "bob"}), p),
        Err(GlobalRegisterError::AlreadyNamed)
    );
    // Names that differ only in their parts are different names.
    assert_eq!(
        global::register_name(&mut mb, term!({:user, "bob"}), q),
        Ok(())
    );
    assert_eq!(
        global::whereis_name(a.node(), term!({:user, "bob"})),
        Some(q)
    );
    assert_eq!(
        global::whereis_name(a.node(), term!({:user, "carol"})),
        None
    );
    // Sends by name, from either node, through global::send and through Dest::Global.
    assert_eq!(
        mb.send_to(Dest::global(alice.clone()), term!({:hi, 1})),
        Ok(())
    );
    assert_eq!(global::send(&mb, &alice, term!({:hi, 2})), Ok(p));
    let missing = global::send(&mb, term!({:user, "carol"}), 1).unwrap_err();
    assert_eq!(
        missing,
        oxbeam::rt::SendError::NotRegisteredGlobally(term!({:user, "carol"}))
    );
    // The name goes with its process, on every node.
    ma.send(p, Term::atom("stop"));
    support::wait_for("the name freed on b", SOON, || {
        let w = global::whereis_name(b.node(), &alice);
        (w.is_none(), w)
    });
    global::unregister_name(&mut mb, term!({:user, "bob"}));
    assert_eq!(global::whereis_name(a.node(), term!({:user, "bob"})), None);
    drop((ma, mb));
    a.shutdown();
    b.shutdown();
}

/// The capstone's rooms: a typed server per room, named `{:room, name}` cluster-wide.
struct Room(Vec<String>);

impl Server for Room {
    type Call = Option<String>;
    type Reply = Vec<String>;
    type Cast = ();
    fn handle_call(&mut self, _: &mut Ctx, post: Option<String>, _: ReplyTo) -> Reply<Vec<String>> {
        self.0.extend(post);
        Reply::Now(self.0.clone())
    }
}

#[test]
fn typed_servers_by_term_names_across_nodes() {
    let (a, b, _mapper) = pair("gt2");
    let mut ma = a.node().attach();
    let mut mb = b.node().attach();
    let lobby = term!({:room, "lobby"});
    let room = global::start_typed(&mut ma, Room(Vec::new()), &lobby).unwrap();
    assert_eq!(room.dest(), &Dest::Global(lobby.clone()));
    // From the other node, by the same name.
    let there = ServerRef::<Room>::global(lobby.clone());
    assert_eq!(
        there.call(&mut mb, Some("hello".into()), SOON),
        Ok(vec!["hello".to_string()])
    );
    assert_eq!(
        room.call(&mut ma, Some("hi".into()), SOON),
        Ok(vec!["hello".to_string(), "hi".to_string()])
    );
    // A second room by that name: already started, with the holder.
    let holder = global::whereis_name(b.node(), &lobby).unwrap();
    match global::start_typed(&mut mb, Room(Vec::new()), &lobby) {
        Err(StartError::AlreadyStarted(p)) => assert_eq!(p, holder),
        other => panic!(
            "expected already_started, got {:?}",
            other.map(|r| r.dest().clone())
        ),
    }
    // Untyped calls by term name too.
    let reply = global::call(&mut mb, &lobby, term!({:Some, "x"}), Some(SOON));
    assert!(reply.is_ok(), "{reply:?}");
    // A call to a missing name: noproc at once.
    let none = ServerRef::<Room>::global(term!({:room, "nowhere"}));
    assert_eq!(
        none.call(&mut mb, None, SOON),
        Err(oxbeam::rt::gen_server::CallError::NoProc)
    );
    drop((ma, mb));
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_resource_held_by_one_requester_excludes_every_other() {
    let (a, b, _mapper) = pair("gt3");
    let mut ma = a.node().attach();
    let mut mb = b.node().attach();
    let res = Term::atom("res");
    // The chapter's check: the same process, two requester ids: true, then false.
    assert_eq!(
        global::set_lock(&mut ma, (res.clone(), Term::atom("a")), 0),
        Ok(())
    );
    assert_eq!(
        global::set_lock(&mut ma, (res.clone(), Term::atom("b")), 0),
        Err(LockError::Busy { attempts: 1 })
    );
    // The same requester id is shared: a process on the other node joins the holders.
    assert_eq!(
        global::set_lock(&mut mb, (res.clone(), Term::atom("a")), 0),
        Ok(())
    );
    // Taking it again is fine (OTP's `true`).
    assert_eq!(
        global::set_lock(&mut ma, (res.clone(), Term::atom("a")), 0),
        Ok(())
    );
    // One holder lets go: still held under `:a`, so `:b` is still refused.
    global::del_lock(&mut ma, (res.clone(), Term::atom("a")));
    assert!(global::set_lock(&mut ma, (res.clone(), Term::atom("b")), 0).is_err());
    // Releasing under another requester's id does nothing.
    global::del_lock(&mut mb, (res.clone(), Term::atom("b")));
    assert!(global::set_lock(&mut ma, (res.clone(), Term::atom("b")), 0).is_err());
    // The last holder goes: free for `:b`.
    global::del_lock(&mut mb, (res.clone(), Term::atom("a")));
    support::wait_for("the resource freed", SOON, || {
        let r = global::set_lock(&mut ma, (res.clone(), Term::atom("b")), 0);
        (r.is_ok(), r)
    })
    .unwrap();
    global::del_lock(&mut ma, (res.clone(), Term::atom("b")));
    // The chapter's LockManager: `{resource, self()}` from two processes excludes.
    let db = Term::atom("database");
    let (pa, pb) = (ma.pid(), mb.pid());
    assert_eq!(global::set_lock(&mut ma, (db.clone(), pa), 0), Ok(()));
    assert!(global::set_lock(&mut mb, (db.clone(), pb), 2).is_err());
    // A holder that dies lets go; the resource is free once no holder is left.
    let node_a = a.node().clone();
    let shared = LockId::new(Term::atom("shared"), Term::atom("team"));
    let (tx, rx) = std::sync::mpsc::channel();
    let id = shared.clone();
    std::thread::spawn(move || {
        let mut holder = node_a.attach();
        tx.send(global::set_lock(&mut holder, id, 0)).unwrap();
    })
    .join()
    .unwrap();
    assert_eq!(rx.recv().unwrap(), Ok(()));
    support::wait_for("the dead holder's share released", SOON, || {
        let r = global::set_lock(&mut mb, (Term::atom("shared"), Term::atom("other")), 0);
        (r.is_ok(), r)
    })
    .unwrap();
    drop((ma, mb));
    a.shutdown();
    b.shutdown();
}

#[test]
fn the_nodes_argument_takes_the_lock_on_those_nodes_only() {
    let (a, b, _mapper) = pair("gt4");
    let mut ma = a.node().attach();
    let mut mb = b.node().attach();
    let (na, nb) = (a.name(), b.name());
    let res = Term::atom("disk");
    // Disjoint node sets: both get it (as OTP: each lock lives where it was taken).
    assert_eq!(
        global::set_lock_on(&mut ma, (res.clone(), Term::atom("x")), vec![na], 0),
        Ok(())
    );
    assert_eq!(
        global::set_lock_on(&mut mb, (res.clone(), Term::atom("y")), vec![nb], 0),
        Ok(())
    );
    // Overlapping ones: refused.
    assert!(global::set_lock(&mut mb, (res.clone(), Term::atom("z")), 0).is_err());
    assert!(global::set_lock_on(&mut mb, (res.clone(), Term::atom("z")), vec![na], 0).is_err());
    // No nodes at all: trivially held (OTP answers true).
    assert_eq!(
        global::set_lock_on(
            &mut mb,
            (res.clone(), Term::atom("z")),
            LockNodes::Only(vec![]),
            0
        ),
        Ok(())
    );
    // Released where it was taken only: `y` on b stays.
    global::del_lock_on(&mut ma, (res.clone(), Term::atom("x")), vec![na]);
    support::wait_for("x released on a", SOON, || {
        let r = global::set_lock_on(&mut ma, (res.clone(), Term::atom("w")), vec![na], 0);
        (r.is_ok(), r)
    })
    .unwrap();
    assert!(global::set_lock_on(&mut ma, (res.clone(), Term::atom("w")), vec![nb], 0).is_err());
    drop((ma, mb));
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_lock_timeout_is_honoured_in_milliseconds() {
    let (a, b, _mapper) = pair("gt5");
    let mut ma = a.node().attach();
    let mut mb = b.node().attach();
    let id = (Term::atom("slow"), ma.pid());
    assert_eq!(global::set_lock(&mut ma, id.clone(), 0), Ok(()));
    let wait = Duration::from_millis(150);
    let began = Instant::now();
    let pb = mb.pid();
    let r = global::set_lock(&mut mb, (Term::atom("slow"), pb), wait);
    let took = began.elapsed();
    assert_eq!(r, Err(LockError::Timeout));
    assert!(took >= wait, "gave up early: {took:?}");
    // Generous: a loaded CI machine can be slow to schedule; the sleeps are cut to
    // what is left, so an unloaded run answers within a few ms of the timeout.
    assert!(took < wait + Duration::from_secs(2), "took {took:?}");
    // Released while a waiter waits: the waiter gets it well before its timeout.
    let node_b = b.node().clone();
    let waiter = std::thread::spawn(move || {
        let mut w = node_b.attach();
        let id = LockId::own(&w, Term::atom("slow"));
        global::set_lock(&mut w, id, LockWait::Timeout(Duration::from_secs(20)))
    });
    global::del_lock(&mut ma, id);
    assert_eq!(waiter.join().unwrap(), Ok(()));
    // with_lock is `{resource, self()}` with a timeout.
    assert_eq!(
        global::with_lock(&mut ma, Term::atom("fresh"), SOON, |_| 7),
        Ok(7)
    );
    drop((ma, mb));
    a.shutdown();
    b.shutdown();
}

#[test]
fn names_are_atoms_when_written_as_strs() {
    // `register_name(ctx, "counter", pid)` is the atom `:counter`, as in Elixir.
    let node = support::node(1);
    oxbeam::dist::global::start(&node).unwrap();
    let mut me = node.attach();
    let p = idle(&node);
    assert_eq!(global::register_name(&mut me, "counter", p), Ok(()));
    assert_eq!(global::whereis_name(&node, Atom::new("counter")), Some(p));
    assert_eq!(global::whereis_name(&node, Term::atom("counter")), Some(p));
    assert_eq!(global::registered_names(&node), vec![Term::atom("counter")]);
    me.send(p, Term::atom("stop"));
    drop(me);
    node.shutdown();
}
