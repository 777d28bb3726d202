//! End-to-end call authenticity over real sockets: an SDK bot signs its
//! answer (`answer_sig`), the daemon relays it, and the Rust test caller
//! checks it with `botcall_core::answer_sig` before applying the answer.
//! Signed answers carry media; tampered, expired, wrong-call, wrong-key and
//! missing signatures are refused and no media flows. Also: the daemon
//! relays `answer_sig` byte for byte and refuses malformed ones, and the
//! vectors the PWA's verifier is tested on get the same verdicts here.
mod common;
mod sdk_caller;

use std::time::{Duration, Instant};

use botcall_core::answer_sig::{self, AnswerSigError, Trust};
use botcall_core::jwt::{JwtError, Key, SigningKey};
use botcall_sdk::BotConfig;
use common::*;
use sdk_caller::{Caller, Heard, bot_talk, spawn_sdk_bot};
use str0m::Rtc;
use str0m::change::SdpOffer;

fn public(k: &SigningKey) -> Key {
    k.verify_key()
}

/// One SDK bot takes one call and talks until it ends; the caller checks
/// the answer's signature with the key `key()` gives once the bot is online
/// (as the PWA: from `lookup`), and must then hear the bot.
fn signed_call_carries_media(
    d: &Daemon,
    cfg: BotConfig,
    agent: &str,
    key: impl FnOnce() -> Option<Key>,
) -> Trust {
    let heard = Heard::default();
    let h = heard.clone();
    let bot = spawn_sdk_bot(cfg, move |bot| async move {
        let call = bot.accept_call().await.expect("a verified call");
        bot_talk(&call, None, &h).await;
        drop(call);
        bot.shutdown().await;
    });
    let mut c = Caller::new(d);
    c.answer_check = Some((agent.to_string(), key()));
    c.call(agent);
    c.run_until_heard(50, &heard);
    c.hang_up("bye");
    bot.join().expect("bot thread");
    match c.answer_verdict.take() {
        Some(Ok(Some(trust))) => trust,
        other => panic!("the SDK bot's answer was not verified: {other:?}"),
    }
}

#[test]
fn an_es256_sdk_bots_signed_answer_verifies_and_carries_media() {
    // A keys-file ES256 bot: checked with the key `lookup` publishes.
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let cfg = BotConfig::new(d.url(""), k.ec.clone())
        .agent_id("ec-bot")
        .seed(3);
    let trust = signed_call_carries_media(&d, cfg, "ec-bot", || {
        let lookup = d.get("/lookup/ec-bot").json();
        assert_eq!(lookup["answer_sig"], "key", "{lookup}");
        let key = Key::from_jwk(&lookup["key"].to_string()).expect("a published JWK");
        assert_eq!(key, public(&k.ec));
        Some(key)
    });
    assert_eq!(trust, Trust::KnownKey);

    // An open-registration bot: its id is its key's thumbprint, no key needed.
    let d = Daemon::start(&["--open-registration"]);
    let id = Keys::thumbprint(&k.other_ec);
    let cfg = BotConfig::new(d.url(""), k.other_ec.clone()).seed(4);
    assert_eq!(
        signed_call_carries_media(&d, cfg, &id, || None),
        Trust::SelfCertifying
    );
}

/// What the hand-written bot does to its answer before sending it.
#[derive(Debug, Clone, Copy)]
enum Variant {
    Honest,
    /// The answer's `a=fingerprint` is changed after signing (what a daemon
    /// in the middle does).
    Tampered,
    /// Signed 10 minutes ago.
    Expired,
    /// Signed for another call id.
    WrongCall,
    /// Signed with a key that is not the bot's.
    WrongKey,
    /// Not signed at all.
    Unsigned,
}

