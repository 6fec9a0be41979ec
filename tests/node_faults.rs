//! Nodes under stress and abuse: a 64 MiB message beside small ones, garbage from a raw
//! client, disconnect, hidden nodes, a node restarted under the same name.
mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use oxbeam::node::{Net, NetConfig};
use oxbeam::rt::Attached;
use oxbeam::term::{Atom, Pid, Term, term};
use support::{NodeProc, SOON, net, private_mapper, refused_port, test_cookie};

fn echo_on(net: &Net, me: &mut Attached, node: &str) -> Pid {
    support::fault::cluster::spawn_on(
        net,
        me,
        node,
        support::fault::cluster::test_fn("echo", vec![]),
    )
}

#[test]
fn a_64_mib_message_does_not_hold_up_small_ones() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let n1 = NodeProc::start("f1n1", &cookie, epmd, &[]);
    let ctl = net("f1ctl", epmd, &cookie);
    assert!(ctl.connect(&n1.name).is_ok());
    let mut me = ctl.node().attach();
    let big_echo = echo_on(&ctl, &mut me, &n1.name);
    let small_echo = echo_on(&ctl, &mut me, &n1.name);
    let payload = Term::binary(&vec![0xAB; 64 << 20]);
    let node = ctl.node().clone();
    let big = std::thread::spawn(move || {
        let mut big_me = node.attach();
        big_me.send(big_echo, (big_me.pid(), payload));
        let back = big_me
            .receive_timeout(Duration::from_secs(60))
            .expect("the big message back");
        (Instant::now(), back.as_bytes().map(|b| b.len()))
    });
    // While it travels (both ways), small round trips keep going: count those that
    // complete before the 64 MiB one is back (on a quiet machine, hundreds).
    let mut during = 0;
    let mut i = 0;
    while !big.is_finished() {
        me.send(small_echo, (me.pid(), i));
        assert_eq!(me.receive_timeout(SOON), Some(Term::Int(i)));
        if !big.is_finished() {
            during += 1;
        }
        i += 1;
    }
    let (_, len) = big.join().unwrap();
    assert_eq!(len, Some(64 << 20));
    assert!(
        during >= 5,
        "only {during} small round trips completed while the 64 MiB message travelled"
    );
    drop(me);
    ctl.shutdown();
}

#[test]
fn garbage_and_oversized_frames_leave_the_node_serving() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let n1 = NodeProc::start("f2n1", &cookie, epmd, &[]);
    let port = oxbeam::node::epmd::port_please(epmd, "f2n1", SOON)
        .unwrap()
        .port;
    let attacks: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.0\r\n\r\n".to_vec(),
        vec![0xff, 0xff, 0xff, 0xff],       // a 4 GiB length prefix
        vec![0, 0, 0, 100, 1, 2, 3],        // a valid prefix, truncated body
        vec![0, 0, 0, 3, 0xde, 0xad, 0xbe], // a frame that is no handshake
        (0..200_000u32).map(|i| (i % 251) as u8).collect(),
    ];
    for bytes in &attacks {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = s.write_all(bytes);
        // The node closes on bad input; a truncated frame is closed by the handshake
        // timeout. Either way this client just goes away.
    }
    // Many half-open handshakes at once.
    let idle: Vec<_> = (0..200)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    let ctl = net("f2ctl", epmd, &cookie);
    assert!(
        ctl.connect(&n1.name).is_ok(),
        "the node still accepts its real peers"
    );
    let mut me = ctl.node().attach();
    let echo = echo_on(&ctl, &mut me, &n1.name);
    me.send(echo, (me.pid(), "still here"));
    assert_eq!(me.receive_timeout(SOON), Some(Term::str("still here")));
    drop(idle);
    drop(me);
    ctl.shutdown();
}

fn cfg(short: &str, epmd: u16, cookie: &str) -> NetConfig {
    let mut c = NetConfig::named(&format!("{short}@localhost"));
    c.cookie = Some(cookie.to_owned());
    c.epmd_port = Some(epmd);
    c.runtime.workers = 2;
    c
}

