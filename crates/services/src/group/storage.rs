//! A replica's durable state: what Raft needs kept across a crash (the current term,
//! the vote, the snapshot and the log after it) behind one narrow seam, [`Store`], with
//! two backends: [`Memory`] (keeps nothing: the default, for tests and for groups whose
//! replicas rejoin with [`Start::Join`](super::Start::Join) after a restart) and [`Disk`]
//! (one redb file per replica).
//!
//! **When it is written.** The replica process calls [`Durable::save`] once per step
//! (one input: a peer message, a tick, the flush behind a batch of proposals), after the
//! core ran and before any of the step's messages is sent or any client is answered. A
//! step's changes are one redb write transaction, committed with redb's default
//! durability (fsync'd before `commit` returns): group commit, since every proposal taken
//! since the last step rides in the same transaction. A step that changed nothing
//! durable writes nothing.
//!
//! **What changed.** The core stays pure and mutates its log in place (appends,
//! truncation on conflict, the drop of a compacted prefix), so [`Durable`] keeps a mirror
//! of what it last wrote (term, vote, snapshot index and the term of each log entry) and
//! compares after each step: a new snapshot index means a new snapshot (and every entry
//! up to it dropped); the log agrees with the mirror up to the last index where both
//! hold an entry of the same term (Raft's log matching: same index and term, same entry
//! and same prefix), found by a scan from the end that stops at once in the common
//! case; every entry after it is rewritten and whatever the mirror had beyond is deleted.
//!
//! **Format** (redb tables; see [`FORMAT`]): `meta` (`&str` -> `u64`: `format`, `term`,
//! `vote` as replica id + 1 with 0 for none, `snapshot_index`, `snapshot_term`),
//! `snapshot` (`"data"` -> the machine's snapshot term), `log` (index -> the entry).
//! Terms and entries are stored in oxbeam's term codec (`oxbeam_term::codec`, the wire
//! format: versioned, depth-checked on decode); an entry is first converted to a term
//! with `to_term`, so its command keeps the term shape it has on the wire.
//!
//! **Recovery.** [`Durable::load`] reads it all back, checking that the log is
//! contiguous after the snapshot; anything unreadable is a [`StorageError`] (the replica
//! does not start), never a panic. Commit is volatile in Raft: a recovered replica
//! restores its machine from the snapshot and re-applies the rest as it learns the commit
//! index again.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::raft::{Entry, Replica, ReplicaId, Snapshot};
use crate::term::codec::{self, Limits};
use crate::term::{Term, from_term, to_term};

/// Where a group's replica keeps its state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Storage {
    /// In memory only: lost when the node stops. A restarted replica must rejoin with
    /// [`Start::Join`](super::Start::Join).
    #[default]
    Memory,
    /// In this redb file (created if missing, its directory too), one per replica: a
    /// restarted replica recovers its term, vote, snapshot and log, and votes at once.
    Disk(PathBuf),
}

