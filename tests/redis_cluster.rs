//! Several daemons on one real Redis: shared registrations, calls across
//! daemons, TTL expiry, the ownership race, and Redis dying mid-run.
mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn daemon(redis: &RedisServer, extra: &[&str]) -> Daemon {
    let url = redis.url();
    let mut args = vec!["--store", url.as_str()];
    args.extend_from_slice(extra);
    Daemon::start(&args)
}

#[test]
fn register_on_one_daemon_look_up_on_another() {
    let redis = RedisServer::start();
    let (a, b) = (daemon(&redis, &[]), daemon(&redis, &[]));
    let k = Keys::new();
    let r = register(
        &a,
        &token(&k.hs, "hs-bot", 300),
        r#"{"agent_id":"hs-bot","name":"Weather","listed":true,"endpoint":"wss://x/y"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let l = b.get("/lookup/hs-bot");
    assert_eq!(l.status, 200);
    let v = l.json();
    assert_eq!(
        (
            v["name"].as_str(),
            v["endpoint"].as_str(),
            v["online"].as_bool()
        ),
        (Some("Weather"), Some("wss://x/y"), Some(false))
    );
    assert!(v["expires_in"].as_u64().unwrap() > 290);
    assert_eq!(b.get("/agents").json()["agents"][0]["agent_id"], "hs-bot");
    assert_eq!(b.get("/lookup/nobody").status, 404);
    // Online on B is seen from A.
    let (_ws, _) = bot(&b, &token(&k.ec, "ec-bot", 300));
    assert_eq!(online(&a, "ec-bot"), Some(true));
    // Unregister on B, gone on A.
    let del = http(
        b.addr,
        "DELETE",
        "/register/hs-bot",
        &[(
            "Authorization",
            &format!("Bearer {}", token(&k.hs, "hs-bot", 300)),
        )],
        b"",
    );
    assert_eq!(del.status, 200);
    assert_eq!(a.get("/lookup/hs-bot").status, 404);
}

#[test]
fn registrations_expire() {
    let redis = RedisServer::start();
    let (a, b) = (
        daemon(&redis, &["--min-ttl", "1"]),
        daemon(&redis, &["--min-ttl", "1"]),
    );
    let k = Keys::new();
    assert_eq!(
        register(
            &a,
            &token(&k.hs, "hs-bot", 300),
            r#"{"agent_id":"hs-bot","ttl":1,"listed":true}"#
        )
        .status,
        200
    );
    assert_eq!(b.get("/lookup/hs-bot").status, 200);
    b.eventually("expiry", Duration::from_secs(5), || {
        b.get("/lookup/hs-bot").status == 404
    });
    // The directory forgets it too.
    assert_eq!(
        b.get("/agents").json()["agents"].as_array().unwrap().len(),
        0
    );
}

#[test]
fn a_call_from_a_caller_on_one_daemon_to_a_bot_on_another() {
    let redis = RedisServer::start();
    let (a, b) = (daemon(&redis, &[]), daemon(&redis, &[]));
    let k = Keys::new();
    let (mut bot_ws, _) = bot(&b, &token(&k.hs, "hs-bot", 300));
    let (mut c, cw) = caller(&a);
    send(
        &mut c,
        json!({"type": "call", "to": "hs-bot", "sdp_offer": offer()}),
    );
    let ringing = recv(&mut c);
    assert_eq!(ringing["type"], "ringing", "{ringing}\n{}", a.log());
    let id = ringing["call_id"].clone();
    let inc = recv(&mut bot_ws);
    assert_eq!(inc["type"], "incoming");
    assert_eq!(inc["call_id"], id);
    assert_eq!(inc["from"], cw["session"]);
    // The bot's daemon signed it; the bot verifies with that daemon's JWKS.
    let att = attestation_of(&b, &inc, "hs-bot");
    assert_eq!(att.call_id.as_str(), id.as_str().unwrap());
    assert_eq!(att.fp.as_str(), FP);

    send(
        &mut bot_ws,
        json!({"type": "answer", "call_id": id, "sdp_answer": "v=0\r\nanswer\r\n"}),
    );
    assert_eq!(
        recv(&mut c),
        json!({"type": "answer", "call_id": id, "sdp_answer": "v=0\r\nanswer\r\n"})
    );
    send(
        &mut c,
        json!({"type": "ice", "call_id": id, "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}}),
    );
    assert_eq!(
        recv(&mut bot_ws)["candidate"]["candidate"],
        "candidate:1 1 udp 1 127.0.0.1 9 typ host"
    );
    send(
        &mut bot_ws,
        json!({"type": "ice", "call_id": id, "candidate": null}),
    );
    assert_eq!(recv(&mut c)["type"], "ice");
    send(
        &mut bot_ws,
        json!({"type": "hangup", "call_id": id, "reason": "bye"}),
    );
    assert_eq!(
        recv(&mut c),
        json!({"type": "hangup", "call_id": id, "reason": "bye"})
    );

    // Busy and offline answers come back across daemons too.
    send(
        &mut c,
        json!({"type": "call", "to": "hs-bot", "sdp_offer": offer()}),
    );
    assert_eq!(recv(&mut c)["type"], "ringing");
    recv(&mut bot_ws);
    let (mut c2, _) = caller(&a);
    send(
        &mut c2,
        json!({"type": "call", "to": "hs-bot", "sdp_offer": offer()}),
    );
    assert_eq!(recv(&mut c2)["code"], "busy");
    assert!(a.metric("botcall_remote_messages_total{direction=\"out\"}") >= 3.0);
}

/// The `kid`s in a daemon's JWKS, in order.
fn jwks_kids(d: &Daemon) -> Vec<String> {
    d.get("/.well-known/jwks.json").json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// Daemons with their own attestation keys: every daemon's JWKS lists every
/// daemon's key (its own first), so a bot can verify an attestation whichever
/// daemon answered its JWKS request — as behind a load balancer.
#[test]
fn every_daemons_jwks_lists_every_daemons_attestation_key() {
    let redis = RedisServer::start();
    let (a, b) = (daemon(&redis, &[]), daemon(&redis, &[]));
    a.eventually(
        "each JWKS to list both keys",
        Duration::from_secs(12),
        || jwks_kids(&a).len() == 2 && jwks_kids(&b).len() == 2,
    );
    let (ka, kb) = (jwks_kids(&a), jwks_kids(&b));
    assert_ne!(ka[0], kb[0], "each daemon has its own key");
    assert_eq!(
        (ka[1].as_str(), kb[1].as_str()),
        (kb[0].as_str(), ka[0].as_str())
    );

    // B signs the attestation for its bot; A's JWKS verifies it.
    let k = Keys::new();
    let (mut bot_ws, _) = bot(&b, &token(&k.hs, "hs-bot", 300));
    let (mut c, _) = caller(&a);
    send(
        &mut c,
        json!({"type": "call", "to": "hs-bot", "sdp_offer": offer()}),
    );
    assert_eq!(recv(&mut c)["type"], "ringing");
    let inc = recv(&mut bot_ws);
    assert_eq!(inc["type"], "incoming");
    let att = attestation_of(&a, &inc, "hs-bot");
    assert_eq!(att.fp.as_str(), FP);

    // A daemon on the memory store lists its own key only.
    assert_eq!(jwks_kids(&Daemon::start(&[])).len(), 1);
}

#[test]
fn a_bot_that_moves_daemons_takes_its_call_with_it() {
    let redis = RedisServer::start();
    let (a, b, c_d) = (
        daemon(&redis, &[]),
        daemon(&redis, &[]),
        daemon(&redis, &[]),
    );
    let k = Keys::new();
    let (mut old, _) = bot(&b, &token(&k.hs, "hs-bot", 300));
    let (mut c, id) = call_across(&a, &mut old, true);
    // The bot reconnects through daemon C while its old socket on B is still open.
    let (mut new, _) = bot(&c_d, &token(&k.hs, "hs-bot", 300));
    assert_eq!(recv_close(&mut old), Some(4000), "B closes the old socket");
    // Messages about the call now flow caller(A) <-> bot(C).
    ice_gets_through(&mut c, &mut new, &id, "9");
    send(
        &mut new,
        json!({"type": "hangup", "call_id": id, "reason": "done"}),
    );
    assert_eq!(hangup_of(&mut c, &id), "done");
    assert_eq!(online(&a, "hs-bot"), Some(true));
}

#[test]
fn two_daemons_two_keys_one_id_exactly_one_wins() {
    let redis = RedisServer::start();
    let k = Keys::new();
    // Daemon A trusts the HS256 key for `race-*`, daemon B the EC key: a
    // misconfiguration the store must still resolve to one owner per id.
    let fleet = |key: &botcall_core::jwt::SigningKey| {
        format!(
            r#"{{"fleets":[{{"prefix":"race-","key":{}}}]}}"#,
            Keys::public_jwk(key)
        )
    };
    let (da, db) = (TempDir::new("race-a"), TempDir::new("race-b"));
    std::fs::write(da.path().join("keys.json"), fleet(&k.hs)).unwrap();
    std::fs::write(db.path().join("keys.json"), fleet(&k.ec)).unwrap();
    let url = redis.url();
    let args = [
        "--store",
        url.as_str(),
        "--rate-ip",
        "0",
        "--rate-agent",
        "0",
    ];
    let (a, b) = (Daemon::start_in(da, &args), Daemon::start_in(db, &args));
    let ids: Vec<String> = (0..40).map(|i| format!("race-{i}")).collect();
    let go = |d: &Daemon, key: &botcall_core::jwt::SigningKey| {
        let addr = d.addr;
        let reqs: Vec<(String, String)> = ids
            .iter()
            .map(|id| (id.clone(), token(key, id, 300)))
            .collect();
        std::thread::spawn(move || {
            reqs.into_iter()
                .map(|(id, t)| {
                    let auth = format!("Bearer {t}");
                    let body = format!(r#"{{"agent_id":"{id}"}}"#);
                    http(
                        addr,
                        "POST",
                        "/register",
                        &[
                            ("Authorization", &auth),
                            ("Content-Type", "application/json"),
                        ],
                        body.as_bytes(),
                    )
                    .status
                })
                .collect::<Vec<u16>>()
        })
    };
    let (ta, tb) = (go(&a, &k.hs), go(&b, &k.ec));
    let (ra, rb) = (ta.join().unwrap(), tb.join().unwrap());
    for i in 0..ids.len() {
        let mut pair = [ra[i], rb[i]];
        pair.sort();
        assert_eq!(pair, [200, 403], "id {} got {:?}", ids[i], (ra[i], rb[i]));
    }
    // The loser stays locked out while the registration lives.
    let winner_is_a = ra[0] == 200;
    let (loser, key) = if winner_is_a {
        (&b, &k.ec)
    } else {
        (&a, &k.hs)
    };
    assert_eq!(
        register(
            loser,
            &token(key, "race-0", 300),
            r#"{"agent_id":"race-0"}"#
        )
        .code(),
        "id_taken"
    );
}

#[test]
fn redis_dying_mid_run_gives_503s_then_full_recovery() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let a = daemon(&redis, &[]);
    let k = Keys::new();
    assert_eq!(
        register(
            &a,
            &token(&k.hs, "hs-bot-2", 300),
            r#"{"agent_id":"hs-bot-2"}"#
        )
        .status,
        200
    );
    let (mut b, _) = bot(&a, &token(&k.hs, "hs-bot", 300));
    let (mut c, _) = caller(&a);
    send(
        &mut c,
        json!({"type": "call", "to": "hs-bot", "sdp_offer": offer()}),
    );
    let id = recv(&mut c)["call_id"].clone();
    recv(&mut b);
    send(
        &mut b,
        json!({"type": "answer", "call_id": id, "sdp_answer": "v=0\r\n"}),
    );
    recv(&mut c);

    redis.kill();
    a.eventually("503 store_unavailable", Duration::from_secs(5), || {
        let r = a.get("/lookup/hs-bot");
        r.status == 503 && r.code() == "store_unavailable"
    });
    let r = register(
        &a,
        &token(&k.hs, "hs-bot-3", 300),
        r#"{"agent_id":"hs-bot-3"}"#,
    );
    assert_eq!((r.status, r.code().as_str()), (503, "store_unavailable"));
    let h = a.get("/healthz");
    assert_eq!(h.status, 200, "the daemon itself stays up");
    assert_eq!(h.json()["store_up"], false);
    // The local call keeps going while Redis is away.
    send(
        &mut c,
        json!({"type": "ice", "call_id": id, "candidate": null}),
    );
    assert_eq!(recv(&mut b)["type"], "ice");
    assert_eq!(a.metric("botcall_redis_up"), 0.0);

    // Redis comes back empty: the connected bot is re-announced.
    let _redis = RedisServer::start_on(port);
    a.eventually("recovery", Duration::from_secs(15), || {
        online(&a, "hs-bot") == Some(true)
    });
    assert_eq!(a.metric("botcall_redis_up"), 1.0);
    assert_eq!(a.get("/healthz").json()["store_up"], true);
    assert_eq!(
        register(
            &a,
            &token(&k.hs, "hs-bot-3", 300),
            r#"{"agent_id":"hs-bot-3"}"#
        )
        .status,
        200
    );
    send(
        &mut b,
        json!({"type": "hangup", "call_id": id, "reason": "bye"}),
    );
    assert_eq!(recv(&mut c)["type"], "hangup");
    assert!(
        a.log().contains("re-announced 1 connected bots"),
        "{}",
        a.log()
    );
}

#[test]
fn unreachable_redis_at_start_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let err = refused_start(&url);
    assert!(err.contains("cannot reach Redis"), "{err}");
    // Unless told to start local-only.
    let d = Daemon::start(&["--store", &url, "--redis-fallback-local"]);
    assert_eq!(d.get("/healthz").status, 200);
    assert!(d.log().contains("starting local-only"));
}

/// Sends ICE candidates tagged `tag` from `from` about call `id` until `to`
/// reads one (the route may still be moving); `from` must
/// not be told `not_your_call` or anything else on the way. Bounded by
/// [`WAIT_FLOOR`].
fn ice_gets_through(from: &mut Ws, to: &mut Ws, id: &serde_json::Value, tag: &str) {
    let t0 = Instant::now();
    to.get_mut()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    from.get_mut()
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    loop {
        send(
            from,
            json!({"type": "ice", "call_id": id, "candidate": format!("candidate:{tag} 1 udp 1 127.0.0.1 9 typ host")}),
        );
        let got = loop {
            match to.read() {
                Ok(tungstenite::Message::Text(t)) if t.contains(&format!("candidate:{tag} ")) => {
                    break true;
                }
                Ok(tungstenite::Message::Text(t)) => panic!("unexpected {t}"),
                Ok(_) => continue,
                Err(_) => break false,
            }
        };
        if let Ok(tungstenite::Message::Text(t)) = from.read() {
            panic!("the sender was told {t}");
        }
        if got {
            break;
        }
        assert!(t0.elapsed() < WAIT_FLOOR, "ICE {tag} never got through");
    }
    for ws in [from, to] {
        ws.get_mut()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
    }
}

/// Reads until a `hangup` for `id`; returns its reason.
fn hangup_of(ws: &mut Ws, id: &serde_json::Value) -> String {
    loop {
        let m = recv(ws);
        if m["type"] == "hangup" && m["call_id"] == *id {
            return m["reason"].as_str().unwrap().to_string();
        }
    }
}

/// A caller on `a` calls `hs-bot` whose socket `bot_ws` is on another
/// daemon; the bot answers (when `answer`). Returns the caller and call id.
fn call_across(a: &Daemon, bot_ws: &mut Ws, answer: bool) -> (Ws, serde_json::Value) {
    let (mut c, _) = caller(a);
    let id = place_call(&mut c, "hs-bot")["call_id"].clone();
    assert_eq!(recv(bot_ws)["type"], "incoming");
    if answer {
        send(
            bot_ws,
            json!({"type": "answer", "call_id": id, "sdp_answer": "v=0\r\n"}),
        );
        assert_eq!(recv(&mut c)["type"], "answer");
    }
    (c, id)
}

/// The bot moves to the caller's own daemon mid-call: the caller's record
/// stays (no `not_your_call` either way), hang-ups reach the other side, and
/// when the bot's socket is gone for good the reconnect grace still ends
/// the call.
#[test]
fn a_bot_moving_to_the_callers_daemon_mid_call_keeps_it_and_its_grace() {
    let redis = RedisServer::start();
    let (a, b) = (
        daemon(&redis, &["--reconnect-grace", "2"]),
        daemon(&redis, &["--reconnect-grace", "2"]),
    );
    let k = Keys::new();
    let tok = token(&k.hs, "hs-bot", 300);
    let (mut old, _) = bot(&b, &tok);
    let (mut c, id) = call_across(&a, &mut old, true);

    let (mut new, _) = bot(&a, &tok);
    assert_eq!(recv_close(&mut old), Some(4000), "B closes the old socket");
    ice_gets_through(&mut c, &mut new, &id, "1");
    ice_gets_through(&mut new, &mut c, &id, "2");
    assert_eq!(a.metric("botcall_calls_active"), 1.0);
    b.eventually("B to let go of the call", Duration::from_secs(10), || {
        b.metric("botcall_calls_active") == 0.0
    });
    // The bot's socket goes away for good: after the grace, `peer_gone`.
    drop(new);
    assert_eq!(hangup_of(&mut c, &id), "peer_gone");
    assert_eq!(
        a.metric("botcall_calls_ended_total{reason=\"bot_gone\"}"),
        1.0
    );
    assert_eq!(a.metric("botcall_calls_active"), 0.0);
}

/// Mid-ring, the bot moves to the caller's daemon, then to a third daemon,
/// then back where it started, and answers there: the caller gets the
/// answer, and each side's hang-up reaches the other.
#[test]
fn a_ringing_call_follows_its_bot_across_three_daemons_and_back() {
    let redis = RedisServer::start();
    let (a, b, c_d) = (
        daemon(&redis, &[]),
        daemon(&redis, &[]),
        daemon(&redis, &[]),
    );
    let k = Keys::new();
    let tok = token(&k.hs, "hs-bot", 300);
    let (mut on_b, _) = bot(&b, &tok);
    let (mut c, id) = call_across(&a, &mut on_b, false);
    let mut here = on_b;
    for (step, d) in [(&a, "a"), (&c_d, "c"), (&b, "b")].into_iter().enumerate() {
        let (mut next, _) = bot(d.0, &tok);
        assert_eq!(recv_close(&mut here), Some(4000), "step {step} ({})", d.1);
        ice_gets_through(&mut c, &mut next, &id, &format!("1{step}"));
        ice_gets_through(&mut next, &mut c, &id, &format!("2{step}"));
        here = next;
    }
    send(
        &mut here,
        json!({"type": "answer", "call_id": id, "sdp_answer": "v=0\r\n"}),
    );
    let m = recv(&mut c);
    assert_eq!((m["type"].as_str(), &m["call_id"]), (Some("answer"), &id));
    send(
        &mut c,
        json!({"type": "hangup", "call_id": id, "reason": "bye"}),
    );
    assert_eq!(hangup_of(&mut here, &id), "bye");
    for d in [&a, &b, &c_d] {
        d.eventually("every daemon to let go", Duration::from_secs(10), || {
            d.metric("botcall_calls_active") == 0.0
        });
    }
    assert_eq!(
        a.metric("botcall_calls_ended_total{reason=\"caller_hangup\"}"),
        1.0
    );
}

/// The bot's socket closes mid-call (B sees it go) and the bot comes back
/// through another daemon within the reconnect grace: the call continues
/// there, as on the same daemon.
#[test]
fn a_bot_that_drops_and_comes_back_elsewhere_within_the_grace_keeps_its_call() {
    let redis = RedisServer::start();
    let (a, b, c_d) = (
        daemon(&redis, &["--reconnect-grace", "30"]),
        daemon(&redis, &["--reconnect-grace", "30"]),
        daemon(&redis, &["--reconnect-grace", "30"]),
    );
    let k = Keys::new();
    let tok = token(&k.hs, "hs-bot", 300);
    let (mut on_b, _) = bot(&b, &tok);
    let (mut c, id) = call_across(&a, &mut on_b, true);
    drop(on_b);
    b.eventually("B to see the bot go", Duration::from_secs(10), || {
        online(&b, "hs-bot") == Some(false)
    });
    let (mut on_c, _) = bot(&c_d, &tok);
    ice_gets_through(&mut c, &mut on_c, &id, "1");
    ice_gets_through(&mut on_c, &mut c, &id, "2");
    send(
        &mut on_c,
        json!({"type": "hangup", "call_id": id, "reason": "done"}),
    );
    assert_eq!(hangup_of(&mut c, &id), "done");
}

/// Sends each command (words) to Redis on `port` over one plain socket and
/// returns the first line of each answer (`+OK`, `:1`, `-ERR ...`).
fn redis_raw(port: u16, cmds: &[&[&str]]) -> Vec<String> {
    use std::io::{BufRead, BufReader, Write};
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(WAIT_FLOOR)).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    cmds.iter()
        .map(|words| {
            let mut out = format!("*{}\r\n", words.len());
            for a in *words {
                out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
            }
            w.write_all(out.as_bytes()).unwrap();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            line.trim_end().to_string()
        })
        .collect()
}

/// Starts a daemon on `url` expecting it to refuse; its stderr.
fn refused_start(url: &str) -> String {
    let dir = TempDir::new("badredis");
    let out = std::process::Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--stun-listen",
            "off",
            "--store",
            url,
        ])
        .arg("--state-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{url} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_password_protected_redis_and_its_database_number_come_from_the_url() {
    let redis = RedisServer::start();
    let port = redis.port;
    assert_eq!(
        redis_raw(
            port,
            &[
                &[
                    "ACL",
                    "SETUSER",
                    "bob",
                    "on",
                    ">b0b pass",
                    "~*",
                    "&*",
                    "+@all"
                ],
                &["CONFIG", "SET", "requirepass", "s3cr@t"],
            ]
        ),
        ["+OK", "+OK"]
    );
    // Password only (AUTH pass), %-escaped; a user and a password (AUTH
    // user pass); both on database 3 (SELECT 3).
    let a = Daemon::start(&["--store", &format!("redis://:s3cr%40t@127.0.0.1:{port}/3")]);
    let b = Daemon::start(&[
        "--store",
        &format!("redis://bob:b0b%20pass@127.0.0.1:{port}/3"),
    ]);
    let k = Keys::new();
    let r = register(
        &a,
        &token(&k.hs, "hs-bot-2", 300),
        r#"{"agent_id":"hs-bot-2"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // A call from A to a bot on B: B's subscriber connection is
    // authenticated too.
    let (mut bot_ws, _) = bot(&b, &token(&k.hs, "hs-bot", 300));
    assert_eq!(online(&a, "hs-bot"), Some(true));
    let (mut c, id) = call_across(&a, &mut bot_ws, true);
    send(
        &mut bot_ws,
        json!({"type": "hangup", "call_id": id, "reason": "bye"}),
    );
    assert_eq!(recv(&mut c)["type"], "hangup");
    assert_eq!(
        redis_raw(
            port,
            &[
                &["AUTH", "s3cr@t"],
                &["EXISTS", "bc:a:hs-bot-2"],
                &["SELECT", "3"],
                &["EXISTS", "bc:a:hs-bot-2"],
                &["EXISTS", "bc:a:hs-bot"],
            ]
        ),
        ["+OK", ":0", "+OK", ":1", ":1"]
    );
    assert!(a.log().contains("redis://:***@127.0.0.1"), "{}", a.log());
    assert!(!a.log().contains("s3cr"), "the password is not logged");
    assert!(!b.log().contains("b0b"), "the password is not logged");

    // A wrong password stops the start, with the reason and without it.
    let err = refused_start(&format!("redis://:wrong-pw@127.0.0.1:{port}/0"));
    assert!(err.contains("cannot reach Redis"), "{err}");
    assert!(err.contains("WRONGPASS"), "{err}");
    assert!(!err.contains("wrong-pw"), "{err}");
}

#[test]
fn unusable_store_urls_stop_the_start_naming_the_option() {
    for (url, why) in [
        ("rediss://127.0.0.1:6379/0", "store"),
        ("unix:///run/redis.sock", "store"),
        ("redis://127.0.0.1:6379/x", "database must be a number"),
        ("redis://127.0.0.1:99999/0", "bad port"),
    ] {
        let err = refused_start(url);
        assert!(err.contains(why) && err.contains("store"), "{url}: {err}");
    }
}

#[test]
fn scripts_flushed_from_redis_are_sent_again() {
    let redis = RedisServer::start();
    let a = daemon(&redis, &[]);
    let k = Keys::new();
    let reg = |id: &str| {
        register(
            &a,
            &token(&k.hs, id, 300),
            &format!(r#"{{"agent_id":"{id}"}}"#),
        )
        .status
    };
    assert_eq!(reg("hs-bot"), 200);
    // Redis forgets every script (as after a restart with the data kept):
    // EVALSHA answers NOSCRIPT, and the daemon sends the script itself.
    assert_eq!(redis_raw(redis.port, &[&["SCRIPT", "FLUSH"]]), ["+OK"]);
    assert_eq!(a.get("/lookup/hs-bot").status, 200);
    assert_eq!(reg("hs-bot-2"), 200);
    assert_eq!(a.get("/lookup/hs-bot-2").status, 200);
    assert_eq!(a.get("/healthz").json()["store_up"], true);
    assert_eq!(a.metric("botcall_redis_up"), 1.0);
}
