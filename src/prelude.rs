//! `use oxbeam::prelude::*;`: the names nearly every program needs.

pub use crate::dist::{global, pg, rpc};
pub use crate::node::{NodeMonitor, SpawnRequest};
pub use crate::rt::gen_server::{self, CallReply, GenServer};
pub use crate::rt::supervisor::{self, ChildSpec, Restart, Strategy, Supervisor};
pub use crate::rt::{
    Behaviour, CallError, Ctx, Dest, Flow, Notice, Reply, ReplyTo, Server, ServerRef, StartError,
    StartOpts, Timeout, Watched,
};
pub use crate::term::{Atom, Pid, Ref, Term};
pub use crate::{Node, NodeBuilder, NodeError, NodeExt, NodeList, term};
