//! Named nodes as separate OS processes (`oxbeam node`), driven from a node in the test
//! process: connect by name, cookies, the mesh, remote spawn, send, monitors, links.
mod support;

use std::time::Duration;

use oxbeam::node::Net;
use oxbeam::rt::Attached;
use oxbeam::term::{Atom, Pid, Term, term};
use support::{NodeProc, SOON, net, private_mapper, test_cookie};

fn spawn_on(net: &Net, me: &mut Attached, node: &str, fun: &str, args: Vec<Term>) -> Pid {
    support::fault::cluster::spawn_on(net, me, node, support::fault::cluster::test_fn(fun, args))
}

fn down_reason(me: &mut Attached, pid: Pid) -> Term {
    let m = me
        .receive_match(
            |m| matches!(m.tagged("DOWN"), Some([_, _, Term::Pid(p), _]) if *p == pid),
            Some(SOON),
        )
        .unwrap_or_else(|| panic!("no DOWN for {pid:?}; mailbox {:?}", me.flush()));
    m.as_tuple().unwrap()[4].clone()
}

#[test]
fn connect_by_name_send_and_remote_spawn() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let n1 = NodeProc::start("c1n1", &cookie, epmd, &[]);
    let ctl = net("c1ctl", epmd, &cookie);
    assert!(
        ctl.connect(&n1.name).is_ok(),
        "connect by name through the port mapper"
    );
    assert_eq!(ctl.nodes(), vec![Atom::new(&n1.name)]);
    let mut me = ctl.node().attach();
    let echo = spawn_on(&ctl, &mut me, &n1.name, "echo", vec![]);
    assert_eq!(echo.node(), Atom::new(&n1.name));
    for i in 0..100 {
        me.send(echo, (me.pid(), i));
        assert_eq!(me.receive_timeout(SOON), Some(Term::Int(i)));
    }
    // {name, node} addressing.
    let named = spawn_on(&ctl, &mut me, &n1.name, "echo_named", vec![term!(:echoer)]);
    let _ = named;
    support::wait_for("name registered remotely", SOON, || {
        me.send_to(
            oxbeam::rt::Dest::NameAt(Atom::new("echoer"), Atom::new(&n1.name)),
            (me.pid(), "hi"),
        )
        .unwrap();
        let got = me.receive_timeout(Duration::from_millis(200));
        (got == Some(Term::str("hi")), got)
    });
    // An unknown function is an error, and no process starts.
    let err = ctl
        .spawn(
            &mut me,
            Atom::new(&n1.name),
            (Atom::new("nope"), Atom::new("missing"), vec![]),
            oxbeam::node::SpawnRequest::default(),
        )
        .unwrap_err();
    assert_eq!(err.reason().to_string(), "{:undef, {:nope, :missing, 0}}");
    assert_eq!(
        err.to_string(),
        "spawn failed: nope:missing/0 is not a registered function"
    );
    drop(me);
    ctl.shutdown();
}

#[test]
fn a_wrong_cookie_is_refused_and_harms_no_one() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let n1 = NodeProc::start("c2n1", &cookie, epmd, &[]);
    let intruder = net("c2bad", epmd, "NOT-THE-COOKIE");
    assert!(intruder.connect(&n1.name).is_err());
    assert!(intruder.nodes().is_empty());
    intruder.shutdown();
    // The node still serves its real peers.
    let ctl = net("c2ctl", epmd, &cookie);
    assert!(ctl.connect(&n1.name).is_ok());
    ctl.shutdown();
}

#[test]
fn five_nodes_form_a_full_mesh_from_one_connect_each() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let hub = NodeProc::start("c3hub", &cookie, epmd, &[]);
    let others: Vec<NodeProc> = (1..=3)
        .map(|i| {
            NodeProc::start(
                &format!("c3n{i}"),
                &cookie,
                epmd,
                &["--connect", "c3hub@localhost"],
            )
        })
        .collect();
    let ctl = net("c3ctl", epmd, &cookie);
    assert!(ctl.connect(&hub.name).is_ok());
    let mut expect: Vec<Atom> = others.iter().map(|n| Atom::new(&n.name)).collect();
    expect.push(Atom::new(&hub.name));
    expect.sort();
    support::wait_for("the mesh", SOON, || (ctl.nodes() == expect, ctl.nodes()));
    ctl.shutdown();
}

