//! Shared test harness: start a real `botcalld` on loopback ports it picks
//! itself, talk HTTP to it over real sockets, open real WebSockets
//! (tungstenite, a third-party implementation), mint tokens.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use botcall_core::json::Writer;
use botcall_core::jwt::{self, HeaderOpts, SigningKey};

mod echo;
mod push;
#[allow(unused_imports)] // each test crate uses some of it
pub use echo::{EchoBot, KillOnDrop, example, write_tone_wav};
#[allow(unused_imports)]
pub use push::PushService;

/// The test venv's Python (`tests/setup` makes it): `BOTCALL_PYTHON`, else
/// `$BOTCALL_VENV/bin/python`, else `/tmp/botcall-venv/bin/python`.
pub fn python() -> String {
    if let Ok(p) = std::env::var("BOTCALL_PYTHON") {
        return p;
    }
    let venv = std::env::var("BOTCALL_VENV").unwrap_or_else(|_| "/tmp/botcall-venv".into());
    format!("{venv}/bin/python")
}

pub const BIN: &str = env!("CARGO_BIN_EXE_botcalld");

/// The shortest wait for an event before a test gives up (see [`Daemon::eventually`]).
pub const WAIT_FLOOR: Duration = Duration::from_secs(30);

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!(
            "botcall-test-{tag}-{}-{n}-{}",
            std::process::id(),
            now()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Keys the tests sign with; the daemon gets their public halves.
pub struct Keys {
    pub hs: SigningKey,
    pub ec: SigningKey,
    pub fleet: SigningKey,
    pub other_ec: SigningKey,
}

fn ec_key(seed: u8) -> SigningKey {
    let mut d = [seed; 32];
    d[0] = 1;
    SigningKey::Es256(botcall_core::jwt::EcSigningKey::from_slice(&d).unwrap())
}

impl Keys {
    pub fn new() -> Self {
        let jwk = r#"{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0NTY"}"#;
        Keys {
            hs: SigningKey::from_jwk(jwk).unwrap(),
            ec: ec_key(7),
            fleet: ec_key(9),
            other_ec: ec_key(11),
        }
    }

    pub fn public_jwk(k: &SigningKey) -> String {
        match k {
            SigningKey::Es256(sk) => {
                let mut v = Vec::new();
                jwt::key::write_public_jwk(&mut Writer::new(&mut v), sk.verifying_key(), None)
                    .unwrap();
                String::from_utf8(v).unwrap()
            }
            SigningKey::Hs256(_) => {
                let mut v = Vec::new();
                k.write_jwk(&mut Writer::new(&mut v), None).unwrap();
                String::from_utf8(v).unwrap()
            }
        }
    }

    /// Keys file: `hs-*` ids by exact entry, `ec-bot` by ES256, fleet `fleet-7.*`.
    pub fn file(&self) -> String {
        let hs = Self::public_jwk(&self.hs);
        let ec = Self::public_jwk(&self.ec);
        let fleet = Self::public_jwk(&self.fleet);
        let mut agents = Vec::new();
        for id in [
            "hs-bot", "hs-bot-2", "hs-bot-3", "hs-a", "hs-b", "hs-c", "hs-d", "hs-e", "hs-f",
        ] {
            agents.push(format!("\"{id}\":{hs}"));
        }
        agents.push(format!("\"ec-bot\":{ec}"));
        agents.push(format!("\"ec-bot-2\":{ec}"));
        format!(
            r#"{{"agents":{{{}}},"fleets":[{{"prefix":"fleet-7.*","key":{fleet}}}]}}"#,
            agents.join(",")
        )
    }

    /// The open-registration id of `k` (its RFC 7638 thumbprint).
    pub fn thumbprint(k: &SigningKey) -> String {
        match k {
            SigningKey::Es256(sk) => jwt::thumbprint(sk.verifying_key()).to_string(),
            _ => panic!("thumbprints are for EC keys"),
        }
    }
}

/// Signs arbitrary claims JSON.
pub fn sign(key: &SigningKey, claims: &str, embed_jwk: bool) -> String {
    let mut out = vec![0u8; 4096];
    let opts = HeaderOpts {
        kid: None,
        embed_jwk,
        typ: None,
    };
    jwt::sign_claims(key, opts, claims, &mut out)
        .unwrap()
        .to_string()
}

/// A BotAuth token for `sub`, valid `ttl` seconds from now.
pub fn token(key: &SigningKey, sub: &str, ttl: i64) -> String {
    let n = now() as i64;
    sign(
        key,
        &format!(r#"{{"sub":"{sub}","iat":{n},"exp":{}}}"#, n + ttl),
        false,
    )
}

/// A running daemon; killed on drop.
pub struct Daemon {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub stun: Option<SocketAddr>,
    pub dir: TempDir,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts `botcalld` with the test keys and `extra` flags.
    pub fn start(extra: &[&str]) -> Daemon {
        Self::start_in(TempDir::new("daemon"), extra)
    }

    pub fn start_in(dir: TempDir, extra: &[&str]) -> Daemon {
        let keys_path = dir.path().join("keys.json");
        if !keys_path.exists() {
            std::fs::write(&keys_path, Keys::new().file()).unwrap();
        }
        let mut cmd = Command::new(BIN);
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--stun-listen",
            "127.0.0.1:0",
            "--log-level",
            "debug",
        ])
        .arg("--keys")
        .arg(&keys_path)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(extra)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        Self::spawn(cmd, dir)
    }

    /// Runs `cmd` (a `botcalld` command line with loopback listeners on port
    /// 0), captures its log and waits (bounded) until it says where it listens.
    pub fn spawn(mut cmd: Command, dir: TempDir) -> Daemon {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start botcalld");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                {
                    let mut l = sink.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
                // After logging it: a test that asserts on `log()` once
                // `start` returns must find the line there.
                if line.contains(" listening on http")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(line);
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("botcalld did not start:\n{}", log.lock().unwrap());
            }
        };
        let addr: SocketAddr = line
            .split("://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .expect("listen address in log");
        let stun = line
            .split("STUN udp ")
            .nth(1)
            .and_then(|r| r.split([';', ' ']).next())
            .and_then(|a| a.parse().ok());
        Daemon {
            child: Some(child),
            addr,
            stun,
            dir,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends a signal and waits (bounded) for the exit status.
    pub fn signal(&mut self, sig: &str, within: Duration) -> ExitStatus {
        self.send_signal(sig);
        self.wait(within)
    }

    /// Sends a signal without waiting; returns when it was sent.
    pub fn send_signal(&self, sig: &str) -> Instant {
        let t = Instant::now();
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "kill -{sig}");
        t
    }

    pub fn wait(&mut self, within: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let t0 = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.child = None;
                return st;
            }
            if t0.elapsed() > within {
                let _ = child.kill();
                panic!("botcalld did not exit within {within:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the daemon and hands its directory back (to restart on it).
    pub fn stop(mut self) -> TempDir {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let dir = std::mem::replace(&mut self.dir, TempDir(PathBuf::new()));
        std::mem::forget(self);
        dir
    }

    pub fn get(&self, path: &str) -> Resp {
        http(self.addr, "GET", path, &[], b"")
    }

    /// A metric's value (exact series text, e.g. `botcall_calls_active` or
    /// `botcall_http_requests_total{route="lookup",status="200"}`); 0 if absent.
    pub fn metric(&self, series: &str) -> f64 {
        metric_value(&self.get("/metrics").text(), series)
    }

    /// Waits until `cond` holds, polling. `within` is only there to end a
    /// wait that will never succeed, so it is at least [`WAIT_FLOOR`]: a
    /// loaded machine or qemu must not change the verdict. A test that
    /// proves a deadline measures the time itself.
    pub fn eventually(&self, what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
        let within = within.max(WAIT_FLOOR);
        let t0 = Instant::now();
        while !cond() {
            if t0.elapsed() > within {
                panic!(
                    "timed out waiting for {what}\n--- daemon log ---\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A series' value in a `/metrics` text (exact series text, labels
/// included); 0 if absent.
pub fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|r| r.strip_prefix(' '))
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0.0)
}

/// An HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    /// The `code` of an error body.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or("").to_string()
    }
}

/// Parses every response in `raw` (several when pipelined).
pub fn parse_responses(mut raw: &[u8]) -> Vec<Resp> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let body_start = end + 4;
        let body_end = (body_start + len).min(raw.len());
        let body = raw[body_start..body_end].to_vec();
        raw = &raw[body_end..];
        out.push(Resp {
            status,
            headers,
            body,
        });
    }
    out
}

