//! Token signing (feature `sign`): HS256, and ES256 ([`EcSigningKey`]: RFC
//! 6979 deterministic nonces with `p256`, so no random number generator is
//! needed; ring's random nonces with feature `ring`).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::es256::EcSigningKey;
use super::key::{self, KeyOp};
use super::{Alg, JwtError, Key, Secret};
use crate::b64;
use crate::json::{self, Object, Sink, SliceSink, Writer};

/// A key that signs tokens.
#[derive(Clone)]
pub enum SigningKey {
    /// HS256 with this secret.
    Hs256(Secret),
    /// ES256 with this P-256 private key.
    Es256(EcSigningKey),
}

impl core::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SigningKey::Hs256(s) => write!(f, "SigningKey::Hs256({s:?})"),
            SigningKey::Es256(_) => f.write_str("SigningKey::Es256(..)"),
        }
    }
}

impl SigningKey {
    /// A key from a JWK: `oct` (HS256) or an EC P-256 private key (`d`, and
    /// `x`/`y`, which must match `d`).
    ///
    /// # Errors
    /// [`JwtError::BadJson`], [`JwtError::BadKey`], [`JwtError::WeakKey`].
    pub fn from_jwk(jwk: &str) -> Result<Self, JwtError> {
        let obj = json::parse_object(jwk)?;
        key::check_jwk_use(&obj, KeyOp::Sign)?;
        if obj.req_str("kty")?.eq_str("EC") {
            Self::ec_from_jwk(&obj)
        } else {
            match Key::from_jwk_unchecked(obj)? {
                Key::Hs256(s) => Ok(SigningKey::Hs256(s)),
                Key::Es256(_) => Err(JwtError::BadKey),
            }
        }
    }

    fn ec_from_jwk(obj: &Object<'_>) -> Result<Self, JwtError> {
        let public = key::ec_point_from_jwk(obj)?;
        let d = obj.opt_str("d")?.ok_or(JwtError::BadKey)?;
        let mut buf = [0u8; 33];
        let d = b64::decode(d.raw().as_bytes(), &mut buf).map_err(|_| JwtError::BadKey)?;
        if d.len() != 32 {
            return Err(JwtError::BadKey);
        }
        let sk = EcSigningKey::from_slice(d)?;
        if *sk.verifying_key() != public {
            return Err(JwtError::BadKey);
        }
        Ok(SigningKey::Es256(sk))
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Alg {
        match self {
            SigningKey::Hs256(_) => Alg::Hs256,
            SigningKey::Es256(_) => Alg::Es256,
        }
    }

    /// The matching verification key.
    pub fn verify_key(&self) -> Key {
        match self {
            SigningKey::Hs256(s) => Key::Hs256(s.clone()),
            SigningKey::Es256(sk) => Key::Es256(*sk.verifying_key()),
        }
    }

    /// Writes the private key as a JWK (ES256: `kty`, `crv`, `x`, `y`, `d`; HS256: `kty`, `k`).
    ///
    /// # Errors
    /// [`json::write::Full`] if the sink is full.
    pub fn write_jwk<S: Sink + ?Sized>(
        &self,
        w: &mut Writer<'_, S>,
        kid: Option<&str>,
    ) -> Result<(), json::write::Full> {
        let mut tmp = [0u8; b64::encoded_len(key::MAX_SECRET_LEN)];
        w.begin_obj()?;
        match self {
            SigningKey::Hs256(s) => {
                w.field_str("kty", "oct")?.field_str("alg", "HS256")?;
                let k = b64::encode(s.as_bytes(), &mut tmp).map_err(|_| json::write::Full)?;
                w.field_str("k", k)?;
            }
            SigningKey::Es256(sk) => {
                let mut public = heapless::Vec::<u8, 256>::new();
                key::write_public_jwk(&mut Writer::new(&mut public), sk.verifying_key(), None)?;
                // Copy the public members, then add `d`.
                let text = core::str::from_utf8(&public).map_err(|_| json::write::Full)?;
                let obj = json::parse_object(text).map_err(|_| json::write::Full)?;
                for (k, v) in obj.iter() {
                    if let Some(k) = k.as_plain() {
                        w.key(k)?.value(v)?;
                    }
                }
                let d = b64::encode(&sk.as_p256().to_bytes(), &mut tmp)
                    .map_err(|_| json::write::Full)?;
                w.field_str("d", d)?;
            }
        }
        if let Some(kid) = kid {
            w.field_str("kid", kid)?;
        }
        w.end_obj()?;
        Ok(())
    }
}

/// Header options for [`sign_claims`].
#[derive(Debug, Clone, Copy, Default)]
pub struct HeaderOpts<'a> {
    /// `kid` to put in the header.
    pub kid: Option<&'a str>,
    /// Embed the ES256 public key as `jwk` (open registration).
    pub embed_jwk: bool,
    /// `typ`; defaults to `JWT`.
    pub typ: Option<&'a str>,
}

