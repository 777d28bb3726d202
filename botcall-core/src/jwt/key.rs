//! Verification keys (HS256 secrets, ES256 P-256 public keys), JWK and JWKS
//! parsing, and RFC 7638 thumbprints.
//!
//! The key decides the algorithm: a token's header can only *agree* with it.

use p256::ecdsa::VerifyingKey;
use sha2::{Digest, Sha256};

use super::JwtError;
use crate::b64;
use crate::json::{self, Object, Sink, Writer};

/// Shortest HS256 secret accepted (RFC 7518 §3.2: at least the hash size).
pub const MIN_SECRET_LEN: usize = 32;
/// Longest HS256 secret stored (longer keys are hashed by HMAC anyway).
pub const MAX_SECRET_LEN: usize = 128;

/// A JWS algorithm we implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// HMAC-SHA256.
    Hs256,
    /// ECDSA P-256 with SHA-256, P1363 (r||s) signatures.
    Es256,
}

impl Alg {
    /// The JOSE name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Es256 => "ES256",
        }
    }
}

/// An HS256 secret, 32–128 bytes, stored inline.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(heapless::Vec<u8, MAX_SECRET_LEN>);

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

impl Secret {
    /// Copies `bytes` after checking the length.
    ///
    /// # Errors
    /// [`JwtError::WeakKey`] under 32 bytes, [`JwtError::BadKey`] over 128.
    pub fn new(bytes: &[u8]) -> Result<Self, JwtError> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(JwtError::WeakKey);
        }
        heapless::Vec::from_slice(bytes)
            .map(Secret)
            .map_err(|_| JwtError::BadKey)
    }
    /// The secret bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A key that verifies tokens; its variant fixes the accepted `alg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// HS256 with this secret.
    Hs256(Secret),
    /// ES256 with this P-256 public key.
    Es256(VerifyingKey),
}

impl Key {
    /// An HS256 key.
    ///
    /// # Errors
    /// [`JwtError::WeakKey`] for secrets under 32 bytes.
    pub fn hs256(secret: &[u8]) -> Result<Self, JwtError> {
        Secret::new(secret).map(Key::Hs256)
    }
    /// An ES256 key from SEC1 bytes (compressed or uncompressed); the point is
    /// checked to be on the curve.
    ///
    /// # Errors
    /// [`JwtError::BadKey`].
    pub fn es256_sec1(bytes: &[u8]) -> Result<Self, JwtError> {
        VerifyingKey::from_sec1_bytes(bytes)
            .map(Key::Es256)
            .map_err(|_| JwtError::BadKey)
    }
    /// A key from a JWK document: `{"kty":"oct","k":...}` (HS256) or
    /// `{"kty":"EC","crv":"P-256","x":...,"y":...}` (ES256; a private `d` is ignored).
    ///
    /// # Errors
    /// [`JwtError::BadJson`] or [`JwtError::BadKey`].
    pub fn from_jwk(jwk: &str) -> Result<Self, JwtError> {
        Self::from_jwk_obj(json::parse_object(jwk)?)
    }
    /// As [`Key::from_jwk`], from an already parsed object (a JWKS entry, a header `jwk`).
    ///
    /// # Errors
    /// [`JwtError::BadJson`] or [`JwtError::BadKey`].
    pub fn from_jwk_obj(jwk: Object<'_>) -> Result<Self, JwtError> {
        check_jwk_use(&jwk, KeyOp::Verify)?;
        Self::from_jwk_unchecked(jwk)
    }
    /// The key material of a JWK whose `use`/`key_ops` the caller has checked.
    pub(crate) fn from_jwk_unchecked(jwk: Object<'_>) -> Result<Self, JwtError> {
        let kty = jwk.req_str("kty")?;
        if kty.eq_str("oct") {
            if let Some(alg) = jwk.opt_str("alg")?
                && !alg.eq_str("HS256")
            {
                return Err(JwtError::BadKey);
            }
            let k = jwk.req_str("k")?;
            let mut buf = [0u8; MAX_SECRET_LEN];
            let secret = b64::decode(k.raw().as_bytes(), &mut buf).map_err(|_| JwtError::BadKey)?;
            if k.has_escapes() {
                return Err(JwtError::BadKey);
            }
            Key::hs256(secret)
        } else if kty.eq_str("EC") {
            ec_point_from_jwk(&jwk).map(Key::Es256)
        } else {
            Err(JwtError::BadKey)
        }
    }
    /// The algorithm this key verifies.
    pub fn alg(&self) -> Alg {
        match self {
            Key::Hs256(_) => Alg::Hs256,
            Key::Es256(_) => Alg::Es256,
        }
    }
}

