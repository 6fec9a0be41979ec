//! [`Net::start`]: the steps that bring a named node up, each undone if a later one
//! fails, and the two threads it leaves running (the I/O loop's, and the resolver's,
//! below) besides the runtime's.
//!
//! The steps, in order: bind the listening socket; register the name with the port
//! mapper (hosting one if none answers: [`Mapper`]); start the runtime node with the
//! creation the mapper gave; make the poll and its waker; build the I/O loop and install
//! the router; start the I/O thread; start the resolver thread. What a step made is
//! owned by something that releases it when dropped: the socket and the [`Mapper`]
//! (which deregisters and stops a mapper it hosts) by themselves, the runtime by a
//! [`Stop`] guard that shuts it down, and from the moment the [`NetInner`] exists,
//! everything by a [`Stop`] guard that runs [`Net::shutdown`] (it stops the runtime,
//! joins whichever threads were started, and stops the mapper). So a step that fails
//! leaves nothing running and the name registered nowhere; the guards are disarmed
//! only once every step has succeeded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Receiver;
use parking_lot::{Mutex, RwLock};

use super::{
    Command, ConnectError, Cookies, Net, NetConfig, NetInner, NetStartError, NodeWatchers,
    parse_node,
};
use crate::conn::{Conn, Phase};
use crate::epmd::{self, Mapper, NodeEntry};
use crate::rt::{self, Node, PeerLink, Router, Signal};
use crate::term::{Atom, Pid, Term};
use crate::wire::Wire;

/// The steps of [`Net::start`] after the first (binding the socket), each named for
/// what has just been done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// The name is registered with the port mapper (or no mapper is used).
    Registered,
    /// The runtime node runs.
    RuntimeStarted,
    /// The poll and its waker exist.
    PollMade,
    /// The I/O loop is built and the router installed.
    IoLoopBuilt,
    /// The I/O thread runs.
    IoThreadStarted,
    /// The resolver thread runs: the node is up.
    ResolverStarted,
}

impl Step {
    /// Every step, in order.
    #[cfg(test)]
    pub(super) const ALL: [Step; 6] = [
        Step::Registered,
        Step::RuntimeStarted,
        Step::PollMade,
        Step::IoLoopBuilt,
        Step::IoThreadStarted,
        Step::ResolverStarted,
    ];
}

/// Undoes a step of [`Net::start`] when dropped, unless disarmed.
struct Stop<T: Undo>(Option<T>);

trait Undo {
    fn undo(self);
}

impl Undo for Node {
    fn undo(self) {
        self.shutdown();
    }
}

impl Undo for Net {
    fn undo(self) {
        self.shutdown();
    }
}

impl<T: Undo> Stop<T> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl<T: Undo> Drop for Stop<T> {
    fn drop(&mut self) {
        if let Some(what) = self.0.take() {
            what.undo();
        }
    }
}

impl Net {
    /// Starts a named node (see the module docs). On an error, nothing it started is
    /// left running and the name is not left registered with the port mapper.
    pub fn start(config: NetConfig) -> Result<Net, NetStartError> {
        Net::start_checked(config, |_| Ok(()))
    }

