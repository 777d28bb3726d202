//! Checking the daemon's human attestation before a call is answered.
//!
//! An `incoming` message carries an ES256 token signed by the daemon (its key
//! is at `/.well-known/jwks.json`). A bot answers only if:
//! 1. the signature verifies against the JWKS and the token is in its time
//!    window ([`verify_human_attestation`]);
//! 2. `aud` is the bot's own agent id;
//! 3. `call_id` is the call it arrived with;
//! 4. `fp` is the DTLS fingerprint of the offer it arrived with — so the media
//!    the bot answers is the media of the human who was checked;
//! 5. `hv` (how the human was checked) is a method the bot's [`HvPolicy`]
//!    accepts.
//!
//! [`verify_incoming`] does all five.

use botcall_core::jwt::{self, Jwks};
use botcall_core::sdp;

pub use botcall_core::jwt::HumanAttestation;

use crate::error::AttestationError;

/// Which human-check methods (`hv`) a bot accepts, as a small bit set.
///
/// The default is [`HvPolicy::ANY`]: every method the protocol knows,
/// including `none` (a daemon configured without a human check). Bots that
/// must only talk to checked humans use [`HvPolicy::VERIFIED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct HvPolicy(pub u8);

impl HvPolicy {
    /// Accept `hv: none` (the daemon checked nothing).
    pub const NONE: HvPolicy = HvPolicy(1);
    /// Accept `hv: pow` (proof of work).
    pub const POW: HvPolicy = HvPolicy(2);
    /// Accept `hv: webauthn` (reserved by the protocol).
    pub const WEBAUTHN: HvPolicy = HvPolicy(4);
    /// Every real check: `pow` or `webauthn`.
    pub const VERIFIED: HvPolicy = HvPolicy(2 | 4);
    /// Every known method, `none` included.
    pub const ANY: HvPolicy = HvPolicy(1 | 2 | 4);

    const NAMES: [(&'static str, HvPolicy); 3] = [
        ("none", HvPolicy::NONE),
        ("pow", HvPolicy::POW),
        ("webauthn", HvPolicy::WEBAUTHN),
    ];

    /// Both sets together.
    #[must_use]
    pub const fn union(self, other: HvPolicy) -> HvPolicy {
        HvPolicy(self.0 | other.0)
    }

    /// Whether the method named `hv` is accepted. Unknown names never are.
    pub fn accepts(self, hv: &str) -> bool {
        Self::NAMES
            .iter()
            .any(|(n, p)| *n == hv && self.0 & p.0 == p.0)
    }

    /// Parses a comma-separated list (`"pow,webauthn"`, `"any"`, `"verified"`).
    ///
    /// # Errors
    /// `Err(())` for an unknown name or an empty list.
    #[allow(clippy::result_unit_err)]
    pub fn parse(list: &str) -> Result<HvPolicy, ()> {
        let mut out = HvPolicy(0);
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            out = out.union(match name {
                "any" => HvPolicy::ANY,
                "verified" => HvPolicy::VERIFIED,
                n => Self::NAMES
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, p)| *p)
                    .ok_or(())?,
            });
        }
        if out.0 == 0 { Err(()) } else { Ok(out) }
    }
}

impl Default for HvPolicy {
    fn default() -> Self {
        HvPolicy::ANY
    }
}

/// Verifies a human attestation's signature (against `jwks`, the daemon's
/// `/.well-known/jwks.json` text), time window (at `now_unix`, Unix seconds,
/// 60 s leeway) and audience (`agent_id`).
///
/// This does **not** check the call id, the fingerprint or the policy: use
/// [`verify_incoming`] for a call, or compare them yourself.
///
/// # Errors
/// [`AttestationError`] naming the first failed check.
pub fn verify_human_attestation(
    token: &str,
    jwks: &str,
    agent_id: &str,
    now_unix: u64,
) -> Result<HumanAttestation, AttestationError> {
    let set = Jwks::parse(jwks).map_err(|_| AttestationError::BadJwks)?;
    jwt::verify_attestation(token, &set, agent_id, None, now_unix).map_err(AttestationError::from)
}

/// What an incoming call must match.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The bot's own agent id (`aud`).
    pub agent_id: &'a str,
    /// The `incoming` message's `call_id`.
    pub call_id: &'a str,
    /// The `incoming` message's `sdp_offer` (decoded text).
    pub sdp_offer: &'a str,
    /// Accepted human-check methods.
    pub policy: HvPolicy,
    /// The daemon's issuer name, if the bot pins it (`None`: not checked).
    pub issuer: Option<&'a str>,
}

