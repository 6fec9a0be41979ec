//! Monitors by registered name: `erlang:monitor(process, {name, node})`.
//!
//! OTP's rules, which these follow:
//! - the monitor is of the process registered as `name` on `node` when it is set up
//!   (a process registered under the name later is not watched);
//! - the `DOWN` names the object as it was monitored, `{name, node}`, never the pid;
//! - no process registered there: the `DOWN` comes at once, reason `noproc`;
//! - `node` unreachable, or lost while the monitor is up: reason `noconnection`.
//!
//! A name on this node is looked up at once and becomes a monitor of its pid. A name
//! on another node travels as a [`Signal::MonitorName`] to that node ([`node_pid`]),
//! which does the same lookup there ([`Node::monitor_by_name`]) and answers `noproc`
//! itself; the watcher keeps `{name, node}` beside the monitor to name its `DOWN`, and a
//! demonitor goes the same way ([`Signal::DemonitorName`]).

use std::collections::HashMap;

use super::Ctx;
use crate::node::Node;
use crate::signal::{Signal, node_pid};
use crate::term::{Atom, Pid, Ref, Term};

/// A process's monitors by name, `{name, node}` per reference: rare, so one word in
/// every process until it has one (a process's size is the spawn benchmark's).
#[derive(Debug, Default)]
#[allow(clippy::box_collection)] // the Box is the point: one word, not a HashMap's four
pub(crate) struct NameMonitors(Option<Box<HashMap<Ref, (Atom, Atom)>>>);

impl NameMonitors {
    pub(crate) fn insert(&mut self, reference: Ref, at: (Atom, Atom)) {
        self.0.get_or_insert_default().insert(reference, at);
    }

    pub(crate) fn remove(&mut self, reference: &Ref) -> Option<(Atom, Atom)> {
        let map = self.0.as_mut()?;
        let at = map.remove(reference);
        if map.is_empty() {
            self.0 = None;
        }
        at
    }

    pub(crate) fn contains_key(&self, reference: &Ref) -> bool {
        self.0.as_ref().is_some_and(|m| m.contains_key(reference))
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &(Atom, Atom)> {
        self.0.iter().flat_map(|m| m.values())
    }
}

impl Ctx {
    /// Monitors the process registered as `name` on `node` (this node or another):
    /// `erlang:monitor(process, {name, node})`. Its `DOWN` is
    /// `{:DOWN, ref, :process, {name, node}, reason}`: with `noproc` at once if no
    /// process is registered as `name` there, `noconnection` if `node` can't be reached
    /// or goes down, else the exit reason of the process the name led to.
    pub fn monitor_name(&mut self, name: impl Into<Atom>, node: impl Into<Atom>) -> Ref {
        let (name, node) = (name.into(), node.into());
        let reference = self.make_ref();
        let me = self.pid();
        self.named.insert(reference, (name, node));
        if node != self.node.name() {
            let to = node_pid(node);
            self.monitors.insert(reference, to);
            let signal = Signal::MonitorName {
                from: me,
                name,
                reference,
            };
            self.node.deliver(to, signal);
            return reference;
        }
        match self.node.whereis(name) {
            Some(pid) => {
                self.monitors.insert(reference, pid);
                self.node.deliver(
                    pid,
                    Signal::Monitor {
                        from: me,
                        reference,
                    },
                );
            }
            None => {
                let system = self.node.system_pid();
                self.monitors.insert(reference, system);
                self.node.deliver_local(
                    me,
                    Signal::Down {
                        from: system,
                        reference,
                        reason: Term::Atom(Atom::NOPROC),
                    },
                );
            }
        }
        reference
    }

    /// What ends the monitor `reference` (already taken out of `monitors`) at its
    /// target: a demonitor of the pid, or of the name on another node.
    pub(super) fn demonitor_signal(&mut self, reference: Ref) -> Signal {
        let from = self.pid();
        match self.named.remove(&reference) {
            Some((name, node)) if node != self.node.name() => Signal::DemonitorName {
                from,
                name,
                reference,
            },
            _ => Signal::Demonitor { from, reference },
        }
    }

    /// `monitors` for `Process.info`: the pids monitored, then `{name, node}` for each
    /// monitor by name (as OTP lists `{process, {name, node}}`).
    pub(super) fn monitors_info(&self) -> Term {
        let mut pids: Vec<Pid> = self
            .monitors
            .iter()
            .filter(|(r, _)| !self.named.contains_key(r))
            .map(|(_, p)| *p)
            .collect();
        pids.sort();
        let mut names: Vec<(Atom, Atom)> = self.named.values().copied().collect();
        names.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
        let objects = pids.into_iter().map(Term::Pid).chain(
            names
                .into_iter()
                .map(|(n, at)| Term::tuple(vec![Term::Atom(n), Term::Atom(at)])),
        );
        Term::list(objects.collect::<Vec<_>>())
    }
}

impl Node {
    /// Acts on a [`Signal::MonitorName`] that came to this node: `from` monitors the
    /// process registered here as `name` now, under `reference`, or gets its `DOWN`
    /// `noproc` at once (from [`Node::system_pid`]: its watcher names it by the name).
    pub fn monitor_by_name(&self, from: Pid, name: Atom, reference: Ref) {
        match self.whereis(name) {
            Some(pid) => self.deliver(pid, Signal::Monitor { from, reference }),
            None => self.deliver(
                from,
                Signal::Down {
                    from: self.system_pid(),
                    reference,
                    reason: Term::Atom(Atom::NOPROC),
                },
            ),
        }
    }

    /// Acts on a [`Signal::DemonitorName`] that came to this node: the process
    /// registered here as `name`, if any, drops the monitor `reference`.
    pub fn demonitor_by_name(&self, from: Pid, name: Atom, reference: Ref) {
        if let Some(pid) = self.whereis(name) {
            self.deliver(pid, Signal::Demonitor { from, reference });
        }
    }
}
