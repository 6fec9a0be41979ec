//! The Raft core model-checked with stateright: every reachable state of a three-replica
//! cluster, bounded (terms, log entries and messages in flight: see `bounds`), where any replica may time out, a leader may
//! tick or take a proposal at any moment, and any message in flight may be delivered
//! next (so messages are reordered, and one never delivered is lost). A delivered
//! message may also stay in flight (`Redeliver`): messages repeat.
//!
//! A leader may also run its quorum check (stepping down when no majority answered
//! since the last), and any replica may compact its committed log into a snapshot (the
//! commands applied, in order), which a follower behind it then installs. Batches are
//! one entry long, so a follower two entries behind takes two messages.
//!
//! Checked in every state: at most one leader per term (election safety), no two
//! replicas' committed histories (snapshot and committed log) disagree (state machine
//! safety), a leader holds every entry committed anywhere (leader completeness); and
//! that some state commits an entry and some sends a follower a snapshot it lacks (the
//! model is not vacuous). The control: the same model with leaders that commit without
//! a majority, or votes that ignore the log, must break state machine safety, or the
//! checker would be proving nothing.

use std::collections::BTreeSet;

use oxbeam_services::raft::{Faults, Msg, Outbox, Replica};
use stateright::{Checker, Model, Property};

const N: usize = 3;

