//! Supervisor: OTP's restart strategies over linked children.
//!
//! A supervisor is a [`GenServer`] that traps exits and starts its children in order
//! from [`ChildSpec`]s. When a child exits, its restart type decides whether it comes
//! back (`permanent` always, `transient` unless the reason is `normal`, `shutdown` or
//! `{:shutdown, _}`, `temporary` never), and the strategy decides who restarts with it:
//! - `OneForOne`: only that child;
//! - `OneForAll`: all children are stopped (in reverse start order) and restarted;
//! - `RestForOne`: the children started after it are stopped and restarted with it.
//!
//! More than `intensity` restarts within `period` means something is badly wrong: the
//! supervisor stops all children and exits with reason `shutdown`, so its own
//! supervisor can act. Children stop in reverse start order, each according to its
//! [`Shutdown`]: `exit(child, shutdown)` and a wait for its `DOWN` (then `kill`), or an
//! immediate `kill`. Children can be added and removed at run time ([`start_child`],
//! [`terminate_child`], [`restart_child`], [`delete_child`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::gen_server::{self, CallError, CallReply, GenServer, ReplyTo};
use super::{Ctx, Dest, Flow, Node, StartError};
use crate::term::{Atom, Pid, Term};

mod builder;
mod child_error;

pub use child_error::ChildError;

pub use builder::{Supervisor, SupervisorBuilder};

/// Starts a child, linked to the supervisor (`ctx` is the supervisor's).
pub type StartFn = Arc<dyn Fn(&mut Ctx) -> Result<Pid, Term> + Send + Sync>;

/// Which children restart when one exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Only the child that exited.
    OneForOne,
    /// Every child.
    OneForAll,
    /// The child that exited and those started after it.
    RestForOne,
}

/// When a child is restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Always.
    Permanent,
    /// Only after an abnormal exit.
    Transient,
    /// Never (it is removed when it exits).
    Temporary,
}

/// How a child is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// `exit(child, kill)` at once.
    BrutalKill,
    /// `exit(child, shutdown)`, then `kill` if it is still alive after this long.
    Timeout(Duration),
    /// `exit(child, shutdown)` and wait as long as it takes (for child supervisors).
    Infinity,
}

/// How to start and treat one child.
#[derive(Clone)]
pub struct ChildSpec {
    /// The child's id within its supervisor.
    pub id: Term,
    /// Starts the child, linked to the supervisor.
    pub start: StartFn,
    /// When it is restarted.
    pub restart: Restart,
    /// How it is stopped.
    pub shutdown: Shutdown,
}

impl ChildSpec {
    /// A permanent child with a 5 s shutdown timeout. `start` starts it linked to the
    /// caller (the supervisor), as `gen_server::start_link` does; its error is the
    /// reason the supervisor reports (`?` converts a [`StartError`] into it).
    pub fn new(
        id: impl Into<Term>,
        start: impl Fn(&mut Ctx) -> Result<Pid, Term> + Send + Sync + 'static,
    ) -> ChildSpec {
        ChildSpec {
            id: id.into(),
            start: Arc::new(start),
            restart: Restart::Permanent,
            shutdown: Shutdown::Timeout(Duration::from_secs(5)),
        }
    }

    /// The same spec with another restart type.
    pub fn restart(mut self, restart: Restart) -> ChildSpec {
        self.restart = restart;
        self
    }

    /// The same spec with another shutdown.
    pub fn shutdown(mut self, shutdown: Shutdown) -> ChildSpec {
        self.shutdown = shutdown;
        self
    }
}

/// A supervisor's strategy, restart intensity and initial children.
#[derive(Clone)]
pub struct SupervisorSpec {
    /// The restart strategy.
    pub strategy: Strategy,
    /// Most restarts allowed within `period`.
    pub intensity: u32,
    /// The window for `intensity`.
    pub period: Duration,
    /// Children, started in this order.
    pub children: Vec<ChildSpec>,
}

impl SupervisorSpec {
    /// A spec with OTP's defaults (3 restarts in 5 s).
    pub fn new(strategy: Strategy, children: Vec<ChildSpec>) -> SupervisorSpec {
        SupervisorSpec {
            strategy,
            intensity: 3,
            period: Duration::from_secs(5),
            children,
        }
    }
}

