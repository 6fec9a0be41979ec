//! Batched delivery of the messages a connection brings in.
//!
//! A burst from one remote process to one local process arrives as many frames in one
//! read. Delivered one by one, each would take the receiver's mailbox lock and maybe
//! wake it. The I/O loop instead gathers consecutive plain messages for one process
//! and hands them over together ([`Node::deliver_batch`]): one lock, at most one
//! wake-up or scheduling per batch.
//!
//! Order is kept: a batch only ever holds consecutive messages to one destination,
//! and it is handed over before anything else is acted on (another destination, a
//! control signal, a closed connection), at the end of each read, and every
//! [`MAX_BATCH`] messages, so a receiver starts on a long burst early.

use crate::rt::{Node, Signal};
use crate::term::Pid;

/// The most messages held before they are handed over.
pub(crate) const MAX_BATCH: usize = 256;

/// Messages gathered for one local process.
#[derive(Default)]
pub(crate) struct DeliveryBatch {
    to: Option<Pid>,
    signals: Vec<Signal>,
}

impl DeliveryBatch {
    /// Adds a plain message for `to`, handing over what was gathered for another
    /// process first.
    pub(crate) fn push(&mut self, node: &Node, to: Pid, message: Signal) {
        if self.to != Some(to) {
            self.flush(node);
            self.to = Some(to);
        }
        self.signals.push(message);
        if self.signals.len() >= MAX_BATCH {
            self.flush(node);
        }
    }

    /// Hands over everything gathered.
    pub(crate) fn flush(&mut self, node: &Node) {
        if let Some(to) = self.to
            && !self.signals.is_empty()
        {
            node.deliver_batch(to, &mut self.signals);
        }
        self.signals.clear();
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
