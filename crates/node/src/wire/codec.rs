//! The encoding of [`Wire`] messages, by hand: every byte of the table in the
//! [module docs](super) is written and read here, and nowhere else. No serde derive is
//! involved (terms aside, whose encoding is the term codec's own table), so the order
//! of the variants of [`Wire`] or of [`Signal`] is not part of the protocol: a new
//! variant fails to compile here until it is given a tag.

use super::{Tag, ToPid, Wire};
use crate::rt::Signal;
use crate::term::codec::decode_embedded;
use crate::term::{Atom, Pid, Ref, Term};

/// Appends `msg` to `buf`; on error `buf` may hold part of it (the caller truncates).
pub(super) fn encode_onto(msg: &Wire, buf: &mut Vec<u8>) -> Result<(), String> {
    buf.push(Tag::of(msg)? as u8);
    match msg {
        Wire::Tick => {}
        Wire::Signal { to, signal } => {
            put_to(buf, *to);
            match signal {
                Signal::Message(msg) => put_term(buf, msg)?,
                Signal::Exit { from, reason, .. } => {
                    put_pid(buf, *from);
                    put_term(buf, reason)?;
                }
                Signal::Link { from } | Signal::Unlink { from } => put_pid(buf, *from),
                Signal::Monitor { from, reference }
                | Signal::Demonitor { from, reference }
                | Signal::Info { from, reference } => {
                    put_pid(buf, *from);
                    put_ref(buf, *reference);
                }
                Signal::Down {
                    from,
                    reference,
                    reason,
                } => {
                    put_pid(buf, *from);
                    put_ref(buf, *reference);
                    put_term(buf, reason)?;
                }
                Signal::MonitorName {
                    from,
                    name,
                    reference,
                }
                | Signal::DemonitorName {
                    from,
                    name,
                    reference,
                } => {
                    put_pid(buf, *from);
                    put_text(buf, name.as_str());
                    put_ref(buf, *reference);
                }
                // `Tag::of` refused it.
                Signal::Encoded(_) => {}
            }
        }
        Wire::RegSend { from, name, msg } => {
            put_pid(buf, *from);
            put_text(buf, name.as_str());
            put_term(buf, msg)?;
        }
        Wire::SpawnRequest {
            reference,
            from,
            module,
            function,
            args,
            link,
            monitor,
            group_leader,
        } => {
            put_ref(buf, *reference);
            put_pid(buf, *from);
            put_text(buf, module.as_str());
            put_text(buf, function.as_str());
            buf.push(u8::from(*link));
            buf.push(u8::from(*monitor));
            buf.push(u8::from(group_leader.is_some()));
            if let Some(gl) = group_leader {
                put_pid(buf, *gl);
            }
            put_varint(buf, args.len() as u64);
            for arg in args {
                put_term(buf, arg)?;
            }
        }
        Wire::SpawnReply {
            reference,
            to,
            result,
        } => {
            put_to(buf, *to);
            put_ref(buf, *reference);
            match result {
                Ok(pid) => {
                    buf.push(RESULT_OK);
                    put_pid(buf, *pid);
                }
                Err(reason) => {
                    buf.push(RESULT_ERROR);
                    put_term(buf, reason)?;
                }
            }
        }
        Wire::Peers { nodes } => {
            put_varint(buf, nodes.len() as u64);
            for node in nodes {
                put_text(buf, node);
            }
        }
    }
    Ok(())
}

/// A spawn reply's result: the new pid follows.
const RESULT_OK: u8 = 0;
/// A spawn reply's result: the reason (a term) follows.
const RESULT_ERROR: u8 = 1;

/// Decodes one whole message; the error says which kind of message and what is wrong.
pub(super) fn decode(bytes: &[u8]) -> Result<Wire, String> {
    let mut r = Reader(bytes);
    let byte = r.byte().map_err(|_| "empty message".to_owned())?;
    let tag = Tag::from_byte(byte).ok_or_else(|| {
        format!(
            "unknown message tag {byte} (known: 0 to {})",
            Tag::ALL.len() - 1
        )
    })?;
    decode_body(tag, r).map_err(|why| format!("{tag:?} message: {why}"))
}

