//! WebSocket framing (RFC 6455 §5), sans-IO and allocation-free: the frame
//! header both ends parse and write, masking, and close payloads. The
//! daemon parses masked client frames and writes unmasked ones; the SDK
//! the other way round — one codec, the direction a parameter.

use crate::protocol::close;

/// Largest frame header: 2 bytes, 8 of extended length, 4 of mask.
pub const MAX_HEADER: usize = 14;
/// Largest control frame payload (close, ping, pong).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Frame opcodes (`op as u8` is the wire value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// Continuation of a fragmented message.
    Continuation = 0,
    /// UTF-8 text.
    Text = 1,
    /// Binary (the daemon closes sockets that send these).
    Binary = 2,
    /// Close.
    Close = 8,
    /// Ping.
    Ping = 9,
    /// Pong.
    Pong = 10,
}

impl Op {
    /// The opcode for a header's low nibble; `None` for reserved values.
    pub fn from_u8(b: u8) -> Option<Op> {
        Some(match b {
            0 => Op::Continuation,
            1 => Op::Text,
            2 => Op::Binary,
            8 => Op::Close,
            9 => Op::Ping,
            10 => Op::Pong,
            _ => return None,
        })
    }

    /// Close, ping or pong.
    pub fn is_control(self) -> bool {
        matches!(self, Op::Close | Op::Ping | Op::Pong)
    }
}

/// A frame that breaks the protocol; the connection must close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// RSV1–3 set (no extension is negotiated).
    ReservedBits,
    /// A reserved opcode.
    UnknownOpcode,
    /// A client frame without a mask.
    Unmasked,
    /// A server frame with a mask.
    Masked,
    /// A 64-bit length with its most significant bit set.
    BadLength,
    /// A fragmented control frame, or one over 125 bytes.
    BadControl,
    /// A payload over the caller's limit (refused from the header alone).
    TooBig,
    /// A one-byte close payload.
    BadClose,
    /// A close code nobody may send.
    BadCloseCode,
    /// A close reason that is not UTF-8.
    CloseReasonNotUtf8,
}

impl FrameError {
    /// The close code to answer with.
    pub fn close_code(self) -> u16 {
        match self {
            FrameError::TooBig => close::TOO_BIG,
            FrameError::CloseReasonNotUtf8 => close::BAD_DATA,
            _ => close::PROTOCOL,
        }
    }

    /// A short reason for the close frame.
    pub fn reason(self) -> &'static str {
        match self {
            FrameError::ReservedBits => "reserved bits set",
            FrameError::UnknownOpcode => "unknown opcode",
            FrameError::Unmasked => "client frames must be masked",
            FrameError::Masked => "server frames must not be masked",
            FrameError::BadLength => "bad length",
            FrameError::BadControl => "bad control frame",
            FrameError::TooBig => "message too big",
            FrameError::BadClose => "bad close frame",
            FrameError::BadCloseCode => "bad close code",
            FrameError::CloseReasonNotUtf8 => "close reason not UTF-8",
        }
    }
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.reason())
    }
}

impl core::error::Error for FrameError {}

/// Who sent the frames being parsed: client frames must be masked, server
/// frames must not be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// Parsing what a client sent (the daemon).
    Client,
    /// Parsing what a server sent (the SDK).
    Server,
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The final fragment of its message.
    pub fin: bool,
    /// The opcode.
    pub op: Op,
    /// The masking key (client frames).
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes (at most the caller's `max_payload`).
    pub payload_len: usize,
    /// Header length in bytes: the payload starts here.
    pub len: usize,
}

/// Parses the frame header at the start of `buf`. `Ok(None)`: incomplete.
///
/// Payloads above `max_payload` are refused from the header alone, before
/// any of the payload is buffered.
///
/// # Errors
/// [`FrameError`] for a header that breaks RFC 6455 §5.2 or the limit.
pub fn parse_header(
    buf: &[u8],
    from: Sender,
    max_payload: usize,
) -> Result<Option<Header>, FrameError> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(FrameError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let op = Op::from_u8(b0 & 0x0f).ok_or(FrameError::UnknownOpcode)?;
    let masked = b1 & 0x80 != 0;
    match (from, masked) {
        (Sender::Client, false) => return Err(FrameError::Unmasked),
        (Sender::Server, true) => return Err(FrameError::Masked),
        _ => {}
    }
    let (len, mut at) = match b1 & 0x7f {
        126 => {
            let Some(b) = buf.get(2..4) else {
                return Ok(None);
            };
            (u64::from(u16::from_be_bytes([b[0], b[1]])), 4)
        }
        127 => {
            let Some(b) = buf.get(2..10) else {
                return Ok(None);
            };
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            let n = u64::from_be_bytes(a);
            if n >> 63 != 0 {
                return Err(FrameError::BadLength);
            }
            (n, 10)
        }
        n => (u64::from(n), 2),
    };
    if op.is_control() && (len > MAX_CONTROL_PAYLOAD as u64 || !fin) {
        return Err(FrameError::BadControl);
    }
    if len > max_payload as u64 {
        return Err(FrameError::TooBig);
    }
    let mask = if masked {
        let Some(m) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        at += 4;
        Some([m[0], m[1], m[2], m[3]])
    } else {
        None
    };
    Ok(Some(Header {
        fin,
        op,
        mask,
        // At most `max_payload`, a usize.
        payload_len: len as usize,
        len: at,
    }))
}

