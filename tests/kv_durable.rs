//! Durable tables (`TableConfig::durable`) on three nodes in this process: writes
//! acknowledged, every node shut down, all restarted on their directories: every
//! acknowledged write reads back linearizably, no term went backwards, and writing goes
//! on. Also prints put latency with durability on and off (measured, not asserted).
//! The kill -9 of every node mid-traffic is `fault_kv_durable.rs`.
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use oxbeam::kv::{Table, TableConfig};
use oxbeam::node::Net;
use oxbeam::term::Atom;
use support::{SOON, net, private_mapper, test_cookie, wait_for};

/// A directory under the system's temp directory, removed on drop.
use support::TempDir;

fn names(prefix: &str) -> Vec<Atom> {
    (1..=3)
        .map(|i| Atom::new(&format!("{prefix}{i}@localhost")))
        .collect()
}

fn config(table: &str, names: &[Atom], dir: Option<PathBuf>) -> TableConfig {
    let mut c = TableConfig::new(table, names);
    // Small, so that recovery goes through a snapshot and a log after it.
    c.group.compact_every = 64;
    match dir {
        Some(d) => c.durable(d),
        None => c,
    }
}

/// Starts nodes `prefix1..3` and their replicas of `table`; waits until each knows the
/// writer.
fn start(
    prefix: &str,
    epmd: u16,
    table: &str,
    dirs: Option<&TempDir>,
) -> (Vec<Net>, Vec<Table<String, u64>>) {
    let cookie = test_cookie();
    let names = names(prefix);
    let nets: Vec<Net> = (1..=3)
        .map(|i| net(&format!("{prefix}{i}"), epmd, &cookie))
        .collect();
    let tables: Vec<Table<String, u64>> = nets
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let c = config(table, &names, dirs.map(|d| d.node(i)));
            Table::start_with(n.node(), c).expect("the replica starts")
        })
        .collect();
    for (t, n) in tables.iter().zip(&nets) {
        t.wait_for_writer(&mut n.node().attach(), SOON)
            .expect("a writer is elected");
    }
    (nets, tables)
}

fn max_term(tables: &[Table<String, u64>]) -> u64 {
    tables
        .iter()
        .map(|t| t.group().shared().term())
        .max()
        .unwrap()
}

#[test]
fn a_whole_cluster_restarted_on_its_directories_keeps_every_acknowledged_write() {
    let (_mapper, epmd) = private_mapper();
    let dirs = TempDir::new("kv-durable-restart");
    let (nets, t) = start("kvdr", epmd, "orders", Some(&dirs));
    let mut me: Vec<_> = nets.iter().map(|n| n.node().attach()).collect();
    let mut acked = Vec::new();
    for i in 0..300u64 {
        let from = (i % 3) as usize;
        let key = format!("k{}", i % 250); // some keys written twice
        t[from]
            .put(&mut me[from], &key, &i)
            .expect("a majority takes it");
        acked.push((key, i));
    }
    let term_before = max_term(&t);
    let revision_before = t[0].get_local(&"k0".into()).unwrap().revision;
    drop(me);
    drop(t);
    for n in &nets {
        n.shutdown();
    }
    drop(nets);

    let (nets, t) = start("kvdr", epmd, "orders", Some(&dirs));
    let mut me: Vec<_> = nets.iter().map(|n| n.node().attach()).collect();
    let last: std::collections::HashMap<String, u64> = acked.into_iter().collect();
    for (key, value) in &last {
        let got = t[1].get(&mut me[1], key).expect("a linearizable read");
        assert_eq!(got.map(|(v, _)| v), Some(*value), "{key}");
    }
    for (i, table) in t.iter().enumerate() {
        let term = table.group().shared().term();
        assert!(term >= term_before, "node {i}: term {term} < {term_before}");
    }
    // Every copy catches up to at least what was there, and writing goes on.
    let w = t[2]
        .put(&mut me[2], &"after".into(), &1)
        .expect("writes go on");
    assert!(
        w.revision > revision_before,
        "{w:?} after {revision_before}"
    );
    for table in &t {
        wait_for("the local copy", SOON, || {
            let l = table.get_local(&"after".into()).unwrap();
            (l.value == Some(1), l)
        });
    }
    drop(me);
    for n in &nets {
        n.shutdown();
    }
}