/// Sends raw bytes, reads until the server closes (or [`WAIT_FLOOR`] passes).
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    raw_from(None, addr, bytes)
}

/// [`raw`] from a chosen source address (`None`: the kernel's choice).
pub fn raw_from(src: Option<IpAddr>, addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = connect_from(src, addr).unwrap();
    s.set_read_timeout(Some(WAIT_FLOOR)).unwrap();
    // A refusal at accept may close before the request is written.
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// One request on a fresh connection (`Connection: close`).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    http_from(None, addr, method, path, headers, body)
}

/// [`http`] from a chosen source address (`None`: the kernel's choice).
pub fn http_from(
    src: Option<IpAddr>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    let raw = raw_from(src, addr, &bytes);
    parse_responses(&raw)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no response to {method} {path} from {src:?}"))
}

/// A WebSocket upgrade on a raw socket (for frames and timings a WebSocket
/// library will not produce); panics unless the daemon answers 101.
pub fn raw_ws_upgrade(addr: SocketAddr, read_timeout: Duration) -> TcpStream {
    let s = ws_upgrade_from(None, addr, &[]).unwrap_or_else(|r| panic!("no upgrade: {r:?}"));
    s.set_read_timeout(Some(read_timeout)).unwrap();
    s
}

/// A WebSocket upgrade on a raw socket from `src` with extra request
/// headers. `Err` carries the refusal (status 0: the daemon closed or reset
/// the connection without an answer, as a refusal at accept may).
pub fn ws_upgrade_from(
    src: Option<IpAddr>,
    addr: SocketAddr,
    headers: &[(&str, &str)],
) -> Result<TcpStream, Resp> {
    let none = |why: String| Resp {
        status: 0,
        headers: Vec::new(),
        body: why.into_bytes(),
    };
    let mut s = connect_from(src, addr).map_err(|e| none(format!("connect: {e}")))?;
    s.set_read_timeout(Some(WAIT_FLOOR)).unwrap();
    let mut req = String::from(
        "GET /v1/ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str("Host: x\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    // A refusal at accept may arrive (and the socket close) before this is written.
    let _ = s.write_all(req.as_bytes());
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if head.is_empty() => return Err(none(format!("read: {e}"))),
            Err(_) => break,
        }
    }
    if head.starts_with(b"HTTP/1.1 101") {
        return Ok(s);
    }
    // The refusal's body, as far as it arrives.
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.read_to_end(&mut head);
    Err(parse_responses(&head)
        .into_iter()
        .next()
        .unwrap_or_else(|| none(String::from_utf8_lossy(&head).into_owned())))
}

