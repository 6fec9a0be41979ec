//! [`Mapper`]: keep one node registered, hosting the port mapper when nobody else does.
//!
//! The algorithm and the races it absorbs are described in the [module docs](super).

use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use parking_lot::Mutex;

use super::{EpmdError, EpmdServer, NodeEntry, Registration, codec, register};

/// The timeout of each request to the mapper.
const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts per round of registering; between them the pause doubles.
const MAX_ATTEMPTS: u32 = 8;
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// The pause after a whole round failed, before the next round (the mapper keeps trying
/// for as long as it lives).
const ROUND_PAUSE: Duration = Duration::from_secs(5);
/// Survivors wait a random time up to this before re-registering, so they rarely race
/// for the port.
const MAX_JITTER_MS: u64 = 50;
/// How often the watching thread looks up from its registration to check for `stop`
/// (it is normally woken at once by `stop` shutting the connection down).
const WATCH_PERIOD: Duration = Duration::from_secs(1);

/// Keeps one node registered with the port mapper for as long as it lives, hosting the
/// mapper itself ([`EpmdServer`]) when none answers, and taking over when the host goes.
#[derive(Debug)]
pub struct Mapper {
    /// The mapper's port (the one picked, when started with port 0).
    port: u16,
    shared: Arc<Mutex<State>>,
    /// Dropped by `stop`: wakes the thread from any pause.
    stop_tx: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct State {
    /// Set once by `stop`; the thread installs a new registration only while it is false.
    stopping: bool,
    /// The creation number of the current (or, between registrations, the last) one.
    creation: u32,
    /// The mapper this node hosts, if it does.
    server: Option<EpmdServer>,
    /// A handle on the current registration connection, for `stop` to shut it.
    closer: Option<TcpStream>,
}

impl Mapper {
    /// Registers `entry` with the mapper on `127.0.0.1:epmd_port`, starting one in this
    /// process if none listens, then keeps it registered in the background.
    ///
    /// Port 0 starts a private mapper on a port the system picks, hosted here
    /// ([`Mapper::port`] says which; others register there, and take it over as usual).
    /// Unlike choosing a free port first and passing it, nothing else can take the
    /// port in between.
    ///
    /// Returns [`EpmdError::NameTaken`] at once if a live node has the name; other
    /// failures are retried a bounded number of times with backoff before being returned.
    pub fn start(epmd_port: u16, entry: NodeEntry) -> Result<Mapper, EpmdError> {
        codec::validate_entry(&entry)?;
        let shared = Arc::new(Mutex::new(State {
            stopping: false,
            creation: 0,
            server: None,
            closer: None,
        }));
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let (reg, server) = if epmd_port == 0 {
            host_private(&entry)?
        } else {
            register_with_retries(epmd_port, &entry, &shared, &stop_rx, true)?
        };
        let picked = epmd_port == 0;
        let epmd_port = server.as_ref().map_or(epmd_port, EpmdServer::port);
        if picked {
            log::info!(
                "{}: hosting a private port mapper on 127.0.0.1:{epmd_port}",
                entry.name
            );
        } else if server.is_some() {
            log::info!(
                "{}: no port mapper on 127.0.0.1:{epmd_port}; hosting one",
                entry.name
            );
        }
        {
            let mut st = shared.lock();
            st.creation = reg.creation();
            st.closer = reg.closer().ok();
            st.server = server;
        }
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("{}-mapper", entry.name))
            .spawn(move || watch(epmd_port, entry, reg, thread_shared, stop_rx))
            .map_err(EpmdError::Io)?;
        Ok(Mapper {
            port: epmd_port,
            shared,
            stop_tx: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The creation number of the current registration (of the last one while
    /// re-registering).
    pub fn creation(&self) -> u32 {
        self.shared.lock().creation
    }

    /// The port of the mapper this node registers with.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether this node hosts the port mapper.
    pub fn is_hosting(&self) -> bool {
        self.shared.lock().server.is_some()
    }

    /// Deregisters the node, stops the mapper it hosts (the other nodes take over) and
    /// joins the background thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let (closer, server) = {
            let mut st = self.shared.lock();
            st.stopping = true;
            (st.closer.take(), st.server.take())
        };
        // Deregister first, so the survivors never see this name at their new host.
        if let Some(closer) = closer {
            let _ = closer.shutdown(Shutdown::Both);
        }
        self.stop_tx.take();
        if let Some(server) = server {
            server.stop();
        }
        if thread.join().is_err() {
            log::error!("port mapper registration thread panicked");
        }
    }
}

impl Drop for Mapper {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Waits `pause` unless `stop` comes first; `false` if stopped.
fn pause(stop: &Receiver<()>, pause: Duration) -> bool {
    matches!(stop.recv_timeout(pause), Err(RecvTimeoutError::Timeout))
}

fn stopped(stop: &Receiver<()>) -> bool {
    matches!(stop.try_recv(), Err(TryRecvError::Disconnected))
}

/// One attempt: register with whatever mapper listens, hosting one if nothing does.
fn register_or_host(
    port: u16,
    entry: &NodeEntry,
    shared: &Mutex<State>,
) -> Result<(Registration, Option<EpmdServer>), EpmdError> {
    match register(port, entry, OP_TIMEOUT) {
        Err(EpmdError::NoMapper) => {}
        other => return other.map(|reg| (reg, None)),
    }
    // Nothing listens, so a server we host has died: let it go before binding.
    let stale = shared.lock().server.take();
    if let Some(stale) = stale {
        log::warn!(
            "{}: the port mapper hosted here stopped answering",
            entry.name
        );
        stale.stop();
    }
    let server = match EpmdServer::start(port) {
        Ok(server) => server,
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            // Another node bound the port between our connect and our bind: it hosts.
            log::debug!("{}: lost the race to host port {port}", entry.name);
            return register(port, entry, OP_TIMEOUT).map(|reg| (reg, None));
        }
        Err(e) => return Err(EpmdError::Io(e)),
    };
    match register(port, entry, OP_TIMEOUT) {
        Ok(reg) => Ok((reg, Some(server))),
        Err(e) => {
            server.stop();
            Err(e)
        }
    }
}

/// A new mapper on a port the system picks, and `entry` registered with it.
fn host_private(entry: &NodeEntry) -> Result<(Registration, Option<EpmdServer>), EpmdError> {
    let server = EpmdServer::start(0).map_err(EpmdError::Io)?;
    match register(server.port(), entry, OP_TIMEOUT) {
        Ok(reg) => Ok((reg, Some(server))),
        Err(e) => {
            server.stop();
            Err(e)
        }
    }
}

/// Up to [`MAX_ATTEMPTS`] attempts with doubling pauses; `NameTaken` ends them at once
/// if `taken_is_final`. Returns the last error, or `Protocol("stopped")` when stopped.
fn register_with_retries(
    port: u16,
    entry: &NodeEntry,
    shared: &Mutex<State>,
    stop: &Receiver<()>,
    taken_is_final: bool,
) -> Result<(Registration, Option<EpmdServer>), EpmdError> {
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        let err = match register_or_host(port, entry, shared) {
            Ok(done) => return Ok(done),
            Err(e @ EpmdError::NameTaken(_)) if taken_is_final => return Err(e),
            Err(e) => e,
        };
        if attempt >= MAX_ATTEMPTS {
            return Err(err);
        }
        log::debug!(
            "{}: registering on port {port}, attempt {attempt} failed: {err}",
            entry.name
        );
        let jitter = Duration::from_millis(rand::random_range(0..=MAX_JITTER_MS));
        if !pause(stop, backoff + jitter) {
            return Err(EpmdError::Protocol("stopped while registering".into()));
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        attempt += 1;
    }
}

/// The background thread: wait for the registration to close, then register again.
fn watch(
    port: u16,
    entry: NodeEntry,
    mut reg: Registration,
    shared: Arc<Mutex<State>>,
    stop: Receiver<()>,
) {
    loop {
        while !reg.wait_closed(Some(WATCH_PERIOD)) {
            if stopped(&stop) {
                return;
            }
        }
        // `stop` sets the flag before shutting the connection that woke us.
        if shared.lock().stopping || stopped(&stop) {
            return;
        }
        log::info!(
            "{}: registration with the port mapper on 127.0.0.1:{port} closed; re-registering",
            entry.name
        );
        let jitter = Duration::from_millis(rand::random_range(0..=MAX_JITTER_MS));
        if !pause(&stop, jitter) {
            return;
        }
        reg = loop {
            match register_with_retries(port, &entry, &shared, &stop, false) {
                Ok((new_reg, server)) => {
                    let hosting = server.is_some();
                    let mut st = shared.lock();
                    if st.stopping {
                        // `stop` ran while we registered: undo it ourselves.
                        drop(st);
                        new_reg.close();
                        if let Some(server) = server {
                            server.stop();
                        }
                        return;
                    }
                    st.creation = new_reg.creation();
                    st.closer = new_reg.closer().ok();
                    if hosting {
                        st.server = server;
                        log::info!(
                            "{}: took over hosting the port mapper on 127.0.0.1:{port}",
                            entry.name
                        );
                    } else {
                        log::info!(
                            "{}: re-registered with the port mapper on 127.0.0.1:{port}",
                            entry.name
                        );
                    }
                    break new_reg;
                }
                Err(_) if stopped(&stop) => return,
                Err(e) => {
                    log::error!(
                        "{}: could not re-register on port {port} after {MAX_ATTEMPTS} attempts: {e}; \
                         trying again in {ROUND_PAUSE:?}",
                        entry.name
                    );
                    if !pause(&stop, ROUND_PAUSE) {
                        return;
                    }
                }
            }
        };
    }
}
