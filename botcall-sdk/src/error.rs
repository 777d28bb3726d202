//! The core's error types: one enum for attestation checks, one for the
//! signaling client. Both are small, `Copy` and `PartialEq`, so tests can
//! `assert_eq!` on them and a C binding can map them to integers.

use botcall_core::jwt::JwtError;
use botcall_core::protocol::ProtoError;

/// Why a human attestation (or the incoming call it came with) was refused.
///
/// Grouped by what went wrong: the token itself (`Malformed`, `Forged`,
/// `UnknownKey`), its time window (`Expired`, `NotYetValid`,
/// `LifetimeTooLong`), whom it is for (`WrongAgent`, `WrongIssuer`,
/// `WrongCall`), what media it binds (`WrongFingerprint`,
/// `OfferWithoutFingerprint`), and the bot's policy (`MethodNotAccepted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttestationError {
    /// Not a well-formed token: segments, base64url, JSON, a required claim
    /// missing or unusable, too long.
    Malformed,
    /// The JWKS does not parse, or its key is unusable.
    BadJwks,
    /// No key in the JWKS matches the token's `kid` (the daemon rotated its
    /// key: fetch the JWKS again).
    UnknownKey,
    /// The signature does not verify, or the header asks for another
    /// algorithm (`none`, `HS256`): a forgery.
    Forged,
    /// `exp` has passed (beyond the 60 s leeway).
    Expired,
    /// `iat` or `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `exp - iat` is longer than attestations may live (120 s).
    LifetimeTooLong,
    /// `aud` is another agent.
    WrongAgent,
    /// `iss` is not the expected issuer.
    WrongIssuer,
    /// The `call_id` claim is not the call it arrived with.
    WrongCall,
    /// The `fp` claim is not the DTLS fingerprint of the offer it arrived
    /// with: the media would not be the checked human's.
    WrongFingerprint,
    /// The offer has no single, well-formed `a=fingerprint:` line.
    OfferWithoutFingerprint,
    /// The human check (`hv`) is one the bot's [`HvPolicy`](crate::HvPolicy)
    /// does not accept.
    MethodNotAccepted,
}

impl AttestationError {
    /// A stable snake_case code (logs, metrics, the `reject` reason).
    pub fn code(&self) -> &'static str {
        match self {
            AttestationError::Malformed => "malformed",
            AttestationError::BadJwks => "bad_jwks",
            AttestationError::UnknownKey => "unknown_key",
            AttestationError::Forged => "forged",
            AttestationError::Expired => "expired",
            AttestationError::NotYetValid => "not_yet_valid",
            AttestationError::LifetimeTooLong => "lifetime_too_long",
            AttestationError::WrongAgent => "wrong_agent",
            AttestationError::WrongIssuer => "wrong_issuer",
            AttestationError::WrongCall => "wrong_call",
            AttestationError::WrongFingerprint => "wrong_fingerprint",
            AttestationError::OfferWithoutFingerprint => "offer_without_fingerprint",
            AttestationError::MethodNotAccepted => "method_not_accepted",
        }
    }
}

impl From<JwtError> for AttestationError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::AlgNone
            | JwtError::AlgMismatch
            | JwtError::SignatureLength
            | JwtError::BadSignature
            | JwtError::CritUnsupported
            | JwtError::B64False => AttestationError::Forged,
            JwtError::Expired => AttestationError::Expired,
            JwtError::NotYetValid | JwtError::IssuedInFuture => AttestationError::NotYetValid,
            JwtError::LifetimeTooLong => AttestationError::LifetimeTooLong,
            JwtError::WrongAudience => AttestationError::WrongAgent,
            JwtError::WrongIssuer => AttestationError::WrongIssuer,
            JwtError::UnknownKey => AttestationError::UnknownKey,
            JwtError::BadKey | JwtError::WeakKey => AttestationError::BadJwks,
            _ => AttestationError::Malformed,
        }
    }
}