/// Writes the header of a frame with `payload_len` bytes of payload (FIN
/// set), masked with `mask` if given; returns its length.
pub fn write_header(
    op: Op,
    payload_len: usize,
    mask: Option<[u8; 4]>,
    out: &mut [u8; MAX_HEADER],
) -> usize {
    out[0] = 0x80 | op as u8;
    let m = if mask.is_some() { 0x80 } else { 0 };
    let mut at = if payload_len < 126 {
        out[1] = m | payload_len as u8;
        2
    } else if payload_len <= 0xffff {
        out[1] = m | 126;
        out[2..4].copy_from_slice(&(payload_len as u16).to_be_bytes());
        4
    } else {
        out[1] = m | 127;
        out[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
        10
    };
    if let Some(k) = mask {
        out[at..at + 4].copy_from_slice(&k);
        at += 4;
    }
    at
}

/// Masks or unmasks `payload` in place (the same XOR both ways).
pub fn apply_mask(payload: &mut [u8], mask: [u8; 4]) {
    // Eight bytes per step (a 2 KB SDP is 256 steps, not 2,048): every
    // chunk starts at a multiple of 8, so the mask lines up with byte 0.
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// A close frame's payload: `code` and `reason`, the reason cut to 123
/// bytes on a character boundary.
pub fn close_payload<'o>(code: u16, reason: &str, out: &'o mut [u8; 125]) -> &'o [u8] {
    let mut cut = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    out[..2].copy_from_slice(&code.to_be_bytes());
    out[2..2 + cut].copy_from_slice(&reason.as_bytes()[..cut]);
    &out[..2 + cut]
}

/// Checks a received close payload: empty, or a code one may send and a
/// UTF-8 reason. Returns the code to echo (1000 for an empty one).
///
/// # Errors
/// [`FrameError::BadClose`], [`FrameError::BadCloseCode`],
/// [`FrameError::CloseReasonNotUtf8`].
pub fn check_close(payload: &[u8]) -> Result<u16, FrameError> {
    match payload {
        [] => Ok(close::NORMAL),
        [_] => Err(FrameError::BadClose),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            let valid = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
            if !valid {
                return Err(FrameError::BadCloseCode);
            }
            core::str::from_utf8(reason).map_err(|_| FrameError::CloseReasonNotUtf8)?;
            Ok(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_both_directions() {
        for n in [0usize, 1, 125, 126, 65535, 65536, 70000] {
            for mask in [None, Some([0x37, 0xfa, 0x21, 0x3d])] {
                let mut h = [0u8; MAX_HEADER];
                let len = write_header(Op::Text, n, mask, &mut h);
                let from = if mask.is_some() {
                    Sender::Client
                } else {
                    Sender::Server
                };
                let got = parse_header(&h[..len], from, 100_000).unwrap().unwrap();
                assert_eq!(
                    got,
                    Header {
                        fin: true,
                        op: Op::Text,
                        mask,
                        payload_len: n,
                        len
                    }
                );
                for cut in 0..len {
                    assert_eq!(parse_header(&h[..cut], from, 100_000), Ok(None));
                }
                let wrong = if mask.is_some() {
                    Sender::Server
                } else {
                    Sender::Client
                };
                assert!(parse_header(&h[..len], wrong, 100_000).is_err());
            }
        }
    }

    #[test]
    fn mask_matches_the_bytewise_definition() {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut plain = [0u8; 2003];
        for (i, b) in plain.iter_mut().enumerate() {
            *b = (i * 7 + 1) as u8;
        }
        for n in [0usize, 1, 3, 4, 7, 8, 9, 15, 16, 17, 2003] {
            let mut got = plain;
            apply_mask(&mut got[..n], mask);
            for (i, (g, p)) in got.iter().zip(plain).enumerate() {
                let want = if i < n { p ^ mask[i % 4] } else { p };
                assert_eq!(*g, want, "{n} bytes, byte {i}");
            }
        }
    }

    #[test]
    fn close_payloads_cut_on_a_char_boundary() {
        let mut out = [0u8; 125];
        let reason = "é".repeat(70); // 140 bytes
        let p = close_payload(4000, &reason, &mut out);
        assert_eq!(p.len(), 2 + 122);
        assert_eq!(check_close(p), Ok(4000));
        assert_eq!(check_close(&[0x03, 0xed]), Err(FrameError::BadCloseCode));
        assert_eq!(
            check_close(&[0x03, 0xe8, 0xff]).unwrap_err().close_code(),
            1007
        );
    }
}
