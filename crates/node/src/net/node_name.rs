//! Node names: `name@host[:port]`, parsed into a [`NodeAddr`] or refused with a
//! [`NodeNameError`] that says what is wrong with it.

use std::fmt;

/// A node name split into parts: `name@host` or `name@host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddr {
    /// `name@host`, the node's identity.
    pub node: String,
    /// The part before `@`.
    pub short: String,
    /// An explicit port (no port mapper needed).
    pub port: Option<u16>,
}

/// Why a text is not a node name this node can use. Each variant carries the text given.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeNameError {
    /// No `@`: a node name is `name@host`.
    NoHost(String),
    /// The part before `@` is empty or has characters other than letters, digits, `_`
    /// and `-`.
    BadName(String),
    /// The part after `:` is not a port number.
    BadPort(String),
    /// The host is not this machine's loopback (`localhost`, `127.0.0.1`): nodes listen
    /// on loopback only.
    NotLocal(String),
    /// Empty, or longer than the handshake's limit
    /// ([`MAX_NAME_LEN`](crate::handshake::MAX_NAME_LEN) bytes).
    BadLength(String),
    /// It contains whitespace or control characters.
    Whitespace(String),
}

impl NodeNameError {
    /// The text that was refused.
    pub fn text(&self) -> &str {
        match self {
            NodeNameError::NoHost(t)
            | NodeNameError::BadName(t)
            | NodeNameError::BadPort(t)
            | NodeNameError::NotLocal(t)
            | NodeNameError::BadLength(t)
            | NodeNameError::Whitespace(t) => t,
        }
    }
}

impl fmt::Display for NodeNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeNameError::NoHost(t) => write!(f, "{t:?} is not name@host"),
            NodeNameError::BadName(t) => write!(
                f,
                "{t:?}: the name before @ must be letters, digits, _ or -"
            ),
            NodeNameError::BadPort(t) => write!(f, "{t:?}: the part after : is not a port"),
            NodeNameError::NotLocal(t) => write!(
                f,
                "{t:?}: only localhost nodes are supported (nodes listen on loopback)"
            ),
            NodeNameError::BadLength(t) => write!(
                f,
                "{} bytes long (must be 1 to {})",
                t.len(),
                crate::handshake::MAX_NAME_LEN
            ),
            NodeNameError::Whitespace(t) => {
                write!(f, "{t:?} contains whitespace or control characters")
            }
        }
    }
}

impl std::error::Error for NodeNameError {}

/// Parses `name@host[:port]`; only loopback hosts are accepted.
pub fn parse_node(text: &str) -> Result<NodeAddr, NodeNameError> {
    let refused = |make: fn(String) -> NodeNameError| make(text.to_owned());
    let (short, rest) = text
        .split_once('@')
        .ok_or_else(|| refused(NodeNameError::NoHost))?;
    if short.is_empty()
        || !short
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(refused(NodeNameError::BadName));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (
            h,
            Some(
                p.parse::<u16>()
                    .map_err(|_| refused(NodeNameError::BadPort))?,
            ),
        ),
        None => (rest, None),
    };
    if host != "localhost" && host != "127.0.0.1" {
        return Err(refused(NodeNameError::NotLocal));
    }
    Ok(NodeAddr {
        node: format!("{short}@{host}"),
        short: short.to_owned(),
        port,
    })
}
