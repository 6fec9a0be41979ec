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

#[path = "../fuzz/checks/replay.rs"]
mod corpus;

fn replay(target: &str, check: fn(&[u8])) {
    corpus::replay(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz"),
        target,
        check,
    );
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
