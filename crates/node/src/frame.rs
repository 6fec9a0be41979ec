//! Framing: how bytes on a connection become messages.
//!
//! Every frame is a 4-byte big-endian length followed by that many payload bytes. The
//! decoder is a pure state machine: feed it whatever the socket gave, take out complete
//! frames. A length above the configured maximum is an error at once (before any
//! allocation), so a hostile peer can't make the node buffer a 4 GiB "frame"; the
//! connection is then closed with that reason.

/// Bytes of the length prefix.
pub const HEADER: usize = 4;

/// Why a stream of frames is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A frame announced more bytes than allowed.
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max} bytes")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// How much room a read into the decoder asks for at least.
const READ_ROOM: usize = 64 * 1024;

/// Splits a byte stream into frames.
///
/// The bytes live in one buffer, `buf[start..end]`, which a socket reads into directly
/// ([`FrameDecoder::fill_from`]) and frames are lent out of ([`FrameDecoder::next_frame`]):
/// no copy on the way in or out. The unread tail moves to the front only when the room
/// behind it runs out (once per buffer's worth, not per read), and the buffer never
/// grows past one largest frame plus one read.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max: usize,
}

impl FrameDecoder {
    /// A decoder refusing frames longer than `max` bytes.
    pub fn new(max: usize) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            end: 0,
            max,
        }
    }

    /// Makes room for at least `want` more bytes behind the buffered ones.
    fn room(&mut self, want: usize) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < want && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < want {
            let size = (self.end + want).max(self.buf.len() * 2).min(
                // A whole largest frame plus one read: enough for any frame to complete.
                (HEADER + self.max + READ_ROOM).max(self.end + want),
            );
            self.buf.resize(size, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Reads once from `from` straight into the buffer; the count (0: end of stream),
    /// and whether the read filled all the room it was given (if not, a socket had no
    /// more bytes at that moment). The buffer starts small (a connection that never
    /// says much, such as a handshake left half open, holds 4 KiB) and doubles as
    /// traffic fills it.
    pub fn fill_from(&mut self, from: &mut impl std::io::Read) -> std::io::Result<(usize, bool)> {
        let want = self.buf.len().clamp(4096, READ_ROOM);
        let room = self.room(want);
        let offered = room.len();
        let n = from.read(room)?;
        self.end += n;
        Ok((n, n == offered))
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.room(bytes.len())[..bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// The next complete frame's payload, `None` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let avail = &self.buf[self.start..self.end];
        if avail.len() < HEADER {
            return Ok(None);
        }
        let len = u32::from_be_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if len > self.max {
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        if avail.len() < HEADER + len {
            return Ok(None);
        }
        let at = self.start + HEADER;
        self.start = at + len;
        Ok(Some(&self.buf[at..at + len]))
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Bytes the buffer holds (for the memory bound's tests).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }
}

/// Appends a frame holding `payload` to `out`.
pub fn write_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let mut wire = Vec::new();
        for p in [&b"hello"[..], b"", b"world!"] {
            write_frame(&mut wire, p);
        }
        for cut in 0..wire.len() {
            let mut d = FrameDecoder::new(100);
            d.push(&wire[..cut]);
            let mut got = Vec::new();
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f.to_vec());
            }
            d.push(&wire[cut..]);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f.to_vec());
            }
            assert_eq!(got, vec![b"hello".to_vec(), vec![], b"world!".to_vec()]);
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn reads_in_place_and_the_buffer_stays_bounded() {
        // 3,000 frames of up to 1,000 bytes, read 700 bytes at a time through a
        // reader: all come out intact, and the buffer never outgrows one largest
        // frame plus one read.
        let mut wire = Vec::new();
        let mut want = Vec::new();
        for i in 0..3000usize {
            let p: Vec<u8> = (0..(i * 7) % 1000).map(|k| (k + i) as u8).collect();
            write_frame(&mut wire, &p);
            want.push(p);
        }
        let mut d = FrameDecoder::new(1000);
        let mut got = Vec::new();
        for piece in wire.chunks(700) {
            let mut r = piece;
            while !r.is_empty() {
                d.fill_from(&mut r).unwrap();
            }
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f.to_vec());
            }
            assert!(
                d.capacity() <= HEADER + 1000 + READ_ROOM,
                "{}",
                d.capacity()
            );
        }
        assert_eq!(got, want);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn an_oversized_length_is_refused_before_buffering() {
        let mut d = FrameDecoder::new(1024);
        d.push(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            d.next_frame(),
            Err(FrameError::TooLarge {
                len: u32::MAX as usize,
                max: 1024
            })
        );
    }
}
