//! The byte layouts of the port mapper messages we use, as pure functions.
//!
//! Encoders return the exact bytes to write (requests with their 2-byte length prefix).
//! Decoders never panic, whatever the input: a complete message is `Ok(Some(..))`, a
//! prefix of one is `Ok(None)` (read more), anything else is
//! [`EpmdError::Protocol`] saying what is wrong.

use super::{EpmdError, NodeEntry};

/// `ALIVE2_REQ`: register a node.
pub const ALIVE2_REQ: u8 = 120;
/// `ALIVE2_X_RESP`: the answer to `ALIVE2_REQ` with a 32-bit creation (highest >= 6).
pub const ALIVE2_X_RESP: u8 = 118;
/// `ALIVE2_RESP`: the answer to `ALIVE2_REQ` with a 16-bit creation (older nodes).
pub const ALIVE2_RESP: u8 = 121;
/// `PORT_PLEASE2_REQ`: look a node up by name.
pub const PORT_PLEASE2_REQ: u8 = 122;
/// `PORT2_RESP`: the answer to `PORT_PLEASE2_REQ`.
pub const PORT2_RESP: u8 = 119;
/// `NAMES_REQ`: list the registered names.
pub const NAMES_REQ: u8 = 110;

/// The longest node name accepted, in bytes (epmd's `MAXSYMLEN`).
pub const MAX_NAME_LEN: usize = 255;
/// The longest `extra` field accepted in a registration, in bytes.
pub const MAX_EXTRA_LEN: usize = 512;
/// The longest request body (after the length prefix) a mapper accepts.
pub const MAX_REQUEST_LEN: usize = 1024;
/// The longest `NAMES` response a client accepts, in bytes.
pub const MAX_NAMES_RESPONSE_LEN: usize = 1 << 20;

/// A request to the port mapper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `ALIVE2_REQ`: register this node.
    Alive2(NodeEntry),
    /// `PORT_PLEASE2_REQ`: where does the node of this name listen?
    PortPlease2(String),
    /// `NAMES_REQ`: which names are registered?
    Names,
}

/// The answer to `ALIVE2_REQ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alive2Response {
    /// 0: registered; anything else: refused (the name is taken).
    pub result: u8,
    /// The creation number of this registration.
    pub creation: u32,
    /// `ALIVE2_X_RESP` (32-bit creation) rather than `ALIVE2_RESP` (16-bit).
    pub extended: bool,
}

/// The answer to `PORT_PLEASE2_REQ`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortResponse {
    /// Result 0: the node's entry.
    Found(NodeEntry),
    /// The non-zero result code: no such node.
    NotFound(u8),
}

/// The answer to `NAMES_REQ`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamesResponse {
    /// The port the mapper listens on.
    pub epmd_port: u32,
    /// Each registered node's name and port.
    pub names: Vec<(String, u16)>,
}

fn protocol(what: impl Into<String>) -> EpmdError {
    EpmdError::Protocol(what.into())
}

/// Checks that `name` can be registered: 1..=255 bytes, no `@`, no whitespace or control
/// characters (names appear in the line-based `NAMES` answer).
pub fn validate_name(name: &str) -> Result<(), EpmdError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(protocol(format!(
            "node name must be 1..={MAX_NAME_LEN} bytes, got {}",
            name.len()
        )));
    }
    if name
        .chars()
        .any(|c| c == '@' || c.is_whitespace() || c.is_control())
    {
        return Err(protocol(format!(
            "node name {name:?} contains '@', whitespace or a control character"
        )));
    }
    Ok(())
}

/// Checks everything about `entry` that the wire format or a mapper limits.
pub fn validate_entry(entry: &NodeEntry) -> Result<(), EpmdError> {
    validate_name(&entry.name)?;
    if entry.extra.len() > MAX_EXTRA_LEN {
        return Err(protocol(format!(
            "extra of {} bytes exceeds {MAX_EXTRA_LEN}",
            entry.extra.len()
        )));
    }
    Ok(())
}

