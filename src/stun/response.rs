//! Writing responses: a checked writer and the two replies the responder
//! sends, Binding success and 420 Unknown Attribute.

use std::net::{IpAddr, SocketAddr};

use super::message::{
    FAMILY_IPV4, FAMILY_IPV6, HEADER_LEN, MAGIC_COOKIE, fingerprint, padding, xor_address, xor_port,
};
use super::{SOFTWARE, StunError, attr};

/// Binding success response (class 0b10, method 0x001).
pub(crate) const BINDING_SUCCESS: u16 = 0x0101;
/// Binding error response (class 0b11, method 0x001).
pub(crate) const BINDING_ERROR: u16 = 0x0111;
const UNKNOWN_ATTRIBUTE_REASON: &[u8] = b"Unknown Attribute";

/// Appends to a caller's buffer; running out of room is an error, not a panic.
struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, len: 0 }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), StunError> {
        let end = self
            .len
            .checked_add(bytes.len())
            .ok_or(StunError::ResponseTooLarge)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(StunError::ResponseTooLarge)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    fn put_u16(&mut self, v: u16) -> Result<(), StunError> {
        self.put(&v.to_be_bytes())
    }

    /// An attribute whose value is the concatenation of `parts`, padded.
    fn attribute(&mut self, ty: u16, parts: &[&[u8]]) -> Result<(), StunError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        self.put_u16(ty)?;
        self.put_u16(u16::try_from(len).map_err(|_| StunError::ResponseTooLarge)?)?;
        for part in parts {
            self.put(part)?;
        }
        self.pad(len)
    }

    /// Zero padding after a value of `len` bytes.
    fn pad(&mut self, len: usize) -> Result<(), StunError> {
        let zeros = [0u8; 3];
        self.put(
            zeros
                .get(..padding(len))
                .ok_or(StunError::ResponseTooLarge)?,
        )
    }

    /// Overwrites the header's length field with `body_len`.
    fn set_length(&mut self, body_len: usize) -> Result<(), StunError> {
        let v = u16::try_from(body_len).map_err(|_| StunError::ResponseTooLarge)?;
        self.buf
            .get_mut(2..4)
            .ok_or(StunError::ResponseTooLarge)?
            .copy_from_slice(&v.to_be_bytes());
        Ok(())
    }

    /// Appends FINGERPRINT (length field first, since the CRC covers it) and
    /// returns the message's total length.
    fn finish(mut self) -> Result<usize, StunError> {
        let body_len = self
            .len
            .checked_sub(HEADER_LEN)
            .ok_or(StunError::ResponseTooLarge)?;
        self.set_length(body_len + 8)?;
        let covered = self
            .buf
            .get(..self.len)
            .ok_or(StunError::ResponseTooLarge)?;
        let crc = fingerprint(covered).to_be_bytes();
        self.attribute(attr::FINGERPRINT, &[&crc])?;
        Ok(self.len)
    }
}

fn header(
    w: &mut Writer<'_>,
    message_type: u16,
    transaction_id: &[u8; 12],
) -> Result<(), StunError> {
    w.put_u16(message_type)?;
    w.put_u16(0)?; // set by `finish`
    w.put(&MAGIC_COOKIE.to_be_bytes())?;
    w.put(transaction_id)
}

/// Writes a Binding success response telling `from` its own address:
/// XOR-MAPPED-ADDRESS, SOFTWARE, FINGERPRINT. Returns the length written.
pub(super) fn write_success(
    out: &mut [u8],
    transaction_id: &[u8; 12],
    from: SocketAddr,
) -> Result<usize, StunError> {
    let mut w = Writer::new(out);
    header(&mut w, BINDING_SUCCESS, transaction_id)?;
    let port = xor_port(from.port()).to_be_bytes();
    // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; they are
    // IPv4 to their NAT and their ICE agent, so answer with family IPv4.
    match from.ip().to_canonical() {
        IpAddr::V4(ip) => {
            let mut ip = ip.octets();
            xor_address(&mut ip, transaction_id);
            w.attribute(attr::XOR_MAPPED_ADDRESS, &[&[0, FAMILY_IPV4], &port, &ip])?;
        }
        IpAddr::V6(ip) => {
            let mut ip = ip.octets();
            xor_address(&mut ip, transaction_id);
            w.attribute(attr::XOR_MAPPED_ADDRESS, &[&[0, FAMILY_IPV6], &port, &ip])?;
        }
    }
    w.attribute(attr::SOFTWARE, &[SOFTWARE.as_bytes()])?;
    w.finish()
}

/// Writes a 420 Unknown Attribute error response listing `unknown`
/// (RFC 8489 §6.3.1.1): ERROR-CODE, UNKNOWN-ATTRIBUTES, SOFTWARE,
/// FINGERPRINT. Returns the length written.
pub(super) fn write_unknown_attributes(
    out: &mut [u8],
    transaction_id: &[u8; 12],
    unknown: &[u16],
) -> Result<usize, StunError> {
    let mut w = Writer::new(out);
    header(&mut w, BINDING_ERROR, transaction_id)?;
    // Reserved 21 bits, class 4, number 20, then the reason phrase.
    w.attribute(
        attr::ERROR_CODE,
        &[&[0, 0, 4, 20], UNKNOWN_ATTRIBUTE_REASON],
    )?;
    let len = unknown
        .len()
        .checked_mul(2)
        .ok_or(StunError::ResponseTooLarge)?;
    w.put_u16(attr::UNKNOWN_ATTRIBUTES)?;
    w.put_u16(u16::try_from(len).map_err(|_| StunError::ResponseTooLarge)?)?;
    for &ty in unknown {
        w.put_u16(ty)?;
    }
    // RFC 8489 pads this like any other attribute (RFC 3489 repeated an entry).
    w.pad(len)?;
    w.attribute(attr::SOFTWARE, &[SOFTWARE.as_bytes()])?;
    w.finish()
}
