//! The daemon's contract with systemd, checked without systemd: started the
//! way `systemd/botcalld.service` starts it (the packaged config, no flags
//! for the state directory, `$STATE_DIRECTORY` and `$NOTIFY_SOCKET` from the
//! environment), it says READY=1 once it answers, WATCHDOG=1 every second,
//! STOPPING=1 on SIGTERM, and a SIGTERM under load drains and exits 0 within
//! `shutdown_grace`.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

mod common;

use common::{BIN, Daemon, TempDir, WAIT_FLOOR, raw_ws_upgrade};

fn sample_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/botcalld.toml")
}

/// botcalld started like the systemd unit starts it: the packaged config,
/// `$STATE_DIRECTORY` (`<dir>/state`) and optionally `$NOTIFY_SOCKET`.
fn service(dir: TempDir, notify: Option<&Path>, extra: &[&str]) -> Daemon {
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(sample_config())
        .args(["--listen", "127.0.0.1:0", "--stun-listen", "127.0.0.1:0"])
        .args([
            "--open-registration",
            "--log-level",
            "debug",
            "--rate-ip",
            "0",
        ])
        .args(extra)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("STATE_DIRECTORY", &state);
    if let Some(n) = notify {
        cmd.env("NOTIFY_SOCKET", n);
    }
    Daemon::spawn(cmd, dir)
}

/// Notifications received on a fake `NOTIFY_SOCKET`, with arrival times.
struct Notifications {
    rx: mpsc::Receiver<(Instant, String)>,
    seen: Vec<(Instant, String)>,
}

impl Notifications {
    fn listen(path: &Path) -> Notifications {
        let sock = UnixDatagram::bind(path).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                if tx.send((Instant::now(), msg)).is_err() {
                    break;
                }
            }
        });
        Notifications {
            rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a datagram containing the line `line`; returns its time.
    fn expect(&mut self, line: &str, within: Duration) -> Instant {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((t, msg)) => {
                    let hit = msg.lines().any(|l| l == line);
                    self.seen.push((t, msg));
                    if hit {
                        return t;
                    }
                }
                Err(_) => panic!("no {line} within {within:?}; got {:?}", self.seen),
            }
        }
    }
}

#[test]
fn notify_ready_watchdog_stopping_and_state_directory() {
    let dir = TempDir::new("notify");
    let sock = dir.path().join("notify.sock");
    let mut notes = Notifications::listen(&sock);
    let mut svc = service(dir, Some(&sock), &[]);

    // READY=1 comes once the listeners are bound: the daemon answers by then.
    notes.expect("READY=1", WAIT_FLOOR);
    let r = svc.get("/healthz");
    assert_eq!(r.status, 200, "{}", r.text());

    // WATCHDOG=1 from the one-second tick: at least every WatchdogSec/2
    // (15 s), as systemd asks, on any machine.
    let w1 = notes.expect("WATCHDOG=1", WAIT_FLOOR);
    let w2 = notes.expect("WATCHDOG=1", WAIT_FLOOR);
    assert!(
        w2 - w1 < Duration::from_secs(15),
        "watchdog pings {w1:?} {w2:?}"
    );

    // The attestation key went to $STATE_DIRECTORY (the unit's StateDirectory=), private.
    let key = svc.dir.path().join("state/attestation.jwk");
    let mode = std::fs::metadata(&key)
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", key.display(), svc.log()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "attestation key mode {mode:o}");

    // `systemctl reload` (ExecReload= sends SIGHUP) must not stop it.
    svc.send_signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    let r = svc.get("/healthz");
    assert_eq!(r.status, 200, "after SIGHUP: {}\n{}", r.text(), svc.log());

    svc.send_signal("TERM");
    notes.expect("STOPPING=1", WAIT_FLOOR);
    let st = svc.wait(WAIT_FLOOR);
    assert_eq!(st.code(), Some(0), "{}", svc.log());
}

#[test]
fn restart_keeps_the_attestation_key() {
    let jwks = |svc: &Daemon| svc.get("/.well-known/jwks.json").text();
    let mut a = service(TempDir::new("restart"), None, &[]);
    let first = jwks(&a);
    assert_eq!(a.signal("TERM", Duration::from_secs(15)).code(), Some(0));
    let mut b = service(a.stop(), None, &[]);
    let second = jwks(&b);
    assert!(first.contains("\"kid\""), "{first}");
    assert_eq!(first, second, "the JWKS changed across a restart");
    assert_eq!(b.signal("TERM", Duration::from_secs(15)).code(), Some(0));
}

