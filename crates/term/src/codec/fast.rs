//! A direct decoder for the common small terms: the first thing tried on every small
//! message from another node ([`decode_embedded`](super::decode_embedded)).
//!
//! It reads the same bytes as the serde decoder (see the format in the
//! [parent module](super)) for atoms, integers, floats, binaries, strings, pids,
//! references, and tuples and lists of these nested at most [`MAX_DEPTH`] deep, and
//! builds the same term, without serde's visitor machinery (a `{msg, 42}` cost about
//! 70 ns through it). Anything else (a map, deeper nesting, a non-canonical varint,
//! malformed input of any kind) makes it give up with `None`, and the general decoder
//! runs from the start: it alone reports errors, so both paths agree on every input.

use std::sync::Arc;

use super::tag;
use crate::{Atom, Binary, Pid, Ref, Term};

/// Deepest nesting of tuples and lists decoded here.
const MAX_DEPTH: usize = 8;

/// The term that `bytes` holds and nothing after it, or `None` to use the general
/// decoder.
pub(super) fn decode(bytes: &[u8]) -> Option<Term> {
    let mut r = Reader(bytes);
    let term = r.term(MAX_DEPTH)?;
    r.0.is_empty().then_some(term)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// A varint of at most `max_bytes` bytes whose value fits in `bits` bits, in its
    /// shortest form (a longer form is left to the general decoder).
    fn varint(&mut self, bits: u32) -> Option<u64> {
        let mut out = 0u64;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            out |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                // Canonical (no trailing zero byte) and within range.
                if (b == 0 && shift > 0) || (bits < 64 && out >> bits != 0) {
                    return None;
                }
                if shift == 63 && b > 1 {
                    return None;
                }
                return Some(out);
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
    }

    fn text(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.varint(64)?).ok()?;
        std::str::from_utf8(self.take(len)?).ok()
    }

    fn node_id(&mut self) -> Option<(Atom, u32, u64)> {
        let node = Atom::try_new(self.text()?).ok()?;
        let creation = u32::try_from(self.varint(32)?).ok()?;
        let id = self.varint(64)?;
        Some((node, creation, id))
    }

    fn term(&mut self, depth: usize) -> Option<Term> {
        let t = self.byte()?;
        Some(match u32::from(t) {
            tag::ATOM => Term::Atom(Atom::try_new(self.text()?).ok()?),
            tag::INT => {
                let n = self.varint(64)?;
                Term::Int(((n >> 1) as i64) ^ -((n & 1) as i64))
            }
            tag::FLOAT => {
                let b: [u8; 8] = self.take(8)?.try_into().ok()?;
                Term::Float(f64::from_le_bytes(b))
            }
            tag::BINARY => {
                let len = usize::try_from(self.varint(64)?).ok()?;
                let v = self.take(len)?;
                Term::Binary(super::shared_binary(v).unwrap_or_else(|| Binary::from_slice(v)))
            }
            tag::STR => Term::Str(Arc::from(self.text()?)),
            tag::PID => {
                let (node, creation, id) = self.node_id()?;
                Term::Pid(Pid::from_parts(node, creation, id))
            }
            tag::REF => {
                let (node, creation, id) = self.node_id()?;
                Term::Ref(Ref::from_parts(node, creation, id))
            }
            tag::TUPLE | tag::LIST if depth > 0 => {
                let elems = self.elems(depth - 1)?;
                if u32::from(t) == tag::TUPLE {
                    Term::Tuple(elems)
                } else {
                    Term::List(elems)
                }
            }
            _ => return None,
        })
    }

    fn elems(&mut self, depth: usize) -> Option<Arc<[Term]>> {
        let n = usize::try_from(self.varint(64)?).ok()?;
        // Every element takes at least one byte: a length beyond the input is a lie,
        // and allocates nothing.
        if n > self.0.len() {
            return None;
        }
        // Decoded straight into the `Arc` (one allocation of exactly `n`): an element
        // that fails leaves a placeholder and the whole attempt is abandoned.
        let mut ok = true;
        let elems: Arc<[Term]> = (0..n)
            .map(|_| {
                if ok && let Some(t) = self.term(depth) {
                    return t;
                }
                ok = false;
                Term::Int(0)
            })
            .collect();
        ok.then_some(elems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_embedded_general;

    fn encode(t: &Term) -> Vec<u8> {
        postcard::to_stdvec(t).expect("encodes")
    }

    #[test]
    fn small_terms_decode_as_the_general_decoder_decodes_them() {
        let pid = Pid::from_parts(Atom::new("fast@localhost"), 7, 1 << 40);
        let terms = vec![
            Term::atom("msg"),
            Term::Int(0),
            Term::Int(-1),
            Term::Int(i64::MAX),
            Term::Int(i64::MIN),
            Term::Float(-0.0),
            Term::Float(f64::MAX),
            Term::binary(b"bytes"),
            Term::str("text"),
            Term::Pid(pid),
            (Term::atom("msg"), 42).into(),
            (Term::atom("done"), Term::Pid(pid)).into(),
            Term::list(vec![Term::Int(1), Term::tuple(vec![]), Term::list(vec![])]),
            Term::tuple(vec![Term::tuple(vec![Term::tuple(vec![Term::Int(3)])])]),
        ];
        for t in terms {
            let bytes = encode(&t);
            assert_eq!(decode(&bytes), Some(t.clone()), "{t}");
            assert_eq!(decode_embedded_general(&bytes), Ok(t));
        }
    }

    #[test]
    fn what_it_does_not_handle_is_left_to_the_general_decoder() {
        let mut deep = Term::Int(1);
        for _ in 0..=MAX_DEPTH {
            deep = Term::tuple(vec![deep]);
        }
        let map = Term::map([(Term::atom("k"), Term::Int(1))]);
        for t in [deep, map] {
            let bytes = encode(&t);
            assert_eq!(decode(&bytes), None, "{t}");
            assert_eq!(super::super::decode_embedded(&bytes), Ok(t));
        }
    }

    #[test]
    fn bad_input_is_never_accepted_here() {
        let good = encode(&(Term::atom("msg"), Term::Int(300)).into());
        // Every truncation, and one trailing byte too many.
        for n in 0..good.len() {
            assert_eq!(decode(&good[..n]), None);
        }
        let mut long = good.clone();
        long.push(0);
        assert_eq!(decode(&long), None);
        // Unknown tags, a tuple claiming more elements than bytes, invalid UTF-8, a
        // non-canonical varint, an overlong varint.
        for bad in [
            vec![10],
            vec![0x8a, 0],
            vec![7, 100, 1, 2],
            vec![0, 2, 0xff, 0xfe],
            vec![1, 0x80, 0],
            vec![
                1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ],
        ] {
            assert_eq!(decode(&bad), None, "{bad:?}");
        }
    }

    mod props {
        use super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;

        fn term() -> impl Strategy<Value = Term> {
            let node = ("[a-z]{1,6}@localhost", any::<u32>(), any::<u64>())
                .prop_map(|(n, c, i)| (Atom::new(&n), c, i));
            let leaf = prop_oneof![
                "[a-z_]{0,8}".prop_map(|a| Term::atom(&a)),
                any::<i64>().prop_map(Term::Int),
                any::<u64>().prop_map(|b| Term::Float(f64::from_bits(b))),
                vec(any::<u8>(), 0..24).prop_map(|b| Term::binary(&b)),
                ".{0,12}".prop_map(|s| Term::str(&s)),
                node.clone()
                    .prop_map(|(n, c, i)| Term::Pid(Pid::from_parts(n, c, i))),
                node.prop_map(|(n, c, i)| Term::Ref(Ref::from_parts(n, c, i))),
            ];
            leaf.prop_recursive(10, 64, 6, |inner| {
                prop_oneof![
                    vec(inner.clone(), 0..6).prop_map(Term::tuple),
                    vec(inner.clone(), 0..6).prop_map(Term::list),
                    vec((inner.clone(), inner), 0..3).prop_map(Term::map),
                ]
            })
        }

        proptest! {
            /// On any input, altered or not, the direct decoder either gives up or
            /// gives exactly what the general decoder gives.
            #[test]
            fn never_disagrees_with_the_general_decoder(
                t in term(),
                flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
                cut in any::<prop::sample::Index>(),
                truncate in any::<bool>(),
            ) {
                let mut bytes = encode(&t);
                if flips.is_empty() && !truncate {
                    let general = decode_embedded_general(&bytes);
                    prop_assert_eq!(general.as_ref(), Ok(&t));
                    if let Some(fast) = decode(&bytes) {
                        prop_assert_eq!(fast, t);
                    }
                    return Ok(());
                }
                for (at, b) in flips {
                    let i = at.index(bytes.len());
                    bytes[i] = b;
                }
                if truncate {
                    bytes.truncate(cut.index(bytes.len() + 1));
                }
                if let Some(fast) = decode(&bytes) {
                    prop_assert_eq!(Ok(fast), decode_embedded_general(&bytes));
                }
            }
        }
    }
}