#[test]
fn disconnect_is_seen_on_both_sides() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let a = net("f3a", epmd, &cookie);
    let b = net("f3b", epmd, &cookie);
    let mut wa = a.node().attach();
    let mut wb = b.node().attach();
    a.monitor_nodes(wa.pid(), oxbeam::node::NodeMonitor::WithReasons);
    b.monitor_nodes(wb.pid(), oxbeam::node::NodeMonitor::On);
    assert!(a.connect("f3b@localhost").is_ok());
    assert_eq!(
        wa.receive_timeout(SOON),
        Some(term!({:nodeup, :"f3b@localhost", []}))
    );
    assert_eq!(
        wb.receive_timeout(SOON),
        Some(term!({:nodeup, :"f3a@localhost"}))
    );
    assert!(a.disconnect(Atom::new("f3b@localhost")));
    let down_a = wa.receive_timeout(SOON).unwrap();
    assert_eq!(
        down_a.to_string(),
        "{:nodedown, :f3b@localhost, [nodedown_reason: :disconnect]}"
    );
    assert_eq!(
        wb.receive_timeout(SOON),
        Some(term!({:nodedown, :"f3a@localhost"}))
    );
    assert!(a.nodes().is_empty() && b.nodes().is_empty());
    drop((wa, wb));
    a.shutdown();
    b.shutdown();
}

/// A process keeps the connection it last sent to another node on (`Ctx::send`): when
/// that connection goes down its next send dials again and arrives, and sending to a
/// third node in between changes nothing about what arrives, or in which order.
#[test]
fn a_senders_kept_connection_is_let_go_when_it_goes_down() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let a = net("f3ka", epmd, &cookie);
    let b = net("f3kb", epmd, &cookie);
    let c = net("f3kc", epmd, &cookie);
    let bname = Atom::new("f3kb@localhost");
    let mut wa = a.node().attach();
    let mut wb = b.node().attach();
    let mut wc = c.node().attach();
    a.monitor_nodes(wa.pid(), oxbeam::node::NodeMonitor::On);
    for i in 0..3 {
        wa.send(wb.pid(), i);
    }
    for i in 0..3 {
        assert_eq!(wb.receive_timeout(SOON), Some(Term::Int(i)));
    }
    assert_eq!(wa.receive_timeout(SOON), Some(term!({:nodeup, bname})));
    assert!(a.disconnect(bname));
    assert_eq!(wa.receive_timeout(SOON), Some(term!({:nodedown, bname})));
    wa.send(wb.pid(), 3);
    wa.send(wc.pid(), "to c");
    wa.send(wb.pid(), 4);
    assert_eq!(wb.receive_timeout(SOON), Some(Term::Int(3)));
    assert_eq!(wb.receive_timeout(SOON), Some(Term::Int(4)));
    assert_eq!(wc.receive_timeout(SOON), Some(Term::str("to c")));
    assert_eq!(wb.receive_timeout(Duration::from_millis(50)), None);
    drop((wa, wb, wc));
    a.shutdown();
    b.shutdown();
    c.shutdown();
}

/// Erlang's `[noconnect]`: after a disconnect, a noconnect send (to a pid or a name) is
/// dropped and a noconnect monitor is `DOWN` with `noconnection` at once; an ordinary
/// send still reconnects, and what it carries is the first thing the peer gets (so the
/// noconnect messages went nowhere, not merely late).
#[test]
fn noconnect_sends_and_monitors_never_redial_a_disconnected_node() {
    use oxbeam::rt::Dest;
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let a = net("f3na", epmd, &cookie);
    let b = net("f3nb", epmd, &cookie);
    let bname = Atom::new("f3nb@localhost");
    let mut wa = a.node().attach();
    let mut wb = b.node().attach();
    wb.register(Atom::new("catcher")).unwrap();
    assert!(a.connect("f3nb@localhost").is_ok());
    a.monitor_nodes(wa.pid(), oxbeam::node::NodeMonitor::On);
    assert!(a.disconnect(bname));
    assert_eq!(wa.receive_timeout(SOON), Some(term!({:nodedown, bname})));
    let target = wb.pid();
    wa.send_noconnect(target, "lost_by_pid").unwrap();
    wa.send_noconnect(Dest::NameAt(Atom::new("catcher"), bname), "lost_by_name")
        .unwrap();
    let r = wa.monitor_noconnect(target);
    let down = wa.receive_timeout(SOON).expect("a DOWN at once");
    assert_eq!(down, term!({:DOWN, r, :process, target, :noconnection}));
    assert!(a.nodes().is_empty(), "nothing redialled: {:?}", a.nodes());
    // An ordinary send connects again; it is the first message to arrive.
    wa.send(target, "after");
    assert_eq!(wb.receive_timeout(SOON), Some(Term::str("after")));
    assert_eq!(wb.receive_timeout(Duration::from_millis(50)), None);
    assert_eq!(a.nodes(), vec![bname]);
    drop((wa, wb));
    a.shutdown();
    b.shutdown();
}

