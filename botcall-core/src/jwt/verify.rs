//! The signature layer: JWS compact parsing, header checks, signature
//! verification. Claims are the next layer's job ([`super::claims`]).
//!
//! Order of checks (each a distinct [`JwtError`]): length, three segments,
//! base64url, header JSON, `alg` against the key (`none` first), `crit`,
//! `b64`, signature length, signature. The payload is decoded only after the
//! signature verified.

use hmac::{Hmac, KeyInit, Mac};
use p256::ecdsa::VerifyingKey;
use sha2::Sha256;

use super::{Alg, JwtError, Key, MAX_TOKEN_LEN};
use crate::b64;
use crate::json::{self, JsonStr, Object};

/// Bytes needed to decode a header and payload of a token of [`MAX_TOKEN_LEN`].
pub const SCRATCH_LEN: usize = b64::decoded_len(MAX_TOKEN_LEN);

/// Fixed-size space for the decoded header and payload (3 KiB, no allocation).
#[derive(Debug)]
pub struct Scratch {
    buf: [u8; SCRATCH_LEN],
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    /// A zeroed scratch area.
    pub const fn new() -> Self {
        Scratch {
            buf: [0; SCRATCH_LEN],
        }
    }
}

/// A parsed protected header. Fields borrow the scratch buffer.
#[derive(Debug, Clone, Copy)]
pub struct Header<'s> {
    /// `alg` as written.
    pub alg: JsonStr<'s>,
    /// `typ`, if any.
    pub typ: Option<JsonStr<'s>>,
    /// `kid`, if any.
    pub kid: Option<JsonStr<'s>>,
    /// An embedded public key (`jwk`), if any. Only meaningful when the
    /// caller derives identity from it (open registration).
    pub jwk: Option<Object<'s>>,
    /// The whole header object.
    pub json: Object<'s>,
}

/// A token whose signature verified under the caller's key.
#[derive(Debug, Clone, Copy)]
pub struct Verified<'s> {
    /// The protected header.
    pub header: Header<'s>,
    /// The decoded payload text (claims JSON, not yet checked).
    pub payload: &'s str,
}

struct Parts<'t> {
    header_b64: &'t [u8],
    payload_b64: &'t [u8],
    signing_input: &'t [u8],
    sig_b64: &'t [u8],
}

fn split(token: &str) -> Result<Parts<'_>, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::TooLong);
    }
    let t = token.as_bytes();
    let mut dots = t
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'.')
        .map(|(i, _)| i);
    let (Some(d1), Some(d2), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(JwtError::Malformed);
    };
    let (header_b64, payload_b64, sig_b64) = (&t[..d1], &t[d1 + 1..d2], &t[d2 + 1..]);
    if header_b64.is_empty() || payload_b64.is_empty() || sig_b64.is_empty() {
        return Err(JwtError::Malformed);
    }
    Ok(Parts {
        header_b64,
        payload_b64,
        signing_input: &t[..d2],
        sig_b64,
    })
}

fn decode_text<'s>(src: &[u8], dst: &'s mut [u8]) -> Result<&'s str, JwtError> {
    if b64::decoded_len(src.len()) > dst.len() {
        return Err(JwtError::TooLong);
    }
    let bytes = b64::decode(src, dst).map_err(|_| JwtError::BadBase64)?;
    core::str::from_utf8(bytes).map_err(|_| JwtError::BadJson(json::JsonError::Syntax(0)))
}

fn parse_header(text: &str) -> Result<Header<'_>, JwtError> {
    let obj = json::parse_object(text)?;
    let alg = obj.req_str("alg")?;
    Ok(Header {
        alg,
        typ: obj.opt_str("typ")?,
        kid: obj.opt_str("kid")?,
        jwk: obj.opt_obj("jwk")?,
        json: obj,
    })
}

/// Decodes and parses the header **without verifying anything**: for picking
/// a key (`kid`, open-registration `jwk`) before calling [`verify`].
///
/// # Errors
/// Structure, base64url and JSON errors.
pub fn decode_header_unverified<'s>(
    token: &str,
    scratch: &'s mut Scratch,
) -> Result<Header<'s>, JwtError> {
    let parts = split(token)?;
    let text = decode_text(parts.header_b64, &mut scratch.buf)?;
    parse_header(text)
}

