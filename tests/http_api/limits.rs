//! Limits: per-IP and per-agent rates, trusted proxies, audience, full tables.

use super::*;

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
    // The slot /healthz just used may still be counted when /metrics
    // connects (the daemon sees that close a moment later): read it until
    // a connection gets in, rather than taking a 503 body for zero.
    d.eventually("the refusal counted", Duration::from_secs(30), || {
        d.metric("botcall_connections_rejected_total") >= 1.0
    });
}