/// Appends the `ALIVE2_REQ` / `PORT2_RESP` entry fields, from port on.
fn put_entry(out: &mut Vec<u8>, e: &NodeEntry) {
    out.extend_from_slice(&e.port.to_be_bytes());
    out.push(e.node_type);
    out.push(e.protocol);
    out.extend_from_slice(&e.highest.to_be_bytes());
    out.extend_from_slice(&e.lowest.to_be_bytes());
    // Lengths fit: entries are validated before encoding.
    out.extend_from_slice(&(e.name.len() as u16).to_be_bytes());
    out.extend_from_slice(e.name.as_bytes());
    out.extend_from_slice(&(e.extra.len() as u16).to_be_bytes());
    out.extend_from_slice(&e.extra);
}

/// Encodes a request with its 2-byte length prefix. Fails on an invalid entry or name.
pub fn encode_request(req: &Request) -> Result<Vec<u8>, EpmdError> {
    let mut body = Vec::with_capacity(64);
    match req {
        Request::Alive2(entry) => {
            validate_entry(entry)?;
            body.push(ALIVE2_REQ);
            put_entry(&mut body, entry);
        }
        Request::PortPlease2(name) => {
            if name.is_empty() || name.len() > MAX_NAME_LEN {
                return Err(protocol(format!(
                    "node name must be 1..={MAX_NAME_LEN} bytes, got {}",
                    name.len()
                )));
            }
            body.push(PORT_PLEASE2_REQ);
            body.extend_from_slice(name.as_bytes());
        }
        Request::Names => body.push(NAMES_REQ),
    }
    let mut out = Vec::with_capacity(body.len() + 2);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// A cursor over a byte slice whose reads fail instead of panicking.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    /// The next `n` bytes, or `None` when fewer remain.
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }
}

fn utf8(bytes: &[u8], what: &str) -> Result<String, EpmdError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| protocol(format!("{what} is not UTF-8")))
}

/// Reads the entry fields from port on; `None` if the input ends first.
fn get_entry(r: &mut Reader<'_>) -> Result<Option<NodeEntry>, EpmdError> {
    let fixed = (|| Some((r.u16()?, r.u8()?, r.u8()?, r.u16()?, r.u16()?, r.u16()?)))();
    let Some((port, node_type, protocol_, highest, lowest, nlen)) = fixed else {
        return Ok(None);
    };
    let Some(name) = r.take(usize::from(nlen)) else {
        return Ok(None);
    };
    let Some(elen) = r.u16() else {
        return Ok(None);
    };
    let Some(extra) = r.take(usize::from(elen)) else {
        return Ok(None);
    };
    Ok(Some(NodeEntry {
        name: utf8(name, "node name")?,
        port,
        node_type,
        protocol: protocol_,
        highest,
        lowest,
        extra: extra.to_vec(),
    }))
}

/// Decodes one length-prefixed request from the start of `buf`, returning it with the
/// number of bytes it took; `Ok(None)` if `buf` holds only a prefix of one.
///
/// Bodies longer than [`MAX_REQUEST_LEN`] are refused as soon as their length is read.
/// Registrations are checked with [`validate_entry`].
pub fn decode_request(buf: &[u8]) -> Result<Option<(Request, usize)>, EpmdError> {
    let mut r = Reader::new(buf);
    let Some(len) = r.u16() else {
        return Ok(None);
    };
    let len = usize::from(len);
    if len == 0 {
        return Err(protocol("empty request"));
    }
    if len > MAX_REQUEST_LEN {
        return Err(protocol(format!(
            "request of {len} bytes exceeds {MAX_REQUEST_LEN}"
        )));
    }
    let Some(body) = r.take(len) else {
        return Ok(None);
    };
    Ok(Some((decode_request_body(body)?, 2 + len)))
}

