//! Hand-rolled JWS compact / JWT (RFC 7515, 7519) for HS256 and ES256.
//!
//! Two layers: [`verify()`] checks structure, header and signature with a key
//! the caller chose; [`claims::validate`] checks the claims against a
//! [`Policy`]. [`verify_bot_auth`] and [`verify_attestation`] combine both for
//! BotCall's two token kinds. Primitives come from RustCrypto (`hmac`, `sha2`,
//! `p256`), and with feature `ring` ES256 signs and verifies through `ring`
//! ([`es256`]); no curve arithmetic lives here.

pub mod claims;
mod error;
pub mod es256;
pub mod key;
#[cfg(feature = "sign")]
pub mod sign;
pub mod verify;

pub use claims::{BotAuth, Claims, HumanAttestation, Policy};
pub use error::JwtError;
pub use es256::EcSigningKey;
pub use key::{Alg, Jwks, Key, Secret, thumbprint};
#[cfg(feature = "sign")]
pub use sign::{HeaderOpts, SigningKey, sign_claims};
pub use verify::{Header, Scratch, Verified, decode_header_unverified, verify, verify_with};

/// Longest token accepted (bytes). Longer input is [`JwtError::TooLong`].
pub const MAX_TOKEN_LEN: usize = 4096;

/// Verifies a BotAuth token with `key` and returns the agent id it proves.
///
/// # Errors
/// Any [`JwtError`]; `sub` must be a valid agent id and `exp - iat` ≤ 600 s.
pub fn verify_bot_auth(
    token: &str,
    key: &Key,
    leeway: u64,
    aud: Option<&str>,
    now: u64,
) -> Result<BotAuth, JwtError> {
    let mut scratch = Scratch::new();
    let v = verify(token, key, &mut scratch)?;
    let c = claims::validate(v.payload, &BotAuth::policy(leeway, aud), now)?;
    BotAuth::from_claims(&c)
}

/// Verifies a human attestation against the daemon's JWKS for `agent_id`.
///
/// The key is chosen by the token's `kid` (ES256 only: an HS256 header is an
/// `AlgMismatch`). The caller still compares `call_id` and `fp` with the call.
///
/// # Errors
/// Any [`JwtError`].
pub fn verify_attestation(
    token: &str,
    jwks: &Jwks<'_>,
    agent_id: &str,
    iss: Option<&str>,
    now: u64,
) -> Result<HumanAttestation, JwtError> {
    let mut scratch = Scratch::new();
    let key = {
        let h = decode_header_unverified(token, &mut scratch)?;
        let kid: Option<heapless::String<64>> = match h.kid {
            Some(k) => Some(k.to_heapless().map_err(|_| JwtError::UnknownKey)?),
            None => None,
        };
        jwks.find_es256(kid.as_deref())?
    };
    let v = verify(token, &key, &mut scratch)?;
    let c = claims::validate(
        v.payload,
        &HumanAttestation::policy(agent_id, iss, claims::DEFAULT_LEEWAY),
        now,
    )?;
    HumanAttestation::from_claims(&c)
}
