//! What the Web Push client speaks and trusts: a rustls `CryptoProvider` on
//! ring cut to what every public push service offers — ECDHE on P-256 (and
//! P-384), AES-GCM, certificates signed with ECDSA P-256/P-384 or RSA — so
//! the linker drops X25519, Ed25519, ChaCha20-Poly1305 and RSA signing (≈ 240
//! KB of the stripped binary; docs/dependencies.md, issue 17). RFC 8446 §9.1
//! makes secp256r1 and TLS_AES_128_GCM_SHA256 mandatory for every TLS 1.3
//! server, and browsers' push services also speak the TLS 1.2 ECDHE-AES-GCM
//! suites kept here.

use std::path::Path;
use std::sync::Arc;

use futures_rustls::rustls::RootCertStore;
use futures_rustls::rustls::crypto::ring::{cipher_suite, kx_group};
use futures_rustls::rustls::crypto::{
    CryptoProvider, GetRandomFailed, KeyProvider, SecureRandom, WebPkiSupportedAlgorithms,
};
use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::sign::SigningKey;
use futures_rustls::rustls::{Error, SignatureScheme};
use webpki::ring as alg;

/// The trust anchors: every certificate of the PEM file `path` that webpki
/// accepts as one (a system bundle may hold a few it cannot parse; those are
/// skipped, as rustls-native-certs does). None usable is an error.
pub(crate) fn roots(path: &Path) -> Result<RootCertStore, String> {
    let what = |e: &dyn std::fmt::Display| format!("push_ca_file {}: {e}", path.display());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| what(&e))?
        .collect::<Result<_, _>>()
        .map_err(|e| what(&e))?;
    let mut roots = RootCertStore::empty();
    let (added, _skipped) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(what(&"no CA certificate in it"));
    }
    Ok(roots)
}

/// The provider the push client is built with.
pub(crate) fn provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: vec![
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ],
        kx_groups: vec![kx_group::SECP256R1, kx_group::SECP384R1],
        signature_verification_algorithms: SIG_ALGS,
        secure_random: &Os,
        key_provider: &Os,
    }
}

/// ring's provider's table without Ed25519 (no public CA issues it).
static SIG_ALGS: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        alg::ECDSA_P256_SHA256,
        alg::ECDSA_P256_SHA384,
        alg::ECDSA_P384_SHA256,
        alg::ECDSA_P384_SHA384,
        alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        alg::RSA_PKCS1_2048_8192_SHA256,
        alg::RSA_PKCS1_2048_8192_SHA384,
        alg::RSA_PKCS1_2048_8192_SHA512,
        alg::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
        alg::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
        alg::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    ],
    mapping: &[
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            &[alg::ECDSA_P384_SHA384, alg::ECDSA_P256_SHA384],
        ),
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            &[alg::ECDSA_P256_SHA256, alg::ECDSA_P384_SHA256],
        ),
        (
            SignatureScheme::RSA_PSS_SHA512,
            &[alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA384,
            &[alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA256,
            &[alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA512,
            &[alg::RSA_PKCS1_2048_8192_SHA512],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA384,
            &[alg::RSA_PKCS1_2048_8192_SHA384],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA256,
            &[alg::RSA_PKCS1_2048_8192_SHA256],
        ),
    ],
};

/// Randomness from the OS; no private keys (the client never authenticates
/// itself, and ring's key loader would link RSA and Ed25519 signing).
#[derive(Debug)]
struct Os;

impl SecureRandom for Os {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        getrandom::fill(buf).map_err(|_| GetRandomFailed)
    }
}

impl KeyProvider for Os {
    fn load_private_key(&self, _: PrivateKeyDer<'static>) -> Result<Arc<dyn SigningKey>, Error> {
        Err(Error::General(
            "the push client holds no private keys".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_rustls::rustls::{ClientConfig, RootCertStore, version};

    #[test]
    fn speaks_tls13_and_tls12() {
        for v in [&version::TLS13, &version::TLS12] {
            let cfg = ClientConfig::builder_with_provider(Arc::new(provider()))
                .with_protocol_versions(&[v])
                .map(|b| {
                    b.with_root_certificates(RootCertStore::empty())
                        .with_no_client_auth()
                });
            assert!(cfg.is_ok(), "{v:?}: {:?}", cfg.err());
        }
    }
}
