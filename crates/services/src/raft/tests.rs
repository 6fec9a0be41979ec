//! Scenarios of the Raft core, message by message (the model checker covers every
//! interleaving of a small cluster; these pin the ordinary paths and a larger one).

use super::*;

type Net = Vec<(ReplicaId, ReplicaId, Msg<&'static str>)>;

fn cluster(n: usize) -> Vec<Replica<&'static str>> {
    (0..n).map(|i| Replica::new(i, n)).collect()
}

fn queue(from: ReplicaId, out: Outbox<&'static str>, net: &mut Net) {
    net.extend(out.into_iter().map(|(to, m)| (from, to, m)));
}

/// Delivers everything in flight (and what it prompts) except to or from `cut`.
fn settle(rs: &mut [Replica<&'static str>], net: &mut Net, cut: Option<ReplicaId>) {
    while !net.is_empty() {
        let (from, to, msg) = net.remove(0);
        if Some(from) == cut || Some(to) == cut {
            continue;
        }
        let mut out = Vec::new();
        rs[to].receive(from, msg, &mut out);
        queue(to, out, net);
    }
}

fn elect(rs: &mut [Replica<&'static str>], who: ReplicaId, net: &mut Net) {
    let mut out = Vec::new();
    rs[who].election_timeout(&mut out);
    queue(who, out, net);
    settle(rs, net, None);
    assert!(rs[who].is_leader());
}

fn tick(rs: &mut [Replica<&'static str>], who: ReplicaId, net: &mut Net, cut: Option<ReplicaId>) {
    let mut out = Vec::new();
    rs[who].heartbeat(&mut out);
    queue(who, out, net);
    settle(rs, net, cut);
}

#[test]
fn a_leader_is_elected_and_its_entries_commit_everywhere() {
    let mut rs = cluster(3);
    let mut net = Vec::new();
    elect(&mut rs, 0, &mut net);
    assert_eq!(rs[1].propose("x"), Err(NotLeader::Leader(0)));
    assert_eq!(rs[0].propose("x"), Ok(1));
    assert_eq!(rs[0].propose("y"), Ok(2));
    assert_eq!(
        rs[0].commit, 0,
        "nothing commits before a majority holds it"
    );
    tick(&mut rs, 0, &mut net, None);
    assert_eq!(rs[0].commit, 2);
    // Followers learn the commit index on the next append.
    tick(&mut rs, 0, &mut net, None);
    for r in &rs {
        assert_eq!(
            r.committed().iter().map(|e| e.cmd).collect::<Vec<_>>(),
            ["x", "y"]
        );
    }
}

#[test]
fn a_follower_cut_off_catches_up_and_a_stale_leader_steps_down() {
    let mut rs = cluster(5);
    let mut net = Vec::new();
    elect(&mut rs, 0, &mut net);
    for cmd in ["a", "b", "c"] {
        rs[0].propose(cmd).unwrap();
        tick(&mut rs, 0, &mut net, Some(4));
    }
    assert_eq!(rs[0].commit, 3, "four of five are a majority");
    assert!(rs[4].log.is_empty());
    // Replica 4 comes back: the leader backs its next index off until the logs meet.
    for _ in 0..5 {
        tick(&mut rs, 0, &mut net, None);
    }
    assert_eq!(rs[4].committed().len(), 3);
    // A new election elsewhere: the old leader, on hearing the new term, follows.
    let mut out = Vec::new();
    rs[2].election_timeout(&mut out);
    queue(2, out, &mut net);
    settle(&mut rs, &mut net, None);
    assert!(rs[2].is_leader());
    assert!(!rs[0].is_leader());
    assert_eq!(rs[0].term, rs[2].term);
}

#[test]
fn an_uncommitted_entry_of_a_lost_leader_is_replaced() {
    let mut rs = cluster(3);
    let mut net = Vec::new();
    elect(&mut rs, 0, &mut net);
    // Leader 0 appends "lost" but is cut off before anyone holds it.
    rs[0].propose("lost").unwrap();
    // Replica 1 is elected (its log, empty, is as up to date as 2's) and commits "kept".
    let mut out = Vec::new();
    rs[1].election_timeout(&mut out);
    queue(1, out, &mut net);
    settle(&mut rs, &mut net, Some(0));
    assert!(rs[1].is_leader());
    rs[1].propose("kept").unwrap();
    tick(&mut rs, 1, &mut net, Some(0));
    assert_eq!(rs[1].commit, 1);
    // 0 returns: its conflicting entry goes, and it holds what was committed.
    tick(&mut rs, 1, &mut net, None);
    tick(&mut rs, 1, &mut net, None);
    assert_eq!(
        rs[0].committed().iter().map(|e| e.cmd).collect::<Vec<_>>(),
        ["kept"]
    );
    assert!(!rs[0].is_leader());
}

#[test]
fn a_candidate_behind_gets_no_vote_and_a_single_replica_leads_alone() {
    let mut rs = cluster(3);
    let mut net = Vec::new();
    elect(&mut rs, 0, &mut net);
    rs[0].propose("x").unwrap();
    tick(&mut rs, 0, &mut net, Some(2));
    // 2 never got "x": its candidacy is refused by 0 and 1, whose logs are ahead.
    let mut out = Vec::new();
    rs[2].election_timeout(&mut out);
    queue(2, out, &mut net);
    settle(&mut rs, &mut net, None);
    assert!(!rs[2].is_leader());
    let mut alone = cluster(1);
    let mut out = Vec::new();
    alone[0].election_timeout(&mut out);
    assert!(alone[0].is_leader() && out.is_empty());
    assert_eq!(alone[0].propose("solo"), Ok(1));
    assert_eq!(alone[0].commit, 1);
}

#[test]
fn a_follower_far_behind_catches_up_in_batches_and_from_a_snapshot() {
    // The snapshot is the commands applied, joined: enough to check what arrives.
    let mut rs: Vec<Replica<u32, Vec<u32>>> = (0..3).map(|i| Replica::new(i, 3)).collect();
    for r in &mut rs {
        r.max_batch = 100;
    }
    let mut net: Vec<(ReplicaId, ReplicaId, Msg<u32, Vec<u32>>)> = Vec::new();
    let run = |rs: &mut [Replica<u32, Vec<u32>>], net: &mut Vec<_>, cut: Option<ReplicaId>| {
        let mut sent = 0;
        while !net.is_empty() {
            let (from, to, msg): (ReplicaId, ReplicaId, Msg<u32, Vec<u32>>) = net.remove(0);
            if Some(from) == cut || Some(to) == cut {
                continue;
            }
            sent += 1;
            let mut out = Vec::new();
            rs[to].receive(from, msg, &mut out);
            net.extend(out.into_iter().map(|(t, m)| (to, t, m)));
        }
        sent
    };
    let mut out = Vec::new();
    rs[0].election_timeout(&mut out);
    net.extend(out.drain(..).map(|(t, m)| (0, t, m)));
    run(&mut rs, &mut net, None);
    // 1,000 entries while replica 2 is away; one replicate per 50 proposals.
    for i in 0..1000u32 {
        rs[0].propose(i).unwrap();
        if i % 50 == 49 {
            rs[0].replicate(&mut out);
            net.extend(out.drain(..).map(|(t, m)| (0, t, m)));
            run(&mut rs, &mut net, Some(2));
        }
    }
    assert_eq!(rs[0].commit, 1000);
    // Replica 2 returns: batches of at most 100, each prompted by the last's answer.
    rs[0].heartbeat(&mut out);
    net.extend(out.drain(..).map(|(t, m)| (0, t, m)));
    let sent = run(&mut rs, &mut net, None);
    assert_eq!(rs[2].last_index(), 1000);
    assert!(sent < 40, "{sent} messages for 10 batches");
    // Compaction: the leader keeps the last 100 entries, 2 is cut off for 500 more and
    // comes back to a snapshot plus the rest.
    let upto = rs[0].commit - 100;
    let state: Vec<u32> = rs[0].committed()[..upto as usize]
        .iter()
        .map(|e| e.cmd)
        .collect();
    assert!(rs[0].compact(upto, state));
    assert!(!rs[0].compact(upto, Vec::new()), "already compacted");
    assert_eq!(rs[0].log.len(), 100);
    for i in 1000..1500u32 {
        rs[0].propose(i).unwrap();
    }
    rs[0].replicate(&mut out);
    net.extend(out.drain(..).map(|(t, m)| (0, t, m)));
    run(&mut rs, &mut net, Some(2));
    let upto = rs[0].commit;
    let snap = rs[0].snapshot.data.clone().unwrap();
    let mut state = snap;
    state.extend(rs[0].committed().iter().map(|e| e.cmd));
    assert!(rs[0].compact(upto, state.clone()));
    rs[2].log.truncate(10); // and 2 lost its tail (as if it had not synced it)
    rs[2].commit = 0;
    rs[0].heartbeat(&mut out);
    net.extend(out.drain(..).map(|(t, m)| (0, t, m)));
    run(&mut rs, &mut net, None);
    assert_eq!(rs[2].snapshot.index, 1500);
    assert_eq!(rs[2].snapshot.data.as_ref(), Some(&state));
    assert_eq!(rs[2].commit, 1500);
    assert_eq!((0..1500).collect::<Vec<u32>>(), state);
}

#[test]
fn a_leader_that_hears_from_no_majority_steps_down_at_its_quorum_check() {
    let mut rs = cluster(3);
    let mut net = Vec::new();
    elect(&mut rs, 0, &mut net);
    tick(&mut rs, 0, &mut net, Some(2));
    assert!(rs[0].check_quorum(), "1 answered: with itself, a majority");
    tick(&mut rs, 0, &mut net, Some(1));
    assert!(rs[0].check_quorum(), "2 answered");
    // Now nobody answers.
    let mut out = Vec::new();
    rs[0].heartbeat(&mut out);
    assert!(!rs[0].check_quorum());
    assert!(!rs[0].is_leader());
    assert_eq!(rs[0].propose("x"), Err(NotLeader::Unknown));
    assert!(!rs[1].check_quorum(), "a follower has no quorum to check");
}
