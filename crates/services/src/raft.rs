//! Raft's consensus core (Ongaro and Ousterhout, "In Search of an Understandable
//! Consensus Algorithm", §5 and §7), as a pure state machine: a [`Replica`] takes an
//! input (an election timeout, a heartbeat tick, a quorum check, a message, a proposal,
//! a compaction) and appends the messages it sends to an output vector. Timers, the
//! network and durable storage are the caller's: it must keep `term`, `voted_for`, the
//! snapshot and the log across a restart before acting on a message's outputs.
//!
//! **Protocol.** Replicas are numbered `0..n`. Every message carries its sender's term;
//! a replica that sees a greater term adopts it and becomes a follower.
//! - Election: a follower or candidate whose election timeout passes becomes a candidate
//!   of the next term, votes for itself and sends `RequestVote { last_index, last_term }`.
//!   A replica grants at most one vote per term, and only to a candidate whose log is at
//!   least as up to date as its own (greater last term, or the same and at least as long).
//!   A candidate with votes from a majority becomes leader.
//! - Replication: the leader appends a proposal to its log and sends each follower
//!   `Append { prev_index, prev_term, entries, commit }` from that follower's next index
//!   ([`Replica::replicate`] right after proposals, [`Replica::heartbeat`] on its tick),
//!   at most `max_batch` entries at a time, and moves the next index past what it sent
//!   (pipelining: it does not wait for the answer to send more). A follower whose log
//!   holds `prev` keeps its log up to there, replaces what conflicts with the entries
//!   (never truncating an entry that matches, so a late or repeated message does no
//!   harm), and answers `AppendReply { ok, match_index }`; else it answers `ok: false`
//!   with `match_index` a hint (the last index it could hold), and the leader moves the
//!   next index back to it and sends again. An `ok` answer prompts the next batch.
//! - Commit: the leader commits an index once a majority holds it and the entry there is
//!   of its own term (§5.4.2); followers learn the commit index from `Append`.
//! - Compaction (§7): the caller replaces a committed prefix by a snapshot of its state
//!   machine ([`Replica::compact`]); a follower whose next index fell into it gets
//!   `InstallSnapshot { index, last_term, data }`, which replaces its log up to `index`
//!   (keeping what follows when its entry at `index` matches). Entries a follower is sent
//!   that lie inside its own snapshot are committed, so it skips them.
//! - Transfer: a leader whose chosen follower holds its whole log sends it
//!   `TimeoutNow`, and the follower stands for election at once (as if its timer had
//!   run out, which the model already allows at any moment).
//! - Check quorum: on its quorum check (the caller's timer, about an election timeout),
//!   a leader that did not hear from a majority since the previous check steps down, so
//!   the side of a partition without a majority stops taking proposals.
//!
//! **Guarantees** (checked by `tests/raft_model.rs` in every reachable state of a bounded
//! three-replica cluster with message loss, reordering and repetition, compaction and
//! quorum checks): at most one leader per term; committed prefixes never disagree
//! between replicas; a leader holds every entry committed anywhere. The same model with
//! a deliberately broken rule (a leader that commits without a majority, a vote for a
//! candidate whose log is behind) is caught.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A replica's number in its cluster (`0..n`); the caller maps it to a process.
pub type ReplicaId = usize;

/// A log entry: the term of the leader that appended it, and the command.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry<C> {
    /// The term it was appended in.
    pub term: u64,
    /// The replicated command.
    pub cmd: C,
}

/// A message between replicas; `S` is the state machine's snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Msg<C, S = ()> {
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
    /// The answer to an `Append` or an `InstallSnapshot`.
    AppendReply {
        /// The follower's term.
        term: u64,
        /// Whether the follower's log held `prev` (and now holds the entries).
        ok: bool,
        /// With `ok`: the last index the follower now holds as the leader has it;
        /// without: the last index it might hold (where the leader tries next).
        match_index: u64,
    },
    /// The leader hands over: the receiver stands for election now (§3.10 of Ongaro's
    /// thesis; sent once it holds the leader's whole log).
    TimeoutNow {
        /// The leader's term.
        term: u64,
    },
    /// The leader's snapshot, for a follower whose next entry it compacted away.
    InstallSnapshot {
        /// The leader's term.
        term: u64,
        /// The last index the snapshot covers.
        index: u64,
        /// The term of that entry.
        last_term: u64,
        /// The state machine at `index`.
        data: S,
    },
}

