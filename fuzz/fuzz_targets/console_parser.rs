//! Fuzz target: see `fuzz/checks/console_parser.rs` for what it feeds and checks.
#![no_main]

#[path = "../checks/console_parser.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
