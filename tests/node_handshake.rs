//! The node handshake state machines, pumped against each other without sockets: a full
//! handshake, wrong cookies on either side, replayed transcripts, version negotiation,
//! admission, the peer-name check, every out-of-order message, the codec's checks.
//! Property tests are in `node_handshake_props.rs`.

#[path = "support/handshake_pump.rs"]
mod pump;

use oxbeam::node::handshake::{
    Acceptor, HandshakeError, HandshakeMsg, Initiator, MAX_NAME_LEN, MAX_REASON_LEN, MAX_VERSION,
    MIN_VERSION, Nonce, PeerInfo, RefuseReason, Step, check_node_name, fresh_nonce,
};
use pump::*;

#[test]
fn full_handshake_succeeds_on_both_sides() {
    let out = handshake(COOKIE, COOKIE, Ok(()));
    assert_eq!(
        out.initiator,
        Some(Ok(PeerInfo {
            identity: bob(),
            version: MAX_VERSION
        }))
    );
    assert_eq!(
        out.acceptor,
        Some(Ok(PeerInfo {
            identity: alice(),
            version: MAX_VERSION
        }))
    );
    let kinds: Vec<_> = out.transcript.iter().map(HandshakeMsg::kind).collect();
    assert_eq!(kinds, ["Hello", "Challenge", "Proof", "Accept"]);
}

#[test]
fn cookie_never_appears_in_the_transcript() {
    let out = handshake(COOKIE, COOKIE, Ok(()));
    for msg in &out.transcript {
        let bytes = msg.encode();
        assert!(!bytes.windows(COOKIE.len()).any(|w| w == COOKIE), "{msg:?}");
    }
}

#[test]
fn without_expected_peer_any_name_is_accepted() {
    let (mut i, hello) = Initiator::new(alice(), None, COOKIE);
    let mut a = Acceptor::new(bob(), COOKIE);
    let out = pump(&mut i, hello, &mut a, Ok(()), |_, b| b);
    assert_eq!(out.initiator.unwrap().unwrap().identity, bob());
}

#[test]
fn wrong_cookie_is_caught_by_the_acceptor() {
    let out = handshake(COOKIE, b"OTHERCOOKIE", Ok(()));
    assert_eq!(out.acceptor, Some(Err(HandshakeError::BadCookie)));
    assert_eq!(
        out.initiator,
        Some(Err(HandshakeError::Refused(RefuseReason::BadCookie)))
    );
    assert_eq!(
        out.transcript.last(),
        Some(&HandshakeMsg::Refuse {
            reason: RefuseReason::BadCookie
        })
    );
}

#[test]
fn acceptor_without_our_cookie_is_caught_by_the_initiator() {
    // The acceptor cannot produce mac_a without the cookie; the best it can do is send
    // back some other MAC, such as the initiator's own proof (a reflection).
    let (mut i, hello) = Initiator::new(alice(), None, COOKIE);
    let mut a = Acceptor::new(bob(), COOKIE);
    let out = pump(&mut i, hello, &mut a, Ok(()), |_, b| b);
    let HandshakeMsg::Proof { mac: mac_i } = out.transcript[2] else {
        panic!()
    };
    let challenge = out.transcript[1].clone();
    for forged in [mac_i, [0u8; 32]] {
        let (mut i, _hello) = Initiator::new(alice(), None, COOKIE);
        let Step::Send(HandshakeMsg::Proof { .. }) = i.on_message(challenge.clone()) else {
            panic!()
        };
        assert_eq!(
            i.on_message(HandshakeMsg::Accept { mac: forged }),
            Step::Failed(HandshakeError::BadCookie)
        );
    }
}

