//! The PWA in real headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from `tests/e2e/`), served by a real daemon.
//! `tests/setup` installs chromium and playwright-core; without them these
//! tests fail (they never skip).
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use botcall_core::jwt::SigningKey;
use common::*;

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

/// Runs a node script from tests/e2e and returns its `RESULT` JSON.
fn node(script: &str, args: &[&str]) -> serde_json::Value {
    let dir = e2e_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core missing: run tests/setup (npm ci in tests/e2e)"
    );
    let out = Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("node (tests/setup installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "{script} printed no result:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {v:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

/// Where screenshots go: `target/e2e-screenshots`, or `docs/screenshots`
/// with `BOTCALL_SCREENSHOTS=docs` (how the committed ones were made).
fn shots_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = match std::env::var("BOTCALL_SCREENSHOTS").as_deref() {
        Ok("docs") => root.join("docs/screenshots"),
        _ => root.join("target/e2e-screenshots"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn screenshot(name: &str) -> String {
    shots_dir().join(name).display().to_string()
}

#[test]
fn the_pwa_is_installable_and_loads_offline() {
    let d = Daemon::start(&[]);
    let url = format!("http://{}", d.addr);
    let pid = d.pid().to_string();
    let shot = screenshot("home.png");
    let r = node(
        "installable.mjs",
        &["--url", &url, "--pid", &pid, "--shot", &shot],
    );
    // Chromium accepts gzip: the shell's text came compressed (and decoded
    // to a working page, which the rest of this test and the call tests use).
    let got = r["encodings"].as_array().unwrap();
    let text: Vec<_> = got
        .iter()
        .filter(|e| {
            // Shell files (the API's JSON, e.g. /agents, is not embedded).
            let path = e["path"].as_str().unwrap();
            (path == "/" || path.contains('.')) && !path.ends_with(".png")
        })
        .collect();
    for path in ["/", "/app/main.js", "/app.css"] {
        assert!(
            text.iter().any(|e| e["path"] == path),
            "{path} not fetched: {got:?}"
        );
    }
    assert!(
        text.iter().all(|e| e["encoding"] == "gzip"),
        "text not gzipped: {got:?}"
    );
    let m = &r["manifest"];
    assert_eq!(m["name"], "BotCall");
    assert_eq!(m["display"], "standalone");
    assert_eq!(m["start_url"], "/");
    assert!(m["theme_color"].as_str().unwrap().starts_with('#'));
    assert_eq!(r["themeMeta"], m["theme_color"]);
    let icons = r["icons"].as_array().unwrap();
    let has = |size: u64, purpose: &str| {
        icons.iter().any(|i| {
            i["status"] == 200
                && i["type"] == "image/png"
                && i["width"] == size
                && i["height"] == size
                && i["purpose"]
                    .as_str()
                    .unwrap()
                    .split(' ')
                    .any(|p| p == purpose)
        })
    };
    assert!(
        has(192, "any") && has(512, "any") && has(512, "maskable"),
        "icons: {icons:#?}"
    );
    assert_eq!(r["controlled"], true, "service worker controls the page");
    assert!(
        r["cacheNames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().starts_with("botcall-"))
    );
    // After the daemon was killed:
    assert_eq!(r["offlineTitle"], r["title"]);
    assert_eq!(r["offlineInput"], true, "the shell loads offline");
    assert_eq!(r["offlineDeepLink"], "some-bot", "deep links load offline");
}

/// `call.mjs`: the PWA calls `bot` on `d` with `wav` as the microphone,
/// listens, mutes, hangs up; screenshots go to `shots`.
fn call_page(d: &Daemon, bot: &str, wav: &Path, shots: &Path) -> serde_json::Value {
    let url = format!("http://{}", d.addr);
    node(
        "call.mjs",
        &[
            "--url",
            &url,
            "--bot",
            bot,
            "--wav",
            wav.to_str().unwrap(),
            "--shots",
            shots.to_str().unwrap(),
        ],
    )
}

#[test]
fn a_person_calls_the_echo_bot_from_the_pwa() {
    let d = Daemon::start(&[]);
    let bot = EchoBot::start(&d);
    let wav = bot.wav.clone();

    let r = call_page(&d, "ec-bot", &wav, &shots_dir());
    // echo_bot has an ES256 key: its signed answer was checked before use.
    assert_eq!(r["verified"], "key", "{r:#}");
    assert_eq!(r["badge"], "Verified bot", "{r:#}");
    assert!(r["trustNote"].is_null(), "{r:#}");

    // The page heard the bot: RTP packets and a non-silent level on the remote stream.
    let inbound = &r["stats"]["inbound"];
    assert!(inbound["packetsReceived"].as_u64().unwrap() > 50, "{r:#}");
    assert!(
        r["maxRemoteLevel"].as_f64().unwrap() > 0.05,
        "remote audio is silent: {r:#}"
    );
    assert!(r["stats"]["outbound"]["packetsSent"].as_u64().unwrap() > 50);
    assert_eq!(r["mutedPressed"], "true");
    assert_eq!(r["finalState"], "ended");
    let call_to_audio = r["callToAudioMs"].as_f64().unwrap();
    println!(
        "call pressed -> audio flowing: {call_to_audio} ms (connected after {} ms)",
        r["callToConnectedMs"]
    );
    // (A latency goal, not a pass condition: `benches/` tracks it.)

    // The bot heard the person: decoded Opus with the tone's energy (RMS 0.354).
    let lines = bot.lines();
    let best = bot.best_rms();
    assert!(
        (best - 0.354).abs() < 0.05,
        "echo_bot decoded RMS {best}: {lines:?}"
    );
    assert!(lines.iter().any(|l| l.starts_with("call ")), "{lines:?}");

    // The daemon saw the call end by the caller's hang-up, and so did the
    // bot, whichever came first: the page's `hangup` or its DTLS close.
    d.eventually("call ended in metrics", Duration::from_secs(5), || {
        d.metric("botcall_calls_active") == 0.0
            && d.metric("botcall_calls_ended_total{reason=\"caller_hangup\"}") == 1.0
    });
    let ended = bot.ended(&d, r["callId"].as_str().unwrap());
    assert!(ended.contains(" ended: remote_hangup ("), "{ended}");
}

/// The audio path breaks mid-call while signaling stays up (the bot process
/// is frozen with SIGSTOP): the page ends the call with "network lost" and a
/// Retry button; with the bot running again, Retry connects a new call.
#[test]
fn a_lost_audio_path_ends_the_call_with_a_retry_that_works() {
    let d = Daemon::start(&[]);
    let bot = EchoBot::start(&d);
    let url = format!("http://{}", d.addr);
    let pid = bot.child.0.id().to_string();
    let r = node(
        "lost.mjs",
        &[
            "--url",
            &url,
            "--bot",
            "ec-bot",
            "--wav",
            bot.wav.to_str().unwrap(),
            "--bot-pid",
            &pid,
        ],
    );
    println!(
        "audio path frozen -> page says network lost after {} ms",
        r["stopToErrorMs"]
    );
    assert_eq!(r["error"]["code"], "network_lost", "{r:#}");
    assert!(
        r["errorText"]
            .as_str()
            .unwrap()
            .contains("Network connection lost"),
        "{r:#}"
    );
    assert_eq!(r["retryVisible"], true, "{r:#}");
    assert_eq!(r["hangupVisible"], false, "{r:#}");
    // ICE 'disconnected' (a few s without consent responses) + the 5 s grace.
    let ms = r["stopToErrorMs"].as_u64().unwrap();
    assert!((5_000..60_000).contains(&ms), "{r:#}");
    assert_ne!(r["firstCallId"], r["retryCallId"], "{r:#}");
    assert_eq!(r["errorHiddenAfterRetry"], true, "{r:#}");
    assert_eq!(r["finalState"], "ended");
    // The bot took both calls (the page heard its echo on the second one).
    let calls = bot
        .lines()
        .iter()
        .filter(|l| l.starts_with("call ") && l.contains(" from "))
        .count();
    assert_eq!(calls, 2, "{:?}", bot.lines());
    // The page told the daemon why each ended: the lost one as
    // `media_lost`, the retried one as its own hang-up.
    d.eventually(
        "both calls ended in metrics",
        Duration::from_secs(5),
        || {
            d.metric("botcall_calls_active") == 0.0
                && d.metric("botcall_calls_ended_total{reason=\"media_lost\"}") == 1.0
                && d.metric("botcall_calls_ended_total{reason=\"caller_hangup\"}") == 1.0
        },
    );
}

/// aiortc (Python, PyPI) as the bot `agent`, answering one call from the
/// PWA in Chromium: it verifies the attestation itself (PyJWT against the
/// JWKS) and answers with its own three-fingerprint SDP (`extra`: more
/// `aiortc_peer.py bot` arguments). Returns the page's and aiortc's results.
fn aiortc_bot_answers_the_pwa(
    agent: &str,
    key: &SigningKey,
    extra: &[&str],
) -> (serde_json::Value, serde_json::Value) {
    let d = Daemon::start(&[]);
    let dir = TempDir::new("aiortc-bot");
    let wav = dir.path().join("tone440.wav");
    write_tone_wav(&wav, 10);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/aiortc_peer.py");
    let tok = token(key, agent, 300);
    let jwks = d.url("/.well-known/jwks.json");
    let mut child = Command::new(python())
        .args([script, "bot", "--ws", &d.ws_url(), "--jwks", &jwks])
        .args(["--agent", agent, "--token", &tok])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the test venv's python (tests/setup)");
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let bot = KillOnDrop(child);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send(format!("stderr: {l}"));
        }
    });
    let lookup = format!("/lookup/{agent}");
    d.eventually("the aiortc bot online", Duration::from_secs(30), || {
        let r = d.get(&lookup);
        r.status == 200 && r.json()["online"] == true
    });

    let shots = TempDir::new("aiortc-shots");
    let r = call_page(&d, agent, &wav, shots.path());
    // The page heard aiortc: RTP and a non-silent level (660 Hz at 0.3).
    assert!(
        r["stats"]["inbound"]["packetsReceived"].as_u64().unwrap() > 50,
        "{r:#}"
    );
    assert!(r["maxRemoteLevel"].as_f64().unwrap() > 0.05, "{r:#}");
    assert_eq!(r["finalState"], "ended");

    // aiortc heard the page, verified the attestation, and got the hangup.
    let mut lines = Vec::new();
    let result = loop {
        let l = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("aiortc bot gave no result: {lines:#?}\n{}", d.log()));
        if let Some(j) = l.strip_prefix("RESULT ") {
            break serde_json::from_str::<serde_json::Value>(j).unwrap();
        }
        lines.push(l);
    };
    drop(bot);
    println!("aiortc bot: {result}");
    let best = result["best_rms"].as_f64().unwrap();
    assert!(
        (best - 0.354).abs() < 0.05,
        "aiortc heard RMS {best}: {result}"
    );
    assert_eq!(result["answer_fingerprint_lines"], 3, "{result}");
    assert_eq!(result["attestation"]["hv"], "none");
    assert_eq!(result["hangup"], "normal", "{result}");
    d.eventually("the call to end", Duration::from_secs(10), || {
        d.metric("botcall_calls_active") == 0.0
            && d.metric("botcall_calls_ended_total{reason=\"caller_hangup\"}") == 1.0
    });
    (r, result)
}

/// aiortc as an HS256 bot: audio flows both ways — the page hears aiortc's
/// tone, aiortc hears the page's 440 Hz microphone — and the page says the
/// bot cannot be verified (a shared secret signs nothing a caller can check).
#[test]
fn aiortc_as_a_bot_answers_a_call_from_the_pwa() {
    let (r, _) = aiortc_bot_answers_the_pwa("hs-bot", &Keys::new().hs, &[]);
    assert_eq!(r["verified"], "none", "{r:#}");
    assert_eq!(r["badge"], "Unverified bot", "{r:#}");
    assert!(
        r["trustNote"]
            .as_str()
            .is_some_and(|t| t.contains("shared-secret key")),
        "{r:#}"
    );
}

/// aiortc as an ES256 bot that signs its answer with PyJWT (the recipe in
/// docs/protocol.md): the page's WebCrypto check accepts a signature made
/// by another implementation, and shows "Verified bot".
#[test]
fn an_aiortc_bot_signs_its_answer_with_pyjwt_and_the_pwa_verifies_it() {
    let k = Keys::new();
    let dir = TempDir::new("aiortc-key");
    let key_file = dir.path().join("bot.jwk");
    let mut jwk = Vec::new();
    k.ec.write_jwk(&mut botcall_core::json::Writer::new(&mut jwk), None)
        .unwrap();
    std::fs::write(&key_file, jwk).unwrap();
    let (r, _) =
        aiortc_bot_answers_the_pwa("ec-bot", &k.ec, &["--sign-key", key_file.to_str().unwrap()]);
    assert_eq!(r["verified"], "key", "{r:#}");
    assert_eq!(r["badge"], "Verified bot", "{r:#}");
}

/// The caller verifies the bot, in Chromium, through a real tampering proxy
/// process between the PWA and the daemon (`tests/e2e/tamper-proxy.mjs`):
/// an honest answer from `echo_bot` (ES256) shows "Verified bot"; the same
/// call with the answer's `a=fingerprint` rewritten on the way is refused
/// with a clear message and no media, as is the same answer with its signature
/// stripped; and once the bot's key has changed
/// (another daemon behind the same origin publishes another key) the page
/// warns, until the person trusts the new key.
#[test]
fn the_pwa_verifies_the_bot_refuses_a_tampered_answer_and_warns_on_a_key_change() {
    let a = Daemon::start(&[]);
    let bot_a = EchoBot::start(&a);
    let k = Keys::new();
    let dir = TempDir::new("key-changed");
    let file = k
        .file()
        .replace(&Keys::public_jwk(&k.ec), &Keys::public_jwk(&k.other_ec));
    std::fs::write(dir.path().join("keys.json"), file).unwrap();
    let b = Daemon::start_in(dir, &[]);
    let bot_b = EchoBot::start_keyed(&b, &k.other_ec, &[]);
    let r = node(
        "trust.mjs",
        &[
            "--a",
            &a.addr.to_string(),
            "--b",
            &b.addr.to_string(),
            "--bot",
            "ec-bot",
            "--wav",
            bot_a.wav.to_str().unwrap(),
            "--shots",
            shots_dir().to_str().unwrap(),
        ],
    );
    // 1. Honest: verified with the published key, pinned, audio arrived.
    let h = &r["honest"];
    assert_eq!(h["state"], "connected", "{r:#}");
    assert_eq!(h["verified"], "key", "{r:#}");
    assert_eq!(h["badge"]["text"], "Verified bot", "{r:#}");
    assert_eq!(h["badge"]["warning"], false, "{r:#}");
    assert!(h["firstInboundPacketAt"].is_number(), "{r:#}");
    let pin: serde_json::Value = serde_json::from_str(r["pins"].as_str().unwrap()).unwrap();
    let published: serde_json::Value = serde_json::from_str(&Keys::public_jwk(&k.ec)).unwrap();
    assert_eq!(pin["ec-bot"]["x"], published["x"], "{r:#}");
    // 2. Tampered: the proxy rewrote the answer, the page refused it before
    //    applying it: no connection, no packet, a clear message.
    let t = &r["tampered"];
    assert_eq!(r["tamperedLines"].as_array().unwrap().len(), 1, "{r:#}");
    assert_eq!(t["state"], "error", "{r:#}");
    assert_eq!(t["error"]["code"], "answer_unverified", "{r:#}");
    assert_eq!(t["verified"], "refused:bot_fingerprint", "{r:#}");
    let text = t["errorText"].as_str().unwrap();
    assert!(
        text.contains("did not come from")
            && text.contains("changed on the way")
            && text.contains("no audio was connected"),
        "{text}"
    );
    assert!(
        t["connectedAt"].is_null() && t["firstInboundPacketAt"].is_null(),
        "{r:#}"
    );
    // The signature stripped on the way: refused too (a bot with a key must sign).
    let st = &r["stripped"];
    assert_eq!(st["state"], "error", "{r:#}");
    assert_eq!(st["verified"], "refused:missing", "{r:#}");
    assert!(
        st["errorText"]
            .as_str()
            .unwrap()
            .contains("not signed by the bot"),
        "{r:#}"
    );
    assert!(st["connectedAt"].is_null(), "{r:#}");
    let rewritten = r["proxyLog"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l.as_str().unwrap().starts_with("TAMPERED "))
        .count();
    assert_eq!(rewritten, 2, "{r:#}");
    // The bot was told, and never had media: the daemon ended the call on
    // the page's hangup.
    let ended = bot_a.ended(&a, t["callId"].as_str().unwrap());
    assert!(ended.contains("remote_hangup"), "{ended}");
    // 3. Key changed: verified with the new published key, but the page warns.
    let c = &r["changed"];
    assert_eq!(c["state"], "connected", "{r:#}");
    assert_eq!(c["badge"]["trust"], "changed", "{r:#}");
    assert_eq!(c["badge"]["text"], "Key changed", "{r:#}");
    assert_eq!(c["badge"]["warning"], true, "{r:#}");
    assert!(
        c["badge"]["warningText"]
            .as_str()
            .unwrap()
            .contains("key has changed"),
        "{r:#}"
    );
    // Trusting the new key re-pins it; the next call is plainly verified.
    assert_eq!(r["afterTrust"]["warning"], false, "{r:#}");
    let pin: serde_json::Value = serde_json::from_str(r["pinsAfter"].as_str().unwrap()).unwrap();
    let new: serde_json::Value = serde_json::from_str(&Keys::public_jwk(&k.other_ec)).unwrap();
    assert_eq!(pin["ec-bot"]["x"], new["x"], "{r:#}");
    assert_eq!(r["again"]["badge"]["text"], "Verified bot", "{r:#}");
    assert_eq!(r["again"]["badge"]["warning"], false, "{r:#}");
    drop(bot_b);
}

/// `push.mjs`: the bell subscribes (a fake `PushManager.subscribe` hands out
/// the loopback push service's endpoint and keys), the daemon's `online`
/// push reaches that service (which decrypts it with `http_ece` and checks
/// VAPID with PyJWT), the same payload delivered to the real service worker
/// shows the notification, its click opens `/call/ec-bot`, and the call
/// there carries audio.
#[test]
fn a_push_notification_leads_to_a_call_with_audio() {
    let d = Daemon::start(&[
        "--push-subject",
        "mailto:ops@botcall.example",
        "--push-allow-loopback",
    ]);
    // Known but offline: the person subscribes before it comes online.
    let r = register(
        &d,
        &token(&Keys::new().ec, "ec-bot", 300),
        r#"{"agent_id":"ec-bot","name":"Echo"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let ps = PushService::start(&d);
    let sub = ps.subscription("pwa").to_string();
    let wav_dir = TempDir::new("push-wav");
    let wav = wav_dir.path().join("tone440.wav");
    write_tone_wav(&wav, 10);
    let url = format!("http://{}", d.addr);
    let push = format!("http://{}", ps.addr);
    let shots = shots_dir().display().to_string();
    let wav_s = wav.display().to_string();
    let page = std::thread::spawn(move || {
        node(
            "push.mjs",
            &[
                "--url", &url, "--bot", "ec-bot", "--wav", &wav_s, "--sub", &sub, "--push", &push,
                "--name", "pwa", "--shots", &shots,
            ],
        )
    });
    d.eventually("the PWA's subscription", Duration::from_secs(120), || {
        // A page that failed first ends the wait (its error is reported below).
        page.is_finished()
            || d.metric(r#"botcall_push_subscriptions_total{outcome="added"}"#) == 1.0
    });
    let _bot = EchoBot::start(&d);
    let r = page.join().expect("push.mjs");

    assert_eq!(r["bellBefore"], "false", "{r:#}");
    assert_eq!(r["bellAfter"], "true");
    assert_eq!(r["stored"]["ec-bot"].as_str().unwrap().len(), 22);
    let pushed = &r["pushed"];
    assert_eq!(pushed["status"], 201, "{pushed}");
    assert_eq!(pushed["vapid"]["ok"], true, "{pushed}");
    assert_eq!(pushed["payload"]["url"], "/call/ec-bot");
    let n = &r["notification"];
    assert_eq!(n["title"], "Echo is online", "{r:#}");
    assert_eq!(n["body"], "Tap to call");
    assert_eq!(n["data"]["url"], "/call/ec-bot");
    assert_eq!(n["tag"], "online-ec-bot");
    assert_eq!(r["pathBeforeClick"], "/");
    assert_eq!(r["pathAfterClick"], "/call/ec-bot");
    assert_eq!(r["notificationsLeft"], 0);
    assert_eq!(r["stateAfterCall"], "connected");
    assert!(r["packets"][0].as_u64().unwrap() >= 100, "{r:#}");
    assert!(r["maxRemoteLevel"].as_f64().unwrap() > 0.05, "{r:#}");
    assert_eq!(r["storedAfterOff"], serde_json::json!({}));
    assert_eq!(
        d.metric(r#"botcall_push_subscriptions_total{outcome="removed"}"#),
        1.0
    );
}
