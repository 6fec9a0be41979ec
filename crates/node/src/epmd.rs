//! The port mapper: finding a node's listening port by its name, with EPMD's protocol.
//!
//! A node named `name@host` listens on some port; peers learn that port from the **port
//! mapper** on the host, always at `127.0.0.1:`[`epmd_port`] here. We speak the protocol of
//! Erlang's `epmd`, so an oxbeam node can use a running `epmd`, and `epmd -names` or an
//! Erlang node can use a mapper hosted by oxbeam ([`EpmdServer`]).
//!
//! # Messages
//! Every request is a 2-byte big-endian length then that many bytes, the first being the
//! request code; responses are not framed. All integers are big-endian.
//!
//! | request | code | body | response |
//! | --- | --- | --- | --- |
//! | `ALIVE2_REQ` | 120 | port:16, type:8 (77 normal, 72 hidden), protocol:8 (0 tcp/ipv4), highest:16, lowest:16, nlen:16, name, elen:16, extra | `ALIVE2_X_RESP` 118, result:8, creation:32 when highest >= 6, else `ALIVE2_RESP` 121, result:8, creation:16 |
//! | `PORT_PLEASE2_REQ` | 122 | name | `PORT2_RESP` 119, result:8, then (result 0 only) the fields of `ALIVE2_REQ` from port on; then the mapper closes |
//! | `NAMES_REQ` | 110 | - | the mapper's port:32, then lines `name NAME at port PORT\n`; then the mapper closes |
//!
//! A registration lasts exactly as long as its `ALIVE2` connection stays open: the node
//! keeps it ([`Registration`]) and the mapper forgets the name when it closes. A result
//! other than 0 means the name is taken. The creation number tells incarnations of a name
//! apart: non-zero, and different for successive registrations of a name. The byte
//! layouts live in [`codec`], pure functions without I/O.
//!
//! # Who hosts the mapper: take-over
//! There is no daemon to install: [`Mapper`] keeps one node registered for as long as it
//! lives. To register it connects to the mapper port; if nothing listens there
//! ([`EpmdError::NoMapper`]) it binds that port itself ([`EpmdServer`] in-process) and
//! registers with its own server. Its background thread then waits on the registration
//! connection. That connection closes when the mapper goes away (the hosting node stopped
//! or died, or Erlang's `epmd` was killed); the thread then sleeps a small random jitter
//! and registers again the same way. So each survivor either finds the mapper some other
//! survivor already hosts, or becomes the host; attempts are retried with backoff.
//!
//! Port 0 asks for a private mapper: the first node binds a port the system picks and
//! hosts there ([`Mapper::port`], `Net::epmd_port`); the others are given that port, and
//! take it over as above. Nothing can take the port between its choice and its bind, as
//! it could if a free port were chosen first and passed in (tests run in parallel use
//! this).
//!
//! Races it absorbs:
//! - **Two survivors bind at once.** Only one bind of `127.0.0.1:port` can succeed; the
//!   loser gets `AddrInUse`, concludes that another node now hosts, and retries
//!   registering (the jitter makes this rare, the retry makes it harmless).
//! - **A registration racing a server stop.** A node may register with a server just as
//!   it stops: the registration succeeds and its connection closes right after, or the
//!   connection is reset mid-request. Either is just another "registration closed" or a
//!   failed attempt, and the loop registers again; a stopped server's listener is closed
//!   before its connections, so the retry sees `NoMapper` and not the dying server.
//! - **Stop racing a re-registration.** [`Mapper::stop`] marks the mapper stopping under
//!   the lock that the thread takes to install a new registration; whichever comes second
//!   tears the new registration (and any newly started server) down.
//!
//! Names of registered nodes are unique per mapper, so two live oxbeam nodes can't share
//! a name: the second gets [`EpmdError::NameTaken`]. A name freed by a dying host is not
//! reserved for its former owner, though: after a take-over, whichever node registers a
//! name first gets it.
//!
//! Everything here talks to `127.0.0.1` only.

use std::fmt;
use std::io;

mod client;
pub mod codec;
mod mapper;
mod server;

pub use client::{Registration, names, port_please, register};
pub use mapper::Mapper;
pub use server::EpmdServer;

/// The port mapper's port when neither config nor environment says otherwise.
pub const DEFAULT_EPMD_PORT: u16 = 4369;

/// The port mapper's port: `config` if given, else env `OXBEAM_EPMD_PORT`, else env
/// `ERL_EPMD_PORT` (the variable Erlang reads), else [`DEFAULT_EPMD_PORT`].
///
/// An environment value that is not a port number (1..=65535) is ignored with a
/// `log::warn`.
pub fn epmd_port(config: Option<u16>) -> u16 {
    if let Some(port) = config {
        return port;
    }
    for var in ["OXBEAM_EPMD_PORT", "ERL_EPMD_PORT"] {
        if let Some(port) = env_port(var, std::env::var_os(var).as_deref()) {
            return port;
        }
    }
    DEFAULT_EPMD_PORT
}

