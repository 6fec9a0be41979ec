use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::raft::Entry;

/// A file under the system's temp directory, removed (with its directory) on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(what: &str) -> TempFile {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "oxbeam-storage-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        TempFile(dir.join("replica.redb"))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

type R = Replica<String, Term>;

fn open(path: &Path) -> Durable {
    Durable::open(&Storage::Disk(path.to_path_buf())).expect("the store opens")
}

/// Closes `d`, reopens the file, and checks it holds what `raft` does; the reopened store.
fn reopen_and_check(d: Durable, path: &Path, raft: &R) -> Durable {
    drop(d);
    let mut d = open(path);
    let saved = d.load::<String>().unwrap().expect("state was kept");
    assert_eq!(
        (saved.term, saved.voted_for),
        (raft.term, raft.voted_for),
        "term and vote"
    );
    assert_eq!(saved.snapshot, raft.snapshot, "snapshot");
    assert_eq!(saved.log, raft.log, "log");
    d
}

fn entry(term: u64, cmd: &str) -> Entry<String> {
    Entry {
        term,
        cmd: cmd.to_string(),
    }
}

#[test]
fn a_new_store_is_empty_and_keeps_the_first_state() {
    let f = TempFile::new("new");
    let mut d = open(&f.0);
    assert!(d.load::<String>().unwrap().is_none());
    let r = R::new(0, 3);
    d.save(&r).unwrap();
    let _ = reopen_and_check(d, &f.0, &r);
}

#[test]
fn appends_truncations_votes_and_compaction_survive_a_reopen() {
    let f = TempFile::new("steps");
    let mut d = open(&f.0);
    let mut r = R::new(1, 3);
    (r.term, r.voted_for) = (2, Some(0));
    r.log = vec![entry(1, "a"), entry(2, "b"), entry(2, "c")];
    d.save(&r).unwrap();
    let mut d = reopen_and_check(d, &f.0, &r);
    // A conflict: the last two replaced by a later leader's entries (and one more).
    (r.term, r.voted_for) = (3, None);
    r.log.truncate(1);
    r.log.extend([entry(3, "x"), entry(3, "y"), entry(3, "z")]);
    d.save(&r).unwrap();
    let mut d = reopen_and_check(d, &f.0, &r);
    // Compaction of a committed prefix.
    r.commit = 3;
    assert!(r.compact(3, Term::str("state at 3")));
    d.save(&r).unwrap();
    let mut d = reopen_and_check(d, &f.0, &r);
    // A shorter log (truncated, nothing appended).
    r.log.truncate(0);
    d.save(&r).unwrap();
    let mut d = reopen_and_check(d, &f.0, &r);
    // A snapshot installed past the log, which is cleared.
    r.log = vec![entry(3, "w")];
    d.save(&r).unwrap();
    r.snapshot = Snapshot {
        index: 9,
        term: 4,
        data: Some(Term::str("state at 9")),
    };
    r.log.clear();
    r.commit = 9;
    d.save(&r).unwrap();
    let _ = reopen_and_check(d, &f.0, &r);
}

#[test]
fn random_histories_read_back_exactly() {
    // Logs as Raft makes them: entries of a term are appended while it is current, and
    // entries replaced after a conflict come from a new term (so an index and a term
    // name one entry, as log matching says).
    for seed in 0..20u64 {
        let f = TempFile::new("random");
        let mut d = open(&f.0);
        let mut r = R::new(0, 3);
        r.term = 1;
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n.max(1)
        };
        let mut counter = 0;
        for step in 0..60 {
            match next(5) {
                0 | 1 => {
                    for _ in 0..=next(4) {
                        counter += 1;
                        r.log.push(entry(r.term, &format!("c{counter}")));
                    }
                }
                2 => {
                    r.term += 1;
                    r.voted_for = Some(next(3) as usize);
                    let keep = next(r.log.len() as u64 + 1) as usize;
                    r.log.truncate(keep);
                    for _ in 0..next(3) {
                        counter += 1;
                        r.log.push(entry(r.term, &format!("c{counter}")));
                    }
                }
                3 if !r.log.is_empty() => {
                    r.commit = r.last_index();
                    let upto = r.snapshot.index + 1 + next(r.log.len() as u64);
                    assert!(r.compact(upto, Term::Int(upto as i64)));
                }
                _ => r.voted_for = None,
            }
            d.save(&r).unwrap();
            if step % 7 == 0 {
                d = reopen_and_check(d, &f.0, &r);
            }
        }
        let _ = reopen_and_check(d, &f.0, &r);
    }
}

#[test]
fn an_unreadable_file_is_an_error_not_a_panic() {
    let f = TempFile::new("garbage");
    std::fs::create_dir_all(f.0.parent().unwrap()).unwrap();
    std::fs::write(&f.0, vec![0x5a; 64 * 1024]).unwrap();
    let err = Durable::open(&Storage::Disk(f.0.clone()))
        .and_then(|mut d| d.load::<String>().map(|_| ()))
        .expect_err("garbage is not a store");
    let text = err.to_string();
    assert!(text.contains("replica.redb"), "{text}");
}

#[test]
fn a_file_open_elsewhere_is_an_error() {
    let f = TempFile::new("twice");
    let _first = open(&f.0);
    let err = Durable::open(&Storage::Disk(f.0.clone()))
        .err()
        .expect("locked");
    assert!(matches!(err, StorageError::Open { .. }), "{err}");
}

#[test]
fn entries_of_another_type_are_reported_as_corrupt() {
    let f = TempFile::new("types");
    let mut d = open(&f.0);
    let mut r = R::new(0, 1);
    r.log = vec![entry(1, "not a number")];
    d.save(&r).unwrap();
    drop(d);
    let err = open(&f.0).load::<u64>().err().expect("a string is no u64");
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("log entry 1"), "{err}");
}

#[test]
fn memory_keeps_nothing() {
    let mut d = Durable::open(&Storage::Memory).unwrap();
    let mut r = R::new(0, 1);
    r.term = 5;
    d.save(&r).unwrap();
    assert!(d.load::<String>().unwrap().is_none());
}
