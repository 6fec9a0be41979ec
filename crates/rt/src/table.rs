//! ETS-like named tables: terms shared by the processes of one node.
//!
//! A node holds one [`Tables`] value, the registry of its named tables; there are no
//! statics, so two nodes in one OS process have separate tables. [`Tables::create`] makes
//! a [`Table`], shared as `Arc<Table>`, that any thread may read and write. A table holds
//! tuples ("objects"), keyed by the element at [`TableOptions::key_pos`] (0-based, where
//! ETS's `keypos` counts from 1).
//!
//! # The ETS subset covered
//!
//! - the kinds `set`, `bag` and `duplicate_bag` ([`TableKind`]);
//! - `insert` of one object or of a list (all or nothing), `insert_new`, `lookup`,
//!   `member`, `lookup_element`, `delete`, `delete_object`, `take`, `update_counter` (one
//!   position, with an optional default object), `tab2list` ([`Table::to_list`]),
//!   `delete_all_objects` ([`Table::clear`]), and `info` size and memory;
//! - `match_object` and `select_delete` with patterns in which the atom `:_` matches
//!   anything ([`Term::matches`]), and a select of keys ([`Table::select_keys`]);
//! - ownership: when a process exits, [`Tables::delete_owned_by`] deletes its tables.
//!
//! # Concurrency
//!
//! A table's objects live in [`SHARDS`] shards, each a `parking_lot::RwLock` over a hash
//! map from a key to that key's objects; a key's shard is chosen by its hash, and each
//! lock sits on its own cache line. Readers of different keys therefore almost never touch
//! the same lock, readers of one key share a read lock, and a writer locks one shard.
//!
//! What is atomic:
//!
//! - Each operation on one key runs entirely under that key's shard lock: `insert`,
//!   `insert_new`, `lookup`, `member`, `lookup_element`, `delete`, `delete_object`,
//!   `take`, `update_counter`, and `match_object`/`select_delete` whose pattern binds the
//!   key. A reader sees an object whole or not at all, a set never shows two objects for
//!   one key, and concurrent `update_counter` calls never lose an increment.
//! - [`Table::insert_many`] write-locks every shard its objects go to before writing any,
//!   so the batch appears at once, as ETS's insert of a list does. Locks are taken in
//!   ascending shard order, the only order in which anything here holds two shard locks,
//!   so two batches cannot deadlock.
//! - Scans (`match_object` or `select_delete` with an unbound key, `select_keys`,
//!   `to_list`, `len`, `clear`, `memory_bytes`) visit one shard at a time. They are **not**
//!   a snapshot across shards, as in ETS without `safe_fixtable`: an object inserted or
//!   deleted during a scan may or may not be seen. An object present for the whole scan is
//!   seen exactly once, since keys never move between shards.
//!
//! # Deleted tables
//!
//! Deleting a table (by name, or because its owner exited) removes it from the registry
//! and drops its objects at once. A handle still held elsewhere then reads as empty, and
//! its writes fail with [`TableError::NoSuchTable`]: the nearest this API (whose reads
//! cannot fail) comes to ETS's `badarg`.
//!
//! # What differs from ETS
//!
//! - No `ordered_set`; scans return objects in no particular order.
//! - No match specifications: no `'$1'` variables, guards or result bodies, only `:_`
//!   wildcard patterns. A map in a pattern matches any map holding at least its keys.
//! - No `heir`, `give_away` or protection levels: every holder of a handle may write (as
//!   `public`), and tables are always named.
//! - `update_counter` takes one position and increment (no threshold or set-value form);
//!   integers are 64-bit, so overflow is an error instead of a bignum.
//! - Objects are shared, not copied, on insert and lookup (cloning a term is cheap), so
//!   [`Table::memory_bytes`] estimates what the objects would take unshared.
//! - Inserting a list holding two objects with the same key into a set keeps the last
//!   (ETS leaves the choice undefined).
#![deny(missing_docs)]

use std::collections::HashMap;
use std::collections::hash_map::{Entry, RandomState};
use std::fmt;
use std::hash::BuildHasher;
use std::mem::size_of;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_utils::CachePadded;
use parking_lot::RwLock;

use crate::term::{Atom, Pid, Term};

/// How many shards a table's objects are spread over.
pub const SHARDS: usize = 32;

