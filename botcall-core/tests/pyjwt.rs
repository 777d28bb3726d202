//! Cross-implementation tests against PyJWT (with `cryptography`).
//!
//! The Python side is `tests/pyjwt_helper.py`, run with the interpreter named
//! by `BOTCALL_PYTHON` (default `/tmp/botcall-venv/bin/python`). These tests
//! never install anything: `tests/setup` makes that venv. A missing
//! interpreter or module is a failure with instructions, not a skip.
//! (Needs the `sign` feature, which is on by default.)

#![cfg(feature = "sign")]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use botcall_core::jwt::{self, HeaderOpts, Jwks, JwtError, Key, Scratch, SigningKey};
use serde_json::{Value, json};

const DEFAULT_PYTHON: &str = "/tmp/botcall-venv/bin/python";
const HS_JWK: &str = r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
const ES_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#;
const ES_PUBLIC_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"daemon-1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

/// Runs the helper on `requests` and returns its results (one per request).
fn pyjwt(requests: Value) -> Vec<Value> {
    let python = std::env::var("BOTCALL_PYTHON").unwrap_or_else(|_| DEFAULT_PYTHON.to_owned());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pyjwt_helper.py");
    let hint = "the PyJWT interop tests need Python with PyJWT and cryptography: run `tests/setup` \
                (creates /tmp/botcall-venv) or point BOTCALL_PYTHON at such an interpreter";
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run BOTCALL_PYTHON={python}: {e}\n{hint}"));
    let input = serde_json::to_vec(&requests).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{python} {script} failed ({}):\n{stderr}\n{hint}",
        out.status
    );
    let results: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "helper output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(results.len(), requests.as_array().unwrap().len());
    results
}

fn one(request: Value) -> Value {
    pyjwt(json!([request])).remove(0)
}

fn token_of(v: &Value) -> String {
    v["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {v}"))
        .to_owned()
}

