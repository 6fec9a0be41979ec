//! The replicated KV (the chapter's exercise 1, as a service): named tables on a chosen
//! set of nodes, each a [`group`] whose machine is a
//! [`Store`] of terms.
//!
//! - Writes ([`Table::put`], [`Table::delete`], [`Table::compare_and_set`]) go to the
//!   table's one writer (the group's leader, chosen by terms so that two writers never
//!   both commit) and are acknowledged once a majority of the replicas hold them. The
//!   side of a partition without a majority has no leader within an election timeout
//!   and refuses writes with [`KvError::NoQuorum`].
//! - [`Table::get`] is linearizable; [`Table::get_local`] reads this node's copy with no
//!   message at all, with the revision it reflects and whether it is
//!   [`Freshness::Stale`] (no word from a leader for a second).
//! - Every applied command is one revision; [`Table::subscribe`] from a revision sends
//!   the caller every change after it, then each new one, with no gap and no duplicate,
//!   as `{:oxbeam_kv_event, watch_ref, event}` ([`Table::next_event`] takes them typed).
//! - Replicas are in memory unless [`TableConfig::durable`] gives each node a directory:
//!   then a write is acknowledged once it is on the disks of a majority, and a node (or
//!   the whole cluster) killed and restarted on its directories loses no acknowledged
//!   write.
//!
//! ```no_run
//! # use oxbeam_services::kv::{Table, KvError};
//! # fn demo(node: &oxbeam_rt::Node, ctx: &mut oxbeam_rt::Ctx) -> Result<(), KvError> {
//! let nodes = ["kv1@localhost", "kv2@localhost", "kv3@localhost"];
//! let users: Table<String, String> = Table::start(node, "users", &nodes)?; // on each node
//! users.put(ctx, &"user_1".to_string(), &"Alice".to_string())?;
//! let local = users.get_local(&"user_1".to_string())?;
//! assert_eq!(local.value.as_deref(), Some("Alice"));
//! # Ok(()) }
//! ```

use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::group::{self, Freshness, Group, GroupConfig, GroupError, Machine, Start, Storage};
use crate::kv_store::{Applied, Command, Store};
pub use crate::kv_store::{Event, Expect};
use crate::locks::Fence;
use crate::rt::{Ctx, Node};
use crate::term::{Atom, Pid, Ref, Term, from_term, to_term};

/// How many changes each replica keeps for watchers that resume (older ones get
/// [`KvError::Compacted`]).
const KEEP_CHANGES: usize = 100_000;

/// The KV machine: the store and this node's watchers.
pub struct Kv {
    store: Store<Term, Term>,
    watchers: Vec<Watcher>,
}

struct Watcher {
    pid: Pid,
    watch: Ref,
}

/// A read of the KV machine.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum KvQuery {
    /// One key's row.
    Get(Term),
    /// Every key.
    Keys,
    /// The rows whose key matches the pattern (`:_` matches anything).
    Select(Term),
}

/// What a KV command or query gives.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum KvOutput {
    /// A write's outcome.
    Applied(Applied<Term>),
    /// A key's value with its last-write revision, and the revision read at.
    Row(Option<(Term, u64)>, u64),
    /// Keys, and the revision read at.
    Keys(Vec<Term>, u64),
    /// Rows, and the revision read at.
    Rows(Vec<(Term, Term)>, u64),
}

impl Machine for Kv {
    type Command = Command<Term, Term>;
    type Query = KvQuery;
    type Output = KvOutput;

    fn apply(&mut self, ctx: &mut Ctx, _index: u64, cmd: Self::Command) -> KvOutput {
        let before = self.store.changes_kept();
        let applied = self.store.apply(cmd);
        if self.store.changes_kept() > before
            && !self.watchers.is_empty()
            && let Ok(events) = self.store.changes_since(self.store.revision() - 1)
        {
            self.notify(ctx, &events);
        }
        if self.store.changes_kept() > 2 * KEEP_CHANGES {
            let upto = self.store.revision() - KEEP_CHANGES as u64;
            self.store.compact(upto);
        }
        KvOutput::Applied(applied)
    }

    fn query(&self, query: &KvQuery) -> KvOutput {
        let revision = self.store.revision();
        match query {
            KvQuery::Get(key) => KvOutput::Row(
                self.store.get(key).map(|r| (r.value.clone(), r.modified)),
                revision,
            ),
            KvQuery::Keys => KvOutput::Keys(self.store.keys().cloned().collect(), revision),
            KvQuery::Select(pattern) => KvOutput::Rows(
                self.store
                    .keys()
                    .filter(|k| k.matches(pattern))
                    .filter_map(|k| self.store.get(k).map(|r| (k.clone(), r.value.clone())))
                    .collect(),
                revision,
            ),
        }
    }

