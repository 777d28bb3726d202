//! Reading STUN messages: header and attribute checks, FINGERPRINT, and the
//! XOR used by XOR-MAPPED-ADDRESS.

use super::reader::Reader;
use super::{StunError, attr};

// The header's size, the magic cookie (RFC 8489 §5) and FINGERPRINT's
// CRC-32 (§14.7) are the shared codec's, as the SDK uses them.
use botcall_core::stun::{HEADER_LEN, MAGIC_COOKIE, fingerprint};

/// Address family values in (XOR-)MAPPED-ADDRESS.
pub(crate) const FAMILY_IPV4: u8 = 0x01;
pub(crate) const FAMILY_IPV6: u8 = 0x02;

/// Zero bytes that pad an attribute value of `len` bytes to a 4-byte boundary.
pub(crate) fn padding(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// A structurally valid STUN message, borrowed from the datagram.
///
/// [`parse`] has checked the header, walked every attribute and verified
/// FINGERPRINT if there is one; nothing here can fail any more.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message<'a> {
    message_type: u16,
    transaction_id: [u8; 12],
    body: &'a [u8],
    #[cfg_attr(not(test), allow(dead_code))]
    has_fingerprint: bool,
}

impl<'a> Message<'a> {
    /// The 14-bit message type (class and method bits interleaved), e.g.
    /// `0x0001` for a Binding request.
    pub(crate) fn message_type(&self) -> u16 {
        self.message_type
    }

    pub(crate) fn transaction_id(&self) -> &[u8; 12] {
        &self.transaction_id
    }

    /// Whether a (verified) FINGERPRINT ends the message.
    #[cfg(test)]
    pub(crate) fn has_fingerprint(&self) -> bool {
        self.has_fingerprint
    }

    /// Every attribute in order, as `(type, value)` with padding stripped.
    pub(crate) fn attributes(&self) -> Attributes<'a> {
        Attributes {
            reader: Reader::new(self.body),
        }
    }

    /// The value of the first attribute of type `ty`.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn attribute(&self, ty: u16) -> Option<&'a [u8]> {
        self.attributes().find(|&(t, _)| t == ty).map(|(_, v)| v)
    }
}

/// Iterator over a message's attributes; see [`Message::attributes`].
#[derive(Debug, Clone)]
pub(crate) struct Attributes<'a> {
    reader: Reader<'a>,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        read_attribute(&mut self.reader).ok()
    }
}

/// One attribute header, value and padding.
fn read_attribute<'a>(r: &mut Reader<'a>) -> Result<(u16, &'a [u8]), StunError> {
    let ty = r.u16().ok_or(StunError::TruncatedAttribute)?;
    let len = usize::from(r.u16().ok_or(StunError::TruncatedAttribute)?);
    let value = r.take(len).ok_or(StunError::TruncatedAttribute)?;
    r.take(padding(len)).ok_or(StunError::TruncatedAttribute)?;
    Ok((ty, value))
}

/// Checks a whole datagram as one STUN message (RFC 8489 §5, §6.3, §14.7).
///
/// Padding bytes are not checked (receivers must ignore them). Size limits on
/// requests are the caller's: see [`super::MAX_REQUEST_LEN`].
///
/// # Errors
/// The first [`StunError`] found, header first, then attributes in order.
pub(crate) fn parse(datagram: &[u8]) -> Result<Message<'_>, StunError> {
    let mut r = Reader::new(datagram);
    let message_type = r.u16().ok_or(StunError::TooShort)?;
    let length = usize::from(r.u16().ok_or(StunError::TooShort)?);
    let cookie = r.u32().ok_or(StunError::TooShort)?;
    let transaction_id: [u8; 12] = r.array().ok_or(StunError::TooShort)?;
    if message_type & 0xC000 != 0 {
        return Err(StunError::NotStun);
    }
    if cookie != MAGIC_COOKIE {
        return Err(StunError::BadCookie);
    }
    if length != r.remaining() || length % 4 != 0 {
        return Err(StunError::BadLength);
    }
    let body = r.take(length).ok_or(StunError::BadLength)?;

    let mut attrs = Reader::new(body);
    let mut has_fingerprint = false;
    while !attrs.is_empty() {
        if has_fingerprint {
            return Err(StunError::FingerprintNotLast);
        }
        let start = HEADER_LEN + (body.len() - attrs.remaining());
        let (ty, value) = read_attribute(&mut attrs)?;
        if ty == attr::FINGERPRINT {
            let expected = <[u8; 4]>::try_from(value)
                .map(u32::from_be_bytes)
                .map_err(|_| StunError::BadFingerprint)?;
            let covered = datagram.get(..start).ok_or(StunError::BadFingerprint)?;
            if fingerprint(covered) != expected {
                return Err(StunError::BadFingerprint);
            }
            has_fingerprint = true;
        }
    }

    Ok(Message {
        message_type,
        transaction_id,
        body,
        has_fingerprint,
    })
}

/// XORs the pad over port-less address bytes: the magic cookie, then (IPv6
/// only) the transaction id (RFC 8489 §14.2).
pub(super) fn xor_address(bytes: &mut [u8], transaction_id: &[u8; 12]) {
    let pad = MAGIC_COOKIE
        .to_be_bytes()
        .into_iter()
        .chain(*transaction_id);
    for (b, p) in bytes.iter_mut().zip(pad) {
        *b ^= p;
    }
}

/// The port XOR-ed with the high 16 bits of the magic cookie (its own inverse).
pub(super) fn xor_port(port: u16) -> u16 {
    port ^ (MAGIC_COOKIE >> 16) as u16
}
