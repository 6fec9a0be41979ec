//! cd fuzz && cargo run --example seeds
//!
//! Writes the hand-made starting inputs of each target to `corpus/<target>/seed-*`: real
//! messages of each protocol, so the fuzzer starts from valid input and mutates inward.
//! (The rest of each corpus is what the fuzzer found, minimized with `cargo fuzz cmin`.)

use std::fs;
use std::path::Path;

use oxbeam::node::epmd::NodeEntry;
use oxbeam::node::epmd::codec::*;
use oxbeam::node::frame::write_frame;
use oxbeam::node::handshake::RefuseReason;
use oxbeam::node::wire::{self, KIND_FIRST, KIND_MORE, KIND_WHOLE, ToPid, Wire};
use oxbeam::rt::Signal;
use oxbeam::term::codec::{Limits, encode};
use oxbeam::{Atom, Pid, Ref, Term, term};

fn save(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).expect("create the corpus folder");
    fs::write(dir.join(format!("seed-{name}")), bytes).expect("write a seed");
}

fn pid(n: u64) -> Pid {
    Pid::from_parts(Atom::new("a@localhost"), 1, n)
}

fn terms() -> Vec<(&'static str, Term)> {
    let map = Term::map(vec![
        (Term::atom("k"), Term::Int(-1)),
        (Term::str("s"), Term::Float(0.5)),
    ]);
    vec![
        ("atom", Term::atom("hello")),
        ("int", Term::Int(i64::MIN)),
        ("float", Term::Float(f64::NAN)),
        ("binary", Term::binary(b"\x00\xffbytes")),
        ("str", Term::str("h\u{e9}llo")),
        ("pid", Term::Pid(pid(42))),
        ("ref", Term::Ref(Ref::from_parts(Atom::new("b@h"), 2, 7))),
        ("tuple", term!({:ok, 1, "x"})),
        (
            "list",
            Term::list(vec![Term::Int(1), Term::list(vec![]), map.clone()]),
        ),
        ("map", map),
        (
            "nested",
            (0..6).fold(Term::Int(0), |t, _| Term::tuple(vec![t])),
        ),
    ]
}

/// A message of every kind of the node protocol (every tag of `node::wire`'s table).
fn wires() -> Vec<Wire> {
    let reference = Ref::from_parts(Atom::new("a@localhost"), 1, 9);
    let signal = |n: u64, signal: Signal| Wire::Signal {
        to: ToPid::of(pid(n)),
        signal,
    };
    vec![
        Wire::Tick,
        signal(1, Signal::Message(term!({:hello, 1}))),
        signal(
            2,
            Signal::Exit {
                from: pid(3),
                reason: Term::atom("kill"),
                linked: false,
            },
        ),
        signal(
            2,
            Signal::Exit {
                from: pid(3),
                reason: Term::atom("boom"),
                linked: true,
            },
        ),
        signal(2, Signal::Link { from: pid(3) }),
        signal(2, Signal::Unlink { from: pid(3) }),
        signal(
            2,
            Signal::Monitor {
                from: pid(3),
                reference,
            },
        ),
        signal(
            2,
            Signal::Demonitor {
                from: pid(3),
                reference,
            },
        ),
        signal(
            2,
            Signal::Down {
                from: pid(3),
                reference,
                reason: Term::atom("noproc"),
            },
        ),
        signal(
            2,
            Signal::Info {
                from: pid(3),
                reference,
            },
        ),
        Wire::RegSend {
            from: pid(4),
            name: Atom::new("counter"),
            msg: Term::list(vec![Term::Int(5)]),
        },
        Wire::SpawnRequest {
            reference,
            from: pid(5),
            module: Atom::new("m"),
            function: Atom::new("f"),
            args: vec![Term::str("x")],
            link: true,
            monitor: false,
            group_leader: Some(pid(7)),
        },
        Wire::SpawnReply {
            reference,
            to: ToPid::of(pid(5)),
            result: Ok(pid(6)),
        },
        Wire::SpawnReply {
            reference,
            to: ToPid::of(pid(5)),
            result: Err(Term::atom("undef")),
        },
        Wire::Peers {
            nodes: vec!["b@localhost".into()],
        },
        Wire::Signal {
            to: ToPid { creation: 0, id: 0 },
            signal: Signal::MonitorName {
                from: pid(3),
                name: Atom::new("counter"),
                reference,
            },
        },
        Wire::Signal {
            to: ToPid { creation: 0, id: 0 },
            signal: Signal::DemonitorName {
                from: pid(3),
                name: Atom::new("counter"),
                reference,
            },
        },
    ]
}

