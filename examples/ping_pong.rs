// cargo run --release --example ping_pong
//! Two processes play ping-pong on one node, while the main thread, attached as a
//! process, watches them with a monitor. The messages are Rust enums, converted to the
//! terms on the right with `oxbeam::term::to_term` and back with `from_term`; in Elixir:
//!
//! ```elixir
//! ponger = spawn(fn -> loop(receive do {:ping, from} -> send(from, :pong) end) end)
//! ref = Process.monitor(ponger)
//! send(ponger, {:ping, self()})       # three rounds, each answered :pong
//! send(ponger, :bye)                  # anything but a ping ends it
//! flush()                             # {:DOWN, ref, :process, ponger, :normal}
//! ```

use std::time::Duration;

use oxbeam::prelude::*;
use oxbeam::term::{from_term, to_term};
use serde::{Deserialize, Serialize};

/// What the ponger is sent: `{:ping, from}`, or `:bye`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ToPonger {
    Ping(Pid),
    Bye,
}

/// Its answer: `:pong`.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Pong {
    Pong,
}

/// What the monitor sends: `{:DOWN, ref, :process, pid, reason}`.
#[derive(Deserialize)]
enum Monitor {
    #[serde(rename = "DOWN")]
    Down(Ref, Atom, Pid, Term),
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let node = Node::builder().start()?;
    let mut me = node.attach();
    // The ponger answers every {:ping, from} with :pong and stops on anything else.
    let pong = to_term(&Pong::Pong)?;
    let ponger = node.spawn(
        move |ctx: &mut Ctx, msg: Term| match from_term::<ToPonger>(&msg) {
            Ok(ToPonger::Ping(from)) => {
                ctx.send(from, pong.clone());
                Flow::Continue
            }
            Ok(ToPonger::Bye) | Err(_) => Flow::stop_normal(),
        },
    );
    let watch = me.monitor(ponger);
    for i in 1..=3 {
        me.send(ponger, to_term(&ToPonger::Ping(me.pid()))?);
        let reply = me.receive_timeout(Duration::from_secs(5)).expect("pong");
        assert_eq!(from_term::<Pong>(&reply)?, Pong::Pong);
        println!("round {i}: {ponger} answered {reply}");
    }
    // Anything but a ping ends the ponger; the monitor tells us how.
    me.send(ponger, to_term(&ToPonger::Bye)?);
    let down = me.receive_timeout(Duration::from_secs(5)).expect("DOWN");
    let Monitor::Down(r, kind, pid, reason) = from_term(&down)?;
    let normal = Term::Atom(Atom::NORMAL);
    assert_eq!(
        (r, kind, pid, reason),
        (watch, Atom::new("process"), ponger, normal)
    );
    println!("{down}");
    drop(me);
    node.shutdown();
    Ok(())
}
