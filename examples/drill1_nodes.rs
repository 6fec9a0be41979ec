// cargo run --release --example drill1_nodes
//! Drill 1: nodes. Three named nodes in one OS process, on a private port mapper:
//! node2 connects to node1 and node3 to node2, and the mesh turns out transitive
//! (node1 and node3 meet without asking); `Node.list()`, `Node.list([:this,
//! :visible])`, `node()`; then `Node.disconnect` and the lists shrink on both sides.

#[path = "common/mod.rs"]
mod common;

use std::process::ExitCode;

use common::{SOON, Transcript, atoms, wait_for};
use oxbeam::node::Net;
use oxbeam::term::{Atom, Term};

fn main() -> ExitCode {
    common::init_logging();
    let mut t = Transcript::new("drill1_nodes", "a transitive mesh of three nodes");
    let outcome = run(&mut t);
    t.finish(outcome)
}

/// The sorted names of `nets`.
fn names(nets: &[&Net]) -> Vec<Atom> {
    let mut v: Vec<Atom> = nets.iter().map(|n| n.name()).collect();
    v.sort();
    v
}

/// Waits until `net` lists exactly `want`, then prints `Node.list()` there.
fn expect_list(t: &mut Transcript, net: &Net, want: &[Atom]) -> Result<(), String> {
    let what = format!("Node.list() on {} to be {}", net.name(), atoms(want));
    let seen = wait_for(&what, SOON, || {
        let seen = net.nodes();
        if seen == want { Ok(seen) } else { Err(seen) }
    });
    match seen {
        Ok(seen) => {
            t.iex(net.name().as_str(), "Node.list()", atoms(&seen));
            t.check(true, format!("{} sees {}", net.name(), atoms(want)));
            Ok(())
        }
        Err(e) => {
            t.check(false, e);
            Ok(())
        }
    }
}

fn run(t: &mut Transcript) -> Result<(), String> {
    let cookie = common::fresh_cookie();
    // No cluster services here: nothing but the connections themselves. node1 hosts a
    // private port mapper (port 0: on a port it picks); the others are given its port.
    let n1 = common::start_bare_net("node1", 0, &cookie)?;
    let epmd = n1.epmd_port();
    t.say(format!(
        "port mapper on 127.0.0.1:{epmd} (hosted by the first node), cookie set explicitly"
    ));
    let n2 = common::start_bare_net("node2", epmd, &cookie)?;
    let n3 = common::start_bare_net("node3", epmd, &cookie)?;

    t.step("node()");
    for n in [&n1, &n2, &n3] {
        let me = Term::Atom(n.name());
        t.iex(n.name().as_str(), "node()", &me);
        let want = format!(
            "{}@localhost",
            n.name().as_str().split('@').next().unwrap_or("")
        );
        t.check(n.name().as_str() == want, format!("node() is {me}"));
    }
    t.check(
        n1.nodes().is_empty() && n2.nodes().is_empty() && n3.nodes().is_empty(),
        "before any connect, every Node.list() is []",
    );

    t.step("Node.connect: node2 -> node1, node3 -> node2");
    let up = n2.connect("node1@localhost").is_ok();
    t.iex(
        "node2@localhost",
        "Node.connect(:node1@localhost)",
        Term::from(up),
    );
    t.check(up, "node2 connected to node1");
    let up = n3.connect("node2@localhost").is_ok();
    t.iex(
        "node3@localhost",
        "Node.connect(:node2@localhost)",
        Term::from(up),
    );
    t.check(up, "node3 connected to node2");

    t.step("the mesh is transitive: node1 and node3 meet through node2");
    expect_list(t, &n1, &names(&[&n2, &n3]))?;
    expect_list(t, &n2, &names(&[&n1, &n3]))?;
    expect_list(t, &n3, &names(&[&n1, &n2]))?;
    let this_visible = n2.nodes_and_this();
    t.iex(
        "node2@localhost",
        "Node.list([:this, :visible])",
        atoms(&this_visible),
    );
    let mut sorted = this_visible.clone();
    sorted.sort();
    t.check(
        this_visible.first() == Some(&n2.name()) && sorted == names(&[&n1, &n2, &n3]),
        "Node.list([:this, :visible]) is node() followed by the other two",
    );

    t.step("Node.disconnect: node1 drops node3, then node2 drops everyone");
    let done = n1.disconnect(n3.name());
    t.iex(
        "node1@localhost",
        "Node.disconnect(:node3@localhost)",
        Term::from(done),
    );
    t.check(done, "node1 had a connection to node3 to close");
    // Both ends see it go; node2 keeps both of its connections (nothing re-meshes
    // until a new connection comes up).
    expect_list(t, &n1, &names(&[&n2]))?;
    expect_list(t, &n3, &names(&[&n2]))?;
    expect_list(t, &n2, &names(&[&n1, &n3]))?;
    for other in [&n1, &n3] {
        let done = n2.disconnect(other.name());
        t.iex(
            "node2@localhost",
            &format!("Node.disconnect({})", Term::Atom(other.name())),
            Term::from(done),
        );
        t.check(
            done,
            format!("node2 closed its connection to {}", other.name()),
        );
    }
    for n in [&n1, &n2, &n3] {
        expect_list(t, n, &[])?;
    }
    let again = n1.disconnect(n3.name());
    t.iex(
        "node1@localhost",
        "Node.disconnect(:node3@localhost)",
        Term::from(again),
    );
    t.check(
        !again,
        "disconnecting a node that is not connected gives false",
    );
    t.iex(
        "node1@localhost",
        "Node.list([:this, :visible])",
        atoms(&n1.nodes_and_this()),
    );
    t.check(
        n1.nodes_and_this() == vec![n1.name()],
        "alone again: Node.list([:this, :visible]) is just node()",
    );

    for n in [n1, n2, n3] {
        n.shutdown();
    }
    Ok(())
}
