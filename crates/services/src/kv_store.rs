//! The KV table's state machine: what every replica applies, in the order the
//! consensus core commits it, so replicas that applied the same prefix hold the same
//! table. Pure: no I/O.
//!
//! Each applied command advances the table's revision by one (the revision is the
//! count of commands applied: a replica's `get_local` answers with the revision it
//! reflects). A row keeps the revision that created it and the one that last changed it;
//! compare-and-set compares against the latter (etcd's `mod_revision`), or against the
//! key being absent. Every change is an [`Event`] with its revision, which a watcher
//! resumes from without a gap or a duplicate (the events of revisions `> r`).

use std::collections::BTreeMap;
use std::ops::Bound;

use serde::{Deserialize, Serialize};

/// A row: its value and revisions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row<V> {
    /// The value.
    pub value: V,
    /// The revision that created the key (since it was last absent).
    pub created: u64,
    /// The revision that last wrote it.
    pub modified: u64,
}

/// What a compare-and-set expects of its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expect {
    /// The key is absent.
    Absent,
    /// The key was last written at this revision.
    Modified(u64),
}

/// A command of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command<K, V> {
    /// Sets `key` to the value.
    Put(K, V),
    /// Removes `key` (a no-op, still a revision, if it is absent).
    Delete(K),
    /// Sets `key` to `value` if it is as `expect` says.
    CompareAndSet {
        /// The key.
        key: K,
        /// What it must be now.
        expect: Expect,
        /// The new value.
        value: V,
    },
    /// `inner`, if `token` is at least the newest token seen for the lock `fence`
    /// (a fencing token from the lock manager); refused otherwise.
    Fenced {
        /// The lock's resource.
        fence: K,
        /// The writer's token.
        token: u64,
        /// The write.
        inner: Box<Command<K, V>>,
    },
}

/// A change, as a watcher sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event<K, V> {
    /// `key` now holds `value`.
    Put {
        /// The key.
        key: K,
        /// Its new value.
        value: V,
        /// The revision of the change.
        revision: u64,
    },
    /// `key` was removed.
    Deleted {
        /// The key.
        key: K,
        /// The revision of the change.
        revision: u64,
    },
}

/// What applying a command gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied<V> {
    /// Written at `revision`; `previous` is what the key held.
    Written {
        /// The command's revision.
        revision: u64,
        /// The value before, if any.
        previous: Option<V>,
    },
    /// A compare-and-set whose expectation did not hold: nothing written (the revision
    /// still advances, so every replica counts alike); `current` is the row as it is.
    Refused {
        /// The command's revision.
        revision: u64,
        /// The value and its last-write revision now, if the key is present.
        current: Option<(V, u64)>,
    },
    /// A fenced write whose token is older than one already seen: nothing written.
    Fenced {
        /// The command's revision.
        revision: u64,
        /// The newest token seen for the lock.
        newest: u64,
    },
}

/// A table: rows by key, the revision applied, and the changes kept for watchers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(deserialize = "K: Ord + Deserialize<'de>, V: Deserialize<'de>"))]
pub struct Store<K, V> {
    rows: BTreeMap<K, Row<V>>,
    revision: u64,
    events: Vec<Event<K, V>>,
    /// The revision of `events[0]` minus one: changes before it were compacted away.
    compacted: u64,
    /// Per lock: the newest fencing token a write carried.
    #[serde(default = "BTreeMap::new")]
    fences: BTreeMap<K, u64>,
}

impl<K, V> Default for Store<K, V> {
    fn default() -> Self {
        Store {
            rows: BTreeMap::new(),
            revision: 0,
            events: Vec::new(),
            compacted: 0,
            fences: BTreeMap::new(),
        }
    }
}

/// A watch asked to resume from a revision whose changes are gone (compacted): the
/// watcher must read the table afresh (as etcd's `ErrCompacted`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compacted {
    /// The oldest revision a watch can resume from.
    pub oldest: u64,
}

impl<K: Ord + Clone, V: Clone> Store<K, V> {
    /// An empty table at revision 0.
    pub fn new() -> Store<K, V> {
        Store::default()
    }

    /// The revision this table reflects (commands applied).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Applies the next committed command.
    pub fn apply(&mut self, cmd: Command<K, V>) -> Applied<V> {
        self.revision += 1;
        self.apply_at(cmd)
    }

    fn apply_at(&mut self, cmd: Command<K, V>) -> Applied<V> {
        let revision = self.revision;
        match cmd {
            Command::Fenced {
                fence,
                token,
                inner,
            } => {
                let newest = self.fences.get(&fence).copied().unwrap_or(0);
                if token < newest {
                    return Applied::Fenced { revision, newest };
                }
                self.fences.insert(fence, token);
                self.apply_at(*inner)
            }
            Command::Put(key, value) => self.put(key, value),
            Command::Delete(key) => {
                let previous = self.rows.remove(&key).map(|r| r.value);
                if previous.is_some() {
                    self.events.push(Event::Deleted { key, revision });
                }
                Applied::Written { revision, previous }
            }
            Command::CompareAndSet { key, expect, value } => {
                let holds = match (&expect, self.rows.get(&key)) {
                    (Expect::Absent, None) => true,
                    (Expect::Modified(m), Some(row)) => row.modified == *m,
                    _ => false,
                };
                if holds {
                    self.put(key, value)
                } else {
                    Applied::Refused {
                        revision,
                        current: self.rows.get(&key).map(|r| (r.value.clone(), r.modified)),
                    }
                }
            }
        }
    }

