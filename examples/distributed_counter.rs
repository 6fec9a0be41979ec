// cargo run --release --example distributed_counter
//! Drill 3's `DistributedCounter` as a Rust reader of the chapter would write it: a
//! typed server registered `{:global, DistributedCounter}` on node1, incremented and
//! read from node2 through a typed handle. Two named nodes in this OS process, on a
//! private port mapper; exits non-zero if the count is wrong.
//!
//! ```elixir
//! GenServer.start_link(__MODULE__, 0, name: {:global, __MODULE__})
//! GenServer.cast({:global, __MODULE__}, :increment)
//! GenServer.call({:global, __MODULE__}, :get)  # => 2
//! ```

use std::process::ExitCode;

use oxbeam::prelude::*;
use serde::{Deserialize, Serialize};

/// The counter's state.
struct DistributedCounter(i64);

/// What a call asks: `:get` on the wire.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    Get,
}

/// What a cast says: `:increment` on the wire.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Cast {
    Increment,
}

impl Server for DistributedCounter {
    type Call = Call;
    type Reply = i64;
    type Cast = Cast;

    fn handle_call(&mut self, _: &mut Ctx, request: Call, _: ReplyTo) -> Reply<i64> {
        match request {
            Call::Get => Reply::Now(self.0),
        }
    }

    fn handle_cast(&mut self, _: &mut Ctx, msg: Cast) -> Flow {
        match msg {
            Cast::Increment => self.0 += 1,
        }
        Flow::Continue
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(count) => {
            println!("DistributedCounter.get() # => {count}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("distributed_counter: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<i64, Box<dyn std::error::Error>> {
    let cookie = format!("counter-{}", std::process::id());
    // node1 hosts a private port mapper (port 0: one the system picks).
    let node1 = Node::builder()
        .name("node1@localhost")
        .cookie(&cookie)
        .port_mapper(0)
        .start()?;
    let epmd = node1.net().map(|n| n.epmd_port()).ok_or("node1 is named")?;
    let node2 = Node::builder()
        .name("node2@localhost")
        .cookie(&cookie)
        .port_mapper(epmd)
        .start()?;

    // On node1: DistributedCounter.start_link()
    let mut on1 = node1.attach();
    global::start_typed(&mut on1, DistributedCounter(0), "DistributedCounter")?;

    // On node2, once connected: increment twice, then get.
    node2.connect("node1@localhost")?;
    let mut on2 = node2.attach();
    let counter = ServerRef::<DistributedCounter>::global("DistributedCounter");
    counter.cast(&node2, Cast::Increment);
    counter.cast(&node2, Cast::Increment);
    let count = counter.call(&mut on2, Call::Get, Timeout::default())?;
    if count != 2 {
        return Err(format!("expected 2, got {count}").into());
    }
    drop((on1, on2));
    node2.shutdown();
    node1.shutdown();
    Ok(count)
}
