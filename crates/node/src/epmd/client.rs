//! The client side: one short connection per question, one long one per registration.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::codec::{self, PortResponse, Request};
use super::{EpmdError, NodeEntry};

/// The shortest timeout a socket is given (std refuses a zero timeout).
const MIN_WAIT: Duration = Duration::from_millis(1);

/// Connects to the mapper at `127.0.0.1:port`; refused means [`EpmdError::NoMapper`].
fn connect(port: u16, deadline: Instant) -> Result<TcpStream, EpmdError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let wait = remaining(deadline)?;
    let stream = TcpStream::connect_timeout(&addr, wait).map_err(|e| match e.kind() {
        io::ErrorKind::ConnectionRefused => EpmdError::NoMapper,
        _ => EpmdError::Io(e),
    })?;
    stream.set_nodelay(true).map_err(EpmdError::Io)?;
    Ok(stream)
}

/// Time left before `deadline`, or a `TimedOut` error once it has passed.
fn remaining(deadline: Instant) -> Result<Duration, EpmdError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(EpmdError::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            "port mapper did not answer in time",
        )));
    }
    Ok(left.max(MIN_WAIT))
}

fn send(stream: &mut TcpStream, req: &Request, deadline: Instant) -> Result<(), EpmdError> {
    let bytes = codec::encode_request(req)?;
    stream
        .set_write_timeout(Some(remaining(deadline)?))
        .map_err(EpmdError::Io)?;
    stream.write_all(&bytes).map_err(EpmdError::Io)
}

/// Reads more bytes into `buf` (at most `limit` in all) before `deadline`; `Ok(0)` at EOF.
fn read_some(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    limit: usize,
    deadline: Instant,
) -> Result<usize, EpmdError> {
    let mut chunk = [0u8; 4096];
    loop {
        stream
            .set_read_timeout(Some(remaining(deadline)?))
            .map_err(EpmdError::Io)?;
        let want = chunk.len().min(limit.saturating_sub(buf.len()) + 1);
        match stream.read(&mut chunk[..want]) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > limit {
                    return Err(EpmdError::Protocol(format!(
                        "response longer than {limit} bytes"
                    )));
                }
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(EpmdError::Io(e)),
        }
    }
}

/// Reads until `decode` finds a whole message; EOF before that is a protocol error.
fn read_message<T>(
    stream: &mut TcpStream,
    deadline: Instant,
    what: &str,
    decode: impl Fn(&[u8]) -> Result<Option<(T, usize)>, EpmdError>,
) -> Result<T, EpmdError> {
    // No single-message answer is longer than a name plus an extra (64 KiB each).
    const LIMIT: usize = 1 << 18;
    let mut buf = Vec::new();
    loop {
        if let Some((msg, _)) = decode(&buf)? {
            return Ok(msg);
        }
        if read_some(stream, &mut buf, LIMIT, deadline)? == 0 {
            return Err(EpmdError::Protocol(format!(
                "port mapper closed the connection after {} bytes of {what}",
                buf.len()
            )));
        }
    }
}

/// Asks the mapper at `127.0.0.1:epmd_port` where the node `name` listens.
///
/// `name` is the part before the `@` (a full `name@host` is cut there). Unknown names
/// give [`EpmdError::NotFound`].
pub fn port_please(epmd_port: u16, name: &str, timeout: Duration) -> Result<NodeEntry, EpmdError> {
    let name = name.split('@').next().unwrap_or_default();
    let deadline = Instant::now() + timeout;
    let mut stream = connect(epmd_port, deadline)?;
    send(
        &mut stream,
        &Request::PortPlease2(name.to_string()),
        deadline,
    )?;
    match read_message(
        &mut stream,
        deadline,
        "PORT2_RESP",
        codec::decode_port2_response,
    )? {
        PortResponse::Found(entry) => Ok(entry),
        PortResponse::NotFound(_) => Err(EpmdError::NotFound(name.to_string())),
    }
}

/// Lists the names (and ports) registered with the mapper at `127.0.0.1:epmd_port`.
pub fn names(epmd_port: u16, timeout: Duration) -> Result<Vec<(String, u16)>, EpmdError> {
    let deadline = Instant::now() + timeout;
    let mut stream = connect(epmd_port, deadline)?;
    send(&mut stream, &Request::Names, deadline)?;
    let mut buf = Vec::new();
    while read_some(
        &mut stream,
        &mut buf,
        codec::MAX_NAMES_RESPONSE_LEN,
        deadline,
    )? > 0
    {}
    Ok(codec::decode_names_response(&buf)?.names)
}

/// An open `ALIVE2` connection: the node stays registered for as long as it is open.
///
/// Dropping it closes the connection, which deregisters the node.
#[derive(Debug)]
pub struct Registration {
    stream: TcpStream,
    creation: u32,
    /// Set once the mapper side closed; never reset.
    closed: bool,
}

impl Registration {
    /// The creation number the mapper gave this registration.
    pub fn creation(&self) -> u32 {
        self.creation
    }

    /// Waits up to `timeout` (`None`: without limit) for the mapper to close the
    /// connection; `true` once it has (the node is no longer registered there).
    ///
    /// Bytes the mapper sends (it should send none) are read and dropped.
    pub fn wait_closed(&mut self, timeout: Option<Duration>) -> bool {
        if self.closed {
            return true;
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut chunk = [0u8; 256];
        loop {
            let wait = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    Some(left.max(MIN_WAIT))
                }
                None => None,
            };
            if self.stream.set_read_timeout(wait).is_err() {
                self.closed = true;
                return true;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.closed = true;
                    return true;
                }
                Ok(_) => continue,
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => return false,
                    io::ErrorKind::Interrupted => continue,
                    _ => {
                        self.closed = true;
                        return true;
                    }
                },
            }
        }
    }

    /// A second handle on the connection, for another thread to shut it down with
    /// [`TcpStream::shutdown`] (which wakes a [`wait_closed`](Self::wait_closed)).
    pub(crate) fn closer(&self) -> io::Result<TcpStream> {
        self.stream.try_clone()
    }

    /// Closes the connection: the mapper deregisters the node.
    pub(crate) fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Registers `entry` with the mapper at `127.0.0.1:epmd_port` (`ALIVE2_REQ`).
///
/// Accepts both `ALIVE2_X_RESP` (32-bit creation) and `ALIVE2_RESP` (16-bit); a non-zero
/// result is [`EpmdError::NameTaken`]. The registration lasts while the returned
/// [`Registration`] lives.
pub fn register(
    epmd_port: u16,
    entry: &NodeEntry,
    timeout: Duration,
) -> Result<Registration, EpmdError> {
    codec::validate_entry(entry)?;
    let deadline = Instant::now() + timeout;
    let mut stream = connect(epmd_port, deadline)?;
    send(&mut stream, &Request::Alive2(entry.clone()), deadline)?;
    let resp = read_message(
        &mut stream,
        deadline,
        "ALIVE2 response",
        codec::decode_alive2_response,
    )?;
    if resp.result != 0 {
        return Err(EpmdError::NameTaken(entry.name.clone()));
    }
    Ok(Registration {
        stream,
        creation: resp.creation,
        closed: false,
    })
}
