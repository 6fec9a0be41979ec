//! The processes around a lease: the keeper (one per held lock, on the holder's node:
//! renews, releases when the holder exits, tells it when the lease is lost) and the
//! warden (one per node of the service: on the leader, expires leases not renewed).

use std::time::{Duration, Instant};

use super::{LockCommand, LockOutput, Locks};
use crate::rt::{Ctx, Node};
use crate::term::{Pid, Term};

const STOP: &str = "oxbeam_lock_stop";

/// Starts the keeper of `token` on `resource`, held by the calling process since
/// `sent` (when its acquire was sent: the lease is counted from there).
pub(super) fn spawn(ctx: &mut Ctx, locks: Locks, resource: Term, token: u64, sent: Instant) -> Pid {
    let owner = ctx.pid();
    ctx.node()
        .spawn_task(move |ctx| keep(ctx, &locks, &resource, token, owner, sent))
}

/// Tells a keeper to stop (before its lease is released, so it reports no loss).
pub(super) fn stop(ctx: &mut Ctx, keeper: Pid) {
    ctx.send(keeper, Term::atom(STOP));
}

enum Event {
    Stop,
    OwnerDown,
}

fn stopping(ctx: &mut Ctx) -> bool {
    ctx.receive_match(|m| m.is_atom(STOP), Some(Duration::ZERO))
        .is_some()
}

fn keep(ctx: &mut Ctx, locks: &Locks, resource: &Term, token: u64, owner: Pid, sent: Instant) {
    let config = locks.config().clone();
    let monitor = ctx.monitor(owner);
    let mut last_ok = sent;
    let lost = |ctx: &mut Ctx| {
        if !stopping(ctx) {
            let msg = Term::tuple(vec![
                Term::atom("lock_lost"),
                resource.clone(),
                Term::Int(token as i64),
            ]);
            ctx.send(owner, msg);
        }
    };
    loop {
        let lost_at = last_ok + config.lease.saturating_sub(config.margin);
        let now = Instant::now();
        if now >= lost_at {
            lost(ctx);
            return;
        }
        let wake = (now + config.renew_every).min(lost_at);
        let event = ctx.receive_with(
            |m| {
                if m.is_atom(STOP) {
                    return Some(Event::Stop);
                }
                match m.as_tuple()? {
                    [tag, Term::Ref(r), ..] if tag.is_atom("DOWN") && *r == monitor => {
                        Some(Event::OwnerDown)
                    }
                    _ => None,
                }
            },
            Some(wake - now),
        );
        match event {
            Some(Event::Stop) => return,
            Some(Event::OwnerDown) => {
                let cmd = LockCommand::Release {
                    resource: resource.clone(),
                    token,
                };
                // If this fails the lease runs out instead.
                let _ = locks.group().propose(ctx, cmd, config.timeout);
                return;
            }
            None => {}
        }
        if Instant::now() >= lost_at {
            continue;
        }
        let at = Instant::now();
        let cmd = LockCommand::Renew {
            resource: resource.clone(),
            token,
        };
        let wait = config
            .renew_every
            .min(lost_at.saturating_duration_since(at));
        match locks
            .group()
            .propose(ctx, cmd, wait.max(Duration::from_millis(1)))
        {
            Ok(LockOutput::Done) => last_ok = at,
            Ok(LockOutput::NotHolder) => {
                lost(ctx);
                return;
            }
            _ => {}
        }
    }
}

/// Starts the warden of this node's replica: every 50 ms, if the replica leads, it
/// expires the leases its machine saw no renewal of for `lease`.
pub(super) fn start_warden(node: &Node, locks: Locks) {
    let name = locks.config().group.name;
    node.spawn_task(move |ctx| {
        let lease = locks.config().lease;
        let mut was_leader = false;
        loop {
            if ctx
                .receive_match(|m| m.is_atom(STOP), Some(Duration::from_millis(50)))
                .is_some()
            {
                return;
            }
            if ctx.node().whereis(name).is_none() {
                return; // the replica is gone
            }
            let shared = locks.group().shared();
            let leader = shared.is_leader();
            let now = Instant::now();
            if leader && !was_leader {
                shared.machine.write().state.restart_leases(now);
            }
            was_leader = leader;
            if !leader {
                continue;
            }
            let expired: Vec<(Term, u64)> = shared
                .machine
                .read()
                .state
                .leases()
                .into_iter()
                .filter(|(_, at)| at.is_none_or(|at| now.duration_since(at) >= lease))
                .map(|(k, _)| k)
                .collect();
            for (resource, token) in expired {
                log::info!("lock {resource} token {token}: lease expired");
                let cmd = LockCommand::Expire { resource, token };
                let _ = locks.group().propose(ctx, cmd, Duration::from_secs(1));
            }
        }
    });
}
