//! Presence and call signaling over real WebSockets (tungstenite clients)
//! against a real daemon: online/offline, heartbeats, a full call with a
//! verified attestation, and every refusal the protocol defines.
mod common;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use botcall_core::jwt::{Jwks, verify_attestation};
use common::*;
use serde_json::json;
use tungstenite::Message;

#[test]
fn bot_is_online_while_connected() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    assert_eq!(online(&d, "hs-bot"), None);
    let (mut ws, welcome) = bot(&d, &token(&k.hs, "hs-bot", 300));
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["agent_id"], "hs-bot");
    assert_eq!(welcome["heartbeat_interval"], 30);
    assert!(
        welcome["ice_servers"][0]["urls"][0]
            .as_str()
            .unwrap()
            .starts_with("stun:127.0.0.1:")
    );
    assert_eq!(online(&d, "hs-bot"), Some(true));
    assert_eq!(d.metric("botcall_agents_online"), 1.0);
    ws.close(None).unwrap();
    let _ = recv_close(&mut ws);
    d.eventually("bot offline", Duration::from_secs(5), || {
        online(&d, "hs-bot") == Some(false)
    });
    // The registration outlives the socket by its TTL.
    assert!(
        d.get("/lookup/hs-bot").json()["expires_in"]
            .as_u64()
            .unwrap()
            > 250
    );
}

#[test]
fn bot_can_authenticate_on_the_upgrade_request() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let auth = format!("Bearer {}", token(&k.ec, "ec-bot", 300));
    let mut ws = ws_connect(&d, &[("Authorization", &auth)]);
    send(&mut ws, json!({"type": "hello", "role": "bot"}));
    let w = recv(&mut ws);
    assert_eq!(w["agent_id"], "ec-bot", "{w}");
}

#[test]
fn missed_heartbeats_close_the_socket_and_take_the_bot_offline() {
    let d = Daemon::start(&["--heartbeat-interval", "1"]);
    let k = Keys::new();
    // This bot reads (tungstenite answers pings): it stays.
    let (mut alive, _) = bot(&d, &token(&k.hs, "hs-bot", 300));
    // This one never reads again, so never answers pings.
    let (mut silent, _) = bot(&d, &token(&k.hs, "hs-bot-2", 300));
    alive
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // Keep the live bot reading (answering pings) until the silent one is
    // taken offline after 2.5 silent intervals, however late the tick runs.
    let t0 = Instant::now();
    while online(&d, "hs-bot-2") != Some(false) {
        match alive.read() {
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("live bot lost its socket: {e}"),
        }
        assert!(t0.elapsed() < WAIT_FLOOR, "silent bot still online");
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(2000),
        "offline before 2.5 silent intervals: {:?}",
        t0.elapsed()
    );
    // The live bot, as old, has outlived that and stays.
    assert_eq!(online(&d, "hs-bot"), Some(true));
    // Read the raw bytes: tungstenite would try to answer the queued pings
    // first and fail on the closed socket before it saw the close frame.
    assert_eq!(raw_close_code(silent.get_mut()), Some(4001));
    assert!(d.metric("botcall_ws_heartbeat_timeouts_total") >= 1.0);
}

