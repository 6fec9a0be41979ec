//! Fuzz target: see `fuzz/checks/frame_decoder.rs` for what it feeds and checks.
#![no_main]

#[path = "../checks/frame_decoder.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
