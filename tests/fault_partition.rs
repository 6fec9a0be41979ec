//! Links cut without killing anything: a fault-injecting proxy between nodes A and B
//! (every A-B connection goes through it, both ways) while both keep a direct link to C.
//!
//! What oxbeam does (and `docs/dist-vs-otp.md` compares with OTP):
//! - a silent A-B cut (blackhole) is noticed by tick within the tick time; A and B each
//!   declare the other down and keep C; C keeps both (a partial mesh: these nodes run
//!   with `prevent_overlapping_partitions` off, OTP's `false`; the default, OTP 25's
//!   `true`, is tested in `fault_overlapping_partitions.rs`);
//! - A's global names vanish on B (B saw A go down) but stay on C; pg drops A's members on
//!   B alike; traffic A-C and B-C goes on;
//! - after the heal, the next send re-forms the A-B link and global and pg resync;
//! - a clean cut (connections closed) is noticed at once; a slow link is not a dead one.

mod support;

use std::time::{Duration, Instant};

use oxbeam::dist::{self, global, pg};
use oxbeam::node::Net;
use oxbeam::rt::{Ctx, Flow};
use oxbeam::term::{Atom, Term, term};
use support::proxy::{Mode, Proxy};
use support::{PortMapper, SOON, net_configured, test_cookie, wait_for};

/// The tick time `support::net` gives nodes.
const TICK: Duration = Duration::from_secs(2);

struct Cluster {
    /// The cluster's port mapper, kept for the whole test.
    mapper: PortMapper,
    a: Net,
    b: Net,
    c: Net,
    ab: Proxy,
    ba: Proxy,
}

fn cluster(prefix: &str) -> Cluster {
    let mapper = PortMapper::start();
    let (port, cookie) = (mapper.port(), test_cookie());
    let partial = |c: &mut oxbeam::node::NetConfig| c.prevent_overlapping_partitions = false;
    let a = net_configured(&format!("{prefix}a"), port, &cookie, partial);
    let b = net_configured(&format!("{prefix}b"), port, &cookie, partial);
    let c = net_configured(&format!("{prefix}c"), port, &cookie, partial);
    for n in [&a, &b, &c] {
        dist::start(n).unwrap();
    }
    // A reaches B only through `ab`, B reaches A only through `ba`.
    let ab = Proxy::start(b.address().port());
    let ba = Proxy::start(a.address().port());
    a.set_peer_port(b.name(), Some(ab.port));
    b.set_peer_port(a.name(), Some(ba.port));
    assert!(a.connect(b.name().as_str()).is_ok());
    assert!(a.connect(c.name().as_str()).is_ok());
    assert!(b.connect(c.name().as_str()).is_ok());
    for n in [&a, &b, &c] {
        wait_for("a full mesh", SOON, || {
            let seen = n.nodes();
            (seen.len() == 2, seen)
        });
    }
    assert!(
        ab.forwarded() + ba.forwarded() > 0,
        "A-B traffic goes through the proxy"
    );
    Cluster {
        mapper,
        a,
        b,
        c,
        ab,
        ba,
    }
}

fn sorted(mut v: Vec<Atom>) -> Vec<Atom> {
    v.sort();
    v
}

fn idle(_: &mut Ctx, _: Term) -> Flow {
    Flow::Continue
}

/// Echoes `{from, x}` back as `x`.
fn echo(ctx: &mut Ctx, msg: Term) -> Flow {
    if let Some([Term::Pid(from), x]) = msg.as_tuple() {
        ctx.send(*from, x.clone());
    }
    Flow::Continue
}

