use super::*;

fn limits() -> Limits {
    Limits {
        max_per_node: 2,
        max_attempts: 3,
        keep_finished: 10,
    }
}

fn job(n: i64) -> Job {
    Job {
        module: Atom::new("m"),
        function: Atom::new("f"),
        args: vec![Term::Int(n)],
    }
}

fn enqueue(q: &mut QueueState, n: i64, unique: Option<&str>) -> TaskId {
    let cmd = QueueCommand::Enqueue {
        job: job(n),
        unique: unique.map(Term::str),
    };
    match q.apply(cmd, &mut Changes::default()) {
        QueueOutput::Enqueued(id) => id,
        other => panic!("{other:?}"),
    }
}

fn report(
    q: &mut QueueState,
    node: &str,
    completed: Vec<(TaskId, u64, Term)>,
    failed: Vec<(TaskId, u64, Term, u64)>,
    claim: u32,
    now_ms: u64,
) -> (Vec<Attempt>, u32, Changes) {
    let mut changes = Changes::default();
    let cmd = QueueCommand::Report {
        node: Atom::new(node),
        completed,
        failed,
        claim,
        now_ms,
    };
    match q.apply(cmd, &mut changes) {
        QueueOutput::Claimed(a, s) => (a, s, changes),
        other => panic!("{other:?}"),
    }
}

#[test]
fn claims_come_in_order_and_never_exceed_the_per_node_bound() {
    let mut q = QueueState::new(limits());
    for n in 0..5 {
        enqueue(&mut q, n, None);
    }
    let (a, _, _) = report(&mut q, "n1", vec![], vec![], 10, 0);
    assert_eq!(
        a.iter().map(|a| a.id).collect::<Vec<_>>(),
        [1, 2],
        "two per node"
    );
    let (b, _, _) = report(&mut q, "n1", vec![], vec![], 10, 0);
    assert!(b.is_empty(), "n1 is full");
    let (c, _, _) = report(&mut q, "n2", vec![], vec![], 1, 0);
    assert_eq!(c[0].id, 3);
    // A completion makes room, and the next claim takes the next in line.
    let (d, superseded, ch) = report(
        &mut q,
        "n1",
        vec![(1, a[0].token, Term::atom("ok"))],
        vec![],
        10,
        0,
    );
    assert_eq!((d.len(), d[0].id, superseded), (1, 4, 0));
    assert_eq!(ch.finished, [1]);
    assert_eq!(q.task(1).unwrap().state, TaskState::Done(Term::atom("ok")));
}

#[test]
fn a_lost_node_s_tasks_run_again_and_their_late_results_are_refused() {
    let mut q = QueueState::new(limits());
    enqueue(&mut q, 1, None);
    let (a, _, _) = report(&mut q, "n1", vec![], vec![], 1, 0);
    assert_eq!(
        q.apply(
            QueueCommand::NodeLost(Atom::new("n1")),
            &mut Changes::default()
        ),
        QueueOutput::Requeued(1)
    );
    let (b, _, _) = report(&mut q, "n2", vec![], vec![], 1, 0);
    assert_eq!(b[0].id, a[0].id);
    assert!(b[0].token > a[0].token);
    // n1's attempt answers late: refused; n2's counts.
    let (_, superseded, _) = report(
        &mut q,
        "n1",
        vec![(1, a[0].token, Term::Int(1))],
        vec![],
        0,
        0,
    );
    assert_eq!(superseded, 1);
    let (_, superseded, _) = report(
        &mut q,
        "n2",
        vec![(1, b[0].token, Term::Int(2))],
        vec![],
        0,
        0,
    );
    assert_eq!(superseded, 0);
    let t = q.task(1).unwrap();
    assert_eq!(
        (t.state.clone(), t.dispatches),
        (TaskState::Done(Term::Int(2)), 2)
    );
}

#[test]
fn crashes_back_off_then_a_dead_letter_that_can_be_requeued() {
    let mut q = QueueState::new(limits());
    enqueue(&mut q, 1, None);
    let mut now = 0;
    for crash in 1..=3 {
        let (a, _, _) = report(&mut q, "n1", vec![], vec![], 1, now);
        assert_eq!(a.len(), 1, "attempt {crash}");
        let retry_at = now + 100 * crash;
        let (none, _, ch) = report(
            &mut q,
            "n1",
            vec![],
            vec![(1, a[0].token, Term::atom("boom"), retry_at)],
            1,
            now,
        );
        assert!(none.is_empty(), "not ready before its backoff");
        if crash < 3 {
            assert!(ch.work && ch.finished.is_empty());
        } else {
            assert_eq!(ch.finished, [1]);
        }
        now = retry_at;
    }
    assert_eq!(
        q.task(1).unwrap().state,
        TaskState::Dead(Term::atom("boom"))
    );
    assert!(matches!(q.query(&QueueQuery::DeadLetters), QueueOutput::Tasks(t) if t.len() == 1));
    q.apply(QueueCommand::Requeue(1), &mut Changes::default());
    let (a, _, _) = report(&mut q, "n2", vec![], vec![], 1, now);
    assert_eq!(a[0].id, 1);
    assert_eq!(q.task(1).unwrap().failures, 0);
}

#[test]
fn a_unique_key_names_one_unfinished_task() {
    let mut q = QueueState::new(limits());
    let a = enqueue(&mut q, 1, Some("k"));
    assert_eq!(
        enqueue(&mut q, 2, Some("k")),
        a,
        "the same task while it is unfinished"
    );
    let (att, _, _) = report(&mut q, "n1", vec![], vec![], 1, 0);
    assert_eq!(
        enqueue(&mut q, 3, Some("k")),
        a,
        "running is unfinished too"
    );
    report(
        &mut q,
        "n1",
        vec![(a, att[0].token, Term::Int(0))],
        vec![],
        0,
        0,
    );
    assert_ne!(
        enqueue(&mut q, 4, Some("k")),
        a,
        "after it finished, a new one"
    );
}
