//! Replays the `console_parser` fuzz target's corpus (`fuzz/corpus/console_parser/` at
//! the workspace root) through its checks (`fuzz/checks/console_parser.rs`), as
//! `tests/fuzz_corpus.rs` does for the other targets.

use std::path::Path;

#[path = "../../../fuzz/checks/console_parser.rs"]
mod console_parser;

#[test]
fn console_parser_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/console_parser");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    for file in &files {
        let data = std::fs::read(file).expect("a corpus file");
        if std::panic::catch_unwind(|| console_parser::run(&data)).is_err() {
            panic!("console_parser: check failed on {}", file.display());
        }
    }
}
