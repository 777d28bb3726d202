//! Attestation cases shared by the host test (C ABI vs Rust API) and the
//! firmware test (the thumbv7em build under qemu-arm): good attestations,
//! tampered ones (payload, signature, header, times, audience, keys), and
//! Wycheproof-derived ones — each ECDSA P-256 vector's public key as the
//! daemon's JWKS and its signature on an attestation
//! (botcall-core/tests/data, the vectors botcall-core's own tests use).
#![allow(dead_code)]

use base64ct::{Base64UrlUnpadded, Encoding};
use botcall_core::jwt::{self, EcSigningKey, HeaderOpts, SigningKey};
use serde_json::Value;

pub const NOW: u64 = 1_800_000_000;
pub const AGENT: &str = "ec-bot";
pub const FP: &str = "sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9";

/// One verification: the bytes both sides get, and what must come out.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub token: String,
    pub jwks: String,
    pub agent: String,
    pub now: u64,
    /// The verdict the case is built to have (`None`: whatever the Rust API
    /// says; used for Wycheproof vectors, which must all be refused).
    pub want: Option<&'static str>,
}

fn key(seed: u8) -> SigningKey {
    let mut d = [seed; 32];
    d[0] = 1;
    SigningKey::Es256(EcSigningKey::from_slice(&d).unwrap())
}

/// The JWKS of `key(seed)`, kid `k<seed>`.
pub fn jwks(seed: u8) -> String {
    let SigningKey::Es256(sk) = key(seed) else {
        unreachable!()
    };
    let mut v = Vec::new();
    let mut w = botcall_core::json::Writer::new(&mut v);
    w.begin_obj()
        .unwrap()
        .key("keys")
        .unwrap()
        .begin_arr()
        .unwrap();
    jwt::key::write_public_jwk(&mut w, sk.verifying_key(), Some(&format!("k{seed}"))).unwrap();
    w.end_arr().unwrap().end_obj().unwrap();
    String::from_utf8(v).unwrap()
}

fn claims(aud: &str, hv: &str, iat: u64, exp: u64) -> String {
    format!(
        r#"{{"iss":"botcalld","aud":"{aud}","sub":"s-caller","call_id":"c-1","hv":"{hv}","fp":"{FP}","iat":{iat},"exp":{exp}}}"#
    )
}

/// Signs `claims` with `key(seed)` under kid `kid`.
fn sign(seed: u8, kid: &str, claims: &str) -> String {
    let opts = HeaderOpts {
        kid: Some(kid),
        embed_jwk: false,
        typ: None,
    };
    let mut out = [0u8; 2048];
    jwt::sign_claims(&key(seed), opts, claims, &mut out)
        .unwrap()
        .to_string()
}

fn good() -> String {
    sign(7, "k7", &claims(AGENT, "pow", NOW - 5, NOW + 55))
}

fn with_segment(token: &str, i: usize, seg: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[i] = seg;
    parts.join(".")
}

fn case(name: &str, token: String, jwks: String, want: Option<&'static str>) -> Case {
    Case {
        name: name.into(),
        token,
        jwks,
        agent: AGENT.into(),
        now: NOW,
        want,
    }
}

