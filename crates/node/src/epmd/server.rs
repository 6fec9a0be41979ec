//! An in-process port mapper: Erlang's `epmd` protocol served by one mio thread.
//!
//! Each connection carries one request. `PORT_PLEASE2` and `NAMES` are answered and then
//! closed; `ALIVE2` registers the name for as long as that connection stays open. All
//! sockets are non-blocking, so a slow or silent client only costs its own buffers; a
//! connection that never completes its request (or never reads its answer) is closed
//! after [`IDLE_TIMEOUT`]. Anything malformed closes its connection with a `warn`.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use super::NodeEntry;
use super::codec::{self, Alive2Response, NamesResponse, PortResponse, Request};

/// The most connections served at once (registrations included); more are refused.
pub const MAX_CONNECTIONS: usize = 1024;
/// How long a connection that is not a registration may sit without progress.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// The first token handed to a connection.
const FIRST_CONN: usize = 2;
/// How often idle connections are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(500);

/// A port mapper running on its own thread, bound to `127.0.0.1:port`.
///
/// Stopping it (or dropping it) closes the listener and then every connection, so each
/// registered node sees its registration connection close.
#[derive(Debug)]
pub struct EpmdServer {
    port: u16,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl EpmdServer {
    /// Binds `127.0.0.1:port` (port 0 picks a free one) and starts serving.
    ///
    /// Fails with `AddrInUse` when something already listens there.
    pub fn start(port: u16) -> io::Result<EpmdServer> {
        Self::start_with(port, IDLE_TIMEOUT)
    }

    /// [`start`](Self::start) with another idle timeout (tests use a short one).
    pub(crate) fn start_with(port: u16, idle_timeout: Duration) -> io::Result<EpmdServer> {
        let mut listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
        let port = listener.local_addr()?.port();
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = Arc::new(AtomicBool::new(false));
        let server = Server {
            poll,
            listener,
            conns: HashMap::new(),
            nodes: BTreeMap::new(),
            next_token: FIRST_CONN,
            log_limit: crate::log_limit::LogLimiter::new(),
            next_creation: rand::random(),
            stop: Arc::clone(&stop),
            port,
            idle_timeout,
        };
        let thread = std::thread::Builder::new()
            .name(format!("oxbeam-epmd-{port}"))
            .spawn(move || server.run())?;
        log::debug!("port mapper serving on 127.0.0.1:{port}");
        Ok(EpmdServer {
            port,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Closes the listener and every connection, and joins the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            // The thread still sees the flag within one sweep period.
            log::warn!("port mapper on {}: wake failed: {e}", self.port);
        }
        if thread.join().is_err() {
            log::error!("port mapper thread on {} panicked", self.port);
        }
        log::debug!("port mapper on 127.0.0.1:{} stopped", self.port);
    }
}

impl Drop for EpmdServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One client connection.
struct Conn {
    stream: TcpStream,
    /// The request bytes read so far (at most one request: 2 + `MAX_REQUEST_LEN`).
    inbuf: Vec<u8>,
    /// The answer, and how much of it is written.
    out: Vec<u8>,
    written: usize,
    /// The request was answered: close once `out` is flushed (not for registrations).
    answered: bool,
    /// The name this connection registered; it stays registered while the connection is open.
    registered: Option<String>,
    /// Whether WRITABLE is in the registered interest.
    wants_write: bool,
    /// The last time the client made progress (connected, sent or took bytes).
    last_active: Instant,
}

/// What to do with a connection after serving an event.
enum Next {
    Keep,
    /// Close it; `Some(reason)` is worth a warning.
    Close(Option<String>),
}

/// The state owned by the server thread.
struct Server {
    poll: Poll,
    listener: TcpListener,
    conns: HashMap<Token, Conn>,
    /// Registered nodes by name, with the token of their registration connection.
    nodes: BTreeMap<String, (Token, NodeEntry)>,
    next_token: usize,
    next_creation: u32,
    stop: Arc<AtomicBool>,
    port: u16,
    idle_timeout: Duration,
    /// One log line per kind of trouble per client address per minute.
    log_limit: crate::log_limit::LogLimiter,
}

impl Server {
    fn run(mut self) {
        let mut events = Events::with_capacity(256);
        let mut last_sweep = Instant::now();
        let sweep_every = SWEEP_EVERY
            .min(self.idle_timeout / 4)
            .max(Duration::from_millis(1));
        while !self.stop.load(Ordering::SeqCst) {
            if let Err(e) = self.poll.poll(&mut events, Some(sweep_every)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                log::error!("port mapper on {}: poll failed, stopping: {e}", self.port);
                break;
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    token => self.serve(token),
                }
            }
            if last_sweep.elapsed() >= sweep_every {
                last_sweep = Instant::now();
                self.close_idle();
            }
        }
        // The listener goes first, so a node re-registering after this sees nothing
        // listening (and may host) rather than a server about to drop it.
        let Server {
            listener, conns, ..
        } = self;
        drop(listener);
        drop(conns);
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, peer)) => {
                    if self.conns.len() >= MAX_CONNECTIONS {
                        if let Some(n) = self.log_limit.check(
                            &peer.ip().to_string(),
                            "too many connections",
                            std::time::Instant::now(),
                        ) {
                            log::warn!(
                                "port mapper on {}: refusing {peer}: {MAX_CONNECTIONS} connections \
                                 open{}",
                                self.port,
                                crate::log_limit::left_out(n)
                            );
                        }
                        continue;
                    }
                    let token = Token(self.next_token);
                    self.next_token = self.next_token.wrapping_add(1).max(FIRST_CONN);
                    if let Err(e) =
                        self.poll
                            .registry()
                            .register(&mut stream, token, Interest::READABLE)
                    {
                        log::warn!("port mapper on {}: cannot poll {peer}: {e}", self.port);
                        continue;
                    }
                    self.conns.insert(
                        token,
                        Conn {
                            stream,
                            inbuf: Vec::new(),
                            out: Vec::new(),
                            written: 0,
                            answered: false,
                            registered: None,
                            wants_write: false,
                            last_active: Instant::now(),
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("port mapper on {}: accept failed: {e}", self.port);
                    return;
                }
            }
        }
    }

    /// Reads, answers and writes what a readiness event allows on `token`.
    fn serve(&mut self, token: Token) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        let mut next = self.read(token, &mut conn);
        if matches!(next, Next::Keep) {
            next = flush(&mut conn);
        }
        if matches!(next, Next::Keep) {
            next = self.update_interest(token, &mut conn);
        }
        match next {
            Next::Keep => {
                self.conns.insert(token, conn);
            }
            Next::Close(reason) => self.close(token, conn, reason),
        }
    }

    fn read(&mut self, token: Token, conn: &mut Conn) -> Next {
        let mut chunk = [0u8; 2 + codec::MAX_REQUEST_LEN];
        loop {
            match conn.stream.read(&mut chunk) {
                // A client may half-close after its request: still send the answer.
                Ok(0) if conn.answered && conn.written < conn.out.len() => return Next::Keep,
                Ok(0) => return Next::Close(None),
                Ok(n) => {
                    if conn.registered.is_some() || conn.answered {
                        return Next::Close(Some(format!("{n} bytes after a complete request")));
                    }
                    conn.last_active = Instant::now();
                    conn.inbuf.extend_from_slice(&chunk[..n]);
                    match codec::decode_request(&conn.inbuf) {
                        Ok(None) if conn.inbuf.len() <= 2 + codec::MAX_REQUEST_LEN => {}
                        Ok(None) => return Next::Close(Some("oversized request".into())),
                        Err(e) => return Next::Close(Some(e.to_string())),
                        Ok(Some((_, used))) if used < conn.inbuf.len() => {
                            return Next::Close(Some(format!(
                                "{} bytes after a complete request",
                                conn.inbuf.len() - used
                            )));
                        }
                        Ok(Some((req, _))) => {
                            conn.inbuf = Vec::new();
                            self.answer(token, conn, req);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Next::Close(Some(format!("read failed: {e}"))),
            }
        }
    }

    /// Handles one complete request: queues the answer and updates the registry.
    fn answer(&mut self, token: Token, conn: &mut Conn, req: Request) {
        match req {
            Request::Alive2(entry) => {
                let extended = entry.highest >= 6;
                let holder = self.nodes.get(&entry.name).map(|(t, _)| *t);
                if let Some(holder) = holder
                    && self.holder_alive(holder)
                {
                    log::warn!(
                        "port mapper on {}: name {:?} is already registered",
                        self.port,
                        entry.name
                    );
                    conn.out = codec::encode_alive2_response(&Alive2Response {
                        result: 1,
                        creation: 0,
                        extended,
                    });
                    conn.answered = true;
                    return;
                }
                let creation = self.next_creation();
                log::debug!(
                    "port mapper on {}: registered {:?} at port {} (creation {creation})",
                    self.port,
                    entry.name,
                    entry.port
                );
                conn.out = codec::encode_alive2_response(&Alive2Response {
                    result: 0,
                    // Old nodes get a 16-bit creation in 1..=3, as epmd gives them.
                    creation: if extended { creation } else { creation % 3 + 1 },
                    extended,
                });
                conn.registered = Some(entry.name.clone());
                self.nodes.insert(entry.name.clone(), (token, entry));
            }
            Request::PortPlease2(name) => {
                let resp = match self.nodes.get(&name) {
                    Some((_, entry)) => PortResponse::Found(entry.clone()),
                    None => PortResponse::NotFound(1),
                };
                // Registered entries were validated, so they always encode.
                conn.out = codec::encode_port2_response(&resp).unwrap_or_else(|_| vec![119, 1]);
                conn.answered = true;
            }
            Request::Names => {
                conn.out = codec::encode_names_response(&NamesResponse {
                    epmd_port: u32::from(self.port),
                    names: self
                        .nodes
                        .iter()
                        .map(|(name, (_, e))| (name.clone(), e.port))
                        .collect(),
                });
                conn.answered = true;
            }
        }
    }

    /// Whether the registration connection `holder` is still open; if it has closed
    /// (its end-of-file not yet seen by the poll loop), it is closed here and its name
    /// freed, so a node re-registering at once is not refused by its own ghost.
    fn holder_alive(&mut self, holder: Token) -> bool {
        let Some(conn) = self.conns.get_mut(&holder) else {
            return false;
        };
        let mut byte = [0u8; 1];
        let reason = match conn.stream.read(&mut byte) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Ok(0) => None,
            Ok(_) => Some("bytes after a complete request".to_string()),
            Err(e) => Some(format!("read failed: {e}")),
        };
        if let Some(conn) = self.conns.remove(&holder) {
            self.close(holder, conn, reason);
        }
        false
    }

    fn next_creation(&mut self) -> u32 {
        loop {
            let c = self.next_creation;
            self.next_creation = c.wrapping_add(1);
            if c != 0 {
                return c;
            }
        }
    }

    fn update_interest(&mut self, token: Token, conn: &mut Conn) -> Next {
        let pending = conn.written < conn.out.len();
        if pending == conn.wants_write {
            return Next::Keep;
        }
        let interest = if pending {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        match self
            .poll
            .registry()
            .reregister(&mut conn.stream, token, interest)
        {
            Ok(()) => {
                conn.wants_write = pending;
                Next::Keep
            }
            Err(e) => Next::Close(Some(format!("cannot poll: {e}"))),
        }
    }

    fn close(&mut self, token: Token, mut conn: Conn, reason: Option<String>) {
        let addr = conn.stream.peer_addr().ok();
        let peer = addr.map_or_else(|| "a client".to_string(), |a| a.to_string());
        let ip = addr.map_or_else(|| "?".to_string(), |a| a.ip().to_string());
        match &reason {
            Some(why) => {
                if let Some(n) = self
                    .log_limit
                    .check(&ip, "bad request", std::time::Instant::now())
                {
                    log::warn!(
                        "port mapper on {}: closing {peer}: {why}{}",
                        self.port,
                        crate::log_limit::left_out(n)
                    );
                }
            }
            None => log::trace!("port mapper on {}: {peer} done", self.port),
        }
        if let Some(name) = conn.registered.take()
            && self.nodes.get(&name).is_some_and(|(t, _)| *t == token)
        {
            self.nodes.remove(&name);
            log::debug!("port mapper on {}: {name:?} deregistered", self.port);
        }
        let _ = self.poll.registry().deregister(&mut conn.stream);
    }

    /// Closes connections that are not registrations and made no progress for the idle
    /// timeout.
    fn close_idle(&mut self) {
        let timeout = self.idle_timeout;
        let idle: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.registered.is_none() && c.last_active.elapsed() >= timeout)
            .map(|(t, _)| *t)
            .collect();
        for token in idle {
            if let Some(conn) = self.conns.remove(&token) {
                self.close(token, conn, Some("idle timeout".into()));
            }
        }
    }
}

/// Writes what the socket takes of `conn.out`; closes once an answered request is sent.
fn flush(conn: &mut Conn) -> Next {
    while conn.written < conn.out.len() {
        match conn.stream.write(&conn.out[conn.written..]) {
            Ok(0) => return Next::Close(Some("peer stopped taking bytes".into())),
            Ok(n) => {
                conn.written += n;
                conn.last_active = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Next::Close(Some(format!("write failed: {e}"))),
        }
    }
    conn.out = Vec::new();
    conn.written = 0;
    if conn.answered {
        Next::Close(None)
    } else {
        Next::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epmd::{names, register};
    use std::net::TcpStream as StdStream;

    #[test]
    fn idle_clients_are_closed_but_registrations_stay() {
        let server = EpmdServer::start_with(0, Duration::from_millis(200)).unwrap();
        let port = server.port();
        let mut reg = register(
            port,
            &NodeEntry::oxbeam("stays", 1, false),
            Duration::from_secs(5),
        )
        .unwrap();
        let mut silent = StdStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        let mut partial = StdStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
        partial.write_all(&[0, 9, 122, b'x']).unwrap();
        for s in [&mut silent, &mut partial] {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = [0u8; 8];
            // Closed by the server well before the read timeout: EOF or a reset.
            let started = Instant::now();
            let n = s.read(&mut buf);
            assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
            assert!(started.elapsed() < Duration::from_secs(5));
        }
        assert!(!reg.wait_closed(Some(Duration::from_millis(400))));
        let listed = names(port, Duration::from_secs(5)).unwrap();
        assert_eq!(listed, vec![("stays".to_string(), 1)]);
    }

    #[test]
    fn legacy_nodes_get_a_small_creation() {
        let server = EpmdServer::start(0).unwrap();
        let mut old = NodeEntry::oxbeam("old", 1, false);
        (old.highest, old.lowest) = (5, 5);
        let reg = register(server.port(), &old, Duration::from_secs(5)).unwrap();
        assert!((1..=3).contains(&reg.creation()));
    }
}