#[test]
fn replayed_initiator_transcript_fails_against_a_fresh_acceptor() {
    let nonce_a: Nonce = [1; 32];
    let (mut i, hello) = Initiator::new(alice(), None, COOKIE);
    let mut a = Acceptor::new_with_nonce(bob(), COOKIE, nonce_a);
    let recorded = pump(&mut i, hello, &mut a, Ok(()), |_, b| b).transcript;
    let (hello, proof) = (recorded[0].clone(), recorded[2].clone());

    // The same acceptor nonce again: the replay would work, so the nonce is what stops it.
    let mut same = Acceptor::new_with_nonce(bob(), COOKIE, nonce_a);
    assert!(matches!(
        same.on_message(hello.clone()),
        Step::NeedAdmission(_)
    ));
    assert!(matches!(same.admit(Ok(())), Step::Send(_)));
    assert!(matches!(
        same.on_message(proof.clone()),
        Step::SendAndDone(..)
    ));

    let mut fresh = Acceptor::new(bob(), COOKIE);
    assert!(matches!(fresh.on_message(hello), Step::NeedAdmission(_)));
    assert!(matches!(
        fresh.admit(Ok(())),
        Step::Send(HandshakeMsg::Challenge { .. })
    ));
    assert_eq!(
        fresh.on_message(proof),
        Step::SendAndFail(
            HandshakeMsg::Refuse {
                reason: RefuseReason::BadCookie
            },
            HandshakeError::BadCookie
        )
    );
}

#[test]
fn replayed_acceptor_transcript_fails_against_a_fresh_initiator() {
    let nonce_i: Nonce = [2; 32];
    let (mut i, hello) = Initiator::new_with_nonce(alice(), None, COOKIE, nonce_i);
    let mut a = Acceptor::new(bob(), COOKIE);
    let recorded = pump(&mut i, hello, &mut a, Ok(()), |_, b| b).transcript;
    let (challenge, accept) = (recorded[1].clone(), recorded[3].clone());

    let (mut same, _) = Initiator::new_with_nonce(alice(), None, COOKIE, nonce_i);
    assert!(matches!(same.on_message(challenge.clone()), Step::Send(_)));
    assert!(matches!(same.on_message(accept.clone()), Step::Done(_)));

    let (mut fresh, _) = Initiator::new(alice(), None, COOKIE);
    assert!(matches!(
        fresh.on_message(challenge),
        Step::Send(HandshakeMsg::Proof { .. })
    ));
    assert_eq!(
        fresh.on_message(accept),
        Step::Failed(HandshakeError::BadCookie)
    );
}

#[test]
fn fresh_nonces_differ() {
    assert_ne!(fresh_nonce(), fresh_nonce());
}

#[test]
fn acceptor_picks_the_highest_common_version() {
    for (min, max) in [
        (MIN_VERSION, MAX_VERSION),
        (0, MAX_VERSION + 5),
        (MAX_VERSION, u16::MAX),
    ] {
        let mut a = Acceptor::new(bob(), COOKIE);
        assert_eq!(a.on_message(hello(min, max)), Step::NeedAdmission(alice()));
        let Step::Send(HandshakeMsg::Challenge { version, .. }) = a.admit(Ok(())) else {
            panic!()
        };
        assert_eq!(version, MAX_VERSION, "offer {min}..={max}");
    }
}

#[test]
fn acceptor_refuses_when_no_version_is_common() {
    for (min, max) in [
        (MAX_VERSION + 1, MAX_VERSION + 3),
        (0, MIN_VERSION - 1),
        (MAX_VERSION, MIN_VERSION - 1),
    ] {
        let mut a = Acceptor::new(bob(), COOKIE);
        assert_eq!(
            a.on_message(hello(min, max)),
            Step::SendAndFail(
                HandshakeMsg::Refuse {
                    reason: RefuseReason::Version
                },
                HandshakeError::NoCommonVersion
            ),
            "offer {min}..={max}"
        );
    }
}

#[test]
fn initiator_rejects_a_version_outside_its_offer() {
    for version in [0, MAX_VERSION + 1, u16::MAX] {
        let (mut i, _) = Initiator::new(alice(), None, COOKIE);
        assert_eq!(
            i.on_message(challenge(version, &bob().name)),
            Step::Failed(HandshakeError::NoCommonVersion)
        );
    }
    let (mut i, _) = Initiator::new(alice(), None, COOKIE);
    assert_eq!(
        i.on_message(HandshakeMsg::Refuse {
            reason: RefuseReason::Version
        }),
        Step::Failed(HandshakeError::Refused(RefuseReason::Version))
    );
}

