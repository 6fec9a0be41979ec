//! Fuzz target: see `fuzz/checks/epmd_codec.rs` for what it feeds and checks.
#![no_main]

#[path = "../checks/epmd_codec.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
