//! Sans-IO WebSocket framing (RFC 6455 §5), server side: parses masked
//! client frames in place, encodes unmasked server frames. The frame
//! format is botcall-core's ([`botcall_core::ws`], shared with the SDK);
//! this is its server half. No buffering policy here — the connection
//! decides what to keep.

use botcall_core::ws::{self as codec, Sender};

/// Frame opcodes.
pub use botcall_core::ws::Op;

/// A frame that must close the connection with this code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameError(pub u16, pub &'static str);

impl From<codec::FrameError> for FrameError {
    fn from(e: codec::FrameError) -> Self {
        FrameError(e.close_code(), e.reason())
    }
}

/// A parsed frame; `payload` is unmasked, inside the caller's buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub fin: bool,
    pub op: Op,
    pub payload: &'a [u8],
}

/// Parses one frame at the start of `buf`, unmasking it in place.
/// `Ok(None)`: incomplete. Otherwise the frame and the bytes it used.
///
/// Payloads above `max_payload` are refused from the header alone, before
/// any of the payload is buffered.
pub fn parse(buf: &mut [u8], max_payload: usize) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some(h) = codec::parse_header(buf, Sender::Client, max_payload)? else {
        return Ok(None);
    };
    let (at, end) = (h.len, h.len + h.payload_len);
    let Some(payload) = buf.get_mut(at..end) else {
        return Ok(None);
    };
    if let Some(mask) = h.mask {
        codec::apply_mask(payload, mask);
    }
    Ok(Some((
        Frame {
            fin: h.fin,
            op: h.op,
            payload: &buf[at..end],
        },
        end,
    )))
}

/// Appends an unmasked, final server frame to `out`.
pub fn encode(op: Op, payload: &[u8], out: &mut Vec<u8>) {
    let mut head = [0u8; codec::MAX_HEADER];
    let n = codec::write_header(op, payload.len(), None, &mut head);
    out.extend_from_slice(&head[..n]);
    out.extend_from_slice(payload);
}

/// A close frame with `code` and `reason` (reason cut to fit 123 bytes on a char boundary).
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut buf = [0u8; 125];
    let payload = codec::close_payload(code, reason, &mut buf);
    let mut out = Vec::with_capacity(4 + payload.len());
    encode(Op::Close, payload, &mut out);
    out
}

/// Checks a received close payload: empty, or a valid code and UTF-8 reason.
/// Returns the code to echo.
pub fn check_close(payload: &[u8]) -> Result<u16, FrameError> {
    Ok(codec::check_close(payload)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use botcall_core::protocol::close;

    fn masked(op: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut v = vec![if fin { 0x80 } else { 0 } | op];
        let n = payload.len();
        if n < 126 {
            v.push(0x80 | n as u8);
        } else if n <= 0xffff {
            v.push(0x80 | 126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            v.push(0x80 | 127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
        v.extend_from_slice(&mask);
        v.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        v
    }

    #[test]
    fn rfc6455_masked_hello() {
        // RFC 6455 §5.7: a single-frame masked text message "Hello".
        let mut f = vec![
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (frame, used) = parse(&mut f, 100).unwrap().unwrap();
        assert_eq!(
            frame,
            Frame {
                fin: true,
                op: Op::Text,
                payload: b"Hello"
            }
        );
        assert_eq!(used, 11);
    }

    #[test]
    fn lengths_and_partials() {
        for n in [0usize, 1, 125, 126, 127, 65535, 65536, 70000] {
            let payload = vec![b'x'; n];
            let full = masked(1, true, &payload);
            for cut in [0, 1, full.len() / 2, full.len() - 1] {
                let mut part = full[..cut].to_vec();
                assert_eq!(parse(&mut part, 100_000), Ok(None), "n={n} cut={cut}");
            }
            let mut buf = full.clone();
            buf.extend_from_slice(b"next");
            let (frame, used) = parse(&mut buf, 100_000).unwrap().unwrap();
            assert_eq!(frame.payload.len(), n);
            assert_eq!(used, full.len());
        }
    }

    #[test]
    fn protocol_violations() {
        let mut unmasked = vec![0x81, 0x01, b'a'];
        assert_eq!(parse(&mut unmasked, 10).unwrap_err().0, close::PROTOCOL);
        let mut rsv = masked(0x41, true, b"a");
        assert_eq!(parse(&mut rsv, 10).unwrap_err().0, close::PROTOCOL);
        let mut op = masked(3, true, b"a");
        assert_eq!(parse(&mut op, 10).unwrap_err().0, close::PROTOCOL);
        let mut frag_ping = masked(9, false, b"a");
        assert_eq!(parse(&mut frag_ping, 10).unwrap_err().0, close::PROTOCOL);
        let mut big_ping = masked(9, true, &[0; 126]);
        assert_eq!(parse(&mut big_ping, 1000).unwrap_err().0, close::PROTOCOL);
        // Too big is refused from the header alone (2 bytes + extended length).
        let mut huge = vec![0x81, 0xff, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(parse(&mut huge, 16384).unwrap_err().0, close::TOO_BIG);
        let mut neg = vec![0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(parse(&mut neg, 16384).unwrap_err().0, close::PROTOCOL);
    }

    #[test]
    fn encodes_server_frames() {
        let mut out = Vec::new();
        encode(Op::Text, b"hi", &mut out);
        assert_eq!(out, [0x81, 2, b'h', b'i']);
        out.clear();
        encode(Op::Text, &[0; 300], &mut out);
        assert_eq!(&out[..4], &[0x81, 126, 1, 44]);
        assert_eq!(
            close_frame(4000, "replaced"),
            [
                0x88, 10, 0x0f, 0xa0, b'r', b'e', b'p', b'l', b'a', b'c', b'e', b'd'
            ]
        );
        assert_eq!(check_close(&[0x03, 0xe8]), Ok(1000));
        assert_eq!(check_close(&[0x03]).unwrap_err().0, close::PROTOCOL);
        assert_eq!(check_close(&[0x03, 0xed]).unwrap_err().0, close::PROTOCOL); // 1005 is reserved
        assert_eq!(
            check_close(&[0x03, 0xe8, 0xff]).unwrap_err().0,
            close::BAD_DATA
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 88172645463325252;
        for _ in 0..50_000 {
            let mut buf: Vec<u8> = (0..(x % 40))
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = parse(&mut buf, 64);
        }
    }
}
