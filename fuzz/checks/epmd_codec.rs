//! The port mapper protocol's decoders on untrusted bytes: a mapper reading requests, a
//! node reading the mapper's answers.
//!
//! Checks: no panic; a decoder never claims more bytes than it was given; what decodes
//! re-encodes to exactly the bytes it took (the layouts have one encoding per message);
//! every shorter prefix of those bytes is "read more" (`Ok(None)`), never an error or a
//! different message; a `NAMES` answer re-encodes to text that decodes the same.
//!
//! Shared by the fuzz target `epmd_codec` and by `tests/fuzz_corpus.rs`, which replays
//! this target's corpus in every test run.

use oxbeam::node::epmd::codec::*;

/// `decode` on every strict prefix of `bytes[..used]` asks for more.
fn prefixes_want_more<T: std::fmt::Debug, E: std::fmt::Debug>(
    bytes: &[u8],
    used: usize,
    decode: impl Fn(&[u8]) -> Result<Option<T>, E>,
) {
    for cut in 0..used {
        let got = decode(&bytes[..cut]);
        assert!(matches!(got, Ok(None)), "prefix of {cut} bytes: {got:?}");
    }
}

/// Runs the checks on one input (a panic is a failure).
pub fn run(data: &[u8]) {
    if let Ok(Some((req, used))) = decode_request(data) {
        assert!(used <= data.len());
        let bytes = encode_request(&req).expect("a decoded request re-encodes");
        assert_eq!(bytes, &data[..used], "{req:?}");
        assert_eq!(
            decode_request_body(&data[2..used]).ok().as_ref(),
            Some(&req)
        );
        prefixes_want_more(data, used, decode_request);
    }
    if let Ok(req) = decode_request_body(data) {
        let framed = encode_request(&req).expect("a decoded request re-encodes");
        assert_eq!(&framed[2..], data);
    }

    if let Ok(Some((resp, used))) = decode_alive2_response(data) {
        assert!(used <= data.len());
        assert_eq!(encode_alive2_response(&resp), &data[..used]);
        prefixes_want_more(data, used, decode_alive2_response);
    }

    if let Ok(Some((resp, used))) = decode_port2_response(data) {
        assert!(used <= data.len());
        let bytes = encode_port2_response(&resp).expect("a decoded answer re-encodes");
        assert_eq!(bytes, &data[..used], "{resp:?}");
        prefixes_want_more(data, used, decode_port2_response);
    }

    if let Ok(names) = decode_names_response(data) {
        let text = encode_names_response(&names);
        assert_eq!(decode_names_response(&text).ok().as_ref(), Some(&names));
    }
}
