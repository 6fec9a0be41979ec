//! What the services' test functions share: the member list argument, and starting a
//! node's replicas of some services and waiting for their leader.

use std::time::Duration;

use oxbeam::everywhere::{self, Service};
use oxbeam::kv::Table;
use oxbeam::locks::Locks;
use oxbeam::queue::Queue;
use oxbeam::rt::Ctx;
use oxbeam::term::{Atom, Term, term};

/// A list of atoms (the members), or `None`.
pub fn atoms(t: &Term) -> Option<Vec<Atom>> {
    t.as_list()
        .and_then(|l| l.iter().map(Term::as_atom).collect())
}

/// Starts this node's replicas of `services`, each named `name`, on the members
/// `nodes` (a list of atoms), and waits until each knows its leader: `:ok`, or
/// `{:error, why}`.
pub fn start(ctx: &mut Ctx, services: &[Service], name: &str, nodes: &Term) -> Term {
    let Some(nodes) = atoms(nodes) else {
        return term!(:badarg);
    };
    let wait = Duration::from_secs(10);
    for s in services {
        if let Err(why) = everywhere::start_here(ctx.node(), *s, name, &nodes) {
            return term!({:error, (why)});
        }
        let led = match s {
            Service::Kv => Table::<Term, Term>::open(ctx.node(), name)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    t.wait_for_writer(ctx, wait)
                        .map(drop)
                        .map_err(|e| e.to_string())
                }),
            Service::Locks => Locks::open(ctx.node(), name)
                .map_err(|e| e.to_string())
                .and_then(|l| {
                    l.group()
                        .wait_for_leader(ctx, wait)
                        .map(drop)
                        .map_err(|e| e.to_string())
                }),
            Service::Queue => Queue::open(ctx.node(), name)
                .map_err(|e| e.to_string())
                .and_then(|q| {
                    q.group()
                        .wait_for_leader(ctx, wait)
                        .map(drop)
                        .map_err(|e| e.to_string())
                }),
        };
        if let Err(why) = led {
            return term!({:error, (why)});
        }
    }
    term!(:ok)
}
