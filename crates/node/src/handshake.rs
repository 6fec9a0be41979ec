//! The node-to-node handshake: a pure state machine with no I/O.
//!
//! Feed an [`Initiator`] or [`Acceptor`] the messages that arrive; each call returns a
//! [`Step`] saying what to send and whether the handshake is finished. The caller owns the
//! socket and the framing (each [`HandshakeMsg`] is one frame, [`HandshakeMsg::encode`] /
//! [`HandshakeMsg::decode`]), so the protocol is testable without a network, as OTP's
//! `dist_util.erl` takes its transport as functions.
//!
//! # Message sequence
//!
//! The initiator (I) is the side that connects; the acceptor (A) the side that accepted.
//!
//! ```text
//!  I                                                   A
//!  |-- Hello { min_version, max_version, name,       ->|  AwaitHello
//!  |           creation, hidden, nonce_i }             |  -> NeedAdmission(peer): the caller
//!  |                                                   |     decides (duplicate? simultaneous?
//!  |                                                   |     allowed?) and calls `admit`
//!  |<- Refuse { reason }                              -|  refused, or no common version: stop
//!  |<- Challenge { version, name, creation, hidden,   -|  admitted: AwaitProof
//!  |               nonce_a }                           |
//!  |   (checks version and, if given, the peer's name) |
//!  |-- Proof { mac_i }                               ->|
//!  |<- Refuse { BadCookie }                           -|  wrong mac_i: A fails
//!  |<- Accept { mac_a }                               -|  right mac_i: A is done
//!  |   (checks mac_a: wrong fails; right: done)        |
//! ```
//!
//! States. Initiator: `await-challenge` -> `await-accept` -> `done`. Acceptor:
//! `await-hello` -> `await-admission` -> `await-proof` -> `done`. Both also have `failed`.
//! A message in any other state than the one that expects it (including after `done`)
//! gives [`HandshakeError::UnexpectedMessage`] and moves to `failed`, where every further
//! input fails the same way: a failed handshake cannot be resumed, the caller closes the
//! connection.
//!
//! # What the MACs cover
//!
//! `mac_i = HMAC-SHA256(key = cookie, T("oxbeam-handshake-v1/initiator"))` and
//! `mac_a = HMAC-SHA256(key = cookie, T("oxbeam-handshake-v1/acceptor"))`, where the
//! transcript `T(label)` is
//!
//! ```text
//! label ‖ version ‖ offered min_version ‖ offered max_version
//!       ‖ initiator name ‖ initiator creation ‖ initiator hidden
//!       ‖ acceptor name  ‖ acceptor creation  ‖ acceptor hidden ‖ nonce_i ‖ nonce_a
//! ```
//!
//! with the label and the names prefixed by their length as a big-endian `u32` (so no two
//! different field lists give the same bytes), integers big-endian, `hidden` one byte and
//! the nonces their 32 raw bytes. The transcript is everything either side said, so a
//! man in the middle without the cookie can change nothing undetected: not a name, not the
//! hidden flag, and not the offered version range (no downgrade). Only a Refuse is
//! unauthenticated: anyone on the path can forge one, which is no worse than closing the
//! connection.
//!
//! **The cookie never crosses the wire**: only HMAC outputs do, and HMAC does not reveal
//! its key. **A recorded handshake cannot be replayed**: each side's MAC covers a fresh
//! random 32-byte nonce chosen by the *other* side ([`fresh_nonce`], from the OS RNG).
//! Replaying an initiator's Hello and Proof to an acceptor fails because the acceptor's
//! new `nonce_a` makes the recorded `mac_i` wrong; replaying an acceptor's Challenge and
//! Accept to an initiator fails because of the initiator's new `nonce_i`. The distinct
//! labels stop a MAC from one direction being reflected back as the other.
//!
//! What the handshake does *not* do: it derives no session key, so the traffic after it is
//! neither encrypted nor authenticated (as in Erlang distribution without TLS), and a man
//! in the middle who relays the four messages live, then takes over the connection, is
//! not stopped. It proves that the ends know the cookie at the moment of the handshake.
//!
//! # Version negotiation
//!
//! The initiator offers a range `min_version..=max_version`; the acceptor picks the
//! highest version in both its own range and the offer and names it in the Challenge,
//! or refuses with [`RefuseReason::Version`] if the ranges do not meet. The initiator
//! fails with [`HandshakeError::NoCommonVersion`] if the chosen version is outside its
//! offer. Both MACs cover the chosen version and the offered range.
//!
//! # Admission
//!
//! After a well-formed Hello the acceptor returns [`Step::NeedAdmission`] with the peer's
//! identity and sends nothing until the caller calls [`Acceptor::admit`]. The caller knows
//! what the state machine does not: whether a connection to that name (same creation) is
//! already up ([`RefuseReason::Duplicate`]), whether this node is itself connecting to the
//! peer and its own attempt wins ([`RefuseReason::Simultaneous`]), or whether the peer is
//! allowed at all ([`RefuseReason::NotAllowed`]). The decision is made before the peer
//! has proved it knows the cookie, so the identity it judges is only a claim: a refusal
//! tells an unauthenticated peer something (that a node of that name is connected, say),
//! and the caller must not record the peer as connected, or let it displace anything,
//! before [`Step::SendAndDone`].
use std::fmt;