/// A minimal WebSocket client on a raw socket (client frames are masked).
fn ws_connect(addr: SocketAddr) -> TcpStream {
    let mut s = raw_ws_upgrade(addr, Duration::from_secs(20));
    ws_send(&mut s, 0x1, br#"{"type":"hello","role":"caller","v":1}"#);
    let (op, _) = ws_read(&mut s).expect("welcome");
    assert_eq!(op, 0x1);
    s
}

fn ws_send(s: &mut TcpStream, op: u8, payload: &[u8]) {
    let mut f = vec![0x80 | op];
    assert!(payload.len() < 126);
    f.push(0x80 | payload.len() as u8);
    let mask = [1u8, 2, 3, 4];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&f).unwrap();
}

/// Reads one frame: (opcode, payload). `None` on EOF.
fn ws_read(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).ok()?;
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut l = [0u8; 2];
        s.read_exact(&mut l).ok()?;
        len = u64::from(u16::from_be_bytes(l));
    } else if len == 127 {
        let mut l = [0u8; 8];
        s.read_exact(&mut l).ok()?;
        len = u64::from_be_bytes(l);
    }
    let mut p = vec![0u8; len as usize];
    s.read_exact(&mut p).ok()?;
    Some((h[0] & 0x0f, p))
}

/// SIGTERM while 300 WebSockets are open and 4 clients hammer the HTTP API:
/// every socket gets a 1001 close, keep-alive clients are let go, and the
/// daemon exits 0 well inside `shutdown_grace`.
#[test]
fn sigterm_under_load_drains_and_exits_zero_within_grace() {
    const SOCKETS: usize = 300;
    // Far more than a drain takes, so a loaded machine cannot run into it.
    const GRACE: u64 = 30;
    let grace = GRACE.to_string();
    let mut svc = service(TempDir::new("drain"), None, &["--shutdown-grace", &grace]);
    let addr = svc.addr;

    let mut sockets: Vec<TcpStream> = (0..SOCKETS).map(|_| ws_connect(addr)).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let hammers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, served) = (stop.clone(), served.clone());
            std::thread::spawn(move || {
                // Keep-alive requests until the daemon closes the connection.
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while !stop.load(Ordering::Relaxed) {
                    if s.write_all(b"GET /v1/agents HTTP/1.1\r\nhost: t\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                    let mut len = 0usize;
                    loop {
                        line.clear();
                        match r.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    served.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    while served.load(Ordering::Relaxed) < 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "load did not start\n{}",
            svc.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let term = svc.send_signal("TERM");
    // Every WebSocket hears 1001 (going away) and answers the close.
    for s in &mut sockets {
        let code = loop {
            match ws_read(s) {
                Some((0x8, p)) => break u16::from_be_bytes([p[0], p[1]]),
                Some(_) => continue,
                None => panic!("socket closed without a close frame\n{}", svc.log()),
            }
        };
        assert_eq!(code, 1001);
        ws_send(s, 0x8, &1001u16.to_be_bytes());
    }
    let st = svc.wait(Duration::from_secs(GRACE + 10));
    let took = term.elapsed();
    stop.store(true, Ordering::Relaxed);
    for h in hammers {
        h.join().unwrap();
    }
    assert_eq!(st.code(), Some(0), "{}", svc.log());
    assert!(
        took < Duration::from_secs(GRACE),
        "drain took {took:?}, grace {GRACE} s\n{}",
        svc.log()
    );
    let log = svc.log();
    assert!(
        !log.contains("grace period over"),
        "connections left over:\n{log}"
    );
    // The daemon closed every socket: reads end.
    for s in &mut sockets {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 64];
        match s.read(&mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("socket still open after exit: {other:?}"),
        }
    }
}

/// Clients that never answer the close cannot hold shutdown past the grace
/// time: the daemon gives up on them and still exits 0.
#[test]
fn sigterm_with_stubborn_clients_exits_zero_at_the_grace_deadline() {
    const GRACE: u64 = 2;
    let grace = GRACE.to_string();
    let mut svc = service(
        TempDir::new("stubborn"),
        None,
        &["--shutdown-grace", &grace],
    );
    // WebSockets that never read nor answer, and a half-sent HTTP request.
    let _ws: Vec<TcpStream> = (0..50).map(|_| ws_connect(svc.addr)).collect();
    let mut half = TcpStream::connect(svc.addr).unwrap();
    half.write_all(b"POST /v1/register HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\n{")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let term = svc.send_signal("TERM");
    let st = svc.wait(Duration::from_secs(GRACE + 10));
    let took = term.elapsed();
    assert_eq!(st.code(), Some(0), "{}", svc.log());
    assert!(
        took >= Duration::from_secs(GRACE) - Duration::from_millis(100)
            && took < Duration::from_secs(GRACE + 8),
        "exit after {took:?} with grace {GRACE} s\n{}",
        svc.log()
    );
    assert!(svc.log().contains("grace period over"), "{}", svc.log());
}
