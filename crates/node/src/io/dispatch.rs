//! What the I/O thread does with each message a connection brings in (after the
//! handshake): signals go to local processes (plain messages in batches, see
//! [`delivery`](crate::delivery)), spawn requests are served, spawn replies
//! reach their waiting callers, and peer lists start the full mesh's connections.
//! Signals that claim a sender on another node than the peer's are dropped (and
//! logged, rate-limited).

use std::sync::Arc;
use std::time::Instant;

use super::IoLoop;
use crate::conn::Conn;
use crate::net::NetInner;
use crate::rt::Signal;
use crate::term::{Atom, Term};
use crate::wire::{ToPid, Wire};

impl IoLoop {
    pub(super) fn dispatch(&mut self, net: &Arc<NetInner>, conn: &Arc<Conn>, msg: Wire) {
        let peer = conn.peer;
        // A plain message for a process here joins the batch; anything else is acted
        // on after the batch is handed over, so everything keeps its order.
        let msg = match msg {
            Wire::Signal {
                to,
                signal: signal @ Signal::Message(_),
            } => {
                self.batch.push(&net.node, to.on(net.name), signal);
                return;
            }
            other => other,
        };
        self.batch.flush(&net.node);
        match msg {
            Wire::Tick => {}
            Wire::Signal { to, signal } => {
                let to = to.on(net.name);
                let from = signal.sender();
                if let Some(from) = from {
                    if from.node() != peer {
                        self.warn_dropped(peer, || {
                            format!("signal claiming to come from {from:?}")
                        });
                        return;
                    }
                    Conn::note_signal(&mut conn.state.lock(), to, from, &signal, false);
                }
                match signal {
                    // To the node, not a process: it looks the name up (see `wire`).
                    Signal::MonitorName {
                        from,
                        name,
                        reference,
                    } => net.node.monitor_by_name(from, name, reference),
                    Signal::DemonitorName {
                        from,
                        name,
                        reference,
                    } => net.node.demonitor_by_name(from, name, reference),
                    signal => net.node.deliver(to, signal),
                }
            }
            Wire::RegSend { name, msg, .. } => {
                let _ = net.node.send_to(name, msg);
            }
            Wire::SpawnRequest {
                reference,
                from,
                module,
                function,
                args,
                link,
                monitor,
                group_leader,
            } => {
                if from.node() != peer {
                    self.warn_dropped(peer, || format!("spawn request for {from:?}"));
                    return;
                }
                match net.node.prepare_mfa(
                    module,
                    function,
                    args,
                    link.then_some(from),
                    monitor.then_some((from, reference)),
                ) {
                    Ok(prepared) => {
                        // The spawner's, as OTP's spawn_request gives it (or, if it has
                        // none, this node's default, which the process starts with).
                        if group_leader.is_some() {
                            prepared.set_group_leader(group_leader);
                        }
                        let pid = prepared.pid();
                        let reply = Wire::SpawnReply {
                            reference,
                            to: ToPid::of(from),
                            result: Ok(pid),
                        };
                        conn.send(&reply, |st| {
                            if link {
                                st.links.insert((pid, from));
                            }
                        });
                        prepared.start();
                    }
                    Err(e) => {
                        conn.send(
                            &Wire::SpawnReply {
                                reference,
                                to: ToPid::of(from),
                                result: Err(e.reason()),
                            },
                            |_| {},
                        );
                    }
                }
            }
            Wire::SpawnReply {
                reference,
                to,
                result,
            } => {
                let to = to.on(net.name);
                let wait = conn.state.lock().spawns.remove(&reference);
                let Some(wait) = wait else {
                    // The requester gave up waiting (timeout): the process it asked
                    // for must not run on unobserved, so it is killed.
                    if let Ok(pid) = result {
                        conn.send(
                            &Wire::Signal {
                                to: ToPid::of(pid),
                                signal: Signal::Exit {
                                    from: to,
                                    reason: Term::Atom(Atom::KILL),
                                    linked: false,
                                },
                            },
                            |_| {},
                        );
                    }
                    return;
                };
                let result = match result {
                    Ok(pid) => {
                        let mut st = conn.state.lock();
                        if wait.link {
                            st.links.insert((to, pid));
                        }
                        if wait.monitor {
                            st.monitors.insert(reference, (to, pid));
                        }
                        (Term::ok(), pid).into()
                    }
                    Err(e) => (Term::Atom(Atom::ERROR), e).into(),
                };
                let msg = Term::tuple(vec![
                    Term::atom("$spawn_reply"),
                    Term::Ref(reference),
                    result,
                ]);
                net.node.deliver_local(to, Signal::Message(msg));
            }
            Wire::Peers { nodes } => {
                for n in nodes {
                    match Atom::try_new(&n) {
                        Ok(a) if a != net.name && !net.conns.read().contains_key(&a) => {
                            net.conn_for(a, None);
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// Logs a message from `peer` dropped as forged or misaddressed (one line per
    /// peer per minute, see `log_limit`).
    fn warn_dropped(&mut self, peer: Atom, what: impl FnOnce() -> String) {
        if let Some(n) = self
            .log_limit
            .check(peer.as_str(), "dropped signal", Instant::now())
        {
            log::warn!(
                "from {peer}: {}; dropped{}",
                what(),
                crate::log_limit::left_out(n)
            );
        }
    }
}
