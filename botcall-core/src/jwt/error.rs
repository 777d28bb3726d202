//! The JWT layer's error type.

use crate::json::JsonError;

/// Why a token, key or claim set was refused. Grouped by who is at fault:
/// malformed input, a failed check, a bad key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtError {
    /// Not three non-empty dot-separated segments.
    Malformed,
    /// Longer than [`super::MAX_TOKEN_LEN`] (or a segment too big for its buffer).
    TooLong,
    /// A segment is not canonical unpadded base64url.
    BadBase64,
    /// The header or claims are not valid strict JSON.
    BadJson(JsonError),
    /// The header's `alg` is `none`.
    AlgNone,
    /// The header's `alg` is not the algorithm of the key we verify with.
    AlgMismatch,
    /// The header has a `crit` list (we implement no critical extensions).
    CritUnsupported,
    /// The header asks for an unencoded payload (`b64: false`, RFC 7797).
    B64False,
    /// The signature has the wrong length for the algorithm (DER for ES256, truncated MACs).
    SignatureLength,
    /// The signature does not verify.
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    IssuedInFuture,
    /// `exp - iat` exceeds the policy's maximum lifetime.
    LifetimeTooLong,
    /// `aud` does not name us.
    WrongAudience,
    /// `iss` is not the expected issuer.
    WrongIssuer,
    /// `sub` is not the expected subject.
    WrongSubject,
    /// A claim the policy requires is absent.
    MissingClaim(&'static str),
    /// A claim is present but unusable (bad id, wrong value).
    BadClaim(&'static str),
    /// An HS256 secret shorter than 32 bytes.
    WeakKey,
    /// A key that cannot be used (bad JWK, point not on the curve, unsupported kty/crv).
    BadKey,
    /// No key in the set matches the token's `kid`.
    UnknownKey,
    /// The output buffer is too small (signing).
    BufferTooSmall,
}

impl JwtError {
    /// A stable snake_case code for logs, metrics and API errors.
    pub fn code(&self) -> &'static str {
        match self {
            JwtError::Malformed => "malformed",
            JwtError::TooLong => "too_long",
            JwtError::BadBase64 => "bad_base64",
            JwtError::BadJson(_) => "bad_json",
            JwtError::AlgNone => "alg_none",
            JwtError::AlgMismatch => "alg_mismatch",
            JwtError::CritUnsupported => "crit_unsupported",
            JwtError::B64False => "b64_false",
            JwtError::SignatureLength => "signature_length",
            JwtError::BadSignature => "bad_signature",
            JwtError::Expired => "expired",
            JwtError::NotYetValid => "not_yet_valid",
            JwtError::IssuedInFuture => "issued_in_future",
            JwtError::LifetimeTooLong => "lifetime_too_long",
            JwtError::WrongAudience => "wrong_audience",
            JwtError::WrongIssuer => "wrong_issuer",
            JwtError::WrongSubject => "wrong_subject",
            JwtError::MissingClaim(_) => "missing_claim",
            JwtError::BadClaim(_) => "bad_claim",
            JwtError::WeakKey => "weak_key",
            JwtError::BadKey => "bad_key",
            JwtError::UnknownKey => "unknown_key",
            JwtError::BufferTooSmall => "buffer_too_small",
        }
    }
}

impl From<JsonError> for JwtError {
    fn from(e: JsonError) -> Self {
        JwtError::BadJson(e)
    }
}

impl core::fmt::Display for JwtError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            JwtError::Malformed => {
                f.write_str("token is not three dot-separated base64url segments")
            }
            JwtError::TooLong => f.write_str("token is too long"),
            JwtError::BadBase64 => f.write_str("token segment is not canonical base64url"),
            JwtError::BadJson(e) => write!(f, "token JSON: {e}"),
            JwtError::AlgNone => f.write_str("alg none is not accepted"),
            JwtError::AlgMismatch => f.write_str("token alg does not match the key's algorithm"),
            JwtError::CritUnsupported => f.write_str("token has critical header extensions"),
            JwtError::B64False => f.write_str("unencoded payloads (b64:false) are not accepted"),
            JwtError::SignatureLength => f.write_str("signature has the wrong length"),
            JwtError::BadSignature => f.write_str("signature does not verify"),
            JwtError::Expired => f.write_str("token has expired"),
            JwtError::NotYetValid => f.write_str("token is not valid yet (nbf)"),
            JwtError::IssuedInFuture => f.write_str("token is issued in the future (iat)"),
            JwtError::LifetimeTooLong => f.write_str("token lifetime exceeds the maximum"),
            JwtError::WrongAudience => f.write_str("token audience does not match"),
            JwtError::WrongIssuer => f.write_str("token issuer does not match"),
            JwtError::WrongSubject => f.write_str("token subject does not match"),
            JwtError::MissingClaim(c) => write!(f, "required claim `{c}` is missing"),
            JwtError::BadClaim(c) => write!(f, "claim `{c}` is invalid"),
            JwtError::WeakKey => f.write_str("HS256 secrets must be at least 32 bytes"),
            JwtError::BadKey => f.write_str("key is invalid or unsupported"),
            JwtError::UnknownKey => f.write_str("no key matches the token's kid"),
            JwtError::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

#[cfg(feature = "std")]
impl core::error::Error for JwtError {}
