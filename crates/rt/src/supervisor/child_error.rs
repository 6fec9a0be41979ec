//! [`ChildError`]: why a supervisor did not do what was asked of one of its children.

use std::fmt;

use crate::gen_server::CallError;
use crate::term::{Atom, Pid, Term};

/// Why `start_child`, `terminate_child`, `restart_child` or `delete_child` failed
/// (OTP's `{:error, reason}` answers, and the call's own failures).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ChildError {
    /// No child has this id (`not_found`).
    NotFound,
    /// The child is running, so it cannot be restarted or deleted (`running`).
    Running,
    /// A child with this id is already in the spec list (`already_present`).
    AlreadyPresent,
    /// The child's start function returned this error (or it exited while starting).
    StartFailed(Term),
    /// The supervisor could not be called (not running, timed out, ...).
    Call(CallError),
    /// The supervisor answered something this API does not know.
    BadReply(Term),
}

impl ChildError {
    /// The error an `{:error, reason}` answer's reason stands for.
    pub(super) fn from_reason(reason: Term) -> ChildError {
        match reason.as_atom() {
            Some(a) if a == Atom::new("not_found") => ChildError::NotFound,
            Some(a) if a == Atom::new("running") => ChildError::Running,
            Some(a) if a == Atom::new("already_present") => ChildError::AlreadyPresent,
            _ => ChildError::StartFailed(reason),
        }
    }

    /// The reason OTP's supervisor gives (`not_found`, `running`, the start error, ...).
    pub fn reason(&self) -> Term {
        match self {
            ChildError::NotFound => Term::atom("not_found"),
            ChildError::Running => Term::atom("running"),
            ChildError::AlreadyPresent => Term::atom("already_present"),
            ChildError::StartFailed(r) => r.clone(),
            ChildError::Call(e) => e.reason(),
            ChildError::BadReply(t) => (Term::atom("bad_reply"), t.clone()).into(),
        }
    }
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildError::NotFound => f.write_str("no child has this id"),
            ChildError::Running => f.write_str("the child is running"),
            ChildError::AlreadyPresent => f.write_str("a child with this id is already present"),
            ChildError::StartFailed(r) => write!(f, "the child failed to start: {r}"),
            ChildError::Call(e) => write!(f, "the supervisor could not be called: {e}"),
            ChildError::BadReply(t) => write!(f, "the supervisor answered {t}"),
        }
    }
}

impl std::error::Error for ChildError {}

impl From<ChildError> for Term {
    fn from(e: ChildError) -> Term {
        e.reason()
    }
}

impl From<CallError> for ChildError {
    fn from(e: CallError) -> ChildError {
        ChildError::Call(e)
    }
}

/// A `{:ok, pid}` answer's pid.
pub(super) fn started(reply: Term) -> Result<Pid, ChildError> {
    match reply.tagged("ok") {
        Some([Term::Pid(p)]) => Ok(*p),
        _ => Err(ChildError::BadReply(reply)),
    }
}
