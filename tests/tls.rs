//! Built-in TLS (`--features tls`): HTTPS and WSS on the API port, and the
//! certificate reloaded on SIGHUP. Run by `tests/all` as
//! `cargo test -p botcalld --features tls --test tls`. The client side is
//! Python's `ssl` module (OpenSSL), an independent TLS implementation; the
//! certificates come from the `openssl` command. The SDK (rustls) is the
//! second client: a bot registers and holds presence over HTTPS + WSS.
#![cfg(feature = "tls")]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use botcall_sdk::{BotConfig, BotError, register_with_discovery};
use common::*;
use futures_lite::future;

/// Runs `openssl` in `dir`; panics with its stderr if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (tests/setup installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `openssl req` arguments for a new P-256 key, unencrypted.
const NEW_EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// A self-signed certificate `name.crt` / `name.key` for 127.0.0.1.
fn make_cert(dir: &Path, name: &str, cn: &str) {
    let (subj, key, crt) = (
        format!("/CN={cn}"),
        format!("{name}.key"),
        format!("{name}.crt"),
    );
    let mut args = vec!["req", "-x509", "-days", "1"];
    args.extend(NEW_EC_KEY);
    args.extend(["-subj", &subj, "-addext", "subjectAltName=IP:127.0.0.1"]);
    args.extend(["-keyout", &key, "-out", &crt]);
    openssl(dir, &args);
}

/// GET /healthz and a WebSocket upgrade over TLS, trusting `ca`; prints the peer certificate's CN.
const CLIENT: &str = r#"
import json, socket, ssl, sys, base64, os
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
def conn():
    s = socket.create_connection((host, port), timeout=5)
    return ctx.wrap_socket(s, server_hostname=host)
s = conn()
cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(4096)
    if not b: break
    data += b
status = data.split(b" ")[1].decode()
w = conn()
key = base64.b64encode(os.urandom(16)).decode()
w.sendall(("GET /v1/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n" % key).encode())
head = b""
while b"\r\n\r\n" not in head:
    head += w.recv(1)
payload = json.dumps({"type": "hello", "role": "caller"}).encode()
mask = os.urandom(4)
w.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
hdr = w.recv(2)
n = hdr[1] & 0x7f
if n == 126: n = int.from_bytes(w.recv(2), "big")
msg = b""
while len(msg) < n: msg += w.recv(n - len(msg))
print(json.dumps({"cn": cn, "status": status, "upgrade": head.split(b" ")[1].decode(), "welcome": json.loads(msg)["type"]}))
"#;

