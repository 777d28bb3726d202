//! The container image, run as an engine would run it (`tests/oci-run`: the
//! layer unpacked as /, the config's entrypoint, user, env and working
//! directory, in new mount and PID namespaces): it answers `/healthz`, its
//! own `HEALTHCHECK` passes, the real `echo_bot` registers with it and a
//! str0m caller's call through it carries audio both ways.
//!
//! Ignored by `cargo test`: it needs root and the images that
//! `container/build-image` writes. `tests/container` builds them and runs
//! this with `BOTCALL_IMAGES` (archives, space-separated; an arm64 one runs
//! under qemu through binfmt_misc).
mod common;
mod sdk_caller;

use std::net::TcpListener;
use std::process::{Command, Stdio};

use botcall_sdk::codec::rms;

use common::*;
use sdk_caller::Caller;

const OCI_RUN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oci-run");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `tests/oci-run` with the environment a deployment would give the image:
/// the listen addresses and a keys file mounted read-only.
fn oci_run(archive: &str, keys: &std::path::Path, port: u16, healthcheck: bool) -> Command {
    let mut cmd = Command::new(OCI_RUN);
    if healthcheck {
        cmd.arg("--healthcheck");
    }
    cmd.arg("-v")
        .arg(format!("{}:/etc/botcall/keys.json:ro", keys.display()))
        .args(["-e", "BOTCALL_KEYS=/etc/botcall/keys.json"])
        .args(["-e", &format!("BOTCALL_LISTEN=127.0.0.1:{port}")])
        .args(["-e", "BOTCALL_STUN_LISTEN=127.0.0.1:0"])
        .args(["-e", "BOTCALL_LOG_LEVEL=debug"])
        .arg(archive);
    cmd
}

fn healthcheck(archive: &str, keys: &std::path::Path, port: u16) -> (i32, String) {
    let o = oci_run(archive, keys, port, true)
        .stdin(Stdio::null())
        .output()
        .expect("run tests/oci-run --healthcheck");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    )
}

fn run_image(archive: &str) {
    let dir = TempDir::new("container");
    let keys = dir.path().join("keys.json");
    std::fs::write(&keys, Keys::new().file()).unwrap();
    let port = free_port();
    let d = Daemon::spawn(oci_run(archive, &keys, port, false), dir);
    assert_eq!(d.addr.port(), port);
    let log = d.log();
    assert!(
        log.contains("attestation key /var/lib/botcall/attestation.jwk"),
        "the state is in the image's volume: {log}"
    );

    let h = d.get("/healthz");
    assert_eq!(h.status, 200, "{}", h.text());
    assert_eq!(h.json()["status"], "ok");
    let (code, out) = healthcheck(archive, &keys, port);
    assert_eq!(code, 0, "HEALTHCHECK: {out}");
    assert!(out.contains("\"status\":\"ok\""), "{out}");

    // A bot registers and a call is relayed: the caller's 440 Hz tone comes
    // back from the echo bot.
    let bot = EchoBot::start(&d);
    let mut c = Caller::new(&d);
    let call_id = c.call("ec-bot");
    c.run(sdk_caller::MEDIA_LIMIT, |c| c.rx_frames >= 150);
    assert!(
        c.rx_frames >= 150,
        "caller received {} frames (sent {}, connected: {})\n{}",
        c.rx_frames,
        c.sent,
        c.connected_at.is_some(),
        d.log()
    );
    let echo = rms(&c.pcm[c.pcm.len() / 2..]);
    assert!(echo > 0.1, "echo RMS {echo}");
    c.hang_up("bye");
    let ended = bot.ended(&d, &call_id);
    assert!(ended.contains("remote_hangup"), "{ended}");
    println!("{archive}: healthz ok, HEALTHCHECK ok, call {call_id} echoed at RMS {echo:.3}");

    // Stopped, the HEALTHCHECK fails.
    let dir = d.stop();
    let (code, _) = healthcheck(archive, &dir.path().join("keys.json"), port);
    assert_eq!(code, 1, "HEALTHCHECK with no daemon");
}

#[test]
#[ignore = "needs root and the images: run tests/container"]
fn the_image_runs_as_its_config_says_and_relays_a_call() {
    let images = std::env::var("BOTCALL_IMAGES").expect("BOTCALL_IMAGES: OCI archives");
    assert!(
        images.split_whitespace().next().is_some(),
        "BOTCALL_IMAGES names no archive: nothing would be checked"
    );
    for archive in images.split_whitespace() {
        run_image(archive);
    }
}
