//! Locks with fencing on three OS-process nodes: each increments a counter in the
//! replicated KV under `with_lock`, writing with its fencing token. One holder is frozen
//! (SIGSTOP) past its lease while it holds the lock, then thawed; another is SIGKILLed
//! while it holds it. No update is lost (the counter is the number of accepted writes),
//! the thawed holder's late write is refused, and the accepted writes' tokens never go
//! back (no two holders' writes interleave).
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use oxbeam::term::{Atom, Term};
use support::fault::cluster::{services_trio, spawn_on};
use support::{SOON, net, private_mapper, test_cookie};

#[test]
fn frozen_and_killed_holders_lose_no_update_and_fenced_writes_never_interleave() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let ctl = net("flctl", epmd, &cookie);
    let (mut nodes, names) = services_trio("fl", &cookie, epmd, &ctl, "oxbeam_test_locks");
    let mut me = ctl.node().attach();
    let me_pid = me.pid();
    for n in &names {
        spawn_on(
            &ctl,
            &mut me,
            n,
            (
                "oxbeam_test_locks",
                "incr_loop",
                vec![Term::Int(60), Term::Pid(me_pid)],
            ),
        );
    }
    let (frozen, killed) = (Atom::new(&names[1]), Atom::new(&names[2]));
    let mut accepted: BTreeMap<i64, (i64, Atom)> = BTreeMap::new(); // value -> (token, node)
    let mut refused = Vec::new();
    let mut failed = Vec::new();
    let mut froze_at: Option<Instant> = None;
    let mut thawed = false;
    let mut kill_done = false;
    let mut loops_done = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    // Until the two survivors' loops are done.
    while loops_done < 2 {
        assert!(
            Instant::now() < deadline,
            "not done: {} accepted",
            accepted.len()
        );
        if let Some(at) = froze_at
            && !thawed
            && at.elapsed() >= Duration::from_secs(3)
        {
            nodes[1].thaw();
            thawed = true;
            eprintln!("thawed {frozen} after 3 s (the lease is 2 s)");
        }
        let Some(m) = me.receive_timeout(Duration::from_millis(100)) else {
            continue;
        };
        let Some(parts) = m.as_tuple() else { continue };
        match parts {
            [tag, Term::Atom(node), Term::Int(token)] if tag.is_atom("acquired") => {
                if *node == frozen && froze_at.is_none() && accepted.len() >= 20 {
                    nodes[1].freeze();
                    froze_at = Some(Instant::now());
                    eprintln!("froze {frozen} holding token {token}");
                } else if *node == killed && !kill_done && thawed && accepted.len() >= 60 {
                    nodes[2].kill();
                    kill_done = true;
                    eprintln!("SIGKILLed {killed} holding token {token}");
                }
            }
            [tag, Term::Atom(node), Term::Int(token), Term::Int(value)] if tag.is_atom("incr") => {
                let before = accepted.insert(*value, (*token, *node));
                assert!(
                    before.is_none(),
                    "two accepted writes of {value}: {before:?} and {token}"
                );
            }
            [tag, Term::Atom(node), Term::Int(token), why] if tag.is_atom("refused") => {
                eprintln!("{node}'s write with token {token} failed: {why}");
                failed.push((*node, *token));
            }
            [tag, Term::Atom(node), Term::Int(token)] if tag.is_atom("fenced") => {
                refused.push((*node, *token))
            }
            [tag, Term::Atom(node)] if tag.is_atom("loop_done") && *node != killed => {
                loops_done += 1
            }
            _ => {}
        }
    }
    // The counter is the number of accepted writes, and they came in token order.
    let final_value = oxbeam::dist::rpc::call(
        &mut me,
        Atom::new(&names[0]),
        "oxbeam_test_locks",
        "read",
        vec![],
        Some(SOON),
    );
    let values: Vec<i64> = accepted.keys().copied().collect();
    let tokens: Vec<i64> = accepted.values().map(|(t, _)| *t).collect();
    eprintln!(
        "{} writes accepted, {} refused as fenced {refused:?}, final counter {final_value:?}",
        accepted.len(),
        refused.len()
    );
    assert_eq!(
        values,
        (1..=accepted.len() as i64).collect::<Vec<_>>(),
        "no update lost or doubled"
    );
    assert!(
        tokens.windows(2).all(|w| w[0] <= w[1]),
        "tokens went back: {tokens:?}"
    );
    assert_eq!(
        final_value.ok().and_then(|t| t.as_int()),
        Some(accepted.len() as i64)
    );
    assert!(froze_at.is_some() && kill_done, "both faults happened");
    // Its late write did not land: refused by the fence, or (when the frozen node led
    // the KV) never committed by its stale term.
    let late = refused.iter().chain(&failed).any(|(n, _)| *n == frozen);
    assert!(
        late,
        "the thawed holder's late write was refused: {refused:?} {failed:?}"
    );
    drop(me);
    ctl.shutdown();
}
