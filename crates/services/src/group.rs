//! A replicated state machine on a chosen set of nodes: one [`Machine`] per node, kept
//! identical by the [`raft`](crate::raft) core, run by a replica process on each node
//! (`group/replica.rs`). The KV tables, the lock manager and the task queue are machines
//! of this kind.
//!
//! **What a client gets.** [`Group::propose`] returns once the command is committed (a
//! majority of the replicas hold it) and applied, with what applying it gave;
//! [`Group::read`] answers a query linearizably (after a barrier entry committed in the
//! leader's current term, so no newer write can have been acknowledged); and
//! [`Group::local`] reads this node's copy with no message at all, with its
//! [`Freshness`]. A replica that is not the leader answers `NotLeader` with the leader it
//! knows; the client goes there (or waits for an election, a few milliseconds at a time,
//! at most `no_leader_wait`) before it gives up with [`GroupError::NoQuorum`].
//!
//! **The replica process**, on each node, registered as the group's name: it runs the
//! core's inputs from a tick every `tick` (election timeouts randomized in
//! `[election, 2 * election)`, heartbeats every `heartbeat`, a quorum check every
//! `election`), turns peer messages (`{:"$oxbeam_raft", from_id, msg}` sent to the
//! peer's registered name on its node) into the core's, and after each message applies
//! what was committed. Proposals arriving together share one replication round (the
//! process sends itself a flush message behind them: group commit). The log is compacted
//! into a snapshot every `compact_every` applied entries.
//!
//! **Joining.** A replica started with no state for a group that already exists
//! ([`Start::Join`]) takes no part in elections until a leader has brought it up to its
//! commit index: with in-memory state, a restarted replica must not vote again in a term
//! it voted in before, nor count for a majority with a log it forgot.
//!
//! **Durability.** With [`Storage::Disk`] each replica keeps its term, vote, snapshot and
//! log in a redb file of its own (`group/storage.rs`), written once per step (one
//! transaction, fsync'd) before the step's messages go out or any client is answered:
//! a write acknowledged to a client is on the disks of a majority. A replica that
//! restarts on its file recovers all of it, restores its machine from the snapshot,
//! re-applies the log as it learns the commit index again, and votes at once: a kill -9
//! of every node loses no acknowledged write. With [`Storage::Memory`] (the default) a
//! restarted replica has lost its state and must rejoin with [`Start::Join`].
//!
//! **Membership** is fixed when the group starts: every node gets the same list.

mod client;
mod replica;
mod storage;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::rt::Ctx;
use crate::term::{Atom, Term};

pub use client::Group;
pub use storage::{Storage, StorageError};

/// What a group replicates: a deterministic state machine.
pub trait Machine: Send + Sync + 'static {
    /// A command of the replicated log.
    type Command: Serialize + DeserializeOwned + Clone + Send + 'static;
    /// A read, answered by [`Machine::query`].
    type Query: Serialize + DeserializeOwned + Send + 'static;
    /// What applying a command or answering a query gives.
    type Output: Serialize + DeserializeOwned + Send + 'static;

    /// Applies a committed command (the same on every replica, in the same order).
    /// `ctx` is the replica process's, for notifications (watchers); the log index is
    /// the command's.
    fn apply(&mut self, ctx: &mut Ctx, index: u64, cmd: Self::Command) -> Self::Output;
    /// Answers a query against the current state.
    fn query(&self, query: &Self::Query) -> Self::Output;
    /// The whole state, as a term (for snapshots sent to followers far behind).
    fn snapshot(&self) -> Term;
    /// Replaces the state by a snapshot's (a follower far behind is sent one).
    fn restore(&mut self, ctx: &mut Ctx, snapshot: &Term) -> Result<(), String>;
}

/// How a replica starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The group is new: every replica starts empty and may stand for election.
    Bootstrap,
    /// The group exists and this replica lost its state: it follows until caught up.
    Join,
}

