//! The one `Node` of the facade: a local node and a named one are the same type, the
//! cluster services are on by default (and off when asked), errors are typed, and a
//! process reaches the whole node through `ctx.node()`.
mod support;

use oxbeam::node::{ConnectError, NetStartError, NodeNameError};
use oxbeam::prelude::*;
use support::{SOON, private_mapper, test_cookie};

fn named(short: &str, epmd: u16, cookie: &str) -> NodeBuilder {
    Node::builder()
        .name(&format!("{short}@localhost"))
        .cookie(cookie)
        .port_mapper(epmd)
        .workers(2)
        .tick_time(support::TICK)
}

#[test]
fn a_local_node_runs_processes_and_has_no_distribution() {
    let node = Node::builder().workers(1).start().expect("a local node");
    assert!(!node.is_distributed());
    assert!(node.nodes().is_empty());
    assert_eq!(
        node.connect("x@localhost"),
        Err(ConnectError::NotDistributed)
    );
    let mut me = node.attach();
    let echo = node.spawn(|ctx: &mut Ctx, msg: Term| {
        if let Some([Term::Pid(from), x]) = msg.as_tuple() {
            ctx.send(*from, x.clone());
        }
        Flow::Continue
    });
    me.send(echo, (me.pid(), "hi"));
    assert_eq!(
        me.receive_timeout(SOON).as_ref().and_then(Term::as_str),
        Some("hi")
    );
    drop(me);
    node.shutdown();
}

#[test]
fn a_named_node_starts_its_cluster_services_by_default() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let a = named("fna", epmd, &cookie).start().expect("a starts");
    let b = named("fnb", epmd, &cookie).start().expect("b starts");
    assert!(a.is_distributed());
    assert!(global::is_running(&a) && global::is_running(&b));
    // A name registered on a is seen on b once b connected: connect waits for global's
    // sync, so no poll is needed.
    let mut on_a = a.attach();
    let me = on_a.pid();
    assert!(global::register_name(&mut on_a, Atom::new("fn_counter"), me).is_ok());
    b.connect("fna@localhost").expect("b connects to a");
    assert_eq!(global::whereis_name(&b, Atom::new("fn_counter")), Some(me));
    assert_eq!(b.nodes(), vec![Atom::new("fna@localhost")]);
    // Inside a process, ctx.node() reaches the whole node.
    let mut on_b = b.attach();
    let reply_to = on_b.pid();
    b.spawn_task(move |ctx: &mut Ctx| {
        let cluster = ctx.node().cluster();
        let nodes: Vec<Term> = cluster.nodes().into_iter().map(Term::Atom).collect();
        ctx.send(reply_to, (cluster.is_distributed(), Term::list(nodes)));
    });
    assert_eq!(
        on_b.receive_timeout(SOON),
        Some(Term::from((true, term!([:"fna@localhost"]))))
    );
    drop(on_a);
    drop(on_b);
    a.shutdown();
    b.shutdown();
}

#[test]
fn without_services_a_node_is_distribution_alone() {
    let (_mapper, epmd) = private_mapper();
    let node = named("fnbare", epmd, &test_cookie())
        .without_services()
        .start()
        .expect("starts");
    assert!(node.is_distributed());
    assert!(!global::is_running(&node));
    node.shutdown();
}

#[test]
fn start_errors_say_what_happened() {
    let (_mapper, epmd) = private_mapper();
    match Node::builder().name("no-host").port_mapper(epmd).start() {
        Err(NodeError::Net(NetStartError::BadName(why))) => {
            assert_eq!(why, NodeNameError::NoHost("no-host".into()))
        }
        other => panic!("a bad name: {other:?}"),
    }
    let cookie = test_cookie();
    let first = named("fntwice", epmd, &cookie).start().expect("the first");
    match named("fntwice", epmd, &cookie).start() {
        Err(NodeError::Net(NetStartError::PortMapper { port, .. })) => assert_eq!(port, epmd),
        other => panic!("a name taken: {other:?}"),
    }
    first.shutdown();
}

