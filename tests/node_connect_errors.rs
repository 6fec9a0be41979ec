//! `Net::connect` says why it failed: each failure a user meets, provoked for real over
//! loopback, gives its own `ConnectError`.
mod support;

use oxbeam::node::ConnectError;
use oxbeam::term::Atom;
use support::{net, private_mapper, refused_port, test_cookie};

#[test]
fn each_connect_failure_has_its_own_error() {
    let (_mapper, epmd) = private_mapper();
    let cookie = test_cookie();
    let a = net("cea", epmd, &cookie);
    let b = net("ceb", epmd, &cookie);
    let other = net("cec", epmd, "ANOTHERCOOKIE");

    // Success, and connecting to itself.
    assert_eq!(a.connect("ceb@localhost"), Ok(()));
    assert_eq!(a.connect("cea@localhost"), Ok(()));

    // A wrong cookie: the peer refuses our proof.
    assert_eq!(a.connect("cec@localhost"), Err(ConnectError::BadCookie));
    assert_eq!(other.connect("ceb@localhost"), Err(ConnectError::BadCookie));

    // A name the port mapper does not know.
    match a.connect("nobody@localhost") {
        Err(ConnectError::NotRegistered { name }) => assert_eq!(name, "nobody"),
        got => panic!("an unregistered name: {got:?}"),
    }

    // Not a node name at all.
    assert!(matches!(
        a.connect("no-at-sign"),
        Err(ConnectError::BadName(_))
    ));

    // A port where nothing listens.
    let (_held, port) = refused_port();
    a.set_peer_port(Atom::new("ghost@localhost"), Some(port));
    let ghost = a.connect("ghost@localhost");
    assert!(
        matches!(ghost, Err(ConnectError::Unreachable(_))),
        "nothing listens: {ghost:?}"
    );

    // Each error says what to check.
    assert!(ConnectError::BadCookie.to_string().contains("cookie"));
    for n in [a, b, other] {
        n.shutdown();
    }
}
