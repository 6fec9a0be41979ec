//! The typed errors of the cluster services: pg's calls, global's registration and
//! sync. Each converts into the reason OTP gives (`Term::from`, or `reason()`), for
//! code that speaks Erlang (the console, the built-ins).

use std::fmt;

use crate::rt::CallError;
use crate::term::{Pid, Term};

/// Why a pg operation failed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PgError {
    /// A pid given to `join` lives on another node: only local processes join (OTP
    /// raises `badarg`).
    NotLocal(Pid),
    /// The scope's server could not be called (no such scope on this node, or it did not
    /// answer in time).
    Call(CallError),
    /// The scope's server answered something this API does not know.
    BadReply(Term),
}

impl PgError {
    /// The reason OTP gives (`badarg` for a remote pid, the call's reason otherwise).
    pub fn reason(&self) -> Term {
        match self {
            PgError::NotLocal(_) => Term::atom("badarg"),
            PgError::Call(e) => e.reason(),
            PgError::BadReply(t) => (Term::atom("bad_reply"), t.clone()).into(),
        }
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgError::NotLocal(p) => write!(f, "{p} is not a local process: only those join"),
            PgError::Call(e) => write!(f, "the pg scope could not be called: {e}"),
            PgError::BadReply(t) => write!(f, "the pg scope answered {t}"),
        }
    }
}

impl std::error::Error for PgError {}

impl From<PgError> for Term {
    fn from(e: PgError) -> Term {
        e.reason()
    }
}

impl From<CallError> for PgError {
    fn from(e: CallError) -> PgError {
        PgError::Call(e)
    }
}

/// Why a global registration answered `no`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GlobalRegisterError {
    /// The name is registered already (here or on another node).
    NameTaken,
    /// The pid is registered under another global name already.
    AlreadyNamed,
}

impl GlobalRegisterError {
    /// The answer OTP gives: `no`.
    pub fn reason(&self) -> Term {
        Term::atom("no")
    }
}

impl fmt::Display for GlobalRegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobalRegisterError::NameTaken => f.write_str("the global name is taken"),
            GlobalRegisterError::AlreadyNamed => {
                f.write_str("the pid already has another global name")
            }
        }
    }
}

impl std::error::Error for GlobalRegisterError {}

impl From<GlobalRegisterError> for Term {
    fn from(e: GlobalRegisterError) -> Term {
        e.reason()
    }
}

/// Why a global lock was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockError {
    /// Another process held it through every attempt (OTP's `false`).
    Busy {
        /// How many attempts were made.
        attempts: u32,
    },
    /// Another process held it until the timeout passed.
    Timeout,
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Busy { attempts } => {
                write!(
                    f,
                    "the lock was held by another through {attempts} attempts"
                )
            }
            LockError::Timeout => f.write_str("the lock was held by another until the timeout"),
        }
    }
}

impl std::error::Error for LockError {}

/// Why `global::sync` returned without the cluster's names in sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncError {
    /// This node runs no global name server (started without the cluster services)
    /// while connected to other nodes.
    NotRunning,
    /// Not every name server had synced when the timeout passed.
    Timeout,
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncError::NotRunning => f.write_str("this node runs no global name server"),
            SyncError::Timeout => f.write_str("the global name servers did not sync in time"),
        }
    }
}

impl std::error::Error for SyncError {}