#[test]
fn sync_on_a_node_without_the_cluster_services_says_so() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let bare = named("fnbare", epmd, &cookie)
        .without_services()
        .start()
        .expect("a node without services");
    let full = named("fnfull", epmd, &cookie).start().expect("a node");
    bare.connect("fnfull@localhost").expect("connect");
    let mut me = bare.attach();
    assert_eq!(
        global::sync(&mut me, SOON),
        Err(oxbeam::dist::SyncError::NotRunning)
    );
    drop(me);
    bare.shutdown();
    full.shutdown();
}

#[test]
fn the_node_lists_monitors_and_spawns_across_nodes() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let a = named("fa5a", epmd, &cookie).start().unwrap();
    let b = named("fa5b", epmd, &cookie).start().unwrap();
    assert_eq!(a.port_mapper(), Some(epmd));
    assert!(a.connect(b.name().as_str()).is_ok());
    assert_eq!(a.list(NodeList::This), vec![a.name()]);
    assert_eq!(a.list(NodeList::Visible), vec![b.name()]);
    assert_eq!(a.list(NodeList::Connected), vec![b.name()]);
    assert!(a.list(NodeList::Hidden).is_empty());
    let mut me = a.attach();
    // Node.spawn_monitor(b, Kernel, :node, []): runs on b, the DOWN comes back normal.
    let (pid, reference) = a
        .spawn_on(
            &mut me,
            b.name(),
            ("Kernel", "node", vec![]),
            SpawnRequest::MONITOR,
        )
        .unwrap();
    assert_eq!(pid.node(), b.name());
    let reference = reference.expect("a monitor");
    let down = me
        .receive_match(|m| m.tagged("DOWN").is_some(), Some(SOON))
        .unwrap();
    assert_eq!(down, term!({:DOWN, reference, :process, pid, :normal}));
    // Here, and a function nobody registered.
    let (here, _) = a
        .spawn_on(
            &mut me,
            a.name(),
            ("Kernel", "node", vec![]),
            SpawnRequest::default(),
        )
        .unwrap();
    assert_eq!(here.node(), a.name());
    assert!(matches!(
        a.spawn_on(
            &mut me,
            b.name(),
            ("Nope", "nothing", vec![]),
            SpawnRequest::default()
        ),
        Err(oxbeam::node::RemoteSpawnError::Undefined(_))
    ));
    // Node.monitor(b, true), then b goes: {:nodedown, b}.
    a.monitor_node(me.pid(), b.name(), true);
    b.shutdown();
    let down = me
        .receive_match(|m| m.tagged("nodedown").is_some(), Some(SOON))
        .unwrap();
    assert_eq!(down, term!({:nodedown, (b.name())}));
    drop(me);
    a.shutdown();
    // A local node spawns here only, linked and monitored before the process runs.
    let local = Node::builder().workers(1).start().unwrap();
    local
        .functions()
        .register(Atom::new("t"), Atom::new("noop"), 0, |_: &mut Ctx, _| {
            Term::ok()
        });
    let mut me = local.attach();
    let (pid, reference) = local
        .spawn_on(
            &mut me,
            local.name(),
            ("t", "noop", vec![]),
            SpawnRequest::MONITOR,
        )
        .unwrap();
    let reference = reference.unwrap();
    let down = me
        .receive_match(|m| m.tagged("DOWN").is_some(), Some(SOON))
        .unwrap();
    assert_eq!(down, term!({:DOWN, reference, :process, pid, :normal}));
    assert_eq!(
        local.spawn_on(
            &mut me,
            "x@localhost",
            ("t", "noop", vec![]),
            SpawnRequest::default()
        ),
        Err(oxbeam::node::RemoteSpawnError::NoConnection)
    );
    drop(me);
    local.shutdown();
}