/// Checks the header against `alg` (the key's algorithm).
fn check_header(h: &Header<'_>, alg: Alg) -> Result<(), JwtError> {
    if h.alg
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .eq("none".chars())
    {
        return Err(JwtError::AlgNone);
    }
    if !h.alg.eq_str(alg.as_str()) {
        return Err(JwtError::AlgMismatch);
    }
    if h.json.get("crit").is_some() {
        return Err(JwtError::CritUnsupported);
    }
    if let Some(b) = h.json.opt_bool("b64")?
        && !b
    {
        return Err(JwtError::B64False);
    }
    Ok(())
}

/// Verifies an HS256 tag over `msg` in constant time. Tags must be 32 bytes.
///
/// # Errors
/// [`JwtError::SignatureLength`] or [`JwtError::BadSignature`].
pub fn hs256_verify(secret: &[u8], msg: &[u8], tag: &[u8]) -> Result<(), JwtError> {
    if tag.len() != 32 {
        return Err(JwtError::SignatureLength);
    }
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).map_err(|_| JwtError::BadKey)?;
    mac.update(msg);
    // `verify_slice` compares in constant time (subtle).
    mac.verify_slice(tag).map_err(|_| JwtError::BadSignature)
}

/// Verifies an ES256 signature (exactly 64 bytes, r||s) over `msg`, with
/// the compiled-in backend ([`super::es256`]: `p256`, or `ring` with feature `ring`).
///
/// # Errors
/// [`JwtError::SignatureLength`] (e.g. DER) or [`JwtError::BadSignature`].
pub fn es256_verify(vk: &VerifyingKey, msg: &[u8], sig: &[u8]) -> Result<(), JwtError> {
    super::es256::verify(vk, msg, sig)
}

/// Verifies `token` with `key` and returns its header and decoded payload.
///
/// The key's type decides the algorithm; a header naming another `alg` is
/// [`JwtError::AlgMismatch`] and `none` is [`JwtError::AlgNone`].
///
/// # Errors
/// Any [`JwtError`] of the signature layer.
pub fn verify<'s>(
    token: &str,
    key: &Key,
    scratch: &'s mut Scratch,
) -> Result<Verified<'s>, JwtError> {
    let parts = split(token)?;
    let (header, pbuf) = decode_header(&parts, scratch)?;
    check_header(&header, key.alg())?;

    check_signature(&parts, key)?;
    let payload = decode_text(parts.payload_b64, pbuf)?;
    Ok(Verified { header, payload })
}

/// Decodes and parses the header into the front of `scratch`; the rest is
/// for the payload.
fn decode_header<'s>(
    parts: &Parts<'_>,
    scratch: &'s mut Scratch,
) -> Result<(Header<'s>, &'s mut [u8]), JwtError> {
    let header_len = b64::decoded_len(parts.header_b64.len());
    if header_len > SCRATCH_LEN {
        return Err(JwtError::TooLong);
    }
    let (hbuf, pbuf) = scratch.buf.split_at_mut(header_len);
    Ok((parse_header(decode_text(parts.header_b64, hbuf)?)?, pbuf))
}

fn check_signature(parts: &Parts<'_>, key: &Key) -> Result<(), JwtError> {
    let mut sig = [0u8; 65];
    if b64::decoded_len(parts.sig_b64.len()) > sig.len() {
        return Err(JwtError::SignatureLength);
    }
    let sig = b64::decode(parts.sig_b64, &mut sig).map_err(|_| JwtError::BadBase64)?;
    match key {
        Key::Hs256(secret) => hs256_verify(secret.as_bytes(), parts.signing_input, sig),
        Key::Es256(vk) => es256_verify(vk, parts.signing_input, sig),
    }
}

/// Verifies `token` with a key that `choose` picks from the **not yet
/// verified** header and payload (e.g. by `kid` or `sub`), decoding each
/// segment once. Nothing `choose` sees is trusted until this returns `Ok`;
/// the key still decides the algorithm.
///
/// # Errors
/// Any [`JwtError`] of the signature layer, or `choose`'s.
pub fn verify_with<'s>(
    token: &str,
    scratch: &'s mut Scratch,
    choose: impl FnOnce(&Header<'s>, &'s str) -> Result<Key, JwtError>,
) -> Result<Verified<'s>, JwtError> {
    let parts = split(token)?;
    let (header, pbuf) = decode_header(&parts, scratch)?;
    let payload = decode_text(parts.payload_b64, pbuf)?;
    let key = choose(&header, payload)?;
    check_header(&header, key.alg())?;
    check_signature(&parts, &key)?;
    Ok(Verified { header, payload })
}
