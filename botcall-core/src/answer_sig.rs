//! The bot's signature on its answer (`answer.answer_sig`): end-to-end proof
//! to the caller that the SDP answer comes from the bot, not from the daemon
//! that relayed it.
//!
//! A compact JWS, ES256, header `{"alg":"ES256","typ":"botcall-answer+jwt",
//! "jwk":{…}}` (the bot's public key, always embedded), claims:
//!
//! | claim | value |
//! |---|---|
//! | `sub` | the bot's agent id |
//! | `call_id` | the call being answered |
//! | `fp` | the caller's sha-256 DTLS fingerprint, from the offer |
//! | `bfps` | every DTLS fingerprint of the bot's answer |
//! | `iat`, `exp` | issued now, valid [`LIFETIME`] seconds |
//!
//! The caller decides which key to believe, never the daemon: the header's
//! key when its RFC 7638 thumbprint *is* the agent id (a self-certifying,
//! open-registration id: [`Trust::SelfCertifying`]), otherwise a key the
//! caller already holds ([`Trust::KnownKey`]: published by `lookup` and
//! pinned on first use). Binding both fingerprints means a daemon that
//! swaps the answer (its own DTLS certificate in the middle) or replays an
//! answer from another call is caught before any media flows.
//!
//! Sans-IO: SDP text and the Unix time in, a token or a verdict out. The PWA
//! (`pwa/app/answer-sig.js`) implements [`verify`] with WebCrypto, and
//! `tests/pwa-unit` checks both agree on the same vectors.

use p256::ecdsa::VerifyingKey;

use crate::json::{self, Value};
use crate::jwt::{self, JwtError, Key, Policy, Scratch, claims};
use crate::sdp::{self, SdpError};

/// The JWS `typ` of an answer signature (a BotAuth token is not one).
pub const TYP: &str = "botcall-answer+jwt";
/// Seconds an answer signature is valid after it is made.
pub const LIFETIME: u64 = 60;
/// Longest `exp - iat` a verifier accepts.
pub const MAX_LIFETIME: u64 = 120;
/// Clock skew tolerated between bot and caller, in seconds.
pub const LEEWAY: u64 = claims::DEFAULT_LEEWAY;
/// Longest `answer_sig` the protocol carries (bytes).
pub const MAX_LEN: usize = 2048;

/// Why an answer signature was refused (or could not be made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnswerSigError {
    /// No signature, from a bot that has a key a caller can check.
    Missing,
    /// The token, its signature or its time claims failed ([`JwtError`]).
    Jwt(JwtError),
    /// The header's key is not self-certifying for this agent id and the
    /// caller holds no key for it: nothing to check the signature with.
    UntrustedKey,
    /// Not an answer signature (`typ`), or not for this agent (`sub`).
    WrongType,
    /// Signed for another call.
    WrongCall,
    /// The caller fingerprint it signs is not the one in our offer.
    CallerFingerprint,
    /// The bot fingerprints it signs are not the ones in the answer: the
    /// answer was changed on the way.
    BotFingerprint,
    /// The offer or the answer has no usable DTLS fingerprint.
    Sdp(SdpError),
}

impl AnswerSigError {
    /// A stable code (the PWA's verifier uses the same ones).
    pub fn code(&self) -> &'static str {
        match self {
            AnswerSigError::Missing => "missing",
            AnswerSigError::Jwt(JwtError::Expired) => "expired",
            AnswerSigError::Jwt(
                JwtError::BadSignature | JwtError::SignatureLength | JwtError::AlgMismatch,
            ) => "bad_signature",
            AnswerSigError::Jwt(
                JwtError::NotYetValid | JwtError::IssuedInFuture | JwtError::LifetimeTooLong,
            ) => "bad_time",
            AnswerSigError::Jwt(_) => "malformed",
            AnswerSigError::UntrustedKey => "untrusted_key",
            AnswerSigError::WrongType => "wrong_type",
            AnswerSigError::WrongCall => "wrong_call",
            AnswerSigError::CallerFingerprint => "caller_fingerprint",
            AnswerSigError::BotFingerprint => "bot_fingerprint",
            AnswerSigError::Sdp(_) => "sdp",
        }
    }
}

impl From<JwtError> for AnswerSigError {
    fn from(e: JwtError) -> Self {
        AnswerSigError::Jwt(e)
    }
}

