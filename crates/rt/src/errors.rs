//! The typed errors of a node's basic operations: sending to a name, registering a
//! name, linking, spawning a registered function.
//!
//! Each says what happened in Rust terms and converts into the reason Erlang would give
//! (`badarg`, `noproc`, `{:undef, {m, f, a}}`) through [`reason`](SendError::reason) or
//! `Term::from`, for code that speaks OTP (the console, the distribution layer).

use std::fmt;

use crate::term::{Atom, Pid, Term};

/// Why a send to a name failed (Erlang raises `badarg`). Sends to a pid, and to
/// `{name, node}` on another node, never fail: like Erlang's, they are fire and forget.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// No process is registered under this name on this node.
    NotRegistered(Atom),
    /// No process is registered under this global name (any term, as OTP's).
    NotRegisteredGlobally(Term),
}

impl SendError {
    /// The reason Erlang gives: `badarg`.
    pub fn reason(&self) -> Term {
        Term::Atom(Atom::BADARG)
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotRegistered(name) => write!(f, "no process is registered as {name}"),
            SendError::NotRegisteredGlobally(name) => {
                write!(f, "no process is registered globally as {name}")
            }
        }
    }
}

impl std::error::Error for SendError {}

impl From<SendError> for Term {
    fn from(e: SendError) -> Term {
        e.reason()
    }
}

/// Why a name could not be registered (Erlang raises `badarg` for each).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegisterError {
    /// The name is taken, by this process.
    NameTaken {
        /// The name asked for.
        name: Atom,
        /// Who holds it.
        holder: Pid,
    },
    /// The process already has a name of its own.
    AlreadyNamed {
        /// The process.
        pid: Pid,
        /// Its name.
        name: Atom,
    },
    /// The process is not alive.
    NotAlive(Pid),
    /// The process lives on another node: only local processes take local names.
    NotLocal(Pid),
    /// `undefined` is not a name.
    Undefined,
}

impl RegisterError {
    /// The reason Erlang gives: `badarg`.
    pub fn reason(&self) -> Term {
        Term::Atom(Atom::BADARG)
    }
}

impl fmt::Display for RegisterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegisterError::NameTaken { name, holder } => {
                write!(f, "{name} is already registered, to {holder}")
            }
            RegisterError::AlreadyNamed { pid, name } => {
                write!(f, "{pid} is already registered as {name}")
            }
            RegisterError::NotAlive(pid) => write!(f, "{pid} is not alive"),
            RegisterError::NotLocal(pid) => {
                write!(
                    f,
                    "{pid} lives on another node; only local processes take local names"
                )
            }
            RegisterError::Undefined => f.write_str("undefined is not a name"),
        }
    }
}

impl std::error::Error for RegisterError {}

impl From<RegisterError> for Term {
    fn from(e: RegisterError) -> Term {
        e.reason()
    }
}

/// Why a link could not be made (Erlang raises `noproc`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkError {
    /// The local process is not alive, and the caller does not trap exits.
    NoProc(Pid),
}

impl LinkError {
    /// The reason Erlang gives: `noproc`.
    pub fn reason(&self) -> Term {
        Term::Atom(Atom::NOPROC)
    }
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::NoProc(pid) => write!(f, "cannot link to {pid}: it is not alive"),
        }
    }
}

impl std::error::Error for LinkError {}

impl From<LinkError> for Term {
    fn from(e: LinkError) -> Term {
        e.reason()
    }
}

/// Why a registered function could not be spawned: it is not registered with that
/// arity on the node asked (`{:undef, {module, function, arity}}`); no process started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndefinedFunction {
    /// The module asked for.
    pub module: Atom,
    /// The function asked for.
    pub function: Atom,
    /// The number of arguments given.
    pub arity: usize,
}

impl UndefinedFunction {
    /// The reason Erlang gives: `{:undef, {module, function, arity}}`.
    pub fn reason(&self) -> Term {
        crate::functions::undef(self.module, self.function, self.arity)
    }
}

impl fmt::Display for UndefinedFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let UndefinedFunction {
            module,
            function,
            arity,
        } = self;
        write!(
            f,
            "{}:{}/{arity} is not a registered function",
            module.as_str(),
            function.as_str()
        )
    }
}

impl std::error::Error for UndefinedFunction {}

impl From<UndefinedFunction> for Term {
    fn from(e: UndefinedFunction) -> Term {
        e.reason()
    }
}

/// Why another process's group leader could not be set (`group_leader(leader, pid)`;
/// Erlang raises `badarg`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupLeaderError {
    /// The process is not alive.
    NotAlive(Pid),
    /// The process lives on another node: only a local process's is set here.
    NotLocal(Pid),
}

impl GroupLeaderError {
    /// The reason Erlang gives: `badarg`.
    pub fn reason(&self) -> Term {
        Term::Atom(Atom::BADARG)
    }
}

impl fmt::Display for GroupLeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupLeaderError::NotAlive(pid) => write!(f, "{pid} is not alive"),
            GroupLeaderError::NotLocal(pid) => write!(
                f,
                "{pid} lives on another node; only a local process's group leader is set"
            ),
        }
    }
}

impl std::error::Error for GroupLeaderError {}

impl From<GroupLeaderError> for Term {
    fn from(e: GroupLeaderError) -> Term {
        e.reason()
    }
}
