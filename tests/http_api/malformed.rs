//! Malformed HTTP: 400/405/413/431, body framing, bad bodies.

use super::*;

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
