//! Project Wycheproof vectors (Apache-2.0; see tests/data/SOURCE.md) through
//! the public signature primitives `jwt::verify::es256_verify` and
//! `jwt::verify::hs256_verify`.
//!
//! - Every `valid` vector is accepted and every `invalid` one rejected.
//! - `acceptable` (none in these files): rejected. JWS gives ES256 exactly one
//!   signature encoding (64-byte r||s) and HS256 one tag length (32 bytes);
//!   Wycheproof's `acceptable` marks legacy leniency we do not offer.
//! - HS256 in JWS uses the full 32-byte tag: vectors with a shorter `tagSize`
//!   must be refused with `SignatureLength`, whatever their `result`.
//!
//! Run with `--nocapture` to see the counts.

use botcall_core::jwt::verify::{es256_verify, hs256_verify};
use botcall_core::jwt::{JwtError, Key};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` missing in {v}"))
}

fn groups(doc: &Value) -> &Vec<Value> {
    doc["testGroups"].as_array().expect("testGroups")
}

fn tests(group: &Value) -> &Vec<Value> {
    group["tests"].as_array().expect("tests")
}

#[derive(Debug, Default)]
struct Counts {
    valid: usize,
    invalid: usize,
    acceptable: usize,
}

impl Counts {
    fn total(&self) -> usize {
        self.valid + self.invalid + self.acceptable
    }
}

#[test]
fn ecdsa_p256_sha256_p1363() {
    let doc = load("ecdsa_secp256r1_sha256_p1363_test.json");
    assert_eq!(doc["algorithm"], "ECDSA");
    let mut n = Counts::default();
    let mut wrong_length = 0;
    let mut failures = Vec::new();
    for g in groups(&doc) {
        assert_eq!(str_of(g, "type"), "EcdsaP1363Verify");
        assert_eq!(str_of(&g["publicKey"], "curve"), "secp256r1");
        assert_eq!(str_of(g, "sha"), "SHA-256");
        let sec1 = hex(str_of(&g["publicKey"], "uncompressed"));
        let key = Key::es256_sec1(&sec1).unwrap_or_else(|e| panic!("public key {e:?}"));
        // The group's JWK must be the same key through our JWK reader.
        if let Some(jwk) = g.get("publicKeyJwk") {
            assert_eq!(
                Key::from_jwk(&jwk.to_string()).as_ref(),
                Ok(&key),
                "JWK of {sec1:02x?}"
            );
        }
        let Key::Es256(vk) = key else { unreachable!() };
        for t in tests(g) {
            let id = t["tcId"].as_u64().unwrap();
            let msg = hex(str_of(t, "msg"));
            let sig = hex(str_of(t, "sig"));
            let got = es256_verify(&vk, &msg, &sig);
            if sig.len() != 64 {
                wrong_length += 1;
            }
            let ok = match str_of(t, "result") {
                "valid" => {
                    n.valid += 1;
                    got.is_ok()
                }
                "invalid" | "acceptable" => {
                    if t["result"] == "invalid" {
                        n.invalid += 1;
                    } else {
                        n.acceptable += 1;
                        println!(
                            "ecdsa acceptable tcId {id} ({}): {got:?}, rejected by policy",
                            str_of(t, "comment")
                        );
                    }
                    let want = if sig.len() == 64 {
                        JwtError::BadSignature
                    } else {
                        JwtError::SignatureLength
                    };
                    got == Err(want)
                }
                r => panic!("tcId {id}: unknown result {r}"),
            };
            if !ok {
                failures.push(format!(
                    "tcId {id} ({}): expected {}, got {got:?}",
                    str_of(t, "comment"),
                    t["result"]
                ));
            }
        }
    }
    println!(
        "wycheproof ecdsa_secp256r1_sha256_p1363: {} cases in {} groups: {} valid accepted, {} invalid rejected \
         ({wrong_length} of them for length), {} acceptable (rejected)",
        n.total(),
        groups(&doc).len(),
        n.valid,
        n.invalid,
        n.acceptable
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(n.total() > 0, "the ECDSA vector file yielded no cases");
    assert_eq!(n.total() as u64, doc["numberOfTests"].as_u64().unwrap());
}

#[test]
fn hmac_sha256() {
    let doc = load("hmac_sha256_test.json");
    assert_eq!(doc["algorithm"], "HMACSHA256");
    let (mut full, mut truncated) = (Counts::default(), Counts::default());
    let (mut weak_keys, mut jws_keys) = (0, 0);
    let mut failures = Vec::new();
    for g in groups(&doc) {
        let tag_size = g["tagSize"].as_u64().unwrap();
        let key_size = g["keySize"].as_u64().unwrap();
        for t in tests(g) {
            let id = t["tcId"].as_u64().unwrap();
            let key = hex(str_of(t, "key"));
            let msg = hex(str_of(t, "msg"));
            let tag = hex(str_of(t, "tag"));
            assert_eq!(key.len() as u64 * 8, key_size, "tcId {id}");
            let result = str_of(t, "result");
            let got = hs256_verify(&key, &msg, &tag);
            let counts = if tag_size < 256 {
                &mut truncated
            } else {
                &mut full
            };
            match result {
                "valid" => counts.valid += 1,
                "invalid" => counts.invalid += 1,
                "acceptable" => {
                    counts.acceptable += 1;
                    println!(
                        "hmac acceptable tcId {id} ({}): {got:?}, rejected by policy",
                        str_of(t, "comment")
                    );
                }
                r => panic!("tcId {id}: unknown result {r}"),
            }
            let want = if tag_size < 256 {
                // JWS HS256 carries the whole 32-byte MAC: any shorter tag is
                // refused before the MAC is even computed.
                assert_eq!(tag.len() as u64 * 8, tag_size, "tcId {id}");
                Err(JwtError::SignatureLength)
            } else if result == "valid" {
                Ok(())
            } else if tag.len() == 32 {
                Err(JwtError::BadSignature)
            } else {
                Err(JwtError::SignatureLength)
            };
            if got != want {
                failures.push(format!(
                    "tcId {id} ({}, tagSize {tag_size}): expected {want:?}, got {got:?}",
                    str_of(t, "comment")
                ));
            }
            // As a JWS key: secrets under 32 bytes are refused (RFC 7518 §3.2).
            match Key::hs256(&key) {
                Err(JwtError::WeakKey) => {
                    assert!(key.len() < 32);
                    weak_keys += 1;
                }
                Ok(_) => {
                    assert!(key.len() >= 32);
                    jws_keys += 1;
                }
                Err(e) => assert!(key.len() > 128 && e == JwtError::BadKey, "tcId {id}: {e:?}"),
            }
        }
    }
    println!(
        "wycheproof hmac_sha256: {} cases: tagSize 256: {} valid accepted, {} invalid rejected, {} acceptable (rejected); \
         tagSize < 256: {} refused as SignatureLength ({} valid / {} invalid / {} acceptable in Wycheproof's terms); \
         keys: {jws_keys} usable as HS256 JWS keys, {weak_keys} refused as WeakKey (< 32 bytes)",
        full.total() + truncated.total(),
        full.valid,
        full.invalid,
        full.acceptable,
        truncated.total(),
        truncated.valid,
        truncated.invalid,
        truncated.acceptable
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        full.total() > 0,
        "the HMAC vector file yielded no full-length cases"
    );
    assert!(
        truncated.total() > 0,
        "the HMAC vector file yielded no truncated cases"
    );
    assert_eq!(
        (full.total() + truncated.total()) as u64,
        doc["numberOfTests"].as_u64().unwrap()
    );
}
