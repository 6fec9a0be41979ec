//! The node's I/O thread: one mio event loop for the listener and every connection.
//!
//! It accepts connections, runs handshakes ([`handshake`](super::handshake)) with a
//! deadline each, reads frames and dispatches what arrives (signals straight into local
//! mailboxes), writes what senders could not (on writability), and keeps time: ticks on
//! quiet connections, `net_tick_timeout` for silent peers, and connection attempts that
//! take too long. Plain messages read for one process are handed to its mailbox in
//! batches ([`delivery`](super::delivery)); a run of small ones goes undecoded, for the
//! process to decode on its own thread, and a large message is decoded from a buffer
//! of its own that its binaries share and that comes back for reuse
//! ([`Reassembly`]). Nothing here blocks: look-ups that may
//! block (the port mapper) run on the resolver thread. After traffic the loop polls without sleeping for 200 us, so a
//! prompt reply finds it awake; an idle node sleeps in `poll`. A socket is read for at
//! most [`READ_BUDGET`] chunks per turn of the loop, then read on in the next turn: a
//! peer flooding this node can't keep it from ticking (or serving other peers), or the
//! flooding peer, hearing nothing back, would declare it down after the tick time.
//!
//! Trouble from a peer (bad frames, failed or timed-out handshakes, too many handshakes,
//! forged signals, a message that its receiver finds does not decode) closes only that
//! connection and is logged once per kind per peer per minute
//! ([`log_limit`](super::log_limit)). A refusal as `Simultaneous` gives the peer's own
//! connection 1 s to take over before the attempt fails. One as `Duplicate`
//! from a peer this node was connected to before (it has not yet seen the end of the
//! connection this side gave up) dials again every 50 ms until the connect timeout;
//! from any other name (a port mapper entry pointing at a node connected under its
//! own name) it gets the same 1 s. A reset or broken connection is down with
//! `connection_closed`.
//!
//! Admission (who may connect) is decided here, on the acceptor side, when a `Hello`
//! arrives from node X:
//! - a connection to X is up with the same creation: refused (`Duplicate`);
//! - it is up with another creation: X restarted; the old connection goes down first;
//! - this node is itself connecting to X: the connection started by the node with the
//!   greater name wins, so both sides decide alike (`Simultaneous` refuses the other);
//! - otherwise: admitted.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use super::conn::{Conn, ON_IO_THREAD, Phase};
use super::delivery::BadMessage;
use super::frame::{FrameDecoder, write_frame};
use super::handshake::{
    Acceptor, HandshakeError, HandshakeMsg, Identity, Initiator, PeerInfo, RefuseReason, Step,
};
use super::net::{Command, NetInner};
use super::wire::{KIND_WHOLE, Reassembly, Wire, split_message};
use crate::rt::{IdBuild, MessageSource};
use crate::term::Atom;

mod dispatch;

pub(crate) const LISTENER: Token = Token(0);
pub(crate) const WAKER: Token = Token(1);
const MAX_HANDSHAKING: usize = 1024;
const MAX_PARTIAL_MESSAGES: usize = 64;

enum Hs {
    Initiator(Initiator),
    Acceptor(Acceptor),
    Done,
}

struct IoConn {
    stream: Arc<TcpStream>,
    decoder: FrameDecoder,
    reassembly: Reassembly,
    hs: Hs,
    /// Handshake frames not yet written.
    hs_out: Vec<u8>,
    /// The shared connection: the one being dialled, or the one installed when up.
    conn: Option<Arc<Conn>>,
    /// Told when a message of this connection turns out malformed in its receiver.
    source: Option<Arc<dyn MessageSource>>,
    deadline: Option<Instant>,
    last_recv: Instant,
    peer: Option<Atom>,
    /// Close once the handshake bytes are out (after a refusal).
    closing: Option<String>,
}

/// Whether an I/O error means the peer closed or reset the connection (not a local
/// failure): reported as `:connection_closed`, as OTP does.
fn is_peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

