//! Attached threads: an OS thread that is a process.
//!
//! [`Node::attach`](super::Node::attach) gives the calling thread a pid and a mailbox;
//! the returned [`Attached`] dereferences to [`Ctx`], so the thread sends, links,
//! monitors and receives (blocking, with timeouts, selectively) like any process. This
//! is what `self()` is in a test or a synchronous program. Dropping it ends the process
//! with reason `normal`.

use std::ops::{Deref, DerefMut};
use std::thread::ThreadId;

use super::ctx::Ctx;
use crate::term::pid::{DisplayContext, set_display_context};
use crate::term::{Atom, Term};

/// An OS thread's process; ends (reason `normal`) when dropped.
pub struct Attached {
    ctx: Ctx,
    /// The thread that attached, and how it printed pids before.
    display: (ThreadId, Option<DisplayContext>),
}

impl Attached {
    pub(crate) fn new(ctx: Ctx, previous: Option<DisplayContext>) -> Attached {
        Attached {
            ctx,
            display: (std::thread::current().id(), previous),
        }
    }

    /// Whether the process has exited (a fatal exit signal arrived during a receive).
    pub fn exit_reason(&self) -> Option<&Term> {
        self.ctx.exited.as_ref()
    }
}

impl Deref for Attached {
    type Target = Ctx;
    fn deref(&self) -> &Ctx {
        &self.ctx
    }
}

impl DerefMut for Attached {
    fn deref_mut(&mut self) -> &mut Ctx {
        &mut self.ctx
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.ctx.finish(Term::Atom(Atom::NORMAL));
        let (thread, previous) = self.display.clone();
        if thread == std::thread::current().id() {
            set_display_context(previous);
        }
    }
}
