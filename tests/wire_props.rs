//! Property tests of the node layer's framing and fragmentation (`node::frame`,
//! `node::outbound`, `node::wire`): frames come out whole however the stream is cut, every
//! sender's messages arrive whole and in order through fragmentation and partial writes,
//! reassembly of arbitrary frames keeps to its limits, and every kind of message comes
//! back from its bytes, whose damaged forms are refused or read consistently (the exact
//! bytes are pinned in `node_wire_golden.rs`). (The term codec and the
//! handshake have their own property tests: `term_codec.rs`, `node_handshake_props.rs`.)

use std::collections::HashMap;
use std::io::{self, Write};

use oxbeam::node::frame::{FrameDecoder, FrameError, write_frame};
use oxbeam::node::outbound::Outbound;
use oxbeam::node::wire::{
    self, FRAGMENT, KIND_FIRST, KIND_MORE, KIND_WHOLE, Reassembly, Wire, WireError,
};
use oxbeam::rt::Signal;
use oxbeam::{Atom, Pid, Ref, Term, term};
use proptest::collection::vec;
use proptest::prelude::*;

/// Pushes `stream` into `d` in pieces of the given sizes (the rest at once), taking out
/// every frame as soon as it is complete.
fn decode_in_pieces(
    d: &mut FrameDecoder,
    stream: &[u8],
    pieces: &[usize],
) -> Result<Vec<Vec<u8>>, FrameError> {
    let mut out = Vec::new();
    let mut at = 0;
    for &n in pieces.iter().chain(std::iter::once(&stream.len())) {
        let end = (at + n).min(stream.len());
        d.push(&stream[at..end]);
        at = end;
        while let Some(f) = d.next_frame()? {
            out.push(f.to_vec());
        }
    }
    Ok(out)
}

/// A socket that takes at most `chunk` bytes per write and is full every other call.
struct Choppy {
    out: Vec<u8>,
    chunk: usize,
    full: bool,
}

impl Write for Choppy {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.full = !self.full;
        if self.full {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.chunk);
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn pid(n: u64) -> Pid {
    Pid::from_parts(Atom::new("wire@localhost"), 1, n)
}

/// Message `k` of sender `s`, of about `size` bytes (some fragmented: up to 3 fragments).
fn message(s: u64, k: usize, size: usize) -> Wire {
    let body: Vec<u8> = (0..size).map(|i| (i + k) as u8).collect();
    Wire::Signal {
        to: wire::ToPid::of(pid(s)),
        signal: Signal::Message(term!({(k as i64), (Term::binary(&body))})),
    }
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0..200usize,
        1 => (FRAGMENT - 40)..(FRAGMENT + 40),
        1 => 0..3 * FRAGMENT,
    ]
}

/// A simple model of `Reassembly`, stopping at its first error as a connection does.
struct Model {
    partial: HashMap<u64, (u64, Vec<u8>)>,
    max_message: u64,
    max_partial: usize,
}

impl Model {
    fn on_frame(&mut self, frame: &[u8]) -> Result<Option<Wire>, &'static str> {
        let u64_at = |at: usize| {
            frame
                .get(at..at + 8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
                .ok_or("malformed")
        };
        let id = match frame.first() {
            None => return Err("malformed"),
            Some(&KIND_WHOLE) => return wire::decode(&frame[1..]).map(Some).map_err(kind),
            Some(&KIND_FIRST) => {
                let (id, total) = (u64_at(1)?, u64_at(9)?);
                if total > self.max_message {
                    return Err("too large");
                }
                if self.partial.len() >= self.max_partial {
                    return Err("too many");
                }
                self.partial.insert(id, (total, frame[17..].to_vec()));
                id
            }
            Some(&KIND_MORE) => {
                let id = u64_at(1)?;
                let (_, buf) = self.partial.get_mut(&id).ok_or("malformed")?;
                buf.extend_from_slice(&frame[9..]);
                id
            }
            Some(_) => return Err("malformed"),
        };
        let (total, buf) = &self.partial[&id];
        match (buf.len() as u64).cmp(total) {
            std::cmp::Ordering::Less => Ok(None),
            std::cmp::Ordering::Greater => Err("malformed"),
            std::cmp::Ordering::Equal => {
                let (_, buf) = self.partial.remove(&id).expect("present");
                wire::decode(&buf).map(Some).map_err(kind)
            }
        }
    }
}