/// A group's settings; the same on every node.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    /// The registered name of the replica process on each node.
    pub name: Atom,
    /// The replicas' nodes, in the same order everywhere.
    pub nodes: Vec<Atom>,
    /// How this replica starts (with [`Storage::Disk`] and a store that holds state,
    /// it recovers that state instead and votes at once, whatever `start` says).
    pub start: Start,
    /// Where the replica keeps its term, vote, snapshot and log:
    /// [`Storage::Memory`] (the default) or a redb file.
    pub storage: Storage,
    /// The base election timeout (each is drawn from `[election, 2 * election)`); also
    /// the quorum check's period.
    pub election: Duration,
    /// The leader's heartbeat period.
    pub heartbeat: Duration,
    /// The replica's timer tick.
    pub tick: Duration,
    /// Compact the log once this many entries were applied since the last snapshot.
    pub compact_every: u64,
    /// How long a client waits for a leader before [`GroupError::NoQuorum`].
    pub no_leader_wait: Duration,
    /// A local read is [`Freshness::Stale`] once this long passed without word from a
    /// leader (or, on the leader, without a passed quorum check).
    pub stale_after: Duration,
    /// Entries per replication message.
    pub max_batch: usize,
    /// Broken rules, for a checker's control run only (`commit_without_majority` is
    /// "acknowledge before replicating"). Never set outside tests.
    pub faults: crate::raft::Faults,
}

impl GroupConfig {
    /// The defaults for a group named `name` on `nodes`: elections after 300-600 ms of
    /// silence, heartbeats every 50 ms, a 10 ms tick, compaction every 10,000 entries.
    pub fn new(name: impl Into<Atom>, nodes: Vec<Atom>) -> GroupConfig {
        GroupConfig {
            name: name.into(),
            nodes,
            start: Start::Bootstrap,
            storage: Storage::Memory,
            election: Duration::from_millis(300),
            heartbeat: Duration::from_millis(50),
            tick: Duration::from_millis(10),
            compact_every: 10_000,
            no_leader_wait: Duration::from_secs(1),
            stale_after: Duration::from_secs(1),
            max_batch: 256,
            faults: crate::raft::Faults::default(),
        }
    }
}

impl GroupConfig {
    /// Keeps this replica's state in `dir`, in a file named after the group (see
    /// [`Storage::Disk`]).
    pub fn durable_in(mut self, dir: impl Into<std::path::PathBuf>) -> GroupConfig {
        let file = format!("{}.redb", file_safe(self.name.as_str()));
        self.storage = Storage::Disk(dir.into().join(file));
        self
    }
}

/// `name` as a file name: letters, digits, `-` and `_` as they are, any other byte as
/// `%XX`.
pub(crate) fn file_safe(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why a group operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum GroupError {
    /// No leader with a majority within `no_leader_wait`: this side of a partition has no
    /// quorum (nothing was written).
    NoQuorum,
    /// The leader that took the command lost its term before the command committed,
    /// and the entry was replaced: it was not applied.
    NotCommitted,
    /// The outcome is unknown: the replica lost track of the command (its leader stepped
    /// down and the log moved past it by a snapshot), or no answer came in time. It may
    /// or may not have been applied.
    Unknown,
    /// No replica of this group runs on the node asked.
    NotRunning(String),
    /// The command or query could not be carried (the message says why).
    BadRequest(String),
}

impl std::fmt::Display for GroupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupError::NoQuorum => write!(f, "no leader with a majority (no quorum)"),
            GroupError::NotCommitted => write!(f, "the leader lost its term: not committed"),
            GroupError::Unknown => write!(f, "outcome unknown (no answer in time)"),
            GroupError::NotRunning(n) => write!(f, "no replica runs on {n}"),
            GroupError::BadRequest(why) => write!(f, "bad request: {why}"),
        }
    }
}

impl std::error::Error for GroupError {}

/// How current a local read is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Freshness {
    /// A leader (or, here, a passed quorum check) was heard within `stale_after`.
    Current,
    /// Not: this replica may be cut off; newer writes may exist.
    Stale,
}

/// A replica's state shared with readers on its node: the machine (read by local reads
/// without a message) and the status the replica publishes.
pub struct Shared<M> {
    /// The machine, as of `applied`.
    pub machine: RwLock<M>,
    /// The group's settings.
    pub config: GroupConfig,
    status: Status,
}