/// `POST /register` with a bearer token and JSON body.
pub fn register(d: &Daemon, token: &str, body: &str) -> Resp {
    let auth = format!("Bearer {token}");
    http(
        d.addr,
        "POST",
        "/register",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

/// Whether agent `id` is online, as `GET /lookup/{id}` says; `None` when
/// the lookup is not 200 (unknown or expired).
pub fn online(d: &Daemon, id: &str) -> Option<bool> {
    let r = d.get(&format!("/lookup/{id}"));
    (r.status == 200).then(|| r.json()["online"].as_bool().unwrap())
}

pub type Ws = tungstenite::WebSocket<Sock>;

/// A client socket whose reads and writes retry on `EINTR`. A blocking
/// socket call with a timeout fails with `EINTR` when the test process is
/// stopped and resumed (a stop signal, the cgroup freezer) — which a busy
/// shared machine does — and tungstenite would take that for a broken
/// connection. Derefs to the `TcpStream` (timeouts, raw access).
pub struct Sock(pub TcpStream);

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            match self.0.write(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl std::ops::Deref for Sock {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        &self.0
    }
}

impl std::ops::DerefMut for Sock {
    fn deref_mut(&mut self) -> &mut TcpStream {
        &mut self.0
    }
}

/// Opens a WebSocket to the daemon (extra request headers allowed).
pub fn ws_connect(d: &Daemon, headers: &[(&str, &str)]) -> Ws {
    ws_connect_from(d, None, headers)
}

/// [`ws_connect`] from a chosen source address (`None`: the kernel's choice).
pub fn ws_connect_from(d: &Daemon, src: Option<IpAddr>, headers: &[(&str, &str)]) -> Ws {
    use tungstenite::client::IntoClientRequest;
    let mut req = d.ws_url().into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().append(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let stream = connect_from(src, d.addr).unwrap();
    stream.set_read_timeout(Some(WAIT_FLOOR)).unwrap();
    let (ws, _) = tungstenite::client(req, Sock(stream))
        .unwrap_or_else(|e| panic!("websocket handshake from {src:?}: {e}"));
    ws
}

pub fn send(ws: &mut Ws, v: serde_json::Value) {
    ws.send(tungstenite::Message::text(v.to_string())).unwrap();
}

/// Next JSON text message (pings are answered by tungstenite on the way).
pub fn recv(ws: &mut Ws) -> serde_json::Value {
    loop {
        match ws.read().expect("websocket read") {
            tungstenite::Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            tungstenite::Message::Close(c) => panic!("closed: {c:?}"),
            _ => continue,
        }
    }
}

/// Reads until the server closes; returns the close code.
pub fn recv_close(ws: &mut Ws) -> Option<u16> {
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Close(c)) => return c.map(|f| f.code.into()),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// A bot socket that said hello with `token`; returns it and the welcome.
pub fn bot(d: &Daemon, token: &str) -> (Ws, serde_json::Value) {
    let mut ws = ws_connect(d, &[]);
    send(
        &mut ws,
        serde_json::json!({"type": "hello", "role": "bot", "token": token}),
    );
    let w = recv(&mut ws);
    (ws, w)
}

/// A caller socket after hello; returns it and the welcome.
pub fn caller(d: &Daemon) -> (Ws, serde_json::Value) {
    let mut ws = ws_connect(d, &[]);
    send(
        &mut ws,
        serde_json::json!({"type": "hello", "role": "caller"}),
    );
    let w = recv(&mut ws);
    (ws, w)
}

/// Places a call to `to` with [`offer`]; returns the daemon's first answer
/// (`ringing`, or an `error`).
pub fn place_call(caller: &mut Ws, to: &str) -> serde_json::Value {
    send(
        caller,
        serde_json::json!({"type": "call", "to": to, "sdp_offer": offer()}),
    );
    recv(caller)
}

/// Verifies an `incoming` message's attestation for `agent` the way a bot
/// does: against `d`'s `/.well-known/jwks.json`, now.
pub fn attestation_of(d: &Daemon, inc: &serde_json::Value, agent: &str) -> jwt::HumanAttestation {
    let jwks = d.get("/.well-known/jwks.json").text();
    let token = inc["attestation"].as_str().expect("an attestation");
    jwt::verify_attestation(token, &jwt::Jwks::parse(&jwks).unwrap(), agent, None, now())
        .unwrap_or_else(|e| panic!("attestation for {agent}: {e:?}"))
}

/// The DTLS fingerprint in [`offer`].
pub const FP: &str = "sha-256 0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9";

/// A minimal SDP offer with a DTLS fingerprint.
pub fn offer() -> String {
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:{FP}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
    )
}

/// A real `redis-server` on a free loopback port, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    /// Starts (or restarts) on a given port, empty (no persistence).
    pub fn start_on(port: u16) -> RedisServer {
        let bin = std::env::var("BOTCALL_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {bin} (tests/setup installs redis-server): {e}")
            });
        let t0 = Instant::now();
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(b"PING\r\n");
                let mut b = [0u8; 7];
                s.set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                if s.read(&mut b).is_ok_and(|n| n >= 5 && &b[..5] == b"+PONG") {
                    break;
                }
            }
            assert!(
                t0.elapsed() < WAIT_FLOOR,
                "redis-server did not come up on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer {
            child: Some(child),
            port,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills it (like a crash) and waits until the port is closed.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

// --- hostile clients: source addresses, raw frames, memory, command lines ---

/// Loopback address 127.0.`a`.`b`: all of 127/8 is loopback on Linux, so
/// each is a distinct client to per-IP limits.
pub fn lo(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, a, b))
}

