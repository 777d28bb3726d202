//! The C ABI from C: `examples/c/echo_bot.c`, built with gcc against
//! libbotcall.so (botcall-ffi), registers with a real botcalld on loopback
//! and is called by the Rust test caller (tests/sdk_caller: str0m). Audio
//! flows both ways (the caller hears its own tone echoed back through the C
//! bot; the bot counts what it received), a rejected call reaches the
//! caller as `reject`, and 100 short calls under AddressSanitizer + UBSan
//! (the leak checker included), and 10 under valgrind, report nothing.
mod common;
mod sdk_caller;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use botcall_sdk::codec::rms;
use common::*;
use sdk_caller::{Caller, MEDIA_LIMIT};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo build -p botcall-ffi` (the cdylib), then gcc on the example.
/// `sanitize`: -fsanitize=address,undefined.
fn build_c_bot(sanitize: bool) -> (TempDir, PathBuf) {
    let target = root().join("target").join("debug");
    let st = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", "botcall-ffi"])
        .current_dir(root())
        .status()
        .expect("cargo build -p botcall-ffi");
    assert!(st.success(), "cargo build -p botcall-ffi");
    assert!(target.join("libbotcall.so").exists());
    let dir = TempDir::new("ffi-c");
    let exe = dir.path().join("echo_bot");
    let mut cc = Command::new("gcc");
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g"]);
    if sanitize {
        cc.args(["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]);
    }
    let out = cc
        .arg("-I")
        .arg(root().join("botcall-ffi/include"))
        .arg(root().join("examples/c/echo_bot.c"))
        .arg("-L")
        .arg(&target)
        .arg("-lbotcall")
        .arg(format!("-Wl,-rpath,{}", target.display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("gcc");
    assert!(
        out.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, exe)
}

fn write_key(dir: &Path) -> PathBuf {
    let key = dir.join("bot.jwk");
    let mut jwk = Vec::new();
    Keys::new()
        .ec
        .write_jwk(&mut botcall_core::json::Writer::new(&mut jwk), None)
        .unwrap();
    std::fs::write(&key, jwk).unwrap();
    key
}

/// The C bot as a child process with its stdout lines collected.
struct CBot {
    child: KillOnDrop,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<String>>,
}

impl CBot {
    fn start(d: &Daemon, exe: &Path, key: &Path, extra: &[&str], env: &[(&str, &str)]) -> CBot {
        let mut child = Command::new(exe)
            .args(["--daemon", &d.url(""), "--id", "ec-bot", "--key"])
            .arg(key)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start echo_bot");
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let (o, e) = (out.clone(), err.clone());
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                o.lock().unwrap().push(l);
            }
        });
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut e = e.lock().unwrap();
                e.push_str(&l);
                e.push('\n');
            }
        });
        let bot = CBot {
            child: KillOnDrop(child),
            out,
            err,
        };
        d.eventually("the C echo_bot online", Duration::from_secs(60), || {
            bot.line("online ").is_some()
        });
        bot
    }

    fn line(&self, prefix: &str) -> Option<String> {
        self.out
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.starts_with(prefix))
            .cloned()
    }

    fn ended(&self, d: &Daemon, call_id: &str) -> String {
        let prefix = format!("call {call_id} ended: ");
        d.eventually(
            "the C bot to report the end",
            Duration::from_secs(60),
            || self.line(&prefix).is_some(),
        );
        self.line(&prefix).unwrap()
    }

    fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }
}

/// `rx=N` and `tx=N` of an `ended` line.
fn counts(line: &str) -> (u64, u64) {
    let num = |k: &str| {
        line.split(k)
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {line:?}"))
    };
    (num("rx="), num("tx="))
}

/// One call: media until the caller heard `frames` echoed frames, then the
/// caller hangs up with `bye`. Returns the caller and the call id.
fn echo_call(d: &Daemon, frames: usize) -> (Caller, String) {
    let mut c = Caller::new(d);
    let id = c.call("ec-bot");
    c.run(MEDIA_LIMIT, |c| c.rx_frames >= frames);
    assert!(
        c.rx_frames >= frames,
        "the caller heard {} of {frames} frames in {MEDIA_LIMIT:?} (sent {}, connected {})",
        c.rx_frames,
        c.sent,
        c.connected_at.is_some()
    );
    c.hang_up("bye");
    (c, id)
}

fn assert_echo(c: &Caller, line: &str, frames: u64) {
    // The caller's 440 Hz at 0.5 (RMS 0.354) came back through the bot:
    // Opus twice, so a little lower.
    let heard = rms(c.pcm.get(9600..).unwrap_or(&[]));
    assert!((heard - 0.354).abs() < 0.06, "echoed RMS {heard}");
    let (rx, tx) = counts(line);
    assert!(rx >= frames && tx >= frames, "{line}");
    assert!(line.contains(": remote_hangup (bye)"), "{line}");
}

#[test]
fn c_echo_bot_rejects_then_echoes_opus_and_pcm() {
    let (dir, exe) = build_c_bot(false);
    let key = write_key(dir.path());
    let d = Daemon::start(&[]);

    // Opus: the first call is rejected, the second echoed.
    let bot = CBot::start(&d, &exe, &key, &["--calls", "2", "--reject", "1"], &[]);
    let mut c = Caller::new(&d);
    let id = c.call("ec-bot");
    let m = c.wait_for("reject", Duration::from_secs(60));
    assert_eq!(m["reason"], "declined", "{m}");
    assert_eq!(m["call_id"], id.as_str(), "{m}");
    assert!(bot.ended(&d, &id).contains(": rejected"));
    let (c, id) = echo_call(&d, 100);
    let line = bot.ended(&d, &id);
    assert_echo(&c, &line, 100);
    // The attestation reached C: the caller's session id and `hv`.
    let from = bot.line(&format!("call {id} from ")).unwrap();
    assert!(from.ends_with(" hv=none"), "{from}");
    d.eventually(
        "the C bot exits after 2 calls",
        Duration::from_secs(30),
        || bot.line("done").is_some(),
    );
    drop(bot);

    // PCM16 at 16 kHz: resampled both ways by the SDK, echoed by C.
    let bot = CBot::start(&d, &exe, &key, &["--calls", "1", "--pcm", "16000"], &[]);
    let (c, id) = echo_call(&d, 100);
    let line = bot.ended(&d, &id);
    eprintln!("pcm: {line}");
    assert_echo(&c, &line, 90);
    assert!(bot.stderr().is_empty(), "{}", bot.stderr());
}

/// 100 short calls (each until the caller heard 10 echoed frames) through
/// the C bot built with -fsanitize=address,undefined; the bot then frees
/// everything and exits, and LeakSanitizer checks the whole process (the
/// Rust library's allocations too).
#[test]
fn c_echo_bot_100_calls_clean_under_asan_ubsan() {
    let (dir, exe) = build_c_bot(true);
    let key = write_key(dir.path());
    // Without the per-IP and per-bot call rate limits: 100 calls from one address.
    let d = Daemon::start(&[
        "--rate-calls-ip",
        "0",
        "--rate-calls-bot",
        "0",
        "--rate-ip",
        "0",
    ]);
    let mut bot = CBot::start(
        &d,
        &exe,
        &key,
        &["--calls", "100"],
        &[
            (
                "ASAN_OPTIONS",
                "detect_leaks=1:exitcode=23:abort_on_error=0",
            ),
            (
                "UBSAN_OPTIONS",
                "halt_on_error=1:print_stacktrace=1:exitcode=24",
            ),
        ],
    );
    let t0 = std::time::Instant::now();
    for i in 0..100 {
        let (c, id) = echo_call(&d, 10);
        let line = bot.ended(&d, &id);
        let (rx, _) = counts(&line);
        assert!(rx >= 10 && c.rx_frames >= 10, "call {i}: {line}");
    }
    let status = bot.child.0.wait().expect("wait for the C bot");
    eprintln!("100 calls in {:.1} s", t0.elapsed().as_secs_f64());
    let err = bot.stderr();
    assert!(status.success(), "echo_bot exited {status}:\n{err}");
    assert!(
        !err.contains("Sanitizer") && !err.contains("runtime error"),
        "{err}"
    );
    assert!(bot.line("done").is_some());
}

/// 10 short calls through the plain C bot (no sanitizer) under valgrind's
/// memcheck: no memory error, nothing definitely or indirectly lost.
#[test]
fn c_echo_bot_10_calls_clean_under_valgrind() {
    let v = Command::new("valgrind").arg("--version").output();
    assert!(
        v.is_ok_and(|o| o.status.success()),
        "valgrind is missing (tests/setup installs it)"
    );
    let (dir, exe) = build_c_bot(false);
    let key = write_key(dir.path());
    let d = Daemon::start(&[
        "--rate-calls-ip",
        "0",
        "--rate-calls-bot",
        "0",
        "--rate-ip",
        "0",
    ]);
    let log = dir.path().join("valgrind.log");
    let wrapper = dir.path().join("valgrind-echo-bot");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec valgrind --error-exitcode=33 --leak-check=full \\\n  \
             --errors-for-leak-kinds=definite,indirect --log-file={} {} \"$@\"\n",
            log.display(),
            exe.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut bot = CBot::start(&d, &wrapper, &key, &["--calls", "10"], &[]);
    for i in 0..10 {
        let (c, id) = echo_call(&d, 10);
        let line = bot.ended(&d, &id);
        let (rx, _) = counts(&line);
        assert!(rx >= 10 && c.rx_frames >= 10, "call {i}: {line}");
    }
    let status = bot.child.0.wait().expect("wait for valgrind");
    let report = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "valgrind exited {status}:\n{report}");
    assert!(report.contains("ERROR SUMMARY: 0 errors"), "{report}");
    assert!(report.contains("definitely lost: 0 bytes"), "{report}");
    assert!(report.contains("indirectly lost: 0 bytes"), "{report}");
    assert!(bot.line("done").is_some());
}
