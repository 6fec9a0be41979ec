//! Batched delivery of the messages a connection brings in.
//!
//! A burst from one remote process to one local process arrives as many frames in one
//! read. Delivered one by one, each would take the receiver's mailbox lock and maybe
//! wake it. The I/O loop instead gathers consecutive plain messages for one process
//! and hands them over together ([`Node::deliver_batch`]): one lock, at most one
//! wake-up or scheduling per batch.
//!
//! A small plain message (a whole frame of at most 1 KiB) is not decoded at first: its
//! destination is read from the frame's head (`wire::split_message`) and its term's
//! bytes join an [`EncodedMessages`] run that the receiving process decodes on its own
//! thread when it takes its queue. A run that ends with one message is decoded here
//! after all (for one message that is cheaper). A term that does not decode in the
//! process closes the connection it came on (through [`BadMessage`]), as one found bad
//! here does, once the process has acted on the messages before it; a run for a
//! process that is gone (or that exits before taking it) is decoded only to check it,
//! then dropped (`Node::answer_dead`).
//!
//! Order is kept: a batch only ever holds consecutive messages to one destination,
//! and it is handed over before anything else is acted on (another destination, a
//! control signal, a closed connection), at the end of each read, and every
//! [`MAX_BATCH`] messages, so a receiver starts on a long burst early.

use std::sync::{Arc, Weak};

use crossbeam_channel::Sender;

use super::conn::Conn;
use super::net::Command;
use crate::rt::{EncodedMessages, MessageSource, Node, Signal};
use crate::term::Pid;

/// The most messages held before they are handed over.
pub(crate) const MAX_BATCH: usize = 256;

/// Bytes a new run of encoded messages starts with room for.
const RUN_BYTES: usize = 2048;

/// Messages gathered for one local process.
#[derive(Default)]
pub(crate) struct DeliveryBatch {
    to: Option<Pid>,
    signals: Vec<Signal>,
    /// Still-encoded messages after `signals`, in order.
    encoded: Option<EncodedMessages>,
    /// A run that held one message, decoded here; its buffers serve the next run.
    spare: Option<EncodedMessages>,
}

impl DeliveryBatch {
    /// Adds a plain message for `to`, handing over what was gathered for another
    /// process first.
    pub(crate) fn push(&mut self, node: &Node, to: Pid, message: Signal) {
        self.start(node, to);
        self.end_run();
        self.signals.push(message);
        if self.signals.len() >= MAX_BATCH {
            self.flush(node);
        }
    }

    /// Adds a plain message for `to` as its term's bytes (decoded by the receiver),
    /// from `source`.
    pub(crate) fn push_encoded(
        &mut self,
        node: &Node,
        to: Pid,
        term: &[u8],
        source: &Arc<dyn MessageSource>,
    ) {
        self.start(node, to);
        if self.encoded.as_ref().is_some_and(|e| !e.is_from(source)) {
            self.end_run();
        }
        let run = match &mut self.encoded {
            Some(run) => run,
            None => {
                let spare = self.spare.take().filter(|s| s.is_from(source));
                self.encoded.insert(spare.unwrap_or_else(|| {
                    // Room for a typical run: growing from empty reallocated 5 times.
                    let mut run = EncodedMessages::new(source.clone());
                    run.reserve(RUN_BYTES, RUN_BYTES / 32);
                    run
                }))
            }
        };
        run.push(term);
        if self.signals.len() + run.len() >= MAX_BATCH {
            self.flush(node);
        }
    }

    /// Hands over everything gathered.
    pub(crate) fn flush(&mut self, node: &Node) {
        self.end_run();
        if let Some(to) = self.to
            && !self.signals.is_empty()
        {
            node.deliver_batch(to, &mut self.signals);
        }
        self.signals.clear();
    }

    fn start(&mut self, node: &Node, to: Pid) {
        if self.to != Some(to) {
            self.flush(node);
            self.to = Some(to);
        }
    }

    /// Closes the run of encoded messages: it takes its place among the signals. A
    /// lone message is decoded here instead: handed over encoded, it would cost the
    /// receiver more (allocations, a wake-up's worth of latency) than its decoding
    /// costs this thread; it is runs of messages that are worth passing on.
    fn end_run(&mut self) {
        let Some(mut run) = self.encoded.take() else {
            return;
        };
        if run.len() == 1 {
            // One message: a failure is reported at once (nothing came before it).
            match run.take_next() {
                Some(Ok(m)) => self.signals.push(Signal::Message(m)),
                Some(Err(why)) => run.malformed(why),
                None => {}
            }
            run.clear();
            self.spare = Some(run);
        } else {
            self.signals.push(Signal::Encoded(Box::new(run)));
        }
    }
}

/// A connection's [`MessageSource`]: a message that its receiver cannot decode has the
/// I/O loop close the connection (logged there like any bad message).
pub(crate) struct BadMessage {
    pub(crate) conn: Weak<Conn>,
    pub(crate) commands: Sender<Command>,
    pub(crate) waker: Arc<mio::Waker>,
}

impl MessageSource for BadMessage {
    fn malformed(&self, why: String) {
        if let Some(conn) = self.conn.upgrade() {
            let _ = self.commands.send(Command::BadMessage { conn, why });
            let _ = self.waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rt::Config;
    use crate::term::Term;
    use std::time::Duration;

    #[test]
    fn batches_keep_order_per_process_and_skip_the_dead() {
        let node = Node::start(Config {
            name: "batch@localhost".into(),
            workers: 1,
            ..Config::default()
        });
        let mut a = node.attach();
        let mut b = node.attach();
        let dead = node.spawn(|_: &mut crate::rt::Ctx, _: Term| crate::rt::Flow::stop_normal());
        node.send(dead, Term::atom("die"));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while node.is_alive(dead) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(!node.is_alive(dead));
        let mut batch = DeliveryBatch::default();
        let msg = |i: i64| Signal::Message(Term::Int(i));
        for i in 0..600 {
            batch.push(&node, a.pid(), msg(i));
        }
        batch.push(&node, dead, msg(-1));
        for i in 0..3 {
            batch.push(&node, b.pid(), msg(i));
        }
        batch.push(&node, a.pid(), msg(600));
        batch.flush(&node);
        for i in 0..=600 {
            assert_eq!(
                a.receive_timeout(Duration::from_secs(5)),
                Some(Term::Int(i))
            );
        }
        for i in 0..3 {
            assert_eq!(
                b.receive_timeout(Duration::from_secs(5)),
                Some(Term::Int(i))
            );
        }
        assert!(a.flush().is_empty() && b.flush().is_empty());
        drop((a, b));
        node.shutdown();
    }
}
