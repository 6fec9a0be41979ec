//! I/O through the group leader: OTP's I/O protocol, for output.
//!
//! A process writes with [`put_chars`]: it sends its group leader (see
//! [`Ctx::group_leader`]; inherited on spawn, and across nodes by a remote spawn) an
//! I/O request and waits for the reply, as `io:put_chars/1` does:
//!
//! ```text
//! {:io_request, from, reply_as, {:put_chars, :unicode, chars}}   client -> I/O server
//! {:io_reply, reply_as, :ok}                                     I/O server -> client
//! {:io_reply, reply_as, {:error, reason}}                        (it could not)
//! ```
//!
//! `from` is the client's pid, `reply_as` a fresh reference (the reference of the
//! client's monitor of its leader, as OTP's `io` uses). So a process spawned on another
//! node by a console's process prints on the console's terminal: its group leader is
//! the console's I/O server.
//!
//! [`put_chars`] is bounded: it monitors the leader, and if the leader is gone (or its
//! node unreachable: the monitor's `DOWN`), or gives no reply within
//! [`REPLY_TIMEOUT`], the text goes to this node's standard output instead, and the
//! call returns ([`Written::Stdout`] says why). A reply that comes after the timeout
//! is dropped, not left in the mailbox. Text longer than [`MAX_CHARS`] bytes goes as
//! several requests of at most that many bytes each (split between characters).
//!
//! With no group leader, and in two cases where waiting for one is impossible (the
//! process is its own group leader; it is a [`Reactor`](crate::Reactor), which may not
//! wait), the text goes straight to this node's standard output.
//!
//! An I/O server ([`start_server`]) is a process that answers these requests by
//! handing the text to a sink (standard output for a terminal, a channel in a test).
//! It takes the requests `{:put_chars, encoding, chars}` and `{:put_chars, chars}`
//! (`latin1`), where `chars` is OTP's chardata (a string or binary, a code point, or a
//! list of those, nested); the text of one request is at most [`MAX_CHARS`] bytes
//! (more: `{:error, {:too_large, max}}`, nothing written). Any other request is
//! answered `{:error, :request}`, as the I/O protocol asks; chars that are not
//! chardata (or a binary that is not UTF-8 for `:unicode`) `{:error, :badarg}`.
//! Messages that are not I/O requests are dropped. Input requests (`get_line` and the
//! like) are not served: a console reads its own input.

use std::io::Write;
use std::time::{Duration, Instant};

use super::Flow;
use super::ctx::Ctx;
use super::node::Node;
use crate::term::{Atom, Pid, Term};

/// The most bytes of text one put_chars request carries (64 KiB): [`put_chars`]
/// splits longer text, and [`start_server`] refuses a longer request.
pub const MAX_CHARS: usize = 64 * 1024;

/// How long [`put_chars`] waits for its group leader's reply to one request before it
/// writes to this node's standard output instead.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where [`put_chars`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub enum Written {
    /// The group leader, this pid, took it all.
    Leader(Pid),
    /// This node's standard output (all of it, or what the leader had not taken),
    /// for this reason.
    Stdout(Fallback),
}

/// Why [`put_chars`] wrote to this node's standard output.
#[derive(Clone, Debug, PartialEq)]
pub enum Fallback {
    /// The process has no group leader.
    NoLeader,
    /// The process is its own group leader (it would wait for itself).
    OwnLeader,
    /// The process is a reactor, which may not wait for a reply.
    InReactor,
    /// The group leader is gone, or its node unreachable (the monitor's reason).
    LeaderDown(Term),
    /// The group leader gave no reply within [`REPLY_TIMEOUT`].
    Timeout,
}

/// The group leader answered a request with an error; what came before it was
/// written, the rest not.
#[derive(Clone, Debug, PartialEq)]
pub struct IoError {
    /// The group leader.
    pub leader: Pid,
    /// The `reason` of its `{:error, reason}`.
    pub reason: Term,
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the group leader {} refused the output: {}",
            self.leader, self.reason
        )
    }
}

