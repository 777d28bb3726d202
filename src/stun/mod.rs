//! Built-in STUN responder: answers RFC 8489 Binding requests so browsers and
//! bots learn their public (server-reflexive) address from botcalld itself,
//! with no third-party STUN server in the path.
//!
//! Sans-IO: [`handle`] takes one datagram and its source address and writes
//! the reply, if any, into a caller buffer; the daemon owns the socket. The
//! message format (constants, CRC-32, the writer) is botcall-core's
//! [`botcall_core::stun`], shared with the SDK's client; what is here is
//! the responder's strict check of requests (RFC 8489 §6.3) and its replies. No
//! authentication (a Binding answer only tells the sender its own address),
//! no RFC 3489 classic STUN (no magic cookie → no answer), no allocation.

mod error;
mod message;
mod reader;
mod response;
#[cfg(test)]
mod tests;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

pub(crate) use error::StunError;
use message::{FAMILY_IPV4, FAMILY_IPV6, xor_address, xor_port};
pub(crate) use message::{Message, parse};
use reader::Reader;

/// Larger datagrams are dropped unread: 548 bytes is the UDP payload every
/// IPv4 path carries (576 − IP − UDP headers), and no Binding request needs more.
pub(crate) const MAX_REQUEST_LEN: usize = 548;
/// Output buffer size for [`handle`]; every reply fits (the largest, a 420
/// listing [`MAX_UNKNOWN`] attributes, is 104 bytes).
pub(crate) const RESPONSE_BUF_LEN: usize = 128;
/// Sent as the SOFTWARE attribute in every reply.
pub(crate) const SOFTWARE: &str = "botcalld";
/// At most this many distinct unknown attributes are listed in a 420 reply.
pub(crate) const MAX_UNKNOWN: usize = 16;

/// Binding request: method 0x001, class request.
const BINDING_REQUEST: u16 = 0x0001;

/// Attribute types (IANA "STUN Attributes" registry), the shared codec's.
pub(crate) use botcall_core::stun::attr;

/// Answers one datagram received on the STUN port.
///
/// - `Ok(Some(n))`: send `out[..n]` back to `from`. Either a Binding success
///   response (XOR-MAPPED-ADDRESS = `from`, SOFTWARE, FINGERPRINT) or, when
///   the request has comprehension-required attributes this responder does
///   not understand, a 420 Unknown Attribute error listing them.
/// - `Ok(None)`: a well-formed STUN message that gets no reply: an
///   indication, a response, or a request for a method other than Binding.
/// - `Err(e)`: not STUN, or malformed; drop it (and count it, if you like).
///
/// An IPv4-mapped IPv6 `from` (a dual-stack socket's view of an IPv4 peer)
/// is answered as IPv4.
///
/// # Errors
/// [`StunError`] for anything that must not be answered: over
/// [`MAX_REQUEST_LEN`] bytes, no STUN header or magic cookie, a length field
/// that does not match, truncated attributes, attributes after FINGERPRINT,
/// or a FINGERPRINT that does not verify.
pub(crate) fn handle(
    request: &[u8],
    from: SocketAddr,
    out: &mut [u8; RESPONSE_BUF_LEN],
) -> Result<Option<usize>, StunError> {
    if request.len() > MAX_REQUEST_LEN {
        return Err(StunError::TooLong);
    }
    let msg = parse(request)?;
    if msg.message_type() != BINDING_REQUEST {
        return Ok(None);
    }
    let unknown = unknown_required(&msg);
    let len = if unknown.as_slice().is_empty() {
        response::write_success(out, msg.transaction_id(), from)?
    } else {
        response::write_unknown_attributes(out, msg.transaction_id(), unknown.as_slice())?
    };
    Ok(Some(len))
}

/// Comprehension-required attributes (0x0000–0x7FFF) that a Binding request
/// may carry and that this responder knows and ignores (RFC 8489 §6.3:
/// known-but-unexpected attributes are ignored): response-only address and
/// error attributes, credentials (this responder does not authenticate), and
/// ICE's PRIORITY and USE-CANDIDATE. Anything else in that range, e.g. RFC
/// 5780's CHANGE-REQUEST, gets a 420, which is how clients are meant to
/// learn that a server does not support it.
fn understood(ty: u16) -> bool {
    use attr::{
        ERROR_CODE, MAPPED_ADDRESS, MESSAGE_INTEGRITY, MESSAGE_INTEGRITY_SHA256, NONCE,
        PASSWORD_ALGORITHM, PRIORITY, REALM, UNKNOWN_ATTRIBUTES, USE_CANDIDATE, USERHASH, USERNAME,
        XOR_MAPPED_ADDRESS,
    };
    matches!(
        ty,
        MAPPED_ADDRESS
            | USERNAME
            | MESSAGE_INTEGRITY
            | ERROR_CODE
            | UNKNOWN_ATTRIBUTES
            | REALM
            | NONCE
            | MESSAGE_INTEGRITY_SHA256
            | PASSWORD_ALGORITHM
            | USERHASH
            | XOR_MAPPED_ADDRESS
            | PRIORITY
            | USE_CANDIDATE
    )
}

/// Distinct attribute types in first-seen order, at most [`MAX_UNKNOWN`].
#[derive(Debug, Default)]
struct UnknownList {
    types: [u16; MAX_UNKNOWN],
    len: usize,
}

impl UnknownList {
    fn push(&mut self, ty: u16) {
        if self.as_slice().contains(&ty) {
            return;
        }
        if let Some(slot) = self.types.get_mut(self.len) {
            *slot = ty;
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[u16] {
        self.types.get(..self.len).unwrap_or(&[])
    }
}

/// The comprehension-required attributes of `msg` that are not
/// [`understood`]. Attributes after MESSAGE-INTEGRITY(-SHA256) are skipped:
/// RFC 8489 §14.5/§14.6 say receivers ignore them.
fn unknown_required(msg: &Message<'_>) -> UnknownList {
    let mut unknown = UnknownList::default();
    for (ty, _) in msg.attributes() {
        if ty < 0x8000 && !understood(ty) {
            unknown.push(ty);
        }
        if ty == attr::MESSAGE_INTEGRITY || ty == attr::MESSAGE_INTEGRITY_SHA256 {
            break;
        }
    }
    unknown
}

/// Decodes an XOR-MAPPED-ADDRESS value (RFC 8489 §14.2).
///
/// # Errors
/// [`StunError::BadAddress`] for an unknown family or a length that does not
/// fit it.
/// (Used by the tests and handy for clients; the responder never parses addresses.)
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn parse_xor_mapped_address(
    value: &[u8],
    transaction_id: &[u8; 12],
) -> Result<SocketAddr, StunError> {
    let mut r = Reader::new(value);
    let [_reserved, family] = r.array().ok_or(StunError::BadAddress)?;
    let port = xor_port(r.u16().ok_or(StunError::BadAddress)?);
    let addr = match family {
        FAMILY_IPV4 => {
            let mut ip: [u8; 4] = r.array().ok_or(StunError::BadAddress)?;
            xor_address(&mut ip, transaction_id);
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))
        }
        FAMILY_IPV6 => {
            let mut ip: [u8; 16] = r.array().ok_or(StunError::BadAddress)?;
            xor_address(&mut ip, transaction_id);
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0))
        }
        _ => return Err(StunError::BadAddress),
    };
    if !r.is_empty() {
        return Err(StunError::BadAddress);
    }
    Ok(addr)
}
