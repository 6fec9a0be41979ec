//! The lock manager's replicated state: per resource, its holders (each with a fencing
//! token) and its queue of waiters, granted strictly first come, first served. Pure
//! but for `renewed`, a replica-local note of when each lease was last renewed (read by
//! the leader's warden to expire leases; never by `apply`'s outputs).
//!
//! A resource is a mutex/read-write lock (exclusive holders exclude everyone, shared
//! holders exclude exclusive ones) or a semaphore of `n` permits, fixed by its first
//! acquirer. Tokens count grants per resource, from 1, and never repeat or go back,
//! even after the resource is idle (`next_token` is kept), so a resource that sees
//! tokens in increasing order sees holders in grant order.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::term::{Pid, Ref, Term};

/// How a lock is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Alone (a mutex, or a read-write lock's writer).
    Exclusive,
    /// With other shared holders (a read-write lock's readers).
    Shared,
    /// One of the resource's `n` permits (a semaphore).
    Permit(u32),
}

/// One holder of a resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The process that holds it.
    pub owner: Pid,
    /// How.
    pub mode: Mode,
    /// The acquire request it was granted for.
    pub request: Ref,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Waiting {
    owner: Pid,
    mode: Mode,
    request: Ref,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Resource {
    /// By token.
    holders: BTreeMap<u64, Holder>,
    queue: VecDeque<Waiting>,
    /// A semaphore's permits, once the resource is one.
    permits: Option<u32>,
}

/// A command of the lock manager's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockCommand {
    /// Take `resource` (or queue for it).
    Acquire {
        /// What to lock.
        resource: Term,
        /// Who will hold it.
        owner: Pid,
        /// How.
        mode: Mode,
        /// The request's reference (to cancel it, or find its grant).
        request: Ref,
    },
    /// Give up a queued request (an acquire that timed out).
    Cancel {
        /// The resource.
        resource: Term,
        /// The request.
        request: Ref,
    },
    /// The holder of `token` lets go.
    Release {
        /// The resource.
        resource: Term,
        /// The holder's token.
        token: u64,
    },
    /// The holder of `token` is still there (its lease goes on).
    Renew {
        /// The resource.
        resource: Term,
        /// The holder's token.
        token: u64,
    },
    /// The leader saw the lease of `token` run out.
    Expire {
        /// The resource.
        resource: Term,
        /// The holder's token.
        token: u64,
    },
}

/// What a lock command gives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockOutput {
    /// Held, with this fencing token.
    Granted(u64),
    /// Queued behind others (first come, first served).
    Queued,
    /// The request was cancelled before it was granted.
    Cancelled,
    /// Released (or expired, or renewed).
    Done,
    /// The token does not hold the resource (any more).
    NotHolder,
    /// Refused: a semaphore asked for with another number of permits, say.
    Refused(String),
    /// A query's answer: the holders, and how many wait.
    Holders(Vec<(u64, Holder)>, usize),
}

/// A read of the lock manager.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum LockQuery {
    /// The holders of a resource and how many wait.
    Holders(Term),
    /// Whether `request` was granted: its token.
    Granted(Term, Ref),
}

/// A grant, for the process to tell its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The resource.
    pub resource: Term,
    /// The owner.
    pub owner: Pid,
    /// The request it answers.
    pub request: Ref,
    /// Its token.
    pub token: u64,
}

/// The lock manager's state.
#[derive(Default, Serialize, Deserialize)]
pub struct LockState {
    resources: BTreeMap<Term, Resource>,
    next_token: BTreeMap<Term, u64>,
    /// Replica-local: when each (resource, token) was granted or last renewed here.
    #[serde(skip)]
    pub(crate) renewed: BTreeMap<(Term, u64), Instant>,
}

