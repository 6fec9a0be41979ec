//! Property tests of the term layer's wire codec and serde conversion: every term
//! round-trips, and no input (truncated, corrupted, random, over-deep, over-large) makes
//! the decoder panic.

use std::collections::{BTreeMap, HashMap};

use oxbeam::term::codec::{
    CODEC_VERSION, CodecError, DEFAULT_MAX_DEPTH, Limits, decode, encode, encode_into,
};
use oxbeam::term::{Binary, from_term, to_term};
use oxbeam::{Atom, Pid, Ref, Term};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// Atom texts from a small fixed set plus random ones (kept short: the atom table only
/// grows, and proptest generates thousands of cases).
fn atom_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["ok", "error", "nil", "true", "a b", "", "node1@host"])
            .prop_map(String::from),
        1 => "[a-z_@ ]{1,6}",
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>(),
        1 => prop::sample::select(vec![
            0.0,
            -0.0,
            f64::NAN,
            -f64::NAN,
            f64::from_bits(0x7ff0_0000_0000_0001), // signalling NaN with a payload
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
        ]),
    ]
}

fn node_id() -> impl Strategy<Value = (Atom, u32, u64)> {
    (atom_text(), any::<u32>(), any::<u64>()).prop_map(|(n, c, i)| (Atom::new(&n), c, i))
}

fn leaf() -> impl Strategy<Value = Term> {
    prop_oneof![
        atom_text().prop_map(|a| Term::atom(&a)),
        any::<i64>().prop_map(Term::Int),
        float().prop_map(Term::Float),
        vec(any::<u8>(), 0..24).prop_map(|b| Term::binary(&b)),
        ".{0,12}".prop_map(|s| Term::str(&s)),
        node_id().prop_map(|(n, c, i)| Term::Pid(Pid::from_parts(n, c, i))),
        node_id().prop_map(|(n, c, i)| Term::Ref(Ref::from_parts(n, c, i))),
    ]
}

/// Arbitrary terms of every variant, nested up to a few levels.
fn term() -> impl Strategy<Value = Term> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Term::tuple),
            vec(inner.clone(), 0..6).prop_map(Term::list),
            btree_map(inner.clone(), inner, 0..5).prop_map(|m| Term::Map(m.into())),
        ]
    })
}

