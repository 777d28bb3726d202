//! Status codes: every entry point returns one (`BotcallStatus`, an `int32_t`).
//! 0 is success; the numbers are part of the ABI and never change meaning.

use botcall_sdk::AttestationError;

/// The result of every fallible call (`int32_t` in C).
pub type BotcallStatus = i32;

/// Success.
pub const BOTCALL_OK: BotcallStatus = 0;
/// A null pointer, text that is not UTF-8, an out-of-range number.
pub const BOTCALL_ERR_INVALID_ARGUMENT: BotcallStatus = 1;
/// The options make no sense (URL, agent id, sample rate, reason length).
pub const BOTCALL_ERR_CONFIG: BotcallStatus = 2;
/// The bot's key file is missing or the key is unusable.
pub const BOTCALL_ERR_KEY: BotcallStatus = 3;
/// The daemon refused the bot (401/403: a key it does not accept, an id taken).
pub const BOTCALL_ERR_AUTH: BotcallStatus = 4;
/// The daemon cannot be reached, or answered with an error.
pub const BOTCALL_ERR_UNAVAILABLE: BotcallStatus = 5;
/// A wait ended at its timeout; nothing was lost, call again.
pub const BOTCALL_ERR_TIMEOUT: BotcallStatus = 6;
/// The call is over: `botcall_call_end_reason` says why.
pub const BOTCALL_ERR_ENDED: BotcallStatus = 7;
/// The bot was shut down.
pub const BOTCALL_ERR_CLOSED: BotcallStatus = 8;
/// The caller's buffer is too small; the size it needs is in the length out-parameter.
pub const BOTCALL_ERR_BUFFER_TOO_SMALL: BotcallStatus = 9;
/// Audio could not be encoded, decoded or set up.
pub const BOTCALL_ERR_MEDIA: BotcallStatus = 10;
/// The wait was woken by `botcall_bot_cancel` / `botcall_call_cancel`.
pub const BOTCALL_ERR_CANCELLED: BotcallStatus = 11;
/// Not in this state (audio on a call that was not answered, answering twice).
pub const BOTCALL_ERR_WRONG_STATE: BotcallStatus = 12;
/// Malformed input to the firmware functions (a message, an id).
pub const BOTCALL_ERR_MALFORMED: BotcallStatus = 13;
/// A Rust panic was caught at the boundary (a bug: please report it).
pub const BOTCALL_ERR_PANIC: BotcallStatus = 98;
/// Any other failure; `botcall_last_error` has the text.
pub const BOTCALL_ERR_INTERNAL: BotcallStatus = 99;

/// Attestation verdicts (`botcall_verify_attestation`): 100 + the check that failed.
pub const BOTCALL_ATT_MALFORMED: BotcallStatus = 100;
/// The JWKS does not parse, or its key is unusable.
pub const BOTCALL_ATT_BAD_JWKS: BotcallStatus = 101;
/// No key in the JWKS has the token's `kid`.
pub const BOTCALL_ATT_UNKNOWN_KEY: BotcallStatus = 102;
/// The signature does not verify, or the header asks for another algorithm.
pub const BOTCALL_ATT_FORGED: BotcallStatus = 103;
/// `exp` has passed.
pub const BOTCALL_ATT_EXPIRED: BotcallStatus = 104;
/// `iat`/`nbf` is in the future.
pub const BOTCALL_ATT_NOT_YET_VALID: BotcallStatus = 105;
/// `exp - iat` is longer than 120 s.
pub const BOTCALL_ATT_LIFETIME_TOO_LONG: BotcallStatus = 106;
/// `aud` is another agent.
pub const BOTCALL_ATT_WRONG_AGENT: BotcallStatus = 107;
/// `iss` is not the expected issuer.
pub const BOTCALL_ATT_WRONG_ISSUER: BotcallStatus = 108;
/// `call_id` is not the call it arrived with.
pub const BOTCALL_ATT_WRONG_CALL: BotcallStatus = 109;
/// `fp` is not the offer's DTLS fingerprint.
pub const BOTCALL_ATT_WRONG_FINGERPRINT: BotcallStatus = 110;
/// The offer has no usable `a=fingerprint` line.
pub const BOTCALL_ATT_OFFER_WITHOUT_FINGERPRINT: BotcallStatus = 111;
/// The human check (`hv`) is not one the policy accepts.
pub const BOTCALL_ATT_METHOD_NOT_ACCEPTED: BotcallStatus = 112;

