// cargo run --release --example ping_pong
//! Two processes play ping-pong on one node, while the main thread, attached as a
//! process, watches them with a monitor.

use std::time::Duration;

use oxbeam::rt::{Config, Ctx, Flow, Node};
use oxbeam::term::Term;

fn main() {
    let node = Node::start(Config {
        name: "pingpong@localhost".into(),
        ..Config::default()
    });
    let mut me = node.attach();
    // The ponger answers every {:ping, from} with :pong and stops on anything else.
    let ponger = node.spawn(|ctx: &mut Ctx, msg: Term| match msg.tagged("ping") {
        Some([Term::Pid(from)]) => {
            ctx.send(*from, Term::atom("pong"));
            Flow::Continue
        }
        _ => Flow::stop_normal(),
    });
    let watch = me.monitor(ponger);
    for i in 1..=3 {
        me.send(ponger, (Term::atom("ping"), me.pid()));
        let reply = me.receive_timeout(Duration::from_secs(5)).expect("pong");
        println!("round {i}: {} answered {reply}", Term::Pid(ponger));
    }
    // Anything but a ping ends the ponger; the monitor tells us how.
    me.send(ponger, Term::atom("bye"));
    let down = me.receive_timeout(Duration::from_secs(5)).expect("DOWN");
    assert_eq!(
        down.as_tuple().map(|t| t[1].clone()),
        Some(Term::Ref(watch))
    );
    println!("{down}");
    drop(me);
    node.shutdown();
}