/// A TCP connection to `dst` from source address `src` (`None`: the kernel's
/// choice). IPv6 sources are bound with `IPV6_FREEBIND`, so any address of a
/// `local` route works (the prefix tests in a network namespace).
pub fn connect_from(src: Option<IpAddr>, dst: SocketAddr) -> std::io::Result<TcpStream> {
    use rustix::net::{AddressFamily, SocketType, bind, connect, socket, sockopt};
    let Some(src) = src else {
        return TcpStream::connect(dst);
    };
    let fam = if src.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = socket(fam, SocketType::STREAM, None)?;
    if src.is_ipv6() {
        sockopt::set_ipv6_freebind(&fd, true)?;
    }
    bind(&fd, &SocketAddr::new(src, 0))?;
    connect(&fd, &dst)?;
    Ok(TcpStream::from(fd))
}

/// Raises this process's soft open-files limit to the hard one (tests that
/// hold hundreds of sockets run beside others in one process).
pub fn raise_nofile() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if l.current < l.maximum {
        l.current = l.maximum;
        let _ = setrlimit(Resource::Nofile, l);
    }
}

/// A masked client frame (RFC 6455 §5.2): `b0` is FIN/RSV/opcode, any length.
pub fn masked_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(b0);
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Reads one server frame: (opcode, payload). `None` on EOF or error.
pub fn read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
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
    let mut p = vec![0u8; usize::try_from(len).ok()?];
    s.read_exact(&mut p).ok()?;
    Some((h[0] & 0x0f, p))
}

