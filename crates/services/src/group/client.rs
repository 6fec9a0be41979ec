//! The client side of a group: proposals and linearizable reads that find the leader,
//! and local reads that need no message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::replica::{Refusal, ReplicaServer, Request};
use super::{Freshness, GroupConfig, GroupError, Machine, Registry, Shared};
use crate::rt::{CallError, Ctx, Node, ServerRef};
use crate::term::{Atom, Term};

/// A handle on a group from one node: cheap to clone; any process of the node uses it.
pub struct Group<M: Machine> {
    node: Node,
    shared: Arc<Shared<M>>,
}

impl<M: Machine> Clone for Group<M> {
    fn clone(&self) -> Group<M> {
        Group {
            node: self.node.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<M: Machine> Group<M> {
    pub(super) fn new(node: Node, shared: Arc<Shared<M>>) -> Group<M> {
        Group { node, shared }
    }

    /// The handle on the group `name` whose replica runs on `node` (started there with
    /// [`start`](super::start)).
    pub fn find(node: &Node, name: Atom) -> Result<Group<M>, GroupError> {
        let shared = Registry::of(node)
            .get::<M>(name)
            .ok_or_else(|| GroupError::NotRunning(node.name().to_string()))?;
        Ok(Group::new(node.clone(), shared))
    }

    /// The group's settings.
    pub fn config(&self) -> &GroupConfig {
        &self.shared.config
    }

    /// This node's replica state: the machine as of its last applied entry.
    pub fn shared(&self) -> &Shared<M> {
        &self.shared
    }

    /// Reads this node's copy with `read`, with no message: what it gives, how fresh the
    /// copy is, and the log index it reflects.
    pub fn local<T>(&self, read: impl FnOnce(&M) -> T) -> (T, Freshness, u64) {
        let machine = self.shared.machine.read();
        let applied = self.shared.applied();
        (read(&machine), self.shared.freshness(), applied)
    }

    /// Commits `cmd` (a majority holds it) and returns what applying it gave.
    /// [`GroupError::NoQuorum`] when no leader was found within `no_leader_wait`,
    /// [`GroupError::Unknown`] when `timeout` passed with the command taken but not
    /// answered.
    pub fn propose(
        &self,
        ctx: &mut Ctx,
        cmd: M::Command,
        timeout: Duration,
    ) -> Result<M::Output, GroupError> {
        self.request(ctx, timeout, false, || Request::Propose(cmd.clone()))
    }

    /// Answers `query` linearizably: against a state that holds every command
    /// acknowledged before the call.
    pub fn read(
        &self,
        ctx: &mut Ctx,
        query: M::Query,
        timeout: Duration,
    ) -> Result<M::Output, GroupError>
    where
        M::Query: Clone,
    {
        self.request(ctx, timeout, true, || Request::Read(query.clone()))
    }

    /// Sends `request` to this node's replica, then to the leader it names, waiting for
    /// an election where there is none. A read (`idempotent`) is sent again wherever a
    /// call failed; a proposal only where it surely did not arrive (no replica there, or
    /// a refusal): once one may have reached a leader, the outcome is
    /// [`GroupError::Unknown`] unless an answer says otherwise (sending it again could
    /// apply it twice).
    fn request(
        &self,
        ctx: &mut Ctx,
        timeout: Duration,
        idempotent: bool,
        mut request: impl FnMut() -> Request<M::Command, M::Query>,
    ) -> Result<M::Output, GroupError> {
        let deadline = Instant::now() + timeout;
        // The leader this node's replica follows, if it knows one (one hop less than
        // asking the local replica to be redirected); else the local replica.
        let mut target = match self.shared.known_leader() {
            Some(i) => self.shared.config.nodes[i],
            None => self.node.name(),
        };
        let mut leaderless_since: Option<Instant> = None;
        let mut tried = 0usize;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(GroupError::Unknown);
            }
            let answer = if self.reachable(target) {
                let replica = ServerRef::<ReplicaServer<M>>::at(self.shared.config.name, target);
                replica.call(ctx, request(), deadline - now)
            } else {
                // Not connected: the request is surely not sent there (a proposal may go
                // elsewhere), as if no replica ran there.
                Err(CallError::NoProc)
            };
            let next = match answer {
                Ok(Ok(output)) => return Ok(output),
                // A read whose barrier a new leader replaced is asked again.
                Ok(Err(Refusal::Failed(GroupError::NotCommitted))) if idempotent => None,
                Ok(Err(Refusal::Failed(e))) => return Err(e),
                Ok(Err(Refusal::NotLeader(Some(leader)))) if leader != target => {
                    leaderless_since = None;
                    target = leader;
                    continue;
                }
                Ok(Err(Refusal::NotLeader(_))) => None,
                Err(CallError::Timeout) => return Err(GroupError::Unknown),
                Err(CallError::NoConnection | CallError::Exit(_)) if !idempotent => {
                    return Err(GroupError::Unknown);
                }
                Err(CallError::NoProc | CallError::NoConnection | CallError::Exit(_)) => {
                    tried += 1;
                    Some(self.shared.config.nodes[tried % self.shared.config.nodes.len()])
                }
                Err(e @ (CallError::BadRequest(_) | CallError::BadReply(_))) => {
                    return Err(GroupError::BadRequest(e.to_string()));
                }
                Err(e) => return Err(GroupError::BadRequest(e.to_string())),
            };
            // No leader known here: wait a little for an election, up to `no_leader_wait`.
            let since = *leaderless_since.get_or_insert(now);
            if now.duration_since(since) >= self.shared.config.no_leader_wait {
                return Err(GroupError::NoQuorum);
            }
            target = next.unwrap_or(target);
            pause(ctx, Duration::from_millis(5).min(deadline - now));
        }
    }

    /// Whether a call to `node`'s replica can be sent: this node, or one connected now
    /// (its replica, heard from, is; a node gone is not).
    fn reachable(&self, node: Atom) -> bool {
        node == self.node.name()
            || crate::node::Net::of(&self.node).is_none_or(|net| net.nodes().contains(&node))
    }

    /// Waits until this node's replica knows a leader (within `timeout`): its node.
    /// [`GroupError::NoQuorum`] past it.
    pub fn wait_for_leader(&self, ctx: &mut Ctx, timeout: Duration) -> Result<Atom, GroupError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.shared.known_leader() {
                return Ok(self.shared.config.nodes[i]);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(GroupError::NoQuorum);
            }
            pause(ctx, Duration::from_millis(2).min(deadline - now));
        }
    }

    /// Moves leadership to the replica on `to` (Raft's leadership transfer: the leader
    /// brings it up to date, then has it stand for election at once); returns once this
    /// node's replica follows it. [`GroupError::NoQuorum`] if that did not happen within
    /// `timeout` (an election elsewhere, `to` down or not a member).
    pub fn transfer_leadership(
        &self,
        ctx: &mut Ctx,
        to: Atom,
        timeout: Duration,
    ) -> Result<(), GroupError> {
        let target = self
            .shared
            .config
            .nodes
            .iter()
            .position(|n| *n == to)
            .ok_or_else(|| GroupError::NotRunning(to.to_string()))?;
        let deadline = Instant::now() + timeout;
        let ask = Term::tuple(vec![Term::atom(super::replica::TRANSFER), Term::Atom(to)]);
        let mut next_ask = Instant::now();
        loop {
            if self.shared.known_leader() == Some(target) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(GroupError::NoQuorum);
            }
            if now >= next_ask {
                let _ = ctx.send_to(crate::rt::Dest::Name(self.shared.config.name), ask.clone());
                next_ask = now + Duration::from_millis(100);
            }
            pause(ctx, Duration::from_millis(2).min(deadline - now));
        }
    }

    /// The node this handle is on.
    pub fn node_name(&self) -> Atom {
        self.node.name()
    }
}

/// Waits `d` without taking any message.
fn pause(ctx: &mut Ctx, d: Duration) {
    ctx.receive_match(|_| false, Some(d));
}
