//! Starting a service on every node of it from one node (as mnesia's `create_table`
//! does): each node registers `oxbeam_services:start/3`, and [`start_everywhere`] calls
//! it on each member by rpc. Idempotent: a member whose replica runs already answers
//! `:ok`.

use std::time::Duration;

use crate::dist::rpc;
use crate::rt::functions::Functions;
use crate::rt::{Ctx, Node};
use crate::term::{Atom, Term, from_term};
use crate::{kv, locks, queue};

/// A service kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// A KV table ([`kv::Table`], of terms).
    Kv,
    /// A task queue ([`queue::Queue`]).
    Queue,
    /// A lock manager ([`locks::Locks`]).
    Locks,
}

impl Service {
    fn atom(self) -> Atom {
        Atom::new(match self {
            Service::Kv => "kv",
            Service::Queue => "queue",
            Service::Locks => "locks",
        })
    }

    /// The registered name of service `name`'s replica on each node.
    pub fn group_name(self, name: &str) -> Atom {
        Atom::new(&format!("oxbeam_{}:{name}", self.atom().as_str()))
    }
}

/// Starts this node's replica of service `name` on `nodes` unless it runs already.
pub fn start_here(node: &Node, service: Service, name: &str, nodes: &[Atom]) -> Result<(), String> {
    if node.whereis(service.group_name(name)).is_some() {
        return Ok(());
    }
    match service {
        Service::Kv => kv::Table::<Term, Term>::start(node, name, nodes)
            .map(drop)
            .map_err(|e| e.to_string()),
        Service::Queue => queue::Queue::start(node, name, nodes)
            .map(drop)
            .map_err(|e| e.to_string()),
        Service::Locks => locks::Locks::start(node, name, nodes)
            .map(drop)
            .map_err(|e| e.to_string()),
    }
}

/// Registers `oxbeam_services:start(kind, name, nodes)` on a node, so that
/// [`start_everywhere`] from another node reaches it.
pub fn register(functions: &Functions) {
    functions.register(
        Atom::new("oxbeam_services"),
        Atom::new("start"),
        3,
        |ctx: &mut Ctx, args| {
            let Ok((kind, name, nodes)) = from_term::<(Atom, String, Vec<Atom>)>(&Term::from(args))
            else {
                return Term::tuple(vec![Term::atom("error"), Term::atom("badarg")]);
            };
            let service = match kind.as_str() {
                "kv" => Service::Kv,
                "queue" => Service::Queue,
                "locks" => Service::Locks,
                _ => return Term::tuple(vec![Term::atom("error"), Term::atom("unknown_service")]),
            };
            match start_here(ctx.node(), service, &name, &nodes) {
                Ok(()) => Term::atom("ok"),
                Err(why) => Term::tuple(vec![Term::atom("error"), Term::str(&why)]),
            }
        },
    );
}

/// Starts service `name` on every node of `nodes` (this one directly, the others by
/// rpc, each within `timeout`); the members that failed, with why.
pub fn start_everywhere(
    ctx: &mut Ctx,
    service: Service,
    name: &str,
    nodes: &[Atom],
    timeout: Duration,
) -> Vec<(Atom, String)> {
    let mut failed = Vec::new();
    for n in nodes {
        if *n == ctx.node().name() {
            if let Err(why) = start_here(ctx.node(), service, name, nodes) {
                failed.push((*n, why));
            }
            continue;
        }
        let args = vec![
            Term::Atom(service.atom()),
            Term::str(name),
            Term::list(nodes.iter().map(|a| Term::Atom(*a)).collect::<Vec<_>>()),
        ];
        match rpc::call(ctx, *n, "oxbeam_services", "start", args, Some(timeout)) {
            Ok(t) if t.is_atom("ok") => {}
            Ok(other) => failed.push((*n, other.to_string())),
            Err(e) => failed.push((*n, e.to_string())),
        }
    }
    failed
}
