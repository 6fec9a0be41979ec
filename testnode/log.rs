//! The test node's logger: lines to stderr at the level `RUST_LOG` names (`error`,
//! `warn`, `info`, `debug`, `trace`; default `warn`), and a panic as one warning line, as
//! `oxbeam node` reports them. The test node is part of the library's package, which
//! depends on no terminal crate (env_logger lives with the `oxbeam` command), so these
//! twenty lines stand in for it here.

use log::{LevelFilter, Log, Metadata, Record};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            eprintln!("[{} {}] {}", record.level(), record.target(), record.args());
        }
    }

    fn flush(&self) {}
}

/// Installs the logger and the panic hook.
pub fn init() {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::Warn);
    if log::set_logger(&Stderr).is_ok() {
        log::set_max_level(level);
    }
    oxbeam::node::cmdline::log_panics();
}
