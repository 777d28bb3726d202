//! The HTTP API against the real daemon (issue 3, "Must show"): every test
//! starts its own `botcalld` on a loopback port with the flags it needs and
//! talks HTTP/1.1 to it over real sockets — mostly raw bytes, so malformed
//! input reaches the daemon exactly as written.
//!
//! Timing: nothing sleeps longer than the behaviour under test needs (TTL
//! expiry is per Unix second, so those tests take 2–3 s); every wait is
//! bounded.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------- helpers

/// Asserts an error answer: the status, `Content-Type: application/json`,
/// and a body `{"error": "<non-empty text>", "code": code, ...}`.
#[track_caller]
fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "status; body: {}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "content type of {}",
        r.text()
    );
    let v = r.json();
    assert_eq!(v["code"], code, "code; body: {}", r.text());
    assert!(
        v["error"].as_str().is_some_and(|e| !e.is_empty()),
        "error text missing: {}",
        r.text()
    );
}

/// Asserts a 401 with `reason`.
#[track_caller]
fn assert_unauthorized(r: &Resp, reason: &str) {
    assert_error(r, 401, "unauthorized");
    assert_eq!(r.json()["reason"], reason, "{}", r.text());
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
}

/// Unix seconds as i64 (token claims).
fn now_i() -> i64 {
    now() as i64
}

/// BotAuth claims for `sub`, valid `ttl` s.
fn claims(sub: &str, ttl: i64) -> String {
    let n = now_i();
    format!(r#"{{"sub":"{sub}","iat":{n},"exp":{}}}"#, n + ttl)
}

/// An open-registration token: `key` signs, `jwk_of`'s public key is in the header.
fn open_token(key: &botcall_core::jwt::SigningKey, sub: &str) -> String {
    sign(key, &claims(sub, 300), true)
}

fn reg_body(id: &str) -> String {
    json!({ "agent_id": id }).to_string()
}

/// Registers `id` with `key` (token for `id`), body `{"agent_id": id, ..extra}`.
fn reg(d: &Daemon, key: &botcall_core::jwt::SigningKey, id: &str, extra: Value) -> Resp {
    let mut body = json!({ "agent_id": id });
    if let Value::Object(m) = extra {
        body.as_object_mut().unwrap().extend(m);
    }
    register(d, &token(key, id, 300), &body.to_string())
}

fn delete(d: &Daemon, id: &str, tok: &str) -> Resp {
    let auth = format!("Bearer {tok}");
    http(
        d.addr,
        "DELETE",
        &format!("/register/{id}"),
        &[("Authorization", &auth)],
        b"",
    )
}

/// POST /register with exactly these headers and body bytes.
fn post(d: &Daemon, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    http(d.addr, "POST", "/register", headers, body)
}

/// Raw bytes on a fresh connection; every response until the server closes.
fn raw_all(d: &Daemon, bytes: &[u8]) -> Vec<Resp> {
    parse_responses(&raw(d.addr, bytes))
}

/// Raw bytes on a fresh connection; the one response, and that the server closed.
#[track_caller]
fn raw_one(d: &Daemon, bytes: &[u8]) -> Resp {
    let mut all = raw_all(d, bytes);
    assert_eq!(
        all.len(),
        1,
        "expected one response to {:?}",
        String::from_utf8_lossy(bytes)
    );
    all.pop().unwrap()
}

/// Minimal standard base64url (no padding), for hand-made tokens.
fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A keep-alive connection that reads responses one at a time.
struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Conn {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

    /// The next response (body by Content-Length); `None` on a clean EOF.
    fn read(&mut self) -> Option<Resp> {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = self.r.read_until(b'\n', &mut line).expect("read response");
            if n == 0 {
                assert!(head.is_empty(), "EOF inside a response head");
                return None;
            }
            head.extend_from_slice(&line);
            if line == b"\r\n" {
                break;
            }
        }
        let mut resp = parse_responses(&head).pop().unwrap();
        let len: usize = resp
            .header("content-length")
            .map(|v| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        self.r.read_exact(&mut body).unwrap();
        resp.body = body;
        Some(resp)
    }

    /// True if the server closed (EOF) within the read timeout, with no bytes.
    fn closed_silently(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(self.r.read_to_end(&mut rest), Ok(0))
    }
}

fn get_req(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n")
}

/// A keys file: the harness's, plus `extra` agent entries (id → JWK text).
fn keys_file_with(extra: &[(&str, String)]) -> TempDir {
    let mut v: Value = serde_json::from_str(&Keys::new().file()).unwrap();
    for (id, jwk) in extra {
        v["agents"][*id] = serde_json::from_str(jwk).unwrap();
    }
    let dir = TempDir::new("keys");
    std::fs::write(dir.path().join("keys.json"), v.to_string()).unwrap();
    dir
}

/// A daemon where one id has two valid keys: open registration makes
/// `thumbprint(other_ec)` other_ec's id (key embedded in the token), and the
/// keys file *also* gives that id to the HS256 key. The only configuration
/// in which two different keys can prove the same id on one daemon — so the
/// owner check (`id_taken`) is reachable over HTTP.
fn two_keys_one_id(extra: &[&str]) -> (Daemon, String) {
    let keys = Keys::new();
    let id = Keys::thumbprint(&keys.other_ec);
    let dir = keys_file_with(&[(&id, Keys::public_jwk(&keys.hs))]);
    let mut flags = vec!["--open-registration"];
    flags.extend_from_slice(extra);
    (Daemon::start_in(dir, &flags), id)
}

// ------------------------------------------------------------ registering

#[test]
fn register_hs256_and_lookup_shows_every_field() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let body = json!({
        "agent_id": "hs-bot", "endpoint": "wss://example.org/bot", "name": "Weather \"W\"",
        "capabilities": {"audio": ["opus", "speex", "OPUS"]}, "ttl": 120, "max_calls": 3, "listed": true
    });
    let r = register(&d, &token(&k.hs, "hs-bot", 300), &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({"confirmed": true, "agent_id": "hs-bot", "expires_in": 120})
    );

    let l = d.get("/lookup/hs-bot");
    assert_eq!(l.status, 200, "{}", l.text());
    let v = l.json();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "agent_id",
        "answer_sig",
        "capabilities",
        "key",
        "endpoint",
        "expires_in",
        "listed",
        "max_calls",
        "name",
        "online",
    ];
    let mut got = keys.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "lookup fields: {v}");
    assert_eq!(v["agent_id"], "hs-bot");
    assert_eq!(v["endpoint"], "wss://example.org/bot");
    assert_eq!(v["name"], "Weather \"W\"");
    assert_eq!(v["online"], false);
    // Unknown codec names are ignored; names are case-insensitive.
    assert_eq!(v["capabilities"], json!({"audio": ["opus"]}));
    let e = v["expires_in"].as_u64().unwrap();
    assert!((118..=120).contains(&e), "expires_in {e}");
    assert_eq!(v["listed"], true);
    assert_eq!(v["max_calls"], 3);
    // An HS256 bot cannot prove its answers to a caller: nothing published.
    assert_eq!(
        (&v["answer_sig"], &v["key"]),
        (&json!("none"), &Value::Null)
    );

    // Defaults: no endpoint/name (null), opus, ttl 300, 1 call, unlisted.
    let r = reg(&d, &k.hs, "hs-bot-2", json!({}));
    assert_eq!(r.json()["expires_in"], 300);
    let v = d.get("/lookup/hs-bot-2").json();
    assert_eq!(v["endpoint"], Value::Null);
    assert_eq!(v["name"], Value::Null);
    assert_eq!(v["capabilities"], json!({"audio": ["opus"]}));
    assert_eq!(
        (v["listed"].clone(), v["max_calls"].clone()),
        (json!(false), json!(1))
    );
    // "capabilities": {} declares no codecs.
    reg(&d, &k.hs, "hs-bot-3", json!({"capabilities": {}}));
    assert_eq!(
        d.get("/lookup/hs-bot-3").json()["capabilities"],
        json!({"audio": []})
    );
}

#[test]
fn register_es256_and_cached_reregistration() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let t = token(&k.ec, "ec-bot", 300);
    let r = register(&d, &t, &reg_body("ec-bot"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["confirmed"], true);
    assert_eq!(r.json()["agent_id"], "ec-bot");
    assert_eq!(d.get("/lookup/ec-bot").status, 200);
    assert_eq!(d.metric("botcall_token_cache_misses_total"), 1.0);
    // The same token again: answered from the verified-token cache.
    assert_eq!(register(&d, &t, &reg_body("ec-bot")).status, 200);
    assert_eq!(d.metric("botcall_token_cache_hits_total"), 1.0);
    assert_eq!(d.metric("botcall_token_cache_misses_total"), 1.0);
    // The cache never turns a token into a pass for another id.
    let r = register(&d, &t, &reg_body("ec-bot-2"));
    assert_error(&r, 403, "wrong_agent");
}