#[test]
fn tampered_expired_wrong_call_wrong_key_and_unsigned_answers_are_refused() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let (mut b, w) = bot(&d, &token(&k.ec, "ec-bot", 300));
    assert_eq!(w["type"], "welcome", "{w}");
    let SigningKey::Es256(bot_key) = k.ec.clone() else {
        unreachable!()
    };
    let SigningKey::Es256(other_key) = k.other_ec.clone() else {
        unreachable!()
    };
    let cases = [
        (Variant::Honest, None),
        (Variant::Tampered, Some(AnswerSigError::BotFingerprint)),
        (
            Variant::Expired,
            Some(AnswerSigError::Jwt(JwtError::Expired)),
        ),
        (Variant::WrongCall, Some(AnswerSigError::WrongCall)),
        (
            Variant::WrongKey,
            Some(AnswerSigError::Jwt(JwtError::BadSignature)),
        ),
        (Variant::Unsigned, Some(AnswerSigError::Missing)),
    ];
    for (variant, want) in cases {
        let mut c = Caller::new(&d);
        c.answer_check = Some(("ec-bot".into(), Some(public(&k.ec))));
        let call_id = c.call("ec-bot");
        let inc = loop {
            let m = recv(&mut b);
            if m["type"] == "incoming" {
                break m;
            }
        };
        assert_eq!(inc["call_id"], call_id.as_str());
        let offer = inc["sdp_offer"].as_str().unwrap();
        // A real str0m answer to the caller's real offer.
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .build(Instant::now());
        let answer = rtc
            .sdp_api()
            .accept_offer(SdpOffer::from_sdp_string(offer).unwrap())
            .unwrap()
            .to_sdp_string();
        let (key, signed_call, at) = match variant {
            Variant::Expired => (&bot_key, call_id.as_str(), now() - 600),
            Variant::WrongCall => (&bot_key, "c-other", now()),
            Variant::WrongKey => (&other_key, call_id.as_str(), now()),
            _ => (&bot_key, call_id.as_str(), now()),
        };
        let mut out = [0u8; answer_sig::MAX_LEN];
        let sig = answer_sig::sign(key, "ec-bot", signed_call, offer, &answer, at, &mut out)
            .unwrap()
            .to_string();
        let sent_answer = match variant {
            // Another certificate's digest: same shape, different bytes.
            Variant::Tampered => swap_fingerprint(&answer),
            _ => answer.clone(),
        };
        let mut msg =
            serde_json::json!({"type": "answer", "call_id": call_id, "sdp_answer": sent_answer});
        if !matches!(variant, Variant::Unsigned) {
            msg["answer_sig"] = sig.into();
        }
        send(&mut b, msg);
        c.run(Duration::from_secs(60), |c| c.answer_verdict.is_some());
        let verdict = c.answer_verdict.take();
        match want {
            None => assert!(
                matches!(verdict, Some(Ok(Some(Trust::KnownKey)))),
                "{variant:?}: {verdict:?}"
            ),
            Some(e) => {
                assert_eq!(verdict, Some(Err(e)), "{variant:?}");
                // Refused: the answer was never applied, nothing connected,
                // and the bot is told.
                c.run(Duration::from_millis(300), |_| false);
                assert!(c.connected_at.is_none(), "{variant:?}: media connected");
                assert_eq!(c.rx_frames, 0);
                let hangup = loop {
                    let m = recv(&mut b);
                    if m["type"] == "hangup" {
                        break m;
                    }
                };
                assert_eq!(hangup["call_id"], call_id.as_str());
                continue;
            }
        }
        c.hang_up("bye");
        loop {
            if recv(&mut b)["type"] == "hangup" {
                break;
            }
        }
    }
}

