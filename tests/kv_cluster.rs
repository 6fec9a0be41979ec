//! The replicated KV on three nodes in this process over loopback: writes acknowledged by
//! a majority and read back linearizably and locally from every node, compare-and-set,
//! keys and select, watches that resume without gap or duplicate, and the writer's node
//! shut down (failover: writes accepted again, nothing acknowledged lost). The faults
//! that need separate OS processes (kill -9, SIGSTOP, link cuts) are in
//! `fault_kv_*.rs`.
mod support;

use std::time::{Duration, Instant};

use oxbeam::group::Freshness;
use oxbeam::kv::{Event, Expect, KvError, Table};
use oxbeam::term::Term;
use support::{SOON, wait_for};

use support::Trio as Cluster;

fn cluster(prefix: &str) -> Cluster {
    support::trio(prefix)
}

impl Cluster {
    fn tables<V: serde::Serialize + serde::de::DeserializeOwned + 'static>(
        &self,
        name: &str,
    ) -> Vec<Table<String, V>> {
        let tables = self
            .nets
            .iter()
            .map(|n| Table::start(n.node(), name, &self.names).expect("the replica starts"))
            .collect::<Vec<_>>();
        // Event-driven: each replica knows the writer before the test writes.
        for (table, net) in tables.iter().zip(&self.nets) {
            let mut me = net.node().attach();
            table
                .wait_for_writer(&mut me, SOON)
                .expect("a writer is elected");
        }
        tables
    }
}

/// The index of the replica that leads, once one does (and the others know it).
fn leader<V: serde::Serialize + serde::de::DeserializeOwned + 'static>(
    tables: &[Table<String, V>],
) -> usize {
    wait_for("a leader", SOON, || {
        let leading: Vec<usize> = (0..tables.len())
            .filter(|i| tables[*i].group().shared().is_leader())
            .collect();
        (leading.len() == 1, leading)
    })[0]
}

#[test]
fn writes_are_read_back_linearizably_and_locally_everywhere() {
    let c = cluster("kva");
    let t = c.tables::<String>("users");
    let mut me: Vec<_> = c.nets.iter().map(|n| n.node().attach()).collect();
    // A write from any node: its replica sends it to the writer.
    let w = t[0]
        .put(&mut me[0], &"user_1".into(), &"Alice".into())
        .expect("a majority takes it");
    assert_eq!(w.previous, None);
    let w2 = t[2]
        .put(&mut me[2], &"user_1".into(), &"Alicia".into())
        .unwrap();
    assert_eq!(w2.previous.as_deref(), Some("Alice"));
    assert!(w2.revision > w.revision);
    // Linearizable reads from every node see the last acknowledged write.
    for (i, table) in t.iter().enumerate() {
        let got = table.get(&mut me[i], &"user_1".into()).unwrap();
        assert_eq!(got, Some(("Alicia".to_string(), w2.revision)), "node {i}");
    }
    // Local reads: no message; each node's copy catches up within a heartbeat or two.
    for table in &t {
        let local = wait_for("the local copy", SOON, || {
            let l = table.get_local(&"user_1".into()).unwrap();
            (l.value.as_deref() == Some("Alicia"), l)
        });
        assert!(local.revision >= w2.revision);
        assert_eq!(local.freshness, Freshness::Current);
    }
    assert_eq!(t[1].get(&mut me[1], &"nobody".into()).unwrap(), None);
    // Delete, keys, select by key pattern.
    for k in ["user_2", "user_3", "other"] {
        t[1].put(&mut me[1], &k.into(), &format!("v-{k}")).unwrap();
    }
    let gone = t[0].delete(&mut me[0], &"user_3".into()).unwrap();
    assert_eq!(gone.previous.as_deref(), Some("v-user_3"));
    assert_eq!(
        t[2].keys(&mut me[2]).unwrap(),
        ["other", "user_1", "user_2"]
    );
    let users: Table<Term, Term> = Table::open(c.nets[1].node(), "users").unwrap();
    let rows = users.select(&mut me[1], &Term::atom("_")).unwrap();
    assert_eq!(rows.len(), 3);
    let exact = users.select(&mut me[1], &Term::str("user_2")).unwrap();
    assert_eq!(exact, [(Term::str("user_2"), Term::str("v-user_2"))]);
}

#[test]
fn compare_and_set_against_absence_and_the_last_write() {
    let c = cluster("kvb");
    let t = c.tables::<i64>("counters");
    let mut me: Vec<_> = c.nets.iter().map(|n| n.node().attach()).collect();
    let k = "hits".to_string();
    let first = t[0]
        .compare_and_set(&mut me[0], &k, Expect::Absent, &1)
        .unwrap();
    let rev = first.expect("absent: written").revision;
    let again = t[1]
        .compare_and_set(&mut me[1], &k, Expect::Absent, &1)
        .unwrap();
    assert_eq!(again.unwrap_err().current, Some((1, rev)));
    let stale = t[2]
        .compare_and_set(&mut me[2], &k, Expect::Modified(rev - 1), &5)
        .unwrap();
    assert!(stale.is_err());
    let ok = t[2]
        .compare_and_set(&mut me[2], &k, Expect::Modified(rev), &2)
        .unwrap();
    assert!(ok.is_ok());
    assert_eq!(t[0].get(&mut me[0], &k).unwrap().map(|(v, _)| v), Some(2));
}

