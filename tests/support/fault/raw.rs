//! Talking to a node over a bare socket: frames, a handshake driven by the library's
//! own state machine (so a test can finish one and then misbehave), hand-made wire
//! messages, and a recording proxy between two real nodes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxbeam::node::frame::{FrameDecoder, write_frame};
use oxbeam::node::handshake::{HandshakeError, HandshakeMsg, Identity, Initiator, Step};
use oxbeam::node::outbound::Outbound;
use oxbeam::node::wire::{self, FRAGMENT, Wire};
use oxbeam::rt::Signal;
use oxbeam::term::{Pid, Term};
use parking_lot::Mutex;

use crate::support::{SOON, wait_for};

/// A node's default `max_frame` (`NetConfig::named`).
pub const MAX_FRAME: usize = FRAGMENT + 1024;

/// A client socket reading length-prefixed frames.
pub struct RawConn {
    pub stream: TcpStream,
    decoder: FrameDecoder,
}

impl RawConn {
    /// Connects to `127.0.0.1:port`.
    pub fn connect(port: u16) -> RawConn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_nodelay(true).unwrap();
        RawConn {
            stream,
            decoder: FrameDecoder::new(64 << 20),
        }
    }

    /// Sends `payload` as one frame.
    pub fn send_frame(&mut self, payload: &[u8]) {
        let mut out = Vec::new();
        write_frame(&mut out, payload);
        self.stream.write_all(&out).expect("write frame");
    }

    /// The next frame, `None` once the other side closed (or `timeout` passed).
    pub fn recv_frame(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(f) = self.decoder.next_frame().expect("frame from the node") {
                return Some(f.to_vec());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.decoder.push(&buf[..n]),
            }
        }
    }

    /// The next message from a node after the handshake, passing over ticks and peer
    /// lists; panics with `what` if none comes within `timeout`.
    pub fn recv_message(&mut self, timeout: Duration, what: &str) -> Result<Wire, wire::WireError> {
        loop {
            let f = self.recv_frame(timeout).expect(what);
            match wire::decode(&f[1..]) {
                Ok(Wire::Tick | Wire::Peers { .. }) => continue,
                other => return other,
            }
        }
    }

    /// Reads (and drops) until the other side closes; false if it is still open after
    /// `timeout`.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        closed_within(&mut self.stream, timeout)
    }
}

/// Reads (and drops) from `s` until the other side closes: true if it did in `timeout`.
pub fn closed_within(s: &mut TcpStream, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

/// A handshake run from a bare socket with the library's [`Initiator`].
pub struct RawHandshake {
    pub conn: RawConn,
    /// The frames this side sent (Hello, Proof), as they went on the wire.
    pub sent: Vec<Vec<u8>>,
    /// What the node answered, decoded.
    pub got: Vec<HandshakeMsg>,
    /// How it ended.
    pub result: Result<(), HandshakeError>,
}

/// Shakes hands with the node listening on `port` (named `peer`) as `me`, with `cookie`.
pub fn handshake(port: u16, me: Identity, peer: &str, cookie: &[u8]) -> RawHandshake {
    let mut conn = RawConn::connect(port);
    let (mut machine, hello) = Initiator::new(me, Some(peer.to_owned()), cookie);
    let mut sent = vec![hello.encode()];
    conn.send_frame(&sent[0]);
    let mut got = Vec::new();
    let result = loop {
        let Some(frame) = conn.recv_frame(SOON) else {
            break Err(HandshakeError::Malformed("closed without a verdict".into()));
        };
        let msg = HandshakeMsg::decode(&frame).expect("a handshake message from the node");
        got.push(msg.clone());
        match machine.on_message(msg) {
            Step::Send(m) => {
                sent.push(m.encode());
                conn.send_frame(sent.last().unwrap());
            }
            Step::Done(_) => break Ok(()),
            Step::Failed(e) => break Err(e),
            other => panic!("initiator step {other:?}"),
        }
    };
    RawHandshake {
        conn,
        sent,
        got,
        result,
    }
}

/// The bytes of a well-formed Hello from `name` (not a frame).
pub fn hello(name: &str) -> Vec<u8> {
    let id = raw_identity(name);
    let (_, hello) = Initiator::new(id, None, b"any cookie");
    hello.encode()
}

/// A hidden identity for a raw client.
pub fn raw_identity(name: &str) -> Identity {
    Identity {
        name: name.to_owned(),
        creation: 4242,
        hidden: true,
    }
}

/// The bytes of `Wire::Signal { to, Message(t) }` where `t` is `depth` nested 1-tuples
/// around the integer 7, built by hand: a term that deep can't be built, encoded or even
/// dropped by this process without exhausting its stack.
pub fn nested_message(to: Pid, depth: usize) -> Vec<u8> {
    const PLACEHOLDER: &str = "nested_placeholder";
    let mut bytes = wire::encode(&Wire::Signal {
        to: wire::ToPid::of(to),
        signal: Signal::Message(Term::atom(PLACEHOLDER)),
    })
    .unwrap();
    // The term is the last field: tag 0 (atom), length, text.
    let mut tail = vec![0u8, PLACEHOLDER.len() as u8];
    tail.extend_from_slice(PLACEHOLDER.as_bytes());
    assert!(bytes.ends_with(&tail), "unexpected layout of Wire::Signal");
    bytes.truncate(bytes.len() - tail.len());
    for _ in 0..depth {
        bytes.extend_from_slice(&[7, 1]); // a tuple (variant 7) of one element
    }
    bytes.extend_from_slice(&[1, 14]); // Int (variant 1), zigzag 7
    bytes
}

/// Encoded `msg` framed as a node would send it: one whole frame, or fragments.
pub fn framed(stream: u64, msg: Vec<u8>) -> Vec<u8> {
    let mut out = Outbound::new();
    out.push(stream, msg);
    let mut bytes = Vec::new();
    assert!(out.flush(&mut bytes).unwrap());
    bytes
}

/// A TCP proxy to `127.0.0.1:target` that records what its (single) client sends.
pub struct Proxy {
    pub port: u16,
    pub from_client: Arc<Mutex<Vec<u8>>>,
}

impl Proxy {
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let from_client = Arc::new(Mutex::new(Vec::new()));
        let record = from_client.clone();
        std::thread::spawn(move || {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            let server = TcpStream::connect(("127.0.0.1", target)).unwrap();
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || pipe(&mut s_in, &mut c_out, None));
            pipe(&mut c_in, &mut s_out, Some(&record));
        });
        Proxy { port, from_client }
    }

    /// The first `n` frames the client sent.
    pub fn client_frames(&self, n: usize) -> Vec<Vec<u8>> {
        let mut d = FrameDecoder::new(64 << 20);
        d.push(&self.from_client.lock());
        (0..n)
            .map(|_| {
                d.next_frame()
                    .unwrap()
                    .expect("enough frames recorded")
                    .to_vec()
            })
            .collect()
    }
}