    fn snapshot(&self) -> Term {
        to_term(&self.store).unwrap_or_else(|e| {
            log::error!("a KV snapshot did not convert: {e}");
            Term::atom("nil")
        })
    }

    fn restore(&mut self, ctx: &mut Ctx, snapshot: &Term) -> Result<(), String> {
        let store: Store<Term, Term> = from_term(snapshot).map_err(|e| e.to_string())?;
        let before = self.store.revision();
        self.store = store;
        // Watchers carry on from what they saw: what the snapshot skipped, if it kept
        // it; else they are told, and dropped.
        match self.store.changes_since(before) {
            Ok(events) => self.notify(ctx, &events),
            Err(c) => {
                let lost = Term::tuple(vec![Term::atom("compacted"), Term::Int(c.oldest as i64)]);
                for w in self.watchers.drain(..) {
                    let msg = Term::tuple(vec![
                        Term::atom(EVENT_TAG),
                        Term::Ref(w.watch),
                        lost.clone(),
                    ]);
                    ctx.send(w.pid, msg);
                }
            }
        }
        Ok(())
    }
}

impl Kv {
    fn notify(&mut self, ctx: &mut Ctx, events: &[Event<Term, Term>]) {
        let node = ctx.node().clone();
        self.watchers.retain(|w| node.is_alive(w.pid));
        for w in &self.watchers {
            for e in events {
                let event = to_term(e).unwrap_or_else(|_| Term::atom("nil"));
                node.send(
                    w.pid,
                    Term::tuple(vec![Term::atom(EVENT_TAG), Term::Ref(w.watch), event]),
                );
            }
        }
    }
}

const EVENT_TAG: &str = "oxbeam_kv_event";

/// Why a KV operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KvError {
    /// No writer with a majority could be reached: nothing was written.
    NoQuorum,
    /// The write's outcome is unknown (no answer in time, or its writer lost its term
    /// and the log moved on by a snapshot).
    Unknown,
    /// The writer lost its term before the write committed: it was not applied.
    NotCommitted,
    /// No replica of the table runs on this node.
    NotRunning(String),
    /// A key or value did not convert to or from a term (the message says which).
    Convert(String),
    /// A watch asked to resume from a revision whose changes are gone: read afresh from
    /// at least `oldest`.
    Compacted {
        /// The oldest revision a watch can resume from.
        oldest: u64,
    },
    /// The replica did not start (the reason).
    Start(String),
    /// A fenced write carried a token older than the lock's newest seen here: the
    /// writer's lease ended and someone newer wrote (nothing written).
    StaleToken {
        /// The write's token.
        token: u64,
        /// The newest token seen for the lock.
        newest: u64,
    },
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvError::NoQuorum => write!(f, "no writer with a majority: not written"),
            KvError::Unknown => write!(f, "outcome unknown"),
            KvError::NotCommitted => write!(f, "the writer lost its term: not applied"),
            KvError::NotRunning(n) => write!(f, "no replica of the table on {n}"),
            KvError::Convert(why) => write!(f, "conversion: {why}"),
            KvError::Compacted { oldest } => write!(f, "compacted: resume from {oldest} at least"),
            KvError::Start(why) => write!(f, "the replica did not start: {why}"),
            KvError::StaleToken { token, newest } => {
                write!(f, "fenced: token {token} is older than {newest}")
            }
        }
    }
}

impl std::error::Error for KvError {}

impl From<GroupError> for KvError {
    fn from(e: GroupError) -> KvError {
        match e {
            GroupError::NoQuorum => KvError::NoQuorum,
            GroupError::NotCommitted => KvError::NotCommitted,
            GroupError::Unknown => KvError::Unknown,
            GroupError::NotRunning(n) => KvError::NotRunning(n),
            GroupError::BadRequest(why) => KvError::Convert(why),
        }
    }
}

/// A write's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written<V> {
    /// The write's revision.
    pub revision: u64,
    /// What the key held before.
    pub previous: Option<V>,
}

/// A compare-and-set that found the key otherwise: nothing was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict<V> {
    /// The key's value and last-write revision now (`None`: absent).
    pub current: Option<(V, u64)>,
}

