//! Group leaders: where a process's I/O goes, as in OTP.
//!
//! Every process has a group leader, a pid (or none): [`io::put_chars`](crate::io::put_chars)
//! sends its output there as an I/O request, and the group leader (an I/O server,
//! [`io::start_server`](crate::io::start_server)) writes it out. A process spawned by a
//! process gets its spawner's group leader, on every spawn path of [`Ctx`]; a process
//! spawned from outside any process ([`Node::spawn`] from plain Rust, a registered
//! function run by [`Node::spawn_mfa`] or [`Node::prepare_mfa`]) and an attached thread
//! ([`Node::attach`]) get the node's default ([`Node::set_default_group_leader`];
//! none at first). The distribution layer's remote spawn carries the spawner's group
//! leader to the new process on the other node ([`Prepared::set_group_leader`]), so
//! what a process spawned there prints comes back to the spawner's terminal.
//!
//! No group leader (`None`) means this node's standard output.
//!
//! [`Prepared::set_group_leader`]: crate::Prepared::set_group_leader

use super::ctx::Ctx;
use super::errors::GroupLeaderError;
use super::node::Node;
use crate::term::Pid;

impl Ctx {
    /// This process's group leader (`group_leader()`): where its I/O goes. `None`: this
    /// node's standard output.
    pub fn group_leader(&self) -> Option<Pid> {
        *self.cell.group_leader.lock()
    }

    /// Makes `leader` this process's group leader (`group_leader(leader, self())`).
    /// The processes it spawns from now on inherit it.
    pub fn set_group_leader(&mut self, leader: Pid) {
        *self.cell.group_leader.lock() = Some(leader);
    }
}

impl Node {
    /// The group leader of the local process `pid` (`process_info(pid, :group_leader)`).
    pub fn group_leader(&self, pid: Pid) -> Result<Option<Pid>, GroupLeaderError> {
        let cell = self.live_cell(pid)?;
        let leader = *cell.group_leader.lock();
        Ok(leader)
    }

    /// Makes `leader` the group leader of the local process `pid` (OTP's
    /// `group_leader(leader, pid)`), from any thread. `leader` may be any pid, of this
    /// node or another; it is not checked for being alive (I/O to a dead one falls
    /// back to standard output: see [`io`](crate::io)).
    pub fn set_group_leader(&self, leader: Pid, pid: Pid) -> Result<(), GroupLeaderError> {
        let cell = self.live_cell(pid)?;
        *cell.group_leader.lock() = Some(leader);
        Ok(())
    }

    /// The group leader that processes started from outside any process get (see the
    /// module docs of `group_leader.rs`); `None` at first.
    pub fn default_group_leader(&self) -> Option<Pid> {
        *self.inner().default_group_leader.read()
    }

    /// Sets the group leader of processes started from now on from outside any
    /// process, and of attached threads (a console makes its I/O server the default, as
    /// OTP's `user` is). Processes already running keep theirs.
    pub fn set_default_group_leader(&self, leader: Option<Pid>) {
        *self.inner().default_group_leader.write() = leader;
    }

    fn live_cell(
        &self,
        pid: Pid,
    ) -> Result<std::sync::Arc<super::process::ProcessCell>, GroupLeaderError> {
        if !self.is_local(pid) {
            return Err(GroupLeaderError::NotLocal(pid));
        }
        match self.local_cell(pid) {
            Some(cell) if !cell.mailbox.lock().closed => Ok(cell),
            _ => Err(GroupLeaderError::NotAlive(pid)),
        }
    }
}