/// How long the I/O loop keeps looking for events without sleeping after some came
/// (yielding the CPU between looks). A node in a conversation (a call, a lock round,
/// a pg broadcast) usually hears back within this, and a sleeping I/O thread costs
/// 25 us or more to wake on a small VM. 200 us against 50: rpc 55 -> 38 us, global
/// register 202 -> 175 us, pg propagation 62 -> 33 us (medians of 3 interleaved runs).
/// An idle node never spins; a tick costs one spin per quarter tick time.
const IO_SPIN: Duration = Duration::from_micros(200);

/// Reads (each up to the decoder's free room, 64 KiB or more once traffic flows) from
/// one socket per turn of the loop, before the loop turns
/// (timers, ticks, other sockets) and comes back to it.
const READ_BUDGET: usize = 16;

/// The largest message handed to its process undecoded (see `delivery`).
const ENCODED_MAX: usize = 1024;

pub(crate) struct IoLoop {
    net: Weak<NetInner>,
    poll: Poll,
    listener: TcpListener,
    commands: Receiver<Command>,
    /// By token (numbers this loop hands out: a cheap hash, looked up per frame).
    conns: HashMap<Token, IoConn, IdBuild>,
    /// Sockets that used up their read budget with bytes maybe left unread: read on in
    /// the next turn (edge-triggered, they get no new event for those bytes).
    unread: Vec<Token>,
    /// Connections whose attempt was refused as `Duplicate`, to dial again at the time
    /// given (see [`IoLoop::handshake_failed`]).
    redials: Vec<(Instant, Arc<Conn>, SocketAddr)>,
    next_token: usize,
    /// One log line per kind of trouble per peer per minute.
    log_limit: super::log_limit::LogLimiter,
    /// Plain messages read for one local process, not yet handed over.
    batch: super::delivery::DeliveryBatch,
}

fn identity(net: &NetInner) -> Identity {
    Identity {
        name: net.name.as_str().to_owned(),
        creation: net.creation,
        hidden: net.hidden,
    }
}

impl IoLoop {
    pub(crate) fn new(
        net: Weak<NetInner>,
        poll: Poll,
        mut listener: TcpListener,
        commands: Receiver<Command>,
    ) -> io::Result<IoLoop> {
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(IoLoop {
            net,
            poll,
            listener,
            commands,
            conns: HashMap::default(),
            unread: Vec::new(),
            redials: Vec::new(),
            log_limit: super::log_limit::LogLimiter::new(),
            next_token: 2,
            batch: Default::default(),
        })
    }