/// A local read: the value, the revision it reflects, and how fresh it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local<T> {
    /// What was read.
    pub value: T,
    /// The table's revision on this node.
    pub revision: u64,
    /// Whether this node heard from the writer recently.
    pub freshness: Freshness,
}

/// A table's settings beyond its name and nodes.
#[derive(Clone, Debug)]
pub struct TableConfig {
    /// The replica group's settings (timers, batching).
    pub group: GroupConfig,
    /// How long an operation waits for its answer.
    pub timeout: Duration,
}

impl TableConfig {
    /// The defaults for table `name` on `nodes` (a new table).
    pub fn new<N: Into<Atom> + Copy>(name: &str, nodes: &[N]) -> TableConfig {
        let nodes = nodes.iter().map(|n| (*n).into()).collect();
        TableConfig {
            group: GroupConfig::new(group_name(name), nodes),
            timeout: Duration::from_secs(5),
        }
    }

    /// This replica rejoins an existing table after losing its state (see
    /// [`Start::Join`]).
    pub fn joining(mut self) -> TableConfig {
        self.group.start = Start::Join;
        self
    }

    /// This node keeps its replica of the table on disk, in the file
    /// `<dir>/kv_<table>.redb` (`dir`, this node's data directory, is created if missing;
    /// characters of the table's name other than letters, digits, `-` and `_` are
    /// written `%XX`). A write is acknowledged once it is on the disks of a majority; a
    /// node restarted on the same directory recovers its replica (see
    /// [`Storage::Disk`]). Without it, the replica is in memory only.
    pub fn durable(mut self, dir: impl Into<PathBuf>) -> TableConfig {
        let table = self.group.name.as_str();
        let table = table.strip_prefix(GROUP_PREFIX).unwrap_or(table);
        let file = format!("kv_{}.redb", group::file_safe(table));
        self.group.storage = Storage::Disk(dir.into().join(file));
        self
    }
}

const GROUP_PREFIX: &str = "oxbeam_kv:";

fn group_name(table: &str) -> Atom {
    Atom::new(&format!("{GROUP_PREFIX}{table}"))
}

/// A table, typed by its keys and values (`Term` for dynamic data): a handle on this
/// node's replica, cheap to clone, usable from any process of the node.
pub struct Table<K = Term, V = Term> {
    group: Group<Kv>,
    timeout: Duration,
    types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for Table<K, V> {
    fn clone(&self) -> Table<K, V> {
        Table {
            group: self.group.clone(),
            timeout: self.timeout,
            types: PhantomData,
        }
    }
}

/// `v` as a term: a `Term` as it is (a clone, no serde pass), anything else through
/// the serde conversion.
fn term_of<T: Serialize + 'static>(v: &T) -> Result<Term, KvError> {
    if let Some(t) = (v as &dyn std::any::Any).downcast_ref::<Term>() {
        return Ok(t.clone());
    }
    to_term(v).map_err(|e| KvError::Convert(e.to_string()))
}

/// A term as a `T`: a `Term` as it is, anything else through the serde conversion.
fn decode<T: DeserializeOwned + 'static>(t: &Term) -> Result<T, KvError> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<Term>() {
        let mut slot = Some(t.clone());
        if let Some(same) = (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<T>>() {
            return same.take().ok_or_else(|| KvError::Convert("taken".into()));
        }
    }
    from_term(t).map_err(|e| KvError::Convert(format!("{t}: {e}")))
}

