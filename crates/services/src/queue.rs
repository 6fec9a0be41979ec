//! The distributed task queue (the chapter's exercise 2, as a service): tasks are
//! registered functions with arguments, held by a [`group`] of replicas
//! (so an enqueue is acknowledged once a majority, two of three nodes, hold it), run by
//! a worker pool on every node of the queue, at most `max_per_node` at a time there.
//!
//! - **Dispatch** is pulled: a node's pool, when it has room and its copy shows ready
//!   tasks (it is told at once when work is added), commits a report that claims them
//!   in enqueue order, with what its finished workers returned; the claim is bounded by
//!   the machine, so the per-node bound holds whatever the pools do.
//! - **At least once, counted**: each attempt has a token, and a result or a crash
//!   counts only with the current attempt's token (a superseded attempt's late result is
//!   refused and counted). A node that is no longer connected has its running tasks put
//!   back to pending by the leader's pool, checked every 50 ms; a pool that starts
//!   (a restarted node) puts back what the queue thought it ran.
//! - **Crashes** (the worker exits without a result: a panic, an exit, an unknown
//!   function) retry after `min(cap, base * 2^(n-1))` with ±50 % jitter; after
//!   `max_attempts` the task is a dead letter, listed by [`Queue::dead_letters`] and put
//!   back by [`Queue::requeue`].
//! - **Uniqueness** ([`Queue::enqueue_unique`]): while a task with the key is pending,
//!   running or backing off, enqueueing the key again answers that task; once it is done
//!   or dead, the key is free again (Oban's `unique` over the unfinished states).
//! - **Results**: [`Queue::await_result`] from any process of a queue node: the result,
//!   or [`TaskError::DeadLetter`] with the last crash's reason (a monitor-style failure).

mod machine;
mod pool;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::group::{self, Group, GroupConfig, GroupError, Machine};
use crate::rt::{Ctx, Node};
use crate::term::{Atom, Pid, Ref, Term, from_term, to_term};

pub use machine::{
    Attempt, Changes, Job, Limits, QueueCommand, QueueOutput, QueueQuery, QueueState, Task, TaskId,
    TaskState,
};

const RESULT: &str = "oxbeam_task";
const WORK: &str = "oxbeam_queue_work";

/// The queue's machine: its state, and this node's pool and waiters to tell.
pub struct QueueMachine {
    state: QueueState,
    pool: Option<Pid>,
    waiters: HashMap<TaskId, Vec<(Pid, Ref)>>,
}

impl Machine for QueueMachine {
    type Command = QueueCommand;
    type Query = QueueQuery;
    type Output = QueueOutput;

    fn apply(&mut self, ctx: &mut Ctx, _index: u64, cmd: QueueCommand) -> QueueOutput {
        let mut changes = Changes::default();
        let out = self.state.apply(cmd, &mut changes);
        if changes.work
            && let Some(pool) = self.pool
        {
            ctx.send(pool, Term::atom(WORK));
        }
        for id in changes.finished {
            self.tell(ctx, id);
        }
        out
    }

    fn query(&self, q: &QueueQuery) -> QueueOutput {
        self.state.query(q)
    }

    fn snapshot(&self) -> Term {
        to_term(&self.state).unwrap_or_else(|e| {
            log::error!("a queue snapshot did not convert: {e}");
            Term::atom("nil")
        })
    }

    fn restore(&mut self, ctx: &mut Ctx, snapshot: &Term) -> Result<(), String> {
        self.state = from_term(snapshot).map_err(|e| e.to_string())?;
        let finished: Vec<TaskId> = self.waiters.keys().copied().collect();
        for id in finished {
            self.tell(ctx, id);
        }
        if let Some(pool) = self.pool {
            ctx.send(pool, Term::atom(WORK));
        }
        Ok(())
    }
}

impl QueueMachine {
    /// Tells `id`'s waiters on this node, if it finished.
    fn tell(&mut self, ctx: &mut Ctx, id: TaskId) {
        let outcome = match self.state.task(id).map(|t| &t.state) {
            Some(TaskState::Done(r)) => Term::tuple(vec![Term::atom("ok"), r.clone()]),
            Some(TaskState::Dead(why)) => Term::tuple(vec![
                Term::atom("error"),
                Term::tuple(vec![Term::atom("dead_letter"), why.clone()]),
            ]),
            _ => return,
        };
        for (pid, tag) in self.waiters.remove(&id).unwrap_or_default() {
            let msg = Term::tuple(vec![
                Term::atom(RESULT),
                Term::Ref(tag),
                Term::Int(id as i64),
                outcome.clone(),
            ]);
            ctx.send(pid, msg);
        }
    }
}

/// Why a queue operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueError {
    /// No leader with a majority: nothing was enqueued.
    NoQuorum,
    /// The outcome is unknown (no answer in time).
    Unknown,
    /// The function is not registered on this node (`module:function/arity`).
    UnknownFunction(String),
    /// No such task (or it finished long ago and was forgotten).
    NoSuchTask(TaskId),
    /// The arguments or a key did not convert (the message says why).
    Convert(String),
    /// The service did not start (the reason).
    Start(String),
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueError::NoQuorum => write!(f, "no leader with a majority: not enqueued"),
            QueueError::Unknown => write!(f, "outcome unknown"),
            QueueError::UnknownFunction(mfa) => write!(f, "{mfa} is not registered here"),
            QueueError::NoSuchTask(id) => write!(f, "no task {id}"),
            QueueError::Convert(why) => write!(f, "conversion: {why}"),
            QueueError::Start(why) => write!(f, "the queue did not start: {why}"),
        }
    }
}

