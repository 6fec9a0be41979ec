//! The node protocol's bytes, pinned: every kind of message after the handshake
//! (`node::wire`, each tag of its table), the frame kinds, and every handshake message,
//! as exact hex, both ways (encoding gives these bytes, these bytes decode to the
//! message). A test here that fails means the protocol changed: if that is meant,
//! update the byte table in `node::wire`'s docs (or `node::handshake`'s), bump
//! `node::handshake::MAX_VERSION`, and only then these bytes.

use oxbeam::node::frame::{FrameDecoder, HEADER};
use oxbeam::node::handshake::{
    Acceptor, HandshakeError, HandshakeMsg, Identity, MAX_VERSION, MIN_VERSION, RefuseReason, Step,
};
use oxbeam::node::outbound::Outbound;
use oxbeam::node::wire::{
    self, FRAGMENT, KIND_FIRST, KIND_MORE, KIND_WHOLE, Reassembly, Tag, ToPid, Wire,
};
use oxbeam::rt::Signal;
use oxbeam::{Atom, Pid, Ref, Term};

/// `"00 0a ff"` as bytes.
fn unhex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|_| panic!("bad hex {b:?}")))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

// The parts that recur below, as bytes:
/// `to`: creation 3, process 300.
const TO: &str = "03 ac 02";
/// The pid `a@h`, creation 1, number 2: node name (length 3, "a@h"), creation, number.
const PID: &str = "03 61 40 68 01 02";
/// The reference `a@h`, creation 1, number 300.
const REF: &str = "03 61 40 68 01 ac 02";
/// The term `{msg, 42}`: tuple of 2, atom "msg", integer 42 (zigzag 84).
const MSG_42: &str = "07 02 00 03 6d 73 67 01 54";
/// The atom `kill` as a term.
const KILL: &str = "00 04 6b 69 6c 6c";

fn to() -> ToPid {
    ToPid {
        creation: 3,
        id: 300,
    }
}

fn pid() -> Pid {
    Pid::from_parts(Atom::new("a@h"), 1, 2)
}

fn reference() -> Ref {
    Ref::from_parts(Atom::new("a@h"), 1, 300)
}

fn signal(signal: Signal) -> Wire {
    Wire::Signal { to: to(), signal }
}