    pub(crate) fn run(mut self) {
        ON_IO_THREAD.with(|f| f.set(true));
        let mut events = Events::with_capacity(256);
        // After traffic, the loop looks for more without sleeping for a moment: a reply
        // often comes within tens of microseconds, and waking a sleeping thread costs
        // as much again. An idle node never spins.
        let mut spin_until: Option<Instant> = None;
        loop {
            let Some(net) = self.net.upgrade() else {
                return;
            };
            // Bytes left unread last turn: look for events without waiting.
            let timeout = if self.unread.is_empty() {
                self.next_timeout(&net)
            } else {
                Duration::ZERO
            };
            drop(net);
            let mut woke = false;
            while self.unread.is_empty() && spin_until.is_some_and(|t| Instant::now() < t) {
                if self.poll.poll(&mut events, Some(Duration::ZERO)).is_ok() && !events.is_empty() {
                    woke = true;
                    break;
                }
                std::thread::yield_now();
            }
            if !woke
                && let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                log::error!("net poll failed: {e}");
                return;
            }
            spin_until = (!events.is_empty()).then(|| Instant::now() + IO_SPIN);
            let Some(net) = self.net.upgrade() else {
                return;
            };
            for t in std::mem::take(&mut self.unread) {
                self.on_readable(&net, t, true);
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(&net),
                    WAKER => {
                        if self.commands(&net) {
                            self.stop(&net);
                            return;
                        }
                    }
                    t => self.conn_event(
                        &net,
                        t,
                        match (ev.is_read_closed() || ev.is_error(), ev.is_readable()) {
                            (true, _) => Some(true),
                            (false, true) => Some(false),
                            (false, false) => None,
                        },
                        ev.is_writable(),
                    ),
                }
            }
            self.timers(&net);
        }
    }

    fn next_timeout(&self, net: &NetInner) -> Duration {
        let mut t =
            (net.config.tick_time / 8).clamp(Duration::from_millis(10), Duration::from_millis(500));
        let now = Instant::now();
        for c in self.conns.values() {
            if let Some(d) = c.deadline {
                t = t.min(d.saturating_duration_since(now));
            }
        }
        for (at, _, _) in &self.redials {
            t = t.min(at.saturating_duration_since(now));
        }
        t
    }

    fn register(&mut self, mut stream: TcpStream) -> io::Result<(Token, Arc<TcpStream>)> {
        let token = Token(self.next_token);
        self.next_token += 1;
        self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let _ = stream.set_nodelay(true);
        Ok((token, Arc::new(stream)))
    }

    fn accept(&mut self, net: &Arc<NetInner>) {
        loop {
            match self.listener.accept() {
                Ok((stream, from)) => {
                    let handshaking = self
                        .conns
                        .values()
                        .filter(|c| !matches!(c.hs, Hs::Done))
                        .count();
                    if handshaking >= MAX_HANDSHAKING {
                        if let Some(n) = self.log_limit.check(
                            &from.ip().to_string(),
                            "too many handshakes",
                            Instant::now(),
                        ) {
                            log::warn!(
                                "refusing connection from {from}: {handshaking} handshakes in \
                                 progress{}",
                                super::log_limit::left_out(n)
                            );
                        }
                        continue;
                    }
                    match self.register(stream) {
                        Ok((token, stream)) => {
                            let cookies = net.cookies.read();
                            let acceptor = Acceptor::new(identity(net), &cookies.default)
                                .with_peer_cookies(cookies.per_peer.clone());
                            drop(cookies);
                            self.conns
                                .insert(token, new_io(net, stream, Hs::Acceptor(acceptor), None));
                        }
                        Err(e) => log::warn!("cannot register connection from {from}: {e}"),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Handles queued commands; true when asked to stop.
    fn commands(&mut self, net: &Arc<NetInner>) -> bool {
        while let Ok(cmd) = self.commands.try_recv() {
            match cmd {
                Command::Stop => return true,
                Command::Dial { conn, addr } => self.dial(net, conn, addr),
                Command::BadMessage { conn, why } => {
                    let token = self
                        .conns
                        .iter()
                        .find(|(_, c)| c.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, &conn)))
                        .map(|(t, _)| *t);
                    if let Some(t) = token {
                        let why = format!("malformed message: {why}");
                        self.warn_peer(t, "bad message", |who| format!("closing {who}: {why}"));
                        self.close(net, t, &why);
                    }
                }
                Command::Disconnect(node) => {
                    let tokens: Vec<Token> = self
                        .conns
                        .iter()
                        .filter(|(_, c)| matches!(c.hs, Hs::Done) && c.peer == Some(node))
                        .map(|(t, _)| *t)
                        .collect();
                    for t in tokens {
                        self.close(net, t, "disconnect");
                    }
                }
            }
        }
        false
    }

    fn dial(&mut self, net: &Arc<NetInner>, conn: Arc<Conn>, addr: SocketAddr) {
        if !matches!(conn.phase(), Phase::Connecting) {
            return;
        }
        let stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => return net.conn_down(&conn, &format!("connect to {addr}: {e}")),
        };
        match self.register(stream) {
            Ok((token, stream)) => {
                let cookie = net.cookie_for(conn.peer.as_str());
                let (initiator, hello) =
                    Initiator::new(identity(net), Some(conn.peer.as_str().to_owned()), &cookie);
                let mut io = new_io(net, stream, Hs::Initiator(initiator), Some(conn));
                write_frame(&mut io.hs_out, &hello.encode());
                self.conns.insert(token, io);
                self.flush_handshake(net, token);
            }
            Err(e) => net.conn_down(&conn, &format!("register connection to {addr}: {e}")),
        }
    }

    /// `readable`: `None` if not, else whether the socket must be read to its end (it
    /// was closed or failed), not just until a read comes back short.
    fn conn_event(
        &mut self,
        net: &Arc<NetInner>,
        token: Token,
        readable: Option<bool>,
        writable: bool,
    ) {
        if writable {
            self.on_writable(net, token);
        }
        if let Some(to_the_end) = readable {
            self.on_readable(net, token, to_the_end);
        }
    }

    fn on_writable(&mut self, net: &Arc<NetInner>, token: Token) {
        let Some(io) = self.conns.get(&token) else {
            return;
        };
        if !io.hs_out.is_empty() {
            self.flush_handshake(net, token);
            return;
        }
        if let (Hs::Done, Some(conn)) = (&io.hs, &io.conn) {
            let conn = conn.clone();
            let mut st = conn.state.lock();
            if let Err(e) = conn.flush_locked(&mut st) {
                drop(st);
                let why = if is_peer_gone(&e) {
                    "connection_closed".to_owned()
                } else {
                    format!("write failed: {e}")
                };
                self.close(net, token, &why);
            }
        }
    }

    fn flush_handshake(&mut self, net: &Arc<NetInner>, token: Token) {
        let Some(io) = self.conns.get_mut(&token) else {
            return;
        };
        while !io.hs_out.is_empty() {
            match io::Write::write(&mut &*io.stream, &io.hs_out) {
                Ok(n) => {
                    io.hs_out.drain(..n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected
                    ) =>
                {
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let why = format!("handshake write failed: {e}");
                    return self.close(net, token, &why);
                }
            }
        }
        if let Some(why) = io.closing.take() {
            return self.close(net, token, &why);
        }
        // The handshake bytes are out: ordinary traffic may use the socket now.
        if let (Hs::Done, Some(conn)) = (&io.hs, &io.conn) {
            let mut st = conn.state.lock();
            if st.socket.is_none() && matches!(st.phase, Phase::Up { .. }) {
                st.socket = Some(io.stream.clone());
                let _ = conn.flush_locked(&mut st);
            }
        }
    }

    /// Reads what the socket holds. Registered edge-triggered, a socket must be read
    /// until it has nothing left: a read that comes back short of the room it was
    /// given says so without another read (which would only fail with `WouldBlock`;
    /// bytes that arrive later raise a new event). A socket that was closed or failed
    /// (`to_the_end`) is read until the end is seen, as its event will not come again.
    fn on_readable(&mut self, net: &Arc<NetInner>, token: Token, to_the_end: bool) {
        for _ in 0..READ_BUDGET {
            let Some(io) = self.conns.get_mut(&token) else {
                return;
            };
            // Straight into the decoder's buffer: no copy on the way.
            match io.decoder.fill_from(&mut &*io.stream) {
                Ok((0, _)) => return self.close(net, token, "connection_closed"),
                Ok((_, filled)) => {
                    io.last_recv = Instant::now();
                    if !self.frames(net, token) || !(filled || to_the_end) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A peer that went away with unread bytes resets the connection: for
                // the watchers that is the same as a close.
                Err(e) if is_peer_gone(&e) => {
                    return self.close(net, token, "connection_closed");
                }
                Err(e) => return self.close(net, token, &format!("read failed: {e}")),
            }
        }
        // The budget is spent and the socket may hold more: next turn.
        if !self.unread.contains(&token) {
            self.unread.push(token);
        }
    }

    /// Processes buffered frames; false if the connection was closed. The messages
    /// they bring are all handed over to their processes before it returns.
    fn frames(&mut self, net: &Arc<NetInner>, token: Token) -> bool {
        let open = self.frames_in_batches(net, token);
        self.batch.flush(&net.node);
        open
    }

    fn frames_in_batches(&mut self, net: &Arc<NetInner>, token: Token) -> bool {
        loop {
            let Some(io) = self.conns.get_mut(&token) else {
                return false;
            };
            let frame = match io.decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return true,
                Err(e) => {
                    self.warn_peer(token, "bad frame", |who| {
                        format!("closing {who}: bad frame: {e}")
                    });
                    self.close(net, token, &format!("bad frame: {e}"));
                    return false;
                }
            };
            if !matches!(io.hs, Hs::Done) {
                let frame = frame.to_vec();
                if !self.handshake_frame(net, token, &frame) {
                    return false;
                }
                continue;
            }
            if let Some(conn) = &io.conn {
                conn.counters.received(0, frame.len() as u64);
            }
            // A plain message for a process here goes to it undecoded (see `delivery`).
            // A large one is decoded here: copied into a batch, it would be copied twice.
            if let (Some(source), [KIND_WHOLE, body @ ..]) = (&io.source, frame)
                && body.len() <= ENCODED_MAX
                && let Some((to, term)) = split_message(body)
            {
                if let Some(conn) = &io.conn {
                    conn.counters.received(1, 0);
                }
                self.batch
                    .push_encoded(&net.node, to.on(net.name), term, source);
                continue;
            }
            // Decoded from the decoder's buffer, where the frame still lies.
            match io.reassembly.on_frame(frame) {
                Ok(Some(msg)) => {
                    let conn = io.conn.clone();
                    if let Some(conn) = conn {
                        conn.counters.received(1, 0);
                        self.dispatch(net, &conn, msg);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    self.warn_peer(token, "bad message", |who| format!("closing {who}: {e}"));
                    self.close(net, token, &e.to_string());
                    return false;
                }
            }
        }
    }

    /// One handshake message; false if the connection was closed.
    fn handshake_frame(&mut self, net: &Arc<NetInner>, token: Token, frame: &[u8]) -> bool {
        let Some(io) = self.conns.get_mut(&token) else {
            return false;
        };
        let step = match HandshakeMsg::decode(frame) {
            Err(e) => Step::Failed(e),
            Ok(msg) => match &mut io.hs {
                Hs::Initiator(i) => i.on_message(msg),
                Hs::Acceptor(a) => a.on_message(msg),
                Hs::Done => return true,
            },
        };
        self.step(net, token, step)
    }

    fn step(&mut self, net: &Arc<NetInner>, token: Token, step: Step) -> bool {
        match step {
            Step::Send(msg) => {
                if let Some(io) = self.conns.get_mut(&token) {
                    write_frame(&mut io.hs_out, &msg.encode());
                }
                self.flush_handshake(net, token);
                self.conns.contains_key(&token)
            }
            Step::NeedAdmission(peer) => {
                let decision = self.admit(net, &peer);
                let Some(io) = self.conns.get_mut(&token) else {
                    return false;
                };
                if decision.is_ok() {
                    io.peer = Atom::try_new(&peer.name).ok();
                }
                let next = match &mut io.hs {
                    Hs::Acceptor(a) => a.admit(decision),
                    _ => return true,
                };
                self.step(net, token, next)
            }
            Step::SendAndDone(msg, peer) => {
                if let Some(io) = self.conns.get_mut(&token) {
                    write_frame(&mut io.hs_out, &msg.encode());
                }
                // Up here first (so this side counts the peer as connected before the
                // peer can learn it is accepted); the socket is attached for ordinary
                // traffic once the last handshake bytes are out.
                let up = self.install(net, token, peer);
                self.flush_handshake(net, token);
                up && self.conns.contains_key(&token)
            }
            Step::Done(peer) => self.install(net, token, peer),
            Step::Failed(e) => {
                self.handshake_failed(net, token, &e);
                false
            }
            Step::SendAndFail(msg, e) => {
                if let Some(io) = self.conns.get_mut(&token) {
                    write_frame(&mut io.hs_out, &msg.encode());
                    io.closing = Some(format!("handshake failed: {e}"));
                    // Don't let a failed peer hold the connection open.
                    io.deadline = Some(Instant::now() + Duration::from_secs(1));
                }
                match e {
                    // Races of simultaneous connects: expected, not a problem.
                    HandshakeError::Refused(
                        RefuseReason::Simultaneous | RefuseReason::Duplicate,
                    ) => {
                        log::debug!("handshake with {} refused: {e}", self.describe(token))
                    }
                    _ => self.warn_peer(token, "handshake refused", |who| {
                        format!("handshake with {who} refused: {e}")
                    }),
                }
                self.flush_handshake(net, token);
                false
            }
        }
    }

    /// Logs a warning about the peer on `token`, unless one of the same `kind` about the
    /// same peer was logged in the last minute (see [`super::log_limit`]).
    fn warn_peer(&mut self, token: Token, kind: &'static str, line: impl FnOnce(&str) -> String) {
        let Some(io) = self.conns.get(&token) else {
            return;
        };
        let key = match (io.peer, &io.conn) {
            (Some(p), _) => p.as_str().to_owned(),
            (None, Some(c)) => c.peer.as_str().to_owned(),
            _ => io
                .stream
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_else(|_| "?".into()),
        };
        if let Some(n) = self.log_limit.check(&key, kind, Instant::now()) {
            let who = self.describe(token);
            log::warn!("{}{}", line(&who), super::log_limit::left_out(n));
        }
    }

    fn describe(&self, token: Token) -> String {
        let Some(io) = self.conns.get(&token) else {
            return "?".into();
        };
        let addr = io
            .stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "?".into());
        match (io.peer, &io.conn) {
            (Some(p), _) => format!("{p} ({addr})"),
            (None, Some(c)) => format!("{} ({addr})", c.peer),
            _ => addr,
        }
    }

    fn handshake_failed(&mut self, net: &Arc<NetInner>, token: Token, e: &HandshakeError) {
        let who = self.describe(token);
        match e {
            // The peer's own connection to us wins: not a failure.
            HandshakeError::Refused(RefuseReason::Simultaneous) => {
                log::debug!("handshake with {who}: {e}");
                if let Some(io) = self.conns.get_mut(&token)
                    && let Some(conn) = io.conn.take()
                {
                    // The peer's connection to us should take this one over within
                    // moments. If none comes (the address belonged to another node,
                    // e.g. a stale or bogus port mapper entry), the connection fails
                    // after a short grace instead of the whole connect timeout.
                    Self::shorten_to_grace(net, &conn);
                }
            }
            // The peer still holds a connection with us that this side has given up
            // (declared down, disconnected) and it has not seen closed yet. Unless a
            // connection came up meanwhile, dial again shortly, until the connect
            // timeout: what waits to be sent waits, and goes out once the peer has
            // caught up (OTP's acceptor asks instead and replaces the old connection).
            HandshakeError::Refused(RefuseReason::Duplicate) => {
                log::debug!("handshake with {who}: {e}; dialling again");
                if let Some(io) = self.conns.get_mut(&token)
                    && let Ok(addr) = io.stream.peer_addr()
                    && let Some(conn) = io.conn.take()
                {
                    let (connecting, follows_up) = {
                        let st = conn.state.lock();
                        (matches!(st.phase, Phase::Connecting), st.follows_up)
                    };
                    if connecting && follows_up {
                        let at = Instant::now() + Duration::from_millis(50);
                        self.redials.push((at, conn, addr));
                    } else if connecting {
                        // Never connected to this name: more likely an address that
                        // belongs to a node we are connected to under its own name (a
                        // stale or bogus port mapper entry). Fail after the short grace.
                        Self::shorten_to_grace(net, &conn);
                    }
                }
            }
            _ => self.warn_peer(token, "handshake failed", |who| {
                format!("handshake with {who} failed: {e}")
            }),
        }
        self.close(net, token, &format!("handshake failed: {e}"));
    }

    /// Leaves a connection still being set up 1 s (at most its connect timeout) before
    /// it fails.
    fn shorten_to_grace(net: &NetInner, conn: &Conn) {
        let mut st = conn.state.lock();
        if matches!(st.phase, Phase::Connecting) {
            let grace = Duration::from_secs(1).min(net.config.connect_timeout);
            st.since = Instant::now()
                .checked_sub(net.config.connect_timeout.saturating_sub(grace))
                .unwrap_or(st.since);
        }
    }

    /// The admission rule (see the module docs).
    fn admit(&mut self, net: &Arc<NetInner>, peer: &Identity) -> Result<(), RefuseReason> {
        let Ok(name) = Atom::try_new(&peer.name) else {
            return Err(RefuseReason::NotAllowed("bad name".into()));
        };
        if name == net.name {
            return Err(RefuseReason::NotAllowed("same name as this node".into()));
        }
        let existing = net.conns.read().get(&name).cloned();
        let Some(conn) = existing else { return Ok(()) };
        match conn.phase() {
            Phase::Up { creation, .. } if creation == peer.creation => Err(RefuseReason::Duplicate),
            Phase::Up { .. } => {
                net.conn_down(&conn, "the node restarted");
                let tokens: Vec<Token> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, &conn)))
                    .map(|(t, _)| *t)
                    .collect();
                for t in tokens {
                    self.close(net, t, "the node restarted");
                }
                Ok(())
            }
            Phase::Connecting if net.name.as_str() > peer.name.as_str() => {
                Err(RefuseReason::Simultaneous)
            }
            _ => Ok(()),
        }
    }

    /// The handshake succeeded: the connection is up.
    fn install(&mut self, net: &Arc<NetInner>, token: Token, peer: PeerInfo) -> bool {
        let Ok(name) = Atom::try_new(&peer.identity.name) else {
            self.close(net, token, "peer name cannot be interned");
            return false;
        };
        let hidden = peer.identity.hidden || net.hidden;
        let Some(io) = self.conns.get_mut(&token) else {
            return false;
        };
        let conn = match io.conn.clone() {
            Some(c) => c,
            None => net.conn_entry(name, None, false),
        };
        {
            let mut st = conn.state.lock();
            if !matches!(st.phase, Phase::Connecting) {
                drop(st);
                io.conn = None;
                self.close(net, token, "already connected");
                return false;
            }
            // A connection with a hidden node on either end is hidden on both.
            st.phase = Phase::Up {
                creation: peer.identity.creation,
                hidden,
            };
            if io.hs_out.is_empty() {
                st.socket = Some(io.stream.clone());
                let _ = conn.flush_locked(&mut st);
            }
            // Under the lock `connect` waits on: whoever subscribes after `connect`
            // returned gets no nodeup for this node, whoever subscribed before gets it.
            net.notify_watchers(name, true, hidden, "");
        }
        conn.changed.notify_all();
        io.source = Some(Arc::new(BadMessage {
            conn: Arc::downgrade(&conn),
            commands: net.commands.clone(),
            waker: net.waker.clone(),
        }));
        io.conn = Some(conn.clone());
        io.peer = Some(name);
        io.hs = Hs::Done;
        io.deadline = None;
        io.last_recv = Instant::now();
        log::info!("node {name} up (creation {})", peer.identity.creation);
        if !hidden {
            let nodes: Vec<String> = net
                .visible_peers()
                .into_iter()
                .filter(|n| n != name.as_str())
                .collect();
            conn.send(&Wire::Peers { nodes }, |_| {});
        }
        true
    }

    fn close(&mut self, net: &Arc<NetInner>, token: Token, reason: &str) {
        // What was read before the close reaches its processes before the close's
        // `noconnection` signals do.
        self.batch.flush(&net.node);
        let Some(io) = self.conns.remove(&token) else {
            return;
        };
        if let Some(conn) = &io.conn {
            let ours = {
                let st = conn.state.lock();
                match &st.socket {
                    Some(s) => Arc::ptr_eq(s, &io.stream),
                    None => matches!(st.phase, Phase::Connecting),
                }
            };
            if ours {
                net.conn_down(conn, reason);
            }
        }
        let _ = io.stream.shutdown(std::net::Shutdown::Both);
    }

    fn timers(&mut self, net: &Arc<NetInner>) {
        let now = Instant::now();
        let tick = net.config.tick_time;
        let mut expired = Vec::new();
        let mut tick_due = Vec::new();
        for (t, io) in &mut self.conns {
            if io.deadline.is_some_and(|d| now >= d) {
                expired.push((*t, "handshake timed out"));
            } else if matches!(io.hs, Hs::Done) {
                if now.duration_since(io.last_recv) > tick / 4 {
                    // Quiet for a while: buffers kept for large messages can go.
                    io.reassembly.trim();
                }
                if now.duration_since(io.last_recv) > tick {
                    expired.push((*t, "net_tick_timeout"));
                } else if let Some(conn) = &io.conn {
                    let idle = conn.epoch.elapsed().as_millis() as u64
                        - conn.last_sent.load(std::sync::atomic::Ordering::Relaxed);
                    if Duration::from_millis(idle) > tick / 4 {
                        tick_due.push(conn.clone());
                    }
                }
            }
        }
        for (t, why) in expired {
            if why == "net_tick_timeout" {
                log::warn!(
                    "{}: no traffic for {tick:?}; declared down",
                    self.describe(t)
                );
            } else {
                self.warn_peer(t, "handshake timed out", |who| {
                    format!("closing {who}: handshake timed out")
                });
            }
            self.close(net, t, why);
        }
        for conn in tick_due {
            // Idle for a while: a burst's large write buffer can go.
            conn.state.lock().out.trim();
            conn.send(&Wire::Tick, |_| {});
        }
        // Connections that never came up.
        let stale: Vec<Arc<Conn>> = net
            .conns
            .read()
            .values()
            .filter(|c| {
                let st = c.state.lock();
                matches!(st.phase, Phase::Connecting)
                    && now.duration_since(st.since) > net.config.connect_timeout
            })
            .cloned()
            .collect();
        for c in stale {
            net.conn_down(&c, "connect timed out");
        }
        // Attempts refused as duplicates, due again.
        let (due, later) = std::mem::take(&mut self.redials)
            .into_iter()
            .partition(|(at, _, _)| *at <= now);
        self.redials = later;
        for (_, conn, addr) in due {
            if matches!(conn.phase(), Phase::Connecting) {
                self.dial(net, conn, addr);
            }
        }
    }

    fn stop(&mut self, net: &Arc<NetInner>) {
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for t in tokens {
            self.on_writable(net, t);
            self.close(net, t, "node stopped");
        }
        let all: Vec<Arc<Conn>> = net.conns.read().values().cloned().collect();
        for c in all {
            net.conn_down(&c, "node stopped");
        }
    }
}

fn new_io(net: &NetInner, stream: Arc<TcpStream>, hs: Hs, conn: Option<Arc<Conn>>) -> IoConn {
    IoConn {
        stream,
        decoder: FrameDecoder::new(net.config.max_frame),
        reassembly: Reassembly::new(net.config.max_message, MAX_PARTIAL_MESSAGES),
        hs,
        hs_out: Vec::new(),
        conn,
        source: None,
        deadline: Some(Instant::now() + net.config.handshake_timeout),
        last_recv: Instant::now(),
        peer: None,
        closing: None,
    }
}
