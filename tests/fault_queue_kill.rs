//! The task queue on three OS-process nodes: 10,000 tasks enqueued on one node, a node
//! SIGKILLed mid-run. Every acknowledged task runs at least once; a task runs twice only
//! if it was running on the killed node (counted and reported); and no node ever runs
//! more than 5 at once, checked at every start. Each task tells the test when it starts
//! and finishes (`oxbeam_test_queue:work/2`); a node's messages reach the test in the
//! order it sent them (one connection), so a node's count of running tasks is exact.
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use oxbeam::term::{Atom, Term};
use support::fault::cluster::{services_trio, spawn_on};
use support::{net, private_mapper, test_cookie};

const TASKS: i64 = 10_000;
const BOUND: i64 = 5;

#[test]
fn ten_thousand_tasks_survive_a_node_killed_mid_run() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let ctl = net("fqctl", epmd, &cookie);
    let (mut nodes, names) = services_trio("fq", &cookie, epmd, &ctl, "oxbeam_test_queue");
    let mut me = ctl.node().attach();
    let me_pid = me.pid();
    let args = vec![
        Term::Int(TASKS),
        Term::Int(8),
        Term::Pid(me_pid),
        Term::Pid(me_pid),
    ];
    spawn_on(
        &ctl,
        &mut me,
        &names[0],
        ("oxbeam_test_queue", "enqueue_many", args),
    );

    let killed_node = Atom::new(&names[2]);
    let mut running: BTreeMap<Atom, i64> = BTreeMap::new();
    let mut most: BTreeMap<Atom, i64> = BTreeMap::new();
    let mut starts: BTreeMap<i64, Vec<Atom>> = BTreeMap::new();
    let mut finished: BTreeSet<i64> = BTreeSet::new();
    let mut acked: Option<BTreeSet<i64>> = None;
    let mut killed_at = None;
    let mut events = 0u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = |acked: &Option<BTreeSet<i64>>, finished: &BTreeSet<i64>| {
        acked
            .as_ref()
            .is_some_and(|a| a.iter().all(|i| finished.contains(i)))
    };
    while !done(&acked, &finished) {
        assert!(
            Instant::now() < deadline,
            "not done: {} finished, acked {:?}",
            finished.len(),
            acked.as_ref().map(BTreeSet::len)
        );
        let Some(m) = me.receive_timeout(Duration::from_secs(5)) else {
            continue;
        };
        if let Some(list) = m.tagged("enqueued") {
            let ids = list[0]
                .as_list()
                .unwrap_or_default()
                .iter()
                .filter_map(Term::as_int)
                .collect();
            acked = Some(ids);
            continue;
        }
        let Some([tag, Term::Atom(node), Term::Int(i)]) = m.as_tuple() else {
            continue;
        };
        events += 1;
        let count = running.entry(*node).or_default();
        if tag.is_atom("start") {
            *count += 1;
            let peak = most.entry(*node).or_default();
            *peak = (*peak).max(*count);
            assert!(
                *count <= BOUND,
                "{node} runs {count} at once (event {events})"
            );
            starts.entry(*i).or_default().push(*node);
        } else if tag.is_atom("finish") {
            *count -= 1;
            if killed_at.is_none() || *node != killed_node {
                finished.insert(*i);
            }
        }
        if killed_at.is_none() && finished.len() >= 2000 {
            nodes[2].kill();
            killed_at = Some((Instant::now(), starts.len()));
            eprintln!(
                "SIGKILLed {killed_node} after {} tasks finished",
                finished.len()
            );
        }
    }
    let acked = acked.unwrap();
    let dups: Vec<(&i64, &Vec<Atom>)> = starts.iter().filter(|(_, s)| s.len() > 1).collect();
    let bad: Vec<_> = dups.iter().filter(|(_, s)| s[0] != killed_node).collect();
    eprintln!(
        "{} acknowledged, {} finished, {} ran twice or more (all first started on {killed_node}: {}), most at once {most:?}, {events} events",
        acked.len(),
        finished.len(),
        dups.len(),
        bad.is_empty()
    );
    assert!(
        acked.len() as i64 >= TASKS * 9 / 10,
        "most enqueues acknowledged: {}",
        acked.len()
    );
    assert!(
        bad.is_empty(),
        "ran twice without having run on the killed node: {bad:?}"
    );
    assert!(killed_at.is_some(), "the kill happened mid-run");
    drop(me);
    ctl.shutdown();
}
