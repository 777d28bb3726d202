//! A WebSocket client codec (RFC 6455), sans-IO and allocation-free: the
//! opening handshake, masked client frames, and a decoder for server frames
//! that assembles fragmented text messages in a fixed buffer. The frame
//! format itself is botcall-core's ([`botcall_core::ws`]), shared with the
//! daemon.
//!
//! The `std` client uses it over a TCP (or TLS) stream; firmware can use it
//! over its own network stack.

use base64ct::{Base64, Encoding};
use sha1::{Digest, Sha1};

use botcall_core::ws::{self as frame, FrameError, Sender};

use crate::client::MAX_MESSAGE_LEN;

/// Frame opcodes (botcall-core's, `op as u8` is the wire value).
pub use botcall_core::ws::Op as Opcode;
/// A close frame's payload: the code and a reason (≤ 123 bytes, cut on a
/// character boundary).
pub use botcall_core::ws::close_payload;

/// Largest frame payload accepted (a whole signaling message).
pub const MAX_PAYLOAD: usize = MAX_MESSAGE_LEN;
/// Largest frame header (2 + 8 length bytes + 4 mask bytes).
pub const MAX_HEADER: usize = frame::MAX_HEADER;
/// Size of the decoder's receive buffer.
pub const RECV_BUF_LEN: usize = MAX_PAYLOAD + MAX_HEADER;
/// Largest handshake response head accepted.
pub const MAX_RESPONSE_HEAD: usize = 4096;

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What went wrong on the WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsError {
    /// The output buffer is too small.
    BufferTooSmall,
    /// The handshake response is not HTTP, or too long.
    BadResponse,
    /// The server answered the upgrade with this status instead of 101.
    Status(u16),
    /// `Upgrade`/`Connection` headers missing, or a wrong `Sec-WebSocket-Accept`.
    BadAccept,
    /// A frame breaks the protocol (reserved bits, unknown opcode, a masked
    /// server frame, a fragmented or oversized control frame, bad continuation).
    Protocol,
    /// A message longer than [`MAX_PAYLOAD`].
    TooLarge,
    /// A text message that is not UTF-8.
    BadUtf8,
}

impl core::fmt::Display for WsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WsError::BufferTooSmall => f.write_str("buffer too small"),
            WsError::BadResponse => f.write_str("malformed WebSocket handshake response"),
            WsError::Status(s) => write!(f, "WebSocket upgrade refused with HTTP {s}"),
            WsError::BadAccept => {
                f.write_str("WebSocket handshake response does not accept our key")
            }
            WsError::Protocol => f.write_str("WebSocket protocol violation"),
            WsError::TooLarge => f.write_str("WebSocket message too large"),
            WsError::BadUtf8 => f.write_str("WebSocket text message is not UTF-8"),
        }
    }
}

impl core::error::Error for WsError {}

struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Cursor<'_> {
    fn put(&mut self, b: &[u8]) -> Result<(), WsError> {
        let end = self.len + b.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(WsError::BufferTooSmall)?
            .copy_from_slice(b);
        self.len = end;
        Ok(())
    }
}

/// The base64 `Sec-WebSocket-Key` for 16 random bytes.
pub fn key_b64(key: &[u8; 16]) -> [u8; 24] {
    let mut out = [0u8; 24];
    // 16 bytes always encode to exactly 24 characters.
    let _ = Base64::encode(key, &mut out);
    out
}

/// Writes the opening handshake request for `path` on `host` (the `Host`
/// header value, with port if not the default). `bearer` adds an
/// `Authorization: Bearer` header.
///
/// # Errors
/// [`WsError::BufferTooSmall`].
pub fn write_request<'o>(
    host: &str,
    path: &str,
    key: &[u8; 16],
    bearer: Option<&str>,
    out: &'o mut [u8],
) -> Result<&'o [u8], WsError> {
    let k = key_b64(key);
    let mut c = Cursor { buf: out, len: 0 };
    c.put(b"GET ")?;
    c.put(path.as_bytes())?;
    c.put(b" HTTP/1.1\r\nHost: ")?;
    c.put(host.as_bytes())?;
    c.put(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ")?;
    c.put(&k)?;
    c.put(b"\r\n")?;
    if let Some(t) = bearer {
        c.put(b"Authorization: Bearer ")?;
        c.put(t.as_bytes())?;
        c.put(b"\r\n")?;
    }
    c.put(b"\r\n")?;
    let n = c.len;
    Ok(&out[..n])
}