/// A connection given up on one side (A declared B down and closed its end) while the
/// other side still holds it (a frozen link kept the close from B): A's redial is
/// refused as a duplicate for as long as B holds on, and what A sent meanwhile waits
/// and arrives, in order, once B lets go (OTP replaces the old connection at once).
#[test]
fn a_redial_refused_as_duplicate_is_retried_and_loses_nothing() {
    use support::proxy::{Mode, Proxy};
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let mut ca = cfg("f3da", epmd, &cookie);
    ca.tick_time = Duration::from_secs(1);
    let mut cb = cfg("f3db", epmd, &cookie);
    cb.tick_time = Duration::from_secs(30);
    let (a, b) = (Net::start(ca).unwrap(), Net::start(cb).unwrap());
    let (aname, bname) = (a.name(), b.name());
    let ab = Proxy::start(b.address().port());
    a.set_peer_port(bname, Some(ab.port));
    assert!(a.connect(bname.as_str()).is_ok());
    let mut wa = a.node().attach();
    let mut wb = b.node().attach();
    a.monitor_nodes(wa.pid(), oxbeam::node::NodeMonitor::On);
    ab.set(Mode::Freeze);
    assert_eq!(
        wa.receive_timeout(SOON),
        Some(term!({:nodedown, bname})),
        "A declares B down after its 1 s tick time"
    );
    assert_eq!(b.nodes(), vec![aname], "B holds its end (30 s tick time)");
    // A dials B directly now; B refuses it as a duplicate while it holds the old one.
    a.set_peer_port(bname, None);
    for i in 1..=3 {
        wa.send(wb.pid(), Term::Int(i));
    }
    // B lets go only after longer than the 1 s grace a refused attempt used to get.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!a.nodes().contains(&bname), "refused while B holds on");
    ab.set(Mode::Drop);
    for i in 1..=3 {
        assert_eq!(wb.receive_timeout(SOON), Some(Term::Int(i)));
    }
    assert_eq!(a.nodes(), vec![bname]);
    drop((wa, wb));
    a.shutdown();
    b.shutdown();
}

#[test]
fn hidden_nodes_connect_but_stay_out_of_the_mesh() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let a = net("f4a", epmd, &cookie);
    let b = net("f4b", epmd, &cookie);
    let mut hc = cfg("f4hidden", epmd, &cookie);
    hc.hidden = true;
    let h = Net::start(hc).unwrap();
    assert!(a.connect("f4b@localhost").is_ok());
    assert!(h.connect("f4a@localhost").is_ok());
    assert_eq!(a.nodes(), vec![Atom::new("f4b@localhost")]);
    assert_eq!(a.hidden_nodes(), vec![Atom::new("f4hidden@localhost")]);
    // The hidden node is told of no one and told to no one.
    assert!(h.nodes().is_empty(), "{:?}", h.nodes());
    assert_eq!(h.hidden_nodes(), vec![Atom::new("f4a@localhost")]);
    assert!(!b.hidden_nodes().contains(&Atom::new("f4hidden@localhost")));
    for n in [h, a, b] {
        n.shutdown();
    }
}

