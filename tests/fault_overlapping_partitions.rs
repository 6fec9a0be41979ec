//! OTP 25's `prevent_overlapping_partitions` (the default): after one link of a full
//! mesh is cut, the name servers cut more links until every partition is fully
//! connected, so no two connected nodes disagree on a global name's holder; when the
//! partitions meet again, one holder stays and the other is killed.
//!
//! The same scenario with the prevention off (OTP's `false`) is the checker's control:
//! the partial mesh it leaves lets two processes both get `yes` for one name, and
//! the checker must see that two connected nodes disagree.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use oxbeam::dist::{self, global};
use oxbeam::node::Net;
use oxbeam::rt::{Ctx, Flow};
use oxbeam::term::{Atom, Pid, Term};
use support::{PortMapper, SOON, net_configured, test_cookie, wait_for};

/// How long the cascade of cuts may take to settle.
const SETTLE: Duration = Duration::from_secs(10);

fn mesh(prefix: &str, prevent: bool) -> (PortMapper, Vec<Net>) {
    let mapper = PortMapper::start();
    let (port, cookie) = (mapper.port(), test_cookie());
    let nets: Vec<Net> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            net_configured(&format!("{prefix}{n}"), port, &cookie, |c| {
                c.prevent_overlapping_partitions = prevent
            })
        })
        .collect();
    for n in &nets {
        dist::start(n).unwrap();
    }
    assert!(nets[0].connect(nets[1].name().as_str()).is_ok());
    assert!(nets[0].connect(nets[2].name().as_str()).is_ok());
    for n in &nets {
        wait_for("a full mesh", SOON, || (n.nodes().len() == 2, n.nodes()));
        let mut me = n.node().attach();
        assert!(global::sync(&mut me, SOON).is_ok());
    }
    (mapper, nets)
}

/// Who is connected to whom, as each node sees it.
fn links(nets: &[Net]) -> BTreeMap<Atom, Vec<Atom>> {
    nets.iter().map(|n| (n.name(), n.nodes())).collect()
}

/// The overlaps: a node connected to two nodes that are not connected to each other.
fn overlaps(nets: &[Net]) -> Vec<String> {
    let seen = links(nets);
    let mut bad = Vec::new();
    for (x, peers) in &seen {
        for y in peers {
            for z in peers {
                let yz = seen.get(y).is_some_and(|l| l.contains(z));
                if y < z && !yz {
                    bad.push(format!("{x} sees {y} and {z}, which don't see each other"));
                }
            }
        }
    }
    bad
}

/// The disagreements: two connected nodes that name different holders for `name`.
fn disagreements(nets: &[Net], name: Atom) -> Vec<String> {
    let holder = |n: &Net| global::whereis_name(n.node(), name);
    let mut bad = Vec::new();
    for x in nets {
        for y in nets.iter().filter(|y| x.nodes().contains(&y.name())) {
            if x.name() < y.name() && holder(x) != holder(y) {
                bad.push(format!(
                    "{} says {:?}, {} says {:?}",
                    x.name(),
                    holder(x),
                    y.name(),
                    holder(y)
                ));
            }
        }
    }
    bad
}

fn idle(_: &mut Ctx, m: Term) -> Flow {
    if m.is_atom("stop") {
        Flow::stop_normal()
    } else {
        Flow::Continue
    }
}

/// Cuts a-b, waits for the mesh to settle (no more links going: a and b apart, and,
/// with the prevention on, no overlap left), then registers `name` for a process on
/// a and one on b; the two pids.
fn cut_and_register(nets: &[Net], name: Atom) -> (Pid, Pid) {
    assert!(nets[0].disconnect(nets[1].name()));
    let prevent = nets[0].prevents_overlapping_partitions();
    wait_for("the mesh to settle", SETTLE, || {
        let apart = !nets[0].nodes().contains(&nets[1].name())
            && !nets[1].nodes().contains(&nets[0].name());
        let o = overlaps(nets);
        (apart && (!prevent || o.is_empty()), (links(nets), o))
    });
    let pa = nets[0].node().spawn(idle);
    let pb = nets[1].node().spawn(idle);
    let mut ma = nets[0].node().attach();
    let mut mb = nets[1].node().attach();
    assert_eq!(global::register_name(&mut ma, name, pa), Ok(()));
    assert_eq!(
        global::register_name(&mut mb, name, pb),
        Ok(()),
        "b's partition has no holder"
    );
    (pa, pb)
}