fn decode_body(tag: Tag, mut r: Reader<'_>) -> Result<Wire, String> {
    let signal = |to: ToPid, signal: Signal| Wire::Signal { to, signal };
    let msg = match tag {
        Tag::Tick => Wire::Tick,
        // A term that comes last is the rest of the message (read by the term codec's
        // direct decoder where it can: see `decode_embedded`).
        Tag::Send => {
            let to = r.to()?;
            return Ok(signal(to, Signal::Message(r.last_term()?)));
        }
        Tag::Exit | Tag::LinkExit => {
            let (to, from) = (r.to()?, r.pid()?);
            let exit = Signal::Exit {
                from,
                reason: r.last_term()?,
                linked: tag == Tag::LinkExit,
            };
            return Ok(signal(to, exit));
        }
        Tag::Link => signal(r.to()?, Signal::Link { from: r.pid()? }),
        Tag::Unlink => signal(r.to()?, Signal::Unlink { from: r.pid()? }),
        Tag::Monitor | Tag::Demonitor | Tag::Info => {
            let (to, from, reference) = (r.to()?, r.pid()?, r.reference()?);
            signal(
                to,
                match tag {
                    Tag::Monitor => Signal::Monitor { from, reference },
                    Tag::Demonitor => Signal::Demonitor { from, reference },
                    _ => Signal::Info { from, reference },
                },
            )
        }
        Tag::Down => {
            let (to, from, reference) = (r.to()?, r.pid()?, r.reference()?);
            let down = Signal::Down {
                from,
                reference,
                reason: r.last_term()?,
            };
            return Ok(signal(to, down));
        }
        Tag::MonitorName | Tag::DemonitorName => {
            let (to, from, name, reference) = (r.to()?, r.pid()?, r.atom()?, r.reference()?);
            signal(
                to,
                if tag == Tag::MonitorName {
                    Signal::MonitorName {
                        from,
                        name,
                        reference,
                    }
                } else {
                    Signal::DemonitorName {
                        from,
                        name,
                        reference,
                    }
                },
            )
        }
        Tag::RegSend => {
            let (from, name) = (r.pid()?, r.atom()?);
            return Ok(Wire::RegSend {
                from,
                name,
                msg: r.last_term()?,
            });
        }
        Tag::SpawnRequest => {
            let (reference, from) = (r.reference()?, r.pid()?);
            let (module, function) = (r.atom()?, r.atom()?);
            let (link, monitor) = (r.bool()?, r.bool()?);
            let group_leader = if r.bool()? { Some(r.pid()?) } else { None };
            let n = r.count()?;
            let mut args = Vec::with_capacity(n);
            for _ in 0..n {
                args.push(r.term()?);
            }
            Wire::SpawnRequest {
                reference,
                from,
                module,
                function,
                args,
                link,
                monitor,
                group_leader,
            }
        }
        Tag::SpawnReply => {
            let (to, reference) = (r.to()?, r.reference()?);
            let result = match r.byte()? {
                RESULT_OK => Ok(r.pid()?),
                RESULT_ERROR => Err(r.last_term()?),
                other => return Err(format!("spawn result {other} (0: ok, 1: error)")),
            };
            return Ok(Wire::SpawnReply {
                reference,
                to,
                result,
            });
        }
        Tag::Peers => {
            let n = r.count()?;
            let mut nodes = Vec::with_capacity(n);
            for _ in 0..n {
                nodes.push(r.text()?.to_owned());
            }
            Wire::Peers { nodes }
        }
    };
    r.end()?;
    Ok(msg)
}

/// The destination and the term's bytes of a plain message (see `wire::split_message`).
pub(super) fn split_send(body: &[u8]) -> Option<(ToPid, &[u8])> {
    let (&tag, rest) = body.split_first()?;
    if tag != Tag::Send as u8 {
        return None;
    }
    let mut r = Reader(rest);
    let to = r.to().ok()?;
    Some((to, r.0))
}