/// The answer with its sha-256 fingerprint replaced by another digest.
fn swap_fingerprint(sdp: &str) -> String {
    sdp.lines()
        .map(|l| match l.strip_prefix("a=fingerprint:sha-256 ") {
            Some(hex) => {
                let first = if hex.starts_with("00") { "11" } else { "00" };
                format!("a=fingerprint:sha-256 {first}{}", &hex[2..])
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\r\n")
        + "\r\n"
}

/// The vectors `tests/pwa-unit/answer-sig.test.mjs` runs through the PWA's
/// WebCrypto verifier: this test checks the Rust verifier gives each the
/// same verdict. `BOTCALL_WRITE_VECTORS=1` writes a fresh set first.
#[test]
fn the_pwa_vectors_get_the_same_verdicts_from_the_rust_verifier() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/pwa-unit/answer-sig-vectors.json");
    if std::env::var_os("BOTCALL_WRITE_VECTORS").is_some() {
        std::fs::write(&path, write_vectors()).unwrap();
    }
    let text = std::fs::read_to_string(&path).expect("the vectors file");
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 12);
    let mut seen = std::collections::BTreeSet::new();
    for v in vectors {
        let key = match &v["key"] {
            serde_json::Value::Null => None,
            jwk => match Key::from_jwk(&jwk.to_string()).unwrap() {
                Key::Es256(vk) => Some(vk),
                _ => panic!("ES256 keys only"),
            },
        };
        let got = answer_sig::check(
            v["token"].as_str(),
            &answer_sig::Expect {
                agent_id: v["agent_id"].as_str().unwrap(),
                call_id: v["call_id"].as_str().unwrap(),
                offer_sdp: v["offer"].as_str().unwrap(),
                answer_sdp: v["answer"].as_str().unwrap(),
                key: key.as_ref(),
            },
            v["now"].as_u64().unwrap(),
        );
        let got = match got {
            Ok(Some(x)) if x.trust == Trust::SelfCertifying => "ok:self".to_string(),
            Ok(Some(_)) => "ok:key".into(),
            Ok(None) => "ok:none".into(),
            Err(e) => e.code().into(),
        };
        assert_eq!(got, v["want"].as_str().unwrap(), "vector {}", v["name"]);
        seen.insert(got);
    }
    // Every verdict a caller acts on is covered.
    for want in [
        "ok:self",
        "ok:key",
        "ok:none",
        "bad_signature",
        "expired",
        "bad_time",
        "wrong_call",
        "wrong_type",
        "untrusted_key",
        "missing",
        "caller_fingerprint",
        "bot_fingerprint",
        "malformed",
        "sdp",
    ] {
        assert!(seen.contains(want), "no vector for {want}");
    }
}

const V_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9\r\n";
const V_ANSWER: &str = "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 b2:c3:d4:e5:f6:07:18:29:3a:4b:5c:6d:7e:8f:90:a1:b2:c3:d4:e5:f6:07:18:29:3a:4b:5c:6d:7e:8f:90:a1\r\n";
const V_NOW: u64 = 1_800_000_000;

fn write_vectors() -> String {
    let k = Keys::new();
    let (SigningKey::Es256(bot), SigningKey::Es256(other)) = (k.ec.clone(), k.other_ec.clone())
    else {
        unreachable!()
    };
    let self_id = Keys::thumbprint(&k.ec);
    let bot_jwk: serde_json::Value = serde_json::from_str(&Keys::public_jwk(&k.ec)).unwrap();
    let other_jwk: serde_json::Value =
        serde_json::from_str(&Keys::public_jwk(&k.other_ec)).unwrap();
    let sign =
        |key: &botcall_core::jwt::EcSigningKey, agent: &str, call: &str, answer: &str, at| {
            let mut out = [0u8; answer_sig::MAX_LEN];
            answer_sig::sign(key, agent, call, V_OFFER, answer, at, &mut out)
                .unwrap()
                .to_string()
        };
    let tampered = V_ANSWER.replace("b2:c3:d4", "de:ad:be");
    let extra = format!(
        "{V_ANSWER}a=fingerprint:sha-1 00:11:22:33:44:55:66:77:88:99:00:11:22:33:44:55:66:77:88:99\r\n"
    );
    let other_offer = V_OFFER.replace("0A:1B:2C:3D", "0B:1B:2C:3D");
    let no_fp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
    let honest_self = sign(&bot, &self_id, "c-1", V_ANSWER, V_NOW);
    let honest_key = sign(&bot, "ec-bot", "c-1", V_ANSWER, V_NOW);
    let mut flipped = honest_key.clone().into_bytes();
    let n = flipped.len() - 5;
    flipped[n] = if flipped[n] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    use serde_json::{Value, json};
    let mut vectors = Vec::new();
    let mut v = |name: &str,
                 token: Option<&str>,
                 agent: &str,
                 key: &Value,
                 offer: &str,
                 answer: &str,
                 now: u64,
                 want: &str| {
        vectors.push(
            json!({"name": name, "token": token, "agent_id": agent, "call_id": "c-1",
            "offer": offer, "answer": answer, "key": key, "now": now, "want": want}),
        );
    };
    let none = Value::Null;
    v(
        "self-certifying",
        Some(&honest_self),
        &self_id,
        &none,
        V_OFFER,
        V_ANSWER,
        V_NOW + 5,
        "ok:self",
    );
    v(
        "self-certifying, a key also known",
        Some(&honest_self),
        &self_id,
        &other_jwk,
        V_OFFER,
        V_ANSWER,
        V_NOW,
        "ok:self",
    );
    v(
        "keys-file key",
        Some(&honest_key),
        "ec-bot",
        &bot_jwk,
        V_OFFER,
        V_ANSWER,
        V_NOW,
        "ok:key",
    );
    v(
        "unsigned, no key (HS256 bot)",
        None,
        "hs-bot",
        &none,
        V_OFFER,
        V_ANSWER,
        V_NOW,
        "ok:none",
    );
    v(
        "unsigned, key known",
        None,
        "ec-bot",
        &bot_jwk,
        V_OFFER,
        V_ANSWER,
        V_NOW,
        "missing",
    );
    v(
        "unsigned, thumbprint id",
        None,
        &self_id,
        &none,
        V_OFFER,
        V_ANSWER,
        V_NOW,
        "missing",
    );
    v(
        "tampered answer fingerprint",
        Some(&honest_self),
        &self_id,
        &none,
        V_OFFER,
        &tampered,
        V_NOW,
        "bot_fingerprint",
    );
    v(
        "extra answer fingerprint",
        Some(&honest_key),
        "ec-bot",
        &bot_jwk,
        V_OFFER,
        &extra,
        V_NOW,
        "bot_fingerprint",
    );
    v(
        "another caller's offer",
        Some(&honest_key),
        "ec-bot",
        &bot_jwk,
        &other_offer,
        V_ANSWER,
        V_NOW,
        "caller_fingerprint",
    );
    v(
        "expired",
        Some(&honest_key),
        "ec-bot",
        &bot_jwk,
        V_OFFER,
        V_ANSWER,
        V_NOW + 60 + 60,
        "expired",
    );
    v(
        "last valid second",
        Some(&honest_key),
        "ec-bot",
        &bot_jwk,
        V_OFFER,
        V_ANSWER,
        V_NOW + 60 + 59,
        "ok:key",
    );
    v(
        "issued in the future",
        Some(&honest_key),
        "ec-bot",
        &bot_jwk,
        V_OFFER,
        V_ANSWER,
        V_NOW - 61,
        "bad_time",
    );
    v(
        "wrong call",
        Some(&sign(&bot, "ec-bot", "c-2", V_ANSWER, V_NOW)),
        "ec-bot",
        &bot_jwk,
        V_OFFER,
        V_ANSWER,
        V_NOW,
        "wrong_call",
    );
    v(
        "wrong agent",
        Some(&honest_key),
        "ec-bot-2",
        &bot_jwk,
        V_OFFER,
        V_ANSWER,
        V_NOW,
        "wrong_type",
    );
    v(
        "wrong key",
        Some(&honest_key),
        "ec-bot",
        &other_jwk,
        V_OFFER,
        V_ANSWER,
        V_NOW,
        "bad_signature",
    );
    v(
        "flipped signature",
        Some(&flipped),
        "ec-bot",
        &bot_jwk,
        V_OFFER,
        V_ANSWER,
        V_NOW,
        "bad_signature",
    );
    v(
        "self-certifying id, other key",
        Some(&sign(&other, &self_id, "c-1", V_ANSWER, V_NOW)),
        &self_id,
        &none,
        V_OFFER,
        V_ANSWER,
        V_NOW,
        "untrusted_key",
    );
    v(
        "not a JWS",
        Some("a.b"),
        "ec-bot",
        &bot_jwk,
        V_OFFER,
        V_ANSWER,
        V_NOW,
        "malformed",
    );
    v(
        "offer without fingerprint",
        Some(&honest_key),
        "ec-bot",
        &bot_jwk,
        no_fp,
        V_ANSWER,
        V_NOW,
        "sdp",
    );
    let botauth = sign_botauth(&k.ec);
    v(
        "a BotAuth token",
        Some(&botauth),
        "ec-bot",
        &bot_jwk,
        V_OFFER,
        V_ANSWER,
        V_NOW,
        "wrong_type",
    );
    serde_json::to_string_pretty(&json!({
        "about": "answer_sig vectors, written by tests/answer_sig.rs (BOTCALL_WRITE_VECTORS=1); the Rust and the PWA verifiers must give each the verdict `want`",
        "vectors": vectors,
    }))
    .unwrap()
        + "\n"
}

/// A BotAuth-shaped token from the bot's key, with every answer claim but
/// not the answer `typ`.
fn sign_botauth(k: &SigningKey) -> String {
    sign(
        k,
        &format!(
            r#"{{"sub":"ec-bot","call_id":"c-1","fp":"{FP}","bfps":[],"iat":{V_NOW},"exp":{}}}"#,
            V_NOW + 60
        ),
        false,
    )
}

/// The daemon relays `answer_sig` untouched and refuses a malformed one
/// with a clear error to the bot (the call stays ringing, so the bot can
/// answer properly).
#[test]
fn the_daemon_relays_answer_sig_untouched_and_refuses_malformed_ones() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let (mut b, _) = bot(&d, &token(&k.ec, "ec-bot", 300));
    let (mut c, _) = caller(&d);
    let ringing = place_call(&mut c, "ec-bot");
    let call_id = ringing["call_id"].as_str().unwrap().to_string();
    assert_eq!(recv(&mut b)["type"], "incoming");
    let answer = |sig: serde_json::Value| serde_json::json!({"type": "answer", "call_id": call_id, "sdp_answer": "v=0\r\n", "answer_sig": sig});
    for bad in [
        serde_json::json!(7),
        serde_json::json!("x".repeat(answer_sig::MAX_LEN + 1)),
    ] {
        send(&mut b, answer(bad));
        let e = recv(&mut b);
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("error"), Some("bad_field")),
            "{e}"
        );
    }
    // Escapes and all, the caller gets what the bot sent.
    let sig = "eyJh.eyJz\u{2028}.c2ln";
    send(&mut b, answer(sig.into()));
    let got = recv(&mut c);
    assert_eq!(got["type"], "answer", "{got}");
    assert_eq!(got["answer_sig"], sig);
}
