//! Property tests of the node handshake: no input (random bytes, random message
//! sequences, a changed field, a tampered byte) panics a state machine or lets a changed
//! handshake complete.

#[path = "support/handshake_pump.rs"]
mod pump;

use oxbeam::node::handshake::{
    Acceptor, HandshakeError, HandshakeMsg, Initiator, RefuseReason, Step,
};
use proptest::prelude::*;
use pump::*;

fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["alice@localhost", "bob@localhost", "", "x", "a@b@c"])
            .prop_map(String::from),
        "[a-z@ ]{0,12}",
    ]
}

fn any_reason() -> impl Strategy<Value = RefuseReason> {
    prop_oneof![
        Just(RefuseReason::Version),
        Just(RefuseReason::BadCookie),
        Just(RefuseReason::Duplicate),
        Just(RefuseReason::Simultaneous),
        ".{0,8}".prop_map(RefuseReason::NotAllowed),
    ]
}

fn any_msg() -> impl Strategy<Value = HandshakeMsg> {
    let bytes32 = any::<[u8; 32]>();
    prop_oneof![
        (
            0..4u16,
            0..4u16,
            any_name(),
            any::<u32>(),
            any::<bool>(),
            bytes32
        )
            .prop_map(
                |(min_version, max_version, name, creation, hidden, nonce_i)| HandshakeMsg::Hello {
                    min_version,
                    max_version,
                    name,
                    creation,
                    hidden,
                    nonce_i
                }
            ),
        (0..4u16, any_name(), any::<u32>(), any::<bool>(), bytes32).prop_map(
            |(version, name, creation, hidden, nonce_a)| HandshakeMsg::Challenge {
                version,
                name,
                creation,
                hidden,
                nonce_a
            }
        ),
        bytes32.prop_map(|mac| HandshakeMsg::Proof { mac }),
        bytes32.prop_map(|mac| HandshakeMsg::Accept { mac }),
        any_reason().prop_map(|reason| HandshakeMsg::Refuse { reason }),
    ]
}

/// An input to a state machine: a message, or (acceptor only) an admission decision.
#[derive(Clone, Debug)]
enum Input {
    Msg(HandshakeMsg),
    Admit(Result<(), RefuseReason>),
}

fn any_input() -> impl Strategy<Value = Input> {
    prop_oneof![
        4 => any_msg().prop_map(Input::Msg),
        1 => prop_oneof![Just(Ok(())), any_reason().prop_map(Err)].prop_map(Input::Admit),
    ]
}