/// The good and tampered cases.
pub fn tampered() -> Vec<Case> {
    let j = jwks(7);
    let t = good();
    let mut v = vec![
        case("good, hv=pow", t.clone(), j.clone(), Some("ok")),
        case(
            "good, hv=none",
            sign(7, "k7", &claims(AGENT, "none", NOW - 5, NOW + 55)),
            j.clone(),
            Some("ok"),
        ),
        case(
            "signed by another key under the daemon's kid",
            sign(9, "k7", &claims(AGENT, "pow", NOW - 5, NOW + 55)),
            j.clone(),
            Some("forged"),
        ),
        case(
            "a kid the JWKS does not have",
            sign(9, "k9", &claims(AGENT, "pow", NOW - 5, NOW + 55)),
            j.clone(),
            Some("unknown_key"),
        ),
        case(
            "expired",
            sign(7, "k7", &claims(AGENT, "pow", NOW - 300, NOW - 200)),
            j.clone(),
            Some("expired"),
        ),
        case(
            "issued in the future",
            sign(7, "k7", &claims(AGENT, "pow", NOW + 300, NOW + 360)),
            j.clone(),
            Some("not_yet_valid"),
        ),
        case(
            "lives too long",
            sign(7, "k7", &claims(AGENT, "pow", NOW - 5, NOW + 3600)),
            j.clone(),
            Some("lifetime_too_long"),
        ),
        case(
            "for another agent",
            sign(7, "k7", &claims("other-bot", "pow", NOW - 5, NOW + 55)),
            j.clone(),
            Some("wrong_agent"),
        ),
        case(
            "a JWKS that is not JSON",
            t.clone(),
            "{\"keys\":[".into(),
            Some("bad_jwks"),
        ),
        case(
            "a JWKS with a key off the curve",
            t.clone(),
            j.replace("\"x\":\"", "\"x\":\"A"),
            Some("bad_jwks"),
        ),
        case(
            "two segments",
            t.rsplit_once('.').unwrap().0.to_string(),
            j.clone(),
            Some("attestation_malformed"),
        ),
        case(
            "empty",
            String::new(),
            j.clone(),
            Some("attestation_malformed"),
        ),
    ];
    // The payload swapped for another audience's, the signature kept.
    let other = sign(7, "k7", &claims("ec-bot", "none", NOW - 5, NOW + 55));
    let payload = other.split('.').nth(1).unwrap();
    v.push(case(
        "payload swapped",
        with_segment(&t, 1, payload),
        j.clone(),
        Some("forged"),
    ));
    // One character of the payload changed (still valid base64url).
    let mut p: Vec<u8> = t.split('.').nth(1).unwrap().bytes().collect();
    p[10] = if p[10] == b'A' { b'B' } else { b'A' };
    v.push(case(
        "a payload byte flipped",
        with_segment(&t, 1, std::str::from_utf8(&p).unwrap()),
        j.clone(),
        None,
    ));
    // The signature's last byte changed.
    let sig = Base64UrlUnpadded::decode_vec(t.split('.').nth(2).unwrap()).unwrap();
    let mut s2 = sig.clone();
    s2[63] ^= 1;
    v.push(case(
        "a signature bit flipped",
        with_segment(&t, 2, &Base64UrlUnpadded::encode_string(&s2)),
        j.clone(),
        Some("forged"),
    ));
    v.push(case(
        "a signature cut short",
        with_segment(&t, 2, &Base64UrlUnpadded::encode_string(&sig[..63])),
        j.clone(),
        Some("forged"),
    ));
    // alg none, and alg HS256 with the JWKS's key as the secret.
    for (name, alg) in [("alg none", "none"), ("alg HS256", "HS256")] {
        let h = Base64UrlUnpadded::encode_string(
            format!(r#"{{"alg":"{alg}","kid":"k7","typ":"JWT"}}"#).as_bytes(),
        );
        v.push(case(
            name,
            with_segment(&t, 0, &h),
            j.clone(),
            Some("forged"),
        ));
    }
    v
}

/// One case per vector of Wycheproof's ecdsa_secp256r1_sha256_p1363: the
/// vector's public key is the JWKS, its signature signs an attestation
/// (which it never signed: every one must be refused, by both sides alike).
pub fn wycheproof() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../botcall-core/tests/data/ecdsa_secp256r1_sha256_p1363_test.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut v = Vec::new();
    for g in doc["testGroups"].as_array().unwrap() {
        let mut jwk = g["publicKeyJwk"].clone();
        jwk["kid"] = "wp".into();
        let jwks = format!(r#"{{"keys":[{jwk}]}}"#);
        let signed = sign(7, "wp", &claims(AGENT, "pow", NOW - 5, NOW + 55));
        for t in g["tests"].as_array().unwrap() {
            let hex = t["sig"].as_str().unwrap();
            let sig: Vec<u8> = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            v.push(case(
                &format!(
                    "wycheproof tcId {} ({})",
                    t["tcId"],
                    t["comment"].as_str().unwrap_or("")
                ),
                with_segment(&signed, 2, &Base64UrlUnpadded::encode_string(&sig)),
                jwks.clone(),
                None,
            ));
        }
    }
    assert_eq!(v.len() as u64, doc["numberOfTests"].as_u64().unwrap());
    v
}

pub fn all() -> Vec<Case> {
    let mut v = tampered();
    v.extend(wycheproof());
    v
}

/// The Rust API's verdict, as a status name.
pub fn rust_verdict(c: &Case) -> &'static str {
    match botcall_sdk::verify_human_attestation(&c.token, &c.jwks, &c.agent, c.now) {
        Ok(_) => "ok",
        Err(e) => {
            let s = botcall::attestation_status(e);
            botcall::status_name(s).to_str().unwrap()
        }
    }
}
