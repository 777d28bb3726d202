//! Fuzzes the JWS/JWT layer: structure, header, signature and claims checks,
//! keys, JWKS and base64url.
//!
//! The input is split at 0xFF bytes (never valid UTF-8) into up to four parts:
//! `token`, `header JSON`, `claims JSON`, `JWK/JWKS JSON`. The token goes to
//! every verifier as is. Header and claims are also signed with the target's
//! own keys, so fuzzed JSON reaches the checks behind the signature, and the
//! outcome is compared with an independent statement of the rules.
//!
//! Run: `cargo +nightly fuzz run jwt_verify fuzz/corpus/jwt_verify fuzz/seeds/jwt_verify -- -dict=fuzz/jwt.dict`
#![no_main]

use std::borrow::Cow;
use std::sync::LazyLock;

use botcall_core::jwt::{self, Jwks, JwtError, Key, Scratch, SigningKey, claims, sign};
use botcall_core::{b64, json};
use libfuzzer_sys::fuzz_target;

const HS_SECRET: &[u8; 32] = b"botcall-fuzz-hs256-secret-32byte";
// RFC 7515 A.3 key.
const ES_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#;
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
/// Times for the (cheap) claims checks.
const NOWS: [u64; 3] = [0, 1_700_000_000, u64::MAX];
/// Time for the combined verifiers: one call each, as ES256 verification
/// dominates the cost of an input.
const NOW: u64 = 1_700_000_000;

struct Keys {
    hs: Key,
    es: Key,
    hs_sign: SigningKey,
    es_sign: SigningKey,
}

static KEYS: LazyLock<Keys> = LazyLock::new(keys);

