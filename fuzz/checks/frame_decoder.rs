//! The receiving side of a connection after the handshake: bytes, as the socket hands
//! them over in pieces of any size, through `FrameDecoder`, then each frame through
//! `Reassembly` (and so `wire::decode`), stopping at the first error as the I/O loop
//! does (it closes the connection).
//!
//! Input: `[max lo, max hi, chunk seed, limits, stream...]`.
//! - max frame = `u16::from_le_bytes([max lo, max hi])`;
//! - chunk seed 0 pushes the stream in one piece, else it seeds the chunk sizes (0 to 63);
//! - limits: the low 3 bits + 1 are the most messages in reassembly at once, the rest
//!   choose the largest reassembled message (`64 << (limits >> 3)` bytes).
//!
//! Checks: no panic; the frames and the error do not depend on how the stream was cut;
//! no frame exceeds the limit; `buffered()` is what was pushed less what came out; a
//! whole frame that `wire::split_message` takes for a plain message decodes as one to
//! the same destination (or not at all); every decoded message re-encodes to a message
//! that decodes to itself, as a whole frame.
//!
//! Shared by the fuzz target `frame_decoder` and by `tests/fuzz_corpus.rs`, which replays
//! this target's corpus in every test run.

use oxbeam::node::frame::{FrameDecoder, FrameError, HEADER};
use oxbeam::node::wire::{self, KIND_WHOLE, Reassembly, Wire};
use oxbeam::rt::Signal;

/// Every frame of `stream` pushed in the given pieces, and the error that ended them.
fn frames(max: usize, stream: &[u8], cuts: &[usize]) -> (Vec<Vec<u8>>, Option<FrameError>) {
    let mut d = FrameDecoder::new(max);
    let (mut out, mut pushed, mut taken, mut at) = (Vec::new(), 0, 0, 0);
    for &n in cuts.iter().chain(std::iter::once(&usize::MAX)) {
        let end = at + n.min(stream.len() - at);
        d.push(&stream[at..end]);
        pushed += end - at;
        at = end;
        loop {
            match d.next_frame() {
                Ok(Some(f)) => {
                    assert!(f.len() <= max, "frame of {} > max {max}", f.len());
                    taken += HEADER + f.len();
                    out.push(f.to_vec());
                }
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
        assert_eq!(d.buffered(), pushed - taken);
        assert!(
            d.buffered() < HEADER || {
                let len = &stream[taken..taken + HEADER];
                u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize + HEADER
                    > d.buffered()
            }
        );
        if at == stream.len() {
            break;
        }
    }
    (out, None)
}

fn chunk_sizes(seed: u8, len: usize) -> Vec<usize> {
    if seed == 0 {
        return vec![len];
    }
    // xorshift32: deterministic, so a crash replays from its input alone.
    let mut x = u32::from(seed).wrapping_mul(0x9E37_79B9) | 1;
    let mut cuts = Vec::new();
    let mut total = 0;
    while total < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let n = (x % 64) as usize;
        cuts.push(n);
        total += n;
    }
    cuts
}

/// Runs the checks on one input (a panic is a failure).
pub fn run(data: &[u8]) {
    let [lo, hi, seed, limits, stream @ ..] = data else {
        return;
    };
    let max = usize::from(u16::from_le_bytes([*lo, *hi]));
    let whole = frames(max, stream, &[stream.len()]);
    let cut = frames(max, stream, &chunk_sizes(*seed, stream.len()));
    assert_eq!(whole, cut, "frames depend on how the stream was cut");

    let max_partial = usize::from(limits & 7) + 1;
    let max_message = 64usize << (limits >> 3);
    let mut re = Reassembly::new(max_message, max_partial);
    for frame in &whole.0 {
        // The I/O loop's shortcut for a plain message reads its head alone: where it
        // takes a frame, the full decoder finds the same destination (or a bad term).
        if let [KIND_WHOLE, body @ ..] = &frame[..]
            && let Some((to, _)) = wire::split_message(body)
        {
            match wire::decode(body) {
                Ok(Wire::Signal {
                    to: got,
                    signal: Signal::Message(_),
                }) => assert_eq!(got, to, "split_message and decode disagree"),
                Ok(other) => panic!("split_message took {other:?} for a plain message"),
                Err(_) => {}
            }
        }
        match re.on_frame(frame) {
            Ok(Some(msg)) => {
                let bytes = wire::encode(&msg).expect("a decoded message re-encodes");
                assert_eq!(wire::decode(&bytes).as_ref(), Ok(&msg));
                let mut again = vec![KIND_WHOLE];
                again.extend_from_slice(&bytes);
                assert_eq!(
                    Reassembly::new(0, 0).on_frame(&again),
                    Ok(Some(msg)),
                    "a whole frame of the re-encoded message"
                );
            }
            Ok(None) => {}
            Err(_) => break,
        }
    }
}
