//! STUN (RFC 8489) messages, the one codec of both ends: the daemon's
//! Binding responder writes its replies with it, the SDK's Binding probe and
//! TURN client read and write theirs. Fixed buffers, no allocation; every
//! read of input is bounds-checked.
//!
//! - [`MessageWriter`] encodes a message into a caller's buffer: attributes
//!   (padded to 4 bytes), XOR-encoded addresses, MESSAGE-INTEGRITY
//!   (HMAC-SHA1, RFC 8489 §14.5) and FINGERPRINT (§14.7).
//! - [`Message`] is a checked view of a received message: method, class,
//!   transaction id, attributes, integrity and fingerprint checks.
//! - [`binding_request`] / [`parse_binding_response`]: the Binding exchange
//!   that learns the bot's reflexive address from the daemon's responder.
//! - [`crc32`] / [`fingerprint`]: the one CRC-32 of FINGERPRINT.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// The STUN magic cookie.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of the STUN header (and of a Binding request without attributes).
pub const HEADER_LEN: usize = 20;
/// Length of a Binding request without attributes.
pub const REQUEST_LEN: usize = HEADER_LEN;
/// Length of a MESSAGE-INTEGRITY attribute (header + HMAC-SHA1).
pub const INTEGRITY_LEN: usize = 24;
/// Length of a FINGERPRINT attribute (header + CRC-32).
pub const FINGERPRINT_LEN: usize = 8;
/// XORed into the CRC-32 of FINGERPRINT (RFC 8489 §14.7), so it differs
/// from other CRCs over the same bytes.
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// STUN and TURN methods (RFC 8489 §18.2, RFC 8656 §17).
pub mod method {
    /// Binding.
    pub const BINDING: u16 = 0x001;
    /// TURN Allocate.
    pub const ALLOCATE: u16 = 0x003;
    /// TURN Refresh.
    pub const REFRESH: u16 = 0x004;
    /// TURN Send (indication).
    pub const SEND: u16 = 0x006;
    /// TURN Data (indication).
    pub const DATA: u16 = 0x007;
    /// TURN CreatePermission.
    pub const CREATE_PERMISSION: u16 = 0x008;
    /// TURN ChannelBind.
    pub const CHANNEL_BIND: u16 = 0x009;
}

/// Attribute types (RFC 8489 §18.3, RFC 8656 §18).
pub mod attr {
    /// MAPPED-ADDRESS.
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// USERNAME.
    pub const USERNAME: u16 = 0x0006;
    /// MESSAGE-INTEGRITY (HMAC-SHA1).
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// ERROR-CODE.
    pub const ERROR_CODE: u16 = 0x0009;
    /// UNKNOWN-ATTRIBUTES (in a 420 reply).
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    /// CHANNEL-NUMBER.
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    /// LIFETIME (seconds).
    pub const LIFETIME: u16 = 0x000D;
    /// XOR-PEER-ADDRESS.
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    /// DATA.
    pub const DATA: u16 = 0x0013;
    /// REALM.
    pub const REALM: u16 = 0x0014;
    /// NONCE.
    pub const NONCE: u16 = 0x0015;
    /// XOR-RELAYED-ADDRESS.
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    /// REQUESTED-TRANSPORT.
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    /// MESSAGE-INTEGRITY-SHA256.
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    /// PASSWORD-ALGORITHM.
    pub const PASSWORD_ALGORITHM: u16 = 0x001D;
    /// USERHASH.
    pub const USERHASH: u16 = 0x001E;
    /// XOR-MAPPED-ADDRESS.
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// PRIORITY (ICE).
    pub const PRIORITY: u16 = 0x0024;
    /// USE-CANDIDATE (ICE).
    pub const USE_CANDIDATE: u16 = 0x0025;
    /// SOFTWARE.
    pub const SOFTWARE: u16 = 0x8022;
    /// FINGERPRINT.
    pub const FINGERPRINT: u16 = 0x8028;
}

