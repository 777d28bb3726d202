//! The daemon's ES256 key: signs human attestations, published as a JWKS.
//!
//! Loaded from `attestation_key` or `<state_dir>/attestation.jwk`; generated
//! there (mode 0600) on first start. The `kid` is the key's RFC 7638
//! thumbprint, so rotating keys never reuses a `kid`. On Redis, the JWKS
//! also lists the other daemons' keys ([`Attestor::set_peers`]), so a bot
//! can verify an attestation from whichever daemon its socket landed on.

use std::cell::{Ref, RefCell};
use std::io::Write as _;
use std::path::Path;

use botcall_core::json;
use botcall_core::json::Writer;
use botcall_core::jwt::{
    self, Alg, EcSigningKey, HeaderOpts, Key, SigningKey, key::write_public_jwk,
};

/// Most keys in the JWKS (ours and other daemons'): bots read at most 4 KiB.
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // shared on Redis only
pub(crate) const MAX_JWKS_KEYS: usize = 8;

/// What one attestation says: human `caller` (checked by `hv`, whose offer
/// carries the DTLS fingerprints `fps`, the sha-256 one being `fp`) is
/// calling `agent` in `call_id`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attestation<'a> {
    pub(crate) agent: &'a str,
    pub(crate) caller: &'a str,
    pub(crate) call_id: &'a str,
    pub(crate) hv: &'a str,
    pub(crate) fp: &'a str,
    /// Every fingerprint of the offer (written as `fps` when not empty).
    pub(crate) fps: &'a [botcall_core::sdp::Fingerprint],
}

/// Signs attestations.
pub(crate) struct Attestor {
    key: SigningKey,
    kid: String,
    issuer: String,
    /// Our public JWK with `kid`: one entry of the JWKS.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // shared on Redis only
    public_jwk: String,
    /// `{"keys":[ours, other daemons'…]}`.
    jwks: RefCell<String>,
}

impl std::fmt::Debug for Attestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Attestor {{ kid: {}, issuer: {} }}",
            self.kid, self.issuer
        )
    }
}

/// A fresh random P-256 signing key.
pub(crate) fn generate_key() -> Result<EcSigningKey, String> {
    loop {
        let mut d = [0u8; 32];
        getrandom::fill(&mut d).map_err(|e| format!("no OS randomness: {e}"))?;
        // Out-of-range scalars (probability ~2^-32) are simply drawn again.
        if let Ok(k) = EcSigningKey::from_slice(&d) {
            return Ok(k);
        }
    }
}

/// Writes `text` to `path` readable only by the owner (0600), atomically.
pub(crate) fn write_private(path: &Path, text: &str) -> Result<(), String> {
    // A temporary file of our own, created fresh (`create_new`): opening an
    // existing one would keep its mode (a 0644 `bot.tmp` made the key 0644),
    // overwrite someone's file, or follow a symlink.
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    let written = f
        .write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display())));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// The private JWK text of `key`.
pub(crate) fn private_jwk(key: &SigningKey, kid: Option<&str>) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot run out of space.
    let _ = key.write_jwk(&mut Writer::new(&mut out), kid);
    String::from_utf8(out).unwrap_or_default()
}