#[test]
fn full_call_with_verified_attestation_ice_and_hangup() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let (mut b, _) = bot(&d, &token(&k.hs, "hs-bot", 300));
    let (mut c, cw) = caller(&d);
    assert_eq!(cw["role"], "caller");
    let session = cw["session"].as_str().unwrap().to_string();
    assert!(cw.get("challenge").is_none());

    let ringing = place_call(&mut c, "hs-bot");
    assert_eq!(ringing["type"], "ringing", "{ringing}");
    let call_id = ringing["call_id"].as_str().unwrap().to_string();
    let inc = recv(&mut b);
    assert_eq!(inc["type"], "incoming");
    assert_eq!(inc["call_id"], call_id.as_str());
    assert_eq!(inc["from"], session.as_str());
    assert_eq!(inc["sdp_offer"], offer().as_str());
    assert_eq!(inc["hv"], "none");

    // The attestation verifies against the published JWKS and names this call.
    let jwks_text = d.get("/.well-known/jwks.json").text();
    let jwks = Jwks::parse(&jwks_text).unwrap();
    let att = verify_attestation(
        inc["attestation"].as_str().unwrap(),
        &jwks,
        "hs-bot",
        Some("botcalld"),
        now(),
    )
    .unwrap();
    assert_eq!(att.call_id.as_str(), call_id);
    assert_eq!(att.caller.as_str(), session);
    assert_eq!(att.fp.as_str(), FP);
    assert_eq!(att.hv.as_str(), "none");
    assert!(att.exp - att.iat <= 120);
    assert!(
        verify_attestation(
            inc["attestation"].as_str().unwrap(),
            &jwks,
            "other-bot",
            None,
            now()
        )
        .is_err()
    );

    send(
        &mut b,
        json!({"type": "answer", "call_id": call_id, "sdp_answer": "v=0\r\nanswer\r\n"}),
    );
    let ans = recv(&mut c);
    assert_eq!(
        ans,
        json!({"type": "answer", "call_id": call_id, "sdp_answer": "v=0\r\nanswer\r\n"})
    );
    // A second answer is a state error.
    send(
        &mut b,
        json!({"type": "answer", "call_id": call_id, "sdp_answer": "v=0\r\n"}),
    );
    assert_eq!(recv(&mut b)["code"], "wrong_state");

    let cand = json!({"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0});
    send(
        &mut c,
        json!({"type": "ice", "call_id": call_id, "candidate": cand}),
    );
    assert_eq!(
        recv(&mut b),
        json!({"type": "ice", "call_id": call_id, "candidate": cand})
    );
    send(
        &mut b,
        json!({"type": "ice", "call_id": call_id, "candidate": "candidate:2 1 udp 1 127.0.0.1 50001 typ host"}),
    );
    assert_eq!(
        recv(&mut c)["candidate"],
        "candidate:2 1 udp 1 127.0.0.1 50001 typ host"
    );
    send(
        &mut b,
        json!({"type": "ice", "call_id": call_id, "candidate": null}),
    );
    assert_eq!(recv(&mut c)["candidate"], serde_json::Value::Null);

    assert_eq!(d.metric("botcall_calls_active"), 1.0);
    send(
        &mut c,
        json!({"type": "hangup", "call_id": call_id, "reason": "bye"}),
    );
    assert_eq!(
        recv(&mut b),
        json!({"type": "hangup", "call_id": call_id, "reason": "bye"})
    );
    d.eventually("call ended", Duration::from_secs(2), || {
        d.metric("botcall_calls_active") == 0.0
    });
    assert_eq!(
        d.metric("botcall_calls_ended_total{reason=\"caller_hangup\"}"),
        1.0
    );
    // The call is gone.
    send(
        &mut c,
        json!({"type": "ice", "call_id": call_id, "candidate": null}),
    );
    assert_eq!(recv(&mut c)["code"], "unknown_call");
}

#[test]
fn busy_offline_not_found_and_reject() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    // Registered over HTTP but not connected: offline.
    assert_eq!(
        register(
            &d,
            &token(&k.hs, "hs-bot-3", 300),
            r#"{"agent_id":"hs-bot-3"}"#
        )
        .status,
        200
    );
    let (mut c1, _) = caller(&d);
    let e = place_call(&mut c1, "hs-bot-3");
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("offline"))
    );
    let e = place_call(&mut c1, "nobody-here");
    assert_eq!(e["code"], "not_found");

    let (mut b, _) = bot(&d, &token(&k.hs, "hs-bot", 300)); // max_calls 1
    let first = place_call(&mut c1, "hs-bot");
    assert_eq!(first["type"], "ringing");
    let inc = recv(&mut b);
    let (mut c2, _) = caller(&d);
    assert_eq!(place_call(&mut c2, "hs-bot")["code"], "busy");
    // The bot declines the first call; the caller hears why; the bot is free again.
    send(
        &mut b,
        json!({"type": "reject", "call_id": inc["call_id"], "reason": "declined"}),
    );
    let r = recv(&mut c1);
    assert_eq!(
        (r["type"].as_str(), r["reason"].as_str()),
        (Some("reject"), Some("declined"))
    );
    assert_eq!(place_call(&mut c2, "hs-bot")["type"], "ringing");
    assert_eq!(
        d.metric("botcall_calls_ended_total{reason=\"rejected\"}"),
        1.0
    );
}