    /// [`Net::start`], calling `check` after each step: an error from it fails the
    /// start there, as a real failure of that step would (tests use it to fail each
    /// step in turn).
    pub(super) fn start_checked(
        config: NetConfig,
        mut check: impl FnMut(Step) -> Result<(), String>,
    ) -> Result<Net, NetStartError> {
        let mut check = |step| check(step).map_err(NetStartError::Injected);
        let addr = parse_node(&config.name).map_err(NetStartError::BadName)?;
        let cookie = crate::cookie::resolve_cookie(config.cookie.as_deref())
            .map_err(NetStartError::Cookie)?;
        let listen = |source| NetStartError::Listen {
            port: config.port,
            source,
        };
        let listener = std::net::TcpListener::bind(("127.0.0.1", config.port)).map_err(listen)?;
        listener.set_nonblocking(true).map_err(listen)?;
        let local = listener.local_addr().map_err(listen)?;
        // Deregisters (and stops a mapper it hosts) when dropped.
        let mapper = if config.use_mapper {
            let entry = NodeEntry::oxbeam(&addr.short, local.port(), config.hidden);
            let port = epmd::epmd_port(config.epmd_port);
            Some(
                Mapper::start(port, entry)
                    .map_err(|source| NetStartError::PortMapper { port, source })?,
            )
        } else {
            None
        };
        check(Step::Registered)?;
        let epmd_port = mapper
            .as_ref()
            .map_or_else(|| epmd::epmd_port(config.epmd_port), Mapper::port);
        let creation = match &mapper {
            Some(m) => m.creation(),
            None => config.runtime.creation.unwrap_or_else(clock_creation),
        };
        let node = Node::start(rt::Config {
            name: addr.node.clone(),
            creation: Some(creation),
            ..config.runtime.clone()
        });
        let runtime = Stop(Some(node.clone()));
        check(Step::RuntimeStarted)?;
        let system = |what| move |source| NetStartError::System { what, source };
        let poll = mio::Poll::new().map_err(system("I/O poller"))?;
        let waker = Arc::new(
            mio::Waker::new(poll.registry(), crate::io::WAKER).map_err(system("I/O waker"))?,
        );
        check(Step::PollMade)?;
        let (commands, command_rx) = crossbeam_channel::unbounded();
        let (resolver, resolve_rx) = crossbeam_channel::unbounded();
        let inner = Arc::new(NetInner {
            node: node.clone(),
            name: node.name(),
            creation,
            hidden: config.hidden,
            cookies: RwLock::new(Cookies {
                default: cookie.into_bytes(),
                per_peer: HashMap::new(),
            }),
            addr: local,
            epmd_port,
            config,
            epoch: Instant::now(),
            conns: RwLock::new(HashMap::default()),
            watchers: Mutex::new(NodeWatchers::default()),
            commands,
            waker,
            resolver,
            explicit_ports: Mutex::new(HashMap::new()),
            peer_ports: Mutex::new(HashMap::new()),
            ever_up: Mutex::new(std::collections::HashSet::new()),
            mapper: Mutex::new(mapper),
            threads: Mutex::new(Vec::new()),
        });
        let net = Net(inner.clone());
        // From here a failure undoes everything through `Net::shutdown`.
        let started = Stop(Some(net.clone()));
        runtime.disarm();
        let io = crate::io::IoLoop::new(
            Arc::downgrade(&inner),
            poll,
            mio::net::TcpListener::from_std(listener),
            command_rx,
        )
        .map_err(system("I/O loop"))?;
        // The I/O thread holds the only strong reference: the loop (its sockets, its
        // listener) goes when the thread ends.
        let parker = crossbeam_utils::sync::Parker::new();
        let io = Arc::new(crate::io::IoShared::new(io, parker.unparker().clone()));
        node.set_router(Some(Arc::new(NetRouter {
            net: Arc::downgrade(&inner),
            io: Arc::downgrade(&io),
        })));
        node.set_extension(inner.clone());
        check(Step::IoLoopBuilt)?;
        let short = addr.short.clone();
        let io_thread = std::thread::Builder::new()
            .name(format!("{short}-net"))
            .spawn(move || crate::io::IoLoop::run(io, parker))
            .map_err(system("I/O thread"))?;
        inner.threads.lock().push(io_thread);
        check(Step::IoThreadStarted)?;
        let weak = Arc::downgrade(&inner);
        let resolve_thread = std::thread::Builder::new()
            .name(format!("{short}-resolve"))
            .spawn(move || resolve_main(weak, resolve_rx))
            .map_err(system("resolver thread"))?;
        inner.threads.lock().push(resolve_thread);
        check(Step::ResolverStarted)?;
        started.disarm();
        log::info!(
            "node {} listening on {local} (creation {creation})",
            inner.name
        );
        Ok(net)
    }
}

fn clock_creation() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(1);
    (nanos ^ std::process::id()).max(1)
}

/// Finds peers' addresses (port mapper look-ups block) and hands them to the I/O thread.
fn resolve_main(net: std::sync::Weak<NetInner>, requests: Receiver<Option<Arc<Conn>>>) {
    // `None` asks the thread to stop.
    while let Ok(Some(conn)) = requests.recv() {
        let Some(net) = net.upgrade() else { return };
        let text = conn.peer.as_str();
        let explicit = net
            .explicit_ports
            .lock()
            .remove(&conn.peer)
            .or_else(|| net.peer_ports.lock().get(&conn.peer).copied());
        let port = match (parse_node(text), explicit) {
            (_, Some(p)) => Ok(p),
            (Err(e), None) => {
                let why = e.to_string();
                conn.note_failure(ConnectError::BadName(e));
                Err(why)
            }
            (Ok(a), None) => epmd::port_please(net.epmd_port, &a.short, net.config.connect_timeout)
                .map(|e| e.port)
                .map_err(|e| {
                    conn.note_failure(match &e {
                        epmd::EpmdError::NotFound(name) => {
                            ConnectError::NotRegistered { name: name.clone() }
                        }
                        other => ConnectError::MapperUnreachable(other.to_string()),
                    });
                    format!("port mapper: {e}")
                }),
        };
        match port {
            Ok(p) => {
                let _ = net.commands.send(Command::Dial {
                    conn,
                    addr: SocketAddr::from(([127, 0, 0, 1], p)),
                });
                let _ = net.waker.wake();
            }
            Err(e) => {
                log::warn!("cannot reach {text}: {e}");
                // Only a connection still being set up fails: the peer may have
                // connected to us meanwhile, and that connection is up and stays.
                net.conn_down_when(&conn, &e, |phase| matches!(phase, Phase::Connecting));
            }
        }
    }
}

/// Carries `rt`'s signals to other nodes, and lets a waiting worker turn the I/O loop.
struct NetRouter {
    net: std::sync::Weak<NetInner>,
    io: std::sync::Weak<crate::io::IoShared>,
}

