//! The task queue's replicated state: every task with its state, the pending ones in
//! order, who runs what. Pure, but for the replica-local `notify` (the pool and the
//! waiters on this node, told of changes; never read by outputs).
//!
//! A task is pending (ready from `ready_at_ms`, wall-clock milliseconds chosen by the
//! proposer, so backoff is the same on every replica), running on a node as an attempt
//! with a token, done with its result, or dead (a dead letter: it crashed
//! `max_attempts` times). A node claims ready tasks in enqueue order, never more than
//! `max_per_node` running there; a completion or failure counts only with the current
//! attempt's token, so a superseded attempt's late result is refused.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::term::{Atom, Term};

/// A task's number in its queue (from 1, in enqueue order).
pub type TaskId = u64;

/// The function a task runs: a registered `module:function(args)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The module.
    pub module: Atom,
    /// The function.
    pub function: Atom,
    /// Its arguments.
    pub args: Vec<Term>,
}

/// Where a task is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    /// Waiting to run (from `ready_at_ms`).
    Pending,
    /// Running on `node` as the attempt with `token`.
    Running {
        /// The node.
        node: Atom,
        /// The attempt's token.
        token: u64,
    },
    /// Ran: its result.
    Done(Term),
    /// Crashed `max_attempts` times: the last reason.
    Dead(Term),
}

/// A task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Its number.
    pub id: TaskId,
    /// What it runs.
    pub job: Job,
    /// Its uniqueness key, if it has one.
    pub unique: Option<Term>,
    /// Where it is.
    pub state: TaskState,
    /// Crashes so far.
    pub failures: u32,
    /// Times it was handed to a node (more than once: it ran again, after a crash or a
    /// node's loss).
    pub dispatches: u32,
    /// Not before (wall-clock ms).
    pub ready_at_ms: u64,
}

/// A claimed attempt: what a node runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// The task.
    pub id: TaskId,
    /// This attempt's token.
    pub token: u64,
    /// What to run.
    pub job: Job,
}

/// A command of the queue's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueCommand {
    /// A new task (none if `unique` names a task not yet finished: that one answers).
    Enqueue {
        /// What to run.
        job: Job,
        /// Its uniqueness key.
        unique: Option<Term>,
    },
    /// A node's pool reports: results, crashes, and how many ready tasks it takes.
    Report {
        /// The node.
        node: Atom,
        /// (task, token, result) of attempts that returned.
        completed: Vec<(TaskId, u64, Term)>,
        /// (task, token, reason, retry at ms) of attempts that crashed.
        failed: Vec<(TaskId, u64, Term, u64)>,
        /// Claim up to this many ready tasks.
        claim: u32,
        /// The claimer's wall clock (ms): tasks ready by then may be claimed.
        now_ms: u64,
    },
    /// Every task running on `node` goes back to pending (the node is gone, or its
    /// pool restarted).
    NodeLost(Atom),
    /// A dead letter goes back to pending, its failures forgotten.
    Requeue(TaskId),
}

/// What a queue command or query gives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueOutput {
    /// The task's number (new, or the unfinished task with the same key).
    Enqueued(TaskId),
    /// A report's claimed attempts, and how many results were refused as superseded.
    Claimed(Vec<Attempt>, u32),
    /// How many tasks went back to pending.
    Requeued(u32),
    /// A task as it is (`None`: unknown, or forgotten after it finished long ago).
    Task(Option<Task>),
    /// Dead letters.
    Tasks(Vec<Task>),
    /// Nothing to say.
    Done,
}

/// A read of the queue.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum QueueQuery {
    /// One task.
    Task(TaskId),
    /// The dead letters.
    DeadLetters,
}

/// The queue's limits; the same on every replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Running tasks per node, at most.
    pub max_per_node: u32,
    /// Crashes before a task is a dead letter.
    pub max_attempts: u32,
    /// Finished tasks kept (for their results), oldest forgotten first.
    pub keep_finished: usize,
}

/// The queue's state.
#[derive(Serialize, Deserialize)]
pub struct QueueState {
    pub(crate) limits: Limits,
    tasks: BTreeMap<TaskId, Task>,
    pending: BTreeSet<TaskId>,
    running: BTreeMap<Atom, BTreeSet<TaskId>>,
    unique: BTreeMap<Term, TaskId>,
    finished: VecDeque<TaskId>,
    next_id: TaskId,
    next_token: u64,
}

/// What changed, for the replica to tell its node: tasks that finished (for waiters)
/// and whether new work may be ready (for the pool).
#[derive(Default)]
pub struct Changes {
    /// Tasks done or dead.
    pub finished: Vec<TaskId>,
    /// Pending work was added.
    pub work: bool,
}

impl QueueState {
    /// An empty queue.
    pub fn new(limits: Limits) -> QueueState {
        QueueState {
            limits,
            tasks: BTreeMap::new(),
            pending: BTreeSet::new(),
            running: BTreeMap::new(),
            unique: BTreeMap::new(),
            finished: VecDeque::new(),
            next_id: 1,
            next_token: 1,
        }
    }

