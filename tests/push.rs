//! Web Push end to end over real sockets: a real daemon posts to a loopback
//! push service (`tests/push_service.py`, a real HTTP server) that decrypts
//! every message with the third-party `http_ece` package and checks the
//! VAPID token with PyJWT against `GET /v1/push/key`. 410 removes the
//! subscription, 429 + Retry-After is retried, a hanging service blocks
//! nothing, bots' callbacks reach only people who granted them, and two
//! daemons on one Redis notify once.
mod common;

use std::process::Command;
use std::time::Duration;

#[allow(unused_imports)]
use common::PushService;
use common::*;
use serde_json::{Value, json};

const SUBJECT: &str = "mailto:ops@botcall.example";

fn push_daemon(extra: &[&str]) -> Daemon {
    let mut args = vec!["--push-subject", SUBJECT, "--push-allow-loopback"];
    args.extend_from_slice(extra);
    Daemon::start(&args)
}

fn post_json(d: &Daemon, method: &str, path: &str, body: &Value) -> Resp {
    http(
        d.addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn subscribe(d: &Daemon, agent: &str, sub: &Value, events: &[&str]) -> Resp {
    post_json(
        d,
        "POST",
        "/v1/push/subscriptions",
        &json!({"agent_id": agent, "subscription": sub, "events": events}),
    )
}

fn register_named(d: &Daemon, id: &str, name: &str) {
    let k = Keys::new();
    let r = register(
        d,
        &token(&k.hs, id, 300),
        &json!({"agent_id": id, "name": name}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

fn hs_bot(d: &Daemon, id: &str) -> Ws {
    let (ws, welcome) = bot(d, &token(&Keys::new().hs, id, 300));
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    ws
}

fn metric(d: &Daemon, series: &str) -> f64 {
    d.metric(series)
}

fn wait_messages(d: &Daemon, ps: &PushService, name: &str, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    d.eventually(
        &format!("{n} push message(s) for {name}"),
        WAIT_FLOOR,
        || {
            got = ps.received(name);
            got.len() >= n
        },
    );
    got
}

#[test]
fn online_push_is_encrypted_signed_and_read_by_a_third_party() {
    let d = push_daemon(&[]);
    let key = d.get("/v1/push/key");
    assert_eq!(key.status, 200, "{}", key.text());
    let public = key.json()["public_key"].as_str().unwrap().to_string();
    assert_eq!(public.len(), 87, "a base64url 65-byte point: {public}");
    register_named(&d, "hs-bot", "Weather");
    let ps = PushService::start(&d);

    let sub = ps.subscription("alice");
    let r = subscribe(&d, "hs-bot", &sub, &["online"]);
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 22);
    assert_eq!(r.json()["events"], json!(["online"]));
    // The PWA renews on every visit: same subscription, same id, 200.
    let again = subscribe(&d, "hs-bot", &sub, &["online", "callback"]);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["id"], id.as_str());

    let ws = hs_bot(&d, "hs-bot");
    let got = wait_messages(&d, &ps, "alice", 1);
    let m = &got[0];
    assert_eq!(m["status"], 201, "{m}");
    assert_eq!(m["encoding"], "aes128gcm");
    assert!(m["decrypt_error"].is_null(), "{m}");
    assert_eq!(
        m["payload"],
        json!({"type": "online", "agent_id": "hs-bot", "title": "Weather is online",
               "body": "Tap to call", "url": "/call/hs-bot"})
    );
    let v = &m["vapid"];
    assert_eq!(v["ok"], true, "{m}");
    assert_eq!(v["k_matches"], true);
    assert_eq!(v["aud"], format!("http://{}", ps.addr));
    assert_eq!(v["sub"], SUBJECT);
    assert_eq!(v["alg"], "ES256");
    assert!(v["exp_in"].as_i64().unwrap() <= 24 * 3600);
    assert_eq!(m["ttl"], "3600");
    assert_eq!(m["urgency"], "normal");
    assert_eq!(m["topic"].as_str().unwrap().len(), 32);
    d.eventually("the delivery in /metrics", WAIT_FLOOR, || {
        metric(
            &d,
            r#"botcall_push_messages_total{event="online",outcome="delivered"}"#,
        ) == 1.0
    });

    // A flapping bot does not spam: back within the debounce, no message.
    drop(ws);
    d.eventually("the bot offline", WAIT_FLOOR, || {
        d.get("/lookup/hs-bot").json()["online"] == false
    });
    let _ws = hs_bot(&d, "hs-bot");
    d.eventually("the debounced event", WAIT_FLOOR, || {
        metric(
            &d,
            r#"botcall_push_events_total{event="online",outcome="debounced"}"#,
        ) == 1.0
    });
    assert_eq!(ps.received("alice").len(), 1);

    // The VAPID key survives a restart.
    let dir = d.stop();
    let d2 = Daemon::start_in(dir, &["--push-subject", SUBJECT, "--push-allow-loopback"]);
    assert_eq!(d2.get("/v1/push/key").json()["public_key"], public.as_str());
}

/// The real path to a push service: name resolution, rustls with a
/// verified certificate chain, VAPID `aud` = the https origin.
#[test]
fn push_goes_over_verified_tls() {
    let ca = TempDir::new("push-ca");
    PushService::make_ca(ca.path());
    let ca_file = ca.path().join("ca.pem");
    let d = push_daemon(&["--push-ca-file", ca_file.to_str().unwrap()]);
    register_named(&d, "hs-bot", "Weather");
    let ps = PushService::start_tls(&d, ca.path());
    let sub = ps.subscription("tls-1");
    assert!(
        sub["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("https://localhost:")
    );
    assert_eq!(subscribe(&d, "hs-bot", &sub, &["online"]).status, 201);
    // A daemon that does not trust that CA cannot deliver there.
    let untrusting = push_daemon(&["--push-ttl", "3", "--push-timeout", "2"]);
    register_named(&untrusting, "hs-bot", "Weather");
    let sub2 = ps.subscription("tls-2");
    assert_eq!(
        subscribe(&untrusting, "hs-bot", &sub2, &["online"]).status,
        201
    );

    let _ws = hs_bot(&d, "hs-bot");
    let _ws2 = hs_bot(&untrusting, "hs-bot");
    let got = wait_messages(&d, &ps, "tls-1", 1);
    assert_eq!(got[0]["status"], 201, "{}", got[0]);
    assert_eq!(got[0]["payload"]["title"], "Weather is online");
    let aud = got[0]["vapid"]["aud"].as_str().unwrap();
    assert!(aud.starts_with("https://localhost:"), "{aud}");
    assert_eq!(got[0]["vapid"]["ok"], true, "{}", got[0]);
    assert_eq!(got[0]["tls"]["version"], "TLSv1.3", "{}", got[0]);
    untrusting.eventually("the untrusted TLS to fail", WAIT_FLOOR, || {
        metric(
            &untrusting,
            r#"botcall_push_messages_total{event="online",outcome="expired"}"#,
        ) == 1.0
    });
    assert!(ps.received("tls-2").is_empty());
    assert!(untrusting.log().contains("TLS"), "{}", untrusting.log());
}

/// The push client's cut-down rustls provider (src/push/tls.rs: no X25519,
/// ChaCha20 or Ed25519) still reaches a TLS 1.2-only service with an RSA
/// certificate chain (ECDHE-RSA with AES-GCM, RSA signatures), and TLS 1.3
/// services with ECDSA P-256 chains (`push_goes_over_verified_tls`).
#[test]
fn push_speaks_tls12_with_rsa_certificates() {
    let ca = TempDir::new("push-ca-rsa");
    PushService::make_ca_with(ca.path(), &["--rsa"]);
    let ca_file = ca.path().join("ca.pem");
    let d = push_daemon(&["--push-ca-file", ca_file.to_str().unwrap()]);
    register_named(&d, "hs-bot", "Weather");
    let ps = PushService::start_tls12(&d, ca.path());
    let sub = ps.subscription("tls-rsa");
    assert_eq!(subscribe(&d, "hs-bot", &sub, &["online"]).status, 201);
    let _ws = hs_bot(&d, "hs-bot");
    let got = wait_messages(&d, &ps, "tls-rsa", 1);
    assert_eq!(got[0]["status"], 201, "{}", got[0]);
    assert_eq!(got[0]["payload"]["title"], "Weather is online");
    assert_eq!(got[0]["vapid"]["ok"], true, "{}", got[0]);
    assert_eq!(got[0]["tls"]["version"], "TLSv1.2", "{}", got[0]);
    let cipher = got[0]["tls"]["cipher"].as_str().unwrap();
    assert!(
        cipher.starts_with("ECDHE-RSA-AES") && cipher.contains("GCM"),
        "{cipher}"
    );
}

/// The push client's trust anchors are `push_ca_file` (the system bundle
/// by default): a missing file, or one without a CA certificate, stops the
/// daemon at start with an error naming it, not at the first delivery.
#[test]
fn an_unusable_push_ca_file_stops_the_start() {
    let dir = TempDir::new("push-ca-bad");
    let missing = dir.path().join("missing.pem");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let keys = dir.path().join("keys.json");
    std::fs::write(&keys, Keys::new().file()).unwrap();
    for (file, says) in [(&missing, "No such file"), (&empty, "no CA certificate")] {
        let mut child = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--stun-listen", "127.0.0.1:0"])
            .args(["--push-subject", SUBJECT, "--push-ca-file"])
            .arg(file)
            .arg("--keys")
            .arg(&keys)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if t0.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("botcalld started with push_ca_file {}", file.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(
            err.contains(&format!("push_ca_file {}", file.display())) && err.contains(says),
            "{err}"
        );
    }
}

#[test]
fn gone_removes_the_subscription_and_429_is_retried() {
    let d = push_daemon(&[]);
    register_named(&d, "hs-bot", "Weather");
    let ps = PushService::start(&d);
    let gone = ps.subscription("gone-1");
    assert_eq!(subscribe(&d, "hs-bot", &gone, &["online"]).status, 201);
    let busy = ps.subscription("busy-1");
    assert_eq!(subscribe(&d, "hs-bot", &busy, &["online"]).status, 201);
    let _ws = hs_bot(&d, "hs-bot");

    let got = wait_messages(&d, &ps, "busy-1", 2);
    assert_eq!(
        got.iter().map(|m| m["status"].clone()).collect::<Vec<_>>(),
        [json!(429), json!(201)]
    );
    // The retry is a fresh encryption of the same message.
    assert_eq!(got[0]["payload"], got[1]["payload"]);
    let gone_msgs = wait_messages(&d, &ps, "gone-1", 1);
    assert_eq!(gone_msgs[0]["status"], 410);
    d.eventually("the 410 to remove the subscription", WAIT_FLOOR, || {
        metric(
            &d,
            r#"botcall_push_subscriptions_total{outcome="removed_gone"}"#,
        ) == 1.0
    });
    let del = post_json(
        &d,
        "DELETE",
        "/v1/push/subscriptions",
        &json!({"agent_id": "hs-bot", "endpoint": gone["endpoint"]}),
    );
    assert_eq!((del.status, del.code()), (404, "not_found".into()));
    let m = d.get("/metrics").text();
    for (series, want) in [
        (
            r#"botcall_push_messages_total{event="online",outcome="retried"}"#,
            1.0,
        ),
        (
            r#"botcall_push_messages_total{event="online",outcome="delivered"}"#,
            1.0,
        ),
        (
            r#"botcall_push_messages_total{event="online",outcome="gone"}"#,
            1.0,
        ),
        ("botcall_push_subscriptions", 1.0),
    ] {
        assert_eq!(metric_value(&m, series), want, "{series}\n{m}");
    }
    // DELETE stops the other one.
    let del = post_json(
        &d,
        "DELETE",
        "/v1/push/subscriptions",
        &json!({"agent_id": "hs-bot", "endpoint": busy["endpoint"]}),
    );
    assert_eq!(del.status, 200, "{}", del.text());
    d.eventually("the gauge to drop to 0", WAIT_FLOOR, || {
        metric(&d, "botcall_push_subscriptions") == 0.0
    });
}

/// Accepts one connection, or panics after `within`.
fn accept_within(l: &std::net::TcpListener, within: Duration) -> std::net::TcpStream {
    l.set_nonblocking(true).unwrap();
    let t0 = std::time::Instant::now();
    loop {
        match l.accept() {
            Ok((s, _)) => return s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(t0.elapsed() < within, "nobody connected");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_hanging_push_service_blocks_nothing() {
    let d = push_daemon(&["--push-timeout", "1", "--push-ttl", "3"]);
    register_named(&d, "hs-bot", "Weather");
    let ps = PushService::start(&d);
    // A push service that accepts and never answers.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sub = ps.subscription("hang");
    sub["endpoint"] = json!(format!("http://{}/p/hang", hang.local_addr().unwrap()));
    assert_eq!(subscribe(&d, "hs-bot", &sub, &["online"]).status, 201);
    let _ws = hs_bot(&d, "hs-bot");
    let _held = accept_within(&hang, WAIT_FLOOR);
    // While our request hangs, the daemon answers everyone else.
    assert_eq!(d.get("/healthz").status, 200);
    let (_c, w) = caller(&d);
    assert_eq!(w["type"], "welcome");
    d.eventually(
        "the hung message to time out and expire",
        WAIT_FLOOR,
        || {
            metric(
                &d,
                r#"botcall_push_messages_total{event="online",outcome="expired"}"#,
            ) == 1.0
        },
    );
}

#[test]
fn callbacks_reach_only_people_who_granted_them() {
    let d = push_daemon(&["--push-callbacks-per-subscriber", "2"]);
    register_named(&d, "hs-bot", "Weather");
    register_named(&d, "hs-bot-2", "Other");
    let ps = PushService::start(&d);
    let sub_id = |name: &str, agent: &str, events: &[&str]| {
        let r = subscribe(&d, agent, &ps.subscription(name), events);
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_string()
    };
    let carol = sub_id("carol", "hs-bot", &["callback"]);
    let dave = sub_id("dave", "hs-bot", &["online"]);
    let erin = sub_id("erin", "hs-bot-2", &["callback"]);
    let mut ws = hs_bot(&d, "hs-bot");

    // Carol calls and hands the bot her subscription id with the call.
    let (mut c, _) = caller(&d);
    send(
        &mut c,
        json!({"type": "call", "to": "hs-bot", "sdp_offer": offer(), "callback": carol}),
    );
    assert_eq!(recv(&mut c)["type"], "ringing");
    let inc = recv(&mut ws);
    assert_eq!(
        (inc["type"].as_str(), inc["callback"].as_str()),
        (Some("incoming"), Some(carol.as_str())),
        "{inc}"
    );
    send(
        &mut ws,
        json!({"type": "hangup", "call_id": inc["call_id"], "reason": "later"}),
    );
    assert_eq!(recv(&mut c)["type"], "hangup");
    // Later, the bot asks her to call back.
    send(
        &mut ws,
        json!({"type": "callback", "to": inc["callback"], "text": "Your forecast is ready"}),
    );
    let got = wait_messages(&d, &ps, "carol", 1);
    assert_eq!(
        got[0]["payload"],
        json!({"type": "callback", "agent_id": "hs-bot", "title": "Weather asks you to call back",
               "body": "Your forecast is ready", "url": "/call/hs-bot"})
    );
    assert_eq!(got[0]["urgency"], "high");
    assert_eq!(got[0]["vapid"]["ok"], true, "{}", got[0]);

    // Not granted, another bot's subscriber, no such id: one answer.
    for to in [dave.as_str(), erin.as_str(), "AAAAAAAAAAAAAAAAAAAAAA"] {
        send(&mut ws, json!({"type": "callback", "to": to, "text": "hi"}));
        let e = recv(&mut ws);
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("error"), Some("not_subscribed")),
            "{e}"
        );
    }
    // Text is bounded.
    send(
        &mut ws,
        json!({"type": "callback", "to": carol, "text": "x".repeat(201)}),
    );
    assert_eq!(recv(&mut ws)["code"], "bad_field");
    // Callers cannot send callbacks.
    send(
        &mut c,
        json!({"type": "callback", "to": carol, "text": "hi"}),
    );
    assert_eq!(recv(&mut c)["code"], "wrong_role");
    // Per subscriber: 2 an hour here.
    send(
        &mut ws,
        json!({"type": "callback", "to": carol, "text": "second"}),
    );
    wait_messages(&d, &ps, "carol", 2);
    send(
        &mut ws,
        json!({"type": "callback", "to": carol, "text": "third"}),
    );
    let e = recv(&mut ws);
    assert_eq!(e["code"], "rate_limited", "{e}");
    assert_eq!(ps.received("carol").len(), 2);
    // Dave has only the `online` message of the bot's hello; Erin nothing.
    assert!(
        ps.received("dave")
            .iter()
            .all(|m| m["payload"]["type"] == "online")
    );
    assert!(ps.received("erin").is_empty());
    assert_eq!(
        metric(
            &d,
            r#"botcall_push_events_total{event="callback",outcome="not_subscribed"}"#
        ),
        3.0
    );
}

#[test]
fn bad_subscriptions_get_clear_errors() {
    let d = push_daemon(&["--push-per-ip", "2", "--max-body-bytes", "2048"]);
    register_named(&d, "hs-bot", "Weather");
    let ps = PushService::start(&d);
    let good = ps.subscription("ok");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut s = good.clone();
        f(&mut s);
        s
    };
    let cases: Vec<(Value, &str, u16, &str)> = vec![
        (
            with(&|s| s["keys"]["p256dh"] = json!("BCVxsr7N")),
            "hs-bot",
            400,
            "bad_key",
        ),
        (
            // A 65-byte string that is not a point on P-256.
            with(&|s| s["keys"]["p256dh"] = json!(format!("BA{}", "A".repeat(85)))),
            "hs-bot",
            400,
            "bad_key",
        ),
        (
            with(&|s| s["keys"]["auth"] = json!("AAAA")),
            "hs-bot",
            400,
            "bad_key",
        ),
        (
            with(&|s| s["keys"]["auth"] = json!("!!")),
            "hs-bot",
            400,
            "bad_field",
        ),
        (
            with(&|s| s["endpoint"] = json!("ftp://push.example/x")),
            "hs-bot",
            400,
            "bad_endpoint",
        ),
        (
            with(&|s| s["endpoint"] = json!("https://10.0.0.1/x")),
            "hs-bot",
            400,
            "bad_endpoint",
        ),
        (good.clone(), "nobody", 404, "unknown_agent"),
        (good.clone(), "bad/id", 400, "bad_field"),
    ];
    for (sub, agent, status, code) in cases {
        let r = subscribe(&d, agent, &sub, &["online"]);
        assert_eq!((r.status, r.code()), (status, code.to_string()), "{sub}");
    }
    let r = subscribe(&d, "hs-bot", &good, &["everything"]);
    assert_eq!(r.code(), "bad_field");
    // Oversize: refused before parsing.
    let big = json!({"agent_id": "hs-bot", "subscription": good, "events": ["online"], "pad": "x".repeat(4096)});
    let r = post_json(&d, "POST", "/v1/push/subscriptions", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    let r = http(
        d.addr,
        "POST",
        "/v1/push/subscriptions",
        &[("Content-Type", "text/plain")],
        b"{}",
    );
    assert_eq!((r.status, r.code()), (415, "unsupported_media_type".into()));
    // Per-IP cap.
    for name in ["a", "b"] {
        assert_eq!(
            subscribe(&d, "hs-bot", &ps.subscription(name), &["online"]).status,
            201
        );
    }
    let r = subscribe(&d, "hs-bot", &ps.subscription("c"), &["online"]);
    assert_eq!((r.status, r.code()), (429, "too_many_subscriptions".into()));
    assert_eq!(
        metric(
            &d,
            r#"botcall_push_subscriptions_total{outcome="too_many_subscriptions"}"#
        ),
        1.0
    );

    // Without the test-only flag, http:// loopback endpoints are refused.
    let strict = Daemon::start(&["--push-subject", SUBJECT]);
    register_named(&strict, "hs-bot", "Weather");
    let r = subscribe(&strict, "hs-bot", &good, &["online"]);
    assert_eq!((r.status, r.code()), (400, "bad_endpoint".into()));
    // Without a contact, push is off and says so.
    let off = Daemon::start(&[]);
    assert_eq!(off.get("/v1/push/key").code(), "push_disabled");
    assert_eq!(subscribe(&off, "hs-bot", &good, &["online"]).status, 503);
    // A contact push services would refuse stops the daemon at start.
    for bad in [
        "ops@botcall.example",
        "mailto:ops",
        "http://botcall.example",
    ] {
        let out = Command::new(BIN)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--stun-listen",
                "off",
                "--push-subject",
                bad,
            ])
            .env_clear()
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("push_subject"), "{err}");
    }
}

#[test]
fn two_daemons_on_redis_notify_once() {
    let redis = RedisServer::start();
    let url = redis.url();
    let args = [
        "--store",
        url.as_str(),
        "--push-subject",
        SUBJECT,
        "--push-allow-loopback",
    ];
    let a = Daemon::start(&args);
    let b = Daemon::start(&args);
    // One VAPID key for the cluster: a subscription is bound to the key.
    let key = a.get("/v1/push/key").json()["public_key"].clone();
    assert_eq!(b.get("/v1/push/key").json()["public_key"], key);
    register_named(&a, "hs-bot", "Weather");
    let ps = PushService::start(&a);
    let r = subscribe(&a, "hs-bot", &ps.subscription("frank"), &["online"]);
    assert_eq!(r.status, 201, "{}", r.text());

    let ws = hs_bot(&b, "hs-bot");
    let got = wait_messages(&b, &ps, "frank", 1);
    assert_eq!(got[0]["payload"]["title"], "Weather is online");
    assert_eq!(got[0]["vapid"]["ok"], true, "{}", got[0]);
    // Back on A within the debounce: the cluster already notified.
    drop(ws);
    b.eventually("the bot offline", WAIT_FLOOR, || {
        a.get("/lookup/hs-bot").json()["online"] == false
    });
    let mut ws = hs_bot(&a, "hs-bot");
    // A call through B to the bot on A carries the caller's subscription id.
    let id = r.json()["id"].as_str().unwrap().to_string();
    let (mut c, _) = caller(&b);
    send(
        &mut c,
        json!({"type": "call", "to": "hs-bot", "sdp_offer": offer(), "callback": id}),
    );
    let inc = recv(&mut ws);
    assert_eq!(inc["callback"], id.as_str(), "{inc}");
    a.eventually("A to debounce", WAIT_FLOOR, || {
        metric(
            &a,
            r#"botcall_push_events_total{event="online",outcome="debounced"}"#,
        ) == 1.0
    });
    assert_eq!(ps.received("frank").len(), 1);
    assert_eq!(
        metric(
            &a,
            r#"botcall_push_messages_total{event="online",outcome="delivered"}"#
        ) + metric(
            &b,
            r#"botcall_push_messages_total{event="online",outcome="delivered"}"#
        ),
        1.0
    );
}
