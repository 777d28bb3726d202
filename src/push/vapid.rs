//! RFC 8292 VAPID: the daemon's ES256 key identifies it to push services.
//! Each request carries `Authorization: vapid t=<JWT>, k=<public key>`, the
//! JWT saying `aud` (the push service's origin), `exp` (≤ 24 h) and `sub`
//! (the operator's `mailto:` or `https:` contact). Sans-IO: time is passed in.

use std::path::Path;

use botcall_core::b64;
use botcall_core::json::Writer;
use botcall_core::jwt::{self, EcSigningKey, HeaderOpts, SigningKey};

use crate::auth::attest::{generate_key, private_jwk, write_private};

/// How long a token is valid: RFC 8292 allows at most 24 h; 12 h leaves
/// room for clock skew at the push service.
pub(crate) const TOKEN_TTL: u64 = 12 * 3600;

/// The VAPID key and contact.
pub(crate) struct Vapid {
    key: SigningKey,
    /// The uncompressed public point, base64url (the PWA's
    /// `applicationServerKey` and the header's `k=`).
    public: String,
    subject: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Vapid {{ public: {}, sub: {} }}",
            self.public, self.subject
        )
    }
}

/// Base64url without padding.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    let mut buf = vec![0u8; bytes.len().div_ceil(3) * 4 + 4];
    b64::encode(bytes, &mut buf).unwrap_or("").to_string()
}

impl Vapid {
    pub(crate) fn new(key: EcSigningKey, subject: &str) -> Self {
        let point = key.verifying_key().to_sec1_point(false);
        Vapid {
            public: b64url(point.as_bytes()),
            key: SigningKey::Es256(key),
            subject: subject.to_string(),
        }
    }

    /// Loads the private JWK at `path`, or generates one there (0600).
    /// Returns the key and whether it was created.
    pub(crate) fn load_or_create(path: &Path) -> Result<(EcSigningKey, bool), String> {
        match std::fs::read_to_string(path) {
            Ok(text) => parse_key(text.trim())
                .map(|k| (k, false))
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                let key = generate_key()?;
                write_private(path, &key_jwk(&key))?;
                Ok((key, true))
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// The public key, base64url of the uncompressed point.
    pub(crate) fn public(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header value for a push service at `origin`.
    pub(crate) fn authorization(&self, origin: &str, now: u64) -> String {
        format!("vapid t={}, k={}", self.token(origin, now), self.public)
    }

    /// The signed JWT: `{"aud":origin,"exp":now+12h,"sub":subject}`.
    pub(crate) fn token(&self, origin: &str, now: u64) -> String {
        let mut claims = Vec::with_capacity(160);
        let _ = (|| -> Result<(), botcall_core::json::write::Full> {
            Writer::new(&mut claims)
                .begin_obj()?
                .field_str("aud", origin)?
                .field_u64("exp", now + TOKEN_TTL)?
                .field_str("sub", &self.subject)?
                .end_obj()?;
            Ok(())
        })();
        let claims = String::from_utf8(claims).unwrap_or_default();
        let mut out = vec![0u8; jwt::MAX_TOKEN_LEN];
        match jwt::sign_claims(&self.key, HeaderOpts::default(), &claims, &mut out) {
            Ok(t) => t.to_string(),
            // An origin is at most a few hundred bytes: 4 KiB always fits.
            Err(_) => String::new(),
        }
    }
}

/// The private JWK text of a VAPID key (what the state directory and the
/// cluster's shared copy hold).
pub(crate) fn key_jwk(key: &EcSigningKey) -> String {
    private_jwk(&SigningKey::Es256(key.clone()), None)
}

/// A VAPID key from its private JWK text.
pub(crate) fn parse_key(text: &str) -> Result<EcSigningKey, String> {
    match SigningKey::from_jwk(text).map_err(|e| e.to_string())? {
        SigningKey::Es256(k) => Ok(k),
        SigningKey::Hs256(_) => Err("the VAPID key must be an EC P-256 private JWK".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botcall_core::jwt::{Key, Scratch};

    #[test]
    fn subjects_must_be_reachable_contacts() {
        for ok in [
            "mailto:ops@example.com",
            "https://example.com/contact",
            "https://bots.example.org",
        ] {
            crate::push_config::check_subject(ok).unwrap();
        }
        for bad in [
            "",
            "ops@example.com",
            "mailto:",
            "mailto:ops",
            "mailto:@example.com",
            "mailto:ops@localhost",
            "http://example.com",
            "https://",
            "https://localhost",
            "mailto:a b@example.com",
            "mailto:\"x\"@example.com",
        ] {
            assert!(crate::push_config::check_subject(bad).is_err(), "{bad}");
        }
    }

    /// RFC 8292 §2 and §3: the token's shape, checked as a push service would.
    #[test]
    fn token_shape() {
        let v = Vapid::new(generate_key().unwrap(), "mailto:ops@example.com");
        let now = 1_700_000_000;
        let auth = v.authorization("https://push.example.net", now);
        let rest = auth.strip_prefix("vapid t=").unwrap();
        let (tok, k) = rest.split_once(", k=").unwrap();
        assert_eq!(k, v.public());
        // k: the uncompressed point, 65 bytes, base64url without padding.
        assert_eq!(k.len(), 87);
        assert!(!k.contains('='));
        let parts: Vec<&str> = tok.split('.').collect();
        assert_eq!(parts.len(), 3);
        let mut buf = [0u8; 512];
        let header = b64::decode(parts[0].as_bytes(), &mut buf).unwrap();
        let header: serde_json::Value = serde_json::from_slice(header).unwrap();
        assert_eq!(header, serde_json::json!({"alg":"ES256","typ":"JWT"}));
        let claims = b64::decode(parts[1].as_bytes(), &mut buf).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(claims).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({"aud":"https://push.example.net","exp":now + TOKEN_TTL,"sub":"mailto:ops@example.com"})
        );
        const { assert!(TOKEN_TTL <= 24 * 3600) };
        // 64-byte raw r||s signature, verifiable with k.
        assert_eq!(
            b64::decode(parts[2].as_bytes(), &mut buf).unwrap().len(),
            64
        );
        let mut pt = [0u8; 65];
        let key = Key::es256_sec1(b64::decode(k.as_bytes(), &mut pt).unwrap()).unwrap();
        let mut scratch = Scratch::default();
        jwt::verify(tok, &key, &mut scratch).unwrap();
    }

    #[test]
    fn key_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("botcall-vapid-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("vapid.jwk");
        let (a, created) = Vapid::load_or_create(&path).unwrap();
        assert!(created);
        let (b, created) = Vapid::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(a, b);
        std::fs::write(&path, "{}").unwrap();
        assert!(Vapid::load_or_create(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
