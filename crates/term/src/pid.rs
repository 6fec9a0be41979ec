//! Process identifiers and references, and how they print.
//!
//! A [`Pid`] names its node (an atom such as `:node1@localhost`) and that node's
//! *creation* (a number that changes each time a node of that name starts), so a pid of
//! a node that restarted never matches a process of the new incarnation. A [`Ref`] is
//! unique per node incarnation in the same way.
//!
//! They print as Elixir prints them: `#PID<0.90.0>` for a process of the node the current
//! thread belongs to, `#PID<N.90.0>` for another node's. Which node is "this" one is a
//! per-thread [`DisplayContext`] that scheduler workers and attached threads set; a thread
//! with none prints every pid with `0`.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use super::atom::Atom;

/// A process identifier: node, node creation, and a number unique on that node.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pid {
    node: Atom,
    id: u64,
    creation: u32,
}

/// The one word a pid or ref hashes as: the number in the low bits (so that
/// `rt::process::IdHasher` puts the consecutive numbers of one node in nearby buckets),
/// node and creation folded into the high bits.
fn id_word(node: Atom, creation: u32, id: u64) -> u64 {
    id ^ (u64::from(node.index()) << 40) ^ (u64::from(creation) << 52)
}

impl std::hash::Hash for Pid {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(id_word(self.node, self.creation, self.id));
    }
}

impl std::hash::Hash for Ref {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(id_word(self.node, self.creation, self.id));
    }
}

impl Pid {
    /// Builds a pid from its parts (the runtime makes pids; this is for codecs and tests).
    pub const fn from_parts(node: Atom, creation: u32, id: u64) -> Pid {
        Pid { node, id, creation }
    }

    /// The node the process lives on.
    pub fn node(self) -> Atom {
        self.node
    }

    /// The creation (incarnation) of that node.
    pub fn creation(self) -> u32 {
        self.creation
    }

    /// The process number on its node.
    pub fn id(self) -> u64 {
        self.id
    }
}

/// A reference: unique per node incarnation (`make_ref()`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ref {
    node: Atom,
    id: u64,
    creation: u32,
}

impl Ref {
    /// Builds a reference from its parts.
    pub const fn from_parts(node: Atom, creation: u32, id: u64) -> Ref {
        Ref { node, id, creation }
    }

    /// The node that made the reference.
    pub fn node(self) -> Atom {
        self.node
    }

    /// The creation of that node.
    pub fn creation(self) -> u32 {
        self.creation
    }

    /// The reference's number on its node.
    pub fn id(self) -> u64 {
        self.id
    }
}

/// Maps a remote node (name, creation) to the small number printed in `#PID<N.x.y>`.
pub type NodeIndexFn = dyn Fn(Atom, u32) -> u32 + Send + Sync;

/// Which node the current thread belongs to, for printing pids and refs.
#[derive(Clone)]
pub struct DisplayContext {
    /// This thread's node and its creation: its pids print with `0`.
    pub local: (Atom, u32),
    /// The number printed for another node's pids; without one, the atom's table index
    /// (stable within the OS process) is used.
    pub remote_index: Option<Arc<NodeIndexFn>>,
}

thread_local! {
    static DISPLAY: RefCell<Option<DisplayContext>> = const { RefCell::new(None) };
}

/// Sets (or clears) the current thread's display context; returns the previous one.
pub fn set_display_context(ctx: Option<DisplayContext>) -> Option<DisplayContext> {
    DISPLAY.with(|d| std::mem::replace(&mut *d.borrow_mut(), ctx))
}

fn node_index(node: Atom, creation: u32) -> u32 {
    DISPLAY.with(|d| match &*d.borrow() {
        None => 0,
        Some(ctx) if ctx.local == (node, creation) => 0,
        Some(ctx) => match &ctx.remote_index {
            Some(f) => f(node, creation),
            None => node.index().max(1),
        },
    })
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = node_index(self.node, self.creation);
        write!(f, "#PID<{n}.{}.{}>", self.id & 0xffff_ffff, self.id >> 32)
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}@{}/{}", self.node.as_str(), self.creation)
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = node_index(self.node, self.creation);
        write!(
            f,
            "#Reference<{n}.{}.{}.{}>",
            self.creation,
            self.id >> 32,
            self.id & 0xffff_ffff
        )
    }
}

impl fmt::Debug for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}@{}", self.node.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_print_relative_to_the_threads_node() {
        let here = Atom::new("node1@localhost");
        let there = Atom::new("node2@localhost");
        let local = Pid::from_parts(here, 1, 90);
        let remote = Pid::from_parts(there, 7, 90);
        let prev = set_display_context(Some(DisplayContext {
            local: (here, 1),
            remote_index: Some(Arc::new(|_, _| 12)),
        }));
        assert_eq!(local.to_string(), "#PID<0.90.0>");
        assert_eq!(remote.to_string(), "#PID<12.90.0>");
        set_display_context(prev);
        assert_eq!(remote.to_string(), "#PID<0.90.0>");
    }

    #[test]
    fn pids_of_another_creation_differ() {
        let n = Atom::new("node1@localhost");
        assert_ne!(Pid::from_parts(n, 1, 90), Pid::from_parts(n, 2, 90));
    }
}
