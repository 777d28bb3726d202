//! The std client against a scripted fake daemon: calls whose attestation
//! is forged, expired, for another agent or call, or bound to another
//! fingerprint are refused with a `reject` before the application sees
//! them — `accept_call` returns a typed error each time — and the next,
//! valid call is still answered. (The real daemon cannot be made to sign a
//! bad attestation; the SDK's unit tests cover the same checks in the core.)
#![cfg(feature = "std")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use botcall_core::json::Writer;
use botcall_core::jwt::{self, HeaderOpts, SigningKey};
use botcall_sdk::{
    AttestationError, BotConfig, BotError, EndReason, RefuseReason, register_with_discovery,
};
use futures_lite::future;

fn key(seed: u8) -> SigningKey {
    let mut d = [seed; 32];
    d[0] = 1;
    SigningKey::Es256(botcall_core::jwt::EcSigningKey::from_slice(&d).unwrap())
}

fn jwks() -> String {
    let SigningKey::Es256(sk) = key(7) else {
        unreachable!()
    };
    let mut v = Vec::new();
    let mut w = Writer::new(&mut v);
    w.begin_obj()
        .unwrap()
        .key("keys")
        .unwrap()
        .begin_arr()
        .unwrap();
    jwt::key::write_public_jwk(&mut w, sk.verifying_key(), Some("k7")).unwrap();
    w.end_arr().unwrap().end_obj().unwrap();
    String::from_utf8(v).unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn attestation(signer: u8, aud: &str, call_id: &str, fp: &str, iat: u64) -> String {
    let claims = format!(
        r#"{{"iss":"botcalld","aud":"{aud}","sub":"s-1","call_id":"{call_id}","hv":"pow","fp":"{fp}","iat":{iat},"exp":{}}}"#,
        iat + 60
    );
    let mut out = vec![0u8; 2048];
    let opts = HeaderOpts {
        kid: Some("k7"),
        embed_jwk: false,
        typ: None,
    };
    jwt::sign_claims(&key(signer), opts, &claims, &mut out)
        .unwrap()
        .to_string()
}

/// A real offer (str0m) and its fingerprint.
fn offer() -> (String, String) {
    let mut rtc = str0m::Rtc::builder()
        .clear_codecs()
        .enable_opus(true, false)
        .build(Instant::now());
    let mut api = rtc.sdp_api();
    api.add_media(
        str0m::media::MediaKind::Audio,
        str0m::media::Direction::SendRecv,
        None,
        None,
        None,
    );
    let (o, _pending) = api.apply().unwrap();
    let sdp = o.to_sdp_string();
    let fp = botcall_core::sdp::fingerprint(&sdp).unwrap().to_string();
    (sdp, fp)
}

fn read_head(s: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut b = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut b).unwrap();
        buf.push(b[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (head, String::from_utf8(body).unwrap())
}

fn respond(s: &mut TcpStream, body: &str) {
    let r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(r.as_bytes()).unwrap();
}

type Ws = tungstenite::WebSocket<TcpStream>;

fn recv(ws: &mut Ws) -> botcall_core::protocol::Msg<'static> {
    loop {
        if let tungstenite::Message::Text(t) = ws.read().unwrap() {
            let t: &'static str = Box::leak(t.as_str().to_string().into_boxed_str());
            return botcall_core::protocol::Msg::decode(t).unwrap();
        }
    }
}

fn incoming(call_id: &str, sdp: &str, att: &str) -> String {
    serde_like(&[
        ("type", "incoming"),
        ("call_id", call_id),
        ("from", "s-1"),
        ("sdp_offer", sdp),
        ("attestation", att),
        ("hv", "pow"),
    ])
}

fn serde_like(fields: &[(&str, &str)]) -> String {
    let mut v = Vec::new();
    let mut w = Writer::new(&mut v);
    w.begin_obj().unwrap();
    for (k, val) in fields {
        w.field_str(k, val).unwrap();
    }
    w.end_obj().unwrap();
    String::from_utf8(v).unwrap()
}

#[test]
fn bad_attestations_are_refused_and_the_next_call_is_answered() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (sdp, fp) = offer();
    let (log_tx, log_rx) = mpsc::channel::<String>();
    let want_fp = fp.clone();
    let daemon = std::thread::spawn(move || {
        loop {
            let (mut s, _) = listener.accept().unwrap();
            let mut peek = [0u8; 64];
            let n = s.peek(&mut peek).unwrap();
            let line = String::from_utf8_lossy(&peek[..n]).to_string();
            if line.starts_with("GET /.well-known/jwks.json") {
                read_head(&mut s);
                respond(&mut s, &jwks());
            } else if line.starts_with("POST /register") {
                let (head, body) = read_head(&mut s);
                assert!(head.contains("Authorization: Bearer "), "{head}");
                log_tx.send(format!("register {body}")).unwrap();
                respond(
                    &mut s,
                    r#"{"confirmed":true,"agent_id":"ec-bot","expires_in":300}"#,
                );
            } else if line.starts_with("GET /v1/ws") {
                let mut ws = tungstenite::accept(s).unwrap();
                let hello = recv(&mut ws);
                assert_eq!(hello.type_name(), "hello");
                ws.send(tungstenite::Message::text(
                    r#"{"type":"welcome","role":"bot","agent_id":"ec-bot","session":"ec-bot","heartbeat_interval":30,"ice_servers":[]}"#,
                ))
                .unwrap();
                let t = now();
                let other_fp = "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
                let bad = [
                    ("c-forged", attestation(9, "ec-bot", "c-forged", &fp, t)),
                    (
                        "c-expired",
                        attestation(7, "ec-bot", "c-expired", &fp, t - 1000),
                    ),
                    ("c-aud", attestation(7, "other-bot", "c-aud", &fp, t)),
                    ("c-call", attestation(7, "ec-bot", "c-other", &fp, t)),
                    ("c-fp", attestation(7, "ec-bot", "c-fp", other_fp, t)),
                ];
                for (id, att) in &bad {
                    ws.send(tungstenite::Message::text(incoming(id, &sdp, att)))
                        .unwrap();
                    let m = recv(&mut ws);
                    let botcall_core::protocol::Msg::Reject { call_id, reason } = m else {
                        panic!("expected reject, got {m:?}")
                    };
                    assert_eq!(call_id.as_str(), *id);
                    log_tx
                        .send(format!("reject {id} {}", reason.as_plain().unwrap()))
                        .unwrap();
                }
                ws.send(tungstenite::Message::text(incoming(
                    "c-good",
                    &sdp,
                    &attestation(7, "ec-bot", "c-good", &fp, t),
                )))
                .unwrap();
                // The bot answers (and may trickle its end-of-candidates).
                loop {
                    let m = recv(&mut ws);
                    if let botcall_core::protocol::Msg::Answer {
                        call_id,
                        sdp_answer,
                        ..
                    } = m
                    {
                        assert_eq!(call_id.as_str(), "c-good");
                        assert!(
                            sdp_answer
                                .as_plain()
                                .is_some_and(|a| a.contains("a=fingerprint:"))
                                || sdp_answer.len() > 100
                        );
                        log_tx.send("answer c-good".into()).unwrap();
                        break;
                    }
                }
                ws.send(tungstenite::Message::text(
                    r#"{"type":"hangup","call_id":"c-good","reason":"bye"}"#,
                ))
                .unwrap();
                // Keep the socket until the bot goes away.
                while ws.read().is_ok() {}
                return;
            } else {
                panic!("unexpected request {line:?}");
            }
        }
    });

    future::block_on(async {
        let cfg = BotConfig::new(format!("http://{addr}"), key(7))
            .agent_id("ec-bot")
            .seed(5);
        let bot = register_with_discovery(cfg)
            .await
            .expect("registers with the fake daemon");
        let want = [
            ("c-forged", AttestationError::Forged),
            ("c-expired", AttestationError::Expired),
            ("c-aud", AttestationError::WrongAgent),
            ("c-call", AttestationError::WrongCall),
            ("c-fp", AttestationError::WrongFingerprint),
        ];
        for (id, err) in want {
            let e = bot.accept_call().await.expect_err("refused");
            assert_eq!(
                e,
                BotError::CallRefused {
                    call_id: id.into(),
                    reason: RefuseReason::Attestation(err)
                }
            );
            assert!(e.is_refused_call());
            assert_eq!(e.attestation_error(), Some(err));
        }
        let call = bot.accept_call().await.expect("the valid call");
        assert_eq!(call.id(), "c-good");
        assert_eq!(call.caller().fp.as_str(), want_fp);
        assert_eq!(call.caller().hv.as_str(), "pow");
        // The fake daemon hangs up: receive ends with the reason.
        assert_eq!(
            call.receive_audio_opus().await,
            Err(BotError::Ended(EndReason::RemoteHangup("bye".into())))
        );
        assert_eq!(bot.status().refused_calls, 5);
        bot.shutdown().await;
    });
    let log: Vec<String> = log_rx.try_iter().collect();
    assert!(
        log[0].starts_with("register {\"agent_id\":\"ec-bot\""),
        "{log:?}"
    );
    assert_eq!(
        &log[1..],
        [
            "reject c-forged forged",
            "reject c-expired expired",
            "reject c-aud wrong_agent",
            "reject c-call wrong_call",
            "reject c-fp wrong_fingerprint",
            "answer c-good",
        ]
    );
    daemon.join().unwrap();
}
