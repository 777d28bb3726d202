//! How calls end, and what an operator sees of it: every end reason counted
//! under its own `botcall_calls_ended_total{reason}` label (checked by
//! Prometheus' own `promtool`), one log line per registration, call start
//! and call end, never a token or an SDP in the log; and an SDK bot ending
//! a call whose media is gone — the caller's DTLS close before or after its
//! `hangup`, or a caller that vanished — so the next caller is not `busy`.
mod common;
mod sdk_caller;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use botcall_sdk::{BotConfig, EndReason};
use common::*;
use sdk_caller::{Caller, MEDIA_LIMIT, bot_talk, spawn_sdk_bot};
use serde_json::json;

/// A bot socket that answers the next `incoming` at once; returns its call id.
fn answer_next(b: &mut Ws) -> serde_json::Value {
    let inc = recv(b);
    assert_eq!(inc["type"], "incoming", "{inc}");
    let id = inc["call_id"].clone();
    send(
        b,
        json!({"type": "answer", "call_id": id, "sdp_answer": "v=0\r\n"}),
    );
    id
}

/// A caller on `d` whose call to `to` was answered; returns it and the call id.
fn answered_call(d: &Daemon, to: &str, bot: &mut Ws) -> (Ws, serde_json::Value) {
    let (mut c, _) = caller(d);
    assert_eq!(place_call(&mut c, to)["type"], "ringing");
    let id = answer_next(bot);
    let a = recv(&mut c);
    assert_eq!(
        (a["type"].as_str(), &a["call_id"]),
        (Some("answer"), &id),
        "{a}"
    );
    (c, id)
}

fn hang_up(ws: &mut Ws, id: &serde_json::Value, reason: &str) {
    send(
        ws,
        json!({"type": "hangup", "call_id": id, "reason": reason}),
    );
}

/// Messages until a `hangup`; returns its reason.
fn hangup_reason(ws: &mut Ws) -> String {
    loop {
        let m = recv(ws);
        if m["type"] == "hangup" {
            return m["reason"].as_str().unwrap().to_string();
        }
    }
}

const LABELS: [&str; 10] = [
    "caller_hangup",
    "bot_hangup",
    "media_lost",
    "media_timeout",
    "error",
    "ring_timeout",
    "caller_gone",
    "bot_gone",
    "rejected",
    "refused",
];