struct Child {
    spec: ChildSpec,
    pid: Option<Pid>,
}

struct SupervisorServer {
    strategy: Strategy,
    intensity: u32,
    period: Duration,
    initial: Vec<ChildSpec>,
    children: Vec<Child>,
    restarts: VecDeque<Instant>,
}

fn is_shutdown_reason(reason: &Term) -> bool {
    matches!(reason.as_atom(), Some(a) if a == Atom::NORMAL || a == Atom::SHUTDOWN)
        || reason.tagged("shutdown").is_some()
}

fn error(reason: impl Into<Term>) -> Term {
    (Term::Atom(Atom::ERROR), reason.into()).into()
}

impl SupervisorServer {
    fn index_of(&self, id: &Term) -> Option<usize> {
        self.children.iter().position(|c| &c.spec.id == id)
    }

    fn start_one(ctx: &mut Ctx, spec: &ChildSpec) -> Result<Pid, Term> {
        let pid = (spec.start)(ctx)?;
        // Start functions normally link; make sure, so the supervisor hears the exit.
        if ctx.link(pid).is_err() {
            return Err(Term::Atom(Atom::NOPROC));
        }
        Ok(pid)
    }

    /// Stops one child as its spec says and waits for it to be gone.
    fn stop_one(ctx: &mut Ctx, pid: Pid, shutdown: Shutdown) {
        let mref = ctx.monitor(pid);
        ctx.unlink(pid);
        // An EXIT it sent before the unlink is no longer of interest.
        let _ = ctx.receive_match(
            |m| matches!(m.tagged("EXIT"), Some([Term::Pid(p), _]) if *p == pid),
            Some(Duration::ZERO),
        );
        let is_down =
            move |m: &Term| matches!(m.tagged("DOWN"), Some([Term::Ref(r), ..]) if *r == mref);
        let grace = match shutdown {
            Shutdown::BrutalKill => Some(Duration::ZERO),
            Shutdown::Timeout(t) => Some(t),
            Shutdown::Infinity => None,
        };
        if shutdown != Shutdown::BrutalKill {
            ctx.exit_pid(pid, Term::Atom(Atom::SHUTDOWN));
        } else {
            ctx.exit_pid(pid, Term::Atom(Atom::KILL));
        }
        if ctx.receive_match(is_down, grace).is_none() {
            ctx.exit_pid(pid, Term::Atom(Atom::KILL));
            let _ = ctx.receive_match(is_down, None);
        }
    }

    /// Stops children `from..` in reverse start order.
    fn stop_from(&mut self, ctx: &mut Ctx, from: usize) {
        for child in self.children[from..].iter_mut().rev() {
            if let Some(pid) = child.pid.take() {
                SupervisorServer::stop_one(ctx, pid, child.spec.shutdown);
            }
        }
    }

    /// Starts children `from..` that are not running, in order.
    fn start_from(&mut self, ctx: &mut Ctx, from: usize) -> Result<(), Term> {
        for child in self.children[from..].iter_mut() {
            if child.pid.is_none() {
                child.pid = Some(SupervisorServer::start_one(ctx, &child.spec)?);
            }
        }
        Ok(())
    }

    /// Counts a restart; false when the intensity is exceeded.
    fn allow_restart(&mut self) -> bool {
        let now = Instant::now();
        self.restarts.push_back(now);
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.period)
        {
            self.restarts.pop_front();
        }
        self.restarts.len() <= self.intensity as usize
    }

    fn child_exited(&mut self, ctx: &mut Ctx, pid: Pid, reason: Term) -> Flow {
        let Some(i) = self.children.iter().position(|c| c.pid == Some(pid)) else {
            return Flow::Continue;
        };
        self.children[i].pid = None;
        let restart = match self.children[i].spec.restart {
            Restart::Permanent => true,
            Restart::Transient => !is_shutdown_reason(&reason),
            Restart::Temporary => false,
        };
        if self.children[i].spec.restart == Restart::Temporary {
            self.children.remove(i);
            return Flow::Continue;
        }
        if !restart {
            return Flow::Continue;
        }
        loop {
            if !self.allow_restart() {
                log::error!(
                    "supervisor {}: restart intensity reached, shutting down",
                    ctx.pid()
                );
                return Flow::Stop(Term::Atom(Atom::SHUTDOWN));
            }
            let from = match self.strategy {
                Strategy::OneForOne => {
                    match SupervisorServer::start_one(ctx, &self.children[i].spec) {
                        Ok(pid) => {
                            self.children[i].pid = Some(pid);
                            return Flow::Continue;
                        }
                        Err(e) => {
                            log::warn!(
                                "supervisor {}: restarting {} failed: {e}",
                                ctx.pid(),
                                self.children[i].spec.id
                            );
                            continue;
                        }
                    }
                }
                Strategy::OneForAll => 0,
                Strategy::RestForOne => i,
            };
            self.stop_from(ctx, from);
            match self.start_from(ctx, from) {
                Ok(()) => return Flow::Continue,
                Err(e) => log::warn!("supervisor {}: restart failed: {e}", ctx.pid()),
            }
        }
    }
}