/// Why a replica's store could not be opened, read or written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageError {
    /// The file could not be opened or created (already open elsewhere, no access, not
    /// a redb file).
    Open {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The file opened but what it holds does not read back as a replica's state.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A step's changes could not be written: they are not durable (the replica stops
    /// rather than act on them).
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Open { path, reason } => {
                write!(f, "cannot open {}: {reason}", path.display())
            }
            StorageError::Corrupt { path, reason } => {
                write!(f, "{} is unreadable: {reason}", path.display())
            }
            StorageError::Write { path, reason } => {
                write!(f, "cannot write {}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for StorageError {}

/// What a store held when the replica started: the durable part of a [`Replica`].
pub(crate) struct Saved<C> {
    pub term: u64,
    pub voted_for: Option<ReplicaId>,
    pub snapshot: Snapshot<Term>,
    pub log: Vec<Entry<C>>,
}

/// The encoded changes of one step, written as one transaction.
#[derive(Default)]
pub(crate) struct Step {
    /// A new term and vote.
    hard: Option<(u64, Option<ReplicaId>)>,
    /// A new snapshot (index, term, data): entries up to its index are dropped.
    snapshot: Option<(u64, u64, Option<Vec<u8>>)>,
    /// Drop every entry from this index on (before `append`).
    truncate_from: Option<u64>,
    /// Entries to write, by index.
    append: Vec<(u64, Vec<u8>)>,
}

impl Step {
    fn is_empty(&self) -> bool {
        self.hard.is_none()
            && self.snapshot.is_none()
            && self.truncate_from.is_none()
            && self.append.is_empty()
    }
}

/// A store as read back: encoded, as [`Step`] wrote it.
pub(crate) struct Raw {
    term: u64,
    voted_for: Option<ReplicaId>,
    snapshot: (u64, u64, Option<Vec<u8>>),
    log: Vec<(u64, Vec<u8>)>,
}

/// The seam every backend provides: read everything back once, then write each step's
/// changes atomically and durably (`write` returns only once they survive a crash).
pub(crate) trait Store: Send {
    /// Whether anything is kept (a store that keeps nothing is never asked to write).
    fn durable(&self) -> bool;
    /// What the store holds; `None` when it is new (nothing was ever written).
    fn load(&mut self) -> Result<Option<Raw>, StorageError>;
    /// Writes a step's changes in one atomic, durable transaction.
    fn write(&mut self, step: &Step) -> Result<(), StorageError>;
}

/// Keeps nothing.
pub(crate) struct Memory;

impl Store for Memory {
    fn durable(&self) -> bool {
        false
    }

    fn load(&mut self) -> Result<Option<Raw>, StorageError> {
        Ok(None)
    }

    fn write(&mut self, _step: &Step) -> Result<(), StorageError> {
        Ok(())
    }
}

/// The store's format version, in `meta`'s `format`.
pub(crate) const FORMAT: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");

/// One redb file.
pub(crate) struct Disk {
    path: PathBuf,
    db: Database,
}

impl Disk {
    /// Opens (or creates) the file at `path`, with its tables.
    pub(crate) fn open(path: PathBuf) -> Result<Disk, StorageError> {
        let open = |reason: String| StorageError::Open {
            path: path.clone(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open(e.to_string()))?;
        }
        let db = Database::create(&path).map_err(|e| open(redb::Error::from(e).to_string()))?;
        let disk = Disk {
            path: path.clone(),
            db,
        };
        // Create the tables, so that reading a new file finds them empty.
        disk.transaction(|_, _, _| Ok(()))
            .map_err(|e| open(e.to_string()))?;
        Ok(disk)
    }

    fn corrupt(&self, reason: impl fmt::Display) -> StorageError {
        StorageError::Corrupt {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }

    /// Runs `f` in one write transaction on the three tables, and commits it (durable).
    fn transaction(
        &self,
        f: impl FnOnce(
            &mut redb::Table<&str, u64>,
            &mut redb::Table<&str, &[u8]>,
            &mut redb::Table<u64, &[u8]>,
        ) -> Result<(), redb::Error>,
    ) -> Result<(), redb::Error> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let mut snapshot = txn.open_table(SNAPSHOT)?;
            let mut log = txn.open_table(LOG)?;
            f(&mut meta, &mut snapshot, &mut log)?;
        }
        txn.commit()?;
        Ok(())
    }

    fn read(&self) -> Result<Option<Raw>, redb::Error> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let get = |key: &str| -> Result<Option<u64>, redb::Error> {
            Ok(meta.get(key)?.map(|v| v.value()))
        };
        let Some(format) = get("format")? else {
            return Ok(None);
        };
        if format != FORMAT {
            return Err(redb::Error::Corrupted(format!(
                "format {format}, this build reads format {FORMAT}"
            )));
        }
        let field = |key: &str| -> Result<u64, redb::Error> {
            get(key)?.ok_or_else(|| redb::Error::Corrupted(format!("no {key} in meta")))
        };
        let (term, vote) = (field("term")?, field("vote")?);
        let (index, snapshot_term) = (field("snapshot_index")?, field("snapshot_term")?);
        let data = txn
            .open_table(SNAPSHOT)?
            .get("data")?
            .map(|v| v.value().to_vec());
        let mut log = Vec::new();
        for row in txn.open_table(LOG)?.range(index + 1..)? {
            let (i, e) = row?;
            log.push((i.value(), e.value().to_vec()));
        }
        Ok(Some(Raw {
            term,
            voted_for: vote.checked_sub(1).map(|v| v as ReplicaId),
            snapshot: (index, snapshot_term, data),
            log,
        }))
    }
}

impl Store for Disk {
    fn durable(&self) -> bool {
        true
    }

    fn load(&mut self) -> Result<Option<Raw>, StorageError> {
        self.read().map_err(|e| self.corrupt(e))
    }

    fn write(&mut self, step: &Step) -> Result<(), StorageError> {
        let written = self.transaction(|meta, snapshot, log| {
            meta.insert("format", FORMAT)?;
            if let Some((term, vote)) = step.hard {
                meta.insert("term", term)?;
                meta.insert("vote", vote.map_or(0, |v| v as u64 + 1))?;
            }
            if let Some((index, term, data)) = &step.snapshot {
                meta.insert("snapshot_index", *index)?;
                meta.insert("snapshot_term", *term)?;
                match data {
                    Some(data) => snapshot.insert("data", data.as_slice())?,
                    None => snapshot.remove("data")?,
                };
                log.retain_in(..=*index, |_, _| false)?;
            }
            if let Some(from) = step.truncate_from {
                log.retain_in(from.., |_, _| false)?;
            }
            for (index, entry) in &step.append {
                log.insert(*index, entry.as_slice())?;
            }
            Ok(())
        });
        written.map_err(|e| StorageError::Write {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }
}

/// Terms kept on disk may be larger than a frame on the wire.
fn limits() -> Limits {
    Limits {
        max_size: usize::MAX,
        ..Limits::default()
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    let term = to_term(value).map_err(|e| e.to_string())?;
    codec::encode(&term, &limits()).map_err(|e| e.to_string())
}

fn decode_term(bytes: &[u8]) -> Result<Term, String> {
    codec::decode(bytes, &limits()).map_err(|e| e.to_string())
}

/// What was last written, to find what a step changed.
#[derive(Clone, Default)]
struct Mirror {
    term: u64,
    voted_for: Option<ReplicaId>,
    snapshot_index: u64,
    /// The term of each entry after the snapshot, in order.
    terms: VecDeque<u64>,
}

/// A replica's store and what it last wrote there.
pub(crate) struct Durable {
    store: Box<dyn Store>,
    mirror: Mirror,
    /// Whether the store holds a whole state (loaded, or written once): until then,
    /// a save writes every field.
    whole: bool,
    /// Where (for errors).
    path: PathBuf,
}

impl Durable {
    /// The store `storage` names, opened.
    pub(crate) fn open(storage: &Storage) -> Result<Durable, StorageError> {
        Ok(match storage {
            Storage::Memory => Durable::new(Box::new(Memory), PathBuf::new()),
            Storage::Disk(path) => Durable::new(Box::new(Disk::open(path.clone())?), path.clone()),
        })
    }

    fn new(store: Box<dyn Store>, path: PathBuf) -> Durable {
        Durable {
            store,
            mirror: Mirror::default(),
            whole: false,
            path,
        }
    }

    /// What the store holds, decoded (`None`: nothing, a new replica).
    pub(crate) fn load<C: DeserializeOwned>(&mut self) -> Result<Option<Saved<C>>, StorageError> {
        let Some(raw) = self.store.load()? else {
            return Ok(None);
        };
        let corrupt = |reason: String| StorageError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        let (index, term, data) = raw.snapshot;
        let data = data
            .map(|d| decode_term(&d))
            .transpose()
            .map_err(|e| corrupt(format!("the snapshot: {e}")))?;
        let mut log = Vec::with_capacity(raw.log.len());
        for (at, (i, bytes)) in raw.log.iter().enumerate() {
            if *i != index + 1 + at as u64 {
                return Err(corrupt(format!("the log has a gap before index {i}")));
            }
            let entry: Entry<C> = decode_term(bytes)
                .and_then(|t| from_term(&t).map_err(|e| e.to_string()))
                .map_err(|e| corrupt(format!("log entry {i}: {e}")))?;
            log.push(entry);
        }
        if index > 0 && data.is_none() {
            return Err(corrupt(format!("no snapshot data for index {index}")));
        }
        self.whole = true;
        self.mirror = Mirror {
            term: raw.term,
            voted_for: raw.voted_for,
            snapshot_index: index,
            terms: log.iter().map(|e| e.term).collect(),
        };
        Ok(Some(Saved {
            term: raw.term,
            voted_for: raw.voted_for,
            snapshot: Snapshot { index, term, data },
            log,
        }))
    }

    /// Makes what `raft` holds durable: writes what changed since the last call, in one
    /// transaction, and returns once it is on disk.
    pub(crate) fn save<C: Serialize + Clone>(
        &mut self,
        raft: &Replica<C, Term>,
    ) -> Result<(), StorageError> {
        if !self.store.durable() {
            return Ok(());
        }
        let unencodable = |what: String| StorageError::Write {
            path: self.path.clone(),
            reason: what,
        };
        let mut step = Step::default();
        let mut mirror = self.mirror.clone();
        if !self.whole || (raft.term, raft.voted_for) != (mirror.term, mirror.voted_for) {
            step.hard = Some((raft.term, raft.voted_for));
            (mirror.term, mirror.voted_for) = (raft.term, raft.voted_for);
        }
        let snap = &raft.snapshot;
        if !self.whole || snap.index != mirror.snapshot_index {
            let data = snap
                .data
                .as_ref()
                .map(|d| codec::encode(d, &limits()))
                .transpose()
                .map_err(|e| unencodable(format!("the snapshot: {e}")))?;
            step.snapshot = Some((snap.index, snap.term, data));
            // The mirror's entries up to the new snapshot are dropped with it (a snapshot
            // only moves forward; one that did not is rewritten whole below).
            let covered = snap.index.saturating_sub(mirror.snapshot_index) as usize;
            if snap.index < mirror.snapshot_index {
                mirror.terms.clear();
                step.truncate_from = Some(snap.index + 1);
            }
            mirror.terms.drain(..covered.min(mirror.terms.len()));
            mirror.snapshot_index = snap.index;
        }
        // The last position where both hold an entry of the same term: by log matching,
        // everything before it agrees too.
        let mut agree = mirror.terms.len().min(raft.log.len());
        while agree > 0 && mirror.terms[agree - 1] != raft.log[agree - 1].term {
            agree -= 1;
        }
        let first = snap.index + 1;
        if agree < mirror.terms.len() {
            let from = first + agree as u64;
            step.truncate_from = Some(step.truncate_from.map_or(from, |t| t.min(from)));
            mirror.terms.truncate(agree);
        }
        for (at, entry) in raft.log.iter().enumerate().skip(agree) {
            let bytes = encode(entry).map_err(|e| unencodable(format!("an entry: {e}")))?;
            step.append.push((first + at as u64, bytes));
            mirror.terms.push_back(entry.term);
        }
        if step.is_empty() {
            return Ok(());
        }
        self.store.write(&step)?;
        self.mirror = mirror;
        self.whole = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