/// Every kind of message, with its bytes.
fn golden() -> Vec<(Wire, String)> {
    let msg_42: Term = (Term::atom("msg"), 42).into();
    vec![
        (Wire::Tick, "00".into()),
        (signal(Signal::Message(msg_42)), format!("01 {TO} {MSG_42}")),
        (
            signal(Signal::Exit {
                from: pid(),
                reason: Term::atom("kill"),
                linked: false,
            }),
            format!("02 {TO} {PID} {KILL}"),
        ),
        (
            signal(Signal::Exit {
                from: pid(),
                reason: Term::atom("kill"),
                linked: true,
            }),
            format!("03 {TO} {PID} {KILL}"),
        ),
        (
            signal(Signal::Link { from: pid() }),
            format!("04 {TO} {PID}"),
        ),
        (
            signal(Signal::Unlink { from: pid() }),
            format!("05 {TO} {PID}"),
        ),
        (
            signal(Signal::Monitor {
                from: pid(),
                reference: reference(),
            }),
            format!("06 {TO} {PID} {REF}"),
        ),
        (
            signal(Signal::Demonitor {
                from: pid(),
                reference: reference(),
            }),
            format!("07 {TO} {PID} {REF}"),
        ),
        (
            signal(Signal::Down {
                from: pid(),
                reference: reference(),
                reason: Term::atom("noproc"),
            }),
            // ... then the atom `noproc`.
            format!("08 {TO} {PID} {REF} 00 06 6e 6f 70 72 6f 63"),
        ),
        (
            signal(Signal::Info {
                from: pid(),
                reference: reference(),
            }),
            format!("09 {TO} {PID} {REF}"),
        ),
        (
            Wire::RegSend {
                from: pid(),
                name: Atom::new("counter"),
                msg: Term::Int(-1),
            },
            // The name (length 7, "counter"), then the integer -1 (zigzag 1).
            format!("0a {PID} 07 63 6f 75 6e 74 65 72 01 01"),
        ),
        (
            Wire::SpawnRequest {
                reference: reference(),
                from: pid(),
                module: Atom::new("m"),
                function: Atom::new("f"),
                args: vec![Term::str("x"), Term::Int(1)],
                link: true,
                monitor: false,
                group_leader: Some(Pid::from_parts(Atom::new("b@h"), 2, 9)),
            },
            // Module "m", function "f", link, no monitor, a group leader (the pid b@h,
            // creation 2, number 9), 2 args: the string "x", the integer 1.
            format!("0b {REF} {PID} 01 6d 01 66 01 00 01 03 62 40 68 02 09 02 04 01 78 01 02"),
        ),
        (
            Wire::SpawnRequest {
                reference: reference(),
                from: pid(),
                module: Atom::new("m"),
                function: Atom::new("f"),
                args: vec![],
                link: false,
                monitor: true,
                group_leader: None,
            },
            // No link, monitor, no group leader, no args.
            format!("0b {REF} {PID} 01 6d 01 66 00 01 00 00"),
        ),
        (
            Wire::SpawnReply {
                reference: reference(),
                to: to(),
                result: Ok(Pid::from_parts(Atom::new("a@h"), 1, 7)),
            },
            format!("0c {TO} {REF} 00 03 61 40 68 01 07"),
        ),
        (
            Wire::SpawnReply {
                reference: reference(),
                to: to(),
                result: Err(Term::atom("undef")),
            },
            format!("0c {TO} {REF} 01 00 05 75 6e 64 65 66"),
        ),
        (
            Wire::Peers {
                nodes: vec!["b@h".into(), "c@h".into()],
            },
            "0d 02 03 62 40 68 03 63 40 68".into(),
        ),
        (Wire::Peers { nodes: vec![] }, "0d 00".into()),
        // A monitor of the name `counter` on the receiving node: `to` is the node
        // itself (creation 0, number 0), then the watcher, the name (length 7,
        // "counter"), the reference.
        (
            Wire::Signal {
                to: ToPid { creation: 0, id: 0 },
                signal: Signal::MonitorName {
                    from: pid(),
                    name: Atom::new("counter"),
                    reference: reference(),
                },
            },
            format!("0e 00 00 {PID} 07 63 6f 75 6e 74 65 72 {REF}"),
        ),
        (
            Wire::Signal {
                to: ToPid { creation: 0, id: 0 },
                signal: Signal::DemonitorName {
                    from: pid(),
                    name: Atom::new("counter"),
                    reference: reference(),
                },
            },
            format!("0f 00 00 {PID} 07 63 6f 75 6e 74 65 72 {REF}"),
        ),
        // The widest `to`: varints of 5 and 10 bytes.
        (
            Wire::Signal {
                to: ToPid {
                    creation: u32::MAX,
                    id: u64::MAX,
                },
                signal: Signal::Link { from: pid() },
            },
            format!("04 ff ff ff ff 0f ff ff ff ff ff ff ff ff ff 01 {PID}"),
        ),
    ]
}

#[test]
fn every_message_kind_encodes_and_decodes_to_its_pinned_bytes() {
    for (msg, bytes) in golden() {
        let want = unhex(&bytes);
        let got = wire::encode(&msg).expect("encodes");
        assert_eq!(hex(&got), hex(&want), "the bytes of {msg:?}");
        assert_eq!(wire::decode(&want), Ok(msg.clone()), "{bytes} decodes");
        assert_eq!(Tag::of(&msg).map(|t| t as u8), Ok(want[0]));
    }
}