/// Verifies an incoming call's attestation completely: signature, time,
/// audience, call id, the offer's DTLS fingerprint, and the `hv` policy.
///
/// # Errors
/// [`AttestationError`] naming the first failed check, in that order.
pub fn verify_incoming(
    token: &str,
    jwks: &str,
    expect: &Expect<'_>,
    now_unix: u64,
) -> Result<HumanAttestation, AttestationError> {
    let set = Jwks::parse(jwks).map_err(|_| AttestationError::BadJwks)?;
    let att = jwt::verify_attestation(token, &set, expect.agent_id, expect.issuer, now_unix)
        .map_err(AttestationError::from)?;
    check_binding(&att, expect)?;
    Ok(att)
}

/// The checks after the signature: call id, fingerprint, policy.
///
/// # Errors
/// [`AttestationError::WrongCall`], [`AttestationError::OfferWithoutFingerprint`],
/// [`AttestationError::WrongFingerprint`], [`AttestationError::MethodNotAccepted`].
pub fn check_binding(att: &HumanAttestation, expect: &Expect<'_>) -> Result<(), AttestationError> {
    if att.call_id.as_str() != expect.call_id {
        return Err(AttestationError::WrongCall);
    }
    let offer = sdp::fingerprints(expect.sdp_offer)
        .map_err(|_| AttestationError::OfferWithoutFingerprint)?;
    // `fp` is the offer's sha-256 line; `fps` all of its lines, so whichever
    // one a DTLS stack verifies was signed. Without `fps` (an older daemon)
    // the offer must have had that one line only.
    let same_set = if att.fps.is_empty() {
        offer.as_slice().len() == 1
    } else {
        offer.same_set(att.fps.iter().map(|f| f.as_str()))
    };
    if !sdp::same_fingerprint(offer.primary(), &att.fp) || !same_set {
        return Err(AttestationError::WrongFingerprint);
    }
    if !expect.policy.accepts(&att.hv) {
        return Err(AttestationError::MethodNotAccepted);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use botcall_core::json::Writer;
    use botcall_core::jwt::{HeaderOpts, SigningKey};

    pub(crate) const NOW: u64 = 1_800_000_000;
    pub(crate) const FP: &str = "sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9";
    pub(crate) const OTHER_FP: &str = "sha-256 FF:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9";

    pub(crate) fn key(seed: u8) -> SigningKey {
        let mut d = [seed; 32];
        d[0] = 1;
        SigningKey::Es256(botcall_core::jwt::EcSigningKey::from_slice(&d).unwrap())
    }

    /// The JWKS of `key(seed)` with kid `k<seed>`.
    pub(crate) fn jwks(seed: u8) -> std::string::String {
        let SigningKey::Es256(sk) = key(seed) else {
            unreachable!()
        };
        let mut v = std::vec::Vec::new();
        let mut w = Writer::new(&mut v);
        w.begin_obj()
            .unwrap()
            .key("keys")
            .unwrap()
            .begin_arr()
            .unwrap();
        let kid = std::format!("k{seed}");
        jwt::key::write_public_jwk(&mut w, sk.verifying_key(), Some(&kid)).unwrap();
        w.end_arr().unwrap().end_obj().unwrap();
        std::string::String::from_utf8(v).unwrap()
    }

    pub(crate) struct Claims<'a> {
        pub aud: &'a str,
        pub call_id: &'a str,
        pub fp: &'a str,
        /// The `fps` claim as raw JSON (`""`: no claim).
        pub fps: &'a str,
        pub hv: &'a str,
        pub iat: u64,
        pub exp: u64,
    }

    impl Default for Claims<'_> {
        fn default() -> Self {
            Claims {
                aud: "ec-bot",
                call_id: "c-1",
                fp: FP,
                fps: "",
                hv: "pow",
                iat: NOW - 5,
                exp: NOW + 55,
            }
        }
    }

    /// An attestation signed by `key(seed)` with kid `k<kid_seed>`.
    pub(crate) fn token(seed: u8, kid_seed: u8, c: &Claims<'_>) -> std::string::String {
        let claims = std::format!(
            r#"{{"iss":"botcalld","aud":"{}","sub":"s-caller","call_id":"{}","hv":"{}","fp":"{}"{}{},"iat":{},"exp":{}}}"#,
            c.aud,
            c.call_id,
            c.hv,
            c.fp,
            if c.fps.is_empty() { "" } else { ",\"fps\":" },
            c.fps,
            c.iat,
            c.exp
        );
        let kid = std::format!("k{kid_seed}");
        let opts = HeaderOpts {
            kid: Some(&kid),
            embed_jwk: false,
            typ: None,
        };
        let mut out = [0u8; 2048];
        std::string::String::from(jwt::sign_claims(&key(seed), opts, &claims, &mut out).unwrap())
    }

    pub(crate) fn offer(fp: &str) -> std::string::String {
        std::format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:{fp}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        )
    }

    fn expect<'a>(offer: &'a str) -> Expect<'a> {
        Expect {
            agent_id: "ec-bot",
            call_id: "c-1",
            sdp_offer: offer,
            policy: HvPolicy::ANY,
            issuer: None,
        }
    }

    #[test]
    fn a_good_attestation_passes() {
        let t = token(7, 7, &Claims::default());
        let o = offer(FP);
        let att = verify_incoming(&t, &jwks(7), &expect(&o), NOW).unwrap();
        assert_eq!(att.call_id.as_str(), "c-1");
        assert_eq!(att.caller.as_str(), "s-caller");
        assert_eq!(att.hv.as_str(), "pow");
        assert_eq!(
            verify_human_attestation(&t, &jwks(7), "ec-bot", NOW)
                .unwrap()
                .fp
                .as_str(),
            FP
        );
    }

    #[test]
    fn bad_attestations_get_typed_errors() {
        let o = offer(FP);
        let ex = expect(&o);
        let j = jwks(7);
        let check = |t: &str| verify_incoming(t, &j, &ex, NOW);
        // Forged: signed by another key under the daemon's kid.
        assert_eq!(
            check(&token(9, 7, &Claims::default())),
            Err(AttestationError::Forged)
        );
        // A key the daemon never published.
        assert_eq!(
            check(&token(9, 9, &Claims::default())),
            Err(AttestationError::UnknownKey)
        );
        // Tampered payload: flip one payload character.
        let t = token(7, 7, &Claims::default());
        let mut parts: std::vec::Vec<std::string::String> =
            t.split('.').map(std::string::String::from).collect();
        let flipped = if parts[1].ends_with('A') { "B" } else { "A" };
        parts[1].pop();
        parts[1].push_str(flipped);
        assert!(matches!(
            check(&parts.join(".")),
            Err(AttestationError::Forged | AttestationError::Malformed)
        ));
        // Expired (beyond the 60 s leeway).
        let old = Claims {
            iat: NOW - 300,
            exp: NOW - 200,
            ..Claims::default()
        };
        assert_eq!(check(&token(7, 7, &old)), Err(AttestationError::Expired));
        let future = Claims {
            iat: NOW + 300,
            exp: NOW + 400,
            ..Claims::default()
        };
        assert_eq!(
            check(&token(7, 7, &future)),
            Err(AttestationError::NotYetValid)
        );
        let long = Claims {
            iat: NOW,
            exp: NOW + 3600,
            ..Claims::default()
        };
        assert_eq!(
            check(&token(7, 7, &long)),
            Err(AttestationError::LifetimeTooLong)
        );
        let wrong_aud = Claims {
            aud: "other-bot",
            ..Claims::default()
        };
        assert_eq!(
            check(&token(7, 7, &wrong_aud)),
            Err(AttestationError::WrongAgent)
        );
        let wrong_call = Claims {
            call_id: "c-2",
            ..Claims::default()
        };
        assert_eq!(
            check(&token(7, 7, &wrong_call)),
            Err(AttestationError::WrongCall)
        );
        let wrong_fp = Claims {
            fp: OTHER_FP,
            ..Claims::default()
        };
        assert_eq!(
            check(&token(7, 7, &wrong_fp)),
            Err(AttestationError::WrongFingerprint)
        );
        // The offer itself carries no fingerprint.
        let bare = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
        assert_eq!(
            verify_incoming(&token(7, 7, &Claims::default()), &j, &expect(bare), NOW),
            Err(AttestationError::OfferWithoutFingerprint)
        );
        // Policy.
        let none = Claims {
            hv: "none",
            ..Claims::default()
        };
        let strict = Expect {
            policy: HvPolicy::VERIFIED,
            ..ex
        };
        assert_eq!(
            verify_incoming(&token(7, 7, &none), &j, &strict, NOW),
            Err(AttestationError::MethodNotAccepted)
        );
        let odd = Claims {
            hv: "telepathy",
            ..Claims::default()
        };
        assert_eq!(
            check(&token(7, 7, &odd)),
            Err(AttestationError::MethodNotAccepted)
        );
        // Garbage and a broken JWKS.
        assert_eq!(check("not.a.token"), Err(AttestationError::Malformed));
        assert_eq!(check(""), Err(AttestationError::Malformed));
        assert_eq!(
            verify_incoming(&t, "{\"keys\":5}", &ex, NOW),
            Err(AttestationError::BadJwks)
        );
        let issuer = Expect {
            issuer: Some("elsewhere"),
            ..ex
        };
        assert_eq!(
            verify_incoming(&t, &j, &issuer, NOW),
            Err(AttestationError::WrongIssuer)
        );
    }

    /// An offer with aiortc's three fingerprint lines (sha-256/384/512).
    #[test]
    fn several_fingerprints_bind_through_fps() {
        const FP384: &str = "sha-384 D0:3E:19:B8:6B:70:58:68:8A:01:53:B4:D8:A4:4C:C6:C5:A0:6E:8E:2E:11:DD:6B:E1:30:5C:D5:DA:D2:B4:2C:B2:9F:19:70:83:A2:75:6E:A8:56:D8:57:BB:8C:41:8F";
        const OTHER384: &str = "sha-384 FF:3E:19:B8:6B:70:58:68:8A:01:53:B4:D8:A4:4C:C6:C5:A0:6E:8E:2E:11:DD:6B:E1:30:5C:D5:DA:D2:B4:2C:B2:9F:19:70:83:A2:75:6E:A8:56:D8:57:BB:8C:41:8F";
        let o = std::format!("{}a=fingerprint:{FP384}\r\n", offer(FP));
        let j = jwks(7);
        let fps = std::format!(r#"["{FP}","{FP384}"]"#);
        let good = Claims {
            fps: &fps,
            ..Claims::default()
        };
        let att = verify_incoming(&token(7, 7, &good), &j, &expect(&o), NOW).unwrap();
        assert_eq!((att.fp.as_str(), att.fps.len()), (FP, 2));
        // An attestation from before `fps` covers single-line offers only.
        assert_eq!(
            verify_incoming(&token(7, 7, &Claims::default()), &j, &expect(&o), NOW),
            Err(AttestationError::WrongFingerprint)
        );
        // A line swapped for another certificate's is not what was signed,
        // even with the sha-256 line unchanged.
        let swapped = std::format!("{}a=fingerprint:{OTHER384}\r\n", offer(FP));
        assert_eq!(
            verify_incoming(&token(7, 7, &good), &j, &expect(&swapped), NOW),
            Err(AttestationError::WrongFingerprint)
        );
        // A line dropped from the offer, or one added to it, breaks the set.
        let fewer = std::format!(r#"["{FP}"]"#);
        let dropped = Claims {
            fps: &fewer,
            ..Claims::default()
        };
        assert_eq!(
            verify_incoming(&token(7, 7, &dropped), &j, &expect(&o), NOW),
            Err(AttestationError::WrongFingerprint)
        );
        assert_eq!(
            verify_incoming(&token(7, 7, &good), &j, &expect(&offer(FP)), NOW),
            Err(AttestationError::WrongFingerprint)
        );
    }

    #[test]
    fn alg_none_and_hs256_are_forgeries() {
        // {"alg":"none"} . claims . (empty signature is malformed; use "x")
        let claims = Claims::default();
        let t = token(7, 7, &claims);
        let payload = t.split('.').nth(1).unwrap();
        let none_hdr = "eyJhbGciOiJub25lIiwia2lkIjoiazcifQ"; // {"alg":"none","kid":"k7"}
        let forged = std::format!("{none_hdr}.{payload}.eA");
        let o = offer(FP);
        assert_eq!(
            verify_incoming(&forged, &jwks(7), &expect(&o), NOW),
            Err(AttestationError::Forged)
        );
    }

    #[test]
    fn policy_names() {
        assert!(HvPolicy::ANY.accepts("none"));
        assert!(!HvPolicy::VERIFIED.accepts("none"));
        assert!(HvPolicy::VERIFIED.accepts("pow"));
        assert!(!HvPolicy::ANY.accepts("POW"));
        assert_eq!(HvPolicy::parse("pow, webauthn"), Ok(HvPolicy::VERIFIED));
        assert_eq!(HvPolicy::parse("any"), Ok(HvPolicy::ANY));
        assert_eq!(HvPolicy::parse("x"), Err(()));
        assert_eq!(HvPolicy::parse(""), Err(()));
    }
}
