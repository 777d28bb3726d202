//! RFC 7515 appendix A examples (A.1 HS256, A.3 ES256), tampering, and
//! sign-then-verify round trips.

use botcall_core::b64;
use botcall_core::jwt::{self, JwtError, Key, Scratch, claims};

/// RFC 7515 A.1.1: the JWS Protected Header, bytes exactly as in the RFC (CRLF).
const A1_HEADER: &str = "{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}";
/// RFC 7515 A.1.1: the JWS Payload.
const A1_PAYLOAD: &str =
    "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";
/// RFC 7515 A.1.1: the symmetric key.
const A1_JWK: &str = r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
/// RFC 7515 A.1.1: the complete JWS Compact Serialization.
const A1_TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9\
    .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
    .dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// RFC 7515 A.3.1: the JWS Protected Header.
const A3_HEADER: &str = r#"{"alg":"ES256"}"#;
/// RFC 7515 A.3.1: the P-256 key (with the private `d`).
const A3_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#;
/// RFC 7515 A.3.1: the complete JWS Compact Serialization (payload as A.1).
const A3_TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9\
    .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
    .DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
/// RFC 7638 thumbprint of the A.3 key (SHA-256 of its canonical public JWK).
const A3_THUMBPRINT: &str = "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U";

const A1_EXP: u64 = 1_300_819_380;

fn a1_key() -> Key {
    Key::from_jwk(A1_JWK).unwrap()
}

fn a3_key() -> Key {
    // Key::from_jwk ignores the private `d`: this is the public key.
    Key::from_jwk(A3_JWK).unwrap()
}

fn verify(token: &str, key: &Key) -> Result<String, JwtError> {
    let mut scratch = Scratch::new();
    jwt::verify(token, key, &mut scratch).map(|v| v.payload.to_owned())
}

fn b64d(s: &str) -> Vec<u8> {
    let mut out = vec![0u8; b64::decoded_len(s.len())];
    let n = b64::decode(s.as_bytes(), &mut out).unwrap().len();
    out.truncate(n);
    out
}

fn b64e(bytes: &[u8]) -> String {
    let mut out = vec![0u8; b64::encoded_len(bytes.len())];
    b64::encode(bytes, &mut out).unwrap().to_owned()
}

fn segments(token: &str) -> [String; 3] {
    let v: Vec<&str> = token.split('.').collect();
    assert_eq!(v.len(), 3);
    [v[0].to_owned(), v[1].to_owned(), v[2].to_owned()]
}

/// `token` with byte `at` of the *decoded* segment `seg` replaced by `to`.
fn tamper_decoded(token: &str, seg: usize, at: usize, to: u8) -> String {
    let mut s = segments(token);
    let mut bytes = b64d(&s[seg]);
    assert_ne!(bytes[at], to, "not a change");
    bytes[at] = to;
    s[seg] = b64e(&bytes);
    s.join(".")
}

#[test]
fn a1_segments_are_the_rfc_bytes() {
    let s = segments(A1_TOKEN);
    assert_eq!(b64d(&s[0]), A1_HEADER.as_bytes());
    assert_eq!(b64d(&s[1]), A1_PAYLOAD.as_bytes());
    assert_eq!(b64d(&s[2]).len(), 32);
    let s = segments(A3_TOKEN);
    assert_eq!(b64d(&s[0]), A3_HEADER.as_bytes());
    assert_eq!(b64d(&s[2]).len(), 64);
}

#[test]
fn a1_hs256_verifies_with_the_a1_jwk() {
    let key = a1_key();
    assert_eq!(key.alg(), jwt::Alg::Hs256);
    let mut scratch = Scratch::new();
    let v = jwt::verify(A1_TOKEN, &key, &mut scratch).unwrap();
    assert!(v.header.alg.eq_str("HS256"));
    assert!(v.header.typ.unwrap().eq_str("JWT"));
    assert!(v.header.kid.is_none() && v.header.jwk.is_none());
    assert_eq!(v.payload, A1_PAYLOAD);

    // The claims layer reads it at its own time (exp is in 2011).
    let c = claims::validate(v.payload, &claims::Policy::default(), A1_EXP).unwrap();
    assert!(c.iss.unwrap().eq_str("joe"));
    assert_eq!(c.exp, Some(1_300_819_380));
    assert_eq!(c.obj.opt_bool("http://example.com/is_root"), Ok(Some(true)));
    let joe = claims::Policy {
        iss: Some("joe"),
        ..Default::default()
    };
    // Valid strictly before exp + leeway (RFC 7519 §4.1.4).
    assert!(claims::validate(v.payload, &joe, A1_EXP + 59).is_ok());
    assert_eq!(
        claims::validate(v.payload, &joe, A1_EXP + 60).err(),
        Some(JwtError::Expired)
    );
}

