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