impl<C, S> Msg<C, S> {
    fn term(&self) -> u64 {
        match self {
            Msg::RequestVote { term, .. }
            | Msg::Vote { term, .. }
            | Msg::Append { term, .. }
            | Msg::AppendReply { term, .. }
            | Msg::TimeoutNow { term }
            | Msg::InstallSnapshot { term, .. } => *term,
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
        /// The replicas that answered in this term since the last quorum check.
        heard: BTreeSet<ReplicaId>,
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

/// The compacted prefix of a log: its last index and term, and the state machine there
/// (`None` while nothing is compacted, `index` 0).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Snapshot<S> {
    /// The last index it covers.
    pub index: u64,
    /// The term of that entry.
    pub term: u64,
    /// The state machine after applying entries `1..=index`.
    pub data: Option<S>,
}

/// One replica's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Replica<C, S = ()> {
    /// This replica's number.
    pub id: ReplicaId,
    /// The cluster's size.
    pub n: usize,
    /// The current term (durable).
    pub term: u64,
    /// Whom this replica voted for in `term` (durable).
    pub voted_for: Option<ReplicaId>,
    /// The compacted prefix (durable).
    pub snapshot: Snapshot<S>,
    /// The log after the snapshot (durable): index `snapshot.index + 1` first.
    pub log: Vec<Entry<C>>,
    /// The highest index known committed.
    pub commit: u64,
    /// Follower, candidate or leader.
    pub role: Role,
    /// At most this many entries per `Append`.
    pub max_batch: usize,
    /// Whether this replica stands for election and votes (a replica that lost its state
    /// does neither until a leader has caught it up: see `group`).
    pub voter: bool,
    /// Broken rules, for the checker's control runs.
    pub faults: Faults,
}

/// Messages to send: (to, message).
pub type Outbox<C, S = ()> = Vec<(ReplicaId, Msg<C, S>)>;

impl<C: Clone, S: Clone> Replica<C, S> {
    /// Replica `id` of a cluster of `n`, empty, a follower in term 0.
    pub fn new(id: ReplicaId, n: usize) -> Replica<C, S> {
        Replica {
            id,
            n,
            term: 0,
            voted_for: None,
            snapshot: Snapshot {
                index: 0,
                term: 0,
                data: None,
            },
            log: Vec::new(),
            commit: 0,
            role: Role::Follower { leader: None },
            max_batch: 1024,
            voter: true,
            faults: Faults::default(),
        }
    }

    /// The index of the last entry (the snapshot's when the log is empty).
    pub fn last_index(&self) -> u64 {
        self.snapshot.index + self.log.len() as u64
    }

    /// The term of the entry at `index`, if this replica knows it (the snapshot's last
    /// entry, or one in its log).
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        let offset = index.checked_sub(self.snapshot.index + 1)?;
        self.log.get(offset as usize).map(|e| e.term)
    }

    fn last_term(&self) -> u64 {
        self.term_at(self.last_index()).unwrap_or(0)
    }

    fn majority(&self, count: usize) -> bool {
        count * 2 > self.n
    }

    fn others(&self) -> impl Iterator<Item = ReplicaId> + use<C, S> {
        let me = self.id;
        (0..self.n).filter(move |p| *p != me)
    }

    /// Whether this replica leads its term.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }

    /// The leader this replica follows, or itself when it leads.
    pub fn leader(&self) -> Option<ReplicaId> {
        match self.role {
            Role::Leader { .. } => Some(self.id),
            Role::Follower { leader } => leader,
            Role::Candidate { .. } => None,
        }
    }

    /// The committed entries after the snapshot, in order (index `snapshot.index + 1`
    /// first).
    pub fn committed(&self) -> &[Entry<C>] {
        &self.log[..(self.commit - self.snapshot.index) as usize]
    }

    /// The entries from `index` (after the snapshot) to the last.
    pub fn entries_from(&self, index: u64) -> &[Entry<C>] {
        let start = index.saturating_sub(self.snapshot.index + 1) as usize;
        &self.log[start.min(self.log.len())..]
    }