fn pipe(from: &mut TcpStream, to: &mut TcpStream, record: Option<&Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(r) = record {
                    r.lock().extend_from_slice(&buf[..n]);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}

/// Sends `bytes` on a fresh connection (the node may cut the write short) and waits for
/// the node to close it.
pub fn closed_after(port: u16, bytes: &[u8]) -> bool {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = s.write_all(bytes);
    closed_within(&mut s, SOON)
}

/// Deterministic noise.
pub fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// `payload` as one frame: its length (4 bytes, big-endian), then the bytes.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_frame(&mut out, payload);
    out
}

/// Opens `n` connections to `port` and holds them, every other one after writing
/// `partial`; returns once the server has accepted them all. Opened in batches, each
/// accepted before the next: a burst would overflow the listen backlog (128) and stall
/// the client in 1 s SYN retries, past the server's timeouts.
pub fn hold_open(port: u16, n: usize, partial: &[u8]) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    while held.len() < n {
        for _ in 0..64.min(n - held.len()) {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            if held.len() % 2 == 1 {
                s.write_all(partial).unwrap();
            }
            held.push(s);
        }
        wait_for("the server to accept a batch", SOON, || {
            let q = accept_queue(port);
            (q == Some(0), (q, held.len()))
        });
    }
    held
}

/// Connections waiting in the accept queue of the listener on `127.0.0.1:port` (for a
/// listening socket, `/proc/net/tcp` shows that queue as `rx_queue`).
pub fn accept_queue(port: u16) -> Option<usize> {
    let local = format!("0100007F:{port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let listening = f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A");
        let rx = f.get(4)?.split(':').nth(1)?;
        listening.then(|| usize::from_str_radix(rx, 16).ok())?
    })
}

/// ALIVE2_REQ bytes for `name` at `port`, by hand (so they may be invalid).
pub fn alive2(name: &[u8], port: u16, extra: &[u8]) -> Vec<u8> {
    let mut body = vec![120];
    body.extend_from_slice(&port.to_be_bytes());
    body.extend_from_slice(&[77, 0, 0, 6, 0, 6]);
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name);
    body.extend_from_slice(&(extra.len() as u16).to_be_bytes());
    body.extend_from_slice(extra);
    let mut out = (body.len() as u16).to_be_bytes().to_vec();
    out.extend(body);
    out
}

/// Registers `name` from a raw client; the connection (the registration) is returned
/// with the mapper's result byte.
pub fn raw_register(port: u16, name: &str, node_port: u16) -> (TcpStream, u8) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(&alive2(name.as_bytes(), node_port, b"bogus"))
        .unwrap();
    let mut resp = [0u8; 6];
    s.set_read_timeout(Some(SOON)).unwrap();
    s.read_exact(&mut resp).unwrap();
    assert_eq!(resp[0], 118, "ALIVE2_X_RESP");
    (s, resp[1])
}