mod crypto;
mod wire;

pub use crypto::fresh_nonce;
pub use wire::{
    HandshakeError, HandshakeMsg, Identity, MAX_NAME_LEN, MAX_REASON_LEN, RefuseReason,
    check_node_name,
};

use crypto::{ACCEPTOR_LABEL, INITIATOR_LABEL, Transcript};

/// The oldest protocol version this node speaks. The version covers what follows the
/// handshake too (the frames and messages of [`wire`](super::wire)), so nodes that
/// would not understand each other's messages refuse each other here, with
/// [`RefuseReason::Version`], instead of failing on every message after it:
/// - 1 named a signal's destination by its whole pid;
/// - 2 by creation and number (`wire::ToPid`), in serde's variant order of the
///   node's and the runtime's enums;
/// - 3 writes every message in `wire`'s own table: one tag byte per kind of message
///   (a signal is a kind of its own, not a variant inside a variant), then its fields;
/// - 4 adds the kinds `MonitorName` and `DemonitorName` (monitors by registered name),
///   which a version 3 node would take for malformed;
/// - 5 adds the spawner's group leader to `SpawnRequest` (a flag, then a pid), which
///   a version 4 node would read as the count of the arguments.
///
/// The Hello that carries the versions keeps its layout in every version, so that any
/// two nodes can tell they do not match.
pub const MIN_VERSION: u16 = 5;
/// The newest protocol version this node speaks.
pub const MAX_VERSION: u16 = 5;

/// A handshake nonce: 32 random bytes, fresh for every handshake.
pub type Nonce = [u8; 32];

/// The peer a finished handshake reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// Who the peer is.
    pub identity: Identity,
    /// The protocol version the two nodes agreed on.
    pub version: u16,
}

/// What the caller must do after feeding a state machine.
#[derive(Debug, PartialEq)]
#[must_use]
pub enum Step {
    /// Send this message and keep feeding the machine.
    Send(HandshakeMsg),
    /// Send this message; the handshake succeeded with this peer.
    SendAndDone(HandshakeMsg, PeerInfo),
    /// The handshake succeeded with this peer; nothing to send.
    Done(PeerInfo),
    /// Acceptor only: the peer is well-formed; decide whether to admit it and call
    /// [`Acceptor::admit`]. Nothing is sent until then.
    NeedAdmission(Identity),
    /// The handshake failed; nothing to send, close the connection.
    Failed(HandshakeError),
    /// Send this message (a refusal), then close: the handshake failed.
    SendAndFail(HandshakeMsg, HandshakeError),
}

