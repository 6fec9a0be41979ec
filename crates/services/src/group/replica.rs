//! The replica process: the Raft core's I/O edge (timers, peer messages, client calls,
//! applying what commits). See the module above for the protocol around it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::storage::Durable;
use super::{Group, GroupConfig, GroupError, Machine, Registry, Shared, Start};
use crate::raft::{Msg, NotLeader, Outbox, Replica};
use crate::rt::gen_server::{ReplyTo, StartOpts};
use crate::rt::{Ctx, Dest, Flow, Reply, Server, StartError, server};
use crate::term::{Atom, Term, from_term, to_term};

/// An entry of the group's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Op<C> {
    /// A command for the machine.
    Cmd(C),
    /// A barrier for linearizable reads (the machine does not see it).
    Read,
    /// A new leader's first entry, which commits its predecessors' (§5.4.2).
    Elected,
}

/// A client's request to a replica.
#[derive(Serialize, Deserialize)]
pub(crate) enum Request<C, Q> {
    Propose(C),
    Read(Q),
}

/// Why a replica did not take a request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Refusal {
    /// Not the leader: the one it follows, if it knows one (its node).
    NotLeader(Option<Atom>),
    /// Taken, then failed.
    Failed(GroupError),
}

/// A peer's message, as it travels: `{:"$oxbeam_raft", envelope}`.
#[derive(Serialize, Deserialize)]
struct Envelope<C> {
    from: usize,
    /// The sender's member list, hashed: replicas started with different lists (the
    /// ids would name different nodes) ignore each other rather than mix their votes.
    members: u64,
    msg: Msg<Op<C>, Term>,
}

