//! Unit tests of the wire module: splitting, fragmentation, pooled buffers.
use super::*;
use crate::frame::{FrameDecoder, write_frame};
use crate::outbound::Outbound;

fn pid(n: u64) -> Pid {
    Pid::from_parts(Atom::new("w@localhost"), 1, n)
}

#[test]
fn large_and_small_messages_survive_fragmentation() {
    let big = Wire::Signal {
        to: ToPid::of(pid(1)),
        signal: Signal::Message(Term::binary(&vec![7u8; 300_000])),
    };
    let small = Wire::Signal {
        to: ToPid::of(pid(2)),
        signal: Signal::Message(Term::Int(5)),
    };
    let mut out = Outbound::new();
    out.push(10, encode(&big).unwrap());
    out.push(11, encode(&small).unwrap());
    let mut wire = Vec::new();
    assert!(out.flush(&mut wire).unwrap());
    let mut dec = FrameDecoder::new(FRAGMENT + 64);
    dec.push(&wire);
    let mut re = Reassembly::new(1 << 20, 4);
    let mut got = Vec::new();
    while let Some(frame) = dec.next_frame().unwrap() {
        if let Some(m) = re.on_frame(frame).unwrap() {
            got.push(m);
        }
    }
    // The small message (another sender) overtakes the fragmented one.
    assert_eq!(got, vec![small, big]);
}

#[test]
fn a_plain_message_splits_into_destination_and_term() {
    let term = Term::tuple(vec![Term::atom("msg"), Term::Int(-7), Term::Pid(pid(9))]);
    let msg = Wire::Signal {
        to: ToPid::of(pid(3)),
        signal: Signal::Message(term.clone()),
    };
    let bytes = encode(&msg).unwrap();
    let (to, rest) = split_message(&bytes).expect("a plain message");
    assert_eq!(to, ToPid::of(pid(3)));
    assert_eq!(to.on(Atom::new("w@localhost")), pid(3));
    assert_eq!(crate::term::codec::decode_embedded(rest), Ok(term));
    // Anything else is decoded whole.
    let others = [
        Wire::Tick,
        Wire::Signal {
            to: ToPid::of(pid(3)),
            signal: Signal::Link { from: pid(4) },
        },
        Wire::RegSend {
            from: pid(4),
            name: Atom::new("x"),
            msg: Term::Int(1),
        },
        Wire::Peers { nodes: vec![] },
    ];
    for other in others {
        assert_eq!(split_message(&encode(&other).unwrap()), None, "{other:?}");
    }
    assert_eq!(split_message(&[]), None);
    assert_eq!(split_message(&[1, 0xff]), None);
}

#[test]
fn large_binaries_share_a_pooled_buffer_used_again_once_free() {
    let bin = |fill: u8| Term::binary(&vec![fill; 64 * 1024]);
    let frame = |fill: u8| {
        let msg = Wire::Signal {
            to: ToPid::of(pid(1)),
            signal: Signal::Message(Term::tuple(vec![Term::atom("msg"), bin(fill)])),
        };
        let mut f = vec![KIND_WHOLE];
        f.extend(encode(&msg).unwrap());
        f
    };
    let payload = |w: Wire| match w {
        Wire::Signal {
            signal: Signal::Message(Term::Tuple(t)),
            ..
        } => match &t[1] {
            Term::Binary(b) => b.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let mut re = Reassembly::new(1 << 20, 4);
    let first = payload(re.on_frame(&frame(1)).unwrap().unwrap());
    assert_eq!(first.as_slice(), &vec![1u8; 64 * 1024][..]);
    let at = first.as_slice().as_ptr();
    // Still held: the next message gets another buffer, and both stay right.
    let second = payload(re.on_frame(&frame(2)).unwrap().unwrap());
    assert_ne!(second.as_slice().as_ptr(), at);
    assert_eq!(first.as_slice(), &vec![1u8; 64 * 1024][..]);
    assert_eq!(second.as_slice(), &vec![2u8; 64 * 1024][..]);
    // Let go: its buffer is used again, without a copy being made of it elsewhere.
    drop(first);
    let third = payload(re.on_frame(&frame(3)).unwrap().unwrap());
    assert_eq!(third.as_slice().as_ptr(), at);
    assert_eq!(third.as_slice(), &vec![3u8; 64 * 1024][..]);
    assert_eq!(second.as_slice(), &vec![2u8; 64 * 1024][..]);
    // A small binary is a copy of its own (it would pin the whole frame).
    let small = Wire::Signal {
        to: ToPid::of(pid(1)),
        signal: Signal::Message(Term::tuple(vec![
            Term::binary(&[5u8; 100]),
            Term::binary(&vec![6u8; 4000]),
        ])),
    };
    let mut f = vec![KIND_WHOLE];
    f.extend(encode(&small).unwrap());
    assert_eq!(re.on_frame(&f).unwrap(), Some(small));
}

#[test]
fn a_small_message_is_judged_small_and_a_large_one_not() {
    let msg = |t: Term| Wire::Signal {
        to: ToPid::of(pid(1)),
        signal: Signal::Message(t),
    };
    let small = msg((Term::atom("msg"), 42).into());
    assert!(likely_small(&small, 1024));
    assert!(encode(&small).unwrap().len() <= 1024);
    assert!(!likely_small(&msg(Term::binary(&[0; 2000])), 1024));
    let many = Term::list(vec![Term::Int(1); 2000]);
    assert!(!likely_small(&msg(many), 1024));
    assert!(!likely_small(&msg(Term::list(vec![])), 1));
    assert!(likely_small(&Wire::Tick, 1024));
    assert!(!likely_small(&Wire::Peers { nodes: vec![] }, 1024));
}

#[test]
fn bad_frames_are_errors() {
    let mut re = Reassembly::new(1000, 1);
    assert!(re.on_frame(&[]).is_err());
    assert!(re.on_frame(&[9]).is_err());
    assert!(re.on_frame(&[KIND_WHOLE, 200, 200]).is_err());
    let mut first = vec![KIND_FIRST];
    first.extend_from_slice(&1u64.to_le_bytes());
    first.extend_from_slice(&5000u64.to_le_bytes());
    assert_eq!(
        re.on_frame(&first),
        Err(WireError::TooLarge {
            size: 5000,
            max: 1000
        })
    );
    let mut more = vec![KIND_MORE];
    more.extend_from_slice(&9u64.to_le_bytes());
    assert!(re.on_frame(&more).is_err());
    let mut frame = Vec::new();
    write_frame(&mut frame, b"x");
    assert_eq!(frame.len(), 5);
}