/// Reads frames until the server's close frame; its code (`None`: the socket
/// ended without one). Text frames before it are returned too.
pub fn raw_close(s: &mut TcpStream) -> (Option<u16>, Vec<String>) {
    let mut texts = Vec::new();
    while let Some((op, p)) = read_frame(s) {
        match op {
            0x8 => return (p.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]])), texts),
            0x1 => texts.push(String::from_utf8_lossy(&p).into_owned()),
            _ => {}
        }
    }
    (None, texts)
}

/// The close code a raw socket ends with.
pub fn raw_close_code(s: &mut TcpStream) -> Option<u16> {
    raw_close(s).0
}

/// One `kB` field of `/proc/PID/status` (0 if absent): `VmRSS:`, `VmHWM:`, …
pub fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds a process has used (`/proc/PID/stat`).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses).
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let hz = *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    });
    ticks / hz
}

impl Daemon {
    /// Resident memory now, kB (`VmRSS`).
    pub fn rss_kb(&self) -> u64 {
        status_kb(self.pid(), "VmRSS:")
    }

    /// Peak resident memory since start or the last [`Daemon::reset_peak`], kB (`VmHWM`).
    pub fn peak_kb(&self) -> u64 {
        status_kb(self.pid(), "VmHWM:")
    }

    /// Resets `VmHWM` to the current RSS (`/proc/PID/clear_refs`, value 5), so
    /// the peak of an attack is read without sampling gaps.
    pub fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5")
            .expect("reset VmHWM through /proc/PID/clear_refs");
    }
}

/// Runs `botcalld args` to completion (bounded: a daemon that starts
/// instead of refusing its arguments is killed and the test fails).
/// Returns (exit code, -1 for a signal; stdout; stderr).
pub fn run_botcalld(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = TempDir::new("run");
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > WAIT_FLOOR {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "botcalld {args:?} {env:?} kept running:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Option names from the `opts!` table in src/config.rs (the source of truth).
pub fn config_option_names() -> Vec<String> {
    let src =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/config.rs")).unwrap();
    let table = src
        .split("opts! {")
        .nth(1)
        .unwrap()
        .split("\n}")
        .next()
        .unwrap();
    let names: Vec<String> = table
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix('"')?
                .split_once("\" = \"")
                .map(|(n, _)| n.to_string())
        })
        .collect();
    assert!(names.len() >= 40, "parsed {} option names", names.len());
    names
}