#[test]
fn ring_timeout_hangs_up_both_sides() {
    let d = Daemon::start(&["--ring-timeout", "1"]);
    let k = Keys::new();
    let (mut b, _) = bot(&d, &token(&k.hs, "hs-bot", 300));
    let (mut c, _) = caller(&d);
    let id = place_call(&mut c, "hs-bot")["call_id"].clone();
    assert_eq!(recv(&mut b)["type"], "incoming");
    let t0 = Instant::now();
    assert_eq!(
        recv(&mut c),
        json!({"type": "hangup", "call_id": id, "reason": "timeout"})
    );
    assert_eq!(
        recv(&mut b),
        json!({"type": "hangup", "call_id": id, "reason": "timeout"})
    );
    // The configured ring timeout, not the 30 s default.
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
}

#[test]
fn a_side_that_disconnects_hangs_up_its_calls() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let (mut b, _) = bot(&d, &token(&k.hs, "hs-bot", 300));
    let (mut c, _) = caller(&d);
    let id = place_call(&mut c, "hs-bot")["call_id"].clone();
    recv(&mut b);
    drop(c); // TCP close without a close frame
    assert_eq!(
        recv(&mut b),
        json!({"type": "hangup", "call_id": id, "reason": "peer_gone"})
    );
}

#[test]
fn a_newer_socket_replaces_the_old_one_and_takes_its_calls() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let (mut old, _) = bot(&d, &token(&k.hs, "hs-bot", 300));
    let (mut c, _) = caller(&d);
    let id = place_call(&mut c, "hs-bot")["call_id"].clone();
    recv(&mut old);
    let (mut new, w) = bot(&d, &token(&k.hs, "hs-bot", 300));
    assert_eq!(w["type"], "welcome");
    assert_eq!(recv_close(&mut old), Some(4000));
    assert_eq!(online(&d, "hs-bot"), Some(true));
    // The call moved with the agent: the new socket answers it.
    send(
        &mut new,
        json!({"type": "answer", "call_id": id, "sdp_answer": "v=0\r\n"}),
    );
    assert_eq!(recv(&mut c)["type"], "answer");
    send(
        &mut c,
        json!({"type": "hangup", "call_id": id, "reason": "bye"}),
    );
    assert_eq!(recv(&mut new)["type"], "hangup");
    // And the next call reaches the new socket.
    assert_eq!(place_call(&mut c, "hs-bot")["type"], "ringing");
    assert_eq!(recv(&mut new)["type"], "incoming");
}

#[test]
fn an_answered_call_survives_a_quick_bot_reconnect() {
    let d = Daemon::start(&["--reconnect-grace", "2"]);
    let k = Keys::new();
    let (mut b, _) = bot(&d, &token(&k.hs, "hs-bot", 300));
    let (mut c, _) = caller(&d);
    let id = place_call(&mut c, "hs-bot")["call_id"].clone();
    recv(&mut b);
    send(
        &mut b,
        json!({"type": "answer", "call_id": id, "sdp_answer": "v=0\r\n"}),
    );
    recv(&mut c);
    drop(b); // network loss
    let (mut back, _) = bot(&d, &token(&k.hs, "hs-bot", 300));
    send(
        &mut c,
        json!({"type": "ice", "call_id": id, "candidate": null}),
    );
    assert_eq!(recv(&mut back)["type"], "ice");
    // Gone for longer than the grace: the caller is told.
    drop(back);
    let t0 = Instant::now();
    assert_eq!(
        recv(&mut c),
        json!({"type": "hangup", "call_id": id, "reason": "peer_gone"})
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(1000),
        "hung up before the grace"
    );
}

