//! Connection-level behaviour: timeouts, keep-alive, pipelining, 100-continue.

use super::*;

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