/// What a JWK is being loaded for: RFC 7517 §4.3 `key_ops` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyOp {
    /// Checking signatures and MACs.
    Verify,
    /// Making them.
    Sign,
}

impl KeyOp {
    fn as_str(self) -> &'static str {
        match self {
            KeyOp::Verify => "verify",
            KeyOp::Sign => "sign",
        }
    }
}

/// Most `key_ops` entries a JWK may list (RFC 7517 §4.3 defines eight values,
/// and duplicates are not allowed), so the duplicate check stays cheap.
const MAX_KEY_OPS: usize = 8;

/// RFC 7517 §4.2–4.3: a `use` other than `sig`, or a `key_ops` list without
/// `op` (or malformed: not strings, duplicates, too long), makes the key
/// unusable for `op`.
pub(crate) fn check_jwk_use(jwk: &Object<'_>, op: KeyOp) -> Result<(), JwtError> {
    if let Some(u) = jwk.opt_str("use")?
        && !u.eq_str("sig")
    {
        return Err(JwtError::BadKey);
    }
    let Some(ops) = jwk.opt_arr("key_ops")? else {
        return Ok(());
    };
    let mut allowed = false;
    for (i, v) in ops.iter().enumerate() {
        let json::Value::Str(s) = v else {
            return Err(JwtError::BadKey);
        };
        if i >= MAX_KEY_OPS
            || ops
                .iter()
                .take(i)
                .any(|p| matches!(p, json::Value::Str(p) if p.eq_decoded(&s)))
        {
            return Err(JwtError::BadKey);
        }
        allowed |= s.eq_str(op.as_str());
    }
    if allowed {
        Ok(())
    } else {
        Err(JwtError::BadKey)
    }
}

fn coord(jwk: &Object<'_>, name: &'static str) -> Result<p256::FieldBytes, JwtError> {
    let v = jwk.req_str(name)?;
    let mut buf = [0u8; 33];
    let bytes = b64::decode(v.raw().as_bytes(), &mut buf).map_err(|_| JwtError::BadKey)?;
    if v.has_escapes() || bytes.len() != 32 {
        return Err(JwtError::BadKey);
    }
    p256::FieldBytes::try_from(bytes).map_err(|_| JwtError::BadKey)
}

/// Reads the public part of an EC P-256 JWK, checking the point is on the curve.
///
/// # Errors
/// [`JwtError::BadKey`] for another curve, another algorithm, bad coordinates.
pub fn ec_public_from_jwk(jwk: &Object<'_>) -> Result<VerifyingKey, JwtError> {
    check_jwk_use(jwk, KeyOp::Verify)?;
    ec_point_from_jwk(jwk)
}

/// The P-256 point of an EC JWK, whatever the key is for.
pub(crate) fn ec_point_from_jwk(jwk: &Object<'_>) -> Result<VerifyingKey, JwtError> {
    if !jwk.req_str("kty")?.eq_str("EC") || !jwk.req_str("crv")?.eq_str("P-256") {
        return Err(JwtError::BadKey);
    }
    if let Some(alg) = jwk.opt_str("alg")?
        && !alg.eq_str("ES256")
    {
        return Err(JwtError::BadKey);
    }
    let x = coord(jwk, "x")?;
    let y = coord(jwk, "y")?;
    let point = p256::Sec1Point::from_affine_coordinates(&x, &y, false);
    VerifyingKey::from_sec1_point(&point).map_err(|_| JwtError::BadKey)
}

