//! Replays a fuzz target's corpus through its check: shared by `tests/fuzz_corpus.rs`
//! and `crates/cli/tests/fuzz_console_corpus.rs` (each includes this file by path).

use std::path::Path;

/// Runs `check` on every file of `corpus/<target>/` under `fuzz_dir`, in name order;
/// panics naming the input that failed.
pub fn replay(fuzz_dir: &Path, target: &str, check: fn(&[u8])) {
    let dir = fuzz_dir.join("corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    for file in &files {
        let data = std::fs::read(file).expect("a corpus file");
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{target}: check failed on {}", file.display());
        }
    }
}