impl<K: Serialize + DeserializeOwned + 'static, V: Serialize + DeserializeOwned + 'static>
    Table<K, V>
{
    /// Starts this node's replica of table `name`, replicated on `nodes` (this node among
    /// them; every node of the table starts its own with the same list).
    pub fn start<N: Into<Atom> + Copy>(
        node: &Node,
        name: &str,
        nodes: &[N],
    ) -> Result<Table<K, V>, KvError> {
        Table::start_with(node, TableConfig::new(name, nodes))
    }

    /// [`Table::start`] with settings.
    pub fn start_with(node: &Node, config: TableConfig) -> Result<Table<K, V>, KvError> {
        let machine = Kv {
            store: Store::new(),
            watchers: Vec::new(),
        };
        let group =
            group::start(node, config.group, machine).map_err(|e| KvError::Start(e.to_string()))?;
        Ok(Table {
            group,
            timeout: config.timeout,
            types: PhantomData,
        })
    }

    /// The table `name` whose replica runs on `node` (started there by
    /// [`Table::start`]), with a 5 s timeout per operation.
    pub fn open(node: &Node, name: &str) -> Result<Table<K, V>, KvError> {
        let group = Group::find(node, group_name(name))?;
        Ok(Table {
            group,
            timeout: Duration::from_secs(5),
            types: PhantomData,
        })
    }

    fn write(&self, ctx: &mut Ctx, cmd: Command<Term, Term>) -> Result<Applied<Term>, KvError> {
        match self.group.propose(ctx, cmd, self.timeout)? {
            KvOutput::Applied(applied) => Ok(applied),
            other => Err(KvError::Convert(format!("a write answered {other:?}"))),
        }
    }

    /// A write's outcome; `fence`, the fence it carried (if any), names the refused token.
    fn written(applied: Applied<Term>, fence: Option<&Fence>) -> Result<Written<V>, KvError> {
        match applied {
            Applied::Written { revision, previous } => Ok(Written {
                revision,
                previous: previous.as_ref().map(decode).transpose()?,
            }),
            Applied::Refused { .. } => Err(KvError::Convert("a plain write was refused".into())),
            Applied::Fenced { newest, .. } => Err(KvError::StaleToken {
                token: fence.map_or(0, |f| f.token),
                newest,
            }),
        }
    }

    fn fenced(fence: &Fence, inner: Command<Term, Term>) -> Command<Term, Term> {
        Command::Fenced {
            fence: fence.resource.clone(),
            token: fence.token,
            inner: Box::new(inner),
        }
    }

    /// [`Table::put`] guarded by a lock's fencing token: refused with
    /// [`KvError::StaleToken`] if a write with a newer token of the same lock came first
    /// (Kleppmann's fencing: a holder whose lease ended cannot overwrite its successor).
    pub fn put_fenced(
        &self,
        ctx: &mut Ctx,
        key: &K,
        value: &V,
        fence: &Fence,
    ) -> Result<Written<V>, KvError> {
        let cmd = Self::fenced(fence, Command::Put(term_of(key)?, term_of(value)?));
        Self::written(self.write(ctx, cmd)?, Some(fence))
    }

    /// [`Table::compare_and_set`] guarded by a fencing token (see [`Table::put_fenced`]).
    pub fn compare_and_set_fenced(
        &self,
        ctx: &mut Ctx,
        key: &K,
        expect: Expect,
        value: &V,
        fence: &Fence,
    ) -> Result<Result<Written<V>, Conflict<V>>, KvError> {
        let inner = Command::CompareAndSet {
            key: term_of(key)?,
            expect,
            value: term_of(value)?,
        };
        match self.write(ctx, Self::fenced(fence, inner))? {
            Applied::Refused { current, .. } => Ok(Err(Conflict {
                current: current
                    .map(|(v, r)| decode(&v).map(|v| (v, r)))
                    .transpose()?,
            })),
            written => Self::written(written, Some(fence)).map(Ok),
        }
    }

    /// Sets `key` to `value`, acknowledged once a majority holds it.
    pub fn put(&self, ctx: &mut Ctx, key: &K, value: &V) -> Result<Written<V>, KvError> {
        let cmd = Command::Put(term_of(key)?, term_of(value)?);
        Self::written(self.write(ctx, cmd)?, None)
    }

    /// Removes `key` (still a revision when it is absent).
    pub fn delete(&self, ctx: &mut Ctx, key: &K) -> Result<Written<V>, KvError> {
        Self::written(self.write(ctx, Command::Delete(term_of(key)?))?, None)
    }

    /// Sets `key` to `value` if it is as `expect` says (absent, or last written at a
    /// revision); otherwise writes nothing and answers what the key holds.
    pub fn compare_and_set(
        &self,
        ctx: &mut Ctx,
        key: &K,
        expect: Expect,
        value: &V,
    ) -> Result<Result<Written<V>, Conflict<V>>, KvError> {
        let cmd = Command::CompareAndSet {
            key: term_of(key)?,
            expect,
            value: term_of(value)?,
        };
        match self.write(ctx, cmd)? {
            Applied::Refused { current, .. } => Ok(Err(Conflict {
                current: current
                    .map(|(v, r)| decode(&v).map(|v| (v, r)))
                    .transpose()?,
            })),
            written => Self::written(written, None).map(Ok),
        }
    }

    /// The value of `key` and its last-write revision, linearizably: every write
    /// acknowledged before the call is seen.
    pub fn get(&self, ctx: &mut Ctx, key: &K) -> Result<Option<(V, u64)>, KvError> {
        let query = KvQuery::Get(term_of(key)?);
        match self.group.read(ctx, query, self.timeout)? {
            KvOutput::Row(row, _) => row.map(|(v, r)| decode(&v).map(|v| (v, r))).transpose(),
            other => Err(KvError::Convert(format!("a get answered {other:?}"))),
        }
    }

    /// This node's copy of `key`, with no message: the value, the revision the copy
    /// reflects, and whether it may be stale.
    pub fn get_local(&self, key: &K) -> Result<Local<Option<V>>, KvError> {
        let key = term_of(key)?;
        let (value, freshness, _) = self.group.local(|kv| {
            let row = kv.store.get(&key).map(|r| r.value.clone());
            (row, kv.store.revision())
        });
        let (row, revision) = value;
        Ok(Local {
            value: row.as_ref().map(decode).transpose()?,
            revision,
            freshness,
        })
    }

    /// Every key, linearizably, in term order.
    pub fn keys(&self, ctx: &mut Ctx) -> Result<Vec<K>, KvError> {
        match self.group.read(ctx, KvQuery::Keys, self.timeout)? {
            KvOutput::Keys(keys, _) => keys.iter().map(decode).collect(),
            other => Err(KvError::Convert(format!("keys answered {other:?}"))),
        }
    }

    /// The rows whose key matches `pattern` (a term where `:_` matches anything:
    /// `{:user, :_}`), linearizably, in key order.
    pub fn select(&self, ctx: &mut Ctx, pattern: &Term) -> Result<Vec<(K, V)>, KvError> {
        match self
            .group
            .read(ctx, KvQuery::Select(pattern.clone()), self.timeout)?
        {
            KvOutput::Rows(rows, _) => rows
                .iter()
                .map(|(k, v)| Ok((decode(k)?, decode(v)?)))
                .collect(),
            other => Err(KvError::Convert(format!("select answered {other:?}"))),
        }
    }

    /// Watches the table from this node's replica: the calling process receives every
    /// change after revision `after` (the ones kept, then each new one as it applies
    /// here), in order, once each. Returns the watch's reference.
    pub fn subscribe(&self, ctx: &mut Ctx, after: u64) -> Result<Ref, KvError> {
        let watch = ctx.make_ref();
        let pid = ctx.pid();
        let mut kv = self.group.shared().machine.write();
        let backlog = kv
            .store
            .changes_since(after)
            .map_err(|c| KvError::Compacted { oldest: c.oldest })?;
        kv.watchers.push(Watcher { pid, watch });
        for e in &backlog {
            let event = term_of(e)?;
            ctx.send(
                pid,
                Term::tuple(vec![Term::atom(EVENT_TAG), Term::Ref(watch), event]),
            );
        }
        Ok(watch)
    }

    /// Ends a watch (events already sent stay in the mailbox).
    pub fn unsubscribe(&self, watch: Ref) {
        self.group
            .shared()
            .machine
            .write()
            .watchers
            .retain(|w| w.watch != watch);
    }

    /// The next event of `watch`, waiting up to `timeout`; [`KvError::Compacted`] (and
    /// the watch ends) when this replica jumped past changes it no longer keeps.
    pub fn next_event(
        &self,
        ctx: &mut Ctx,
        watch: Ref,
        timeout: Duration,
    ) -> Option<Result<Event<K, V>, KvError>> {
        let event = ctx.receive_with(
            |m| match m.as_tuple()? {
                [tag, Term::Ref(r), e] if *tag == Term::atom(EVENT_TAG) && *r == watch => {
                    Some(e.clone())
                }
                _ => None,
            },
            Some(timeout),
        )?;
        if let Some([tag, Term::Int(oldest)]) = event.as_tuple()
            && *tag == Term::atom("compacted")
        {
            return Some(Err(KvError::Compacted {
                oldest: *oldest as u64,
            }));
        }
        Some(decode(&event))
    }

    /// Waits until this node's replica knows the table's writer (after a start, or an
    /// election): its node. [`KvError::NoQuorum`] past `timeout`.
    pub fn wait_for_writer(&self, ctx: &mut Ctx, timeout: Duration) -> Result<Atom, KvError> {
        Ok(self.group.wait_for_leader(ctx, timeout)?)
    }

    /// Moves the table's writer to the replica on `to` (see
    /// [`Group::transfer_leadership`]).
    pub fn transfer_writer(
        &self,
        ctx: &mut Ctx,
        to: Atom,
        timeout: Duration,
    ) -> Result<(), KvError> {
        Ok(self.group.transfer_leadership(ctx, to, timeout)?)
    }

    /// The group underneath (its status, its settings).
    pub fn group(&self) -> &Group<Kv> {
        &self.group
    }
}