#[test]
fn malformed_messages_get_errors_and_bad_frames_close() {
    let d = Daemon::start(&["--max-message-bytes", "4096", "--hello-timeout", "1"]);
    let k = Keys::new();
    let mut ws = ws_connect(&d, &[]);
    send(
        &mut ws,
        json!({"type": "call", "to": "x", "sdp_offer": "v=0"}),
    );
    assert_eq!(recv(&mut ws)["code"], "hello_required");
    ws.send(Message::text("{not json")).unwrap();
    assert_eq!(recv(&mut ws)["code"], "bad_json");
    ws.send(Message::text(
        r#"{"type":"hello","type":"hello","role":"caller"}"#,
    ))
    .unwrap();
    assert_eq!(recv(&mut ws)["code"], "bad_json");
    send(&mut ws, json!({"type": "dance"}));
    assert_eq!(recv(&mut ws)["code"], "unknown_type");
    send(&mut ws, json!({"type": "hello", "role": "caller", "v": 9}));
    assert_eq!(recv(&mut ws)["code"], "unsupported_version");
    send(&mut ws, json!({"type": "hello", "role": "caller"}));
    assert_eq!(recv(&mut ws)["type"], "welcome");
    send(&mut ws, json!({"type": "hello", "role": "caller"}));
    assert_eq!(recv(&mut ws)["code"], "already_hello");
    send(
        &mut ws,
        json!({"type": "call", "to": "bad id!", "sdp_offer": "v=0"}),
    );
    assert_eq!(recv(&mut ws)["code"], "bad_field");
    send(
        &mut ws,
        json!({"type": "answer", "call_id": "c-nope", "sdp_answer": "v=0"}),
    );
    assert_eq!(recv(&mut ws)["code"], "unknown_call");
    send(&mut ws, json!({"type": "ping"}));
    assert_eq!(recv(&mut ws)["type"], "pong");
    // Still usable after all that; an oversized message closes with 1009.
    ws.send(Message::text("x".repeat(5000))).unwrap();
    assert_eq!(recv_close(&mut ws), Some(1009));

    let mut bin = ws_connect(&d, &[]);
    bin.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(recv_close(&mut bin), Some(1003));

    let mut bad_token = ws_connect(&d, &[]);
    send(
        &mut bad_token,
        json!({"type": "hello", "role": "bot", "token": token(&k.other_ec, "ec-bot", 300)}),
    );
    let e = recv(&mut bad_token);
    assert_eq!(e["code"], "unauthorized", "{e}");
    assert_eq!(recv_close(&mut bad_token), Some(1008));

    let mut no_hello = ws_connect(&d, &[]);
    assert_eq!(recv_close(&mut no_hello), Some(1008));

    // Invalid UTF-8 in a text frame: 1007 (raw frame, tungstenite won't send it).
    let mut raw = raw_ws(&d);
    raw.write_all(&masked_frame(0x81, &[0xff, 0xfe])).unwrap();
    assert_eq!(raw_close_code(&mut raw), Some(1007));
    // An unmasked client frame is a protocol error: 1002.
    let mut raw = raw_ws(&d);
    raw.write_all(&[0x81, 0x02, b'{', b'}']).unwrap();
    assert_eq!(raw_close_code(&mut raw), Some(1002));
}