/// Parses the value of environment variable `var`, warning about an unusable one.
fn env_port(var: &str, value: Option<&std::ffi::OsStr>) -> Option<u16> {
    let value = value?;
    match value.to_str().map(str::trim).map(str::parse::<u16>) {
        Some(Ok(port)) if port != 0 => Some(port),
        _ => {
            log::warn!("ignoring {var}={value:?}: not a port number (1..=65535)");
            None
        }
    }
}

/// What the port mapper knows about one registered node: the fields of `ALIVE2_REQ` and
/// of a successful `PORT2_RESP`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEntry {
    /// The node's name: the part of `name@host` before the `@`.
    pub name: String,
    /// The port the node accepts distribution connections on.
    pub port: u16,
    /// 77 (`M`) for a normal node, 72 (`H`) for a hidden one.
    pub node_type: u8,
    /// The transport: 0 is TCP over IPv4.
    pub protocol: u8,
    /// The highest distribution protocol version the node speaks.
    pub highest: u16,
    /// The lowest distribution protocol version the node speaks.
    pub lowest: u16,
    /// Free-form bytes stored with the registration.
    pub extra: Vec<u8>,
}

/// `NodeEntry::node_type` of a normal node.
pub const NODE_TYPE_NORMAL: u8 = 77;
/// `NodeEntry::node_type` of a hidden node.
pub const NODE_TYPE_HIDDEN: u8 = 72;
/// The `extra` bytes oxbeam nodes register with, so peers can tell them from Erlang nodes.
pub const OXBEAM_EXTRA: &[u8] = b"oxbeam";

impl NodeEntry {
    /// The entry an oxbeam node registers: TCP/IPv4, versions 6..=6, extra `b"oxbeam"`.
    ///
    /// `name` may be a full `name@host`; only the part before the `@` is kept.
    pub fn oxbeam(name: &str, port: u16, hidden: bool) -> NodeEntry {
        let name = name.split('@').next().unwrap_or_default();
        NodeEntry {
            name: name.to_string(),
            port,
            node_type: if hidden {
                NODE_TYPE_HIDDEN
            } else {
                NODE_TYPE_NORMAL
            },
            protocol: 0,
            highest: 6,
            lowest: 6,
            extra: OXBEAM_EXTRA.to_vec(),
        }
    }

    /// Whether this entry was registered by an oxbeam node (its extra is `b"oxbeam"`).
    pub fn is_oxbeam(&self) -> bool {
        self.extra == OXBEAM_EXTRA
    }
}

/// Why a port mapper operation failed.
#[derive(Debug)]
pub enum EpmdError {
    /// A socket operation failed; a timeout shows up here as `TimedOut` or `WouldBlock`.
    Io(io::Error),
    /// No port mapper listens on the port (connection refused).
    NoMapper,
    /// The port mapper has no node of this name.
    NotFound(String),
    /// The port mapper refused the registration: a live node already has this name.
    NameTaken(String),
    /// A malformed or unexpected message, or a value that cannot be encoded.
    Protocol(String),
}

impl fmt::Display for EpmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EpmdError::Io(e) => write!(f, "port mapper i/o error: {e}"),
            EpmdError::NoMapper => write!(f, "no port mapper is listening"),
            EpmdError::NotFound(name) => write!(f, "no node named {name:?} is registered"),
            EpmdError::NameTaken(name) => {
                write!(f, "the name {name:?} is already registered by a live node")
            }
            EpmdError::Protocol(what) => write!(f, "port mapper protocol error: {what}"),
        }
    }
}

impl std::error::Error for EpmdError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EpmdError::Io(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn env_values_parse_or_are_ignored() {
        assert_eq!(env_port("X", None), None);
        assert_eq!(env_port("X", Some(OsStr::new(" 4400 "))), Some(4400));
        assert_eq!(env_port("X", Some(OsStr::new("0"))), None);
        assert_eq!(env_port("X", Some(OsStr::new("70000"))), None);
        assert_eq!(env_port("X", Some(OsStr::new("epmd"))), None);
    }

    #[test]
    fn config_wins() {
        assert_eq!(epmd_port(Some(1234)), 1234);
    }

    #[test]
    fn oxbeam_entry_drops_the_host() {
        let e = NodeEntry::oxbeam("chat@localhost", 5000, true);
        assert_eq!(e.name, "chat");
        assert_eq!(e.node_type, NODE_TYPE_HIDDEN);
        assert_eq!((e.highest, e.lowest), (6, 6));
        assert!(e.is_oxbeam());
        assert_eq!(NodeEntry::oxbeam("a", 1, false).node_type, NODE_TYPE_NORMAL);
    }
}
