//! Raft's consensus core (Ongaro and Ousterhout, "In Search of an Understandable
//! Consensus Algorithm", §5), as a pure state machine: a [`Replica`] takes an input (an
//! election timeout, a heartbeat tick, a message, a proposal) and appends the messages
//! it sends to an output vector. Timers, the network and durable storage are the
//! caller's: it must keep `term`, `voted_for` and `log` across a restart before acting on
//! a message's outputs.
//!
//! **Protocol.** Replicas are numbered `0..n`. Every message carries its sender's term;
//! a replica that sees a greater term adopts it and becomes a follower.
//! - Election: a follower or candidate whose election timeout passes becomes a candidate
//!   of the next term, votes for itself and sends `RequestVote { last_index, last_term }`.
//!   A replica grants at most one vote per term, and only to a candidate whose log is at
//!   least as up to date as its own (greater last term, or the same and at least as long).
//!   A candidate with votes from a majority becomes leader.
//! - Replication: the leader appends a proposal to its log and, on each heartbeat (and at
//!   once when elected), sends each follower `Append { prev_index, prev_term, entries,
//!   commit }` from that follower's next index. A follower whose log holds `prev` keeps
//!   its log up to there, replaces what conflicts with the entries (never truncating an
//!   entry that matches, so a late or repeated message does no harm), and answers
//!   `AppendReply { ok, match_index }`; else it answers `ok: false` and the leader backs
//!   its next index off by one.
//! - Commit: the leader commits an index once a majority holds it and the entry there is
//!   of its own term (§5.4.2); followers learn the commit index from `Append`.
//!
//! **Guarantees** (checked by `tests/raft_model.rs` in every reachable state of a bounded
//! three-replica cluster with message loss, reordering and repetition): at most one
//! leader per term; committed prefixes never disagree between replicas. The same model
//! with a deliberately broken rule (a leader that commits without a majority, a vote for
//! a candidate whose log is behind) is caught.

use std::collections::BTreeSet;

/// A replica's number in its cluster (`0..n`); the caller maps it to a process.
pub type ReplicaId = usize;

/// A log entry: the term of the leader that appended it, and the command.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entry<C> {
    /// The term it was appended in.
    pub term: u64,
    /// The replicated command.
    pub cmd: C,
}

/// A message between replicas.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Msg<C> {
    /// A candidate asks for a vote.
    RequestVote {
        /// The candidate's term.
        term: u64,
        /// Its last log index (0: empty).
        last_index: u64,
        /// The term of that entry (0: empty).
        last_term: u64,
    },
    /// The answer to a `RequestVote`.
    Vote {
        /// The voter's term.
        term: u64,
        /// Whether the vote is granted.
        granted: bool,
    },
    /// The leader's entries (none: a heartbeat).
    Append {
        /// The leader's term.
        term: u64,
        /// The index before `entries` (0: from the start).
        prev_index: u64,
        /// The term of the entry at `prev_index` (0 for index 0).
        prev_term: u64,
        /// The entries from `prev_index + 1`.
        entries: Vec<Entry<C>>,
        /// The leader's commit index.
        commit: u64,
    },
    /// The answer to an `Append`.
    AppendReply {
        /// The follower's term.
        term: u64,
        /// Whether the follower's log held `prev` (and now holds the entries).
        ok: bool,
        /// With `ok`: the last index the follower now holds as the leader has it.
        match_index: u64,
    },
}

impl<C> Msg<C> {
    fn term(&self) -> u64 {
        match self {
            Msg::RequestVote { term, .. }
            | Msg::Vote { term, .. }
            | Msg::Append { term, .. }
            | Msg::AppendReply { term, .. } => *term,
        }
    }
}

/// What a replica is in its current term.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Follows the leader of its term (if it knows one).
    Follower {
        /// The leader, once one has been heard from in this term.
        leader: Option<ReplicaId>,
    },
    /// Asks for votes.
    Candidate {
        /// The replicas that voted for it (itself included).
        votes: BTreeSet<ReplicaId>,
    },
    /// Replicates its log.
    Leader {
        /// Per replica: the next index to send it.
        next: Vec<u64>,
        /// Per replica: the highest index known to be held there.
        matched: Vec<u64>,
    },
}

