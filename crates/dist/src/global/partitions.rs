//! OTP 25's `prevent_overlapping_partitions`: the name servers keep every partition
//! fully connected, so no node is connected to two nodes that are not connected to
//! each other (the partial mesh in which one global name can have two holders that
//! nobody reconciles).
//!
//! **Protocol** (messages between name servers, all `noconnect`):
//! - A server whose node sees `{:nodedown, b}` (a connection lost, not one it cut
//!   itself, below) tells every peer server `{:lost_connection, self(), op, b}`; `op`
//!   grows with each report, and `self()` names the reporter and its incarnation.
//! - A server receiving `{:lost_connection, reporter, op, b}` for the first time (by
//!   `(reporter, b)` and `op`) passes it on to its own peers (so the news reaches
//!   every node even if the reporter's multicast was cut short), then removes `b`
//!   from its own partition: it sends `b`'s server `{:remove_connection, node()}` and
//!   notes `b` as removed. If it is `b` itself, it removes the reporter instead.
//! - A server receiving `{:remove_connection, c}` disconnects `c` and notes it as
//!   removed. A removed node's `nodedown` is not reported again (this is how the
//!   cascade ends), and a node removed but still connected a second later (its
//!   server did not answer) is disconnected from this side.
//!
//! As in OTP, the outcome of one cut in a larger mesh is racy: which of the other
//! links go depends on which reports arrive first, and often every node ends up
//! alone; nothing reconnects by itself. Off (`NetConfig::prevent_overlapping_partitions
//! = false`), these messages are ignored and a cut leaves a partial mesh.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::node::Net;
use crate::rt::{Ctx, Dest};
use crate::term::{Atom, Pid, Term};

use super::server::SERVER;

/// How long a removed node may stay connected before this side cuts it.
const REMOVE_GRACE: Duration = Duration::from_secs(1);

/// What a name server remembers to keep partitions fully connected.
#[derive(Default)]
pub(super) struct Partitions {
    /// The last report handled per (reporter, lost node).
    seen: HashMap<(Pid, Atom), i64>,
    /// Nodes this server removed (or was asked to): their `nodedown` is not reported.
    removed: HashSet<Atom>,
    /// This server's next report number.
    next_op: i64,
}

fn enabled(ctx: &Ctx) -> Option<Net> {
    Net::of(ctx.node()).filter(Net::prevents_overlapping_partitions)
}

impl Partitions {
    /// `node` is up (again): a later loss of it is news.
    pub(super) fn nodeup(&mut self, node: Atom) {
        self.removed.remove(&node);
    }

    /// This node lost `lost`: tells `peers` (the peer servers) unless this server cut
    /// that connection itself.
    pub(super) fn nodedown(&mut self, ctx: &Ctx, lost: Atom, peers: &[Pid]) {
        if self.removed.remove(&lost) || enabled(ctx).is_none() {
            return;
        }
        self.next_op += 1;
        log::debug!(
            "global at {}: lost {lost}; telling {} peer servers",
            ctx.node().name(),
            peers.len()
        );
        let report = lost_connection(ctx.pid(), self.next_op, lost);
        for p in peers.iter().filter(|p| p.node() != lost) {
            let _ = ctx.send_noconnect(*p, report.clone());
        }
    }

    /// `{:lost_connection, reporter, op, lost}` (see the module docs).
    pub(super) fn lost_connection(
        &mut self,
        ctx: &mut Ctx,
        reporter: Pid,
        op: i64,
        lost: Atom,
        peers: &[Pid],
    ) {
        let Some(net) = enabled(ctx) else {
            return;
        };
        match self.seen.get(&(reporter, lost)) {
            Some(done) if *done >= op => return,
            _ => {
                self.seen.insert((reporter, lost), op);
            }
        }
        let me = ctx.node().name();
        let report = lost_connection(reporter, op, lost);
        for p in peers
            .iter()
            .filter(|p| p.node() != reporter.node() && p.node() != lost)
        {
            let _ = ctx.send_noconnect(*p, report.clone());
        }
        let remove = if lost == me { reporter.node() } else { lost };
        if remove == me || !net.nodes().contains(&remove) {
            return;
        }
        log::warn!(
            "'global' at node {me} requested disconnect from node {remove} in order to \
             prevent overlapping partitions ({} lost {lost})",
            reporter.node()
        );
        self.removed.insert(remove);
        let _ = ctx.send_noconnect(
            Dest::NameAt(Atom::new(SERVER), remove),
            (Term::atom("remove_connection"), Term::Atom(me)),
        );
        ctx.node().send_after(
            ctx.pid(),
            (Term::atom("remove_overdue"), Term::Atom(remove)),
            REMOVE_GRACE,
        );
    }

    /// `{:remove_connection, node}`: a peer removes this node from its partition.
    pub(super) fn remove_connection(&mut self, ctx: &Ctx, node: Atom) {
        let Some(net) = enabled(ctx) else {
            return;
        };
        if net.nodes().contains(&node) {
            log::warn!(
                "'global' at node {} disconnected node {node} in order to prevent \
                 overlapping partitions",
                ctx.node().name()
            );
            self.removed.insert(node);
            net.disconnect(node);
        }
    }

    /// `{:remove_overdue, node}`: a node removed a while ago and still connected (its
    /// server did not cut it) is cut from this side.
    pub(super) fn remove_overdue(&mut self, ctx: &Ctx, node: Atom) {
        if let Some(net) = enabled(ctx)
            && self.removed.contains(&node)
            && net.nodes().contains(&node)
        {
            net.disconnect(node);
        }
    }
}

fn lost_connection(reporter: Pid, op: i64, lost: Atom) -> Term {
    Term::tuple(vec![
        Term::atom("lost_connection"),
        Term::Pid(reporter),
        Term::Int(op),
        Term::Atom(lost),
    ])
}