#[test]
fn a3_es256_verifies_with_the_a3_jwk() {
    let key = a3_key();
    assert_eq!(key.alg(), jwt::Alg::Es256);
    let mut scratch = Scratch::new();
    let v = jwt::verify(A3_TOKEN, &key, &mut scratch).unwrap();
    assert!(v.header.alg.eq_str("ES256"));
    assert!(v.header.typ.is_none());
    assert_eq!(v.payload, A1_PAYLOAD);
    assert!(claims::validate(v.payload, &claims::Policy::default(), A1_EXP).is_ok());
    // The same key as SEC1 bytes.
    let Key::Es256(vk) = &key else { unreachable!() };
    let sec1 = vk.to_sec1_point(false);
    assert_eq!(
        verify(A3_TOKEN, &Key::es256_sec1(sec1.as_bytes()).unwrap()).unwrap(),
        A1_PAYLOAD
    );
    assert_eq!(jwt::thumbprint(vk).as_str(), A3_THUMBPRINT);
}

#[test]
fn keys_of_the_other_type_are_refused() {
    assert_eq!(verify(A1_TOKEN, &a3_key()), Err(JwtError::AlgMismatch));
    assert_eq!(verify(A3_TOKEN, &a1_key()), Err(JwtError::AlgMismatch));
    let other_secret = Key::hs256(&[7u8; 32]).unwrap();
    assert_eq!(verify(A1_TOKEN, &other_secret), Err(JwtError::BadSignature));
}

#[test]
fn one_changed_byte_in_each_decoded_segment() {
    let (hs, es) = (a1_key(), a3_key());
    // Header: a still-valid header ("JWT" -> "JWS") no longer matches the MAC.
    let at = A1_HEADER.find("JWT").unwrap() + 2;
    assert_eq!(
        verify(&tamper_decoded(A1_TOKEN, 0, at, b'S'), &hs),
        Err(JwtError::BadSignature)
    );
    // {"alg":"ES256"} has no byte to change that keeps alg: the header checks,
    // which run before the signature, say what broke.
    let at = A3_HEADER.find("ES256").unwrap() + 4;
    assert_eq!(
        verify(&tamper_decoded(A3_TOKEN, 0, at, b'7'), &es),
        Err(JwtError::AlgMismatch)
    );
    let at = A3_HEADER.len() - 1;
    assert!(matches!(
        verify(&tamper_decoded(A3_TOKEN, 0, at, b']'), &es),
        Err(JwtError::BadJson(_))
    ));
    let at = A3_HEADER.find("ES256").unwrap() + 1;
    assert!(matches!(
        verify(&tamper_decoded(A3_TOKEN, 0, at, b'\xff'), &es),
        Err(JwtError::BadJson(_))
    ));
    // Payload: "joe" -> "jod".
    let at = A1_PAYLOAD.find("joe").unwrap() + 2;
    assert_eq!(
        verify(&tamper_decoded(A1_TOKEN, 1, at, b'd'), &hs),
        Err(JwtError::BadSignature)
    );
    assert_eq!(
        verify(&tamper_decoded(A3_TOKEN, 1, at, b'd'), &es),
        Err(JwtError::BadSignature)
    );
    // Signature: every byte position, one bit flipped.
    for (token, key, len) in [(A1_TOKEN, &hs, 32), (A3_TOKEN, &es, 64)] {
        let sig = b64d(&segments(token)[2]);
        assert_eq!(sig.len(), len);
        for (at, byte) in sig.iter().enumerate() {
            let t = tamper_decoded(token, 2, at, byte ^ 0x01);
            assert_eq!(
                verify(&t, key),
                Err(JwtError::BadSignature),
                "sig byte {at}"
            );
        }
    }
}

