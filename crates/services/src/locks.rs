//! The lock manager (the chapter's exercise 3, as a service): locks, read-write locks
//! and semaphores on a chosen set of nodes, a [`group`] whose machine is a
//! [`LockState`]: grants strictly first come, first served, each with a fencing token
//! that strictly increases per resource.
//!
//! **Leases.** A holder's lease is kept alive by a keeper process on its node, which
//! renews it every `renew_every` (a committed `Renew`). The leader's warden expires a
//! lease not renewed for `lease` (measured on the leader, from the grant or last
//! renewal it applied; a new leader restarts every lease from its election), and the
//! next waiter is granted. The keeper counts from when it *sent* its last renewal that
//! committed, so it sees the lease end first: once `lease - margin` has passed without
//! one, it sends its owner `{:lock_lost, resource, token}`, before the lease can be
//! granted to anyone else (a holder cut off by a partition hears it; a holder whose
//! whole node is frozen cannot, which is what fencing is for).
//! **Death.** A holder process that exits releases at once (its keeper monitors it); a
//! holder's node that dies releases when the lease runs out.
//! **Fencing.** [`Lease::fence`] is what a guarded resource checks: the KV's
//! [`put_fenced`](crate::kv::Table::put_fenced) refuses a write whose token is older
//! than the newest it has seen for that lock.
//! **Timeouts** are real milliseconds: a waiter that is not granted by its deadline
//! cancels its request (a committed `Cancel`, which answers with the grant if one came
//! first, so nothing is left held). An acquire is identified by its request reference,
//! which the machine answers as it stands when it comes again, so an acquire whose
//! outcome is unknown (its leader lost mid-call) is simply asked again.

mod machine;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::group::{self, Group, GroupConfig, GroupError, Machine};
use crate::rt::{Ctx, Node};
use crate::term::{Atom, Ref, Term, from_term, to_term};

pub use machine::{Grant, Holder, LockCommand, LockOutput, LockQuery, LockState, Mode};

const GRANTED: &str = "oxbeam_lock_granted";

/// The lock manager's machine: its state, and the grants it tells local waiters of.
pub struct LockMachine {
    state: LockState,
}

impl Machine for LockMachine {
    type Command = LockCommand;
    type Query = LockQuery;
    type Output = LockOutput;

    fn apply(&mut self, ctx: &mut Ctx, _index: u64, cmd: LockCommand) -> LockOutput {
        let asked = match &cmd {
            LockCommand::Acquire { request, .. } => Some(*request),
            _ => None,
        };
        let mut grants = Vec::new();
        let out = self.state.apply(cmd, &mut grants);
        // A waiter granted later hears it from the replica on its node; the acquirer
        // granted at once has it in its answer.
        for g in grants {
            if Some(g.request) != asked && ctx.node().is_local(g.owner) {
                let msg = Term::tuple(vec![
                    Term::atom(GRANTED),
                    Term::Ref(g.request),
                    Term::Int(g.token as i64),
                ]);
                ctx.send(g.owner, msg);
            }
        }
        out
    }

    fn query(&self, q: &LockQuery) -> LockOutput {
        self.state.query(q)
    }

    fn snapshot(&self) -> Term {
        to_term(&self.state).unwrap_or_else(|e| {
            log::error!("a lock snapshot did not convert: {e}");
            Term::atom("nil")
        })
    }

    fn restore(&mut self, _ctx: &mut Ctx, snapshot: &Term) -> Result<(), String> {
        self.state = from_term(snapshot).map_err(|e| e.to_string())?;
        self.state.restart_leases(Instant::now());
        Ok(())
    }
}

/// Why a lock operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockError {
    /// Not granted within the timeout (the request was cancelled: nothing is held).
    Timeout,
    /// No leader with a majority: nothing was taken.
    NoQuorum,
    /// The outcome is unknown (no answer in time).
    Unknown,
    /// Refused (a semaphore asked for with another number of permits, a lock taken
    /// as a semaphore...): the reason.
    Refused(String),
    /// The lease was no longer held (it expired, or was released).
    NotHolder,
    /// The resource did not convert to a term.
    Convert(String),
    /// The service did not start (the reason).
    Start(String),
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::Timeout => write!(f, "not granted in time"),
            LockError::NoQuorum => write!(f, "no leader with a majority"),
            LockError::Unknown => write!(f, "outcome unknown"),
            LockError::Refused(why) => write!(f, "refused: {why}"),
            LockError::NotHolder => write!(f, "not the holder (expired or released)"),
            LockError::Convert(why) => write!(f, "conversion: {why}"),
            LockError::Start(why) => write!(f, "the lock service did not start: {why}"),
        }
    }
}

impl std::error::Error for LockError {}

