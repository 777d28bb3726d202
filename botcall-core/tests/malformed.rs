//! Hostile input through every public parser: `json::parse`, `b64::decode`,
//! `jwt::verify`, `decode_header_unverified`, `claims::validate`,
//! `Key::from_jwk`, `Jwks::parse`, and the combined `verify_bot_auth` /
//! `verify_attestation`. Each case asserts the exact `JwtError`.
//!
//! Tokens are built here with `hmac` and `p256` directly (not with our
//! signer), so any header and payload bytes can be signed correctly and the
//! checks behind the signature are reached.

use botcall_core::b64;
use botcall_core::json::{self, JsonError};
use botcall_core::jwt::{self, BotAuth, Jwks, JwtError, Key, Scratch, claims};
use hmac::{Hmac, KeyInit, Mac};
use p256::ecdsa::signature::Signer;
use sha2::Sha256;

const SECRET: &[u8; 32] = b"malformed-tests-hs256-secret-32b";
/// RFC 7515 A.3 private scalar.
const ES_D: &str = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI";
const ES_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"daemon-1","use":"sig","alg":"ES256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
const HS: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
const ES: &str = r#"{"alg":"ES256","typ":"JWT","kid":"daemon-1"}"#;
const NOW: u64 = 1_700_000_000;
const N: i64 = NOW as i64;

// ---------------------------------------------------------------- helpers

fn b64e(bytes: &[u8]) -> String {
    let mut out = vec![0u8; b64::encoded_len(bytes.len())];
    b64::encode(bytes, &mut out).unwrap().to_owned()
}

fn b64d(s: &str) -> Vec<u8> {
    let mut out = vec![0u8; b64::decoded_len(s.len())];
    let n = b64::decode(s.as_bytes(), &mut out).unwrap().len();
    out.truncate(n);
    out
}

fn hmac(secret: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn es_signing_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&b64d(ES_D)).unwrap()
}

fn es_sign(msg: &[u8]) -> Vec<u8> {
    let sig: p256::ecdsa::Signature = es_signing_key().sign(msg);
    sig.to_bytes().to_vec()
}

/// `h64.p64.b64(HS256(secret, h64.p64))` from already encoded segments.
fn hs_raw(h64: &str, p64: &str, secret: &[u8]) -> String {
    let input = format!("{h64}.{p64}");
    let sig = hmac(secret, input.as_bytes());
    format!("{input}.{}", b64e(&sig))
}