/// Why a datagram is not the message we want, or a message does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StunError {
    /// Not STUN, truncated, or its attributes overrun the message.
    NotStun,
    /// STUN, but not a Binding success for our transaction.
    NotOurs,
    /// No usable (XOR-)MAPPED-ADDRESS attribute.
    NoAddress,
    /// The output buffer is too small for the message being written.
    BufferTooSmall,
    /// An attribute value longer than a STUN message can carry.
    TooLong,
}

impl core::fmt::Display for StunError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            StunError::NotStun => "not a well-formed STUN message",
            StunError::NotOurs => "not a response to our request",
            StunError::NoAddress => "no usable address attribute",
            StunError::BufferTooSmall => "the buffer is too small for the STUN message",
            StunError::TooLong => "a STUN attribute is too long",
        })
    }
}

impl core::error::Error for StunError {}

/// The class of a message (the C0/C1 bits of its type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A request (expects a response).
    Request,
    /// An indication (no response).
    Indication,
    /// A success response.
    Success,
    /// An error response.
    Error,
}

/// The message type for `method` (12 bits) and `class`.
pub const fn message_type(method: u16, class: Class) -> u16 {
    let c: u16 = match class {
        Class::Request => 0b00,
        Class::Indication => 0b01,
        Class::Success => 0b10,
        Class::Error => 0b11,
    };
    (method & 0x000F)
        | ((method & 0x0070) << 1)
        | ((method & 0x0F80) << 2)
        | ((c & 1) << 4)
        | ((c & 2) << 7)
}

/// Splits a message type into method and class.
pub const fn split_type(t: u16) -> (u16, Class) {
    let method = (t & 0x000F) | ((t >> 1) & 0x0070) | ((t >> 2) & 0x0F80);
    let class = match ((t >> 4) & 1) | ((t >> 7) & 2) {
        0 => Class::Request,
        1 => Class::Indication,
        2 => Class::Success,
        _ => Class::Error,
    };
    (method, class)
}

/// Whether `buf` looks like a STUN message (first two bits zero, cookie).
pub fn is_stun(buf: &[u8]) -> bool {
    buf.len() >= HEADER_LEN && buf[0] & 0xC0 == 0 && buf[4..8] == MAGIC_COOKIE.to_be_bytes()
}