/// Single-character substitutions in the token text are refused, each with
/// the error its segment allows: every substitution for HS256 (A.1), and for
/// ES256 (A.3; ~3 ms per verification in a debug build) every foreign
/// character and three alphabet characters per position.
#[test]
fn one_changed_character_anywhere() {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const FOREIGN: &[u8] = b"=+/ .\n";
    let mut checked = 0usize;
    for (token, key, per_position) in [(A1_TOKEN, a1_key(), 64), (A3_TOKEN, a3_key(), 3)] {
        let seg_of = |i: usize| token[..i].matches('.').count();
        for (i, orig) in token.bytes().enumerate() {
            if orig == b'.' {
                continue;
            }
            let at = ALPHABET.iter().position(|&a| a == orig).unwrap();
            let subs = (1..=per_position).map(|k| ALPHABET[(at + k * 21) % 64]);
            for c in subs.chain(FOREIGN.iter().copied()) {
                if c == orig {
                    continue;
                }
                let mut t = token.as_bytes().to_vec();
                t[i] = c;
                let t = String::from_utf8(t).unwrap();
                let got = verify(&t, &key);
                checked += 1;
                if c == b'.' {
                    assert_eq!(got, Err(JwtError::Malformed), "{t}");
                    continue;
                }
                match seg_of(i) {
                    // The header is decoded and checked before the signature.
                    0 => assert!(
                        matches!(
                            got,
                            Err(JwtError::BadBase64
                                | JwtError::BadJson(_)
                                | JwtError::AlgMismatch
                                | JwtError::BadSignature)
                        ),
                        "{t}: {got:?}"
                    ),
                    // The payload is signed as text and decoded only after the
                    // signature verified.
                    1 => assert_eq!(got, Err(JwtError::BadSignature), "{t}"),
                    _ => {
                        let sig = t.rsplit('.').next().unwrap();
                        let mut buf = [0u8; 64];
                        let want = if b64::decode(sig.as_bytes(), &mut buf).is_ok() {
                            JwtError::BadSignature
                        } else {
                            JwtError::BadBase64
                        };
                        assert_eq!(got, Err(want), "{t}");
                    }
                }
            }
        }
    }
    assert!(checked > 12_000, "{checked}");
}

#[cfg(feature = "sign")]
mod round_trip {
    use super::*;
    use botcall_core::json::Writer;
    use botcall_core::jwt::{HeaderOpts, SigningKey, sign};

    const NOW: u64 = 1_700_000_000;

    #[test]
    fn hs256_signing_reproduces_a1_exactly() {
        let sk = SigningKey::from_jwk(A1_JWK).unwrap();
        let mut out = [0u8; 512];
        assert_eq!(
            sign::sign(A1_HEADER, A1_PAYLOAD, &sk, &mut out).unwrap(),
            A1_TOKEN
        );
    }

    #[test]
    fn es256_signing_is_deterministic_and_verifies() {
        let sk = SigningKey::from_jwk(A3_JWK).unwrap();
        assert_eq!(sk.verify_key(), a3_key());
        let (mut a, mut b) = ([0u8; 512], [0u8; 512]);
        let t1 = sign::sign(A3_HEADER, A1_PAYLOAD, &sk, &mut a).unwrap();
        let t2 = sign::sign(A3_HEADER, A1_PAYLOAD, &sk, &mut b).unwrap();
        // RFC 6979 nonces are deterministic; ring's (feature `ring`) are random.
        assert_eq!(t1 == t2, cfg!(not(feature = "ring")));
        assert_eq!(verify(t2, &a3_key()).unwrap(), A1_PAYLOAD);
        assert_eq!(verify(t1, &a3_key()).unwrap(), A1_PAYLOAD);
        // Same header and payload as A.3, another (valid) signature.
        assert_eq!(
            t1.rsplit_once('.').unwrap().0,
            A3_TOKEN.rsplit_once('.').unwrap().0
        );
    }