/// An HS256 token over arbitrary header and payload bytes, signed with [`SECRET`].
fn hs_token(header: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> String {
    hs_raw(&b64e(header.as_ref()), &b64e(payload.as_ref()), SECRET)
}

/// An ES256 token over arbitrary header and payload bytes (A.3 key).
fn es_token(header: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> String {
    let input = format!("{}.{}", b64e(header.as_ref()), b64e(payload.as_ref()));
    let sig = es_sign(input.as_bytes());
    format!("{input}.{}", b64e(&sig))
}

/// `token` with its signature segment replaced by `sig` (raw bytes).
fn with_sig(token: &str, sig: &[u8]) -> String {
    let (head, _) = token.rsplit_once('.').unwrap();
    format!("{head}.{}", b64e(sig))
}

fn sig_of(token: &str) -> Vec<u8> {
    b64d(token.rsplit('.').next().unwrap())
}

fn hs() -> Key {
    Key::hs256(SECRET).unwrap()
}

fn es() -> Key {
    Key::from_jwk(ES_JWK).unwrap()
}

fn es_sec1(compressed: bool) -> Vec<u8> {
    let Key::Es256(vk) = es() else { unreachable!() };
    vk.to_sec1_point(compressed).as_bytes().to_vec()
}

/// The EC public key as a PEM SubjectPublicKeyInfo, as an HS256 "secret" in
/// the classic key-confusion attack.
fn es_pem() -> String {
    let mut der = hex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    der.extend(es_sec1(false));
    let mut text = b64e(&der).replace('-', "+").replace('_', "/");
    while !text.len().is_multiple_of(4) {
        text.push('=');
    }
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn verify(token: &str, key: &Key) -> Result<String, JwtError> {
    let mut scratch = Scratch::new();
    jwt::verify(token, key, &mut scratch).map(|v| v.payload.to_owned())
}

fn header_of(token: &str) -> Result<(), JwtError> {
    let mut scratch = Scratch::new();
    jwt::decode_header_unverified(token, &mut scratch).map(|_| ())
}

/// A BotAuth token (HS256) with these claims through `verify_bot_auth`.
fn bot(claims: &str) -> Result<BotAuth, JwtError> {
    jwt::verify_bot_auth(&hs_token(HS, claims), &hs(), 60, None, NOW)
}

fn bot_aud(claims: &str, aud: &str) -> Result<BotAuth, JwtError> {
    jwt::verify_bot_auth(&hs_token(HS, claims), &hs(), 60, Some(aud), NOW)
}

fn validate(claims_json: &str, policy: &claims::Policy<'_>, now: u64) -> Result<(), JwtError> {
    claims::validate(claims_json, policy, now).map(|_| ())
}

fn attest(claims: &str) -> Result<jwt::HumanAttestation, JwtError> {
    attest_with(ES, claims)
}

fn attest_with(header: &str, claims: &str) -> Result<jwt::HumanAttestation, JwtError> {
    let jwks = Jwks::parse(JWKS).unwrap();
    jwt::verify_attestation(
        &es_token(header, claims),
        &jwks,
        "agent-1",
        Some("botcalld"),
        NOW,
    )
}

fn attestation_claims(iat: i64, exp: i64) -> String {
    format!(
        r#"{{"iss":"botcalld","aud":"agent-1","sub":"caller-7","call_id":"call-42","hv":"pow","fp":"sha-256 AB:CD:EF","iat":{iat},"exp":{exp}}}"#
    )
}

fn bot_claims(iat: i64, exp: i64) -> String {
    format!(r#"{{"sub":"bot-1","iat":{iat},"exp":{exp}}}"#)
}

const BAD_JSON: fn(JsonError) -> Result<String, JwtError> = |e| Err(JwtError::BadJson(e));

// ---------------------------------------------------------------- baseline

#[test]
fn baseline_tokens_verify() {
    let claims_json = bot_claims(N, N + 300);
    assert_eq!(
        verify(&hs_token(HS, &claims_json), &hs()),
        Ok(claims_json.clone())
    );
    assert_eq!(
        verify(&es_token(ES, &claims_json), &es()),
        Ok(claims_json.clone())
    );
    assert_eq!(bot(&claims_json).unwrap().agent_id.as_str(), "bot-1");
    let a = attest(&attestation_claims(N, N + 60)).unwrap();
    assert_eq!(
        (a.agent_id.as_str(), a.caller.as_str(), a.call_id.as_str()),
        ("agent-1", "caller-7", "call-42")
    );
    assert_eq!(
        (a.hv.as_str(), a.fp.as_str(), a.iss.as_str()),
        ("pow", "sha-256 AB:CD:EF", "botcalld")
    );
}

// ---------------------------------------------------------------- alg

#[test]
fn alg_none_in_any_case_is_refused() {
    let claims_json = bot_claims(N, N + 300);
    for alg in [
        "none",
        "None",
        "NONE",
        "nOnE",
        "\\u006eone",
        "\\u004E\\u004f\\u004e\\u0045",
    ] {
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        // With a (meaningless) signature present, the header check fires.
        let token = hs_token(&header, &claims_json);
        assert_eq!(verify(&token, &hs()), Err(JwtError::AlgNone), "{alg}");
        assert_eq!(verify(&token, &es()), Err(JwtError::AlgNone), "{alg}");
        assert_eq!(
            jwt::verify_bot_auth(&token, &hs(), 60, None, NOW),
            Err(JwtError::AlgNone)
        );
        // The canonical unsecured JWS has an empty signature segment.
        let (head, _) = token.rsplit_once('.').unwrap();
        assert_eq!(
            verify(&format!("{head}."), &hs()),
            Err(JwtError::Malformed),
            "{alg}"
        );
        // The header itself is readable (for kid lookup), it just never verifies.
        assert_eq!(header_of(&token), Ok(()));
    }
    // Near misses are simply another algorithm.
    for alg in ["none ", "nonE\\u0000", "non", "", "noneHS256"] {
        let token = hs_token(format!(r#"{{"alg":"{alg}"}}"#), &claims_json);
        assert_eq!(verify(&token, &hs()), Err(JwtError::AlgMismatch), "{alg:?}");
    }
}

#[test]
fn the_key_decides_the_algorithm() {
    let claims_json = bot_claims(N, N + 300);
    // HS256 header, verified with the ES256 key, and vice versa.
    assert_eq!(
        verify(&hs_token(HS, &claims_json), &es()),
        Err(JwtError::AlgMismatch)
    );
    assert_eq!(
        verify(&es_token(ES, &claims_json), &hs()),
        Err(JwtError::AlgMismatch)
    );
    // Other and mis-cased algorithm names.
    for alg in [
        "hs256", "Hs256", "HS384", "HS512", "RS256", "PS256", "ES384", "ES256K", "EdDSA", "HS256 ",
    ] {
        let token = hs_token(format!(r#"{{"alg":"{alg}"}}"#), &claims_json);
        assert_eq!(verify(&token, &hs()), Err(JwtError::AlgMismatch), "{alg}");
        assert_eq!(verify(&token, &es()), Err(JwtError::AlgMismatch), "{alg}");
    }
    // An escaped but equal name is the same algorithm (JSON string equality).
    assert_eq!(
        verify(&hs_token(r#"{"alg":"\u0048S256"}"#, &claims_json), &hs()),
        Ok(claims_json.clone())
    );
    // alg missing or not a string.
    let t = hs_token(r#"{"typ":"JWT"}"#, &claims_json);
    assert_eq!(verify(&t, &hs()), BAD_JSON(JsonError::Missing("alg")));
    for alg in ["256", "null", "[\"HS256\"]", "{\"HS256\":1}", "true"] {
        let t = hs_token(format!(r#"{{"alg":{alg}}}"#), &claims_json);
        assert_eq!(
            verify(&t, &hs()),
            BAD_JSON(JsonError::WrongType("alg")),
            "{alg}"
        );
    }
}

#[test]
fn hs256_signed_with_the_ec_public_key_is_refused() {
    let claims_json = bot_claims(N, N + 300);
    let jwk_text = ES_JWK.as_bytes().to_vec();
    for secret in [
        es_sec1(false),
        es_sec1(true),
        es_pem().into_bytes(),
        jwk_text,
    ] {
        let h64 = b64e(HS.as_bytes());
        let p64 = b64e(claims_json.as_bytes());
        let token = hs_raw(&h64, &p64, &secret);
        // The verifier holds an ES256 key: an HS256 header never gets to use it.
        assert_eq!(verify(&token, &es()), Err(JwtError::AlgMismatch));
        assert_eq!(
            jwt::verify_bot_auth(&token, &es(), 60, None, NOW),
            Err(JwtError::AlgMismatch)
        );
        // The same MAC under an ES256 header is a 32-byte "signature".
        let h64 = b64e(br#"{"alg":"ES256"}"#);
        let token = hs_raw(&h64, &p64, &secret);
        assert_eq!(verify(&token, &es()), Err(JwtError::SignatureLength));
    }
    // And an attestation cannot switch to HS256 either: keys come from the JWKS.
    let token = hs_raw(
        &b64e(br#"{"alg":"HS256","kid":"daemon-1"}"#),
        &b64e(attestation_claims(N, N + 60).as_bytes()),
        &es_sec1(false),
    );
    let jwks = Jwks::parse(JWKS).unwrap();
    assert_eq!(
        jwt::verify_attestation(&token, &jwks, "agent-1", None, NOW).err(),
        Some(JwtError::AlgMismatch)
    );
}

// ---------------------------------------------------------------- header extensions

#[test]
fn crit_and_b64_false_are_refused() {
    let c = bot_claims(N, N + 300);
    for header in [
        r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
        r#"{"alg":"HS256","crit":[]}"#,
        r#"{"alg":"HS256","crit":null}"#,
        r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
        r#"{"alg":"HS256","b64":true,"crit":["b64"]}"#,
        r#"{"alg":"HS256","\u0063rit":["x"]}"#,
    ] {
        assert_eq!(
            verify(&hs_token(header, &c), &hs()),
            Err(JwtError::CritUnsupported),
            "{header}"
        );
    }
    assert_eq!(
        verify(&hs_token(r#"{"alg":"HS256","b64":false}"#, &c), &hs()),
        Err(JwtError::B64False)
    );
    assert_eq!(
        verify(&es_token(r#"{"alg":"ES256","b64":false}"#, &c), &es()),
        Err(JwtError::B64False)
    );
    assert_eq!(
        verify(&hs_token(r#"{"alg":"HS256","b64":"false"}"#, &c), &hs()),
        BAD_JSON(JsonError::WrongType("b64"))
    );
    // b64:true is the default meaning and harmless.
    assert_eq!(
        verify(&hs_token(r#"{"alg":"HS256","b64":true}"#, &c), &hs()),
        Ok(c.clone())
    );
    // alg is checked first: `none` with crit is still AlgNone.
    assert_eq!(
        verify(&hs_token(r#"{"alg":"none","crit":["b64"]}"#, &c), &hs()),
        Err(JwtError::AlgNone)
    );
}

#[test]
fn header_member_types_are_checked() {
    let c = bot_claims(N, N + 300);
    let cases = [
        (r#"{"alg":"HS256","typ":1}"#, JsonError::WrongType("typ")),
        (
            r#"{"alg":"HS256","kid":["a"]}"#,
            JsonError::WrongType("kid"),
        ),
        (
            r#"{"alg":"HS256","jwk":"eyJ"}"#,
            JsonError::WrongType("jwk"),
        ),
        (r#"["alg","HS256"]"#, JsonError::WrongType("(document)")),
        (r#""HS256""#, JsonError::WrongType("(document)")),
        (r#"{"alg":"HS256"}x"#, JsonError::TrailingData),
        (r#"{"alg":"HS256"}{}"#, JsonError::TrailingData),
        (r#"{"alg":"HS256",}"#, JsonError::Syntax(15)),
        (r#"{'alg':'HS256'}"#, JsonError::Syntax(1)),
        ("\u{feff}{\"alg\":\"HS256\"}", JsonError::Syntax(0)),
        ("{\"alg\":\"HS\u{0}256\"}", JsonError::ControlChar),
        (r#"{"alg":"HS256\x"}"#, JsonError::BadEscape),
        (r#"{"alg":"\ud800"}"#, JsonError::BadEscape),
        (r#"{"alg":"HS256""#, JsonError::Eof),
        ("", JsonError::Eof),
    ];
    for (header, e) in cases {
        let token = hs_token(header, &c);
        if header.is_empty() {
            assert_eq!(verify(&token, &hs()), Err(JwtError::Malformed));
            continue;
        }
        assert_eq!(verify(&token, &hs()), Err(JwtError::BadJson(e)), "{header}");
        assert_eq!(header_of(&token), Err(JwtError::BadJson(e)), "{header}");
    }
    // Whitespace around the header object is JSON and fine.
    assert_eq!(
        verify(&hs_token(" \r\n{\"alg\" : \"HS256\"}\t", &c), &hs()),
        Ok(c)
    );
}

// ---------------------------------------------------------------- signature shape

/// DER encoding of a P1363 `r||s` ECDSA signature.
fn der(p1363: &[u8]) -> Vec<u8> {
    fn int(x: &[u8]) -> Vec<u8> {
        let mut x: Vec<u8> = x.iter().copied().skip_while(|&b| b == 0).collect();
        if x.first().is_none_or(|&b| b & 0x80 != 0) {
            x.insert(0, 0);
        }
        let mut out = vec![0x02, x.len() as u8];
        out.extend(x);
        out
    }
    let mut body = int(&p1363[..32]);
    body.extend(int(&p1363[32..]));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

#[test]
fn es256_signatures_must_be_64_byte_p1363() {
    let c = bot_claims(N, N + 300);
    let token = es_token(ES, &c);
    let sig = sig_of(&token);
    assert_eq!(sig.len(), 64);
    let d = der(&sig);
    assert!((70..=72).contains(&d.len()));
    assert_eq!(
        verify(&with_sig(&token, &d), &es()),
        Err(JwtError::SignatureLength)
    );
    assert_eq!(
        verify(&with_sig(&token, &sig[..63]), &es()),
        Err(JwtError::SignatureLength)
    );
    let mut long = sig.clone();
    long.push(0);
    assert_eq!(
        verify(&with_sig(&token, &long), &es()),
        Err(JwtError::SignatureLength)
    );
    long.push(0);
    assert_eq!(
        verify(&with_sig(&token, &long), &es()),
        Err(JwtError::SignatureLength)
    );
    assert_eq!(
        verify(&with_sig(&token, &[0u8; 32]), &es()),
        Err(JwtError::SignatureLength)
    );
    assert_eq!(
        verify(&with_sig(&token, &[0u8; 1]), &es()),
        Err(JwtError::SignatureLength)
    );
    assert_eq!(
        verify(&with_sig(&token, &[0u8; 1000]), &es()),
        Err(JwtError::SignatureLength)
    );
    assert_eq!(
        verify(&with_sig(&token, &[0u8; 4000]), &es()),
        Err(JwtError::TooLong)
    );
    // r = s = 0 ("psychic signatures", CVE-2022-21449), and r, s = n.
    assert_eq!(
        verify(&with_sig(&token, &[0u8; 64]), &es()),
        Err(JwtError::BadSignature)
    );
    let n = hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    let nn = [n.clone(), n.clone()].concat();
    assert_eq!(
        verify(&with_sig(&token, &nn), &es()),
        Err(JwtError::BadSignature)
    );
    assert_eq!(
        verify(&with_sig(&token, &[0xff; 64]), &es()),
        Err(JwtError::BadSignature)
    );
    // (r, n - s) is the other valid signature of the same message. p256
    // accepts both halves (plain ECDSA, no low-S rule), so a token holder can
    // re-encode their own ES256 token: the token string is no replay-cache
    // key (use `jti`). HS256 tokens and all headers/payloads are unique.
    let mut flipped = sig.clone();
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(n[i]) - i16::from(sig[32 + i]) - borrow;
        flipped[32 + i] = d.rem_euclid(256) as u8;
        borrow = i16::from(d < 0);
    }
    assert_ne!(flipped, sig);
    assert_eq!(verify(&with_sig(&token, &flipped), &es()), Ok(c.clone()));
    assert_eq!(verify(&token, &es()), Ok(c));
}

#[test]
fn hs256_tags_must_be_32_bytes() {
    let c = bot_claims(N, N + 300);
    let token = hs_token(HS, &c);
    let tag = sig_of(&token);
    for len in [1, 16, 31] {
        assert_eq!(
            verify(&with_sig(&token, &tag[..len]), &hs()),
            Err(JwtError::SignatureLength),
            "{len}"
        );
    }
    for extra in [1, 32] {
        let mut long = tag.clone();
        long.extend(std::iter::repeat_n(0u8, extra));
        assert_eq!(
            verify(&with_sig(&token, &long), &hs()),
            Err(JwtError::SignatureLength),
            "{extra}"
        );
    }
    assert_eq!(
        verify(&with_sig(&token, &[0u8; 32]), &hs()),
        Err(JwtError::BadSignature)
    );
}

// ---------------------------------------------------------------- duplicates

#[test]
fn duplicate_keys_in_header_claims_and_keys() {
    let c = bot_claims(N, N + 300);
    let dup = BAD_JSON(JsonError::DuplicateKey);
    for header in [
        r#"{"alg":"HS256","alg":"none"}"#,
        r#"{"alg":"none","alg":"HS256"}"#,
        r#"{"alg":"HS256","alg":"HS256"}"#,
        r#"{"alg":"HS256","\u0061lg":"none"}"#,
        r#"{"alg":"HS256","\u0061\u006c\u0067":"none"}"#,
        r#"{"alg":"HS256","kid":"a","k\u0069d":"b"}"#,
        r#"{"alg":"HS256","a/b":1,"a\/b":2}"#,
        "{\"alg\":\"HS256\",\"\u{1F600}\":1,\"\\ud83d\\ude00\":2}",
        r#"{"alg":"HS256","jwk":{"kty":"EC","kty":"oct"}}"#,
    ] {
        let token = hs_token(header, &c);
        assert_eq!(verify(&token, &hs()), dup, "{header}");
        assert_eq!(
            header_of(&token),
            Err(JwtError::BadJson(JsonError::DuplicateKey)),
            "{header}"
        );
    }
    // Different keys that only look alike are not duplicates.
    assert!(
        verify(
            &hs_token(r#"{"alg":"HS256","Alg":"none","alg ":"x"}"#, &c),
            &hs()
        )
        .is_ok()
    );

    // Claims: the signature verifies (the payload is opaque to that layer),
    // then the claims layer refuses the document.
    for claims_json in [
        format!(
            r#"{{"sub":"bot-1","exp":{},"exp":{}}}"#,
            N + 300,
            N + 100_000
        ),
        format!(
            r#"{{"sub":"bot-1","exp":{},"\u0065xp":{}}}"#,
            N + 300,
            N + 100_000
        ),
        format!(r#"{{"sub":"bot-1","sub":"admin","exp":{}}}"#, N + 300),
        format!(r#"{{"sub":"bot-1","s\u0075b":"admin","exp":{}}}"#, N + 300),
        format!(r#"{{"sub":"bot-1","exp":{},"x":{{"a":1,"a":2}}}}"#, N + 300),
    ] {
        let token = hs_token(HS, &claims_json);
        assert_eq!(verify(&token, &hs()), Ok(claims_json.clone()));
        assert_eq!(
            bot(&claims_json).err(),
            Some(JwtError::BadJson(JsonError::DuplicateKey)),
            "{claims_json}"
        );
        assert_eq!(
            validate(&claims_json, &claims::Policy::default(), NOW),
            Err(JwtError::BadJson(JsonError::DuplicateKey))
        );
    }
    // Keys.
    let jwk = ES_JWK.replace(r#""crv":"P-256""#, r#""crv":"P-256","crv":"P-384""#);
    assert_eq!(
        Key::from_jwk(&jwk),
        Err(JwtError::BadJson(JsonError::DuplicateKey))
    );
    let jwk = ES_JWK.replace(r#""x":"#, r#""x":"AAAA","\u0078":"#);
    assert_eq!(
        Key::from_jwk(&jwk),
        Err(JwtError::BadJson(JsonError::DuplicateKey))
    );
    let set = JWKS.replace(r#""kid":"daemon-1""#, r#""kid":"daemon-1","kid":"other""#);
    assert_eq!(
        Jwks::parse(&set).err(),
        Some(JwtError::BadJson(JsonError::DuplicateKey))
    );
    assert_eq!(
        Jwks::parse(r#"{"keys":[],"keys":[]}"#).err(),
        Some(JwtError::BadJson(JsonError::DuplicateKey))
    );
}

// ---------------------------------------------------------------- nesting

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn nesting_is_bounded() {
    let max = json::read::MAX_DEPTH;
    assert_eq!(max, 16);
    assert!(json::parse(&nested(max)).is_ok());
    assert_eq!(json::parse(&nested(max + 1)), Err(JsonError::TooDeep));
    // Far deeper input fails fast without recursion trouble.
    assert_eq!(json::parse(&nested(1_000_000)), Err(JsonError::TooDeep));
    assert_eq!(
        json::parse(&"{\"a\":".repeat(200_000)),
        Err(JsonError::TooDeep)
    );
    assert_eq!(json::parse(&"[".repeat(200_000)), Err(JsonError::TooDeep));

    // In a header and in claims: the object itself is level 1.
    let c = bot_claims(N, N + 300);
    let ok_header = format!(r#"{{"alg":"HS256","x":{}}}"#, nested(max - 1));
    assert_eq!(verify(&hs_token(&ok_header, &c), &hs()), Ok(c.clone()));
    let deep_header = format!(r#"{{"alg":"HS256","x":{}}}"#, nested(max));
    assert_eq!(
        verify(&hs_token(&deep_header, &c), &hs()),
        BAD_JSON(JsonError::TooDeep)
    );
    let ok_claims = format!(
        r#"{{"sub":"bot-1","exp":{},"x":{}}}"#,
        N + 300,
        nested(max - 1)
    );
    assert!(bot(&ok_claims).is_ok());
    let deep_claims = format!(r#"{{"sub":"bot-1","exp":{},"x":{}}}"#, N + 300, nested(max));
    assert_eq!(
        bot(&deep_claims).err(),
        Some(JwtError::BadJson(JsonError::TooDeep))
    );
    let deep_jwk = ES_JWK.replace(
        r#""kty":"EC""#,
        &format!(r#""kty":"EC","z":{}"#, nested(max)),
    );
    assert_eq!(
        Key::from_jwk(&deep_jwk),
        Err(JwtError::BadJson(JsonError::TooDeep))
    );

    // Member count is bounded too (the duplicate check is quadratic in it).
    let many: Vec<String> = (0..=json::read::MAX_MEMBERS)
        .map(|i| format!("\"k{i}\":0"))
        .collect();
    // "alg" plus 63 more is the most; plus 64 is one too many.
    let doc = format!("{{\"alg\":\"HS256\",{}}}", many[2..].join(","));
    assert!(verify(&hs_token(&doc, &c), &hs()).is_ok());
    let doc = format!("{{\"alg\":\"HS256\",{}}}", many[1..].join(","));
    assert_eq!(
        verify(&hs_token(&doc, &c), &hs()),
        BAD_JSON(JsonError::TooManyMembers)
    );
}

/// Decoding a long string is linear. (It used to re-validate the rest of the
/// string for every character: two 200 KB keys took minutes to compare.)
#[test]
fn long_strings_decode_in_linear_time() {
    let key = "é".repeat(100_000);
    let doc = format!("{{\"\\u0041{key}\":1,\"\\u0041{key}x\":2}}");
    let start = std::time::Instant::now();
    let obj = json::parse_object(&doc).unwrap();
    let (k, _) = obj.iter().next().unwrap();
    assert_eq!(k.decoded_len(), 1 + 2 * 100_000);
    let mut buf = vec![0u8; k.decoded_len()];
    assert_eq!(k.decode_into(&mut buf).unwrap().len(), 200_001);
    let dup = format!("{{\"\\u0041{key}\":1,\"A{key}\":2}}");
    assert_eq!(json::parse(&dup), Err(JsonError::DuplicateKey));
    // Linear is milliseconds even in a debug build under qemu; the
    // quadratic version took minutes. The bound tells the two apart on any load.
    let took = start.elapsed();
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
}

// ---------------------------------------------------------------- integer times

#[test]
fn times_must_be_integers() {
    for claim in ["exp", "nbf", "iat"] {
        let cases = [
            ("1e10", JsonError::NotInteger(claim)),
            ("1E3", JsonError::NotInteger(claim)),
            ("1.5", JsonError::NotInteger(claim)),
            ("1700000000.0", JsonError::NotInteger(claim)),
            ("-0.0", JsonError::NotInteger(claim)),
            ("99999999999999999999", JsonError::NotInteger(claim)),
            ("-9223372036854775809", JsonError::NotInteger(claim)),
            ("\"123\"", JsonError::WrongType(claim)),
            ("\"1700000100\"", JsonError::WrongType(claim)),
            ("null", JsonError::WrongType(claim)),
            ("true", JsonError::WrongType(claim)),
            ("[1700000100]", JsonError::WrongType(claim)),
            ("{}", JsonError::WrongType(claim)),
        ];
        for (value, e) in cases {
            let mut fields = vec![
                ("sub", "\"bot-1\"".to_owned()),
                ("exp", (N + 300).to_string()),
            ];
            fields.retain(|(k, _)| *k != claim);
            fields.push((claim, value.to_owned()));
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let claims_json = format!("{{{}}}", body.join(","));
            assert_eq!(
                bot(&claims_json).err(),
                Some(JwtError::BadJson(e)),
                "{claims_json}"
            );
        }
        // Grammar errors are JSON syntax errors, whatever the claim.
        for value in [
            "01", "1.", ".5", "+1", "0x10", "1e", "--1", "NaN", "Infinity",
        ] {
            let claims_json = format!(r#"{{"sub":"bot-1","{claim}":{value}}}"#);
            assert!(
                matches!(
                    bot(&claims_json),
                    Err(JwtError::BadJson(JsonError::Syntax(_)))
                ),
                "{claims_json}"
            );
        }
    }
    // Extreme integers are read exactly and judged (no overflow).
    assert_eq!(
        bot(r#"{"sub":"bot-1","exp":-9223372036854775808}"#).err(),
        Some(JwtError::Expired)
    );
    assert_eq!(
        bot(r#"{"sub":"bot-1","exp":9223372036854775807}"#).err(),
        Some(JwtError::LifetimeTooLong)
    );
    assert_eq!(
        bot(r#"{"sub":"bot-1","iat":-9223372036854775808,"exp":9223372036854775807}"#).err(),
        Some(JwtError::LifetimeTooLong)
    );
    assert_eq!(
        validate(
            r#"{"exp":9223372036854775807,"nbf":9223372036854775807}"#,
            &claims::Policy::default(),
            u64::MAX
        ),
        Err(JwtError::Expired)
    );
    assert_eq!(
        validate(r#"{"exp":-1}"#, &claims::Policy::default(), 58),
        Ok(())
    );
    assert_eq!(
        validate(r#"{"exp":-1}"#, &claims::Policy::default(), 59),
        Err(JwtError::Expired)
    );
    assert_eq!(
        validate(r#"{"exp":-0}"#, &claims::Policy::default(), 59),
        Ok(())
    );
}

// ---------------------------------------------------------------- base64url

#[test]
fn base64url_must_be_canonical_and_unpadded() {
    let mut out = [0u8; 64];
    for bad in [
        &b"QQ=="[..],
        b"QQ=",
        b"QUI=",
        b"Q",
        b"QUJDR",
        b"QR",
        b"QUK",
        b"Q+",
        b"Q/",
        b"QU JD",
        b" QUJD",
        b"QUJD ",
        b"QUJD\n",
        b"QUJD\r\n",
        b"QU\tJD",
        b"QUJD.",
        b"QUJ\0",
        b"QUJ\xff",
        b"QUJ\xc3\xa9",
        b"=",
        b"====",
    ] {
        assert_eq!(
            b64::decode(bad, &mut out),
            Err(b64::B64Error),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(b64::decode(b"", &mut out), Ok(&[][..]));
    assert_eq!(b64::decode(b"QUJD", &mut out), Ok(&b"ABC"[..]));
    // Output buffer one byte short.
    assert_eq!(b64::decode(b"QUJD", &mut out[..2]), Err(b64::B64Error));
    let mut tiny = [0u8; 0];
    assert_eq!(b64::encode(b"A", &mut tiny), Err(b64::B64Error));

    // In tokens: header and signature are decoded before anything is trusted.
    let c = bot_claims(N, N + 300);
    let token = hs_token(HS, &c);
    let [h, p, s]: [&str; 3] = token.split('.').collect::<Vec<_>>().try_into().unwrap();
    assert_eq!(h.len() % 4, 0, "test assumes an unpadded 4n-length header");
    let bad_b64 = Err(JwtError::BadBase64);
    for (h2, s2) in [
        (format!("{h}=="), s.to_owned()),
        (format!(" {h}"), s.to_owned()),
        (h.replacen('e', "+", 1), s.to_owned()),
        (h.to_owned(), format!("{s}=")),
        (h.to_owned(), format!("{s}\n")),
        (h.to_owned(), format!("{s} ")),
        (h.to_owned(), s.replace('_', "/").replace('-', "+")),
    ] {
        if h2 == h && s2 == s {
            continue;
        }
        assert_eq!(
            verify(&format!("{h2}.{p}.{s2}"), &hs()),
            bad_b64,
            "{h2}.{p}.{s2}"
        );
    }
    // A 43-character signature carries 2 spare bits: setting them is a second
    // encoding of the same tag, and refused.
    assert_eq!(s.len(), 43);
    let last = s.as_bytes()[42];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.iter().position(|&a| a == last).unwrap();
    assert_eq!(idx & 3, 0);
    for spare in 1..4 {
        let s2 = format!("{}{}", &s[..42], alphabet[idx | spare] as char);
        assert_eq!(verify(&format!("{h}.{p}.{s2}"), &hs()), bad_b64);
    }
    // The payload is covered by the signature as text: a signer that padded
    // it (or used non-canonical bits) gets a valid MAC but an unreadable payload.
    let p_len = p.len();
    assert_ne!(
        p_len % 4,
        0,
        "test needs a payload with a partial last quantum"
    );
    let padded = format!("{p}{}", "=".repeat(4 - p_len % 4));
    let t = hs_raw(h, &padded, SECRET);
    assert_eq!(verify(&t, &hs()), bad_b64);
    assert_eq!(
        jwt::verify_bot_auth(&t, &hs(), 60, None, NOW).err(),
        Some(JwtError::BadBase64)
    );
    let std_alphabet = hs_raw(h, &format!("{p}+"), SECRET);
    assert_eq!(verify(&std_alphabet, &hs()), bad_b64);
    // A header of one base64 character too many (length 1 mod 4).
    assert_eq!(verify(&format!("{h}A.{p}.{s}"), &hs()), bad_b64);
}

// ---------------------------------------------------------------- structure

#[test]
fn token_structure() {
    let c = bot_claims(N, N + 300);
    let token = hs_token(HS, &c);
    let [h, p, s]: [&str; 3] = token.split('.').collect::<Vec<_>>().try_into().unwrap();
    let malformed = Err(JwtError::Malformed);
    for t in [
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        h.into(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}."),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}.{p}.{p}.{s}"),
        format!(".{h}.{p}.{s}"),
        format!("{h}..{s}"),
        format!(".{p}.{s}"),
        format!("{h}.{p}."),
        format!("{h}.{p}.{s}.."),
    ] {
        assert_eq!(verify(&t, &hs()), malformed, "{t:?}");
        assert_eq!(verify(&t, &es()), malformed, "{t:?}");
        assert_eq!(header_of(&t), Err(JwtError::Malformed), "{t:?}");
        assert_eq!(
            jwt::verify_bot_auth(&t, &hs(), 60, None, NOW).err(),
            Some(JwtError::Malformed)
        );
    }
    // JWE-style five segments.
    assert_eq!(verify(&format!("{h}.{p}.{p}.{p}.{s}"), &hs()), malformed);
}

/// A valid HS256 token of exactly `len` bytes (padding a claim).
fn token_of_len(len: usize) -> String {
    for pad in 0..4096 {
        let claims_json = format!(
            r#"{{"sub":"bot-1","exp":{},"pad":"{}"}}"#,
            N + 300,
            "x".repeat(pad)
        );
        let t = hs_token(HS, &claims_json);
        if t.len() == len {
            return t;
        }
        if t.len() > len {
            break;
        }
    }
    // Length 1 (mod 4) payload segments do not exist: vary the header instead.
    for pad in 0..4096 {
        let claims_json = format!(
            r#"{{"sub":"bot-1","exp":{},"pad":"{}"}}"#,
            N + 300,
            "x".repeat(pad)
        );
        let t = hs_token(r#"{"alg":"HS256"}"#, &claims_json);
        if t.len() == len {
            return t;
        }
    }
    panic!("no token of length {len}");
}

#[test]
fn length_limit_is_4096_bytes() {
    assert_eq!(jwt::MAX_TOKEN_LEN, 4096);
    let t = token_of_len(4096);
    assert!(verify(&t, &hs()).is_ok());
    assert!(jwt::verify_bot_auth(&t, &hs(), 60, None, NOW).is_ok());
    let t = token_of_len(4097);
    assert_eq!(verify(&t, &hs()), Err(JwtError::TooLong));
    assert_eq!(header_of(&t), Err(JwtError::TooLong));
    assert_eq!(
        jwt::verify_bot_auth(&t, &hs(), 60, None, NOW).err(),
        Some(JwtError::TooLong)
    );
    // Length is checked before anything else.
    assert_eq!(verify(&"A".repeat(100_000), &hs()), Err(JwtError::TooLong));
    assert_eq!(verify(&".".repeat(5000), &hs()), Err(JwtError::TooLong));
    // A header taking nearly all of the 4096 bytes still fits the scratch space.
    let big_header = format!(r#"{{"alg":"HS256","x":"{}"}}"#, "y".repeat(2900));
    let t = hs_token(&big_header, "{}");
    assert!(t.len() <= 4096, "{}", t.len());
    assert_eq!(verify(&t, &hs()), Ok("{}".to_owned()));
}

#[test]
fn invalid_utf8_after_decoding() {
    let c = bot_claims(N, N + 300);
    let not_utf8 = BAD_JSON(JsonError::Syntax(0));
    for header in [
        &b"{\"alg\":\"HS256\",\"x\":\"\xff\"}"[..],
        b"{\"alg\":\"HS256\",\"x\":\"\xc0\xaf\"}",
        b"{\"alg\":\"HS256\",\"x\":\"\xed\xa0\x80\"}",
        b"{\"alg\":\"HS256\",\"x\":\"\xf4\x90\x80\x80\"}",
        b"{\"alg\":\"HS256\",\"x\":\"\xe2\x82\"}",
        b"\xfe\xff{\"alg\":\"HS256\"}",
    ] {
        let token = hs_token(header, &c);
        assert_eq!(verify(&token, &hs()), not_utf8);
        assert_eq!(
            header_of(&token),
            Err(JwtError::BadJson(JsonError::Syntax(0)))
        );
    }
    // In the payload: reported after the signature verified.
    let token = hs_token(HS, b"{\"sub\":\"\xff\"}");
    assert_eq!(verify(&token, &hs()), not_utf8);
    let forged = with_sig(&token, &[0u8; 32]);
    assert_eq!(verify(&forged, &hs()), Err(JwtError::BadSignature));
}

// ---------------------------------------------------------------- time claims

#[test]
fn leeway_boundaries() {
    let p = claims::Policy::default();
    assert_eq!(p.leeway, 60);
    let e = N + 1000;
    // exp: the time must be before exp (RFC 7519 §4.1.4), give or take the
    // leeway: valid up to exp + leeway - 1.
    let doc = format!(r#"{{"exp":{e}}}"#);
    assert_eq!(validate(&doc, &p, (e + 59) as u64), Ok(()));
    assert_eq!(validate(&doc, &p, (e + 60) as u64), Err(JwtError::Expired));
    assert_eq!(validate(&doc, &p, (e + 61) as u64), Err(JwtError::Expired));
    // nbf: valid at or after nbf (§4.1.5), from nbf - leeway.
    let doc = format!(r#"{{"exp":{},"nbf":{}}}"#, N + 5000, N + 60);
    assert_eq!(validate(&doc, &p, NOW), Ok(()));
    let doc = format!(r#"{{"exp":{},"nbf":{}}}"#, N + 5000, N + 61);
    assert_eq!(validate(&doc, &p, NOW), Err(JwtError::NotYetValid));
    // iat: may be at most leeway in the future.
    let doc = format!(r#"{{"exp":{},"iat":{}}}"#, N + 5000, N + 60);
    assert_eq!(validate(&doc, &p, NOW), Ok(()));
    let doc = format!(r#"{{"exp":{},"iat":{}}}"#, N + 5000, N + 61);
    assert_eq!(validate(&doc, &p, NOW), Err(JwtError::IssuedInFuture));
    // Zero leeway: exact instants. exp is exclusive, nbf and iat inclusive.
    let z = claims::Policy {
        leeway: 0,
        ..Default::default()
    };
    let doc = format!(r#"{{"exp":{},"nbf":{N},"iat":{N}}}"#, N + 1);
    assert_eq!(validate(&doc, &z, NOW), Ok(()));
    assert_eq!(validate(&doc, &z, NOW + 1), Err(JwtError::Expired));
    assert_eq!(validate(&doc, &z, NOW - 1), Err(JwtError::NotYetValid));
    let doc = format!(r#"{{"exp":{N}}}"#);
    assert_eq!(validate(&doc, &z, NOW - 1), Ok(()));
    assert_eq!(validate(&doc, &z, NOW), Err(JwtError::Expired));
    let doc = format!(r#"{{"exp":{},"iat":{N}}}"#, N + 10);
    assert_eq!(validate(&doc, &z, NOW - 1), Err(JwtError::IssuedInFuture));
    // Order of checks: exp, nbf, iat, lifetime, iss, aud, sub.
    let doc = format!(
        r#"{{"exp":{},"nbf":{},"iat":{}}}"#,
        N - 100,
        N + 100,
        N + 100
    );
    assert_eq!(validate(&doc, &p, NOW), Err(JwtError::Expired));
    let doc = format!(
        r#"{{"exp":{},"nbf":{},"iat":{}}}"#,
        N + 100,
        N + 100,
        N + 100
    );
    assert_eq!(validate(&doc, &z, NOW), Err(JwtError::NotYetValid));
    // exp required by default; iat, sub only when the policy says so.
    assert_eq!(validate("{}", &p, NOW), Err(JwtError::MissingClaim("exp")));
    let strict = claims::Policy {
        require_iat: true,
        require_sub: true,
        ..Default::default()
    };
    let doc = format!(r#"{{"exp":{}}}"#, N + 10);
    assert_eq!(
        validate(&doc, &strict, NOW),
        Err(JwtError::MissingClaim("iat"))
    );
    let doc = format!(r#"{{"exp":{},"iat":{N}}}"#, N + 10);
    assert_eq!(
        validate(&doc, &strict, NOW),
        Err(JwtError::MissingClaim("sub"))
    );
    let open = claims::Policy {
        require_exp: false,
        ..Default::default()
    };
    assert_eq!(validate("{}", &open, NOW), Ok(()));
    // The same boundaries through verify_bot_auth (leeway 60).
    assert!(bot(&bot_claims(N - 659, N - 59)).is_ok());
    assert_eq!(
        bot(&bot_claims(N - 660, N - 60)).err(),
        Some(JwtError::Expired)
    );
    assert!(bot(&bot_claims(N + 60, N + 600)).is_ok());
    assert_eq!(
        bot(&bot_claims(N + 61, N + 600)).err(),
        Some(JwtError::IssuedInFuture)
    );
}

#[test]
fn bot_auth_lifetime_is_at_most_600_s() {
    assert_eq!(claims::BOT_AUTH_MAX_LIFETIME, 600);
    assert!(bot(&bot_claims(N, N + 600)).is_ok());
    assert_eq!(
        bot(&bot_claims(N, N + 601)).err(),
        Some(JwtError::LifetimeTooLong)
    );
    // An old iat cannot be paired with a far exp.
    assert_eq!(
        bot(&bot_claims(N - 1000, N + 10)).err(),
        Some(JwtError::LifetimeTooLong)
    );
    assert!(bot(&bot_claims(N - 590, N + 10)).is_ok());
    // Without iat, the remaining time counts: exp - now, with the clock
    // leeway granted (exp - now <= 600 + 60).
    assert!(bot(&format!(r#"{{"sub":"bot-1","exp":{}}}"#, N + 660)).is_ok());
    assert_eq!(
        bot(&format!(r#"{{"sub":"bot-1","exp":{}}}"#, N + 661)).err(),
        Some(JwtError::LifetimeTooLong)
    );
    // A year-long token is refused whichever way it is written.
    assert_eq!(
        bot(&bot_claims(N, N + 31_536_000)).err(),
        Some(JwtError::LifetimeTooLong)
    );
    // Required claims.
    assert_eq!(
        bot(r#"{"sub":"bot-1"}"#).err(),
        Some(JwtError::MissingClaim("exp"))
    );
    assert_eq!(
        bot(&format!(r#"{{"exp":{}}}"#, N + 10)).err(),
        Some(JwtError::MissingClaim("sub"))
    );
}

#[test]
fn attestation_lifetime_is_at_most_120_s() {
    assert_eq!(claims::ATTESTATION_MAX_LIFETIME, 120);
    assert!(attest(&attestation_claims(N, N + 120)).is_ok());
    assert_eq!(
        attest(&attestation_claims(N, N + 121)).err(),
        Some(JwtError::LifetimeTooLong)
    );
    assert_eq!(
        attest(&attestation_claims(N - 100, N + 100)).err(),
        Some(JwtError::LifetimeTooLong)
    );
    // iat is required for attestations.
    let no_iat = attestation_claims(N, N + 60).replace(&format!(r#","iat":{N}"#), "");
    assert_eq!(attest(&no_iat).err(), Some(JwtError::MissingClaim("iat")));
    assert_eq!(
        attest(&attestation_claims(N - 200, N - 61)).err(),
        Some(JwtError::Expired)
    );
}

// ---------------------------------------------------------------- iss / aud / sub

#[test]
fn wrong_audience_issuer_and_subject() {
    let c = |extra: &str| format!(r#"{{"sub":"bot-1","exp":{}{extra}}}"#, N + 300);
    // BotAuth with the daemon's token_audience configured.
    assert!(bot_aud(&c(r#","aud":"botcalld""#), "botcalld").is_ok());
    assert!(bot_aud(&c(r#","aud":["x","botcalld"]"#), "botcalld").is_ok());
    assert!(bot_aud(&c(r#","aud":"botcall\u0064""#), "botcalld").is_ok());
    assert_eq!(
        bot_aud(&c(""), "botcalld").err(),
        Some(JwtError::MissingClaim("aud"))
    );
    for aud in [
        r#""other""#,
        r#""botcalld ""#,
        r#""BOTCALLD""#,
        "[]",
        r#"["x","y"]"#,
    ] {
        assert_eq!(
            bot_aud(&c(&format!(r#","aud":{aud}"#)), "botcalld").err(),
            Some(JwtError::WrongAudience),
            "{aud}"
        );
    }
    for aud in [
        "1",
        "null",
        r#"["botcalld",1]"#,
        r#"{"botcalld":true}"#,
        "[[\"botcalld\"]]",
    ] {
        assert_eq!(
            bot_aud(&c(&format!(r#","aud":{aud}"#)), "botcalld").err(),
            Some(JwtError::BadJson(JsonError::WrongType("aud"))),
            "{aud}"
        );
    }
    // Without a configured audience aud is not checked (but must be well-typed).
    assert!(bot(&c(r#","aud":"anyone""#)).is_ok());

    // Issuer pinning at the claims layer.
    let p = claims::Policy {
        iss: Some("botcalld"),
        ..Default::default()
    };
    assert_eq!(validate(&c(r#","iss":"botcalld""#), &p, NOW), Ok(()));
    assert_eq!(
        validate(&c(r#","iss":"evil""#), &p, NOW),
        Err(JwtError::WrongIssuer)
    );
    assert_eq!(
        validate(&c(r#","iss":"botcalld\u0000""#), &p, NOW),
        Err(JwtError::WrongIssuer)
    );
    assert_eq!(
        validate(&c(""), &p, NOW),
        Err(JwtError::MissingClaim("iss"))
    );
    assert_eq!(
        validate(&c(r#","iss":7"#), &p, NOW),
        Err(JwtError::BadJson(JsonError::WrongType("iss")))
    );

    // Subject pinning at the claims layer.
    let p = claims::Policy {
        sub: Some("bot-1"),
        ..Default::default()
    };
    assert_eq!(validate(&c(""), &p, NOW), Ok(()));
    let other = format!(r#"{{"sub":"bot-2","exp":{}}}"#, N + 300);
    assert_eq!(validate(&other, &p, NOW), Err(JwtError::WrongSubject));
    let escaped = format!(r#"{{"sub":"\u0062ot-1","exp":{}}}"#, N + 300);
    assert_eq!(validate(&escaped, &p, NOW), Ok(()));
    let none = format!(r#"{{"exp":{}}}"#, N + 300);
    assert_eq!(validate(&none, &p, NOW), Err(JwtError::MissingClaim("sub")));
    let wrong_type = format!(r#"{{"sub":["bot-1"],"exp":{}}}"#, N + 300);
    assert_eq!(
        validate(&wrong_type, &p, NOW),
        Err(JwtError::BadJson(JsonError::WrongType("sub")))
    );

    // BotAuth: sub is the agent id and must be a valid one.
    for sub in [
        r#""""#,
        r#""bad id""#,
        r#""bot/1""#,
        r#""bot\n1""#,
        r#""ünïcode""#,
        &format!("\"{}\"", "a".repeat(65)),
    ] {
        let doc = format!(r#"{{"sub":{sub},"exp":{}}}"#, N + 300);
        assert_eq!(bot(&doc).err(), Some(JwtError::BadClaim("sub")), "{sub}");
    }
    let doc = format!(r#"{{"sub":"{}","exp":{}}}"#, "a".repeat(64), N + 300);
    assert_eq!(bot(&doc).unwrap().agent_id.len(), 64);
    let doc = format!(r#"{{"sub":1,"exp":{}}}"#, N + 300);
    assert_eq!(
        bot(&doc).err(),
        Some(JwtError::BadJson(JsonError::WrongType("sub")))
    );
}

#[test]
fn attestation_claims_are_checked() {
    let good = attestation_claims(N, N + 60);
    assert!(attest(&good).is_ok());
    let jwks = Jwks::parse(JWKS).unwrap();
    let token = es_token(ES, &good);
    // Another agent, another issuer.
    assert_eq!(
        jwt::verify_attestation(&token, &jwks, "agent-2", None, NOW).err(),
        Some(JwtError::WrongAudience)
    );
    assert_eq!(
        jwt::verify_attestation(&token, &jwks, "agent-1", Some("other-daemon"), NOW).err(),
        Some(JwtError::WrongIssuer)
    );
    assert!(jwt::verify_attestation(&token, &jwks, "agent-1", None, NOW).is_ok());
    let cases: [(&str, &str, JwtError); 10] = [
        (r#""aud":"agent-1","#, "", JwtError::MissingClaim("aud")),
        (r#""iss":"botcalld","#, "", JwtError::MissingClaim("iss")),
        (r#""sub":"caller-7","#, "", JwtError::MissingClaim("sub")),
        (
            r#""call_id":"call-42","#,
            "",
            JwtError::MissingClaim("call_id"),
        ),
        (r#""hv":"pow","#, "", JwtError::MissingClaim("hv")),
        (
            r#""fp":"sha-256 AB:CD:EF","#,
            "",
            JwtError::MissingClaim("fp"),
        ),
        (
            r#""sub":"caller-7""#,
            r#""sub":"caller 7""#,
            JwtError::BadClaim("sub"),
        ),
        (
            r#""call_id":"call-42""#,
            r#""call_id":42"#,
            JwtError::BadJson(JsonError::WrongType("call_id")),
        ),
        (
            r#""hv":"pow""#,
            r#""hv":"proof-of-work-by-hand""#,
            JwtError::BadClaim("hv"),
        ),
        (
            r#""aud":"agent-1""#,
            r#""aud":"agent-9""#,
            JwtError::WrongAudience,
        ),
    ];
    for (from, to, e) in cases {
        let doc = good.replace(from, to);
        assert_ne!(doc, good);
        assert_eq!(attest(&doc).err(), Some(e), "{doc}");
    }
    let long_fp = good.replace("sha-256 AB:CD:EF", &"A".repeat(claims::MAX_FP_LEN + 1));
    assert_eq!(attest(&long_fp).err(), Some(JwtError::BadClaim("fp")));
    // aud given as an array passes the audience check but is not the
    // single agent id an attestation names.
    let arr = good.replace(r#""aud":"agent-1""#, r#""aud":["agent-1"]"#);
    assert_eq!(attest(&arr).err(), Some(JwtError::MissingClaim("aud")));

    // Key selection.
    let unknown = r#"{"alg":"ES256","kid":"daemon-2"}"#;
    assert_eq!(
        attest_with(unknown, &good).err(),
        Some(JwtError::UnknownKey)
    );
    let huge_kid = format!(r#"{{"alg":"ES256","kid":"{}"}}"#, "k".repeat(65));
    assert_eq!(
        attest_with(&huge_kid, &good).err(),
        Some(JwtError::UnknownKey)
    );
    assert!(
        attest_with(r#"{"alg":"ES256"}"#, &good).is_ok(),
        "a one-key set serves tokens without kid"
    );
    assert_eq!(
        attest_with(r#"{"alg":"none","kid":"daemon-1"}"#, &good).err(),
        Some(JwtError::AlgNone)
    );
    let two = JWKS.replace(
        "]}",
        &format!(
            ",{}]}}",
            ES_JWK.replace(r#""kty""#, r#""kid":"daemon-2","kty""#)
        ),
    );
    let two = Jwks::parse(&two).unwrap();
    let no_kid = es_token(r#"{"alg":"ES256"}"#, &good);
    assert_eq!(
        jwt::verify_attestation(&no_kid, &two, "agent-1", None, NOW).err(),
        Some(JwtError::UnknownKey)
    );
    assert!(jwt::verify_attestation(&token, &two, "agent-1", None, NOW).is_ok());
}

// ---------------------------------------------------------------- keys

/// Open registration reads the key from the header. Only an EC key may come
/// from there: `ec_public_from_jwk` refuses anything else, whereas the
/// general `Key::from_jwk_obj` would happily build an HS256 key from an
/// attacker's `oct` JWK (callers must use the former, or match `Key::Es256`).
#[test]
fn header_jwk_must_be_an_ec_key() {
    let c = bot_claims(N, N + 300);
    let attacker_secret = [9u8; 32];
    let header = format!(
        r#"{{"alg":"HS256","jwk":{{"kty":"oct","k":"{}"}}}}"#,
        b64e(&attacker_secret)
    );
    let token = hs_raw(
        &b64e(header.as_bytes()),
        &b64e(c.as_bytes()),
        &attacker_secret,
    );
    let mut scratch = Scratch::new();
    let h = jwt::decode_header_unverified(&token, &mut scratch).unwrap();
    let jwk = h.jwk.unwrap();
    assert_eq!(
        jwt::key::ec_public_from_jwk(&jwk).err(),
        Some(JwtError::BadKey)
    );
    assert!(matches!(Key::from_jwk_obj(jwk), Ok(Key::Hs256(_))));
    // An EC key with the private part in the header: only the public part is used.
    let with_d = format!(
        r#"{{"alg":"ES256","jwk":{}}}"#,
        ES_JWK.replace('}', &format!(r#","d":"{ES_D}"}}"#))
    );
    let token = es_token(&with_d, &c);
    let mut scratch = Scratch::new();
    let h = jwt::decode_header_unverified(&token, &mut scratch).unwrap();
    let key = jwt::key::ec_public_from_jwk(&h.jwk.unwrap())
        .map(Key::Es256)
        .unwrap();
    assert_eq!(key, es());
    assert_eq!(verify(&token, &key), Ok(c));
}

#[test]
fn hostile_jwks_and_jwk() {
    let x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    let y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
    let ec = |x: &str, y: &str, extra: &str| {
        format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{y}"{extra}}}"#)
    };
    assert_eq!(Key::from_jwk(&ec(x, y, "")), Ok(es()));
    let zero = b64e(&[0u8; 32]);
    let bad_key = Err(JwtError::BadKey);
    for jwk in [
        ec(&zero, &zero, ""),            // not on the curve (and not the identity)
        ec(x, x, ""),                    // off curve
        ec(&x[..42], y, ""),             // 31 bytes
        ec(&format!("{x}A"), y, ""),     // length 1 mod 4
        ec(&format!("AA{x}"), y, ""),    // 33 bytes
        ec(&format!("{x}="), y, ""),     // padded
        ec(x, &y.replace('_', "/"), ""), // standard alphabet
        ec(&format!("\\u0066{}", &x[1..]), y, ""), // escaped (same decoded text)
        ec(x, y, r#","use":"enc""#),
        ec(x, y, r#","alg":"ES384""#),
        ec(x, y, r#","alg":"HS256""#),
        ec(x, y, "").replace("P-256", "P-384"),
        ec(x, y, "").replace("P-256", "p-256"),
        ec(x, y, "").replace(r#""EC""#, r#""ec""#),
        ec(x, y, "").replace(r#""EC""#, r#""RSA""#),
        r#"{"kty":"oct","k":"c2hvcnQ","alg":"ES256"}"#.to_owned(),
        format!(r#"{{"kty":"oct","k":"{}"}}"#, b64e(&[1u8; 129])),
        format!(r#"{{"kty":"oct","k":"{}="}}"#, b64e(&[1u8; 32])),
        format!(r#"{{"kty":"oct","k":"\u0041{}"}}"#, &b64e(&[0u8; 33])[1..]),
        format!(r#"{{"kty":"oct","k":"{}","use":"enc"}}"#, b64e(&[1u8; 32])),
    ] {
        assert_eq!(Key::from_jwk(&jwk), bad_key, "{jwk}");
    }
    assert_eq!(
        Key::from_jwk(r#"{"kty":"oct","k":"c2hvcnQ"}"#),
        Err(JwtError::WeakKey)
    );
    assert_eq!(
        Key::from_jwk(&format!(r#"{{"kty":"oct","k":"{}"}}"#, b64e(&[1u8; 31]))),
        Err(JwtError::WeakKey)
    );
    assert!(
        Key::from_jwk(&format!(
            r#"{{"kty":"oct","k":"{}","alg":"HS256","use":"sig"}}"#,
            b64e(&[1u8; 32])
        ))
        .is_ok()
    );
    assert!(Key::from_jwk(&format!(r#"{{"kty":"oct","k":"{}"}}"#, b64e(&[1u8; 128]))).is_ok());
    let json_errors = [
        ("", JsonError::Eof),
        ("{}", JsonError::Missing("kty")),
        (r#"{"kty":1}"#, JsonError::WrongType("kty")),
        (
            r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"}"#,
            JsonError::Missing("y"),
        ),
        (
            r#"{"kty":"EC","crv":"P-256","y":"AA"}"#,
            JsonError::Missing("x"),
        ),
        (
            r#"{"kty":"EC","x":"AA","y":"AA"}"#,
            JsonError::Missing("crv"),
        ),
        (
            r#"{"kty":"EC","crv":"P-256","x":1,"y":"AA"}"#,
            JsonError::WrongType("x"),
        ),
        (r#"{"kty":"oct"}"#, JsonError::Missing("k")),
        (r#"{"kty":"oct","k":null}"#, JsonError::WrongType("k")),
        ("[]", JsonError::WrongType("(document)")),
        (r#"{"kty":"EC","use":1}"#, JsonError::WrongType("use")),
    ];
    for (jwk, e) in json_errors {
        assert_eq!(Key::from_jwk(jwk), Err(JwtError::BadJson(e)), "{jwk}");
    }
    assert_eq!(Key::es256_sec1(&[]), bad_key);
    assert_eq!(Key::es256_sec1(&[0]), bad_key);
    assert_eq!(Key::es256_sec1(&[4; 65]), bad_key);
    assert_eq!(Key::es256_sec1(&es_sec1(false)[..64]), bad_key);
    assert_eq!(Key::es256_sec1(&es_sec1(true)), Ok(es()));

    // JWKS documents.
    let missing = Some(JwtError::BadJson(JsonError::Missing("keys")));
    assert_eq!(Jwks::parse("{}").err(), missing);
    assert_eq!(
        Jwks::parse(r#"{"keys":{}}"#).err(),
        Some(JwtError::BadJson(JsonError::WrongType("keys")))
    );
    assert_eq!(
        Jwks::parse(r#"[{"keys":[]}]"#).err(),
        Some(JwtError::BadJson(JsonError::WrongType("(document)")))
    );
    let empty = Jwks::parse(r#"{"keys":[]}"#).unwrap();
    assert_eq!(empty.find_es256(None), Err(JwtError::UnknownKey));
    assert_eq!(empty.find_es256(Some("a")), Err(JwtError::UnknownKey));
    // Non-object entries are skipped; a matching but unusable key is BadKey.
    let set = format!(
        r#"{{"keys":[1,"x",null,[],{}]}}"#,
        ec(x, y, r#","kid":"a""#)
    );
    let set = Jwks::parse(&set).unwrap();
    assert_eq!(set.find_es256(Some("a")), Ok(es()));
    assert_eq!(set.find_es256(None), Ok(es()));
    let set = format!(r#"{{"keys":[{}]}}"#, ec(x, x, r#","kid":"a""#));
    assert_eq!(Jwks::parse(&set).unwrap().find_es256(Some("a")), bad_key);
    let set = format!(
        r#"{{"keys":[{{"kty":"oct","kid":"a","k":"{}"}}]}}"#,
        b64e(SECRET)
    );
    assert_eq!(Jwks::parse(&set).unwrap().find_es256(Some("a")), bad_key);
    let set = r#"{"keys":[{"kid":5}]}"#;
    assert_eq!(
        Jwks::parse(set).unwrap().find_es256(Some("a")),
        Err(JwtError::BadJson(JsonError::WrongType("kid")))
    );
}

// ---------------------------------------------------------------- random input

/// xorshift64*: a fixed-seed generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const INTERESTING: &[&[u8]] = &[
    b".",
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"\\u",
    b"\\ud800",
    b"\\udc00",
    b"e",
    b"-",
    b"0",
    b"9",
    b"\"alg\"",
    b"\"HS256\"",
    b"\"ES256\"",
    b"\"none\"",
    b"\"exp\"",
    b"\"kty\"",
    b"\"EC\"",
    b"\"keys\"",
    b"=",
    b"+",
    b"/",
    b"_",
    b" ",
    b"\n",
    b"\x00",
    b"\xff",
    b"\xc3\xa9",
    b"eyJ",
    b"true",
    b"null",
    b"1e999",
    b"-0",
];

fn random_input(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = match rng.below(4) {
        // Uniform bytes.
        0 => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
        // Structured noise.
        1 => {
            let mut v = Vec::new();
            for _ in 0..rng.below(40) {
                v.extend_from_slice(INTERESTING[rng.below(INTERESTING.len())]);
            }
            v
        }
        // A real token or document, mutated below.
        _ => seeds[rng.below(seeds.len())].clone(),
    };
    for _ in 0..=rng.below(4) {
        if out.is_empty() {
            break;
        }
        let at = rng.below(out.len());
        match rng.below(5) {
            0 => out[at] = rng.next() as u8,
            1 => out[at] ^= 1 << rng.below(8),
            2 => {
                out.remove(at);
            }
            3 => out.insert(at, b"A.{}\"\\=\xff"[rng.below(8)]),
            _ => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                out.splice(at..at, piece.iter().copied());
            }
        }
    }
    out
}

#[test]
fn random_bytes_never_panic() {
    const ROUNDS: usize = 50_000;
    let hs_key = hs();
    let es_key = es();
    let jwks = Jwks::parse(JWKS).unwrap();
    let good = bot_claims(N, N + 300);
    let hs_good = hs_token(HS, &good);
    let att = attestation_claims(N, N + 60);
    // ES256 verification costs ~3 ms in a debug build, so ES256 tokens are a
    // small share of the seeds; HS256 mutants carry the structure cases.
    let hs_att = hs_token(
        r#"{"alg":"HS256","kid":"daemon-1","jwk":{"kty":"EC"}}"#,
        &att,
    );
    let seeds: Vec<Vec<u8>> = vec![
        hs_good.clone().into_bytes(),
        hs_good.clone().into_bytes(),
        hs_good.clone().into_bytes(),
        hs_att.clone().into_bytes(),
        JWKS.as_bytes().to_vec(),
        ES_JWK.as_bytes().to_vec(),
        good.clone().into_bytes(),
        att.clone().into_bytes(),
    ];
    let es_good = es_token(ES, &att);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut accepted, mut es_checked) = (0usize, 0usize);
    let mut out = [0u8; 512];
    for round in 0..ROUNDS {
        let input = if round % 97 == 0 {
            es_checked += 1;
            let mut t = es_good.clone().into_bytes();
            let at = rng.below(t.len());
            t[at] = b"AQgw_-.="[rng.below(8)];
            t
        } else {
            random_input(&mut rng, &seeds)
        };
        let text = String::from_utf8_lossy(&input);
        let _ = json::parse(&text);
        let _ = b64::decode(&input, &mut out);
        let _ = claims::validate(&text, &claims::Policy::default(), NOW);
        let _ = claims::validate(
            &text,
            &jwt::HumanAttestation::policy("agent-1", Some("botcalld"), 60),
            NOW,
        );
        let _ = Key::from_jwk(&text);
        if let Ok(set) = Jwks::parse(&text) {
            let _ = set.find_es256(None);
            let _ = set.find_es256(Some("daemon-1"));
        }
        let _ = header_of(&text);
        for key in [&hs_key, &es_key] {
            if let Ok(payload) = verify(&text, key) {
                // Only unmodified tokens can verify: the mutation was a no-op
                // or restored the original byte.
                assert!(
                    text == hs_good || text == hs_att || text == es_good,
                    "forged token verified: {text:?} -> {payload}"
                );
                accepted += 1;
            }
        }
        let _ = jwt::verify_bot_auth(&text, &hs_key, 60, Some("botcalld"), NOW);
        let _ = jwt::verify_attestation(&text, &jwks, "agent-1", None, NOW);
    }
    println!(
        "random inputs: {ROUNDS} ({es_checked} ES256 mutants), {accepted} unmodified tokens verified"
    );
}