#[test]
fn a_cut_leaves_fully_connected_partitions_that_agree_and_heal_to_one_holder() {
    let (_mapper, nets) = mesh("op1", true);
    let name = Atom::new("op_contested");
    let (pa, pb) = cut_and_register(&nets, name);
    assert_eq!(overlaps(&nets), Vec::<String>::new());
    // Registration returns once every server of the partition holds it.
    assert_eq!(
        disagreements(&nets, name),
        Vec::<String>::new(),
        "{:?}",
        links(&nets)
    );
    // The partitions meet again: one holder everywhere, the other process killed.
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        assert!(nets[i].connect(nets[j].name().as_str()).is_ok());
    }
    for n in &nets {
        let mut me = n.node().attach();
        assert!(global::sync(&mut me, SOON).is_ok());
    }
    let holder = wait_for("one holder everywhere", SETTLE, || {
        let seen: Vec<Option<Pid>> = nets
            .iter()
            .map(|n| global::whereis_name(n.node(), name))
            .collect();
        let one = seen[0].is_some() && seen.iter().all(|h| *h == seen[0]);
        (one, seen)
    })[0]
        .unwrap();
    assert!(holder == pa || holder == pb);
    let (loser, loser_node) = if holder == pa {
        (pb, &nets[1])
    } else {
        (pa, &nets[0])
    };
    wait_for("the other holder killed", SOON, || {
        (!loser_node.node().is_alive(loser), loser)
    });
    for n in &nets {
        n.shutdown();
    }
}

#[test]
fn without_the_prevention_a_partial_mesh_holds_a_name_twice_and_the_checker_says_so() {
    let (_mapper, nets) = mesh("op2", false);
    let name = Atom::new("op_twice");
    let (pa, pb) = cut_and_register(&nets, name);
    // c is still connected to both, and disagrees with one of them; both holders live.
    assert_eq!(links(&nets)[&nets[2].name()].len(), 2);
    let bad = disagreements(&nets, name);
    assert!(
        !bad.is_empty(),
        "the checker must see the partial mesh's two holders"
    );
    assert!(!overlaps(&nets).is_empty());
    assert!(nets[0].node().is_alive(pa) && nets[1].node().is_alive(pb));
    for n in &nets {
        n.shutdown();
    }
}

#[test]
fn a_lost_node_is_cut_from_the_rest_of_its_partition() {
    // Four nodes; d is cut from a: everyone else drops d or a, and what is left is
    // fully connected.
    let mapper = PortMapper::start();
    let (port, cookie) = (mapper.port(), test_cookie());
    let nets: Vec<Net> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| net_configured(&format!("op3{n}"), port, &cookie, |_| {}))
        .collect();
    for n in &nets {
        dist::start(n).unwrap();
        assert!(n.prevents_overlapping_partitions(), "on by default");
    }
    for n in &nets[1..] {
        assert!(nets[0].connect(n.name().as_str()).is_ok());
    }
    for n in &nets {
        wait_for("a full mesh", SOON, || (n.nodes().len() == 3, n.nodes()));
        let mut me = n.node().attach();
        assert!(global::sync(&mut me, SOON).is_ok());
    }
    assert!(nets[0].disconnect(nets[3].name()));
    wait_for("fully connected partitions", SETTLE, || {
        let apart = !nets[0].nodes().contains(&nets[3].name());
        let o = overlaps(&nets);
        (apart && o.is_empty(), (links(&nets), o))
    });
    for n in &nets {
        n.shutdown();
    }
}

#[test]
fn a_cut_in_a_mesh_made_transitively_settles_too() {
    // Drill 1's shape: node2 connects to node1, node3 to node2 (node1 and node3 meet
    // through node2), then node1 drops node3.
    let mapper = PortMapper::start();
    let (port, cookie) = (mapper.port(), test_cookie());
    let nets: Vec<Net> = ["a", "b", "c"]
        .iter()
        .map(|n| net_configured(&format!("op4{n}"), port, &cookie, |_| {}))
        .collect();
    for n in &nets {
        dist::start(n).unwrap();
    }
    assert!(nets[1].connect(nets[0].name().as_str()).is_ok());
    assert!(nets[2].connect(nets[1].name().as_str()).is_ok());
    for n in &nets {
        wait_for("a full mesh", SOON, || (n.nodes().len() == 2, n.nodes()));
    }
    assert!(nets[0].disconnect(nets[2].name()));
    wait_for("fully connected partitions", SETTLE, || {
        let apart = !nets[0].nodes().contains(&nets[2].name());
        let o = overlaps(&nets);
        (apart && o.is_empty(), (links(&nets), o))
    });
    for n in &nets {
        n.shutdown();
    }
}