#[test]
fn admission_refusal_reaches_the_initiator() {
    let long = "x".repeat(MAX_REASON_LEN + 40);
    for reason in [
        RefuseReason::Duplicate,
        RefuseReason::Simultaneous,
        RefuseReason::NotAllowed("not on the list".into()),
        RefuseReason::NotAllowed(long.clone()),
    ] {
        let out = handshake(COOKIE, COOKIE, Err(reason.clone()));
        let sent = match reason {
            RefuseReason::NotAllowed(text) if text.len() > MAX_REASON_LEN => {
                RefuseReason::NotAllowed(text[..MAX_REASON_LEN].to_owned())
            }
            other => other,
        };
        assert_eq!(
            out.acceptor,
            Some(Err(HandshakeError::Refused(sent.clone())))
        );
        assert_eq!(out.initiator, Some(Err(HandshakeError::Refused(sent))));
        assert_eq!(out.transcript.len(), 2);
    }
}

#[test]
fn wrong_peer_name_fails_the_initiator() {
    let (mut i, _) = Initiator::new(alice(), Some("carol@localhost".into()), COOKIE);
    assert_eq!(
        i.on_message(challenge(MAX_VERSION, &bob().name)),
        Step::Failed(HandshakeError::WrongPeer {
            expected: "carol@localhost".into(),
            got: bob().name
        })
    );
}

fn all_messages() -> Vec<HandshakeMsg> {
    vec![
        hello(MIN_VERSION, MAX_VERSION),
        challenge(MAX_VERSION, &bob().name),
        HandshakeMsg::Proof { mac: [5; 32] },
        HandshakeMsg::Accept { mac: [6; 32] },
        HandshakeMsg::Refuse {
            reason: RefuseReason::Duplicate,
        },
    ]
}

fn assert_unexpected(step: Step, state: &str, got: &str) {
    match step {
        Step::Failed(HandshakeError::UnexpectedMessage { state: s, got: g })
            if s == state && g == got => {}
        other => panic!("in {state} after {got}: expected UnexpectedMessage, got {other:?}"),
    }
}

/// An initiator driven into `state` with the real acceptor's help.
fn initiator_in(state: &str) -> Initiator {
    let (mut i, hello) = Initiator::new(alice(), None, COOKIE);
    let mut a = Acceptor::new(bob(), COOKIE);
    if state == "await-challenge" {
        return i;
    }
    let _ = a.on_message(hello);
    let Step::Send(ch) = a.admit(Ok(())) else {
        panic!()
    };
    let Step::Send(proof) = i.on_message(ch) else {
        panic!()
    };
    match state {
        "await-accept" => {}
        "done" => {
            let Step::SendAndDone(accept, _) = a.on_message(proof) else {
                panic!()
            };
            assert!(matches!(i.on_message(accept), Step::Done(_)));
        }
        "failed" => assert_unexpected(i.on_message(hello_msg()), "await-accept", "Hello"),
        _ => unreachable!(),
    }
    i
}

fn hello_msg() -> HandshakeMsg {
    hello(MIN_VERSION, MAX_VERSION)
}

#[test]
fn initiator_rejects_every_out_of_order_message() {
    let expected = [
        ("await-challenge", ["Challenge", "Refuse"]),
        ("await-accept", ["Accept", "Refuse"]),
    ];
    for state in ["await-challenge", "await-accept", "done", "failed"] {
        for msg in all_messages() {
            let allowed = expected
                .iter()
                .any(|(s, kinds)| *s == state && kinds.contains(&msg.kind()));
            if allowed {
                continue;
            }
            let mut i = initiator_in(state);
            let kind = msg.kind();
            assert_unexpected(i.on_message(msg), state, kind);
            // ... and it stays failed, whatever comes next.
            for again in all_messages() {
                let kind = again.kind();
                assert_unexpected(i.on_message(again), "failed", kind);
            }
        }
    }
}

/// An acceptor driven into `state` with the real initiator's help.
fn acceptor_in(state: &str) -> Acceptor {
    let (mut i, hello) = Initiator::new(alice(), None, COOKIE);
    let mut a = Acceptor::new(bob(), COOKIE);
    if state == "await-hello" {
        return a;
    }
    assert!(matches!(a.on_message(hello), Step::NeedAdmission(_)));
    if state == "await-admission" {
        return a;
    }
    let Step::Send(ch) = a.admit(Ok(())) else {
        panic!()
    };
    match state {
        "await-proof" => {}
        "done" => {
            let Step::Send(proof) = i.on_message(ch) else {
                panic!()
            };
            assert!(matches!(a.on_message(proof), Step::SendAndDone(..)));
        }
        "failed" => assert_unexpected(a.on_message(hello_msg()), "await-proof", "Hello"),
        _ => unreachable!(),
    }
    a
}