/// Bytes counted for each key's map entry in [`Table::memory_bytes`].
const ENTRY_BYTES: usize = size_of::<Term>() + size_of::<Vec<Term>>() + 8;

/// How a table treats several objects with the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    /// One object per key; inserting replaces it.
    Set,
    /// Many objects per key, in insertion order, but no two identical.
    Bag,
    /// Many objects per key, identical ones included.
    DuplicateBag,
}

impl TableKind {
    /// The ETS name: `set`, `bag` or `duplicate_bag`.
    pub fn as_str(self) -> &'static str {
        match self {
            TableKind::Set => "set",
            TableKind::Bag => "bag",
            TableKind::DuplicateBag => "duplicate_bag",
        }
    }
}

/// How to make a table: its kind and where the key sits in its tuples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableOptions {
    /// Set, bag or duplicate bag.
    pub kind: TableKind,
    /// The 0-based index of the key in each object tuple (ETS's `keypos` minus one).
    pub key_pos: usize,
}

impl Default for TableOptions {
    /// A set keyed by the first element.
    fn default() -> Self {
        TableOptions {
            kind: TableKind::Set,
            key_pos: 0,
        }
    }
}

/// Why a table operation failed. A failed operation changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableError {
    /// No table has this name (or the handle's table has been deleted).
    NoSuchTable(Atom),
    /// A table with this name already exists.
    AlreadyExists(Atom),
    /// Objects must be tuples; this term is not one.
    NotATuple(Term),
    /// The object has no element at the table's key position.
    NoKey {
        /// The table's 0-based key position.
        key_pos: usize,
        /// The object lacking it.
        object: Term,
    },
    /// The element to update as a counter is not an integer.
    NotAnInteger(Term),
    /// `update_counter` found no object with this key and was given no default object.
    KeyNotFound(Term),
    /// The object has no element at this 0-based counter position.
    NoElement(usize, Term),
    /// `update_counter` works on set tables only; this table is of this kind.
    NotASet(Atom, TableKind),
    /// The counter position given is the key position.
    CounterIsKey(usize),
    /// Adding the increment (second) to the counter's value (first) overflows an `i64`.
    CounterOverflow(i64, i64),
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use TableError::*;
        match self {
            NoSuchTable(name) => write!(f, "no table named {name}"),
            AlreadyExists(name) => write!(f, "a table named {name} already exists"),
            NotATuple(term) => write!(f, "table objects must be tuples, got {term}"),
            NoKey { key_pos, object } => {
                write!(
                    f,
                    "object {object} has no element at key position {key_pos}"
                )
            }
            NotAnInteger(term) => write!(f, "counter element {term} is not an integer"),
            KeyNotFound(key) => write!(f, "no object with key {key} and no default object"),
            NoElement(pos, object) => write!(f, "object {object} has no element at position {pos}"),
            NotASet(name, kind) => {
                write!(
                    f,
                    "update_counter needs a set table; {name} is a {}",
                    kind.as_str()
                )
            }
            CounterIsKey(pos) => write!(f, "position {pos} holds the key, not a counter"),
            CounterOverflow(value, incr) => write!(f, "counter {value} + {incr} overflows an i64"),
        }
    }
}

impl std::error::Error for TableError {}

/// The objects of the keys that hash to one shard.
#[derive(Default)]
struct Shard {
    /// Key to its objects in insertion order. Invariant: no vector is empty, and a set's
    /// vectors hold exactly one object.
    objects: HashMap<Term, Vec<Term>>,
    /// The number of objects (the sum of the vectors' lengths).
    count: usize,
}

impl Shard {
    /// The objects of `key`.
    fn get(&self, key: &Term) -> &[Term] {
        self.objects.get(key).map_or(&[], Vec::as_slice)
    }

    /// Adds `object` under `key` by `kind`'s rule.
    fn insert(&mut self, kind: TableKind, key: Term, object: Term) {
        let objects = self.objects.entry(key).or_default();
        match kind {
            TableKind::Set => {
                self.count -= objects.len();
                objects.clear();
            }
            TableKind::Bag if objects.contains(&object) => return,
            TableKind::Bag | TableKind::DuplicateBag => {}
        }
        objects.push(object);
        self.count += 1;
    }

