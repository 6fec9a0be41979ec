use serde::de::{Deserialize, DeserializeSeed};

use super::*;
use crate::atom::MAX_ATOM_LEN;
use crate::{Binary, Ref};

fn sample() -> Term {
    let node = Atom::new("node1@localhost");
    Term::tuple(vec![
        Term::atom("hello"),
        Term::Int(-42),
        Term::Float(-0.0),
        Term::Float(f64::from_bits(0x7ff8_0000_dead_beef)),
        Term::binary(&[0, 255, 7]),
        Term::str("héllo"),
        Term::Pid(Pid::from_parts(node, 3, u64::MAX)),
        Term::Ref(Ref::from_parts(node, 3, 99)),
        Term::list(vec![Term::Int(1), Term::list(vec![])]),
        Term::map(vec![
            (Term::atom("k"), Term::tuple(vec![])),
            (Term::Int(1), Term::nil()),
        ]),
    ])
}

/// `depth` tuples, each holding the next, around `Int(0)`, as raw frame bytes.
fn nested_tuple_frame(depth: usize) -> Vec<u8> {
    let mut bytes = vec![CODEC_VERSION];
    for _ in 0..depth {
        bytes.extend_from_slice(&[tag::TUPLE as u8, 1]);
    }
    bytes.extend_from_slice(&[tag::INT as u8, 0]);
    bytes
}

fn nested_tuple(depth: usize) -> Term {
    (0..depth).fold(Term::Int(0), |t, _| Term::tuple(vec![t]))
}

#[test]
fn terms_round_trip_exactly() {
    let t = sample();
    let bytes = encode(&t, &Limits::default()).unwrap();
    assert_eq!(bytes[0], CODEC_VERSION);
    assert_eq!(decode(&bytes, &Limits::default()).unwrap(), t);
}

#[test]
fn the_wire_form_is_the_documented_one() {
    // Tuple (7) of 2: Atom (0) "ok" and Int (1) -1 (zigzag 1).
    let t = Term::tuple(vec![Term::ok(), Term::Int(-1)]);
    let bytes = encode(&t, &Limits::default()).unwrap();
    assert_eq!(bytes, [CODEC_VERSION, 7, 2, 0, 2, b'o', b'k', 1, 1]);
}

#[test]
fn framing_errors_are_reported() {
    let limits = Limits::default();
    assert_eq!(decode(&[], &limits), Err(CodecError::Empty));
    assert_eq!(decode(&[9, 1, 0], &limits), Err(CodecError::BadVersion(9)));
    let mut bytes = encode(&Term::Int(5), &limits).unwrap();
    bytes.extend_from_slice(&[1, 2, 3]);
    assert_eq!(decode(&bytes, &limits), Err(CodecError::TrailingBytes(3)));
    assert!(matches!(
        decode(&[CODEC_VERSION], &limits),
        Err(CodecError::Malformed(_))
    ));
    // Unknown variant 42.
    let err = decode(&[CODEC_VERSION, 42], &limits).unwrap_err();
    assert_eq!(
        err,
        CodecError::Malformed("unknown term variant 42 (known: 0 to 9)".into())
    );
    // A string that is not UTF-8.
    assert!(matches!(
        decode(&[CODEC_VERSION, 4, 1, 0xff], &limits),
        Err(CodecError::Malformed(_))
    ));
}

#[test]
fn nesting_is_limited_on_both_sides() {
    let limits = Limits {
        max_depth: 8,
        ..Limits::default()
    };
    let ok = nested_tuple(8);
    let bytes = encode(&ok, &limits).unwrap();
    assert_eq!(decode(&bytes, &limits).unwrap(), ok);
    assert_eq!(bytes, nested_tuple_frame(8));

    let deep = nested_tuple(9);
    assert_eq!(encode(&deep, &limits), Err(CodecError::TooDeep { max: 8 }));
    assert_eq!(
        decode(&nested_tuple_frame(9), &limits),
        Err(CodecError::TooDeep { max: 8 })
    );

    let scalars_only = Limits {
        max_depth: 0,
        ..Limits::default()
    };
    assert!(encode(&Term::Int(1), &scalars_only).is_ok());
    assert_eq!(
        encode(&Term::list(vec![]), &scalars_only),
        Err(CodecError::TooDeep { max: 0 })
    );
    let map = Term::map(vec![(Term::Int(1), Term::Int(2))]);
    assert_eq!(
        encode(&map, &scalars_only),
        Err(CodecError::TooDeep { max: 0 })
    );
}

#[test]
fn a_hostile_depth_is_an_error_not_a_stack_overflow() {
    let frame = nested_tuple_frame(100_000);
    let max = DEFAULT_MAX_DEPTH;
    assert_eq!(
        decode(&frame, &Limits::default()),
        Err(CodecError::TooDeep { max })
    );
    // The default depth itself decodes on an ordinary test thread's stack.
    let frame = nested_tuple_frame(DEFAULT_MAX_DEPTH);
    assert_eq!(
        decode(&frame, &Limits::default()).unwrap(),
        nested_tuple(DEFAULT_MAX_DEPTH)
    );
    // Maps nest too: %{0 => %{0 => ...}}.
    let mut frame = vec![CODEC_VERSION];
    for _ in 0..100_000 {
        frame.extend_from_slice(&[tag::MAP as u8, 1, tag::INT as u8, 0]);
    }
    assert_eq!(
        decode(&frame, &Limits::default()),
        Err(CodecError::TooDeep { max })
    );
}