#[test]
fn acceptor_rejects_every_out_of_order_message() {
    let expected = [("await-hello", "Hello"), ("await-proof", "Proof")];
    for state in [
        "await-hello",
        "await-admission",
        "await-proof",
        "done",
        "failed",
    ] {
        for msg in all_messages() {
            if expected.contains(&(state, msg.kind())) {
                continue;
            }
            let mut a = acceptor_in(state);
            let kind = msg.kind();
            assert_unexpected(a.on_message(msg), state, kind);
            assert_unexpected(a.admit(Ok(())), "failed", "admission decision");
            for again in all_messages() {
                let kind = again.kind();
                assert_unexpected(a.on_message(again), "failed", kind);
            }
        }
        if state != "await-admission" {
            let mut a = acceptor_in(state);
            assert_unexpected(a.admit(Ok(())), state, "admission decision");
        }
    }
}

#[test]
fn every_message_round_trips_through_the_codec() {
    let mut msgs = all_messages();
    msgs.push(HandshakeMsg::Refuse {
        reason: RefuseReason::NotAllowed("x".repeat(MAX_REASON_LEN)),
    });
    for msg in msgs {
        assert_eq!(HandshakeMsg::decode(&msg.encode()), Ok(msg));
    }
}

#[test]
fn decode_rejects_bad_input() {
    let malformed = |bytes: &[u8]| {
        matches!(
            HandshakeMsg::decode(bytes),
            Err(HandshakeError::Malformed(_))
        )
    };
    assert!(malformed(&[]));
    assert!(malformed(&[200]));
    let mut trailing = hello_msg().encode();
    trailing.push(0);
    assert!(malformed(&trailing));
    let long_name = format!("{}@h", "n".repeat(MAX_NAME_LEN));
    for name in [
        long_name.as_str(),
        "",
        "noat",
        "@host",
        "name@",
        "a@b@c",
        "a b@c",
        "a\n@c",
    ] {
        assert!(check_node_name(name).is_err(), "{name:?}");
        assert!(malformed(&challenge(1, name).encode()), "{name:?}");
        let mut a = Acceptor::new(bob(), COOKIE);
        let HandshakeMsg::Challenge { name, .. } = challenge(1, name) else {
            unreachable!()
        };
        let bad = HandshakeMsg::Hello {
            min_version: 1,
            max_version: 1,
            name,
            creation: 0,
            hidden: false,
            nonce_i: [0; 32],
        };
        assert!(matches!(
            a.on_message(bad),
            Step::Failed(HandshakeError::Malformed(_))
        ));
    }
    let long_reason = HandshakeMsg::Refuse {
        reason: RefuseReason::NotAllowed("r".repeat(MAX_REASON_LEN + 1)),
    };
    assert!(malformed(&long_reason.encode()));
}

#[test]
fn errors_say_what_happened() {
    let text = HandshakeError::WrongPeer {
        expected: "a@h".into(),
        got: "b@h".into(),
    }
    .to_string();
    assert!(text.contains("a@h") && text.contains("b@h"), "{text}");
    let text = HandshakeError::Refused(RefuseReason::NotAllowed("banned".into())).to_string();
    assert!(
        text.contains("refused") && text.contains("banned"),
        "{text}"
    );
    let text = HandshakeError::UnexpectedMessage {
        state: "await-proof",
        got: "Hello",
    }
    .to_string();
    assert!(
        text.contains("await-proof") && text.contains("Hello"),
        "{text}"
    );
}

#[test]
fn debug_output_hides_the_cookie() {
    let (i, _) = Initiator::new(alice(), None, COOKIE);
    let a = Acceptor::new(bob(), COOKIE);
    let secret = std::str::from_utf8(COOKIE).unwrap();
    assert!(!format!("{i:?}").contains(secret));
    assert!(!format!("{a:?}").contains(secret));
}