/// HMAC-SHA1 over `parts` with `key`.
fn hmac_sha1(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    // HMAC takes keys of any length: this cannot fail.
    let mut out = [0u8; 20];
    if let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(key) {
        for p in parts {
            mac.update(p);
        }
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// CRC-32 (IEEE 802.3, reflected), as FINGERPRINT uses.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// The FINGERPRINT value for `covered`: everything before the FINGERPRINT
/// attribute, with the header's length already counting it.
pub fn fingerprint(covered: &[u8]) -> u32 {
    crc32(covered) ^ FINGERPRINT_XOR
}

/// Encodes one message into a caller's buffer.
///
/// ```
/// use botcall_core::stun::{Class, Message, MessageWriter, attr, method};
/// let mut buf = [0u8; 64];
/// let mut w = MessageWriter::new(&mut buf, method::BINDING, Class::Request, &[1; 12]).unwrap();
/// w.fingerprint().unwrap();
/// let n = w.finish();
/// let m = Message::parse(&buf[..n]).unwrap();
/// assert_eq!(m.method(), method::BINDING);
/// assert_eq!(m.check_fingerprint(), Some(true));
/// ```
#[derive(Debug)]
pub struct MessageWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> MessageWriter<'a> {
    /// Starts a message of `method`/`class` with transaction id `txid`.
    ///
    /// # Errors
    /// [`StunError::BufferTooSmall`] if `buf` cannot hold the header.
    pub fn new(
        buf: &'a mut [u8],
        method: u16,
        class: Class,
        txid: &[u8; 12],
    ) -> Result<Self, StunError> {
        let h = buf.get_mut(..HEADER_LEN).ok_or(StunError::BufferTooSmall)?;
        h[0..2].copy_from_slice(&message_type(method, class).to_be_bytes());
        h[2..4].copy_from_slice(&[0, 0]);
        h[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        h[8..20].copy_from_slice(txid);
        Ok(MessageWriter {
            buf,
            len: HEADER_LEN,
        })
    }

    fn set_length(&mut self, body: usize) {
        // `body` fits: attribute writes keep `len` below 65 536 + 20.
        self.buf[2..4].copy_from_slice(&(body as u16).to_be_bytes());
    }

    /// Reserves an attribute of `kind` with a `n`-byte value and returns
    /// the value's bytes (padding is zeroed).
    fn reserve(&mut self, kind: u16, n: usize) -> Result<&mut [u8], StunError> {
        let padded = n.div_ceil(4) * 4;
        let alen = u16::try_from(n).map_err(|_| StunError::TooLong)?;
        let end = self.len + 4 + padded;
        if end - HEADER_LEN > usize::from(u16::MAX) {
            return Err(StunError::TooLong);
        }
        let a = self
            .buf
            .get_mut(self.len..end)
            .ok_or(StunError::BufferTooSmall)?;
        a[0..2].copy_from_slice(&kind.to_be_bytes());
        a[2..4].copy_from_slice(&alen.to_be_bytes());
        a[4 + n..].fill(0);
        let start = self.len + 4;
        self.len = end;
        self.set_length(end - HEADER_LEN);
        Ok(&mut self.buf[start..start + n])
    }

    /// Adds an attribute with value `value`.
    ///
    /// # Errors
    /// [`StunError::BufferTooSmall`], [`StunError::TooLong`].
    pub fn attr(&mut self, kind: u16, value: &[u8]) -> Result<(), StunError> {
        self.reserve(kind, value.len())?.copy_from_slice(value);
        Ok(())
    }

    /// Adds a 32-bit attribute (LIFETIME, REQUESTED-TRANSPORT, ...).
    ///
    /// # Errors
    /// [`StunError::BufferTooSmall`].
    pub fn attr_u32(&mut self, kind: u16, v: u32) -> Result<(), StunError> {
        self.attr(kind, &v.to_be_bytes())
    }

    /// Adds an XOR-encoded address attribute (XOR-MAPPED-ADDRESS,
    /// XOR-PEER-ADDRESS, XOR-RELAYED-ADDRESS).
    ///
    /// # Errors
    /// [`StunError::BufferTooSmall`].
    pub fn xor_addr(&mut self, kind: u16, addr: SocketAddr) -> Result<(), StunError> {
        let mut key = [0u8; 16];
        key.copy_from_slice(&self.buf[4..20]);
        let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
        let mut v = [0u8; 20];
        v[2..4].copy_from_slice(&port.to_be_bytes());
        let n = match addr.ip() {
            IpAddr::V4(ip) => {
                v[1] = 1;
                v[4..8].copy_from_slice(&ip.octets());
                8
            }
            IpAddr::V6(ip) => {
                v[1] = 2;
                v[4..20].copy_from_slice(&ip.octets());
                20
            }
        };
        for (b, k) in v[4..n].iter_mut().zip(key) {
            *b ^= k;
        }
        self.attr(kind, &v[..n])
    }

    /// Adds MESSAGE-INTEGRITY: HMAC-SHA1 with `key` (the long-term key from
    /// `long_term_key` of the SDK's TURN client, or a short-term
    /// password) over the message so far,
    /// with the header's length counting the integrity attribute.
    ///
    /// # Errors
    /// [`StunError::BufferTooSmall`].
    pub fn message_integrity(&mut self, key: &[u8]) -> Result<(), StunError> {
        let start = self.len;
        self.reserve(attr::MESSAGE_INTEGRITY, 20)?;
        let mac = hmac_sha1(key, &[&self.buf[..start]]);
        self.buf[start + 4..start + 24].copy_from_slice(&mac);
        Ok(())
    }

    /// Adds FINGERPRINT: CRC-32 of the message so far XOR `0x5354554E`.
    /// It must be the last attribute.
    ///
    /// # Errors
    /// [`StunError::BufferTooSmall`].
    pub fn fingerprint(&mut self) -> Result<(), StunError> {
        let start = self.len;
        self.reserve(attr::FINGERPRINT, 4)?;
        let crc = fingerprint(&self.buf[..start]);
        self.buf[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// The message's length so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether only the header is written.
    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN
    }

    /// Ends the message; returns its length (the bytes are `buf[..len]`).
    pub fn finish(self) -> usize {
        self.len
    }
}

/// A checked view of one STUN message.
///
/// [`Message::parse`] checks the header (zero top bits, the magic cookie,
/// a length that is a multiple of 4 and fits the datagram) and walks the
/// attributes once, so the accessors cannot go out of bounds.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Exactly the message: header + `length` bytes.
    buf: &'a [u8],
    /// Offset of MESSAGE-INTEGRITY, if present.
    integrity_at: Option<usize>,
    /// Offset of FINGERPRINT, if present (and last).
    fingerprint_at: Option<usize>,
}

impl<'a> Message<'a> {
    /// Parses `buf` (trailing bytes past the message's length are ignored).
    ///
    /// # Errors
    /// [`StunError::NotStun`].
    pub fn parse(buf: &'a [u8]) -> Result<Self, StunError> {
        if !is_stun(buf) {
            return Err(StunError::NotStun);
        }
        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        if len % 4 != 0 {
            return Err(StunError::NotStun);
        }
        let buf = buf.get(..HEADER_LEN + len).ok_or(StunError::NotStun)?;
        let mut integrity_at = None;
        let mut fingerprint_at = None;
        let mut at = HEADER_LEN;
        while at < buf.len() {
            let h = buf.get(at..at + 4).ok_or(StunError::NotStun)?;
            let kind = u16::from_be_bytes([h[0], h[1]]);
            let alen = usize::from(u16::from_be_bytes([h[2], h[3]]));
            let next = at + 4 + alen.div_ceil(4) * 4;
            if next > buf.len() {
                return Err(StunError::NotStun);
            }
            if fingerprint_at.is_some() {
                // FINGERPRINT must be last.
                return Err(StunError::NotStun);
            }
            match kind {
                attr::MESSAGE_INTEGRITY if integrity_at.is_none() => {
                    if alen != 20 {
                        return Err(StunError::NotStun);
                    }
                    integrity_at = Some(at);
                }
                attr::FINGERPRINT => {
                    if alen != 4 {
                        return Err(StunError::NotStun);
                    }
                    fingerprint_at = Some(at);
                }
                _ => {}
            }
            at = next;
        }
        Ok(Message {
            buf,
            integrity_at,
            fingerprint_at,
        })
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The raw message type.
    pub fn message_type(&self) -> u16 {
        u16::from_be_bytes([self.buf[0], self.buf[1]])
    }

    /// The method.
    pub fn method(&self) -> u16 {
        split_type(self.message_type()).0
    }

    /// The class.
    pub fn class(&self) -> Class {
        split_type(self.message_type()).1
    }

    /// The transaction id.
    pub fn txid(&self) -> [u8; 12] {
        let mut t = [0u8; 12];
        t.copy_from_slice(&self.buf[8..20]);
        t
    }

    /// Attributes in order as `(type, value)`; those after
    /// MESSAGE-INTEGRITY (other than FINGERPRINT) are not covered by it
    /// and are skipped, as RFC 8489 §14.5 requires.
    pub fn attrs(&self) -> Attrs<'a> {
        Attrs {
            buf: self.buf,
            at: HEADER_LEN,
            integrity_at: self.integrity_at,
        }
    }

    /// The value of the first attribute of `kind`.
    pub fn attr(&self, kind: u16) -> Option<&'a [u8]> {
        self.attrs().find(|(k, _)| *k == kind).map(|(_, v)| v)
    }

    /// A 32-bit attribute (LIFETIME, ...).
    pub fn attr_u32(&self, kind: u16) -> Option<u32> {
        let v = self.attr(kind)?;
        Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
    }

    /// A UTF-8 attribute (REALM, NONCE, SOFTWARE, ...).
    pub fn attr_str(&self, kind: u16) -> Option<&'a str> {
        core::str::from_utf8(self.attr(kind)?).ok()
    }

    /// An XOR-encoded address attribute.
    pub fn xor_addr(&self, kind: u16) -> Option<SocketAddr> {
        decode_addr(self.attr(kind)?, Some(&self.buf[4..20]))
    }

    /// A plain (MAPPED-ADDRESS style) address attribute.
    pub fn plain_addr(&self, kind: u16) -> Option<SocketAddr> {
        decode_addr(self.attr(kind)?, None)
    }

    /// The ERROR-CODE (class × 100 + number), if present and well-formed.
    pub fn error_code(&self) -> Option<u16> {
        let v = self.attr(attr::ERROR_CODE)?;
        let class = u16::from(*v.get(2)? & 0x07);
        let number = u16::from(*v.get(3)?);
        if !(3..=6).contains(&class) || number > 99 {
            return None;
        }
        Some(class * 100 + number)
    }

    /// Whether the message carries MESSAGE-INTEGRITY.
    pub fn has_integrity(&self) -> bool {
        self.integrity_at.is_some()
    }

    /// Whether MESSAGE-INTEGRITY is present and verifies with `key`
    /// (constant-time comparison).
    pub fn check_integrity(&self, key: &[u8]) -> bool {
        let Some(at) = self.integrity_at else {
            return false;
        };
        // The length field counts up to the end of MESSAGE-INTEGRITY.
        let len = ((at + INTEGRITY_LEN - HEADER_LEN) as u16).to_be_bytes();
        let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(key) else {
            return false;
        };
        mac.update(&self.buf[0..2]);
        mac.update(&len);
        mac.update(&self.buf[4..at]);
        mac.verify_slice(&self.buf[at + 4..at + INTEGRITY_LEN])
            .is_ok()
    }

    /// `Some(true)` if FINGERPRINT is present and right, `Some(false)` if
    /// it is wrong, `None` if absent.
    pub fn check_fingerprint(&self) -> Option<bool> {
        let at = self.fingerprint_at?;
        let want = u32::from_be_bytes(self.buf[at + 4..at + 8].try_into().ok()?);
        Some(fingerprint(&self.buf[..at]) == want)
    }
}

