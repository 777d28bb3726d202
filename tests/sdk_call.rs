//! A bot built on the SDK and a Rust caller (str0m, written here) talk
//! through a real `botcalld` on loopback: Opus audio flows both ways (frames
//! counted, energy checked after decoding), the bot sees the verified
//! attestation, and hangups propagate in both directions.
mod common;
mod sdk_caller;

use std::time::Duration;

use botcall_sdk::codec::rms;
use botcall_sdk::{BotConfig, EndReason, HumanAttestation};
use common::*;
use sdk_caller::{BotAudio, Caller, Heard, assert_tones_both_ways, bot_talk, spawn_sdk_bot};

/// What the bot side saw.
#[derive(Debug)]
struct BotSide {
    caller: HumanAttestation,
    call_id: String,
    audio: BotAudio,
}

/// Starts a bot thread: it accepts one call, sends a 660 Hz tone at 0.3 and
/// decodes what it hears. With `hang_up_after`, it hangs up itself after
/// that many received frames.
fn spawn_bot(
    d: &Daemon,
    hang_up_after: Option<usize>,
    heard: Heard,
) -> std::thread::JoinHandle<BotSide> {
    let cfg = BotConfig::new(d.url(""), Keys::new().ec)
        .agent_id("ec-bot")
        .seed(7);
    spawn_sdk_bot(cfg, move |bot| async move {
        let call = bot.accept_call().await.expect("a verified call");
        let audio = bot_talk(&call, hang_up_after, &heard).await;
        let side = BotSide {
            caller: call.caller().clone(),
            call_id: call.id().to_string(),
            audio,
        };
        drop(call);
        bot.shutdown().await;
        side
    })
}

#[test]
fn opus_flows_both_ways_and_the_callers_hangup_reaches_the_bot() {
    let d = Daemon::start(&[]);
    let heard = Heard::default();
    let bot = spawn_bot(&d, None, heard.clone());
    let lookup = d.get("/lookup/ec-bot").json();
    assert_eq!(lookup["online"], true, "{lookup}");

    let mut c = Caller::new(&d);
    let call_id = c.call("ec-bot");
    // 3 s of audio (150 frames) each way, however long that takes here.
    c.run_until_heard(150, &heard);
    c.hang_up("bye");
    let side = bot.join().expect("bot thread");

    let caller_rms = rms(c.pcm.get(9600..).unwrap_or(&[]));
    eprintln!(
        "bot: rx_frames={} rx_rms={:.3} tx_frames={}; caller: rx_frames={} rx_rms={caller_rms:.3} sent={}",
        side.audio.rx_frames, side.audio.rx_rms, side.audio.tx_frames, c.rx_frames, c.sent
    );
    // The bot saw the verified attestation for this call and this offer.
    assert_eq!(side.call_id, call_id);
    assert_eq!(side.caller.call_id.as_str(), call_id);
    assert_eq!(side.caller.agent_id.as_str(), "ec-bot");
    assert_eq!(side.caller.hv.as_str(), "none");
    let offer_fp = botcall_core::sdp::fingerprint(&c.offer_sdp).unwrap();
    assert!(botcall_core::sdp::same_fingerprint(
        &offer_fp,
        &side.caller.fp
    ));
    // The caller's hangup reached the bot.
    assert_eq!(side.audio.end, Some(EndReason::RemoteHangup("bye".into())));
    assert_tones_both_ways(&side.audio, &c, 120);
    // The bot ended gathering with end-of-candidates.
    assert!(c.end_of_candidates);
}

#[test]
fn the_bots_hangup_reaches_the_caller() {
    let d = Daemon::start(&[]);
    let bot = spawn_bot(&d, Some(25), Heard::default());
    let mut c = Caller::new(&d);
    c.call("ec-bot");
    c.run(sdk_caller::MEDIA_LIMIT, |c| c.hangup.is_some());
    assert_eq!(c.hangup.as_deref(), Some("hangup"), "{}", d.log());
    let side = bot.join().expect("bot thread");
    assert_eq!(side.audio.end, Some(EndReason::Local));
    assert!(side.audio.rx_frames >= 25);
    d.eventually("the call to end", Duration::from_secs(30), || {
        d.metric("botcall_calls_active") == 0.0
    });
}
