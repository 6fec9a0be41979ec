//! Races between a node's own connection attempt and the peer connecting to it, made
//! deterministic with a port mapper the test answers by hand or with slow links
//! (`support::proxy`), and a stress of overlapping connects.
//!
//! The late look-up was seen first as rare failures of `fault_kill_churn`'s restart
//! test (a node restarted while peers keep sending to it): a peer's auto-connect,
//! started while the node was down, fails its port mapper look-up *after* the
//! restarted node has connected to it, and that late failure takes the fresh
//! connection down.
mod support;

use std::io::{Read, Write};
use std::net::TcpListener;

use crossbeam_channel::{Receiver, Sender};
use oxbeam::node::{Net, NetConfig};
use oxbeam::term::{Pid, Term, term};
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
    a.node().send(on_b, term!(:hello));
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

/// A small deterministic generator (xorshift), so a failing plan can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Who connects to whom in one round, all at once: (from, to) by index.
fn plan(round: u64, n: usize) -> Vec<(usize, usize)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (round + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut v = Vec::new();
    match round % 4 {
        // A star: everyone joins the first node.
        0 => v.extend((1..n).map(|i| (i, 0))),
        // A chain: each joins the next, so only the peer lists make the mesh.
        1 => v.extend((0..n - 1).map(|i| (i, i + 1))),
        // A random tree, some of its edges also dialled the other way (simultaneous
        // connects), and a few random extra connects.
        2 => {
            for i in 1..n {
                let j = rng.below(i);
                v.push((i, j));
                if rng.below(2) == 0 {
                    v.push((j, i));
                }
            }
            for _ in 0..rng.below(n) {
                let (i, j) = (rng.below(n), rng.below(n));
                if i != j {
                    v.push((i, j));
                }
            }
        }
        // Everyone dials everyone, both ways.
        _ => {
            for i in 0..n {
                for j in 0..n {
                    if i != j {
                        v.push((i, j));
                    }
                }
            }
        }
    }
    // Shuffled, so who starts first varies.
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i + 1));
    }
    v
}

/// Issue 18: a node joining while another was mid-connect once left a fresh node's
/// `nodes()` short of a member for seconds. Rounds of four fresh nodes that connect all
/// at once in varied shapes (star, chain, random trees with simultaneous connects,
/// everyone to everyone), every other round over links of random latency (a delaying
/// proxy per direction of each pair, 0 to 40 ms a chunk, so handshakes overlap in ever
/// other orders): within a second of the last `connect` returning, every node lists
/// every other, and every `connect` succeeded.
#[test]
fn overlapping_connects_always_make_the_full_mesh_within_a_second() {
    use std::sync::{Arc, Barrier};
    use std::time::{Duration, Instant};
    use support::proxy::Proxy;

    const NODES: usize = 4;
    const ROUNDS: u64 = 400;
    let budget = Duration::from_secs(12);
    let (_mapper, epmd) = support::private_mapper();
    let cookie = test_cookie();
    let started = Instant::now();
    let mut rounds = 0;
    for round in 0..ROUNDS {
        if started.elapsed() > budget {
            break;
        }
        rounds += 1;
        let nets: Vec<Net> = (0..NODES)
            .map(|i| support::net(&format!("cr{round}n{i}"), epmd, &cookie))
            .collect();
        let mut rng = Rng(round.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut links = Vec::new();
        if (round / 4) % 2 == 1 {
            for (i, from) in nets.iter().enumerate() {
                for (j, to) in nets.iter().enumerate() {
                    let ms = [0, 2, 10, 40][rng.below(4)];
                    if i != j && ms > 0 {
                        let link = Proxy::start(to.address().port());
                        link.delay(Duration::from_millis(ms));
                        from.set_peer_port(to.name(), Some(link.port));
                        links.push(((i, j, ms), link));
                    }
                }
            }
        }
        let plan = plan(round, NODES);
        let go = Arc::new(Barrier::new(plan.len()));
        let calls: Vec<_> = plan
            .iter()
            .map(|&(i, j)| {
                let (from, to, go) = (nets[i].clone(), nets[j].name(), go.clone());
                std::thread::spawn(move || {
                    go.wait();
                    from.connect(to.as_str()).map_err(|e| e.to_string())
                })
            })
            .collect();
        let results: Vec<_> = calls.into_iter().map(|c| c.join().unwrap()).collect();
        let all: Vec<_> = nets.iter().map(|n| n.name()).collect();
        let missing = || {
            let mut m = Vec::new();
            for n in &nets {
                let seen = n.nodes();
                for other in &all {
                    if *other != n.name() && !seen.contains(other) {
                        m.push((n.name(), *other));
                    }
                }
            }
            m
        };
        let got = support::harness::poll(Duration::from_secs(1), || {
            let m = missing();
            if m.is_empty() { Ok(()) } else { Err(m) }
        });
        let delays: Vec<_> = links.iter().map(|(l, _)| *l).collect();
        if let Err(m) = got {
            panic!(
                "round {round}: plan {plan:?}, delays (from, to, ms) {delays:?}, results \
                 {results:?}: 1 s after the last connect, missing (node, peer) {m:?}"
            );
        }
        let failed: Vec<_> = plan
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_err())
            .collect();
        assert!(
            failed.is_empty(),
            "round {round}: delays {delays:?}: connects failed: {failed:?}"
        );
        for n in nets {
            n.shutdown();
        }
    }
    println!("{rounds} rounds in {:?}", started.elapsed());
}