/// Decodes a request body (the bytes after the length prefix, all of them).
pub fn decode_request_body(body: &[u8]) -> Result<Request, EpmdError> {
    let mut r = Reader::new(body);
    let code = r.u8().ok_or_else(|| protocol("empty request"))?;
    let req = match code {
        ALIVE2_REQ => {
            let entry = get_entry(&mut r)?.ok_or_else(|| {
                protocol(format!("ALIVE2_REQ of {} bytes is truncated", body.len()))
            })?;
            validate_entry(&entry)?;
            Request::Alive2(entry)
        }
        PORT_PLEASE2_REQ => {
            let name = r.rest();
            if name.is_empty() || name.len() > MAX_NAME_LEN {
                return Err(protocol(format!(
                    "PORT_PLEASE2_REQ name of {} bytes",
                    name.len()
                )));
            }
            r.pos = body.len();
            Request::PortPlease2(utf8(name, "node name")?)
        }
        NAMES_REQ => Request::Names,
        other => return Err(protocol(format!("unknown request code {other}"))),
    };
    if !r.rest().is_empty() {
        return Err(protocol(format!(
            "{} stray bytes after request {code}",
            r.rest().len()
        )));
    }
    Ok(req)
}

/// Encodes the answer to `ALIVE2_REQ` (`ALIVE2_X_RESP` if `extended`, else `ALIVE2_RESP`
/// with the creation truncated to 16 bits).
pub fn encode_alive2_response(resp: &Alive2Response) -> Vec<u8> {
    if resp.extended {
        let mut out = vec![ALIVE2_X_RESP, resp.result];
        out.extend_from_slice(&resp.creation.to_be_bytes());
        out
    } else {
        let mut out = vec![ALIVE2_RESP, resp.result];
        out.extend_from_slice(&(resp.creation as u16).to_be_bytes());
        out
    }
}

/// Decodes the answer to `ALIVE2_REQ` from the start of `buf`, with the bytes it took.
pub fn decode_alive2_response(buf: &[u8]) -> Result<Option<(Alive2Response, usize)>, EpmdError> {
    let mut r = Reader::new(buf);
    let Some(code) = r.u8() else {
        return Ok(None);
    };
    let extended = match code {
        ALIVE2_X_RESP => true,
        ALIVE2_RESP => false,
        other => {
            return Err(protocol(format!(
                "expected ALIVE2 response, got code {other}"
            )));
        }
    };
    let Some(result) = r.u8() else {
        return Ok(None);
    };
    let creation = if extended {
        r.u32()
    } else {
        r.u16().map(u32::from)
    };
    Ok(creation.map(|creation| {
        (
            Alive2Response {
                result,
                creation,
                extended,
            },
            r.pos,
        )
    }))
}

/// Encodes the answer to `PORT_PLEASE2_REQ`. A `NotFound(0)` is sent as result 1.
pub fn encode_port2_response(resp: &PortResponse) -> Result<Vec<u8>, EpmdError> {
    match resp {
        PortResponse::Found(entry) => {
            if entry.name.len() > usize::from(u16::MAX) || entry.extra.len() > usize::from(u16::MAX)
            {
                return Err(protocol("entry too long to encode"));
            }
            let mut out = vec![PORT2_RESP, 0];
            put_entry(&mut out, entry);
            Ok(out)
        }
        PortResponse::NotFound(result) => Ok(vec![PORT2_RESP, (*result).max(1)]),
    }
}

/// Decodes the answer to `PORT_PLEASE2_REQ` from the start of `buf`, with the bytes it took.
pub fn decode_port2_response(buf: &[u8]) -> Result<Option<(PortResponse, usize)>, EpmdError> {
    let mut r = Reader::new(buf);
    let Some(code) = r.u8() else {
        return Ok(None);
    };
    if code != PORT2_RESP {
        return Err(protocol(format!("expected PORT2_RESP, got code {code}")));
    }
    match r.u8() {
        None => Ok(None),
        Some(0) => Ok(get_entry(&mut r)?.map(|e| (PortResponse::Found(e), r.pos))),
        Some(result) => Ok(Some((PortResponse::NotFound(result), r.pos))),
    }
}

