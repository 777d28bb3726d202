//! ES256 (ECDSA P-256 with SHA-256, r||s signatures) behind one interface,
//! so the backend can change without touching the JWS layer.
//!
//! - Always: RustCrypto `p256` — no_std, no allocator, RFC 6979 deterministic
//!   nonces (no RNG needed). Keys, JWKs and thumbprints are always `p256`
//!   types, whatever signs and verifies.
//! - Feature `ring` (std): signing and verification go through `ring`'s P-256
//!   (constant-time assembly on x86_64 and aarch64), several times faster: the
//!   daemon signs a human attestation per call and verifies fresh ES256 bot
//!   tokens, the SDK checks the attestation of every call. ring's nonces are
//!   random (OS RNG, mixed with the key and the message digest); if the OS
//!   RNG ever fails, signing falls back to `p256` with RFC 6979.
//!
//! Measured in `docs/dependencies.md`; no curve arithmetic lives here.

use p256::ecdsa::VerifyingKey;

use super::JwtError;

/// An ES256 private key: a `p256` key, plus `ring`'s copy with feature `ring`.
#[derive(Clone)]
pub struct EcSigningKey {
    sk: p256::ecdsa::SigningKey,
    #[cfg(feature = "ring")]
    fast: alloc::sync::Arc<ring::signature::EcdsaKeyPair>,
}

impl core::fmt::Debug for EcSigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("EcSigningKey(..)")
    }
}

impl PartialEq for EcSigningKey {
    fn eq(&self, other: &Self) -> bool {
        self.sk == other.sk
    }
}

impl Eq for EcSigningKey {}

impl EcSigningKey {
    /// Wraps a `p256` key.
    ///
    /// # Errors
    /// [`JwtError::BadKey`] if the fast backend refuses it (it never should:
    /// every `p256` signing key is a valid P-256 private key).
    pub fn from_p256(sk: p256::ecdsa::SigningKey) -> Result<Self, JwtError> {
        #[cfg(feature = "ring")]
        {
            let public = sk.verifying_key().to_sec1_point(false);
            let fast = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &sk.to_bytes(),
                public.as_bytes(),
                &ring::rand::SystemRandom::new(),
            )
            .map_err(|_| JwtError::BadKey)?;
            Ok(EcSigningKey {
                sk,
                fast: alloc::sync::Arc::new(fast),
            })
        }
        #[cfg(not(feature = "ring"))]
        Ok(EcSigningKey { sk })
    }

    /// A key from its 32-byte big-endian scalar `d`.
    ///
    /// # Errors
    /// [`JwtError::BadKey`] for zero, a scalar ≥ n, or more than 32 bytes.
    pub fn from_slice(d: &[u8]) -> Result<Self, JwtError> {
        let sk = p256::ecdsa::SigningKey::from_slice(d).map_err(|_| JwtError::BadKey)?;
        Self::from_p256(sk)
    }

    /// The public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        self.sk.verifying_key()
    }

    /// The `p256` key (e.g. to serialize `d`).
    pub fn as_p256(&self) -> &p256::ecdsa::SigningKey {
        &self.sk
    }

    /// Signs `msg` (SHA-256 is applied here): 64 bytes, r||s.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        #[cfg(feature = "ring")]
        if let Ok(sig) = self.fast.sign(&ring::rand::SystemRandom::new(), msg)
            && let Ok(rs) = <[u8; 64]>::try_from(sig.as_ref())
        {
            return rs;
        }
        self.sign_rfc6979(msg)
    }

    /// Signs with `p256` and an RFC 6979 deterministic nonce, whatever the backend.
    pub fn sign_rfc6979(&self, msg: &[u8]) -> [u8; 64] {
        use p256::ecdsa::{Signature, signature::Signer};
        let sig: Signature = self.sk.sign(msg);
        sig.to_bytes().into()
    }
}

/// Verifies an ES256 signature (exactly 64 bytes, r||s) over `msg` with the
/// compiled-in backend.
///
/// # Errors
/// [`JwtError::SignatureLength`] (e.g. DER) or [`JwtError::BadSignature`].
pub fn verify(vk: &VerifyingKey, msg: &[u8], sig: &[u8]) -> Result<(), JwtError> {
    if sig.len() != 64 {
        return Err(JwtError::SignatureLength);
    }
    #[cfg(feature = "ring")]
    {
        let public = vk.to_sec1_point(false);
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            public.as_bytes(),
        )
        .verify(msg, sig)
        .map_err(|_| JwtError::BadSignature)
    }
    #[cfg(not(feature = "ring"))]
    verify_p256(vk, msg, sig)
}

/// Verifies with RustCrypto `p256`, whatever the backend (what no_std runs).
///
/// # Errors
/// As [`verify`].
pub fn verify_p256(vk: &VerifyingKey, msg: &[u8], sig: &[u8]) -> Result<(), JwtError> {
    use p256::ecdsa::{Signature, signature::Verifier};
    if sig.len() != 64 {
        return Err(JwtError::SignatureLength);
    }
    let sig = Signature::from_slice(sig).map_err(|_| JwtError::BadSignature)?;
    vk.verify(msg, &sig).map_err(|_| JwtError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7515 A.3's d.
    const D: [u8; 32] = [
        142, 155, 16, 158, 113, 144, 152, 191, 152, 4, 135, 223, 31, 93, 119, 233, 203, 41, 96,
        110, 190, 210, 38, 59, 95, 87, 194, 19, 223, 132, 244, 178,
    ];

    #[test]
    fn both_backends_agree() {
        let k = EcSigningKey::from_slice(&D).unwrap();
        let vk = k.verifying_key();
        for msg in [&b""[..], b"a", &[0x5a; 1000]] {
            for sig in [k.sign(msg), k.sign_rfc6979(msg)] {
                assert_eq!(verify(vk, msg, &sig), Ok(()));
                assert_eq!(verify_p256(vk, msg, &sig), Ok(()));
                let mut bad = sig;
                bad[63] ^= 1;
                assert_eq!(verify(vk, msg, &bad), Err(JwtError::BadSignature));
                assert_eq!(verify_p256(vk, msg, &bad), Err(JwtError::BadSignature));
                assert_eq!(verify(vk, b"other", &sig), Err(JwtError::BadSignature));
                assert_eq!(verify(vk, msg, &sig[..63]), Err(JwtError::SignatureLength));
            }
        }
        // RFC 6979 is deterministic.
        assert_eq!(k.sign_rfc6979(b"m"), k.sign_rfc6979(b"m"));
    }

    #[test]
    fn rejects_bad_scalars() {
        assert_eq!(EcSigningKey::from_slice(&[0; 32]), Err(JwtError::BadKey));
        assert_eq!(EcSigningKey::from_slice(&[0xff; 32]), Err(JwtError::BadKey));
    }

    #[test]
    #[cfg(feature = "ring")]
    fn ring_nonces_never_repeat() {
        // Random nonces: signatures of one message differ, and no r repeats.
        let k = EcSigningKey::from_slice(&D).unwrap();
        let mut rs: std::vec::Vec<[u8; 32]> = (0..2000)
            .map(|_| {
                let sig = k.sign(b"same message");
                assert_eq!(
                    verify_p256(k.verifying_key(), b"same message", &sig),
                    Ok(())
                );
                sig[..32].try_into().unwrap()
            })
            .collect();
        rs.sort_unstable();
        rs.dedup();
        assert_eq!(rs.len(), 2000);
    }
}
