//! Shared by the handshake tests (`node_handshake*.rs` include it with `#[path]`): two
//! identities, a cookie, and a pump that runs an Initiator against an Acceptor through
//! the wire codec, with a hook to tamper with each frame.
#![allow(dead_code)]

use oxbeam::node::handshake::{
    Acceptor, HandshakeError, HandshakeMsg, Identity, Initiator, PeerInfo, RefuseReason, Step,
};

pub const COOKIE: &[u8] = b"SHAREDSECRETCOOKIE";

pub fn id(name: &str, creation: u32, hidden: bool) -> Identity {
    Identity {
        name: name.to_owned(),
        creation,
        hidden,
    }
}

pub fn alice() -> Identity {
    id("alice@localhost", 7, false)
}

pub fn bob() -> Identity {
    id("bob@localhost", 3, true)
}

/// What a handshake ended with on each side; `None` means the side saw the connection
/// close without a verdict of its own.
#[derive(Debug)]
pub struct Outcome {
    pub initiator: Option<Result<PeerInfo, HandshakeError>>,
    pub acceptor: Option<Result<PeerInfo, HandshakeError>>,
    /// Every message sent, in order, as the sender produced it.
    pub transcript: Vec<HandshakeMsg>,
}

/// Runs a handshake through the wire codec. `wire(n, bytes)` sees the `n`th frame and
/// returns what arrives (to tamper with it); `admission` is the acceptor's decision.
pub fn pump(
    initiator: &mut Initiator,
    hello: HandshakeMsg,
    acceptor: &mut Acceptor,
    admission: Result<(), RefuseReason>,
    mut wire: impl FnMut(usize, Vec<u8>) -> Vec<u8>,
) -> Outcome {
    let mut out = Outcome {
        initiator: None,
        acceptor: None,
        transcript: Vec::new(),
    };
    let mut to_acceptor = Some(hello);
    let mut to_initiator = None;
    while let Some(msg) = to_acceptor.take().or_else(|| to_initiator.take()) {
        let for_acceptor = matches!(msg, HandshakeMsg::Hello { .. } | HandshakeMsg::Proof { .. });
        let bytes = wire(out.transcript.len(), msg.encode());
        out.transcript.push(msg);
        let received = match HandshakeMsg::decode(&bytes) {
            Ok(m) => m,
            Err(e) => {
                *(if for_acceptor {
                    &mut out.acceptor
                } else {
                    &mut out.initiator
                }) = Some(Err(e));
                break;
            }
        };
        if for_acceptor {
            let mut step = acceptor.on_message(received);
            if let Step::NeedAdmission(_) = step {
                step = acceptor.admit(admission.clone());
            }
            match step {
                Step::Send(m) => to_initiator = Some(m),
                Step::SendAndDone(m, peer) => {
                    (to_initiator, out.acceptor) = (Some(m), Some(Ok(peer)))
                }
                Step::SendAndFail(m, e) => (to_initiator, out.acceptor) = (Some(m), Some(Err(e))),
                Step::Failed(e) => out.acceptor = Some(Err(e)),
                other => panic!("acceptor step {other:?}"),
            }
        } else {
            match initiator.on_message(received) {
                Step::Send(m) => to_acceptor = Some(m),
                Step::Done(peer) => out.initiator = Some(Ok(peer)),
                Step::Failed(e) => out.initiator = Some(Err(e)),
                other => panic!("initiator step {other:?}"),
            }
        }
    }
    out
}

pub fn handshake(i_cookie: &[u8], a_cookie: &[u8], admission: Result<(), RefuseReason>) -> Outcome {
    let (mut i, hello) = Initiator::new(alice(), Some(bob().name), i_cookie);
    let mut a = Acceptor::new(bob(), a_cookie);
    pump(&mut i, hello, &mut a, admission, |_, b| b)
}

pub fn hello(min_version: u16, max_version: u16) -> HandshakeMsg {
    let a = alice();
    HandshakeMsg::Hello {
        min_version,
        max_version,
        name: a.name,
        creation: a.creation,
        hidden: a.hidden,
        nonce_i: [9; 32],
    }
}

pub fn challenge(version: u16, name: &str) -> HandshakeMsg {
    let b = bob();
    HandshakeMsg::Challenge {
        version,
        name: name.to_owned(),
        creation: b.creation,
        hidden: b.hidden,
        nonce_a: [4; 32],
    }
}