fn keys() -> Keys {
    let hs_sign =
        SigningKey::from_jwk(r#"{"kty":"oct","k":"Ym90Y2FsbC1mdXp6LWhzMjU2LXNlY3JldC0zMmJ5dGU"}"#)
            .expect("hs jwk");
    let es_sign = SigningKey::from_jwk(ES_JWK).expect("es jwk");
    let hs = Key::hs256(HS_SECRET).expect("hs key");
    assert_eq!(hs_sign.verify_key(), hs);
    Keys {
        es: es_sign.verify_key(),
        hs,
        hs_sign,
        es_sign,
    }
}

fuzz_target!(|data: &[u8]| {
    let k = &*KEYS;
    check_b64(data);

    let mut parts = data.splitn(4, |&b| b == 0xFF);
    let token = String::from_utf8_lossy(parts.next().unwrap_or(&[]));
    let header = parts.next().map(String::from_utf8_lossy);
    let claims_json = parts.next().map(String::from_utf8_lossy);
    let jwk = parts.next().map(String::from_utf8_lossy);

    raw_token(&token, k);

    let header = header.unwrap_or(Cow::Borrowed(r#"{"alg":"HS256","typ":"JWT"}"#));
    let claims_json = claims_json.unwrap_or(Cow::Borrowed(r#"{"sub":"bot","exp":1700000100}"#));
    signed(&header, &claims_json, &k.hs_sign, k);
    signed(
        &header.replace("HS256", "ES256"),
        &claims_json,
        &k.es_sign,
        k,
    );
    for now in NOWS {
        let _ = claims::validate(&claims_json, &claims::Policy::default(), now);
    }

    if let Ok(set) = Jwks::parse(JWKS) {
        let _ = jwt::verify_attestation(&token, &set, "agent-1", Some("botcalld"), NOW);
    }
    if let Some(jwk) = jwk {
        let _ = json::parse(&jwk);
        let _ = Key::from_jwk(&jwk);
        let _ = SigningKey::from_jwk(&jwk);
        if let Ok(set) = Jwks::parse(&jwk) {
            let _ = set.find_es256(None);
            let _ = set.find_es256(Some("k1"));
            let _ = jwt::verify_attestation(&token, &set, "agent-1", Some("botcalld"), NOW);
        }
    }
});

/// Strict base64url: decoding succeeds only for the one canonical encoding.
fn check_b64(data: &[u8]) {
    let mut out = vec![0u8; b64::decoded_len(data.len())];
    if let Ok(bytes) = b64::decode(data, &mut out) {
        let mut enc = vec![0u8; b64::encoded_len(bytes.len())];
        let text = b64::encode(bytes, &mut enc).expect("encode");
        assert_eq!(text.as_bytes(), data, "non-canonical base64url accepted");
    }
}

/// The fuzzed token through every entry point. Nobody can forge our keys, so
/// success means the input carried a token we signed (from the seeds); then it
/// must be the one canonical encoding of its header and payload.
fn raw_token(token: &str, k: &Keys) {
    let _ = json::parse(token);
    let mut scratch = Scratch::new();
    if let Ok(h) = jwt::decode_header_unverified(token, &mut scratch) {
        if let Some(jwk) = h.jwk
            && let Ok(Key::Es256(vk)) = Key::from_jwk_obj(jwk)
        {
            assert_eq!(jwt::thumbprint(&vk).len(), 43);
        }
    }
    for key in [&k.hs, &k.es] {
        let mut scratch = Scratch::new();
        if let Ok(v) = jwt::verify(token, key, &mut scratch) {
            assert!(v.header.alg.eq_str(key.alg().as_str()));
            let (head, _) = token.rsplit_once('.').expect("three segments");
            let (h64, p64) = head.split_once('.').expect("three segments");
            let mut hb = [0u8; 4096];
            let hb = b64::decode(h64.as_bytes(), &mut hb).expect("header b64");
            assert_eq!(p64.len(), b64::encoded_len(v.payload.len()));
            if let (Key::Hs256(_), Ok(htext)) = (key, std::str::from_utf8(hb)) {
                let mut out = [0u8; 8192];
                let again = sign::sign(htext, v.payload, &k.hs_sign, &mut out).expect("re-sign");
                assert_eq!(
                    again, token,
                    "a second encoding of one HS256 token verified"
                );
            }
            for now in NOWS {
                let _ = claims::validate(v.payload, &claims::BotAuth::policy(60, None), now);
            }
        }
        let _ = jwt::verify_bot_auth(token, key, 60, Some("botcalld"), NOW);
    }
}

/// What the signature layer must decide for a correctly signed token with
/// this header, stated independently of `verify`.
fn expected(header: &str, claims: &str, token_len: usize, alg: &str) -> Result<(), JwtError> {
    if token_len > jwt::MAX_TOKEN_LEN {
        return Err(JwtError::TooLong);
    }
    if header.is_empty() || claims.is_empty() {
        return Err(JwtError::Malformed);
    }
    let h = json::parse_object(header)?;
    let a = h.req_str("alg")?;
    // `verify` reads these while parsing the header, before any check.
    h.opt_str("typ")?;
    h.opt_str("kid")?;
    h.opt_obj("jwk")?;
    if a.chars().map(|c| c.to_ascii_lowercase()).eq("none".chars()) {
        return Err(JwtError::AlgNone);
    }
    if !a.eq_str(alg) {
        return Err(JwtError::AlgMismatch);
    }
    if h.get("crit").is_some() {
        return Err(JwtError::CritUnsupported);
    }
    if h.opt_bool("b64")? == Some(false) {
        return Err(JwtError::B64False);
    }
    Ok(())
}

/// Signs fuzzed header and claims text with `sk`, then verifies with both keys.
fn signed(header: &str, claims_json: &str, sk: &SigningKey, k: &Keys) {
    let mut out = [0u8; 16384];
    let Ok(token) = sign::sign(header, claims_json, sk, &mut out) else {
        return;
    };
    let (good, other) = match sk {
        SigningKey::Hs256(_) => (&k.hs, &k.es),
        SigningKey::Es256(_) => (&k.es, &k.hs),
    };
    let mut scratch = Scratch::new();
    let got = jwt::verify(token, good, &mut scratch);
    let want = expected(header, claims_json, token.len(), good.alg().as_str());
    match (&got, &want) {
        (Ok(v), Ok(())) => {
            assert_eq!(v.payload, claims_json);
            assert!(v.header.alg.eq_str(good.alg().as_str()));
            for now in NOWS {
                check_claims(claims_json, now);
            }
            let _ = jwt::verify_bot_auth(token, good, 60, None, NOW);
        }
        (Err(g), Err(w)) => assert_eq!(g, w, "verify and the rules disagree on {header:?}"),
        _ => panic!("verify {got:?} but the rules say {want:?} for header {header:?}"),
    }
    let mut scratch = Scratch::new();
    let cross = jwt::verify(token, other, &mut scratch);
    assert!(
        cross.is_err(),
        "token signed with one key type verified with the other"
    );
}

/// The claims layer's time and lifetime rules, restated.
fn check_claims(text: &str, now: u64) {
    let policy = claims::BotAuth::policy(60, None);
    let Ok(c) = claims::validate(text, &policy, now) else {
        return;
    };
    let now = i128::from(now);
    let exp = i128::from(c.exp.expect("exp is required"));
    assert!(now < exp + 60, "expired token accepted");
    if let Some(nbf) = c.nbf {
        assert!(i128::from(nbf) <= now + 60, "nbf in the future accepted");
    }
    match c.iat {
        Some(iat) => {
            assert!(i128::from(iat) <= now + 60, "iat in the future accepted");
            assert!(exp - i128::from(iat) <= 600, "lifetime over 600 s accepted");
        }
        None => assert!(exp - now - 60 <= 600, "lifetime over 600 s accepted"),
    }
    assert!(c.sub.is_some());
}