#[test]
fn a_restarted_node_is_a_new_incarnation() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let ctl = net("f5ctl", epmd, &cookie);
    let mut me = ctl.node().attach();
    let mut n1 = NodeProc::start("f5n1", &cookie, epmd, &[]);
    assert!(ctl.connect(&n1.name).is_ok());
    let old = echo_on(&ctl, &mut me, &n1.name);
    n1.kill();
    support::wait_for("nodedown", SOON, || (ctl.nodes().is_empty(), ctl.nodes()));
    let n1b = NodeProc::start("f5n1", &cookie, epmd, &[]);
    assert!(ctl.connect(&n1b.name).is_ok());
    let new = echo_on(&ctl, &mut me, &n1b.name);
    assert_ne!(old.creation(), new.creation());
    // The old pid matches nothing on the new incarnation, even if the number repeats.
    me.monitor(old);
    let down = me
        .receive_match(|m| m.tagged("DOWN").is_some(), Some(SOON))
        .unwrap();
    assert_eq!(down.as_tuple().unwrap()[4], term!(:noproc));
    me.send(new, (me.pid(), 1));
    assert_eq!(me.receive_timeout(SOON), Some(Term::Int(1)));
    drop(me);
    ctl.shutdown();
}

#[test]
fn simultaneous_connects_end_in_one_connection() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    for round in 0..5 {
        let a = net(&format!("f6a{round}"), epmd, &cookie);
        let b = net(&format!("f6b{round}"), epmd, &cookie);
        let (an, bn) = (a.name().as_str().to_owned(), b.name().as_str().to_owned());
        let (a2, b2) = (a.clone(), b.clone());
        let t1 = std::thread::spawn(move || a2.connect(&bn).is_ok());
        let t2 = std::thread::spawn(move || b2.connect(&an).is_ok());
        assert!(
            t1.join().unwrap() && t2.join().unwrap(),
            "round {round}: both connects succeed"
        );
        assert_eq!(a.nodes().len(), 1);
        assert_eq!(b.nodes().len(), 1);
        a.shutdown();
        b.shutdown();
    }
}

#[test]
fn a_stalled_handshake_is_closed_after_the_timeout() {
    use std::io::Read;
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let mut c = cfg("f7a", epmd, &cookie);
    c.handshake_timeout = Duration::from_millis(300);
    let a = Net::start(c).unwrap();
    let mut s = std::net::TcpStream::connect(a.address()).unwrap();
    s.set_read_timeout(Some(SOON)).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 16];
    // Say nothing: the node closes the connection (read returns 0 or an error).
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0);
    assert!(start.elapsed() < Duration::from_secs(5));
    a.shutdown();
}

#[test]
fn exit_signals_cross_nodes() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let n1 = NodeProc::start("f8n1", &cookie, epmd, &[]);
    let ctl = net("f8ctl", epmd, &cookie);
    assert!(ctl.connect(&n1.name).is_ok());
    assert_eq!(ctl.nodes_and_this(), vec![ctl.name(), Atom::new(&n1.name)]);
    let mut me = ctl.node().attach();
    let echo = echo_on(&ctl, &mut me, &n1.name);
    me.monitor(echo);
    me.exit_pid(echo, term!(:go_away));
    let down = me
        .receive_match(|m| m.tagged("DOWN").is_some(), Some(SOON))
        .unwrap();
    assert_eq!(down.as_tuple().unwrap()[4], term!(:go_away));
    drop(me);
    ctl.shutdown();
}

