//! Why a datagram on the STUN port got no answer.

use core::fmt;

/// A reason to drop a datagram without replying.
///
/// Every variant means "send nothing back": a STUN server must not answer
/// malformed input (RFC 8489 §6.3), and the one error it does answer, 420
/// Unknown Attribute, is a reply, not an `Err`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StunError {
    /// Shorter than the 20-byte STUN header.
    TooShort,
    /// Longer than [`super::MAX_REQUEST_LEN`]: not read at all.
    TooLong,
    /// The first two bits are not zero: some other protocol.
    NotStun,
    /// No magic cookie: RFC 3489-style STUN or not STUN at all.
    BadCookie,
    /// The header's length field is not the body's length, or not a multiple of 4.
    BadLength,
    /// An attribute (or its padding) runs past the end of the message.
    TruncatedAttribute,
    /// An attribute follows FINGERPRINT, which must be the last one.
    FingerprintNotLast,
    /// FINGERPRINT is not 4 bytes or its CRC-32 does not match the message.
    BadFingerprint,
    /// An address attribute with an unknown family or the wrong length.
    #[cfg_attr(not(test), allow(dead_code))]
    BadAddress,
    /// The reply did not fit the output buffer (cannot happen with
    /// [`super::RESPONSE_BUF_LEN`]; kept so the writer never panics).
    ResponseTooLarge,
}

impl fmt::Display for StunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StunError::TooShort => "STUN message shorter than its 20-byte header",
            StunError::TooLong => "STUN request longer than 548 bytes",
            StunError::NotStun => "not a STUN message (first two bits are not zero)",
            StunError::BadCookie => "STUN message without the RFC 8489 magic cookie",
            StunError::BadLength => "STUN length field does not match the message",
            StunError::TruncatedAttribute => "STUN attribute runs past the end of the message",
            StunError::FingerprintNotLast => "STUN attribute after FINGERPRINT",
            StunError::BadFingerprint => "STUN FINGERPRINT does not match the message",
            StunError::BadAddress => "STUN address attribute is malformed",
            StunError::ResponseTooLarge => "STUN response does not fit the output buffer",
        })
    }
}

impl std::error::Error for StunError {}