#[test]
fn register_open_mode_uses_the_key_thumbprint() {
    let d = Daemon::start(&["--open-registration"]);
    let k = Keys::new();
    let id = Keys::thumbprint(&k.other_ec);
    assert_eq!(id.len(), 43);
    let r = register(&d, &open_token(&k.other_ec, &id), &reg_body(&id));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"confirmed": true, "agent_id": id, "expires_in": 300})
    );
    let v = d.get(&format!("/lookup/{id}")).json();
    assert_eq!(v["agent_id"], id);
    // The id is the key's thumbprint: the answer signature carries the key.
    assert_eq!(
        (&v["answer_sig"], &v["key"]),
        (&json!("thumbprint"), &Value::Null)
    );
    // Keys-file agents still work in open mode.
    assert_eq!(reg(&d, &k.hs, "hs-bot", json!({})).status, 200);
    // An ES256 keys-file bot: `lookup` publishes its public JWK (no `d`).
    assert_eq!(reg(&d, &k.ec, "ec-bot", json!({})).status, 200);
    let v = d.get("/lookup/ec-bot").json();
    assert_eq!(v["answer_sig"], "key");
    let published: Value = serde_json::from_str(&Keys::public_jwk(&k.ec)).unwrap();
    assert_eq!(v["key"], published);
    assert!(v["key"].get("d").is_none());
    // Without open registration an embedded key proves nothing: no key for that id.
    let closed = Daemon::start(&[]);
    let r = register(&closed, &open_token(&k.other_ec, &id), &reg_body(&id));
    assert_error(&r, 403, "unknown_agent");
    assert_eq!(r.json()["reason"], "unknown_agent");
}

#[test]
fn register_with_a_fleet_key() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    for id in ["fleet-7.anything", "fleet-7.dev-0042", "fleet-7.a.b_c"] {
        let r = reg(&d, &k.fleet, id, json!({"listed": true}));
        assert_eq!(r.status, 200, "{id}: {}", r.text());
        assert_eq!(r.json()["agent_id"], id);
        assert_eq!(d.get(&format!("/lookup/{id}")).status, 200);
    }
    // The prefix alone is not an id under it; other prefixes are unknown.
    assert_error(
        &reg(&d, &k.fleet, "fleet-7.", json!({})),
        403,
        "unknown_agent",
    );
    assert_error(
        &reg(&d, &k.fleet, "fleet-8.x", json!({})),
        403,
        "unknown_agent",
    );
    // Another key cannot use the fleet's ids.
    assert_unauthorized(&reg(&d, &k.ec, "fleet-7.x", json!({})), "bad_signature");
}

// ------------------------------------------------------ lookup, directory

#[test]
fn lookup_not_found_and_invalid_ids() {
    let d = Daemon::start(&[]);
    assert_error(&d.get("/lookup/nobody"), 404, "not_found");
    let long = "a".repeat(65);
    for bad in [
        "/lookup/",
        "/lookup/a%2Fb",
        "/lookup/a/b",
        "/lookup/caf%C3%A9",
        "/lookup/a:b",
        &format!("/lookup/{long}"),
    ] {
        assert_error(&d.get(bad), 400, "invalid_agent_id");
    }
    // 64 characters is still an id.
    let max = "b".repeat(64);
    assert_error(&d.get(&format!("/lookup/{max}")), 404, "not_found");
    // Raw UTF-8 in the target (httparse allows it) is still not an id.
    let r = raw_one(&d, "GET /lookup/bötli HTTP/1.1\r\n\r\n".as_bytes());
    assert_error(&r, 400, "invalid_agent_id");
}

#[test]
fn v1_aliases_answer_like_the_plain_routes() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let auth = format!("Bearer {}", token(&k.hs, "hs-bot", 300));
    let r = http(
        d.addr,
        "POST",
        "/v1/register",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        reg_body("hs-bot").as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(d.get("/v1/lookup/hs-bot").json()["agent_id"], "hs-bot");
    assert_error(&d.get("/v1/lookup/nobody"), 404, "not_found");
    assert_eq!(d.get("/v1/agents").status, 200);
    assert_eq!(d.get("/v1/healthz").json()["status"], "ok");
    assert_eq!(d.get("/v1/.well-known/jwks.json").status, 200);
    assert!(
        d.get("/v1/metrics")
            .text()
            .contains("botcall_agents_registered 1")
    );
    let r = http(
        d.addr,
        "DELETE",
        "/v1/register/hs-bot",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.json(), json!({"deleted": true, "agent_id": "hs-bot"}));
    assert_error(&d.get("/v1/lookup/hs-bot"), 404, "not_found");
    // Only one /v1 prefix is stripped.
    assert_error(&d.get("/v1/v1/healthz"), 404, "not_found");
}

#[test]
fn directory_lists_only_listed_agents_and_filters_online() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    for id in ["hs-a", "hs-b", "hs-c"] {
        assert_eq!(reg(&d, &k.hs, id, json!({"listed": true})).status, 200);
    }
    assert_eq!(reg(&d, &k.hs, "hs-d", json!({"listed": false})).status, 200);
    assert_eq!(reg(&d, &k.hs, "hs-e", json!({})).status, 200);
    let ids = |v: &Value| -> Vec<String> {
        let mut ids: Vec<String> = v["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["agent_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let all = d.get("/agents").json();
    assert_eq!(ids(&all), ["hs-a", "hs-b", "hs-c"]);
    assert_eq!(all["next_cursor"], Value::Null);
    // Entries have the lookup shape (expires_in may tick between the two reads).
    let mut first = all["agents"][0].clone();
    let mut hs_a = d.get("/lookup/hs-a").json();
    first.as_object_mut().unwrap().remove("expires_in");
    hs_a.as_object_mut().unwrap().remove("expires_in");
    assert_eq!(first, hs_a);
    assert_eq!(
        ids(&d.get("/agents?online=true").json()),
        Vec::<String>::new()
    );

    // hs-b's bot connects: it is online, and the only one under online=true.
    let (mut ws, welcome) = bot(&d, &token(&k.hs, "hs-b", 300));
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    d.eventually("hs-b online", Duration::from_secs(30), || {
        d.get("/lookup/hs-b").json()["online"] == true
    });
    let online = d.get("/agents?online=true").json();
    assert_eq!(ids(&online), ["hs-b"]);
    assert_eq!(online["agents"][0]["online"], true);
    assert_eq!(ids(&d.get("/agents?online=1").json()), ["hs-b"]);
    assert_eq!(ids(&d.get("/agents?online=false").json()).len(), 3);
    let _ = ws.close(None);
}

#[test]
fn directory_pages_with_limit_and_cursor() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let mut listed = Vec::new();
    for (i, id) in ["hs-a", "hs-b", "hs-c", "hs-d", "hs-e", "hs-f", "hs-bot"]
        .iter()
        .enumerate()
    {
        // Unlisted agents interleaved with listed ones.
        let l = i % 3 != 2;
        assert_eq!(reg(&d, &k.hs, id, json!({"listed": l})).status, 200);
        if l {
            listed.push(id.to_string());
        }
    }
    assert_eq!(listed.len(), 5);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/agents?limit=2&cursor={c}"),
            None => "/agents?limit=2".to_string(),
        };
        let v = d.get(&path).json();
        let page = v["agents"].as_array().unwrap();
        assert!(page.len() <= 2, "limit exceeded: {v}");
        for a in page {
            assert_eq!(a["listed"], true);
            seen.push(a["agent_id"].as_str().unwrap().to_string());
        }
        pages += 1;
        assert!(pages < 10, "pagination does not end");
        match &v["next_cursor"] {
            Value::Null => break,
            Value::String(c) => cursor = Some(c.clone()),
            other => panic!("next_cursor {other}"),
        }
    }
    assert!(pages >= 3, "5 agents at limit 2 need 3 pages, got {pages}");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        seen.len(),
        "duplicates across pages: {seen:?}"
    );
    listed.sort();
    assert_eq!(sorted, listed);
    // Default limit is 50, max 100.
    assert_eq!(
        d.get("/agents?limit=100").json()["agents"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

#[test]
fn directory_bad_limit_or_cursor_is_400() {
    let d = Daemon::start(&[]);
    let long = "1".repeat(65);
    for q in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=abc",
        "limit=",
        "limit=1e3",
        "online=maybe",
        "cursor=a!b",
        "cursor=%2F",
        &format!("cursor={long}"),
    ] {
        assert_error(&d.get(&format!("/agents?{q}")), 400, "bad_field");
    }
    assert_eq!(d.get("/agents?limit=1&cursor=0").status, 200);
}

// ------------------------------------------------- TTL, refresh, delete

#[test]
fn registration_expires_after_its_ttl() {
    let d = Daemon::start(&["--min-ttl", "1"]);
    let k = Keys::new();
    let before = now();
    let r = reg(&d, &k.hs, "hs-bot", json!({"ttl": 2}));
    assert_eq!(r.json()["expires_in"], 2);
    let v = d.get("/lookup/hs-bot").json();
    assert!(v["expires_in"].as_u64().unwrap() <= 2);
    let t0 = Instant::now();
    loop {
        let r = d.get("/lookup/hs-bot");
        if r.status == 404 {
            assert_error(&r, 404, "not_found");
            break;
        }
        assert_eq!(r.status, 200);
        assert!(t0.elapsed() < Duration::from_secs(30), "never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Not early: registered at daemon second ≥ `before`, so gone at ≥ before + 2.
    assert!(now() >= before + 2, "expired early");
    d.eventually("sweep", Duration::from_secs(30), || {
        d.metric("botcall_agents_registered") == 0.0
    });
    // Expired means free: registering again starts afresh.
    assert_eq!(reg(&d, &k.hs, "hs-bot", json!({"ttl": 5})).status, 200);
}

#[test]
fn reregistering_refreshes_the_ttl() {
    let d = Daemon::start(&["--min-ttl", "1"]);
    let k = Keys::new();
    // The check needs the lookup inside a one-second window; a machine too
    // busy to hit it makes the attempt inconclusive, not failed: try again.
    let mut checked = false;
    for attempt in 0..5 {
        assert_eq!(
            reg(&d, &k.hs, "hs-bot", json!({"ttl": 2, "name": "one"})).status,
            200
        );
        let a = now(); // this registration expires at ≤ a + 2
        while now() < a + 1 {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Refresh at ≥ a + 1: expires at ≥ a + 3. Fields are replaced.
        let r = reg(&d, &k.hs, "hs-bot", json!({"ttl": 2, "name": "two"}));
        assert_eq!(r.json()["expires_in"], 2);
        while now() < a + 2 {
            std::thread::sleep(Duration::from_millis(20));
        }
        let r = d.get("/lookup/hs-bot");
        if now() >= a + 3 {
            eprintln!("attempt {attempt}: the lookup came too late to tell; again");
            continue;
        }
        assert_eq!(
            r.status,
            200,
            "refresh did not extend the TTL: {}",
            r.text()
        );
        assert_eq!(r.json()["name"], "two");
        checked = true;
        break;
    }
    assert!(checked, "five attempts, none in time");
    d.eventually("expiry after refresh", Duration::from_secs(30), || {
        d.get("/lookup/hs-bot").status == 404
    });
}

#[test]
fn unregister_then_lookup_is_404() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    assert_eq!(
        reg(&d, &k.ec, "ec-bot", json!({"listed": true})).status,
        200
    );
    let t = token(&k.ec, "ec-bot", 300);
    let r = delete(&d, "ec-bot", &t);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"deleted": true, "agent_id": "ec-bot"}));
    assert_error(&d.get("/lookup/ec-bot"), 404, "not_found");
    assert_eq!(d.get("/agents").json()["agents"], json!([]));
    assert_eq!(d.metric("botcall_agents_registered"), 0.0);
    // Twice: nothing left.
    assert_error(&delete(&d, "ec-bot", &t), 404, "not_found");
    // No token, a bad id, a bad token.
    let r = http(d.addr, "DELETE", "/register/ec-bot", &[], b"");
    assert_unauthorized(&r, "missing_token");
    assert_error(&delete(&d, "a!b", &t), 400, "invalid_agent_id");
    assert_unauthorized(
        &delete(&d, "ec-bot", &token(&k.other_ec, "ec-bot", 300)),
        "bad_signature",
    );
}

