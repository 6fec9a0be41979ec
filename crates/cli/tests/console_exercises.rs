//! The chapter's Exercises 1-3 typed into three consoles (`node1`..`node3`, each its
//! own OS process): the exercises' modules are the services (`DistributedKV`,
//! `DistributedQueue`, `LockManager`), so their Test blocks answer as printed.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use support::console::ConsoleProc;
use support::{PortMapper, test_cookie};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn the_exercises_test_blocks_as_printed() {
    let mapper = PortMapper::start();
    let cookie = test_cookie();
    let mut n =
        ["node1", "node2", "node3"].map(|s| ConsoleProc::start(s, &cookie, mapper.port(), &[]));
    let [n1, n2, n3] = &mut n;
    assert_eq!(n2.value("Node.connect(:node1@localhost)"), "true");
    assert_eq!(n3.value("Node.connect(:node1@localhost)"), "true");
    for c in [&mut *n1, &mut *n2, &mut *n3] {
        c.eval_until("Node.list()", WAIT, |out| {
            out.last()
                .is_some_and(|l| l.matches("@localhost").count() == 2)
        });
    }

    // Exercise 1: "Start on all nodes" (the first starts every replica; the others find
    // theirs running), "Write from node1", "Read from node2 (local)".
    for c in [&mut *n1, &mut *n2, &mut *n3] {
        let started = c.value("DistributedKV.start_link()");
        assert!(started.starts_with("{:ok, #PID<"), "{started}");
    }
    assert_eq!(n1.value("DistributedKV.put(:user_1, \"Alice\")"), ":ok");
    n2.eval_until("DistributedKV.get_local(:user_1)", WAIT, |out| {
        out.last().is_some_and(|l| l == "{:ok, \"Alice\"}")
    });
    assert_eq!(n3.value("DistributedKV.get(:user_1)"), "{:ok, \"Alice\"}");
    assert_eq!(n3.value("DistributedKV.get(:nobody)"), ":not_found");

    // Exercise 3: "From any node".
    let out = n2.eval("LockManager.with_lock(:database, fn ->\n  IO.puts(\"I have exclusive access\")\n  :done\nend)");
    assert!(
        out.iter().any(|l| l == "I have exclusive access"),
        "{out:?}"
    );
    assert_eq!(out.last().map(String::as_str), Some(":done"), "{out:?}");
    let id = n1.value("{:ok, lock} = LockManager.acquire(:database)");
    assert!(id.starts_with("{:ok, {:database, "), "{id}");
    // Held on node1: node3 times out after its 200 ms.
    assert_eq!(
        n3.value("LockManager.acquire(:database, 200)"),
        "{:error, :timeout}"
    );
    assert_eq!(n1.value("LockManager.release(lock)"), ":ok");
    assert!(
        n3.value("LockManager.acquire(:database, 2000)")
            .starts_with("{:ok, {:database, ")
    );

    // Exercise 2: the queue, and the chapter's execute_task (a second's work).
    for c in [&mut *n1, &mut *n2, &mut *n3] {
        let started = c.value("DistributedQueue.start_link()");
        assert!(started.starts_with("{:ok, #PID<"), "{started}");
    }
    let queued = n1.value("{:ok, id} = DistributedQueue.enqueue(\"job1\")");
    assert!(queued.starts_with("{:ok, "), "{queued}");
    assert_eq!(
        n1.value("DistributedQueue.await(id)"),
        "{:ok, \"Processed: job1\"}"
    );
    assert_eq!(n2.value("DistributedQueue.start_worker()"), ":ok");
    for c in n.iter_mut() {
        c.quit();
    }
}
