//! The handshake side of the I/O loop: handshake frames in and out, and admission
//! (who may connect; see the rules in [`super`]'s docs), up to installing a connection
//! that came up.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Token;

use super::{Hs, IoLoop};
use crate::conn::{Conn, Phase};
use crate::delivery::BadMessage;
use crate::frame::write_frame;
use crate::handshake::{HandshakeError, HandshakeMsg, Identity, PeerInfo, RefuseReason, Step};
use crate::net::NetInner;
use crate::term::Atom;
use crate::wire::Wire;

impl IoLoop {
    pub(super) fn flush_handshake(&mut self, net: &Arc<NetInner>, token: Token) {
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
                    // A dial completes (or is refused) on the first write.
                    if e.kind() == io::ErrorKind::ConnectionRefused
                        && let Some(conn) = &io.conn
                    {
                        let at = io.stream.peer_addr().map(|a| a.to_string());
                        let at = at.unwrap_or_else(|_| "the peer's port".to_owned());
                        conn.note_failure(crate::ConnectError::Unreachable(format!("{at}: {e}")));
                    }
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

    /// One handshake message; false if the connection was closed.
    pub(super) fn handshake_frame(
        &mut self,
        net: &Arc<NetInner>,
        token: Token,
        frame: &[u8],
    ) -> bool {
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

    pub(super) fn step(&mut self, net: &Arc<NetInner>, token: Token, step: Step) -> bool {
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
                    if let Ok(Some(pending)) = decision {
                        net.conn_down(&pending, "handshake closed");
                    }
                    return false;
                };
                let decision = decision.map(|pending| {
                    if pending.is_some() {
                        io.conn = pending;
                    }
                    io.peer = Atom::try_new(&peer.name).ok();
                });
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

    pub(super) fn handshake_failed(
        &mut self,
        net: &Arc<NetInner>,
        token: Token,
        e: &HandshakeError,
    ) {
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
        if let Some(conn) = self.conns.get(&token).and_then(|io| io.conn.as_ref()) {
            conn.note_failure(crate::ConnectError::from_handshake(e));
        }
        self.close(net, token, &format!("handshake failed: {e}"));
    }

    /// Leaves a connection still being set up 1 s (at most its connect timeout) before
    /// it fails.
    pub(super) fn shorten_to_grace(net: &NetInner, conn: &Conn) {
        let mut st = conn.state.lock();
        if matches!(st.phase, Phase::Connecting) {
            let grace = Duration::from_secs(1).min(net.config.connect_timeout);
            st.since = Instant::now()
                .checked_sub(net.config.connect_timeout.saturating_sub(grace))
                .unwrap_or(st.since);
        }
    }

    /// The admission rule (see the module docs). Admitted with no connection to the
    /// peer in the table, the handshake gets one of its own, connecting (returned):
    /// until the handshake ends, a connect to the peer (a `connect`, a send, a peer
    /// list) waits for it instead of dialling a second connection, as OTP's pending
    /// connections do. (A second one the peer would admit, being itself connecting
    /// with the smaller name; each side would keep whichever handshake completed
    /// there first, and if those differ, each closes the one the other kept: both
    /// down.)
    pub(super) fn admit(
        &mut self,
        net: &Arc<NetInner>,
        peer: &Identity,
    ) -> Result<Option<Arc<Conn>>, RefuseReason> {
        let Ok(name) = Atom::try_new(&peer.name) else {
            return Err(RefuseReason::NotAllowed("bad name".into()));
        };
        if name == net.name {
            return Err(RefuseReason::NotAllowed("same name as this node".into()));
        }
        loop {
            let existing = net.conns.read().get(&name).cloned();
            let conn = match existing {
                Some(c) if !c.is_down() => c,
                _ => match net.claim(name) {
                    Ok(pending) => return Ok(Some(pending)),
                    // One appeared meanwhile: judge that one.
                    Err(_) => continue,
                },
            };
            match conn.phase() {
                Phase::Up { creation, .. } if creation == peer.creation => {
                    return Err(RefuseReason::Duplicate);
                }
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
                }
                Phase::Connecting if net.name.as_str() > peer.name.as_str() => {
                    return Err(RefuseReason::Simultaneous);
                }
                // This node's own attempt loses: the handshake, once done, takes over
                // its connection (`install`).
                _ => return Ok(None),
            }
        }
    }

    /// The handshake succeeded: the connection is up.
    pub(super) fn install(&mut self, net: &Arc<NetInner>, token: Token, peer: PeerInfo) -> bool {
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
}