#[test]
fn a_durable_replica_restarted_alone_votes_at_once_and_catches_up() {
    let (_mapper, epmd) = private_mapper();
    let dirs = TempDir::new("kv-durable-one");
    let (nets, t) = start("kvdo", epmd, "one", Some(&dirs));
    let mut me: Vec<_> = nets.iter().map(|n| n.node().attach()).collect();
    for i in 0..100u64 {
        t[0].put(&mut me[0], &format!("k{i}"), &i).unwrap();
    }
    // Node 3 stops; the others write on; node 3 comes back on its directory.
    drop(me.pop());
    nets[2].shutdown();
    for i in 100..200u64 {
        // A put in flight as the writer's node stops may be `Unknown`: this one is the
        // same key and value again, so it is simply sent again.
        let _ = wait_for("a put accepted", SOON, || {
            let r = t[0].put(&mut me[0], &format!("k{i}"), &i);
            (r.is_ok(), r)
        });
    }
    let names = names("kvdo");
    let back = net("kvdo3", epmd, &test_cookie());
    let t3: Table<String, u64> =
        Table::start_with(back.node(), config("one", &names, Some(dirs.node(2)))).unwrap();
    assert!(t3.group().shared().term() > 0, "its term was recovered");
    wait_for("node 3 caught up", SOON, || {
        let l = t3.get_local(&"k199".into()).unwrap();
        (l.value == Some(199), l)
    });
    // With node 1 gone, nodes 2 and 3 are a majority: node 3 voted at once.
    drop(me.remove(0));
    nets[0].shutdown();
    let mut me2 = nets[1].node().attach();
    let w = wait_for("a write accepted by nodes 2 and 3", SOON, || {
        let r = t[1].put(&mut me2, &"after".into(), &1);
        (r.is_ok(), r)
    });
    assert!(w.is_ok());
    drop(me2);
    back.shutdown();
    nets[1].shutdown();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Put latency (one client, sequential puts from node 1's replica, three replicas in
/// this process) and throughput (eight clients), durable and in memory: printed, not
/// asserted.
#[test]
fn put_latency_with_and_without_durability() {
    let (_mapper, epmd) = private_mapper();
    let dirs = TempDir::new("kv-durable-latency");
    for (prefix, durable) in [("kvlm", false), ("kvld", true)] {
        let (nets, t) = start(prefix, epmd, "latency", durable.then_some(&dirs));
        let mut me: Vec<_> = nets.iter().map(|n| n.node().attach()).collect();
        let mut took = Vec::new();
        for i in 0..400u64 {
            let start = Instant::now();
            t[0].put(&mut me[0], &format!("k{}", i % 50), &i).unwrap();
            took.push(start.elapsed());
        }
        took.sort();
        eprintln!(
            "put latency, {}: median {:?}, p99 {:?}, max {:?} ({} puts)",
            if durable {
                "durable (redb)"
            } else {
                "in memory"
            },
            percentile(&took, 0.5),
            percentile(&took, 0.99),
            took.last().unwrap(),
            took.len()
        );
        // Group commit: eight clients at once share each step's transaction.
        let started = Instant::now();
        let clients: Vec<_> = (0..8)
            .map(|c| {
                let (node, table) = (nets[c % 3].node().clone(), t[c % 3].clone());
                std::thread::spawn(move || {
                    let mut me = node.attach();
                    for i in 0..100u64 {
                        table.put(&mut me, &format!("c{c}-{i}"), &i).unwrap();
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        let rate = 800.0 / started.elapsed().as_secs_f64();
        eprintln!(
            "put throughput, {}, 8 clients: {rate:.0} puts/s",
            if durable {
                "durable (redb)"
            } else {
                "in memory"
            },
        );
        drop(me);
        for n in &nets {
            n.shutdown();
        }
    }
}