struct Status {
    started: Instant,
    /// Nanoseconds since `started` of the last word from a leader (or passed check).
    contact_ns: AtomicU64,
    applied: AtomicU64,
    term: AtomicU64,
    leader: AtomicBool,
    /// The leader this replica knows, as its index + 1 (0: none).
    known_leader: AtomicU64,
    stale_after: Duration,
}

impl<M> Shared<M> {
    fn new(machine: M, config: GroupConfig) -> Shared<M> {
        let stale_after = config.stale_after;
        Shared {
            machine: RwLock::new(machine),
            config,
            status: Status {
                started: Instant::now(),
                contact_ns: AtomicU64::new(0),
                applied: AtomicU64::new(0),
                term: AtomicU64::new(0),
                leader: AtomicBool::new(false),
                known_leader: AtomicU64::new(0),
                stale_after,
            },
        }
    }

    fn touch(&self) {
        let ns = self.status.started.elapsed().as_nanos() as u64;
        self.status.contact_ns.store(ns.max(1), Ordering::Relaxed);
    }

    /// Whether a leader was heard from within `stale_after`.
    pub fn freshness(&self) -> Freshness {
        let contact = self.status.contact_ns.load(Ordering::Relaxed);
        let now = self.status.started.elapsed().as_nanos() as u64;
        if contact > 0 && now.saturating_sub(contact) < self.status.stale_after.as_nanos() as u64 {
            Freshness::Current
        } else {
            Freshness::Stale
        }
    }

    /// The last applied log index.
    pub fn applied(&self) -> u64 {
        self.status.applied.load(Ordering::Acquire)
    }

    /// The replica's current term.
    pub fn term(&self) -> u64 {
        self.status.term.load(Ordering::Relaxed)
    }

    /// Whether the replica leads its term.
    pub fn is_leader(&self) -> bool {
        self.status.leader.load(Ordering::Relaxed)
    }

    /// The index (in the group's nodes) of the leader this replica follows (or itself
    /// when it leads), if it knows one.
    pub fn known_leader(&self) -> Option<usize> {
        match self.status.known_leader.load(Ordering::Relaxed) {
            0 => None,
            i => Some(i as usize - 1),
        }
    }
}

/// The groups running on a node, by name (a node extension): how a client finds its
/// local replica's shared state.
/// (Public to the crate's services; not part of the API.)
#[derive(Default)]
pub(crate) struct Registry {
    groups: RwLock<std::collections::HashMap<Atom, Arc<dyn std::any::Any + Send + Sync>>>,
    /// The services' handles, by group name (a service's settings beyond the group's
    /// must be the same for every user on the node: a lock's lease, say).
    handles: RwLock<std::collections::HashMap<Atom, Arc<dyn std::any::Any + Send + Sync>>>,
}

impl Registry {
    pub(crate) fn of(node: &crate::rt::Node) -> Arc<Registry> {
        node.extension_or_insert_with(|| Arc::new(Registry::default()))
    }

    pub(crate) fn insert<M: Machine>(&self, name: Atom, shared: Arc<Shared<M>>) {
        self.groups.write().insert(name, shared);
    }

    pub(crate) fn remove(&self, name: Atom) {
        self.groups.write().remove(&name);
        self.handles.write().remove(&name);
    }

    pub(crate) fn insert_handle<T: Send + Sync + 'static>(&self, name: Atom, handle: T) {
        self.handles.write().insert(name, Arc::new(handle));
    }

    pub(crate) fn handle<T: Clone + Send + Sync + 'static>(&self, name: Atom) -> Option<T> {
        let any = self.handles.read().get(&name)?.clone();
        any.downcast::<T>().ok().map(|t| (*t).clone())
    }

    pub(crate) fn get<M: Machine>(&self, name: Atom) -> Option<Arc<Shared<M>>> {
        let any = self.groups.read().get(&name)?.clone();
        any.downcast::<Shared<M>>().ok()
    }
}

/// Starts this node's replica of a group: registers it as `config.name`, publishes
/// its shared state, and returns the client. Fails if the name is taken or this node is
/// not in `config.nodes`.
pub fn start<M: Machine>(
    node: &crate::rt::Node,
    config: GroupConfig,
    machine: M,
) -> Result<Group<M>, crate::rt::StartError> {
    replica::start(node, config, machine)
}