/// Encodes the answer to `NAMES_REQ` as epmd does.
pub fn encode_names_response(resp: &NamesResponse) -> Vec<u8> {
    let mut out = resp.epmd_port.to_be_bytes().to_vec();
    for (name, port) in &resp.names {
        out.extend_from_slice(format!("name {name} at port {port}\n").as_bytes());
    }
    out
}

/// Decodes a whole `NAMES` answer (everything read until the mapper closed).
pub fn decode_names_response(buf: &[u8]) -> Result<NamesResponse, EpmdError> {
    if buf.len() > MAX_NAMES_RESPONSE_LEN {
        return Err(protocol(format!(
            "NAMES response of {} bytes exceeds {MAX_NAMES_RESPONSE_LEN}",
            buf.len()
        )));
    }
    let mut r = Reader::new(buf);
    let epmd_port = r
        .u32()
        .ok_or_else(|| protocol("NAMES response shorter than its 4-byte port"))?;
    let text =
        std::str::from_utf8(r.rest()).map_err(|_| protocol("NAMES response is not UTF-8"))?;
    let mut names = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let parsed = line.strip_prefix("name ").and_then(|rest| {
            let (name, port) = rest.rsplit_once(" at port ")?;
            Some((name.to_string(), port.trim().parse::<u16>().ok()?))
        });
        names.push(parsed.ok_or_else(|| protocol(format!("bad NAMES line {line:?}")))?);
    }
    Ok(NamesResponse { epmd_port, names })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry() -> NodeEntry {
        NodeEntry::oxbeam("foo", 1234, false)
    }

    #[test]
    fn alive2_request_matches_epmd_layout() {
        let bytes = encode_request(&Request::Alive2(entry())).unwrap();
        let mut want = vec![0, 22, 120, 0x04, 0xd2, 77, 0, 0, 6, 0, 6, 0, 3];
        want.extend_from_slice(b"foo");
        want.extend_from_slice(&[0, 6]);
        want.extend_from_slice(b"oxbeam");
        assert_eq!(bytes, want);
        assert_eq!(
            decode_request(&bytes).unwrap(),
            Some((Request::Alive2(entry()), bytes.len()))
        );
    }

    #[test]
    fn decodes_what_real_epmd_sent() {
        // Captured from Erlang's epmd: PORT2_RESP for a registered "foo".
        let mut bytes = vec![119, 0, 0x04, 0xd6, 77, 0, 0, 6, 0, 5, 0, 3];
        bytes.extend_from_slice(b"foo\x00\x06oxbeam");
        let (resp, used) = decode_port2_response(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        let PortResponse::Found(e) = resp else {
            panic!("{resp:?}")
        };
        assert_eq!((e.name.as_str(), e.port, e.lowest), ("foo", 1238, 5));
        assert_eq!(
            decode_port2_response(&[119, 1]).unwrap(),
            Some((PortResponse::NotFound(1), 2))
        );
        let (a, _) = decode_alive2_response(b"v\x00k\x07\xcb\"")
            .unwrap()
            .unwrap();
        assert_eq!((a.result, a.creation, a.extended), (0, 0x6b07_cb22, true));
        let (a, _) = decode_alive2_response(b"y\x00\x00\x01").unwrap().unwrap();
        assert_eq!((a.result, a.creation, a.extended), (0, 1, false));
        let names =
            decode_names_response(b"\x00\x00\xb0Cname foo at port 1238\nname bar at port 1236\n")
                .unwrap();
        assert_eq!(names.epmd_port, 45123);
        assert_eq!(
            names.names,
            vec![("foo".to_string(), 1238), ("bar".to_string(), 1236)]
        );
    }

    #[test]
    fn refuses_bad_requests() {
        assert!(decode_request(&[0, 0]).is_err());
        assert!(decode_request(&[0xff, 0xff]).is_err());
        assert!(decode_request(&[0, 1, 99]).is_err());
        assert!(decode_request(&[0, 3, 120, 1, 2]).is_err());
        assert!(decode_request(&[0, 2, 110, 0]).is_err());
        assert_eq!(decode_request(&[0, 5, 120]).unwrap(), None);
        let bad = NodeEntry::oxbeam("a b", 1, false);
        assert!(encode_request(&Request::Alive2(bad)).is_err());
        let mut long = entry();
        long.extra = vec![0; MAX_EXTRA_LEN + 1];
        assert!(encode_request(&Request::Alive2(long)).is_err());
        assert!(encode_request(&Request::PortPlease2(String::new())).is_err());
    }

    fn arb_entry() -> impl Strategy<Value = NodeEntry> {
        (
            "[a-zA-Z0-9_.-]{1,40}",
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(
                |(name, port, node_type, protocol, highest, lowest, extra)| NodeEntry {
                    name,
                    port,
                    node_type,
                    protocol,
                    highest,
                    lowest,
                    extra,
                },
            )
    }

    fn arb_request() -> impl Strategy<Value = Request> {
        prop_oneof![
            arb_entry().prop_map(Request::Alive2),
            "[^\\x00]{1,60}"
                .prop_filter("fits", |s| s.len() <= MAX_NAME_LEN)
                .prop_map(Request::PortPlease2),
            Just(Request::Names),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip(req in arb_request()) {
            let bytes = encode_request(&req).unwrap();
            prop_assert_eq!(decode_request(&bytes).unwrap(), Some((req, bytes.len())));
            for cut in 0..bytes.len() {
                prop_assert_eq!(decode_request(&bytes[..cut]).unwrap(), None);
            }
        }

        #[test]
        fn responses_round_trip(e in arb_entry(), creation in any::<u32>(), result in any::<u8>(),
                                ext in any::<bool>(), port in any::<u32>()) {
            let a = Alive2Response { result, creation: if ext { creation } else { creation & 0xffff }, extended: ext };
            let bytes = encode_alive2_response(&a);
            prop_assert_eq!(decode_alive2_response(&bytes).unwrap(), Some((a, bytes.len())));
            for cut in 0..bytes.len() {
                prop_assert_eq!(decode_alive2_response(&bytes[..cut]).unwrap(), None);
            }
            let p = PortResponse::Found(e.clone());
            let bytes = encode_port2_response(&p).unwrap();
            prop_assert_eq!(decode_port2_response(&bytes).unwrap(), Some((p, bytes.len())));
            for cut in 0..bytes.len() {
                prop_assert_eq!(decode_port2_response(&bytes[..cut]).unwrap(), None);
            }
            let n = NamesResponse { epmd_port: port, names: vec![(e.name.clone(), e.port), ("x".into(), 1)] };
            prop_assert_eq!(decode_names_response(&encode_names_response(&n)).unwrap(), n);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_request(&bytes);
            let _ = decode_request_body(&bytes);
            let _ = decode_alive2_response(&bytes);
            let _ = decode_port2_response(&bytes);
            let _ = decode_names_response(&bytes);
        }

        #[test]
        fn mutated_messages_never_panic(req in arb_request(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
            let mut bytes = encode_request(&req).unwrap();
            for (i, b) in flips {
                let i = i % bytes.len();
                bytes[i] = b;
            }
            let _ = decode_request(&bytes);
            if let Request::Alive2(e) = req {
                let mut bytes = encode_port2_response(&PortResponse::Found(e)).unwrap();
                let n = bytes.len();
                bytes[n / 2] ^= 0xff;
                let _ = decode_port2_response(&bytes);
            }
        }
    }
}