#[test]
fn messages_about_other_peoples_calls_are_refused() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let (mut b, _) = bot(&d, &token(&k.hs, "hs-bot", 300));
    let (mut c, _) = caller(&d);
    let id = place_call(&mut c, "hs-bot")["call_id"].clone();
    recv(&mut b);
    let (mut stranger, _) = caller(&d);
    send(
        &mut stranger,
        json!({"type": "hangup", "call_id": id, "reason": "x"}),
    );
    assert_eq!(recv(&mut stranger)["code"], "not_your_call");
    // A caller cannot answer; a bot cannot place calls.
    send(
        &mut c,
        json!({"type": "answer", "call_id": id, "sdp_answer": "v=0"}),
    );
    assert_eq!(recv(&mut c)["code"], "not_your_call");
    send(
        &mut b,
        json!({"type": "call", "to": "hs-bot", "sdp_offer": offer()}),
    );
    assert_eq!(recv(&mut b)["code"], "wrong_role");
}

#[test]
fn offer_without_fingerprint_is_refused() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let (_b, _) = bot(&d, &token(&k.hs, "hs-bot", 300));
    let (mut c, _) = caller(&d);
    send(
        &mut c,
        json!({"type": "call", "to": "hs-bot", "sdp_offer": "v=0\r\nm=audio 9 x 111\r\n"}),
    );
    let e = recv(&mut c);
    assert_eq!(e["code"], "bad_message");
    assert!(e["message"].as_str().unwrap().contains("fingerprint"));
}

#[test]
fn proof_of_work_human_check() {
    let d = Daemon::start(&["--human-check", "pow", "--pow-difficulty", "10"]);
    let k = Keys::new();
    let (mut b, _) = bot(&d, &token(&k.hs, "hs-bot", 300));
    let (mut c, w) = caller(&d);
    let ch = w["challenge"].clone();
    assert_eq!(ch["method"], "pow");
    assert_eq!(ch["difficulty"], 10);
    let challenge = ch["challenge"].as_str().unwrap().to_string();
    // No proof: refused.
    assert_eq!(place_call(&mut c, "hs-bot")["code"], "human_check_required");
    // A wrong nonce: refused (nonce "!" is not even allowed).
    send(
        &mut c,
        json!({"type": "call", "to": "hs-bot", "sdp_offer": offer(), "proof": {"method": "pow", "challenge": challenge, "nonce": "!"}}),
    );
    assert_eq!(recv(&mut c)["code"], "human_check_failed");
    let nonce = botcall_core::pow::solve(&challenge, 10, 0, 1 << 24).unwrap();
    send(
        &mut c,
        json!({"type": "call", "to": "hs-bot", "sdp_offer": offer(), "proof": {"method": "pow", "challenge": challenge, "nonce": nonce.as_str()}}),
    );
    assert_eq!(recv(&mut c)["type"], "ringing");
    let inc = recv(&mut b);
    assert_eq!(inc["hv"], "pow");
    let att = attestation_of(&d, &inc, "hs-bot");
    assert_eq!(att.hv.as_str(), "pow");
    assert_eq!(d.metric("botcall_pow_verified_total"), 1.0);
}

#[test]
fn per_socket_message_rate_is_limited() {
    let d = Daemon::start(&["--ws-rate", "1", "--ws-burst", "3"]);
    let (mut c, _) = caller(&d);
    for _ in 0..10 {
        send(&mut c, json!({"type": "ping"}));
    }
    let mut pongs = 0;
    let mut limited = 0;
    c.get_mut()
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while let Ok(Message::Text(t)) = c.read() {
        let v: serde_json::Value = serde_json::from_str(&t).unwrap();
        match v["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") if v["code"] == "rate_limited" => limited += 1,
            _ => {}
        }
    }
    // The hello took one token of the burst of 3.
    assert!((2..=3).contains(&pongs), "pongs {pongs}");
    assert!(limited >= 1);
    assert!(d.metric("botcall_rate_limited_total{scope=\"ws\"}") >= 6.0);
}