/// The status code of an attestation verdict.
pub fn attestation_status(e: AttestationError) -> BotcallStatus {
    match e {
        AttestationError::Malformed => BOTCALL_ATT_MALFORMED,
        AttestationError::BadJwks => BOTCALL_ATT_BAD_JWKS,
        AttestationError::UnknownKey => BOTCALL_ATT_UNKNOWN_KEY,
        AttestationError::Forged => BOTCALL_ATT_FORGED,
        AttestationError::Expired => BOTCALL_ATT_EXPIRED,
        AttestationError::NotYetValid => BOTCALL_ATT_NOT_YET_VALID,
        AttestationError::LifetimeTooLong => BOTCALL_ATT_LIFETIME_TOO_LONG,
        AttestationError::WrongAgent => BOTCALL_ATT_WRONG_AGENT,
        AttestationError::WrongIssuer => BOTCALL_ATT_WRONG_ISSUER,
        AttestationError::WrongCall => BOTCALL_ATT_WRONG_CALL,
        AttestationError::WrongFingerprint => BOTCALL_ATT_WRONG_FINGERPRINT,
        AttestationError::OfferWithoutFingerprint => BOTCALL_ATT_OFFER_WITHOUT_FINGERPRINT,
        AttestationError::MethodNotAccepted => BOTCALL_ATT_METHOD_NOT_ACCEPTED,
        #[allow(unreachable_patterns)]
        _ => BOTCALL_ATT_MALFORMED,
    }
}

/// A short static name for a status code (`"timeout"`, `"forged"`, …).
pub fn status_name(s: BotcallStatus) -> &'static core::ffi::CStr {
    match s {
        BOTCALL_OK => c"ok",
        BOTCALL_ERR_INVALID_ARGUMENT => c"invalid_argument",
        BOTCALL_ERR_CONFIG => c"config",
        BOTCALL_ERR_KEY => c"key",
        BOTCALL_ERR_AUTH => c"auth",
        BOTCALL_ERR_UNAVAILABLE => c"unavailable",
        BOTCALL_ERR_TIMEOUT => c"timeout",
        BOTCALL_ERR_ENDED => c"ended",
        BOTCALL_ERR_CLOSED => c"closed",
        BOTCALL_ERR_BUFFER_TOO_SMALL => c"buffer_too_small",
        BOTCALL_ERR_MEDIA => c"media",
        BOTCALL_ERR_CANCELLED => c"cancelled",
        BOTCALL_ERR_WRONG_STATE => c"wrong_state",
        BOTCALL_ERR_MALFORMED => c"malformed",
        BOTCALL_ERR_PANIC => c"panic",
        BOTCALL_ATT_MALFORMED => c"attestation_malformed",
        BOTCALL_ATT_BAD_JWKS => c"bad_jwks",
        BOTCALL_ATT_UNKNOWN_KEY => c"unknown_key",
        BOTCALL_ATT_FORGED => c"forged",
        BOTCALL_ATT_EXPIRED => c"expired",
        BOTCALL_ATT_NOT_YET_VALID => c"not_yet_valid",
        BOTCALL_ATT_LIFETIME_TOO_LONG => c"lifetime_too_long",
        BOTCALL_ATT_WRONG_AGENT => c"wrong_agent",
        BOTCALL_ATT_WRONG_ISSUER => c"wrong_issuer",
        BOTCALL_ATT_WRONG_CALL => c"wrong_call",
        BOTCALL_ATT_WRONG_FINGERPRINT => c"wrong_fingerprint",
        BOTCALL_ATT_OFFER_WITHOUT_FINGERPRINT => c"offer_without_fingerprint",
        BOTCALL_ATT_METHOD_NOT_ACCEPTED => c"method_not_accepted",
        _ => c"internal",
    }
}