impl From<GroupError> for LockError {
    fn from(e: GroupError) -> LockError {
        match e {
            GroupError::NoQuorum => LockError::NoQuorum,
            GroupError::NotCommitted | GroupError::Unknown => LockError::Unknown,
            GroupError::NotRunning(n) => LockError::Start(format!("no replica on {n}")),
            GroupError::BadRequest(why) => LockError::Convert(why),
        }
    }
}

/// What a fenced resource checks: the lock and the holder's token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Fence {
    /// The lock's resource.
    pub resource: Term,
    /// The holder's token.
    pub token: u64,
}

/// A held lock: give it back with [`Locks::release`] (or let its owner exit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The resource.
    pub resource: Term,
    /// The fencing token (strictly increasing per resource).
    pub token: u64,
    /// How it is held.
    pub mode: Mode,
    keeper: crate::term::Pid,
}

impl Lease {
    /// The fence to hand a guarded resource.
    pub fn fence(&self) -> Fence {
        Fence {
            resource: self.resource.clone(),
            token: self.token,
        }
    }
}

/// The lock service's settings beyond its name and nodes.
#[derive(Clone, Debug)]
pub struct LocksConfig {
    /// The replica group's settings.
    pub group: GroupConfig,
    /// A lease not renewed for this long expires.
    pub lease: Duration,
    /// The keeper renews this often.
    pub renew_every: Duration,
    /// The keeper tells its owner the lock is lost this long before the lease ends.
    pub margin: Duration,
    /// How long a release or renewal waits for its answer.
    pub timeout: Duration,
}

impl LocksConfig {
    /// Keeps this node's replica on disk in `dir` (one redb file per replica): a kill -9
    /// of every node and a restart lose nothing acknowledged.
    pub fn durable(mut self, dir: impl Into<std::path::PathBuf>) -> LocksConfig {
        self.group = self.group.durable_in(dir);
        self
    }

    /// The defaults for the lock service `name` on `nodes`: a 2 s lease renewed every
    /// 400 ms, `lock_lost` 300 ms before it ends.
    pub fn new<N: Into<Atom> + Copy>(name: &str, nodes: &[N]) -> LocksConfig {
        let nodes = nodes.iter().map(|n| (*n).into()).collect();
        LocksConfig {
            group: GroupConfig::new(Atom::new(&format!("oxbeam_locks:{name}")), nodes),
            lease: Duration::from_secs(2),
            renew_every: Duration::from_millis(400),
            margin: Duration::from_millis(300),
            timeout: Duration::from_secs(5),
        }
    }
}

/// The lock service, from one node: cheap to clone, usable from any process there.
#[derive(Clone)]
pub struct Locks {
    group: Group<LockMachine>,
    config: LocksConfig,
}

mod keeper;

impl Locks {
    /// Starts this node's replica of the lock service `name` on `nodes` (each node of
    /// it starts its own, with the same list), and its warden.
    pub fn start<N: Into<Atom> + Copy>(
        node: &Node,
        name: &str,
        nodes: &[N],
    ) -> Result<Locks, LockError> {
        Locks::start_with(node, LocksConfig::new(name, nodes))
    }

    /// [`Locks::start`] with settings.
    pub fn start_with(node: &Node, config: LocksConfig) -> Result<Locks, LockError> {
        let machine = LockMachine {
            state: LockState::default(),
        };
        let group = group::start(node, config.group.clone(), machine)
            .map_err(|e| LockError::Start(e.to_string()))?;
        let locks = Locks { group, config };
        keeper::start_warden(node, locks.clone());
        group::Registry::of(node).insert_handle(locks.config.group.name, locks.clone());
        Ok(locks)
    }

    /// The lock service `name` whose replica runs on `node` (started there by
    /// [`Locks::start`]), with the settings it was started with.
    pub fn open(node: &Node, name: &str) -> Result<Locks, LockError> {
        group::Registry::of(node)
            .handle::<Locks>(Atom::new(&format!("oxbeam_locks:{name}")))
            .ok_or_else(|| LockError::Start(format!("no lock service {name} on {}", node.name())))
    }

    /// Takes `resource` exclusively, waiting at most `timeout`.
    pub fn acquire(
        &self,
        ctx: &mut Ctx,
        resource: impl Serialize,
        timeout: Duration,
    ) -> Result<Lease, LockError> {
        self.acquire_as(ctx, resource, Mode::Exclusive, timeout)
    }