/// One call ended for each reason on daemon A (the refused one through a
/// busy bot on daemon B, over real Redis): each label counts exactly one,
/// `promtool check metrics` accepts the scrape, and the log has one line per
/// registration and per call start and end, without tokens or SDP.
#[test]
fn every_end_reason_has_its_label_a_log_line_and_promtool_accepts_the_scrape() {
    let redis = RedisServer::start();
    let url = redis.url();
    let a = Daemon::start(&["--store", &url, "--ring-timeout", "5"]);
    let b = Daemon::start(&["--store", &url]);
    let k = Keys::new();
    let bot_token = token(&k.hs, "hs-bot", 300);
    let r = register(&a, &bot_token, r#"{"agent_id":"hs-bot","listed":true}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let (mut bot_a, _) = bot(&a, &bot_token);

    // Hang-ups by each side, with the reasons that mean something.
    for (by_caller, reason) in [
        (true, "bye"),
        (false, "hangup"),
        (true, "media_lost"),
        (false, "media_timeout"),
        (true, "error"),
    ] {
        let (mut c, id) = answered_call(&a, "hs-bot", &mut bot_a);
        if by_caller {
            hang_up(&mut c, &id, reason);
            assert_eq!(hangup_reason(&mut bot_a), reason);
        } else {
            hang_up(&mut bot_a, &id, reason);
            assert_eq!(hangup_reason(&mut c), reason);
        }
    }
    // Rejected, and unanswered until the ring timeout.
    let (mut c, _) = caller(&a);
    place_call(&mut c, "hs-bot");
    let inc = recv(&mut bot_a);
    send(
        &mut bot_a,
        json!({"type": "reject", "call_id": inc["call_id"], "reason": "declined"}),
    );
    assert_eq!(recv(&mut c)["type"], "reject");
    place_call(&mut c, "hs-bot");
    assert_eq!(recv(&mut bot_a)["type"], "incoming");
    assert_eq!(hangup_reason(&mut c), "timeout");
    assert_eq!(hangup_reason(&mut bot_a), "timeout");
    // The caller's socket goes away mid-call.
    let (c, _) = answered_call(&a, "hs-bot", &mut bot_a);
    drop(c);
    assert_eq!(hangup_reason(&mut bot_a), "peer_gone");
    // The bot's socket goes away while a call rings.
    let (mut c, _) = caller(&a);
    place_call(&mut c, "hs-bot");
    assert_eq!(recv(&mut bot_a)["type"], "incoming");
    drop(bot_a);
    assert_eq!(hangup_reason(&mut c), "peer_gone");
    // A bot on daemon B is busy: B refuses A's call.
    let (mut bot_b, _) = bot(&b, &token(&k.hs, "hs-bot-2", 300));
    let (mut cb, _) = caller(&b);
    assert_eq!(place_call(&mut cb, "hs-bot-2")["type"], "ringing");
    assert_eq!(recv(&mut bot_b)["type"], "incoming");
    let (mut c, _) = caller(&a);
    assert_eq!(place_call(&mut c, "hs-bot-2")["code"], "busy");

    a.eventually("every call to end", Duration::from_secs(10), || {
        a.metric("botcall_calls_active") == 0.0
    });
    let scrape = a.get("/metrics").text();
    for l in LABELS {
        let series = format!("botcall_calls_ended_total{{reason=\"{l}\"}}");
        assert_eq!(a.metric(&series), 1.0, "{series}\n{scrape}");
    }
    let labels = scrape
        .lines()
        .filter(|l| l.starts_with("botcall_calls_ended_total{"))
        .count();
    assert_eq!(labels, LABELS.len(), "a bounded label set:\n{scrape}");

    // Prometheus' own checker.
    let dir = TempDir::new("promtool");
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &scrape).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("promtool (tests/setup installs Debian's prometheus)");
    assert!(
        out.status.success(),
        "promtool: {}{}\n{scrape}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The log: one line per registration and per call start and end, at info.
    let log = a.log();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("INFO registered agent hs-bot "), 1, "{log}");
    assert_eq!(count("INFO bot hs-bot online"), 1, "{log}");
    assert_eq!(count("INFO bot hs-bot offline"), 1, "{log}");
    // Ten calls placed on A: nine to hs-bot, one to B's busy bot.
    assert_eq!(count("INFO call c-"), 2 * 10, "{log}");
    assert_eq!(count(" started: agent hs-bot, caller s-"), 9, "{log}");
    assert_eq!(count(" started: agent hs-bot-2, caller s-"), 1, "{log}");
    for l in LABELS {
        assert_eq!(count(&format!(" ended: {l} after ")), 1, "{l}\n{log}");
    }
    if std::env::var_os("BOTCALL_SHOW_LOG").is_some() {
        eprintln!("{log}");
    }
    // No secrets and no SDP, even at --log-level debug.
    for secret in bot_token.split('.').chain(["v=0", "a=fingerprint", "sdp"]) {
        assert!(!log.contains(secret), "{secret:?} in the log:\n{log}");
    }
}

/// What the bot thread reports per call.
type Ended = (String, Option<EndReason>);

/// An SDK bot (`ec-bot`, one call at a time, media timeout 3 s) that talks
/// on every call until it ends and reports how each ended; `heard` counts
/// the frames it received over all calls.
struct LivenessBot {
    ended: mpsc::Receiver<Ended>,
    heard: Arc<AtomicUsize>,
}