fn jwk(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hs() -> Key {
    Key::from_jwk(HS_JWK).unwrap()
}

fn es() -> Key {
    Key::from_jwk(ES_PUBLIC_JWK).unwrap()
}

fn verify(token: &str, key: &Key) -> Result<String, JwtError> {
    let mut scratch = Scratch::new();
    jwt::verify(token, key, &mut scratch).map(|v| v.payload.to_owned())
}

fn pyjwt_sign(alg: &str, key: &str, claims: Value, headers: Value) -> String {
    token_of(&one(
        json!({"op": "sign", "alg": alg, "key": jwk(key), "claims": claims, "headers": headers}),
    ))
}

/// PyJWT's verdict at the instant `now` (its clock is frozen there, so a
/// slow interpreter start on a busy machine cannot move a token across an edge).
fn pyjwt_verify(alg: &str, key: &str, token: &str, aud: Option<&str>, now: u64) -> Value {
    one(
        json!({"op": "verify", "alg": alg, "key": jwk(key), "token": token, "aud": aud, "leeway": 60,
               "require": ["exp", "sub"], "now": now}),
    )
}

#[test]
fn pyjwt_is_available() {
    let v = one(json!({"op": "version"}));
    println!(
        "PyJWT {} with cryptography {}",
        v["pyjwt"], v["cryptography"]
    );
    assert!(
        v["pyjwt"].as_str().unwrap().starts_with('2'),
        "PyJWT 2.x expected: {v}"
    );
}

#[test]
fn pyjwt_tokens_verify_here() {
    let t = now();
    let claims = json!({"sub": "bot-1", "aud": "botcalld", "iat": t, "exp": t + 300, "jti": "x1"});
    for (alg, key_jwk, key) in [("HS256", HS_JWK, hs()), ("ES256", ES_JWK, es())] {
        let token = pyjwt_sign(alg, key_jwk, claims.clone(), json!({"kid": "k1"}));
        let mut scratch = Scratch::new();
        let v = jwt::verify(&token, &key, &mut scratch)
            .unwrap_or_else(|e| panic!("{alg}: {e:?} for {token}"));
        assert!(v.header.alg.eq_str(alg));
        assert!(v.header.kid.unwrap().eq_str("k1"));
        assert_eq!(serde_json::from_str::<Value>(v.payload).unwrap(), claims);
        let auth = jwt::verify_bot_auth(&token, &key, 60, Some("botcalld"), t).unwrap();
        assert_eq!(auth.agent_id.as_str(), "bot-1");
        assert_eq!((auth.iat, auth.exp), (Some(t as i64), (t + 300) as i64));
    }

    // A human attestation as the daemon would mint it, checked against the JWKS.
    let att = json!({"iss": "botcalld", "aud": "agent-1", "sub": "caller-7", "call_id": "call-42",
                     "hv": "pow", "fp": "sha-256 AB:CD", "iat": t, "exp": t + 60});
    let token = pyjwt_sign("ES256", ES_JWK, att, json!({"kid": "daemon-1"}));
    let jwks = Jwks::parse(JWKS).unwrap();
    let a = jwt::verify_attestation(&token, &jwks, "agent-1", Some("botcalld"), t).unwrap();
    assert_eq!(
        (a.caller.as_str(), a.call_id.as_str(), a.fp.as_str()),
        ("caller-7", "call-42", "sha-256 AB:CD")
    );

    // Open registration: PyJWT embeds the public JWK; the agent id is its
    // RFC 7638 thumbprint, computed independently in Python.
    let public = jwk(ES_PUBLIC_JWK);
    let tp = one(json!({"op": "thumbprint", "jwk": public}))["thumbprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = pyjwt_sign(
        "ES256",
        ES_JWK,
        json!({"sub": tp, "iat": t, "exp": t + 120}),
        json!({"jwk": public}),
    );
    let mut scratch = Scratch::new();
    let h = jwt::decode_header_unverified(&token, &mut scratch).unwrap();
    let key = Key::from_jwk_obj(h.jwk.expect("jwk header")).unwrap();
    let Key::Es256(vk) = &key else {
        panic!("not an EC key")
    };
    assert_eq!(jwt::thumbprint(vk).as_str(), tp);
    assert_eq!(
        jwt::verify_bot_auth(&token, &key, 60, None, t)
            .unwrap()
            .agent_id
            .as_str(),
        tp
    );
}

#[test]
fn our_tokens_verify_in_pyjwt() {
    let t = now();
    let claims =
        json!({"sub": "bot-1", "aud": "botcalld", "iat": t, "exp": t + 300, "n": [1, "two", null]});
    let claims_text = claims.to_string();
    for (alg, key_jwk, public_jwk) in [("HS256", HS_JWK, HS_JWK), ("ES256", ES_JWK, ES_PUBLIC_JWK)]
    {
        let sk = SigningKey::from_jwk(key_jwk).unwrap();
        let opts = HeaderOpts {
            kid: Some("k1"),
            embed_jwk: true,
            typ: None,
        };
        let mut out = [0u8; 1024];
        let token = jwt::sign_claims(&sk, opts, &claims_text, &mut out).unwrap();
        let r = pyjwt_verify(alg, public_jwk, token, Some("botcalld"), t);
        assert_eq!(r["ok"], true, "PyJWT refused our {alg} token: {r}");
        assert_eq!(r["claims"], claims);
        assert_eq!(r["header"]["alg"], alg);
        assert_eq!(r["header"]["kid"], "k1");
        assert_eq!(r["header"]["typ"], "JWT");
        if alg == "ES256" {
            let mut want = jwk(ES_PUBLIC_JWK);
            want["alg"] = json!("ES256");
            want["use"] = json!("sig");
            assert_eq!(r["header"]["jwk"], want);
        }
        // Negative controls: the helper does reject what it should.
        let wrong = pyjwt_verify(alg, public_jwk, token, Some("someone-else"), t);
        assert_eq!(wrong["ok"], false, "{wrong}");
        assert!(
            wrong["error"]
                .as_str()
                .unwrap()
                .starts_with("InvalidAudienceError"),
            "{wrong}"
        );
    }
    let sk = SigningKey::from_jwk(HS_JWK).unwrap();
    let mut out = [0u8; 1024];
    let token = jwt::sign_claims(&sk, HeaderOpts::default(), &claims_text, &mut out).unwrap();
    let other = r#"{"kty":"oct","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
    let r = pyjwt_verify("HS256", other, token, Some("botcalld"), t);
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .starts_with("InvalidSignatureError"),
        "{r}"
    );
}