impl LockState {
    /// Applies a command; the grants it made (to queued waiters, or the acquirer).
    pub fn apply(&mut self, cmd: LockCommand, grants: &mut Vec<Grant>) -> LockOutput {
        match cmd {
            LockCommand::Acquire {
                resource,
                owner,
                mode,
                request,
            } => {
                let r = self.resources.entry(resource.clone()).or_default();
                // The same request again (a client retrying after an unknown outcome):
                // answered as it stands, not queued twice.
                if let Some((token, _)) = r.holders.iter().find(|(_, h)| h.request == request) {
                    return LockOutput::Granted(*token);
                }
                if r.queue.iter().any(|w| w.request == request) {
                    return LockOutput::Queued;
                }
                if let Mode::Permit(n) = mode {
                    match r.permits {
                        Some(m) if m != n => {
                            return LockOutput::Refused(format!(
                                "a semaphore of {m} permits, not {n}"
                            ));
                        }
                        _ if n == 0 => {
                            return LockOutput::Refused("a semaphore of 0 permits".into());
                        }
                        _ => r.permits = Some(n),
                    }
                } else if r.permits.is_some() {
                    return LockOutput::Refused("a semaphore, not a lock".into());
                }
                r.queue.push_back(Waiting {
                    owner,
                    mode,
                    request,
                });
                let before = grants.len();
                self.grant(&resource, grants);
                match grants[before..].iter().find(|g| g.request == request) {
                    Some(g) => LockOutput::Granted(g.token),
                    None => LockOutput::Queued,
                }
            }
            LockCommand::Cancel { resource, request } => {
                let Some(r) = self.resources.get_mut(&resource) else {
                    return LockOutput::Cancelled;
                };
                if let Some((token, _)) = r.holders.iter().find(|(_, h)| h.request == request) {
                    return LockOutput::Granted(*token);
                }
                r.queue.retain(|w| w.request != request);
                // The head may have changed: a reader behind a cancelled writer goes in.
                self.grant(&resource, grants);
                self.forget_if_idle(&resource);
                LockOutput::Cancelled
            }
            LockCommand::Release { resource, token } | LockCommand::Expire { resource, token } => {
                let Some(r) = self.resources.get_mut(&resource) else {
                    return LockOutput::NotHolder;
                };
                if r.holders.remove(&token).is_none() {
                    return LockOutput::NotHolder;
                }
                self.renewed.remove(&(resource.clone(), token));
                self.grant(&resource, grants);
                self.forget_if_idle(&resource);
                LockOutput::Done
            }
            LockCommand::Renew { resource, token } => {
                let held = self
                    .resources
                    .get(&resource)
                    .is_some_and(|r| r.holders.contains_key(&token));
                if !held {
                    return LockOutput::NotHolder;
                }
                self.renewed.insert((resource, token), Instant::now());
                LockOutput::Done
            }
        }
    }

    /// Grants the queue's head while it fits (strict FIFO: a waiter never passes one
    /// ahead of it, so writers are not starved by a stream of readers).
    fn grant(&mut self, resource: &Term, grants: &mut Vec<Grant>) {
        let Some(r) = self.resources.get_mut(resource) else {
            return;
        };
        while let Some(head) = r.queue.front() {
            let fits = match head.mode {
                Mode::Exclusive => r.holders.is_empty(),
                Mode::Shared => r.holders.values().all(|h| h.mode == Mode::Shared),
                Mode::Permit(n) => r.holders.len() < n as usize,
            };
            if !fits {
                break;
            }
            let w = r.queue.pop_front().expect("the head is there");
            let next = self.next_token.entry(resource.clone()).or_insert(0);
            *next += 1;
            let token = *next;
            r.holders.insert(
                token,
                Holder {
                    owner: w.owner,
                    mode: w.mode,
                    request: w.request,
                },
            );
            self.renewed
                .insert((resource.clone(), token), Instant::now());
            grants.push(Grant {
                resource: resource.clone(),
                owner: w.owner,
                request: w.request,
                token,
            });
        }
    }

    fn forget_if_idle(&mut self, resource: &Term) {
        if self
            .resources
            .get(resource)
            .is_some_and(|r| r.holders.is_empty() && r.queue.is_empty())
        {
            self.resources.remove(resource);
        }
    }

    /// Answers a query.
    pub fn query(&self, q: &LockQuery) -> LockOutput {
        match q {
            LockQuery::Holders(resource) => match self.resources.get(resource) {
                Some(r) => LockOutput::Holders(
                    r.holders.iter().map(|(t, h)| (*t, h.clone())).collect(),
                    r.queue.len(),
                ),
                None => LockOutput::Holders(Vec::new(), 0),
            },
            LockQuery::Granted(resource, request) => {
                let token = self.resources.get(resource).and_then(|r| {
                    r.holders
                        .iter()
                        .find(|(_, h)| h.request == *request)
                        .map(|(t, _)| *t)
                });
                token.map_or(LockOutput::Queued, LockOutput::Granted)
            }
        }
    }

    /// Every (resource, token) held, with when this replica last saw it renewed.
    pub(crate) fn leases(&self) -> Vec<((Term, u64), Option<Instant>)> {
        self.resources
            .iter()
            .flat_map(|(res, r)| r.holders.keys().map(move |t| (res.clone(), *t)))
            .map(|k| {
                let at = self.renewed.get(&k).copied();
                (k, at)
            })
            .collect()
    }

    /// A new leader starts every lease afresh (it cannot know when its predecessor last
    /// renewed them, only that it was before now).
    pub(crate) fn restart_leases(&mut self, now: Instant) {
        for (k, _) in self.leases() {
            self.renewed.insert(k, now);
        }
    }
}

#[cfg(test)]
mod tests;