#[test]
fn a_watcher_resumes_from_its_last_revision_without_gap_or_duplicate() {
    let c = cluster("kvc");
    let t = c.tables::<String>("watched");
    let mut me: Vec<_> = c.nets.iter().map(|n| n.node().attach()).collect();
    let mut revisions = Vec::new();
    for i in 0..5 {
        revisions.push(
            t[0].put(&mut me[0], &format!("k{i}"), &format!("v{i}"))
                .unwrap()
                .revision,
        );
    }
    // A watcher on node 3 from revision 0 gets all five, then new ones live.
    wait_for("node 3's copy", SOON, || {
        let r = t[2].get_local(&"k4".into()).unwrap().revision;
        (r >= revisions[4], r)
    });
    let watch = t[2].subscribe(&mut me[2], 0).unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        match t[2].next_event(&mut me[2], watch, SOON) {
            Some(Ok(Event::Put { revision, .. })) => seen.push(revision),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen, revisions);
    t[1].delete(&mut me[1], &"k0".into()).unwrap();
    match t[2].next_event(&mut me[2], watch, SOON) {
        Some(Ok(Event::Deleted { key, .. })) => assert_eq!(key, "k0"),
        other => panic!("{other:?}"),
    }
    // Away: it unsubscribes having seen revision r; writes go on; it resumes from r.
    let last_seen = revisions[4];
    t[2].unsubscribe(watch);
    let later = t[0]
        .put(&mut me[0], &"k9".into(), &"v9".into())
        .unwrap()
        .revision;
    wait_for("node 3's copy", SOON, || {
        let r = t[2].get_local(&"k9".into()).unwrap().revision;
        (r >= later, r)
    });
    let _ = me[2].flush();
    let resumed = t[2].subscribe(&mut me[2], last_seen).unwrap();
    let mut after = Vec::new();
    while let Some(Ok(e)) = t[2].next_event(&mut me[2], resumed, Duration::from_millis(200)) {
        after.push(match e {
            Event::Put { revision, .. } | Event::Deleted { revision, .. } => revision,
        });
    }
    assert_eq!(after.len(), 2, "the delete and k9, once each: {after:?}");
    assert_eq!(after.last(), Some(&later));
    assert!(after.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn when_the_writer_stops_another_is_chosen_and_nothing_acknowledged_is_lost() {
    let c = cluster("kvd");
    let t = c.tables::<u64>("failover");
    let mut me: Vec<_> = c.nets.iter().map(|n| n.node().attach()).collect();
    let l = leader(&t);
    let mut acked = Vec::new();
    for i in 0..50u64 {
        let from = (l + 1) % 3;
        t[from].put(&mut me[from], &format!("k{i}"), &i).unwrap();
        acked.push(i);
    }
    // The writer's node goes away.
    drop(me.remove(l));
    c.nets[l].shutdown();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != l).collect();
    let s = survivors[0];
    let me_s = &mut me[if s < l { s } else { s - 1 }];
    let start = Instant::now();
    let w = wait_for("a write accepted again", SOON, || {
        let r = t[s].put(me_s, &"after".into(), &1);
        (r.is_ok(), r)
    });
    let took = start.elapsed();
    eprintln!("failover: writes accepted again {took:?} after the writer stopped");
    assert!(w.is_ok());
    for i in acked {
        assert_eq!(
            t[s].get(me_s, &format!("k{i}")).unwrap().map(|(v, _)| v),
            Some(i)
        );
    }
}

#[test]
fn a_lone_replica_refuses_writes_and_marks_its_reads_stale() {
    let c = cluster("kve");
    let t = c.tables::<u64>("alone");
    let mut me: Vec<_> = c.nets.iter().map(|n| n.node().attach()).collect();
    t[0].put(&mut me[0], &"x".into(), &1).unwrap();
    wait_for("node 1's copy", SOON, || {
        let v = t[0].get_local(&"x".into()).unwrap();
        (v.value == Some(1), v)
    });
    // Two of three stop: the one left has no majority.
    for i in [1, 2] {
        c.nets[i].shutdown();
    }
    let refused = wait_for("a write refused", SOON, || {
        let r = t[0].put(&mut me[0], &"y".into(), &2);
        (matches!(r, Err(KvError::NoQuorum | KvError::Unknown)), r)
    });
    eprintln!("refused: {refused:?}");
    let stale = wait_for("local reads marked stale", Duration::from_secs(3), || {
        let v = t[0].get_local(&"x".into()).unwrap();
        (v.freshness == Freshness::Stale, v)
    });
    assert_eq!(
        stale.value,
        Some(1),
        "the copy is still readable, marked stale"
    );
    let start = Instant::now();
    assert_eq!(
        t[0].put(&mut me[0], &"z".into(), &3),
        Err(KvError::NoQuorum)
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "refused within a second or so"
    );
}