/// The highest version in both `lo..=hi` ranges, if they meet.
fn negotiate(ours: (u16, u16), theirs: (u16, u16)) -> Option<u16> {
    let lo = ours.0.max(theirs.0);
    let hi = ours.1.min(theirs.1);
    (lo <= hi).then_some(hi)
}

fn unexpected(state: &'static str, got: &'static str) -> Step {
    log::debug!("handshake: unexpected {got} in state {state}");
    Step::Failed(HandshakeError::UnexpectedMessage { state, got })
}

/// Redacts the cookie in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug)]
enum InitiatorState {
    AwaitChallenge,
    AwaitAccept {
        peer: Identity,
        version: u16,
        nonce_a: Nonce,
    },
    Done,
    Failed,
}

impl InitiatorState {
    fn name(&self) -> &'static str {
        match self {
            InitiatorState::AwaitChallenge => "await-challenge",
            InitiatorState::AwaitAccept { .. } => "await-accept",
            InitiatorState::Done => "done",
            InitiatorState::Failed => "failed",
        }
    }
}

/// The connecting side of a handshake.
pub struct Initiator {
    me: Identity,
    expected_peer: Option<String>,
    cookie: Vec<u8>,
    nonce_i: Nonce,
    versions: (u16, u16),
    state: InitiatorState,
}

impl fmt::Debug for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiator")
            .field("me", &self.me)
            .field("expected_peer", &self.expected_peer)
            .field("cookie", &Redacted)
            .field("versions", &self.versions)
            .field("state", &self.state.name())
            .finish()
    }
}

impl Initiator {
    /// Starts a handshake as `me`, meant to reach `expected_peer` if given, with a fresh
    /// nonce. Returns the machine and the Hello to send first.
    ///
    /// `me.name` should pass [`check_node_name`] (check it when the node is named): the
    /// acceptor refuses to decode a Hello with a bad name.
    pub fn new(
        me: Identity,
        expected_peer: Option<String>,
        cookie: &[u8],
    ) -> (Initiator, HandshakeMsg) {
        Initiator::new_with_nonce(me, expected_peer, cookie, fresh_nonce())
    }

    /// [`Initiator::new`] with a given nonce, for tests. A real handshake must use a
    /// fresh nonce, or a recorded handshake can be replayed against it.
    pub fn new_with_nonce(
        me: Identity,
        expected_peer: Option<String>,
        cookie: &[u8],
        nonce: Nonce,
    ) -> (Initiator, HandshakeMsg) {
        let machine = Initiator {
            me,
            expected_peer,
            cookie: cookie.to_vec(),
            nonce_i: nonce,
            versions: (MIN_VERSION, MAX_VERSION),
            state: InitiatorState::AwaitChallenge,
        };
        let hello = HandshakeMsg::Hello {
            min_version: machine.versions.0,
            max_version: machine.versions.1,
            name: machine.me.name.clone(),
            creation: machine.me.creation,
            hidden: machine.me.hidden,
            nonce_i: machine.nonce_i,
        };
        (machine, hello)
    }

    /// Feeds the next message from the acceptor.
    pub fn on_message(&mut self, msg: HandshakeMsg) -> Step {
        // Any path that does not set a new state leaves the machine failed.
        let state = std::mem::replace(&mut self.state, InitiatorState::Failed);
        match (state, msg) {
            (
                InitiatorState::AwaitChallenge,
                HandshakeMsg::Challenge {
                    version,
                    name,
                    creation,
                    hidden,
                    nonce_a,
                },
            ) => self.on_challenge(
                version,
                Identity {
                    name,
                    creation,
                    hidden,
                },
                nonce_a,
            ),
            (
                InitiatorState::AwaitAccept {
                    peer,
                    version,
                    nonce_a,
                },
                HandshakeMsg::Accept { mac },
            ) => self.on_accept(peer, version, nonce_a, &mac),
            (
                InitiatorState::AwaitChallenge | InitiatorState::AwaitAccept { .. },
                HandshakeMsg::Refuse { reason },
            ) => {
                log::debug!("handshake: {} refused us: {reason}", self.target());
                Step::Failed(HandshakeError::Refused(reason))
            }
            (state, msg) => unexpected(state.name(), msg.kind()),
        }
    }