impl From<SdpError> for AnswerSigError {
    fn from(e: SdpError) -> Self {
        AnswerSigError::Sdp(e)
    }
}

impl From<json::JsonError> for AnswerSigError {
    fn from(e: json::JsonError) -> Self {
        AnswerSigError::Jwt(JwtError::BadJson(e))
    }
}

impl core::fmt::Display for AnswerSigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AnswerSigError::Missing => f.write_str("the answer is not signed by the bot"),
            AnswerSigError::Jwt(e) => write!(f, "answer signature: {e}"),
            AnswerSigError::UntrustedKey => {
                f.write_str("answer signed with a key that is not the bot's")
            }
            AnswerSigError::WrongType => {
                f.write_str("not an answer signature for this bot (typ or sub)")
            }
            AnswerSigError::WrongCall => f.write_str("answer signature is for another call"),
            AnswerSigError::CallerFingerprint => {
                f.write_str("answer signature names another caller fingerprint")
            }
            AnswerSigError::BotFingerprint => {
                f.write_str("the answer's DTLS fingerprint is not the one the bot signed")
            }
            AnswerSigError::Sdp(e) => write!(f, "answer signature: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl core::error::Error for AnswerSigError {}

/// Signs the answer `answer_sdp` to `offer_sdp` for call `call_id` of agent
/// `agent_id`, at Unix time `now`, into `out` (≤ [`MAX_LEN`] bytes).
///
/// # Errors
/// [`AnswerSigError::Sdp`] if either SDP lacks a fingerprint;
/// `Jwt(BufferTooSmall)` if `out` is too small.
#[cfg(feature = "sign")]
pub fn sign<'o>(
    key: &jwt::EcSigningKey,
    agent_id: &str,
    call_id: &str,
    offer_sdp: &str,
    answer_sdp: &str,
    now: u64,
    out: &'o mut [u8],
) -> Result<&'o str, AnswerSigError> {
    let caller = sdp::fingerprints(offer_sdp)?;
    let bot = sdp::fingerprints(answer_sdp)?;
    let mut body = heapless::Vec::<u8, MAX_LEN>::new();
    let small = |_| AnswerSigError::Jwt(JwtError::BufferTooSmall);
    {
        let mut w = json::Writer::new(&mut body);
        w.begin_obj()
            .and_then(|w| w.field_str("sub", agent_id))
            .and_then(|w| w.field_str("call_id", call_id))
            .and_then(|w| w.field_str("fp", caller.primary()))
            .and_then(|w| w.key("bfps"))
            .and_then(|w| w.begin_arr())
            .map_err(small)?;
        for fp in bot.as_slice() {
            w.str(fp).map_err(small)?;
        }
        w.end_arr()
            .and_then(|w| w.key("iat"))
            .and_then(|w| w.u64(now))
            .and_then(|w| w.key("exp"))
            .and_then(|w| w.u64(now.saturating_add(LIFETIME)))
            .and_then(|w| w.end_obj())
            .map_err(small)?;
    }
    let body = core::str::from_utf8(&body).map_err(|_| JwtError::BufferTooSmall)?;
    let opts = jwt::HeaderOpts {
        kid: None,
        embed_jwk: true,
        typ: Some(TYP),
    };
    let out = out.get_mut(..MAX_LEN.min(out.len())).unwrap_or_default();
    Ok(jwt::sign_claims(
        &jwt::SigningKey::Es256(key.clone()),
        opts,
        body,
        out,
    )?)
}

/// Where the verifying key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// The header's key, whose RFC 7638 thumbprint is the agent id.
    SelfCertifying,
    /// The key the caller supplied (published by `lookup`, pinned).
    KnownKey,
}

/// What the caller knows, independently of the answer message.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The agent called.
    pub agent_id: &'a str,
    /// The call id from `ringing`.
    pub call_id: &'a str,
    /// The caller's own offer.
    pub offer_sdp: &'a str,
    /// The answer as received (what would be applied).
    pub answer_sdp: &'a str,
    /// The bot's key as the caller knows it (lookup / pin), if any.
    pub key: Option<&'a VerifyingKey>,
}

/// A verified answer signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// How the key was trusted.
    pub trust: Trust,
    /// The key that signed.
    pub key: VerifyingKey,
}