    /// Removes and returns the objects of `key`.
    fn remove_key(&mut self, key: &Term) -> Vec<Term> {
        let objects = self.objects.remove(key).unwrap_or_default();
        self.count -= objects.len();
        objects
    }

    /// Removes the objects of `key` (or of every key, given none) that `doomed` picks;
    /// returns how many.
    fn remove_where(&mut self, key: Option<&Term>, doomed: impl Fn(&Term) -> bool) -> usize {
        let before = self.count;
        let prune = |objects: &mut Vec<Term>| {
            objects.retain(|o| !doomed(o));
            !objects.is_empty()
        };
        match key {
            Some(key) => {
                if let Some(objects) = self.objects.get_mut(key) {
                    let (had, kept) = (objects.len(), prune(objects));
                    self.count -= had - objects.len();
                    if !kept {
                        self.objects.remove(key);
                    }
                }
            }
            None => {
                self.objects.retain(|_, objects| prune(objects));
                self.count = self.objects.values().map(Vec::len).sum();
            }
        }
        before - self.count
    }
}

/// Estimated bytes of `term` if nothing in it were shared. Walks with its own stack, so a
/// deeply nested term cannot overflow the thread's.
fn term_bytes(term: &Term) -> usize {
    let (mut total, mut stack) = (0, vec![term]);
    while let Some(t) = stack.pop() {
        total += size_of::<Term>();
        match t {
            Term::Binary(b) => total += b.len(),
            Term::Str(s) => total += s.len(),
            Term::Tuple(elems) | Term::List(elems) => stack.extend(elems.iter()),
            Term::Map(map) => stack.extend(map.iter().flat_map(|(k, v)| [k, v])),
            _ => {}
        }
    }
    total
}

/// Whether a pattern element matches exactly one term, so that it can be looked up by
/// hash: it holds no `:_` and no map (a map pattern matches any map holding its keys).
fn is_bound(pattern: &Term) -> bool {
    let mut stack = vec![pattern];
    while let Some(t) = stack.pop() {
        match t {
            Term::Atom(a) if *a == Atom::WILDCARD => return false,
            Term::Map(_) => return false,
            Term::Tuple(elems) | Term::List(elems) => stack.extend(elems.iter()),
            _ => {}
        }
    }
    true
}

/// How a pattern is run against a table.
#[derive(Debug, PartialEq)]
enum Plan<'p> {
    /// Nothing can match: objects are tuples holding a key.
    Nothing,
    /// The key is bound: look at this key's objects only.
    Key(&'p Term),
    /// Look at every object.
    Scan,
}

/// A named table of tuples, shared as `Arc<Table>`; the [module docs](self) say what each
/// operation guarantees under concurrency.
pub struct Table {
    name: Atom,
    options: TableOptions,
    owner: Option<Pid>,
    /// Set by [`Table::retire`] before it empties the shards. Writers read it holding their
    /// shard's write lock, so a write either lands before that shard is emptied or sees
    /// the flag and fails: no object outlives the table's deletion.
    deleted: AtomicBool,
    /// Picks a key's shard; separate from the maps' own hashers so that the keys of one
    /// shard still spread over its map's buckets.
    shard_hasher: RandomState,
    shards: Box<[CachePadded<RwLock<Shard>>]>,
}

impl Table {
    fn new(name: Atom, options: TableOptions, owner: Option<Pid>) -> Table {
        let shards = (0..SHARDS).map(|_| CachePadded::default()).collect();
        let (deleted, shard_hasher) = (AtomicBool::new(false), RandomState::new());
        Table {
            name,
            options,
            owner,
            deleted,
            shard_hasher,
            shards,
        }
    }

    /// The table's name.
    pub fn name(&self) -> Atom {
        self.name
    }

    /// Set, bag or duplicate bag.
    pub fn kind(&self) -> TableKind {
        self.options.kind
    }

    /// The options the table was made with.
    pub fn options(&self) -> TableOptions {
        self.options
    }

    /// The process whose exit deletes the table, if any.
    pub fn owner(&self) -> Option<Pid> {
        self.owner
    }

    /// Whether the table has been deleted (this handle outlived it).
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    fn shard_index(&self, key: &Term) -> usize {
        (self.shard_hasher.hash_one(key) % SHARDS as u64) as usize
    }

    fn shard(&self, key: &Term) -> &RwLock<Shard> {
        &self.shards[self.shard_index(key)]
    }

