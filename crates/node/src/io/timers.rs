//! The I/O loop's timers: handshake deadlines, the tick (`net_ticktime`), idle trims,
//! connections that never came up, and redials of attempts refused as duplicates.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Hs, IoLoop};
use crate::conn::{Conn, Phase};
use crate::net::NetInner;
use crate::wire::Wire;

impl IoLoop {
    pub(super) fn timers(&mut self, net: &Arc<NetInner>) {
        let now = Instant::now();
        let tick = net.config.tick_time;
        let mut expired = Vec::new();
        let mut tick_due = Vec::new();
        for (t, io) in &mut self.conns {
            if io.deadline.is_some_and(|d| now >= d) {
                expired.push((*t, "handshake timed out"));
            } else if matches!(io.hs, Hs::Done) {
                if now.duration_since(io.last_recv) > tick / 4 {
                    // Quiet for a while: buffers kept for large messages can go.
                    io.reassembly.trim();
                }
                if now.duration_since(io.last_recv) > tick {
                    expired.push((*t, "net_tick_timeout"));
                } else if let Some(conn) = &io.conn {
                    let idle = conn.epoch.elapsed().as_millis() as u64
                        - conn.last_sent.load(std::sync::atomic::Ordering::Relaxed);
                    if Duration::from_millis(idle) > tick / 4 {
                        tick_due.push(conn.clone());
                    }
                }
            }
        }
        for (t, why) in expired {
            if why == "net_tick_timeout" {
                log::warn!(
                    "{}: no traffic for {tick:?}; declared down",
                    self.describe(t)
                );
            } else {
                self.warn_peer(t, "handshake timed out", |who| {
                    format!("closing {who}: handshake timed out")
                });
            }
            self.close(net, t, why);
        }
        for conn in tick_due {
            // Idle for a while: a burst's large write buffer can go.
            conn.state.lock().out.trim();
            conn.send(&Wire::Tick, |_| {});
        }
        // Connections that never came up.
        let stale: Vec<Arc<Conn>> = net
            .conns
            .read()
            .values()
            .filter(|c| {
                let st = c.state.lock();
                matches!(st.phase, Phase::Connecting)
                    && now.duration_since(st.since) > net.config.connect_timeout
            })
            .cloned()
            .collect();
        for c in stale {
            c.note_failure(crate::ConnectError::Timeout);
            net.conn_down(&c, "connect timed out");
        }
        // Attempts refused as duplicates, due again.
        let (due, later) = std::mem::take(&mut self.redials)
            .into_iter()
            .partition(|(at, _, _)| *at <= now);
        self.redials = later;
        for (_, conn, addr) in due {
            if matches!(conn.phase(), Phase::Connecting) {
                self.dial(net, conn, addr);
            }
        }
    }
}
