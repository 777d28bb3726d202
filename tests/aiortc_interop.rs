//! Interop with a WebRTC stack nobody on the project wrote: Python's aiortc
//! (PyPI 1.16.0, installed by `tests/setup` into the test venv) calls the
//! real `echo_bot` through a real daemon with its own, unmodified offer —
//! three `a=fingerprint` lines (sha-256, sha-384, sha-512). The echo of
//! spoken audio (espeak-ng) must follow what aiortc sent, and the
//! attestation the bot verified must name the offer's sha-256 line. A
//! caller that only closes its peer connection (no `hangup`) frees the bot.
//! (aiortc as a bot answering the PWA in Chromium: `tests/pwa_e2e.rs`.)
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/aiortc_peer.py");

/// Runs `aiortc_peer.py` with the test venv's Python; its `RESULT` JSON.
fn aiortc(args: &[&str]) -> serde_json::Value {
    let py = python();
    let out = Command::new(&py)
        .arg(SCRIPT)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {py} (tests/setup makes the venv): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "aiortc_peer {args:?} failed:\n{stdout}\n{stderr}"
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT:\n{stdout}\n{stderr}"));
    serde_json::from_str(line).unwrap()
}

/// aiortc calls `ec-bot` on `d`, sending `wav`.
fn aiortc_call(d: &Daemon, wav: &Path, extra: &[&str]) -> serde_json::Value {
    let ws = d.ws_url();
    let mut args = vec!["caller", "--ws", &ws, "--to", "ec-bot", "--wav"];
    args.push(wav.to_str().unwrap());
    args.extend_from_slice(extra);
    aiortc(&args)
}

/// Speech from espeak-ng (Debian), 16-bit mono WAV.
fn speech(path: &Path) {
    let st = Command::new("espeak-ng")
        .arg("-w")
        .arg(path)
        .arg("BotCall talks to anyone who speaks WebRTC. One, two, three, four, five.")
        .status()
        .expect("espeak-ng (tests/setup installs it)");
    assert!(st.success());
}

/// The `call … from …` line `echo_bot` printed for `call_id`.
fn call_line(bot: &EchoBot, call_id: &str) -> String {
    bot.lines()
        .into_iter()
        .find(|l| l.starts_with(&format!("call {call_id} from ")))
        .unwrap_or_else(|| panic!("no call line for {call_id}: {:?}", bot.lines()))
}

#[test]
fn aiortc_calls_the_echo_bot_with_its_three_fingerprint_offer() {
    let d = Daemon::start(&[]);
    let bot = EchoBot::start(&d);
    let dir = TempDir::new("aiortc");
    let wav = dir.path().join("speech.wav");
    speech(&wav);
    // aiortc's side checks echo_bot's answer signature with PyJWT: a third
    // verifier, written independently of botcall-core's and the PWA's.
    let jwk = Keys::public_jwk(&Keys::new().ec);
    let r = aiortc_call(&d, &wav, &["--bot-jwk", &jwk]);
    println!("aiortc caller: {r}");
    assert_eq!(r["answer_sig"], "verified", "{r}");

    // aiortc's own offer, as sent: one certificate, three hash functions.
    let fps: Vec<&str> = r["offer_fingerprints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let hashes: Vec<&str> = fps.iter().map(|f| f.split(' ').next().unwrap()).collect();
    assert_eq!(hashes, ["sha-256", "sha-384", "sha-512"], "{r}");
    assert_eq!(r["offer_fingerprint_lines"], 3, "{r}");
    // The bot verified an attestation whose fp is the offer's sha-256 line
    // and whose fps are all three.
    let call_id = r["call_id"].as_str().unwrap();
    let line = call_line(&bot, call_id);
    assert!(
        line.contains(&format!("fp={}", fps[0])),
        "{line}\noffer: {fps:?}"
    );
    assert!(line.ends_with("fps=3)"), "{line}");

    // The echo follows the speech: the 20 ms loudness envelopes of what
    // aiortc sent and what came back correlate at the best lag (0.97 here),
    // at the level it was sent less 3 dB: aiortc upmixes its mono source to
    // stereo (x 0.707 per channel) and one channel of the echo is measured
    // (0.70-0.71 measured, for speech and for a tone).
    let corr = r["correlation"].as_f64().unwrap();
    assert!(corr > 0.8, "echo does not follow the speech: {r}");
    let (sent, echo) = (
        r["sent_rms"].as_f64().unwrap(),
        r["echo_rms"].as_f64().unwrap(),
    );
    assert!(sent > 0.01, "{r}");
    assert!(
        (0.55..0.9).contains(&(echo / sent)),
        "echo level {echo} vs sent {sent}: {r}"
    );

    // The caller's `hangup` ended it for the bot.
    let ended = bot.ended(&d, call_id);
    assert!(ended.contains("ended: remote_hangup ("), "{ended}");
    d.eventually(
        "the call to end at the daemon",
        Duration::from_secs(30),
        || {
            d.metric("botcall_calls_active") == 0.0
                && d.metric("botcall_calls_ended_total{reason=\"caller_hangup\"}") == 1.0
        },
    );
}

/// aiortc closes its peer connection and never sends `hangup`: the bot sees
/// the DTLS close (or the silence after it), ends the call and frees it at
/// the daemon, which tells the caller; the next call is not `busy`.
#[test]
fn an_aiortc_caller_that_only_closes_its_peer_connection_frees_the_bot() {
    let d = Daemon::start(&[]);
    let bot = EchoBot::start(&d);
    let dir = TempDir::new("aiortc");
    let wav = dir.path().join("tone.wav");
    write_tone_wav(&wav, 2);
    let r = aiortc_call(&d, &wav, &["--no-hangup"]);
    println!("aiortc caller: {r}");
    // aiortc sends a DTLS close_notify: the bot ends at once with
    // `media_closed` (a stack that did not would end after the silence).
    assert_eq!(r["daemon_hangup"], "media_closed", "{r}\n{:?}", bot.lines());
    let call_id = r["call_id"].as_str().unwrap();
    let ended = bot.ended(&d, call_id);
    assert!(
        ended.contains("ended: remote_hangup (") && ended.contains("dtls_close"),
        "{ended}"
    );
    assert_eq!(d.metric("botcall_calls_active"), 0.0);
    assert_eq!(
        d.metric("botcall_calls_ended_total{reason=\"caller_hangup\"}"),
        1.0
    );
    // The bot is free for the next caller.
    let (mut c, _) = caller(&d);
    let m = place_call(&mut c, "ec-bot");
    assert_eq!(m["type"], "ringing", "{m}");
}
