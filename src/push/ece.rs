//! RFC 8291 message encryption for Web Push (`Content-Encoding: aes128gcm`,
//! RFC 8188), sans-IO: ECDH P-256 with the subscription's key, HKDF-SHA-256
//! with its auth secret, one AES-128-GCM record. Randomness (the ephemeral
//! key and the salt) is passed in, so the RFC's Appendix A is a unit test.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

/// The record size we declare: the one record holds the whole message.
pub(crate) const RECORD_SIZE: u32 = 4096;
/// Header: salt (16) + rs (4) + idlen (1) + keyid (65, our public key).
pub(crate) const HEADER_LEN: usize = 16 + 4 + 1 + 65;
/// AES-GCM tag plus the last-record delimiter byte.
const OVERHEAD: usize = 16 + 1;
/// Longest plaintext that fits one 4096-byte record (push services must
/// accept at least 4096 bytes of body, RFC 8030 §7.2).
pub(crate) const MAX_PLAINTEXT: usize = RECORD_SIZE as usize - OVERHEAD - HEADER_LEN;

/// Why a message could not be encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EceError {
    /// The subscription's `p256dh` is not an uncompressed P-256 point.
    BadPublicKey,
    /// The subscription's `auth` secret is not 16 bytes.
    BadAuthSecret,
    /// The plaintext is longer than [`MAX_PLAINTEXT`].
    TooLarge,
}

impl std::fmt::Display for EceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EceError::BadPublicKey => "p256dh is not an uncompressed P-256 public key (65 bytes)",
            EceError::BadAuthSecret => "auth is not a 16-byte secret",
            EceError::TooLarge => "the message is larger than one 4096-byte record",
        })
    }
}

/// Checks a subscription's `p256dh` (65-byte uncompressed point on P-256).
pub(crate) fn parse_ua_public(bytes: &[u8]) -> Result<PublicKey, EceError> {
    if bytes.len() != 65 || bytes[0] != 4 {
        return Err(EceError::BadPublicKey);
    }
    PublicKey::from_sec1_bytes(bytes).map_err(|_| EceError::BadPublicKey)
}

fn expand<const N: usize>(prk: &Hkdf<Sha256>, info: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    // N ≤ 32 here, far below HKDF's 255 × 32 limit: cannot fail.
    let _ = prk.expand_multi_info(info, &mut out);
    out
}

/// Encrypts `plaintext` for the subscription (`ua_public`, `auth`) with the
/// sender's ephemeral key `as_private` and `salt`; returns the whole
/// request body (header and one record).
pub(crate) fn encrypt(
    plaintext: &[u8],
    ua_public: &[u8],
    auth: &[u8],
    as_private: &SecretKey,
    salt: &[u8; 16],
) -> Result<Vec<u8>, EceError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(EceError::TooLarge);
    }
    let ua = parse_ua_public(ua_public)?;
    if auth.len() != 16 {
        return Err(EceError::BadAuthSecret);
    }
    let as_public = as_private.public_key().to_sec1_point(false);
    let as_public = as_public.as_bytes();
    let shared = p256::ecdh::diffie_hellman(as_private.to_nonzero_scalar(), ua.as_affine());
    // RFC 8291 §3.3: IKM from the ECDH secret, keyed by the auth secret and
    // bound to both public keys.
    let prk_key = Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes());
    let ikm: [u8; 32] = expand(&prk_key, &[b"WebPush: info\0", ua_public, as_public]);
    // RFC 8188 §2.2: content key and nonce from the salt.
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let cek: [u8; 16] = expand(&prk, &[b"Content-Encoding: aes128gcm\0"]);
    let nonce: [u8; 12] = expand(&prk, &[b"Content-Encoding: nonce\0"]);

    let mut body = Vec::with_capacity(HEADER_LEN + plaintext.len() + OVERHEAD);
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_public);
    let mut record = Vec::with_capacity(plaintext.len() + 1);
    record.extend_from_slice(plaintext);
    record.push(2); // the last (and only) record, no padding
    let cipher = Aes128Gcm::new(&cek.into());
    // Sequence number 0: the nonce is used as derived. In-place encryption
    // of a Vec cannot run out of space.
    let nonce = Nonce::from(nonce);
    let Ok(tag) = cipher.encrypt_inout_detached(&nonce, b"", record.as_mut_slice().into()) else {
        return Err(EceError::TooLarge);
    };
    body.extend_from_slice(&record);
    body.extend_from_slice(&tag);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        let mut buf = vec![0u8; s.len()];
        botcall_core::b64::decode(s.as_bytes(), &mut buf)
            .unwrap()
            .to_vec()
    }

    /// RFC 8291 Appendix A: the exact message from its keys and salt.
    #[test]
    fn rfc8291_appendix_a() {
        let as_private =
            SecretKey::from_slice(&b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")).unwrap();
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let body = encrypt(
            b"When I grow up, I want to be a watermelon",
            &b64("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"),
            &b64("BTBZMqHH6r4Tts7J_aSIgg"),
            &as_private,
            &salt,
        )
        .unwrap();
        let want = b64(concat!(
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml",
            "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT",
            "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
        ));
        assert_eq!(body, want);
    }

    #[test]
    fn bad_keys_and_oversize_messages_are_refused() {
        let sk = SecretKey::from_slice(&[7u8; 32]).unwrap();
        let ua = sk.public_key().to_sec1_point(false).as_bytes().to_vec();
        let salt = [1u8; 16];
        assert!(encrypt(b"hi", &ua, &[0; 16], &sk, &salt).is_ok());
        // Compressed point, wrong length, off the curve.
        let compressed = sk.public_key().to_sec1_point(true).as_bytes().to_vec();
        assert_eq!(
            encrypt(b"hi", &compressed, &[0; 16], &sk, &salt),
            Err(EceError::BadPublicKey)
        );
        assert_eq!(
            encrypt(b"hi", &ua[..64], &[0; 16], &sk, &salt),
            Err(EceError::BadPublicKey)
        );
        let mut off = ua.clone();
        off[64] ^= 1;
        assert_eq!(
            encrypt(b"hi", &off, &[0; 16], &sk, &salt),
            Err(EceError::BadPublicKey)
        );
        assert_eq!(
            encrypt(b"hi", &ua, &[0; 15], &sk, &salt),
            Err(EceError::BadAuthSecret)
        );
        let max = vec![b'x'; MAX_PLAINTEXT];
        assert_eq!(
            encrypt(&max, &ua, &[0; 16], &sk, &salt).unwrap().len(),
            RECORD_SIZE as usize
        );
        let over = vec![b'x'; MAX_PLAINTEXT + 1];
        assert_eq!(
            encrypt(&over, &ua, &[0; 16], &sk, &salt),
            Err(EceError::TooLarge)
        );
    }
}
