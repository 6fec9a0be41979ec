//! Waiting for a condition, bounded: poll it with a short pause that doubles up to a
//! cap, and give up at a deadline with the last thing seen.

use std::time::{Duration, Instant};

/// The first pause between polls; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_micros(50);
/// The longest pause between polls.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// Polls `cond` until it gives `Ok`, for at most `timeout`; after the deadline, the
/// last `Err` it gave (what was last seen, for the failure message).
pub fn poll<T, S>(timeout: Duration, mut cond: impl FnMut() -> Result<T, S>) -> Result<T, S> {
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    loop {
        match cond() {
            Ok(v) => return Ok(v),
            Err(seen) if Instant::now() >= deadline => return Err(seen),
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}