impl std::error::Error for IoError {}

impl From<IoError> for Term {
    fn from(e: IoError) -> Term {
        Term::tuple(vec![Term::Atom(Atom::ERROR), e.reason])
    }
}

/// Writes `text` through this process's group leader (`IO.write`; `IO.puts` is this
/// with a `"\n"` added), waiting for each reply at most [`REPLY_TIMEOUT`]; see the
/// [module docs](self) for where it goes when the leader can't take it.
pub fn put_chars(ctx: &mut Ctx, text: &str) -> Result<Written, IoError> {
    put_chars_within(ctx, text, REPLY_TIMEOUT)
}

/// [`put_chars`] waiting at most `timeout` for each reply.
pub fn put_chars_within(ctx: &mut Ctx, text: &str, timeout: Duration) -> Result<Written, IoError> {
    let leader = match ctx.group_leader() {
        None => return Ok(stdout(text, Fallback::NoLeader)),
        Some(l) if l == ctx.pid() => return Ok(stdout(text, Fallback::OwnLeader)),
        Some(_) if super::reactor::in_reactor() => {
            return Ok(stdout(text, Fallback::InReactor));
        }
        Some(l) => l,
    };
    let mut rest = text;
    while !rest.is_empty() {
        let (chunk, after) = rest.split_at(chunk_end(rest, MAX_CHARS));
        match request(ctx, leader, chunk, timeout) {
            Reply::Ok => rest = after,
            Reply::Error(reason) => return Err(IoError { leader, reason }),
            Reply::Fallback(why) => return Ok(stdout(rest, why)),
        }
    }
    Ok(Written::Leader(leader))
}

/// The end of the longest prefix of `s` of at most `max` bytes that ends between
/// characters (at least one character).
fn chunk_end(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    if end == 0 {
        s.chars().next().map_or(0, char::len_utf8)
    } else {
        end
    }
}

enum Reply {
    Ok,
    Error(Term),
    Fallback(Fallback),
}

/// One put_chars request to `leader`, and its reply.
fn request(ctx: &mut Ctx, leader: Pid, chars: &str, timeout: Duration) -> Reply {
    let mref = ctx.monitor(leader);
    ctx.send(
        leader,
        Term::tuple(vec![
            Term::atom("io_request"),
            Term::Pid(ctx.pid()),
            Term::Ref(mref),
            Term::tuple(vec![
                Term::atom("put_chars"),
                Term::atom("unicode"),
                Term::str(chars),
            ]),
        ]),
    );
    let deadline = Instant::now() + timeout;
    let got = ctx.receive_with(
        |m| {
            if let Some([Term::Ref(r), reply]) = m.tagged("io_reply")
                && *r == mref
            {
                return Some(Ok(reply.clone()));
            }
            match m.tagged("DOWN") {
                Some([Term::Ref(r), _, _, reason]) if *r == mref => Some(Err(reason.clone())),
                _ => None,
            }
        },
        Some(deadline.saturating_duration_since(Instant::now())),
    );
    match got {
        Some(Ok(reply)) => {
            ctx.demonitor_flush(mref);
            match reply.tagged("error") {
                Some([reason]) => Reply::Error(reason.clone()),
                _ if reply.is_atom("ok") => Reply::Ok,
                _ => Reply::Error(reply),
            }
        }
        Some(Err(reason)) => Reply::Fallback(Fallback::LeaderDown(reason)),
        None => {
            ctx.demonitor_flush(mref);
            // A late `{:io_reply, mref, _}` is dropped when it comes.
            ctx.abandon_tag(mref);
            Reply::Fallback(Fallback::Timeout)
        }
    }
}

fn stdout(text: &str, why: Fallback) -> Written {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Written::Stdout(why)
}

/// Where an I/O server's text goes: called with the text of each request it accepts,
/// in the order they come.
pub type Sink = Box<dyn FnMut(&str) + Send>;