/// After a failure every input fails as unexpected in state "failed"; after success the
/// next input fails too.
fn check_sticky(steps: &[Step]) {
    let end = steps.iter().position(|s| {
        matches!(
            s,
            Step::Failed(_) | Step::SendAndFail(..) | Step::Done(_) | Step::SendAndDone(..)
        )
    });
    if let Some(end) = end {
        for later in &steps[end + 1..] {
            assert!(
                matches!(
                    later,
                    Step::Failed(HandshakeError::UnexpectedMessage { .. })
                ),
                "after {:?}: {later:?}",
                steps[end]
            );
        }
        if let Some(Step::Failed(HandshakeError::UnexpectedMessage { state, .. })) =
            steps.get(end + 2)
        {
            assert_eq!(*state, "failed");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        // Whatever decodes is a valid message: it survives a round trip.
        if let Ok(msg) = HandshakeMsg::decode(&bytes) {
            prop_assert_eq!(HandshakeMsg::decode(&msg.encode()), Ok(msg));
        }
    }

    #[test]
    fn decoding_mutated_messages_never_panics(msg in any_msg(), at in any::<usize>(), xor in 1..=255u8) {
        let mut bytes = msg.encode();
        let at = at % bytes.len();
        bytes[at] ^= xor;
        let _ = HandshakeMsg::decode(&bytes);
        let _ = HandshakeMsg::decode(&bytes[..at]);
    }

    #[test]
    fn random_sequences_never_panic(inputs in prop::collection::vec(any_input(), 0..12)) {
        let mut a = Acceptor::new(bob(), COOKIE);
        let (mut i, _) = Initiator::new(alice(), Some(bob().name), COOKIE);
        let (mut a_steps, mut i_steps) = (Vec::new(), Vec::new());
        for input in inputs {
            match input {
                Input::Msg(msg) => {
                    i_steps.push(i.on_message(msg.clone()));
                    a_steps.push(a.on_message(msg));
                }
                Input::Admit(decision) => a_steps.push(a.admit(decision)),
            }
        }
        check_sticky(&a_steps);
        check_sticky(&i_steps);
    }

    /// A man in the middle without the cookie changes one byte of one frame: the
    /// handshake never completes on a side that received a changed message (or, for the
    /// acceptor, whose proof covered one).
    #[test]
    fn tampering_never_completes(frame in 0..4usize, at in any::<usize>(), xor in 1..=255u8, expect in any::<bool>()) {
        let (mut i, hello) = Initiator::new(alice(), expect.then(|| bob().name), COOKIE);
        let mut a = Acceptor::new(bob(), COOKIE);
        let mut changed_upto = None;
        let out = pump(&mut i, hello, &mut a, Ok(()), |n, mut bytes| {
            if n == frame {
                let original = HandshakeMsg::decode(&bytes);
                let at = at % bytes.len();
                bytes[at] ^= xor;
                if HandshakeMsg::decode(&bytes) != original {
                    changed_upto = Some(n);
                }
            }
            bytes
        });
        if let Some(n) = changed_upto {
            prop_assert!(!matches!(out.initiator, Some(Ok(_))), "{:?}", out);
            if n < 3 {
                prop_assert!(!matches!(out.acceptor, Some(Ok(_))), "{:?}", out);
            }
        }
    }
}

/// Changes field `k` of `msg` (in a fixed order per kind); false if it has no field `k`.
fn change_field(msg: &mut HandshakeMsg, k: usize) -> bool {
    const EVE: &str = "eve@localhost";
    match (msg, k) {
        (HandshakeMsg::Hello { min_version, .. }, 0) => *min_version -= 1,
        (HandshakeMsg::Hello { max_version, .. }, 1) => *max_version += 1,
        (HandshakeMsg::Hello { name, .. }, 2) => *name = EVE.into(),
        (HandshakeMsg::Hello { creation, .. }, 3) => *creation += 1,
        (HandshakeMsg::Hello { hidden, .. }, 4) => *hidden = !*hidden,
        (HandshakeMsg::Hello { nonce_i, .. }, 5) => nonce_i[31] ^= 1,
        (HandshakeMsg::Challenge { version, .. }, 0) => *version += 1,
        (HandshakeMsg::Challenge { name, .. }, 1) => *name = EVE.into(),
        (HandshakeMsg::Challenge { creation, .. }, 2) => *creation += 1,
        (HandshakeMsg::Challenge { hidden, .. }, 3) => *hidden = !*hidden,
        (HandshakeMsg::Challenge { nonce_a, .. }, 4) => nonce_a[0] ^= 0x80,
        (HandshakeMsg::Proof { mac } | HandshakeMsg::Accept { mac }, 0) => mac[7] ^= 1,
        _ => return false,
    }
    true
}

/// A man in the middle without the cookie changes one field of one message of a live
/// handshake (re-encoding it validly): the side that received it, and the acceptor if the
/// change came before its check of the proof, never completes.
#[test]
fn every_single_field_change_is_detected() {
    let mut tried = 0;
    for frame in 0..4 {
        for k in 0.. {
            let (mut i, hello) = Initiator::new(alice(), None, COOKIE);
            let mut a = Acceptor::new(bob(), COOKIE);
            let mut changed = None;
            let out = pump(&mut i, hello, &mut a, Ok(()), |n, bytes| {
                let mut msg = HandshakeMsg::decode(&bytes).expect("honest frame decodes");
                if n == frame && change_field(&mut msg, k) {
                    changed = Some(msg.clone());
                    return msg.encode();
                }
                bytes
            });
            let Some(changed) = changed else { break };
            tried += 1;
            let what = format!("frame {frame} changed to {changed:?}: {out:?}");
            assert!(!matches!(out.initiator, Some(Ok(_))), "{what}");
            if frame < 3 {
                assert!(!matches!(out.acceptor, Some(Ok(_))), "{what}");
            }
        }
    }
    assert_eq!(tried, 13);
}
