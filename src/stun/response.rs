//! Writing responses: the two replies the responder sends, Binding success
//! and 420 Unknown Attribute, with the shared codec's writer.

use std::net::SocketAddr;

use botcall_core::stun::{self as codec, Class, MessageWriter, method};

use super::{MAX_UNKNOWN, SOFTWARE, StunError, attr};

/// Binding success response (class 0b10, method 0x001).
#[cfg(test)]
pub(crate) const BINDING_SUCCESS: u16 = codec::message_type(method::BINDING, Class::Success);
/// Binding error response (class 0b11, method 0x001).
#[cfg(test)]
pub(crate) const BINDING_ERROR: u16 = codec::message_type(method::BINDING, Class::Error);
const UNKNOWN_ATTRIBUTE_REASON: &[u8] = b"Unknown Attribute";

/// The writer ran out of room (cannot happen with [`super::RESPONSE_BUF_LEN`]).
impl From<codec::StunError> for StunError {
    fn from(_: codec::StunError) -> Self {
        StunError::ResponseTooLarge
    }
}

/// Writes a Binding success response telling `from` its own address:
/// XOR-MAPPED-ADDRESS, SOFTWARE, FINGERPRINT. Returns the length written.
pub(super) fn write_success(
    out: &mut [u8],
    transaction_id: &[u8; 12],
    from: SocketAddr,
) -> Result<usize, StunError> {
    let mut w = MessageWriter::new(out, method::BINDING, Class::Success, transaction_id)?;
    // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; they are
    // IPv4 to their NAT and their ICE agent, so answer with family IPv4.
    let from = SocketAddr::new(from.ip().to_canonical(), from.port());
    w.xor_addr(attr::XOR_MAPPED_ADDRESS, from)?;
    w.attr(attr::SOFTWARE, SOFTWARE.as_bytes())?;
    w.fingerprint()?;
    Ok(w.finish())
}

/// Writes a 420 Unknown Attribute error response listing `unknown`
/// (RFC 8489 §6.3.1.1): ERROR-CODE, UNKNOWN-ATTRIBUTES, SOFTWARE,
/// FINGERPRINT. Returns the length written.
pub(super) fn write_unknown_attributes(
    out: &mut [u8],
    transaction_id: &[u8; 12],
    unknown: &[u16],
) -> Result<usize, StunError> {
    let mut w = MessageWriter::new(out, method::BINDING, Class::Error, transaction_id)?;
    // Reserved 21 bits, class 4, number 20, then the reason phrase.
    let mut error = [0u8; 4 + UNKNOWN_ATTRIBUTE_REASON.len()];
    error[..4].copy_from_slice(&[0, 0, 4, 20]);
    error[4..].copy_from_slice(UNKNOWN_ATTRIBUTE_REASON);
    w.attr(attr::ERROR_CODE, &error)?;
    let mut list = [0u8; 2 * MAX_UNKNOWN];
    for (slot, ty) in list.chunks_exact_mut(2).zip(unknown) {
        slot.copy_from_slice(&ty.to_be_bytes());
    }
    let len = unknown.len().min(MAX_UNKNOWN) * 2;
    // Padded like any other attribute (RFC 8489; RFC 3489 repeated an entry).
    w.attr(attr::UNKNOWN_ATTRIBUTES, &list[..len])?;
    w.attr(attr::SOFTWARE, SOFTWARE.as_bytes())?;
    w.fingerprint()?;
    Ok(w.finish())
}