#[test]
fn unregister_needs_the_owner() {
    let (d, id) = two_keys_one_id(&[]);
    let k = Keys::new();
    // A token for another id (valid for that id) cannot delete this one.
    assert_eq!(reg(&d, &k.hs, "hs-bot", json!({})).status, 200);
    let r = delete(&d, "hs-bot", &token(&k.hs, "hs-bot-2", 300));
    assert_error(&r, 403, "wrong_agent");
    assert_eq!(d.get("/lookup/hs-bot").status, 200);
    // The id's owner is the embedded key; the keys-file HS256 key is valid
    // for the id too, but does not own the registration.
    let r = register(&d, &open_token(&k.other_ec, &id), &reg_body(&id));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = delete(&d, &id, &token(&k.hs, &id, 300));
    assert_error(&r, 403, "id_taken");
    assert_eq!(d.get(&format!("/lookup/{id}")).status, 200);
    let r = delete(&d, &id, &open_token(&k.other_ec, &id));
    assert_eq!(r.status, 200, "{}", r.text());
}

// ------------------------------------------------------- hijack attempts

#[test]
fn a_token_for_one_agent_cannot_register_another() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let r = register(&d, &token(&k.hs, "hs-bot", 300), &reg_body("ec-bot"));
    assert_error(&r, 403, "wrong_agent");
    assert_error(&d.get("/lookup/ec-bot"), 404, "not_found");
    assert_eq!(
        d.metric("botcall_auth_failures_total{reason=\"wrong_agent\"}"),
        1.0
    );
}

#[test]
fn open_mode_embedded_key_must_match_the_subject() {
    let d = Daemon::start(&["--open-registration"]);
    let k = Keys::new();
    let a = &k.other_ec;
    let b_id = Keys::thumbprint(&k.fleet);
    // Signed by A with A's key embedded, but sub = B's thumbprint.
    let r = register(&d, &open_token(a, &b_id), &reg_body(&b_id));
    assert_unauthorized(&r, "wrong_subject");
    // Signed by B, header claims A's key, sub = A's thumbprint: does not verify.
    let a_id = Keys::thumbprint(a);
    let forged = {
        let real_a = open_token(a, &a_id);
        let real_b = sign(&k.fleet, &claims(&a_id, 300), false);
        let h = real_a.split('.').next().unwrap();
        let rest: Vec<&str> = real_b.split('.').skip(1).collect();
        format!("{h}.{}.{}", rest[0], rest[1])
    };
    assert_unauthorized(&register(&d, &forged, &reg_body(&a_id)), "bad_signature");
    // Another key embedded, claiming ec-bot (a keys-file id, not its thumbprint).
    let r = register(&d, &open_token(a, "ec-bot"), &reg_body("ec-bot"));
    assert_unauthorized(&r, "wrong_subject");
    for id in [&b_id, &a_id, &"ec-bot".to_string()] {
        assert_error(&d.get(&format!("/lookup/{id}")), 404, "not_found");
    }
}

#[test]
fn another_key_cannot_register_ec_bot() {
    let k = Keys::new();
    // Closed mode: the header's jwk is ignored, the keys file's key decides.
    let d = Daemon::start(&[]);
    let t = open_token(&k.other_ec, "ec-bot");
    assert_unauthorized(&register(&d, &t, &reg_body("ec-bot")), "bad_signature");
    let t = token(&k.other_ec, "ec-bot", 300);
    assert_unauthorized(&register(&d, &t, &reg_body("ec-bot")), "bad_signature");
    assert_error(&d.get("/lookup/ec-bot"), 404, "not_found");
    // Open mode: same refusal (the embedded key's thumbprint is not "ec-bot").
    let d = Daemon::start(&["--open-registration"]);
    let t = open_token(&k.other_ec, "ec-bot");
    assert_unauthorized(&register(&d, &t, &reg_body("ec-bot")), "wrong_subject");
    assert_error(&d.get("/lookup/ec-bot"), 404, "not_found");
}