    /// Fails if the table was deleted; call it holding the write lock of the shard to
    /// write (see the `deleted` field).
    fn check_live(&self) -> Result<(), TableError> {
        match self.is_deleted() {
            true => Err(TableError::NoSuchTable(self.name)),
            false => Ok(()),
        }
    }

    /// The key of `object`, or why it cannot be stored.
    fn key_of(&self, object: &Term) -> Result<Term, TableError> {
        let elems = object
            .as_tuple()
            .ok_or_else(|| TableError::NotATuple(object.clone()))?;
        let key_pos = self.options.key_pos;
        let no_key = || TableError::NoKey {
            key_pos,
            object: object.clone(),
        };
        elems.get(key_pos).cloned().ok_or_else(no_key)
    }

    fn plan<'p>(&self, pattern: &'p Term) -> Plan<'p> {
        match pattern {
            Term::Tuple(elems) => match elems.get(self.options.key_pos) {
                None => Plan::Nothing,
                Some(key) if is_bound(key) => Plan::Key(key),
                Some(_) => Plan::Scan,
            },
            Term::Atom(a) if *a == Atom::WILDCARD => Plan::Scan,
            _ => Plan::Nothing,
        }
    }

    /// Stores `object`, a tuple with an element at the key position: a set replaces the
    /// key's object, a bag adds it unless an identical one is there, a duplicate bag adds
    /// it.
    pub fn insert(&self, object: Term) -> Result<(), TableError> {
        let key = self.key_of(&object)?;
        let mut shard = self.shard(&key).write();
        self.check_live()?;
        shard.insert(self.options.kind, key, object);
        Ok(())
    }

    /// Stores the objects in order, as one isolated step; if any is invalid, stores none.
    pub fn insert_many(&self, objects: impl IntoIterator<Item = Term>) -> Result<(), TableError> {
        let (mut batch, mut wanted) = (Vec::new(), [false; SHARDS]);
        for object in objects {
            let key = self.key_of(&object)?;
            let shard = self.shard_index(&key);
            wanted[shard] = true;
            batch.push((shard, key, object));
        }
        // Lock in ascending shard order (see the module docs on deadlock).
        let mut guards: Vec<_> = (self.shards.iter().zip(wanted))
            .map(|(shard, wanted)| wanted.then(|| shard.write()))
            .collect();
        self.check_live()?;
        for (shard, key, object) in batch {
            if let Some(guard) = guards.get_mut(shard).and_then(Option::as_mut) {
                guard.insert(self.options.kind, key, object);
            }
        }
        Ok(())
    }

    /// Stores `object` only if no object has its key (for every kind, as `ets:insert_new`);
    /// returns whether it did.
    pub fn insert_new(&self, object: Term) -> Result<bool, TableError> {
        let key = self.key_of(&object)?;
        let mut shard = self.shard(&key).write();
        self.check_live()?;
        let fresh = !shard.objects.contains_key(&key);
        if fresh {
            shard.insert(self.options.kind, key, object);
        }
        Ok(fresh)
    }

    /// The objects with `key`, in insertion order for bags.
    pub fn lookup(&self, key: &Term) -> Vec<Term> {
        self.shard(key).read().get(key).to_vec()
    }

    /// Whether any object has `key`.
    pub fn member(&self, key: &Term) -> bool {
        self.shard(key).read().objects.contains_key(key)
    }

    /// The element at 0-based `pos` of each object with `key`; `None` if there is no
    /// such object or one of them has no element at `pos` (ETS's `badarg`).
    pub fn lookup_element(&self, key: &Term, pos: usize) -> Option<Vec<Term>> {
        let shard = self.shard(key).read();
        let objects = shard.objects.get(key)?;
        let element = |o: &Term| o.as_tuple().and_then(|t| t.get(pos)).cloned();
        objects.iter().map(element).collect()
    }

    /// Removes every object with `key`; returns whether there were any.
    pub fn delete(&self, key: &Term) -> bool {
        !self.take(key).is_empty()
    }

    /// Removes the objects equal to `object` (every copy, in a duplicate bag); returns
    /// whether there were any. A term that could not be stored is simply not found.
    pub fn delete_object(&self, object: &Term) -> bool {
        let Ok(key) = self.key_of(object) else {
            return false;
        };
        self.shard(&key)
            .write()
            .remove_where(Some(&key), |o| o == object)
            > 0
    }

    /// Removes and returns the objects with `key` (`ets:take`).
    pub fn take(&self, key: &Term) -> Vec<Term> {
        self.shard(key).write().remove_key(key)
    }

    /// Adds `incr` to the integer at 0-based `pos` of the object with `key`, atomically,
    /// and returns the new value. If no object has `key`, `default` (its key element
    /// replaced by `key`) is inserted first; a given default is checked even when unused.
    /// Set tables only.
    pub fn update_counter(
        &self,
        key: &Term,
        pos: usize,
        incr: i64,
        default: Option<Term>,
    ) -> Result<i64, TableError> {
        let TableOptions { kind, key_pos } = self.options;
        if kind != TableKind::Set {
            return Err(TableError::NotASet(self.name, kind));
        } else if pos == key_pos {
            return Err(TableError::CounterIsKey(pos));
        }
        if let Some(default) = &default {
            self.key_of(default)?;
            counter_at(default, pos)?;
        }
        let mut shard = self.shard(key).write();
        self.check_live()?;
        let (value, mut elems) = match (shard.get(key).first(), default.as_ref()) {
            (Some(object), _) | (None, Some(object)) => counter_at(object, pos)?,
            (None, None) => return Err(TableError::KeyNotFound(key.clone())),
        };
        let overflow = TableError::CounterOverflow(value, incr);
        let new = value.checked_add(incr).ok_or(overflow)?;
        // In-bounds: `key_of` and `counter_at` checked both positions.
        elems[key_pos] = key.clone();
        elems[pos] = Term::Int(new);
        shard.insert(kind, key.clone(), Term::tuple(elems));
        Ok(new)
    }

    /// The objects matching `pattern` (see [`Term::matches`]). A pattern whose key element
    /// is fully bound (no `:_` and no map anywhere in it) looks at that key only; any other
    /// pattern scans the table.
    pub fn match_object(&self, pattern: &Term) -> Vec<Term> {
        let keep = |o: &&Term| o.matches(pattern);
        match self.plan(pattern) {
            Plan::Nothing => Vec::new(),
            Plan::Key(key) => self
                .shard(key)
                .read()
                .get(key)
                .iter()
                .filter(keep)
                .cloned()
                .collect(),
            Plan::Scan => self.scan(|shard, out| {
                out.extend(shard.objects.values().flatten().filter(keep).cloned())
            }),
        }
    }

    /// The keys matching `key_pattern`, each once, in no particular order.
    pub fn select_keys(&self, key_pattern: &Term) -> Vec<Term> {
        if is_bound(key_pattern) {
            return Vec::from_iter(self.member(key_pattern).then(|| key_pattern.clone()));
        }
        let matching = |k: &&Term| k.matches(key_pattern);
        self.scan(|shard, out| out.extend(shard.objects.keys().filter(matching).cloned()))
    }

    /// Removes the objects matching `pattern` (planned as in [`Table::match_object`]);
    /// returns how many.
    pub fn select_delete(&self, pattern: &Term) -> usize {
        let doomed = |o: &Term| o.matches(pattern);
        match self.plan(pattern) {
            Plan::Nothing => 0,
            Plan::Key(key) => self.shard(key).write().remove_where(Some(key), doomed),
            Plan::Scan => (self.shards.iter())
                .map(|shard| shard.write().remove_where(None, doomed))
                .sum(),
        }
    }

    /// Collects what `visit` pushes for each shard, read-locking one shard at a time.
    fn scan<T>(&self, mut visit: impl FnMut(&Shard, &mut Vec<T>)) -> Vec<T> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            visit(&shard.read(), &mut out);
        }
        out
    }

    /// The number of objects.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.read().count).sum()
    }

    /// Whether the table holds no objects.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every object, in no particular order.
    pub fn to_list(&self) -> Vec<Term> {
        self.scan(|shard, out| out.extend(shard.objects.values().flatten().cloned()))
    }

    /// Removes every object.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let old = std::mem::take(&mut *shard.write());
            drop(old); // after the guard: free the objects without holding the lock
        }
    }

    /// An estimate of the bytes the table takes, counting each object as if nothing in it
    /// were shared. Walks the whole table, one shard at a time.
    pub fn memory_bytes(&self) -> usize {
        let fixed = size_of::<Table>() + SHARDS * size_of::<CachePadded<RwLock<Shard>>>();
        let entry =
            |objects: &Vec<Term>| ENTRY_BYTES + objects.iter().map(term_bytes).sum::<usize>();
        let sizes: Vec<usize> =
            self.scan(|shard, out| out.push(shard.objects.values().map(entry).sum()));
        fixed + sizes.into_iter().sum::<usize>()
    }

    /// Marks the table deleted, then empties it (see the `deleted` field).
    fn retire(&self) {
        self.deleted.store(true, Ordering::Release);
        self.clear();
    }
}