/// Signs `claims_json` (any JSON object text) with a generated header, into `out`.
///
/// # Errors
/// [`JwtError::BufferTooSmall`] if `out` is too small for the token.
pub fn sign_claims<'o>(
    key: &SigningKey,
    opts: HeaderOpts<'_>,
    claims_json: &str,
    out: &'o mut [u8],
) -> Result<&'o str, JwtError> {
    let mut header = heapless::Vec::<u8, 512>::new();
    {
        let mut w = Writer::new(&mut header);
        let full = |_| JwtError::BufferTooSmall;
        w.begin_obj().map_err(full)?;
        w.field_str("alg", key.alg().as_str()).map_err(full)?;
        w.field_str("typ", opts.typ.unwrap_or("JWT"))
            .map_err(full)?;
        if let Some(kid) = opts.kid {
            w.field_str("kid", kid).map_err(full)?;
        }
        if let (true, SigningKey::Es256(sk)) = (opts.embed_jwk, key) {
            w.key("jwk").map_err(full)?;
            key::write_public_jwk(&mut w, sk.verifying_key(), None).map_err(full)?;
        }
        w.end_obj().map_err(full)?;
    }
    let header = core::str::from_utf8(&header).map_err(|_| JwtError::BufferTooSmall)?;
    sign(header, claims_json, key, out)
}

/// Signs with an explicit header text: `b64(header).b64(claims).b64(sig)`.
///
/// # Errors
/// [`JwtError::BufferTooSmall`] if `out` is too small.
pub fn sign<'o>(
    header_json: &str,
    claims_json: &str,
    key: &SigningKey,
    out: &'o mut [u8],
) -> Result<&'o str, JwtError> {
    let mut sink = SliceSink::new(out);
    let small = |_| JwtError::BufferTooSmall;
    put_b64(&mut sink, header_json.as_bytes()).map_err(small)?;
    sink.put(b".").map_err(small)?;
    put_b64(&mut sink, claims_json.as_bytes()).map_err(small)?;
    let signing_input_len = sink.len();
    let sig: heapless::Vec<u8, 64> = {
        let input = sink.as_bytes();
        match key {
            SigningKey::Hs256(s) => {
                let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(s.as_bytes())
                    .map_err(|_| JwtError::BadKey)?;
                mac.update(input);
                heapless::Vec::from_slice(&mac.finalize().into_bytes())
                    .map_err(|_| JwtError::BadKey)?
            }
            SigningKey::Es256(sk) => {
                heapless::Vec::from_slice(&sk.sign(input)).map_err(|_| JwtError::BadKey)?
            }
        }
    };
    debug_assert_eq!(sink.len(), signing_input_len);
    sink.put(b".").map_err(small)?;
    put_b64(&mut sink, &sig).map_err(small)?;
    let bytes = sink.into_bytes();
    // Only base64url characters and dots were written.
    core::str::from_utf8(bytes).map_err(|_| JwtError::BufferTooSmall)
}

fn put_b64(sink: &mut SliceSink<'_>, data: &[u8]) -> Result<(), json::write::Full> {
    let mut chunk = [0u8; 256];
    // Encode in multiples of 3 bytes so chunks concatenate into one encoding.
    for part in data.chunks(192) {
        let text = b64::encode(part, &mut chunk).map_err(|_| json::write::Full)?;
        sink.put(text.as_bytes())?;
    }
    Ok(())
}