    fn target(&self) -> &str {
        self.expected_peer.as_deref().unwrap_or("the acceptor")
    }

    fn on_challenge(&mut self, version: u16, peer: Identity, nonce_a: Nonce) -> Step {
        if let Err(why) = check_node_name(&peer.name) {
            return Step::Failed(HandshakeError::Malformed(format!(
                "Challenge carries a bad node name: {why}"
            )));
        }
        if let Some(expected) = &self.expected_peer
            && *expected != peer.name
        {
            log::debug!(
                "handshake: meant to reach {expected} but the acceptor is {}",
                peer.name
            );
            return Step::Failed(HandshakeError::WrongPeer {
                expected: expected.clone(),
                got: peer.name,
            });
        }
        if !(self.versions.0..=self.versions.1).contains(&version) {
            log::debug!(
                "handshake: {} chose version {version}, outside our offer {}..={}",
                peer.name,
                self.versions.0,
                self.versions.1
            );
            return Step::Failed(HandshakeError::NoCommonVersion);
        }
        let transcript = Transcript {
            version,
            offered: self.versions,
            initiator: &self.me,
            acceptor: &peer,
            nonce_i: &self.nonce_i,
            nonce_a: &nonce_a,
        };
        let Some(mac) = transcript.mac(&self.cookie, INITIATOR_LABEL) else {
            return Step::Failed(HandshakeError::BadCookie);
        };
        log::debug!(
            "handshake: challenged by {} (version {version}), sending proof",
            peer.name
        );
        self.state = InitiatorState::AwaitAccept {
            peer,
            version,
            nonce_a,
        };
        Step::Send(HandshakeMsg::Proof { mac })
    }

    fn on_accept(&mut self, peer: Identity, version: u16, nonce_a: Nonce, mac: &[u8; 32]) -> Step {
        let transcript = Transcript {
            version,
            offered: self.versions,
            initiator: &self.me,
            acceptor: &peer,
            nonce_i: &self.nonce_i,
            nonce_a: &nonce_a,
        };
        if !transcript.verify(&self.cookie, ACCEPTOR_LABEL, mac) {
            log::debug!(
                "handshake: {} (creation {}) accepted us with a wrong proof: it does not know our cookie",
                peer.name,
                peer.creation
            );
            return Step::Failed(HandshakeError::BadCookie);
        }
        log::debug!("handshake: connected to {} (version {version})", peer.name);
        self.state = InitiatorState::Done;
        Step::Done(PeerInfo {
            identity: peer,
            version,
        })
    }
}

#[derive(Debug)]
struct Pending {
    peer: Identity,
    offered: (u16, u16),
    version: u16,
    nonce_i: Nonce,
}

#[derive(Debug)]
enum AcceptorState {
    AwaitHello,
    AwaitAdmission(Pending),
    AwaitProof(Pending),
    Done,
    Failed,
}

impl AcceptorState {
    fn name(&self) -> &'static str {
        match self {
            AcceptorState::AwaitHello => "await-hello",
            AcceptorState::AwaitAdmission(_) => "await-admission",
            AcceptorState::AwaitProof(_) => "await-proof",
            AcceptorState::Done => "done",
            AcceptorState::Failed => "failed",
        }
    }
}

/// The accepting side of a handshake.
pub struct Acceptor {
    me: Identity,
    cookie: Vec<u8>,
    /// Cookies set for particular peers (`Node.set_cookie(node, cookie)`), by name.
    peer_cookies: std::collections::HashMap<String, Vec<u8>>,
    nonce_a: Nonce,
    versions: (u16, u16),
    state: AcceptorState,
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("me", &self.me)
            .field("cookie", &Redacted)
            .field("versions", &self.versions)
            .field("state", &self.state.name())
            .finish()
    }
}

impl Acceptor {
    /// Starts the accepting side as `me` with a fresh nonce; feed it the first message.
    pub fn new(me: Identity, cookie: &[u8]) -> Acceptor {
        Acceptor::new_with_nonce(me, cookie, fresh_nonce())
    }