/// Iterator over a [`Message`]'s attributes (see [`Message::attrs`]).
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    buf: &'a [u8],
    at: usize,
    integrity_at: Option<usize>,
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let h = self.buf.get(self.at..self.at + 4)?;
            let kind = u16::from_be_bytes([h[0], h[1]]);
            let alen = usize::from(u16::from_be_bytes([h[2], h[3]]));
            let v = self.buf.get(self.at + 4..self.at + 4 + alen)?;
            let here = self.at;
            self.at += 4 + alen.div_ceil(4) * 4;
            if self.integrity_at.is_some_and(|i| here > i) && kind != attr::FINGERPRINT {
                continue;
            }
            return Some((kind, v));
        }
    }
}

/// A Binding request with transaction id `txid`.
pub fn binding_request(txid: &[u8; 12]) -> [u8; REQUEST_LEN] {
    let mut m = [0u8; REQUEST_LEN];
    m[0..2].copy_from_slice(&0x0001u16.to_be_bytes());
    // Message length 0: no attributes.
    m[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    m[8..20].copy_from_slice(txid);
    m
}

/// The mapped address from a Binding success response to `txid`.
///
/// # Errors
/// [`StunError`].
pub fn parse_binding_response(buf: &[u8], txid: &[u8; 12]) -> Result<SocketAddr, StunError> {
    let m = Message::parse(buf)?;
    if m.message_type() != message_type(method::BINDING, Class::Success) || m.txid() != *txid {
        return Err(StunError::NotOurs);
    }
    m.xor_addr(attr::XOR_MAPPED_ADDRESS)
        .or_else(|| m.plain_addr(attr::MAPPED_ADDRESS))
        .ok_or(StunError::NoAddress)
}

/// Decodes a (XOR-)MAPPED-ADDRESS value; `xor` is cookie + transaction id.
fn decode_addr(v: &[u8], xor: Option<&[u8]>) -> Option<SocketAddr> {
    let family = *v.get(1)?;
    let mut port = u16::from_be_bytes([*v.get(2)?, *v.get(3)?]);
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let ip = match family {
        1 => {
            let mut a = [0u8; 4];
            a.copy_from_slice(v.get(4..8)?);
            if let Some(x) = xor {
                for (b, k) in a.iter_mut().zip(x) {
                    *b ^= k;
                }
            }
            IpAddr::V4(Ipv4Addr::from(a))
        }
        2 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(v.get(4..20)?);
            if let Some(x) = xor {
                for (b, k) in a.iter_mut().zip(x) {
                    *b ^= k;
                }
            }
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 §2.1: a Binding request with SOFTWARE, PRIORITY,
    /// ICE-CONTROLLED, USERNAME, short-term MESSAGE-INTEGRITY, FINGERPRINT.
    const RFC5769_REQUEST: [u8; 108] = [
        0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74,
        0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e,
        0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
        0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20,
        0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
        0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5,
        0x7a, 0x3b, 0xcf,
    ];
    /// RFC 5769 §2.2 sample IPv4 response (XOR-MAPPED-ADDRESS 192.0.2.1:32853).
    const RFC5769_RESPONSE: [u8; 80] = [
        0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76,
        0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1,
        0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
        0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00,
        0x04, 0xc0, 0x7d, 0x4c, 0x96,
    ];
    /// The short-term password of §2.1–2.3.
    const RFC5769_PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";
    #[test]
    fn rfc5769_ipv4_response() {
        let resp = RFC5769_RESPONSE;
        let txid: [u8; 12] = resp[8..20].try_into().unwrap();
        assert_eq!(
            parse_binding_response(&resp, &txid),
            Ok("192.0.2.1:32853".parse().unwrap())
        );
        assert_eq!(
            parse_binding_response(&resp, &[0; 12]),
            Err(StunError::NotOurs)
        );
        assert_eq!(
            parse_binding_response(&resp[..30], &txid),
            Err(StunError::NotStun)
        );
        assert_eq!(
            parse_binding_response(b"hello", &txid),
            Err(StunError::NotStun)
        );
        let req = binding_request(&txid);
        assert!(is_stun(&req));
        assert_eq!(&req[..4], &[0, 1, 0, 0]);
    }

    #[test]
    fn rfc5769_short_term_integrity_and_fingerprint() {
        let key = RFC5769_PASSWORD.as_bytes();
        let req = Message::parse(&RFC5769_REQUEST).unwrap();
        assert_eq!(
            (req.method(), req.class()),
            (method::BINDING, Class::Request)
        );
        assert_eq!(req.attr_str(attr::USERNAME), Some("evtj:h6vY"));
        assert_eq!(req.attr_str(attr::SOFTWARE), Some("STUN test client"));
        assert!(req.check_integrity(key));
        assert!(!req.check_integrity(b"wrong"));
        assert_eq!(req.check_fingerprint(), Some(true));
        let resp = Message::parse(&RFC5769_RESPONSE).unwrap();
        assert_eq!(resp.class(), Class::Success);
        assert!(resp.check_integrity(key));
        assert_eq!(resp.check_fingerprint(), Some(true));
        // One flipped bit anywhere breaks both.
        for i in [3usize, 9, 30, 45] {
            let mut bad = RFC5769_RESPONSE;
            bad[i] ^= 0x01;
            if let Ok(m) = Message::parse(&bad) {
                assert!(!m.check_integrity(key), "byte {i}");
                assert_eq!(m.check_fingerprint(), Some(false), "byte {i}");
            }
        }
    }

    #[test]
    fn crc32_and_message_types() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let cases = [
            (method::BINDING, Class::Request, 0x0001),
            (method::BINDING, Class::Success, 0x0101),
            (method::ALLOCATE, Class::Request, 0x0003),
            (method::ALLOCATE, Class::Success, 0x0103),
            (method::ALLOCATE, Class::Error, 0x0113),
            (method::REFRESH, Class::Request, 0x0004),
            (method::SEND, Class::Indication, 0x0016),
            (method::DATA, Class::Indication, 0x0017),
            (method::CREATE_PERMISSION, Class::Request, 0x0008),
            (method::CREATE_PERMISSION, Class::Success, 0x0108),
            (method::CHANNEL_BIND, Class::Error, 0x0119),
        ];
        for (m, c, t) in cases {
            assert_eq!(message_type(m, c), t, "{m:#x} {c:?}");
            assert_eq!(split_type(t), (m, c));
        }
        for t in 0..0x3FFFu16 {
            let (m, c) = split_type(t);
            assert_eq!(message_type(m, c), t);
        }
    }

    #[test]
    fn writer_round_trips_and_checks_space() {
        let txid = [9u8; 12];
        let peer4: SocketAddr = "203.0.113.7:4000".parse().unwrap();
        let peer6: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        let mut buf = [0u8; 160];
        let mut w = MessageWriter::new(&mut buf, method::SEND, Class::Indication, &txid).unwrap();
        w.xor_addr(attr::XOR_PEER_ADDRESS, peer4).unwrap();
        w.xor_addr(attr::XOR_RELAYED_ADDRESS, peer6).unwrap();
        w.attr(attr::DATA, b"hello").unwrap();
        w.attr_u32(attr::LIFETIME, 600).unwrap();
        w.message_integrity(b"k").unwrap();
        w.fingerprint().unwrap();
        let n = w.finish();
        assert_eq!(n % 4, 0);
        let m = Message::parse(&buf[..n]).unwrap();
        assert_eq!((m.method(), m.class()), (method::SEND, Class::Indication));
        assert_eq!(m.txid(), txid);
        assert_eq!(m.xor_addr(attr::XOR_PEER_ADDRESS), Some(peer4));
        assert_eq!(m.xor_addr(attr::XOR_RELAYED_ADDRESS), Some(peer6));
        assert_eq!(m.attr(attr::DATA), Some(&b"hello"[..]));
        assert_eq!(m.attr_u32(attr::LIFETIME), Some(600));
        assert!(m.check_integrity(b"k"));
        assert_eq!(m.check_fingerprint(), Some(true));
        // Too small a buffer is an error at every size, never a panic.
        for size in 0..n {
            let mut small = [0u8; 160];
            let r = (|| {
                let mut w =
                    MessageWriter::new(&mut small[..size], method::SEND, Class::Indication, &txid)?;
                w.xor_addr(attr::XOR_PEER_ADDRESS, peer4)?;
                w.xor_addr(attr::XOR_RELAYED_ADDRESS, peer6)?;
                w.attr(attr::DATA, b"hello")?;
                w.attr_u32(attr::LIFETIME, 600)?;
                w.message_integrity(b"k")?;
                w.fingerprint()?;
                Ok::<usize, StunError>(w.finish())
            })();
            assert_eq!(r, Err(StunError::BufferTooSmall), "size {size}");
        }
        let mut big = [0u8; 8];
        let mut w = MessageWriter::new(&mut buf, method::SEND, Class::Indication, &txid).unwrap();
        assert_eq!(
            w.attr(attr::DATA, &[0u8; 70_000][..]),
            Err(StunError::TooLong)
        );
        assert_eq!(
            MessageWriter::new(&mut big, method::SEND, Class::Indication, &txid).err(),
            Some(StunError::BufferTooSmall)
        );
    }

    #[test]
    fn error_codes_and_attributes_after_integrity() {
        let mut buf = [0u8; 128];
        let mut w = MessageWriter::new(&mut buf, method::ALLOCATE, Class::Error, &[1; 12]).unwrap();
        w.attr(attr::ERROR_CODE, &[0, 0, 4, 38, b'S', b't'])
            .unwrap();
        w.message_integrity(b"k").unwrap();
        // Not covered by the integrity: ignored.
        w.attr(attr::REALM, b"evil").unwrap();
        w.fingerprint().unwrap();
        let n = w.finish();
        let m = Message::parse(&buf[..n]).unwrap();
        assert_eq!(m.error_code(), Some(438));
        assert_eq!(m.attr(attr::REALM), None);
        assert!(m.check_integrity(b"k"));
        assert_eq!(m.check_fingerprint(), Some(true));
        // Bad error classes are not error codes.
        let mut w = MessageWriter::new(&mut buf, method::ALLOCATE, Class::Error, &[1; 12]).unwrap();
        w.attr(attr::ERROR_CODE, &[0, 0, 9, 1]).unwrap();
        let n = w.finish();
        assert_eq!(Message::parse(&buf[..n]).unwrap().error_code(), None);
    }

    #[test]
    fn malformed_messages_are_refused() {
        let ok = RFC5769_RESPONSE;
        // Length not a multiple of 4, longer than the datagram, attribute
        // overrunning the message, FINGERPRINT not last, bad cookie.
        let mut a = ok;
        a[3] = 0x3d;
        assert_eq!(Message::parse(&a).err(), Some(StunError::NotStun));
        let mut b = ok;
        b[3] = 0x40;
        assert_eq!(Message::parse(&b).err(), Some(StunError::NotStun));
        let mut c = ok;
        c[23] = 0x40;
        assert_eq!(Message::parse(&c).err(), Some(StunError::NotStun));
        let mut d = [0u8; 36];
        d[..20].copy_from_slice(&ok[..20]);
        d[3] = 16;
        d[20..28].copy_from_slice(&[0x80, 0x28, 0, 4, 0, 0, 0, 0]);
        d[28..32].copy_from_slice(&[0x00, 0x20, 0, 0]);
        assert_eq!(Message::parse(&d).err(), Some(StunError::NotStun));
        let mut e = ok;
        e[4] = 0;
        assert_eq!(Message::parse(&e).err(), Some(StunError::NotStun));
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 99;
        let txid = [7u8; 12];
        for n in 0..2000usize {
            let mut buf = [0u8; 64];
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            buf[0] = (n % 4) as u8;
            buf[1] = 1;
            buf[2] = 0;
            buf[3] = (n % 48) as u8;
            buf[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            buf[8..20].copy_from_slice(&txid);
            let slice = &buf[..20 + n % 45];
            let _ = parse_binding_response(slice, &txid);
            if let Ok(m) = Message::parse(slice) {
                let _ = (
                    m.error_code(),
                    m.check_integrity(b"k"),
                    m.check_fingerprint(),
                );
                for kind in [attr::XOR_PEER_ADDRESS, attr::LIFETIME, attr::DATA] {
                    let _ = (m.xor_addr(kind), m.attr_u32(kind), m.attr_str(kind));
                }
                let _ = m.attrs().count();
            }
        }
    }
}