/// Why a proposal was not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotLeader {
    /// The leader of this term, if this replica knows it: propose there.
    Leader(ReplicaId),
    /// No leader known (an election is under way).
    Unknown,
}

/// Rules a test can break on purpose, to show that the model checker catches them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Faults {
    /// A leader commits each entry as it appends it, without a majority.
    pub commit_without_majority: bool,
    /// A replica votes for a candidate whose log is behind its own.
    pub vote_ignores_log: bool,
}

/// One replica's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Replica<C> {
    /// This replica's number.
    pub id: ReplicaId,
    /// The cluster's size.
    pub n: usize,
    /// The current term (durable).
    pub term: u64,
    /// Whom this replica voted for in `term` (durable).
    pub voted_for: Option<ReplicaId>,
    /// The log (durable), index 1 first.
    pub log: Vec<Entry<C>>,
    /// The highest index known committed.
    pub commit: u64,
    /// Follower, candidate or leader.
    pub role: Role,
    /// Broken rules, for the checker's control runs.
    pub faults: Faults,
}

/// Messages to send: (to, message).
pub type Outbox<C> = Vec<(ReplicaId, Msg<C>)>;

impl<C: Clone> Replica<C> {
    /// Replica `id` of a cluster of `n`, empty, a follower in term 0.
    pub fn new(id: ReplicaId, n: usize) -> Replica<C> {
        Replica {
            id,
            n,
            term: 0,
            voted_for: None,
            log: Vec::new(),
            commit: 0,
            role: Role::Follower { leader: None },
            faults: Faults::default(),
        }
    }

    fn last_index(&self) -> u64 {
        self.log.len() as u64
    }

    fn term_at(&self, index: u64) -> u64 {
        match index {
            0 => 0,
            i => self.log.get(i as usize - 1).map_or(0, |e| e.term),
        }
    }

    fn majority(&self, count: usize) -> bool {
        count * 2 > self.n
    }

    fn others(&self) -> impl Iterator<Item = ReplicaId> + use<C> {
        let me = self.id;
        (0..self.n).filter(move |p| *p != me)
    }

    /// Whether this replica leads its term.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }

    /// The committed entries, in order.
    pub fn committed(&self) -> &[Entry<C>] {
        &self.log[..self.commit as usize]
    }

    /// The election timeout passed (the caller's timer, randomized): a follower or
    /// candidate stands for the next term. A leader ignores it.
    pub fn election_timeout(&mut self, out: &mut Outbox<C>) {
        if self.is_leader() {
            return;
        }
        self.term += 1;
        self.voted_for = Some(self.id);
        self.role = Role::Candidate {
            votes: BTreeSet::from([self.id]),
        };
        if self.majority(1) {
            self.become_leader(out);
            return;
        }
        let (last_index, last_term) = (self.last_index(), self.term_at(self.last_index()));
        for p in self.others() {
            out.push((
                p,
                Msg::RequestVote {
                    term: self.term,
                    last_index,
                    last_term,
                },
            ));
        }
    }

    /// The heartbeat tick: a leader sends each follower what it lacks (or nothing, as
    /// a heartbeat).
    pub fn heartbeat(&mut self, out: &mut Outbox<C>) {
        let Role::Leader { next, .. } = &self.role else {
            return;
        };
        let next = next.clone();
        for p in self.others() {
            let prev_index = next[p] - 1;
            out.push((
                p,
                Msg::Append {
                    term: self.term,
                    prev_index,
                    prev_term: self.term_at(prev_index),
                    entries: self.log[prev_index as usize..].to_vec(),
                    commit: self.commit,
                },
            ));
        }
    }