impl std::error::Error for QueueError {}

impl From<GroupError> for QueueError {
    fn from(e: GroupError) -> QueueError {
        match e {
            GroupError::NoQuorum => QueueError::NoQuorum,
            GroupError::NotCommitted | GroupError::Unknown => QueueError::Unknown,
            GroupError::NotRunning(n) => QueueError::Start(format!("no replica on {n}")),
            GroupError::BadRequest(why) => QueueError::Convert(why),
        }
    }
}

/// How a task ended, when it did not return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskError {
    /// It crashed `max_attempts` times: the last reason. It waits in the dead letters.
    DeadLetter(Term),
    /// Not finished within the wait.
    Timeout,
    /// The queue could not be asked.
    Queue(QueueError),
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskError::DeadLetter(why) => write!(f, "dead letter: {why}"),
            TaskError::Timeout => write!(f, "not finished in time"),
            TaskError::Queue(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TaskError {}

/// The queue's settings beyond its name and nodes.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// The replica group's settings.
    pub group: GroupConfig,
    /// Per-node bound, attempts, results kept.
    pub limits: Limits,
    /// The first retry's delay.
    pub backoff_base: Duration,
    /// The longest retry delay.
    pub backoff_cap: Duration,
    /// How long an operation waits for its answer.
    pub timeout: Duration,
}

impl QueueConfig {
    /// Keeps this node's replica on disk in `dir` (one redb file per replica): a kill -9
    /// of every node and a restart lose nothing acknowledged.
    pub fn durable(mut self, dir: impl Into<std::path::PathBuf>) -> QueueConfig {
        self.group = self.group.durable_in(dir);
        self
    }

    /// The defaults for queue `name` on `nodes`: 5 running per node (the chapter's),
    /// 3 attempts, retries from 100 ms doubling to 10 s, the last 10,000 results kept.
    pub fn new<N: Into<Atom> + Copy>(name: &str, nodes: &[N]) -> QueueConfig {
        let nodes = nodes.iter().map(|n| (*n).into()).collect();
        QueueConfig {
            group: GroupConfig::new(Atom::new(&format!("oxbeam_queue:{name}")), nodes),
            limits: Limits {
                max_per_node: 5,
                max_attempts: 3,
                keep_finished: 10_000,
            },
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
        }
    }
}

/// The queue, from one node: cheap to clone, usable from any process there.
#[derive(Clone)]
pub struct Queue {
    group: Group<QueueMachine>,
    config: QueueConfig,
}

impl Queue {
    /// Starts this node's replica of queue `name` on `nodes` and its worker pool (each
    /// node of the queue starts its own, with the same list).
    pub fn start<N: Into<Atom> + Copy>(
        node: &Node,
        name: &str,
        nodes: &[N],
    ) -> Result<Queue, QueueError> {
        Queue::start_with(node, QueueConfig::new(name, nodes))
    }

    /// [`Queue::start`] with settings.
    pub fn start_with(node: &Node, config: QueueConfig) -> Result<Queue, QueueError> {
        let machine = QueueMachine {
            state: QueueState::new(config.limits),
            pool: None,
            waiters: HashMap::new(),
        };
        let group = group::start(node, config.group.clone(), machine)
            .map_err(|e| QueueError::Start(e.to_string()))?;
        let queue = Queue { group, config };
        pool::start(node, queue.clone());
        group::Registry::of(node).insert_handle(queue.config.group.name, queue.clone());
        Ok(queue)
    }

    /// The queue `name` whose replica runs on `node` (started there by
    /// [`Queue::start`]), with the settings it was started with.
    pub fn open(node: &Node, name: &str) -> Result<Queue, QueueError> {
        group::Registry::of(node)
            .handle::<Queue>(Atom::new(&format!("oxbeam_queue:{name}")))
            .ok_or_else(|| QueueError::Start(format!("no queue {name} on {}", node.name())))
    }

    /// Enqueues `module:function(args)`, registered on this node; its number once a
    /// majority of the queue's nodes hold it.
    pub fn enqueue(
        &self,
        ctx: &mut Ctx,
        module: impl Into<Atom>,
        function: impl Into<Atom>,
        args: Vec<Term>,
    ) -> Result<TaskId, QueueError> {
        self.enqueue_job(ctx, job(ctx, module.into(), function.into(), args)?, None)
    }

    /// Enqueues unless a task with `key` is unfinished (then answers that task).
    pub fn enqueue_unique(
        &self,
        ctx: &mut Ctx,
        key: Term,
        module: impl Into<Atom>,
        function: impl Into<Atom>,
        args: Vec<Term>,
    ) -> Result<TaskId, QueueError> {
        let job = job(ctx, module.into(), function.into(), args)?;
        self.enqueue_job(ctx, job, Some(key))
    }