#[test]
fn the_tags_are_the_table_and_every_one_is_pinned() {
    for (i, tag) in Tag::ALL.iter().enumerate() {
        assert_eq!(*tag as u8 as usize, i, "{tag:?}");
        assert_eq!(Tag::from_byte(i as u8), Some(*tag));
    }
    assert_eq!(Tag::from_byte(Tag::ALL.len() as u8), None);
    let pinned: std::collections::HashSet<u8> =
        golden().iter().map(|(_, bytes)| unhex(bytes)[0]).collect();
    let all: std::collections::HashSet<u8> = Tag::ALL.iter().map(|t| *t as u8).collect();
    assert_eq!(pinned, all, "a golden message for every tag");
}

#[test]
fn a_plain_message_frame_is_the_example_of_the_docs() {
    let msg = signal(Signal::Message((Term::atom("msg"), 42).into()));
    let framed = wire::encode_framed(&msg, Vec::new()).expect("encodes");
    let want = unhex(&format!("00 00 00 0e 00 01 {TO} {MSG_42}"));
    assert_eq!(hex(&framed), hex(&want));
    assert_eq!(framed[HEADER], KIND_WHOLE);
    // Its destination and term are read without decoding the term.
    let (dest, term) = wire::split_message(&framed[HEADER + 1..]).expect("a Send");
    assert_eq!(dest, to());
    assert_eq!(hex(term), hex(&unhex(MSG_42)));
}

#[test]
fn a_large_message_goes_in_pinned_fragment_frames() {
    // A binary of FRAGMENT bytes: the message is 8 bytes longer, so it takes two
    // fragments.
    let msg = signal(Signal::Message(Term::binary(&vec![0xab; FRAGMENT])));
    let body = wire::encode(&msg).expect("encodes");
    // Send, to, binary (tag 3), length 131072 as a varint (80 80 08), the bytes.
    assert_eq!(hex(&body[..8]), format!("01 {TO} 03 80 80 08"));
    assert_eq!(body.len(), FRAGMENT + 8);
    let mut out = Outbound::new();
    out.push(0, body.clone());
    let mut stream = Vec::new();
    assert!(out.flush(&mut stream).expect("flush"));
    // First fragment: length 1 + 16 + FRAGMENT (00 02 00 11), KIND_FIRST, message
    // id 1 and total length (u64, little-endian), the first FRAGMENT bytes.
    let first = "00 02 00 11 01 01 00 00 00 00 00 00 00 08 00 02 00 00 00 00 00";
    assert_eq!(hex(&stream[..21]), first);
    assert_eq!(stream[4], KIND_FIRST);
    assert_eq!(&stream[21..21 + FRAGMENT], &body[..FRAGMENT]);
    // Then the rest: length 1 + 8 + 8, KIND_MORE, message id 1, the last 8 bytes.
    let more = &stream[21 + FRAGMENT..];
    assert_eq!(
        hex(more),
        "00 00 00 11 02 01 00 00 00 00 00 00 00 ab ab ab ab ab ab ab ab"
    );
    assert_eq!(more[4], KIND_MORE);
    // And they make the message again.
    let mut frames = FrameDecoder::new(FRAGMENT + 64);
    frames.push(&stream);
    let mut re = Reassembly::new(1 << 20, 1);
    let mut got = None;
    while let Some(f) = frames.next_frame().expect("frames") {
        got = re.on_frame(f).expect("reassembles").or(got);
    }
    assert_eq!(got, Some(msg));
}

