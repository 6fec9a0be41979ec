//! Spawning a registered function on a node, this one or a peer (`spawn_request`):
//! [`Net::spawn`], its options and its typed error, and [`Net::spawn_request`], which
//! sends the request without waiting ([`PendingSpawn`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::Net;
use crate::conn::{Conn, SpawnWait};
use crate::rt::{Ctx, UndefinedFunction};
use crate::term::{Atom, Pid, Ref, Term};
use crate::wire::Wire;

/// How the new process of [`Net::spawn`] is tied to its spawner (OTP's `spawn_opt`
/// options `link` and `monitor`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpawnRequest {
    /// Link the new process to the spawner.
    pub link: bool,
    /// Monitor the new process from the spawner (the reference comes back).
    pub monitor: bool,
}

impl SpawnRequest {
    /// Linked to the spawner (`Node.spawn_link`).
    pub const LINK: SpawnRequest = SpawnRequest {
        link: true,
        monitor: false,
    };
    /// Monitored by the spawner (`Node.spawn_monitor`).
    pub const MONITOR: SpawnRequest = SpawnRequest {
        link: false,
        monitor: true,
    };
}

/// Why [`Net::spawn`] gave no pid.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RemoteSpawnError {
    /// The function is not registered there with that arity; no process started.
    Undefined(UndefinedFunction),
    /// The node could not be reached (`noconnection`); no process started.
    NoConnection,
    /// The arguments encode to more than the peer accepts in one message.
    TooLarge {
        /// The request's encoded size.
        bytes: usize,
        /// The most the peer accepts.
        max: usize,
    },
    /// No answer in time: the process may or may not have started.
    Timeout,
    /// The peer refused with this reason.
    Refused(Term),
}

impl RemoteSpawnError {
    /// The reason OTP gives (`{:undef, {m, f, a}}`, `noconnection`, `timeout`, ...).
    pub fn reason(&self) -> Term {
        match self {
            RemoteSpawnError::Undefined(u) => u.reason(),
            RemoteSpawnError::NoConnection => Term::atom("noconnection"),
            RemoteSpawnError::TooLarge { bytes, max } => {
                (Term::atom("too_large"), *bytes, *max).into()
            }
            RemoteSpawnError::Timeout => Term::atom("timeout"),
            RemoteSpawnError::Refused(r) => r.clone(),
        }
    }

    /// The error a reason on the wire (or from sending) stands for.
    fn from_reason(reason: Term) -> RemoteSpawnError {
        if let Some([Term::Tuple(mfa)]) = reason.tagged("undef")
            && let [Term::Atom(module), Term::Atom(function), arity] = &mfa[..]
            && let Some(arity) = arity.as_int().and_then(|a| usize::try_from(a).ok())
        {
            return RemoteSpawnError::Undefined(UndefinedFunction {
                module: *module,
                function: *function,
                arity,
            });
        }
        if let Some([bytes, max]) = reason.tagged("too_large")
            && let (Some(bytes), Some(max)) = (bytes.as_int(), max.as_int())
        {
            return RemoteSpawnError::TooLarge {
                bytes: bytes.max(0) as usize,
                max: max.max(0) as usize,
            };
        }
        match reason.as_atom() {
            Some(a) if a == Atom::new("noconnection") => RemoteSpawnError::NoConnection,
            Some(a) if a == Atom::TIMEOUT => RemoteSpawnError::Timeout,
            _ => RemoteSpawnError::Refused(reason),
        }
    }
}

impl fmt::Display for RemoteSpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteSpawnError::Undefined(u) => write!(f, "spawn failed: {u}"),
            RemoteSpawnError::NoConnection => {
                f.write_str("spawn failed: the node is not reachable")
            }
            RemoteSpawnError::TooLarge { bytes, max } => write!(
                f,
                "spawn failed: the request is {bytes} bytes, the peer accepts at most {max}"
            ),
            RemoteSpawnError::Timeout => {
                f.write_str("spawn timed out (the process may or may not have started)")
            }
            RemoteSpawnError::Refused(r) => write!(f, "spawn refused: {r}"),
        }
    }
}