/// FNV-1a over the member names, in order (stable across builds, unlike std's hasher),
/// cut to 63 bits (a term integer).
fn members_hash(nodes: &[Atom]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for n in nodes {
        for b in n.as_str().bytes().chain([0]) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h & (i64::MAX as u64)
}

const PEER_TAG: &str = "$oxbeam_raft";
const TICK: &str = "$oxbeam_raft_tick";
const FLUSH: &str = "$oxbeam_raft_flush";
pub(super) const TRANSFER: &str = "$oxbeam_raft_transfer";

enum Waiter<Q> {
    Write(ReplyTo),
    Read(ReplyTo, Q),
}

/// The term a proposal was made in, and who waits for its entry.
type Pending<Q> = (u64, Vec<Waiter<Q>>);

pub(crate) struct ReplicaServer<M: Machine> {
    config: GroupConfig,
    me: usize,
    raft: Replica<Op<M::Command>, Term>,
    shared: Arc<Shared<M>>,
    applied: u64,
    /// By log index: the term it was proposed in and who waits for it.
    pending: BTreeMap<u64, Pending<M::Query>>,
    /// Reads not yet behind a barrier.
    reads: Vec<(ReplyTo, M::Query)>,
    flush_scheduled: bool,
    was_leader: bool,
    /// The commit index last sent to the followers.
    commit_told: u64,
    members: u64,
    warned_members: bool,
    election_deadline: Instant,
    next_heartbeat: Instant,
    next_quorum_check: Instant,
    /// Where `raft`'s durable part is kept: saved after each step, before its outputs.
    storage: Durable,
}

pub(super) fn start<M: Machine>(
    node: &crate::rt::Node,
    config: GroupConfig,
    machine: M,
) -> Result<Group<M>, StartError> {
    let me = config
        .nodes
        .iter()
        .position(|n| *n == node.name())
        .ok_or_else(|| {
            StartError::from_reason(Term::tuple(vec![
                Term::atom("not_a_member"),
                Term::Atom(node.name()),
            ]))
        })?;
    let shared = Arc::new(Shared::new(machine, config.clone()));
    let mut raft = Replica::new(me, config.nodes.len());
    raft.max_batch = config.max_batch.max(1);
    raft.voter = config.start == Start::Bootstrap;
    raft.faults = config.faults;
    let storage_failed = |e: super::StorageError| {
        StartError::from_reason(Term::tuple(vec![
            Term::atom("storage"),
            Term::str(&e.to_string()),
        ]))
    };
    let mut storage = Durable::open(&config.storage).map_err(storage_failed)?;
    if let Some(saved) = storage.load().map_err(storage_failed)? {
        // It kept its state: it votes at once, and learns the commit index again.
        raft.voter = true;
        (raft.term, raft.voted_for) = (saved.term, saved.voted_for);
        raft.commit = saved.snapshot.index;
        (raft.snapshot, raft.log) = (saved.snapshot, saved.log);
    }
    let now = Instant::now();
    let name = config.name;
    let replica = ReplicaServer {
        election_deadline: now + random_election(&config),
        next_heartbeat: now,
        next_quorum_check: now + config.election,
        config: config.clone(),
        me,
        raft,
        shared: shared.clone(),
        applied: 0,
        pending: BTreeMap::new(),
        reads: Vec::new(),
        flush_scheduled: false,
        was_leader: false,
        commit_told: 0,
        members: members_hash(&config.nodes),
        warned_members: false,
        storage,
    };
    let opts = StartOpts {
        name: Some(name),
        ..StartOpts::default()
    };
    server::start(node, replica, opts)?;
    Registry::of(node).insert(name, shared.clone());
    Ok(Group::new(node.clone(), shared))
}

fn random_election(config: &GroupConfig) -> Duration {
    let base = config.election.as_micros() as u64;
    Duration::from_micros(base + rand::random::<u64>() % base.max(1))
}

impl<M: Machine> Server for ReplicaServer<M> {
    type Call = Request<M::Command, M::Query>;
    type Reply = Result<M::Output, Refusal>;
    type Cast = ();

    fn init(&mut self, ctx: &mut Ctx) -> Result<(), Term> {
        self.recover(ctx)?;
        let me = ctx.pid();
        ctx.node()
            .send_after(me, Term::atom(TICK), self.config.tick);
        Ok(())
    }

    fn handle_call(
        &mut self,
        ctx: &mut Ctx,
        request: Self::Call,
        from: ReplyTo,
    ) -> Reply<Self::Reply> {
        let term = self.raft.term;
        match request {
            Request::Propose(cmd) => match self.raft.propose(Op::Cmd(cmd)) {
                Ok(index) => {
                    self.wait(ctx, index, term, Waiter::Write(from));
                    self.schedule_flush(ctx);
                    Reply::Later
                }
                Err(e) => Reply::Now(Err(self.refusal(e))),
            },
            Request::Read(query) if self.raft.is_leader() => {
                self.reads.push((from, query));
                self.schedule_flush(ctx);
                Reply::Later
            }
            Request::Read(_) => {
                let known = self
                    .raft
                    .leader()
                    .map_or(NotLeader::Unknown, NotLeader::Leader);
                Reply::Now(Err(self.refusal(known)))
            }
        }
    }

    fn handle_info(&mut self, ctx: &mut Ctx, msg: Term) -> Flow {
        let mut out = Vec::new();
        if msg == Term::atom(TICK) {
            self.tick(&mut out);
            let me = ctx.pid();
            ctx.node()
                .send_after(me, Term::atom(TICK), self.config.tick);
        } else if msg == Term::atom(FLUSH) {
            self.flush_scheduled = false;
            if !self.reads.is_empty() {
                let term = self.raft.term;
                match self.raft.propose(Op::Read) {
                    Ok(index) => {
                        for (from, q) in std::mem::take(&mut self.reads) {
                            self.wait(ctx, index, term, Waiter::Read(from, q));
                        }
                    }
                    Err(e) => self.refuse_reads(ctx, e),
                }
            }
            self.raft.replicate(&mut out);
        } else if let Some([tag, Term::Atom(to)]) = msg.as_tuple()
            && tag.is_atom(TRANSFER)
        {
            self.transfer(ctx, *to, &mut out);
        } else if let Some(env) = peer_message::<M::Command>(&msg) {
            self.peer(env, &mut out);
        } else {
            log::debug!("{}: a replica ignored {msg}", self.config.name);
            return Flow::Continue;
        }
        self.after(ctx, out)
    }

    fn terminate(&mut self, ctx: &mut Ctx, _reason: &Term) {
        Registry::of(ctx.node()).remove(self.config.name);
    }
}

fn peer_message<C: serde::de::DeserializeOwned>(msg: &Term) -> Option<Envelope<C>> {
    match msg.as_tuple()? {
        [tag, env] if *tag == Term::atom(PEER_TAG) => match from_term(env) {
            Ok(env) => Some(env),
            Err(e) => {
                log::warn!("a malformed raft message was dropped: {e}");
                None
            }
        },
        _ => None,
    }
}

impl<M: Machine> ReplicaServer<M> {
    fn refusal(&self, e: NotLeader) -> Refusal {
        match e {
            NotLeader::Leader(id) => Refusal::NotLeader(self.config.nodes.get(id).copied()),
            NotLeader::Unknown => Refusal::NotLeader(None),
        }
    }

    fn wait(&mut self, ctx: &mut Ctx, index: u64, term: u64, waiter: Waiter<M::Query>) {
        let slot = self.pending.entry(index).or_insert((term, Vec::new()));
        if slot.0 != term {
            // An older term's proposal at this index was replaced: it did not commit.
            let (_, replaced) = std::mem::replace(slot, (term, vec![waiter]));
            let refused = || Err(Refusal::Failed(GroupError::NotCommitted));
            self.answer(ctx, replaced, |_| refused());
            return;
        }
        slot.1.push(waiter);
    }

    fn schedule_flush(&mut self, ctx: &mut Ctx) {
        if !self.flush_scheduled {
            self.flush_scheduled = true;
            ctx.send(ctx.pid(), Term::atom(FLUSH));
        }
    }

    fn refuse_reads(&mut self, ctx: &mut Ctx, e: NotLeader) {
        for (from, _) in std::mem::take(&mut self.reads) {
            let refusal: Result<M::Output, Refusal> = Err(self.refusal(e.clone()));
            server::reply(ctx.node(), from, &refusal);
        }
    }

    /// Hands leadership to the replica on `to` once it is caught up (the leader), or
    /// passes the wish on to the leader (a follower).
    fn transfer(&mut self, ctx: &mut Ctx, to: Atom, out: &mut Outbox<Op<M::Command>, Term>) {
        let Some(id) = self.config.nodes.iter().position(|n| *n == to) else {
            return;
        };
        if self.raft.is_leader() {
            if !self.raft.transfer(id, out) {
                // Not caught up yet: send it what it lacks; the client asks again.
                self.raft.replicate(out);
            }
        } else if let Some(leader) = self.raft.leader() {
            let msg = Term::tuple(vec![Term::atom(TRANSFER), Term::Atom(to)]);
            let _ = ctx.send_to(
                Dest::NameAt(self.config.name, self.config.nodes[leader]),
                msg,
            );
        }
    }

    fn tick(&mut self, out: &mut Outbox<Op<M::Command>, Term>) {
        let now = Instant::now();
        if self.raft.is_leader() {
            if now >= self.next_quorum_check {
                self.next_quorum_check = now + self.config.election;
                if self.raft.check_quorum() {
                    self.shared.touch();
                } else {
                    log::info!(
                        "{}: leader heard from no majority: steps down",
                        self.config.name
                    );
                    self.election_deadline = now + random_election(&self.config);
                }
            }
            if self.raft.is_leader() && now >= self.next_heartbeat {
                self.next_heartbeat = now + self.config.heartbeat;
                self.raft.heartbeat(out);
            }
        } else if now >= self.election_deadline {
            self.election_deadline = now + random_election(&self.config);
            self.raft.election_timeout(out);
        }
    }

    fn peer(&mut self, env: Envelope<M::Command>, out: &mut Outbox<Op<M::Command>, Term>) {
        let from = env.from;
        if env.members != self.members {
            if !self.warned_members {
                self.warned_members = true;
                log::warn!(
                    "{}: a replica with another member list (not {:?}) is ignored",
                    self.config.name,
                    self.config.nodes
                );
            }
            return;
        }
        if from >= self.config.nodes.len() || from == self.me {
            log::warn!(
                "{}: a raft message from replica {from} was dropped",
                self.config.name
            );
            return;
        }
        let leader_commit = match &env.msg {
            Msg::Append { commit, .. } => Some(*commit),
            Msg::InstallSnapshot { index, .. } => Some(*index),
            _ => None,
        };
        let voted = self.raft.voted_for;
        let term = self.raft.term;
        self.raft.receive(from, env.msg, out);
        let heard_leader = leader_commit.is_some() && self.raft.leader() == Some(from);
        let granted =
            self.raft.voted_for == Some(from) && (voted != Some(from) || term != self.raft.term);
        if heard_leader || granted {
            self.election_deadline = Instant::now() + random_election(&self.config);
        }
        if heard_leader {
            self.shared.touch();
            if !self.raft.voter && leader_commit.is_some_and(|c| self.raft.commit >= c) {
                log::info!(
                    "{}: caught up with the leader: votes again",
                    self.config.name
                );
                self.raft.voter = true;
            }
        }
    }

    /// A recovered replica's machine, restored from its snapshot (its log re-applies
    /// as the commit index is learned again).
    fn recover(&mut self, ctx: &mut Ctx) -> Result<(), Term> {
        let snapshot = &self.raft.snapshot;
        if let Some(data) = &snapshot.data {
            let restored = self.shared.machine.write().restore(ctx, data);
            restored.map_err(|e| {
                let why = format!("the stored snapshot did not restore: {e}");
                Term::tuple(vec![Term::atom("storage"), Term::str(&why)])
            })?;
            self.applied = snapshot.index;
            let status = &self.shared.status;
            status
                .applied
                .store(self.applied, std::sync::atomic::Ordering::Release);
        }
        self.shared
            .status
            .term
            .store(self.raft.term, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// After each input: note leadership changes, make the step durable, send what the
    /// core produced, apply what committed, compact. A step that cannot be made durable
    /// stops the replica before anything of it is sent or answered.
    fn after(&mut self, ctx: &mut Ctx, mut out: Outbox<Op<M::Command>, Term>) -> Flow {
        let leader = self.raft.is_leader();
        if leader && !self.was_leader {
            log::info!("{}: leads term {}", self.config.name, self.raft.term);
            self.shared.touch();
            self.next_quorum_check = Instant::now() + self.config.election;
            if self.raft.propose(Op::Elected).is_ok() {
                self.raft.replicate(&mut out);
            }
        }
        if let Err(e) = self.storage.save(&self.raft) {
            log::error!("{}: stops: {e}", self.config.name);
            return Flow::Stop(Term::tuple(vec![
                Term::atom("storage"),
                Term::str(&e.to_string()),
            ]));
        }
        self.send(ctx, out);
        if !leader && !self.reads.is_empty() {
            self.refuse_reads(ctx, NotLeader::Unknown);
        }
        self.was_leader = leader;
        if leader && self.raft.commit > self.commit_told {
            // Followers learn a new commit index now, not at the next heartbeat: their
            // local reads lag a round trip behind the leader, not a heartbeat period.
            self.commit_told = self.raft.commit;
            let mut out = Vec::new();
            self.raft.heartbeat(&mut out);
            self.next_heartbeat = Instant::now() + self.config.heartbeat;
            self.send(ctx, out);
        }
        self.apply(ctx);
        let status = &self.shared.status;
        status
            .term
            .store(self.raft.term, std::sync::atomic::Ordering::Relaxed);
        status
            .leader
            .store(leader, std::sync::atomic::Ordering::Relaxed);
        let known = self.raft.leader().map_or(0, |l| l as u64 + 1);
        status
            .known_leader
            .store(known, std::sync::atomic::Ordering::Relaxed);
        if self.applied - self.raft.snapshot.index >= self.config.compact_every {
            let snapshot = self.shared.machine.read().snapshot();
            self.raft.compact(self.applied, snapshot);
        }
        Flow::Continue
    }

    fn send(&self, ctx: &mut Ctx, out: Outbox<Op<M::Command>, Term>) {
        for (to, msg) in out {
            let env = Envelope {
                from: self.me,
                members: self.members,
                msg,
            };
            let body = match to_term(&env) {
                Ok(t) => Term::tuple(vec![Term::atom(PEER_TAG), t]),
                Err(e) => {
                    log::error!("{}: a raft message did not convert: {e}", self.config.name);
                    continue;
                }
            };
            let dest = Dest::NameAt(self.config.name, self.config.nodes[to]);
            if let Err(e) = ctx.send_to(dest, body) {
                log::debug!("{}: to replica {to}: {e}", self.config.name);
            }
        }
    }

    fn apply(&mut self, ctx: &mut Ctx) {
        if self.raft.snapshot.index > self.applied {
            if let Some(data) = &self.raft.snapshot.data
                && let Err(e) = self.shared.machine.write().restore(ctx, data)
            {
                log::error!("{}: a snapshot did not restore: {e}", self.config.name);
            }
            self.applied = self.raft.snapshot.index;
            let settled: Vec<u64> = self
                .pending
                .range(..=self.applied)
                .map(|(i, _)| *i)
                .collect();
            for index in settled {
                if let Some((_, waiters)) = self.pending.remove(&index) {
                    self.answer(ctx, waiters, |_| Err(Refusal::Failed(GroupError::Unknown)));
                }
            }
        }
        if self.applied >= self.raft.commit {
            return;
        }
        let mut machine = self.shared.machine.write();
        while self.applied < self.raft.commit {
            let index = self.applied + 1;
            let entry = self.raft.entries_from(index)[0].clone();
            let output = match entry.cmd {
                Op::Cmd(cmd) => Some(machine.apply(ctx, index, cmd)),
                Op::Read | Op::Elected => None,
            };
            self.applied = index;
            self.shared
                .status
                .applied
                .store(index, std::sync::atomic::Ordering::Release);
            let Some((term, waiters)) = self.pending.remove(&index) else {
                continue;
            };
            if term != entry.term {
                let refused = || Err(Refusal::Failed(GroupError::NotCommitted));
                self.answer(ctx, waiters, |_| refused());
                continue;
            }
            let mut output = output;
            self.answer(ctx, waiters, |w| match w {
                Waiter::Write(_) => output
                    .take()
                    .map(Ok)
                    .unwrap_or(Err(Refusal::Failed(GroupError::Unknown))),
                Waiter::Read(_, q) => Ok(machine.query(q)),
            });
        }
    }

    fn answer(
        &self,
        ctx: &mut Ctx,
        waiters: Vec<Waiter<M::Query>>,
        mut reply: impl FnMut(&Waiter<M::Query>) -> Result<M::Output, Refusal>,
    ) {
        for w in waiters {
            let r = reply(&w);
            let (Waiter::Write(to) | Waiter::Read(to, _)) = w;
            server::reply(ctx.node(), to, &r);
        }
    }
}