    /// The election timeout passed (the caller's timer, randomized): a follower or
    /// candidate stands for the next term. A leader, or a replica that is not a voter,
    /// ignores it.
    pub fn election_timeout(&mut self, out: &mut Outbox<C, S>) {
        if self.is_leader() || !self.voter {
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
        let (last_index, last_term) = (self.last_index(), self.last_term());
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
    pub fn heartbeat(&mut self, out: &mut Outbox<C, S>) {
        if self.is_leader() {
            for p in self.others() {
                self.send_append(p, out);
            }
        }
    }

    /// After proposals: a leader sends the new entries to each follower it has not sent
    /// them to (one message each, however many proposals: the caller batches).
    pub fn replicate(&mut self, out: &mut Outbox<C, S>) {
        let last = self.last_index();
        let Role::Leader { next, .. } = &self.role else {
            return;
        };
        let behind: Vec<ReplicaId> = self.others().filter(|p| next[*p] <= last).collect();
        for p in behind {
            self.send_append(p, out);
        }
    }

    /// The quorum check (the caller's timer): a leader that heard from no majority since
    /// the last check steps down and answers `false`; otherwise `true`.
    pub fn check_quorum(&mut self) -> bool {
        let Role::Leader { heard, .. } = &mut self.role else {
            return false;
        };
        let answered = heard.len() + 1;
        heard.clear();
        if self.majority(answered) {
            return true;
        }
        self.role = Role::Follower { leader: None };
        false
    }

    /// Appends `cmd` to the leader's log: its index, committed once a majority holds it
    /// (see [`Replica::committed`]); sent on [`replicate`](Replica::replicate) or the next
    /// [`heartbeat`](Replica::heartbeat).
    pub fn propose(&mut self, cmd: C) -> Result<u64, NotLeader> {
        match &mut self.role {
            Role::Leader { matched, .. } => {
                self.log.push(Entry {
                    term: self.term,
                    cmd,
                });
                let index = self.snapshot.index + self.log.len() as u64;
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

    /// Replaces the log up to `index` (committed, after the current snapshot) by `data`,
    /// the state machine there. Answers whether it did.
    pub fn compact(&mut self, index: u64, data: S) -> bool {
        if index <= self.snapshot.index || index > self.commit {
            return false;
        }
        let term = self
            .term_at(index)
            .expect("a committed index is in the log");
        self.log.drain(..(index - self.snapshot.index) as usize);
        self.snapshot = Snapshot {
            index,
            term,
            data: Some(data),
        };
        true
    }

    /// A message from replica `from`.
    pub fn receive(&mut self, from: ReplicaId, msg: Msg<C, S>, out: &mut Outbox<C, S>) {
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
                let mine = (self.last_term(), self.last_index());
                let up_to_date = (last_term, last_index) >= mine || self.faults.vote_ignores_log;
                let granted = self.voter
                    && term == self.term
                    && up_to_date
                    && self.voted_for.is_none_or(|v| v == from);
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
                let reply = self.append(from, term, prev_index, prev_term, entries, commit);
                out.push((from, reply));
            }
            Msg::AppendReply {
                term,
                ok,
                match_index,
            } => self.append_reply(from, term, ok, match_index, out),
            Msg::InstallSnapshot {
                term,
                index,
                last_term,
                data,
            } => {
                let reply = self.install(from, term, index, last_term, data);
                out.push((from, reply));
            }
            Msg::TimeoutNow { term } => {
                if term == self.term && !self.is_leader() {
                    self.election_timeout(out);
                }
            }
        }
    }

    /// A leader hands its role to `to` if `to` holds its whole log (it stands for
    /// election at once, and wins unless another replica is as far ahead); answers
    /// whether it asked. Safe as any early election timeout is.
    pub fn transfer(&mut self, to: ReplicaId, out: &mut Outbox<C, S>) -> bool {
        let last = self.last_index();
        match &self.role {
            Role::Leader { matched, .. } if to != self.id && matched.get(to) == Some(&last) => {
                out.push((to, Msg::TimeoutNow { term: self.term }));
                true
            }
            _ => false,
        }
    }

    fn reply(&self, ok: bool, match_index: u64) -> Msg<C, S> {
        Msg::AppendReply {
            term: self.term,
            ok,
            match_index,
        }
    }

    fn append(
        &mut self,
        from: ReplicaId,
        term: u64,
        mut prev_index: u64,
        mut prev_term: u64,
        mut entries: Vec<Entry<C>>,
        commit: u64,
    ) -> Msg<C, S> {
        if term < self.term {
            return self.reply(false, self.last_index());
        }
        // A leader of this term: follow it (a candidate of the same term gives up).
        self.role = Role::Follower { leader: Some(from) };
        // What lies inside this replica's snapshot is committed, so it matches the
        // leader's log (leader completeness): skip it.
        let compacted = self.snapshot.index;
        if prev_index < compacted {
            let skip = (compacted - prev_index) as usize;
            if skip >= entries.len() {
                return self.reply(true, prev_index + entries.len() as u64);
            }
            entries.drain(..skip);
            (prev_index, prev_term) = (compacted, self.snapshot.term);
        }
        if self.term_at(prev_index) != Some(prev_term) {
            let hint = self.last_index().min(prev_index.saturating_sub(1));
            return self.reply(false, hint);
        }
        for (i, e) in entries.iter().enumerate() {
            let index = prev_index + i as u64 + 1;
            let at = (index - compacted - 1) as usize;
            match self.log.get(at) {
                Some(have) if have.term == e.term => {}
                Some(_) => {
                    self.log.truncate(at);
                    self.log.push(e.clone());
                }
                None => self.log.push(e.clone()),
            }
        }
        let matched = prev_index + entries.len() as u64;
        self.commit = self.commit.max(commit.min(matched));
        self.reply(true, matched)
    }

    fn install(
        &mut self,
        from: ReplicaId,
        term: u64,
        index: u64,
        last_term: u64,
        data: S,
    ) -> Msg<C, S> {
        if term < self.term {
            return self.reply(false, self.last_index());
        }
        self.role = Role::Follower { leader: Some(from) };
        if index <= self.commit {
            return self.reply(true, index);
        }
        if self.term_at(index) == Some(last_term) {
            self.log.drain(..(index - self.snapshot.index) as usize);
        } else {
            self.log.clear();
        }
        self.snapshot = Snapshot {
            index,
            term: last_term,
            data: Some(data),
        };
        self.commit = index;
        self.reply(true, index)
    }

    fn append_reply(
        &mut self,
        from: ReplicaId,
        term: u64,
        ok: bool,
        match_index: u64,
        out: &mut Outbox<C, S>,
    ) {
        if term != self.term {
            return;
        }
        let last = self.last_index();
        let Role::Leader {
            next,
            matched,
            heard,
        } = &mut self.role
        else {
            return;
        };
        heard.insert(from);
        if ok {
            matched[from] = matched[from].max(match_index);
            next[from] = next[from].max(matched[from] + 1);
            let more = next[from] <= last;
            self.advance_commit();
            if more {
                self.send_append(from, out);
            }
        } else {
            // A follower that lost its log (restarted without durable state) holds less
            // than it once answered: believe it (a lower match only delays commits).
            matched[from] = matched[from].min(match_index);
            let back = (next[from] - 1).min(match_index + 1);
            let floor = matched[from] + 1;
            let moved = back.max(floor) != next[from];
            next[from] = back.max(floor);
            if moved {
                self.send_append(from, out);
            }
        }
    }

    /// Sends `p` what it lacks from its next index: a snapshot when that was compacted,
    /// else up to `max_batch` entries; moves its next index past them.
    fn send_append(&mut self, p: ReplicaId, out: &mut Outbox<C, S>) {
        let (term, commit, compacted) = (self.term, self.commit, self.snapshot.index);
        let Role::Leader { next, .. } = &mut self.role else {
            return;
        };
        if next[p] <= compacted {
            let data = self
                .snapshot
                .data
                .clone()
                .expect("a compacted log has a snapshot");
            next[p] = compacted + 1;
            out.push((
                p,
                Msg::InstallSnapshot {
                    term,
                    index: compacted,
                    last_term: self.snapshot.term,
                    data,
                },
            ));
            return;
        }
        let prev_index = next[p] - 1;
        let start = (prev_index - compacted) as usize;
        let end = self.log.len().min(start + self.max_batch);
        let entries = self.log[start..end].to_vec();
        next[p] = prev_index + entries.len() as u64 + 1;
        let prev_term = self
            .term_at(prev_index)
            .expect("the leader holds its next - 1");
        out.push((
            p,
            Msg::Append {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
            },
        ));
    }

    fn become_leader(&mut self, out: &mut Outbox<C, S>) {
        let last = self.last_index();
        let mut matched = vec![0; self.n];
        matched[self.id] = last;
        self.role = Role::Leader {
            next: vec![last + 1; self.n],
            matched,
            heard: BTreeSet::new(),
        };
        self.heartbeat(out);
    }

    /// Commits the highest index of this term that a majority holds.
    fn advance_commit(&mut self) {
        let Role::Leader { matched, .. } = &self.role else {
            return;
        };
        for index in (self.commit + 1..=self.last_index()).rev() {
            let holders = matched.iter().filter(|m| **m >= index).count();
            if self.term_at(index) == Some(self.term) && self.majority(holders) {
                self.commit = index;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