#[test]
fn bytes_off_the_table_are_refused() {
    for (bytes, why) in [
        ("", "empty message"),
        ("10", "unknown message tag 16"),
        ("ff", "unknown message tag 255"),
        ("00 00", "1 trailing bytes"),
        (&format!("04 {TO}")[..], "Link message: truncated"),
        ("01 83 00 01 00 01 78", "not in its shortest form"),
        ("01 80 80 80 80 10 01", "does not fit in 32 bits"),
        (
            &format!("0b {REF} {PID} 01 6d 01 66 02 00 00")[..],
            "flag byte 2",
        ),
        (&format!("0c {TO} {REF} 02")[..], "spawn result 2"),
        ("0d 05 01 61", "count 5 exceeds the 2 bytes left"),
        ("0d 01 02 ff fe", "not UTF-8"),
        (
            &format!("0e 00 00 {PID} 07 63 6f 75 6e 74")[..],
            "MonitorName message: count 7 exceeds the 5 bytes left",
        ),
    ] {
        match wire::decode(&unhex(bytes)) {
            Err(wire::WireError::Malformed(m)) => assert!(m.contains(why), "{bytes}: {m}"),
            other => panic!("{bytes}: {other:?}"),
        }
    }
}

// The handshake: postcard's encoding of `HandshakeMsg` (variant index, then the fields;
// integers as varints, a flag as one byte, nonces and MACs as their 32 raw bytes).

fn n32(byte: u8) -> String {
    vec![format!("{byte:02x}"); 32].join(" ")
}

fn handshake_golden() -> Vec<(HandshakeMsg, String)> {
    let refuse = |reason| HandshakeMsg::Refuse { reason };
    vec![
        (
            HandshakeMsg::Hello {
                min_version: 2,
                max_version: 3,
                name: "a@h".into(),
                creation: 300,
                hidden: false,
                nonce_i: [0x11; 32],
            },
            format!("00 02 03 03 61 40 68 ac 02 00 {}", n32(0x11)),
        ),
        (
            HandshakeMsg::Challenge {
                version: 3,
                name: "b@h".into(),
                creation: 1,
                hidden: true,
                nonce_a: [0x22; 32],
            },
            format!("01 03 03 62 40 68 01 01 {}", n32(0x22)),
        ),
        (
            HandshakeMsg::Proof { mac: [0x33; 32] },
            format!("02 {}", n32(0x33)),
        ),
        (
            HandshakeMsg::Accept { mac: [0x44; 32] },
            format!("03 {}", n32(0x44)),
        ),
        (refuse(RefuseReason::Version), "04 00".into()),
        (refuse(RefuseReason::BadCookie), "04 01".into()),
        (refuse(RefuseReason::Duplicate), "04 02".into()),
        (refuse(RefuseReason::Simultaneous), "04 03".into()),
        (
            refuse(RefuseReason::NotAllowed("no".into())),
            "04 04 02 6e 6f".into(),
        ),
    ]
}

#[test]
fn every_handshake_message_encodes_and_decodes_to_its_pinned_bytes() {
    for (msg, bytes) in handshake_golden() {
        let want = unhex(&bytes);
        assert_eq!(hex(&msg.encode()), hex(&want), "the bytes of {msg:?}");
        assert_eq!(HandshakeMsg::decode(&want), Ok(msg), "{bytes} decodes");
    }
}

/// A node of an older protocol is told so in the handshake, not misread after it.
#[test]
fn a_version_2_node_is_refused_for_its_version() {
    assert_eq!((MIN_VERSION, MAX_VERSION), (5, 5));
    // The Hello of a version 2 node, as it sends it (the Hello keeps its layout).
    let old_hello = unhex(&format!("00 02 02 03 61 40 68 01 00 {}", n32(0x55)));
    let hello = HandshakeMsg::decode(&old_hello).expect("an old Hello still decodes");
    let me = Identity {
        name: "b@h".into(),
        creation: 1,
        hidden: false,
    };
    let mut acceptor = Acceptor::new(me, b"cookie");
    let Step::SendAndFail(refusal, error) = acceptor.on_message(hello) else {
        panic!("an old node is refused at once")
    };
    assert_eq!(hex(&refusal.encode()), "04 00");
    assert_eq!(error, HandshakeError::NoCommonVersion);
    assert_eq!(
        HandshakeError::Refused(RefuseReason::Version).to_string(),
        "handshake refused: no protocol version in common"
    );
}
