//! A bot built on the SDK and a Rust caller (str0m, written here) talk
//! through a real `botcalld` on loopback: Opus audio flows both ways (frames
//! counted, energy checked after decoding), the bot sees the verified
//! attestation, and hangups propagate in both directions.
mod common;
mod sdk_caller;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use botcall_sdk::codec::{OpusDecoder, OpusEncoder, Tone, rms};
use botcall_sdk::{BotConfig, BotError, EndReason, HumanAttestation, register_with_discovery};
use common::*;
use futures_lite::future;
use sdk_caller::Caller;

/// What the bot side saw.
#[derive(Debug)]
struct BotSide {
    caller: HumanAttestation,
    call_id: String,
    rx_frames: usize,
    rx_rms: f32,
    tx_frames: usize,
    end: Option<EndReason>,
}

/// Starts a bot thread: it accepts one call, sends a 660 Hz tone at 0.3 and
/// decodes what it hears. With `hang_up_after`, it hangs up itself after
/// that many received frames.
fn spawn_bot(
    d: &Daemon,
    hang_up_after: Option<usize>,
) -> (mpsc::Receiver<()>, std::thread::JoinHandle<BotSide>) {
    let url = d.url("");
    let (online_tx, online_rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        future::block_on(async move {
            let cfg = BotConfig::new(url, Keys::new().ec)
                .agent_id("ec-bot")
                .seed(7);
            let bot = register_with_discovery(cfg).await.expect("bot registers");
            online_tx.send(()).unwrap();
            let call = bot.accept_call().await.expect("a verified call");
            let mut dec = OpusDecoder::new(1).unwrap();
            let mut pcm = Vec::new();
            let mut rx_frames = 0;
            let receive = async {
                loop {
                    match call.receive_audio_opus().await {
                        Ok(f) => {
                            rx_frames += 1;
                            pcm.extend_from_slice(dec.decode(&f.data).unwrap());
                            if Some(rx_frames) == hang_up_after {
                                call.hangup().await;
                            }
                        }
                        Err(BotError::Ended(r)) => return Some(r),
                        Err(e) => panic!("receive: {e}"),
                    }
                }
            };
            let send = async {
                let mut enc = OpusEncoder::new(1).unwrap();
                let mut tone = Tone::new(660.0, 0.3);
                let mut n = 0;
                while call
                    .send_audio_opus(&enc.encode(&tone.next_frame()).unwrap())
                    .await
                    .is_ok()
                {
                    n += 1;
                }
                n
            };
            let (end, tx_frames) = future::zip(receive, send).await;
            let side = BotSide {
                caller: call.caller().clone(),
                call_id: call.id().to_string(),
                rx_frames,
                // Skip the first 10 frames (codec start-up).
                rx_rms: rms(pcm.get(9600..).unwrap_or(&[])),
                tx_frames,
                end,
            };
            drop(call);
            bot.shutdown().await;
            side
        })
    });
    (online_rx, h)
}

#[test]
fn opus_flows_both_ways_and_the_callers_hangup_reaches_the_bot() {
    let t0 = Instant::now();
    let d = Daemon::start(&[]);
    let (online, bot) = spawn_bot(&d, None);
    online
        .recv_timeout(Duration::from_secs(10))
        .expect("bot online");
    let lookup = d.get("/lookup/ec-bot").json();
    assert_eq!(lookup["online"], true, "{lookup}");

    let mut c = Caller::new(&d);
    let call_id = c.call("ec-bot");
    // 3 s of audio after media connects.
    c.run(Duration::from_secs(12), |c| {
        c.connected_at
            .is_some_and(|t| t.elapsed() > Duration::from_secs(3))
    });
    assert!(
        c.connected_at.is_some(),
        "media never connected\n{}",
        d.log()
    );
    c.hang_up("bye");
    let side = bot.join().expect("bot thread");

    let caller_rms = rms(c.pcm.get(9600..).unwrap_or(&[]));
    eprintln!(
        "bot: rx_frames={} rx_rms={:.3} tx_frames={}; caller: rx_frames={} rx_rms={caller_rms:.3} sent={}",
        side.rx_frames, side.rx_rms, side.tx_frames, c.rx_frames, c.sent
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
    assert_eq!(side.end, Some(EndReason::Remote("bye".into())));
    // Caller → bot: 440 Hz at 0.5 → RMS 0.354.
    assert!(
        side.rx_frames >= 120,
        "bot received {} frames",
        side.rx_frames
    );
    assert!(
        (side.rx_rms - 0.354).abs() < 0.03,
        "bot decoded RMS {}",
        side.rx_rms
    );
    // Bot → caller: 660 Hz at 0.3 → RMS 0.212.
    assert!(side.tx_frames >= 120, "bot sent {}", side.tx_frames);
    assert!(c.rx_frames >= 120, "caller received {} frames", c.rx_frames);
    assert!(
        (caller_rms - 0.212).abs() < 0.03,
        "caller decoded RMS {caller_rms}"
    );
    // The bot ended gathering with end-of-candidates.
    assert!(c.end_of_candidates);
    assert!(t0.elapsed() < Duration::from_secs(30));
}

#[test]
fn the_bots_hangup_reaches_the_caller() {
    let d = Daemon::start(&[]);
    let (online, bot) = spawn_bot(&d, Some(25));
    online
        .recv_timeout(Duration::from_secs(10))
        .expect("bot online");
    let mut c = Caller::new(&d);
    c.call("ec-bot");
    c.run(Duration::from_secs(12), |c| c.hangup.is_some());
    assert_eq!(c.hangup.as_deref(), Some("hangup"), "{}", d.log());
    let side = bot.join().expect("bot thread");
    assert_eq!(side.end, Some(EndReason::Local));
    assert!(side.rx_frames >= 25);
    d.eventually("the call to end", Duration::from_secs(5), || {
        d.metric("botcall_calls_active") == 0.0
    });
}
