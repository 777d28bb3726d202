//! The shipped systemd unit and sample config stay true:
//! `systemd-analyze security --offline=yes` rates the unit's exposure ≤ 2.0,
//! `systemd-analyze verify` accepts it (pointed at the built binary), its
//! limits fit the daemon's defaults, and `systemd/botcalld.toml` is exactly
//! `botcalld sample-config`, and the daemon's system calls under a tracer
//! stay inside the unit's `SystemCallFilter=`. Needs `systemd-analyze`
//! (Debian's `systemd` package) and `strace`, both installed by tests/setup:
//! without them these tests fail, they do not skip.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_botcalld");
/// The highest exposure `systemd-analyze security` may report ("OK" ≤ 2.0).
const MAX_EXPOSURE: f64 = 2.0;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn unit_path() -> PathBuf {
    root().join("systemd/botcalld.service")
}

fn unit_text() -> String {
    std::fs::read_to_string(unit_path()).unwrap()
}

fn systemd_analyze(args: &[&str]) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .output()
        .unwrap_or_else(|e| {
            panic!("systemd-analyze not runnable ({e}): install Debian's `systemd` package (tests/setup does)")
        })
}

/// `[Service]` values for `key` in the unit, in order.
fn values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

fn value(unit: &str, key: &str) -> String {
    let v = values(unit, key);
    assert_eq!(v.len(), 1, "{key}= should appear once in the unit: {v:?}");
    v[0].clone()
}

/// A systemd time span in seconds (`30s`, `1min`, `90`).
fn seconds(v: &str) -> u64 {
    if let Some(m) = v.strip_suffix("min") {
        m.parse::<u64>().unwrap() * 60
    } else {
        v.trim_end_matches('s').parse().unwrap()
    }
}

/// The default of `option` from the committed sample config (`#name = value`).
fn sample_default(option: &str) -> u64 {
    let sample = std::fs::read_to_string(root().join("systemd/botcalld.toml")).unwrap();
    sample
        .lines()
        .find_map(|l| l.strip_prefix(&format!("#{option} = ")))
        .unwrap_or_else(|| panic!("{option} not in systemd/botcalld.toml"))
        .trim_matches('"')
        .parse()
        .unwrap()
}