impl std::error::Error for RemoteSpawnError {}

impl From<RemoteSpawnError> for Term {
    fn from(e: RemoteSpawnError) -> Term {
        e.reason()
    }
}

impl Net {
    /// Spawns the registered `module:function/args` on `node` (which may be this one),
    /// linked to or monitored by `ctx`'s process as `opts` says, and waits for the new
    /// pid (at most the connect timeout plus the tick time). The new process's group
    /// leader is `ctx`'s (as OTP's `spawn_request`): what it prints (`rt::io`) goes
    /// where `ctx`'s output goes, on this node.
    pub fn spawn(
        &self,
        ctx: &mut Ctx,
        node: Atom,
        mfa: (Atom, Atom, Vec<Term>),
        opts: SpawnRequest,
    ) -> Result<(Pid, Option<Ref>), RemoteSpawnError> {
        let wait = self.0.config.connect_timeout + self.0.config.tick_time;
        self.spawn_within(ctx, node, mfa, opts, wait)
    }

    /// [`Net::spawn`] waiting at most `timeout` for the new pid (then
    /// [`RemoteSpawnError::Timeout`]: the process may or may not have started).
    pub fn spawn_within(
        &self,
        ctx: &mut Ctx,
        node: Atom,
        mfa: (Atom, Atom, Vec<Term>),
        opts: SpawnRequest,
        timeout: Duration,
    ) -> Result<(Pid, Option<Ref>), RemoteSpawnError> {
        self.spawn_request(ctx, node, mfa, opts).wait(ctx, timeout)
    }

    /// [`Net::spawn`] without waiting: the request is sent (on this node, the process
    /// is started), and [`PendingSpawn::wait`] takes the answer. Requests to several
    /// nodes so overlap: one slow node delays none of the others.
    pub fn spawn_request(
        &self,
        ctx: &mut Ctx,
        node: Atom,
        mfa: (Atom, Atom, Vec<Term>),
        opts: SpawnRequest,
    ) -> PendingSpawn {
        let SpawnRequest { link, monitor } = opts;
        let (module, function, args) = mfa;
        let reference = ctx.make_ref();
        if node == self.0.name {
            let spawned = self
                .0
                .node
                .prepare_mfa(
                    module,
                    function,
                    args,
                    link.then(|| ctx.pid()),
                    monitor.then(|| (ctx.pid(), reference)),
                )
                .map(|prepared| {
                    prepared.set_group_leader(ctx.group_leader());
                    let pid = prepared.pid();
                    if link {
                        ctx.adopt_link(pid);
                    }
                    if monitor {
                        ctx.adopt_monitor(reference, pid);
                    }
                    prepared.start();
                    (pid, monitor.then_some(reference))
                })
                .map_err(RemoteSpawnError::Undefined);
            return PendingSpawn(Pending::Done(spawned));
        }
        let conn = self.0.conn_for(node, None);
        let me = ctx.pid();
        let wait = SpawnWait {
            requester: me,
            link,
            monitor,
        };
        let msg = Wire::SpawnRequest {
            reference,
            from: me,
            module,
            function,
            args,
            link,
            monitor,
            group_leader: ctx.group_leader(),
        };
        match conn.send_checked(&msg, |st| {
            st.spawns.insert(reference, wait);
        }) {
            Ok(()) => PendingSpawn(Pending::Sent {
                conn,
                reference,
                link,
                monitor,
            }),
            Err(reason) => PendingSpawn(Pending::Done(Err(RemoteSpawnError::from_reason(reason)))),
        }
    }
}

/// What a spawn gives: the new pid and, when monitored, the monitor's reference.
pub type Spawned = Result<(Pid, Option<Ref>), RemoteSpawnError>;

/// A spawn request sent by [`Net::spawn_request`], its answer not yet taken. Wait for
/// it (with the process that sent it): dropped unawaited, the answer stays in that
/// process's mailbox and the new process, if any, runs on unobserved.
#[must_use = "the answer must be taken with `wait`"]
pub struct PendingSpawn(Pending);