    /// [`Acceptor::new`] with a given nonce, for tests. A real handshake must use a fresh
    /// nonce, or a recorded handshake can be replayed against it.
    pub fn new_with_nonce(me: Identity, cookie: &[u8], nonce: Nonce) -> Acceptor {
        Acceptor {
            me,
            cookie: cookie.to_vec(),
            peer_cookies: Default::default(),
            nonce_a: nonce,
            versions: (MIN_VERSION, MAX_VERSION),
            state: AcceptorState::AwaitHello,
        }
    }

    /// Uses `cookies[peer]` instead of the default cookie for those peers (Erlang's
    /// `erlang:set_cookie(Node, Cookie)`): the initiator's name is known by the time
    /// its proof is checked.
    pub fn with_peer_cookies(
        mut self,
        cookies: std::collections::HashMap<String, Vec<u8>>,
    ) -> Acceptor {
        self.peer_cookies = cookies;
        self
    }

    /// Feeds the next message from the initiator. A good Hello gives
    /// [`Step::NeedAdmission`] (or a refusal if no version is in common).
    pub fn on_message(&mut self, msg: HandshakeMsg) -> Step {
        let state = std::mem::replace(&mut self.state, AcceptorState::Failed);
        match (state, msg) {
            (
                AcceptorState::AwaitHello,
                HandshakeMsg::Hello {
                    min_version,
                    max_version,
                    name,
                    creation,
                    hidden,
                    nonce_i,
                },
            ) => self.on_hello(
                (min_version, max_version),
                Identity {
                    name,
                    creation,
                    hidden,
                },
                nonce_i,
            ),
            (AcceptorState::AwaitProof(pending), HandshakeMsg::Proof { mac }) => {
                self.on_proof(pending, &mac)
            }
            (state, msg) => unexpected(state.name(), msg.kind()),
        }
    }

    fn on_hello(&mut self, offered: (u16, u16), peer: Identity, nonce_i: Nonce) -> Step {
        if let Err(why) = check_node_name(&peer.name) {
            return Step::Failed(HandshakeError::Malformed(format!(
                "Hello carries a bad node name: {why}"
            )));
        }
        let Some(version) = negotiate(self.versions, offered) else {
            log::debug!(
                "handshake: {} offers versions {}..={}, we speak {}..={}; refusing",
                peer.name,
                offered.0,
                offered.1,
                self.versions.0,
                self.versions.1
            );
            return Step::SendAndFail(
                HandshakeMsg::Refuse {
                    reason: RefuseReason::Version,
                },
                HandshakeError::NoCommonVersion,
            );
        };
        log::debug!(
            "handshake: hello from {} (creation {}), version {version}",
            peer.name,
            peer.creation
        );
        self.state = AcceptorState::AwaitAdmission(Pending {
            peer: peer.clone(),
            offered,
            version,
            nonce_i,
        });
        Step::NeedAdmission(peer)
    }

    /// The caller's admission decision for the peer named in [`Step::NeedAdmission`]:
    /// `Ok(())` sends the Challenge, `Err(reason)` sends a Refuse and fails. A
    /// [`RefuseReason::NotAllowed`] text longer than [`MAX_REASON_LEN`] is shortened.
    pub fn admit(&mut self, decision: Result<(), RefuseReason>) -> Step {
        let state = std::mem::replace(&mut self.state, AcceptorState::Failed);
        let pending = match state {
            AcceptorState::AwaitAdmission(pending) => pending,
            other => return unexpected(other.name(), "admission decision"),
        };
        match decision {
            Ok(()) => {
                let challenge = HandshakeMsg::Challenge {
                    version: pending.version,
                    name: self.me.name.clone(),
                    creation: self.me.creation,
                    hidden: self.me.hidden,
                    nonce_a: self.nonce_a,
                };
                self.state = AcceptorState::AwaitProof(pending);
                Step::Send(challenge)
            }
            Err(reason) => {
                let reason = shorten(reason);
                log::debug!("handshake: refusing {}: {reason}", pending.peer.name);
                Step::SendAndFail(
                    HandshakeMsg::Refuse {
                        reason: reason.clone(),
                    },
                    HandshakeError::Refused(reason),
                )
            }
        }
    }