    /// Applies a command.
    pub fn apply(&mut self, cmd: QueueCommand, changes: &mut Changes) -> QueueOutput {
        match cmd {
            QueueCommand::Enqueue { job, unique } => {
                if let Some(id) = unique.as_ref().and_then(|k| self.unique.get(k)) {
                    return QueueOutput::Enqueued(*id);
                }
                let id = self.next_id;
                self.next_id += 1;
                if let Some(k) = &unique {
                    self.unique.insert(k.clone(), id);
                }
                let task = Task {
                    id,
                    job,
                    unique,
                    state: TaskState::Pending,
                    failures: 0,
                    dispatches: 0,
                    ready_at_ms: 0,
                };
                self.tasks.insert(id, task);
                self.pending.insert(id);
                changes.work = true;
                QueueOutput::Enqueued(id)
            }
            QueueCommand::Report {
                node,
                completed,
                failed,
                claim,
                now_ms,
            } => {
                let mut superseded = 0;
                for (id, token, result) in completed {
                    if self.end_attempt(id, token) {
                        self.finish(id, TaskState::Done(result), changes);
                    } else {
                        superseded += 1;
                    }
                }
                for (id, token, reason, retry_at_ms) in failed {
                    if !self.end_attempt(id, token) {
                        superseded += 1;
                        continue;
                    }
                    let task = self.tasks.get_mut(&id).expect("an attempt's task exists");
                    task.failures += 1;
                    if task.failures >= self.limits.max_attempts {
                        self.finish(id, TaskState::Dead(reason), changes);
                    } else {
                        task.state = TaskState::Pending;
                        task.ready_at_ms = retry_at_ms;
                        self.pending.insert(id);
                        changes.work = true;
                    }
                }
                QueueOutput::Claimed(self.claim(node, claim, now_ms), superseded)
            }
            QueueCommand::NodeLost(node) => {
                let lost = self.running.remove(&node).unwrap_or_default();
                for id in &lost {
                    if let Some(t) = self.tasks.get_mut(id) {
                        t.state = TaskState::Pending;
                        self.pending.insert(*id);
                    }
                }
                changes.work |= !lost.is_empty();
                QueueOutput::Requeued(lost.len() as u32)
            }
            QueueCommand::Requeue(id) => match self.tasks.get_mut(&id) {
                Some(t) if matches!(t.state, TaskState::Dead(_)) => {
                    t.state = TaskState::Pending;
                    t.failures = 0;
                    t.ready_at_ms = 0;
                    self.pending.insert(id);
                    self.finished.retain(|f| *f != id);
                    if let Some(k) = &t.unique {
                        self.unique.insert(k.clone(), id);
                    }
                    changes.work = true;
                    QueueOutput::Requeued(1)
                }
                _ => QueueOutput::Requeued(0),
            },
        }
    }

    /// Whether `token` is the running attempt of `id`; if so it ends (off its node).
    fn end_attempt(&mut self, id: TaskId, token: u64) -> bool {
        let Some(task) = self.tasks.get(&id) else {
            return false;
        };
        let TaskState::Running {
            node,
            token: current,
        } = &task.state
        else {
            return false;
        };
        if *current != token {
            return false;
        }
        if let Some(set) = self.running.get_mut(node) {
            set.remove(&id);
        }
        true
    }

    fn finish(&mut self, id: TaskId, state: TaskState, changes: &mut Changes) {
        let Some(task) = self.tasks.get_mut(&id) else {
            return;
        };
        task.state = state;
        if let Some(k) = &task.unique {
            self.unique.remove(k);
        }
        self.finished.push_back(id);
        changes.finished.push(id);
        while self.finished.len() > self.limits.keep_finished {
            let old = self.finished.pop_front().expect("non-empty");
            if self
                .tasks
                .get(&old)
                .is_some_and(|t| matches!(t.state, TaskState::Done(_)))
            {
                self.tasks.remove(&old);
            } else {
                // A dead letter stays until requeued: only its place in line goes.
            }
        }
    }

    fn claim(&mut self, node: Atom, want: u32, now_ms: u64) -> Vec<Attempt> {
        let running = self.running.get(&node).map_or(0, |s| s.len() as u32);
        let room = self.limits.max_per_node.saturating_sub(running).min(want);
        let ready: Vec<TaskId> = self
            .pending
            .iter()
            .filter(|id| self.tasks[*id].ready_at_ms <= now_ms)
            .take(room as usize)
            .copied()
            .collect();
        let mut out = Vec::with_capacity(ready.len());
        for id in ready {
            self.pending.remove(&id);
            let token = self.next_token;
            self.next_token += 1;
            let task = self.tasks.get_mut(&id).expect("a pending task exists");
            task.state = TaskState::Running { node, token };
            task.dispatches += 1;
            self.running.entry(node).or_default().insert(id);
            out.push(Attempt {
                id,
                token,
                job: task.job.clone(),
            });
        }
        out
    }

    /// Answers a query.
    pub fn query(&self, q: &QueueQuery) -> QueueOutput {
        match q {
            QueueQuery::Task(id) => QueueOutput::Task(self.tasks.get(id).cloned()),
            QueueQuery::DeadLetters => QueueOutput::Tasks(
                self.tasks
                    .values()
                    .filter(|t| matches!(t.state, TaskState::Dead(_)))
                    .cloned()
                    .collect(),
            ),
        }
    }

    /// A task, as this replica has it.
    pub fn task(&self, id: TaskId) -> Option<&Task> {
        self.tasks.get(&id)
    }

    /// Whether a task is ready to claim by `now_ms` (and how many run on `node`).
    pub fn ready(&self, now_ms: u64) -> bool {
        self.pending
            .iter()
            .any(|id| self.tasks[id].ready_at_ms <= now_ms)
    }

    /// The nodes with tasks running, and how many each.
    pub fn running(&self) -> Vec<(Atom, usize)> {
        self.running
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(n, s)| (*n, s.len()))
            .collect()
    }
}

#[cfg(test)]
mod tests;