impl core::fmt::Display for AttestationError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            AttestationError::Malformed => "attestation is not a well-formed token",
            AttestationError::BadJwks => "the daemon's JWKS is unusable",
            AttestationError::UnknownKey => "attestation is signed with a key not in the JWKS",
            AttestationError::Forged => "attestation signature does not verify",
            AttestationError::Expired => "attestation has expired",
            AttestationError::NotYetValid => "attestation is not valid yet",
            AttestationError::LifetimeTooLong => "attestation lifetime is too long",
            AttestationError::WrongAgent => "attestation is for another agent",
            AttestationError::WrongIssuer => "attestation is from another issuer",
            AttestationError::WrongCall => "attestation is for another call",
            AttestationError::WrongFingerprint => {
                "attestation is bound to another DTLS fingerprint than the offer's"
            }
            AttestationError::OfferWithoutFingerprint => {
                "the offer has no single valid DTLS fingerprint"
            }
            AttestationError::MethodNotAccepted => "the human check method is not accepted",
        })
    }
}

impl core::error::Error for AttestationError {}

/// Why an incoming call was refused by the client before the application
/// saw it (a `reject` was sent for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefuseReason {
    /// The attestation failed a check.
    Attestation(AttestationError),
    /// Every call slot is in use ([`crate::client::MAX_CALLS`] or the configured `max_calls`).
    Busy,
    /// The SDP offer is larger than [`crate::client::MAX_OFFER_LEN`].
    OfferTooLarge,
}

impl RefuseReason {
    /// The `reason` sent in the `reject` message.
    pub fn code(&self) -> &'static str {
        match self {
            RefuseReason::Attestation(e) => e.code(),
            RefuseReason::Busy => "busy",
            RefuseReason::OfferTooLarge => "offer_too_large",
        }
    }
}

impl core::fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RefuseReason::Attestation(e) => write!(f, "{e}"),
            RefuseReason::Busy => f.write_str("all call slots are in use"),
            RefuseReason::OfferTooLarge => f.write_str("the SDP offer is too large"),
        }
    }
}

/// Errors of the signaling client ([`crate::client::Client`]).
///
/// Peer faults (`BadMessage`, `Unexpected`) are returned from
/// `handle_input` and leave the client usable; API misuse (`UnknownCall`,
/// `WrongCallState`, `Offline`) from the command methods; `TooLarge` and
/// `Full` when something does not fit a fixed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A signaling message that does not decode (not JSON, missing field, bad id...).
    BadMessage(ProtoError),
    /// A message that makes no sense in the current state.
    Unexpected {
        /// What the client was waiting for.
        state: &'static str,
        /// The message `type` (or input) received.
        got: &'static str,
    },
    /// No call with that id.
    UnknownCall,
    /// The call is not in a state that allows this (e.g. answering twice).
    WrongCallState,
    /// Not connected: the message cannot be sent now.
    Offline,
    /// The client was shut down.
    Stopped,
    /// Input does not fit a fixed-size buffer (the field is named).
    TooLarge(&'static str),
    /// The outbound queue is full: drain [`crate::client::Client::poll_output`] first.
    Full,
    /// The JWKS does not parse (`set_jwks`).
    BadJwks,
}

impl From<ProtoError> for Error {
    fn from(e: ProtoError) -> Self {
        Error::BadMessage(e)
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::BadMessage(e) => write!(f, "malformed signaling message: {e}"),
            Error::Unexpected { state, got } => {
                write!(f, "unexpected `{got}` while {state}")
            }
            Error::UnknownCall => f.write_str("no such call"),
            Error::WrongCallState => f.write_str("the call is not in a state that allows this"),
            Error::Offline => f.write_str("not connected to the daemon"),
            Error::Stopped => f.write_str("the client was shut down"),
            Error::TooLarge(what) => write!(f, "{what} does not fit its buffer"),
            Error::Full => f.write_str("outbound queue is full"),
            Error::BadJwks => f.write_str("JWKS does not parse"),
        }
    }
}

impl core::error::Error for Error {}
