//! Footprint benchmark (not a timed test; `#[ignore]`d): the `echo_bot`
//! example as its own process, connected to a daemon — RSS and CPU while
//! idle, then during one call with a Rust caller sending Opus both ways.
//!
//! ```sh
//! cargo build --release --example echo_bot
//! cp target/release/examples/echo_bot /tmp/echo_bot && strip /tmp/echo_bot
//! ECHO_BOT=/tmp/echo_bot FOOTPRINT_SECS=20 cargo test --test sdk_footprint -- --ignored --nocapture
//! ```
mod common;
mod sdk_caller;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use botcall_core::json::Writer;
use botcall_sdk::codec::rms;
use common::*;
use sdk_caller::Caller;

/// (RSS kB, peak RSS kB, CPU seconds) of a process.
fn sample(pid: u32) -> (u64, u64, f64) {
    (
        status_kb(pid, "VmRSS:"),
        status_kb(pid, "VmHWM:"),
        cpu_seconds(pid),
    )
}

/// (anonymous, file-backed) resident kB: file pages are the binary's own code
/// and data, shared and reclaimable; anonymous pages are the bot's heap and stacks.
fn rss_split(pid: u32) -> (u64, u64) {
    (status_kb(pid, "RssAnon:"), status_kb(pid, "RssFile:"))
}

#[test]
#[ignore = "benchmark: run by hand, see the file's docs"]
fn echo_bot_footprint() {
    let secs: u64 = std::env::var("FOOTPRINT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let bin =
        std::env::var("ECHO_BOT").unwrap_or_else(|_| "target/release/examples/echo_bot".into());
    let d = Daemon::start(&[]);
    let key_path = d.dir.path().join("ec-bot.jwk");
    let mut v = Vec::new();
    Keys::new()
        .ec
        .write_jwk(&mut Writer::new(&mut v), None)
        .unwrap();
    std::fs::write(&key_path, v).unwrap();
    let mut child = Command::new(&bin)
        .args(["--daemon", &d.url(""), "--id", "ec-bot", "--key"])
        .arg(&key_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    let pid = child.id();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let out = child.stdout.take().unwrap();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });
    d.eventually("echo_bot online", Duration::from_secs(10), || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("online as"))
    });
    std::thread::sleep(Duration::from_secs(2));

    let (_, _, cpu0) = sample(pid);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let (rss, hwm, cpu1) = sample(pid);
    let idle_cpu = 100.0 * (cpu1 - cpu0) / t0.elapsed().as_secs_f64();
    let (anon, file) = rss_split(pid);
    eprintln!(
        "idle {secs} s: RSS {rss} kB (anon {anon}, file {file}; peak {hwm} kB), CPU {idle_cpu:.2}%"
    );

    let mut c = Caller::new(&d);
    c.call("ec-bot");
    c.run(Duration::from_secs(15), |c| c.connected_at.is_some());
    assert!(c.connected_at.is_some(), "media did not connect");
    let (_, _, cpu2) = sample(pid);
    let t1 = Instant::now();
    let mut peak = 0;
    let end = Duration::from_secs(secs);
    while t1.elapsed() < end {
        c.run(Duration::from_secs(1), |_| false);
        peak = peak.max(sample(pid).0);
    }
    let (rss2, hwm2, cpu3) = sample(pid);
    let (anon2, file2) = rss_split(pid);
    let call_cpu = 100.0 * (cpu3 - cpu2) / t1.elapsed().as_secs_f64();
    let echoed = rms(c.pcm.get(48_000..).unwrap_or(&[]));
    eprintln!(
        "in a call {secs} s: RSS {rss2} kB (anon {anon2}, file {file2}; max sampled {peak} kB, peak {hwm2} kB), CPU {call_cpu:.2}%; caller got {} frames back, RMS {echoed:.3}",
        c.rx_frames
    );
    c.hang_up("bye");
    std::thread::sleep(Duration::from_millis(300));
    let stats: Vec<String> = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("rx_frames="))
        .cloned()
        .collect();
    eprintln!(
        "echo_bot stats lines: {} (last: {:?})",
        stats.len(),
        stats.last()
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!((echoed - 0.354).abs() < 0.05, "echoed RMS {echoed}");
    assert!(stats.len() as u64 >= secs - 2);
}
