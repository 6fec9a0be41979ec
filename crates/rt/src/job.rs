//! A scheduler-run process: its behaviour, its context, and one slice of running it.
//!
//! The worker takes the `Job` out of the cell, runs up to `budget` messages through the
//! behaviour (the reduction budget), and puts it back, so a process that has work left
//! goes to the back of a run queue and a flooded process never starves the others. A
//! panic or an [`exit`](super::Ctx::exit) inside the behaviour is caught here: it ends
//! this process only, with the panic message in the reason.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::ctx::{Ctx, ProcessExit};
use super::process::ProcessCell;
use super::reactor::ReactorSlice;
use super::{Behaviour, Flow};
use crate::term::{Atom, Term};

pub(crate) struct Job {
    pub(crate) ctx: Ctx,
    pub(crate) body: Box<dyn Behaviour>,
    pub(crate) started: bool,
}

/// How a slice ended.
enum SliceEnd {
    /// No messages left; the process is already marked not scheduled.
    Idle,
    /// The budget ran out with messages left: queue it again.
    Budget,
    /// The process exits with this reason.
    Exit(Term),
}

impl Job {
    fn slice(&mut self, budget: usize) -> SliceEnd {
        if !self.started {
            self.started = true;
            if let Flow::Stop(reason) = self.body.init(&mut self.ctx) {
                return SliceEnd::Exit(reason);
            }
        }
        for _ in 0..budget {
            let msg = match self.ctx.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => return SliceEnd::Idle,
                Err(reason) => return SliceEnd::Exit(reason),
            };
            self.ctx.new_turn();
            if let Flow::Stop(reason) = self.body.handle(&mut self.ctx, msg) {
                return SliceEnd::Exit(reason);
            }
        }
        SliceEnd::Budget
    }
}

/// The exit reason a caught unwind stands for.
pub fn unwind_reason(payload: Box<dyn Any + Send>) -> Term {
    match payload.downcast::<ProcessExit>() {
        Ok(exit) => exit.0,
        Err(payload) => {
            let text = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_owned()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "non-string panic payload".to_owned()
            };
            Term::tuple(vec![Term::Atom(Atom::PANIC), Term::from(text)])
        }
    }
}

/// Runs one slice of `cell`'s process; returns true if it must be queued again.
///
/// The job lock is held for the whole slice. Only the worker that dequeued the process
/// takes it, except in one window: once the slice has cleared `scheduled` (its last act
/// before returning `Idle`), a sender may schedule the process again and another worker
/// may pick it up; that worker waits here for the lock for the few instructions until
/// this slice returns.
pub(crate) fn run_slice(cell: &Arc<ProcessCell>, budget: usize) -> bool {
    let mut guard = cell.job.lock();
    let Some(job) = guard.as_mut() else {
        return false;
    };
    // Only a reactor's slice is marked (no other kind runs inside a reactor's: see
    // `rt::reactor`); the mark is restored after, as a reactor may run inline inside
    // another process's slice.
    let reactor = cell.never_blocks.then(ReactorSlice::enter);
    let slice = catch_unwind(AssertUnwindSafe(|| job.slice(budget)));
    drop(reactor);
    let reason = match slice {
        Ok(SliceEnd::Idle) => {
            cell.set_backlog(0);
            return false;
        }
        Ok(SliceEnd::Budget) => {
            cell.set_backlog(job.ctx.taken_len());
            return true;
        }
        Ok(SliceEnd::Exit(reason)) => reason,
        Err(payload) => unwind_reason(payload),
    };
    let Some(job) = guard.take() else {
        return false;
    };
    drop(guard);
    let _reactor = cell.never_blocks.then(ReactorSlice::enter);
    finish(job, reason);
    false
}

/// Ends a job: `terminate` (unless killed), then the exit bookkeeping.
pub(crate) fn finish(mut job: Job, reason: Term) {
    if reason.as_atom() != Some(Atom::KILLED) {
        let Job { ctx, body, .. } = &mut job;
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| body.terminate(ctx, &reason))) {
            log::warn!(
                "process {}: terminate failed: {}",
                ctx.pid(),
                unwind_reason(payload)
            );
        }
    }
    job.ctx.finish(reason);
}
