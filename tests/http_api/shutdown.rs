//! SIGTERM/SIGINT: quick exits, in-flight requests, the grace period.

use super::*;

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