#[test]
fn a_reader_too_slow_is_closed_with_1013() {
    let d = Daemon::start(&[
        "--ws-queue-bytes",
        "65536",
        "--ws-rate",
        "0",
        "--max-message-bytes",
        "16384",
        // The per-call ICE caps would refuse the flood before the queue fills.
        "--max-ice-per-call",
        "10000",
        "--max-ice-bytes-per-call",
        "16777216",
    ]);
    let k = Keys::new();
    let (mut b, _) = bot(&d, &token(&k.hs, "hs-bot", 300));
    let (mut c, _) = caller(&d);
    let id = place_call(&mut c, "hs-bot")["call_id"].clone();
    recv(&mut b);
    // The bot stops reading; the caller floods ICE messages at it.
    let big = "x".repeat(15_000);
    let t0 = Instant::now();
    let mut closed = false;
    c.get_mut()
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    for _ in 0..2000 {
        if c.send(Message::text(
            json!({"type": "ice", "call_id": id, "candidate": big}).to_string(),
        ))
        .is_err()
        {
            break;
        }
        if d.metric("botcall_ws_slow_reader_closed_total") >= 1.0 {
            closed = true;
            break;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    assert!(
        closed || d.metric("botcall_ws_slow_reader_closed_total") >= 1.0,
        "slow reader never closed"
    );
    assert_eq!(d.metric("botcall_ws_closed_total{code=\"1013\"}"), 1.0);
    // The caller's call was hung up for it.
    d.eventually("call ended", Duration::from_secs(5), || {
        d.metric("botcall_calls_active") == 0.0
    });
}

#[test]
fn stun_answers_a_binding_request() {
    let d = Daemon::start(&[]);
    let stun = d.stun.expect("stun address");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let txid = *b"botcall-txid";
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    req.extend_from_slice(&txid);
    sock.send_to(&req, stun).unwrap();
    let mut buf = [0u8; 256];
    let (n, _) = sock.recv_from(&mut buf).unwrap();
    let resp = &buf[..n];
    assert_eq!(&resp[..2], &[0x01, 0x01], "Binding success");
    assert_eq!(&resp[8..20], &txid);
    // Find XOR-MAPPED-ADDRESS (0x0020) and decode it.
    let mut at = 20;
    let mut mapped = None;
    while at + 4 <= n {
        let ty = u16::from_be_bytes([resp[at], resp[at + 1]]);
        let len = u16::from_be_bytes([resp[at + 2], resp[at + 3]]) as usize;
        let v = &resp[at + 4..at + 4 + len];
        if ty == 0x0020 {
            let port = u16::from_be_bytes([v[2], v[3]]) ^ 0x2112;
            let ip = std::net::Ipv4Addr::new(v[4] ^ 0x21, v[5] ^ 0x12, v[6] ^ 0xa4, v[7] ^ 0x42);
            mapped = Some(std::net::SocketAddr::from((ip, port)));
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    assert_eq!(mapped, Some(sock.local_addr().unwrap()));
    // Garbage gets no answer.
    sock.send_to(b"hello", stun).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(sock.recv_from(&mut buf).is_err());
    assert!(d.metric("botcall_stun_requests_total") >= 1.0);
}

#[test]
fn stun_answers_a_third_party_client() {
    let d = Daemon::start(&[]);
    let stun = d.stun.expect("stun address");
    let python = python();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/stun_third_party.py");
    let out = std::process::Command::new(&python)
        .args([script, &stun.ip().to_string(), &stun.port().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python} (run .ci/setup first): {e}"));
    assert!(
        out.status.success(),
        "aioice STUN client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// --- raw WebSocket helpers for frames tungstenite refuses to send ---

fn raw_ws(d: &Daemon) -> TcpStream {
    raw_ws_upgrade(d.addr, Duration::from_secs(5))
}
