//! Races between a node's own connection attempt and the peer connecting to it, made
//! deterministic with a port mapper the test answers by hand.
//!
//! Seen first as rare failures of `fault_kill_churn`'s restart test (a node restarted
//! while peers keep sending to it): a peer's auto-connect, started while the node was
//! down, fails its port mapper look-up *after* the restarted node has connected to it,
//! and that late failure takes the fresh connection down.
mod support;

use std::io::{Read, Write};
use std::net::TcpListener;

use crossbeam_channel::{Receiver, Sender};
use oxbeam::node::{Net, NetConfig};
use oxbeam::term::{Pid, Term};
use support::{SOON, refused_port, test_cookie};

/// A port mapper that reads each request, reports its body, and answers "not found"
/// (`PORT2_RESP`, result 1) only when told to.
fn held_mapper() -> (u16, Receiver<Vec<u8>>, Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (got_tx, got) = crossbeam_channel::unbounded();
    let (go, go_rx) = crossbeam_channel::unbounded::<()>();
    std::thread::spawn(move || {
        for mut s in listener.incoming().map_while(Result::ok) {
            let mut len = [0u8; 2];
            let mut body = vec![0u8; 1024];
            if s.read_exact(&mut len).is_err() {
                continue;
            }
            body.truncate(u16::from_be_bytes(len) as usize);
            let _ = s.read_exact(&mut body);
            if got_tx.send(body).is_err() || go_rx.recv().is_err() {
                return;
            }
            let _ = s.write_all(&[119, 1]);
        }
    });
    (port, got, go)
}

fn node(name: &str, epmd: u16, cookie: &str) -> Net {
    let mut c = NetConfig::named(name);
    c.cookie = Some(cookie.to_owned());
    c.epmd_port = Some(epmd);
    c.use_mapper = false;
    c.runtime.workers = 2;
    Net::start(c).unwrap()
}

#[test]
fn a_late_failed_lookup_does_not_take_down_a_connection_that_came_up_meanwhile() {
    let cookie = test_cookie();
    let (mapper, requests, answer) = held_mapper();
    // a < b: a admits b's connection even while its own attempt is pending.
    let a = node("fz1a@localhost", mapper, &cookie);
    // b never looks anyone up: its port mapper port is one where nothing listens.
    let (_held, nowhere) = refused_port();
    let b = node("fz1b@localhost", nowhere, &cookie);
    let mut watcher = a.node().attach();
    a.monitor_nodes(watcher.pid(), oxbeam::node::NodeMonitor::WithReasons);
    // a sends to a (non-existent) process of b: auto-connect; the look-up of b's port
    // is held.
    let on_b = Pid::from_parts(b.name(), b.creation(), u64::MAX / 2);
    a.node().send(on_b, Term::atom("hello"));
    let req = requests
        .recv_timeout(SOON)
        .expect("a asks the mapper for b");
    assert_eq!(req, b"\x7afz1b");
    // Meanwhile b connects to a by its port: the connection is up on both sides.
    assert!(
        b.connect(&format!("fz1a@localhost:{}", a.address().port()))
            .is_ok()
    );
    assert_eq!(a.nodes(), vec![b.name()]);
    // Now the held look-up fails. The resolver thread takes requests one at a time, so
    // once it asks about another node, it has finished with this one.
    answer.send(()).unwrap();
    let a2 = a.clone();
    let other = std::thread::spawn(move || a2.connect("fz1c@localhost").is_ok());
    let req = requests.recv_timeout(SOON).expect("a's next look-up");
    assert_eq!(req, b"\x7afz1c");
    answer.send(()).unwrap();
    assert!(!other.join().unwrap());
    let seen = watcher.flush();
    assert!(
        seen.iter().all(|m| m.tagged("nodedown").is_none()),
        "a saw {seen:?}"
    );
    assert_eq!(a.nodes(), vec![b.name()], "a dropped b");
    assert_eq!(b.nodes(), vec![a.name()]);
    drop(watcher);
    a.shutdown();
    b.shutdown();
}
