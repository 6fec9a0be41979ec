//! Replays each fuzz target's corpus (`fuzz/corpus/<target>/`: the inputs libFuzzer
//! found and the hand-made seeds) through the same checks the target runs
//! (`fuzz/checks/<target>.rs`; the console's parser is replayed by
//! `crates/cli/tests/fuzz_console_corpus.rs`), so every test run is a regression test of everything
//! fuzzing ever found, without cargo-fuzz or a nightly toolchain.

use std::path::Path;

#[path = "../fuzz/checks/epmd_codec.rs"]
mod epmd_codec;
#[path = "../fuzz/checks/frame_decoder.rs"]
mod frame_decoder;
#[path = "../fuzz/checks/handshake.rs"]
mod handshake;
#[path = "../fuzz/checks/term_codec.rs"]
mod term_codec;

/// Runs `check` on every file of the target's corpus; says which input failed.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
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

#[test]
fn epmd_codec_corpus() {
    replay("epmd_codec", epmd_codec::run);
}

#[test]
fn frame_decoder_corpus() {
    replay("frame_decoder", frame_decoder::run);
}

#[test]
fn handshake_corpus() {
    replay("handshake", handshake::run);
}

#[test]
fn term_codec_corpus() {
    replay("term_codec", term_codec::run);
}