    fn enqueue_job(
        &self,
        ctx: &mut Ctx,
        job: Job,
        unique: Option<Term>,
    ) -> Result<TaskId, QueueError> {
        match self.group.propose(
            ctx,
            QueueCommand::Enqueue { job, unique },
            self.config.timeout,
        )? {
            QueueOutput::Enqueued(id) => Ok(id),
            other => Err(QueueError::Convert(format!("enqueue answered {other:?}"))),
        }
    }

    /// Waits up to `timeout` for task `id`'s result.
    pub fn await_result(
        &self,
        ctx: &mut Ctx,
        id: TaskId,
        timeout: Duration,
    ) -> Result<Term, TaskError> {
        let deadline = Instant::now() + timeout;
        let tag = ctx.make_ref();
        let mut known_here = {
            let mut m = self.group.shared().machine.write();
            m.waiters.entry(id).or_default().push((ctx.pid(), tag));
            m.tell(ctx, id);
            m.state.task(id).is_some()
        };
        loop {
            let now = Instant::now();
            if now >= deadline {
                self.forget_waiter(id, tag);
                return Err(TaskError::Timeout);
            }
            // A task this node's copy doesn't have (not yet here, or finished and
            // forgotten) is asked of the leader at once.
            let slice = match known_here {
                true => (deadline - now).min(Duration::from_millis(250)),
                false => Duration::ZERO,
            };
            known_here = true;
            let got = ctx.receive_with(
                |m| match m.as_tuple()? {
                    [t, Term::Ref(r), _, outcome] if t.is_atom(RESULT) && *r == tag => {
                        Some(outcome.clone())
                    }
                    _ => None,
                },
                Some(slice),
            );
            if let Some(outcome) = got {
                return match outcome.as_tuple() {
                    Some([ok, r]) if ok.is_atom("ok") => Ok(r.clone()),
                    Some([_, dead]) => match dead.as_tuple() {
                        Some([_, why]) => Err(TaskError::DeadLetter(why.clone())),
                        _ => Err(TaskError::DeadLetter(dead.clone())),
                    },
                    _ => Err(TaskError::DeadLetter(outcome)),
                };
            }
            // This node's copy may lag or restart: ask the leader now and then.
            match self.task(ctx, id) {
                Ok(Some(Task {
                    state: TaskState::Done(r),
                    ..
                })) => {
                    self.forget_waiter(id, tag);
                    return Ok(r);
                }
                Ok(Some(Task {
                    state: TaskState::Dead(why),
                    ..
                })) => {
                    self.forget_waiter(id, tag);
                    return Err(TaskError::DeadLetter(why));
                }
                Ok(None) => {
                    self.forget_waiter(id, tag);
                    return Err(TaskError::Queue(QueueError::NoSuchTask(id)));
                }
                _ => {}
            }
        }
    }

    fn forget_waiter(&self, id: TaskId, tag: Ref) {
        let mut m = self.group.shared().machine.write();
        if let Some(w) = m.waiters.get_mut(&id) {
            w.retain(|(_, t)| *t != tag);
            if w.is_empty() {
                m.waiters.remove(&id);
            }
        }
    }

    /// Task `id` as the queue has it (linearizably).
    pub fn task(&self, ctx: &mut Ctx, id: TaskId) -> Result<Option<Task>, QueueError> {
        match self
            .group
            .read(ctx, QueueQuery::Task(id), self.config.timeout)?
        {
            QueueOutput::Task(t) => Ok(t),
            other => Err(QueueError::Convert(format!("task answered {other:?}"))),
        }
    }

    /// The dead letters (tasks that crashed `max_attempts` times).
    pub fn dead_letters(&self, ctx: &mut Ctx) -> Result<Vec<Task>, QueueError> {
        match self
            .group
            .read(ctx, QueueQuery::DeadLetters, self.config.timeout)?
        {
            QueueOutput::Tasks(t) => Ok(t),
            other => Err(QueueError::Convert(format!(
                "dead letters answered {other:?}"
            ))),
        }
    }

    /// Puts dead letter `id` back to pending, its failures forgotten; whether it was one.
    pub fn requeue(&self, ctx: &mut Ctx, id: TaskId) -> Result<bool, QueueError> {
        match self
            .group
            .propose(ctx, QueueCommand::Requeue(id), self.config.timeout)?
        {
            QueueOutput::Requeued(n) => Ok(n > 0),
            other => Err(QueueError::Convert(format!("requeue answered {other:?}"))),
        }
    }

    /// The group underneath.
    pub fn group(&self) -> &Group<QueueMachine> {
        &self.group
    }

    /// The settings.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }
}

fn job(ctx: &Ctx, module: Atom, function: Atom, args: Vec<Term>) -> Result<Job, QueueError> {
    if ctx
        .node()
        .functions()
        .lookup(module, function, args.len())
        .is_none()
    {
        return Err(QueueError::UnknownFunction(format!(
            "{module}:{function}/{}",
            args.len()
        )));
    }
    Ok(Job {
        module,
        function,
        args,
    })
}
