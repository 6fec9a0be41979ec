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
//! block (the port mapper) run on the resolver thread. After traffic the loop polls
//! without sleeping for 200 us, so a prompt reply finds it awake; an idle node sleeps
//! in `poll`.
//!
//! ## Who turns the loop
//! The loop sits in a mutex ([`IoShared`]) and one turn runs at a time, on whichever
//! thread: its own I/O thread, or a worker of the node that is waiting (a process in
//! the spin of a receive, or an idle worker looking for work during a conversation;
//! see `Router::poll_io`), which takes a turn if no one else is at it
//! ([`IoShared::turn_now`], never waiting for the lock). A message a worker reads for
//! the process it is running, or for one it then runs, reaches it with no hand-over
//! between threads. Everything a turn reads is handed over before the turn ends, and
//! turns never overlap, so a connection's messages keep their order whoever reads.
//!
//! While a worker has taken a turn within the last [`WORKER_LOOKING`], the I/O thread,
//! where it would spin, stands by instead (parked, for at most [`STANDBY`]): a spinning
//! thread is one more for a CPU to run between the two that do the work. A worker that
//! stops looking to block or park wakes it at once (`Router::stop_polling_io`); one
//! that found its message and goes on computing leaves it standing by until `STANDBY`
//! has passed, so a message for another process can wait that long (500 us) when no
//! other worker of the node is looking. On a CPU shared by both nodes of a round trip
//! this makes two thread switches per round trip where there were four to twelve.
//!
//! A socket is read for at most [`READ_BUDGET`] chunks per turn of the loop, then read
//! on in the next turn: a peer flooding this node can't keep it from ticking (or
//! serving other peers), or the flooding peer, hearing nothing back, would declare it
//! down after the tick time. Timers run after every turn that found events, on the
//! I/O thread's own turns, and on any turn once [`TIMERS_AT_LEAST_EVERY`] has passed.
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
//! - otherwise: admitted. With no connection to X at all, the handshake gets one of its
//!   own (connecting) at once, so a connect to X meanwhile (a `connect`, a send, a peer
//!   list) waits for it instead of dialling a second one that X would admit too.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use crossbeam_utils::sync::{Parker, Unparker};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use parking_lot::Mutex;

use super::conn::{Conn, ON_IO_THREAD, Phase};
use super::frame::{FrameDecoder, write_frame};
use super::handshake::{Acceptor, Identity, Initiator};
use super::net::{Command, NetInner};
use super::wire::{KIND_WHOLE, Reassembly, split_message};
use crate::rt::{IdBuild, MessageSource};
use crate::term::Atom;

mod admission;
mod dispatch;
mod timers;

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

/// How recently a worker must have turned the loop for the spinning I/O thread to leave
/// the sockets to it (see [`IoLoop::run`]). Past this it looks itself again.
const WORKER_LOOKING: Duration = Duration::from_micros(20);

/// How long the I/O thread stands by at most, while workers look, before it checks
/// whether they still do. A worker that stops looking to block or park wakes it at
/// once ([`IoShared::stop_looking`]); one that found its message and computes leaves it
/// standing by until this has passed.
const STANDBY: Duration = Duration::from_micros(500);

/// The longest the timers (ticks, `net_tick_timeout`, handshake and connect deadlines)
/// go unchecked while the loop is turned without a blocking poll.
const TIMERS_AT_LEAST_EVERY: Duration = Duration::from_millis(10);

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
    /// The events buffer, lent to the turn in progress.
    events: Option<Events>,
    /// Until when the I/O thread looks for events without sleeping (see [`IO_SPIN`]);
    /// set by any turn that found some, on whichever thread.
    spin_until: Option<Instant>,
    /// When the timers must run next, whoever turns the loop.
    timers_due: Instant,
    /// Set once the loop has stopped (node stopped or gone): no turn does anything.
    stopped: bool,
}

/// Marks this thread as turning the I/O loop (`ON_IO_THREAD`) until dropped, even
/// if the turn unwinds.
struct OnIoThread(bool);

impl OnIoThread {
    fn set() -> OnIoThread {
        OnIoThread(ON_IO_THREAD.with(|f| f.replace(true)))
    }
}

impl Drop for OnIoThread {
    fn drop(&mut self) {
        ON_IO_THREAD.with(|f| f.set(self.0));
    }
}

/// What a turn of the loop found.
enum Turn {
    Events,
    Nothing,
    Stopped,
}

fn identity(net: &NetInner) -> Identity {
    Identity {
        name: net.name.as_str().to_owned(),
        creation: net.creation,
        hidden: net.hidden,
    }
}

/// The I/O loop as its thread and the node's workers share it.
pub(crate) struct IoShared {
    io: Mutex<IoLoop>,
    /// When a worker last turned the loop (ns since `epoch`; 0: no worker is looking).
    worker_looked: AtomicU64,
    epoch: Instant,
    /// Wakes the I/O thread from its standby (see [`IoLoop::run`]).
    unparker: Unparker,
}

impl IoShared {
    pub(crate) fn new(io: IoLoop, unparker: Unparker) -> IoShared {
        IoShared {
            io: Mutex::new(io),
            worker_looked: AtomicU64::new(0),
            epoch: Instant::now(),
            unparker,
        }
    }