#[test]
fn an_owned_id_cannot_be_taken_by_another_valid_key() {
    let (d, id) = two_keys_one_id(&["--min-ttl", "1"]);
    let k = Keys::new();
    let r = register(
        &d,
        &open_token(&k.other_ec, &id),
        &json!({"agent_id": id, "name": "owner", "ttl": 2}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let t0 = now();
    // The HS256 key is valid for this id (keys file) but does not own it.
    let hs = token(&k.hs, &id, 300);
    let r = register(
        &d,
        &hs,
        &json!({"agent_id": id, "name": "thief"}).to_string(),
    );
    assert_error(&r, 403, "id_taken");
    assert_eq!(d.get(&format!("/lookup/{id}")).json()["name"], "owner");
    // Once the owner's registration expired (at ≤ t0 + 2), the id is free again.
    while now() < t0 + 2 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = register(
        &d,
        &hs,
        &json!({"agent_id": id, "name": "next"}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // ... and now the first key is the stranger.
    let r = register(&d, &open_token(&k.other_ec, &id), &reg_body(&id));
    assert_error(&r, 403, "id_taken");
}

#[test]
fn bad_tokens_are_401_with_a_reason() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let body = reg_body("hs-bot");
    let wrong_secret = botcall_core::jwt::SigningKey::from_jwk(
        r#"{"kty":"oct","k":"b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC1vdGhlci1zZWNyZXQ"}"#,
    )
    .unwrap();
    assert_unauthorized(
        &register(&d, &token(&wrong_secret, "hs-bot", 300), &body),
        "bad_signature",
    );
    let n = now_i();
    let none = format!(
        "{}.{}.c2ln",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(claims("hs-bot", 300).as_bytes())
    );
    assert_unauthorized(&register(&d, &none, &body), "alg_none");
    let expired = sign(
        &k.hs,
        &format!(r#"{{"sub":"hs-bot","iat":{},"exp":{}}}"#, n - 400, n - 100),
        false,
    );
    assert_unauthorized(&register(&d, &expired, &body), "expired");
    let no_exp = sign(&k.hs, &format!(r#"{{"sub":"hs-bot","iat":{n}}}"#), false);
    assert_unauthorized(&register(&d, &no_exp, &body), "missing_claim");
    let too_long_life = sign(
        &k.hs,
        &format!(r#"{{"sub":"hs-bot","iat":{n},"exp":{}}}"#, n + 3600),
        false,
    );
    assert_unauthorized(&register(&d, &too_long_life, &body), "lifetime_too_long");
    let future = sign(
        &k.hs,
        &format!(r#"{{"sub":"hs-bot","nbf":{},"exp":{}}}"#, n + 300, n + 500),
        false,
    );
    assert_unauthorized(&register(&d, &future, &body), "not_yet_valid");
    // An ES256 token for an HS256 agent: the key decides the algorithm.
    assert_unauthorized(
        &register(&d, &token(&k.ec, "hs-bot", 300), &body),
        "alg_mismatch",
    );
    // Duplicate claim keys: strict JSON.
    let dup = sign(
        &k.hs,
        &format!(r#"{{"sub":"hs-bot","sub":"ec-bot","exp":{}}}"#, n + 60),
        false,
    );
    assert_unauthorized(&register(&d, &dup, &body), "bad_json");
    // Garbled, missing, wrong scheme.
    assert_unauthorized(&register(&d, "not-a-token", &body), "malformed");
    assert_unauthorized(&register(&d, "a.b", &body), "malformed");
    assert_unauthorized(&register(&d, "!!!.???.***", &body), "bad_base64");
    let ct = ("Content-Type", "application/json");
    assert_unauthorized(&post(&d, &[ct], body.as_bytes()), "missing_token");
    assert_unauthorized(
        &post(
            &d,
            &[ct, ("Authorization", "Basic aGk6aG8=")],
            body.as_bytes(),
        ),
        "missing_token",
    );
    assert_unauthorized(
        &post(&d, &[ct, ("Authorization", "Bearer")], body.as_bytes()),
        "missing_token",
    );
    // Longer than 4096 bytes (still well inside the 8 KiB head).
    let long = format!(
        "{}.{}.{}",
        "a".repeat(2000),
        "b".repeat(2000),
        "c".repeat(200)
    );
    assert_unauthorized(&register(&d, &long, &body), "too_long");
    // No key for that id at all.
    let r = register(&d, &token(&k.hs, "stranger", 300), &reg_body("stranger"));
    assert_error(&r, 403, "unknown_agent");
    assert_error(&d.get("/lookup/hs-bot"), 404, "not_found");
    assert_eq!(d.metric("botcall_agents_registered"), 0.0);
}

// --------------------------------------------------------- malformed HTTP

#[test]
fn malformed_requests_get_400_and_a_close() {
    let d = Daemon::start(&[]);
    for bytes in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET\r\n\r\n",
        b"GET /healthz\r\n\r\n",
        b"GET /healthz HTTX/1.1\r\n\r\n",
        b"GET /he lthz HTTP/1.1\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nNoColon\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    ] {
        let r = raw_one(&d, bytes);
        assert_error(&r, 400, "bad_request");
        assert_eq!(
            r.header("connection"),
            Some("close"),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    for bytes in [
        &b"GET /healthz HTTP/2.0\r\n\r\n"[..],
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET / HTTP/3.1\r\n\r\n",
    ] {
        assert_error(&raw_one(&d, bytes), 505, "http_version");
    }
    // An expectation we cannot meet is 417 (RFC 9110 §10.1.1), not 400.
    let r = raw_one(&d, b"GET /healthz HTTP/1.1\r\nExpect: 200-ok\r\n\r\n");
    assert_error(&r, 417, "expectation_failed");
    assert_eq!(
        d.metric("botcall_http_requests_total{route=\"invalid\",status=\"400\"}"),
        9.0
    );
    assert_eq!(
        d.metric("botcall_http_requests_total{route=\"invalid\",status=\"505\"}"),
        3.0
    );
    // HTTP/1.0 is fine (and closes after the answer).
    let r = raw_one(&d, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
}

#[test]
fn oversized_heads_are_431() {
    let d = Daemon::start(&["--max-head-bytes", "1024"]);
    let big = format!(
        "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1100)
    );
    assert_error(&raw_one(&d, big.as_bytes()), 431, "headers_too_large");
    // A head that never ends is cut off at the limit, not buffered forever.
    let endless = format!("GET /healthz HTTP/1.1\r\nX-Big: {}", "a".repeat(1500));
    assert_error(&raw_one(&d, endless.as_bytes()), 431, "headers_too_large");
    let mut many = String::from("GET /healthz HTTP/1.1\r\n");
    for i in 0..60 {
        many.push_str(&format!("X-{i}: 1\r\n"));
    }
    many.push_str("\r\n");
    assert!(many.len() < 1024);
    assert_error(&raw_one(&d, many.as_bytes()), 431, "headers_too_large");
    // Just under the limit is fine.
    let ok = format!(
        "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(900)
    );
    assert_eq!(raw_one(&d, ok.as_bytes()).status, 200);
    // Default limit: 8 KiB.
    let d = Daemon::start(&[]);
    let r = raw_one(
        &d,
        format!("GET /healthz HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(8200)).as_bytes(),
    );
    assert_error(&r, 431, "headers_too_large");
    let r = raw_one(
        &d,
        format!("GET /healthz HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(8000)).as_bytes(),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn oversized_bodies_are_413() {
    let d = Daemon::start(&["--max-body-bytes", "100"]);
    let head = |len: usize| {
        format!(
            "POST /register HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    // Refused from the head alone, before the body is read.
    assert_error(&raw_one(&d, head(101).as_bytes()), 413, "payload_too_large");
    assert_error(
        &raw_one(&d, head(10_000_000_000).as_bytes()),
        413,
        "payload_too_large",
    );
    // ... and the answer reaches a client that sends the whole body anyway.
    let mut s = TcpStream::connect(d.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = head(60_000).into_bytes();
    req.extend(std::iter::repeat_n(b'x', 60_000));
    s.write_all(&req).expect(
        "the daemon reads and drops the rest of the body: no reset while the client writes",
    );
    let mut out = Vec::new();
    let end = s.read_to_end(&mut out);
    let r = parse_responses(&out);
    assert!(
        !r.is_empty(),
        "413 lost: the daemon reset the connection before the client read it"
    );
    // A clean end (FIN after the answer), not a reset: the daemon shut its
    // side down and drained the unread body instead of closing on it.
    assert!(end.is_ok(), "connection reset after the 413: {end:?}");
    assert_error(&r[0], 413, "payload_too_large");
    // Chunked: counted as it arrives.
    let chunked = format!(
        "POST /register HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n{}\r\n40\r\n{}\r\n0\r\n\r\n",
        "a".repeat(64),
        "b".repeat(64)
    );
    assert_error(&raw_one(&d, chunked.as_bytes()), 413, "payload_too_large");
    // Exactly at the limit is read (then judged: no token).
    let pad = 100
        - json!({"agent_id": "hs-bot", "endpoint": ""})
            .to_string()
            .len();
    let body = json!({"agent_id": "hs-bot", "endpoint": "e".repeat(pad)}).to_string();
    assert_eq!(body.len(), 100);
    let mut req = head(100).into_bytes();
    req.extend_from_slice(body.as_bytes());
    assert_unauthorized(&raw_one(&d, &req), "missing_token");
}

#[test]
fn huge_chunk_sizes_are_413_and_the_daemon_survives() {
    // Regression: found by the `http_request` fuzz target. A chunk size near
    // 2^64 after some body overflowed the limit check; in release builds it
    // sliced backwards and aborted the whole daemon.
    let d = Daemon::start(&[]);
    let mut req = b"POST /register HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n01234567890123456789\r\n".to_vec();
    req.extend_from_slice(format!("{:x}\r\n", u64::MAX - 19).as_bytes());
    req.extend_from_slice(b"xx\r\n0\r\n\r\n");
    assert_error(&raw_one(&d, &req), 413, "payload_too_large");
    let req = b"POST /register HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nffffffffffffffff\r\n\r\n";
    assert_error(&raw_one(&d, req), 413, "payload_too_large");
    assert_eq!(d.get("/healthz").status, 200);
}

#[test]
fn body_framing_errors() {
    let d = Daemon::start(&[]);
    let r = raw_one(
        &d,
        b"POST /register HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{}",
    );
    assert_error(&r, 411, "length_required");
    // Request smuggling shapes.
    let r = raw_one(&d, b"POST /register HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_error(&r, 400, "bad_request");
    let r = raw_one(&d, b"POST /register HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n0\r\n\r\n");
    assert_error(&r, 400, "bad_request");
    let r = raw_one(
        &d,
        b"POST /register HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    );
    assert_error(&r, 400, "bad_request");
    for cl in ["-1", "+2", "2x", "0x2", "", "2, 2", "99999999999999"] {
        let req = format!("POST /register HTTP/1.1\r\nContent-Length: {cl}\r\n\r\n{{}}");
        assert_error(&raw_one(&d, req.as_bytes()), 400, "bad_request");
    }
    for te in [
        "gzip",
        "gzip, chunked",
        "chunked, gzip",
        "identity",
        "chunked;q=1",
    ] {
        let req = format!("POST /register HTTP/1.1\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n");
        assert_error(&raw_one(&d, req.as_bytes()), 501, "not_implemented");
    }
    let r = raw_one(&d, b"POST /register HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_error(&r, 501, "not_implemented");
    // Bad chunk coding.
    for body in ["zz\r\n", "2\r\nabc\r\n0\r\n\r\n", "-2\r\nab\r\n0\r\n\r\n"] {
        let req = format!(
            "POST /register HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
        );
        assert_error(&raw_one(&d, req.as_bytes()), 400, "bad_request");
    }
    // Identical repeated Content-Lengths are one length.
    let k = Keys::new();
    let body = reg_body("hs-bot");
    let req = format!(
        "POST /register HTTP/1.1\r\nContent-Type: application/json\r\nAuthorization: Bearer {}\r\nContent-Length: {n}\r\nContent-Length: {n}\r\n\r\n{body}",
        token(&k.hs, "hs-bot", 300),
        n = body.len()
    );
    assert_eq!(raw_one(&d, req.as_bytes()).status, 200);
}

#[test]
fn chunked_register_body_is_accepted() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let body = json!({"agent_id": "hs-bot", "name": "chunky", "listed": true}).to_string();
    let (a, b) = body.split_at(10);
    let req = format!(
        "POST /register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:X};ext=1\r\n{b}\r\n0\r\nX-Trailer: yes\r\n\r\n{}",
        token(&k.hs, "hs-bot", 300),
        a.len(),
        b.len(),
        get_req("/lookup/hs-bot")
    );
    // The chunked request, then a pipelined lookup right behind its last chunk.
    let mut c = Conn::open(d.addr);
    c.send(req.as_bytes());
    let r = c.read().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["agent_id"], "hs-bot");
    let l = c.read().unwrap();
    assert_eq!(l.status, 200, "{}", l.text());
    assert_eq!(l.json()["name"], "chunky");
}

#[test]
fn register_needs_json_content_type() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let auth = format!("Bearer {}", token(&k.hs, "hs-bot", 300));
    let body = reg_body("hs-bot");
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
        Some("json"),
    ] {
        let mut h = vec![("Authorization", auth.as_str())];
        if let Some(ct) = ct {
            h.push(("Content-Type", ct));
        }
        assert_error(
            &post(&d, &h, body.as_bytes()),
            415,
            "unsupported_media_type",
        );
    }
    for ct in ["application/json; charset=utf-8", "Application/JSON"] {
        let r = post(
            &d,
            &[("Authorization", &auth), ("Content-Type", ct)],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{ct}: {}", r.text());
    }
}

#[test]
fn bad_register_bodies() {
    let d = Daemon::start(&["--min-ttl", "30"]);
    let k = Keys::new();
    let t = token(&k.hs, "hs-bot", 300);
    let auth = format!("Bearer {t}");
    let send = |body: &[u8]| {
        post(
            &d,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body,
        )
    };
    assert_error(&send(b"{\"agent_id\":\"hs-\xff\"}"), 400, "bad_json");
    assert_error(
        &send(b"\xef\xbb\xbf{\"agent_id\":\"hs-bot\"}"),
        400,
        "bad_json",
    );
    for bad_json in [
        "",
        "{",
        "{agent_id: \"hs-bot\"}",
        "{\"agent_id\":\"hs-bot\",}",
        "{\"agent_id\":\"hs-bot\"} x",
        "{\"agent_id\":\"hs-bot\",\"agent_id\":\"ec-bot\"}",
        "{\"agent_id\":\"hs-bot\",\"name\":\"a\",\"name\":\"b\"}",
    ] {
        assert_error(&send(bad_json.as_bytes()), 400, "bad_json");
    }
    for (body, what) in [
        (
            json!({"agent_id": "hs-bot", "ttl": "60"}),
            "ttl as a string",
        ),
        (json!({"agent_id": "hs-bot", "ttl": 60.5}), "fractional ttl"),
        (json!({"agent_id": "hs-bot", "ttl": -1}), "negative ttl"),
        (
            json!({"agent_id": "hs-bot", "ttl": 10}),
            "ttl under min_ttl",
        ),
        (
            json!({"agent_id": "hs-bot", "ttl": 86_401}),
            "ttl over a day",
        ),
        (json!({"agent_id": "hs-bot", "max_calls": 0}), "max_calls 0"),
        (
            json!({"agent_id": "hs-bot", "max_calls": 65}),
            "max_calls 65",
        ),
        (
            json!({"agent_id": "hs-bot", "listed": "yes"}),
            "listed as a string",
        ),
        (json!({"agent_id": "hs-bot", "name": 7}), "numeric name"),
        (
            json!({"agent_id": "hs-bot", "name": "n".repeat(65)}),
            "long name",
        ),
        (
            json!({"agent_id": "hs-bot", "endpoint": "e".repeat(257)}),
            "long endpoint",
        ),
        (
            json!({"agent_id": "hs-bot", "capabilities": {"audio": "opus"}}),
            "audio not a list",
        ),
        (
            json!({"agent_id": "hs-bot", "capabilities": {"audio": [1]}}),
            "codec not a string",
        ),
        (
            json!({"agent_id": "hs-bot", "capabilities": {"audio": ["a","b","c","d","e","f","g","h","i"]}}),
            "9 codecs",
        ),
        (json!({"agent_id": 7}), "numeric agent_id"),
        (json!({}), "missing agent_id"),
        (json!({"agent_id": null}), "null agent_id"),
    ] {
        let r = send(body.to_string().as_bytes());
        assert_eq!(
            (r.status, r.code()),
            (400, "bad_field".to_string()),
            "{what}: {}",
            r.text()
        );
        assert_error(&r, 400, "bad_field");
    }
    // Valid JSON that is not an object: the document has the wrong type.
    for doc in [
        "[]",
        "null",
        "\"hs-bot\"",
        "7",
        "[{\"agent_id\":\"hs-bot\"}]",
    ] {
        assert_error(&send(doc.as_bytes()), 400, "bad_field");
    }
    for id in [
        "",
        &"a".repeat(65),
        "a/b",
        "bötli",
        "a b",
        "hs-bot\n",
        "日本",
    ] {
        let r = send(json!({ "agent_id": id }).to_string().as_bytes());
        assert_error(&r, 400, "invalid_agent_id");
    }
    assert_eq!(d.metric("botcall_agents_registered"), 0.0);
    // Unknown fields are ignored (forward compatibility), at any depth.
    let future = json!({
        "agent_id": "hs-bot", "v": 2, "region": "eu", "capabilities": {"audio": ["opus"], "video": ["av1"]},
        "extra": {"nested": [1, {"a": null}]}, "ttl": 30
    });
    let r = send(future.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        d.get("/lookup/hs-bot").json()["capabilities"],
        json!({"audio": ["opus"]})
    );
}

#[test]
fn wrong_methods_are_405_with_allow_and_unknown_routes_404() {
    let d = Daemon::start(&[]);
    for (method, path, allow) in [
        ("GET", "/register", "POST"),
        ("PUT", "/register", "POST"),
        ("GET", "/register/hs-bot", "DELETE"),
        ("POST", "/register/hs-bot", "DELETE"),
        ("POST", "/lookup/hs-bot", "GET, HEAD"),
        ("DELETE", "/lookup/hs-bot", "GET, HEAD"),
        ("POST", "/agents", "GET, HEAD"),
        ("DELETE", "/healthz", "GET, HEAD"),
        ("POST", "/metrics", "GET, HEAD"),
        ("PUT", "/.well-known/jwks.json", "GET, HEAD"),
        ("PATCH", "/v1/register", "POST"),
    ] {
        let r = http(d.addr, method, path, &[("Content-Length", "0")], b"");
        assert_error(&r, 405, "method_not_allowed");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/v2/register"),
        ("GET", "/app/nope.js"),
        ("POST", "/nope"),
        ("DELETE", "/"),
        ("GET", "/lookup"),
        ("GET", "/../../etc/passwd"),
    ] {
        assert_error(
            &http(d.addr, method, path, &[("Content-Length", "0")], b""),
            404,
            "not_found",
        );
    }
    // HEAD: the GET answer's headers, no body.
    let raw_head = raw(
        d.addr,
        b"HEAD /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&raw_head);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let len: usize = parse_responses(&raw_head)[0]
        .header("content-length")
        .unwrap()
        .parse()
        .unwrap();
    assert!(len > 0);
    assert!(text.ends_with("\r\n\r\n"), "HEAD answer has a body: {text}");
    // The WebSocket route without an upgrade.
    let r = d.get("/v1/ws");
    assert_error(&r, 426, "upgrade_required");
}

// ---------------------------------------------- connection-level behaviour

#[test]
fn header_timeout_is_408_then_close() {
    let d = Daemon::start(&["--header-timeout", "1"]);
    // A head that never finishes.
    let mut s = TcpStream::connect(d.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let t0 = Instant::now();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .expect("daemon closes the connection");
    // Not before the deadline; the upper bound only tells "timed out"
    // from "never" (the 30 s read timeout), whatever the machine's load.
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(20),
        "{took:?}"
    );
    let r = parse_responses(&out);
    assert_eq!(r.len(), 1);
    assert_error(&r[0], 408, "timeout");
    assert_eq!(r[0].header("connection"), Some("close"));

    // Trickling bytes does not extend the deadline (slowloris): the
    // trickle would last 40 s; the daemon ends it long before.
    let mut s = TcpStream::connect(d.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut w = s.try_clone().unwrap();
    let t0 = Instant::now();
    let trickle = std::thread::spawn(move || {
        let head = format!("GET /healthz HTTP/1.1\r\nX-Slow: {}", "a".repeat(380));
        for b in head.bytes() {
            if w.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "slowloris held the connection {:?}",
        t0.elapsed()
    );
    assert_error(&parse_responses(&out)[0], 408, "timeout");
    trickle.join().unwrap();

    // A body that stops short of its Content-Length.
    let mut s = TcpStream::connect(d.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"POST /register HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{\"agent").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert_error(&parse_responses(&out)[0], 408, "timeout");
    assert_eq!(d.metric("botcall_http_timeouts_total"), 3.0);
    assert_eq!(
        d.metric("botcall_http_requests_total{route=\"invalid\",status=\"408\"}"),
        3.0
    );
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let d = Daemon::start(&["--idle-timeout", "1"]);
    let mut c = Conn::open(d.addr);
    c.send(get_req("/healthz").as_bytes());
    assert_eq!(c.read().unwrap().status, 200);
    let t0 = Instant::now();
    // Closed without a response (idle is not an error).
    assert!(
        c.closed_silently(),
        "idle connection got bytes or stayed open"
    );
    // Not before the idle timeout; the upper bound only tells "closed" from
    // "never" (the 30 s read timeout).
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(20),
        "{took:?}"
    );
    // A fresh connection that never sends anything is idle too.
    let mut c = Conn::open(d.addr);
    assert!(c.closed_silently());
    assert_eq!(
        d.metric("botcall_http_requests_total{route=\"invalid\",status=\"408\"}"),
        0.0
    );
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let mut c = Conn::open(d.addr);
    for _ in 0..5 {
        c.send(get_req("/healthz").as_bytes());
        let r = c.read().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), None);
    }
    let body = reg_body("hs-bot");
    c.send(
        format!(
            "POST /register HTTP/1.1\r\nContent-Type: application/json\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n{body}",
            token(&k.hs, "hs-bot", 300),
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(c.read().unwrap().status, 200);
    // Error answers from routes keep the connection too.
    c.send(get_req("/lookup/nobody").as_bytes());
    assert_error(&c.read().unwrap(), 404, "not_found");
    c.send(get_req("/lookup/hs-bot").as_bytes());
    assert_eq!(c.read().unwrap().json()["agent_id"], "hs-bot");
    // `Connection: close` ends it after the answer.
    c.send(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    let r = c.read().unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed_silently());
    // HTTP/1.0 with keep-alive stays open.
    let mut c = Conn::open(d.addr);
    for _ in 0..2 {
        c.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(c.read().unwrap().status, 200);
    }
    // Two connections above, plus this metrics request's.
    assert_eq!(d.metric("botcall_connections_total"), 3.0);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    assert_eq!(reg(&d, &k.hs, "hs-a", json!({"name": "A"})).status, 200);
    let body = reg_body("hs-b");
    let three = format!(
        "GET /lookup/hs-a HTTP/1.1\r\n\r\nPOST /register HTTP/1.1\r\nContent-Type: application/json\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n{body}GET /lookup/hs-b HTTP/1.1\r\nConnection: close\r\n\r\n",
        token(&k.hs, "hs-b", 300),
        body.len()
    );
    // All three in one write.
    let rs = raw_all(&d, three.as_bytes());
    assert_eq!(rs.len(), 3, "{rs:?}");
    assert_eq!(rs[0].json()["name"], "A");
    assert_eq!(rs[1].json()["agent_id"], "hs-b");
    assert_eq!(
        rs[2].json()["agent_id"],
        "hs-b",
        "third answered before second"
    );
    // Many small ones in one write, and an error stops the pipeline there.
    let mut many = String::new();
    for i in 0..20 {
        many.push_str(&get_req(&format!("/lookup/n{i}")));
    }
    many.push_str("BROKEN\r\n\r\n");
    many.push_str(&get_req("/healthz"));
    let rs = raw_all(&d, many.as_bytes());
    assert_eq!(rs.len(), 21);
    assert!(rs[..20].iter().all(|r| r.status == 404));
    assert_error(&rs[20], 400, "bad_request");
}

#[test]
fn expect_100_continue() {
    let d = Daemon::start(&[]);
    let k = Keys::new();
    let body = reg_body("hs-bot");
    let mut c = Conn::open(d.addr);
    c.send(
        format!(
            "POST /register HTTP/1.1\r\nContent-Type: application/json\r\nAuthorization: Bearer {}\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            token(&k.hs, "hs-bot", 300),
            body.len()
        )
        .as_bytes(),
    );
    // The interim answer comes before any body byte is sent.
    let r = c.read().unwrap();
    assert_eq!(r.status, 100);
    assert!(r.body.is_empty());
    c.send(body.as_bytes());
    let r = c.read().unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["agent_id"], "hs-bot");
    // An over-limit body is refused at once instead of being invited.
    let mut c = Conn::open(d.addr);
    c.send(b"POST /register HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 999999\r\n\r\n");
    assert_error(&c.read().unwrap(), 413, "payload_too_large");
}

// ----------------------------------------------------------------- limits

#[test]
fn per_ip_rate_limit_is_429_with_retry_after() {
    let d = Daemon::start(&["--rate-ip", "1", "--rate-ip-burst", "2"]);
    assert_error(&d.get("/lookup/a"), 404, "not_found");
    assert_error(&d.get("/lookup/b"), 404, "not_found");
    let r = d.get("/lookup/c");
    assert_error(&r, 429, "rate_limited");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["retry_after"], "1");
    // Every API route shares the bucket; health, metrics and the PWA do not.
    let k = Keys::new();
    assert_error(&reg(&d, &k.hs, "hs-bot", json!({})), 429, "rate_limited");
    assert_error(&d.get("/agents"), 429, "rate_limited");
    assert_eq!(d.get("/healthz").status, 200);
    assert_eq!(d.metric("botcall_rate_limited_total{scope=\"ip\"}"), 3.0);
    // Retry-After is honest: a second later there is a token again.
    std::thread::sleep(Duration::from_millis(1100));
    assert_error(&d.get("/lookup/d"), 404, "not_found");
    assert_eq!(
        d.metric("botcall_http_requests_total{route=\"lookup\",status=\"429\"}"),
        1.0
    );
}

#[test]
fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let lookup = |d: &Daemon, xff: Option<&str>| {
        let h: Vec<(&str, &str)> = xff.map(|v| ("X-Forwarded-For", v)).into_iter().collect();
        http(d.addr, "GET", "/lookup/nobody", &h, b"").status
    };
    // Not a trusted proxy: the header is ignored, so it cannot dodge the limit.
    let d = Daemon::start(&["--rate-ip", "1", "--rate-ip-burst", "1"]);
    assert_eq!(lookup(&d, Some("203.0.113.1")), 404);
    assert_eq!(lookup(&d, Some("203.0.113.2")), 429);
    assert_eq!(lookup(&d, None), 429);
    // Behind a trusted proxy: each client has its own bucket.
    let d = Daemon::start(&[
        "--rate-ip",
        "1",
        "--rate-ip-burst",
        "1",
        "--trusted-proxies",
        "127.0.0.1,10.0.0.1",
    ]);
    assert_eq!(lookup(&d, Some("203.0.113.1")), 404);
    assert_eq!(lookup(&d, Some("203.0.113.1")), 429);
    assert_eq!(lookup(&d, Some("203.0.113.2")), 404);
    // The rightmost address that is not one of our proxies is the client;
    // what the client wrote further left does not matter.
    assert_eq!(lookup(&d, Some("198.51.100.7, 203.0.113.2, 10.0.0.1")), 429);
    assert_eq!(lookup(&d, Some("203.0.113.1, 203.0.113.3")), 404);
    assert_eq!(lookup(&d, Some("not-an-ip")), 404); // the proxy itself
    assert_eq!(lookup(&d, None), 429);
}

#[test]
fn token_audience_is_required_when_configured() {
    let d = Daemon::start(&["--token-audience", "botcall.example"]);
    let k = Keys::new();
    let n = now_i();
    let with_aud = |aud: &str| {
        sign(
            &k.hs,
            &format!(
                r#"{{"sub":"hs-bot","iat":{n},"exp":{},"aud":{aud}}}"#,
                n + 300
            ),
            false,
        )
    };
    let body = reg_body("hs-bot");
    assert_unauthorized(
        &register(&d, &token(&k.hs, "hs-bot", 300), &body),
        "missing_claim",
    );
    assert_unauthorized(
        &register(&d, &with_aud("\"other.example\""), &body),
        "wrong_audience",
    );
    assert_unauthorized(
        &register(&d, &with_aud("[\"other.example\"]"), &body),
        "wrong_audience",
    );
    assert_eq!(
        register(&d, &with_aud("\"botcall.example\""), &body).status,
        200
    );
    assert_eq!(
        register(&d, &with_aud("[\"x\",\"botcall.example\"]"), &body).status,
        200
    );
    // Without the option, `aud` is not checked.
    let d = Daemon::start(&[]);
    assert_eq!(
        register(&d, &with_aud("\"other.example\""), &body).status,
        200
    );
}

#[test]
fn per_agent_rate_limit_is_429() {
    let d = Daemon::start(&["--rate-agent", "1", "--rate-agent-burst", "1"]);
    let k = Keys::new();
    assert_eq!(reg(&d, &k.hs, "hs-bot", json!({})).status, 200);
    let r = reg(&d, &k.hs, "hs-bot", json!({}));
    assert_error(&r, 429, "rate_limited");
    assert!(
        r.header("retry-after")
            .is_some_and(|s| s.parse::<u64>().unwrap() >= 1)
    );
    // Other agents have their own buckets.
    assert_eq!(reg(&d, &k.hs, "hs-bot-2", json!({})).status, 200);
    assert_eq!(d.metric("botcall_rate_limited_total{scope=\"agent\"}"), 1.0);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(reg(&d, &k.hs, "hs-bot", json!({})).status, 200);
}

#[test]
fn failed_attempts_do_not_spend_an_agents_budget() {
    // Anyone can POST a registration naming any id. If those unauthenticated
    // attempts drew from the agent's bucket, a stranger could keep a bot from
    // refreshing until its registration expires.
    let d = Daemon::start(&["--rate-agent", "1", "--rate-agent-burst", "1"]);
    let k = Keys::new();
    for _ in 0..3 {
        let forged = token(&k.other_ec, "hs-bot", 300);
        assert_unauthorized(&register(&d, &forged, &reg_body("hs-bot")), "alg_mismatch");
        let r = register(&d, &token(&k.hs, "hs-bot-2", 300), &reg_body("hs-bot"));
        assert_error(&r, 403, "wrong_agent");
        let r = delete(&d, "hs-bot", "x.y.z");
        assert_eq!(r.status, 401);
    }
    let r = reg(&d, &k.hs, "hs-bot", json!({}));
    assert_eq!(r.status, 200, "the owner was locked out: {}", r.text());
}

#[test]
fn full_table_is_503_and_keeps_what_it_has() {
    let d = Daemon::start(&["--max-agents", "2"]);
    let k = Keys::new();
    assert_eq!(d.metric("botcall_agent_table_capacity"), 2.0);
    assert_eq!(reg(&d, &k.hs, "hs-a", json!({"name": "a"})).status, 200);
    assert_eq!(reg(&d, &k.hs, "hs-b", json!({})).status, 200);
    let r = reg(&d, &k.hs, "hs-c", json!({}));
    assert_error(&r, 503, "table_full");
    assert_error(&reg(&d, &k.ec, "ec-bot", json!({})), 503, "table_full");
    assert_eq!(d.metric("botcall_table_full_total"), 2.0);
    assert_error(&d.get("/lookup/hs-c"), 404, "not_found");
    // Nothing was evicted, and refreshing an existing id still works.
    assert_eq!(d.get("/lookup/hs-b").status, 200);
    let r = reg(&d, &k.hs, "hs-a", json!({"name": "a2"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(d.get("/lookup/hs-a").json()["name"], "a2");
    assert_eq!(d.metric("botcall_agents_registered"), 2.0);
    // Deleting frees a slot.
    assert_eq!(delete(&d, "hs-b", &token(&k.hs, "hs-b", 300)).status, 200);
    assert_eq!(reg(&d, &k.hs, "hs-c", json!({})).status, 200);
    assert_eq!(d.metric("botcall_table_full_total"), 2.0);
}

#[test]
fn too_many_connections_is_503() {
    let d = Daemon::start(&["--max-connections", "3"]);
    let held: Vec<Conn> = (0..3).map(|_| Conn::open(d.addr)).collect();
    // The fourth gets an answer and a close, without sending anything.
    let mut s = TcpStream::connect(d.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let r = parse_responses(&out);
    assert_eq!(r.len(), 1, "{}", String::from_utf8_lossy(&out));
    assert_error(&r[0], 503, "too_many_connections");
    assert_eq!(r[0].header("retry-after"), Some("5"));
    assert_eq!(r[0].header("connection"), Some("close"));
    // Held connections still work.
    let mut held = held;
    held[0].send(get_req("/healthz").as_bytes());
    assert_eq!(held[0].read().unwrap().status, 200);
    // Closing one makes room.
    held.pop();
    d.eventually("a free connection slot", Duration::from_secs(30), || {
        d.get("/healthz").status == 200
    });
    assert!(d.metric("botcall_connections_rejected_total") >= 1.0);
}

// ---------------------------------------------------------------- metrics

#[test]
fn metrics_count_routes_statuses_reasons_limits() {
    let d = Daemon::start(&[
        "--max-agents",
        "1",
        "--rate-agent",
        "1",
        "--rate-agent-burst",
        "1",
    ]);
    let k = Keys::new();
    d.get("/lookup/nobody");
    d.get("/lookup/nobody-2");
    d.get("/lookup/a!b");
    assert_eq!(reg(&d, &k.hs, "hs-bot", json!({})).status, 200);
    assert_eq!(reg(&d, &k.hs, "hs-bot", json!({})).status, 429);
    assert_eq!(reg(&d, &k.hs, "hs-bot-2", json!({})).status, 503);
    assert_eq!(
        register(&d, &token(&k.other_ec, "ec-bot", 300), &reg_body("ec-bot")).status,
        401
    );
    let n = now_i();
    let expired = sign(
        &k.hs,
        &format!(r#"{{"sub":"hs-a","exp":{}}}"#, n - 1000),
        false,
    );
    assert_eq!(register(&d, &expired, &reg_body("hs-a")).status, 401);
    assert_eq!(
        post(
            &d,
            &[("Content-Type", "application/json")],
            reg_body("hs-a").as_bytes()
        )
        .status,
        401
    );
    raw(d.addr, b"\x01\x02\r\n\r\n");
    d.get("/healthz");

    let text = d.get("/metrics");
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let m = |s: &str| d.metric(s);
    assert_eq!(
        m("botcall_http_requests_total{route=\"lookup\",status=\"404\"}"),
        2.0
    );
    assert_eq!(
        m("botcall_http_requests_total{route=\"lookup\",status=\"400\"}"),
        1.0
    );
    assert_eq!(
        m("botcall_http_requests_total{route=\"register\",status=\"200\"}"),
        1.0
    );
    assert_eq!(
        m("botcall_http_requests_total{route=\"register\",status=\"429\"}"),
        1.0
    );
    assert_eq!(
        m("botcall_http_requests_total{route=\"register\",status=\"503\"}"),
        1.0
    );
    assert_eq!(
        m("botcall_http_requests_total{route=\"register\",status=\"401\"}"),
        3.0
    );
    assert_eq!(
        m("botcall_http_requests_total{route=\"invalid\",status=\"400\"}"),
        1.0
    );
    assert_eq!(
        m("botcall_http_requests_total{route=\"healthz\",status=\"200\"}"),
        1.0
    );
    assert_eq!(
        m("botcall_auth_failures_total{reason=\"bad_signature\"}"),
        1.0
    );
    assert_eq!(m("botcall_auth_failures_total{reason=\"expired\"}"), 1.0);
    assert_eq!(
        m("botcall_auth_failures_total{reason=\"missing_token\"}"),
        1.0
    );
    assert_eq!(m("botcall_rate_limited_total{scope=\"agent\"}"), 1.0);
    assert_eq!(m("botcall_table_full_total"), 1.0);
    assert_eq!(m("botcall_agents_registered"), 1.0);
    assert_eq!(m("botcall_agents_online"), 0.0);
    assert_eq!(m("botcall_agent_table_capacity"), 1.0);
    assert!(m("botcall_connections_total") >= 12.0);
    assert_eq!(m("botcall_connections_open"), 1.0); // this request's
    assert!(m("botcall_process_resident_memory_bytes") > 1_000_000.0);
    // Every series line is `name{labels} number`, every family has TYPE.
    for line in text
        .text()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, v) = line.rsplit_once(' ').unwrap();
        assert!(v.parse::<f64>().is_ok(), "{line}");
        let family = name.split('{').next().unwrap();
        assert!(text.text().contains(&format!("# TYPE {family} ")), "{line}");
    }
}

// --------------------------------------------------------------- shutdown

#[test]
fn sigterm_exits_0_quickly_even_with_an_idle_keep_alive_connection() {
    let mut d = Daemon::start(&["--shutdown-grace", "60"]);
    let mut c = Conn::open(d.addr);
    c.send(get_req("/healthz").as_bytes());
    assert_eq!(c.read().unwrap().status, 200);
    let t0 = Instant::now();
    let st = d.signal("TERM", Duration::from_secs(60));
    assert_eq!(st.code(), Some(0), "{st:?}\n{}", d.log());
    // The grace is 60 s: an idle connection must not hold the exit (the
    // bound tells "did not wait for the grace" from "waited", under any load).
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t0.elapsed()
    );
    assert!(c.closed_silently());
    d.eventually("the last log line", Duration::from_secs(10), || {
        d.log().contains("stopped")
    });
}

#[test]
fn sigint_exits_0() {
    let mut d = Daemon::start(&[]);
    assert_eq!(d.get("/healthz").status, 200);
    let st = d.signal("INT", Duration::from_secs(30));
    assert_eq!(st.code(), Some(0), "{st:?}");
}

#[test]
fn sigterm_finishes_an_in_flight_request_and_stops_accepting() {
    // Defined behaviour: on SIGTERM the daemon stops accepting at once; a
    // request whose head is still arriving may finish within shutdown_grace
    // (and the header timeout); its answer says `Connection: close`; the
    // daemon exits 0 as soon as the last connection is done.
    let mut d = Daemon::start(&["--shutdown-grace", "60"]);
    let mut c = Conn::open(d.addr);
    c.send(b"GET /healthz HTTP/1.1\r\nHost: t\r\n");
    // Accepts are served in order: once this answers, `c` was accepted.
    assert_eq!(d.get("/healthz").status, 200);
    let pid = d.pid().to_string();
    let t0 = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    // New connections are refused ...
    let addr = d.addr;
    d.eventually("listener closed", Duration::from_secs(20), || {
        TcpStream::connect(addr).is_err()
    });
    // ... while the in-flight request is still served.
    std::thread::sleep(Duration::from_millis(200));
    c.send(b"\r\n");
    let r = c.read().expect("in-flight request answered");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed_silently());
    let st = d.wait(Duration::from_secs(60));
    assert_eq!(st.code(), Some(0));
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "waited for the grace period: {:?}",
        t0.elapsed()
    );
}

#[test]
fn sigterm_with_a_stalled_client_is_bounded_by_the_grace_period() {
    let mut d = Daemon::start(&["--shutdown-grace", "1", "--header-timeout", "120"]);
    let mut c = Conn::open(d.addr);
    c.send(b"POST /register HTTP/1.1\r\nContent-Length: 10\r\n\r\n{");
    assert_eq!(d.get("/healthz").status, 200);
    let t0 = Instant::now();
    let st = d.signal("TERM", Duration::from_secs(60));
    assert_eq!(st.code(), Some(0), "{st:?}");
    // At the 1 s grace, not at the 120 s header timeout.
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(30),
        "{took:?}"
    );
    d.eventually("the grace warning", Duration::from_secs(10), || {
        d.log().contains("grace period over")
    });
    let mut rest = Vec::new();
    let _ = c.r.read_to_end(&mut rest);
}

// ------------------------------------------------- health, JWKS, the PWA

#[test]
fn healthz_and_jwks() {
    let d = Daemon::start(&[]);
    let r = d.get("/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));

    let r = d.get("/.well-known/jwks.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let text = r.text();
    let jwks = botcall_core::jwt::Jwks::parse(&text).expect("a JWKS");
    let v = r.json();
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let kid = keys[0]["kid"].as_str().unwrap();
    assert_eq!(
        (keys[0]["kty"].as_str(), keys[0]["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    assert!(keys[0].get("d").is_none(), "private key published");
    let botcall_core::jwt::Key::Es256(vk) = jwks.find_es256(Some(kid)).unwrap() else {
        panic!("not ES256")
    };
    // The kid is the key's thumbprint, and it is the key in the state dir.
    assert_eq!(botcall_core::jwt::thumbprint(&vk).as_str(), kid);
    let private = std::fs::read_to_string(d.dir.path().join("state/attestation.jwk")).unwrap();
    let sk = botcall_core::jwt::SigningKey::from_jwk(private.trim()).unwrap();
    assert_eq!(Keys::thumbprint(&sk), kid);
    // A token signed with that key verifies against the published set.
    let t = sign(&sk, &claims("x", 60), false);
    let mut scratch = botcall_core::jwt::Scratch::new();
    botcall_core::jwt::verify(&t, &jwks.find_es256(None).unwrap(), &mut scratch).unwrap();
}

#[test]
fn the_pwa_is_served_with_csp_and_etag() {
    let d = Daemon::start(&[]);
    let r = d.get("/");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type").unwrap().starts_with("text/html"),
        "{:?}",
        r.headers
    );
    let csp = r.header("content-security-policy").expect("CSP header");
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(r.text().to_ascii_lowercase().contains("<html"));
    let etag = r.header("etag").expect("ETag").to_string();
    let r2 = http(d.addr, "GET", "/", &[("If-None-Match", &etag)], b"");
    assert_eq!(r2.status, 304);
    assert!(r2.body.is_empty());
    assert_eq!(r2.header("etag"), Some(etag.as_str()));
    let r3 = http(d.addr, "GET", "/", &[("If-None-Match", "\"stale\"")], b"");
    assert_eq!(r3.status, 200);
    // Deep links get the shell.
    assert_eq!(d.get("/call/weather-bot").body, r.body);
    assert_eq!(d.get("/app/main.js").status, 200);
}

// -------------------------------------------- command line and config

/// A daemon process started with our own arguments and environment (the
/// shared spawner, without the test keys and flags `Daemon::start` adds).
struct Proc(Daemon);

impl Proc {
    /// Starts `botcalld args` with only `env` (plus PATH) in `cwd`; waits for
    /// the listening line.
    fn start(args: &[&str], env: &[(&str, &str)], cwd: &Path) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(cwd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc(Daemon::spawn(cmd, TempDir::new("proc")))
    }

    fn addr(&self) -> SocketAddr {
        self.0.addr
    }

    fn log(&self) -> String {
        self.0.log()
    }

    /// The address to connect to (the daemon may listen on 0.0.0.0).
    fn loopback(&self) -> SocketAddr {
        let mut a = self.0.addr;
        if a.ip().is_unspecified() {
            a.set_ip([127, 0, 0, 1].into());
        }
        a
    }

    fn metric(&self, series: &str) -> f64 {
        let text = http(self.loopback(), "GET", "/metrics", &[], b"").text();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    fn term(mut self) -> std::process::ExitStatus {
        self.0.signal("TERM", Duration::from_secs(10))
    }
}

#[test]
fn help_documents_every_option() {
    let (code, out, _) = run_botcalld(&["--help"], &[]);
    assert_eq!(code, 0);
    for name in config_option_names() {
        let flag = format!("--{}", name.replace('_', "-"));
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().next() == Some(flag.as_str())),
            "--help does not document {flag}:\n{out}"
        );
        assert!(
            out.contains(&format!("BOTCALL_{}", name.to_ascii_uppercase())),
            "{name} env"
        );
    }
    for word in ["--config", "keygen", "token", "verify-token"] {
        assert!(out.contains(word), "{word}");
    }
    assert_eq!(run_botcalld(&["-h"], &[]).0, 0);
    let (code, out, _) = run_botcalld(&["--version"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_flags_and_config_exit_2_with_a_message() {
    let dir = TempDir::new("badcfg");
    let bad_toml = dir.path().join("bad.toml");
    std::fs::write(&bad_toml, "max_agents = \"lots\"\n").unwrap();
    let unknown_key = dir.path().join("unknown.toml");
    std::fs::write(&unknown_key, "max_agentz = 5\n").unwrap();
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "max_agents = \n").unwrap();
    let missing = dir.path().join("missing.toml");
    // (arguments, environment, what the message must name)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec!["--no-such-option", "1"], vec![], "--no-such-option"),
        (vec!["--max-agents"], vec![], "max-agents"),
        (vec!["--max-agents", "lots"], vec![], "max-agents"),
        (vec!["--max-agents", "0"], vec![], "max_agents"),
        (vec!["--listen", "nowhere"], vec![], "listen"),
        (vec!["--human-check", "captcha"], vec![], "human_check"),
        (vec!["stray-argument"], vec![], "stray-argument"),
        (
            vec!["--config", bad_toml.to_str().unwrap()],
            vec![],
            "max_agents",
        ),
        (
            vec!["--config", unknown_key.to_str().unwrap()],
            vec![],
            "max_agentz",
        ),
        (
            vec!["--config", broken.to_str().unwrap()],
            vec![],
            "broken.toml",
        ),
        (
            vec!["--config", missing.to_str().unwrap()],
            vec![],
            "missing.toml",
        ),
        (
            vec![],
            vec![("BOTCALL_MAX_AGENTS", "many")],
            "BOTCALL_MAX_AGENTS",
        ),
        // An unknown BOTCALL_ name is only a warning: the exit comes from the bad flag.
        (
            vec!["--max-agents", "0"],
            vec![("BOTCALL_NO_SUCH", "1")],
            "warning: ignoring environment BOTCALL_NO_SUCH",
        ),
    ];
    for (args, env, needle) in cases {
        let (code, _, err) = run_botcalld(&args, &env);
        assert_eq!(code, 2, "{args:?} {env:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?} {env:?}: message does not name {needle}: {err}"
        );
    }
}

#[test]
fn config_file_env_and_flags_in_order() {
    let dir = TempDir::new("cfg");
    let state = dir.path().join("state");
    let file = dir.path().join("botcall.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\nstun_listen = \"off\"\nmax_agents = 5\nstate_dir = \"{}\"\nopen_registration = false\n",
            state.display()
        ),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    // File only.
    let p = Proc::start(&["--config", f], &[], dir.path());
    assert_eq!(p.metric("botcall_agent_table_capacity"), 5.0);
    assert_eq!(p.addr().ip().to_string(), "127.0.0.1");
    assert!(!p.log().contains("STUN udp"), "stun_listen = off ignored");
    drop(p);
    // BOTCALL_CONFIG names the file too.
    let p = Proc::start(&[], &[("BOTCALL_CONFIG", f)], dir.path());
    assert_eq!(p.metric("botcall_agent_table_capacity"), 5.0);
    drop(p);
    // Environment over the file.
    let env = [
        ("BOTCALL_MAX_AGENTS", "7"),
        ("BOTCALL_LISTEN", "127.0.0.2:0"),
        ("BOTCALL_OPEN_REGISTRATION", "true"),
    ];
    let p = Proc::start(&["--config", f], &env, dir.path());
    assert_eq!(p.metric("botcall_agent_table_capacity"), 7.0);
    assert_eq!(p.addr().ip().to_string(), "127.0.0.2");
    let k = Keys::new();
    let id = Keys::thumbprint(&k.fleet);
    let r = http(
        p.addr(),
        "POST",
        "/register",
        &[
            (
                "Authorization",
                &format!("Bearer {}", open_token(&k.fleet, &id)),
            ),
            ("Content-Type", "application/json"),
        ],
        reg_body(&id).as_bytes(),
    );
    assert_eq!(
        r.status,
        200,
        "BOTCALL_OPEN_REGISTRATION ignored: {}",
        r.text()
    );
    drop(p);
    // Flags over the environment (the order of --config and flags does not matter).
    let p = Proc::start(
        &[
            "--max-agents",
            "9",
            "--listen",
            "127.0.0.1:0",
            "--config",
            f,
        ],
        &env,
        dir.path(),
    );
    assert_eq!(p.metric("botcall_agent_table_capacity"), 9.0);
    assert_eq!(p.addr().ip().to_string(), "127.0.0.1");
    assert_eq!(p.term().code(), Some(0));
}

#[test]
fn runs_with_no_arguments_on_port_8080() {
    // `cargo run --release` with no config: defaults must serve HTTP on
    // 0.0.0.0:8080 and STUN on 0.0.0.0:3478. Those fixed ports must be free
    // here; if they are not, this fails loudly rather than skipping.
    {
        let t = std::net::TcpListener::bind("0.0.0.0:8080").unwrap_or_else(|e| {
            panic!("TCP port 8080 is in use on this machine ({e}); this test needs it free")
        });
        let u = UdpSocket::bind("0.0.0.0:3478").unwrap_or_else(|e| {
            panic!("UDP port 3478 is in use on this machine ({e}); this test needs it free")
        });
        drop((t, u));
    }
    let cwd = TempDir::new("noargs");
    let p = Proc::start(&[], &[], cwd.path());
    assert_eq!(p.addr().to_string(), "0.0.0.0:8080", "{}", p.log());
    assert!(p.log().contains("STUN udp 0.0.0.0:3478"));
    let r = http(
        "127.0.0.1:8080".parse().unwrap(),
        "GET",
        "/healthz",
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    assert_eq!(p.metric("botcall_agent_table_capacity"), 100_000.0);
    // The state directory defaults to ./botcall-state.
    assert!(cwd.path().join("botcall-state/attestation.jwk").exists());
    // STUN answers a Binding request.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    req.extend_from_slice(b"botcall-test");
    u.send_to(&req, "127.0.0.1:3478").unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = u.recv_from(&mut buf).expect("STUN answer");
    assert!(n >= 20 && buf[..2] == [0x01, 0x01] && buf[8..20] == req[8..20]);
    assert_eq!(p.term().code(), Some(0));
}
