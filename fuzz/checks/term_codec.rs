//! The term codec on untrusted bytes: `codec::decode` of the whole input (a frame: the
//! version byte, then the postcard body).
//!
//! Checks: no panic (nor stack overflow); whatever decodes re-encodes, decodes again to
//! an equal term, and re-encodes to the same bytes (the encoding of a decoded term is
//! canonical); the depth limit is exact: with a limit of `d` (0 to 5, from the last input
//! byte) a frame decodes to the same term or is too deep, and the canonical encoding
//! decodes (and encodes) if and only if the term nests at most `d` deep; a term converts
//! to itself through serde (`to_term` / `from_term`).
//!
//! Shared by the fuzz target `term_codec` and by `tests/fuzz_corpus.rs`, which replays
//! this target's corpus in every test run.

use oxbeam::Term;
use oxbeam::term::codec::{CodecError, Limits, decode, encode};
use oxbeam::term::{from_term, to_term};

/// How many tuples, lists and maps nest in `t` (0 for a scalar).
fn depth(t: &Term) -> usize {
    match t {
        Term::Tuple(xs) | Term::List(xs) => 1 + xs.iter().map(depth).max().unwrap_or(0),
        Term::Map(m) => {
            1 + m
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

/// Runs the checks on one input (a panic is a failure).
pub fn run(data: &[u8]) {
    let limits = Limits::default();
    let small = Limits {
        max_depth: usize::from(data.last().copied().unwrap_or(0) % 6),
        ..limits
    };
    let got = decode(data, &limits);
    let got_small = decode(data, &small);
    let Ok(term) = got else {
        // Refused under the default limits: refused under tighter ones too.
        assert!(got_small.is_err(), "{got:?} but {got_small:?}");
        return;
    };

    let bytes = encode(&term, &limits).expect("a decoded term re-encodes");
    assert!(bytes.len() <= data.len(), "re-encoding grew the frame");
    let again = decode(&bytes, &limits).expect("a re-encoded term decodes");
    assert_eq!(again, term);
    assert_eq!(encode(&again, &limits).as_ref(), Ok(&bytes));

    // The limit applies to the frame as sent: a frame can nest deeper than the term it
    // decodes to (a map key repeated, its first value deeper), so a tighter limit may
    // refuse it, but only as too deep, and it decodes the canonical re-encoding exactly
    // when the term fits.
    let fits = depth(&term) <= small.max_depth;
    let too_deep = CodecError::TooDeep {
        max: small.max_depth,
    };
    match &got_small {
        Ok(t) => assert!(fits && *t == term, "{t:?} under {small:?}"),
        Err(e) => assert_eq!(*e, too_deep),
    }
    if fits {
        assert_eq!(decode(&bytes, &small).as_ref(), Ok(&term));
        assert_eq!(encode(&term, &small).as_ref(), Ok(&bytes));
    } else {
        assert_eq!(decode(&bytes, &small), Err(too_deep.clone()));
        assert_eq!(encode(&term, &small), Err(too_deep));
    }

    let converted = to_term(&term).expect("a term converts to a term");
    assert_eq!(converted, term);
    assert_eq!(from_term::<Term>(&term).as_ref(), Ok(&term));
}
