//! [`Notice`]: the messages the runtime itself sends a process, typed, so a process
//! that watches others matches `Notice::Down { .. }` instead of a tuple of atoms; and
//! typed selective receive ([`Ctx::receive_as`]) for the process's own message types
//! through the serde conversion.

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::Ctx;
use crate::term::{Atom, Pid, Ref, Term, from_term};

/// What a `DOWN` is about: the monitored pid, or the `{name, node}` a monitor by name
/// ([`Ctx::monitor_name`]) watched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watched {
    /// `#PID<...>`.
    Pid(Pid),
    /// `{name, node}`.
    Name(Atom, Atom),
}

/// A message from the runtime (or the distribution layer) about other processes and
/// nodes.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// `{:DOWN, reference, :process, object, reason}`: a monitored process is gone
    /// (`noproc` if it never was, `noconnection` if its node went).
    Down {
        /// The monitor's reference (what `monitor` returned).
        reference: Ref,
        /// The process or name watched.
        object: Watched,
        /// Why it went.
        reason: Term,
    },
    /// `{:EXIT, from, reason}`: a linked process exited (to a process trapping exits).
    Exit {
        /// The process that exited.
        from: Pid,
        /// Its reason.
        reason: Term,
    },
    /// `{:nodeup, node}` or `{:nodeup, node, info}` (`monitor_nodes`).
    NodeUp(Atom),
    /// `{:nodedown, node}` (`Node.monitor`, `monitor_nodes`), or `{:nodedown, node,
    /// [nodedown_reason: reason]}` (`monitor_nodes` with reasons).
    NodeDown {
        /// The node that went.
        node: Atom,
        /// Its reason, when asked for.
        reason: Option<Term>,
    },
}

impl Notice {
    /// The notice `t` is, if it is one.
    pub fn from_term(t: &Term) -> Option<Notice> {
        let parts = t.as_tuple()?;
        let tag = parts.first()?.as_atom()?;
        Some(match (tag.as_str(), &parts[1..]) {
            ("DOWN", [Term::Ref(reference), kind, object, reason]) if kind.is_atom("process") => {
                let object = match object {
                    Term::Pid(p) => Watched::Pid(*p),
                    other => match other.as_tuple() {
                        Some([Term::Atom(name), Term::Atom(node)]) => Watched::Name(*name, *node),
                        _ => return None,
                    },
                };
                Notice::Down {
                    reference: *reference,
                    object,
                    reason: reason.clone(),
                }
            }
            ("EXIT", [Term::Pid(from), reason]) => Notice::Exit {
                from: *from,
                reason: reason.clone(),
            },
            ("nodeup", [Term::Atom(node)] | [Term::Atom(node), _]) => Notice::NodeUp(*node),
            ("nodedown", [Term::Atom(node)]) => Notice::NodeDown {
                node: *node,
                reason: None,
            },
            ("nodedown", [Term::Atom(node), info]) => Notice::NodeDown {
                node: *node,
                reason: info
                    .as_list()
                    .and_then(|l| l.iter().find_map(|kv| kv.tagged("nodedown_reason")))
                    .and_then(|v| v.first().cloned()),
            },
            _ => return None,
        })
    }
}

impl From<Notice> for Term {
    fn from(n: Notice) -> Term {
        match n {
            Notice::Down {
                reference,
                object,
                reason,
            } => Term::tuple(vec![
                Term::Atom(Atom::DOWN),
                Term::Ref(reference),
                Term::atom("process"),
                match object {
                    Watched::Pid(p) => Term::Pid(p),
                    Watched::Name(name, node) => {
                        Term::tuple(vec![Term::Atom(name), Term::Atom(node)])
                    }
                },
                reason,
            ]),
            Notice::Exit { from, reason } => {
                Term::tuple(vec![Term::Atom(Atom::EXIT), Term::Pid(from), reason])
            }
            Notice::NodeUp(node) => Term::tuple(vec![Term::atom("nodeup"), Term::Atom(node)]),
            Notice::NodeDown { node, reason: None } => {
                Term::tuple(vec![Term::atom("nodedown"), Term::Atom(node)])
            }
            Notice::NodeDown {
                node,
                reason: Some(r),
            } => Term::tuple(vec![
                Term::atom("nodedown"),
                Term::Atom(node),
                Term::list(vec![Term::tuple(vec![Term::atom("nodedown_reason"), r])]),
            ]),
        }
    }
}

impl Ctx {
    /// Typed selective receive: takes the first message (oldest first) that decodes as
    /// a `T` through the serde conversion ([`crate::term::from_term`]), waiting at most
    /// `timeout` (`None`: forever); the others stay queued, as in a `receive` with one
    /// clause per variant of `T`.
    pub fn receive_as<T: DeserializeOwned>(&mut self, timeout: Option<Duration>) -> Option<T> {
        self.receive_with(|m| from_term(m).ok(), timeout)
    }

    /// [`Ctx::receive_as`] of the first `T` for which `pred` holds.
    pub fn receive_as_where<T: DeserializeOwned>(
        &mut self,
        timeout: Option<Duration>,
        mut pred: impl FnMut(&T) -> bool,
    ) -> Option<T> {
        self.receive_with(|m| from_term(m).ok().filter(|t| pred(t)), timeout)
    }

    /// Takes the first [`Notice`] (a `DOWN`, an `EXIT`, a node event) for which `pred`
    /// holds, waiting at most `timeout`; other messages stay queued.
    pub fn receive_notice(
        &mut self,
        timeout: Option<Duration>,
        mut pred: impl FnMut(&Notice) -> bool,
    ) -> Option<Notice> {
        self.receive_with(|m| Notice::from_term(m).filter(|n| pred(n)), timeout)
    }
}
