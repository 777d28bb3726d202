//! Fuzzes the caller's check of a bot's answer signature
//! (`botcall_core::answer_sig::check`).
//!
//! The input is split at 0xFF bytes (never valid UTF-8) into up to four
//! parts: `token`, `claims JSON`, `offer SDP`, `answer SDP`. The token goes to
//! the verifier as is; the claims are also signed with the target's key under
//! the answer `typ` (header key embedded), so fuzzed claims reach the checks
//! behind the signature. Invariants:
//!
//! - `check` never panics, with or without a known key;
//! - an accepted signature restates what was checked, re-derived here
//!   independently: `sub` is the agent, `call_id` the call, `fp` the offer's
//!   sha-256 fingerprint, and `bfps` exactly the answer's fingerprints;
//! - the self-certifying key is trusted only for the id it hashes to.
//!
//! Run: `cargo +nightly fuzz run answer_sig fuzz/corpus/answer_sig fuzz/seeds/answer_sig -- -dict=fuzz/jwt.dict`
//! (seeds: the answer-sig vectors, token, claims, offer and answer each).
#![no_main]

use std::sync::LazyLock;

use botcall_core::answer_sig::{self, Expect, Trust};
use botcall_core::jwt::{self, SigningKey, sign};
use botcall_core::{json, sdp};
use libfuzzer_sys::fuzz_target;

// RFC 7515 A.3 key.
const ES_JWK: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}"#;
const NOW: u64 = 1_700_000_000;

static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::from_jwk(ES_JWK).unwrap());
static ID: LazyLock<String> = LazyLock::new(|| match &*KEY {
    SigningKey::Es256(sk) => jwt::thumbprint(sk.verifying_key()).to_string(),
    SigningKey::Hs256(_) => unreachable!(),
});

/// The key's public half, as the header's `jwk`.
static PUBLIC: LazyLock<String> =
    LazyLock::new(|| ES_JWK[..ES_JWK.find(r#","d""#).unwrap()].to_string() + "}");

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0xff).map(|p| std::str::from_utf8(p).ok());
    let (Some(Some(token)), claims, offer, answer) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let offer = offer.flatten().unwrap_or("");
    let answer = answer.flatten().unwrap_or("");
    let SigningKey::Es256(sk) = &*KEY else { return };
    let vk = *sk.verifying_key();
    for (agent, key) in [(ID.as_str(), None), ("ec-bot", Some(&vk)), ("ec-bot", None)] {
        let expect = Expect {
            agent_id: agent,
            call_id: "c-1",
            offer_sdp: offer,
            answer_sdp: answer,
            key,
        };
        let _ = answer_sig::check(Some(token), &expect, NOW);
        let _ = answer_sig::check(None, &expect, NOW);
        // Fuzzed claims behind a valid signature.
        if let Some(Some(claims)) = claims {
            let header = format!(
                r#"{{"alg":"ES256","typ":"{}","jwk":{}}}"#,
                answer_sig::TYP,
                *PUBLIC
            );
            let mut out = vec![0u8; 8192];
            if let Ok(t) = sign::sign(&header, claims, &KEY, &mut out)
                && let Ok(v) = answer_sig::check(Some(t), &expect, NOW)
            {
                let v = v.expect("a token gives a verdict");
                restated(claims, &expect);
                if v.trust == Trust::SelfCertifying {
                    assert_eq!(agent, ID.as_str());
                }
            }
        }
    }
});

/// What an accepted claim set must say, checked without answer_sig's code.
fn restated(claims: &str, e: &Expect<'_>) {
    let o = json::parse_object(claims).expect("accepted claims are JSON");
    let s = |k: &'static str| o.opt_str(k).unwrap().unwrap().to_string();
    assert_eq!(s("sub"), e.agent_id);
    assert_eq!(s("call_id"), e.call_id);
    let offer = sdp::fingerprints(e.offer_sdp).expect("an accepted offer has fingerprints");
    assert!(sdp::same_fingerprint(&s("fp"), offer.primary()));
    let answer = sdp::fingerprints(e.answer_sdp).expect("an accepted answer has fingerprints");
    let bfps: Vec<String> = o
        .opt_arr("bfps")
        .unwrap()
        .unwrap()
        .iter()
        .map(|v| match v {
            json::Value::Str(s) => s.to_string(),
            _ => panic!("accepted bfps with a non-string"),
        })
        .collect();
    assert!(answer.same_set(bfps.iter().map(String::as_str)));
}