#[test]
fn pyjwt_made_attacks_are_refused() {
    let t = now();
    let claims = json!({"sub": "bot-1", "aud": "botcalld", "iat": t, "exp": t + 300});
    let public = one(json!({"op": "public", "key": jwk(ES_JWK)}));

    // alg none, as PyJWT writes it: an empty signature segment.
    let none = token_of(&one(
        json!({"op": "sign", "alg": "none", "key": null, "claims": claims}),
    ));
    assert!(none.ends_with('.'), "{none}");
    for key in [hs(), es()] {
        assert_eq!(verify(&none, &key), Err(JwtError::Malformed));
        // With something in the signature segment, the header check answers.
        assert_eq!(verify(&format!("{none}AAAA"), &key), Err(JwtError::AlgNone));
        assert_eq!(
            jwt::verify_bot_auth(&format!("{none}AAAA"), &key, 60, None, t).err(),
            Some(JwtError::AlgNone)
        );
    }

    // Key confusion: HS256 "signed" with the EC public key's bytes.
    let mut forged = Vec::new();
    for secret in [
        hex_of(public["pem"].as_str().unwrap().as_bytes()),
        public["sec1_hex"].as_str().unwrap().to_owned(),
        public["sec1_compressed_hex"].as_str().unwrap().to_owned(),
    ] {
        let r = one(
            json!({"op": "hmac_raw", "claims": claims, "secret_hex": secret, "headers": {"kid": "daemon-1"}}),
        );
        forged.push(token_of(&r));
    }
    // PyJWT itself signs with the raw SEC1 bytes (it refuses PEM as an HMAC secret).
    forged.push(token_of(&one(
        json!({"op": "sign", "alg": "HS256", "claims": claims, "headers": {"kid": "daemon-1"},
        "key": {"kty": "oct", "k": b64u(&hex(public["sec1_hex"].as_str().unwrap()))}}),
    )));
    let jwks = Jwks::parse(JWKS).unwrap();
    for token in &forged {
        assert_eq!(verify(token, &es()), Err(JwtError::AlgMismatch), "{token}");
        assert_eq!(
            jwt::verify_bot_auth(token, &es(), 60, None, t).err(),
            Some(JwtError::AlgMismatch)
        );
        assert_eq!(
            jwt::verify_attestation(token, &jwks, "agent-1", None, t).err(),
            Some(JwtError::AlgMismatch)
        );
    }

    for (alg, key_jwk, public_jwk, key) in [
        ("HS256", HS_JWK, HS_JWK, hs()),
        ("ES256", ES_JWK, ES_PUBLIC_JWK, es()),
    ] {
        // Expired beyond the 60 s leeway (PyJWT, with the same leeway, agrees).
        let expired = pyjwt_sign(
            alg,
            key_jwk,
            json!({"sub": "bot-1", "iat": t - 300, "exp": t - 61}),
            json!({}),
        );
        assert_eq!(
            jwt::verify_bot_auth(&expired, &key, 60, None, t).err(),
            Some(JwtError::Expired)
        );
        let r = pyjwt_verify(alg, public_jwk, &expired, None, t);
        assert!(
            r["error"]
                .as_str()
                .unwrap()
                .starts_with("ExpiredSignatureError"),
            "{r}"
        );
        // ... and inside it, accepted by both (both judge at the instant t).
        let late = pyjwt_sign(
            alg,
            key_jwk,
            json!({"sub": "bot-1", "iat": t - 300, "exp": t - 50}),
            json!({}),
        );
        assert!(jwt::verify_bot_auth(&late, &key, 60, None, t).is_ok());
        let r = pyjwt_verify(alg, public_jwk, &late, None, t);
        assert_eq!(r["ok"], true, "{r}");

        // Wrong audience.
        let other_aud = pyjwt_sign(
            alg,
            key_jwk,
            json!({"sub": "bot-1", "aud": "someone-else", "exp": t + 300}),
            json!({}),
        );
        assert_eq!(
            jwt::verify_bot_auth(&other_aud, &key, 60, Some("botcalld"), t).err(),
            Some(JwtError::WrongAudience)
        );

        // Longer-lived than BotAuth allows: PyJWT has no such rule, we do.
        let long = pyjwt_sign(
            alg,
            key_jwk,
            json!({"sub": "bot-1", "iat": t, "exp": t + 3600}),
            json!({}),
        );
        let r = pyjwt_verify(alg, public_jwk, &long, None, t);
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(
            jwt::verify_bot_auth(&long, &key, 60, None, t).err(),
            Some(JwtError::LifetimeTooLong)
        );

        // Swapped payload: header and signature of one token, payload of another.
        let a = pyjwt_sign(
            alg,
            key_jwk,
            json!({"sub": "bot-1", "exp": t + 300}),
            json!({}),
        );
        let b = pyjwt_sign(
            alg,
            key_jwk,
            json!({"sub": "admin", "exp": t + 300}),
            json!({}),
        );
        let (ah, _, asig) = split3(&a);
        let (_, bp, _) = split3(&b);
        let swapped = format!("{ah}.{bp}.{asig}");
        assert_eq!(verify(&swapped, &key), Err(JwtError::BadSignature));
        assert_eq!(
            jwt::verify_bot_auth(&swapped, &key, 60, None, t).err(),
            Some(JwtError::BadSignature)
        );
        let r = pyjwt_verify(alg, public_jwk, &swapped, None, t);
        assert!(
            r["error"]
                .as_str()
                .unwrap()
                .starts_with("InvalidSignatureError"),
            "{r}"
        );
    }
}

fn split3(token: &str) -> (&str, &str, &str) {
    let mut it = token.split('.');
    let parts = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    assert!(it.next().is_none());
    parts
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn b64u(bytes: &[u8]) -> String {
    let mut out = vec![0u8; botcall_core::b64::encoded_len(bytes.len())];
    botcall_core::b64::encode(bytes, &mut out)
        .unwrap()
        .to_owned()
}