/// Issue 18's race, made deterministic with two slow links. x (the smaller name) dials
/// y through a 300 ms link; once y has answered x's Hello (it is mid-handshake with x,
/// with no connection of its own to x), y connects to x over a 130 ms link. x admits
/// y's Hello (x is connecting, and the greater name's attempt wins), so two handshakes
/// run; each side keeps the one that completes there first: y the one x started, x
/// the one y started. Each then closes the other's: both connections go down, and
/// nothing connects them again. y must instead wait for the handshake in progress.
#[test]
fn a_connect_while_the_peer_is_mid_handshake_with_us_waits_for_that_handshake() {
    use oxbeam::node::NodeMonitor;
    use std::time::Duration;
    use support::proxy::Proxy;

    let (_mapper, epmd) = support::private_mapper();
    let cookie = test_cookie();
    let x = support::net("crhx", epmd, &cookie);
    let y = support::net("crhy", epmd, &cookie);
    assert!(x.name().as_str() < y.name().as_str());
    let x_to_y = Proxy::start(y.address().port());
    x_to_y.delay(Duration::from_millis(300));
    let y_to_x = Proxy::start(x.address().port());
    y_to_x.delay(Duration::from_millis(130));
    x.set_peer_port(y.name(), Some(x_to_y.port));
    y.set_peer_port(x.name(), Some(y_to_x.port));
    let mut x_watch = x.node().attach();
    x.monitor_nodes(x_watch.pid(), NodeMonitor::On);
    let mut y_watch = y.node().attach();
    y.monitor_nodes(y_watch.pid(), NodeMonitor::On);

    let (x2, y_name) = (x.clone(), y.name());
    let x_connect = std::thread::spawn(move || x2.connect(y_name.as_str()));
    // x's Hello is through, then y's answer: y has admitted x.
    let hello = support::wait_for("x's hello at y", SOON, || {
        (x_to_y.forwarded() > 0, x_to_y.forwarded())
    });
    support::wait_for("y's challenge at x", SOON, || {
        (x_to_y.forwarded() > hello, x_to_y.forwarded())
    });
    assert_eq!(y.connect(x.name().as_str()), Ok(()));
    assert_eq!(x_connect.join().unwrap(), Ok(()));
    // Every handshake either side started is over within a second (four legs of
    // 300 ms at most from here): no nodedown on either side meanwhile.
    let down = |m: &Term| m.tagged("nodedown").map(|_| m.clone());
    let quiet = Duration::from_millis(1500);
    assert_eq!(
        x_watch.receive_with(down, Some(quiet)),
        None,
        "x saw y down"
    );
    assert_eq!(
        y_watch.receive_with(down, Some(Duration::ZERO)),
        None,
        "y saw x down"
    );
    assert_eq!(x.nodes(), vec![y.name()]);
    assert_eq!(y.nodes(), vec![x.name()]);
    drop((x_watch, y_watch));
    x.shutdown();
    y.shutdown();
}