/// What the signaling router needs of the attestation key: a signature
/// over one call's facts. [`Attestor`] is the daemon's; the router's tests
/// use a fake, so they need no key file.
pub(crate) trait Signer {
    /// Signs `what`, valid `ttl` seconds from `now` (Unix seconds).
    fn sign(&self, what: &Attestation<'_>, now: u64, ttl: u64) -> String;
}

impl Signer for Attestor {
    fn sign(&self, what: &Attestation<'_>, now: u64, ttl: u64) -> String {
        Attestor::sign(self, what, now, ttl)
    }
}

impl Attestor {
    /// Loads the key from `path`, or generates and saves one there.
    pub(crate) fn load_or_create(path: &Path, issuer: &str) -> Result<(Self, bool), String> {
        let (key, created) = match std::fs::read_to_string(path) {
            Ok(text) => {
                match SigningKey::from_jwk(text.trim())
                    .map_err(|e| format!("{}: {e}", path.display()))?
                {
                    SigningKey::Es256(k) => (k, false),
                    SigningKey::Hs256(_) => {
                        return Err(format!(
                            "{}: the attestation key must be an EC P-256 private JWK",
                            path.display()
                        ));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                let key = generate_key()?;
                write_private(path, &private_jwk(&SigningKey::Es256(key.clone()), None))?;
                (key, true)
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok((Self::new(key, issuer), created))
    }

    fn new(sk: EcSigningKey, issuer: &str) -> Self {
        let vk = *sk.verifying_key();
        let kid = jwt::thumbprint(&vk).to_string();
        let mut jwk = Vec::new();
        // Writing into a Vec cannot run out of space.
        let _ = write_public_jwk(&mut Writer::new(&mut jwk), &vk, Some(&kid));
        let public_jwk = String::from_utf8(jwk).unwrap_or_default();
        Attestor {
            key: SigningKey::Es256(sk),
            kid,
            issuer: issuer.to_string(),
            jwks: RefCell::new(format!(r#"{{"keys":[{public_jwk}]}}"#)),
            public_jwk,
        }
    }

    /// `{"keys":[…]}` for `/.well-known/jwks.json`.
    pub(crate) fn jwks(&self) -> Ref<'_, String> {
        self.jwks.borrow()
    }

    /// Our public JWK (with `kid`), as shared with the other daemons.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // shared on Redis only
    pub(crate) fn public_jwk(&self) -> &str {
        &self.public_jwk
    }

    /// Sets the other daemons' public keys (JWK texts, freshest first): the
    /// JWKS becomes ours plus every usable one with a new `kid`, at most
    /// [`MAX_JWKS_KEYS`] in all. Entries that are not public ES256 JWKs with
    /// a `kid` are skipped. Returns how many keys the JWKS now lists.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // shared on Redis only
    pub(crate) fn set_peers(&self, peers: &[String]) -> usize {
        let mut kids: Vec<String> = vec![self.kid.clone()];
        let mut doc = format!(r#"{{"keys":[{}"#, self.public_jwk);
        for p in peers {
            if kids.len() >= MAX_JWKS_KEYS {
                break;
            }
            let Some(kid) = peer_kid(p) else { continue };
            if kids.contains(&kid) {
                continue;
            }
            doc.push(',');
            doc.push_str(p);
            kids.push(kid);
        }
        doc.push_str("]}");
        *self.jwks.borrow_mut() = doc;
        kids.len()
    }

    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `what` (a checked human calling an agent), valid `ttl` seconds from `now`.
    pub(crate) fn sign(&self, what: &Attestation<'_>, now: u64, ttl: u64) -> String {
        let Attestation {
            agent,
            caller,
            call_id,
            hv,
            fp,
            fps,
        } = *what;
        let mut claims = Vec::with_capacity(256);
        {
            let mut w = Writer::new(&mut claims);
            let _ = (|| -> Result<(), botcall_core::json::write::Full> {
                w.begin_obj()?;
                w.field_str("iss", &self.issuer)?
                    .field_str("aud", agent)?
                    .field_str("sub", caller)?;
                w.field_str("call_id", call_id)?
                    .field_str("hv", hv)?
                    .field_str("fp", fp)?;
                if !fps.is_empty() {
                    w.key("fps")?.begin_arr()?;
                    for f in fps {
                        w.str(f)?;
                    }
                    w.end_arr()?;
                }
                w.field_u64("iat", now)?.field_u64("exp", now + ttl)?;
                w.end_obj()?;
                Ok(())
            })();
        }
        let claims = String::from_utf8(claims).unwrap_or_default();
        let mut out = vec![0u8; jwt::MAX_TOKEN_LEN];
        let opts = HeaderOpts {
            kid: Some(&self.kid),
            embed_jwk: false,
            typ: Some("botcall-attestation+jwt"),
        };
        match jwt::sign_claims(&self.key, opts, &claims, &mut out) {
            Ok(t) => t.to_string(),
            // Claims are a few hundred bytes: a 4 KiB buffer always fits.
            Err(_) => String::new(),
        }
    }
}

/// The `kid` of a public ES256 JWK (no private part), else `None`.
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // shared on Redis only
fn peer_kid(text: &str) -> Option<String> {
    let o = json::parse_object(text).ok()?;
    if o.opt_str("d").ok()?.is_some() {
        return None;
    }
    let kid = o.opt_str("kid").ok()??.to_string();
    match Key::from_jwk(text) {
        Ok(k) if k.alg() == Alg::Es256 && !kid.is_empty() => Some(kid),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botcall_core::jwt::{Jwks, verify_attestation};

    fn attestor() -> Attestor {
        Attestor::new(generate_key().unwrap(), "botcalld")
    }

    #[test]
    fn other_daemons_keys_join_the_jwks_and_verify_their_tokens() {
        let (a, b, c) = (attestor(), attestor(), attestor());
        let what = Attestation {
            agent: "bot",
            caller: "s",
            call_id: "c1",
            hv: "none",
            fp: "sha-256 AB",
            fps: &[],
        };
        let from_b = b.sign(&what, 1000, 120);
        let verify = |tok: &str| {
            let doc = a.jwks();
            verify_attestation(tok, &Jwks::parse(&doc).unwrap(), "bot", None, 1010).is_ok()
        };
        assert!(!verify(&from_b));
        let private = private_jwk(&SigningKey::Es256(generate_key().unwrap()), Some("p"));
        let n = a.set_peers(&[
            b.public_jwk().to_string(),
            "not json".into(),
            private,
            a.public_jwk().to_string(),
            b.public_jwk().to_string(),
            r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow","kid":"h"}"#.into(),
        ]);
        assert_eq!(n, 2, "{}", a.jwks());
        assert!(verify(&from_b));
        assert!(verify(&a.sign(&what, 1000, 120)));
        assert!(!verify(&c.sign(&what, 1000, 120)));
        // Bounded: at most MAX_JWKS_KEYS, ours first; the document stays under 4 KiB.
        let many: Vec<String> = (0..20)
            .map(|_| attestor().public_jwk().to_string())
            .collect();
        assert_eq!(a.set_peers(&many), MAX_JWKS_KEYS);
        assert!(a.jwks().len() < 4096, "{}", a.jwks().len());
        assert!(
            a.jwks()
                .starts_with(&format!(r#"{{"keys":[{}"#, a.public_jwk()))
        );
        // A peer that is gone drops out on the next refresh.
        assert_eq!(a.set_peers(&[]), 1);
        assert!(!verify(&from_b));
    }

    #[test]
    fn creates_once_then_loads_and_signs_verifiable_tokens() {
        let dir = std::env::temp_dir().join(format!("botcall-attest-{}", std::process::id()));
        let path = dir.join("attestation.jwk");
        let _ = std::fs::remove_dir_all(&dir);
        let (a, created) = Attestor::load_or_create(&path, "botcalld").unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let (b, created) = Attestor::load_or_create(&path, "botcalld").unwrap();
        assert!(!created);
        assert_eq!(a.kid(), b.kid());
        let what = Attestation {
            agent: "bot",
            caller: "sess1",
            call_id: "call1",
            hv: "pow",
            fp: "sha-256 AB:CD",
            fps: &[
                "sha-256 AB:CD".try_into().unwrap(),
                "sha-1 01:02".try_into().unwrap(),
            ],
        };
        let tok = a.sign(&what, 1000, 120);
        let jwks_doc = b.jwks();
        let jwks = Jwks::parse(&jwks_doc).unwrap();
        let att = verify_attestation(&tok, &jwks, "bot", Some("botcalld"), 1010).unwrap();
        assert_eq!(att.call_id.as_str(), "call1");
        assert_eq!(att.hv.as_str(), "pow");
        assert_eq!(att.fp.as_str(), "sha-256 AB:CD");
        assert_eq!(att.fps.len(), 2);
        assert_eq!(att.fps[1].as_str(), "sha-1 01:02");
        assert!(verify_attestation(&tok, &jwks, "other-bot", None, 1010).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_0600_next_to_other_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("botcall-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Files where a temporary copy might go: an old `with_extension("tmp")`
        // name, and a loose one. Neither may leak its mode or be clobbered.
        for name in ["bot.tmp", "bot.jwk.tmp"] {
            let p = dir.join(name);
            std::fs::write(&p, "theirs").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let key = dir.join("bot.jwk");
        write_private(&key, "secret").unwrap();
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "secret");
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        for name in ["bot.tmp", "bot.jwk.tmp"] {
            assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), "theirs");
        }
        // Nothing else left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);
        // Replacing an existing key file (the rename) keeps 0600 too.
        write_private(&key, "secret2").unwrap();
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