impl GenServer for SupervisorServer {
    fn init(&mut self, ctx: &mut Ctx) -> Result<(), Term> {
        ctx.trap_exit(true);
        for spec in std::mem::take(&mut self.initial) {
            if self.index_of(&spec.id).is_some() {
                self.stop_from(ctx, 0);
                return Err(Term::tuple(vec![
                    Term::atom("duplicate_child_name"),
                    spec.id,
                ]));
            }
            match SupervisorServer::start_one(ctx, &spec) {
                Ok(pid) => self.children.push(Child {
                    spec,
                    pid: Some(pid),
                }),
                Err(e) => {
                    self.stop_from(ctx, 0);
                    let why = Term::tuple(vec![Term::atom("failed_to_start_child"), spec.id, e]);
                    return Err((Term::Atom(Atom::SHUTDOWN), why).into());
                }
            }
        }
        Ok(())
    }

    fn handle_call(&mut self, ctx: &mut Ctx, request: Term, _from: ReplyTo) -> CallReply {
        let reply = match request.as_tuple() {
            Some([tag, Term::Ref(key)]) if tag.is_atom("start_child") => {
                match ctx
                    .node()
                    .handoff_take(*key)
                    .and_then(|b| b.downcast::<ChildSpec>().ok())
                {
                    None => error(Term::atom("no_child_spec")),
                    Some(spec) if self.index_of(&spec.id).is_some() => {
                        error(Term::atom("already_present"))
                    }
                    Some(spec) => match SupervisorServer::start_one(ctx, &spec) {
                        Ok(pid) => {
                            self.children.push(Child {
                                spec: *spec,
                                pid: Some(pid),
                            });
                            (Term::ok(), pid).into()
                        }
                        Err(e) => error(e),
                    },
                }
            }
            Some([tag, id]) if tag.is_atom("terminate_child") => match self.index_of(id) {
                Some(i) => {
                    if let Some(pid) = self.children[i].pid.take() {
                        SupervisorServer::stop_one(ctx, pid, self.children[i].spec.shutdown);
                    }
                    if self.children[i].spec.restart == Restart::Temporary {
                        self.children.remove(i);
                    }
                    Term::ok()
                }
                None => error(Term::atom("not_found")),
            },
            Some([tag, id]) if tag.is_atom("restart_child") => match self.index_of(id) {
                Some(i) if self.children[i].pid.is_some() => error(Term::atom("running")),
                Some(i) => match SupervisorServer::start_one(ctx, &self.children[i].spec) {
                    Ok(pid) => {
                        self.children[i].pid = Some(pid);
                        (Term::ok(), pid).into()
                    }
                    Err(e) => error(e),
                },
                None => error(Term::atom("not_found")),
            },
            Some([tag, id]) if tag.is_atom("delete_child") => match self.index_of(id) {
                Some(i) if self.children[i].pid.is_some() => error(Term::atom("running")),
                Some(i) => {
                    self.children.remove(i);
                    Term::ok()
                }
                None => error(Term::atom("not_found")),
            },
            _ if request.is_atom("which_children") => Term::list(
                self.children
                    .iter()
                    .map(|c| {
                        (
                            c.spec.id.clone(),
                            c.pid.map(Term::Pid).unwrap_or(Term::atom("undefined")),
                        )
                            .into()
                    })
                    .collect::<Vec<Term>>(),
            ),
            _ if request.is_atom("count_children") => {
                let active = self.children.iter().filter(|c| c.pid.is_some()).count();
                Term::list(vec![
                    (Term::atom("specs"), self.children.len()).into(),
                    (Term::atom("active"), active).into(),
                ])
            }
            _ => error(Term::atom("unknown_request")),
        };
        CallReply::Reply(reply)
    }

