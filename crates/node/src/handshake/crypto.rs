//! The handshake's cryptography: fresh nonces and the two MACs over the transcript
//! (the byte layout is documented in [`handshake`](super)).
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, KeyInit, Mac};
use rand::TryRng;
use rand::rngs::SysRng;
use sha2::{Digest, Sha256};

use super::{Identity, Nonce};

type HmacSha256 = Hmac<Sha256>;

pub(super) const INITIATOR_LABEL: &str = "oxbeam-handshake-v1/initiator";
pub(super) const ACCEPTOR_LABEL: &str = "oxbeam-handshake-v1/acceptor";

/// A fresh random nonce from the operating system's RNG.
///
/// If the OS RNG fails (it practically never does), logs an error and falls back to a
/// SHA-256 of the time, process id, thread and a process-wide counter. That nonce is
/// unique, so a recorded handshake still cannot be replayed, but predictable: someone who
/// can get a peer to answer a Challenge ahead of time could prepare a proof for it.
pub fn fresh_nonce() -> Nonce {
    let mut nonce = [0u8; 32];
    match SysRng.try_fill_bytes(&mut nonce) {
        Ok(()) => nonce,
        Err(e) => {
            log::error!(
                "handshake: OS random number generator failed ({e}); using a time-based nonce"
            );
            fallback_nonce()
        }
    }
}

fn fallback_nonce() -> Nonce {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(now.as_nanos().to_be_bytes());
    h.update(std::process::id().to_be_bytes());
    h.update(format!("{:?}", std::thread::current().id()).as_bytes());
    h.finalize().into()
}

/// Everything both MACs cover (see the module docs).
pub(super) struct Transcript<'a> {
    pub(super) version: u16,
    pub(super) offered: (u16, u16),
    pub(super) initiator: &'a Identity,
    pub(super) acceptor: &'a Identity,
    pub(super) nonce_i: &'a Nonce,
    pub(super) nonce_a: &'a Nonce,
}

impl Transcript<'_> {
    fn bytes(&self, label: &str) -> Vec<u8> {
        fn var(out: &mut Vec<u8>, field: &[u8]) {
            // Names are at most 255 bytes once checked; saturate rather than wrap anyway.
            out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(field);
        }
        let mut out =
            Vec::with_capacity(160 + self.initiator.name.len() + self.acceptor.name.len());
        var(&mut out, label.as_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.offered.0.to_be_bytes());
        out.extend_from_slice(&self.offered.1.to_be_bytes());
        for id in [self.initiator, self.acceptor] {
            var(&mut out, id.name.as_bytes());
            out.extend_from_slice(&id.creation.to_be_bytes());
            out.push(u8::from(id.hidden));
        }
        out.extend_from_slice(self.nonce_i);
        out.extend_from_slice(self.nonce_a);
        out
    }

    /// The keyed MAC over this transcript, `None` only if HMAC rejected the key (it
    /// accepts keys of any length, so never in practice).
    fn keyed(&self, cookie: &[u8], label: &str) -> Option<HmacSha256> {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(cookie).ok()?;
        mac.update(&self.bytes(label));
        Some(mac)
    }

    pub(super) fn mac(&self, cookie: &[u8], label: &str) -> Option<[u8; 32]> {
        Some(self.keyed(cookie, label)?.finalize().into_bytes().into())
    }

    /// Constant-time check of a received MAC.
    pub(super) fn verify(&self, cookie: &[u8], label: &str, tag: &[u8; 32]) -> bool {
        self.keyed(cookie, label)
            .is_some_and(|mac| mac.verify_slice(tag).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> Identity {
        Identity {
            name: name.into(),
            creation: 1,
            hidden: false,
        }
    }

    /// Moving bytes between adjacent names changes the MAC input: the length prefixes
    /// make the concatenation unambiguous.
    #[test]
    fn transcript_bytes_are_unambiguous() {
        let nonce = [0u8; 32];
        let bytes = |i: &Identity, a: &Identity| {
            let t = Transcript {
                version: 1,
                offered: (1, 1),
                initiator: i,
                acceptor: a,
                nonce_i: &nonce,
                nonce_a: &nonce,
            };
            t.bytes(INITIATOR_LABEL)
        };
        assert_ne!(
            bytes(&id("a@hx"), &id("y@h")),
            bytes(&id("a@h"), &id("xy@h"))
        );
        let t = Transcript {
            version: 1,
            offered: (1, 1),
            initiator: &id("a@h"),
            acceptor: &id("b@h"),
            nonce_i: &nonce,
            nonce_a: &nonce,
        };
        assert_ne!(t.mac(b"k", INITIATOR_LABEL), t.mac(b"k", ACCEPTOR_LABEL));
        assert_ne!(t.mac(b"k", INITIATOR_LABEL), t.mac(b"K", INITIATOR_LABEL));
    }
}
