//! A fault-injecting TCP proxy for tests: it sits between two nodes on loopback and
//! passes, delays, drops or blackholes their traffic on command.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything.
    Pass,
    /// Forward everything, each chunk held back `delay_ms` first.
    Delay,
    /// Close every connection and refuse new ones (a clean cut: both ends see it).
    Drop,
    /// Keep connections open but forward nothing (a silent partition: read and
    /// discarded, as a dead link or a frozen switch would).
    Blackhole,
    /// As `Blackhole`, and a side that closes its end is not told to the other: that
    /// side holds its end until its own tick timeout (or until `Drop`).
    Freeze,
}

struct Shared {
    mode: AtomicU8,
    delay_ms: AtomicU64,
    stop: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
    forwarded: AtomicU64,
}

/// A proxy from a local port to `127.0.0.1:target`; stops when dropped.
pub struct Proxy {
    /// The port to connect to instead of the target.
    pub port: u16,
    shared: Arc<Shared>,
}

fn mode_of(v: u8) -> Mode {
    match v {
        1 => Mode::Delay,
        2 => Mode::Drop,
        3 => Mode::Blackhole,
        4 => Mode::Freeze,
        _ => Mode::Pass,
    }
}

impl Proxy {
    /// Starts a proxy to `127.0.0.1:target`, passing traffic.
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            mode: AtomicU8::new(0),
            delay_ms: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
            forwarded: AtomicU64::new(0),
        });
        let s = shared.clone();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !s.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        if mode_of(s.mode.load(Ordering::SeqCst)) == Mode::Drop {
                            let _ = client.shutdown(Shutdown::Both);
                            continue;
                        }
                        let _ = client.set_nonblocking(false);
                        let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                            let _ = client.shutdown(Shutdown::Both);
                            continue;
                        };
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        {
                            let mut open = s.open.lock();
                            open.push(client.try_clone().unwrap());
                            open.push(server.try_clone().unwrap());
                        }
                        pump(
                            s.clone(),
                            client.try_clone().unwrap(),
                            server.try_clone().unwrap(),
                        );
                        pump(s.clone(), server, client);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Proxy { port, shared }
    }

    /// Switches what the proxy does; `Drop` also closes the connections now open.
    pub fn set(&self, mode: Mode) {
        self.shared.mode.store(mode as u8, Ordering::SeqCst);
        if mode == Mode::Drop {
            for s in self.shared.open.lock().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    /// Delays each forwarded chunk by `d` (and switches to [`Mode::Delay`]).
    pub fn delay(&self, d: Duration) {
        self.shared
            .delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
        self.set(Mode::Delay);
    }

    /// Bytes forwarded so far (both directions).
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for s in self.shared.open.lock().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Copies `from` to `to` on its own thread, obeying the mode.
fn pump(s: Arc<Shared>, mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                // Frozen: the other side keeps its end (`Drop` closes it later).
                Ok(0) | Err(_) if mode_of(s.mode.load(Ordering::SeqCst)) == Mode::Freeze => {
                    return;
                }
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            match mode_of(s.mode.load(Ordering::SeqCst)) {
                Mode::Pass => {}
                Mode::Delay => {
                    std::thread::sleep(Duration::from_millis(s.delay_ms.load(Ordering::SeqCst)))
                }
                Mode::Blackhole | Mode::Freeze => continue,
                Mode::Drop => break,
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            s.forwarded.fetch_add(n as u64, Ordering::SeqCst);
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}