#[test]
fn a_silent_cut_between_two_nodes_leaves_a_partial_mesh_and_heals() {
    let Cluster {
        mapper: _mapper,
        a,
        b,
        c,
        ab,
        ba,
    } = cluster("pp");
    // A global name on A, a pg member on B, an echo on C.
    let on_a = a.node().spawn(idle);
    let on_b = b.node().spawn(idle);
    let echo_c = c.node().spawn(echo);
    let mut me_a = a.node().attach();
    let mut me_b = b.node().attach();
    assert!(global::register_name(&mut me_a, Atom::new("pp_name"), on_a).is_ok());
    pg::join(&mut me_b, pg::default_scope(), term!(:pp_group), &[on_b]).unwrap();
    let group = term!(:pp_group);
    wait_for("B sees A's name, A sees B's member", SOON, || {
        let name = global::whereis_name(b.node(), Atom::new("pp_name"));
        let members = pg::get_members(a.node(), pg::default_scope(), &group);
        (name == Some(on_a) && members == vec![on_b], (name, members))
    });

    // Cut A-B silently: both proxies swallow everything.
    let cut = Instant::now();
    ab.set(Mode::Blackhole);
    ba.set(Mode::Blackhole);
    wait_for("A and B declare each other down", TICK * 3, || {
        let (na, nb) = (a.nodes(), b.nodes());
        (na == vec![c.name()] && nb == vec![c.name()], (na, nb))
    });
    let noticed = cut.elapsed();
    assert!(noticed >= TICK / 2, "not before the tick time: {noticed:?}");
    // C still sees both: a partial mesh.
    assert_eq!(sorted(c.nodes()), sorted(vec![a.name(), b.name()]));
    // B forgot A's name and A forgot B's member; C keeps the name.
    wait_for("names and members of the far side gone", SOON, || {
        let name_b = global::whereis_name(b.node(), Atom::new("pp_name"));
        let members_a = pg::get_members(a.node(), pg::default_scope(), &group);
        (
            name_b.is_none() && members_a.is_empty(),
            (name_b, members_a),
        )
    });
    assert_eq!(
        global::whereis_name(c.node(), Atom::new("pp_name")),
        Some(on_a)
    );
    // A-C traffic goes on.
    me_a.send(echo_c, term!({(me_a.pid()), :still_there}));
    assert_eq!(me_a.receive_timeout(SOON), Some(term!(:still_there)));
    // The mesh does not repair itself around the cut: for two tick times A and B stay
    // apart (a dial through the blackholed proxy cannot complete its handshake).
    let watch_until = Instant::now() + TICK * 2;
    while Instant::now() < watch_until {
        assert!(!a.nodes().contains(&b.name()), "A-B came back while cut");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Heal: the next send from A to B re-forms the link, and global and pg resync.
    ab.set(Mode::Pass);
    ba.set(Mode::Pass);
    wait_for("A and B connected again", SOON * 2, || {
        me_a.send(on_b, term!(:knock));
        let (na, nb) = (a.nodes(), b.nodes());
        (na.len() == 2 && nb.len() == 2, (na, nb))
    });
    assert!(global::sync(&mut me_a, SOON).is_ok());
    wait_for("names and members back on both sides", SOON, || {
        let name_b = global::whereis_name(b.node(), Atom::new("pp_name"));
        let members_a = pg::get_members(a.node(), pg::default_scope(), &group);
        (
            name_b == Some(on_a) && members_a == vec![on_b],
            (name_b, members_a),
        )
    });
    drop(me_a);
    drop(me_b);
    for n in [a, b, c] {
        n.shutdown();
    }
}

#[test]
fn a_clean_cut_is_noticed_at_once_and_a_slow_link_is_not_a_dead_one() {
    let Cluster {
        mapper: _mapper,
        a,
        b,
        c,
        ab,
        ba,
    } = cluster("pq");
    let echo_b = b.node().spawn(echo);
    let mut me = a.node().attach();
    // Slow, not dead: 300 ms each way for longer than the tick time.
    ab.delay(Duration::from_millis(300));
    ba.delay(Duration::from_millis(300));
    let slow_until = Instant::now() + TICK * 2;
    let mut round_trips = 0;
    while Instant::now() < slow_until {
        let t = Instant::now();
        me.send(echo_b, term!({(me.pid()), round_trips}));
        assert_eq!(me.receive_timeout(SOON), Some(Term::Int(round_trips)));
        assert!(
            t.elapsed() >= Duration::from_millis(500),
            "the delay applies"
        );
        round_trips += 1;
        assert!(
            a.nodes().contains(&b.name()),
            "no false nodedown on a slow link"
        );
    }
    assert!(round_trips >= 2);
    // A clean cut: the proxy closes both connections; both sides see it at once.
    a.monitor_nodes(me.pid(), oxbeam::node::NodeMonitor::On);
    let cut = Instant::now();
    ab.set(Mode::Drop);
    ba.set(Mode::Drop);
    let down = me.receive_timeout(SOON).expect("nodedown");
    assert_eq!(down, term!({:nodedown, (b.name())}));
    assert!(
        cut.elapsed() < TICK,
        "noticed before any tick: {:?}",
        cut.elapsed()
    );
    wait_for("B sees A go too", SOON, || {
        let nb = b.nodes();
        (nb == vec![c.name()], nb)
    });
    drop(me);
    for n in [a, b, c] {
        n.shutdown();
    }
}