    /// A worker that has been turning the loop stops looking (it is about to block or
    /// park): the I/O thread, if it stood by for it, takes over at once.
    pub(crate) fn stop_looking(&self) {
        self.worker_looked.store(0, Ordering::SeqCst);
        self.unparker.unpark();
    }

    /// A turn of the loop on a thread other than the I/O thread (a worker waiting for
    /// work or for a reply), if no other thread is at it: whatever the sockets hold is
    /// read and handed to its processes here, without waiting. True if anything was
    /// read (events came, or bytes left unread by an earlier turn).
    pub(crate) fn turn_now(&self) -> bool {
        let Some(mut io) = self.io.try_lock() else {
            return false;
        };
        let turned = {
            let _on_io = OnIoThread::set();
            io.turn(Duration::ZERO, false)
        };
        if matches!(turned, Turn::Stopped) {
            return false;
        }
        let now = self.epoch.elapsed().as_nanos() as u64;
        self.worker_looked.store(now, Ordering::Relaxed);
        matches!(turned, Turn::Events)
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
            events: Some(Events::with_capacity(256)),
            spin_until: None,
            timers_due: Instant::now(),
            stopped: false,
        })
    }

    /// The I/O thread: turns the loop until the node stops. Between the looks of its
    /// spin the loop is free for a worker to turn ([`IoShared::turn_now`]).
    pub(crate) fn run(shared: Arc<IoShared>, parker: Parker) {
        ON_IO_THREAD.with(|f| f.set(true));
        let mut spinning = false;
        loop {
            let mut io = if spinning {
                // A worker that looked a moment ago will look again: leave the sockets
                // to it (on a shared CPU, the one that reads is then the one that
                // runs the receiver), and stand by.
                let looked = shared.worker_looked.load(Ordering::SeqCst);
                let now = shared.epoch.elapsed().as_nanos() as u64;
                if looked != 0 && now.saturating_sub(looked) < WORKER_LOOKING.as_nanos() as u64 {
                    parker.park_timeout(STANDBY);
                    continue;
                }
                let Some(io) = shared.io.try_lock() else {
                    std::thread::yield_now();
                    continue;
                };
                io
            } else {
                shared.io.lock()
            };
            // After traffic, the loop looks for more without sleeping for a moment: a
            // reply often comes within tens of microseconds, and waking a sleeping
            // thread costs as much again. An idle node never spins.
            spinning = io.unread.is_empty() && io.spin_until.is_some_and(|t| Instant::now() < t);
            let timeout = match (spinning, io.unread.is_empty()) {
                (true, _) | (false, false) => Duration::ZERO,
                (false, true) => match io.net.upgrade() {
                    Some(net) => io.next_timeout(&net),
                    None => return,
                },
            };
            match io.turn(timeout, !spinning) {
                Turn::Stopped => return,
                Turn::Events => {}
                Turn::Nothing => {
                    if spinning {
                        drop(io);
                        std::thread::yield_now();
                    }
                }
            }
        }
    }

    /// Waits up to `timeout` for events and acts on them, then on sockets left unread
    /// and (if events came, or `timers`) on the timers.
    fn turn(&mut self, timeout: Duration, timers: bool) -> Turn {
        if self.stopped {
            return Turn::Stopped;
        }
        // Workers' turns run the timers too once they are due: workers that keep
        // looking keep the I/O thread standing by, and its own turns with them.
        let timers = timers || Instant::now() >= self.timers_due;
        let mut events = self
            .events
            .take()
            .unwrap_or_else(|| Events::with_capacity(256));
        if let Err(e) = self.poll.poll(&mut events, Some(timeout))
            && e.kind() != io::ErrorKind::Interrupted
        {
            log::error!("net poll failed: {e}");
            self.stopped = true;
            return Turn::Stopped;
        }
        let Some(net) = self.net.upgrade() else {
            self.stopped = true;
            return Turn::Stopped;
        };
        let came = !events.is_empty();
        if came {
            self.spin_until = Some(Instant::now() + IO_SPIN);
        } else if self.unread.is_empty() && !timers {
            self.events = Some(events);
            return Turn::Nothing;
        }
        let had_unread = !self.unread.is_empty();
        for t in std::mem::take(&mut self.unread) {
            self.on_readable(&net, t, true);
        }
        for ev in events.iter() {
            match ev.token() {
                LISTENER => self.accept(&net),
                WAKER => {
                    if self.commands(&net) {
                        self.stop(&net);
                        self.stopped = true;
                        return Turn::Stopped;
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
        self.events = Some(events);
        if came || timers {
            self.timers(&net);
            self.timers_due = Instant::now() + TIMERS_AT_LEAST_EVERY;
        }
        // Bytes left unread last turn were read and handed over: that counts as
        // events for the caller (it must share what landed in its next slot).
        if came || had_unread {
            Turn::Events
        } else {
            Turn::Nothing
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
            Err(e) => {
                conn.note_failure(crate::ConnectError::Unreachable(format!("{addr}: {e}")));
                return net.conn_down(&conn, &format!("connect to {addr}: {e}"));
            }
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
            let mut st = conn.state.lock();
            // Most writable edges (an ACK freed room) find nothing queued: senders
            // write themselves while the socket takes it.
            if st.out.is_empty() {
                return;
            }
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