fn nested_list_frame(depth: usize) -> Vec<u8> {
    let mut frame = vec![CODEC_VERSION];
    for _ in 0..depth {
        frame.extend_from_slice(&[8, 1]); // List of one element.
    }
    frame.extend_from_slice(&[1, 0]); // Int 0.
    frame
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_term_round_trips(t in term()) {
        let bytes = encode(&t, &Limits::default()).unwrap();
        prop_assert_eq!(decode(&bytes, &Limits::default()).unwrap(), t);
    }

    #[test]
    fn encode_into_appends_the_same_frame(t in term(), prefix in vec(any::<u8>(), 0..8)) {
        let mut out = prefix.clone();
        encode_into(&t, &mut out, &Limits::default()).unwrap();
        prop_assert_eq!(&out[..prefix.len()], &prefix[..]);
        prop_assert_eq!(&out[prefix.len()..], &encode(&t, &Limits::default()).unwrap()[..]);
    }

    #[test]
    fn every_truncation_is_an_error(t in term()) {
        let bytes = encode(&t, &Limits::default()).unwrap();
        for len in 0..bytes.len() {
            prop_assert!(decode(&bytes[..len], &Limits::default()).is_err(), "prefix {}", len);
        }
    }

    #[test]
    fn corrupted_frames_never_panic(
        t in term(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = encode(&t, &Limits::default()).unwrap();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let _ = decode(&bytes, &Limits::default());
        let small = Limits { max_size: 1 << 16, max_depth: 3 };
        let _ = decode(&bytes, &small);
    }

    #[test]
    fn random_bytes_never_panic(body in vec(any::<u8>(), 0..256)) {
        let mut frame = vec![CODEC_VERSION];
        frame.extend_from_slice(&body);
        let _ = decode(&frame, &Limits::default());
        let _ = decode(&body, &Limits::default());
    }

    #[test]
    fn limits_are_enforced(t in term(), max_depth in 0usize..4, max_size in 0usize..64) {
        let limits = Limits { max_depth, max_size };
        match encode(&t, &limits) {
            Ok(bytes) => {
                prop_assert!(bytes.len() <= max_size);
                prop_assert_eq!(decode(&bytes, &limits).unwrap(), t);
            }
            Err(CodecError::TooDeep { max }) => prop_assert_eq!(max, max_depth),
            Err(CodecError::TooLarge { size, max }) => {
                prop_assert_eq!(max, max_size);
                let unlimited = Limits { max_depth, ..Limits::default() };
                prop_assert_eq!(size, encode(&t, &unlimited).unwrap().len());
            }
            Err(other) => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn terms_round_trip_through_serde_conversion(t in term()) {
        prop_assert_eq!(to_term(&t).unwrap(), t.clone());
        prop_assert_eq!(from_term::<Term>(&t).unwrap(), t);
    }
}

#[test]
fn over_deep_frames_are_too_deep() {
    let max = DEFAULT_MAX_DEPTH;
    for depth in [max + 1, 10_000, 1_000_000] {
        let frame = nested_list_frame(depth);
        assert_eq!(
            decode(&frame, &Limits::default()),
            Err(CodecError::TooDeep { max })
        );
    }
    assert!(decode(&nested_list_frame(max), &Limits::default()).is_ok());
}

#[test]
fn over_large_frames_are_too_large() {
    let limits = Limits {
        max_size: 1024,
        ..Limits::default()
    };
    let frame = vec![CODEC_VERSION; 1025];
    assert_eq!(
        decode(&frame, &limits),
        Err(CodecError::TooLarge {
            size: 1025,
            max: 1024
        })
    );
    let big = Term::binary(&[0; 2000]);
    assert!(matches!(
        encode(&big, &limits),
        Err(CodecError::TooLarge { max: 1024, .. })
    ));
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
enum Command {
    Stop,
    Resize(u32),
    Move(i64, i64),
    Rename { from: String, to: Option<String> },
}

#[derive(Serialize, Deserialize, PartialEq, Clone)]
struct Job {
    id: u64,
    owner: Pid,
    reply_to: Option<Ref>,
    commands: Vec<Command>,
    labels: BTreeMap<String, Vec<u8>>,
    counters: HashMap<i32, f64>,
    payload: Term,
    blob: Binary,
    children: Vec<Job>,
}

/// `Binary` has no `Debug`, so `Job` cannot derive one; show its term instead.
impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", to_term(self))
    }
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Stop),
        any::<u32>().prop_map(Command::Resize),
        (any::<i64>(), any::<i64>()).prop_map(|(x, y)| Command::Move(x, y)),
        (".{0,6}", prop::option::of(".{0,6}")).prop_map(|(from, to)| Command::Rename { from, to }),
    ]
}

fn job() -> impl Strategy<Value = Job> {
    let leaf = (
        0..=i64::MAX as u64,
        node_id(),
        prop::option::of(node_id()),
        vec(command(), 0..4),
        btree_map(".{0,4}", vec(any::<u8>(), 0..4), 0..3),
        prop::collection::hash_map(
            any::<i32>(),
            any::<f64>().prop_filter("NaN", |x| !x.is_nan()),
            0..3,
        ),
        term(),
        vec(any::<u8>(), 0..8),
    )
        .prop_map(
            |(id, (n, c, i), r, commands, labels, counters, payload, blob)| Job {
                id,
                owner: Pid::from_parts(n, c, i),
                reply_to: r.map(|(n, c, i)| Ref::from_parts(n, c, i)),
                commands,
                labels,
                counters,
                payload,
                blob: Binary::from(blob),
                children: Vec::new(),
            },
        );
    leaf.prop_recursive(2, 6, 3, |inner| {
        (inner.clone(), vec(inner, 0..3)).prop_map(|(mut job, children)| {
            job.children = children;
            job
        })
    })
}

proptest! {
    #[test]
    fn derived_types_round_trip_through_terms(j in job()) {
        let t = to_term(&j).unwrap();
        let back: Job = from_term(&t).unwrap();
        prop_assert_eq!(to_term(&back).unwrap(), t);
        prop_assert!(back == j);
    }
}
