//! A durable KV table on three nodes run as OS processes (`oxbeam_kv_disk:*`, in
//! `testnode/kv_disk_fns.rs`): clients write continuously, recording what was
//! acknowledged; all three nodes get SIGKILL at once, mid-traffic; restarted on the
//! same directories, they elect a writer again and every acknowledged write reads back
//! (linearizably), no replica's term went backwards, and writing goes on.
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use oxbeam::dist::rpc;
use oxbeam::node::Net;
use oxbeam::rt::Attached;
use oxbeam::term::{Atom, Term};
use parking_lot::Mutex;
use support::fault::cluster::{lists, os_node};
use support::fault::watched::LoggedNode;
use support::{SOON, net, private_mapper, test_cookie, wait_for};

/// A directory under the system's temp directory, removed on drop.
use support::TempDir;

const TABLE: &str = "durable_orders";

/// `oxbeam_kv_disk:fun(TABLE, nodes, extra...)` on `node`.
fn kv(
    me: &mut Attached,
    node: &str,
    nodes: &[String],
    fun: &str,
    extra: Vec<Term>,
) -> Result<Term, rpc::RpcError> {
    let mut args = vec![
        Term::atom(TABLE),
        Term::list(nodes.iter().map(|n| Term::atom(n)).collect::<Vec<_>>()),
    ];
    args.extend(extra);
    let (m, f) = (Atom::new("oxbeam_kv_disk"), Atom::new(fun));
    rpc::call(me, Atom::new(node), m, f, args, Some(SOON))
}

/// Starts the three nodes and their replicas on `dir/nK`; waits for the mesh and a
/// writer known everywhere.
fn start_cluster(ctl: &Net, epmd: u16, dir: &TempDir) -> (Vec<LoggedNode>, Vec<String>) {
    let cookie = test_cookie();
    let nodes: Vec<LoggedNode> = (1..=3)
        .map(|i| os_node(&format!("kvdf{i}"), &cookie, epmd, ctl, "info"))
        .collect();
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let mut me = ctl.node().attach();
    wait_for("the mesh", SOON, || {
        let ok = lists(&mut me, &names[0], &names[1])
            && lists(&mut me, &names[0], &names[2])
            && lists(&mut me, &names[1], &names[2]);
        (ok, ctl.nodes())
    });
    for (i, n) in names.iter().enumerate() {
        let d = dir.0.join(format!("n{}", i + 1));
        let d = Term::str(d.to_str().expect("a UTF-8 temp path"));
        let started = kv(&mut me, n, &names, "start", vec![d]);
        assert_eq!(started, Ok(Term::ok()), "start on {n}");
    }
    for n in &names {
        let _ = wait_for("a writer known", SOON, || {
            let w = kv(&mut me, n, &names, "writer", vec![]);
            (
                matches!(&w, Ok(Term::Atom(_))) && w != Ok(Term::atom("none")),
                w,
            )
        });
    }
    (nodes, names)
}

fn terms(me: &mut Attached, names: &[String]) -> Vec<i64> {
    names
        .iter()
        .map(|n| {
            let t = kv(me, n, names, "term", vec![]);
            t.ok().and_then(|t| t.as_int()).expect("a term")
        })
        .collect()
}

#[test]
fn a_whole_cluster_killed_mid_traffic_and_restarted_loses_no_acknowledged_write() {
    let dir = TempDir::new("fault-kv-durable");
    let (_mapper, epmd) = private_mapper();
    let ctl = net("kvdfctl", epmd, &test_cookie());
    oxbeam::dist::start(&ctl).unwrap();
    let (mut nodes, names) = start_cluster(&ctl, epmd, &dir);

    // One client per node, each writing its own keys through its node, recording what
    // was acknowledged, until the nodes die under it.
    let acked: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let killed = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..3)
        .map(|c| {
            let (node, names) = (ctl.node().clone(), names.clone());
            let (acked, killed) = (acked.clone(), killed.clone());
            std::thread::spawn(move || {
                let mut me = node.attach();
                let mut refused = 0;
                for i in 0i64.. {
                    if killed.load(Ordering::SeqCst) {
                        return refused;
                    }
                    let key = format!("c{c}-{i}");
                    let args = vec![Term::str(&key), Term::Int(i)];
                    match kv(&mut me, &names[c], &names, "put", args) {
                        Ok(t) if t.tagged("ok").is_some() => acked.lock().push((key, i)),
                        _ => refused += 1,
                    }
                }
                refused
            })
        })
        .collect();
    // Past a few compactions (the test node's tables compact every 100 entries), so
    // recovery goes through a snapshot and the log after it.
    wait_for("600 acknowledged writes", Duration::from_secs(60), || {
        let n = acked.lock().len();
        (n >= 600, n)
    });
    let mut me = ctl.node().attach();
    let before = terms(&mut me, &names);
    // All three at once (one kill(1) for the three), mid-traffic.
    let pids: Vec<String> = nodes.iter().map(|n| n.os_pid().to_string()).collect();
    let status = std::process::Command::new("kill")
        .arg("-KILL")
        .args(&pids)
        .status()
        .expect("kill(1)");
    assert!(status.success());
    let acked_at_kill = acked.lock().len();
    killed.store(true, Ordering::SeqCst);
    for n in &mut nodes {
        n.kill(); // reaps
    }
    let refused: Vec<i32> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let acked = std::mem::take(&mut *acked.lock());
    eprintln!(
        "fault-report kv durable: {} writes acknowledged ({acked_at_kill} when the kill was sent), \
         {refused:?} failed per client around the kill; terms before {before:?}",
        acked.len()
    );
    drop(nodes);

    // Restarted on the same directories.
    let (_nodes, names) = start_cluster(&ctl, epmd, &dir);
    let rows = wait_for("every row, read linearizably", SOON, || {
        let r = kv(&mut me, &names[0], &names, "select_all", vec![]);
        (r.as_ref().is_ok_and(|t| t.as_list().is_some()), r)
    })
    .unwrap();
    let rows: std::collections::HashMap<String, i64> = rows
        .as_list()
        .unwrap()
        .iter()
        .map(|r| {
            let [k, v] = r.as_tuple().unwrap() else {
                panic!("a row {r}")
            };
            (k.as_str().unwrap().to_string(), v.as_int().unwrap())
        })
        .collect();
    let lost: Vec<&(String, i64)> = acked
        .iter()
        .filter(|(k, v)| rows.get(k) != Some(v))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );
    eprintln!(
        "fault-report kv durable: after the restart {} rows, every acknowledged write among them",
        rows.len()
    );
    let after = terms(&mut me, &names);
    for (b, a) in before.iter().zip(&after) {
        assert!(a >= b, "terms before {before:?}, after {after:?}");
    }
    let w = kv(
        &mut me,
        &names[1],
        &names,
        "put",
        vec![Term::str("after"), Term::Int(1)],
    );
    assert!(w.as_ref().is_ok_and(|t| t.tagged("ok").is_some()), "{w:?}");
}