fn liveness_bot(d: &Daemon) -> LivenessBot {
    let (tx, ended) = mpsc::channel();
    let heard = Arc::new(AtomicUsize::new(0));
    let counter = heard.clone();
    let cfg = BotConfig::new(d.url(""), Keys::new().ec)
        .agent_id("ec-bot")
        .media_timeout(Duration::from_secs(3))
        .seed(11);
    let _ = spawn_sdk_bot(cfg, move |bot| async move {
        while let Ok(call) = bot.accept_call().await {
            let audio = bot_talk(&call, None, &counter).await;
            if tx.send((call.id().to_string(), audio.end)).is_err() {
                break;
            }
        }
    });
    LivenessBot { ended, heard }
}

/// A new call from `c` that carries audio: 10 frames each way.
fn connect(c: &mut Caller, bot: &LivenessBot, d: &Daemon) -> String {
    let id = c.call("ec-bot");
    let base = bot.heard.load(Ordering::Relaxed);
    let heard = |c: &Caller| c.rx_frames >= 10 && bot.heard.load(Ordering::Relaxed) >= base + 10;
    c.run(MEDIA_LIMIT, heard);
    assert!(heard(c), "no audio both ways\n{}", d.log());
    id
}

#[test]
fn the_end_reason_is_the_same_whether_the_hangup_or_the_dtls_close_comes_first() {
    let d = Daemon::start(&[]);
    let bot = liveness_bot(&d);

    // The hangup first; the DTLS close only after the bot has ended.
    let mut c = Caller::new(&d);
    let id = connect(&mut c, &bot, &d);
    c.hang_up("bye");
    let (got, end) = bot
        .ended
        .recv_timeout(WAIT_FLOOR)
        .expect("the bot ends the call");
    assert_eq!(got, id);
    assert_eq!(end, Some(EndReason::RemoteHangup("bye".into())));
    c.close_media();

    // The DTLS close first, and no hangup at all (as a tab that only closed
    // its peer connection): the bot ends the call and frees it at the daemon.
    let mut c = Caller::new(&d);
    let id = connect(&mut c, &bot, &d);
    c.close_media();
    let (got, end) = bot
        .ended
        .recv_timeout(WAIT_FLOOR)
        .expect("the bot ends the call");
    assert_eq!(got, id);
    let end = end.unwrap();
    assert_eq!(end, EndReason::RemoteHangup("dtls_close".into()));
    assert_eq!(end.code(), "remote_hangup");
    assert_eq!(c.wait_for("hangup", WAIT_FLOOR)["reason"], "media_closed");
    d.eventually("both ends counted", WAIT_FLOOR, || {
        d.metric("botcall_calls_ended_total{reason=\"caller_hangup\"}") == 2.0
            && d.metric("botcall_calls_active") == 0.0
    });
}

#[test]
fn a_caller_that_vanishes_frees_the_bot_within_the_media_timeout() {
    let d = Daemon::start(&[]);
    let bot = liveness_bot(&d);
    let mut c = Caller::new(&d);
    let id = connect(&mut c, &bot, &d);
    // The caller's media stops dead (a crash, a network change): no DTLS
    // close, no hangup; its signaling socket stays open.
    let stopped = Instant::now();
    let (got, end) = bot
        .ended
        .recv_timeout(WAIT_FLOOR)
        .expect("the bot ends the call");
    let after = stopped.elapsed();
    assert_eq!(got, id);
    assert_eq!(end, Some(EndReason::MediaLost));
    // Not before 3 s of silence (less the last packet's head start).
    assert!(after >= Duration::from_millis(2500), "{after:?}");
    assert_eq!(c.wait_for("hangup", WAIT_FLOOR)["reason"], "media_lost");
    d.eventually("the slot to free", WAIT_FLOOR, || {
        d.metric("botcall_calls_active") == 0.0
    });
    assert_eq!(
        d.metric("botcall_calls_ended_total{reason=\"media_lost\"}"),
        1.0
    );
    // The next caller is not `busy`: it gets through and hears the bot.
    let mut next = Caller::new(&d);
    connect(&mut next, &bot, &d);
    next.hang_up("bye");
    let (_, end) = bot
        .ended
        .recv_timeout(WAIT_FLOOR)
        .expect("the second call ends");
    assert_eq!(end, Some(EndReason::RemoteHangup("bye".into())));
    assert!(next.rx_frames > 10);
}
