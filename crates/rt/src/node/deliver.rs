//! Delivering signals: to a local process (its mailbox, then the scheduler), or through
//! the router to another node, and answering for a process that is not there.

use std::sync::Arc;

use super::Node;
use crate::PeerLink;
use crate::process::{ProcessCell, Pushed};
use crate::signal::Signal;
use crate::term::{Atom, Pid};

impl Node {
    /// Delivers a signal to `to`, local or remote. A signal that cannot be delivered is
    /// answered as Erlang does: a link gets an exit `noproc`, a monitor a `DOWN` `noproc`
    /// (`noconnection` if the pid's node is unreachable), the rest is dropped.
    pub fn deliver(&self, to: Pid, signal: Signal) {
        self.deliver_with(to, signal, true);
    }

    /// [`Node::deliver`]; with `connect` false, a pid on a node not connected now is
    /// unreachable (`noconnection`) rather than a reason to connect.
    pub fn deliver_with(&self, to: Pid, signal: Signal, connect: bool) {
        if self.is_local(to) {
            self.deliver_local(to, signal);
        } else if to.node() == self.0.name {
            // A pid of an earlier incarnation of this node: that process is long gone.
            self.answer_dead(to, signal, Atom::NOPROC);
        } else {
            match self.router() {
                Some(router) => router.route(to, signal, connect),
                None => self.answer_dead(to, signal, Atom::NOCONNECTION),
            }
        }
    }

    /// [`Node::deliver`], handing back the connection a signal for another node went
    /// on, for the sender to keep (`Ctx::send`; see [`Router::route_keep`]).
    pub(crate) fn deliver_keep(&self, to: Pid, signal: Signal) -> Option<Arc<dyn PeerLink>> {
        if self.is_local(to) || to.node() == self.0.name {
            self.deliver_with(to, signal, true);
            return None;
        }
        match self.router() {
            Some(router) => router.route_keep(to, signal),
            None => {
                self.answer_dead(to, signal, Atom::NOCONNECTION);
                None
            }
        }
    }

    /// Delivers a signal to a local process (also the entry point for signals that
    /// arrive from other nodes).
    pub fn deliver_local(&self, to: Pid, signal: Signal) {
        // Push under the table's read lock: no reference count traffic unless the
        // process must be scheduled.
        let pushed = self.0.processes.with(to.id(), |cell| match cell {
            None => Err(signal),
            Some(cell) => match cell.push(signal) {
                Ok(Pushed::Schedule) => Ok(Some(cell.clone())),
                Ok(Pushed::Nothing) => Ok(None),
                Err(signal) => Err(signal),
            },
        });
        match pushed {
            Ok(Some(cell)) => self.scheduler().schedule(cell),
            Ok(None) => {}
            Err(signal) => self.answer_dead(to, signal, Atom::NOPROC),
        }
    }

    /// Delivers `signals` (drained, in order) to `to` as [`Node::deliver`] would one
    /// by one, but to a local process under one lock with at most one wake-up (the
    /// I/O loop hands over a burst from a connection this way).
    pub fn deliver_batch(&self, to: Pid, signals: &mut Vec<Signal>) {
        if !self.is_local(to) {
            for signal in signals.drain(..) {
                self.deliver(to, signal);
            }
            return;
        }
        let pushed = self.0.processes.with(to.id(), |cell| match cell {
            None => Err(()),
            Some(cell) => match cell.push_batch(signals) {
                Ok(Pushed::Schedule) => Ok(Some(cell.clone())),
                Ok(Pushed::Nothing) => Ok(None),
                Err(()) => Err(()),
            },
        });
        match pushed {
            Ok(Some(cell)) => self.scheduler().schedule(cell),
            Ok(None) => {}
            Err(()) => {
                for signal in signals.drain(..) {
                    self.answer_dead(to, signal, Atom::NOPROC);
                }
            }
        }
    }

    /// The live local process `to`, for a sender that will send to it again (see
    /// [`Node::push_to`]).
    pub(crate) fn local_cell(&self, to: Pid) -> Option<Arc<ProcessCell>> {
        if self.is_local(to) {
            self.0.processes.get(to.id())
        } else {
            None
        }
    }

    /// Delivers `signal` to the local process `cell` (found before with
    /// [`Node::local_cell`]), without the process table: pids are never reused, so the
    /// cell is that process's for good, and once it has exited its mailbox refuses the
    /// push, which is answered as for a pid not in the table (`noproc`).
    /// False when the process has exited (the caller should not keep the cell).
    pub(crate) fn push_to(&self, cell: &Arc<ProcessCell>, signal: Signal) -> bool {
        match cell.push(signal) {
            Ok(Pushed::Schedule) => self.scheduler().schedule(cell.clone()),
            Ok(Pushed::Nothing) => {}
            Err(signal) => {
                self.answer_dead(cell.pid, signal, Atom::NOPROC);
                return false;
            }
        }
        true
    }
}
