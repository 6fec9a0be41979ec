//! Spawning a registered function on a node, this one or a peer (`spawn_request`):
//! [`Net::spawn`], its options and its typed error.

use std::fmt;
use std::time::Duration;

use super::Net;
use crate::conn::SpawnWait;
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
    /// pid (at most the connect timeout plus the tick time).
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
        let SpawnRequest { link, monitor } = opts;
        let (module, function, args) = mfa;
        let reference = ctx.make_ref();
        if node == self.0.name {
            let prepared = self
                .0
                .node
                .prepare_mfa(
                    module,
                    function,
                    args,
                    link.then(|| ctx.pid()),
                    monitor.then(|| (ctx.pid(), reference)),
                )
                .map_err(RemoteSpawnError::Undefined)?;
            let pid = prepared.pid();
            if link {
                ctx.adopt_link(pid);
            }
            if monitor {
                ctx.adopt_monitor(reference, pid);
            }
            prepared.start();
            return Ok((pid, monitor.then_some(reference)));
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
        };
        conn.send_checked(&msg, |st| {
            st.spawns.insert(reference, wait);
        })
        .map_err(RemoteSpawnError::from_reason)?;
        let is_reply = |m: &Term| match m.tagged("$spawn_reply") {
            Some([Term::Ref(r), result]) if *r == reference => Some(result.clone()),
            _ => None,
        };
        let mut reply = ctx.receive_with(is_reply, Some(timeout));
        if reply.is_none() && conn.state.lock().spawns.remove(&reference).is_none() {
            // Too late to give up: the I/O thread took the reply as we timed out and is
            // delivering it (or the connection went down, which answers it too). Take it,
            // so that it neither stays in the mailbox nor leaves a process unobserved.
            reply = ctx.receive_with(is_reply, Some(Duration::from_secs(5)));
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