fn client(d: &Daemon, ca: &Path) -> serde_json::Value {
    let out = Command::new("python3")
        .args(["-c", CLIENT, "127.0.0.1", &d.addr.port().to_string()])
        .arg(ca)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "TLS client failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn https_and_wss_with_reload_on_sighup() {
    let dir = TempDir::new("tls");
    make_cert(dir.path(), "one", "botcall-one");
    make_cert(dir.path(), "two", "botcall-two");
    let (crt, key) = (dir.path().join("live.crt"), dir.path().join("live.key"));
    std::fs::copy(dir.path().join("one.crt"), &crt).unwrap();
    std::fs::copy(dir.path().join("one.key"), &key).unwrap();
    let d = Daemon::start(&[
        "--tls-cert",
        crt.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(d.log().contains("listening on https://"));
    let r = client(&d, &dir.path().join("one.crt"));
    assert_eq!(
        r,
        serde_json::json!({"cn": "botcall-one", "status": "200", "upgrade": "101", "welcome": "welcome"})
    );

    // Plain HTTP on the TLS port is a failed handshake; nothing answers it.
    let raw_reply = raw(d.addr, b"GET /healthz HTTP/1.1\r\n\r\n");
    assert!(!raw_reply.starts_with(b"HTTP/1.1 200"));

    // A broken file on SIGHUP keeps the old certificate.
    std::fs::write(&crt, "not a certificate").unwrap();
    Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status()
        .unwrap();
    d.eventually("reload failure logged", Duration::from_secs(5), || {
        d.log().contains("TLS reload failed")
    });
    assert_eq!(client(&d, &dir.path().join("one.crt"))["cn"], "botcall-one");

    // A new certificate on SIGHUP is served to new connections.
    std::fs::copy(dir.path().join("two.crt"), &crt).unwrap();
    std::fs::copy(dir.path().join("two.key"), &key).unwrap();
    Command::new("kill")
        .args(["-HUP", &d.pid().to_string()])
        .status()
        .unwrap();
    d.eventually("reload logged", Duration::from_secs(5), || {
        d.log().contains("reloaded TLS certificate")
    });
    assert_eq!(client(&d, &dir.path().join("two.crt"))["cn"], "botcall-two");
}

#[test]
fn a_bad_certificate_at_start_is_a_clear_error() {
    let dir = TempDir::new("tls-bad");
    let crt = dir.path().join("x.crt");
    std::fs::write(&crt, "junk").unwrap();
    let out = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--stun-listen",
            "off",
            "--tls-cert",
            crt.to_str().unwrap(),
            "--tls-key",
            crt.to_str().unwrap(),
        ])
        .arg("--state-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("x.crt"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `GET path` over TLS trusting `ca`, with Python's `ssl`; the JSON body.
fn https_get(d: &Daemon, ca: &Path, path: &str) -> serde_json::Value {
    const GET: &str = r#"
import json, socket, ssl, sys
host, port, ca, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = ssl.create_default_context(cafile=ca).wrap_socket(socket.create_connection((host, port), timeout=5), server_hostname=host)
s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
data = b""
while True:
    b = s.recv(4096)
    if not b: break
    data += b
print(data.split(b"\r\n\r\n", 1)[1].decode())
"#;
    let out = Command::new("python3")
        .args(["-c", GET, "127.0.0.1", &d.addr.port().to_string()])
        .arg(ca)
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A private CA `ca.crt` and a leaf `leaf.crt`/`leaf.key` for 127.0.0.1 signed
/// by it — the shape rustls (webpki) accepts; a self-signed `req -x509`
/// certificate is a CA certificate and is refused as an end entity.
fn make_ca_and_leaf(dir: &Path) {
    let mut ca = vec!["req", "-x509", "-days", "1"];
    ca.extend(NEW_EC_KEY);
    ca.extend([
        "-subj",
        "/CN=BotCall test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    openssl(dir, &ca);
    let mut leaf = vec!["req", "-new"];
    leaf.extend(NEW_EC_KEY);
    leaf.extend([
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
    ]);
    openssl(dir, &leaf);
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.crt",
        ],
    );
}

#[test]
fn an_sdk_bot_registers_and_stays_online_over_https_and_wss() {
    let dir = TempDir::new("tls-sdk");
    make_ca_and_leaf(dir.path());
    make_cert(dir.path(), "other", "someone-else");
    let ca = dir.path().join("ca.crt");
    let d = Daemon::start(&[
        "--tls-cert",
        dir.path().join("leaf.crt").to_str().unwrap(),
        "--tls-key",
        dir.path().join("leaf.key").to_str().unwrap(),
    ]);
    let url = format!("https://127.0.0.1:{}", d.addr.port());
    let cfg = || {
        BotConfig::new(&url, Keys::new().ec)
            .agent_id("ec-bot")
            .seed(5)
    };

    // The private CA is not in the webpki roots, and another CA file does not
    // vouch for the daemon: a typed TLS error, not a hang or a panic.
    for c in [cfg(), cfg().tls_ca_file(dir.path().join("other.crt"))] {
        match future::block_on(register_with_discovery(c)) {
            Err(BotError::Io { message, .. }) => {
                assert!(message.contains("TLS handshake"), "{message}")
            }
            other => panic!(
                "expected a TLS handshake error, got {:?}",
                other.map(|b| b.status())
            ),
        }
    }
    // A file without a certificate, or an http:// URL with a CA file, is a config error at once.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not pem").unwrap();
    assert!(matches!(
        future::block_on(register_with_discovery(cfg().tls_ca_file(&junk))),
        Err(BotError::Config(m)) if m.contains("junk.pem")
    ));
    assert!(matches!(
        future::block_on(register_with_discovery(
            BotConfig::new(format!("http://{}", d.addr), Keys::new().ec).tls_ca_file(&ca)
        )),
        Err(BotError::Config(m)) if m.contains("not https://")
    ));
    assert_eq!(https_get(&d, &ca, "/lookup/ec-bot")["code"], "not_found");

    // Trusting the private CA: registered (HTTPS) and online (WSS).
    let bot = future::block_on(register_with_discovery(cfg().tls_ca_file(&ca)))
        .expect("the bot registers over TLS");
    assert!(bot.status().online);
    let lookup = https_get(&d, &ca, "/lookup/ec-bot");
    assert_eq!(lookup["online"], true, "{lookup}");
}
