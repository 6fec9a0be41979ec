use super::*;
use crate::term::Atom;

fn pid(n: u32) -> Pid {
    Pid::from_parts(Atom::new("t@localhost"), 1, n as u64)
}

fn req(n: u64) -> Ref {
    Ref::from_parts(Atom::new("t@localhost"), 1, n)
}

fn acquire(
    s: &mut LockState,
    res: &str,
    owner: u32,
    mode: Mode,
    r: u64,
) -> (LockOutput, Vec<Grant>) {
    let mut g = Vec::new();
    let out = s.apply(
        LockCommand::Acquire {
            resource: Term::atom(res),
            owner: pid(owner),
            mode,
            request: req(r),
        },
        &mut g,
    );
    (out, g)
}

fn release(s: &mut LockState, res: &str, token: u64) -> (LockOutput, Vec<Grant>) {
    let mut g = Vec::new();
    let out = s.apply(
        LockCommand::Release {
            resource: Term::atom(res),
            token,
        },
        &mut g,
    );
    (out, g)
}

#[test]
fn grants_are_first_come_first_served_with_increasing_tokens() {
    let mut s = LockState::default();
    assert_eq!(
        acquire(&mut s, "r", 1, Mode::Exclusive, 1).0,
        LockOutput::Granted(1)
    );
    assert_eq!(
        acquire(&mut s, "r", 2, Mode::Exclusive, 2).0,
        LockOutput::Queued
    );
    assert_eq!(
        acquire(&mut s, "r", 3, Mode::Exclusive, 3).0,
        LockOutput::Queued
    );
    let (out, g) = release(&mut s, "r", 1);
    assert_eq!(out, LockOutput::Done);
    assert_eq!((g[0].owner, g[0].token), (pid(2), 2));
    assert_eq!(
        release(&mut s, "r", 1).0,
        LockOutput::NotHolder,
        "released twice"
    );
    let (_, g) = release(&mut s, "r", 2);
    assert_eq!((g[0].owner, g[0].token), (pid(3), 3));
    release(&mut s, "r", 3);
    // Idle, then taken again: the token goes on from where it was.
    assert_eq!(
        acquire(&mut s, "r", 1, Mode::Exclusive, 4).0,
        LockOutput::Granted(4)
    );
    // Another resource counts its own.
    assert_eq!(
        acquire(&mut s, "other", 1, Mode::Exclusive, 5).0,
        LockOutput::Granted(1)
    );
}

#[test]
fn readers_share_and_a_waiting_writer_is_not_passed() {
    let mut s = LockState::default();
    assert_eq!(
        acquire(&mut s, "rw", 1, Mode::Shared, 1).0,
        LockOutput::Granted(1)
    );
    assert_eq!(
        acquire(&mut s, "rw", 2, Mode::Shared, 2).0,
        LockOutput::Granted(2)
    );
    assert_eq!(
        acquire(&mut s, "rw", 3, Mode::Exclusive, 3).0,
        LockOutput::Queued
    );
    // A reader after the waiting writer waits behind it: no writer starvation.
    assert_eq!(
        acquire(&mut s, "rw", 4, Mode::Shared, 4).0,
        LockOutput::Queued
    );
    assert!(release(&mut s, "rw", 1).1.is_empty());
    let (_, g) = release(&mut s, "rw", 2);
    assert_eq!(g.len(), 1);
    assert_eq!(g[0].owner, pid(3));
    let (_, g) = release(&mut s, "rw", g[0].token);
    assert_eq!(g[0].owner, pid(4));
}

#[test]
fn a_semaphore_admits_its_permits_and_refuses_another_count() {
    let mut s = LockState::default();
    for i in 1..=3 {
        assert!(matches!(
            acquire(&mut s, "sem", i, Mode::Permit(3), i as u64).0,
            LockOutput::Granted(_)
        ));
    }
    assert_eq!(
        acquire(&mut s, "sem", 4, Mode::Permit(3), 4).0,
        LockOutput::Queued
    );
    assert!(matches!(
        acquire(&mut s, "sem", 5, Mode::Permit(2), 5).0,
        LockOutput::Refused(_)
    ));
    assert!(matches!(
        acquire(&mut s, "sem", 5, Mode::Exclusive, 6).0,
        LockOutput::Refused(_)
    ));
    let (_, g) = release(&mut s, "sem", 2);
    assert_eq!(g[0].owner, pid(4));
}

#[test]
fn a_cancel_that_comes_too_late_reports_the_grant() {
    let mut s = LockState::default();
    acquire(&mut s, "r", 1, Mode::Exclusive, 1);
    acquire(&mut s, "r", 2, Mode::Exclusive, 2);
    acquire(&mut s, "r", 3, Mode::Exclusive, 3);
    let mut g = Vec::new();
    let cancel = |r| LockCommand::Cancel {
        resource: Term::atom("r"),
        request: req(r),
    };
    assert_eq!(s.apply(cancel(2), &mut g), LockOutput::Cancelled);
    let (_, granted) = release(&mut s, "r", 1);
    assert_eq!(granted[0].owner, pid(3), "the cancelled waiter was skipped");
    assert_eq!(
        s.apply(cancel(3), &mut g),
        LockOutput::Granted(granted[0].token)
    );
    assert_eq!(
        s.query(&LockQuery::Granted(Term::atom("r"), req(3))),
        LockOutput::Granted(granted[0].token)
    );
}

#[test]
fn an_acquire_sent_again_is_answered_as_it_stands() {
    let mut s = LockState::default();
    assert_eq!(
        acquire(&mut s, "r", 1, Mode::Exclusive, 1).0,
        LockOutput::Granted(1)
    );
    assert_eq!(
        acquire(&mut s, "r", 1, Mode::Exclusive, 1).0,
        LockOutput::Granted(1),
        "not a second grant"
    );
    assert_eq!(
        acquire(&mut s, "r", 2, Mode::Exclusive, 2).0,
        LockOutput::Queued
    );
    assert_eq!(
        acquire(&mut s, "r", 2, Mode::Exclusive, 2).0,
        LockOutput::Queued
    );
    let (_, g) = release(&mut s, "r", 1);
    assert_eq!((g.len(), g[0].token), (1, 2), "queued once");
}