    /// Takes `resource` as `mode` says (exclusive, shared, or one of `n` permits).
    pub fn acquire_as(
        &self,
        ctx: &mut Ctx,
        resource: impl Serialize,
        mode: Mode,
        timeout: Duration,
    ) -> Result<Lease, LockError> {
        let resource = to_term(&resource).map_err(|e| LockError::Convert(e.to_string()))?;
        let request = ctx.make_ref();
        let sent = Instant::now();
        let deadline = sent + timeout;
        let cmd = LockCommand::Acquire {
            resource: resource.clone(),
            owner: ctx.pid(),
            mode,
            request,
        };
        // An acquire is the same request each time (its reference: the machine answers a
        // repeat as it stands), so one whose outcome is unknown (its leader lost mid-call)
        // is asked again until the deadline.
        let answer = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self
                .group
                .propose(ctx, cmd.clone(), left.max(Duration::from_millis(1)))
            {
                Err(GroupError::Unknown) if Instant::now() < deadline => {
                    ctx.receive_match(|_| false, Some(Duration::from_millis(2)));
                }
                other => break other?,
            }
        };
        let token = match answer {
            LockOutput::Granted(token) => token,
            LockOutput::Queued => self.wait_grant(ctx, &resource, request, deadline)?,
            LockOutput::Refused(why) => return Err(LockError::Refused(why)),
            other => return Err(LockError::Refused(format!("acquire answered {other:?}"))),
        };
        // A grant notice that crossed the answer (the waiter's own replica, applying
        // late) is dropped.
        ctx.receive_match(|m| is_grant(m, request).is_some(), Some(Duration::ZERO));
        let keeper = keeper::spawn(ctx, self.clone(), resource.clone(), token, sent);
        Ok(Lease {
            resource,
            token,
            mode,
            keeper,
        })
    }

    fn wait_grant(
        &self,
        ctx: &mut Ctx,
        resource: &Term,
        request: Ref,
        deadline: Instant,
    ) -> Result<u64, LockError> {
        let mut next_poll = Instant::now() + Duration::from_millis(250);
        loop {
            let now = Instant::now();
            if now >= deadline {
                let cancel = LockCommand::Cancel {
                    resource: resource.clone(),
                    request,
                };
                return match self.group.propose(ctx, cancel, self.config.timeout)? {
                    LockOutput::Granted(token) => Ok(token),
                    _ => Err(LockError::Timeout),
                };
            }
            let slice = (deadline - now).min(next_poll.saturating_duration_since(now));
            if let Some(token) = ctx.receive_with(|m| is_grant(m, request), Some(slice)) {
                return Ok(token);
            }
            if Instant::now() >= next_poll {
                // A notice can be lost (this node's replica restarting): ask.
                next_poll = Instant::now() + Duration::from_millis(250);
                let q = LockQuery::Granted(resource.clone(), request);
                if let Ok(LockOutput::Granted(token)) = self.group.read(ctx, q, self.config.timeout)
                {
                    return Ok(token);
                }
            }
        }
    }

    /// Gives the lock back. [`LockError::NotHolder`] if its lease had already ended.
    pub fn release(&self, ctx: &mut Ctx, lease: &Lease) -> Result<(), LockError> {
        // The keeper stops first, so it does not report the release as a loss.
        keeper::stop(ctx, lease.keeper);
        let cmd = LockCommand::Release {
            resource: lease.resource.clone(),
            token: lease.token,
        };
        match self.group.propose(ctx, cmd, self.config.timeout)? {
            LockOutput::Done => Ok(()),
            _ => Err(LockError::NotHolder),
        }
    }

    /// Runs `f` holding `resource` exclusively (taken within `timeout`), then releases it
    /// (also if `f` panics: the owner's exit releases it).
    pub fn with_lock<T>(
        &self,
        ctx: &mut Ctx,
        resource: impl Serialize,
        timeout: Duration,
        f: impl FnOnce(&mut Ctx, &Lease) -> T,
    ) -> Result<T, LockError> {
        let lease = self.acquire(ctx, resource, timeout)?;
        let out = f(ctx, &lease);
        match self.release(ctx, &lease) {
            Ok(()) | Err(LockError::NotHolder) => Ok(out),
            Err(e) => Err(e),
        }
    }

    /// The holders of `resource` (token, holder) and how many wait, linearizably.
    pub fn holders(
        &self,
        ctx: &mut Ctx,
        resource: impl Serialize,
    ) -> Result<(Vec<(u64, Holder)>, usize), LockError> {
        let resource = to_term(&resource).map_err(|e| LockError::Convert(e.to_string()))?;
        match self
            .group
            .read(ctx, LockQuery::Holders(resource), self.config.timeout)?
        {
            LockOutput::Holders(h, waiting) => Ok((h, waiting)),
            other => Err(LockError::Refused(format!("holders answered {other:?}"))),
        }
    }

    /// The group underneath.
    pub fn group(&self) -> &Group<LockMachine> {
        &self.group
    }

    /// The settings.
    pub fn config(&self) -> &LocksConfig {
        &self.config
    }
}

fn is_grant(m: &Term, request: Ref) -> Option<u64> {
    match m.as_tuple()? {
        [tag, Term::Ref(r), Term::Int(token)] if *tag == Term::atom(GRANTED) && *r == request => {
            Some(*token as u64)
        }
        _ => None,
    }
}
