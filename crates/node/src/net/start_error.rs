//! [`NetStartError`]: why a named node could not start.

use crate::epmd::EpmdError;
use crate::net::NodeNameError;

/// Why [`Net::start`](crate::Net::start) failed. Nothing the attempt started is left
/// running, and the name is not left registered with the port mapper.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetStartError {
    /// The name is not `name@host` with a loopback host (`localhost`, `127.0.0.1`).
    BadName(NodeNameError),
    /// No cookie: none given, and `~/.erlang.cookie` could not be read or made.
    Cookie(std::io::Error),
    /// The node could not listen on its port (taken, or not allowed).
    Listen {
        /// The port asked for (0: any).
        port: u16,
        /// What the system said.
        source: std::io::Error,
    },
    /// The port mapper at `port` refused the registration (the name is taken, say) or
    /// could be neither reached nor started there.
    PortMapper {
        /// The port mapper's port.
        port: u16,
        /// What went wrong.
        source: EpmdError,
    },
    /// The system refused a resource the node needs (its I/O poller, a thread).
    System {
        /// What was being made.
        what: &'static str,
        /// What the system said.
        source: std::io::Error,
    },
    /// A step failed on purpose (tests fail each step of a start in turn).
    #[doc(hidden)]
    Injected(String),
}

impl std::fmt::Display for NetStartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetStartError::BadName(why) => write!(f, "bad node name: {why}"),
            NetStartError::Cookie(e) => write!(f, "no cookie: {e}"),
            NetStartError::Listen { port: 0, source } => {
                write!(f, "cannot listen on a free loopback port: {source}")
            }
            NetStartError::Listen { port, source } => {
                write!(f, "cannot listen on 127.0.0.1:{port}: {source}")
            }
            NetStartError::PortMapper { port, source } => {
                write!(f, "port mapper on 127.0.0.1:{port}: {source}")
            }
            NetStartError::System { what, source } => write!(f, "cannot make the {what}: {source}"),
            NetStartError::Injected(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for NetStartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NetStartError::Cookie(e) | NetStartError::Listen { source: e, .. } => Some(e),
            NetStartError::System { source, .. } => Some(source),
            NetStartError::PortMapper { source, .. } => Some(source),
            NetStartError::BadName(_) | NetStartError::Injected(_) => None,
        }
    }
}