    fn on_proof(&mut self, pending: Pending, mac: &[u8; 32]) -> Step {
        let transcript = Transcript {
            version: pending.version,
            offered: pending.offered,
            initiator: &pending.peer,
            acceptor: &self.me,
            nonce_i: &pending.nonce_i,
            nonce_a: &self.nonce_a,
        };
        let cookie = self
            .peer_cookies
            .get(&pending.peer.name)
            .unwrap_or(&self.cookie);
        if !transcript.verify(cookie, INITIATOR_LABEL, mac) {
            log::debug!(
                "handshake: {} (creation {}) sent a proof that does not match our cookie \
                 (different cookies, or a replayed handshake); refusing",
                pending.peer.name,
                pending.peer.creation
            );
            return Step::SendAndFail(
                HandshakeMsg::Refuse {
                    reason: RefuseReason::BadCookie,
                },
                HandshakeError::BadCookie,
            );
        }
        let Some(mac_a) = transcript.mac(cookie, ACCEPTOR_LABEL) else {
            return Step::Failed(HandshakeError::BadCookie);
        };
        log::debug!(
            "handshake: accepted {} (version {})",
            pending.peer.name,
            pending.version
        );
        self.state = AcceptorState::Done;
        Step::SendAndDone(
            HandshakeMsg::Accept { mac: mac_a },
            PeerInfo {
                identity: pending.peer,
                version: pending.version,
            },
        )
    }
}

/// Cuts a [`RefuseReason::NotAllowed`] text to [`MAX_REASON_LEN`] bytes (at a character
/// boundary) so the peer can decode the refusal.
fn shorten(reason: RefuseReason) -> RefuseReason {
    match reason {
        RefuseReason::NotAllowed(mut why) if why.len() > MAX_REASON_LEN => {
            let mut end = MAX_REASON_LEN;
            while !why.is_char_boundary(end) {
                end -= 1;
            }
            why.truncate(end);
            RefuseReason::NotAllowed(why)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiate_picks_the_highest_common_version() {
        assert_eq!(negotiate((1, 3), (2, 5)), Some(3));
        assert_eq!(negotiate((2, 5), (1, 3)), Some(3));
        assert_eq!(negotiate((1, 1), (1, 1)), Some(1));
        assert_eq!(negotiate((1, 2), (3, 4)), None);
        assert_eq!(negotiate((1, 4), (3, 2)), None);
    }

    /// Ranges other than this build's `MIN_VERSION..=MAX_VERSION`, end to end.
    #[test]
    fn overlapping_ranges_agree_on_the_highest_common_version() {
        let me = |name: &str| Identity {
            name: name.into(),
            creation: 1,
            hidden: false,
        };
        let (mut i, _) = Initiator::new(me("i@h"), None, b"c");
        i.versions = (2, 5);
        let hello = HandshakeMsg::Hello {
            min_version: 2,
            max_version: 5,
            name: "i@h".into(),
            creation: 1,
            hidden: false,
            nonce_i: i.nonce_i,
        };
        let mut a = Acceptor::new(me("a@h"), b"c");
        a.versions = (1, 3);
        assert!(matches!(a.on_message(hello), Step::NeedAdmission(_)));
        let Step::Send(challenge) = a.admit(Ok(())) else {
            panic!("no challenge")
        };
        let Step::Send(proof) = i.on_message(challenge) else {
            panic!("no proof")
        };
        let Step::SendAndDone(accept, at_a) = a.on_message(proof) else {
            panic!("not accepted")
        };
        let Step::Done(at_i) = i.on_message(accept) else {
            panic!("initiator not done")
        };
        assert_eq!((at_a.version, at_i.version), (3, 3));
    }
}