/// Starts an I/O server on `node` that writes what it is asked to `sink` (see the
/// [module docs](self) for what it answers); make it a group leader with
/// [`Ctx::set_group_leader`] or [`Node::set_default_group_leader`]. It runs until the
/// node stops or it is killed; a sink that panics ends it (its clients then fall back
/// to standard output).
pub fn start_server(node: &Node, mut sink: Sink) -> Pid {
    node.spawn(move |ctx: &mut Ctx, msg: Term| {
        serve(ctx, &mut sink, &msg);
        Flow::Continue
    })
}

/// Answers one message to an I/O server.
fn serve(ctx: &mut Ctx, sink: &mut Sink, msg: &Term) {
    let Some([Term::Pid(from), reply_as, req]) = msg.tagged("io_request") else {
        log::debug!("I/O server {}: not an I/O request, dropped", ctx.pid());
        return;
    };
    let reply = match put_chars_text(req) {
        Ok(text) => {
            sink(&text);
            Term::atom("ok")
        }
        Err(reason) => Term::tuple(vec![Term::Atom(Atom::ERROR), reason]),
    };
    ctx.send(
        *from,
        Term::tuple(vec![Term::atom("io_reply"), reply_as.clone(), reply]),
    );
}

/// The text of a put_chars request, or the reason to refuse it.
fn put_chars_text(req: &Term) -> Result<String, Term> {
    let (latin1, chars) = match req.tagged("put_chars") {
        Some([Term::Atom(enc), chars]) if enc.as_str() == "unicode" => (false, chars),
        Some([Term::Atom(enc), chars]) if enc.as_str() == "latin1" => (true, chars),
        Some([chars]) => (true, chars),
        _ => return Err(Term::atom("request")),
    };
    chardata(chars, latin1, MAX_CHARS)
}

/// `chars` (chardata: a string or binary, a code point, or a list of those, nested)
/// as text of at most `max` bytes. Walks the term with a stack of its own, so a deeply
/// nested list costs heap, not the thread's stack.
fn chardata(chars: &Term, latin1: bool, max: usize) -> Result<String, Term> {
    let too_large = || Term::tuple(vec![Term::atom("too_large"), Term::from(max)]);
    let badarg = || Term::Atom(Atom::BADARG);
    let mut out = String::new();
    let mut stack: Vec<std::slice::Iter<'_, Term>> = Vec::new();
    let mut next = Some(chars);
    loop {
        let t = match next.take() {
            Some(t) => t,
            None => match stack.last_mut() {
                None => return Ok(out),
                Some(it) => match it.next() {
                    Some(t) => t,
                    None => {
                        stack.pop();
                        continue;
                    }
                },
            },
        };
        // Each piece is measured before it is copied: a huge one is refused whole.
        let fits = |out: &String, more: usize| out.len().saturating_add(more) <= max;
        match t {
            Term::List(items) => stack.push(items.iter()),
            Term::Str(s) => {
                if latin1 && s.chars().any(|c| u32::from(c) > 0xff) {
                    return Err(badarg());
                }
                if !fits(&out, s.len()) {
                    return Err(too_large());
                }
                out.push_str(s);
            }
            Term::Binary(b) if latin1 => {
                // A byte is one character, of one or two bytes of UTF-8.
                if !fits(&out, b.len()) {
                    return Err(too_large());
                }
                out.extend(b.iter().map(|&byte| char::from(byte)));
            }
            Term::Binary(b) => {
                if !fits(&out, b.len()) {
                    return Err(too_large());
                }
                out.push_str(std::str::from_utf8(b).map_err(|_| badarg())?);
            }
            Term::Int(c) => {
                let c = u32::try_from(*c)
                    .ok()
                    .filter(|&c| !latin1 || c <= 0xff)
                    .and_then(char::from_u32)
                    .ok_or_else(badarg)?;
                out.push(c);
            }
            _ => return Err(badarg()),
        }
        if out.len() > max {
            return Err(too_large());
        }
    }
}

#[cfg(test)]
mod tests;