fn header_has_token(v: &[u8], token: &str) -> bool {
    core::str::from_utf8(v)
        .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// Checks the server's handshake response in `buf`. Returns `Ok(None)` while
/// the head is incomplete, `Ok(Some(n))` with the head's length when it is
/// complete and valid (bytes after it are the first frames).
///
/// # Errors
/// [`WsError::BadResponse`], [`WsError::Status`], [`WsError::BadAccept`].
pub fn check_response(buf: &[u8], key: &[u8; 16]) -> Result<Option<usize>, WsError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < MAX_RESPONSE_HEAD => return Ok(None),
        _ => return Err(WsError::BadResponse),
    };
    match resp.code {
        Some(101) => {}
        Some(c) => return Err(WsError::Status(c)),
        None => return Err(WsError::BadResponse),
    }
    let mut h = Sha1::new();
    h.update(key_b64(key));
    h.update(GUID);
    let digest = h.finalize();
    let mut want = [0u8; 28];
    let want = Base64::encode(&digest, &mut want).map_err(|_| WsError::BadAccept)?;
    let (mut upgrade, mut connection, mut accept) = (false, false, false);
    for hd in resp.headers.iter() {
        if hd.name.eq_ignore_ascii_case("upgrade") {
            upgrade |= header_has_token(hd.value, "websocket");
        } else if hd.name.eq_ignore_ascii_case("connection") {
            connection |= header_has_token(hd.value, "upgrade");
        } else if hd.name.eq_ignore_ascii_case("sec-websocket-accept") {
            accept |= hd.value == want.as_bytes();
        }
    }
    if upgrade && connection && accept {
        Ok(Some(n))
    } else {
        Err(WsError::BadAccept)
    }
}

/// Writes one masked client frame (FIN set). `mask` should be unpredictable
/// per frame (RFC 6455 §5.3).
///
/// # Errors
/// [`WsError::BufferTooSmall`]; [`WsError::Protocol`] for a control frame
/// over 125 bytes.
pub fn encode_frame<'o>(
    op: Opcode,
    payload: &[u8],
    mask: [u8; 4],
    out: &'o mut [u8],
) -> Result<&'o [u8], WsError> {
    if op.is_control() && payload.len() > frame::MAX_CONTROL_PAYLOAD {
        return Err(WsError::Protocol);
    }
    let mut head = [0u8; MAX_HEADER];
    let hlen = frame::write_header(op, payload.len(), Some(mask), &mut head);
    let len = hlen + payload.len();
    let dst = out.get_mut(..len).ok_or(WsError::BufferTooSmall)?;
    dst[..hlen].copy_from_slice(&head[..hlen]);
    dst[hlen..].copy_from_slice(payload);
    frame::apply_mask(&mut dst[hlen..], mask);
    Ok(&out[..len])
}

/// One thing the server sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole text message.
    Text(&'a str),
    /// A ping: answer with a pong carrying the same payload.
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// The server closes; the code if it gave one.
    Close(Option<u16>),
}

/// Decodes server frames from bytes read off the socket.
///
/// Read into [`Decoder::read_buf`], report the count with
/// [`Decoder::filled`], then call [`Decoder::next_frame`] until it returns
/// `Ok(None)`. Fixed memory: [`RECV_BUF_LEN`] + [`MAX_PAYLOAD`] bytes.
pub struct Decoder {
    buf: [u8; RECV_BUF_LEN],
    len: usize,
    /// Bytes of the frame returned last, dropped on the next call.
    consumed: usize,
    msg: [u8; MAX_PAYLOAD],
    msg_len: usize,
    in_message: bool,
}

