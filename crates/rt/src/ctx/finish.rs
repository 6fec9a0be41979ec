//! The end of a process: its mailbox closed, its links, monitors and name told.

use super::Ctx;
use crate::signal::Signal;
use crate::term::{Atom, Term};

impl Ctx {
    /// The end of a process: closes its mailbox and tells everyone who must know.
    pub(crate) fn finish(&mut self, reason: Term) {
        if self.exited.is_some() {
            return;
        }
        self.exited = Some(reason.clone());
        let me = self.pid();
        let (unhandled, name) = self.cell.close();
        let batch = std::mem::take(&mut self.inbox);
        self.inbox_extra = 0;
        let run = self.run.take().map(Signal::Encoded);
        // Remote messages still encoded are checked (a bad one closes its connection)
        // only once every link and monitor has been told: a large backlog must not
        // hold up the exit signals.
        let mut encoded = Vec::new();
        for signal in run.into_iter().chain(batch).chain(unhandled) {
            match signal {
                // A link or monitor that reached the process before it exited is
                // answered with the real reason (as in Erlang), not `noproc`: a process
                // that exits before it first looks at its mailbox still has them.
                Signal::Link { from } => self.node.deliver(
                    from,
                    Signal::Exit {
                        from: me,
                        reason: reason.clone(),
                        linked: true,
                    },
                ),
                Signal::Monitor { from, reference }
                | Signal::MonitorName {
                    from, reference, ..
                } => self.node.deliver(
                    from,
                    Signal::Down {
                        from: me,
                        reference,
                        reason: reason.clone(),
                    },
                ),
                Signal::Encoded(run) => encoded.push(run),
                other => self.node.answer_dead(me, other, Atom::NOPROC),
            }
        }
        for pid in self.links.drain() {
            self.node.deliver(
                pid,
                Signal::Exit {
                    from: me,
                    reason: reason.clone(),
                    linked: true,
                },
            );
        }
        for (reference, watcher) in self.watchers.drain() {
            self.node.deliver(
                watcher,
                Signal::Down {
                    from: me,
                    reference,
                    reason: reason.clone(),
                },
            );
        }
        for (reference, pid) in std::mem::take(&mut self.monitors) {
            let signal = self.demonitor_signal(reference);
            self.node.deliver(pid, signal);
        }
        self.saved.clear();
        self.node.process_exited(me, name);
        for run in encoded {
            run.check_rest();
        }
    }
}
