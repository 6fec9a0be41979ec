//! [`Reassembly`]: fragments of one connection back into whole messages (the frame
//! kinds are in the [module docs](super)).

use std::collections::HashMap;
use std::sync::Arc;

use super::{FRAGMENT, KIND_FIRST, KIND_MORE, KIND_WHOLE, Wire, WireError, decode};
use crate::term::BinBytes;
use crate::term::codec::{SHARE_MIN, decode_sharing};

fn read_u64(bytes: &[u8], at: usize) -> Result<u64, WireError> {
    bytes
        .get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
        .ok_or_else(|| WireError::Malformed("fragment header truncated".into()))
}

/// Buffers of large whole messages that come back to a connection for reuse, at most
/// (64 KiB to 128 KiB each; let go when the connection is quiet).
const RETURNED_MAX: usize = 64;

/// Reassembles fragmented messages of one connection.
#[derive(Debug)]
pub struct Reassembly {
    partial: HashMap<u64, (usize, Vec<u8>)>,
    max_message: usize,
    max_partial: usize,
    /// Large whole messages are copied into a buffer of their own to be decoded:
    /// their binaries share it (no second copy), and it comes back here when the
    /// last of them is dropped, so a stream of 64 KiB messages allocates nothing per
    /// message. (Allocated here and freed by the receiving process's thread, 64 KiB
    /// blocks made glibc trim and page-fault this thread's heap over and over.)
    home: crossbeam_channel::Sender<Vec<u8>>,
    returned: crossbeam_channel::Receiver<Vec<u8>>,
}

impl Reassembly {
    /// Accepts messages up to `max_message` bytes, at most `max_partial` at once.
    pub fn new(max_message: usize, max_partial: usize) -> Reassembly {
        let (home, returned) = crossbeam_channel::bounded(RETURNED_MAX);
        Reassembly {
            partial: HashMap::new(),
            max_message,
            max_partial,
            home,
            returned,
        }
    }

    /// Takes one frame's payload; returns a complete message when there is one.
    pub fn on_frame(&mut self, frame: &[u8]) -> Result<Option<Wire>, WireError> {
        let Some((&kind, body)) = frame.split_first() else {
            return Err(WireError::Malformed("empty frame".into()));
        };
        match kind {
            KIND_WHOLE if body.len() >= SHARE_MIN => {
                let buf = self.pooled(body);
                decode_sharing(&buf, decode).map(Some)
            }
            KIND_WHOLE => decode(body).map(Some),
            KIND_FIRST => {
                let id = read_u64(body, 0)?;
                let total = read_u64(body, 8)?;
                if total > self.max_message as u64 {
                    return Err(WireError::TooLarge {
                        size: total,
                        max: self.max_message,
                    });
                }
                if self.partial.len() >= self.max_partial {
                    return Err(WireError::TooManyFragmented(self.max_partial));
                }
                let total = total as usize;
                // Grow with the data actually received, not the announced size.
                let mut buf = Vec::with_capacity(total.min(4 * FRAGMENT));
                buf.extend_from_slice(&body[16..]);
                self.partial.insert(id, (total, buf));
                self.complete(id)
            }
            KIND_MORE => {
                let id = read_u64(body, 0)?;
                let Some((_, buf)) = self.partial.get_mut(&id) else {
                    return Err(WireError::Malformed(format!(
                        "fragment of unknown message {id}"
                    )));
                };
                buf.extend_from_slice(&body[8..]);
                self.complete(id)
            }
            other => Err(WireError::Malformed(format!("unknown frame kind {other}"))),
        }
    }

    fn complete(&mut self, id: u64) -> Result<Option<Wire>, WireError> {
        let (total, len) = match self.partial.get(&id) {
            Some((total, buf)) => (*total, buf.len()),
            None => return Ok(None),
        };
        if len > total {
            return Err(WireError::Malformed(format!(
                "message {id} longer than announced ({len} > {total})"
            )));
        }
        if len < total {
            return Ok(None);
        }
        let (_, buf) = self.partial.remove(&id).unwrap_or_default();
        decode_sharing(&Arc::new(BinBytes::new(buf, None)), decode).map(Some)
    }

    /// `bytes` in a buffer that comes back here when the last binary using it is
    /// dropped (one that came back, or a new one).
    fn pooled(&mut self, bytes: &[u8]) -> Arc<BinBytes> {
        let mut buf = self.returned.try_recv().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(bytes);
        Arc::new(BinBytes::new(buf, Some(self.home.clone())))
    }

    /// Lets the buffers that came back go (the connection has been quiet).
    pub fn trim(&mut self) {
        while self.returned.try_recv().is_ok() {}
    }
}
