//! A node's worker pool: claims ready tasks (at most `max_per_node` running here),
//! runs each in a process of its own, reports results and crashes in batches; on the
//! leader's node it also puts back the tasks of nodes no longer connected.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Attempt, Queue, QueueCommand, QueueOutput, TaskId, WORK};
use crate::group::GroupError;
use crate::rt::{Ctx, Node, Task};
use crate::term::{Atom, Pid, Term};

const WORKER_RESULT: &str = "oxbeam_task_result";

pub(super) fn start(node: &Node, queue: Queue) {
    node.spawn_task(move |ctx| Pool::new(ctx, queue).run(ctx));
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

struct Pool {
    queue: Queue,
    me: Atom,
    /// Running workers: their task and attempt token.
    workers: HashMap<Pid, (TaskId, u64)>,
    completed: Vec<(TaskId, u64, Term)>,
    failed: Vec<(TaskId, u64, Term, u64)>,
    /// A report whose outcome is unknown may have claimed tasks for this node that
    /// no worker runs: once idle, the pool puts back whatever the queue thinks it runs.
    claims_unknown: bool,
    next_reap: Instant,
}

impl Pool {
    fn new(ctx: &mut Ctx, queue: Queue) -> Pool {
        queue.group().shared().machine.write().pool = Some(ctx.pid());
        // The chapter's `:pg.join(:queue_workers, self())`: the queue's pools, one per
        // node, are the pg group `{:oxbeam_queue_workers, queue}` of the default scope
        // (where the cluster services run; without them the pool runs ungrouped).
        let group = Term::tuple(vec![
            Term::atom("oxbeam_queue_workers"),
            Term::Atom(queue.config().group.name),
        ]);
        let me = ctx.pid();
        if let Err(e) = crate::dist::pg::join(ctx, crate::dist::pg::default_scope(), group, &[me]) {
            log::debug!("queue pool not in a pg group: {e}");
        }
        Pool {
            me: ctx.node().name(),
            queue,
            workers: HashMap::new(),
            completed: Vec::new(),
            failed: Vec::new(),
            claims_unknown: true, // a restarted node: the queue may think it runs tasks
            next_reap: Instant::now(),
        }
    }

    fn replica_alive(&self, ctx: &Ctx) -> bool {
        ctx.node().whereis(self.queue.config().group.name).is_some()
    }

    fn run(mut self, ctx: &mut Ctx) {
        loop {
            if !self.replica_alive(ctx) {
                return;
            }
            if let Some(m) = ctx.receive_timeout(Duration::from_millis(20)) {
                self.handle(m);
                while let Some(m) = ctx.receive_timeout(Duration::ZERO) {
                    self.handle(m);
                }
            }
            // Only once nothing runs here and every result is reported: a task that
            // finished here but is not yet reported must not be put back (it would run
            // again).
            let idle =
                self.workers.is_empty() && self.completed.is_empty() && self.failed.is_empty();
            if self.claims_unknown && idle {
                let me = self.me;
                if self.propose(ctx, QueueCommand::NodeLost(me)).is_ok() {
                    self.claims_unknown = false;
                }
            }
            self.reap(ctx);
            self.report(ctx);
        }
    }

    fn propose(&self, ctx: &mut Ctx, cmd: QueueCommand) -> Result<QueueOutput, GroupError> {
        self.queue
            .group()
            .propose(ctx, cmd, self.queue.config().timeout)
    }

    fn handle(&mut self, m: Term) {
        if m.is_atom(WORK) {
            return;
        }
        match m.as_tuple() {
            Some([tag, Term::Pid(p), result]) if tag.is_atom(WORKER_RESULT) => {
                if let Some((id, token)) = self.workers.remove(p) {
                    self.completed.push((id, token, result.clone()));
                }
            }
            Some([tag, _, _, Term::Pid(p), reason]) if tag.is_atom("DOWN") => {
                if let Some((id, token)) = self.workers.remove(p) {
                    let retry_at = now_ms() + self.backoff(id).as_millis() as u64;
                    self.failed.push((id, token, reason.clone(), retry_at));
                }
            }
            _ => log::debug!("a queue pool ignored {m}"),
        }
    }

    /// The delay before retry `n + 1` of a task that crashed `n` times before this.
    fn backoff(&self, id: TaskId) -> Duration {
        let failures = self
            .queue
            .group()
            .shared()
            .machine
            .read()
            .state
            .task(id)
            .map_or(0, |t| t.failures);
        let config = self.queue.config();
        let exp = config.backoff_base.saturating_mul(1 << failures.min(16));
        let capped = exp.min(config.backoff_cap);
        // ±50 % jitter.
        let jitter = 0.5 + rand::random::<f64>();
        capped.mul_f64(jitter)
    }

    fn reap(&mut self, ctx: &mut Ctx) {
        let now = Instant::now();
        if now < self.next_reap || !self.queue.group().shared().is_leader() {
            return;
        }
        self.next_reap = now + Duration::from_millis(50);
        let Some(net) = crate::node::Net::of(ctx.node()) else {
            return;
        };
        let connected = net.nodes_and_this();
        let running = self.queue.group().shared().machine.read().state.running();
        for (node, n) in running {
            if !connected.contains(&node) {
                log::info!("queue: {node} is gone: its {n} running tasks go back to pending");
                let _ = self.propose(ctx, QueueCommand::NodeLost(node));
            }
        }
    }

    fn report(&mut self, ctx: &mut Ctx) {
        let limit = self.queue.config().limits.max_per_node as usize;
        let room = limit.saturating_sub(self.workers.len()) as u32;
        let now = now_ms();
        let ready = room > 0 && self.queue.group().shared().machine.read().state.ready(now);
        if self.completed.is_empty() && self.failed.is_empty() && !ready {
            return;
        }
        let claim = if ready && !self.claims_unknown {
            room
        } else {
            0
        };
        let cmd = QueueCommand::Report {
            node: self.me,
            completed: self.completed.clone(),
            failed: self.failed.clone(),
            claim,
            now_ms: now,
        };
        match self.propose(ctx, cmd) {
            Ok(QueueOutput::Claimed(attempts, superseded)) => {
                if superseded > 0 {
                    log::info!("queue: {superseded} late results of superseded attempts refused");
                }
                self.completed.clear();
                self.failed.clear();
                for a in attempts {
                    self.spawn(ctx, a);
                }
            }
            Ok(other) => log::error!("queue: a report answered {other:?}"),
            Err(GroupError::Unknown) => self.claims_unknown |= claim > 0,
            Err(_) => {} // no quorum: kept for the next round
        }
    }

    fn spawn(&mut self, ctx: &mut Ctx, a: Attempt) {
        let pool = ctx.pid();
        let job = a.job;
        let (pid, _) = ctx.spawn_monitor(Task::new(move |w: &mut Ctx| {
            let Some(f) = w
                .node()
                .functions()
                .lookup(job.module, job.function, job.args.len())
            else {
                let undef = crate::rt::functions::undef(job.module, job.function, job.args.len());
                w.exit(undef);
            };
            let result = f(w, job.args);
            let me = w.pid();
            w.send(
                pool,
                Term::tuple(vec![Term::atom(WORKER_RESULT), Term::Pid(me), result]),
            );
        }));
        self.workers.insert(pid, (a.id, a.token));
    }
}
