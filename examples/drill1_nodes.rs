// cargo run --release --example drill1_nodes
//! Drill 1: nodes. Three named nodes in one OS process, on a private port mapper:
//! node2 connects to node1 and node3 to node2, and the mesh turns out transitive
//! (node1 and node3 meet without asking); `Node.list()`, `Node.list([:this,
//! :visible])`, `node()`; then `Node.disconnect` and the lists shrink on both sides.
//!
//! ```elixir
//! iex(node2@localhost)> Node.connect(:node1@localhost)
//! true
//! iex(node3@localhost)> Node.connect(:node2@localhost)
//! true
//! Node.list()                    # every other node: the mesh is full
//! Node.list([:this, :visible])
//! node()
//! Node.disconnect(:node3@localhost)
//! ```
//!
//! Each node is `Node::builder().name(..).cookie(..).start()?`; `node.connect(..)` is
//! `Node.connect/1`, `Ok(())` for `true` and a typed `ConnectError` for `false`.

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use common::{SOON, Transcript, atoms, wait_for};
use oxbeam::prelude::*;

fn main() -> ExitCode {
    common::init_logging();
    let mut t = Transcript::new("drill1_nodes", "a transitive mesh of three nodes");
    let outcome = run(&mut t);
    t.finish(outcome)
}

/// The sorted names of `nodes`.
fn names(nodes: &[&Node]) -> Vec<Atom> {
    let mut v: Vec<Atom> = nodes.iter().map(|n| n.name()).collect();
    v.sort();
    v
}

/// Waits until `node` lists exactly `want`, then prints `Node.list()` there.
fn expect_list(t: &mut Transcript, node: &Node, want: &[Atom]) {
    let what = format!("Node.list() on {} to be {}", node.name(), atoms(want));
    let seen = wait_for(&what, SOON, || {
        let seen = node.nodes();
        if seen == want { Ok(seen) } else { Err(seen) }
    });
    match seen {
        Ok(seen) => {
            t.iex(node.name().as_str(), "Node.list()", atoms(&seen));
            t.check(true, format!("{} sees {}", node.name(), atoms(want)));
        }
        Err(e) => {
            t.check(false, e);
        }
    }
}

/// `Node.connect(peer)` on `node`, printed as iex prints it (`true` or `false`), with
/// the reason of a failure.
fn connect(t: &mut Transcript, node: &Node, peer: &str) -> bool {
    let result = node.connect(peer);
    t.iex(
        node.name().as_str(),
        &format!("Node.connect(:{peer})"),
        term!(result.is_ok()),
    );
    if let Err(e) = &result {
        t.say(format!("({e})"));
    }
    t.check(
        result.is_ok(),
        format!("{} connected to {peer}", node.name()),
    )
}

fn run(t: &mut Transcript) -> Result<(), Box<dyn std::error::Error>> {
    let cookie = common::fresh_cookie();
    // No cluster services here: nothing but the connections themselves. node1 hosts a
    // private port mapper (port 0: on a port it picks); the others are given its port.
    let start = |name: &str, port_mapper: u16| {
        common::drill_node(name, &cookie, port_mapper)
            .without_services()
            .start()
    };
    let node1 = start("node1@localhost", 0)?;
    let epmd = common::epmd_port(&node1);
    t.say(format!(
        "port mapper on 127.0.0.1:{epmd} (hosted by the first node), cookie set explicitly"
    ));
    let node2 = start("node2@localhost", epmd)?;
    let node3 = start("node3@localhost", epmd)?;
    let all = [&node1, &node2, &node3];

    t.step("node()");
    for (i, n) in all.iter().enumerate() {
        t.iex(n.name().as_str(), "node()", n.name());
        let want = format!("node{}@localhost", i + 1);
        t.check(n.name().as_str() == want, format!("node() is {}", n.name()));
    }
    t.check(
        all.iter().all(|n| n.nodes().is_empty()),
        "before any connect, every Node.list() is []",
    );

    t.step("Node.connect: node2 -> node1, node3 -> node2");
    connect(t, &node2, "node1@localhost");
    connect(t, &node3, "node2@localhost");

    t.step("the mesh is transitive: node1 and node3 meet through node2");
    expect_list(t, &node1, &names(&[&node2, &node3]));
    expect_list(t, &node2, &names(&[&node1, &node3]));
    expect_list(t, &node3, &names(&[&node1, &node2]));
    let this_visible = common::net(&node2).nodes_and_this();
    t.iex(
        "node2@localhost",
        "Node.list([:this, :visible])",
        atoms(&this_visible),
    );
    let mut sorted = this_visible.clone();
    sorted.sort();
    t.check(
        this_visible.first() == Some(&node2.name()) && sorted == names(&all),
        "Node.list([:this, :visible]) is node() followed by the other two",
    );

    t.step("Node.disconnect: node1 drops node3, then node2 drops everyone");
    let done = node1.disconnect(node3.name());
    t.iex(
        "node1@localhost",
        "Node.disconnect(:node3@localhost)",
        term!(done),
    );
    t.check(done, "node1 had a connection to node3 to close");
    // Both ends see it go; node2 keeps both of its connections (nothing re-meshes
    // until a new connection comes up). These nodes run without the cluster services:
    // with global running, OTP 25's prevent_overlapping_partitions would cut node2's
    // links too, until every partition is fully connected (tests/
    // fault_overlapping_partitions.rs; the console drills show that).
    expect_list(t, &node1, &names(&[&node2]));
    expect_list(t, &node3, &names(&[&node2]));
    expect_list(t, &node2, &names(&[&node1, &node3]));
    for other in [&node1, &node3] {
        let done = node2.disconnect(other.name());
        t.iex(
            "node2@localhost",
            &format!("Node.disconnect({})", other.name()),
            term!(done),
        );
        t.check(
            done,
            format!("node2 closed its connection to {}", other.name()),
        );
    }
    for n in all {
        expect_list(t, n, &[]);
    }
    let again = node1.disconnect(node3.name());
    t.iex(
        "node1@localhost",
        "Node.disconnect(:node3@localhost)",
        term!(again),
    );
    t.check(
        !again,
        "disconnecting a node that is not connected gives false",
    );
    let alone = common::net(&node1).nodes_and_this();
    t.iex(
        "node1@localhost",
        "Node.list([:this, :visible])",
        atoms(&alone),
    );
    t.check(
        alone == vec![node1.name()],
        "alone again: Node.list([:this, :visible]) is just node()",
    );

    for n in all {
        n.shutdown();
    }
    Ok(())
}