#[test]
fn remote_sends_keep_their_order() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let n1 = NodeProc::start("c4n1", &cookie, epmd, &[]);
    let ctl = net("c4ctl", epmd, &cookie);
    assert!(ctl.connect(&n1.name).is_ok());
    let mut me = ctl.node().attach();
    let sink = spawn_on(&ctl, &mut me, &n1.name, "sink", vec![]);
    const N: i64 = 1_000_000;
    let seq = term!(:seq);
    for i in 1..=N {
        me.send(sink, (seq.clone(), i));
    }
    me.send(sink, term!({:count, (me.pid())}));
    let reply = me
        .receive_timeout(Duration::from_secs(120))
        .expect("the sink's count");
    assert_eq!(reply, term!({:count, N, true}));
    drop(me);
    ctl.shutdown();
}

#[test]
fn remote_monitors_report_normal_noproc_and_noconnection() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let mut n1 = NodeProc::start("c5n1", &cookie, epmd, &[]);
    let ctl = net("c5ctl", epmd, &cookie);
    assert!(ctl.connect(&n1.name).is_ok());
    let mut me = ctl.node().attach();
    let echo = spawn_on(&ctl, &mut me, &n1.name, "echo", vec![]);
    me.monitor(echo);
    me.send(echo, term!(:stop));
    assert_eq!(down_reason(&mut me, echo), term!(:normal));
    me.monitor(echo);
    assert_eq!(down_reason(&mut me, echo), term!(:noproc));
    // spawn_monitor across nodes, then the node dies: noconnection, and nodedown.
    let mfa = (Atom::new("oxbeam_test"), Atom::new("echo"), vec![]);
    let (victim, _) = ctl
        .spawn(
            &mut me,
            Atom::new(&n1.name),
            mfa,
            oxbeam::node::SpawnRequest::MONITOR,
        )
        .unwrap();
    ctl.monitor_node(me.pid(), Atom::new(&n1.name), true);
    n1.kill();
    assert_eq!(down_reason(&mut me, victim), term!(:noconnection));
    let nodedown = me
        .receive_match(|m| m.tagged("nodedown").is_some(), Some(SOON))
        .unwrap();
    assert_eq!(nodedown, term!({:nodedown, (Atom::new(&n1.name))}));
    assert!(ctl.nodes().is_empty());
    drop(me);
    ctl.shutdown();
}

#[test]
fn links_cross_nodes_with_erlang_reasons() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let mut n1 = NodeProc::start("c6n1", &cookie, epmd, &[]);
    let ctl = net("c6ctl", epmd, &cookie);
    assert!(ctl.connect(&n1.name).is_ok());
    let mut me = ctl.node().attach();
    me.trap_exit(true);
    // A remote process linked to us exits abnormally: {:EXIT, pid, reason}.
    let mfa = (
        Atom::new("oxbeam_test"),
        Atom::new("exit_with"),
        vec![term!(:boom)],
    );
    let (p, _) = ctl
        .spawn(
            &mut me,
            Atom::new(&n1.name),
            mfa,
            oxbeam::node::SpawnRequest::LINK,
        )
        .unwrap();
    let exit = me
        .receive_match(|m| m.tagged("EXIT").is_some(), Some(SOON))
        .unwrap();
    assert_eq!(exit, term!({:EXIT, p, :boom}));
    // Our exit propagates to a remote process linked to us (it doesn't trap): it dies.
    let my_pid = me.pid();
    let linker = spawn_on(&ctl, &mut me, &n1.name, "link_to", vec![Term::Pid(my_pid)]);
    let mut watcher = ctl.node().attach();
    watcher.monitor(linker);
    let helper_node = ctl.node().clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut doomed = helper_node.attach();
        doomed.send(linker, term!(:ignored));
        tx.send(doomed.pid()).unwrap();
        // `doomed` links to the remote linker, then exits with :bye.
        doomed.link(linker).unwrap();
        doomed.exit(term!(:bye));
    });
    let _doomed = rx.recv().unwrap();
    assert_eq!(down_reason(&mut watcher, linker), term!(:bye));
    // A linked remote process whose node dies: {:EXIT, pid, :noconnection}.
    let linked = spawn_on(&ctl, &mut me, &n1.name, "link_to", vec![Term::Pid(my_pid)]);
    me.link(linked).unwrap();
    n1.kill();
    let exit = me
        .receive_match(
            |m| matches!(m.tagged("EXIT"), Some([Term::Pid(q), _]) if *q == linked),
            Some(SOON),
        )
        .unwrap();
    assert_eq!(exit.as_tuple().unwrap()[2], term!(:noconnection));
    drop(me);
    drop(watcher);
    ctl.shutdown();
}