#[test]
fn size_is_limited_on_both_sides() {
    let t = Term::binary(&[7; 100]);
    let exact = encode(&t, &Limits::default()).unwrap();
    let limits = Limits {
        max_size: 50,
        ..Limits::default()
    };
    let size = exact.len();
    assert_eq!(
        encode(&t, &limits),
        Err(CodecError::TooLarge { size, max: 50 })
    );
    assert_eq!(
        decode(&exact, &limits),
        Err(CodecError::TooLarge { size, max: 50 })
    );
    let fits = Limits {
        max_size: size,
        ..Limits::default()
    };
    assert_eq!(encode(&t, &fits).unwrap(), exact);
}

#[test]
fn encode_into_appends_and_restores_on_error() {
    let mut out = vec![0xaa, 0xbb];
    encode_into(&Term::Int(1), &mut out, &Limits::default()).unwrap();
    assert_eq!(out, [0xaa, 0xbb, CODEC_VERSION, 1, 2]);
    let tight = Limits {
        max_size: 3,
        ..Limits::default()
    };
    let err = encode_into(&Term::str("too long for three bytes"), &mut out, &tight);
    assert!(matches!(err, Err(CodecError::TooLarge { max: 3, .. })));
    let shallow = Limits {
        max_depth: 1,
        ..Limits::default()
    };
    let err = encode_into(&nested_tuple(2), &mut out, &shallow);
    assert_eq!(err, Err(CodecError::TooDeep { max: 1 }));
    assert_eq!(out, [0xaa, 0xbb, CODEC_VERSION, 1, 2]);
}

#[test]
fn length_prefixes_are_not_trusted() {
    let limits = Limits::default();
    // A binary, a string and a list each claiming 2^62 elements in a few bytes.
    let huge = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40];
    for t in [tag::BINARY, tag::STR, tag::LIST, tag::MAP] {
        let mut frame = vec![CODEC_VERSION, t as u8];
        frame.extend_from_slice(&huge);
        assert!(
            matches!(decode(&frame, &limits), Err(CodecError::Malformed(_))),
            "{t}"
        );
    }
}

#[test]
fn atoms_that_cannot_be_interned_are_errors() {
    let text = "a".repeat(MAX_ATOM_LEN + 1);
    let frame = encode(&Term::str(&text), &Limits::default()).unwrap();
    let mut frame = frame.clone();
    frame[1] = tag::ATOM as u8; // Same payload shape as a string.
    match decode(&frame, &Limits::default()) {
        Err(CodecError::Atom(why)) => assert!(why.contains("exceeds"), "{why}"),
        other => panic!("expected an atom error, got {other:?}"),
    }
}

#[test]
fn terms_embed_in_other_postcard_messages() {
    let t = sample();
    let bytes = postcard::to_allocvec(&(7u32, &t, "after")).unwrap();
    let mut de = postcard::Deserializer::from_bytes(&bytes);
    assert_eq!(u32::deserialize(&mut de).unwrap(), 7);
    assert_eq!(TermSeed { max_depth: 3 }.deserialize(&mut de).unwrap(), t);
    assert_eq!(<&str>::deserialize(&mut de).unwrap(), "after");

    let bytes = postcard::to_allocvec(&nested_tuple(5)).unwrap();
    let mut de = postcard::Deserializer::from_bytes(&bytes);
    assert!(TermSeed { max_depth: 4 }.deserialize(&mut de).is_err());
    // Term's own impls use the default depth; DepthLimited chooses another.
    let deep = nested_tuple(DEFAULT_MAX_DEPTH + 1);
    assert!(postcard::to_allocvec(&deep).is_err());
    let limited = DepthLimited {
        term: &deep,
        max_depth: DEFAULT_MAX_DEPTH + 1,
    };
    let bytes = postcard::to_allocvec(&limited).unwrap();
    let seed = TermSeed {
        max_depth: DEFAULT_MAX_DEPTH + 1,
    };
    assert_eq!(
        seed.deserialize(&mut postcard::Deserializer::from_bytes(&bytes))
            .unwrap(),
        deep
    );
}

#[test]
fn parts_serialize_on_their_own() {
    let node = Atom::new("n@h");
    let pid = Pid::from_parts(node, 2, 5);
    let r = Ref::from_parts(node, 2, 6);
    let b = Binary::from_slice(b"xyz");
    let bytes = postcard::to_allocvec(&(pid, r, node, &b)).unwrap();
    let back: (Pid, Ref, Atom, Binary) = postcard::from_bytes(&bytes).unwrap();
    assert_eq!((back.0, back.1, back.2), (pid, r, node));
    assert!(back.3 == b, "binary differs");
}

#[test]
fn errors_say_what_happened() {
    let msg = CodecError::TooLarge { size: 70, max: 64 }.to_string();
    assert_eq!(msg, "frame of 70 bytes exceeds the limit of 64 bytes");
    assert_eq!(
        CodecError::BadVersion(3).to_string(),
        "frame has codec version 3; this node speaks version 1"
    );
    assert_eq!(
        CodecError::TrailingBytes(2).to_string(),
        "2 bytes left over after the term"
    );
}