    /// Appends `cmd` to the leader's log: its index, committed once a majority holds it
    /// (see [`Replica::committed`]); sent on the next [`heartbeat`](Replica::heartbeat).
    pub fn propose(&mut self, cmd: C) -> Result<u64, NotLeader> {
        match &mut self.role {
            Role::Leader { matched, .. } => {
                self.log.push(Entry {
                    term: self.term,
                    cmd,
                });
                let index = self.log.len() as u64;
                matched[self.id] = index;
                if self.faults.commit_without_majority {
                    self.commit = index;
                } else {
                    self.advance_commit();
                }
                Ok(index)
            }
            Role::Follower { leader: Some(l) } => Err(NotLeader::Leader(*l)),
            _ => Err(NotLeader::Unknown),
        }
    }

    /// A message from replica `from`.
    pub fn receive(&mut self, from: ReplicaId, msg: Msg<C>, out: &mut Outbox<C>) {
        if msg.term() > self.term {
            self.term = msg.term();
            self.voted_for = None;
            self.role = Role::Follower { leader: None };
        }
        match msg {
            Msg::RequestVote {
                term,
                last_index,
                last_term,
            } => {
                let mine = (self.term_at(self.last_index()), self.last_index());
                let up_to_date = (last_term, last_index) >= mine || self.faults.vote_ignores_log;
                let granted =
                    term == self.term && up_to_date && self.voted_for.is_none_or(|v| v == from);
                if granted {
                    self.voted_for = Some(from);
                }
                out.push((
                    from,
                    Msg::Vote {
                        term: self.term,
                        granted,
                    },
                ));
            }
            Msg::Vote { term, granted } => {
                if let Role::Candidate { votes } = &mut self.role
                    && term == self.term
                    && granted
                {
                    votes.insert(from);
                    let won = votes.len() * 2 > self.n;
                    if won {
                        self.become_leader(out);
                    }
                }
            }
            Msg::Append {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                if term < self.term {
                    out.push((from, self.append_reply(false, 0)));
                    return;
                }
                // A leader of this term: follow it (a candidate of the same term gives up).
                self.role = Role::Follower { leader: Some(from) };
                let holds_prev =
                    prev_index <= self.last_index() && self.term_at(prev_index) == prev_term;
                if !holds_prev {
                    out.push((from, self.append_reply(false, 0)));
                    return;
                }
                for (i, e) in entries.iter().enumerate() {
                    let index = prev_index as usize + i + 1;
                    match self.log.get(index - 1) {
                        Some(have) if have.term == e.term => {}
                        Some(_) => {
                            self.log.truncate(index - 1);
                            self.log.push(e.clone());
                        }
                        None => self.log.push(e.clone()),
                    }
                }
                let matched = prev_index + entries.len() as u64;
                self.commit = self.commit.max(commit.min(matched));
                out.push((from, self.append_reply(true, matched)));
            }
            Msg::AppendReply {
                term,
                ok,
                match_index,
            } => {
                if term != self.term {
                    return;
                }
                let Role::Leader { next, matched } = &mut self.role else {
                    return;
                };
                if ok {
                    matched[from] = matched[from].max(match_index);
                    next[from] = matched[from] + 1;
                    self.advance_commit();
                } else {
                    next[from] = next[from].saturating_sub(1).max(1);
                }
            }
        }
    }

    fn append_reply(&self, ok: bool, match_index: u64) -> Msg<C> {
        Msg::AppendReply {
            term: self.term,
            ok,
            match_index,
        }
    }

    fn become_leader(&mut self, out: &mut Outbox<C>) {
        let last = self.last_index();
        let mut matched = vec![0; self.n];
        matched[self.id] = last;
        self.role = Role::Leader {
            next: vec![last + 1; self.n],
            matched,
        };
        self.heartbeat(out);
    }

    /// Commits the highest index of this term that a majority holds.
    fn advance_commit(&mut self) {
        let Role::Leader { matched, .. } = &self.role else {
            return;
        };
        let matched = matched.clone();
        for index in (self.commit + 1..=self.last_index()).rev() {
            let holders = matched.iter().filter(|m| **m >= index).count();
            if self.term_at(index) == self.term && self.majority(holders) {
                self.commit = index;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