/// The base64url x and y coordinates of `vk` (43 characters each).
fn coords_b64(vk: &VerifyingKey) -> ([u8; 43], [u8; 43]) {
    let point = vk.to_sec1_point(false);
    let mut x = [0u8; 43];
    let mut y = [0u8; 43];
    // An uncompressed, non-identity point always has both 32-byte coordinates,
    // and 32 bytes encode to exactly 43 characters.
    if let (Some(px), Some(py)) = (point.x(), point.y()) {
        let _ = b64::encode(px, &mut x);
        let _ = b64::encode(py, &mut y);
    }
    (x, y)
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url, 43 characters) of a P-256 key.
///
/// In open-registration mode this is the agent id: only the holder of the
/// private key can produce a token whose header key hashes to it.
pub fn thumbprint(vk: &VerifyingKey) -> heapless::String<43> {
    let (x, y) = coords_b64(vk);
    // Members in lexicographic order, no whitespace (RFC 7638 §3.2).
    let mut h = Sha256::new();
    h.update(b"{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"");
    h.update(x);
    h.update(b"\",\"y\":\"");
    h.update(y);
    h.update(b"\"}");
    let digest = h.finalize();
    let mut out = [0u8; 43];
    let mut s = heapless::String::new();
    if let Ok(text) = b64::encode(&digest, &mut out) {
        let _ = s.push_str(text);
    }
    s
}

/// Writes `vk` as a public JWK object (`kty`, `crv`, `x`, `y`, `alg`, `use`, optional `kid`).
///
/// # Errors
/// [`json::write::Full`] if the sink is full.
pub fn write_public_jwk<S: Sink + ?Sized>(
    w: &mut Writer<'_, S>,
    vk: &VerifyingKey,
    kid: Option<&str>,
) -> Result<(), json::write::Full> {
    let (x, y) = coords_b64(vk);
    w.begin_obj()?;
    w.field_str("kty", "EC")?.field_str("crv", "P-256")?;
    w.field_str("x", core::str::from_utf8(&x).unwrap_or(""))?;
    w.field_str("y", core::str::from_utf8(&y).unwrap_or(""))?;
    w.field_str("alg", "ES256")?.field_str("use", "sig")?;
    if let Some(kid) = kid {
        w.field_str("kid", kid)?;
    }
    w.end_obj()?;
    Ok(())
}

/// A JSON Web Key Set (`{"keys":[...]}`), borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Jwks<'a>(json::Array<'a>);

impl<'a> Jwks<'a> {
    /// Parses a JWKS document.
    ///
    /// # Errors
    /// [`JwtError::BadJson`] if it is not an object with a `keys` array.
    pub fn parse(doc: &'a str) -> Result<Self, JwtError> {
        let obj = json::parse_object(doc)?;
        let keys = obj
            .opt_arr("keys")?
            .ok_or(JwtError::BadJson(json::JsonError::Missing("keys")))?;
        Ok(Jwks(keys))
    }
    /// The ES256 key for `kid`: the entry with that `kid`, or, for a token
    /// without `kid`, the set's only key.
    ///
    /// # Errors
    /// [`JwtError::UnknownKey`] if none matches, [`JwtError::BadKey`] if it is unusable.
    pub fn find_es256(&self, kid: Option<&str>) -> Result<Key, JwtError> {
        let mut found = None;
        let mut count = 0;
        for entry in self.0.iter() {
            let json::Value::Obj(o) = entry else { continue };
            count += 1;
            let entry_kid = o.opt_str("kid")?;
            match (kid, entry_kid) {
                (Some(want), Some(have)) if have.eq_str(want) => {
                    return ec_public_from_jwk(&o).map(Key::Es256);
                }
                (None, _) => found = Some(o),
                _ => {}
            }
        }
        match (kid, found) {
            (None, Some(o)) if count == 1 => ec_public_from_jwk(&o).map(Key::Es256),
            _ => Err(JwtError::UnknownKey),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7515 A.3 key.
    const A3_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#;

    #[test]
    fn parses_rfc_keys() {
        let k = Key::from_jwk(A3_JWK).unwrap();
        assert_eq!(k.alg(), Alg::Es256);
        let hs = Key::from_jwk(r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#).unwrap();
        assert_eq!(hs.alg(), Alg::Hs256);
    }

    #[test]
    fn rejects_bad_keys() {
        // Off-curve point: y changed.
        let off = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a4"}"#;
        assert_eq!(Key::from_jwk(off), Err(JwtError::BadKey));
        let p384 = r#"{"kty":"EC","crv":"P-384","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        assert_eq!(Key::from_jwk(p384), Err(JwtError::BadKey));
        assert_eq!(
            Key::from_jwk(r#"{"kty":"oct","k":"c2hvcnQ"}"#),
            Err(JwtError::WeakKey)
        );
        assert_eq!(
            Key::from_jwk(r#"{"kty":"RSA","n":"x","e":"AQAB"}"#),
            Err(JwtError::BadKey)
        );
        assert_eq!(Key::es256_sec1(&[4u8; 65]), Err(JwtError::BadKey));
        assert!(matches!(
            Key::from_jwk(r#"{"kty":"EC","kty":"EC"}"#),
            Err(JwtError::BadJson(_))
        ));
    }

    #[test]
    #[cfg(all(feature = "alloc", feature = "sign"))]
    fn key_ops_must_allow_the_operation() {
        // RFC 7517 §4.3: a key whose `key_ops` lacks `verify` must not verify
        // (Wycheproof's JWS battery has `["encrypt"]`), and one without
        // `sign` must not sign.
        let pub_part = r#""kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0""#;
        let d = r#""d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI""#;
        let secret = r#""kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow""#;
        let with = |key: &str, ops: &str| alloc::format!("{{{key},\"key_ops\":{ops}}}");
        for key in [pub_part, secret] {
            for ops in [
                r#"["verify"]"#,
                r#"["sign","verify"]"#,
                r#"["verify","encrypt"]"#,
            ] {
                assert!(Key::from_jwk(&with(key, ops)).is_ok(), "{ops}");
            }
            for ops in [
                r#"["encrypt"]"#,
                r#"["sign"]"#,
                "[]",
                r#"["verify","verify"]"#,
                "[1]",
                r#"["VERIFY"]"#,
                r#"["a","b","c","d","e","f","g","h","verify"]"#,
            ] {
                assert_eq!(
                    Key::from_jwk(&with(key, ops)),
                    Err(JwtError::BadKey),
                    "{ops}"
                );
            }
            assert!(Key::from_jwk(&with(key, r#""verify""#)).is_err());
        }
        // The JWKS path checks it too.
        let set = alloc::format!(r#"{{"keys":[{}]}}"#, with(pub_part, r#"["encrypt"]"#));
        assert_eq!(
            Jwks::parse(&set).unwrap().find_es256(None),
            Err(JwtError::BadKey)
        );
        // Signing keys need `sign`.
        let ec = alloc::format!("{pub_part},{d}");
        for key in [ec.as_str(), secret] {
            assert!(crate::jwt::SigningKey::from_jwk(&with(key, r#"["sign","verify"]"#)).is_ok());
            assert!(crate::jwt::SigningKey::from_jwk(&with(key, r#"["sign"]"#)).is_ok());
            assert_eq!(
                crate::jwt::SigningKey::from_jwk(&with(key, r#"["verify"]"#)).err(),
                Some(JwtError::BadKey)
            );
        }
    }

    #[test]
    fn rfc7638_thumbprint_of_a3_key() {
        let Key::Es256(vk) = Key::from_jwk(A3_JWK).unwrap() else {
            panic!()
        };
        let tp = thumbprint(&vk);
        assert_eq!(tp.len(), 43);
        assert!(crate::id::validate(&tp).is_ok());
        // Computed independently with Python: sha256 of the canonical JWK.
        assert_eq!(tp.as_str(), "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
    }

    #[test]
    fn jwks_selects_by_kid() {
        let doc = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
        let set = Jwks::parse(doc).unwrap();
        assert!(set.find_es256(Some("a")).is_ok());
        assert!(set.find_es256(None).is_ok());
        assert_eq!(set.find_es256(Some("b")), Err(JwtError::UnknownKey));
    }

    #[test]
    fn writes_jwk_that_parses_back() {
        let Key::Es256(vk) = Key::from_jwk(A3_JWK).unwrap() else {
            panic!()
        };
        let mut out = heapless::Vec::<u8, 256>::new();
        write_public_jwk(&mut Writer::new(&mut out), &vk, Some("k1")).unwrap();
        let text = core::str::from_utf8(&out).unwrap();
        assert_eq!(Key::from_jwk(text), Ok(Key::Es256(vk)));
    }
}