    fn handle_info(&mut self, ctx: &mut Ctx, msg: Term) -> Flow {
        match msg.tagged("EXIT") {
            Some([Term::Pid(pid), reason]) if Some(*pid) == ctx.parent() => {
                Flow::Stop(reason.clone())
            }
            Some([Term::Pid(pid), reason]) => self.child_exited(ctx, *pid, reason.clone()),
            _ => Flow::Continue,
        }
    }

    fn terminate(&mut self, ctx: &mut Ctx, _reason: &Term) {
        self.stop_from(ctx, 0);
    }
}

/// Starts a supervisor linked to the caller.
pub fn start_link(
    ctx: &mut Ctx,
    spec: SupervisorSpec,
    name: Option<Atom>,
) -> Result<Pid, StartError> {
    gen_server::start_link(ctx, supervisor_of(spec), name)
}

/// Starts an unlinked supervisor from outside any process.
pub fn start(node: &Node, spec: SupervisorSpec, name: Option<Atom>) -> Result<Pid, StartError> {
    gen_server::start(node, supervisor_of(spec), name)
}

fn supervisor_of(spec: SupervisorSpec) -> SupervisorServer {
    SupervisorServer {
        strategy: spec.strategy,
        intensity: spec.intensity,
        period: spec.period,
        initial: spec.children,
        children: Vec::new(),
        restarts: VecDeque::new(),
    }
}

fn call(ctx: &mut Ctx, sup: impl Into<Dest>, request: Term) -> Result<Term, CallError> {
    gen_server::call(ctx, sup, request, None)
}

fn ok_or_error(reply: Term) -> Result<Term, ChildError> {
    match reply.tagged("error") {
        Some([e]) => Err(ChildError::from_reason(e.clone())),
        _ => Ok(reply),
    }
}

/// Adds and starts a child.
pub fn start_child(
    ctx: &mut Ctx,
    sup: impl Into<Dest>,
    spec: ChildSpec,
) -> Result<Pid, ChildError> {
    // A spec holds a closure, which is no term: it travels through the node's handoff
    // store, and the call carries only its key.
    let key = ctx.node().handoff_put(Box::new(spec));
    let result = call(ctx, sup, (Term::atom("start_child"), key).into());
    // If the supervisor never took it (not running, or it failed first), drop it here.
    drop(ctx.node().handoff_take(key));
    child_error::started(ok_or_error(result?)?)
}

/// Stops a child (it stays in the spec list unless temporary).
pub fn terminate_child(
    ctx: &mut Ctx,
    sup: impl Into<Dest>,
    id: impl Into<Term>,
) -> Result<(), ChildError> {
    let reply = call(ctx, sup, (Term::atom("terminate_child"), id.into()).into())?;
    ok_or_error(reply).map(|_| ())
}

/// Starts a stopped child again.
pub fn restart_child(
    ctx: &mut Ctx,
    sup: impl Into<Dest>,
    id: impl Into<Term>,
) -> Result<Pid, ChildError> {
    let reply = call(ctx, sup, (Term::atom("restart_child"), id.into()).into())?;
    child_error::started(ok_or_error(reply)?)
}

/// Removes a stopped child's spec.
pub fn delete_child(
    ctx: &mut Ctx,
    sup: impl Into<Dest>,
    id: impl Into<Term>,
) -> Result<(), ChildError> {
    let reply = call(ctx, sup, (Term::atom("delete_child"), id.into()).into())?;
    ok_or_error(reply).map(|_| ())
}

/// Each child's id and pid (`None` when not running), in start order.
pub fn which_children(
    ctx: &mut Ctx,
    sup: impl Into<Dest>,
) -> Result<Vec<(Term, Option<Pid>)>, CallError> {
    let reply = call(ctx, sup, Term::atom("which_children"))?;
    Ok(reply
        .as_list()
        .unwrap_or(&[])
        .iter()
        .filter_map(|t| match t.as_tuple() {
            Some([id, p]) => Some((id.clone(), p.as_pid())),
            _ => None,
        })
        .collect())
}
