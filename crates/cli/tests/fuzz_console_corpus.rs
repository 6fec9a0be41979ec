//! Replays the `console_parser` fuzz target's corpus (`fuzz/corpus/console_parser/` at
//! the workspace root) through its checks (`fuzz/checks/console_parser.rs`), as
//! `tests/fuzz_corpus.rs` does for the other targets.

use std::path::Path;

#[path = "../../../fuzz/checks/console_parser.rs"]
mod console_parser;

#[path = "../../../fuzz/checks/replay.rs"]
mod corpus;

#[test]
fn console_parser_corpus() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    corpus::replay(&fuzz, "console_parser", console_parser::run);
}