enum Pending {
    /// Answered at once (this node, or the request could not be sent).
    Done(Spawned),
    /// On its way to the peer.
    Sent {
        conn: Arc<Conn>,
        reference: Ref,
        link: bool,
        monitor: bool,
    },
}

impl PendingSpawn {
    /// Waits at most `timeout` for the new pid (then [`RemoteSpawnError::Timeout`]: the
    /// process may or may not have started; if it does, the peer kills it when its late
    /// answer comes). `ctx` must be the process that sent the request.
    pub fn wait(self, ctx: &mut Ctx, timeout: Duration) -> Spawned {
        let reference = match &self.0 {
            Pending::Done(_) => return self.answered(ctx, None),
            Pending::Sent { reference, .. } => *reference,
        };
        let reply = ctx.receive_with(|m| reply_to(m, reference), Some(timeout));
        self.answered(ctx, reply)
    }

    /// Waits at most `timeout` for the first answer to any of the requests in
    /// `pending` (those still there), in the order the answers come: the one answered
    /// is taken out, and its index and result returned; `None` if none came in time
    /// (or `pending` holds none). Waiting for the requests one by one instead would
    /// let the `DOWN` of a monitored process whose answer came meanwhile go by before
    /// its monitor is taken on, and be lost.
    pub fn wait_any(
        ctx: &mut Ctx,
        pending: &mut [Option<PendingSpawn>],
        timeout: Duration,
    ) -> Option<(usize, Spawned)> {
        if let Some(i) = pending
            .iter()
            .position(|p| matches!(p, Some(PendingSpawn(Pending::Done(_)))))
        {
            let done = pending[i].take().expect("found above");
            return Some((i, done.answered(ctx, None)));
        }
        let refs: Vec<(usize, Ref)> = pending
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                Some(PendingSpawn(Pending::Sent { reference, .. })) => Some((i, *reference)),
                _ => None,
            })
            .collect();
        if refs.is_empty() {
            return None;
        }
        let (i, reply) = ctx.receive_with(
            |m| {
                refs.iter()
                    .find_map(|&(i, r)| reply_to(m, r).map(|reply| (i, reply)))
            },
            Some(timeout),
        )?;
        let answered = pending[i].take().expect("a request still waiting");
        Some((i, answered.answered(ctx, Some(reply))))
    }

    /// The result, from the answer taken (`None`: none came in time).
    fn answered(self, ctx: &mut Ctx, mut reply: Option<Term>) -> Spawned {
        let (conn, reference, link, monitor) = match self.0 {
            Pending::Done(result) => return result,
            Pending::Sent {
                conn,
                reference,
                link,
                monitor,
            } => (conn, reference, link, monitor),
        };
        if reply.is_none() && conn.state.lock().spawns.remove(&reference).is_none() {
            // Too late to give up: the I/O thread took the reply as we timed out and is
            // delivering it (or the connection went down, which answers it too). Take it,
            // so that it neither stays in the mailbox nor leaves a process unobserved.
            reply = ctx.receive_with(|m| reply_to(m, reference), Some(Duration::from_secs(5)));
        }
        match reply.as_ref().and_then(|r| r.as_tuple()) {
            Some([tag, Term::Pid(pid)]) if tag.is_atom("ok") => {
                if link {
                    ctx.adopt_link(*pid);
                }
                if monitor {
                    ctx.adopt_monitor(reference, *pid);
                }
                Ok((*pid, monitor.then_some(reference)))
            }
            Some([tag, reason]) if tag.is_atom("error") => {
                Err(RemoteSpawnError::from_reason(reason.clone()))
            }
            _ => Err(RemoteSpawnError::Timeout),
        }
    }
}

/// The result in `m` if it is the answer to the spawn request `reference`.
fn reply_to(m: &Term, reference: Ref) -> Option<Term> {
    match m.tagged("$spawn_reply") {
        Some([Term::Ref(r), result]) if *r == reference => Some(result.clone()),
        _ => None,
    }
}