    fn put(&mut self, key: K, value: V) -> Applied<V> {
        let revision = self.revision;
        let created = self.rows.get(&key).map_or(revision, |r| r.created);
        let previous = self
            .rows
            .insert(
                key.clone(),
                Row {
                    value: value.clone(),
                    created,
                    modified: revision,
                },
            )
            .map(|r| r.value);
        self.events.push(Event::Put {
            key,
            value,
            revision,
        });
        Applied::Written { revision, previous }
    }

    /// The row of `key`, as of [`Store::revision`].
    pub fn get(&self, key: &K) -> Option<&Row<V>> {
        self.rows.get(key)
    }

    /// Every key, in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.rows.keys()
    }

    /// The rows with keys in `from..to` (`to` exclusive; `None`: to the end), in order.
    pub fn range(&self, from: &K, to: Option<&K>) -> impl Iterator<Item = (&K, &Row<V>)> {
        let end = match to {
            Some(k) => Bound::Excluded(k),
            None => Bound::Unbounded,
        };
        self.rows.range((Bound::Included(from), end))
    }

    /// The changes after revision `after`, in order: what a watcher that saw `after`
    /// missed, with no gap and no duplicate.
    pub fn changes_since(&self, after: u64) -> Result<Vec<Event<K, V>>, Compacted> {
        if after < self.compacted {
            return Err(Compacted {
                oldest: self.compacted,
            });
        }
        let start = self.events.partition_point(|e| revision_of(e) <= after);
        Ok(self.events[start..].to_vec())
    }

    /// The number of changes kept for watchers.
    pub fn changes_kept(&self) -> usize {
        self.events.len()
    }

    /// Forgets the changes up to revision `upto` (after a snapshot): watches from before
    /// it get [`Compacted`].
    pub fn compact(&mut self, upto: u64) {
        let upto = upto.min(self.revision);
        let cut = self.events.partition_point(|e| revision_of(e) <= upto);
        self.events.drain(..cut);
        self.compacted = self.compacted.max(upto);
    }
}

fn revision_of<K, V>(e: &Event<K, V>) -> u64 {
    match e {
        Event::Put { revision, .. } | Event::Deleted { revision, .. } => *revision,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_count_commands_and_rows_keep_theirs() {
        let mut s: Store<&str, i32> = Store::new();
        assert_eq!(
            s.apply(Command::Put("a", 1)),
            Applied::Written {
                revision: 1,
                previous: None
            }
        );
        assert_eq!(
            s.apply(Command::Put("a", 2)),
            Applied::Written {
                revision: 2,
                previous: Some(1)
            }
        );
        assert_eq!(
            s.get(&"a"),
            Some(&Row {
                value: 2,
                created: 1,
                modified: 2
            })
        );
        // Deleting an absent key is a revision with no event.
        s.apply(Command::Delete("nope"));
        assert_eq!(s.revision(), 3);
        assert_eq!(s.changes_since(2), Ok(vec![]));
    }

    #[test]
    fn compare_and_set_compares_the_last_write() {
        let mut s: Store<&str, i32> = Store::new();
        let cas = |expect, value| Command::CompareAndSet {
            key: "k",
            expect,
            value,
        };
        assert!(matches!(
            s.apply(cas(Expect::Absent, 1)),
            Applied::Written { revision: 1, .. }
        ));
        assert_eq!(
            s.apply(cas(Expect::Absent, 9)),
            Applied::Refused {
                revision: 2,
                current: Some((1, 1))
            }
        );
        assert_eq!(
            s.apply(cas(Expect::Modified(2), 9)),
            Applied::Refused {
                revision: 3,
                current: Some((1, 1))
            }
        );
        assert!(matches!(
            s.apply(cas(Expect::Modified(1), 5)),
            Applied::Written { revision: 4, .. }
        ));
        assert_eq!(s.get(&"k").map(|r| r.value), Some(5));
        s.apply(Command::Delete("k"));
        assert!(matches!(
            s.apply(cas(Expect::Absent, 7)),
            Applied::Written { .. }
        ));
        assert_eq!(
            s.get(&"k").map(|r| r.created),
            Some(6),
            "created anew after a delete"
        );
    }

    #[test]
    fn a_watcher_resumes_without_gap_or_duplicate_and_ranges_are_ordered() {
        let mut s: Store<u32, &str> = Store::new();
        for (k, v) in [(3, "c"), (1, "a"), (2, "b")] {
            s.apply(Command::Put(k, v));
        }
        s.apply(Command::Delete(1));
        let all = s.changes_since(0).unwrap();
        assert_eq!(all.len(), 4);
        let seen_up_to = 2;
        let rest = s.changes_since(seen_up_to).unwrap();
        assert_eq!(rest, all[2..].to_vec());
        assert_eq!(
            s.range(&2, None).map(|(k, _)| *k).collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(
            s.range(&1, Some(&3)).map(|(k, _)| *k).collect::<Vec<_>>(),
            [2]
        );
        s.compact(3);
        assert_eq!(s.changes_since(1), Err(Compacted { oldest: 3 }));
        assert_eq!(s.changes_since(3).unwrap(), all[3..].to_vec());
    }
}