    #[test]
    fn sign_claims_both_algorithms() {
        let claims_json = format!(r#"{{"sub":"bot-1","iat":{NOW},"exp":{}}}"#, NOW + 300);
        for sk in [
            SigningKey::from_jwk(A1_JWK).unwrap(),
            SigningKey::from_jwk(A3_JWK).unwrap(),
        ] {
            let mut out = [0u8; 1024];
            let opts = HeaderOpts {
                kid: Some("key-1"),
                embed_jwk: false,
                typ: Some("bc+jwt"),
            };
            let token = jwt::sign_claims(&sk, opts, &claims_json, &mut out).unwrap();
            let mut scratch = Scratch::new();
            let v = jwt::verify(token, &sk.verify_key(), &mut scratch).unwrap();
            assert!(v.header.alg.eq_str(sk.alg().as_str()));
            assert!(v.header.kid.unwrap().eq_str("key-1"));
            assert!(v.header.typ.unwrap().eq_str("bc+jwt"));
            assert!(v.header.jwk.is_none());
            assert_eq!(v.payload, claims_json);
            let auth = jwt::verify_bot_auth(token, &sk.verify_key(), 60, None, NOW).unwrap();
            assert_eq!(auth.agent_id.as_str(), "bot-1");
            assert_eq!((auth.iat, auth.exp), (Some(NOW as i64), (NOW + 300) as i64));
            // Default typ is JWT; the wrong key type is refused.
            let token =
                jwt::sign_claims(&sk, HeaderOpts::default(), &claims_json, &mut out).unwrap();
            let mut scratch = Scratch::new();
            let h = jwt::decode_header_unverified(token, &mut scratch).unwrap();
            assert!(h.typ.unwrap().eq_str("JWT") && h.kid.is_none());
            let other = match sk {
                SigningKey::Hs256(_) => a3_key(),
                SigningKey::Es256(_) => a1_key(),
            };
            assert_eq!(verify(token, &other), Err(JwtError::AlgMismatch));
        }
    }

    /// Open registration: the header carries the public key, the agent id is
    /// its RFC 7638 thumbprint.
    #[test]
    fn embedded_jwk_reads_back_with_its_thumbprint() {
        let sk = SigningKey::from_jwk(A3_JWK).unwrap();
        let claims_json = format!(
            r#"{{"sub":"{A3_THUMBPRINT}","iat":{NOW},"exp":{}}}"#,
            NOW + 120
        );
        let mut out = [0u8; 1024];
        let opts = HeaderOpts {
            embed_jwk: true,
            ..Default::default()
        };
        let token = jwt::sign_claims(&sk, opts, &claims_json, &mut out).unwrap();

        let mut scratch = Scratch::new();
        let h = jwt::decode_header_unverified(token, &mut scratch).unwrap();
        let jwk = h.jwk.expect("embedded jwk");
        assert!(jwk.req_str("kty").unwrap().eq_str("EC"));
        assert!(
            jwk.opt_str("d").unwrap().is_none(),
            "no private key in the header"
        );
        let key = Key::from_jwk_obj(jwk).unwrap();
        assert_eq!(key, a3_key());
        let Key::Es256(vk) = &key else { unreachable!() };
        let tp = jwt::thumbprint(vk);
        assert_eq!(tp.as_str(), A3_THUMBPRINT);

        let auth = jwt::verify_bot_auth(token, &key, 60, None, NOW).unwrap();
        assert_eq!(auth.agent_id.as_str(), tp.as_str());

        // embed_jwk has no meaning for HS256: nothing is embedded.
        let hs = SigningKey::from_jwk(A1_JWK).unwrap();
        let token = jwt::sign_claims(&hs, opts, &claims_json, &mut out).unwrap();
        let mut scratch = Scratch::new();
        assert!(
            jwt::decode_header_unverified(token, &mut scratch)
                .unwrap()
                .jwk
                .is_none()
        );
    }

    #[test]
    fn signing_keys_write_and_read_back() {
        for sk in [
            SigningKey::from_jwk(A1_JWK).unwrap(),
            SigningKey::from_jwk(A3_JWK).unwrap(),
        ] {
            let mut buf = heapless::Vec::<u8, 512>::new();
            sk.write_jwk(&mut Writer::new(&mut buf), Some("k")).unwrap();
            let text = std::str::from_utf8(&buf).unwrap();
            let back = SigningKey::from_jwk(text).unwrap();
            assert_eq!(back.verify_key(), sk.verify_key());
            assert_eq!(Key::from_jwk(text).unwrap(), sk.verify_key());
        }
        // x/y must match d.
        let mismatched = A3_JWK.replace(
            "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE",
        );
        assert_eq!(
            SigningKey::from_jwk(&mismatched).err(),
            Some(JwtError::BadKey)
        );
    }

    #[test]
    fn small_output_buffer_is_an_error() {
        let sk = SigningKey::from_jwk(A3_JWK).unwrap();
        let mut out = [0u8; 100];
        assert_eq!(
            jwt::sign_claims(&sk, HeaderOpts::default(), A1_PAYLOAD, &mut out).err(),
            Some(JwtError::BufferTooSmall)
        );
    }
}
