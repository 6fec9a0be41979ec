//! A process's spawns, links and monitors (the `Ctx` methods for them).

use super::Ctx;
use crate::errors::LinkError;
use crate::signal::Signal;
use crate::term::{Pid, Ref, Term};
use crate::{Behaviour, SpawnOpts};

impl Ctx {
    /// Spawns a process running `body`.
    pub fn spawn(&mut self, body: impl Behaviour) -> Pid {
        self.spawn_opts(body, SpawnOpts::default()).0
    }

    /// Spawns a [`Reactor`](crate::Reactor): a process that cannot wait, which this
    /// worker may run inline as this process sends to it or waits.
    pub fn spawn_reactor(&mut self, body: impl crate::Reactor) -> Pid {
        self.spawn(crate::Reacts(body))
    }

    /// Spawns a process running `body`, linked to this one.
    pub fn spawn_link(&mut self, body: impl Behaviour) -> Pid {
        self.spawn_opts(
            body,
            SpawnOpts {
                link: true,
                ..SpawnOpts::default()
            },
        )
        .0
    }

    /// Spawns a process running `body`, monitored by this one.
    pub fn spawn_monitor(&mut self, body: impl Behaviour) -> (Pid, Ref) {
        let (pid, r) = self.spawn_opts(
            body,
            SpawnOpts {
                monitor: true,
                ..SpawnOpts::default()
            },
        );
        (pid, r.expect("spawn with monitor returns a reference"))
    }

    /// Spawns with options; returns the pid and, with `monitor`, the monitor reference.
    pub fn spawn_opts(&mut self, body: impl Behaviour, opts: SpawnOpts) -> (Pid, Option<Ref>) {
        let node = self.node.clone();
        node.spawn_from(Box::new(body), opts, Some(self))
    }

    /// Sets trap_exit; returns the previous value. While set, exit signals (except
    /// `kill`) arrive as `{:EXIT, from, reason}` messages.
    pub fn trap_exit(&mut self, on: bool) -> bool {
        std::mem::replace(&mut self.trap_exit, on)
    }

    /// Whether this process traps exits.
    pub fn traps_exit(&self) -> bool {
        self.trap_exit
    }

    /// Links to `pid`. Linking to a dead local process is an error (`noproc`) unless this
    /// process traps exits, in which case `{:EXIT, pid, :noproc}` arrives instead. A link
    /// to a remote process that turns out dead ends in an exit signal `noproc`.
    pub fn link(&mut self, pid: Pid) -> Result<(), LinkError> {
        if pid == self.pid() || self.links.contains(&pid) {
            return Ok(());
        }
        if self.node.is_local(pid) && !self.node.is_alive(pid) && !self.trap_exit {
            return Err(LinkError::NoProc(pid));
        }
        self.links.insert(pid);
        self.node.deliver(pid, Signal::Link { from: self.pid() });
        Ok(())
    }

    /// Removes the link to `pid` (if any). An exit signal from that link that has not
    /// been acted on yet is ignored from now on.
    pub fn unlink(&mut self, pid: Pid) {
        if self.links.remove(&pid) {
            self.node.deliver(pid, Signal::Unlink { from: self.pid() });
        }
    }

    /// Records a link that already exists on the other side: the spawn of `pid` linked
    /// it to this process as it started (`spawn_link` done by another layer, such as a
    /// remote spawn). Sends no signal; the link then behaves as one made by [`Ctx::link`].
    pub fn adopt_link(&mut self, pid: Pid) {
        if pid != self.pid() {
            self.links.insert(pid);
        }
    }

    /// Records a monitor that already exists on the other side: the spawn of `pid` set
    /// it up with `reference` as it started (`spawn_monitor` done by another layer).
    /// Sends no signal; its `DOWN` arrives as for [`Ctx::monitor`].
    pub fn adopt_monitor(&mut self, reference: Ref, pid: Pid) {
        self.monitors.insert(reference, pid);
    }

    /// The processes this one is linked to.
    pub fn links(&self) -> Vec<Pid> {
        self.links.iter().copied().collect()
    }

    /// Monitors `pid`: when it exits (or if it is already gone), a
    /// `{:DOWN, ref, :process, pid, reason}` message arrives. A registered name, here or
    /// on another node: [`Ctx::monitor_name`].
    pub fn monitor(&mut self, pid: Pid) -> Ref {
        self.monitor_with(pid, true)
    }

    /// [`Ctx::monitor`] that never starts a connection: a pid on a node not connected
    /// now gets its `DOWN` with `noconnection` at once.
    pub fn monitor_noconnect(&mut self, pid: Pid) -> Ref {
        self.monitor_with(pid, false)
    }

    fn monitor_with(&mut self, pid: Pid, connect: bool) -> Ref {
        let reference = self.make_ref();
        self.monitors.insert(reference, pid);
        self.node.deliver_with(
            pid,
            Signal::Monitor {
                from: self.pid(),
                reference,
            },
            connect,
        );
        reference
    }

    /// Removes a monitor; returns whether it was active. A `DOWN` already in the
    /// mailbox stays there (see [`Ctx::demonitor_flush`]).
    pub fn demonitor(&mut self, reference: Ref) -> bool {
        match self.monitors.remove(&reference) {
            Some(pid) => {
                let signal = self.demonitor_signal(reference);
                self.node.deliver(pid, signal);
                true
            }
            None => false,
        }
    }

    /// Removes a monitor and any `DOWN` message of it already received (`[:flush]`).
    pub fn demonitor_flush(&mut self, reference: Ref) -> bool {
        let was_active = self.demonitor(reference);
        // A DOWN signal not yet acted on is dropped when it is (the monitor is gone);
        // one already turned into a message is in `saved`. Like Erlang's flush, this
        // also takes a matching message queued now (one sent as a plain message).
        let is_down =
            |m: &Term| matches!(m.tagged("DOWN"), Some([Term::Ref(r), ..]) if *r == reference);
        self.saved.retain(|m| !is_down(m));
        self.drain_into_saved();
        self.saved.retain(|m| !is_down(m));
        was_active
    }
}