#[test]
fn a_busy_connection_holds_senders_back_and_loses_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let n1 = NodeProc::start("f9n1", &cookie, epmd, &[]);
    let mut c = cfg("f9ctl", epmd, &cookie);
    c.busy_limit = 1 << 20;
    c.tick_time = Duration::from_secs(60);
    let ctl = Net::start(c).unwrap();
    assert!(ctl.connect(&n1.name).is_ok());
    let mut me = ctl.node().attach();
    let sink = {
        let mfa = (Atom::new("oxbeam_test"), Atom::new("sink"), vec![]);
        ctl.spawn(
            &mut me,
            Atom::new(&n1.name),
            mfa,
            oxbeam::node::SpawnRequest::default(),
        )
        .unwrap()
        .0
    };
    n1.freeze();
    const TOTAL: i64 = 4096; // 4096 x 64 KiB = 256 MiB
    let sent = Arc::new(AtomicI64::new(0));
    let (node, counter) = (ctl.node().clone(), sent.clone());
    let sender = std::thread::spawn(move || {
        let me = node.attach();
        let pad = Term::binary(&vec![1u8; 64 << 10]);
        for i in 1..=TOTAL {
            me.send(sink, term!({:seq, i, (pad.clone())}));
            counter.store(i, Ordering::SeqCst);
        }
    });
    // The sender stalls once the queue and the socket buffers are full.
    let mut last = -1;
    support::wait_for("the sender to stall", SOON, || {
        std::thread::sleep(Duration::from_millis(300));
        let now = sent.load(Ordering::SeqCst);
        let stalled = now == last;
        last = now;
        (stalled, now)
    });
    let queued_mib = last * 64 / 1024;
    assert!(
        last < TOTAL && queued_mib < 48,
        "sent {last} messages ({queued_mib} MiB) to a frozen node"
    );
    n1.thaw();
    sender.join().unwrap();
    // Nothing was dropped: the sink saw every message, in order. (It checks {:seq, n}.)
    me.send(sink, term!({:count, (me.pid())}));
    let reply = me.receive_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!(reply, term!({:count, TOTAL, true}));
    drop(me);
    ctl.shutdown();
}

#[test]
fn name_at_host_port_works_without_a_port_mapper() {
    let cookie = test_cookie();
    // A port mapper port where nothing listens (nor can, while `_held` lives).
    let (_held, nowhere) = refused_port();
    let no_mapper = |short: &str| {
        let mut c = cfg(short, nowhere, &cookie);
        c.use_mapper = false;
        Net::start(c).unwrap()
    };
    let a = no_mapper("f10a");
    let b = no_mapper("f10b");
    let target = format!("f10b@localhost:{}", b.address().port());
    assert!(a.connect(&target).is_ok());
    assert_eq!(a.nodes(), vec![Atom::new("f10b@localhost")]);
    // Without a port the name can't be found: no mapper answers on that port.
    let c = no_mapper("f10c");
    let refused = c.connect("f10b@localhost");
    assert!(
        matches!(
            refused,
            Err(oxbeam::node::ConnectError::MapperUnreachable(_))
        ),
        "{refused:?}"
    );
    for n in [a, b, c] {
        n.shutdown();
    }
}

#[test]
fn a_message_over_the_size_limit_is_refused_by_the_sender_and_the_link_stays() {
    let cookie = test_cookie();
    let mut ca = NetConfig::named("f9a@localhost");
    ca.cookie = Some(cookie.clone());
    ca.use_mapper = false;
    ca.max_message = 1 << 20;
    let a = Net::start(ca).unwrap();
    let mut cb = NetConfig::named("f9b@localhost");
    cb.cookie = Some(cookie.clone());
    cb.use_mapper = false;
    cb.max_message = 1 << 20;
    let b = Net::start(cb).unwrap();
    oxbeam::dist::start(&a).unwrap();
    oxbeam::dist::start(&b).unwrap();
    assert!(
        a.connect(&format!("f9b@localhost:{}", b.address().port()))
            .is_ok()
    );
    let mut me = a.node().attach();
    let mut there = b.node().attach();
    // Too large: not sent (the sender's node logs why); the connection stays up.
    let big = Term::binary(&vec![7u8; 2 << 20]);
    me.send(there.pid(), big.clone());
    me.send(there.pid(), term!(:small));
    assert_eq!(there.receive_timeout(SOON), Some(term!(:small)));
    assert_eq!(a.nodes(), vec![b.name()]);
    // An rpc with a too large argument: a clear error at the caller.
    let r = oxbeam::dist::rpc::call(
        &mut me,
        b.name(),
        Atom::new("erlang"),
        Atom::new("node"),
        vec![big],
        Some(SOON),
    );
    match r {
        Err(oxbeam::dist::rpc::RpcError::Exit(reason)) => {
            assert!(reason.tagged("too_large").is_some(), "{reason}")
        }
        other => panic!("expected a too_large error, got {other:?}"),
    }
    assert_eq!(a.nodes(), vec![b.name()]);
    drop(me);
    drop(there);
    a.shutdown();
    b.shutdown();
}
