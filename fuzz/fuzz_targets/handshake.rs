//! Fuzz target: see `fuzz/checks/handshake.rs` for what it feeds and checks.
#![no_main]

#[path = "../checks/handshake.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
