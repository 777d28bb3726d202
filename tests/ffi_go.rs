//! The Go bindings (go/botcall over the C ABI) with Debian's Go: runs
//! `go test` on go/botcall and examples/go/echo_bot against a real botcalld
//! on loopback. The Go echo bot registers as `ec-bot` and answers two calls
//! from the Rust test caller (tests/sdk_caller), which hears its own tone
//! back (PCM16 at 16 kHz through io.Copy in Go, then Opus packets through
//! ReadPacket/WritePacket) and hangs up; a malformed
//! and a refused key are wrapped errors (ErrKey, ErrAuth); a cancelled
//! context, a deadline and Close end a blocking NextCall; under the race
//! detector. Every Go test must pass — none may skip.
mod common;
mod sdk_caller;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use botcall_sdk::codec::rms;
use common::*;
use sdk_caller::{Caller, MEDIA_LIMIT};

const GO_TESTS: &[&str] = &[
    "TestABIVersionMatches",
    "TestMalformedKeyIsAWrappedError",
    "TestRefusedKeyIsAWrappedError",
    "TestCancelledContextEndsABlockingWait",
    "TestCloseWakesABlockedNextCall",
    "TestEchoBotAnswersACall",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn write_jwk(path: &Path, k: &botcall_core::jwt::SigningKey) {
    let mut jwk = Vec::new();
    k.write_jwk(&mut botcall_core::json::Writer::new(&mut jwk), None)
        .unwrap();
    std::fs::write(path, jwk).unwrap();
}

#[test]
fn go_bot_answers_the_rust_caller_and_go_errors_wrap_abi_codes() {
    let st = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "botcall-ffi"])
        .current_dir(root())
        .status()
        .expect("cargo build -p botcall-ffi");
    assert!(st.success());
    let dir = TempDir::new("ffi-go");
    let (key, other) = (dir.path().join("bot.jwk"), dir.path().join("other.jwk"));
    let keys = Keys::new();
    write_jwk(&key, &keys.ec);
    write_jwk(&other, &keys.other_ec);
    let d = Daemon::start(&[]);

    let mut go = Command::new("go")
        .args([
            "test",
            "-race",
            "-count=1",
            "-v",
            "./go/...",
            "./examples/go/...",
        ])
        .current_dir(root())
        .env("BOTCALL_TEST_DAEMON", d.url(""))
        .env("BOTCALL_TEST_KEY", &key)
        .env("BOTCALL_TEST_OTHER_KEY", &other)
        // Standard library and cgo only: nothing may be downloaded.
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=readonly")
        .env("CGO_ENABLED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("go test (apt-get install golang-go)");
    let out = Arc::new(Mutex::new(String::new()));
    for pipe in [
        Box::new(go.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(go.stderr.take().unwrap()),
    ] {
        let out = out.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut o = out.lock().unwrap();
                o.push_str(&l);
                o.push('\n');
            }
        });
    }
    let mut go = KillOnDrop(go);

    // The Go echo bot comes online once `go test` has compiled it.
    d.eventually("the Go echo bot online", Duration::from_secs(300), || {
        let r = d.get("/lookup/ec-bot");
        r.status == 200 && r.json()["online"] == true
    });
    // Two calls: PCM16 through io.Copy, then Opus packets (ReadPacket/WritePacket).
    for _ in 0..2 {
        let mut c = Caller::new(&d);
        c.call("ec-bot");
        c.run(MEDIA_LIMIT, |c| c.rx_frames >= 120);
        assert!(
            c.rx_frames >= 120,
            "the caller heard {} frames\n{}",
            c.rx_frames,
            out.lock().unwrap()
        );
        c.hang_up("bye");
        let heard = rms(c.pcm.get(9600..).unwrap_or(&[]));
        assert!((heard - 0.354).abs() < 0.06, "echoed RMS {heard}");
        // The next call once the daemon has ended this one (max_calls 1).
        d.eventually("the call to end", Duration::from_secs(30), || {
            d.metric("botcall_calls_active") == 0.0
        });
    }

    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = go.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "go test did not finish\n{}",
            out.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Let the pipe readers drain.
    std::thread::sleep(Duration::from_millis(200));
    let out = out.lock().unwrap().clone();
    eprintln!("{out}");
    assert!(status.success(), "go test failed:\n{out}");
    for t in GO_TESTS {
        assert!(
            out.contains(&format!("--- PASS: {t} ")),
            "{t} did not pass:\n{out}"
        );
    }
    assert!(
        !out.contains("--- SKIP") && !out.contains("--- FAIL"),
        "{out}"
    );
}