impl core::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decoder")
            .field("buffered", &self.len)
            .field("in_message", &self.in_message)
            .finish()
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// An empty decoder.
    pub const fn new() -> Self {
        Decoder {
            buf: [0; RECV_BUF_LEN],
            len: 0,
            consumed: 0,
            msg: [0; MAX_PAYLOAD],
            msg_len: 0,
            in_message: false,
        }
    }

    fn compact(&mut self) {
        if self.consumed > 0 {
            self.buf.copy_within(self.consumed..self.len, 0);
            self.len -= self.consumed;
            self.consumed = 0;
        }
    }

    /// Free space to read into (never empty while the decoder is usable:
    /// a frame larger than the buffer is an error before it fills up).
    pub fn read_buf(&mut self) -> &mut [u8] {
        self.compact();
        &mut self.buf[self.len..]
    }

    /// `n` bytes were written into [`Decoder::read_buf`].
    pub fn filled(&mut self, n: usize) {
        self.len = (self.len + n).min(RECV_BUF_LEN);
    }

    /// Copies `bytes` in (e.g. what followed the handshake response).
    ///
    /// # Errors
    /// [`WsError::TooLarge`] if they do not fit.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), WsError> {
        let dst = self.read_buf();
        let d = dst.get_mut(..bytes.len()).ok_or(WsError::TooLarge)?;
        d.copy_from_slice(bytes);
        self.filled(bytes.len());
        Ok(())
    }

    /// The next complete frame or message, `Ok(None)` if more bytes are needed.
    ///
    /// # Errors
    /// [`WsError`]: the connection must be closed (1002, or 1009 for
    /// `TooLarge`, 1007 for `BadUtf8`).
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, WsError> {
        loop {
            self.compact();
            let b = &self.buf[..self.len];
            let h = match frame::parse_header(b, Sender::Server, MAX_PAYLOAD) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(None),
                Err(FrameError::TooBig) => return Err(WsError::TooLarge),
                // Reserved bits or opcodes, a masked server frame, a bad
                // length, a fragmented or oversized control frame.
                Err(_) => return Err(WsError::Protocol),
            };
            let (fin, op, hlen, plen) = (h.fin, h.op, h.len, h.payload_len);
            if b.len() < hlen + plen {
                return Ok(None);
            }
            self.consumed = hlen + plen;
            match op {
                Opcode::Close => {
                    let payload = &self.buf[hlen..hlen + plen];
                    let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                    return Ok(Some(Frame::Close(code)));
                }
                Opcode::Ping => {
                    let p = &self.buf[hlen..hlen + plen];
                    return Ok(Some(Frame::Ping(p)));
                }
                Opcode::Pong => return Ok(Some(Frame::Pong)),
                Opcode::Text | Opcode::Continuation => {
                    let start = op == Opcode::Text;
                    if start == self.in_message {
                        return Err(WsError::Protocol); // continuation without start, or a new start mid-message
                    }
                    if start && fin {
                        let p = &self.buf[hlen..hlen + plen];
                        let t = core::str::from_utf8(p).map_err(|_| WsError::BadUtf8)?;
                        return Ok(Some(Frame::Text(t)));
                    }
                    let end = self.msg_len + plen;
                    let dst = self
                        .msg
                        .get_mut(self.msg_len..end)
                        .ok_or(WsError::TooLarge)?;
                    dst.copy_from_slice(&self.buf[hlen..hlen + plen]);
                    self.msg_len = end;
                    self.in_message = !fin;
                    if fin {
                        let n = self.msg_len;
                        self.msg_len = 0;
                        let t =
                            core::str::from_utf8(&self.msg[..n]).map_err(|_| WsError::BadUtf8)?;
                        return Ok(Some(Frame::Text(t)));
                    }
                    // A middle fragment: keep going.
                }
                Opcode::Binary => return Err(WsError::Protocol),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(fin: bool, op: u8, payload: &[u8]) -> std::vec::Vec<u8> {
        let mut v = std::vec![(if fin { 0x80 } else { 0 }) | op];
        let n = payload.len();
        if n < 126 {
            v.push(n as u8);
        } else if n <= 0xFFFF {
            v.push(126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            v.push(127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn rfc_accept_key() {
        // RFC 6455 §1.3: key "dGhlIHNhbXBsZSBub25jZQ==" → accept "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".
        let key: [u8; 16] = *b"the sample nonce";
        assert_eq!(&key_b64(&key), b"dGhlIHNhbXBsZSBub25jZQ==");
        let resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x02hi";
        let n = check_response(resp, &key).unwrap().unwrap();
        assert_eq!(&resp[n..], b"\x81\x02hi");
        assert_eq!(check_response(&resp[..20], &key), Ok(None));
        let bad = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n";
        assert_eq!(check_response(bad, &key), Err(WsError::BadAccept));
        let refused = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(check_response(refused, &key), Err(WsError::Status(503)));
        assert_eq!(
            check_response(b"SSH-2.0-OpenSSH\r\n\r\n", &key),
            Err(WsError::BadResponse)
        );
        let mut out = [0u8; 256];
        let req = write_request("127.0.0.1:8080", "/v1/ws", &key, None, &mut out).unwrap();
        let text = core::str::from_utf8(req).unwrap();
        assert!(text.starts_with("GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        assert!(text.contains("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        assert_eq!(
            write_request("h", "/", &key, None, &mut [0u8; 10]),
            Err(WsError::BufferTooSmall)
        );
    }

    #[test]
    fn encodes_masked_frames() {
        let mut out = [0u8; 300];
        let f = encode_frame(Opcode::Text, b"Hello", [0x37, 0xfa, 0x21, 0x3d], &mut out).unwrap();
        // RFC 6455 §5.7 masked "Hello".
        assert_eq!(
            f,
            &[
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
        let long = [b'a'; 200];
        let f = encode_frame(Opcode::Text, &long, [0; 4], &mut out).unwrap();
        assert_eq!(&f[..4], &[0x81, 0xFE, 0x00, 200]);
        assert_eq!(
            encode_frame(Opcode::Ping, &long, [0; 4], &mut out),
            Err(WsError::Protocol)
        );
        assert_eq!(
            encode_frame(Opcode::Text, &long, [0; 4], &mut [0u8; 50]),
            Err(WsError::BufferTooSmall)
        );
    }

    #[test]
    fn decodes_frames_split_anywhere() {
        let mut wire = server_frame(true, 1, br#"{"type":"pong"}"#);
        wire.extend(server_frame(true, 9, b"p"));
        wire.extend(server_frame(false, 1, b"frag"));
        wire.extend(server_frame(true, 0, b"ment"));
        let big = std::vec![b'x'; 1000];
        wire.extend(server_frame(true, 1, &big));
        wire.extend(server_frame(true, 8, &[0x03, 0xE8]));
        for chunk in [1usize, 2, 3, 7, 64, 5000] {
            let mut d = Decoder::new();
            let mut got = std::vec::Vec::new();
            for piece in wire.chunks(chunk) {
                d.push(piece).unwrap();
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(
                        std::format!("{f:?}")
                            .chars()
                            .take(40)
                            .collect::<std::string::String>(),
                    );
                }
            }
            assert_eq!(got.len(), 5, "chunk {chunk}: {got:?}");
            assert!(got[0].contains("pong"));
            assert_eq!(got[1], "Ping([112])");
            assert_eq!(got[2], "Text(\"fragment\")");
            assert!(got[3].starts_with("Text(\"xxx"));
            assert_eq!(got[4], "Close(Some(1000))");
        }
    }

    #[test]
    fn refuses_bad_frames() {
        let cases: [(std::vec::Vec<u8>, WsError); 7] = [
            (std::vec![0x81 | 0x40, 0], WsError::Protocol), // RSV1
            (std::vec![0x81, 0x81, 0, 0, 0, 0, b'a'], WsError::Protocol), // masked
            (std::vec![0x82, 1, 0], WsError::Protocol),     // binary
            (std::vec![0x83, 0], WsError::Protocol),        // reserved opcode
            (std::vec![0x09, 0], WsError::Protocol),        // fragmented ping
            (std::vec![0x80, 1, b'a'], WsError::Protocol),  // continuation without start
            (std::vec![0x81, 2, 0xC3, 0x28], WsError::BadUtf8),
        ];
        for (bytes, want) in cases {
            let mut d = Decoder::new();
            d.push(&bytes).unwrap();
            assert_eq!(d.next_frame(), Err(want), "{bytes:?}");
        }
        let mut d = Decoder::new();
        d.push(&[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]).unwrap();
        assert_eq!(d.next_frame(), Err(WsError::TooLarge));
        let mut d = Decoder::new();
        d.push(&[0x89, 126, 0, 200]).unwrap();
        assert_eq!(d.next_frame(), Err(WsError::Protocol));
        // A new text frame in the middle of a fragmented message.
        let mut d = Decoder::new();
        d.push(&server_frame(false, 1, b"a")).unwrap();
        d.push(&server_frame(true, 1, b"b")).unwrap();
        assert_eq!(d.next_frame(), Err(WsError::Protocol));
        // Fragments adding up to more than a message.
        let mut d = Decoder::new();
        let part = std::vec![b'a'; MAX_PAYLOAD / 2 + 1];
        d.push(&server_frame(false, 1, &part)).unwrap();
        assert_eq!(d.next_frame(), Ok(None));
        d.push(&server_frame(true, 0, &part)).unwrap();
        assert_eq!(d.next_frame(), Err(WsError::TooLarge));
    }

    #[test]
    fn deterministic_garbage_never_panics() {
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let mut d = Decoder::new();
            let mut bytes = [0u8; 64];
            for b in bytes.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            let _ = d.push(&bytes);
            for _ in 0..8 {
                match d.next_frame() {
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
        }
    }
}
