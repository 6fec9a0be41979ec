//! A worker that waits (for a reply in a receive, or for work) turns its node's I/O loop
//! itself (`Router::poll_io`), and the I/O thread turns it too: whichever thread reads a
//! connection, every message arrives, once, in the order it was sent, small and large;
//! and the I/O thread, standing by while a worker looks, is not held up by one that
//! stopped looking to compute.
mod support;

use std::time::Duration;

use oxbeam::rt::{Ctx, Flow, Task};
use oxbeam::term::{Pid, Term, term};
use support::{SOON, net, net_with_workers, private_mapper, test_cookie};

/// Senders on one node, each sending to every sink on the other.
const SENDERS: usize = 4;
/// Sinks: half handle one message per call (their worker waits for work between
/// messages), half sit in a blocking receive (their worker waits inside it).
const SINKS: usize = 6;
const PER_PAIR: i64 = 20_000;

/// What a sink has seen from each sender: the last number, and whether all came in order.
struct Seen {
    last: [i64; SENDERS],
    in_order: bool,
    done: usize,
}

impl Seen {
    fn new() -> Seen {
        Seen {
            last: [0; SENDERS],
            in_order: true,
            done: 0,
        }
    }

    /// Takes one message; the report to send once every sender said it is done.
    fn take(&mut self, m: &Term) -> Option<(Pid, Term)> {
        if let Some([Term::Int(from), Term::Int(n), payload]) = m.tagged("seq") {
            let from = *from as usize;
            let expected_len = payload_for(*n).as_bytes().map(<[u8]>::len);
            self.in_order &=
                *n == self.last[from] + 1 && payload.as_bytes().map(<[u8]>::len) == expected_len;
            self.last[from] = *n;
        } else if let Some([Term::Pid(report)]) = m.tagged("done") {
            self.done += 1;
            if self.done == SENDERS {
                let total: i64 = self.last.iter().sum();
                return Some((*report, term!({:seen, total, (self.in_order)})));
            }
        }
        None
    }
}

/// Mostly small messages (read as runs, decoded by their receiver), some over the
/// size handed over undecoded, a few large enough to span many reads.
fn payload_for(n: i64) -> Term {
    let len = match n {
        n if n % 997 == 0 => 200_000,
        n if n % 37 == 0 => 3_000,
        _ => 8,
    };
    Term::binary(&vec![(n % 251) as u8; len])
}

#[test]
fn messages_read_by_waiting_workers_and_the_io_thread_all_arrive_in_order() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let a = net("wioa", epmd, &cookie);
    let b = net("wiob", epmd, &cookie);
    assert!(a.connect(b.name().as_str()).is_ok());
    let sinks: Vec<Pid> = (0..SINKS)
        .map(|i| {
            if i % 2 == 0 {
                let mut seen = Seen::new();
                b.node().spawn(move |ctx: &mut Ctx, m: Term| {
                    if let Some((to, report)) = seen.take(&m) {
                        ctx.send(to, report);
                    }
                    Flow::Continue
                })
            } else {
                b.node().spawn(Task::new(|ctx: &mut Ctx| {
                    let mut seen = Seen::new();
                    loop {
                        let m = ctx.receive();
                        if let Some((to, report)) = seen.take(&m) {
                            ctx.send(to, report);
                            return;
                        }
                    }
                }))
            }
        })
        .collect();
    let mut me = a.node().attach();
    let report = me.pid();
    for s in 0..SENDERS {
        let sinks = sinks.clone();
        a.node().spawn(Task::new(move |ctx: &mut Ctx| {
            for n in 1..=PER_PAIR {
                for &sink in &sinks {
                    ctx.send(sink, term!({:seq, (s as i64), n, (payload_for(n))}));
                }
                // Bursts and gaps: the sinks' workers go from busy to waiting and back,
                // so reading moves between them and the I/O thread.
                if n % 64 == 0 {
                    let _ = ctx.receive_timeout(Duration::from_micros(200));
                }
            }
            for &sink in &sinks {
                ctx.send(sink, term!({:done, report}));
            }
        }));
    }
    let per_sender_sum: i64 = PER_PAIR * SENDERS as i64;
    for _ in 0..SINKS {
        let m = me
            .receive_timeout(SOON * 6)
            .unwrap_or_else(|| panic!("a sink's report; mailbox {:?}", me.flush()));
        assert_eq!(
            m,
            term!({:seen, per_sender_sum, true}),
            "every message, in order"
        );
    }
    drop(me);
    a.shutdown();
    b.shutdown();
}

/// A worker that read its process's message itself, and then computes without looking
/// again, leaves the I/O thread standing by for a bounded time only: a message for
/// another process of its node is read while it still computes, not after.
#[test]
fn a_worker_that_computes_after_reading_does_not_hold_up_the_node_s_other_messages() {
    const COMPUTE: Duration = Duration::from_millis(600);
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let a = net("wioc", epmd, &cookie);
    // One worker: no idle worker of b looks for work while the only one computes.
    let b = net_with_workers("wiod", epmd, &cookie, 1);
    assert!(a.connect(b.name().as_str()).is_ok());
    let epoch = std::time::Instant::now();
    let since_epoch = move || epoch.elapsed().as_micros() as i64;
    let mut waiter = b.node().attach();
    let waiter_pid = waiter.pid();
    // Answers pings (its worker reads them itself, waiting in the spin of a receive),
    // then, told to, computes for a while without looking.
    let computer = b.node().spawn(Task::new(move |ctx: &mut Ctx| {
        loop {
            let m = ctx.receive();
            if let Some([Term::Pid(from)]) = m.tagged("ping") {
                ctx.send(*from, term!(:pong));
            } else if let Some([Term::Pid(report)]) = m.tagged("compute") {
                let report = *report;
                ctx.send(report, term!({:computing, (since_epoch())}));
                let start = std::time::Instant::now();
                while start.elapsed() < COMPUTE {
                    std::hint::spin_loop();
                }
                ctx.send(report, term!({:computed, (since_epoch())}));
                return;
            }
        }
    }));
    let mut me = a.node().attach();
    // The waiter is blocked in its receive (its spin long over) before the ping-pong.
    me.send(waiter_pid, term!(:warm));
    assert_eq!(waiter.receive_timeout(SOON), Some(term!(:warm)));
    let waiting = std::thread::spawn(move || {
        let m = waiter.receive_timeout(SOON);
        (m, since_epoch())
    });
    let ping = term!({:ping, (me.pid())});
    for _ in 0..2_000 {
        me.send(computer, ping.clone());
        assert_eq!(me.receive_timeout(SOON), Some(term!(:pong)));
    }
    me.send(computer, term!({:compute, (me.pid())}));
    let started = me
        .receive_match(|m| m.tagged("computing").is_some(), Some(SOON))
        .expect("the computer starts");
    let started = started.tagged("computing").unwrap()[0].as_int().unwrap();
    me.send(waiter_pid, term!(:while_computing));
    let (m, arrived) = waiting.join().expect("the waiter");
    assert_eq!(m, Some(term!(:while_computing)));
    let done = me
        .receive_match(|m| m.tagged("computed").is_some(), Some(SOON))
        .expect("the computer ends");
    let done = done.tagged("computed").unwrap()[0].as_int().unwrap();
    assert!(
        arrived < done,
        "the message arrived at {arrived} us, after the computation that ran from \
         {started} to {done} us ended"
    );
    drop(me);
    a.shutdown();
    b.shutdown();
}