/// The bounds: CI's by default; `RAFT_MODEL_BOUNDS=terms,log,in_flight` checks a larger
/// cluster history by hand (`3,2,4` took minutes, not seconds).
fn bounds() -> (u64, usize, usize) {
    std::env::var("RAFT_MODEL_BOUNDS")
        .ok()
        .and_then(|b| {
            let v: Vec<usize> = b.split(',').filter_map(|x| x.trim().parse().ok()).collect();
            match v.as_slice() {
                [t, l, f] => Some((*t as u64, *l, *f)),
                _ => None,
            }
        })
        .unwrap_or((2, 1, 3))
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Cluster {
    replicas: Vec<Replica<u8, Vec<u8>>>,
    /// In flight: (from, to, message).
    network: BTreeSet<(usize, usize, Msg<u8, Vec<u8>>)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Action {
    Timeout(usize),
    Heartbeat(usize),
    Propose(usize, u8),
    CheckQuorum(usize),
    Compact(usize),
    Deliver(usize, usize, Msg<u8, Vec<u8>>),
    Redeliver(usize, usize, Msg<u8, Vec<u8>>),
}

struct RaftModel {
    faults: Faults,
    max_term: u64,
    max_log: usize,
    max_in_flight: usize,
}

impl RaftModel {
    fn new(faults: Faults) -> RaftModel {
        let (max_term, max_log, max_in_flight) = bounds();
        RaftModel {
            faults,
            max_term,
            max_log,
            max_in_flight,
        }
    }
}

impl Model for RaftModel {
    type State = Cluster;
    type Action = Action;

    fn init_states(&self) -> Vec<Cluster> {
        let replicas = (0..N)
            .map(|i| {
                let mut r = Replica::new(i, N);
                r.faults = self.faults;
                r.max_batch = 1;
                r
            })
            .collect();
        vec![Cluster {
            replicas,
            network: BTreeSet::new(),
        }]
    }

    fn actions(&self, s: &Cluster, actions: &mut Vec<Action>) {
        for (i, r) in s.replicas.iter().enumerate() {
            if !r.is_leader() && r.term < self.max_term {
                actions.push(Action::Timeout(i));
            }
            if r.commit > r.snapshot.index {
                actions.push(Action::Compact(i));
            }
            if r.is_leader() {
                actions.push(Action::Heartbeat(i));
                actions.push(Action::CheckQuorum(i));
                if (r.last_index() as usize) < self.max_log {
                    // The proposal's value names the replica that took it.
                    actions.push(Action::Propose(i, i as u8));
                }
            }
        }
        for (from, to, msg) in &s.network {
            actions.push(Action::Deliver(*from, *to, msg.clone()));
            actions.push(Action::Redeliver(*from, *to, msg.clone()));
        }
    }

    fn next_state(&self, s: &Cluster, action: Action) -> Option<Cluster> {
        let mut next = s.clone();
        let mut out: Outbox<u8, Vec<u8>> = Vec::new();
        let from = match action {
            Action::Timeout(i) => {
                next.replicas[i].election_timeout(&mut out);
                i
            }
            Action::Heartbeat(i) => {
                next.replicas[i].heartbeat(&mut out);
                i
            }
            Action::Propose(i, v) => {
                next.replicas[i].propose(v).ok()?;
                i
            }
            Action::CheckQuorum(i) => {
                next.replicas[i].check_quorum();
                i
            }
            Action::Compact(i) => {
                let r = &mut next.replicas[i];
                let history = applied(r);
                let upto = r.commit;
                r.compact(upto, history).then_some(i)?
            }
            Action::Deliver(from, to, msg) => {
                next.network.remove(&(from, to, msg.clone()));
                next.replicas[to].receive(from, msg, &mut out);
                to
            }
            Action::Redeliver(from, to, msg) => {
                next.replicas[to].receive(from, msg, &mut out);
                to
            }
        };
        for (to, msg) in out {
            next.network.insert((from, to, msg));
        }
        Some(next)
    }

    fn within_boundary(&self, s: &Cluster) -> bool {
        s.network.len() <= self.max_in_flight
            && s.replicas
                .iter()
                .all(|r| r.term <= self.max_term && r.last_index() as usize <= self.max_log)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("election safety", |_, s: &Cluster| {
                let mut leading = BTreeSet::new();
                s.replicas
                    .iter()
                    .filter(|r| r.is_leader())
                    .all(|r| leading.insert(r.term))
            }),
            Property::always("state machine safety", |_, s: &Cluster| {
                s.replicas.iter().all(|a| {
                    s.replicas.iter().all(|b| {
                        let (x, y) = (applied(a), applied(b));
                        let common = x.len().min(y.len());
                        x[..common] == y[..common]
                    })
                })
            }),
            Property::always("leader completeness", |_, s: &Cluster| {
                s.replicas.iter().filter(|l| l.is_leader()).all(|l| {
                    let held = held(l);
                    s.replicas
                        .iter()
                        .filter(|r| r.term <= l.term)
                        .all(|r| held.starts_with(&applied(r)))
                })
            }),
            Property::sometimes("an entry is committed", |_, s: &Cluster| {
                s.replicas.iter().any(|r| r.commit > 0)
            }),
            Property::sometimes(
                "a follower is sent a snapshot it lacks",
                |_, s: &Cluster| {
                    s.network.iter().any(|(_, to, m)| {
                    matches!(m, Msg::InstallSnapshot { index, .. } if s.replicas[*to].commit < *index)
                })
                },
            ),
        ]
    }
}

/// The commands a replica applied: its snapshot's, then its committed log's.
fn applied(r: &Replica<u8, Vec<u8>>) -> Vec<u8> {
    let mut all = r.snapshot.data.clone().unwrap_or_default();
    all.extend(r.committed().iter().map(|e| e.cmd));
    all
}

/// Every command a replica holds, committed or not: its snapshot's, then its log's.
fn held(r: &Replica<u8, Vec<u8>>) -> Vec<u8> {
    let mut all = r.snapshot.data.clone().unwrap_or_default();
    all.extend(r.log.iter().map(|e| e.cmd));
    all
}

#[test]
fn a_bounded_cluster_keeps_one_leader_per_term_and_agreeing_commits() {
    let checker = RaftModel::new(Faults::default())
        .checker()
        .spawn_bfs()
        .join();
    checker.assert_properties();
    let states = checker.unique_state_count();
    eprintln!("raft model: {states} states, every property holds");
    assert!(states > 1000, "{states}");
}

#[test]
fn the_checker_catches_a_leader_that_commits_without_a_majority() {
    let checker = RaftModel::new(Faults {
        commit_without_majority: true,
        ..Faults::default()
    })
    .checker()
    .spawn_bfs()
    .join();
    let path = checker.assert_any_discovery("state machine safety");
    assert!(path.into_actions().len() >= 4);
}

#[test]
fn the_checker_catches_a_vote_for_a_candidate_whose_log_is_behind() {
    let checker = RaftModel::new(Faults {
        vote_ignores_log: true,
        ..Faults::default()
    })
    .checker()
    .spawn_bfs()
    .join();
    checker.assert_any_discovery("state machine safety");
}