fn kind(e: WireError) -> &'static str {
    match e {
        WireError::Malformed(_) => "malformed",
        WireError::TooLarge { .. } => "too large",
        WireError::TooManyFragmented(_) => "too many",
    }
}

/// Frames a fuzzer of reassembly would send: pieces of real messages under a few ids,
/// with announced totals right, short or long, and some junk.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    let id = 0..4u64;
    prop_oneof![
        2 => (0..6usize, 0..3usize).prop_map(|(k, s)| {
            let mut f = vec![KIND_WHOLE];
            f.extend(wire::encode(&message(s as u64, k, k * 7)).expect("encode"));
            f
        }),
        3 => (id.clone(), 0..6usize, -2..3i64, 0..40usize).prop_map(|(id, k, skew, cut)| {
            let bytes = wire::encode(&message(id, k, 30)).expect("encode");
            let mut f = vec![KIND_FIRST];
            f.extend(id.to_le_bytes());
            f.extend((bytes.len() as i64 + skew).max(0).to_le_bytes());
            f.extend(&bytes[..cut.min(bytes.len())]);
            f
        }),
        3 => (id, 0..6usize, 0..40usize, 0..40usize).prop_map(|(id, k, from, len)| {
            let bytes = wire::encode(&message(id, k, 30)).expect("encode");
            let from = from.min(bytes.len());
            let mut f = vec![KIND_MORE];
            f.extend(id.to_le_bytes());
            f.extend(&bytes[from..(from + len).min(bytes.len())]);
            f
        }),
        1 => vec(any::<u8>(), 0..24),
    ]
}

fn any_pid() -> impl Strategy<Value = Pid> {
    ("[a-z]{1,5}@[a-z]{1,5}", any::<u32>(), any::<u64>())
        .prop_map(|(n, c, i)| Pid::from_parts(Atom::new(&n), c, i))
}

fn any_ref() -> impl Strategy<Value = Ref> {
    any_pid().prop_map(|p| Ref::from_parts(p.node(), p.creation(), p.id()))
}

fn any_term() -> impl Strategy<Value = Term> {
    let leaf = prop_oneof![
        "[a-z]{0,6}".prop_map(|a| Term::atom(&a)),
        any::<i64>().prop_map(Term::Int),
        vec(any::<u8>(), 0..12).prop_map(|b| Term::binary(&b)),
        any_pid().prop_map(Term::Pid),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| vec(inner, 0..4).prop_map(Term::tuple))
}

fn any_to() -> impl Strategy<Value = wire::ToPid> {
    (any::<u32>(), any::<u64>()).prop_map(|(creation, id)| wire::ToPid { creation, id })
}