/// An unsigned LEB128 varint: 7 bits a byte, least significant first, the high bit set
/// on every byte but the last.
fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_text(buf: &mut Vec<u8>, text: &str) {
    put_varint(buf, text.len() as u64);
    buf.extend_from_slice(text.as_bytes());
}

fn put_to(buf: &mut Vec<u8>, to: ToPid) {
    put_varint(buf, u64::from(to.creation));
    put_varint(buf, to.id);
}

/// As the term codec writes a pid's payload.
fn put_pid(buf: &mut Vec<u8>, pid: Pid) {
    put_text(buf, pid.node().as_str());
    put_varint(buf, u64::from(pid.creation()));
    put_varint(buf, pid.id());
}

/// As the term codec writes a reference's payload.
fn put_ref(buf: &mut Vec<u8>, r: Ref) {
    put_text(buf, r.node().as_str());
    put_varint(buf, u64::from(r.creation()));
    put_varint(buf, r.id());
}

/// A term as the term codec writes it inside a message (no version byte).
fn put_term(buf: &mut Vec<u8>, term: &Term) -> Result<(), String> {
    postcard::serialize_with_flavor(term, Append(buf)).map_err(|e| format!("cannot encode: {e}"))
}

/// Postcard output appended to a `Vec` a slice at a time (`postcard::to_extend` goes
/// byte by byte: a 64 KiB binary cost more than its copy).
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// The bytes of a message not yet read.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let (&b, rest) = self.0.split_first().ok_or("truncated")?;
        self.0 = rest;
        Ok(b)
    }

    /// A varint in its shortest form whose value fits in `bits` bits.
    fn varint(&mut self, bits: u32) -> Result<u64, String> {
        let mut out = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            if i == 9 && part > 1 {
                return Err("varint overflows 64 bits".into());
            }
            out |= part << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err("varint not in its shortest form".into());
                }
                if bits < 64 && out >> bits != 0 {
                    return Err(format!("varint {out} does not fit in {bits} bits"));
                }
                return Ok(out);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    /// A count of items that take at least a byte each: never more than the bytes left
    /// (so a lying count allocates nothing).
    fn count(&mut self) -> Result<usize, String> {
        let n = self.varint(64)?;
        match usize::try_from(n) {
            Ok(n) if n <= self.0.len() => Ok(n),
            _ => Err(format!("count {n} exceeds the {} bytes left", self.0.len())),
        }
    }

    fn text(&mut self) -> Result<&'a str, String> {
        let len = self.count()?;
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        std::str::from_utf8(text).map_err(|e| format!("text is not UTF-8: {e}"))
    }

    fn atom(&mut self) -> Result<Atom, String> {
        Atom::try_new(self.text()?).map_err(|e| format!("bad atom: {e}"))
    }

    fn bool(&mut self) -> Result<bool, String> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("flag byte {other} (0 or 1)")),
        }
    }

    fn to(&mut self) -> Result<ToPid, String> {
        let creation = self.varint(32)? as u32;
        let id = self.varint(64)?;
        Ok(ToPid { creation, id })
    }

    fn node_id(&mut self) -> Result<(Atom, u32, u64), String> {
        let node = self.atom()?;
        let creation = self.varint(32)? as u32;
        Ok((node, creation, self.varint(64)?))
    }

    fn pid(&mut self) -> Result<Pid, String> {
        let (node, creation, id) = self.node_id()?;
        Ok(Pid::from_parts(node, creation, id))
    }

    fn reference(&mut self) -> Result<Ref, String> {
        let (node, creation, id) = self.node_id()?;
        Ok(Ref::from_parts(node, creation, id))
    }

    /// A term followed by more of the message.
    fn term(&mut self) -> Result<Term, String> {
        let (term, rest) =
            postcard::take_from_bytes::<Term>(self.0).map_err(|e| format!("bad term: {e}"))?;
        self.0 = rest;
        Ok(term)
    }

    /// A term that ends the message.
    fn last_term(self) -> Result<Term, String> {
        decode_embedded(self.0).map_err(|e| format!("bad term: {e}"))
    }

    fn end(self) -> Result<(), String> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(format!("{n} trailing bytes")),
        }
    }
}
