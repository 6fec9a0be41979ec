//! Ports that cannot race with parallel tests.
//!
//! Choosing a "free" port by binding port 0 and releasing it races: until the code under
//! test binds it, any other bind of port 0 or outgoing connection (another test's node, a
//! second test that also chose it) may get the same port, and two tests on one port
//! mapper join each other's nodes. So a port here is always held from the moment the
//! system picks it:
//! - [`PortMapper`]: a private port mapper on a port the system picked, kept open for as
//!   long as the value lives. Nodes in this process and child processes are given its
//!   port; none of them hosts the mapper, so killing any of them never moves it. (To
//!   have a node host it, start that node with port mapper port 0 and ask it:
//!   `NetConfig::epmd_port = Some(0)` and `Net::epmd_port`, `oxbeam node --epmd-port 0`.)
//! - [`refused_port`]: a port where nothing listens and nothing can start listening
//!   while the guard lives.

use std::net::{Ipv4Addr, TcpListener, TcpStream};

use oxbeam::node::epmd::EpmdServer;

/// A port mapper of one test (or example run), stopped when dropped.
pub struct PortMapper(EpmdServer);

impl PortMapper {
    /// Starts a port mapper on `127.0.0.1`, on a port the system picks.
    pub fn start() -> PortMapper {
        PortMapper(EpmdServer::start(0).expect("start a private port mapper on 127.0.0.1:0"))
    }

    /// Its port: give it to every node of the test.
    pub fn port(&self) -> u16 {
        self.0.port()
    }
}

/// [`PortMapper::start`] and its port: `let (_mapper, epmd) = private_mapper();` keeps
/// the mapper for the rest of the scope (a bare `_` would drop it at once).
pub fn private_mapper() -> (PortMapper, u16) {
    let m = PortMapper::start();
    let port = m.port();
    (m, port)
}

/// Keeps [`refused_port`]'s port taken.
pub struct HeldPort {
    // Both ends stay open: were the listener closed, the connection waiting in its
    // backlog would be reset, and a reset socket gives its port back.
    _listener: TcpListener,
    _client: TcpStream,
}

/// A loopback port on which a connect is refused for as long as the guard lives: the
/// local port of a connected socket, which is bound (so nobody can listen there) but
/// not listening.
pub fn refused_port() -> (HeldPort, u16) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    let client = TcpStream::connect(listener.local_addr().expect("local addr"))
        .expect("connect to our own listener");
    let port = client.local_addr().expect("client's local addr").port();
    let held = HeldPort {
        _listener: listener,
        _client: client,
    };
    (held, port)
}