#[test]
fn a_frozen_node_is_declared_down_within_the_tick_time() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let n1 = NodeProc::start("c7n1", &cookie, epmd, &["--tick-ms", "2000"]);
    let mut config = oxbeam::node::NetConfig::named("c7ctl@localhost");
    config.cookie = Some(cookie.clone());
    config.epmd_port = Some(epmd);
    config.tick_time = Duration::from_millis(2000);
    let ctl = Net::start(config).unwrap();
    assert!(ctl.connect(&n1.name).is_ok());
    let mut me = ctl.node().attach();
    ctl.monitor_nodes(me.pid(), oxbeam::node::NodeMonitor::WithReasons);
    // A busy but healthy link is never declared down: traffic for 1.5 tick times.
    let echo = spawn_on(&ctl, &mut me, &n1.name, "echo", vec![]);
    let until = std::time::Instant::now() + Duration::from_millis(3000);
    while std::time::Instant::now() < until {
        me.send(echo, (me.pid(), 1));
        let got = me.receive_timeout(SOON);
        assert_eq!(got, Some(Term::Int(1)), "a busy link must stay up");
    }
    assert_eq!(ctl.nodes(), vec![Atom::new(&n1.name)]);
    n1.freeze();
    let start = std::time::Instant::now();
    let down = me
        .receive_match(|m| m.tagged("nodedown").is_some(), Some(SOON))
        .expect("nodedown");
    let took = start.elapsed();
    n1.thaw();
    assert_eq!(
        down.as_tuple().unwrap()[2].to_string(),
        "[nodedown_reason: :net_tick_timeout]"
    );
    assert!(
        took < Duration::from_millis(4000),
        "declared down after {took:?}"
    );
    drop(me);
    ctl.shutdown();
}

/// Messages from another node wait undecoded in batches until their process looks at
/// them: `message_queue_len` still counts each message, and they come out in order.
#[test]
fn remote_messages_waiting_in_batches_count_one_by_one() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let a = net("c9a", epmd, &cookie);
    let b = net("c9b", epmd, &cookie);
    assert!(a.connect(b.name().as_str()).is_ok());
    let from = a.node().attach();
    let mut to = b.node().attach();
    const N: i64 = 1000;
    for i in 0..N {
        from.send(to.pid(), term!({:n, i}));
    }
    let deadline = std::time::Instant::now() + SOON;
    while to.message_queue_len() < N as usize && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(to.message_queue_len(), N as usize);
    assert_eq!(b.node().message_queue_len(to.pid()), Some(N as usize));
    for i in 0..N {
        let m = to.receive_timeout(SOON).expect("a queued message");
        assert_eq!(m, term!({:n, i}));
        assert_eq!(to.message_queue_len(), (N - 1 - i) as usize);
    }
    drop((from, to));
    a.shutdown();
    b.shutdown();
}
