//! End-to-end call authenticity over real sockets: an SDK bot signs its
//! answer (`answer_sig`), the daemon relays it, and the Rust test caller
//! checks it with `botcall_core::answer_sig` before applying the answer.
//! Signed answers carry media; tampered, expired, wrong-call, wrong-key and
//! missing signatures are refused and no media flows.
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
/// the answer's signature with `key` and must then hear the bot.
fn signed_call_carries_media(d: &Daemon, cfg: BotConfig, agent: &str, key: Option<Key>) -> Trust {
    let heard = Heard::default();
    let h = heard.clone();
    let bot = spawn_sdk_bot(cfg, move |bot| async move {
        let call = bot.accept_call().await.expect("a verified call");
        bot_talk(&call, None, &h).await;
        drop(call);
        bot.shutdown().await;
    });
    let mut c = Caller::new(d);
    c.answer_check = Some((agent.to_string(), key));
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
    // `lookup` runs after the bot registered: poll it through the harness.
    let published = std::thread::spawn({
        let addr = d.addr;
        move || {
            let t0 = Instant::now();
            loop {
                let r = http(addr, "GET", "/lookup/ec-bot", &[], b"");
                if r.status == 200 {
                    return r.json();
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(60),
                    "ec-bot never registered"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    });
    let heard = Heard::default();
    let h = heard.clone();
    let bot = spawn_sdk_bot(cfg, move |bot| async move {
        let call = bot.accept_call().await.expect("a verified call");
        bot_talk(&call, None, &h).await;
        drop(call);
        bot.shutdown().await;
    });
    let lookup = published.join().unwrap();
    assert_eq!(lookup["answer_sig"], "key", "{lookup}");
    let key = Key::from_jwk(&lookup["key"].to_string()).expect("a published JWK");
    assert_eq!(key, public(&k.ec));
    let mut c = Caller::new(&d);
    c.answer_check = Some(("ec-bot".into(), Some(key)));
    c.call("ec-bot");
    c.run_until_heard(50, &heard);
    c.hang_up("bye");
    bot.join().expect("bot thread");
    assert!(
        matches!(c.answer_verdict, Some(Ok(Some(Trust::KnownKey)))),
        "{:?}",
        c.answer_verdict
    );

    // An open-registration bot: its id is its key's thumbprint, no key needed.
    let d = Daemon::start(&["--open-registration"]);
    let id = Keys::thumbprint(&k.other_ec);
    let cfg = BotConfig::new(d.url(""), k.other_ec.clone()).seed(4);
    assert_eq!(
        signed_call_carries_media(&d, cfg, &id, None),
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