/// Whether `agent_id` has the shape of an RFC 7638 thumbprint (43
/// base64url characters): then only the key it hashes can sign for it, and
/// a caller refuses an unsigned answer whatever `lookup` says.
pub fn is_thumbprint_id(agent_id: &str) -> bool {
    agent_id.len() == 43
        && agent_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The caller's whole decision on an `answer`: `Ok(Some)` verified,
/// `Ok(None)` unsigned from a bot with no checkable key (HS256: say so),
/// `Err` refuse the answer and connect no media. A signature is required
/// when the caller knows a key for the bot or the id is a thumbprint.
///
/// # Errors
/// [`AnswerSigError::Missing`], or any error of [`verify`].
pub fn check(
    token: Option<&str>,
    expect: &Expect<'_>,
    now: u64,
) -> Result<Option<Verified>, AnswerSigError> {
    match token {
        Some(t) => verify(t, expect, now).map(Some),
        None if expect.key.is_some() || is_thumbprint_id(expect.agent_id) => {
            Err(AnswerSigError::Missing)
        }
        None => Ok(None),
    }
}

/// Checks `token` against what the caller knows, at Unix time `now`.
///
/// Order: structure, key choice (self-certifying header key, else
/// `expect.key`), `alg`, signature, `typ`, time claims, `sub`, `call_id`,
/// caller fingerprint, bot fingerprints against the answer.
///
/// # Errors
/// [`AnswerSigError`] naming the first failed check.
pub fn verify(token: &str, expect: &Expect<'_>, now: u64) -> Result<Verified, AnswerSigError> {
    if token.len() > MAX_LEN {
        return Err(JwtError::TooLong.into());
    }
    let mut scratch = Scratch::new();
    // The key is chosen from the (not yet verified) header, and only two
    // are ever believed: one that hashes to the agent id, or the caller's.
    let mut chosen: Option<(Trust, VerifyingKey)> = None;
    let v = jwt::verify_with(token, &mut scratch, |h, _| {
        let pick = match h.jwk.map(|jwk| jwt::key::ec_public_from_jwk(&jwk)) {
            Some(Ok(vk)) if jwt::thumbprint(&vk).as_str() == expect.agent_id => {
                (Trust::SelfCertifying, vk)
            }
            _ => (Trust::KnownKey, *expect.key.ok_or(JwtError::UnknownKey)?),
        };
        chosen = Some(pick);
        Ok(Key::Es256(pick.1))
    })
    .map_err(|e| match e {
        JwtError::UnknownKey => AnswerSigError::UntrustedKey,
        e => AnswerSigError::Jwt(e),
    })?;
    let (trust, key) = chosen.ok_or(AnswerSigError::UntrustedKey)?;
    if !v.header.typ.is_some_and(|t| t.eq_str(TYP)) {
        return Err(AnswerSigError::WrongType);
    }
    let policy = Policy {
        leeway: LEEWAY,
        require_exp: true,
        require_iat: true,
        require_sub: true,
        max_lifetime: Some(MAX_LIFETIME),
        iss: None,
        aud: None,
        sub: None,
    };
    let c = claims::validate(v.payload, &policy, now)?;
    if !c.sub.is_some_and(|s| s.eq_str(expect.agent_id)) {
        return Err(AnswerSigError::WrongType);
    }
    if !c
        .obj
        .opt_str("call_id")?
        .is_some_and(|s| s.eq_str(expect.call_id))
    {
        return Err(AnswerSigError::WrongCall);
    }
    let caller = sdp::fingerprints(expect.offer_sdp)?;
    let fp = c.obj.req_str("fp")?;
    let mut fp_buf = [0u8; sdp::MAX_FP_LEN];
    let fp = fp
        .decode_into(&mut fp_buf)
        .map_err(|_| AnswerSigError::CallerFingerprint)?;
    if !sdp::same_fingerprint(fp, caller.primary()) {
        return Err(AnswerSigError::CallerFingerprint);
    }
    let answer = sdp::fingerprints(expect.answer_sdp)?;
    let bfps = c
        .obj
        .opt_arr("bfps")?
        .ok_or(AnswerSigError::BotFingerprint)?;
    // Every signed fingerprint is in the answer, and every fingerprint of
    // the answer was signed.
    let mut signed = 0usize;
    for v in bfps.iter() {
        let Value::Str(s) = v else {
            return Err(AnswerSigError::BotFingerprint);
        };
        let mut buf = [0u8; sdp::MAX_FP_LEN];
        let s = s
            .decode_into(&mut buf)
            .map_err(|_| AnswerSigError::BotFingerprint)?;
        if !answer.contains(s) {
            return Err(AnswerSigError::BotFingerprint);
        }
        signed += 1;
    }
    let all_signed = answer.as_slice().iter().all(|mine| {
        bfps.iter().any(|v| {
            let mut buf = [0u8; sdp::MAX_FP_LEN];
            matches!(v, Value::Str(s) if s.decode_into(&mut buf).is_ok_and(|s| sdp::same_fingerprint(s, mine)))
        })
    });
    if signed == 0 || !all_signed {
        return Err(AnswerSigError::BotFingerprint);
    }
    Ok(Verified { trust, key })
}

#[cfg(all(test, feature = "sign", feature = "alloc"))]
mod tests {
    use super::*;
    use alloc::string::String;

    const OFFER: &str = "v=0\r\na=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\n";
    const ANSWER: &str = "v=0\r\na=fingerprint:sha-256 11:22:33:44:55:66:77:88:99:00:AA:BB:CC:DD:EE:FF:11:22:33:44:55:66:77:88:99:00:AA:BB:CC:DD:EE:FF\r\n";
    const NOW: u64 = 1_800_000_000;

    fn key(seed: u8) -> jwt::EcSigningKey {
        let mut d = [seed; 32];
        d[0] = 1;
        jwt::EcSigningKey::from_slice(&d).unwrap()
    }

    fn tok(k: &jwt::EcSigningKey, agent: &str, call: &str, at: u64) -> String {
        let mut out = [0u8; MAX_LEN];
        String::from(sign(k, agent, call, OFFER, ANSWER, at, &mut out).unwrap())
    }

    fn expect<'a>(agent: &'a str, key: Option<&'a VerifyingKey>) -> Expect<'a> {
        Expect {
            agent_id: agent,
            call_id: "c-1",
            offer_sdp: OFFER,
            answer_sdp: ANSWER,
            key,
        }
    }

    #[test]
    fn self_certifying_answer_verifies() {
        let k = key(7);
        let id = jwt::thumbprint(k.verifying_key());
        let t = tok(&k, &id, "c-1", NOW);
        assert!(t.len() < MAX_LEN);
        let v = verify(&t, &expect(&id, None), NOW + 5).unwrap();
        assert_eq!(v.trust, Trust::SelfCertifying);
        assert_eq!(&v.key, k.verifying_key());
    }

    #[test]
    fn known_key_answer_verifies_and_other_keys_do_not() {
        let k = key(7);
        let t = tok(&k, "weather-bot", "c-1", NOW);
        let v = verify(&t, &expect("weather-bot", Some(k.verifying_key())), NOW).unwrap();
        assert_eq!(v.trust, Trust::KnownKey);
        // No key known and the header key does not hash to the id.
        assert_eq!(
            verify(&t, &expect("weather-bot", None), NOW),
            Err(AnswerSigError::UntrustedKey)
        );
        // A different published/pinned key.
        let other = key(9);
        let e = verify(&t, &expect("weather-bot", Some(other.verifying_key())), NOW).unwrap_err();
        assert_eq!(e.code(), "bad_signature");
        // A self-certifying id signed by another key (header key's thumbprint ≠ id).
        let id = jwt::thumbprint(other.verifying_key());
        let t = tok(&k, &id, "c-1", NOW);
        assert_eq!(
            verify(&t, &expect(&id, None), NOW),
            Err(AnswerSigError::UntrustedKey)
        );
    }

    #[test]
    fn tampered_answer_fingerprint_is_refused() {
        let k = key(7);
        let id = jwt::thumbprint(k.verifying_key());
        let t = tok(&k, &id, "c-1", NOW);
        let swapped = ANSWER.replace("11:22:33", "DE:AD:BE");
        let mut e = expect(&id, None);
        e.answer_sdp = &swapped;
        assert_eq!(verify(&t, &e, NOW), Err(AnswerSigError::BotFingerprint));
        // An extra fingerprint line added by a man in the middle.
        let extra = alloc::format!(
            "{ANSWER}a=fingerprint:sha-1 00:11:22:33:44:55:66:77:88:99:00:11:22:33:44:55:66:77:88:99\r\n"
        );
        e.answer_sdp = &extra;
        assert_eq!(verify(&t, &e, NOW), Err(AnswerSigError::BotFingerprint));
        // Another caller's offer.
        let other_offer = OFFER.replace("AA:BB:CC", "AB:BB:CC");
        let mut e = expect(&id, None);
        e.offer_sdp = &other_offer;
        assert_eq!(verify(&t, &e, NOW), Err(AnswerSigError::CallerFingerprint));
        // A flipped signature bit.
        let mut bad = t.clone().into_bytes();
        let n = bad.len() - 3;
        bad[n] = if bad[n] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(
            verify(&bad, &expect(&id, None), NOW).unwrap_err().code(),
            "bad_signature"
        );
    }

    #[test]
    fn expired_and_future_signatures_are_refused() {
        let k = key(7);
        let id = jwt::thumbprint(k.verifying_key());
        let t = tok(&k, &id, "c-1", NOW);
        // Valid until exp + leeway.
        assert!(verify(&t, &expect(&id, None), NOW + LIFETIME + LEEWAY - 1).is_ok());
        let e = verify(&t, &expect(&id, None), NOW + LIFETIME + LEEWAY).unwrap_err();
        assert_eq!(e, AnswerSigError::Jwt(JwtError::Expired));
        assert_eq!(e.code(), "expired");
        let e = verify(&t, &expect(&id, None), NOW - LEEWAY - 1).unwrap_err();
        assert_eq!(e.code(), "bad_time");
    }

    #[test]
    fn wrong_call_wrong_agent_and_other_token_kinds_are_refused() {
        let k = key(7);
        let t = tok(&k, "bot-a", "c-2", NOW);
        let vk = k.verifying_key();
        assert_eq!(
            verify(&t, &expect("bot-a", Some(vk)), NOW),
            Err(AnswerSigError::WrongCall)
        );
        let t = tok(&k, "bot-a", "c-1", NOW);
        assert_eq!(
            verify(&t, &expect("bot-b", Some(vk)), NOW),
            Err(AnswerSigError::WrongType)
        );
        // A BotAuth token from the same key is not an answer signature.
        let mut out = [0u8; 1024];
        let botauth = jwt::sign_claims(
            &jwt::SigningKey::Es256(k.clone()),
            jwt::HeaderOpts::default(),
            r#"{"sub":"bot-a","call_id":"c-1","iat":1800000000,"exp":1800000060}"#,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            verify(botauth, &expect("bot-a", Some(vk)), NOW),
            Err(AnswerSigError::WrongType)
        );
        for junk in ["", "a.b", "a.b.c", &"x".repeat(MAX_LEN + 1)] {
            assert_eq!(
                verify(junk, &expect("bot-a", Some(vk)), NOW)
                    .unwrap_err()
                    .code(),
                "malformed",
                "{junk}"
            );
        }
    }

    #[test]
    fn unsigned_answers_pass_only_for_bots_without_a_key() {
        let k = key(7);
        let id = jwt::thumbprint(k.verifying_key());
        assert!(is_thumbprint_id(&id));
        assert!(!is_thumbprint_id("weather-bot"));
        assert_eq!(check(None, &expect("hs-bot", None), NOW), Ok(None));
        assert_eq!(
            check(None, &expect("ec-bot", Some(k.verifying_key())), NOW),
            Err(AnswerSigError::Missing)
        );
        assert_eq!(
            check(None, &expect(&id, None), NOW),
            Err(AnswerSigError::Missing)
        );
        let t = tok(&k, &id, "c-1", NOW);
        assert!(matches!(
            check(Some(&t), &expect(&id, None), NOW),
            Ok(Some(Verified {
                trust: Trust::SelfCertifying,
                ..
            }))
        ));
    }

    #[test]
    fn needs_fingerprints_to_sign() {
        let mut out = [0u8; MAX_LEN];
        assert_eq!(
            sign(&key(1), "a", "c", "v=0\r\n", ANSWER, NOW, &mut out),
            Err(AnswerSigError::Sdp(SdpError::Missing))
        );
        let mut tiny = [0u8; 16];
        assert_eq!(
            sign(&key(1), "a", "c", OFFER, ANSWER, NOW, &mut tiny),
            Err(AnswerSigError::Jwt(JwtError::BufferTooSmall))
        );
    }
}