/// A message of any kind (every tag of the table).
fn any_wire() -> impl Strategy<Value = Wire> {
    let signal = prop_oneof![
        any_term().prop_map(Signal::Message),
        (any_pid(), any_term(), any::<bool>()).prop_map(|(from, reason, linked)| Signal::Exit {
            from,
            reason,
            linked
        }),
        any_pid().prop_map(|from| Signal::Link { from }),
        any_pid().prop_map(|from| Signal::Unlink { from }),
        (any_pid(), any_ref()).prop_map(|(from, reference)| Signal::Monitor { from, reference }),
        (any_pid(), any_ref()).prop_map(|(from, reference)| Signal::Demonitor { from, reference }),
        (any_pid(), any_ref(), any_term()).prop_map(|(from, reference, reason)| Signal::Down {
            from,
            reference,
            reason
        }),
        (any_pid(), any_ref()).prop_map(|(from, reference)| Signal::Info { from, reference }),
        (any_pid(), "[a-z]{1,8}", any_ref()).prop_map(|(from, name, reference)| {
            Signal::MonitorName {
                from,
                name: Atom::new(&name),
                reference,
            }
        }),
        (any_pid(), "[a-z]{1,8}", any_ref()).prop_map(|(from, name, reference)| {
            Signal::DemonitorName {
                from,
                name: Atom::new(&name),
                reference,
            }
        }),
    ];
    prop_oneof![
        Just(Wire::Tick),
        (any_to(), signal).prop_map(|(to, signal)| Wire::Signal { to, signal }),
        (any_pid(), "[a-z]{1,8}", any_term()).prop_map(|(from, name, msg)| Wire::RegSend {
            from,
            name: Atom::new(&name),
            msg
        }),
        (
            any_ref(),
            any_pid(),
            ("[a-z]{1,4}", "[a-z]{1,4}"),
            vec(any_term(), 0..3),
            any::<(bool, bool)>(),
            proptest::option::of(any_pid()),
        )
            .prop_map(
                |(reference, from, (m, f), args, (link, monitor), group_leader)| {
                    Wire::SpawnRequest {
                        reference,
                        from,
                        module: Atom::new(&m),
                        function: Atom::new(&f),
                        args,
                        link,
                        monitor,
                        group_leader,
                    }
                }
            ),
        (
            any_ref(),
            any_to(),
            prop_oneof![any_pid().prop_map(Ok), any_term().prop_map(Err)]
        )
            .prop_map(|(reference, to, result)| Wire::SpawnReply {
                reference,
                to,
                result
            }),
        vec("[a-z]{1,5}@[a-z]{1,5}", 0..4).prop_map(|nodes| Wire::Peers { nodes }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn frames_come_out_whole_however_the_stream_is_cut(
        payloads in vec(vec(any::<u8>(), 0..300), 0..8),
        pieces in vec(0..64usize, 0..40),
    ) {
        let mut stream = Vec::new();
        for p in &payloads {
            write_frame(&mut stream, p);
        }
        let mut d = FrameDecoder::new(300);
        prop_assert_eq!(decode_in_pieces(&mut d, &stream, &pieces), Ok(payloads));
        prop_assert_eq!(d.buffered(), 0);
    }

    /// A frame over the limit is refused as soon as its length is read (nothing of it is
    /// buffered first), and stays refused whatever follows.
    #[test]
    fn an_oversized_frame_is_refused_at_its_header(
        before in vec(vec(any::<u8>(), 0..50), 0..4),
        max in 0..100usize,
        over in 1..u32::MAX as usize - 100,
        pieces in vec(1..8usize, 0..20),
    ) {
        let len = max + over;
        let mut stream = Vec::new();
        for p in before.iter().filter(|p| p.len() <= max) {
            write_frame(&mut stream, p);
        }
        let whole = stream.len();
        stream.extend_from_slice(&(len as u32).to_be_bytes());
        let mut d = FrameDecoder::new(max);
        let got = decode_in_pieces(&mut d, &stream, &pieces);
        prop_assert_eq!(got, Err(FrameError::TooLarge { len, max }));
        // The error is sticky: the connection is closed, nothing more comes out.
        d.push(&[0; 16]);
        prop_assert_eq!(d.next_frame(), Err(FrameError::TooLarge { len, max }));
        prop_assert!(d.buffered() >= stream.len() - whole);
    }

    /// Several senders' messages, some fragmented, through the outbound queue, a socket
    /// that takes a few bytes at a time, the frame decoder and reassembly: each sender's
    /// messages arrive whole, once, in the order sent.
    #[test]
    fn every_senders_messages_arrive_whole_and_in_order(
        sends in vec((0..3u64, size()), 1..8),
        chunk in prop_oneof![1..64usize, 4096..300_000usize],
    ) {
        let mut out = Outbound::new();
        let mut sent: HashMap<u64, Vec<Wire>> = HashMap::new();
        for (k, &(s, size)) in sends.iter().enumerate() {
            let m = message(s, k, size);
            out.push(s, wire::encode(&m).expect("encode"));
            sent.entry(s).or_default().push(m);
        }
        // At most about a thousand writes per case, however small the pieces.
        let total: usize = sent.values().flatten().map(|m| wire::encode(m).expect("encode").len()).sum();
        let chunk = chunk.max(total / 1000);
        let mut sock = Choppy { out: Vec::new(), chunk, full: false };
        let mut rounds = 0;
        while !out.flush(&mut sock).expect("flush") {
            rounds += 1;
            prop_assert!(rounds < 1_000_000, "flush makes no progress");
        }
        prop_assert!(out.is_empty());
        let mut d = FrameDecoder::new(FRAGMENT + 1024);
        let frames = decode_in_pieces(&mut d, &sock.out, &vec![chunk; sock.out.len() / chunk])
            .expect("frames");
        let mut re = Reassembly::new(1 << 20, 4);
        let mut got: HashMap<u64, Vec<Wire>> = HashMap::new();
        for f in frames {
            if let Some(m) = re.on_frame(&f).expect("reassembly") {
                let Wire::Signal { to, .. } = &m else { panic!("{m:?}") };
                got.entry(to.id).or_default().push(m);
            }
        }
        prop_assert_eq!(got, sent);
    }

    /// Reassembly of arbitrary frames agrees with a simple model: the same messages, the
    /// same errors (too large, too many at once, malformed) at the same frame.
    #[test]
    fn reassembly_keeps_its_limits(
        frames in vec(frame(), 0..24),
        max_message in 0..120u64,
        max_partial in 1..3usize,
    ) {
        let mut re = Reassembly::new(max_message as usize, max_partial);
        let mut model = Model { partial: HashMap::new(), max_message, max_partial };
        for f in &frames {
            let want = model.on_frame(f);
            let got = re.on_frame(f).map_err(kind);
            prop_assert_eq!(&got, &want, "frame {:?}", f);
            if got.is_err() {
                break;
            }
        }
    }
    /// Every message comes back from its bytes; with bytes changed or cut off, the
    /// decoder never panics, refuses or gives a message that encodes back to a message
    /// that decodes to itself, and its shortcut for plain messages agrees with it.
    #[test]
    fn every_message_comes_back_and_damage_is_caught(
        msg in any_wire(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = wire::encode(&msg).expect("encode");
        prop_assert_eq!(wire::decode(&bytes), Ok(msg.clone()));
        if let Some((to, _)) = wire::split_message(&bytes) {
            let plain = matches!(&msg, Wire::Signal { to: t, signal: Signal::Message(_) } if *t == to);
            prop_assert!(plain, "split {:?} from {:?}", to, msg);
        }
        let mut damaged = bytes.clone();
        for (at, b) in &flips {
            let i = at.index(damaged.len());
            damaged[i] = *b;
        }
        damaged.truncate(cut.index(damaged.len() + 1));
        match wire::decode(&damaged) {
            Ok(got) => {
                let again = wire::encode(&got).expect("a decoded message encodes");
                prop_assert_eq!(wire::decode(&again), Ok(got.clone()));
                if let Some((to, _)) = wire::split_message(&damaged) {
                    let agrees = matches!(&got, Wire::Signal { to: t, signal: Signal::Message(_) } if *t == to);
                    prop_assert!(agrees, "split {:?}, decoded {:?}", to, got);
                }
            }
            Err(WireError::Malformed(_)) => {}
            Err(e) => prop_assert!(false, "{e:?}"),
        }
    }
}