/// The integer at `pos` of `object` and a copy of the object's elements.
fn counter_at(object: &Term, pos: usize) -> Result<(i64, Vec<Term>), TableError> {
    let elems = object
        .as_tuple()
        .ok_or_else(|| TableError::NotATuple(object.clone()))?;
    let element = elems
        .get(pos)
        .ok_or_else(|| TableError::NoElement(pos, object.clone()))?;
    let value = element
        .as_int()
        .ok_or_else(|| TableError::NotAnInteger(element.clone()))?;
    Ok((value, elems.to_vec()))
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, kind, key_pos) = (self.name, self.options.kind, self.options.key_pos);
        write!(
            f,
            "Table({name}, {}, key at {key_pos}, {} objects)",
            kind.as_str(),
            self.len()
        )
    }
}

/// The named tables of one node.
#[derive(Debug, Default)]
pub struct Tables {
    by_name: RwLock<HashMap<Atom, Arc<Table>>>,
    /// Tables that have an owner: every process exit asks about its tables, and with
    /// none owned (the common case) that costs one atomic load, not a lock.
    owned: std::sync::atomic::AtomicUsize,
}

impl Tables {
    /// A node's empty table registry.
    pub fn new() -> Tables {
        Tables::default()
    }

    /// Makes a table called `name`, deleted when `owner` exits (see
    /// [`Tables::delete_owned_by`]); fails if the name is taken.
    pub fn create(
        &self,
        name: Atom,
        options: TableOptions,
        owner: Option<Pid>,
    ) -> Result<Arc<Table>, TableError> {
        match self.by_name.write().entry(name) {
            Entry::Occupied(_) => Err(TableError::AlreadyExists(name)),
            Entry::Vacant(entry) => {
                log::debug!("table {name} created: {options:?}, owner {owner:?}");
                if owner.is_some() {
                    self.owned.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Ok(entry
                    .insert(Arc::new(Table::new(name, options, owner)))
                    .clone())
            }
        }
    }

    /// The table called `name`.
    pub fn get(&self, name: Atom) -> Result<Arc<Table>, TableError> {
        let table = self.by_name.read().get(&name).cloned();
        table.ok_or(TableError::NoSuchTable(name))
    }

    /// Deletes the table called `name`; returns whether there was one. Handles still held
    /// read it as empty and fail to write.
    pub fn delete(&self, name: Atom) -> bool {
        let Some(table) = self.by_name.write().remove(&name) else {
            return false;
        };
        if table.owner.is_some() {
            self.owned.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
        table.retire();
        log::debug!("table {name} deleted");
        true
    }

    /// The names of the tables, sorted.
    pub fn names(&self) -> Vec<Atom> {
        let mut names: Vec<Atom> = self.by_name.read().keys().copied().collect();
        names.sort();
        names
    }

    /// Deletes the tables `owner` owns, as when that process exits; returns how many.
    pub fn delete_owned_by(&self, owner: Pid) -> usize {
        use std::sync::atomic::Ordering;
        if self.owned.load(Ordering::SeqCst) == 0
            || !self.by_name.read().values().any(|t| t.owner == Some(owner))
        {
            return 0;
        }
        let mut gone = Vec::new();
        self.by_name.write().retain(|_, table| {
            let owned = table.owner == Some(owner);
            if owned {
                gone.push(table.clone());
            }
            !owned
        });
        self.owned.fetch_sub(gone.len(), Ordering::SeqCst);
        for table in &gone {
            table.retire();
            log::debug!("table {} deleted: its owner {owner:?} exited", table.name);
        }
        gone.len()
    }
}

#[cfg(test)]
mod tests;