fn frame_seeds() {
    // Header: max frame 4096, chunk seed, limits (8 in reassembly, 64 << 8 bytes).
    let header = |seed: u8| {
        let mut h = 4096u16.to_le_bytes().to_vec();
        h.extend_from_slice(&[seed, 7 | (8 << 3)]);
        h
    };
    let mut all = header(0);
    for (i, w) in wires().iter().enumerate() {
        let body = wire::encode(w).expect("encode");
        let mut stream = header((i as u8).wrapping_mul(37));
        let mut frame = vec![KIND_WHOLE];
        frame.extend_from_slice(&body);
        write_frame(&mut stream, &frame);
        write_frame(&mut all, &frame);
        save("frame_decoder", &format!("whole-{i}"), &stream);
    }
    save("frame_decoder", "all", &all);
    // One message in three fragments, interleaved with a whole one.
    let body = wire::encode(&wires()[10]).expect("encode");
    let id = 77u64;
    let third = body.len() / 3;
    let mut first = vec![KIND_FIRST];
    first.extend_from_slice(&id.to_le_bytes());
    first.extend_from_slice(&(body.len() as u64).to_le_bytes());
    first.extend_from_slice(&body[..third]);
    let more = |part: &[u8]| {
        let mut f = vec![KIND_MORE];
        f.extend_from_slice(&id.to_le_bytes());
        f.extend_from_slice(part);
        f
    };
    let mut stream = header(5);
    write_frame(&mut stream, &first);
    write_frame(&mut stream, &more(&body[third..2 * third]));
    let mut tick = vec![KIND_WHOLE];
    tick.extend_from_slice(&wire::encode(&Wire::Tick).expect("encode"));
    write_frame(&mut stream, &tick);
    write_frame(&mut stream, &more(&body[2 * third..]));
    save("frame_decoder", "fragmented", &stream);
}

fn term_seeds() {
    for (name, t) in terms() {
        save(
            "term_codec",
            name,
            &encode(&t, &Limits::default()).expect("encode"),
        );
    }
}

fn handshake_seeds() {
    let cookie = b"SHAREDSECRETCOOKIE";
    let with = |flags: u8, cookie_a: &[u8], ops: &[u8]| {
        let mut v = vec![flags, cookie.len() as u8];
        v.extend_from_slice(cookie);
        v.push(cookie_a.len() as u8);
        v.extend_from_slice(cookie_a);
        if flags & 2 != 0 {
            v.push(cookie.len() as u8);
            v.extend_from_slice(cookie);
        }
        v.extend_from_slice(ops);
        v
    };
    // Forward hello, admit, forward challenge, forward proof, forward accept.
    let honest = [0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 1, 0, 0];
    save("handshake", "honest", &with(1 | (7 << 2), cookie, &honest));
    save("handshake", "wrong-cookie", &with(0, b"OTHER", &honest));
    save("handshake", "peer-cookie", &with(2, b"OTHER", &honest));
    // Tampered challenge, then replays.
    let tampered = [0, 0, 0, 4, 1, 9, 0x20, 0, 0, 0, 6, 1, 14, 2];
    save("handshake", "tampered", &with(1, cookie, &tampered));
    // Refused admission with a text.
    let mut refused = vec![0, 0, 0, 5, 4, 3];
    refused.extend_from_slice(b"no!");
    refused.extend_from_slice(&[1, 0, 0]);
    save("handshake", "refused", &with(0, cookie, &refused));
    let msg = oxbeam::node::handshake::HandshakeMsg::Refuse {
        reason: RefuseReason::NotAllowed("x".into()),
    }
    .encode();
    let mut raw = vec![3, msg.len() as u8];
    raw.extend_from_slice(&msg);
    save("handshake", "raw-refuse", &with(0, cookie, &raw));
}

fn epmd_seeds() {
    let entry = NodeEntry::oxbeam("node1", 4370, false);
    let reqs = [
        ("alive2", Request::Alive2(entry.clone())),
        ("port-please2", Request::PortPlease2("node1".into())),
        ("names", Request::Names),
    ];
    for (name, req) in reqs {
        let bytes = encode_request(&req).expect("encode");
        save("epmd_codec", &format!("req-{name}"), &bytes);
        save("epmd_codec", &format!("body-{name}"), &bytes[2..]);
    }
    for (name, resp) in [
        (
            "alive2-x",
            Alive2Response {
                result: 0,
                creation: 0x6b07_cb22,
                extended: true,
            },
        ),
        (
            "alive2",
            Alive2Response {
                result: 1,
                creation: 3,
                extended: false,
            },
        ),
    ] {
        save("epmd_codec", name, &encode_alive2_response(&resp));
    }
    let found = encode_port2_response(&PortResponse::Found(entry)).expect("encode");
    save("epmd_codec", "port2-found", &found);
    save("epmd_codec", "port2-not-found", &[PORT2_RESP, 1]);
    let names = NamesResponse {
        epmd_port: 4369,
        names: vec![("foo".into(), 1238), ("bar".into(), 1236)],
    };
    save("epmd_codec", "names", &encode_names_response(&names));
}

fn console_seeds() {
    let lines = [
        "Node.connect(:node1@localhost)",
        "Node.list([:this, :visible])",
        "pid = :global.whereis_name(:counter)",
        ":rpc.call(:node2@localhost, Enum, :sum, [1..1000])",
        "[node() | Node.list()]",
        "{:ok, v} = :erpc.call(:n@localhost, :erlang, :node, [])",
        "send({:shell, :node1@localhost}, {:hello, self()})",
        "ref = Process.monitor(:global.whereis_name(:counter)); flush()",
        "%{a: 1, \"b\" => [c: 2.5e3, d: 'x'], 0x1F => -1_000}",
        "IO.puts \"hi\\n\"\n:\"quoted atom\" == :ok and ^pin",
        "x |> Enum.sum() |> IO.puts",
        "Node.spawn(:n@localhost, fn -> 1 end)",
        "&Kernel.node/0\0Process.exit(self(), :kill)",
        "[1, 2 | t] = [1, 2, 3] ++ [4] -- [2] # comment",
        "i pid\nh",
    ];
    for (i, l) in lines.iter().enumerate() {
        save("console_parser", &format!("{i:02}"), l.as_bytes());
    }
}

fn main() {
    frame_seeds();
    term_seeds();
    handshake_seeds();
    epmd_seeds();
    console_seeds();
}