impl Router for NetRouter {
    fn poll_io(&self) -> bool {
        self.io.upgrade().is_some_and(|io| io.turn_now())
    }

    fn stop_polling_io(&self) {
        if let Some(io) = self.io.upgrade() {
            io.stop_looking();
        }
    }

    fn route(&self, to: Pid, signal: Signal, connect: bool) {
        let Some(net) = self.net.upgrade() else {
            return;
        };
        match net.conn_to(to.node(), connect) {
            Some(conn) => conn.send_signal(to, signal),
            None => net.node.answer_dead(to, signal, Atom::NOCONNECTION),
        }
    }

    fn route_keep(&self, to: Pid, signal: Signal) -> Option<Arc<dyn PeerLink>> {
        let net = self.net.upgrade()?;
        let conn = net.conn_for(to.node(), None);
        conn.send_signal(to, signal);
        (!conn.is_down()).then_some(conn as Arc<dyn PeerLink>)
    }

    fn send_named(&self, node: Atom, name: Atom, msg: Term, connect: bool) {
        let Some(net) = self.net.upgrade() else {
            return;
        };
        let Some(conn) = net.conn_to(node, connect) else {
            log::debug!("{node} not connected: message to {name} dropped (noconnect)");
            return;
        };
        let from = net.node.system_pid();
        conn.send(&Wire::RegSend { from, name, msg }, |_| {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::epmd::EpmdServer;
    use std::time::Duration;

    /// This process's threads whose name starts with `prefix` (names are cut to 15
    /// bytes by the kernel).
    fn threads_named(prefix: &str) -> Vec<String> {
        std::fs::read_dir("/proc/self/task")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
                    .map(|c| c.trim_end().to_owned())
                    .filter(|c| c.starts_with(prefix))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The threads named `prefix...` once `done` holds for them, or the last seen after a
    /// few seconds: a new thread names itself once it runs, and a joined one may show in
    /// /proc for a moment after the join returns.
    fn threads_when(prefix: &str, done: impl Fn(&[String]) -> bool) -> Result<(), Vec<String>> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = threads_named(prefix);
            if done(&found) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(found);
            }
            std::thread::yield_now();
        }
    }

    fn no_threads_left(prefix: &str) -> Result<(), Vec<String>> {
        threads_when(prefix, <[String]>::is_empty)
    }

    fn registered(epmd: u16) -> Vec<String> {
        epmd::names(epmd, Duration::from_secs(5))
            .expect("the test's port mapper answers")
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    fn config(short: &str, epmd: u16) -> NetConfig {
        let mut config = NetConfig::named(&format!("{short}@localhost"));
        config.cookie = Some("start-cookie".into());
        config.epmd_port = Some(epmd);
        config.runtime.workers = 1;
        config
    }

    #[test]
    fn a_start_that_fails_at_any_step_leaves_no_thread_and_no_registration() {
        let mapper = EpmdServer::start(0).expect("a port mapper for this test");
        let epmd = mapper.port();
        // Started whole, the node's threads (runtime, timers, mapper registration, I/O,
        // resolver) all carry its name, and the mapper lists it: what is looked for
        // below can be seen.
        let whole = Net::start(config("sfwhole", epmd)).expect("starts");
        let all = [
            "sfwhole-w0",
            "sfwhole-timers",
            "sfwhole-mapper",
            "sfwhole-net",
            "sfwhole-resolve",
        ];
        let every = |found: &[String]| all.iter().all(|t| found.iter().any(|f| f == t));
        assert_eq!(threads_when("sfwhole-", every), Ok(()));
        assert!(registered(epmd).contains(&"sfwhole".to_owned()));
        whole.shutdown();
        assert_eq!(no_threads_left("sfwhole-"), Ok(()));
        assert!(!registered(epmd).contains(&"sfwhole".to_owned()));

        for (i, step) in Step::ALL.into_iter().enumerate() {
            let short = format!("sf{i}");
            let mut seen = Vec::new();
            let result = Net::start_checked(config(&short, epmd), |s| {
                seen.push(s);
                if s == step {
                    Err(format!("{s:?}: failed on purpose"))
                } else {
                    Ok(())
                }
            });
            let Err(why) = result else {
                panic!("{step:?}: started although the step failed")
            };
            assert_eq!(why.to_string(), format!("{step:?}: failed on purpose"));
            assert_eq!(seen, Step::ALL[..=i], "the steps up to the failing one ran");
            assert_eq!(
                no_threads_left(&format!("{short}-")),
                Ok(()),
                "threads left after {step:?} failed"
            );
            assert!(
                !registered(epmd).contains(&short),
                "{short} still registered after {step:?} failed"
            );
            // The name and the runtime's name are free for a start that succeeds.
            let again = Net::start(config(&short, epmd)).expect("the name is free");
            again.shutdown();
        }
        mapper.stop();
    }
}