#[test]
fn exposure_is_at_most_2_0() {
    let unit = unit_path();
    let out = systemd_analyze(&[
        "security",
        "--offline=yes",
        "--no-pager",
        unit.to_str().unwrap(),
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "systemd-analyze security failed:\n{text}"
    );
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level for botcalld.service:"))
        .unwrap_or_else(|| panic!("no overall exposure line:\n{text}"));
    let figure: f64 = line
        .split(':')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the exposure from {line:?}"));
    eprintln!("{}", line.trim());
    assert!(
        figure <= MAX_EXPOSURE,
        "exposure {figure} > {MAX_EXPOSURE}:\n{text}"
    );
    // Also as systemd itself enforces it (exit status), for CI logs.
    let threshold = systemd_analyze(&[
        "security",
        "--offline=yes",
        "--threshold=20",
        "--no-pager",
        unit.to_str().unwrap(),
    ]);
    assert!(threshold.status.success(), "--threshold=20 failed");
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    // verify insists that ExecStart= names an existing executable: check a
    // copy whose ExecStart= is the binary this test run built.
    let dir = std::env::temp_dir().join(format!("botcall-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = unit_text();
    let exec = value(&text, "ExecStart");
    let rest = exec
        .strip_prefix("/usr/bin/botcalld")
        .expect("ExecStart=/usr/bin/botcalld ...");
    let copy = text.replace(
        &format!("ExecStart={exec}"),
        &format!("ExecStart={BIN}{rest}"),
    );
    assert_ne!(copy, text);
    let path = dir.join("botcalld.service");
    std::fs::write(&path, copy).unwrap();
    let out = systemd_analyze(&["verify", "--man=no", path.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 even on unknown keys and unparsable values: any word about our unit is a failure.
    let complaints: Vec<&str> = stderr.lines().filter(|l| l.contains("botcalld")).collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify:\n{stderr}{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn unit_fits_the_daemon() {
    let u = unit_text();
    assert_eq!(value(&u, "Type"), "notify");
    assert_eq!(value(&u, "NotifyAccess"), "main");
    assert_eq!(
        value(&u, "ExecStart"),
        "/usr/bin/botcalld --config /etc/botcall/botcalld.toml"
    );
    assert_eq!(value(&u, "DynamicUser"), "yes");
    assert_eq!(value(&u, "StateDirectory"), "botcall");
    assert_eq!(value(&u, "ConfigurationDirectory"), "botcall");
    assert_eq!(value(&u, "KillSignal"), "SIGTERM");
    // The daemon handles SIGHUP (TLS reload; tests/ops.rs checks it survives one).
    assert_eq!(value(&u, "ExecReload"), "/bin/kill -HUP $MAINPID");
    assert_eq!(value(&u, "CapabilityBoundingSet"), "");
    // The daemon pings every second; several missed pings before a restart.
    let watchdog = seconds(&value(&u, "WatchdogSec"));
    assert!(watchdog >= 5, "WatchdogSec={watchdog}");
    // systemd must not SIGKILL a drain that is still inside shutdown_grace.
    let grace = sample_default("shutdown_grace");
    let stop = seconds(&value(&u, "TimeoutStopSec"));
    assert!(
        stop >= grace + 5,
        "TimeoutStopSec={stop} vs shutdown_grace {grace}"
    );
    // One descriptor per connection plus the daemon's own (it warns below +64).
    let conns = sample_default("max_connections");
    let nofile: u64 = value(&u, "LimitNOFILE").parse().unwrap();
    assert!(
        nofile >= conns + 64,
        "LimitNOFILE={nofile} vs max_connections {conns}"
    );
    // The listen ports need no privilege, so the unit grants none.
    for port in ["listen", "stun_listen"] {
        let sample = std::fs::read_to_string(root().join("systemd/botcalld.toml")).unwrap();
        let addr = sample
            .lines()
            .find_map(|l| l.strip_prefix(&format!("#{port} = ")))
            .unwrap()
            .trim_matches('"')
            .to_string();
        let p: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
        assert!(p >= 1024, "{port} {addr} would need CAP_NET_BIND_SERVICE");
    }
}

#[test]
fn sample_config_is_current() {
    let out = Command::new(BIN).arg("sample-config").output().unwrap();
    assert!(out.status.success());
    let committed = std::fs::read_to_string(root().join("systemd/botcalld.toml")).unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "systemd/botcalld.toml is stale: regenerate it with\n  cargo run -q -- sample-config > systemd/botcalld.toml"
    );
    // Every option is there, commented out: installing it changes nothing.
    assert!(
        committed
            .lines()
            .all(|l| l.is_empty() || l.starts_with('#')),
        "the sample config must leave every option commented out"
    );
}

// --- The sandbox, exercised: no systemd runs here, so trace the daemon. ---

/// The names a `SystemCallFilter=` item stands for (`@group`s expanded).
fn syscall_set(item: &str, cache: &mut HashMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    if !item.starts_with('@') {
        return BTreeSet::from([item.to_string()]);
    }
    if let Some(s) = cache.get(item) {
        return s.clone();
    }
    let out = systemd_analyze(&["syscall-filter", "--no-pager", item]);
    assert!(
        out.status.success(),
        "systemd-analyze syscall-filter {item}"
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut set = BTreeSet::new();
    for l in text.lines().skip(1).map(str::trim) {
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        set.extend(syscall_set(l, cache));
    }
    cache.insert(item.to_string(), set.clone());
    set
}

/// The system calls the unit's `SystemCallFilter=` lines allow.
fn allowed_syscalls(unit: &str) -> BTreeSet<String> {
    let mut cache = HashMap::new();
    let mut allowed: Option<BTreeSet<String>> = None;
    for v in values(unit, "SystemCallFilter") {
        if let Some(deny) = v.strip_prefix('~') {
            let a = allowed.get_or_insert_with(BTreeSet::new);
            for item in deny.split_whitespace() {
                for s in syscall_set(item, &mut cache) {
                    a.remove(&s);
                }
            }
        } else {
            let a = allowed.get_or_insert_with(BTreeSet::new);
            for item in v.split_whitespace() {
                a.extend(syscall_set(item, &mut cache));
            }
        }
    }
    allowed.expect("SystemCallFilter= allow list in the unit")
}

fn request(addr: &str, head: &str, body: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "{head}\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Runs botcalld under a system-call tracer through a short, realistic
/// session — start with `$STATE_DIRECTORY` and `$NOTIFY_SOCKET`, serve the
/// PWA and the API, register a bot, hold a WebSocket, answer STUN, tick the
/// watchdog, drain on SIGTERM — and checks that every system call it made is
/// one the unit's `SystemCallFilter=` allows, and every socket family one
/// `RestrictAddressFamilies=` allows. (A call outside the filter would fail
/// with EPERM under systemd, or kill the daemon without
/// `SystemCallErrorNumber=`.) Natively it uses strace; when this test itself
/// runs under qemu-user (cross/aarch64.sh), qemu's own `-d strace` reports
/// the guest's (aarch64) system calls.
#[test]
fn syscalls_stay_inside_the_units_filter() {
    let unit = unit_text();
    let allowed = allowed_syscalls(&unit);
    let families: Vec<String> = value(&unit, "RestrictAddressFamilies")
        .split_whitespace()
        .map(String::from)
        .collect();

    let dir = std::env::temp_dir().join(format!("botcall-sysc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let trace = dir.join("trace");
    let notify = dir.join("notify.sock");
    let notes = UnixDatagram::bind(&notify).unwrap();
    notes
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();

    // A bot key and a token for open registration, from the daemon's own tools.
    let keygen = Command::new(BIN)
        .args(["keygen", "--out"])
        .arg(dir.join("bot.jwk"))
        .output()
        .unwrap();
    let thumb = String::from_utf8_lossy(&keygen.stderr)
        .lines()
        .find_map(|l| l.split("open registration): ").nth(1).map(String::from))
        .expect("keygen prints the thumbprint");
    let token = Command::new(BIN)
        .args(["token", "--embed-jwk", "--sub", &thumb, "--key"])
        .arg(dir.join("bot.jwk"))
        .output()
        .unwrap();
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    assert!(!token.is_empty());

    let host_arch = Command::new("uname").arg("-m").output().unwrap();
    let emulated = String::from_utf8_lossy(&host_arch.stdout).trim() != std::env::consts::ARCH;
    let mut cmd = if emulated {
        let mut c = Command::new(format!("qemu-{}", std::env::consts::ARCH));
        c.args(["-L", "/", "-d", "strace", "-D"])
            .arg(&trace)
            .arg(BIN);
        c
    } else {
        let mut c = Command::new("strace");
        c.args(["-f", "-qq", "-o"]).arg(&trace).arg("--").arg(BIN);
        c
    };
    cmd.arg("--config")
        .arg(root().join("systemd/botcalld.toml"))
        .args(["--listen", "127.0.0.1:0", "--stun-listen", "127.0.0.1:0"])
        .args(["--open-registration", "--rate-ip", "0"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("STATE_DIRECTORY", dir.join("state"))
        .env("NOTIFY_SOCKET", &notify)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot run the tracer ({e}): install Debian's `strace` package (tests/setup does)")
    });
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let t0 = Instant::now();
    while !line.contains("listening on http://") {
        line.clear();
        if err.read_line(&mut line).unwrap() == 0 || t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("botcalld did not start under the tracer: {line}");
        }
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    let stun: SocketAddr = line
        .split("STUN udp ")
        .nth(1)
        .and_then(|r| r.split([';', ' ']).next())
        .and_then(|a| a.parse().ok())
        .unwrap();

    for path in [
        "/healthz",
        "/",
        "/.well-known/jwks.json",
        "/metrics",
        "/nope",
    ] {
        let r = request(&addr, &format!("GET {path} HTTP/1.1"), "");
        assert!(r.starts_with("HTTP/1.1 "), "{path}: {r}");
    }
    let body = format!(r#"{{"agent_id":"{thumb}","ttl":60,"listed":true}}"#);
    let r = request(
        &addr,
        &format!(
            "POST /v1/register HTTP/1.1\r\nauthorization: Bearer {token}\r\ncontent-type: application/json"
        ),
        &body,
    );
    assert!(r.starts_with("HTTP/1.1 200"), "register: {r}");
    let r = request(&addr, &format!("GET /v1/lookup/{thumb} HTTP/1.1"), "");
    assert!(r.starts_with("HTTP/1.1 200"), "lookup: {r}");

    let mut ws = TcpStream::connect(&addr).unwrap();
    ws.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        ws,
        "GET /v1/ws HTTP/1.1\r\nhost: t\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
    )
    .unwrap();
    let hello = br#"{"type":"hello","role":"caller","v":1}"#;
    let mut frame = vec![0x81, 0x80 | hello.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(hello);
    ws.write_all(&frame).unwrap();
    let mut buf = [0u8; 2048];
    let n = ws.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 101"));

    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = vec![0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    req.extend_from_slice(&[7u8; 12]);
    udp.send_to(&req, stun).unwrap();
    let (n, _) = udp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..2], &[1, 1], "STUN success response ({n} bytes)");

    // READY=1, then at least one WATCHDOG=1 from the tick.
    let mut seen = String::new();
    let t0 = Instant::now();
    while !seen.contains("WATCHDOG=1") && t0.elapsed() < Duration::from_secs(60) {
        if let Ok(n) = notes.recv(&mut buf) {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    assert!(
        seen.contains("READY=1") && seen.contains("WATCHDOG=1"),
        "{seen:?}"
    );

    // SIGTERM to the daemon: under strace it is the tracer's child; under
    // qemu-user the qemu process is the daemon.
    let pid = if emulated {
        child.id()
    } else {
        let kids = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id()))
            .unwrap_or_default();
        kids.split_whitespace().next().unwrap().parse().unwrap()
    };
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let st = child.wait().unwrap();
    assert!(st.success(), "exit after SIGTERM: {st:?}");
    drop(ws);

    let text = std::fs::read_to_string(&trace).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut used = BTreeSet::new();
    let mut bad_families = BTreeSet::new();
    for l in text.lines() {
        // "<pid> name(args) = ret"; qemu leaves a few unnamed.
        let rest = l.split_once(' ').map_or(l, |(_, r)| r).trim_start();
        let name = if let Some(n) = rest.strip_prefix("Unknown syscall ") {
            match (std::env::consts::ARCH, n.trim()) {
                ("aarch64", "293") => "rseq".to_string(),
                (arch, n) => panic!("unnamed system call {n} on {arch} in the trace"),
            }
        } else {
            match rest.split_once('(') {
                Some((n, _))
                    if n.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                        && !n.is_empty() =>
                {
                    n.to_string()
                }
                _ => continue,
            }
        };
        if name == "socket" {
            let fam = rest["socket(".len()..]
                .split([',', ' '])
                .next()
                .unwrap_or("")
                .replace("PF_", "AF_");
            if !families.contains(&fam) {
                bad_families.insert(fam);
            }
        }
        used.insert(name);
    }
    // execve is the tracer starting the daemon (and allowed anyway).
    assert!(used.len() > 20, "implausibly short trace:\n{text}");
    let denied: Vec<&String> = used.difference(&allowed).collect();
    assert!(
        denied.is_empty(),
        "system calls outside SystemCallFilter=: {denied:?}\n(used: {used:?})"
    );
    assert!(
        bad_families.is_empty(),
        "socket families outside RestrictAddressFamilies=: {bad_families:?}"
    );
    eprintln!(
        "{} distinct system calls, all allowed by the unit ({}emulated)",
        used.len(),
        if emulated { "" } else { "not " }
    );
}
